/**
 * A complete, valid spec with every field, for docs, `cutover` help text and
 * tests. Per-host blue/green with a verify analysis; the canary and
 * fleet-bluegreen fields are shown commented out because each applies only to
 * its own strategy type.
 */
export const SPEC_EXAMPLE = `# cutover app spec
app: geoip
artifact: ./dist                  # a directory or a .tar.gz/.tgz, relative to this file
run:
  command: ["node", "server.js", "--port", "\${PORT}"]   # argv, no shell
  env: { NODE_ENV: production }
  user: geoip                     # without it the app runs as the agent's user: root hosts refuse that unless allow_root_apps
  stop_signal: SIGTERM
  stop_timeout: 30s               # then SIGKILL
ports: { blue: 7001, green: 7002 }
proxy:
  listen: 80
  protocol: http                  # http | tcp
  directives: ["client_max_body_size 10m"]   # allowed names only: packages/spec/README.md
health:
  http: { path: /health_check, expect_status: 200 }   # or: tcp: {}
  interval: 1s                    # the gate's probes of a new instance: how fast a deploy proceeds
  live_interval: 5s               # live checks once in service, at least 1s; 3 failures in a row = unhealthy
  timeout: 2s
  healthy_threshold: 2
  deadline: 60s
hosts: { role: geoip }            # every host with all of these labels
lb:                               # front load balancers: needed by rolling, canary, fleet-bluegreen
  hosts: { role: lb }
  listen: 80
  drain_timeout: 30s
strategy:
  type: bluegreen                 # bluegreen | rolling | canary | fleet-bluegreen
  batch: 25%                      # hosts at once: a count or a percent
  max_failures: 0                 # failed hosts before the rollout halts and rolls back
  keep_previous: 10m              # old color stays warm for an instant rollback
  progress_deadline: 30m
  verify:                         # bluegreen, rolling: judge each batch after it switched; fail rolls it back
    interval: 10s                 # one measurement per interval
    count: 6                      # or window: 1m (count = window / interval)
    failure_limit: 0              # failed measurements tolerated
    min_requests: 10              # fewer: inconclusive, the rollout pauses for cutover resume / abort
    max_error_rate: 1%            # (5xx + upstream errors) / requests
    max_latency_p99: 200ms
    # prometheus:                 # the team's own query, judged at each measurement
    #   url: http://127.0.0.1:9090
    #   query: sum(rate(errors_total[1m])) / sum(rate(requests_total[1m]))
    #   success: "< 0.01"
  # type: canary
  # canary:
  #   hosts: 1
  #   weight: 10                  # percent of users, sticky by cookie
  #   cookie: cutover_canary
  #   pin: { header: X-Canary, value: "1" }
  #   then: bluegreen
  #   analysis: { count: 30, max_error_rate: 1% }   # same shape as verify; pass promotes, fail aborts
  # type: fleet-bluegreen
  # groups: { label: group, blue: a, green: b }
  # steps: [10, 50, 100]
  # step_pause: 10s               # or analysis: { ... } at each step, not both
resources:                        # preflight from agent reports
  min_free_memory: 256M           # sizes are binary: K = 1024; KB/KiB, MB/MiB, ... mean the same
  min_free_disk: 1G
  max_load: 0.9                   # load average per core
limits: { memory: 512M, cpu: 1.0 }
hooks:                            # argv, no shell; as run.user, with the app's env, killed at their timeout
  pre_deploy:                     # once per deploy, on the first host, from the new release, before any switch
    command: ["node", "migrate.js", "--release", "\${RELEASE}"]
    timeout: 5m                   # 1s..1h; a failure ends the deploy before any host switches
  post_switch:                    # on each host after its switch; a failure switches that host back
    command: ["node", "smoke.js", "http://\${ADDRESS}:\${PORT}/health_check"]
    timeout: 1m
`;

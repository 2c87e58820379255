/**
 * The spec `cutover init` writes: the fields a first blue/green deploy needs, each
 * commented, with the optional sections commented out (SPEC_EXAMPLE, example.ts, shows
 * every field). It parses as it stands once `artifact` exists (starter.test.ts).
 */
export function starterSpec(app: string): string {
  return `# cutover app spec for ${app}: \`cutover validate\` checks it offline; \`cutover deploy\` uses it.
# Every field: the README's "The app spec" section.
app: ${app}
artifact: ./dist                  # the release: a directory or a .tar.gz/.tgz, relative to this file
run:
  command: ["node", "server.js", "--port", "\${PORT}"]   # argv, no shell; \${PORT} is the color's port
  user: ${app}                    # an account on every host (never root unless the host allows it)
  env: { NODE_ENV: production }   # a secret: DATABASE_URL: { secret: DATABASE_URL } (cutover secret set)
  stop_timeout: 30s               # SIGTERM, then SIGKILL after this long
ports: { blue: 7001, green: 7002 } # the two colors; nginx moves users between them
proxy:
  listen: 80                      # what users connect to, on each host's nginx
health:
  http: { path: /health, expect_status: 200 }   # or: tcp: {}
  deadline: 60s                   # a new release that is not healthy by then is rolled back
hosts: { role: ${app} }           # every enrolled host with all of these labels
strategy:
  type: bluegreen                 # bluegreen | rolling | canary | fleet-bluegreen (they need lb:)
  batch: 25%                      # hosts at once: a count or a percent
  max_failures: 0                 # failed hosts before the rollout stops and rolls back
  keep_previous: 10m              # the old color stays warm this long, for an instant rollback
# hooks:                          # argv, no shell; run as run.user with the app's env and secrets
#   pre_deploy: { command: ["node", "migrate.js"], timeout: 5m }    # once, before any host switches
#   post_switch: { command: ["node", "smoke.js"], timeout: 1m }     # on each host after its switch
# resources:                      # checked on each host before anything is sent (cutover check)
#   min_free_memory: 256M
#   min_free_disk: 1G
# limits: { memory: 512M, cpu: 1.0 }
# lb:                             # front load balancers (agents on lb hosts), for rolling and canaries
#   hosts: { role: lb }
#   listen: 80
`;
}

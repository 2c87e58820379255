import type { AppSpec, CountOrPercent, TlsSpec, VirtualHostSpec } from "@cutover/spec";
import { isSecretRef, resolveCount } from "@cutover/spec";
import type { cutover } from "@cutover/protocol";

/** True when every key of the selector is a label of the host with the same value. */
export function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** Splits hosts (already sorted by name) into consecutive batches of the strategy's size. */
export function planBatches<T>(hosts: T[], batch: CountOrPercent): T[][] {
  const size = Math.max(1, resolveCount(batch, hosts.length));
  const batches: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) batches.push(hosts.slice(i, i + size));
  return batches;
}

/**
 * The host-side part of the spec, as the Deploy command carries it. `run.env`'s
 * secret references become `secretEnv` (variable → secret name): the values go
 * beside the definition, in `Deploy.secrets`, never into it.
 */
export function appDefinition(spec: AppSpec): cutover.v1.AppDefinition.$Properties {
  const check = spec.health.check;
  const keepPreviousMs = "keepPreviousMs" in spec.strategy ? spec.strategy.keepPreviousMs : 0;
  const env: Record<string, string> = {};
  const secretEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.run.env)) {
    if (isSecretRef(value)) secretEnv[name] = value.secret;
    else env[name] = value;
  }
  return {
    name: spec.app,
    run: {
      command: spec.run.command,
      env,
      secretEnv,
      envFile: spec.run.envFile ?? "",
      user: spec.run.user ?? "",
      stopSignal: spec.run.stopSignal,
      stopTimeoutMs: spec.run.stopTimeoutMs,
    },
    bluePort: spec.ports.blue,
    greenPort: spec.ports.green,
    proxy: {
      listenPort: spec.proxy.listen,
      protocol: spec.proxy.protocol,
      directives: spec.proxy.directives ?? [],
      virtualHost: virtualHostWire(spec.proxy),
    },
    health: {
      kind: check.kind,
      path: check.kind === "http" ? check.path : "",
      expectStatus: check.kind === "http" ? check.expectStatus : 0,
      intervalMs: spec.health.intervalMs,
      liveIntervalMs: spec.health.liveIntervalMs,
      timeoutMs: spec.health.timeoutMs,
      healthyThreshold: spec.health.healthyThreshold,
      deadlineMs: spec.health.deadlineMs,
    },
    keepPreviousMs,
    limits: { memoryBytes: spec.limits.memoryBytes ?? 0, cpuCores: spec.limits.cpu ?? 0 },
    needs: {
      minFreeMemoryBytes: spec.resources.minFreeMemoryBytes ?? 0,
      minFreeDiskBytes: spec.resources.minFreeDiskBytes ?? 0,
      maxLoad: spec.resources.maxLoad ?? 0,
    },
  };
}

/** proxy's or lb's names, TLS, redirect and HTTP/2 as ProxySpec and LbSite carry them. */
export function virtualHostWire(section: VirtualHostSpec): cutover.v1.VirtualHost.$Properties {
  return {
    serverNames: section.serverNames ?? [],
    defaultServer: section.defaultServer ?? false,
    ...(section.tls && { tls: tlsFiles(section.tls) }),
    redirectHttpPort: section.redirectHttp ?? 0,
    http2: section.http2 ?? false,
  };
}

/** A TLS section as the wire carries it: each file a path on the host or a secret's name (its value goes in Deploy.secrets). */
function tlsFiles(tls: TlsSpec): cutover.v1.TlsFiles.$Properties {
  const { certificate, key } = tls;
  return {
    ...(isSecretRef(certificate) ? { certificateSecret: certificate.secret } : { certificatePath: certificate }),
    ...(isSecretRef(key) ? { keySecret: key.secret } : { keyPath: key }),
  };
}

/**
 * How a deploy walks its hosts: the strategy's own shape, or `first-behind-lb`
 * (the first release of an app behind a load balancer: every host, then the
 * upstream).
 */
export type DeployShape = "first-behind-lb" | "bluegreen" | "rolling" | "canary" | "fleet-bluegreen";

/** The hosts a deploy reaches, batch by batch: batch `i + 1` is `batches[i]` (a canary's first batch is its canaries). */
export interface DeployOrder<T> {
  shape: DeployShape;
  batches: T[][];
}

/**
 * The one order a deploy takes, the deployment record keeps and `deploy --plan`
 * shows. `hosts`: the hosts the deploy reaches, sorted by name;
 * `firstBehindLb`: the app has an `lb` and no upstream was applied yet;
 * `idleHosts`: for fleet-bluegreen, the hosts of the idle group (`fleetGroups`).
 */
export function deployOrder<T>(spec: AppSpec, hosts: T[], context: { firstBehindLb: boolean; idleHosts?: T[] }): DeployOrder<T> {
  const strategy = spec.strategy;
  if (context.firstBehindLb) return { shape: "first-behind-lb", batches: planBatches(hosts, strategy.batch) };
  if (strategy.type === "canary") {
    const count = Math.min(hosts.length, resolveCount(strategy.canary.hosts, hosts.length));
    return { shape: "canary", batches: [hosts.slice(0, count), ...planBatches(hosts.slice(count), strategy.batch)] };
  }
  if (strategy.type === "fleet-bluegreen") return { shape: "fleet-bluegreen", batches: planBatches(context.idleHosts ?? [], strategy.batch) };
  return { shape: strategy.type, batches: planBatches(hosts, strategy.batch) };
}

/** Each host of the order with its 1-based batch number, as a deployment record lists them. */
export function numberedHosts<T extends { name: string }>(order: DeployOrder<T>): { name: string; batch: number }[] {
  return order.batches.flatMap((batch, i) => batch.map((h) => ({ name: h.name, batch: i + 1 })));
}

/**
 * What a deploy does on one host: `deploy` starts the release there (beside the
 * live color, or in place); `none`: the host already serves this release, and its
 * agent answers "already live" and keeps the running instance as it is.
 */
export type HostAction = "deploy" | "none";

/** One host of a plan: where it is in the order, what runs there now, what the deploy does. */
export interface HostPlan {
  name: string;
  batch: number;
  /** The color serving the app there now; null when the app does not run there. */
  liveColor: string | null;
  /** The live release (null: none) and the one the deploy brings. */
  release: { from: string | null; to: string };
  action: HostAction;
}

/** The part of a host record a plan reads: its name and the app instances it last reported. */
export interface HostState {
  name: string;
  instances: { app: string; live: boolean; release: string; color: string }[];
}

/** Each host of the order, with what it runs now and what the deploy of `release` does there. */
export function hostPlans(app: string, release: string, order: DeployOrder<HostState>): HostPlan[] {
  return order.batches.flatMap((batch, i) =>
    batch.map((host) => {
      const live = host.instances.find((instance) => instance.app === app && instance.live);
      return {
        name: host.name,
        batch: i + 1,
        liveColor: live?.color ?? null,
        release: { from: live?.release ?? null, to: release },
        action: live?.release === release ? "none" : "deploy",
      } satisfies HostPlan;
    }),
  );
}

/**
 * What a plan concludes: `refused` when the deploy, started now, would be refused
 * (whatever else it shows); `change` when a host would get the release or the
 * app's spec differs from its last deployed one (`specChanged`: also true when the
 * app was never deployed); else `no-change`.
 */
export type PlanOutcome = "no-change" | "change" | "refused";

export function planOutcome(hosts: HostPlan[], specChanged: boolean, refused: boolean): PlanOutcome {
  if (refused) return "refused";
  return specChanged || hosts.some((h) => h.action !== "none") ? "change" : "no-change";
}

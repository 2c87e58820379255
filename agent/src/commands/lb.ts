import { v1, type cutover } from "@cutover/protocol";
import { applyLbSite, readLbSite, waitDrained, type LbSiteConfig } from "../lb/index.js";
import { tlsFingerprint, type NginxRunner, type SwitchMode, type VirtualHost } from "../nginx/index.js";
import { checkTlsFile } from "../apps/admission.js";
import { LbError } from "../lb/errors.js";
import type { OperationResult } from "./dispatcher.js";

const Status = v1.CommandResult.Status;

/** The wire LbSite as the lb module's config for this host. */
export function lbSiteConfig(site: cutover.v1.LbSite.$Properties, address: string, switchMode: SwitchMode): LbSiteConfig {
  const canary = site.canary;
  const virtualHost = lbVirtualHost(site);
  return {
    app: site.app ?? "",
    listenAddress: address,
    listenPort: site.listenPort ?? 0,
    switchMode,
    backends: (site.backends ?? []).map((b) => ({
      host: b.host ?? "",
      address: b.address ?? "",
      port: b.port ?? 0,
      weight: b.weight ?? 0,
      state: (b.state || "up") as "up" | "drain" | "down",
      group: (b.group || "stable") as "stable" | "canary",
    })),
    ...(virtualHost && { virtualHost }),
    ...(canary?.cookie && {
      canary: {
        cookie: canary.cookie,
        weightPercent: canary.weightPercent ?? 0,
        ...(canary.pinKind && { pin: { kind: canary.pinKind as "header" | "cookie", name: canary.pinName ?? "", value: canary.pinValue ?? "" } }),
      },
    }),
  };
}

/**
 * The wire's names, TLS, redirect and HTTP/2 of an LB site, checked like an app's proxy:
 * the TLS files must be on this host, readable, a key not readable by others (checkTlsFile);
 * their fingerprint goes into the site, so rotating them in place reloads.
 */
function lbVirtualHost(site: cutover.v1.LbSite.$Properties): VirtualHost | undefined {
  const vh = site.virtualHost;
  // A spec without any of the fields: the site as before them, the port its own.
  if (!vh || (!vh.serverNames?.length && !vh.tls && !vh.redirectHttpPort && !vh.http2)) return undefined;
  const tls = vh.tls;
  if (tls && (tls.certificateSecret || tls.keySecret)) {
    throw new LbError("ERR_LB_INVALID_SITE", `LB site ${site.app}: TLS files of a load balancer are paths on its host, not secrets`);
  }
  const files = tls ? { certificate: tls.certificatePath ?? "", key: tls.keyPath ?? "" } : undefined;
  if (files) {
    checkTlsFile(files.certificate, "certificate", "lb.tls");
    checkTlsFile(files.key, "key", "lb.tls");
  }
  return {
    serverNames: [...(vh.serverNames ?? [])],
    defaultServer: Boolean(vh.defaultServer),
    http2: Boolean(vh.http2),
    ...(files && { tls: { ...files, fingerprint: tlsFingerprint(files.certificate, files.key) } }),
    ...(vh.redirectHttpPort ? { redirectHttpPort: vh.redirectHttpPort } : {}),
  };
}

/** ApplyLb and WaitDrained: this agent as a front load balancer (the nginx must be running). */
export function lbHandlers(options: { nginx: NginxRunner; address: string; switchMode: SwitchMode; prepareNginx(): Promise<void> }) {
  return {
    async applyLb(command: cutover.v1.Command): Promise<OperationResult> {
      await options.prepareNginx();
      const config = lbSiteConfig(command.applyLb?.site ?? {}, options.address, options.switchMode);
      const result = await applyLbSite(options.nginx, config);
      return { status: Status.OK, lbApplied: { durationMs: result.durationMs, reloaded: result.reloaded, mode: result.mode } };
    },
    async waitDrained(command: cutover.v1.Command): Promise<OperationResult> {
      const request = command.waitDrained ?? {};
      const current = (await readLbSite(options.nginx, request.app ?? "")).serving;
      if (!current) return { status: Status.REJECTED, errorCode: "ERR_LB_NO_SITE", message: `no load-balancer site for ${request.app} on this host` };
      const result = await waitDrained(options.nginx, current, request.hosts ?? [], request.timeoutMs || 30_000);
      return { status: Status.OK, drained: { drained: result.drained, inFlight: result.inFlight, waitedMs: result.waitedMs } };
    },
  };
}

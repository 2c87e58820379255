import { checkSiteClaims, pretestSwitch, readLivePort, removeSite, switchSite, tlsFingerprint, warmSite, type NginxRunner, type SiteConfig, type SwitchMode, type SwitchResult, type VirtualHost } from "../nginx/index.js";
import type { AppDefinition } from "./definition.js";
import type { TlsFileStore } from "./tls-files.js";

/** What a switch reports to the transaction. */
export type ProxySwitch = Pick<SwitchResult, "durationMs" | "mode" | "reloaded" | "handoverMs" | "persisted">;

/**
 * What the local transaction needs from the host's proxy (NginxAppProxy below;
 * unit tests use a fake).
 */
export interface AppProxy {
  /** Makes sure the proxy runs (the managed nginx is started or adopted); idempotent. */
  prepare(): Promise<void>;
  /**
   * Throws, before a deploy changes anything, when the proxy could not serve `definition`:
   * a server name or port another site of this host holds (ERR_NGINX_VHOST_CLASH), a TLS
   * secret this agent does not hold. Changes nothing.
   */
  admit(definition: AppDefinition): void;
  /**
   * Points the app's proxy at `port` (which passed its health gate) and proves
   * it through the proxy. On failure it puts the previous config back and
   * throws; an error with `rollbackError` set could not, and the proxy may
   * serve `port`.
   */
  switchTo(definition: AppDefinition, port: number, options?: { forceReload?: boolean }): Promise<ProxySwitch>;
  /**
   * While `port` boots: tests the config switchTo(definition, port) would load, so the
   * switch does not wait for the test (a reload switch's nginx -t). Never rejects and
   * changes nothing live: a pretest that failed or did not happen leaves the switch to test.
   */
  pretest(definition: AppDefinition, port: number): Promise<void>;
  /**
   * Just before switchTo(definition, port): readies the proxy's way to `port` (a live
   * switch's kept connections). Never rejects and changes no routing: a warm-up that did
   * not happen costs the switch time, not correctness.
   */
  warm(definition: AppDefinition, port: number): Promise<void>;
  /** The port the app's proxy serves (or, not running, would serve once started); null when unknown. */
  serving(app: string): Promise<number | null>;
  /** Removes the app's site (tested without it, then reloaded); false when there was none. Throws with nothing removed on failure. */
  remove(app: string): Promise<boolean>;
}

export interface NginxAppProxyOptions {
  nginx: NginxRunner;
  /** This host's address: nginx listens on it and the app colors too. */
  address: string;
  switchMode: SwitchMode;
  prepare(): Promise<void>;
  /** Where TLS certificates and keys are for nginx (secrets written to files). */
  tlsFiles: TlsFileStore;
}

/** The app sites of this host's nginx (nginx/switch.ts, nginx/live-port.ts). */
export class NginxAppProxy implements AppProxy {
  constructor(private readonly options: NginxAppProxyOptions) {}

  prepare(): Promise<void> {
    return this.options.prepare();
  }

  admit(definition: AppDefinition): void {
    checkSiteClaims(this.options.nginx, this.site(definition, definition.bluePort));
  }

  switchTo(definition: AppDefinition, port: number, options: { forceReload?: boolean } = {}): Promise<SwitchResult> {
    const check = definition.health.check;
    return switchSite(this.options.nginx, this.site(definition, port), {
      confirmPath: check.kind === "http" ? check.path : "/",
      expectStatus: check.kind === "http" ? check.expectStatus : undefined,
      forceReload: options.forceReload,
    });
  }

  async pretest(definition: AppDefinition, port: number): Promise<void> {
    await pretestSwitch(this.options.nginx, this.site(definition, port)).catch(() => null);
  }

  async warm(definition: AppDefinition, port: number): Promise<void> {
    const check = definition.health.check;
    await warmSite(this.options.nginx, this.site(definition, port), { confirmPath: check.kind === "http" ? check.path : "/" }).catch(() => null);
  }

  async serving(app: string): Promise<number | null> {
    const reading = await readLivePort(this.options.nginx, app).catch(() => undefined);
    return reading?.serving ?? null;
  }

  async remove(app: string): Promise<boolean> {
    await this.options.prepare();
    return removeSite(this.options.nginx, app);
  }

  private site(definition: AppDefinition, livePort: number): SiteConfig {
    const { address, nginx } = this.options;
    const { protocol, listenPort, directives } = definition.proxy;
    // nginx cannot say which port served a stream connection, so tcp sites switch by reload (confirmed by a connect).
    const switchMode = protocol === "tcp" ? "reload" : this.options.switchMode;
    // Without the Lua counters, an http site's requests are counted from its request log.
    const requestLog = protocol === "http" && switchMode === "reload" ? nginx.requestLogPath?.("app", definition.name) : undefined;
    return {
      app: definition.name,
      protocol,
      listenAddress: address,
      listenPort,
      upstreamAddress: address,
      livePort,
      switchMode,
      extraDirectives: directives.length ? directives : undefined,
      ...(requestLog && { requestLog }),
      ...(protocol === "http" && { virtualHost: this.virtualHost(definition) }),
    };
  }

  private virtualHost(definition: AppDefinition): VirtualHost {
    const { serverNames, defaultServer, tls, redirectHttpPort, http2 } = definition.proxy;
    const files = tls ? this.options.tlsFiles.paths(definition.name, tls) : undefined;
    return {
      serverNames,
      defaultServer,
      http2,
      ...(files && { tls: { ...files, fingerprint: tlsFingerprint(files.certificate, files.key) } }),
      ...(redirectHttpPort !== undefined && { redirectHttpPort }),
    };
  }
}

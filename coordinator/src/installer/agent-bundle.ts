import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CoordinatorKey } from "../fleet/coordinator-key.js";

/**
 * What the coordinator signs for an agent bundle: this context and the bundle's sha256 (hex),
 * `cutover.v1.agent-bundle:<sha256>`. The context keeps a bundle signature from ever reading
 * as a signed command (those are protobuf bytes) and vice versa. install.sh builds the same
 * bytes to verify (its `verify_agent`), and so must an agent that upgrades itself.
 */
export const BUNDLE_SIGNATURE_CONTEXT = "cutover.v1.agent-bundle";

export function bundleSignedBytes(sha256Hex: string): Uint8Array {
  return Buffer.from(`${BUNDLE_SIGNATURE_CONTEXT}:${sha256Hex}`, "utf8");
}

/** The one-file agent (scripts/bundle-agent.mjs) as the coordinator serves it. */
export interface SignedBundle {
  bytes: Buffer;
  sha256: string;
  /** Ed25519 signature by the coordinator's key over bundleSignedBytes(sha256), base64url. */
  signature: string;
}

/** The bundle or install.sh is not where the coordinator looks: says where, and how to make it. */
export class InstallerFileMissing extends Error {
  readonly code = "ERR_AGENT_BUNDLE_MISSING";
}

const BUNDLE_FILE = "cutover-agent.mjs";
const INSTALLER_FILE = "install.sh";

/**
 * Where `cutover server` looks for the bundle without --agent-bundle: beside the running
 * code when that is the one-file CLI (dist/cutover.mjs, so dist/cutover-agent.mjs), else the
 * checkout's dist/ (this file is coordinator/dist/installer/agent-bundle.js there).
 */
export function defaultBundleCandidates(moduleUrl = import.meta.url): string[] {
  const here = dirname(fileURLToPath(moduleUrl));
  return [join(here, BUNDLE_FILE), resolve(here, "..", "..", "..", "dist", BUNDLE_FILE)];
}

/** install.sh beside the bundle (a directory the operator filled), else one up (a checkout's dist/..). */
export function defaultInstallerCandidates(bundlePath: string): string[] {
  return [join(dirname(bundlePath), INSTALLER_FILE), resolve(dirname(bundlePath), "..", INSTALLER_FILE)];
}

export interface InstallerSourceOptions {
  key: CoordinatorKey;
  /** --agent-bundle; undefined: the first of defaultBundleCandidates() that exists. */
  bundlePath?: string;
  /** --installer; undefined: the first of defaultInstallerCandidates() that exists. */
  installerPath?: string;
  /** The TLS certificate the coordinator serves (PEM), for the pins a join command carries. */
  tlsCert?: string;
}

/** Throws InstallerFileMissing, at start, when a file named by a flag is not there. */
export function checkInstallerPaths(paths: { bundlePath?: string; installerPath?: string }): void {
  for (const [flag, path] of [["--agent-bundle", paths.bundlePath], ["--installer", paths.installerPath]] as const) {
    if (path !== undefined && !existsSync(path)) {
      throw new InstallerFileMissing(`${flag} ${path}: no such file${flag === "--agent-bundle" ? " (build it with `node scripts/bundle-agent.mjs`, which writes dist/cutover-agent.mjs)" : ""}`);
    }
  }
}

/** What `cutover hosts join-command` and `hosts bootstrap` need to know about what is served. */
export interface InstallerManifest {
  bundle: { sha256: string; size: number; signature: string };
  installer: { sha256: string; size: number };
  /** The coordinator's Ed25519 public key (raw, base64url): what the bundle's signature is checked with. */
  publicKey: string;
  /** base64url sha256 of publicKey, as enrollment tokens name it. */
  keyId: string;
  /** null over plain http. `publicKeySha256`: base64 sha256 of the certificate's SPKI, curl's `--pinnedpubkey sha256//…`. */
  tls: { fingerprint: string; publicKeySha256: string } | null;
}

/** base64 sha256 of a certificate's SubjectPublicKeyInfo (DER): what curl --pinnedpubkey compares. */
export function publicKeyPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/**
 * The agent bundle and install.sh the coordinator serves, read from disk and signed when they
 * change (a rebuilt bundle is served without a restart). Missing files are reported per
 * request, so a coordinator without them runs everything else as before.
 */
export class InstallerSource {
  private cached: { key: string; bundle: SignedBundle } | undefined;
  private readonly tls: InstallerManifest["tls"];

  constructor(private readonly options: InstallerSourceOptions) {
    this.tls = options.tlsCert ? { fingerprint: `sha256:${new X509Certificate(options.tlsCert).fingerprint256}`, publicKeySha256: publicKeyPin(options.tlsCert) } : null;
  }

  bundle(): SignedBundle {
    const path = this.bundlePath();
    const stat = statSync(path);
    const key = `${path}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    if (this.cached?.key !== key) this.cached = { key, bundle: this.sign(readFileSync(path)) };
    return this.cached.bundle;
  }

  /** Signs bundle bytes with the coordinator key (the served bundle, or one an admin uploads for `agents upgrade`). */
  sign(bytes: Buffer): SignedBundle {
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    return { bytes, sha256, signature: Buffer.from(this.options.key.sign(bundleSignedBytes(sha256))).toString("base64url") };
  }

  installer(): Buffer {
    return readFileSync(this.installerPath());
  }

  manifest(): InstallerManifest {
    const bundle = this.bundle();
    const installer = this.installer();
    return {
      bundle: { sha256: bundle.sha256, size: bundle.bytes.length, signature: bundle.signature },
      installer: { sha256: createHash("sha256").update(installer).digest("hex"), size: installer.length },
      publicKey: Buffer.from(this.options.key.publicKey).toString("base64url"),
      keyId: this.options.key.keyId,
      tls: this.tls,
    };
  }

  private bundlePath(): string {
    if (this.options.bundlePath !== undefined) {
      if (!existsSync(this.options.bundlePath)) throw new InstallerFileMissing(`the coordinator's agent bundle ${this.options.bundlePath} (--agent-bundle) is gone: rebuild it with \`node scripts/bundle-agent.mjs\` or restart \`cutover server\` with --agent-bundle FILE`);
      return this.options.bundlePath;
    }
    const candidates = defaultBundleCandidates();
    const found = candidates.find((path) => existsSync(path));
    if (!found) {
      throw new InstallerFileMissing(`the coordinator has no agent bundle to serve (looked for ${candidates.join(" and ")}): build it with \`node scripts/bundle-agent.mjs\` in the checkout, or start \`cutover server\` with --agent-bundle FILE`);
    }
    return found;
  }

  private installerPath(): string {
    if (this.options.installerPath !== undefined) {
      if (!existsSync(this.options.installerPath)) throw new InstallerFileMissing(`the coordinator's install.sh ${this.options.installerPath} (--installer) is gone: restart \`cutover server\` with --installer FILE`);
      return this.options.installerPath;
    }
    const candidates = defaultInstallerCandidates(this.bundlePath());
    const found = candidates.find((path) => existsSync(path));
    if (!found) throw new InstallerFileMissing(`the coordinator has no install.sh to serve (looked for ${candidates.join(" and ")}): put it beside the agent bundle, or start \`cutover server\` with --installer FILE`);
    return found;
  }
}

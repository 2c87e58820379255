import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@cutover/log";
import { agentEndpoint, coordinatorEndpoint, type CoordinatorRules } from "../config.js";
import { writeFileAtomic } from "../state/atomic-write.js";

/** The coordinators the last verified Welcome listed (Welcome.members), kept for the next start. */
export const MEMBERS_FILE = "members.json";

interface MembersFile {
  /** Agent endpoints (ws(s)://host:port/v1/agent), the leader of the time first. */
  members: string[];
}

export interface CoordinatorUrlsOptions {
  /** `--coordinator` / `coordinator:`, already checked (config.ts). */
  configured: string[];
  /** The rules the configured URLs met: a learned one must meet them too. */
  rules: CoordinatorRules;
  stateDir: string;
  log: Logger;
}

/**
 * Where the agent may dial: the coordinators it was configured with, then the members the last
 * Welcome whose signature verified listed (STATE/members.json, so a restarted agent still knows
 * a coordinator added after it was configured). A Refusal is not signed: its leader_url is
 * followed only when it is one of these, so nobody on the link can send the agent elsewhere.
 */
export class CoordinatorUrls {
  private learned: string[];
  private readonly path: string;
  /** The learned list as STATE/members.json holds it (what the last successful write wrote). */
  private saved: string;

  constructor(private readonly options: CoordinatorUrlsOptions) {
    this.path = join(options.stateDir, MEMBERS_FILE);
    const saved = this.readSaved();
    this.saved = JSON.stringify(saved);
    this.learned = this.allowed(saved, "saved in STATE/members.json");
  }

  /** Every URL to try, in order: the configured ones, then the learned ones not among them. */
  all(): string[] {
    return [...new Set([...this.options.configured, ...this.learned])];
  }

  /** The endpoint `url` names when it is one this agent trusts, else undefined. */
  trusted(url: string): string | undefined {
    let endpoint: string;
    try {
      endpoint = agentEndpoint(url);
    } catch {
      return undefined;
    }
    return this.all().includes(endpoint) ? endpoint : undefined;
  }

  /**
   * Takes Welcome.members of a Welcome whose signature verified: they replace what was learned
   * before (in memory at once, on disk when they changed). A URL the rules refuse is left out.
   */
  async learn(members: readonly string[]): Promise<void> {
    const learned = this.allowed(members, "listed by the coordinator");
    const key = JSON.stringify(learned);
    if (key !== JSON.stringify(this.learned)) this.options.log.info("coordinators of the fleet", { members: learned.join(",") || "(none)" });
    this.learned = learned;
    if (key === this.saved) return;
    const file: MembersFile = { members: learned };
    await writeFileAtomic(this.path, JSON.stringify(file, null, 2), 0o600);
    this.saved = key;
  }

  /** The endpoints of `urls` the rules allow; each refused one is logged. */
  private allowed(urls: readonly string[], source: string): string[] {
    const endpoints: string[] = [];
    for (const url of urls) {
      try {
        endpoints.push(coordinatorEndpoint(url, this.options.rules));
      } catch (error) {
        this.options.log.warn(`not dialling a coordinator ${source}`, { url, reason: (error as Error).message });
      }
    }
    return [...new Set(endpoints)];
  }

  private readSaved(): string[] {
    if (!existsSync(this.path)) return [];
    try {
      const file = JSON.parse(readFileSync(this.path, "utf8")) as Partial<MembersFile>;
      if (Array.isArray(file.members) && file.members.every((url) => typeof url === "string")) return file.members;
    } catch {
      // Unreadable: as if absent (the configured coordinators still work; the next Welcome rewrites it).
    }
    this.options.log.warn("ignoring STATE/members.json: not a list of coordinator URLs", { path: this.path });
    return [];
  }
}

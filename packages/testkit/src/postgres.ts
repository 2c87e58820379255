import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./net.js";

/** A throwaway PostgreSQL cluster on a loopback port, made with initdb and run by pg_ctl. */
export interface PostgresCluster {
  /** postgres://cutover@127.0.0.1:PORT/DATABASE */
  url(database?: string): string;
  /** A new, empty database on the cluster; answers its URL. */
  createDatabase(): string;
  /** Runs `sql` with psql on `databaseUrl`; answers its rows unaligned, one per line. */
  query(databaseUrl: string, sql: string): string;
  /** Stops the server (immediate shutdown) and removes its files. */
  stop(): void;
}

/** The directory holding initdb and pg_ctl (Debian puts them under /usr/lib/postgresql/N/bin), or undefined. */
export function postgresBinaries(): string | undefined {
  const debian = "/usr/lib/postgresql";
  const versions = existsSync(debian) ? readdirSync(debian).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) if (existsSync(join(debian, version, "bin", "pg_ctl"))) return join(debian, version, "bin");
  const found = spawnSync("sh", ["-c", "command -v pg_ctl"], { encoding: "utf8" }).stdout.trim();
  return found ? join(found, "..") : undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  return postgresBinaries() ? undefined : "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)";
}

/** initdb refuses to run as root: as root, the cluster belongs to Debian's postgres user. */
function asClusterOwner(command: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

let databases = 0;

/** Starts a new cluster; the caller stops it (a test: in `test.after.always`). */
export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinaries();
  if (!bin) throw new Error(postgresMissing());
  const dir = mkdtempSync(join(tmpdir(), "cutover-pg-"));
  if (userInfo().uid === 0) {
    const owner = execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim();
    chownSync(dir, Number(owner), Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim()));
  }
  const data = join(dir, "data");
  const run = (command: string, args: string[]) => {
    const [file, argv] = asClusterOwner(join(bin, command), args);
    execFileSync(file, argv, { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
  };
  run("initdb", ["-D", data, "-U", "cutover", "--auth=trust", "--locale=C", "--encoding=UTF8", "--no-sync"]);
  const port = await freePort();
  // fsync off: a test cluster need not survive a power cut, and the tests share two cores' disks.
  run("pg_ctl", ["-D", data, "-l", join(dir, "server.log"), "-w", "-t", "120", "-o", `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`, "start"]);
  const url = (database = "postgres") => `postgres://cutover@127.0.0.1:${port}/${database}`;
  return {
    url,
    createDatabase() {
      const name = `cutover_${process.pid}_${++databases}`;
      execFileSync(join(bin, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "cutover", name], { stdio: ["ignore", "pipe", "pipe"] });
      return url(name);
    },
    query(databaseUrl, sql) {
      return execFileSync(join(bin, "psql"), ["-At", "-v", "ON_ERROR_STOP=1", "-d", databaseUrl, "-c", sql], { encoding: "utf8" });
    },
    stop() {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

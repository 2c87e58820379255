// Hosts installed by install.sh (its --root/--no-systemd test mode): each agent runs from an
// installed file under install.sh's wrapper, which restarts it, so `cutover agents upgrade` can
// replace it as on a real host.
import type { HostView } from "@cutover/coordinator";
import type { CoordinatorProcess, TestContext } from "../harness/fleet.js";
import { hostRoot, runInstaller } from "./host-root.js";

export interface InstalledHost {
  name: string;
  root: string;
  address: string;
}

/** A random 127.x.y.z address, so test files running side by side do not meet. */
export function loopback(): string {
  return `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 250)}`;
}

/** Installs `bundle` on one host per entry of `labels` (named web-1..), each enrolled with its own token and online when this resolves. */
export async function installHosts(t: TestContext & { teardown(fn: () => void): void }, coordinator: CoordinatorProcess, bundle: string, labels: string[]): Promise<InstalledHost[]> {
  const hosts: InstalledHost[] = [];
  for (const [i, hostLabels] of labels.entries()) {
    const host = { name: `web-${i + 1}`, root: hostRoot(t), address: loopback() };
    const token = await coordinator.enrollmentToken();
    const install = await runInstaller(t, [
      "--root", host.root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath,
      "--coordinator", coordinator.url, "--token", token, "--name", host.name, "--labels", hostLabels, "--address", host.address, "--nginx", "managed",
    ]);
    if (install.exitCode !== 0) throw new Error(`install.sh on ${host.name} exited ${install.exitCode}:\n${install.stdout}\n${install.stderr}`);
    hosts.push(host);
  }
  return hosts;
}

/** `cutover hosts --json`, by name. */
export async function hostList(coordinator: CoordinatorProcess): Promise<HostView[]> {
  const result = await coordinator.cli(["hosts", "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as HostView[]).sort((a, b) => a.name.localeCompare(b.name));
}

import { parse as parseYaml } from "yaml";

/**
 * An Ansible inventory (INI or YAML) as `cutover hosts bootstrap` uses it. The subset read:
 * groups with `hosts`, `vars` and `children`; host and group variables, host variables
 * winning over those of its groups, inner groups over outer ones, `all` last. Not read:
 * host ranges (`web[01:20]`), dynamic inventories, `host_vars/`/`group_vars/` directories.
 */
export interface InventoryHost {
  /** The inventory name: the host's name in the fleet. */
  name: string;
  /** Groups it is listed under directly, in inventory order (never `all` or `ungrouped`). */
  groups: string[];
  /** Its variables, group variables merged in. */
  vars: Record<string, string>;
}

export interface Inventory {
  hosts: InventoryHost[];
  /** Every group with the hosts in it, directly or through children. */
  groups: Map<string, Set<string>>;
}

export class InventoryError extends Error {}

const IMPLICIT_GROUPS = new Set(["all", "ungrouped"]);

/** Group membership and variables as read, before variables are merged. */
class Builder {
  readonly hostOrder: string[] = [];
  readonly hostVars = new Map<string, Record<string, string>>();
  readonly directGroups = new Map<string, string[]>();
  readonly groupVars = new Map<string, Record<string, string>>();
  readonly children = new Map<string, Set<string>>();
  readonly groupHosts = new Map<string, Set<string>>();

  group(name: string): void {
    if (!this.groupHosts.has(name)) this.groupHosts.set(name, new Set());
  }

  host(name: string, group: string, vars: Record<string, string>): void {
    if (!this.hostVars.has(name)) {
      this.hostOrder.push(name);
      this.hostVars.set(name, {});
      this.directGroups.set(name, []);
    }
    Object.assign(this.hostVars.get(name)!, vars);
    this.group(group);
    this.groupHosts.get(group)!.add(name);
    const direct = this.directGroups.get(name)!;
    if (!IMPLICIT_GROUPS.has(group) && !direct.includes(group)) direct.push(group);
  }

  child(parent: string, child: string): void {
    this.group(parent);
    this.group(child);
    if (!this.children.has(parent)) this.children.set(parent, new Set());
    this.children.get(parent)!.add(child);
  }

  vars(group: string, vars: Record<string, string>): void {
    this.group(group);
    this.groupVars.set(group, { ...this.groupVars.get(group), ...vars });
  }

  /** Hosts of `group` and of its children, and how deep each group is below `all`. */
  build(): Inventory {
    const members = (group: string, seen = new Set<string>()): Set<string> => {
      if (seen.has(group)) throw new InventoryError(`group ${group} is its own child (through ${[...seen].join(" → ")})`);
      const next = new Set(seen).add(group);
      const all = new Set(this.groupHosts.get(group) ?? []);
      for (const child of this.children.get(group) ?? []) for (const host of members(child, next)) all.add(host);
      return all;
    };
    const groups = new Map<string, Set<string>>();
    for (const group of this.groupHosts.keys()) groups.set(group, members(group));
    groups.set("all", new Set(this.hostOrder));
    // A group's depth: 0 for `all`, one more than its deepest parent; variables are merged outer to inner.
    const parents = new Map<string, string[]>();
    for (const [parent, kids] of this.children) for (const kid of kids) parents.set(kid, [...(parents.get(kid) ?? []), parent]);
    const depth = (group: string): number => (group === "all" ? 0 : 1 + Math.max(0, ...(parents.get(group) ?? []).map(depth)));
    const hosts = this.hostOrder.map((name) => {
      const containing = [...groups.entries()].filter(([, set]) => set.has(name)).map(([group]) => group);
      containing.sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
      const vars: Record<string, string> = {};
      for (const group of containing) Object.assign(vars, this.groupVars.get(group));
      Object.assign(vars, this.hostVars.get(name));
      return { name, groups: this.directGroups.get(name)!, vars };
    });
    return { hosts, groups };
  }
}

/** `a b="c d" e='f'` → words, quotes removed (Ansible INI host lines and `:vars`). */
function words(line: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:([^\s"'=]+)=(?:"([^"]*)"|'([^']*)'|(\S*))|("[^"]*"|'[^']*'|\S+))/y;
  let match: RegExpExecArray | null;
  let rest = line.trimEnd();
  while (rest.trim() !== "" && (match = re.exec(rest)) !== null) {
    out.push(match[1] !== undefined ? `${match[1]}=${match[2] ?? match[3] ?? match[4] ?? ""}` : match[5]!.replace(/^(["'])(.*)\1$/, "$2"));
    rest = rest.slice(re.lastIndex);
    re.lastIndex = 0;
  }
  if (rest.trim() !== "") throw new InventoryError(`${where}: cannot read "${rest.trim()}"`);
  return out;
}

function keyValues(items: string[], where: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const item of items) {
    const at = item.indexOf("=");
    if (at <= 0) throw new InventoryError(`${where}: "${item}" is not key=value`);
    vars[item.slice(0, at)] = item.slice(at + 1);
  }
  return vars;
}

/** Ansible's INI inventory: `[group]` host lines, `[group:vars]` and `[group:children]`. */
export function parseIniInventory(text: string, file = "inventory"): Inventory {
  const builder = new Builder();
  let section = { group: "ungrouped", kind: "hosts" as "hosts" | "vars" | "children" };
  text.split(/\r?\n/).forEach((raw, index) => {
    const where = `${file}:${index + 1}`;
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([^\]:\s]+)(?::(vars|children))?\]$/.exec(line);
    if (header) {
      section = { group: header[1]!, kind: (header[2] as "vars" | "children" | undefined) ?? "hosts" };
      builder.group(section.group);
      return;
    }
    if (line.startsWith("[")) throw new InventoryError(`${where}: "${line}" is not a section header ([group], [group:vars] or [group:children])`);
    if (section.kind === "vars") {
      // `key = value`: the rest of the line is the value (quotes around it dropped).
      const pair = /^([^=\s]+)\s*=\s*(.*)$/.exec(line);
      if (!pair) throw new InventoryError(`${where}: "${line}" is not key=value`);
      builder.vars(section.group, { [pair[1]!]: pair[2]!.replace(/^(["'])(.*)\1$/, "$2") });
    } else if (section.kind === "children") {
      builder.child(section.group, line);
    } else {
      const [name, ...vars] = words(line, where);
      if (/\[.*:.*\]/.test(name!)) throw new InventoryError(`${where}: host ranges (${name}) are not supported: list the hosts one per line`);
      builder.host(name!, section.group, keyValues(vars, where));
    }
  });
  return builder.build();
}

const scalar = (value: unknown): string => (typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value));

function varsOf(node: unknown, where: string): Record<string, string> {
  if (node === null || node === undefined) return {};
  if (typeof node !== "object" || Array.isArray(node)) throw new InventoryError(`${where} must be a mapping of variables`);
  return Object.fromEntries(Object.entries(node as Record<string, unknown>).map(([k, v]) => [k, scalar(v)]));
}

/** Ansible's YAML inventory: groups (usually under `all`) with `hosts`, `vars` and `children`. */
export function parseYamlInventory(text: string, file = "inventory"): Inventory {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new InventoryError(`${file}: not valid YAML: ${(error as Error).message}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new InventoryError(`${file}: an inventory is a mapping of groups (e.g. all: {children: …})`);
  const builder = new Builder();
  const group = (name: string, node: unknown, path: string) => {
    builder.group(name);
    if (node === null || node === undefined) return;
    if (typeof node !== "object" || Array.isArray(node)) throw new InventoryError(`${file}: ${path} must be a mapping with hosts, vars or children`);
    const { hosts, vars, children, ...other } = node as Record<string, unknown>;
    const unknown = Object.keys(other);
    if (unknown.length > 0) throw new InventoryError(`${file}: ${path}: unknown key ${unknown.join(", ")} (a group has hosts, vars and children)`);
    if (hosts !== null && hosts !== undefined && (typeof hosts !== "object" || Array.isArray(hosts))) throw new InventoryError(`${file}: ${path}.hosts must be a mapping of host names`);
    for (const [host, hostVars] of Object.entries((hosts ?? {}) as Record<string, unknown>)) {
      builder.host(host, name, varsOf(hostVars, `${path}.hosts.${host}`));
    }
    builder.vars(name, varsOf(vars, `${path}.vars`));
    if (children !== null && children !== undefined) {
      if (typeof children !== "object" || Array.isArray(children)) throw new InventoryError(`${file}: ${path}.children must be a mapping of groups`);
      for (const [child, childNode] of Object.entries(children as Record<string, unknown>)) {
        builder.child(name, child);
        group(child, childNode, `${path}.children.${child}`);
      }
    }
  };
  for (const [name, node] of Object.entries(doc as Record<string, unknown>)) group(name, node, name);
  return builder.build();
}

/** By the file's name: .yml/.yaml are YAML, anything else INI (as ansible's own plugins guess). */
export function parseInventory(text: string, file: string): Inventory {
  return /\.ya?ml$/i.test(file) ? parseYamlInventory(text, file) : parseIniInventory(text, file);
}

/** `--limit a,b` (or `a:b`): the hosts in any of those groups, or with those names. */
export function limitHosts(inventory: Inventory, limit: string | undefined): InventoryHost[] {
  if (limit === undefined) return inventory.hosts;
  const names = new Set<string>();
  for (const part of limit.split(/[,:]/).map((s) => s.trim()).filter(Boolean)) {
    const group = inventory.groups.get(part);
    if (group) for (const host of group) names.add(host);
    else if (inventory.hosts.some((h) => h.name === part)) names.add(part);
    else throw new InventoryError(`--limit ${part}: no such group or host in the inventory (groups: ${[...inventory.groups.keys()].join(", ")})`);
  }
  return inventory.hosts.filter((h) => names.has(h.name));
}

/** Ansible's booleans (`yes`, `true`, `1`, any case). */
export function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(yes|true|on|1|y)$/i.test(value.trim());
}

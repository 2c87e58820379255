import test from "ava";
import { InventoryError, limitHosts, parseIniInventory, parseInventory, parseYamlInventory } from "./inventory.js";
import { installCommand, scpArgv, sshArgv, sshTarget } from "./ssh-commands.js";

const INI = `# two groups, a parent, variables at every level
ungrouped-1 ansible_host=10.0.0.9

[web]
web-1 ansible_host=10.0.0.1 ansible_port=2222
web-2 ansible_host=10.0.0.2 cutover_install_args="--nginx managed --switch reload"

[db]
db-1 ansible_host=10.0.0.3 ansible_user='admin'
web-2

[prod:children]
web
db

[prod:vars]
ansible_become = yes
ansible_user=deploy

[web:vars]
ansible_user=www

[all:vars]
ansible_port=22
ansible_user=root
`;

const YAML = `all:
  hosts:
    ungrouped-1: { ansible_host: 10.0.0.9 }
  vars:
    ansible_port: 22
    ansible_user: root
  children:
    prod:
      vars: { ansible_become: yes, ansible_user: deploy }
      children:
        web:
          vars: { ansible_user: www }
          hosts:
            web-1: { ansible_host: 10.0.0.1, ansible_port: 2222 }
            web-2: { ansible_host: 10.0.0.2, cutover_install_args: "--nginx managed --switch reload" }
        db:
          hosts:
            db-1: { ansible_host: 10.0.0.3, ansible_user: admin }
            web-2:
`;

const EXPECTED = [
  { name: "ungrouped-1", groups: [], vars: { ansible_host: "10.0.0.9", ansible_port: "22", ansible_user: "root" } },
  { name: "web-1", groups: ["web"], vars: { ansible_host: "10.0.0.1", ansible_port: "2222", ansible_user: "www", ansible_become: "yes" } },
  { name: "web-2", groups: ["web", "db"], vars: { ansible_host: "10.0.0.2", ansible_port: "22", ansible_user: "www", ansible_become: "yes", cutover_install_args: "--nginx managed --switch reload" } },
  { name: "db-1", groups: ["db"], vars: { ansible_host: "10.0.0.3", ansible_port: "22", ansible_user: "admin", ansible_become: "yes" } },
];

test("an INI inventory: groups, children, and host over inner-group over outer-group over all variables", (t) => {
  const inventory = parseIniInventory(INI);
  t.deepEqual(inventory.hosts, EXPECTED);
  t.deepEqual([...inventory.groups.get("prod")!].sort(), ["db-1", "web-1", "web-2"]);
});

test("the same inventory in YAML reads the same; the file name picks the parser", (t) => {
  const yaml = parseYamlInventory(YAML);
  // YAML lists a group's hosts before its children's: the same hosts, another order.
  t.deepEqual([...yaml.hosts].sort((a, b) => a.name.localeCompare(b.name)), [...EXPECTED].sort((a, b) => a.name.localeCompare(b.name)));
  t.deepEqual(parseInventory(YAML, "hosts.yml").hosts, yaml.hosts);
  t.deepEqual(parseInventory(INI, "hosts.ini").hosts, parseIniInventory(INI).hosts);
});

test("--limit takes groups (children included) and host names", (t) => {
  const inventory = parseIniInventory(INI);
  t.deepEqual(limitHosts(inventory, "db").map((h) => h.name), ["web-2", "db-1"]);
  t.deepEqual(limitHosts(inventory, "prod").map((h) => h.name), ["web-1", "web-2", "db-1"]);
  t.deepEqual(limitHosts(inventory, "web-1,ungrouped-1").map((h) => h.name), ["ungrouped-1", "web-1"]);
  t.deepEqual(limitHosts(inventory, undefined).length, 4);
  t.throws(() => limitHosts(inventory, "cache"), { instanceOf: InventoryError, message: /--limit cache: no such group or host in the inventory \(groups: / });
});

const bad = test.macro({
  exec(t, text: string, yaml: boolean, message: RegExp) {
    t.throws(() => (yaml ? parseYamlInventory(text, "inv.yml") : parseIniInventory(text, "inv.ini")), { instanceOf: InventoryError, message });
  },
  title: (title = "") => `an inventory with ${title} is refused, naming where`,
});
test("a broken section header", bad, "[web\nweb-1", false, /^inv\.ini:1: "\[web" is not a section header/);
test("a host variable without a value", bad, "[web]\nweb-1 ansible_port", false, /^inv\.ini:2: "ansible_port" is not key=value/);
test("a host range", bad, "[web]\nweb[01:20]", false, /^inv\.ini:2: host ranges \(web\[01:20\]\) are not supported/);
test("a group that is its own child", bad, "[a:children]\nb\n[b:children]\na", false, /group a is its own child/);
test("a YAML key a group does not have", bad, "all:\n  host:\n    web-1:", true, /^inv\.yml: all: unknown key host/);
test("YAML that is not a mapping", bad, "- web-1", true, /^inv\.yml: an inventory is a mapping of groups/);

test("ssh and scp argv from an inventory host: port, user, key, config; become runs the installer under sudo -n", (t) => {
  const [, web1] = parseIniInventory(INI).hosts;
  const target = sshTarget(web1!, { identity: "/keys/id", config: "/cfg" });
  t.deepEqual(target, { host: "10.0.0.1", port: 2222, user: "www", identity: "/keys/id", config: "/cfg", become: true });
  t.deepEqual(sshArgv(target, "true"), ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-F", "/cfg", "-i", "/keys/id", "-p", "2222", "--", "www@10.0.0.1", "true"]);
  t.deepEqual(scpArgv(target, ["a", "b"], "/tmp/d"), ["scp", "-q", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-F", "/cfg", "-i", "/keys/id", "-P", "2222", "--", "a", "b", "www@10.0.0.1:/tmp/d/"]);
  t.is(installCommand(target, "/tmp/d", ["--token", "cte_a.b", "--labels", "group=web"]), "sudo -n bash /tmp/d/install.sh --token cte_a.b --labels group=web; rc=$?; sudo -n rm -rf /tmp/d; exit $rc");
  t.is(installCommand({ ...target, become: false }, "/tmp/d", ["--name", "it's"]), "bash /tmp/d/install.sh --name 'it'\\''s'; rc=$?; rm -rf /tmp/d; exit $rc");
  t.deepEqual(scpArgv({ host: "::1", become: false }, ["a"], "/d"), ["scp", "-q", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "--", "a", "[::1]:/d/"]);
  t.throws(() => sshTarget({ name: "x", groups: [], vars: { ansible_port: "22a" } }, {}), { message: /x: ansible_port "22a" is not a port/ });
});

#!/bin/bash
# install.sh: puts cutover-agent on a Debian/Ubuntu host as a systemd service, or
# takes it off again. Run as root. Every flag and file is described in docs/install.md.
#
#   install.sh --coordinator URL --token T [--name N] [--labels k=v,...] [--address IP] ...
#   install.sh --uninstall [--purge]
#
# It is idempotent: each step compares what is there with what should be there and
# acts only on a difference, so a second run with the same settings reports
# "no changes", and changed settings rewrite only what changed and restart the agent.
# Checks that can fail (root, OS, Node.js, the agent file, the coordinator) run
# before anything is written.
set -eu
set -o pipefail

readonly PROG="install.sh"
readonly UNIT_NAME="cutover-agent.service"
readonly SERVICE_USER="cutover"
readonly MIN_NODE_MAJOR=20
readonly NGINX_PACKAGES="nginx-light libnginx-mod-http-lua libnginx-mod-stream"
readonly NGINX_MODULE_DIRS="/usr/share/nginx/modules /usr/lib/nginx/modules"
readonly HEALTH_TIMEOUT_MS=5000
# --fetch-agent: how long the bundle's download may take, and the most it may weigh.
readonly FETCH_TIMEOUT_MS=120000
readonly MAX_BUNDLE_BYTES=$((64 * 1024 * 1024))
# What the coordinator signs for a bundle, before its sha256 (coordinator/src/installer/agent-bundle.ts).
readonly BUNDLE_SIGNATURE_CONTEXT="cutover.v1.agent-bundle"
readonly DEFAULT_ENROLL_TIMEOUT=60
readonly STOP_TIMEOUT=10
# The first line after the shebang of a bundle made by scripts/bundle-agent.mjs.
readonly BUNDLE_MARK="cutover-agent: one-file build"
# Node.js flags the wrapper runs the agent with (bench/footprint.mjs reads this line, so
# the footprint measured is the installed one; docs/install.md says why each is there).
# --lite-mode: V8 without its optimizing compilers, 7-8 MB less RSS for an agent that waits on I/O.
readonly AGENT_NODE_FLAGS="--lite-mode"
# What the agent logs once its session with the coordinator is up.
# The agent exits with this code after it replaced its own file (agent/src/upgrade): the
# wrapper starts it again. CUTOVER_AGENT_WRAPPER tells the agent which wrapper runs it.
readonly EXIT_UPGRADE=75
readonly WRAPPER_PROTOCOL=1
readonly ONLINE_PATTERN='coordinator link .*to=online'

# Paths as they are on the target host; under --root each is prefixed (see at()).
readonly LIB_DIR=/usr/local/lib/cutover
readonly AGENT_JS=$LIB_DIR/cutover-agent.mjs
readonly WRAPPER=/usr/local/bin/cutover-agent
readonly CONF_DIR=/etc/cutover
readonly CONFIG=$CONF_DIR/agent.yaml
readonly UNIT_FILE=/etc/systemd/system/$UNIT_NAME
readonly DATA_DIR=/var/lib/cutover
readonly STATE_DIR=$DATA_DIR/agent
readonly LOG_DIR=/var/log/cutover
# Only with --no-systemd: the background agent's pid and output.
readonly PID_FILE=/run/cutover-agent.pid
readonly AGENT_LOG=$LOG_DIR/agent.log
# What the agent itself writes outside its state dir in `--nginx system` mode.
readonly NGINX_CONF_DIR=/etc/nginx/conf.d
readonly AGENT_RUN_DIR=/run/cutover
# Makes AGENT_RUN_DIR again at every boot (/run is a tmpfs): the host's nginx binds the
# control socket there before the agent starts.
readonly TMPFILES_CONF=/etc/tmpfiles.d/cutover-agent.conf

usage() {
  cat <<'EOF'
Usage: install.sh --coordinator URL --token TOKEN [options]   install or update the agent
       install.sh --uninstall [--purge] [options]             remove it

Settings (written to /etc/cutover/agent.yaml; on a re-run, omitted ones keep their value):
  --coordinator URL     coordinator address, http(s):// or ws(s)://
  --token TOKEN         one-time enrollment token from `cutover token create`
                        (needed until the agent has enrolled)
  --name NAME           fleet-unique host name (default: this host's name)
  --labels k=v,...      labels app specs select hosts by, e.g. role=geoip,zone=a
  --address IP          where this host's proxy listens (default: the agent picks
                        the primary interface's IPv4)
  --nginx system|managed   the host's nginx (default) or one the agent runs itself
  --switch auto|reload|live  how nginx is switched (default auto)
  --pin FINGERPRINT     SHA-256 fingerprint of the coordinator's TLS certificate
                        (alias --ca-fingerprint); checked now, recorded for the agent
  --root-apps refuse|allow  whether the agent starts apps that would run as root (a
                        spec without run.user, or a uid-0 user); default refuse

Options:
  --agent-file FILE     the bundled agent (default: cutover-agent.mjs beside this
                        script, else dist/cutover-agent.mjs beside it)
  --fetch-agent         download the agent from the coordinator (GET /v1/agent/bundle,
                        over the --pin'ed certificate) instead; needs --coordinator-key
  --coordinator-key KEY the coordinator's Ed25519 public key (from `cutover hosts
                        join-command`): the agent must carry its signature, checked
                        with its sha256 before anything is installed
  --agent-signature SIG with --agent-file and --coordinator-key: the file's signature
  --node FILE           Node.js (>= 20) to run the agent with (default: node on PATH)
  --timeout SECONDS     how long to wait for the agent to come online (default 60)
  --uninstall           stop and remove the agent; keeps /var/lib/cutover (app data,
                        the agent's key) and the apps it runs
  --purge               with --uninstall: also stop the apps and remove their data
                        and cutover's nginx files
  --dry-run             print each action it would take; change nothing
  --root DIR            (tests) install under DIR: every path is prefixed with DIR,
                        packages are not installed, users go into DIR/etc/passwd
  --no-systemd          (tests) print the systemctl calls instead of running them and
                        run the agent in the background, pid in DIR/run/cutover-agent.pid
  -h, --help            this text

Exit codes: 0 done (or nothing to do), 1 failed (the message says why), 2 bad flags.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage_error() {
  printf '%s: %s (see install.sh --help)\n' "$PROG" "$*" >&2
  exit 2
}

# --- flags -------------------------------------------------------------------

ACTION=install
PURGE=0
DRY_RUN=0
SYSTEMD=1
ROOT=""
AGENT_FILE=""
NODE_BIN=""
FETCH_AGENT=0
COORDINATOR_KEY="" AGENT_SIGNATURE=""
TIMEOUT=$DEFAULT_ENROLL_TIMEOUT
COORDINATOR="" TOKEN="" NAME="" LABELS="" ADDRESS="" NGINX_MODE="" SWITCH_MODE="" PIN="" ROOT_APPS=""
# Which settings came from flags: the rest may come from an existing config.
GIVEN=" "

need_value() {
  if [ "$2" -lt 2 ]; then usage_error "$1 needs a value"; fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --coordinator) need_value "$1" $#; COORDINATOR=$2; GIVEN+="coordinator "; shift 2 ;;
    --token) need_value "$1" $#; TOKEN=$2; GIVEN+="token "; shift 2 ;;
    --name) need_value "$1" $#; NAME=$2; GIVEN+="name "; shift 2 ;;
    --labels) need_value "$1" $#; LABELS=$2; GIVEN+="labels "; shift 2 ;;
    --address) need_value "$1" $#; ADDRESS=$2; GIVEN+="address "; shift 2 ;;
    --nginx) need_value "$1" $#; NGINX_MODE=$2; GIVEN+="nginx "; shift 2 ;;
    --switch) need_value "$1" $#; SWITCH_MODE=$2; GIVEN+="switch "; shift 2 ;;
    --pin | --ca-fingerprint) need_value "$1" $#; PIN=$2; GIVEN+="pin "; shift 2 ;;
    --root-apps) need_value "$1" $#; ROOT_APPS=$2; GIVEN+="root-apps "; shift 2 ;;
    --agent-file) need_value "$1" $#; AGENT_FILE=$2; shift 2 ;;
    --fetch-agent) FETCH_AGENT=1; shift ;;
    --coordinator-key) need_value "$1" $#; COORDINATOR_KEY=$2; shift 2 ;;
    --agent-signature) need_value "$1" $#; AGENT_SIGNATURE=$2; shift 2 ;;
    --node) need_value "$1" $#; NODE_BIN=$2; shift 2 ;;
    --timeout) need_value "$1" $#; TIMEOUT=$2; shift 2 ;;
    --root) need_value "$1" $#; ROOT=$2; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --no-systemd) SYSTEMD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    --*=*) usage_error "write \"${1%%=*} ${1#*=}\", not \"$1\"" ;;
    *) usage_error "unknown argument \"$1\"" ;;
  esac
done

given() { case $GIVEN in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then usage_error "--purge only goes with --uninstall"; fi
if [ "$ACTION" = uninstall ] && [ "$GIVEN" != " " ]; then usage_error "--uninstall takes no settings (--coordinator, --token, ...)"; fi
if [ "$ACTION" = uninstall ] && { [ "$FETCH_AGENT" = 1 ] || [ -n "$COORDINATOR_KEY" ]; }; then usage_error "--uninstall takes no agent (--fetch-agent, --coordinator-key)"; fi
if [ "$FETCH_AGENT" = 1 ] && [ -n "$AGENT_FILE" ]; then usage_error "--fetch-agent downloads the agent: it does not go with --agent-file"; fi
if [ "$FETCH_AGENT" = 1 ] && [ -z "$COORDINATOR_KEY" ]; then usage_error "--fetch-agent needs --coordinator-key (the line \`cutover hosts join-command\` prints has both)"; fi
if [ -n "$AGENT_SIGNATURE" ] && [ -z "$COORDINATOR_KEY" ]; then usage_error "--agent-signature is checked with --coordinator-key: pass both"; fi
if [ -n "$COORDINATOR_KEY" ] && [ "$FETCH_AGENT" = 0 ] && [ -z "$AGENT_SIGNATURE" ]; then usage_error "--coordinator-key needs the agent's signature: --fetch-agent, or --agent-file FILE --agent-signature SIG"; fi
if [ -n "$COORDINATOR_KEY" ] && ! [[ $COORDINATOR_KEY =~ ^[A-Za-z0-9_-]{43}$ ]]; then usage_error "--coordinator-key \"$COORDINATOR_KEY\" is not an Ed25519 public key (43 base64url characters, as \`cutover hosts join-command\` prints it)"; fi
case $TIMEOUT in '' | *[!0-9]*) usage_error "--timeout must be a whole number of seconds, got \"$TIMEOUT\"" ;; esac
if [ -n "$ROOT" ]; then
  case $ROOT in /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac
  ROOT=${ROOT%/}
  case $ROOT in *[[:space:]]*) usage_error "--root must not contain spaces (its paths go into the unit file)" ;; esac
fi

# The real location of a host path: under --root, inside DIR.
at() { printf '%s%s' "$ROOT" "$1"; }

# --- actions: each one is printed, and only printed under --dry-run ----------------

CHANGES=0
LOG_OFFSET=0
NODE_VERSION="" AGENT_VERSION="" COORDINATOR_VERSION=""
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# act DESCRIPTION COMMAND...: run a changing command (or say it would be run).
act() {
  local what=$1
  shift
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would $what"
    return 0
  fi
  say "$what"
  "$@"
}

# systemctl, or under --no-systemd a line saying what would have been run.
run_systemctl() {
  if [ "$SYSTEMD" = 1 ]; then
    act "run systemctl $*" systemctl "$@"
  elif [ "$DRY_RUN" = 1 ]; then
    say "would run systemctl $* (stubbed: --no-systemd)"
  else
    say "systemd stubbed (--no-systemd): not running systemctl $*"
  fi
}

# ensure_dir PATH MODE [GROUP]: the directory exists with this mode and owner root:GROUP.
ensure_dir() {
  local dir mode=$2 group=${3:-root} gid
  dir=$(at "$1")
  gid=$(group_id "$group")
  gid=${gid:-0}
  if [ ! -d "$dir" ]; then
    act "create $dir (mode $mode, owner root:$group)" install -d -m "$mode" -o 0 -g "$gid" "$dir"
  elif ! has_owner_mode "$dir" "$mode" "$gid"; then
    act "set $dir to mode $mode, owner root:$group" set_owner_mode "$dir" "$mode" "$gid"
  fi
}

# has_owner_mode PATH MODE GID: owned by root:GID with exactly MODE (octal).
has_owner_mode() {
  local mode owner
  read -r mode owner < <(stat -c '%a %u:%g' "$1")
  [ "$((8#$mode))" = "$((8#$2))" ] && [ "$owner" = "0:$3" ]
}

set_owner_mode() {
  chown "0:$3" "$1"
  chmod "$2" "$1"
}

# put_file PATH MODE SOURCE: PATH gets SOURCE's bytes and MODE (owner root), if it differs.
# Returns 0 when it changed (or would change) something.
put_file() {
  local dest mode=$2 source=$3
  dest=$(at "$1")
  if [ -f "$dest" ] && cmp -s "$source" "$dest"; then
    if has_owner_mode "$dest" "$mode" 0; then return 1; fi
    act "set $dest to mode $mode, owner root" set_owner_mode "$dest" "$mode" 0
    return 0
  fi
  local verb=write
  [ -e "$dest" ] && verb=update
  act "$verb $dest (mode $mode)" write_file "$dest" "$mode" "$source"
}

# Written beside the target and renamed over it, so a reader never sees half a file.
write_file() {
  mkdir -p "$(dirname "$1")"
  install -m "$2" -o 0 -g 0 "$3" "$1.cutover-new"
  mv -f "$1.cutover-new" "$1"
}

remove_path() {
  local path
  path=$(at "$1")
  if [ -e "$path" ] || [ -L "$path" ]; then act "remove $path" rm -rf "$path"; fi
}

# Removes a directory of ours only when nothing else is left in it.
remove_dir_if_empty() {
  local dir
  dir=$(at "$1")
  [ -d "$dir" ] || return 0
  local others
  others=$(find "$dir" -mindepth 1 -maxdepth 1 -printf '%f ' | cut -c1-200)
  if [ -z "$others" ]; then
    act "remove $dir" rmdir "$dir"
  elif [ "$DRY_RUN" = 0 ]; then
    say "kept $dir: it holds files install.sh did not write (${others% })"
  fi
}

# --- the system user: the real /etc, or DIR/etc under --root -------------------------

user_exists() { [ -f "$(at /etc/passwd)" ] && grep -q "^$SERVICE_USER:" "$(at /etc/passwd)"; }
group_exists() { [ -f "$(at /etc/group)" ] && grep -q "^$1:" "$(at /etc/group)"; }
# Numeric, read from the target's files: under --root the host does not know the group.
group_id() {
  [ "$1" = root ] && { echo 0; return 0; }
  [ -f "$(at /etc/group)" ] && awk -F: -v g="$1" '$1 == g { print $3 }' "$(at /etc/group)"
  return 0
}

shadow_prefix() {
  if [ -n "$ROOT" ]; then printf '%s\n' --prefix "$ROOT"; fi
}

ensure_user() {
  user_exists && return 0
  local prefix
  mapfile -t prefix < <(shadow_prefix)
  # An unprivileged account for apps (`run.user: cutover` in a spec) and the group
  # that may read /var/log/cutover; the agent itself runs as root.
  act "create system user $SERVICE_USER in $(at /etc/passwd)" \
    useradd "${prefix[@]}" --system --user-group --home-dir "$DATA_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "cutover deploy agent" "$SERVICE_USER"
}

remove_user() {
  local prefix
  mapfile -t prefix < <(shadow_prefix)
  if user_exists; then act "remove system user $SERVICE_USER from $(at /etc/passwd)" userdel "${prefix[@]}" "$SERVICE_USER"; fi
  # userdel drops the user's own group only where login.defs says USERGROUPS_ENAB.
  if group_exists "$SERVICE_USER"; then act "remove group $SERVICE_USER from $(at /etc/group)" groupdel "${prefix[@]}" "$SERVICE_USER"; fi
}

# --- checks ------------------------------------------------------------------

check_root() {
  [ "$(id -u)" = 0 ] || die "must run as root (it installs packages, a system user and a systemd unit): run it with sudo"
  [ -z "$ROOT" ] || [ -d "$ROOT" ] || usage_error "--root $ROOT is not a directory"
}

check_os() {
  if [ ! -f "$(at /etc/debian_version)" ] || ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    die "unsupported OS: install.sh supports Debian and Ubuntu (it needs $(at /etc/debian_version) and apt-get). Elsewhere, install the agent by hand as docs/install.md describes"
  fi
  if [ -n "$ROOT" ] && { [ ! -f "$(at /etc/passwd)" ] || [ ! -f "$(at /etc/group)" ]; }; then
    die "--root $ROOT must look like a system root: $(at /etc/passwd) and $(at /etc/group) are needed for the $SERVICE_USER user"
  fi
}

check_node() {
  if [ -z "$NODE_BIN" ]; then
    NODE_BIN=$(command -v node || true)
    [ -n "$NODE_BIN" ] || die "Node.js $MIN_NODE_MAJOR or newer is needed and there is no \`node\` on PATH. Install Node.js $MIN_NODE_MAJOR+ (Debian 13: apt-get install nodejs; Debian 12 and Ubuntu 24.04 ship Node 18, so use the NodeSource nodejs package for 20 or 22), or pass --node FILE"
  fi
  [[ -f $NODE_BIN && -x $NODE_BIN ]] || die "--node $NODE_BIN is not an executable file"
  # Absolute, not resolved: /usr/bin/node stays right across Node.js package upgrades.
  case $NODE_BIN in /*) ;; *) NODE_BIN=$(cd "$(dirname "$NODE_BIN")" && pwd)/$(basename "$NODE_BIN") ;; esac
  local version major
  version=$("$NODE_BIN" -p process.versions.node 2>/dev/null) || die "$NODE_BIN does not run as Node.js"
  major=${version%%.*}
  if [ "$major" -lt "$MIN_NODE_MAJOR" ]; then
    die "Node.js $MIN_NODE_MAJOR or newer is needed; $NODE_BIN is $version. Install Node.js $MIN_NODE_MAJOR+ (Debian 13: apt-get install nodejs; on Debian 12 and Ubuntu 24.04, whose nodejs is 18, the NodeSource nodejs package for 20 or 22), or pass --node FILE"
  fi
  NODE_VERSION=$version
}

# With --coordinator-key: the agent file, fetched from the coordinator (--fetch-agent) or given
# with --agent-signature, is the one the coordinator signed. Checked before the file is run
# (check_agent_file runs it) and before anything is written: only $WORK holds a download.
verify_agent() {
  [ -n "$COORDINATOR_KEY" ] || return 0
  local source=$AGENT_FILE mode=file out=""
  if [ "$FETCH_AGENT" = 1 ]; then
    mode=fetch
    source=$(printf '%s' "$COORDINATOR" | sed -E 's#^ws(s?)://#http\1://#; s#/+$##')/v1/agent/bundle
    out=$WORK/cutover-agent.mjs
    say "fetching the agent from $source"
  else
    default_agent_file
    [ -f "$AGENT_FILE" ] || die "no agent file at $AGENT_FILE: pass --agent-file FILE"
  fi
  local result
  if ! result=$("$NODE_BIN" --input-type=module - "$mode" "$source" "$PIN" "$COORDINATOR_KEY" "$AGENT_SIGNATURE" "$TOKEN" "$out" "$FETCH_TIMEOUT_MS" "$MAX_BUNDLE_BYTES" "$BUNDLE_SIGNATURE_CONTEXT" 2>&1 <<'EOF'
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
const [mode, source, pin, keyText, givenSignature, token, out, timeoutMs, maxBytes, context] = process.argv.slice(2);
const fail = (why) => { console.log(why); process.exit(1); };
const raw = Buffer.from(keyText, "base64url");
if (raw.length !== 32) fail(`--coordinator-key is not an Ed25519 public key (${raw.length} bytes, not 32)`);
const keyId = createHash("sha256").update(raw).digest("base64url");
// The token names the coordinator's key too (cte_<secret>.<key id>): both must be of one coordinator.
const tokenKeyId = token.includes(".") ? token.slice(token.lastIndexOf(".") + 1) : "";
if (tokenKeyId && tokenKeyId !== keyId) fail(`the enrollment token names coordinator key ${tokenKeyId}, but --coordinator-key is ${keyId}: take both from one \`cutover hosts join-command\``);
const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
const check = (bytes, announced, signature) => {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (announced !== undefined && announced !== sha256) fail(`the agent bundle's sha256 is ${sha256}, not the ${announced} the coordinator announced (a truncated or altered download): refusing it`);
  if (!/^[A-Za-z0-9_-]{86}$/.test(signature ?? "") || !verify(null, Buffer.from(`${context}:${sha256}`), key, Buffer.from(signature, "base64url"))) {
    fail(`the agent bundle (sha256 ${sha256}) is not signed by the coordinator key ${keyId}: refusing to install it`);
  }
  return sha256;
};
if (mode === "file") {
  console.log(check(readFileSync(source), undefined, givenSignature));
} else {
  const target = new URL(source);
  const secure = target.protocol === "https:";
  const { get } = await import(secure ? "node:https" : "node:http");
  const request = get(target, { timeout: Number(timeoutMs), rejectUnauthorized: !(secure && pin) }, (response) => {
    if (secure && pin) {
      const seen = response.socket.getPeerCertificate?.()?.fingerprint256?.replaceAll(":", "").toLowerCase();
      if (seen !== pin) fail(`its certificate's SHA-256 fingerprint is ${seen}, not the pinned ${pin}`);
    }
    let size = 0;
    const chunks = [];
    response.on("data", (chunk) => {
      size += chunk.length;
      if (size > Number(maxBytes)) fail(`${source} sent more than ${maxBytes} bytes: not an agent bundle`);
      chunks.push(chunk);
    });
    response.on("end", () => {
      const bytes = Buffer.concat(chunks);
      if (response.statusCode !== 200) {
        let message;
        try { message = JSON.parse(bytes.toString("utf8"))?.error?.message; } catch { message = undefined; }
        fail(`${source} answered HTTP ${response.statusCode}${message ? `: ${message}` : ""}`);
      }
      const sha256 = check(bytes, response.headers["x-cutover-sha256"] ?? "(none)", response.headers["x-cutover-signature"]);
      writeFileSync(out, bytes, { mode: 0o600 });
      console.log(sha256);
    });
  });
  request.on("timeout", () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
  request.on("error", (error) => fail(`cannot fetch ${source} (${error.code ?? "error"}: ${error.message})`));
}
EOF
  ); then
    die "$result"
  fi
  [ "$FETCH_AGENT" = 0 ] || AGENT_FILE=$out
  say "verified: the agent (sha256 $result) is signed by the coordinator's key"
}

default_agent_file() {
  [ -z "$AGENT_FILE" ] || return 0
  local here
  here=$(cd "$(dirname "$0")" && pwd)
  AGENT_FILE=$here/cutover-agent.mjs
  [ -f "$AGENT_FILE" ] || [ ! -f "$here/dist/cutover-agent.mjs" ] || AGENT_FILE=$here/dist/cutover-agent.mjs
}

check_agent_file() {
  default_agent_file
  [ -f "$AGENT_FILE" ] || die "no agent file at $AGENT_FILE: pass --agent-file FILE (build it with \`node scripts/bundle-agent.mjs\`, which writes dist/cutover-agent.mjs)"
  AGENT_FILE=$(readlink -f "$AGENT_FILE")
  sed -n 2p "$AGENT_FILE" | grep -q "$BUNDLE_MARK" || die "$AGENT_FILE is not a cutover-agent bundle (made by scripts/bundle-agent.mjs)"
  AGENT_VERSION=$(cd "$WORK" && "$NODE_BIN" "$AGENT_FILE" --version 2>&1) || die "$AGENT_FILE does not run with $NODE_BIN: $AGENT_VERSION"
}

# The bundle is in place and fresh; nginx with the Lua and stream modules is there.
nginx_missing_packages() {
  local nginx lua=0 stream=0 dir
  nginx=$(command -v nginx || true)
  if [ -x /usr/sbin/nginx ]; then nginx=/usr/sbin/nginx; fi
  if [ -z "$nginx" ]; then
    echo "$NGINX_PACKAGES"
    return 0
  fi
  for dir in $NGINX_MODULE_DIRS; do
    if [ -f "$dir/ngx_http_lua_module.so" ]; then lua=1; fi
    if [ -f "$dir/ngx_stream_module.so" ]; then stream=1; fi
  done
  if "$nginx" -V 2>&1 | grep -q -- '--with-stream\( \|$\)'; then stream=1; fi
  local missing=""
  if [ "$lua" = 0 ]; then missing="libnginx-mod-http-lua"; fi
  if [ "$stream" = 0 ]; then missing="$missing libnginx-mod-stream"; fi
  echo "${missing# }"
}

ensure_nginx() {
  local missing
  missing=$(nginx_missing_packages)
  [ -n "$missing" ] || return 0
  if [ -n "$ROOT" ]; then
    say "not installing $missing: --root changes nothing outside $ROOT (the agent needs them to switch traffic)"
    return 0
  fi
  # shellcheck disable=SC2086 # a list of package names
  act "install $missing with apt-get" apt_install $missing
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# GET <coordinator>/v1/health: up, and a cutover coordinator; with https and a pin,
# the certificate is the pinned one. Prints the coordinator's version.
check_coordinator() {
  local out
  if ! out=$("$NODE_BIN" --input-type=module - "$COORDINATOR" "$PIN" "$HEALTH_TIMEOUT_MS" 2>&1 <<'EOF'
const [url, pin, timeoutMs] = process.argv.slice(2);
const target = new URL(url);
target.protocol = { "ws:": "http:", "wss:": "https:" }[target.protocol] ?? target.protocol;
target.pathname = "/v1/health";
target.search = "";
const secure = target.protocol === "https:";
const { get } = await import(secure ? "node:https" : "node:http");
const fail = (why) => { console.log(why); process.exit(1); };
const request = get(target, { timeout: Number(timeoutMs), rejectUnauthorized: !(secure && pin) }, (response) => {
  // Read before the body: once the response has ended, its socket may be detached (null).
  if (secure && pin) {
    const seen = response.socket.getPeerCertificate?.()?.fingerprint256?.replaceAll(":", "").toLowerCase();
    if (seen !== pin) fail(`its certificate's SHA-256 fingerprint is ${seen}, not the pinned ${pin}`);
  }
  let body = "";
  response.setEncoding("utf8");
  response.on("data", (chunk) => (body += chunk));
  response.on("end", () => {
    let health;
    try { health = JSON.parse(body); } catch { health = null; }
    if (response.statusCode !== 200 || health?.ok !== true) fail(`${target.href} answered HTTP ${response.statusCode}, not a cutover coordinator's health`);
    console.log(health.version ?? "unknown");
  });
});
request.on("timeout", () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT" })));
request.on("error", (error) => fail(`${error.code ?? "error"}: ${error.message}`));
EOF
  ); then
    die "cannot reach the coordinator at $COORDINATOR ($out). Check the URL, that \`cutover server\` is running and listens on an address this host can reach (--listen), and any firewall in between"
  fi
  COORDINATOR_VERSION=$out
}

# --- settings ------------------------------------------------------------------

# A value install.sh wrote to an existing agent.yaml (`key: "value"`).
previous() {
  local config
  config=$(at "$CONFIG")
  [ -f "$config" ] || return 0
  sed -n "s/^$1: \"\(.*\)\"\$/\1/p" "$config" | head -1
}

previous_labels() {
  local config
  config=$(at "$CONFIG")
  [ -f "$config" ] || return 0
  sed -n '/^labels:/,/^[^ ]/ s/^  "\([^"]*\)": "\([^"]*\)"$/\1=\2/p' "$config" | paste -sd, -
}

previous_root_apps() {
  local config
  config=$(at "$CONFIG")
  [ -f "$config" ] || return 0
  if grep -q '^allow_root_apps: true$' "$config"; then echo allow; else echo refuse; fi
}

previous_pin() {
  local config
  config=$(at "$CONFIG")
  [ -f "$config" ] || return 0
  sed -n 's/^coordinator_fingerprint: "sha256:\(.*\)".*$/\1/p' "$config" | head -1
}

# Flags win; otherwise what the last run wrote; otherwise defaults.
resolve_settings() {
  given coordinator || COORDINATOR=$(previous coordinator)
  given token || TOKEN=$(previous token)
  given name || NAME=$(previous name)
  given labels || LABELS=$(previous_labels)
  given address || ADDRESS=$(previous address)
  given nginx || NGINX_MODE=$(previous nginx)
  given switch || SWITCH_MODE=$(previous switch)
  given pin || PIN=$(previous_pin)
  given root-apps || ROOT_APPS=$(previous_root_apps)
  [ -n "$NAME" ] || NAME=$(hostname | tr '[:upper:]' '[:lower:]')
  [ -n "$NGINX_MODE" ] || NGINX_MODE=system
  [ -n "$SWITCH_MODE" ] || SWITCH_MODE=auto
  [ -n "$ROOT_APPS" ] || ROOT_APPS=refuse

  [ -n "$COORDINATOR" ] || usage_error "--coordinator URL is required (the address \`cutover server\` listens on, e.g. http://coordinator:7400)"
  # Letters, digits and what URLs of hosts, ports and paths use (brackets: IPv6 hosts).
  local url_re='^(https?|wss?)://[][A-Za-z0-9._~:@%/+-]+$'
  [[ $COORDINATOR =~ $url_re ]] || usage_error "--coordinator \"$COORDINATOR\" is not an http(s):// or ws(s):// URL"
  # `cte_<secret>.<coordinator key id>`: base64url words and the dot between them.
  if [ -n "$TOKEN" ] && ! [[ $TOKEN =~ ^[A-Za-z0-9_.-]{1,300}$ ]]; then usage_error "--token \"$TOKEN\" does not look like a token from \`cutover token create\`"; fi
  if [ -z "$TOKEN" ] && ! enrolled; then
    usage_error "--token is required until the agent has enrolled: create one on the coordinator with \`cutover token create\`"
  fi
  [[ $NAME =~ ^[a-z0-9][a-z0-9._-]{0,62}$ && $NAME != *..* ]] || usage_error "--name \"$NAME\" is invalid: 1-63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit"
  if [ -n "$ADDRESS" ] && ! [[ $ADDRESS =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*)$ ]]; then usage_error "--address \"$ADDRESS\" is not an IP address"; fi
  case $NGINX_MODE in system | managed) ;; *) usage_error "--nginx must be system or managed, got \"$NGINX_MODE\"" ;; esac
  case $SWITCH_MODE in auto | reload | live) ;; *) usage_error "--switch must be auto, reload or live, got \"$SWITCH_MODE\"" ;; esac
  case $ROOT_APPS in refuse | allow) ;; *) usage_error "--root-apps must be refuse or allow, got \"$ROOT_APPS\"" ;; esac
  LABELS=$(canonical_labels "$LABELS")
  if [ -n "$PIN" ]; then
    local hex
    hex=$(printf '%s' "${PIN#sha256:}" | tr -d ':' | tr '[:upper:]' '[:lower:]')
    [[ $hex =~ ^[0-9a-f]{64}$ ]] || usage_error "--pin \"$PIN\" is not a SHA-256 fingerprint (64 hex digits, colons allowed, e.g. from openssl x509 -noout -fingerprint -sha256)"
    PIN=$hex
  fi
}

# Sorted, so the same labels in another order are the same settings.
canonical_labels() {
  [ -n "$1" ] || return 0
  local pair key value out="" keys=" "
  local -a pairs
  IFS=, read -r -a pairs <<<"$1"
  for pair in "${pairs[@]}"; do
    pair=${pair// /}
    [ -n "$pair" ] || continue
    [[ $pair == ?*=* ]] || usage_error "label \"$pair\" must be key=value"
    key=${pair%%=*}
    value=${pair#*=}
    [[ $key =~ ^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$ && $value =~ ^[A-Za-z0-9._-]{0,63}$ ]] ||
      usage_error "label $key=$value is invalid: key a-z, 0-9, '.', '-', '_', '/' (alphanumeric at both ends); value A-Z, a-z, 0-9, '.', '-', '_'"
    case $keys in *" $key "*) usage_error "label $key is given twice" ;; esac
    keys+="$key "
    out+="$pair"$'\n'
  done
  printf '%s' "$out" | LC_ALL=C sort | paste -sd, -
}

# The agent holds a key the coordinator has accepted: no token needed.
enrolled() {
  grep -qs '"enrolled": *true' "$(at "$STATE_DIR")/identity.json"
}

# --- what the files should say --------------------------------------------------

render_config() {
  echo "# cutover-agent settings, written by install.sh (see docs/install.md)."
  echo "# Run install.sh again to change them: it rewrites this file."
  printf 'coordinator: "%s"\n' "$COORDINATOR"
  [ -z "$TOKEN" ] || printf 'token: "%s"\n' "$TOKEN"
  printf 'name: "%s"\n' "$NAME"
  [ -z "$ADDRESS" ] || printf 'address: "%s"\n' "$ADDRESS"
  printf 'state_dir: "%s"\n' "$(at "$STATE_DIR")"
  printf 'nginx: "%s"\n' "$NGINX_MODE"
  printf 'switch: "%s"\n' "$SWITCH_MODE"
  if [ -n "$LABELS" ]; then
    echo "labels:"
    local pair
    local -a pairs
    IFS=, read -r -a pairs <<<"$LABELS"
    for pair in "${pairs[@]}"; do printf '  "%s": "%s"\n' "${pair%%=*}" "${pair#*=}"; done
  fi
  if [ "$ROOT_APPS" = allow ]; then
    echo "# Apps whose spec sets no run.user (or a uid-0 one) run as root here (--root-apps allow)."
    echo "allow_root_apps: true"
  fi
  if [ -n "$PIN" ]; then
    echo "# The coordinator's TLS certificate, pinned: the agent talks to no other."
    printf 'coordinator_fingerprint: "sha256:%s"\n' "$PIN"
  fi
}

# 0700 root: only root (nginx's master, the agent) may create or reach the control socket.
render_tmpfiles() {
  echo "# Written by install.sh (see docs/install.md): cutover-agent's runtime dir, where the"
  echo "# host's nginx binds cutover's control socket; made at every boot, as /run is emptied."
  echo "d $AGENT_RUN_DIR 0700 root root -"
}

render_wrapper() {
  cat <<EOF
#!/bin/sh
# cutover-agent: the one-file agent run with the Node.js install.sh found. Written by
# install.sh; run it again after moving Node.js.
#
# It also completes an agent's self-upgrade (\`cutover agents upgrade\`, docs/install.md):
# the agent writes the new file over AGENT, keeps the old one as AGENT.previous, writes
# AGENT.trial ("SECONDS VERSION") and exits $EXIT_UPGRADE. This loop starts the new file; it
# has SECONDS to come online, when the agent removes AGENT.trial. If it exits or does not
# come online in time, the next start puts AGENT.previous back (AGENT.rolled-back says why).
agent="$(at "$AGENT_JS")"
trial="\$agent.trial"
child= stopping=
# Stopping the wrapper stops the agent, and ends the loop even in a trial.
trap 'stopping=1; [ -z "\$child" ] || kill -TERM "\$child" 2>/dev/null' TERM INT HUP
while :; do
  if [ -f "\$trial" ]; then
    if grep -q '^started' "\$trial"; then
      why=\$(sed -n 's/^exited /exited with code /p; s/^late /did not come online within /p' "\$trial" | head -n 1)
      echo "the new agent \$(sed -n '1s/^[0-9]* //p' "\$trial") \${why:-did not come online}; the previous file was put back" >"\$agent.rolled-back"
      mv -f "\$agent.previous" "\$agent" || echo "and there was no \$agent.previous to put back: run install.sh again" >>"\$agent.rolled-back"
      rm -f "\$trial"
      echo "cutover-agent wrapper: \$(cat "\$agent.rolled-back")" >&2
    else
      echo started >>"\$trial"
    fi
  fi
  CUTOVER_AGENT_FILE="\$agent" CUTOVER_AGENT_WRAPPER=$WRAPPER_PROTOCOL "$NODE_BIN" ${AGENT_NODE_FLAGS:+$AGENT_NODE_FLAGS }"\$agent" "\$@" &
  child=\$!
  watchdog=
  if [ -f "\$trial" ]; then
    seconds=\$(sed -n '1s/ .*//p' "\$trial")
    (sleep "\${seconds:-60}"; if [ -f "\$trial" ]; then echo "late \${seconds:-60} s" >>"\$trial"; kill -TERM "\$child"; sleep $STOP_TIMEOUT; kill -KILL "\$child"; fi) 2>/dev/null &
    watchdog=\$!
  fi
  # wait returns early when a trapped signal comes: wait again until the agent is gone.
  while :; do
    wait "\$child"
    code=\$?
    kill -0 "\$child" 2>/dev/null || break
  done
  [ -z "\$watchdog" ] || kill "\$watchdog" 2>/dev/null
  child=
  [ -z "\$stopping" ] || exit "\$code"
  if [ -f "\$trial" ] && [ "\$code" != $EXIT_UPGRADE ]; then
    echo "exited \$code" >>"\$trial"
    continue
  fi
  [ "\$code" = $EXIT_UPGRADE ] || exit "\$code"
done
EOF
}

render_unit() {
  local after="network-online.target"
  [ "$NGINX_MODE" = managed ] || after="$after nginx.service"
  cat <<EOF
# Written by install.sh (see docs/install.md); run it again rather than editing this file.
[Unit]
Description=cutover agent: runs app instances and switches the local nginx for zero-downtime deploys
Wants=network-online.target
After=$after

[Service]
Type=simple
ExecStart=$(at "$WRAPPER") --config $(at "$CONFIG")
# root: the agent writes nginx config, signals nginx and starts apps as their own users.
User=root
Restart=on-failure
RestartSec=2s
# 2: the coordinator refused this agent for good (spent or expired token, key mismatch);
# 78: bad config. A restart cannot fix either, so the unit stays failed and says why
# (journalctl -u cutover-agent) instead of looping.
RestartPreventExitStatus=2 78
# Apps run in their own process groups and must outlive the agent: a restarted or
# upgraded agent re-adopts them (pid + start time + argv). KillMode=process stops only
# the agent; the default, control-group, would take every app on the host down with it.
KillMode=process
TimeoutStopSec=15s
# The agent before its apps: a host saturated by its own traffic must still give the agent
# the CPU to heartbeat, answer pings and finish a switch. Apps start 5 nice levels below
# the agent (so at the ordinary 0) and with the ordinary OOM score, so under memory
# pressure the kernel takes an app before the agent that would restart it.
Nice=-5
OOMScoreAdjust=-500

[Install]
WantedBy=multi-user.target
EOF
}

# --- the agent process ------------------------------------------------------------

# PID exists and is not a zombie (a dead process nobody has reaped yet).
running() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
  [ "$state" != Z ]
}

# With --no-systemd: the pid of the background agent, if it is alive and ours (its
# command line names our agent file, so a reused pid is not taken for it).
background_pid() {
  local pid_file pid
  pid_file=$(at "$PID_FILE")
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  # The wrapper's shell (which restarts the agent after a self-upgrade), or node itself as an
  # older wrapper exec'd it.
  if running "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -e "$(at "$WRAPPER")" -e "$(at "$AGENT_JS")"; then echo "$pid"; fi
}

agent_running() {
  if [ "$SYSTEMD" = 1 ]; then
    systemctl is-active --quiet "$UNIT_NAME"
  else
    [ -n "$(background_pid)" ]
  fi
}

stop_background() {
  local pid waited=0
  pid=$(background_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    while running "$pid" && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(at "$PID_FILE")"
}

# The process started by start_background still exists (it may not have exec'd node yet).
background_alive() {
  local pid
  pid=$(cat "$(at "$PID_FILE")" 2>/dev/null || true)
  [ -n "$pid" ] && running "$pid"
}

start_background() {
  local log
  log=$(at "$AGENT_LOG")
  mkdir -p "$(dirname "$(at "$PID_FILE")")"
  # Its own session, output to the log: it outlives this script and holds none of our pipes.
  setsid "$(at "$WRAPPER")" --config "$(at "$CONFIG")" >>"$log" 2>&1 </dev/null &
  echo $! >"$(at "$PID_FILE")"
}

# Prints the agent's log since it was (re)started.
agent_log_since_start() {
  if [ "$SYSTEMD" = 1 ]; then
    local invocation
    invocation=$(systemctl show -p InvocationID --value "$UNIT_NAME")
    [ -z "$invocation" ] || journalctl --no-pager -q -o cat "_SYSTEMD_INVOCATION_ID=$invocation" 2>/dev/null || true
  else
    tail -c +$((LOG_OFFSET + 1)) "$(at "$AGENT_LOG")" 2>/dev/null || true
  fi
}

where_log() {
  if [ "$SYSTEMD" = 1 ]; then echo "journalctl -u cutover-agent"; else at "$AGENT_LOG"; fi
}

# Waits for the agent's `coordinator link ... to=online` line; fails with its last words.
wait_online() {
  local deadline=$((SECONDS + TIMEOUT)) log gone
  say "waiting up to ${TIMEOUT}s for the agent to come online at the coordinator"
  while :; do
    # Whether it has exited is read before its log, so an exit seen here comes with its last words.
    gone=0
    if [ "$SYSTEMD" = 0 ] && ! background_alive; then gone=1; fi
    if [ "$SYSTEMD" = 1 ] && [ "$(systemctl show -p ActiveState --value "$UNIT_NAME")" = failed ]; then
      gone=1
      sleep 0.5 # journald may still be storing the last lines of the dead process
    fi
    log=$(agent_log_since_start)
    if grep -q "$ONLINE_PATTERN" <<<"$log"; then
      say "the agent is online: $(grep "$ONLINE_PATTERN" <<<"$log" | head -1)"
      return 0
    fi
    if grep -q "refused this agent" <<<"$log"; then
      # The agent's own words name the reason and the fix; it has exited with code 2.
      die "the coordinator refused the agent: $(grep "refused this agent" <<<"$log" | tail -1 | sed 's/^cutover-agent: the coordinator refused this agent: //'). Then run install.sh again (a new --token, or another --name)"
    fi
    if [ "$gone" = 1 ]; then
      die "the agent exited before coming online; its last lines ($(where_log)):"$'\n'"$(tail -n 15 <<<"$log")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "the agent did not come online within ${TIMEOUT}s (--timeout); its last lines ($(where_log)):"$'\n'"$(tail -n 15 <<<"$log")"
    fi
    sleep 0.2
  done
}

# --- install -------------------------------------------------------------------------

check_systemd() {
  [ "$SYSTEMD" = 0 ] || [ -d /run/systemd/system ] || die "systemd is not running on this host, and install.sh installs the agent as a systemd service (start the agent yourself as docs/install.md describes)"
}

install_agent() {
  check_root
  check_os
  resolve_settings
  check_systemd
  check_node
  verify_agent
  check_agent_file
  check_coordinator
  say "checked: Node.js $NODE_VERSION ($NODE_BIN), agent $AGENT_VERSION ($AGENT_FILE), coordinator $COORDINATOR (version $COORDINATOR_VERSION)"
  if [ -n "$PIN" ] && [[ $COORDINATOR != https://* && $COORDINATOR != wss://* ]]; then
    say "note: --pin is recorded but not checked: $COORDINATOR has no certificate"
  fi

  ensure_nginx
  ensure_user
  ensure_dir "$LIB_DIR" 755
  ensure_dir "$CONF_DIR" 755
  # The agent makes its state dir (agent/) itself, with the mode it needs.
  ensure_dir "$DATA_DIR" 755
  ensure_dir "$LOG_DIR" 750 "$SERVICE_USER"
  ensure_dir "$AGENT_RUN_DIR" 700
  [ -d "$(dirname "$(at "$WRAPPER")")" ] || act "create $(dirname "$(at "$WRAPPER")")" mkdir -p "$(dirname "$(at "$WRAPPER")")"
  [ -d "$(dirname "$(at "$UNIT_FILE")")" ] || act "create $(dirname "$(at "$UNIT_FILE")")" mkdir -p "$(dirname "$(at "$UNIT_FILE")")"

  local restart=0 unit_changed=0
  render_config >"$WORK/agent.yaml"
  render_wrapper >"$WORK/cutover-agent"
  render_unit >"$WORK/$UNIT_NAME"
  render_tmpfiles >"$WORK/cutover-agent.conf"
  # A file put here by hand ends any self-upgrade trial (the wrapper would roll it back).
  if put_file "$AGENT_JS" 644 "$AGENT_FILE"; then restart=1; rm -f "$(at "$AGENT_JS").trial"; fi
  if put_file "$WRAPPER" 755 "$WORK/cutover-agent"; then restart=1; fi
  # 0600: it holds the enrollment token.
  if put_file "$CONFIG" 600 "$WORK/agent.yaml"; then restart=1; fi
  if put_file "$UNIT_FILE" 644 "$WORK/$UNIT_NAME"; then restart=1 unit_changed=1; fi
  # Read at boot; the dir itself is made above, so nothing needs restarting.
  put_file "$TMPFILES_CONF" 644 "$WORK/cutover-agent.conf" || true

  if [ "$unit_changed" = 1 ]; then run_systemctl daemon-reload; fi
  if [ "$SYSTEMD" = 0 ]; then
    [ "$unit_changed" = 0 ] || run_systemctl enable "$UNIT_NAME"
  elif ! systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then
    run_systemctl enable "$UNIT_NAME"
  fi

  # Started when it is not running, restarted when one of its files changed.
  local start=0
  if ! agent_running || [ "$restart" = 1 ]; then start=1; fi
  if [ "$start" = 1 ]; then
    LOG_OFFSET=$(stat -c %s "$(at "$AGENT_LOG")" 2>/dev/null || echo 0)
    run_systemctl restart "$UNIT_NAME"
    if [ "$SYSTEMD" = 0 ]; then
      if agent_running; then act "stop the background agent (pid $(background_pid))" stop_background; fi
      act "start the agent in the background (pid file $(at "$PID_FILE"), log $(at "$AGENT_LOG"))" start_background
    fi
  fi

  if [ "$DRY_RUN" = 1 ]; then
    if [ "$CHANGES" = 0 ]; then say "dry run: no changes"; else say "dry run: $CHANGES actions above would be taken; nothing was changed"; fi
    return 0
  fi
  if [ "$CHANGES" = 0 ]; then
    say "no changes: cutover-agent $NAME is installed as asked and running (coordinator $COORDINATOR)"
    return 0
  fi
  [ "$start" = 0 ] || wait_online
  say "done: cutover-agent $NAME is installed and online at $COORDINATOR ($CHANGES changes)"
}

# --- uninstall ------------------------------------------------------------------------

# Apps and the managed nginx the agent's records say are running: stopped only by --purge,
# which deletes the files they run from.
stop_host_processes() {
  local state record pid waited
  state=$(at "$STATE_DIR")
  local -a groups=()
  for record in "$state"/instances/*/*.json; do
    [ -f "$record" ] || continue
    pid=$(sed -n 's/^ *"pid": *\([0-9][0-9]*\),*$/\1/p' "$record" | head -1)
    if [ -n "$pid" ] && running "$pid"; then groups+=("$pid"); fi
  done
  for pid in "${groups[@]}"; do
    act "stop app process group $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60))" kill -TERM -- "-$pid"
  done
  if [ "$DRY_RUN" = 0 ]; then
    for pid in "${groups[@]}"; do
      waited=0
      while running "$pid" && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
      done
      kill -KILL -- "-$pid" 2>/dev/null || true
    done
  fi
  if [ -f "$state/nginx/nginx.pid" ]; then
    pid=$(cat "$state/nginx/nginx.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && running "$pid"; then act "stop the agent's nginx (pid $pid)" stop_nginx_master "$pid"; fi
  fi
}

# QUIT lets workers finish their requests; the master is gone before its files are removed.
stop_nginx_master() {
  local waited=0
  kill -QUIT "$1" 2>/dev/null || return 0
  while running "$1" && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -KILL "$1" 2>/dev/null || true
}

# `--nginx system` sites: the agent's files in the host's conf.d.
remove_nginx_sites() {
  local file removed=0
  for file in "$(at "$NGINX_CONF_DIR")"/cutover-*.conf "$(at "$NGINX_CONF_DIR")"/cutover.control.conf; do
    [ -f "$file" ] || continue
    act "remove $file" rm -f "$file"
    removed=1
  done
  [ "$removed" = 1 ] || return 0
  if [ -n "$ROOT" ]; then
    say "not reloading nginx: --root changes nothing outside $ROOT"
  elif [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    act "reload nginx without cutover's sites" nginx -s reload
  fi
}

uninstall_agent() {
  check_root
  check_systemd
  local unit
  unit=$(at "$UNIT_FILE")
  if [ "$SYSTEMD" = 1 ]; then
    if [ -f "$unit" ] || systemctl is-active --quiet "$UNIT_NAME"; then run_systemctl disable --now "$UNIT_NAME"; fi
  else
    [ ! -f "$unit" ] || run_systemctl disable --now "$UNIT_NAME"
    if [ -n "$(background_pid)" ]; then act "stop the background agent (pid $(background_pid))" stop_background; fi
    remove_path "$PID_FILE"
  fi
  if [ -f "$unit" ]; then
    remove_path "$UNIT_FILE"
    run_systemctl daemon-reload
    if [ "$SYSTEMD" = 1 ]; then systemctl reset-failed "$UNIT_NAME" 2>/dev/null || true; fi
  fi
  # Before the user goes: apps may run as it.
  if [ "$PURGE" = 1 ]; then stop_host_processes; fi
  remove_path "$WRAPPER"
  remove_path "$AGENT_JS"
  for leftover in previous trial rolled-back new.mjs; do remove_path "$AGENT_JS.$leftover"; done
  remove_dir_if_empty "$LIB_DIR"
  remove_path "$CONFIG"
  remove_dir_if_empty "$CONF_DIR"
  remove_path "$LOG_DIR"
  remove_user
  if [ "$PURGE" = 1 ]; then
    remove_nginx_sites
    remove_path "$DATA_DIR"
  elif [ -d "$(at "$DATA_DIR")" ]; then
    say "kept $(at "$DATA_DIR"): the agent's key and state, releases and app logs; apps it started keep running. A reinstall picks them up again; --uninstall --purge stops them and removes it"
  fi
  # The runtime dir and its boot entry stay while the host's nginx still binds the control
  # socket there (the sites are kept without --purge): nginx would not start without it.
  if [ "$PURGE" = 1 ] || [ ! -f "$(at "$NGINX_CONF_DIR")/cutover.control.conf" ]; then
    remove_path "$TMPFILES_CONF"
    remove_path "$AGENT_RUN_DIR"
  else
    say "kept $(at "$TMPFILES_CONF") and $(at "$AGENT_RUN_DIR"): $(at "$NGINX_CONF_DIR")/cutover.control.conf binds nginx's control socket there; --uninstall --purge removes all three"
  fi
  if [ "$DRY_RUN" = 1 ]; then
    if [ "$CHANGES" = 0 ]; then say "dry run: nothing to remove"; else say "dry run: $CHANGES actions above would be taken; nothing was changed"; fi
  elif [ "$CHANGES" = 0 ]; then
    say "no changes: cutover-agent is not installed"
  else
    say "done: cutover-agent is uninstalled"
  fi
}

if [ "$ACTION" = uninstall ]; then uninstall_agent; else install_agent; fi

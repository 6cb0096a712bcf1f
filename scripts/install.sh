#!/bin/sh
# Installs the NGINX agent from a built checkout (after `npm ci`, which builds it) as a systemd service:
#   <prefix>/            dist/, bin/agent (wrapper) + bin/agent.js, package.json, production node_modules,
#                        wasm-plugins/<name>/{plugin.yaml,*.wasm}, config/agent.yaml (reference copy)
#   /etc/systemd/system/nginx-agent.service
#   /etc/nginx-agent/nginx-agent.yaml   (only when absent: an existing config is never overwritten)
#   /var/lib/nginx-agent/plugins, /var/log/nginx-agent
#   the system user and group nginx-agent
# Safe to run again: it updates the program files and leaves config, state and user alone.
#
# Usage: sudo scripts/install.sh [--prefix DIR] [--destdir DIR] [--dist DIR] [--no-user] [--enable]
#   --prefix DIR   install location (default /opt/nginx-agent)
#   --destdir DIR  stage everything under DIR (packaging, tests); same as DESTDIR=DIR.
#                  The user is then created in DIR/etc/passwd when that file exists, else skipped.
#   --dist DIR     compiled JavaScript to install (default: <checkout>/dist)
#   --no-user      do not create the nginx-agent user
#   --enable       systemctl enable --now nginx-agent (not with --destdir)
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/nginx-agent
DESTDIR=${DESTDIR:-}
DIST=$SRC/dist
UNIT_DIR=/etc/systemd/system
CONFIG_DIR=/etc/nginx-agent
STATE_DIR=/var/lib/nginx-agent
LOG_DIR=/var/log/nginx-agent
USER_NAME=nginx-agent
CREATE_USER=yes
ENABLE=no

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
    --dist) [ $# -ge 2 ] || die "--dist needs a directory"; DIST=$2; shift 2 ;;
    --no-user) CREATE_USER=no; shift ;;
    --enable) ENABLE=yes; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$PREFIX" in
  /*) ;;
  *) die "--prefix must be an absolute path, got $PREFIX" ;;
esac
[ "$PREFIX" != / ] || die "--prefix / would spread the agent over the root directory; use e.g. /opt/nginx-agent"
[ -z "$DESTDIR" ] || DESTDIR=$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)
[ "$ENABLE" = no ] || [ -z "$DESTDIR" ] || die "--enable cannot be used with --destdir"

# Node.js >= 20.19 is needed at run time; the wrapper records where it is.
NODE=$(command -v node || true)
[ -n "$NODE" ] || die "node is not on PATH; install Node.js 20.19 or newer first"
"$NODE" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "Node.js $("$NODE" -v) is too old; the agent needs 20.19 or newer"
NPM=$(command -v npm || true)
[ -n "$NPM" ] || die "npm is not on PATH (it installs the production dependencies)"
[ -f "$DIST/cmd/agent.js" ] || die "$DIST/cmd/agent.js is missing: build the agent first (npm ci, or npm run build)"

ROOT=$DESTDIR$PREFIX
say "installing into $ROOT"
mkdir -p "$ROOT/bin" "$ROOT/config"

# Program files: replaced as a whole so nothing stale survives an upgrade.
rm -rf "$ROOT/dist.new"
cp -R "$DIST" "$ROOT/dist.new"
rm -rf "$ROOT/dist"
mv "$ROOT/dist.new" "$ROOT/dist"
install -m 0644 "$SRC/package.json" "$SRC/package-lock.json" "$ROOT/"
[ ! -f "$SRC/README.md" ] || install -m 0644 "$SRC/README.md" "$ROOT/"
[ ! -f "$SRC/LICENSE" ] || install -m 0644 "$SRC/LICENSE" "$ROOT/"
install -m 0644 "$SRC/config/agent.yaml" "$ROOT/config/agent.yaml"
install -m 0755 "$SRC/bin/agent.js" "$ROOT/bin/agent.js"
# bin/agent.js is CommonJS (an ES module entry costs Node ~20 ms more to start): this says so.
install -m 0644 "$SRC/bin/package.json" "$ROOT/bin/package.json"
cat > "$ROOT/bin/agent.new" <<WRAP
#!/bin/sh
# Written by install.sh: runs the agent with the Node.js found at install time. bin/agent.js starts
# as a shell script too: it takes NODE_EXTRA_CA_CERTS out of Node's start-up, then execs that Node.
NGINX_AGENT_NODE="$NODE"
export NGINX_AGENT_NODE
exec "$PREFIX/bin/agent.js" "\$@"
WRAP
chmod 0755 "$ROOT/bin/agent.new"
mv "$ROOT/bin/agent.new" "$ROOT/bin/agent"

# Production dependencies, reinstalled only when package-lock.json changed.
LOCK_SUM=$(sha256sum "$SRC/package-lock.json" | cut -d' ' -f1)
if [ -d "$ROOT/node_modules" ] && [ "$(cat "$ROOT/.package-lock.sha256" 2>/dev/null || true)" = "$LOCK_SUM" ]; then
  say "production dependencies are up to date"
else
  say "installing production dependencies (npm ci --omit=dev)"
  (cd "$ROOT" && "$NPM" ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null) \
    || die "npm ci --omit=dev failed in $ROOT"
  echo "$LOCK_SUM" > "$ROOT/.package-lock.sha256"
fi

# Example Wasm plugins: each folder's plugin.yaml and built .wasm.
rm -rf "$ROOT/wasm-plugins"
if [ -d "$SRC/wasm-plugins" ]; then
  for dir in "$SRC"/wasm-plugins/*/; do
    [ -f "$dir/plugin.yaml" ] || continue
    name=$(basename "$dir")
    found=no
    for w in "$dir"*.wasm; do [ -f "$w" ] && found=yes; done
    if [ "$found" = no ]; then
      say "warning: wasm-plugins/$name has no built .wasm (run npm run build:wasm); skipped"
      continue
    fi
    mkdir -p "$ROOT/wasm-plugins/$name"
    install -m 0644 "$dir/plugin.yaml" "$dir"*.wasm "$ROOT/wasm-plugins/$name/"
  done
fi

# The systemd unit, pointing at this prefix.
mkdir -p "$DESTDIR$UNIT_DIR"
sed "s#/opt/nginx-agent#$PREFIX#g" "$SRC/config/nginx-agent.service" > "$DESTDIR$UNIT_DIR/nginx-agent.service.new"
chmod 0644 "$DESTDIR$UNIT_DIR/nginx-agent.service.new"
mv "$DESTDIR$UNIT_DIR/nginx-agent.service.new" "$DESTDIR$UNIT_DIR/nginx-agent.service"

# The user.
user_exists() {
  if [ -n "$DESTDIR" ]; then grep -q "^$USER_NAME:" "$DESTDIR/etc/passwd" 2>/dev/null; else id "$USER_NAME" >/dev/null 2>&1; fi
}
if [ "$CREATE_USER" = yes ]; then
  if user_exists; then
    say "user $USER_NAME exists"
  elif [ -n "$DESTDIR" ] && [ ! -f "$DESTDIR/etc/passwd" ]; then
    say "no $DESTDIR/etc/passwd: user $USER_NAME not created (create it on the target: useradd --system --user-group $USER_NAME)"
    CREATE_USER=no
  else
    set -- --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin --comment "NGINX agent" "$USER_NAME"
    [ -z "$DESTDIR" ] || set -- --prefix "$DESTDIR" "$@"
    useradd "$@" || die "useradd $USER_NAME failed"
    say "created system user $USER_NAME"
  fi
fi
# uid:gid of the service user ('' when it was not created).
ids() {
  [ "$CREATE_USER" = yes ] || return 0
  if [ -n "$DESTDIR" ]; then
    grep "^$USER_NAME:" "$DESTDIR/etc/passwd" | cut -d: -f3,4
  else
    echo "$(id -u "$USER_NAME"):$(id -g "$USER_NAME")"
  fi
}
IDS=$(ids)

# Config: never overwrite an existing one; root-owned, readable by the service group (it may hold tokens).
mkdir -p "$DESTDIR$CONFIG_DIR"
if [ -e "$DESTDIR$CONFIG_DIR/nginx-agent.yaml" ]; then
  say "kept the existing $CONFIG_DIR/nginx-agent.yaml (the new defaults are in $PREFIX/config/agent.yaml)"
else
  # The defaults, with wasm.dirs naming the shipped example plugins and the state directory for the
  # operator's own (the default [] would load only the examples).
  sed "s#^  dirs: \[\]\$#  dirs: [$PREFIX/wasm-plugins, $STATE_DIR/plugins]#" "$SRC/config/agent.yaml" > "$DESTDIR$CONFIG_DIR/nginx-agent.yaml.new"
  grep -q "^  dirs: \[$PREFIX/wasm-plugins, $STATE_DIR/plugins\]\$" "$DESTDIR$CONFIG_DIR/nginx-agent.yaml.new" \
    || die "config/agent.yaml has no 'wasm: dirs: []' line to point at $STATE_DIR/plugins"
  chmod 0640 "$DESTDIR$CONFIG_DIR/nginx-agent.yaml.new"
  mv "$DESTDIR$CONFIG_DIR/nginx-agent.yaml.new" "$DESTDIR$CONFIG_DIR/nginx-agent.yaml"
  [ -z "$IDS" ] || chown "0:${IDS#*:}" "$DESTDIR$CONFIG_DIR/nginx-agent.yaml" || [ -n "$DESTDIR" ]
  say "wrote $CONFIG_DIR/nginx-agent.yaml"
fi

# State (user Wasm plugins) and log directories, owned by the service user.
mkdir -p "$DESTDIR$STATE_DIR/plugins" "$DESTDIR$LOG_DIR"
chmod 0750 "$DESTDIR$STATE_DIR" "$DESTDIR$STATE_DIR/plugins" "$DESTDIR$LOG_DIR"
# (Staging into a DESTDIR as a normal user cannot chown; the package manager or systemd fixes owners.)
[ -z "$IDS" ] || chown -R "$IDS" "$DESTDIR$STATE_DIR" "$DESTDIR$LOG_DIR" || [ -n "$DESTDIR" ]

# The unit reads nginx's logs through the adm group (Debian's www-data:adm 0640 logs): systemd refuses
# to start a unit whose SupplementaryGroups names a group that does not exist.
if [ -z "$DESTDIR" ] && ! getent group adm >/dev/null 2>&1; then
  say "warning: there is no group adm here; create it (groupadd --system adm) or edit SupplementaryGroups= in the unit to the group that may read nginx's logs"
fi

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$ENABLE" = yes ]; then systemctl enable --now nginx-agent; else say "start it with: systemctl enable --now nginx-agent"; fi
fi
say "done: $PREFIX/bin/agent version -> $("$ROOT/bin/agent.js" version 2>/dev/null || echo '?')"

#!/bin/sh
# Undoes scripts/install.sh: stops and disables the service, removes the unit and <prefix>.
# Keeps /etc/nginx-agent (config), /var/lib/nginx-agent (state, user Wasm plugins),
# /var/log/nginx-agent and the nginx-agent user unless --purge is given.
#
# Usage: sudo scripts/uninstall.sh [--prefix DIR] [--destdir DIR] [--purge]
set -eu

PREFIX=/opt/nginx-agent
DESTDIR=${DESTDIR:-}
UNIT_DIR=/etc/systemd/system
CONFIG_DIR=/etc/nginx-agent
STATE_DIR=/var/lib/nginx-agent
LOG_DIR=/var/log/nginx-agent
USER_NAME=nginx-agent
PURGE=no

die() { echo "uninstall.sh: $*" >&2; exit 1; }
say() { echo "uninstall.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=$2; shift 2 ;;
    --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; DESTDIR=$2; shift 2 ;;
    --purge) PURGE=yes; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$PREFIX" in /?*) ;; *) die "--prefix must be an absolute path other than /, got $PREFIX" ;; esac

ROOT=$DESTDIR$PREFIX
UNIT=$DESTDIR$UNIT_DIR/nginx-agent.service

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && [ -f "$UNIT" ]; then
  systemctl disable --now nginx-agent >/dev/null 2>&1 || true
fi
if [ -f "$UNIT" ]; then
  rm -f "$UNIT"
  say "removed $UNIT_DIR/nginx-agent.service"
fi
[ -n "$DESTDIR" ] || [ ! -d /run/systemd/system ] || systemctl daemon-reload

if [ -e "$ROOT" ]; then
  # Only delete what install.sh made: a directory holding the agent's entry point.
  [ -f "$ROOT/bin/agent.js" ] && [ -f "$ROOT/package.json" ] || die "$ROOT does not look like an agent installation (no bin/agent.js); not deleting it"
  rm -rf "$ROOT"
  say "removed $PREFIX"
else
  say "$PREFIX is not there (already removed?)"
fi

if [ "$PURGE" = yes ]; then
  rm -rf "$DESTDIR$CONFIG_DIR" "$DESTDIR$STATE_DIR" "$DESTDIR$LOG_DIR"
  say "purged $CONFIG_DIR, $STATE_DIR and $LOG_DIR"
  if [ -n "$DESTDIR" ]; then
    if grep -q "^$USER_NAME:" "$DESTDIR/etc/passwd" 2>/dev/null; then userdel --prefix "$DESTDIR" "$USER_NAME" && say "removed user $USER_NAME"; fi
  elif id "$USER_NAME" >/dev/null 2>&1; then
    userdel "$USER_NAME" && say "removed user $USER_NAME"
  fi
else
  say "kept $CONFIG_DIR, $STATE_DIR, $LOG_DIR and the user $USER_NAME (remove them with --purge)"
fi

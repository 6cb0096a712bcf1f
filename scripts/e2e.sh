#!/usr/bin/env bash
# The user's run: clone the repository as committed, install it as the README says (`npm ci`), then
# run scripts/e2e/run.ts from the clone: real nginx, the agent with default settings, traffic, a config
# change, Wasm plugins, checked from the outside (HTTP API, /metrics, promtool, a Prometheus scrape);
# then scripts/e2e/nonroot.sh from the clone: the agent as the systemd unit's user (needs root or sudo).
# Prints `PASS <part>` / `FAIL <part>: reason` per part, then `N passed, N failed`; exit 1 on any failure.
# Needs: git, node 20.19+, npm, and the Debian packages nginx and prometheus (scripts/install-test-deps.sh).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nginx-agent-e2e.XXXXXX")
KEEP=${E2E_KEEP:-0}
# npx's install of the clone (made by its npm ci, scripts/prepare.mjs) goes with the clone.
npx_folder() {
  node -e 'const c=require("child_process").execSync("npm config get cache").toString().trim();
    console.log(require("path").join(c,"_npx",require("crypto").createHash("sha512").update(process.argv[1]).digest("hex").slice(0,16)))' "$WORK/agent"
}
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK" "$(npx_folder)"; fi
}
trap cleanup EXIT

passed=0
failed=0
summary() { echo "$passed passed, $failed failed"; }

if ! git clone --quiet "$SRC" "$WORK/agent" 2>"$WORK/clone.log"; then
  echo "FAIL clean clone: $(tail -c 300 "$WORK/clone.log" | tr '\n' ' ')"
  failed=$((failed + 1)); summary; exit 1
fi
echo "PASS clean clone ($(git -C "$WORK/agent" rev-parse --short HEAD))"
passed=$((passed + 1))

cd "$WORK/agent"
if ! npm ci --no-audit --no-fund >"$WORK/npm-ci.log" 2>&1; then
  echo "FAIL install (npm ci, which builds): $(grep -iE 'error' "$WORK/npm-ci.log" | head -5 | tr '\n' ' ' | cut -c1-400)"
  failed=$((failed + 1)); summary; exit 1
fi
echo "PASS install (npm ci)"
passed=$((passed + 1))

# The README's second half of the first command: `npx agent start` after `npm ci`. npm ci prepared
# npx's install of the checkout (scripts/prepare.mjs), so it starts at once; a SIGTERM to npm (which npm
# does not forward) stops the agent too.
t0=$(date +%s%N)
npx agent start --api-port 0 --log-level info >"$WORK/npx-start.log" 2>&1 &
npx_pid=$!
for _ in $(seq 1 600); do grep -q 'API listening' "$WORK/npx-start.log" && break; sleep 0.1; done
if grep -q 'API listening' "$WORK/npx-start.log"; then
  echo "PASS npx agent start answers after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  passed=$((passed + 1))
  agent_pid=$(grep -o '"pid":[0-9]*' "$WORK/npx-start.log" | head -1 | cut -d: -f2)
  kill -TERM "$npx_pid"
  for _ in $(seq 1 100); do kill -0 "$agent_pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$agent_pid/stat" 2>/dev/null)" != Z ] || break; sleep 0.1; done
  if grep -q 'the npm process that started the agent exited' "$WORK/npx-start.log" && grep -q '"agent stopped"\|agent stopped' "$WORK/npx-start.log"; then
    echo "PASS SIGTERM to npx stops the agent (npm does not forward it; the agent noticed)"
    passed=$((passed + 1))
  else
    echo "FAIL SIGTERM to npx: the agent $agent_pid did not stop: $(tail -c 400 "$WORK/npx-start.log" | tr '\n' ' ')"
    failed=$((failed + 1))
    kill "$agent_pid" 2>/dev/null
  fi
else
  echo "FAIL npx agent start: no API within 60 s: $(tail -c 400 "$WORK/npx-start.log" | tr '\n' ' ')"
  failed=$((failed + 1))
  kill "$npx_pid" 2>/dev/null
fi

E2E_PASSED=$passed E2E_FAILED=$failed node --import tsx scripts/e2e/run.ts
status=$?

# The agent as the systemd unit's user, groups and capabilities (setpriv), against a Debian-layout
# nginx, in private namespaces (scripts/e2e/nonroot.sh). The unit's user must read the clone.
chmod 0755 "$WORK"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO bash scripts/e2e/nonroot.sh "$WORK/agent" || status=1
exit $status

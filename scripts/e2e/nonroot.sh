#!/usr/bin/env bash
# The agent as the systemd unit runs it, without systemd: under setpriv with exactly the unit's user,
# groups and capability set (read from config/nginx-agent.service, and for config apply from the
# examples/systemd/config-apply.conf drop-in), against a Debian-layout nginx started here as root:
# /etc/nginx from Debian's package, /var/log/nginx owned root:adm with www-data:adm 0640 logs,
# /run/nginx.pid, listening on port 80.
# So that nothing on the machine changes, it runs in private mount, network and PID namespaces: a copy of
# /etc/nginx, the log directory, /run, and /etc/passwd + /etc/group with the nginx-agent user are
# bind-mounted over the real ones only there, and port 80 is the namespace's own.
# Checks: metrics from stub_status and from the access log, nginx -t verdicts equal to root's (a valid
# config passes, a broken one fails naming the file and line), and a config apply.
# Prints `PASS <part>` / `FAIL <part>: reason`, then `N passed, N failed`; exit 1 on any failure.
# Usage (root): scripts/e2e/nonroot.sh [CHECKOUT]   CHECKOUT: a built checkout (default: this one)
set -uo pipefail

ROOT=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
UNIT=$ROOT/config/nginx-agent.service
DROPIN=$ROOT/examples/systemd/config-apply.conf

if [ "${NONROOT_E2E_INSIDE:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "FAIL non-root run: needs root to start nginx and switch users (sudo $0)"; exit 1; }
  for tool in unshare setpriv nginx ip node; do
    command -v "$tool" >/dev/null || { echo "FAIL non-root run: needs $tool (scripts/install-test-deps.sh)"; exit 1; }
  done
  # Own PID namespace too: the agent sees only this nginx, not the machine's others.
  NONROOT_E2E_INSIDE=1 exec unshare --mount --net --pid --fork --mount-proc --propagation private "$0" "$ROOT"
fi

passed=0
failed=0
pass() { echo "PASS non-root: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL non-root: $1"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed (non-root run)"
  [ "$failed" -eq 0 ]
  exit $?
}

T=$(mktemp -d "${TMPDIR:-/tmp}/nginx-agent-nonroot.XXXXXX")
chmod 0755 "$T"
AGENT_PID=""
cleanup() {
  [ -z "$AGENT_PID" ] || kill "$AGENT_PID" 2>/dev/null
  [ ! -f /run/nginx.pid ] || kill -QUIT "$(cat /run/nginx.pid)" 2>/dev/null
  sleep 0.5
  rm -rf "$T"
}
trap cleanup EXIT

# ---- the unit's identity, read from the unit file (and the drop-in) ----
UNIT_USER=$(sed -n 's/^User=//p' "$UNIT" | tail -1)
UNIT_GROUPS=$(sed -n 's/^SupplementaryGroups=//p' "$UNIT" | tr ' ' '\n' | grep . | paste -sd, -)
caps_of() { # the capabilities a list of unit files grants (AmbientCapabilities, merged like systemd)
  sed -n 's/^AmbientCapabilities=//p' "$@" | tr ' ' '\n' | grep . | tr 'A-Z' 'a-z' | sed 's/^cap_//' | sort -u | paste -sd, -
}
CAPS=$(caps_of "$UNIT")
APPLY_CAPS=$(caps_of "$UNIT" "$DROPIN")
[ -n "$UNIT_USER" ] || { fail "no User= in $UNIT"; finish; }

# ---- a Debian-layout nginx in this namespace ----
ip link set lo up
mkdir -p "$T/etc" "$T/log" "$T/run" "$T/home"
cp -a /etc/nginx "$T/etc/nginx"
cat >"$T/etc/nginx/conf.d/agent-status.conf" <<'CONF'
# stub_status for the agent, on loopback only.
server {
    listen 127.0.0.1:8080;
    access_log off;
    location = /nginx_status { stub_status; }
}
CONF
cat >"$T/etc/nginx/conf.d/site.conf" <<'CONF'
server {
    listen 127.0.0.1:8081;
    location = /version { return 200 "v1\n"; }
}
CONF
# The user, in this namespace only: passwd and group with nginx-agent (and adm membership by the unit).
cp /etc/passwd "$T/passwd"
cp /etc/group "$T/group"
AGENT_UID=64999
echo "$UNIT_USER:x:$AGENT_UID:$AGENT_UID:NGINX agent:/var/lib/$UNIT_USER:/usr/sbin/nologin" >>"$T/passwd"
echo "$UNIT_USER:x:$AGENT_UID:" >>"$T/group"
mount --bind "$T/passwd" /etc/passwd
mount --bind "$T/group" /etc/group
mount --bind "$T/etc/nginx" /etc/nginx
mount --bind "$T/log" /var/log/nginx 2>/dev/null || { mkdir -p /var/log/nginx && mount --bind "$T/log" /var/log/nginx; }
mount --bind "$T/run" /run
# Debian's ownership: the log directory root:adm, the logs www-data:adm 0640 (read through adm).
chown root:adm /var/log/nginx
chmod 0755 /var/log/nginx
install -o www-data -g adm -m 0640 /dev/null /var/log/nginx/access.log
install -o www-data -g adm -m 0640 /dev/null /var/log/nginx/error.log
# What scripts/install.sh and systemd provide: the runtime directory (RuntimeDirectory=), the state
# directory (StateDirectory=, not reachable here without writing /var/lib: the agent's temp dir instead).
install -d -o "$AGENT_UID" -g "$AGENT_UID" -m 0750 "/run/$UNIT_USER" "$T/home"
# The drop-in's advice for config apply: the nginx-agent group may write conf.d.
chgrp -R "$UNIT_USER" /etc/nginx/conf.d && chmod -R g+w /etc/nginx/conf.d

if ! nginx -t >"$T/root-t.log" 2>&1; then fail "the Debian config does not pass nginx -t as root: $(tail -2 "$T/root-t.log")"; finish; fi
nginx || { fail "nginx did not start"; finish; }
for _ in $(seq 1 50); do [ -s /run/nginx.pid ] && break; sleep 0.1; done
pass "Debian-layout nginx started as root (/etc/nginx, /var/log/nginx root:adm, /run/nginx.pid, port 80)"

# ---- the agent as the unit's user ----
cat >"$T/agent.yaml" <<CONF
log:
  format: json
api:
  port: 8039
wasm:
  enabled: false
nginx_config:
  apply_enabled: true
CONF
chmod 0644 "$T/agent.yaml"

start_agent() { # $1: capability list
  local caps=$1
  local capargs=(--inh-caps="-all${caps:+,+${caps//,/,+}}" --ambient-caps="-all${caps:+,+${caps//,/,+}}"
    --bounding-set="-all${caps:+,+${caps//,/,+}}")
  (cd "$T/home" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$T/home" RUNTIME_DIRECTORY="/run/$UNIT_USER" \
    TMPDIR="/run/$UNIT_USER" setpriv --reuid="$UNIT_USER" --regid="$UNIT_USER" --groups="$UNIT_GROUPS" \
    "${capargs[@]}" --no-new-privs "$(command -v node)" "$ROOT/bin/agent.js" start --config "$T/agent.yaml" \
    >"$T/agent.log" 2>&1) &
  AGENT_PID=$!
}
stop_agent() {
  kill "$AGENT_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
  AGENT_PID=""
}
# HTTP from inside the namespace; prints the status, a newline, the body.
http() { # METHOD URL [BODY]
  node -e '
    process.stdout.on("error", () => {}); // a reader that stops early (head -1)
    const [m, u, b] = process.argv.slice(1);
    fetch(u, { method: m, body: b || undefined, headers: b ? { "content-type": "application/json" } : {},
               signal: AbortSignal.timeout(30000) })
      .then(async (r) => process.stdout.write(r.status + "\n" + (await r.text())),
            (e) => { process.stdout.write("000\n" + e.message); });' "$@"
}
json_get() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v;try{v=JSON.parse(s.slice(s.indexOf("\n")+1))}catch{v={}};const f=new Function("v","return "+process.argv[1]);let r;try{r=f(v)}catch{r=undefined};console.log(typeof r==="string"?r:JSON.stringify(r))})' "$1"; }
wait_for() { # SECONDS CONDITION...
  local n=$1
  shift
  for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 1; done
  return 1
}
agent_log() { tail -c 1500 "$T/agent.log" | tr '\n' ' '; }

start_agent "$CAPS"
if wait_for 60 bash -c "$(declare -f http); http GET http://127.0.0.1:8039/health | head -1 | grep -q 200"; then
  pass "agent runs as $UNIT_USER (groups $UNIT_GROUPS, capabilities ${CAPS:-none}) and answers /health"
else
  fail "agent /health: $(agent_log)"
  finish
fi
status=$(grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|CapAmb):' "/proc/$AGENT_PID/status" | tr -s '\t' ' ' | paste -sd';' -)
echo "$status" | grep -q "Uid: $AGENT_UID $AGENT_UID" || fail "the agent process does not run as uid $AGENT_UID: $status"
echo "       ($status)"

# Traffic: 20 x 200 on port 80 (Debian's default site), 5 x 404.
for _ in $(seq 1 20); do http GET http://127.0.0.1/ >/dev/null; done
for _ in $(seq 1 5); do http GET http://127.0.0.1/missing >/dev/null; done

instance_field() { http GET http://127.0.0.1:8039/v1/nginx | json_get "(v.instances.find(i=>i.confPath==='/etc/nginx/nginx.conf')||{})$1"; }
metric_sum() { http GET http://127.0.0.1:8039/metrics | grep -E "^$1(\{[^}]*${2:-}[^}]*\})? " | awk '{s+=$NF} END {print s+0}'; }

if wait_for 60 bash -c "$(declare -f http metric_sum); [ \"\$(metric_sum nginx_http_requests_total)\" -ge 25 ] && [ \"\$(metric_sum nginx_up)\" = 1 ]"; then
  pass "stub_status metrics: nginx_up 1, nginx_http_requests_total $(metric_sum nginx_http_requests_total) (25 sent)"
else
  fail "stub_status metrics: nginx_up $(metric_sum nginx_up), requests $(metric_sum nginx_http_requests_total); $(agent_log)"
fi
if wait_for 30 bash -c "$(declare -f http metric_sum); [ \"\$(metric_sum nginx_http_responses_total 'status_range=\"4xx\"')\" -ge 5 ]"; then
  pass "access-log metrics through the adm group: $(metric_sum nginx_http_responses_total 'status_range="2xx"') 2xx, $(metric_sum nginx_http_responses_total 'status_range="4xx"') 4xx"
else
  fail "access-log metrics (www-data:adm 0640 logs): $(http GET http://127.0.0.1:8039/metrics | grep -E '^nginx_(log|http_resp)' | head -3 | tr '\n' ' ') $(agent_log)"
fi

# nginx -t: the same verdict as root's.
if wait_for 30 bash -c "$(declare -f http json_get instance_field); [ \"\$(instance_field .lastTest.ok)\" = true ]"; then
  pass "nginx -t as $UNIT_USER passes the valid config, as root's does"
else
  fail "nginx -t verdict on a valid config: $(instance_field .lastTest)"
fi
printf 'server {\n    listen 127.0.0.1:8082;\n    bogus_directive on;\n}\n' >/etc/nginx/conf.d/broken.conf
if wait_for 30 bash -c "$(declare -f http json_get instance_field); [ \"\$(instance_field .lastTest.ok)\" = false ]"; then
  t=$(instance_field ".lastTest.messages.find(m=>m.level==='emerg')")
  untested=$(instance_field ".lastTest.untested")
  root_verdict=$(nginx -t 2>&1 | grep -c 'unknown directive "bogus_directive" in /etc/nginx/conf.d/broken.conf:3')
  if echo "$t" | grep -q '"file":"/etc/nginx/conf.d/broken.conf","line":3' && [ "$untested" = undefined ] && [ "$root_verdict" = 1 ]; then
    pass "a broken config fails nginx -t as $UNIT_USER as it does as root, naming /etc/nginx/conf.d/broken.conf:3"
  else
    fail "broken config verdict: $t (untested: $untested; root: $root_verdict)"
  fi
else
  fail "a broken config was not noticed: $(instance_field .lastTest)"
fi
rm -f /etc/nginx/conf.d/broken.conf
wait_for 30 bash -c "$(declare -f http json_get instance_field); [ \"\$(instance_field .lastTest.ok)\" = true ]" ||
  fail "the repaired config does not pass again: $(instance_field .lastTest)"

# A permission problem is said as that: without the unit's CAP_NET_BIND_SERVICE, nginx -t cannot bind port 80.
stop_agent
start_agent ""
if wait_for 60 bash -c "$(declare -f http json_get instance_field); [ \"\$(instance_field .lastTest.ok)\" = false ]"; then
  untested=$(instance_field .lastTest.untested)
  if echo "$untested" | grep -Eq "^cannot test as user $UNIT_USER: binding \S+:80 needs CAP_NET_BIND_SERVICE$"; then
    pass "without the capability, the verdict is \"$untested\", not a broken config"
  else
    fail "without CAP_NET_BIND_SERVICE: untested is '$untested'; $(instance_field .lastTest)"
  fi
else
  fail "without CAP_NET_BIND_SERVICE the test passed or never ran: $(instance_field .lastTest)"
fi

# ---- config apply with the drop-in's capabilities ----
stop_agent
start_agent "$APPLY_CAPS"
wait_for 60 bash -c "$(declare -f http json_get instance_field); [ \"\$(instance_field .lastTest.ok)\" = true ]" ||
  fail "agent with the config-apply drop-in: $(agent_log)"
id=$(instance_field .id)
body=$(node -e 'console.log(JSON.stringify({files:[{path:"/etc/nginx/conf.d/site.conf",
  content:"server {\n    listen 127.0.0.1:8081;\n    location = /version { return 200 \"v2\\n\"; }\n}\n"}]}))')
answer=$(http PUT "http://127.0.0.1:8039/v1/nginx/$id/config" "$body")
version=$(http GET http://127.0.0.1:8081/version | tail -1)
if [ "$(echo "$answer" | head -1)" = 200 ] && [ "$version" = v2 ]; then
  pass "config apply through the drop-in (capabilities $APPLY_CAPS, group-writable conf.d): written, tested, reloaded"
else
  fail "config apply: GET /version gave '$version'; $(echo "$answer" | tr -s '\n ' ' ' | cut -c1-1200)"
fi
stop_agent
finish

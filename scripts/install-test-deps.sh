#!/usr/bin/env bash
# Installs the Debian packages the test suite, scripts/e2e.sh, scripts/container-e2e.sh and the
# benchmarks use: a real nginx; the peers tests compare against (Prometheus with promtool, the nginx
# Prometheus exporter, Alertmanager, GoAccess, mtail, node_exporter, wrk, hyperfine); nats-server;
# clang/lld/wasi-libc for the C Wasm examples; Chromium for the dashboard test; podman, runc,
# buildah, mmdebstrap and uidmap for the container run; setpriv and unshare (util-linux) and ip
# (iproute2) for the non-root run; systemd-analyze,
# logrotate and tmux; openssl for the fleet TLS test.
# Idempotent: `apt-get update` once, and only when a package is missing; installed ones are left alone.
set -euo pipefail
pkgs=(
  nginx prometheus prometheus-nginx-exporter prometheus-alertmanager goaccess wrk systemd nats-server
  clang lld wasi-libc libclang-rt-14-dev-wasm32 chromium podman runc mmdebstrap buildah uidmap
  logrotate tmux prometheus-node-exporter mtail hyperfine util-linux iproute2 ca-certificates git openssl
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all ${#pkgs[@]} packages are installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-test-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
# policy-rc.d: a Debian package must not start its service (nginx, prometheus, ...): the tests start
# their own on free ports, and a system one would hold port 80 or 9090.
rcd=/usr/sbin/policy-rc.d
own_rcd=no
if [ ! -e "$rcd" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$rcd" >/dev/null && $SUDO chmod 0755 "$rcd" && own_rcd=yes
fi
status=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || status=$?
[ "$own_rcd" = no ] || $SUDO rm -f "$rcd"
exit $status

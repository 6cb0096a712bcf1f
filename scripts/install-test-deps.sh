#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks use: a real nginx, and the peers
# tests compare against (Prometheus with promtool, the nginx Prometheus exporter, GoAccess, wrk).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
pkgs=(nginx prometheus prometheus-nginx-exporter goaccess wrk systemd)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The Debian package may start its own nginx/prometheus where an init system runs; tests use their own.

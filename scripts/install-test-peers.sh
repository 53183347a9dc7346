#!/usr/bin/env bash
# Installs the real programs the test suite talks to, when missing:
# redis-server, sipp (Debian package sip-tester), chromium and PostgreSQL
# (initdb/postgres for the reports tests; Debian keeps them in
# /usr/lib/postgresql/<version>/bin).
# Debian/Ubuntu only; needs root or sudo. Safe to run again.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing test peers: ${need[*]} — install them with your package manager" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "missing test peers: ${need[*]} — run as root or install: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "installing test peers: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

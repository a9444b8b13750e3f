#!/usr/bin/env bash
# Install the system programs the tests need, only where they are missing:
# redis-server (Debian's redis-server; its binary is also the failover test's sentinel, run as
# `redis-server CONF --sentinel`, so no redis-sentinel package is needed); unless SKIP_PROMETHEUS=1, prometheus + promtool; unless
# SKIP_CHROMIUM=1, Debian's chromium (the console's browser test drives it with Playwright).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${SKIP_PROMETHEUS:-0}" != "1" ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
fi
if [ "${SKIP_CHROMIUM:-0}" != "1" ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]}; install them with your package manager (see README)" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing ${need[*]} (apt-get)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

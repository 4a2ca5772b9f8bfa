#!/usr/bin/env bash
# Installs what `npm test` needs besides Node packages, from Debian's packages, when missing:
# redis-server (the Redis store tests start their own, on a free port), openssl (the TLS and
# mTLS tests make throw-away certificates) and chromium (the scanner's HTML report is opened in
# headless Chromium through playwright-core, at /usr/bin/chromium), promtool (Debian's prometheus
# package: the alert rules and dashboard queries in examples/observability/ are checked with it).
# and systemd-analyze (Debian's systemd package: the systemd unit's check). Used by the README's test command and by .ci/run.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies present: $(redis-server --version | cut -d' ' -f1-3), $(openssl version), $(/usr/bin/chromium --version 2>/dev/null | head -1), $(promtool --version 2>&1 | head -1)"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (apt-get)"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
# The packages start a system redis on 6379 and a prometheus on 9090; the tests need neither.
$sudo service redis-server stop >/dev/null 2>&1 || true
$sudo service prometheus stop >/dev/null 2>&1 || true
$sudo service prometheus-node-exporter stop >/dev/null 2>&1 || true

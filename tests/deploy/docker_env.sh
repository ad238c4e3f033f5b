# Sourced by the deployment tests: a private dockerd and the offline base image.
#
#   vb_docker_start WORKDIR   starts dockerd with its data under WORKDIR (no
#                             bridge, no iptables: containers use the host's
#                             network, nothing on the host is changed), sets
#                             DOCKER_HOST, and stops it and removes WORKDIR on exit
#   vb_base_image CACHEDIR    loads voicebus-base:bookworm, made once with
#                             debootstrap from the host's Debian mirror and
#                             cached as CACHEDIR/bookworm-base.tar.gz
# Needs root, dockerd (docker.io) and debootstrap; exits 77 (ctest: skipped)
# without them.
set -euo pipefail

vb_need() {
  for c in "$@"; do
    command -v "$c" >/dev/null || { echo "SKIP: $c not installed (tools/bootstrap.sh installs it)"; exit 77; }
  done
  [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (dockerd)"; exit 77; }
}

vb_cleanup_hooks=()
vb_on_exit() { vb_cleanup_hooks=("$*" "${vb_cleanup_hooks[@]}"); }
vb_run_cleanup() {
  local rc=$?
  for h in "${vb_cleanup_hooks[@]}"; do eval "$h" || true; done
  exit $rc
}
trap vb_run_cleanup EXIT
trap 'exit 130' INT TERM

# vb_wait SECONDS CMD...: retry CMD every 0.2 s until it succeeds or time runs out.
vb_wait() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

vb_docker_start() {
  local w=$1
  mkdir -p "$w"
  VB_DOCKERD_DIR=$w
  export DOCKER_HOST=unix://$w/docker.sock
  dockerd --data-root "$w/data" --exec-root "$w/exec" --host "$DOCKER_HOST" --pidfile "$w/docker.pid" \
          --bridge=none --iptables=false --ip-masq=false > "$w/dockerd.log" 2>&1 &
  VB_DOCKERD_PID=$!
  vb_on_exit vb_docker_stop
  vb_wait 60 docker info || { echo "FAIL: dockerd did not start"; tail -20 "$w/dockerd.log"; exit 1; }
}

vb_docker_stop() {
  [ -n "${VB_DOCKERD_PID:-}" ] || return 0
  docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1 || true
  kill "$VB_DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 150); do kill -0 "$VB_DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$VB_DOCKERD_PID" 2>/dev/null || true
  # Its containerd shims and overlay mounts go with it; then its files.
  grep -o " $VB_DOCKERD_DIR/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$VB_DOCKERD_DIR"
  VB_DOCKERD_PID=
}

vb_base_image() {
  local cache=$1 tarball=$1/bookworm-base.tar.gz
  if [ ! -f "$tarball" ]; then
    local mirror
    # A missing /etc/apt/sources.list (deb822-only hosts) is no error.
    mirror=$( { grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } \
             | grep -oE 'https?://[^ ]+' | head -1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    echo "debootstrap bookworm from $mirror (once; cached in $tarball)"
    mkdir -p "$cache"
    local root=$cache/rootfs.tmp
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log"; rm -rf "$root"; echo "FAIL: debootstrap"; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*  # apt-get update in the images
    tar -C "$root" -c . | gzip -1 > "$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker image inspect voicebus-base:bookworm >/dev/null 2>&1 \
    || docker import "$tarball" voicebus-base:bookworm >/dev/null
}

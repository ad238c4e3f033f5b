#!/usr/bin/env bash
# Cross build of voicebus for another CPU with Debian's cross toolchain and
# multiarch libraries; run by hand (not by CI: see README, "arm64").
# Run with --help for the steps and options.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

usage() {
  cat <<EOF
usage: tools/cross-build.sh ARCH [options]

Builds every program, test and bench of voicebus for ARCH with Debian's cross
toolchain and Debian's multiarch ARCH libraries, runs the unit tests under
qemu-user, and builds the Debian package for ARCH. ARCH: arm64 (only).

Steps (each prints what it does; a failed step stops with its reason):
  1. host packages: crossbuild-essential-ARCH, qemu-user, cmake, ninja, protoc
     (only those missing; needs root or sudo)
  2. dpkg --add-architecture ARCH, and the ARCH libraries the build links
     (libzmq3-dev:ARCH, …). apt's plan is checked first (apt-get -s): if it
     would remove any package, nothing is installed and the script stops.
  3. the two ARCH -dev packages that cannot sit beside their amd64 twins
     (libwebsockets-dev, libyaml-cpp-dev) are unpacked into DIR-deps/usr
  4. configure DIR with cmake/toolchains/TRIPLET.cmake, build (ccache if any)
  5. ctest -L unit in DIR: the unit tests through qemu-TRIPLET
  6. cpack in DIR: voicebus_VERSION_ARCH.deb, checked with dpkg-deb and file

options:
  --build-dir DIR   build folder (default: build-ARCH in the source tree)
  -j, --jobs N      parallel compile jobs (default 2)
  --fresh           empty DIR first (a cold build)
  --no-apt          install nothing; fail if something is missing
  --no-test         skip step 5
  --no-package      skip step 6
  -h, --help        this text

Exit: 0 done, 1 a step failed, 64 bad usage.
EOF
}

arch="" build="" jobs=2 fresh=0 apt=1 run_tests=1 package=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build-dir) [ $# -ge 2 ] || { echo "cross-build: --build-dir needs a folder" >&2; exit 64; }
                 build=$2; shift ;;
    -j|--jobs) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "cross-build: $1 needs a number" >&2; exit 64; }
               jobs=$2; shift ;;
    --fresh) fresh=1 ;;
    --no-apt) apt=0 ;;
    --no-test) run_tests=0 ;;
    --no-package) package=0 ;;
    -*) echo "cross-build: unknown option $1 (see --help)" >&2; exit 64 ;;
    *) [ -z "$arch" ] || { echo "cross-build: one ARCH only (got $arch and $1)" >&2; exit 64; }
       arch=$1 ;;
  esac
  shift
done
case "$arch" in
  arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64 ;;
  "") echo "cross-build: which ARCH? (arm64; see --help)" >&2; exit 64 ;;
  *) echo "cross-build: ARCH $arch is not supported (arm64 is; see --help)" >&2; exit 64 ;;
esac
build=${build:-$top/build-$arch}
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
overlay=$build-deps
toolchain=$top/cmake/toolchains/$triplet.cmake
t_start=$(date +%s)

step() { echo "cross-build: == $*"; }
die() { echo "cross-build: FAILED: $*" >&2; exit 1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root or sudo to run: $*"; fi
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_install PKG…: installs those missing, after checking apt's plan removes nothing.
apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { echo "cross-build: all present (${#@} packages)"; return 0; }
  [ "$apt" = 1 ] || die "missing packages (and --no-apt): ${missing[*]}"
  echo "cross-build: installing ${missing[*]}"
  local plan
  plan=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get -s install --no-install-recommends "${missing[@]}" 2>&1) ||
    die "apt cannot install them: $(echo "$plan" | grep -E '^E:|broken' | head -5)"
  if echo "$plan" | grep -q '^Remv'; then
    echo "$plan" | grep '^Remv' >&2
    die "apt would remove the packages above to install the $arch libraries; nothing was installed. Install the $arch -dev packages into a separate sysroot instead (debootstrap/mmdebstrap), or free the conflict by hand."
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    die "apt-get install failed (see above)"
}

# 1. Host tools. protoc stays the host's: it runs during the build.
step "1/6 host tools"
command -v apt-get >/dev/null || die "not a Debian system (no apt-get)"
apt_install crossbuild-essential-$arch qemu-user cmake ninja-build pkg-config protobuf-compiler ccache dpkg-dev file

# 2. ARCH libraries (multiarch): the -dev packages of tools/bootstrap.sh's list
# that the build links, and the runtime libraries qemu needs.
step "2/6 $arch libraries (multiarch)"
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  [ "$apt" = 1 ] || die "dpkg has no $arch architecture (and --no-apt)"
  echo "cross-build: dpkg --add-architecture $arch; apt-get update"
  as_root dpkg --add-architecture "$arch"
  as_root apt-get update -qq || die "apt-get update failed"
fi
target_pkgs=(
  libc6 libstdc++6
  libzmq3-dev cppzmq-dev libprotobuf-dev libssl-dev libopus-dev libasound2-dev libpulse-dev
  libspeexdsp-dev libzstd-dev libwebrtc-audio-processing-dev
  libpocketsphinx-dev libsphinxbase-dev libespeak-ng-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime halves of the overlay packages below, and libwebsockets-dev's deps
  libwebsockets17 libwebsockets-evlib-ev libwebsockets-evlib-uv libwebsockets-evlib-glib
  libev-dev libuv1-dev libcap-dev zlib1g-dev libyaml-cpp0.7
)
apt_install "${target_pkgs[@]/%/:$arch}"

# 3. The overlay: libyaml-cpp-dev is Multi-Arch: no, libwebsockets-dev ships a
# different lws_config.h per architecture, so neither installs beside the
# amd64 one the native build uses. Their files are unpacked into DIR-deps;
# .pc prefixes point there, and the .so links to the installed arm64 runtime
# libraries (which dpkg knows, for dpkg-shlibdeps and qemu).
step "3/6 overlay $overlay"
overlay_pkgs=(libwebsockets-dev libyaml-cpp-dev)
want="layout2 "  # bump when the steps below change
for p in "${overlay_pkgs[@]}"; do
  v=$(apt-cache policy "$p:$arch" 2>/dev/null | awk '/Candidate:/ {print $2}')
  { [ -n "$v" ] && [ "$v" != "(none)" ]; } || die "apt knows no $p:$arch (apt-get update?)"
  want+="$p=$v "
done
if [ "$(cat "$overlay/.stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$overlay"
  mkdir -p "$overlay/debs"
  for pv in ${want#layout* }; do
    (cd "$overlay/debs" && apt-get download -qq "${pv%%=*}:$arch=${pv#*=}") ||
      die "apt-get download ${pv%%=*}:$arch failed"
  done
  for deb in "$overlay"/debs/*.deb; do dpkg-deb -x "$deb" "$overlay"; done
  libdir=$overlay/usr/lib/$triplet
  for pc in "$libdir"/pkgconfig/*.pc; do
    sed -i "s|^prefix=.*|prefix=\"$overlay/usr\"|" "$pc"
  done
  # libX.so -> libX.so.N (relative) -> the multiarch runtime library; every
  # libX.so.* of it, as the packages' CMake files name the full version.
  for so in "$libdir"/*.so; do
    real=$(readlink "$so")
    [ -e "/usr/lib/$triplet/$real" ] || die "$real:$arch is not installed (step 2)"
    for lib in /usr/lib/"$triplet/${so##*/}".*; do ln -sf "$lib" "$libdir/"; done
  done
  echo "$want" > "$overlay/.stamp"
fi
echo "cross-build: overlay has $want"

# 4. Configure and build everything.
step "4/6 build $build ($triplet, -j$jobs)"
command -v "$qemu" >/dev/null || die "$qemu not found (qemu-user)"
if [ "$fresh" = 1 ]; then rm -rf "$build"; fi
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
t0=$(date +%s)
cmake -S "$top" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DVB_CROSS_OVERLAY="$overlay/usr" "${launcher[@]}" ||
  die "cmake configure failed (see above)"
cmake --build "$build" -j "$jobs" || die "build failed (see above)"
t_build=$(( $(date +%s) - t0 ))
echo "cross-build: built in ${t_build}s"
file "$build/bin/vb" | grep -q "ARM aarch64" || die "$build/bin/vb is not an arm64 program: $(file -b "$build/bin/vb")"

# 5. Unit tests under qemu-user (the toolchain's CMAKE_CROSSCOMPILING_EMULATOR).
if [ "$run_tests" = 1 ]; then
  step "5/6 unit tests under $qemu"
  t0=$(date +%s)
  ctest --test-dir "$build" -L unit --output-on-failure -j 1 || die "unit tests failed under $qemu (see above)"
  echo "cross-build: unit tests passed in $(( $(date +%s) - t0 ))s"
fi

# 6. The Debian package for ARCH (cmake/packaging.cmake; dpkg-shlibdeps reads
# the multiarch libraries' dependencies).
if [ "$package" = 1 ]; then
  step "6/6 Debian package"
  rm -f "$build"/voicebus_*_"$arch".deb
  (cd "$build" && cpack -G DEB) || die "cpack failed (see above)"
  deb=$(ls "$build"/voicebus_*_"$arch".deb 2>/dev/null | head -1)
  [ -n "$deb" ] || die "cpack made no voicebus_*_$arch.deb in $build"
  [ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || die "$deb: Architecture is not $arch"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  dpkg-deb -x "$deb" "$tmp"
  file "$tmp/usr/bin/vb" | grep -q "ARM aarch64" || die "$deb: usr/bin/vb is not arm64"
  echo "cross-build: $deb ($(du -k "$deb" | cut -f1) KB)"
  echo "cross-build: Depends: $(dpkg-deb -f "$deb" Depends)"
fi
echo "cross-build: done in $(( $(date +%s) - t_start ))s ($build)"

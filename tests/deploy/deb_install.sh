#!/usr/bin/env bash
# Deployment test (ctest label `deploy`): the Debian package installs on a
# clean Debian 12 and runs the main job.
#
#   tests/deploy/deb_install.sh BUILD_DIR
#
# Makes BUILD_DIR's .deb with cpack, then in a fresh container of the
# debootstrap'd base image (nothing installed but Debian's minbase):
# `apt-get install ./voicebus_*.deb` (apt fetches the runtime dependencies from
# the host's Debian mirror), `vb demo` from an empty folder, and checks the
# agent's reply WAV; also `man vb`-able pages, units and configs are in place.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/docker_env.sh"
build=$(cd "${1:?usage: deb_install.sh BUILD_DIR}" && pwd)
vb_need dockerd docker debootstrap cpack

work=$(mktemp -d "$build/deploy-deb.XXXXXX")
vb_on_exit rm -rf "$work"
(cd "$build" && cpack --config CPackConfig.cmake -B "$work/pkg" >/dev/null) || { echo "FAIL: cpack"; exit 1; }
rm -rf "$work/pkg/_CPack_Packages"
deb=$(ls "$work"/pkg/voicebus_*.deb)
echo "package: $(basename "$deb") $(stat -c %s "$deb") bytes"

vb_docker_start "$work/docker"
vb_base_image "$build/deploy-cache"
mkdir -p "$build/deploy-cache/apt-archives/partial"

start=$(date +%s)
set +e
docker run --rm --network host -v "$work/pkg:/pkg:ro" -v "$build/deploy-cache/apt-archives:/var/cache/apt/archives" \
  voicebus-base:bookworm sh -ec '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends /pkg/voicebus_*.deb >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }
    for f in /usr/bin/vb /usr/bin/vb-gateway /usr/share/voicebus/config/demo.yaml /usr/share/man/man1/vb.1 \
             /lib/systemd/system/voicebus.service /lib/systemd/system/voicebus-actor@.service; do
      test -e "$f" || { echo "FAIL: $f not installed"; exit 1; }
    done
    vb --help >/dev/null
    mkdir /tmp/empty && cd /tmp/empty
    vb demo --config demo.yaml --out /tmp/empty/out --say "What time is it?" --timeout 60 </dev/null
    test -s /tmp/empty/out/reply.wav || { echo "FAIL: no reply.wav"; exit 1; }
    echo "reply.wav: $(stat -c %s /tmp/empty/out/reply.wav) bytes"
  ' > "$work/run.log" 2>&1
rc=$?
set -e
cat "$work/run.log" | tail -40
echo "install + vb demo in the clean container: $(( $(date +%s) - start )) s"
[ $rc = 0 ] || { echo "FAIL: the package did not install or vb demo failed (exit $rc)"; exit 1; }
grep -q "the agent's reply is in" "$work/run.log" || { echo "FAIL: vb demo did not report the reply"; exit 1; }
echo "PASS"

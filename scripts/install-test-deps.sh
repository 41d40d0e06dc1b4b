#!/bin/sh
# Install what the integration tests need, only what is missing (Debian 12, as root).
set -eu

# podman (with conmon) and containerd: the client tests of issue 10 (tests/tests/podman.rs,
# tests/tests/containerd_runc_shim.rs) drive fdbox through them.
packages="busybox-static strace runc crun iproute2 util-linux podman conmon containerd"
missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-test-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# A fresh machine has no package lists yet: update once if the first try fails.
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing; }

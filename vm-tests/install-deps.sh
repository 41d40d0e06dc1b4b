#!/bin/sh
# Install what `make vm-test` needs on the host, only what is missing (Debian 12, as root).
# The kernels themselves are not installed: vm-tests fetches them with `apt-get download`.
set -eu

# The last three are the host tools the VMs get (see HOST_PROGRAMS in src/image.rs).
packages="qemu-system-x86 kmod e2fsprogs busybox-static xz-utils util-linux strace runc"
missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "vm-tests/install-deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# A fresh machine has no package lists yet: update once if the first try fails.
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing; }

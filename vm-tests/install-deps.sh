#!/bin/sh
# Install what `make vm-test` needs on the host, only what is missing (Debian 12, as root).
# The kernels themselves are not installed: vm-tests fetches them with `apt-get download`.
set -eu

# The last three are the host tools the VMs get (see HOST_PROGRAMS in src/image.rs).
packages="qemu-system-x86 kmod e2fsprogs busybox-static xz-utils util-linux strace runc"
exec "$(dirname "$0")/../scripts/apt-install-missing.sh" $packages

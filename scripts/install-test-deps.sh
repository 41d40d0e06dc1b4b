#!/bin/sh
# Install what the integration tests need, only what is missing (Debian 12, as root).
set -eu

# podman (with conmon) and containerd: the client tests of issue 10 (tests/tests/podman.rs,
# tests/tests/containerd_runc_shim.rs) drive fdbox through them.
packages="busybox-static strace runc crun iproute2 util-linux podman conmon containerd"
exec "$(dirname "$0")/apt-install-missing.sh" $packages

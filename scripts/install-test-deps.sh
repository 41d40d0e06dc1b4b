#!/bin/sh
# Install what the integration tests need, only what is missing (Debian 12, as root).
set -eu

packages="busybox-static strace runc crun iproute2 util-linux"
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

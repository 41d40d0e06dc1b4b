#!/bin/sh
# Install the Debian packages named as arguments that are not installed yet
# (Debian 12; as root, or through sudo). Every make target that needs
# packages goes through here.
set -eu

missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "apt-install-missing: installing$missing"
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# A fresh machine has no package lists yet: update once if the first try fails.
# shellcheck disable=SC2086
$sudo apt-get install -y --no-install-recommends $missing \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends $missing; }

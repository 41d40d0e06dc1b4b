#!/bin/sh
# Build the demo bundle: a busybox rootfs plus a config.json from `RUNTIME spec`, edited to
# print the container's pid 1, its hostname and its mounts.
#   usage: scripts/mkbundle.sh BUNDLE_DIR RUNTIME_BINARY
# Needs /bin/busybox from busybox-static and jq (`make demo` installs both when missing).
set -eu

bundle=${1:?usage: mkbundle.sh BUNDLE_DIR RUNTIME_BINARY}
runtime=${2:?usage: mkbundle.sh BUNDLE_DIR RUNTIME_BINARY}
busybox=/bin/busybox

[ -x "$busybox" ] || { echo "mkbundle: no $busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v jq >/dev/null || { echo "mkbundle: no jq (apt-get install jq)" >&2; exit 1; }

# Only ever replace a bundle this script made (never rm -rf an arbitrary directory).
if [ -e "$bundle" ] && [ ! -x "$bundle/rootfs/bin/busybox" ] && [ -n "$(ls -A "$bundle")" ]; then
    echo "mkbundle: $bundle exists and is not a bundle made by this script" >&2
    exit 1
fi
rm -rf "$bundle"
mkdir -p "$bundle/rootfs"

rootfs=$bundle/rootfs
mkdir "$rootfs/bin" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/tmp" "$rootfs/etc" "$rootfs/root"
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    # The list includes busybox itself; linking it would replace the binary.
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

(cd "$bundle" && "$runtime" spec)
jq '.process.terminal = false
  | .process.args = ["sh", "-c", "echo pid $$; echo hostname $(hostname); cat /proc/self/mounts"]
  | .hostname = "fdbox-demo"' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
echo "mkbundle: bundle ready in $bundle"

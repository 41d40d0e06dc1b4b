#!/bin/sh
# Memory of the fdbox shim per running container, against containerd's runc shim.
#
# Starts a containerd of its own (socket, root, state in a temp dir; CRI off), imports a
# busybox image built from busybox-static, runs N detached `sleep` containers with each shim
# (one shim per container, as `ctr run` does), and reports the shims' memory per container:
# RSS and PSS (proportional: shared pages split between the processes that map them) summed
# over the shim processes. Both shims watch OOM kills inside the shim process (the fdbox shim
# in its epoll loop, since it no longer runs an `fdbox events` process per container), so the
# shims are all there is to count. Everything is removed afterwards; containerd is stopped by
# its pid.
#
# Usage (root): shim/bench/rss.sh [N]   (default 10; the static binaries `make release` builds,
# or FDBOX_SHIM_BIN_DIR=DIR)
set -eu

N=${1:-10}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${FDBOX_SHIM_BIN_DIR:-$REPO/target/$(rustc -vV | sed -n 's/^host: //p')/release}
for f in "$BIN/containerd-shim-fdbox-v2" "$BIN/fdbox"; do
    [ -x "$f" ] || { echo "rss.sh: $f missing: make release" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "rss.sh: run as root" >&2; exit 1; }

W=$(mktemp -d /tmp/fdbox-shim-rss.XXXXXX)
NS=rss
CG=fdbox-shim-rss-$$
CTR="ctr --address $W/c.sock --namespace $NS"
cat > "$W/config.toml" <<EOF
version = 2
root = "$W/root"
state = "$W/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$W/c.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/opt"
EOF

PATH="$BIN:$PATH" FDBOX_SHIM_FDBOX="$BIN/fdbox" FDBOX_SHIM_ROOT="$W/fdbox-root" \
    containerd --config "$W/config.toml" > "$W/containerd.log" 2>&1 &
CTRD=$!
cleanup() {
    for id in $($CTR task ls -q 2>/dev/null); do
        $CTR task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $($CTR task ls -q 2>/dev/null); do $CTR task delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $($CTR container ls -q 2>/dev/null); do $CTR container delete "$id" >/dev/null 2>&1 || true; done
    kill "$CTRD" 2>/dev/null || true
    wait "$CTRD" 2>/dev/null || true
    for d in /sys/fs/cgroup/*/"$CG" /sys/fs/cgroup/"$CG"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
    if grep -q " $W" /proc/self/mountinfo; then
        echo "rss.sh: mounts left under $W; not removing it" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT INT TERM
i=0
until $CTR version >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "rss.sh: containerd did not start" >&2; cat "$W/containerd.log" >&2; exit 1; }
    sleep 0.1
done

# The image: busybox-static and its applets, one uncompressed layer.
mkdir -p "$W/rootfs/bin" "$W/img/blobs/sha256"
cp /bin/busybox "$W/rootfs/bin/busybox"
for a in sh sleep; do ln -s busybox "$W/rootfs/bin/$a"; done
tar -C "$W/rootfs" --owner=0 --group=0 -cf "$W/layer.tar" .
blob() { d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1"); mv "$1" "$W/img/blobs/sha256/$d"; echo "$d $s"; }
set -- $(blob "$W/layer.tar"); L=$1; LS=$2
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$L" > "$W/cfg.json"
set -- $(blob "$W/cfg.json"); C=$1; CS=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" > "$W/m.json"
set -- $(blob "$W/m.json"); M=$1; MS=$2
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"localhost/rss:latest"}}]}' "$M" "$MS" > "$W/img/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$W/img/oci-layout"
tar -C "$W/img" -cf "$W/image.tar" oci-layout index.json blobs
$CTR image import "$W/image.tar" >/dev/null

# Sum of a field (VmRSS from status, Pss from smaps_rollup) over pids, in kB.
sum_kb() {
    field=$1; shift; t=0
    for p in "$@"; do
        f=/proc/$p/status; [ "$field" = Pss ] && f=/proc/$p/smaps_rollup
        v=$(awk -v k="$field:" '$1 == k { print $2 }' "$f" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo $t
}

measure() {
    name=$1 runtime=$2 pattern=$3; shift 3
    for n in $(seq 1 "$N"); do
        $CTR run -d --null-io --runtime "$runtime" "$@" --cgroup "$CG/$name-$n" localhost/rss:latest "$name-$n" sleep 100000 >/dev/null
    done
    sleep 1
    pids=$(pgrep -f -- "$pattern.*-address $W/c.sock" || true)
    shims=$(echo "$pids" | wc -w)
    rss=$(sum_kb VmRSS $pids); pss=$(sum_kb Pss $pids)
    printf '%-28s %3d shims  RSS %6d kB/container  PSS %6d kB/container\n' "$name" "$shims" $((rss / N)) $((pss / N))
    for n in $(seq 1 "$N"); do $CTR task kill -s SIGKILL "$name-$n" >/dev/null; done
    sleep 1
    for n in $(seq 1 "$N"); do $CTR task delete "$name-$n" >/dev/null 2>&1 || true; $CTR container delete "$name-$n" >/dev/null; done
}

echo "$N containers of \`sleep\` per shim; memory of the shim processes divided by $N"
measure fdbox io.containerd.fdbox.v2 containerd-shim-fdbox-v2
measure runc io.containerd.runc.v2 containerd-shim-runc-v2 --runc-root "$W/runc-root"

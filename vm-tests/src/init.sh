#!/bin/busybox sh
# PID 1 of an fdbox test VM (written into the initramfs by vm-tests; see src/image.rs).
#
# Stage 1 runs on the initramfs. pivot_root cannot leave an initramfs root, and the container
# runtime under test pivots out of whatever root it finds, so stage 1 copies everything onto a
# tmpfs and switch_roots into it. Stage 2 sets the machine up like a pure cgroup v2 host, runs
# every test of /fdbox-vm/plan in its own process and powers off. It runs on busybox's sh: /bin/sh
# may be the host's dash (see HOST_PROGRAMS in src/image.rs).
#
# The lines starting with @@FDBOX-VM are what the host reads (src/report.rs): keep both in step.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
M=@@FDBOX-VM

fail() {
    echo "$M SETUP-FAILED $*"
    sync
    poweroff -f
    exit 1
}

uptime_s() {
    read -r up _ </proc/uptime
    echo "$up"
}

if [ "$1" != stage2 ]; then
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 tmpfs /newroot || fail "mount tmpfs for the new root"
    for e in /*; do
        case "$e" in
        /newroot | /proc | /sys | /dev) ;;
        *) cp -a "$e" /newroot/ || fail "copy $e to the tmpfs root" ;;
        esac
    done
    mkdir -p /newroot/proc /newroot/sys /newroot/dev
    exec switch_root /newroot /init stage2
    fail "switch_root"
fi

# --- stage 2: on a tmpfs root ------------------------------------------------------------------
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts || fail "mount devpts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue || fail "mount mqueue"
mount -t tmpfs -o mode=1777 tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount /run"
# Shared propagation on /, as systemd sets it up on the hosts fdbox runs on.
mount --make-rshared / || fail "make / rshared"

# A pure cgroup v2 hierarchy with every controller handed down from the root.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || fail "enable the $c controller"
done
echo "$M CGROUP $(cat /sys/fs/cgroup/cgroup.subtree_control)"

for m in $(cat /fdbox-vm/modules); do
    modprobe "$m" || fail "modprobe $m"
done

. /fdbox-vm/env

# The scratch disk (ext4) holds the test temp dirs and the workspace's target dir and fixtures;
# its workspace dir is bind-mounted where the tests expect the workspace (their paths were fixed
# at build time). A bind, not a symlink: runc refuses a rootfs path that crosses a symlink.
mount -t ext4 /dev/vda /scratch || fail "mount the scratch disk /dev/vda"
mkdir -p "$WORKSPACE" && mount --bind /scratch/workspace "$WORKSPACE" || fail "bind the workspace at $WORKSPACE"
ip link set lo up || fail "loopback up"
hostname fdbox-vm

# Tests run in $JOBS worker processes, each taking the next line of the plan. A test's output
# goes to a file and is printed as one block (TEST, output, RESULT) under a lock, so blocks never
# interleave; START says a test began (so one that hangs the VM can be named). The lock is a
# directory (mkdir is atomic; busybox here has no flock).
mkdir -p /run/fdbox-vm
echo 0 >/run/fdbox-vm/next

lock() {
    until mkdir /run/fdbox-vm/lock 2>/dev/null; do
        usleep 10000
    done
}

unlock() {
    rmdir /run/fdbox-vm/lock
}

next_test() {
    lock
    read -r n </run/fdbox-vm/next
    echo $((n + 1)) >/run/fdbox-vm/next
    unlock
    sed -n "$((n + 1))p" /fdbox-vm/plan
}

run_test() {
    log="/run/fdbox-vm/$1.$2.log"
    lock
    echo "$M START $1 $2"
    unlock
    t0=$(uptime_s)
    timeout -s KILL "$TEST_TIMEOUT" "/fdbox-vm/bin/$1" --exact "$2" --nocapture --test-threads=1 \
        </dev/null >"$log" 2>&1
    rc=$?
    t1=$(uptime_s)
    lock
    echo "$M TEST $1 $2 t=$t0"
    cat "$log"
    echo
    echo "$M RESULT $1 $2 rc=$rc t=$t1"
    unlock
    rm -f "$log"
}

worker() {
    while line=$(next_test) && [ -n "$line" ]; do
        # shellcheck disable=SC2086 # "exe name": two words, neither with spaces
        run_test $line
    done
}

echo "$M BEGIN release=$(uname -r) tests=$(wc -l </fdbox-vm/plan) jobs=$JOBS t=$(uptime_s)"
i=0
while [ "$i" -lt "$JOBS" ]; do
    worker &
    i=$((i + 1))
done
wait
echo "$M END t=$(uptime_s)"

sync
umount /scratch 2>/dev/null
poweroff -f

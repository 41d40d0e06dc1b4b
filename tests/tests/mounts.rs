//! Issue 3: every OCI mount semantic, checked from inside the container (mountinfo, stat, writes
//! that must fail) and from the host (files, and no mount left behind).
//!
//! Tests that need a submount or a shared mount in a bind source make it inside a private mount
//! namespace of their own (`unshare -m`, which then runs the runtime): the host never sees it.

use fdbox_tests::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Scripts print their findings, then `---`, then the container's mountinfo.
const MOUNTINFO: &str = "echo ---; cat /proc/self/mountinfo";

/// The lines a script printed before `---`, and the mountinfo after it.
fn split(out: &Output) -> (Vec<String>, Vec<MountEntry>) {
    let (head, tail) = out.stdout.split_once("---\n").unwrap_or((&out.stdout, ""));
    (head.lines().map(str::to_string).collect(), parse_mountinfo(tail))
}

#[track_caller]
fn mount_at<'a>(mounts: &'a [MountEntry], point: &str, out: &Output) -> &'a MountEntry {
    find_mount(mounts, point).unwrap_or_else(|| panic!("{point} is not a mount point inside: {out}"))
}

#[track_caller]
fn has_line(lines: &[String], want: &str, out: &Output) {
    assert!(lines.iter().any(|l| l == want), "no line {want:?} in the container's output: {out}");
}

fn bind(dest: &str, source: &Path, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "bind", "source": source, "options": options })
}

fn tmpfs(dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options })
}

/// `unshare -m sh -c '<setup> && exec "$@"' sh`: the runtime runs in a private mount namespace
/// in which `setup` made its mounts.
fn in_private_mount_ns(setup: &str) -> Vec<String> {
    ["unshare", "-m", "--propagation", "private", "sh", "-euc", &format!("{setup}; exec \"$@\""), "sh"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// bind mounts
// ---------------------------------------------------------------------------------------------

/// Binds of directories and files, with relative sources taken relative to the bundle; a file
/// onto a missing destination creates an empty file there (in the rootfs, not on the host).
#[test]
fn bind_dirs_and_files() {
    let Some(env) = Env::new("bind-dirs-files") else { return };
    let rootfs = env.writable_rootfs();
    let data = env.bundle.join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("hello"), "from-host\n").unwrap();
    let note = env.dir.join("note.txt");
    fs::write(&note, "a note\n").unwrap();
    env.add_mount(json!({ "destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "rw"] }))
        .add_mount(bind("/abs/data", &data, &["bind", "ro"]))
        .add_mount(json!({ "destination": "/etc/note", "source": note, "options": ["bind", "ro"] }))
        // `bind` on any type makes a bind mount.
        .add_mount(json!({ "destination": "/typed", "type": "tmpfs", "source": "data", "options": ["bind"] }));
    env.sh(
        "cat /data/hello; echo written > /data/new && echo data-writable; \
         cat /abs/data/hello; echo x 2>/dev/null > /abs/data/hello || echo abs-readonly; \
         cat /etc/note; stat -c %F /etc/note; echo x 2>/dev/null > /etc/note || echo note-readonly; \
         cat /typed/hello",
    );
    let c = env.container("bind");
    let out = c.run(&[]).ok();
    assert_eq!(
        out.stdout,
        "from-host\ndata-writable\nfrom-host\nabs-readonly\na note\nregular file\nnote-readonly\nfrom-host\n",
        "{out}"
    );
    // The container's write went through to the host directory; the read-only views changed
    // nothing.
    assert_eq!(fs::read_to_string(data.join("new")).unwrap(), "written\n");
    assert_eq!(fs::read_to_string(data.join("hello")).unwrap(), "from-host\n");
    assert_eq!(fs::read_to_string(&note).unwrap(), "a note\n");
    // The missing destinations were created inside the rootfs: an empty file for the file
    // bind, directories for the directory bind.
    let made = fs::metadata(rootfs.join("etc/note")).expect("/etc/note was not created in the rootfs");
    assert!(made.is_file() && made.len() == 0, "{made:?}");
    assert!(rootfs.join("abs/data").is_dir());
    drop(c);
    env.assert_clean();
}

/// ro/rw and nosuid/nodev/noexec on binds: the flags show in mountinfo and do what they say.
#[test]
fn bind_flags_ro_nosuid_nodev_noexec() {
    let Some(env) = Env::new("bind-flags") else { return };
    let src = env.subdir("flags");
    fs::write(src.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    // A device node in the source: usable through a plain bind, refused under nodev.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .expect("mknod null in the test dir");
    env.add_mount(tmpfs("/tmp", &[]))
        .add_mount(bind("/tmp/plain", &src, &["bind", "rw"]))
        .add_mount(bind("/tmp/locked", &src, &["bind", "ro", "nosuid", "nodev", "noexec"]));
    env.sh(&format!(
        "/tmp/plain/run.sh; /tmp/locked/run.sh 2>/dev/null || echo noexec-refused; \
         echo x > /tmp/plain/null && echo dev-usable; (echo x > /tmp/locked/null) 2>/dev/null || echo nodev-refused; \
         touch /tmp/plain/w && echo rw-writable; touch /tmp/locked/w2 2>/dev/null || echo ro-refused; {MOUNTINFO}"
    ));
    let c = env.container("flags");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["ran", "noexec-refused", "dev-usable", "nodev-refused", "rw-writable", "ro-refused"], "{out}");
    let plain = mount_at(&mounts, "/tmp/plain", &out);
    let locked = mount_at(&mounts, "/tmp/locked", &out);
    for opt in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(locked.has_option(opt), "/tmp/locked lacks {opt}: {out}");
        assert!(!plain.has_option(opt), "/tmp/plain has {opt}: {out}");
    }
    assert!(plain.has_option("rw"), "{out}");
    assert!(src.join("w").exists() && !src.join("w2").exists());
    drop(c);
    env.assert_clean();
}

/// A bind with suid/dev/exec clears those flags again (the later option wins).
#[test]
fn bind_clearing_options_win_when_later() {
    let Some(env) = Env::new("bind-clear") else { return };
    let src = env.subdir("src");
    env.add_mount(tmpfs("/tmp", &[]))
        .add_mount(bind("/tmp/a", &src, &["bind", "nosuid", "nodev", "noexec", "ro", "suid", "dev", "exec", "rw"]));
    env.sh(MOUNTINFO);
    let c = env.container("clear");
    let out = c.run(&[]).ok();
    let (_, mounts) = split(&out);
    let a = mount_at(&mounts, "/tmp/a", &out);
    for opt in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(!a.has_option(opt), "/tmp/a has {opt}: {out}");
    }
}

/// The atime family on tmpfs and on binds: the mountinfo flag, and whether reading a file
/// updates its atime.
#[test]
fn atime_options() {
    let Some(env) = Env::new("atime") else { return };
    let src = env.subdir("src");
    env.add_mount(tmpfs("/tmp", &[]))
        .add_mount(tmpfs("/tmp/noatime", &["noatime"]))
        .add_mount(tmpfs("/tmp/strict", &["strictatime"]))
        .add_mount(tmpfs("/tmp/relatime", &["noatime", "relatime"]))
        .add_mount(tmpfs("/tmp/nodiratime", &["nodiratime"]))
        .add_mount(bind("/tmp/bind-noatime", &src, &["bind", "noatime"]))
        .add_mount(bind("/tmp/bind-strict", &src, &["bind", "noatime", "strictatime"]));
    // An old atime (and mtime), then a read: did the atime move?
    env.sh(&format!(
        "for d in noatime strict; do \
           echo data > /tmp/$d/f; touch -d '2001-01-01 00:00:00' /tmp/$d/f; a=$(stat -c %X /tmp/$d/f); \
           cat /tmp/$d/f >/dev/null; b=$(stat -c %X /tmp/$d/f); \
           if [ \"$a\" = \"$b\" ]; then echo $d-kept; else echo $d-updated; fi; \
         done; {MOUNTINFO}"
    ));
    let c = env.container("atime");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["noatime-kept", "strict-updated"], "{out}");
    let m = |p: &str| mount_at(&mounts, p, &out);
    assert!(m("/tmp/noatime").has_option("noatime"), "{out}");
    let strict = m("/tmp/strict");
    assert!(!strict.has_option("noatime") && !strict.has_option("relatime"), "strictatime: {out}");
    let rel = m("/tmp/relatime");
    assert!(rel.has_option("relatime") && !rel.has_option("noatime"), "relatime after noatime: {out}");
    assert!(m("/tmp/nodiratime").has_option("nodiratime"), "{out}");
    assert!(m("/tmp/bind-noatime").has_option("noatime"), "{out}");
    let bs = m("/tmp/bind-strict");
    assert!(!bs.has_option("noatime") && !bs.has_option("relatime"), "bind strictatime: {out}");
}

/// `rbind` with `rro` makes a submount of the source read-only too; plain `ro` leaves it
/// writable; `bind` (not recursive) does not bring the submount at all. The submount lives in a
/// private mount namespace of this test.
#[test]
fn recursive_options_reach_submounts() {
    let Some(env) = Env::new("rro") else { return };
    let src = env.subdir("src");
    fs::create_dir(src.join("sub")).unwrap();
    let setup = format!("mount -t tmpfs -o size=1m fdbox-sub '{}/sub'", src.display());
    env.add_mount(tmpfs("/tmp", &[]))
        .add_mount(bind("/tmp/rro", &src, &["rbind", "rro", "rnosuid", "rnodev"]))
        .add_mount(bind("/tmp/ro", &src, &["rbind", "ro", "nosuid"]))
        .add_mount(bind("/tmp/flat", &src, &["bind", "ro"]));
    env.sh(&format!(
        "for d in rro ro; do \
           touch /tmp/$d/top 2>/dev/null && echo $d-top-rw || echo $d-top-ro; \
           touch /tmp/$d/sub/f 2>/dev/null && echo $d-sub-rw || echo $d-sub-ro; \
         done; {MOUNTINFO}"
    ));
    let c = env.container("rro");
    let out = c.run_via(&strs(&in_private_mount_ns(&setup)), &[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["rro-top-ro", "rro-sub-ro", "ro-top-ro", "ro-sub-rw"], "{out}");
    let sub = mount_at(&mounts, "/tmp/rro/sub", &out);
    assert!(sub.fstype == "tmpfs" && sub.has_option("ro") && sub.has_option("nosuid") && sub.has_option("nodev"), "{out}");
    let sub = mount_at(&mounts, "/tmp/ro/sub", &out);
    assert!(sub.has_option("rw") && !sub.has_option("nosuid"), "plain ro/nosuid reached the submount: {out}");
    assert!(find_mount(&mounts, "/tmp/flat/sub").is_none(), "a non-recursive bind brought the submount: {out}");
    // Nothing was written to the host's directory (the writes went to the namespace's tmpfs).
    assert!(!src.join("top").exists() && !src.join("sub/f").exists());
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// propagation
// ---------------------------------------------------------------------------------------------

/// Propagation options on binds of a shared source (with a shared submount), in a private mount
/// namespace of the test: the optional fields of mountinfo inside show each one. A bind is a
/// slave of its source unless asked otherwise (runc's rslave default), so nothing the container
/// mounts can reach the host.
#[test]
fn propagation_options() {
    let Some(env) = Env::new("propagation") else { return };
    let src = env.subdir("src");
    let s = src.display();
    let setup = format!(
        "mount -t tmpfs fdbox-src '{s}' && mount --make-shared '{s}' && mkdir '{s}/sub' && \
         mount -t tmpfs fdbox-sub '{s}/sub'"
    );
    let cases: [(&str, &[&str]); 10] = [
        ("default", &["rbind"]),
        ("slave", &["rbind", "slave"]),
        ("rslave", &["rbind", "rslave"]),
        ("private", &["rbind", "private"]),
        ("rprivate", &["rbind", "rprivate"]),
        ("shared", &["rbind", "shared"]),
        ("rshared", &["rbind", "rshared"]),
        ("unbindable", &["rbind", "unbindable"]),
        ("runbindable", &["rbind", "runbindable"]),
        ("plain-tmpfs", &[]),
    ];
    env.add_mount(tmpfs("/tmp", &[]));
    for (name, opts) in cases {
        if name == "plain-tmpfs" {
            continue;
        }
        env.add_mount(bind(&format!("/tmp/{name}"), &src, opts));
    }
    env.add_mount(tmpfs("/tmp/tmpfs-shared", &["shared"]))
        .add_mount(tmpfs("/tmp/tmpfs-unbindable", &["unbindable"]))
        .add_mount(tmpfs("/tmp/tmpfs-plain", &[]));
    env.sh(MOUNTINFO);
    let c = env.container("prop");
    let out = c.run_via(&strs(&in_private_mount_ns(&setup)), &[]).ok();
    let (_, mounts) = split(&out);
    // (mount point, shared:, master:, unbindable)
    let want: [(&str, bool, bool, bool); 21] = [
        ("/tmp/default", false, true, false),
        ("/tmp/default/sub", false, true, false),
        ("/tmp/slave", false, true, false),
        ("/tmp/slave/sub", false, true, false),
        ("/tmp/rslave", false, true, false),
        ("/tmp/rslave/sub", false, true, false),
        ("/tmp/private", false, false, false),
        ("/tmp/private/sub", false, true, false),
        ("/tmp/rprivate", false, false, false),
        ("/tmp/rprivate/sub", false, false, false),
        ("/tmp/shared", true, true, false),
        ("/tmp/shared/sub", false, true, false),
        ("/tmp/rshared", true, true, false),
        ("/tmp/rshared/sub", true, true, false),
        ("/tmp/unbindable", false, false, true),
        ("/tmp/unbindable/sub", false, true, false),
        ("/tmp/runbindable", false, false, true),
        ("/tmp/runbindable/sub", false, false, true),
        ("/tmp/tmpfs-shared", true, false, false),
        ("/tmp/tmpfs-unbindable", false, false, true),
        ("/tmp/tmpfs-plain", false, false, false),
    ];
    for (point, shared, master, unbindable) in want {
        let m = mount_at(&mounts, point, &out);
        let got = (m.has_tag("shared:"), m.has_tag("master:"), m.has_tag("unbindable"));
        assert_eq!(got, (shared, master, unbindable), "{point}: optional fields {:?}\n{out}", m.optional);
    }
    drop(c);
    env.assert_clean();
}

/// `linux.rootfsPropagation`, seen on the container's `/` (and, for the recursive forms, on a
/// mount below it), with the bundle's rootfs on a shared mount of a private namespace of the test.
#[test]
fn rootfs_propagation() {
    let Some(env) = Env::new("rootfs-prop") else { return };
    let prefix = ["unshare", "-m", "--propagation", "shared"];
    env.sh("cat /proc/self/mountinfo");
    // (rootfsPropagation, on `/`: shared:, master:, unbindable; on /proc: shared:, unbindable)
    type Case<'a> = (Option<&'a str>, (bool, bool, bool), (bool, bool));
    let cases: [Case; 9] = [
        (None, (false, true, false), (false, false)),
        (Some("slave"), (false, true, false), (false, false)),
        (Some("rslave"), (false, true, false), (false, false)),
        (Some("private"), (false, false, false), (false, false)),
        (Some("rprivate"), (false, false, false), (false, false)),
        (Some("shared"), (true, true, false), (false, false)),
        (Some("rshared"), (true, true, false), (true, false)),
        (Some("unbindable"), (false, false, true), (false, false)),
        (Some("runbindable"), (false, false, true), (false, true)),
    ];
    for (prop, root_want, proc_want) in cases {
        env.edit(|c| match prop {
            Some(p) => c["linux"]["rootfsPropagation"] = json!(p),
            None => {
                c["linux"].as_object_mut().unwrap().remove("rootfsPropagation");
            }
        });
        let c = env.container("rprop");
        let out = c.run_via(&prefix, &[]).ok();
        let mounts = parse_mountinfo(&out.stdout);
        let root = mount_at(&mounts, "/", &out);
        let got = (root.has_tag("shared:"), root.has_tag("master:"), root.has_tag("unbindable"));
        assert_eq!(got, root_want, "rootfsPropagation {prop:?}: / has {:?}\n{out}", root.optional);
        let proc = mount_at(&mounts, "/proc", &out);
        let got = (proc.has_tag("shared:"), proc.has_tag("unbindable"));
        assert_eq!(got, proc_want, "rootfsPropagation {prop:?}: /proc has {:?}\n{out}", proc.optional);
    }
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// the root, tmpfs, pseudo filesystems
// ---------------------------------------------------------------------------------------------

/// `root.readonly`: the rootfs refuses writes while the mounts on it stay writable; without it
/// the container writes to the rootfs.
#[test]
fn root_readonly() {
    let Some(env) = Env::new("root-ro") else { return };
    let rootfs = env.writable_rootfs();
    env.sh("touch /made-by-container 2>/dev/null && echo root-rw || echo root-ro; touch /dev/shm/x && echo shm-rw");
    for readonly in [true, false] {
        env.set("/root/readonly", json!(readonly));
        let c = env.container("rootro");
        let out = c.run(&[]).ok();
        let want = if readonly { "root-ro\nshm-rw\n" } else { "root-rw\nshm-rw\n" };
        assert_eq!(out.stdout, want, "readonly={readonly}: {out}");
        assert_eq!(rootfs.join("made-by-container").exists(), !readonly);
    }
    env.assert_clean();
}

/// tmpfs `size`, `mode` and `nr_inodes` reach the filesystem: in mountinfo, in stat, and as
/// limits that writes run into.
#[test]
fn tmpfs_size_mode_nr_inodes() {
    let Some(env) = Env::new("tmpfs-opts") else { return };
    env.add_mount(tmpfs("/tmp", &["size=64k", "mode=1770", "nr_inodes=16", "nosuid"]));
    env.sh(&format!(
        "stat -c %a /tmp; \
         dd if=/dev/zero of=/tmp/big bs=1k count=256 2>/dev/null && echo wrote-256k || echo size-limited; rm -f /tmp/big; \
         i=0; while [ $i -lt 32 ] && touch /tmp/f$i 2>/dev/null; do i=$((i+1)); done; echo files=$i; {MOUNTINFO}"
    ));
    let c = env.container("tmpfs");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines[..2], ["1770", "size-limited"], "{out}");
    let files: u32 = lines[2].strip_prefix("files=").and_then(|n| n.parse().ok()).unwrap_or(99);
    assert!(files < 16, "nr_inodes=16 did not limit the number of files ({files}): {out}");
    let t = mount_at(&mounts, "/tmp", &out);
    assert_eq!(t.fstype, "tmpfs", "{out}");
    for opt in ["size=64k", "nr_inodes=16", "mode=1770"] {
        assert!(t.has_super_option(opt), "/tmp lacks {opt}: {out}");
    }
    assert!(t.has_option("nosuid"), "{out}");
}

/// devpts of the default spec: a new instance with the spec's gid/mode/ptmxmode, and
/// /dev/ptmx pointing into it; other options are honoured too.
#[test]
fn devpts_options() {
    let Some(env) = Env::new("devpts") else { return };
    env.sh(&format!("stat -c '%a %t:%T' /dev/pts/ptmx; readlink /dev/ptmx; ls /dev/pts; {MOUNTINFO}"));
    let c = env.container("pts");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    // A fresh instance holds only its ptmx (the host's ptys are not there).
    assert_eq!(lines, ["666 5:2", "pts/ptmx", "ptmx"], "{out}");
    let pts = mount_at(&mounts, "/dev/pts", &out);
    assert_eq!(pts.fstype, "devpts", "{out}");
    for opt in ["gid=5", "mode=620", "ptmxmode=666"] {
        assert!(pts.has_super_option(opt), "/dev/pts lacks {opt}: {out}");
    }
    assert!(pts.has_option("nosuid") && pts.has_option("noexec"), "{out}");

    env.remove_mount("/dev/pts").add_mount(json!({
        "destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["newinstance", "ptmxmode=0600", "mode=0600"]
    }));
    env.sh(&format!("stat -c %a /dev/pts/ptmx; {MOUNTINFO}"));
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["600"], "{out}");
    let pts = mount_at(&mounts, "/dev/pts", &out);
    assert!(pts.has_super_option("ptmxmode=600") && pts.has_super_option("mode=600"), "{out}");
}

/// mqueue: a new instance at /dev/mqueue with the spec's flags.
#[test]
fn mqueue_mount() {
    let Some(env) = Env::new("mqueue") else { return };
    env.sh(&format!("ls -A /dev/mqueue | wc -l; {MOUNTINFO}"));
    let c = env.container("mq");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["0"], "the container's ipc namespace has message queues: {out}");
    let mq = mount_at(&mounts, "/dev/mqueue", &out);
    assert_eq!(mq.fstype, "mqueue", "{out}");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(mq.has_option(opt), "/dev/mqueue lacks {opt}: {out}");
    }
}

/// sysfs: read-only, and showing the container's own network namespace (only `lo`).
#[test]
fn sysfs_mount() {
    let Some(env) = Env::new("sysfs") else { return };
    env.sh(&format!(
        "ls /sys/class/net; touch /sys/kernel/x 2>/dev/null || echo sysfs-ro; {MOUNTINFO}"
    ));
    let c = env.container("sys");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["lo", "sysfs-ro"], "{out}");
    let sys = mount_at(&mounts, "/sys", &out);
    assert_eq!(sys.fstype, "sysfs", "{out}");
    assert!(sys.has_option("ro") && sys.has_option("nosuid"), "{out}");
}

/// proc: the container's own pid namespace (the shell is pid 1 and few pids are visible).
#[test]
fn proc_mount() {
    let Some(env) = Env::new("proc") else { return };
    env.sh(&format!("cat /proc/1/comm; ls -d /proc/[0-9]* | wc -l; {MOUNTINFO}"));
    let c = env.container("proc");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines[0], "sh", "{out}");
    let n: u32 = lines[1].trim().parse().unwrap_or(999);
    assert!(n <= 4, "the container sees {n} processes: {out}");
    assert_eq!(mount_at(&mounts, "/proc", &out).fstype, "proc", "{out}");
}

/// The hierarchies of the host the container sees at /sys/fs/cgroup: `(name, fstype)`.
fn host_cgroup_hierarchies() -> Vec<(String, String)> {
    parse_mountinfo(&host_mountinfo())
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .filter_map(|m| {
            let name = if m.mount_point == "/sys/fs/cgroup" {
                String::new()
            } else {
                m.mount_point.strip_prefix("/sys/fs/cgroup/")?.to_string()
            };
            Some((name, m.fstype))
        })
        .collect()
}

/// `cgroup` of the default spec, read-only, laid out like the host's /sys/fs/cgroup; with a
/// cgroup namespace the container's cgroup is the root of every hierarchy it sees.
#[test]
fn cgroup_mounts() {
    let Some(env) = Env::new("cgroup-mount") else { return };
    let hierarchies = host_cgroup_hierarchies();
    if hierarchies.is_empty() {
        return skip("the host has no cgroup hierarchy under /sys/fs/cgroup");
    }
    env.sh(&format!(
        "cat /proc/self/cgroup; touch /sys/fs/cgroup/x 2>/dev/null || echo cgroup-ro; {MOUNTINFO}"
    ));
    for cgroupns in [false, true] {
        if cgroupns {
            env.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "cgroup" })));
        }
        let c = env.container("cg");
        let out = c.run(&[]).ok();
        let (lines, mounts) = split(&out);
        has_line(&lines, "cgroup-ro", &out);
        for (name, fstype) in &hierarchies {
            let point = if name.is_empty() { "/sys/fs/cgroup".to_string() } else { format!("/sys/fs/cgroup/{name}") };
            let m = mount_at(&mounts, &point, &out);
            assert_eq!(&m.fstype, fstype, "{point}: {out}");
            assert!(m.has_option("ro"), "{point} is writable: {out}");
            if cgroupns {
                assert_eq!(m.root, "/", "{point} is not rooted at the container's cgroup namespace: {out}");
            } else {
                assert_ne!(m.root, "/", "{point} shows the host's whole hierarchy: {out}");
            }
        }
        let paths: Vec<&str> = lines.iter().filter(|l| l.contains(':')).filter_map(|l| l.splitn(3, ':').nth(2)).collect();
        assert!(!paths.is_empty(), "{out}");
        if cgroupns {
            assert!(paths.iter().all(|p| *p == "/"), "/proc/self/cgroup is not namespaced: {out}");
        } else {
            assert!(paths.iter().all(|p| *p != "/"), "the container is in a root cgroup: {out}");
        }
    }
    env.assert_clean();
}

/// An explicit `cgroup2` mount: the unified hierarchy, rooted at the container's own cgroup
/// (with a cgroup namespace, that cgroup is `/`).
#[test]
fn cgroup2_mount() {
    let Some(env) = Env::new("cgroup2-mount") else { return };
    if !host_cgroup_hierarchies().iter().any(|(_, t)| t == "cgroup2") {
        return skip("no cgroup2 hierarchy on this host");
    }
    env.remove_mount("/sys/fs/cgroup").add_mount(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup2", "source": "cgroup2",
        "options": ["nosuid", "noexec", "nodev", "ro"]
    }));
    env.sh(&format!(
        "test -e /sys/fs/cgroup/cgroup.procs && echo has-procs; ls -d /sys/fs/cgroup/*/ 2>/dev/null | wc -l;          grep '^0::' /proc/self/cgroup; {MOUNTINFO}"
    ));
    for cgroupns in [false, true] {
        if cgroupns {
            env.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "cgroup" })));
        }
        let c = env.container("cg2");
        let out = c.run(&[]).ok();
        let (lines, mounts) = split(&out);
        // The container's cgroup has no children: no directory below the mount's root.
        assert_eq!(lines[..2], ["has-procs", "0"], "cgroupns={cgroupns}: {out}");
        let own = lines[2].strip_prefix("0::").unwrap_or_else(|| panic!("no cgroup2 line: {out}"));
        let m = mount_at(&mounts, "/sys/fs/cgroup", &out);
        assert_eq!((m.fstype.as_str(), m.root.as_str()), ("cgroup2", own), "cgroupns={cgroupns}: {out}");
        assert_eq!(own == "/", cgroupns, "{out}");
        assert!(m.has_option("ro"), "{out}");
    }
    env.assert_clean();
}

/// overlay with relative layer paths (relative to the bundle), by fsconfig: lower layers in
/// order, writes land in the upper dir on the host, deletions are whiteouts there; a
/// lowerdir-only overlay (absolute paths) is read-only.
#[test]
fn overlay_mount() {
    let Some(env) = Env::new("overlay") else { return };
    for d in ["lower1", "lower2", "upper", "work"] {
        fs::create_dir(env.bundle.join(d)).unwrap();
    }
    fs::write(env.bundle.join("lower1/a"), "lower1-a\n").unwrap();
    fs::write(env.bundle.join("lower2/a"), "lower2-a\n").unwrap();
    fs::write(env.bundle.join("lower2/b"), "lower2-b\n").unwrap();
    let abs = |d: &str| env.bundle.join(d).display().to_string();
    env.add_mount(tmpfs("/tmp", &[]))
        .add_mount(json!({
            "destination": "/tmp/ov", "type": "overlay", "source": "overlay",
            "options": ["lowerdir=lower1:lower2", "upperdir=upper", "workdir=work"]
        }))
        .add_mount(json!({
            "destination": "/tmp/ro", "type": "overlay", "source": "overlay",
            "options": [format!("lowerdir={}:{}", abs("lower1"), abs("lower2"))]
        }));
    env.sh(&format!(
        "cat /tmp/ov/a /tmp/ov/b; echo new > /tmp/ov/c && rm /tmp/ov/b && ls /tmp/ov | tr '\\n' ' '; echo; \
         cat /tmp/ro/a; touch /tmp/ro/x 2>/dev/null || echo ro-overlay; {MOUNTINFO}"
    ));
    let c = env.container("ov");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["lower1-a", "lower2-b", "a c ", "lower1-a", "ro-overlay"], "{out}");
    assert_eq!(mount_at(&mounts, "/tmp/ov", &out).fstype, "overlay", "{out}");
    assert_eq!(mount_at(&mounts, "/tmp/ro", &out).fstype, "overlay", "{out}");
    // On the host: the new file in the upper dir, a whiteout for the deletion, lowers intact.
    assert_eq!(fs::read_to_string(env.bundle.join("upper/c")).unwrap(), "new\n");
    let wh = fs::symlink_metadata(env.bundle.join("upper/b")).expect("no whiteout for b in upper");
    assert!(wh.file_type().is_char_device(), "{wh:?}");
    assert_eq!(fs::read_to_string(env.bundle.join("lower2/b")).unwrap(), "lower2-b\n");
    drop(c);
    env.assert_clean();
}

/// Any other filesystem by name, with its data options (ramfs and `mode`).
#[test]
fn other_filesystem_by_name() {
    let Some(env) = Env::new("ramfs") else { return };
    env.add_mount(json!({ "destination": "/tmp", "type": "ramfs", "source": "fdbox-ramfs", "options": ["mode=0710", "nodev"] }));
    env.sh(&format!("stat -c %a /tmp; echo x > /tmp/f && echo writable; {MOUNTINFO}"));
    let c = env.container("ramfs");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["710", "writable"], "{out}");
    let m = mount_at(&mounts, "/tmp", &out);
    assert_eq!((m.fstype.as_str(), m.source.as_str()), ("ramfs", "fdbox-ramfs"), "{out}");
    assert!(m.has_option("nodev"), "{out}");
}

/// `--no-pivot` (the documented chroot fallback): the same mounts, the same root.
#[test]
fn no_pivot_assembles_the_same_rootfs() {
    let Some(env) = Env::new("no-pivot-mounts") else { return };
    env.sh(&format!("echo pid=$$; {MOUNTINFO}"));
    let c = env.container("nopivot");
    let out = c.run(&["--no-pivot"]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["pid=1"], "{out}");
    for (point, fstype) in [("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/sys", "sysfs")] {
        assert_eq!(mount_at(&mounts, point, &out).fstype, fstype, "{out}");
    }
    let root = mount_at(&mounts, "/", &out);
    assert!(root.has_option("ro"), "{out}");
    // The host's other mounts are not inside the container's root.
    assert!(find_mount(&mounts, "/boot").is_none() && !mounts.iter().any(|m| m.mount_point.starts_with("/work")), "{out}");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// masks, read-only paths, /dev
// ---------------------------------------------------------------------------------------------

/// `linux.maskedPaths`: files are covered by /dev/null (a character device 1:3, empty to
/// read), directories by an empty read-only tmpfs; missing paths are skipped.
#[test]
fn masked_paths() {
    let Some(env) = Env::new("masked") else { return };
    let rootfs = env.writable_rootfs();
    fs::write(rootfs.join("secret.txt"), "topsecret\n").unwrap();
    fs::create_dir(rootfs.join("secretdir")).unwrap();
    fs::write(rootfs.join("secretdir/inner"), "x\n").unwrap();
    env.edit(|c| {
        let list = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        list.extend([json!("/secret.txt"), json!("/secretdir"), json!("/does/not/exist")]);
    });
    env.sh(&format!(
        "stat -c '%F %t:%T' /secret.txt /proc/keys; wc -c < /secret.txt; ls -A /secretdir | wc -l; \
         touch /secretdir/new 2>/dev/null || echo dir-ro; ls -A /proc/acpi | wc -l; \
         test -e /does && echo created-missing || echo missing-skipped; {MOUNTINFO}"
    ));
    let c = env.container("mask");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(
        lines,
        ["character special file 1:3", "character special file 1:3", "0", "0", "dir-ro", "0", "missing-skipped"],
        "{out}"
    );
    let d = mount_at(&mounts, "/secretdir", &out);
    assert!(d.fstype == "tmpfs" && d.has_option("ro"), "{out}");
    let acpi = mount_at(&mounts, "/proc/acpi", &out);
    assert!(acpi.fstype == "tmpfs" && acpi.has_option("ro"), "{out}");
    // The masked files on the host are untouched.
    assert_eq!(fs::read_to_string(rootfs.join("secret.txt")).unwrap(), "topsecret\n");
    assert_eq!(fs::read_dir(rootfs.join("secretdir")).unwrap().count(), 1);
    drop(c);
    env.assert_clean();
}

/// `linux.readonlyPaths`: /proc/sys of the default spec and a directory of the rootfs refuse
/// writes; the rest of the rootfs does not.
#[test]
fn readonly_paths() {
    let Some(env) = Env::new("ro-paths") else { return };
    let rootfs = env.writable_rootfs();
    fs::create_dir(rootfs.join("data")).unwrap();
    fs::write(rootfs.join("data/file"), "original\n").unwrap();
    env.edit(|c| c["linux"]["readonlyPaths"].as_array_mut().unwrap().push(json!("/data")));
    env.sh(&format!(
        "(echo x > /proc/sys/kernel/domainname) 2>&1 | grep -q 'Read-only' && echo proc-sys-ro; \
         (echo x > /data/file) 2>&1 | grep -q 'Read-only' && echo data-ro; \
         echo y > /tmp/file && echo tmp-rw; {MOUNTINFO}"
    ));
    let c = env.container("ro");
    let out = c.run(&[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["proc-sys-ro", "data-ro", "tmp-rw"], "{out}");
    assert!(mount_at(&mounts, "/proc/sys", &out).has_option("ro"), "{out}");
    assert!(mount_at(&mounts, "/data", &out).has_option("ro"), "{out}");
    assert_eq!(fs::read_to_string(rootfs.join("data/file")).unwrap(), "original\n");
    drop(c);
    env.assert_clean();
}

/// The default /dev: device nodes with mode 0666 owned by root, the standard symlinks, and no
/// console without a terminal.
#[test]
fn dev_defaults_and_symlinks() {
    let Some(env) = Env::new("dev-defaults") else { return };
    env.sh(
        "for d in null zero full random urandom tty; do stat -c \"$d %a %u:%g %t:%T\" /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         test -e /dev/console && echo console || echo no-console",
    );
    let c = env.container("dev");
    let out = c.run(&[]).ok();
    let want = "null 666 0:0 1:3\nzero 666 0:0 1:5\nfull 666 0:0 1:7\nrandom 666 0:0 1:8\n\
                urandom 666 0:0 1:9\ntty 666 0:0 5:0\n\
                fd -> /proc/self/fd\nstdin -> /proc/self/fd/0\nstdout -> /proc/self/fd/1\n\
                stderr -> /proc/self/fd/2\nptmx -> pts/ptmx\nno-console\n";
    assert_eq!(out.stdout, want, "{out}");
}

/// `linux.devices`: nodes made with the spec's type, numbers, mode and owner, also in a
/// subdirectory of /dev.
#[test]
fn linux_devices() {
    let Some(env) = Env::new("linux-devices") else { return };
    env.set(
        "/linux/devices",
        json!([
            { "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001 },
            { "path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600 },
            { "path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o620 },
        ]),
    );
    env.sh(
        "stat -c '%F %a %u:%g %t:%T' /dev/mynull /dev/sub/myzero; stat -c '%F %a' /dev/myfifo; \
         head -c 3 /dev/sub/myzero | od -An -tx1 | tr -d ' '; test -c /dev/null && echo null-too",
    );
    let c = env.container("devs");
    let out = c.run(&[]).ok();
    assert_eq!(
        out.stdout,
        "character special file 640 1000:1001 1:3\ncharacter special file 600 0:0 1:5\nfifo 620\n000000\nnull-too\n",
        "{out}"
    );
}

/// Where mknod is refused (here: the runtime runs without CAP_MKNOD), /dev gets bind mounts of
/// the host's nodes instead, for the default devices and for `linux.devices`.
#[test]
fn devices_fall_back_to_binding_host_nodes() {
    let Some(env) = Env::new("devices-bind") else { return };
    if !is_char_device(Path::new("/dev/fuse")) {
        return skip("the host has no /dev/fuse to bind");
    }
    env.set("/linux/devices", json!([{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666 }]));
    env.sh(&format!("stat -c '%t:%T' /dev/null /dev/fuse; echo x > /dev/null && echo null-works; {MOUNTINFO}"));
    let c = env.container("devbind");
    let out = c.run_via(&["setpriv", "--bounding-set", "-mknod", "--inh-caps", "-mknod"], &[]).ok();
    let (lines, mounts) = split(&out);
    assert_eq!(lines, ["1:3", "a:e5", "null-works"], "{out}");
    for dev in ["/dev/null", "/dev/zero", "/dev/fuse"] {
        let m = mount_at(&mounts, dev, &out);
        assert_eq!(m.fstype, "devtmpfs", "{dev} is not a bind of the host's node: {out}");
    }
    drop(c);
    env.assert_clean();
}

/// With a terminal, /dev/console is the container's pty (bound over an empty file).
#[test]
fn dev_console_with_terminal() {
    let Some(env) = Env::new("dev-console") else { return };
    env.set("/process/terminal", json!(true));
    env.sh("stat -c 'console %F %t' /dev/console; grep ' /dev/console ' /proc/self/mountinfo; echo done-console; exec sleep 60");
    let sock = env.listen("console.sock");
    let c = env.container("console");
    let mut create = c.spawn_lifecycle("create", &["--console-socket", &sock.path_str()]);
    let msg = sock.receive_from(&mut create).expect("no message on the console socket");
    create.wait().ok();
    let master = msg.fds.first().expect("no pty master");
    c.start().ok();
    let text = read_until(master, &["done-console"], TIMEOUT);
    // Unix98 pty slaves are character devices of major 136 (0x88).
    assert!(text.contains("console character special file 88"), "{text:?} (master fd {})", master.as_raw_fd());
    let line = text.lines().find(|l| l.contains(" /dev/console ")).unwrap_or_else(|| panic!("no mount at /dev/console: {text:?}"));
    let m = parse_mountinfo(line);
    assert_eq!(m.first().map(|m| m.fstype.as_str()), Some("devpts"), "{line}");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// the mount API only
// ---------------------------------------------------------------------------------------------

/// Under strace, `run` of the default spec makes no `mount(2)` call at all and uses
/// fsopen/fsmount/open_tree/move_mount.
#[test]
fn default_spec_uses_only_the_mount_api() {
    let Some(env) = Env::new("strace") else { return };
    if is_runc() {
        return skip("runc uses mount(2); the mount-API-only check is for fdbox");
    }
    if find_in_path_pub("strace").is_none() {
        assert!(!in_ci(), "strace is missing (scripts/install-test-deps.sh installs it)");
        return skip("strace is not installed");
    }
    let trace = env.dir.join("strace.out");
    let trace_s = trace.display().to_string();
    let c = env.container("strace");
    let out = c
        .run_via(&["strace", "-f", "-qq", "-o", &trace_s, "-e", "trace=mount,fsopen,fsmount,open_tree,move_mount"], &[])
        .ok();
    let text = fs::read_to_string(&trace).unwrap_or_else(|e| panic!("no strace output ({e}): {out}"));
    let calls: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|s| s.split('(').next())
        .collect();
    assert!(!calls.contains(&"mount"), "a mount(2) call:\n{text}");
    for want in ["fsopen", "fsmount", "open_tree", "move_mount"] {
        assert!(calls.contains(&want), "no {want} call:\n{text}");
    }
    drop(c);
    env.assert_clean();
}

fn find_in_path_pub(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------------

/// A bad mount fails create with one clear line naming the mount, leaves no state, process or
/// mount, and leaves the host's mountinfo exactly as it was.
#[track_caller]
fn assert_bad_mount(tag: &str, mount: Value, needle: &str) {
    let Some(env) = Env::new(tag) else { return };
    let dest = mount["destination"].as_str().unwrap().to_string();
    env.add_mount(mount);
    let before = host_mountinfo_except_other_tests(&env.dir);
    let c = env.container("bad");
    let out = c.create(&[]).fails_with_one_line();
    assert!(out.stderr.contains(&dest), "the error does not name the mount {dest}: {out}");
    if is_fdbox() {
        assert!(out.stderr.contains(needle), "the error does not say {needle:?}: {out}");
    }
    env.assert_no_state(&c.id);
    env.assert_clean();
    assert_eq!(host_mountinfo_except_other_tests(&env.dir), before, "the host's mountinfo changed: {out}");
}

#[test]
fn bad_mount_unknown_type() {
    assert_bad_mount(
        "bad-type",
        json!({ "destination": "/tmp", "type": "nosuchfs", "source": "x" }),
        "unknown filesystem type",
    );
}

#[test]
fn bad_mount_unknown_option() {
    assert_bad_mount(
        "bad-opt-fs",
        json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["frobnicate=7"] }),
        "frobnicate",
    );
    assert_bad_mount(
        "bad-opt-bind",
        json!({ "destination": "/tmp", "type": "bind", "source": "/tmp", "options": ["bind", "frobnicate"] }),
        "frobnicate",
    );
}

#[test]
fn bad_mount_missing_bind_source() {
    assert_bad_mount(
        "bad-source",
        json!({ "destination": "/tmp", "type": "bind", "source": "no-such-dir", "options": ["rbind"] }),
        "no-such-dir",
    );
}

#[test]
fn bad_mount_relative_destination() {
    assert_bad_mount(
        "bad-relative",
        json!({ "destination": "tmp/rel", "type": "tmpfs", "source": "tmpfs" }),
        "absolute",
    );
}

#[test]
fn bad_mount_file_onto_directory() {
    assert_bad_mount(
        "bad-file-on-dir",
        json!({ "destination": "/etc", "type": "bind", "source": "/etc/passwd", "options": ["bind"] }),
        "onto a directory",
    );
}

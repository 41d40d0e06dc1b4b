//! Issue 15: hostile values in config.json and on the command line. Ids the kernel reads as -1
//! ("unchanged"), procfs/sysfs mounted through a symlink, `--no-pivot` keeping the host's
//! mounts, and random invalid configs: each is refused with one line and leaves nothing, or
//! (for `--no-pivot`) the container sees none of the host's mounts.

use fdbox_tests::*;
use serde_json::json;
use std::fs;

/// The container prints `id`; the test checks that it never ran as root.
const PRINT_ID: &str = "echo ran:$(id)";

#[track_caller]
fn assert_never_root(what: &str, c: &Container<'_>, out: &Output) {
    let printed = format!("{}{}", c.stdout(), out.stdout);
    assert!(!printed.contains("uid=0"), "{what}: the process ran as root: {printed:?} {out}");
}

/// 4294967295 is -1 to setresuid/setresgid/setgroups ("leave unchanged"): a container asking
/// for it must be refused before anything is made, never run as uid 0 or gid 0.
#[test]
fn ids_of_minus_one_are_refused() {
    let Some(env) = Env::new("ids-minus-one") else { return };
    let cases: [(&str, serde_json::Value); 5] = [
        ("uid", json!({"uid": 4294967295u32, "gid": 1000})),
        ("gid", json!({"uid": 1000, "gid": 4294967295u32})),
        ("additionalGids", json!({"uid": 1000, "gid": 1000, "additionalGids": [4294967295u32]})),
        ("uid 2^31", json!({"uid": 2147483648u32, "gid": 1000})),
        ("uid and gid", json!({"uid": 4294967295u32, "gid": 4294967295u32})),
    ];
    for (what, user) in cases {
        env.sh(PRINT_ID).set("/process/user", user);
        let c = env.container("ids");
        let out = c.run(&[]);
        assert_never_root(what, &c, &out);
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains("2147483647"), "{what}: the error should name the limit: {out}");
        }
        env.assert_clean();
    }
    // Just below the limit is an ordinary id.
    env.sh(PRINT_ID).set("/process/user", json!({"uid": 2147483647u32, "gid": 2147483647u32}));
    let c = env.container("ids-max");
    let out = c.run(&[]).ok();
    assert!(c.stdout().contains("uid=2147483647"), "{out} {}", c.stdout());
    env.assert_clean();
}

/// The same for `exec -u`, `exec --additional-gids` and `exec -p` with such a user.
#[test]
fn exec_ids_of_minus_one_are_refused() {
    let Some(env) = Env::new("exec-ids-minus-one") else { return };
    env.sh("echo up; exec sleep 600");
    let c = env.container("exec-ids");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("up");
    let process = env.dir.join("process.json");
    let mut p = env.config()["process"].clone();
    p["args"] = json!(["sh", "-c", PRINT_ID]);
    p["user"] = json!({"uid": 4294967295u32, "gid": 0});
    fs::write(&process, p.to_string()).unwrap();
    let process = process.to_string_lossy().into_owned();
    let attempts: [Vec<&str>; 5] = [
        vec!["-u", "4294967295"],
        vec!["-u", "4294967295:4294967295"],
        vec!["-u", "1000:4294967295"],
        vec!["-u", "1000:1000", "--additional-gids", "4294967295"],
        vec!["-p", &process],
    ];
    for a in attempts {
        let mut args = vec!["exec"];
        args.extend_from_slice(&a);
        args.push(&c.id);
        if !a.contains(&"-p") {
            args.extend_from_slice(&["sh", "-c", PRINT_ID]);
        }
        let out = env.rt(&args);
        assert!(!out.stdout.contains("uid=0") && !out.stdout.contains("ran:"), "{a:?}: the process ran: {out}");
        out.fails_with_one_line();
    }
    c.delete(&["-f"]).ok();
    env.assert_clean();
}

/// linux.devices with ids or numbers the kernel would read differently (-1, a major cut to
/// 12 bits) and uid/gid mappings that reach the kernel's -1: refused with one line.
#[test]
fn device_and_mapping_values_out_of_range_are_refused() {
    let Some(env) = Env::new("dev-map-range") else { return };
    if !is_fdbox() {
        return skip("fdbox's own range checks");
    }
    let dev = |extra: serde_json::Value| {
        let mut d = json!({"path": "/dev/fdt-null", "type": "c", "major": 1, "minor": 3});
        d.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!([d])
    };
    let cases = [
        ("device uid", "/linux/devices", dev(json!({"uid": 4294967295u32}))),
        ("device gid", "/linux/devices", dev(json!({"gid": 4294967295u32}))),
        ("device major", "/linux/devices", dev(json!({"major": 4294967297u64}))),
        ("device minor", "/linux/devices", dev(json!({"minor": -1}))),
        ("device fileMode", "/linux/devices", dev(json!({"fileMode": 4294967295u32}))),
    ];
    for (what, pointer, value) in cases {
        env.sh("true").set(pointer, value);
        let c = env.container("range");
        let out = c.run(&[]);
        assert!(!out.success(), "{what} was accepted: {out}");
        out.fails_with_one_line();
        env.assert_clean();
    }
    env.set("/linux/devices", json!([]));
    // A user namespace whose mapping ends at 2^32-1 (the kernel refuses it when it is written).
    env.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4294901760u32, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let c = env.container("map");
    let out = c.run(&[]).fails_with_one_line();
    assert!(out.stderr.contains("uidMappings"), "{out}");
    env.assert_clean();
}

/// An image whose /proc (or /sys) is a symlink, to a directory inside the rootfs: procfs and
/// sysfs must be mounted on an ordinary directory (runc: "must be mounted on ordinary
/// directory"), never where the symlink points. One line, nothing left, nothing mounted at the
/// target.
#[test]
fn proc_and_sys_through_a_symlink_are_refused() {
    let Some(env) = Env::new("proc-sys-symlink") else { return };
    let rootfs = env.writable_rootfs();
    for (dest, target) in [("proc", "/tmp/fakeproc"), ("sys", "/tmp/fakesys"), ("proc", "tmp/fakeproc")] {
        fs::create_dir_all(rootfs.join("tmp/fakeproc")).unwrap();
        fs::create_dir_all(rootfs.join("tmp/fakesys")).unwrap();
        let link = rootfs.join(dest);
        let _ = fs::remove_dir_all(&link).or_else(|_| fs::remove_file(&link));
        std::os::unix::fs::symlink(target, &link).unwrap();
        env.sh("echo ran; ls /tmp/fakeproc /tmp/fakesys | head -3");
        let c = env.container("procsym");
        let out = c.run(&[]);
        assert!(!c.stdout().contains("ran"), "/{dest} -> {target}: the container ran: {} {out}", c.stdout());
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains("ordinary directory") && out.stderr.contains(&format!("/{dest}")), "{out}");
        }
        env.assert_clean();
        for d in ["tmp/fakeproc", "tmp/fakesys"] {
            assert_eq!(fs::read_dir(rootfs.join(d)).unwrap().count(), 0, "{d} was written or mounted on");
        }
        fs::remove_file(&link).unwrap();
        fs::create_dir(&link).unwrap();
    }
    // The same rootfs with ordinary directories runs.
    env.sh("echo ran");
    let c = env.container("procdir");
    c.run(&[]).ok();
    assert!(c.stdout().contains("ran"));
    env.assert_clean();
}

/// What the mount namespace of process `pid` holds besides the container's rootfs: a child
/// joins the namespace (setns puts its root on the top mount at "/": the container's rootfs,
/// stacked on the old root with --no-pivot), detaches that rootfs from the namespace, joins
/// again (now its root is the namespace's root) and reads its mountinfo through the host's
/// procfs, opened before the join. Destructive for the container: only for a container that
/// is deleted right after. The container's own /proc/self/mountinfo hides what is outside its
/// root, whatever the namespace holds.
fn mountinfo_under_the_rootfs(pid: i32) -> String {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let ns = fs::File::open(format!("/proc/{pid}/ns/mnt")).unwrap();
    let proc = fs::File::open("/proc").unwrap();
    let (nsfd, procfd) = (ns.as_raw_fd(), proc.as_raw_fd());
    let mut cmd = std::process::Command::new("/bin/true");
    // SAFETY: the closure runs in the forked child and makes only raw syscalls (no allocation,
    // no lock) before it exits; it never returns into the parent's copy of the runtime.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(nsfd, libc::CLONE_NEWNS) != 0 {
                libc::_exit(2);
            }
            if libc::umount2(c"/".as_ptr(), libc::MNT_DETACH) != 0 {
                libc::_exit(6);
            }
            if libc::setns(nsfd, libc::CLONE_NEWNS) != 0 {
                libc::_exit(7);
            }
            let fd = libc::openat(procfd, c"thread-self/mountinfo".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                libc::_exit(3);
            }
            let mut buf = [0u8; 4096];
            loop {
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if n <= 0 {
                    libc::_exit(if n == 0 { 0 } else { 4 });
                }
                if libc::write(1, buf.as_ptr().cast(), n as usize) != n {
                    libc::_exit(5);
                }
            }
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "reading the mount namespace of {pid}: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `--no-pivot` chroots instead of pivot_root; the container's mount namespace must not keep
/// the host's mounts (its /proc, /sys, /dev, the test's temp dir…): nothing but the
/// container's own mounts and the old root they sit on (which only pivot_root could remove).
/// The container sees the same mounts as with pivot_root, and the host's mounts are
/// unchanged afterwards.
#[test]
fn no_pivot_leaves_no_host_mounts_in_the_namespace() {
    let Some(env) = Env::new("no-pivot-host-mounts") else { return };
    let host_before = host_mountinfo_except_other_tests(&env.dir);
    env.sh("cat /proc/self/mountinfo; echo END; exec sleep 600");
    let mut own_counts = Vec::new();
    for flags in [&[][..], &["--no-pivot"][..]] {
        let c = env.container("nopivot");
        c.create(flags).ok();
        c.start().ok();
        let own = c.wait_for_stdout("END");
        own_counts.push(own.lines().count());
        if !flags.is_empty() {
            let under = mountinfo_under_the_rootfs(c.pid());
            let host: Vec<&str> = under.lines().filter(|l| l.split(' ').nth(4) != Some("/")).collect();
            // runc 1.1.5 detaches the host's procfs and sysfs but keeps some other mounts
            // (/dev, for one); fdbox keeps none.
            let kernel_fs: Vec<&&str> = host.iter().filter(|l| l.contains(" - proc ") || l.contains(" - sysfs ")).collect();
            assert!(kernel_fs.is_empty(), "the host's procfs/sysfs left in the --no-pivot container's namespace: {kernel_fs:#?}");
            if is_fdbox() {
                assert!(host.is_empty(), "host mounts left in the --no-pivot container's namespace: {host:#?}\ncontainer:\n{own}");
            }
        }
        c.delete(&["-f"]).ok();
    }
    assert_eq!(own_counts[0], own_counts[1], "--no-pivot should give the container the same mounts");
    env.assert_clean();
    assert_eq!(host_mountinfo_except_other_tests(&env.dir), host_before, "the host's mounts changed");
}

/// `--no-pivot` in a user namespace: the host's mounts are locked there (they cannot be
/// detached), so fdbox covers them; the container runs and sees the same mounts.
#[test]
fn no_pivot_in_a_user_namespace() {
    let Some(env) = Env::new("no-pivot-userns") else { return };
    env.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    env.sh("cat /proc/self/mountinfo; echo END; exec sleep 600");
    let c = env.container("nopivot-userns");
    c.create(&["--no-pivot"]).ok();
    c.start().ok();
    let own = c.wait_for_stdout("END");
    let under = mountinfo_under_the_rootfs(c.pid());
    c.delete(&["-f"]).ok();
    assert!(own.contains(" / /proc ") && own.contains(" - sysfs "), "{own}");
    if !is_fdbox() {
        return; // runc 1.1.5 leaves some host mounts uncovered here
    }
    // Each host mount on the namespace's root is covered by an empty read-only tmpfs.
    let lines: Vec<Vec<&str>> = under.lines().map(|l| l.split(' ').collect()).collect();
    let root = lines.iter().find(|f| f.get(4) == Some(&"/")).map(|f| f[0]).expect("the namespace's root");
    for host in lines.iter().filter(|f| f[1] == root && f[4] != "/") {
        let covered = lines.iter().any(|f| f[1] == host[0] && f[4] == host[4] && f[5].split(',').any(|o| o == "ro") && f.join(" ").contains(" - tmpfs "));
        let is_dir = fs::metadata(host[4]).map(|m| m.is_dir()).unwrap_or(false);
        assert!(covered || !is_dir, "host mount {} is not covered in the --no-pivot user namespace:\n{under}", host[4]);
    }
    env.assert_clean();
}

/// Values that config.json must not get through with: each is refused at create.
fn invalid_edits() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("/process/user/uid", json!(4294967295u32)),
        ("/process/user/additionalGids", json!([0, 4294967295u32])),
        ("/process/oomScoreAdj", json!(i32::MAX)),
        ("/process/rlimits", json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}])),
        ("/process/scheduler", json!({"policy": "SCHED_DEADLINE", "runtime": u64::MAX, "deadline": 1, "period": 0})),
        ("/process/ioPriority", json!({"class": "IOPRIO_CLASS_BE", "priority": i64::MAX})),
        ("/process/cwd", json!("relative")),
        ("/process/args", json!([])),
        ("/ociVersion", json!("99.0")),
        // (A hook timeout of i64::MAX is issue 15's item 7, tested with its fix.)
        ("/hooks/createRuntime", json!([{"path": "relative/hook", "timeout": -1}])),
        ("/linux/resources/cpu", json!({"shares": u64::MAX, "quota": i64::MIN, "period": 0})),
        ("/linux/resources/memory", json!({"limit": -2, "swap": i64::MIN})),
        ("/linux/resources/blockIO", json!({"weight": 65535})),
        ("/linux/resources/hugepageLimits", json!([{"pageSize": "3KB", "limit": u64::MAX}])),
        ("/linux/resources/unified", json!({"cgroup.procs": "1"})),
        ("/linux/resources/devices", json!([{"allow": true, "type": "c", "major": -5, "minor": 1, "access": "rwm"}])),
        ("/linux/devices", json!([{"path": "/dev/x", "type": "c", "major": 4294967297u64, "minor": 1}])),
        ("/linux/devices", json!([{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "uid": 4294967295u32}])),
        ("/linux/uidMappings", json!([{"containerID": 0, "hostID": 4294967295u32, "size": 1}])),
        ("/linux/namespaces", json!([{"type": "pid"}, {"type": "pid"}, {"type": "mount"}])),
        ("/linux/namespaces", json!([{"type": "pid"}])),
        ("/linux/timeOffsets", json!({"monotonic": {"secs": i64::MAX, "nanosecs": u32::MAX}})),
        ("/linux/sysctl", json!({"../../../etc/passwd": "x"})),
        ("/linux/personality", json!({"domain": "LINUX", "flags": ["BOGUS"]})),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 4294967295u32, "value": 1, "op": "SCMP_CMP_EQ"}]}]})),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]})),
        ("/linux/rootfsPropagation", json!("sideways")),
        ("/mounts/0/destination", json!("relative")),
        ("/mounts/1/options", json!(["size=99999999999999999999999", "mode=77777777"])),
        ("/mounts/1/options", json!(["nosuid", "idmap", "bogus=1"])),
        ("/root/path", json!("/nonexistent/rootfs")),
    ]
}

/// Each invalid value, then 30 random pairs of them, through a real `create`: each fails with
/// one line and leaves nothing (no state dir, cgroup, mount or process). The seed is printed.
#[test]
fn random_invalid_configs_fail_cleanly() {
    let Some(env) = Env::new("random-invalid") else { return };
    if !is_fdbox() {
        return skip("fdbox's own validation (runc accepts some of these values)");
    }
    let seed = std::env::var("FDBOX_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("seed {seed}");
    let mut x = seed | 1;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let edits = invalid_edits();
    let base = env.config();
    // Each edit alone, then random pairs.
    let rounds: Vec<Vec<usize>> = (0..edits.len()).map(|i| vec![i]).chain((0..30).map(|_| (0..2).map(|_| next(edits.len())).collect())).collect();
    for (round, picks) in rounds.into_iter().enumerate() {
        let mut applied = Vec::new();
        env.edit(|c| *c = base.clone());
        for i in picks {
            let (pointer, value) = edits[i].clone();
            applied.push(format!("{pointer}={value}"));
            env.set(pointer, value);
        }
        let c = env.container("rand");
        let out = c.create(&[]);
        assert!(!out.success(), "seed {seed} round {round}: {applied:?} was accepted: {out}");
        out.fails_with_one_line();
        env.assert_clean();
    }
}

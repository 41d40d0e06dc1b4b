//! Parity with runc (issue 16) on what a config or a command leaves out or takes for granted:
//! no namespaces, no HOME, a missing cwd, loopback in a new netns, hostname sysctls, and the
//! lifecycle commands on created and stopped containers (delete, kill 0, kill --all, ps).
//! Each behaviour here is runc's (1.1.5), checked by running the same test against it.

use fdbox_tests::*;

/// `kill ID 0` is a probe: it succeeds while the container lives (created or running) and
/// fails once it is stopped. `ps` of a stopped container is no error: it prints the header
/// (and `-f json` an empty list; runc prints `null`).
#[test]
fn kill_zero_probes_and_ps_of_a_stopped_container() {
    let Some(env) = Env::new("kill-zero-ps") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("probe");
    c.create(&[]).ok();
    c.kill("0").ok();
    assert_eq!(c.status(), "created", "signal 0 changed the container");
    let pid = c.pid();
    c.start().ok();
    c.kill("0").ok();
    assert_eq!(c.status(), "running", "signal 0 changed the container");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));
    c.kill("0").fails_with_one_line();

    let out = env.rt(&["ps", &c.id]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "ps of a stopped container prints only the header: {out}");
    assert!(lines[0].split_whitespace().any(|h| h == "PID"), "no ps header: {out}");
    let out = env.rt(&["ps", "-f", "json", &c.id]).ok();
    let pids: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(pids.is_null() || pids.as_array().is_some_and(|a| a.is_empty()), "{out}");

    c.delete(&[]).ok();
    drop(c);
    env.assert_clean();
}

/// `kill --all` of a stopped container succeeds (containerd's runc shim sends it after the
/// first process of a pod with a shared pid namespace exits) and signals what is left in its
/// cgroup: here a process that outlived the init of a container in the host's pid namespace.
/// `kill` without `--all` still says the container is not running.
#[test]
fn kill_all_of_a_stopped_container() {
    let Some(env) = Env::new("kill-all-stopped") else { return };
    env.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "pid"));
    env.sh("sleep 60 & echo left");
    let c = env.container("stopped");
    c.create_and_start();
    c.wait_for_stdout("left");
    c.wait_status("stopped");
    let left = wait_until(TIMEOUT, "the orphaned sleep", || {
        let pids = env.marked_pids();
        (pids.len() == 1).then_some(pids)
    });
    env.rt(&["kill", "--all", &c.id, "KILL"]).ok();
    wait_until(TIMEOUT, "kill --all to kill the orphan", || (!pid_alive(left[0])).then_some(()));
    env.rt(&["kill", "-a", &c.id, "TERM"]).ok();
    env.rt(&["kill", "-a", &c.id, "0"]).ok();
    let out = c.kill("KILL").fails_with_one_line();
    assert!(out.stderr.contains("container not running"), "{out}");
    c.delete(&[]).ok();
    drop(c);
    env.assert_clean();
}

/// `delete` without `-f` of a created container kills its waiting init and removes it, as
/// runc does; a running or paused one is still refused (bad_input.rs checks running).
#[test]
fn delete_of_a_created_container() {
    let Some(env) = Env::new("delete-created") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("created");
    c.create(&[]).ok();
    let pid = c.pid();
    c.delete(&[]).ok();
    assert!(c.state().is_err(), "state after delete");
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));
    env.assert_no_state(&c.id);

    let c2 = env.container("paused");
    c2.create_and_start();
    env.rt(&["pause", &c2.id]).ok();
    c2.delete(&[]).fails_with_one_line();
    assert_eq!(c2.status(), "paused");
    drop(c2);
    drop(c);
    env.assert_clean();
}

/// A `kernel.hostname` sysctl is refused, as by runc, whatever the `hostname` field says
/// (the same value, another, or none): one line, nothing left. `kernel.domainname` is taken,
/// and wins over the `domainname` field as in runc (which writes sysctls last).
#[test]
fn sysctl_kernel_hostname_is_refused() {
    let Some(env) = Env::new("sysctl-hostname") else { return };
    env.args(&["hostname"]);
    for hostname in [Some("box"), Some("other"), None] {
        env.edit(|c| {
            match hostname {
                Some(h) => c["hostname"] = json!(h),
                None => {
                    c.as_object_mut().unwrap().remove("hostname");
                }
            }
            c["linux"]["sysctl"] = json!({ "kernel.hostname": "box" });
        });
        let c = env.container("host");
        let out = c.run(&[]).fails_with_one_line();
        assert!(out.stderr.contains("kernel.hostname"), "{out}");
        assert_eq!(out.stdout, "", "{out}");
        env.assert_no_state(&c.id);
    }

    env.edit(|c| {
        c["hostname"] = json!("box");
        c["domainname"] = json!("field.example");
        c["linux"]["sysctl"] = json!({ "kernel.domainname": "sysctl.example" });
    });
    env.args(&["cat", "/proc/sys/kernel/domainname"]);
    let c = env.container("domain");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "sysctl.example", "{out}");
    drop(c);
    env.assert_clean();
}

/// The loopback device of a new network namespace is up, as runc leaves it (the kernel makes
/// it down): `lo`'s flags have IFF_UP, and 127.0.0.1 is reachable. In a user namespace too
/// (fdbox only: runc 1.1 cannot run the test's root-owned rootfs with one).
#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    let Some(env) = Env::new("loopback-up") else { return };
    // A TCP listener on 127.0.0.1 and a connection to it: fails while lo is down.
    env.sh("cat /sys/class/net/lo/flags; nc -l -p 4242 > /dev/null & \
            for i in 1 2 3 4 5 6 7 8 9 10; do echo hi | nc 127.0.0.1 4242 && { echo connected; break; }; sleep 0.2; done; true");
    let flags_up = |out: &Output| {
        let flags = out.stdout.lines().next().unwrap_or_default();
        let n = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{e}: {out}"));
        n & 1 == 1
    };
    let c = env.container("lo");
    let out = c.run(&[]).ok();
    assert!(flags_up(&out), "lo is down: {out}");
    assert!(out.stdout.contains("connected"), "no connection over lo: {out}");
    drop(c);
    if is_fdbox() {
        env.with_userns(100_000);
        let c = env.container("lo-userns");
        let out = c.run(&[]).ok();
        assert!(flags_up(&out), "lo is down in a user namespace: {out}");
        drop(c);
    }
    env.assert_clean();
}

/// Without HOME in the environment (or with an empty one), HOME is the user's home in the
/// container's /etc/passwd, else "/", on run and on exec, as runc sets it; a HOME given is
/// kept. The test rootfs has root (/root) and nobody (65534, /nonexistent); 1234 is absent.
#[test]
fn home_comes_from_the_containers_passwd() {
    let Some(env) = Env::new("home") else { return };
    env.sh(r#"echo "HOME=[$HOME]""#);
    for (uid, home) in [(0, "/root"), (65534, "/nonexistent"), (1234, "/")] {
        env.set("/process/user", json!({ "uid": uid, "gid": 0 }));
        let c = env.container("run");
        let out = c.run(&[]).ok();
        assert_eq!(out.stdout.trim(), format!("HOME=[{home}]"), "uid {uid}: {out}");
    }
    env.set("/process/user", json!({ "uid": 0, "gid": 0 }));
    env.edit(|c| c["process"]["env"].as_array_mut().unwrap().push(json!("HOME=")));
    let c = env.container("empty");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "HOME=[/root]", "an empty HOME: {out}");
    drop(c);

    env.edit(|c| c["process"]["env"].as_array_mut().unwrap().retain(|e| e != "HOME="));
    env.args(&["sleep", "60"]);
    let c = env.container("exec");
    c.create_and_start();
    let show = r#"echo "HOME=[$HOME]""#;
    for (uid, home) in [("0", "/root"), ("65534", "/nonexistent"), ("1234", "/")] {
        let out = env.rt(&["exec", "--user", uid, &c.id, "sh", "-c", show]).ok();
        assert_eq!(out.stdout.trim(), format!("HOME=[{home}]"), "exec as {uid}: {out}");
    }
    let out = env.rt(&["exec", "--user", "65534", "--env", "HOME=/given", &c.id, "sh", "-c", show]).ok();
    assert_eq!(out.stdout.trim(), "HOME=[/given]", "a HOME given to exec: {out}");
    drop(c);
    env.assert_clean();
}

/// A missing `process.cwd` is created (root's, 0755, inside the rootfs, also under
/// `root.readonly`) and the process starts there, as with runc. A cwd through a symlink
/// planted in the rootfs that points at a host path resolves inside the rootfs: the host
/// directory gets nothing (runc refuses that cwd; fdbox makes it inside the rootfs).
#[test]
fn missing_cwd_is_created_inside_the_rootfs() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let Some(env) = Env::new("cwd-created") else { return };
    let rootfs = env.writable_rootfs();
    env.set("/root/readonly", json!(true));
    env.set("/process/user", json!({ "uid": 65534, "gid": 65534 }));
    env.set("/process/cwd", json!("/new/a/b"));
    env.sh("pwd");
    let c = env.container("cwd");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "/new/a/b", "{out}");
    let meta = std::fs::metadata(rootfs.join("new/a/b")).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o7777), (0, 0o755));
    drop(c);

    // The decoy: a host directory the symlink names.
    let outside = env.subdir("outside");
    symlink(&outside, rootfs.join("link")).unwrap();
    env.set("/process/cwd", json!("/link/sub"));
    let c = env.container("escape");
    let out = c.run(&[]);
    assert!(!outside.join("sub").exists(), "the cwd was made on the host through a symlink: {out}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{out}");
    if is_fdbox() {
        let out = out.ok();
        // The symlink's target, resolved in the container's root.
        assert_eq!(out.stdout.trim(), format!("{}/sub", outside.display()), "{out}");
        let inside = rootfs.join(outside.strip_prefix("/").unwrap()).join("sub");
        assert!(inside.is_dir(), "{} was not made inside the rootfs: {out}", inside.display());
    } else {
        out.fails_with_one_line();
    }
    drop(c);
    env.assert_clean();
}

/// `sh -c` wrapper for `spawn_via`/`run_via`: the runtime runs in a private mount namespace
/// of the test (so nothing it might mount reaches the host), and the wrapper prints
/// whether that namespace's mounts changed across the run.
const IN_PRIVATE_MOUNT_NS: &[&str] = &[
    "unshare", "-m", "--propagation", "private", "sh", "-c",
    "cat /proc/self/mountinfo > \"$0.before\"; \"$@\"; rc=$?; cat /proc/self/mountinfo > \"$0.after\"; \
     cmp -s \"$0.before\" \"$0.after\" && echo mounts-unchanged || echo mounts-changed; exit $rc",
];

/// A config without namespaces: each one is the runtime's (runtime-spec), the mount
/// namespace too. fdbox runs it, chrooted into the rootfs and with no mount made (so
/// `root.readonly` holds without one: the rootfs is a detached clone); exec gets the same
/// root. What would need a mount (here the default mounts) is refused with one line, where
/// runc makes the mounts in the caller's mount namespace and leaves a bind of the rootfs
/// there. Every run happens inside `unshare -m`, and checks that namespace's mounts.
#[test]
fn no_namespaces_shares_the_hosts() {
    let Some(env) = Env::new("no-namespaces") else { return };
    let rootfs = env.writable_rootfs();
    std::fs::write(rootfs.join("marker"), "in-the-rootfs\n").unwrap();
    env.edit(|c| {
        c["linux"]["namespaces"] = json!([]);
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("maskedPaths");
        linux.remove("readonlyPaths");
        c.as_object_mut().unwrap().remove("hostname");
        c["root"]["readonly"] = json!(true);
    });
    let wrap = |tag: &str| {
        let mut v: Vec<String> = IN_PRIVATE_MOUNT_NS.iter().map(|s| s.to_string()).collect();
        v.push(env.dir.join(tag).to_string_lossy().into_owned());
        v
    };
    let w = wrap("with-mounts");
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    let c = env.container("mounts");
    let out = c.run_via(&w, &[]);
    if is_fdbox() {
        let out = out.fails_with_one_line();
        assert!(out.stderr.contains("mount namespace"), "{out}");
        assert_eq!(out.stdout.trim(), "mounts-unchanged", "{out}");
    } else {
        // runc runs it, and its mounts stay behind in the caller's mount namespace.
        let out = out.ok();
        assert!(out.stdout.contains("mounts-changed"), "{out}");
    }
    drop(c);
    env.assert_no_state(&env.id("none"));

    // No mounts: runc cannot run that (its init needs /proc); fdbox can.
    if !is_fdbox() {
        return skip("runc needs /proc in the rootfs, which only a mount gives it");
    }
    env.edit(|c| c["mounts"] = json!([]));
    env.sh("cat /marker; echo x > /marker 2>/dev/null && echo writable || echo read-only; exec sleep 60");
    let c = env.container("none");
    let w = wrap("none");
    let w: Vec<&str> = w.iter().map(String::as_str).collect();
    env.write_config();
    let mut args = vec!["create".to_string(), "--bundle".into(), env.bundle.to_string_lossy().into()];
    args.push(c.id.clone());
    let create = env.spawn_via(&w, &args);
    let stdout_path = create.stdout_path.clone();
    let out = create.wait().ok();
    assert_eq!(out.stdout.trim(), "mounts-unchanged", "{out}");
    let stdout = || std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let pid = c.pid();
    for ns in ["mnt", "net", "pid", "ipc", "uts", "cgroup"] {
        let host = if ns == "mnt" { None } else { Some(host_ns(ns)) };
        let theirs = readlink(format!("/proc/{pid}/ns/{ns}"));
        if let Some(host) = host {
            assert_eq!(theirs, host, "the container has a {ns} namespace of its own");
        }
    }
    c.start().ok();
    let seen = wait_until(TIMEOUT, "the container's output", || Some(stdout()).filter(|s| s.contains("read-only")));
    assert!(seen.contains("in-the-rootfs\n"), "{seen}");
    let out = env.rt(&["exec", &c.id, "sh", "-c", "cat /marker; ls /"]).ok();
    assert!(out.stdout.starts_with("in-the-rootfs\n"), "exec is not in the container's root: {out}");
    assert!(!out.stdout.contains("fdbox-test-rootfs"), "{out}");
    assert_eq!(std::fs::read_to_string(rootfs.join("marker")).unwrap(), "in-the-rootfs\n");
    drop(c);
    env.assert_clean();
}

/// A hostile /etc/passwd neither hangs the runtime nor leaks one of its fds into HOME: a
/// FIFO (nobody writes it) and a magic link to one of the init's fds both give HOME "/".
/// (runc 1.1.5 hangs forever on the FIFO: that part is fdbox's only.)
#[test]
fn home_with_a_hostile_passwd() {
    let Some(env) = Env::new("home-hostile") else { return };
    if !is_fdbox() {
        return skip("runc 1.1.5 blocks on a FIFO /etc/passwd");
    }
    let rootfs = env.writable_rootfs();
    let passwd = rootfs.join("etc/passwd");
    env.sh(r#"echo "HOME=[$HOME]""#);
    std::fs::remove_file(&passwd).unwrap();
    let status = std::process::Command::new("mkfifo").arg(&passwd).status().expect("mkfifo");
    assert!(status.success());
    let c = env.container("fifo");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "HOME=[/]", "{out}");
    drop(c);
    std::fs::remove_file(&passwd).unwrap();
    std::os::unix::fs::symlink("/proc/self/fd/3", &passwd).unwrap();
    let c = env.container("magic");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "HOME=[/]", "{out}");
    drop(c);
    env.assert_clean();
}

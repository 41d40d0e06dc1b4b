//! Attacks on the fixes of issue 15, each by a container with CAP_SYS_PTRACE (and no user
//! namespace): the runtime processes it can see must hold nothing of the host. Every attack
//! writes only to a decoy of the test's own temp dir, and only if that decoy already exists
//! (so that a regression never creates files elsewhere on the host); its name is unique to the
//! test, so that `N/../decoy`-style probes cannot hit another test's file.

use fdbox_tests::*;
use std::fs;

/// The decoy's file name: unique to this test.
fn decoy_name(env: &Env) -> String {
    format!("decoy-{}", env.mark())
}

fn with_ptrace(env: &Env) {
    env.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_PTRACE"));
        }
    });
}

/// `exec` makes its child in the container's pid namespace. A container process (its init, as
/// pid 1: `kill -STOP -1` reaches every other process of the namespace) stops the first process
/// that shows up there, and looks at it through /proc with CAP_SYS_PTRACE: its root and cwd, and
/// every fd, must lead nowhere on the host. (fdbox made the exec child there with the host's
/// root and cwd and all of `fdbox exec`'s fds — state dir, cgroup hierarchies — and only then
/// closed them and joined the container's mounts: stopped in between, it handed the host over.)
#[test]
fn exec_child_holds_no_host_root_cwd_or_fd_when_it_appears_in_the_container() {
    let Some(env) = Env::new("adv-exec-window") else { return };
    let name = decoy_name(&env);
    let decoy = env.dir.join(&name);
    fs::write(&decoy, "untouched\n").unwrap();
    with_ptrace(&env);
    let d = decoy.display();
    let script = format!(
        r#"echo ready; while ! kill -STOP -1 2>/dev/null; do :; done
for p in /proc/[0-9]*; do n=${{p#/proc/}}; [ "$n" = 1 ] && continue
  echo "stopped $n root=$(readlink $p/root) cwd=$(readlink $p/cwd)"
  [ -f "$p/root{d}" ] && echo pwned > "$p/root{d}" && echo "WROTE $p/root{d}"
  [ -f "$p/cwd/{name}" ] && echo pwned > "$p/cwd/{name}" && echo "WROTE $p/cwd/{name}"
  for f in $p/fd/*; do echo "fd ${{f##*/}} $(readlink $f)"
    for up in . .. ../.. ../../..; do [ -f "$f/$up/{name}" ] && echo pwned > "$f/$up/{name}" && echo "WROTE $f/$up/{name}"; done
  done
done
kill -CONT -1; echo done; exec sleep 600"#
    );
    env.sh(&script);
    let c = env.container("win");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("ready");
    // The exec runs in the test's temp dir (its cwd there is the decoy's directory). Its
    // program lives a while: the attacker must catch the process (in its setup, if it can)
    // even on a loaded machine, or it would spin on `kill -STOP -1` forever.
    let exec = env.rt_bare(&["--root", env.root.to_str().unwrap(), "exec", &c.id, "sleep", "2"], &env.dir);
    let seen = c.wait_for_stdout("done");
    drop(c);
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "untouched\n", "a host file was written through the exec child:\n{seen}\nexec: {exec}");
    assert!(seen.contains("stopped "), "the attack never saw the exec child:\n{seen}");
    assert!(!seen.contains("WROTE"), "{seen}");
    env.assert_clean();
}

/// `--preserve-fds N` when the caller has fewer than N fds open above stdio: the runtime's own
/// fds (state root, bundle, rootfs, host root, cgroup hierarchies) land in 3..3+N and must not
/// stay in the init waiting for `start`, where a container process with CAP_SYS_PTRACE follows
/// `/proc/1/fd/N/..` to the host. fdbox refuses such a range.
#[test]
fn preserve_fds_beyond_the_callers_fds_hand_over_no_runtime_fd() {
    let Some(env) = Env::new("adv-preserve-gap") else { return };
    let name = decoy_name(&env);
    let decoy = env.dir.join(&name);
    fs::write(&decoy, "untouched\n").unwrap();
    with_ptrace(&env);
    env.sh("exec sleep 600");
    let c = env.container("gap");
    // The harness's runtime process has only fds 0-2 open.
    let create = c.create(&["--preserve-fds", "30"]);
    if is_fdbox() {
        create.fails_with_one_line();
        env.assert_clean();
        return;
    }
    if !create.success() {
        env.assert_clean();
        return;
    }
    let attack = format!(
        r#"for f in /proc/1/fd/*; do n=${{f##*/}}; echo "fd $n $(readlink $f)"; [ "$n" -gt 2 ] || continue
  for up in . .. ../.. ../../..; do [ -f "$f/$up/{name}" ] && echo pwned > "$f/$up/{name}" && echo "WROTE $f/$up/{name}"; done
done; true"#
    );
    let out = env.rt(&["exec", &c.id, "sh", "-c", &attack]);
    drop(c);
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "untouched\n", "a host file was written through the waiting init's fds:\n{out}");
    env.assert_clean();
}

/// `--preserve-fds` near u32::MAX overflowed `3 + N` (a panic in the exec child, with a debug
/// build; in release the range wrapped and closed stderr). One clear error instead.
#[test]
fn preserve_fds_out_of_range_is_one_clear_error() {
    let Some(env) = Env::new("adv-preserve-huge") else { return };
    env.sh("exec sleep 600");
    let c = env.container("huge");
    c.create(&[]).ok();
    for n in ["4294967295", "4294967293", "2147483647"] {
        let out = env.rt(&["exec", "--preserve-fds", n, &c.id, "true"]);
        if is_fdbox() {
            out.fails_with_one_line();
        }
    }
    drop(c);
    if is_fdbox() {
        let c = env.container("huge-create");
        c.create(&["--preserve-fds", "4294967295"]).fails_with_one_line();
        drop(c);
    }
    env.assert_clean();
}

/// `kill --all`, `ps` and `delete` of a stopped container act on whatever its recorded cgroup
/// holds.
/// With a pid namespace of its own nothing of the container can be left there (the kernel
/// killed the namespace with its init), but another container may have been made since at the
/// same `cgroupsPath`: it must not be signalled, nor listed, in the name of the stopped one.
/// (runc 1.1.5 kills it too; runc 1.2 only signals the cgroup of a container without a pid
/// namespace of its own, which is what containerd's shim sends `kill --all` for.)
#[test]
fn kill_all_ps_and_delete_of_a_stopped_container_spare_a_newer_one_in_its_cgroup() {
    let Some(env) = Env::new("adv-stopped-cgroup") else { return };
    let shared = format!("/fdbox-test/fdt-shared-{}", env.mark());
    env.set("/linux/cgroupsPath", json!(shared));
    env.args(&["true"]);
    let old = env.container("old");
    old.create_and_start();
    old.wait_status("stopped");
    env.args(&["sleep", "600"]);
    let new = env.container("new");
    let pid = new.create_and_start();
    if is_fdbox() {
        let out = env.rt(&["ps", &old.id]).ok();
        assert!(!out.stdout.contains(&format!(" {pid} ")), "ps of the stopped container lists the newer one's init:\n{out}");
    }
    env.rt(&["kill", "--all", &old.id, "KILL"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    if is_fdbox() {
        assert!(pid_alive(pid), "kill --all of the stopped container killed the newer container's init");
        assert_eq!(new.status(), "running");
    }
    // Nor does deleting the stopped one kill it (the cgroup is the newer one's now).
    let out = old.delete(&[]);
    if is_fdbox() {
        out.ok();
        assert!(pid_alive(pid), "delete of the stopped container killed the newer container's init");
        assert_eq!(new.status(), "running");
    }
    drop(new);
    drop(old);
    env.assert_clean();
}

/// HOME comes from the container's /etc/passwd, read by the runtime as root with every
/// capability. A container whose /etc/passwd is a symlink to a procfs file (a "regular file"
/// of procfs) would make the runtime read kernel files on its behalf: `/proc/kmsg`, which it
/// cannot open itself, would be consumed, the host's unread kernel log gone at each `exec`
/// without HOME. The runtime reads no procfs or sysfs file as a passwd. Shown harmlessly with
/// `/proc/sys/kernel/hostname`, whose content the config sets to a passwd line: read, it would
/// make HOME /pwned; refused, HOME is `/`. (runc reads it: fdbox only.)
#[test]
fn passwd_lookup_reads_no_procfs_file() {
    let Some(env) = Env::new("adv-passwd-procfs") else { return };
    let rootfs = env.writable_rootfs();
    let passwd = rootfs.join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", &passwd).unwrap();
    env.set("/hostname", json!("root:x:0:0:r:/pwned:/bin/sh"));
    env.edit(|c| c["process"]["env"].as_array_mut().unwrap().retain(|e| !e.as_str().unwrap_or("").starts_with("HOME=")));
    env.args(&["sleep", "600"]);
    let c = env.container("procfs");
    c.create_and_start();
    let out = env.rt(&["exec", &c.id, "sh", "-c", "cat /etc/passwd; echo HOME=$HOME"]).ok();
    // The planted file reads as that passwd line (else the test proves nothing).
    assert!(out.stdout.contains("root:x:0:0:r:/pwned:/bin/sh"), "{out}");
    if is_fdbox() {
        assert!(out.stdout.contains("HOME=/\n"), "a procfs file was read as the container's passwd: {out}");
    }
    drop(c);
    env.assert_clean();
}

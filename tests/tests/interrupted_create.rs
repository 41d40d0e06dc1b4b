//! `kill -9` of `create` at any point (issue 15, item 10): a later `delete -f` returns 0 and
//! leaves nothing of the half-made container: no state dir, no cgroup in any hierarchy, no
//! process (its init, a hook the runtime was running), no mount. With and without a user
//! namespace (whose init outlives the parent-death signal once it switched to the mapped root).
//!
//! The hooks here write their pid to a file (atomically: a temp file, then `mv`) and then
//! `exec sleep`, so that the test knows the runtime is inside the hook and the pid is the
//! sleeping hook's.

use fdbox_tests::*;
use rustix::process::Signal;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAP: u32 = 100_000;


/// A hook that writes its pid to `<dir>/<name>.pid` and then sleeps (as that same process).
fn sleeping_hook(dir: &Path, name: &str) -> Value {
    let f = dir.join(name);
    let script = format!("echo $$ > {f}.tmp && mv {f}.tmp {f}.pid; exec sleep 600", f = f.display());
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// The cgroup directories of `cgroups_path` that exist, in any hierarchy.
fn cgroups_left(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    cgroup_mount_points().into_iter().map(|mp| mp.join(rel)).filter(|p| p.is_dir()).collect()
}

/// Wait until the hook wrote `<name>.pid`; panics if `create` exits first.
#[track_caller]
fn wait_for_hook(create: &mut Proc, dir: &Path, name: &str) -> i32 {
    let file = dir.join(format!("{name}.pid"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(text) = fs::read_to_string(&file) {
            return text.trim().parse().unwrap_or_else(|e| panic!("{}: {e}: {text:?}", file.display()));
        }
        if create.has_exited() {
            panic!("create exited before the {name} hook ran\nstdout: {}\nstderr: {}", create.stdout(), create.stderr());
        }
        assert!(Instant::now() < deadline, "the {name} hook did not run within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILL `create` (the test's own child) and reap it.
fn kill_create(create: Proc) {
    create.signal(Signal::KILL);
    create.wait();
}

/// After `delete -f`: nothing of `c` is left. With runc (which leaves the cgroup of a create
/// that died before writing its state), the leftovers are removed here so that the host stays
/// clean, and only the state dir and mounts are asserted.
#[track_caller]
fn assert_undone(c: &Container, cgroups_path: &str) {
    c.env.assert_no_state(&c.id);
    if is_runc() {
        // Its last processes may still be exiting: rmdir until it works.
        wait_until(TIMEOUT, &format!("runc's leftover cgroup {cgroups_path} to be removable"), || {
            let left = cgroups_left(cgroups_path);
            left.iter().for_each(|p| drop(fs::remove_dir(p)));
            cgroups_left(cgroups_path).is_empty().then_some(())
        });
    } else {
        let left = cgroups_left(cgroups_path);
        assert!(left.is_empty(), "{}: cgroup left in {left:?}", c.id);
    }
    c.env.assert_no_mounts();
    if is_fdbox() {
        c.env.assert_no_processes();
    }
}

/// A hook the runtime ran is gone once `create` is killed (fdbox: it dies with `create`).
/// runc leaves it running: the test ends it itself.
#[track_caller]
fn assert_hook_gone(pid: i32) {
    if is_runc() {
        if pid_alive(pid) {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, Signal::KILL);
            }
        }
        return;
    }
    wait_until(Duration::from_secs(10), &format!("the hook {pid} to die with create"), || (!pid_alive(pid)).then_some(()));
}

/// `create` killed while it runs a `prestart` / `createRuntime` hook (both run by `create`
/// itself, on the host): `delete -f` returns 0 and undoes everything, the hook included.
fn kill_during_runtime_hook(kind: &str, userns: bool) {
    let Some(env) = Env::new(&format!("intr-{kind}")) else { return };
    if userns && is_runc() {
        return skip("runc 1.1 has no idmapped rootfs");
    }
    if userns {
        env.with_userns(MAP);
    }
    let dir = env.subdir("hooks");
    env.set("/hooks", json!({ kind: [sleeping_hook(&dir, kind)] }));
    let c = env.container(kind);
    let cgroups_path = env.cgroups_path_of(&c.id);
    let mut create = c.spawn_lifecycle("create", &[]);
    let hook = wait_for_hook(&mut create, &dir, kind);
    kill_create(create);
    assert_hook_gone(hook);
    if is_fdbox() {
        // Half made: `state` says so in one line, `list` does not show it.
        let out = env.rt(&["state", &c.id]).fails_with_one_line();
        assert!(out.stderr.contains("create"), "{out}");
        let list = env.rt(&["list", "-q"]).ok();
        assert!(!list.stdout.contains(&c.id), "{list}");
    }
    c.delete(&["-f"]).ok();
    assert_undone(&c, &cgroups_path);
    drop(c);
    env.assert_clean();
}

#[test]
fn kill_during_prestart_hook() {
    kill_during_runtime_hook("prestart", false);
}

#[test]
fn kill_during_create_runtime_hook() {
    kill_during_runtime_hook("createRuntime", false);
}

#[test]
fn kill_during_prestart_hook_userns() {
    kill_during_runtime_hook("prestart", true);
}

/// `create` killed while the init runs a `createContainer` hook (in the container's
/// namespaces, after the cgroup is complete): `delete -f` undoes it all.
#[test]
fn kill_during_create_container_hook() {
    for userns in [false, true] {
        let Some(env) = Env::new("intr-createContainer") else { return };
        if userns && is_runc() {
            return skip("runc 1.1 has no idmapped rootfs");
        }
        if userns {
            env.with_userns(MAP);
        }
        // Before pivot_root the hook sees the host's tree: the host path works (writable by
        // the container's root, who is host uid 100000 with a user namespace).
        let dir = env.subdir("hooks");
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        env.set("/hooks", json!({ "createContainer": [sleeping_hook(&dir, "createContainer")] }));
        let c = env.container("cc");
        let cgroups_path = env.cgroups_path_of(&c.id);
        let mut create = c.spawn_lifecycle("create", &[]);
        wait_for_hook(&mut create, &dir, "createContainer");
        kill_create(create);
        c.delete(&["-f"]).ok();
        if is_runc() {
            // runc leaves this hook running (its pid in the file is the container's view):
            // end this test's own leftover.
            let is_hook = |pid: &i32| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x00600\x00");
            let hook = wait_until(TIMEOUT, "runc's createContainer hook to exec sleep", || env.marked_pids().into_iter().find(is_hook));
            assert_hook_gone(hook);
        }
        assert_undone(&c, &cgroups_path);
        drop(c);
        env.assert_clean();
    }
}

/// A plain `delete` (no `-f`) of a container whose create was killed while nothing of it was
/// left running removes it too: there is no container that could ever start.
#[test]
fn delete_without_force_after_killed_create() {
    let Some(env) = Env::new("intr-delete") else { return };
    if is_runc() {
        // runc removes the state dir but fails with "container does not exist".
        return skip("runc's delete of a half-made container fails");
    }
    let dir = env.subdir("hooks");
    env.set("/hooks", json!({ "createRuntime": [sleeping_hook(&dir, "createRuntime")] }));
    let c = env.container("nf");
    let cgroups_path = env.cgroups_path_of(&c.id);
    let mut create = c.spawn_lifecycle("create", &[]);
    let hook = wait_for_hook(&mut create, &dir, "createRuntime");
    kill_create(create);
    assert_hook_gone(hook);
    c.delete(&[]).ok();
    assert_undone(&c, &cgroups_path);
    drop(c);
    env.assert_clean();
}

/// `create` killed after a delay spread over its whole run (0–30 ms in 1 ms steps, with and
/// without a user namespace): whatever it had done by then (nothing, a state dir, a cgroup, an
/// init that said "ready", a finished container), `delete -f` returns 0 and leaves nothing.
#[test]
fn kill_at_any_point() {
    let Some(env) = Env::new("intr-any") else { return };
    env.args(&["true"]);
    let mut outcomes = std::collections::BTreeMap::new();
    for userns in [false, true] {
        if userns {
            if is_runc() {
                break;
            }
            env.with_userns(MAP);
        }
        for ms in 0..=30u64 {
            let c = env.container("any");
            let cgroups_path = env.cgroups_path_of(&c.id);
            let create = c.spawn_lifecycle("create", &[]);
            std::thread::sleep(Duration::from_millis(ms));
            create.signal(Signal::KILL);
            let out = create.wait();
            let what = match (out.success(), c.state_dir().join("state.json").exists(), c.state_dir().exists()) {
                (true, _, _) => "created",
                (false, true, _) => "killed after state.json",
                (false, false, true) => "killed half-way",
                (false, false, false) => "killed before the state dir",
            };
            *outcomes.entry(what).or_insert(0) += 1;
            let del = c.delete(&["-f"]);
            assert!(del.success(), "after {ms} ms (userns {userns}, {what}): {del}");
            assert_undone(&c, &cgroups_path);
            drop(c);
            env.assert_clean();
        }
    }
    eprintln!("kill_at_any_point: {outcomes:?}");
}

//! `kill` as runc does it (issue 16 item 23): what dies of which signal, in a created container
//! and in one without a pid namespace of its own.

use fdbox_tests::*;

fn without_pid_namespace(env: &Env) {
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("linux.namespaces");
        ns.retain(|n| n["type"] != "pid");
    });
}

/// In the host's pid namespace, `kill ID KILL` (no `--all`) kills every process of the
/// container, not only its init: nothing kills the rest when the init dies (pid_namespaces(7)
/// does that only for the init of a pid namespace). runc 1.2 on does this; runc 1.1.5 kills
/// only the init (its `delete -f` takes the rest), so the assertion is fdbox's.
#[test]
fn kill_without_pid_namespace_kills_every_process() {
    let Some(env) = Env::new("kill-hostpid") else { return };
    without_pid_namespace(&env);
    env.sh("sleep 600 & echo ready; exec sleep 600");
    let c = env.container("hostpid");
    let init = c.create_and_start();
    c.wait_for_stdout("ready");
    let before = wait_until(TIMEOUT, "two processes in the container", || {
        let p = env.marked_pids();
        (p.len() >= 2).then_some(p)
    });
    assert!(before.contains(&init), "the init {init} is not among {before:?}");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    if is_fdbox() {
        wait_until(TIMEOUT, "every process of the container to die of `kill KILL`", || {
            env.marked_pids().is_empty().then_some(())
        });
    }
    c.delete(&["-f"]).ok();
    env.assert_clean();
}

/// A signal that ends runc's waiting init ends fdbox's: a created container whose init gets
/// SIGTERM (or INT, HUP, QUIT) is stopped and deletes clean; one that runc's ignores (USR1)
/// leaves it created. The init waits as pid 1 of its pid namespace, which the kernel spares
/// every signal it has no handler for.
#[test]
fn created_container_dies_of_sigterm() {
    let Some(env) = Env::new("created-term") else { return };
    env.args(&["sleep", "600"]);
    for sig in ["TERM", "INT", "HUP", "QUIT"] {
        let c = env.container("term");
        c.create(&[]).ok();
        let pid = c.pid();
        c.kill("USR1").ok();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(c.status(), "created", "USR1 ended the waiting init");
        c.kill(sig).ok();
        c.wait_status("stopped");
        wait_until(TIMEOUT, &format!("init {pid} to die of SIG{sig}"), || (!pid_alive(pid)).then_some(()));
        c.delete(&[]).ok();
        env.assert_no_state(&c.id);
    }
    env.assert_clean();
}

/// The same through the pidfd that `create --pidfd-socket` hands out (runc 1.1.5 has no
/// --pidfd-socket).
#[test]
fn created_container_dies_of_sigterm_through_its_pidfd() {
    let Some(env) = Env::new("created-pidfd") else { return };
    if is_runc() {
        return skip("runc 1.1.5 has no create --pidfd-socket");
    }
    env.args(&["sleep", "600"]);
    let c = env.container("pidfd");
    let sock = env.listen("pidfd.sock");
    let mut create = c.spawn_lifecycle("create", &["--pidfd-socket", &sock.path_str()]);
    let msg = sock.receive_from(&mut create).expect("no message on the pidfd socket");
    create.wait().ok();
    assert_eq!(msg.fds.len(), 1, "expected exactly one fd");
    let pid = c.pid();
    assert_eq!(pidfd_pid(&msg.fds[0]), Some(pid), "the pidfd is not the init's");
    assert_eq!(c.status(), "created");
    rustix::process::pidfd_send_signal(&msg.fds[0], rustix::process::Signal::TERM).expect("pidfd_send_signal");
    c.wait_status("stopped");
    wait_until(TIMEOUT, "the init to die of SIGTERM", || (!pid_alive(pid)).then_some(()));
    c.delete(&[]).ok();
    env.assert_no_state(&c.id);
    env.assert_clean();
}

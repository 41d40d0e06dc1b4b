//! fd hand-off over unix sockets: --pidfd-socket (the init's pidfd) and --console-socket (the
//! pty master), both with SCM_RIGHTS.

use fdbox_tests::*;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// Whether the runtime's `create` knows a flag (runc 1.1.5 predates --pidfd-socket).
fn create_has_flag(env: &Env, flag: &str) -> bool {
    let out = env.rt_bare(&["create", "--help"], &env.dir);
    out.stdout.contains(flag) || out.stderr.contains(flag)
}

/// `create --pidfd-socket` sends one message, body "standard", carrying a pidfd of the init.
#[test]
fn pidfd_socket_hands_over_the_init() {
    let Some(env) = Env::new("pidfd-socket") else { return };
    if is_runc() && !create_has_flag(&env, "--pidfd-socket") {
        return skip("runtime lacks --pidfd-socket");
    }
    env.args(&["sleep", "60"]);
    let sock = env.listen("pidfd.sock");
    let c = env.container("pidfd");
    let mut create = c.spawn_lifecycle("create", &["--pidfd-socket", &sock.path_str()]);
    let msg = sock.receive_from(&mut create).expect("no message on the pidfd socket");
    create.wait().ok();

    assert_eq!(String::from_utf8_lossy(&msg.body), "standard");
    assert_eq!(msg.fds.len(), 1, "expected exactly one fd");
    let fd = &msg.fds[0];
    let pid = pidfd_pid(fd).unwrap_or_else(|| panic!("not a pidfd: {}", readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()))));
    assert_eq!(pid, c.pid(), "the pidfd is not the container's init");

    // It is live until the container dies, and then becomes readable.
    assert!(!readable(fd.as_fd(), Duration::ZERO), "pidfd readable while the init lives");
    c.start().ok();
    c.kill("KILL").ok();
    assert!(readable(fd.as_fd(), TIMEOUT), "pidfd did not report the init's exit");
    c.wait_status("stopped");
    c.delete(&[]).ok();
    drop(c);
    env.assert_clean();
}

fn readable(fd: impl AsFd, timeout: Duration) -> bool {
    let ts = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos() as i64 };
    let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
    poll(&mut pfd, Some(&ts)).expect("poll") == 1
}

/// With `terminal: true`, `create --console-socket` sends the pty master; the container's
/// stdio is the pty slave.
#[test]
fn console_socket_hands_over_the_pty_master() {
    let Some(env) = Env::new("console-socket") else { return };
    env.set("/process/terminal", json!(true));
    // Stay alive after printing, so nothing depends on reading a pty whose slave is closed.
    env.sh("[ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; echo hello-$((6*7))-tty; tty; exec sleep 60");
    let sock = env.listen("console.sock");
    let c = env.container("tty");
    let mut create = c.spawn_lifecycle("create", &["--console-socket", &sock.path_str()]);
    let msg = sock.receive_from(&mut create).expect("no message on the console socket");
    create.wait().ok();
    assert_eq!(msg.fds.len(), 1, "expected exactly one fd (the pty master)");
    let master = &msg.fds[0];
    let target = readlink(format!("/proc/self/fd/{}", master.as_raw_fd()));
    assert!(target == "/dev/ptmx" || target.ends_with("/ptmx"), "not a pty master: {target}");

    c.start().ok();
    let text = read_until(master, &["hello-42-tty", "/dev/pts/"], TIMEOUT);
    assert!(text.contains("stdio-is-a-tty"), "container stdio is not the pty: {text:?}");
    assert!(text.contains("hello-42-tty"), "no output through the pty: {text:?}");
    // The slave lives in the container's own devpts instance.
    assert!(text.contains("/dev/pts/0"), "tty is not /dev/pts/0 of a new devpts: {text:?}");
    // Nothing went to the create command's own stdout.
    assert!(!c.stdout().contains("hello"), "output bypassed the pty: {}", c.stdout());
    drop(c);
    env.assert_clean();
}

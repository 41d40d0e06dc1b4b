//! `exec`: a second process in a running container. It must land in exactly the init's
//! namespaces and cgroup, take runc's flags, propagate its exit code, and refuse containers
//! that are not running.

use fdbox_tests::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// A started container whose init sleeps, so that `exec` has something to join.
fn running<'e>(env: &'e Env, tag: &str) -> Container<'e> {
    env.sh("echo up; exec sleep 600");
    let c = env.container(tag);
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("up");
    c
}

/// `<runtime> exec <args…>`, waited for.
#[track_caller]
fn exec(env: &Env, args: &[&str]) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    env.rt(&all)
}

fn runtime_has_flag(env: &Env, cmd: &str, flag: &str) -> bool {
    let out = env.rt_bare(&[cmd, "--help"], &env.dir);
    out.stdout.contains(flag) || out.stderr.contains(flag)
}

/// The exec'd process shares every namespace of the init (same ns inodes, compared both
/// inside the container and against the host's view of the init) and its cgroup, and is not
/// pid 1.
#[test]
fn exec_joins_the_init_namespaces_and_cgroup() {
    let Some(env) = Env::new("exec-ns") else { return };
    let c = running(&env, "ns");
    let init = c.pid();
    let kinds = ["pid", "mnt", "net", "uts", "ipc", "cgroup"];
    let script = "echo self=$$; for n in pid mnt net uts ipc cgroup; do \
                  echo $n $(readlink /proc/self/ns/$n) $(readlink /proc/1/ns/$n); done; \
                  if cmp -s /proc/self/cgroup /proc/1/cgroup; then echo cgroup-same; else echo cgroup-differs; fi";
    let out = exec(&env, &[&c.id, "sh", "-c", script]).ok();
    let mut lines = out.stdout.lines();
    let me: i32 = lines.next().and_then(|l| l.strip_prefix("self=")).and_then(|p| p.parse().ok()).unwrap_or(0);
    assert!(me > 1, "the exec'd process should be a non-init pid of the container: {out}");
    for kind in kinds {
        let line = lines.next().unwrap_or_default();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{kind}: {out}");
        assert_eq!(f[0], kind);
        assert_eq!(f[1], f[2], "exec is in another {kind} namespace than the init: {out}");
        // The host's view of the init agrees (the container's /proc/1 is really the init).
        assert_eq!(f[1], readlink(format!("/proc/{init}/ns/{kind}")), "{kind}: {out}");
        if kind != "cgroup" {
            assert_ne!(f[1], host_ns(kind), "{kind} namespace is the host's: {out}");
        }
    }
    assert_eq!(lines.next(), Some("cgroup-same"), "exec is in another cgroup than the init: {out}");
    drop(c);
    env.assert_clean();
}

/// The exec'd process's exit code is the runtime's; death by signal N is 128+N.
#[test]
fn exec_propagates_exit_codes() {
    let Some(env) = Env::new("exec-exit") else { return };
    let c = running(&env, "exit");
    assert_eq!(exec(&env, &[&c.id, "sh", "-c", "exit 7"]).code(), 7);
    assert_eq!(exec(&env, &[&c.id, "true"]).code(), 0);
    assert_eq!(exec(&env, &[&c.id, "sh", "-c", "kill -KILL $$"]).code(), 137);
    assert_eq!(exec(&env, &[&c.id, "sh", "-c", "kill -TERM $$"]).code(), 143);
    // The container is untouched by its exec'd processes dying.
    assert_eq!(c.status(), "running");
    drop(c);
    env.assert_clean();
}

/// A non-tty exec'd process leads a session and process group of its own, as runc makes it
/// (issue 16 item 14): not the process group of the runtime's caller, which inside the
/// container's pid namespace was no group at all (`getpgrp` 0). Foreground and `-d`.
#[test]
fn exec_process_leads_its_own_session() {
    let Some(env) = Env::new("exec-session") else { return };
    let c = running(&env, "session");
    // pid, then fields 5 (pgrp) and 6 (session) of its stat.
    let script = "echo $$ $(cut -d' ' -f5,6 /proc/$$/stat)";
    let out = exec(&env, &[&c.id, "sh", "-c", script]).ok();
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(f.len() == 3 && f[0] != "0", "{out}");
    assert_eq!([f[1], f[2]], [f[0], f[0]], "pid, pgrp, session: {out}");

    let detached = format!("{script} >/dev/shm/session");
    exec(&env, &["-d", &c.id, "sh", "-c", &detached]).ok();
    let text = wait_until(TIMEOUT, "the detached exec's output", || {
        let out = exec(&env, &[&c.id, "cat", "/dev/shm/session"]);
        Some(out.stdout).filter(|s| s.ends_with('\n'))
    });
    let f: Vec<&str> = text.split_whitespace().collect();
    assert!(f.len() == 3 && f[0] != "0", "{text:?}");
    assert_eq!([f[1], f[2]], [f[0], f[0]], "detached: pid, pgrp, session: {text:?}");
    drop(c);
    env.assert_clean();
}

/// `-e`, `-u uid:gid`, `-g`, `--cwd`: the process gets the container's environment plus the
/// `-e` variables (overriding), the given ids and groups, and the working directory.
#[test]
fn exec_env_user_groups_cwd() {
    let Some(env) = Env::new("exec-flags") else { return };
    env.edit(|c| c["process"]["env"].as_array_mut().unwrap().push(json!("FROM_CONFIG=1")));
    let c = running(&env, "flags");
    let script = "echo \"$FROM_CONFIG/$FOO/$FROM_CONFIG2\"; id; pwd";
    let out = exec(
        &env,
        &[
            "-e", "FOO=bar baz", "-e", "FROM_CONFIG2=over", "-u", "1000:1001", "-g", "10", "-g", "20",
            "--cwd", "/tmp", &c.id, "sh", "-c", script,
        ],
    )
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["1/bar baz/over", "uid=1000 gid=1001 groups=10,20", "/tmp"], "{out}");

    // -e overrides a variable of the config; -u with a uid alone means gid 0.
    let out = exec(&env, &["-e", "FROM_CONFIG=2", "-u", "65534", &c.id, "sh", "-c", "echo $FROM_CONFIG; id -u; id -g"]).ok();
    assert_eq!(out.stdout, "2\n65534\n0\n", "{out}");
    drop(c);
    env.assert_clean();
}

/// `-p process.json`: the whole process comes from the file (args, env, cwd, user), not from
/// the container's config.
#[test]
fn exec_process_json() {
    let Some(env) = Env::new("exec-p") else { return };
    let c = running(&env, "p");
    let process = json!({
        "terminal": false,
        "user": {"uid": 1234, "gid": 5678, "additionalGids": [42]},
        "args": ["sh", "-c", "echo \"only=$ONLY mark=${FDBOX_TEST_MARK:-none}\"; id; pwd"],
        "env": ["PATH=/bin", "ONLY=from-file"],
        "cwd": "/etc",
    });
    let path = env.dir.join("process.json");
    fs::write(&path, process.to_string()).unwrap();
    let out = exec(&env, &["-p", path.to_str().unwrap(), &c.id]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["only=from-file mark=none", "uid=1234 gid=5678 groups=42", "/etc"], "{out}");
    drop(c);
    env.assert_clean();
}

/// `-t --console-socket`: the pty master of the exec'd process is handed over; the process's
/// stdio is a terminal.
#[test]
fn exec_tty_console_socket() {
    let Some(env) = Env::new("exec-tty") else { return };
    let c = running(&env, "tty");
    let sock = env.listen("console.sock");
    let mut exec = env.spawn(&[
        "exec", "-t", "-d", "--console-socket", &sock.path_str(), &c.id,
        "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo stdio-is-a-tty; tty; echo exec-$((6*7)); exec sleep 60",
    ]);
    let msg = sock.receive_from(&mut exec).expect("no message on the console socket");
    exec.wait().ok();
    assert_eq!(msg.fds.len(), 1, "expected exactly one fd (the pty master)");
    let master = &msg.fds[0];
    let target = readlink(format!("/proc/self/fd/{}", master.as_raw_fd()));
    assert!(target == "/dev/ptmx" || target.ends_with("/ptmx"), "not a pty master: {target}");
    let text = read_until(master, &["exec-42"], TIMEOUT);
    assert!(text.contains("stdio-is-a-tty"), "exec stdio is not the pty: {text:?}");
    // A pty of the container's devpts instance.
    assert!(text.contains("/dev/pts/"), "tty is not in the container's devpts: {text:?}");
    drop(c);
    env.assert_clean();
}

/// `--pidfd-socket`: one message, body "setns", carrying a pidfd of the exec'd process.
#[test]
fn exec_pidfd_socket() {
    let Some(env) = Env::new("exec-pidfd") else { return };
    if is_runc() && !runtime_has_flag(&env, "exec", "--pidfd-socket") {
        return skip("runtime lacks exec --pidfd-socket");
    }
    let c = running(&env, "pidfd");
    let sock = env.listen("pidfd.sock");
    let pid_file = env.dir.join("exec.pid");
    let mut exec = env.spawn(&[
        "exec", "-d", "--pidfd-socket", &sock.path_str(), "--pid-file", pid_file.to_str().unwrap(), &c.id, "sleep", "60",
    ]);
    let msg = sock.receive_from(&mut exec).expect("no message on the pidfd socket");
    exec.wait().ok();
    assert_eq!(String::from_utf8_lossy(&msg.body), "setns");
    assert_eq!(msg.fds.len(), 1, "expected exactly one fd");
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(pidfd_pid(&msg.fds[0]), Some(pid), "the pidfd is not the exec'd process");
    assert_ne!(pid, c.pid(), "the pidfd is the init's, not the exec'd process's");
    // Signalling through it reaches the exec'd process only.
    rustix::process::pidfd_send_signal(&msg.fds[0], rustix::process::Signal::KILL).expect("pidfd_send_signal");
    wait_until(TIMEOUT, "the exec'd process to die", || (!pid_alive(pid)).then_some(()));
    assert_eq!(c.status(), "running");
    drop(c);
    env.assert_clean();
}

/// `-d --pid-file`: exec returns at once, the pid file names the running process (a host
/// pid), which lives in the container's pid namespace and outlives the exec command.
#[test]
fn exec_detached_pid_file() {
    let Some(env) = Env::new("exec-detach") else { return };
    let c = running(&env, "d");
    let pid_file = env.dir.join("exec.pid");
    let started = Instant::now();
    let out = exec(&env, &["-d", "--pid-file", pid_file.to_str().unwrap(), &c.id, "sleep", "77"]).ok();
    assert!(started.elapsed() < Duration::from_secs(20), "-d waited for the process: {out}");
    let pid: i32 = fs::read_to_string(&pid_file).unwrap().trim().parse().expect("a pid in the pid file");
    assert!(pid_alive(pid), "the exec'd process is not running");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, b"sleep\x0077\x00", "the pid file names another process");
    assert_eq!(readlink(format!("/proc/{pid}/ns/pid")), readlink(format!("/proc/{}/ns/pid", c.pid())));
    drop(c);
    // Deleting the container takes the exec'd process with it.
    assert!(!pid_alive(pid), "the exec'd process outlived its container");
    env.assert_clean();
}

/// `--preserve-fds 1` passes the runtime's fd 3 and nothing above it; without the flag the
/// exec'd process has only 0, 1 and 2.
#[test]
fn exec_preserve_fds() {
    let Some(env) = Env::new("exec-fds") else { return };
    let c = running(&env, "fds");
    let file = env.dir.join("fd3");
    fs::write(&file, "").unwrap();
    let file_str = file.to_str().unwrap();
    // fd 3 appends to the file, fd 4 is open too but not preserved.
    let prefix = ["sh", "-c", "exec 3>>\"$0\" 4<\"$0\"; exec \"$@\"", file_str];
    let script = "echo through-fd3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '";
    for preserve in [true, false] {
        let mut args = vec!["exec"];
        if preserve {
            args.extend(["--preserve-fds", "1"]);
        }
        args.extend([c.id.as_str(), "sh", "-c", script]);
        let out = env.spawn_via(&prefix, &args).wait();
        // ls lists its own directory fd too (the highest number).
        let fds: Vec<i32> = out.stdout.split_whitespace().filter_map(|s| s.parse().ok()).collect();
        let want: &[i32] = if preserve { &[0, 1, 2, 3] } else { &[0, 1, 2] };
        assert_eq!(&fds[..fds.len().saturating_sub(1)], want, "preserve={preserve}: {out}");
        if preserve {
            assert!(out.success(), "{out}");
        }
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "through-fd3\n");
    drop(c);
    env.assert_clean();
}

/// exec refuses a stopped container (and an unknown one) with one line and runs nothing.
#[test]
fn exec_refuses_a_stopped_container() {
    let Some(env) = Env::new("exec-stopped") else { return };
    env.args(&["true"]);
    let c = env.container("stopped");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_status("stopped");
    let out = exec(&env, &[&c.id, "sh", "-c", "echo should-not-run"]).fails_with_one_line();
    assert!(!out.stdout.contains("should-not-run"), "{out}");
    assert!(out.stderr.contains("stopped") || out.stderr.contains("not running"), "{out}");
    // And a container that does not exist.
    exec(&env, &["no-such-container", "true"]).fails_with_one_line();
    drop(c);
    env.assert_clean();
}

/// A paused container: exec refuses it (one line) unless `--ignore-paused`; then the process
/// is created frozen and runs once the container is resumed.
#[test]
fn exec_paused_container() {
    let Some(env) = Env::new("exec-paused") else { return };
    let c = running(&env, "paused");
    let pause = env.rt(&["pause", &c.id]);
    if !pause.success() {
        if in_ci() {
            panic!("pause failed: {pause}");
        }
        return skip(&format!("pause is not available here: {}", pause.stderr.trim()));
    }
    let out = exec(&env, &[&c.id, "sh", "-c", "echo should-not-run"]).fails_with_one_line();
    assert!(out.stderr.contains("paused"), "{out}");
    assert!(!out.stdout.contains("should-not-run"), "{out}");

    let mut ignored = env.spawn(&["exec", "--ignore-paused", &c.id, "sh", "-c", "echo ran-after-resume"]);
    // Frozen: it cannot have run (or exited) while the container is paused.
    std::thread::sleep(Duration::from_millis(500));
    assert!(!ignored.has_exited(), "exec into a paused container finished while paused: {}", ignored.stderr());
    assert!(!ignored.stdout().contains("ran-after-resume"));
    env.rt(&["resume", &c.id]).ok();
    let out = ignored.wait().ok();
    assert_eq!(out.stdout, "ran-after-resume\n", "{out}");
    drop(c);
    env.assert_clean();
}

/// A missing executable: one clear error line, a failing exit code, nothing left running.
#[test]
fn exec_missing_executable() {
    let Some(env) = Env::new("exec-missing") else { return };
    let c = running(&env, "missing");
    let init = c.pid();
    for cmd in ["/bin/no-such-binary", "no-such-command"] {
        let out = exec(&env, &[&c.id, cmd]).fails_with_one_line();
        assert!(out.stderr.contains("no-such"), "the error does not name the executable: {out}");
    }
    // Only the init is left of this test (and the container is still fine).
    env.assert_only_processes(&[init]);
    assert_eq!(c.status(), "running");
    drop(c);
    env.assert_clean();
}

/// The capability mask of `/proc/self/status` (`CapEff`, …) as a number.
fn cap_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {field} in {status:?}"))
}

const CAP_KILL: u32 = 5;
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// `--cap` adds a capability to the exec'd process (bounding, effective, permitted); without
/// it, the process has the container's set only.
#[test]
fn exec_cap_adds_a_capability() {
    let Some(env) = Env::new("exec-cap") else { return };
    let c = running(&env, "cap");
    let plain = exec(&env, &[&c.id, "cat", "/proc/self/status"]).ok();
    let eff = cap_mask(&plain.stdout, "CapEff");
    assert_ne!(eff & (1 << CAP_KILL), 0, "CAP_KILL of the default config missing: {eff:#x}");
    assert_eq!(eff & (1 << CAP_NET_ADMIN), 0, "CAP_NET_ADMIN present without --cap: {eff:#x}");
    assert_eq!(cap_mask(&plain.stdout, "CapBnd") & (1 << CAP_SYS_ADMIN), 0);

    let added = exec(&env, &["--cap", "CAP_NET_ADMIN", &c.id, "cat", "/proc/self/status"]).ok();
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        let m = cap_mask(&added.stdout, field);
        assert_ne!(m & (1 << CAP_NET_ADMIN), 0, "{field} lacks CAP_NET_ADMIN with --cap: {m:#x}");
        assert_ne!(m & (1 << CAP_KILL), 0, "{field} lost CAP_KILL: {m:#x}");
        assert_eq!(m & (1 << CAP_SYS_ADMIN), 0, "{field} has CAP_SYS_ADMIN: {m:#x}");
    }
    // It works, too: only CAP_NET_ADMIN may bring a link up in the container's netns.
    let up = exec(&env, &["--cap", "CAP_NET_ADMIN", &c.id, "ip", "link", "set", "lo", "up"]);
    assert!(up.success(), "{up}");
    let denied = exec(&env, &[&c.id, "ip", "link", "set", "lo", "down"]);
    assert!(!denied.success(), "lo went down without CAP_NET_ADMIN: {denied}");
    drop(c);
    env.assert_clean();
}

/// `--no-new-privs` sets NoNewPrivs for the exec'd process even when the config does not.
#[test]
fn exec_no_new_privs() {
    let Some(env) = Env::new("exec-nnp") else { return };
    env.set("/process/noNewPrivileges", json!(false));
    let c = running(&env, "nnp");
    let grep = ["grep", "^NoNewPrivs:", "/proc/self/status"];
    let mut args = vec![c.id.as_str()];
    args.extend(grep);
    let out = exec(&env, &args).ok();
    assert_eq!(out.stdout.split_whitespace().nth(1), Some("0"), "{out}");
    let mut args = vec!["--no-new-privs", c.id.as_str()];
    args.extend(grep);
    let out = exec(&env, &args).ok();
    assert_eq!(out.stdout.split_whitespace().nth(1), Some("1"), "{out}");
    drop(c);
    env.assert_clean();
}

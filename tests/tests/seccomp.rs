//! seccomp (issue 5), checked from inside real containers: what a filtered system call returns
//! or does to the process, argument conditions on busybox applets whose system calls take
//! arguments the test controls, the podman default profile, filter flags, the NOTIFY hand-off
//! to an agent on `listenerPath`, and profiles that `create` must refuse.
//!
//! The probes: `mkdir`/`mkdirat` (path only), `linux32`/`linux64 [-R]` (personality 0, 8,
//! 0x40000, 0x40008), the shell's `kill` builtin (kill(pid, sig): two arguments), `dd skip=N`
//! (lseek(fd, N, SEEK_CUR): a full 64-bit argument), the shell's `umask` builtin, and `$PPID`
//! (the shell's getppid at startup).

use fdbox_tests::*;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

fn allow_all_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
}

fn rule(names: &[&str], action: &str) -> Value {
    json!({"names": names, "action": action})
}

fn errno_rule(names: &[&str], errno: u32) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno})
}

fn arg(index: u32, op: &str, value: u64) -> Value {
    json!({"index": index, "op": op, "value": value})
}

/// Run `script` with `profile` as linux.seccomp; stdout (with stderr folded in by the script).
fn run_with(env: &Env, tag: &str, profile: Value, script: &str) -> Output {
    env.set("/linux/seccomp", profile);
    env.sh(script);
    env.container(tag).run(&[])
}

/// No core files from the processes the tests make seccomp kill.
fn no_core_dumps(env: &Env) {
    env.edit(|c| {
        c["process"]["rlimits"]
            .as_array_mut()
            .expect("rlimits in the default spec")
            .push(json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}))
    });
}

/// `Seccomp_filters:\t<n>` as a container's /proc/self/status shows it with `extra` filters
/// of its own on top of those this test process runs under (normally none).
fn filters_line(extra: u32) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let host: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    format!("Seccomp_filters:\t{}", host + extra)
}

/// The default podman profile, as podman 4.3 writes it into config.json.
fn podman_profile() -> Value {
    let path = workspace_dir().join("tests/fixtures/seccomp-podman-default.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the podman profile fixture")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/// ERRNO: the call fails with errnoRet (38, ENOSYS) and has no effect; without errnoRet the
/// errno is EPERM. The same mkdir works without the profile.
#[test]
fn denied_syscall_returns_the_configured_errno() {
    let Some(env) = Env::new("seccomp-errno") else { return };
    let script = "mkdir /dev/shm/d 2>&1; echo rc=$?; [ -d /dev/shm/d ] && echo exists || echo absent; grep '^Seccomp' /proc/self/status";

    env.sh(script);
    let out = env.container("plain").run(&[]).ok();
    assert!(out.stdout.contains("rc=0") && out.stdout.contains("exists"), "mkdir fails without seccomp: {out}");

    let out = run_with(&env, "enosys", allow_all_but(json!([errno_rule(&["mkdir", "mkdirat"], 38)])), script).ok();
    assert!(out.stdout.contains("Function not implemented"), "{out}");
    assert!(out.stdout.contains("rc=1") && out.stdout.contains("absent"), "{out}");
    assert!(out.stdout.contains("Seccomp:\t2") && out.stdout.contains(&filters_line(1)), "no filter: {out}");

    let out = run_with(&env, "eperm", allow_all_but(json!([rule(&["mkdir", "mkdirat"], "SCMP_ACT_ERRNO")])), script).ok();
    assert!(out.stdout.contains("Operation not permitted") && out.stdout.contains("absent"), "{out}");
    env.assert_clean();
}

/// KILL_PROCESS, KILL_THREAD and KILL (= KILL_THREAD) end the (single-threaded) process with
/// SIGSYS: the container exits with 128 + 31.
#[test]
fn kill_actions_end_the_container_with_sigsys() {
    let Some(env) = Env::new("seccomp-kill") else { return };
    no_core_dumps(&env);
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL"] {
        env.set("/linux/seccomp", allow_all_but(json!([rule(&["mkdir", "mkdirat"], action)])));
        env.args(&["mkdir", "/dev/shm/k"]);
        let out = env.container("kill").run(&[]);
        assert_eq!(out.code(), 128 + 31, "{action}: {out}");
    }
    // The calls before mkdir were allowed: the same command runs without the rule.
    env.set("/linux/seccomp", allow_all_but(json!([])));
    env.container("nokill").run(&[]).ok();
    env.assert_clean();
}

/// TRAP delivers SIGSYS to a handler and the call is skipped: a shell that traps SYS goes on.
/// Without a handler SIGSYS kills, as with KILL.
#[test]
fn trap_raises_sigsys_that_a_handler_can_catch() {
    let Some(env) = Env::new("seccomp-trap") else { return };
    no_core_dumps(&env);
    let profile = allow_all_but(json!([rule(&["umask"], "SCMP_ACT_TRAP")]));
    let out = run_with(&env, "trap", profile.clone(), "trap 'echo trapped' SYS; umask 027; echo after").ok();
    assert!(out.stdout.contains("trapped") && out.stdout.contains("after"), "{out}");
    let out = run_with(&env, "untrapped", profile, "umask 027; echo after");
    assert_eq!(out.code(), 128 + 31, "{out}");
    assert!(!out.stdout.contains("after"), "{out}");
    env.assert_clean();
}

/// TRACE with no tracer attached: the call fails with ENOSYS (errnoRet is the tracer's message
/// data, not the errno: 1 would be EPERM).
#[test]
fn trace_without_a_tracer_fails_with_enosys() {
    let Some(env) = Env::new("seccomp-trace") else { return };
    let profile = allow_all_but(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_TRACE", "errnoRet": 1}]));
    let out = run_with(&env, "trace", profile, "mkdir /dev/shm/t 2>&1; [ -d /dev/shm/t ] && echo exists || echo absent").ok();
    assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("absent"), "{out}");
    env.assert_clean();
}

/// LOG lets the call through: with a default-deny profile, mkdir works only thanks to the rule.
#[test]
fn log_allows_the_call() {
    let Some(env) = Env::new("seccomp-log") else { return };
    let mut profile = podman_profile();
    for r in profile["syscalls"].as_array_mut().unwrap() {
        r["names"].as_array_mut().unwrap().retain(|n| n != "mkdir" && n != "mkdirat");
    }
    let script = "mkdir /dev/shm/l 2>&1; [ -d /dev/shm/l ] && echo exists || echo absent";
    let out = run_with(&env, "nolog", profile.clone(), script).ok();
    assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("absent"), "{out}");
    profile["syscalls"].as_array_mut().unwrap().push(rule(&["mkdir", "mkdirat"], "SCMP_ACT_LOG"));
    let out = run_with(&env, "log", profile, script).ok();
    assert!(out.stdout.contains("exists"), "{out}");
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Argument conditions
// ---------------------------------------------------------------------------------------------

/// personality(0), (8), (0x40000), (0x40008) through busybox's setarch applets.
const PERSONALITY_PROBES: &str = "for p in linux64 linux32 'linux64 -R' 'linux32 -R'; do \
    if $p true 2>/dev/null; then echo -n 'ok '; else echo -n 'denied '; fi; done; echo";

/// Every operator, on personality's argument: which of 0, 8, 0x40000, 0x40008 are denied.
#[test]
fn every_operator_on_an_argument() {
    let Some(env) = Env::new("seccomp-ops") else { return };
    let masked = |mask: u64, value: u64| json!({"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": mask, "valueTwo": value});
    let cases = [
        (arg(0, "SCMP_CMP_EQ", 8), "ok denied ok ok"),
        (arg(0, "SCMP_CMP_NE", 8), "denied ok denied denied"),
        (arg(0, "SCMP_CMP_LT", 8), "denied ok ok ok"),
        (arg(0, "SCMP_CMP_LE", 8), "denied denied ok ok"),
        (arg(0, "SCMP_CMP_GT", 8), "ok ok denied denied"),
        (arg(0, "SCMP_CMP_GE", 8), "ok denied denied denied"),
        (masked(0x40000, 0x40000), "ok ok denied denied"),
        (masked(0xff, 8), "ok denied ok denied"),
    ];
    for (cond, want) in cases {
        let profile = allow_all_but(json!([{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [cond]}]));
        let out = run_with(&env, "op", profile, PERSONALITY_PROBES).ok();
        assert_eq!(out.stdout.trim(), want, "{cond}: {out}");
    }
    env.assert_clean();
}

/// kill(1, 0), kill(1, SIGCONT), kill(0, 0), kill(0, SIGCONT) from the shell (pid 1), each
/// printing "ok" or its error.
const KILL_PROBES: &str = "for a in '-0 1' '-CONT 1' '-0 0' '-CONT 0'; do \
    if e=$(kill $a 2>&1); then echo ok; else echo \"$e\"; fi; done";

/// Conditions of one rule are ANDed; one system call in several rules, each with its own
/// errno; one argument twice in a rule makes separate rules (ORed), as runc does.
#[test]
fn conditions_are_anded_and_rules_combine() {
    let Some(env) = Env::new("seccomp-and") else { return };
    let profile = allow_all_but(json!([
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [arg(0, "SCMP_CMP_EQ", 1), arg(1, "SCMP_CMP_EQ", 0)]},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [arg(0, "SCMP_CMP_EQ", 0)]}
    ]));
    let out = run_with(&env, "and", profile, KILL_PROBES).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].contains("Function not implemented"), "kill(1, 0): {out}");
    assert_eq!(lines[1], "ok", "kill(1, SIGCONT): {out}");
    assert!(lines[2].contains("Operation not permitted"), "kill(0, 0): {out}");
    assert!(lines[3].contains("Operation not permitted"), "kill(0, SIGCONT): {out}");

    let profile = allow_all_but(json!([
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [arg(0, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_EQ", 0)]}
    ]));
    let out = run_with(&env, "or", profile, KILL_PROBES).ok();
    let denied = out.stdout.lines().filter(|l| l.contains("Function not implemented")).count();
    assert_eq!(denied, 4, "{out}");
    env.assert_clean();
}

/// 64-bit arguments compare by both halves: `dd skip=N` seeks with lseek(fd, N, SEEK_CUR), and
/// a rule kills dd (exit 159) when it matches. 5, 0x1_0000_0005 and 0x2_0000_0005 share their
/// low half.
#[test]
fn both_halves_of_64_bit_arguments() {
    let Some(env) = Env::new("seccomp-64") else { return };
    no_core_dumps(&env);
    let probes = "for n in 5 4294967295 4294967296 4294967301 8589934597; do \
        dd if=/dev/null of=/dev/null bs=1 count=0 skip=$n 2>/dev/null; echo -n \"$? \"; done; echo";
    let lseek = |cond: Value| {
        allow_all_but(json!([{"names": ["lseek"], "action": "SCMP_ACT_KILL_PROCESS", "args": [cond, arg(2, "SCMP_CMP_EQ", 1)]}]))
    };
    let cases = [
        (arg(1, "SCMP_CMP_EQ", 0x1_0000_0005), "0 0 0 159 0"),
        (arg(1, "SCMP_CMP_EQ", 5), "159 0 0 0 0"),
        (arg(1, "SCMP_CMP_GT", 0xffff_ffff), "0 0 159 159 159"),
        (arg(1, "SCMP_CMP_GE", 0x1_0000_0005), "0 0 0 159 159"),
        (arg(1, "SCMP_CMP_LE", 0x1_0000_0000), "159 159 159 0 0"),
        (json!({"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 0xffff_ffff_0000_0000u64, "valueTwo": 0x1_0000_0000u64}), "0 0 159 159 0"),
    ];
    // Without a rule, every dd succeeds.
    let out = run_with(&env, "none", allow_all_but(json!([])), probes).ok();
    assert_eq!(out.stdout.trim(), "0 0 0 0 0", "{out}");
    for (cond, want) in cases {
        let out = run_with(&env, "half", lseek(cond.clone()), probes).ok();
        assert_eq!(out.stdout.trim(), want, "{cond}: {out}");
    }
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// The podman default profile and flags
// ---------------------------------------------------------------------------------------------

const NORMAL_SHELL: &str = "echo hello; ls / >/dev/null && echo ls-ok; mkdir /dev/shm/p && echo mkdir-ok; \
    echo sub | cat; sleep 0.05 && echo slept; kill -0 $$ && echo kill-ok; id -u; \
    grep '^Seccomp' /proc/self/status; linux32 true && echo linux32-ok; \
    linux64 -R true 2>/dev/null || echo norandom-denied";

fn assert_normal_shell_under_podman(out: &Output, uid: &str) {
    for want in ["hello", "ls-ok", "mkdir-ok", "sub", "slept", "kill-ok", "linux32-ok", "Seccomp:\t2", &filters_line(1)] {
        assert!(out.stdout.lines().any(|l| l == want), "missing {want:?}: {out}");
    }
    assert!(out.stdout.lines().any(|l| l == uid), "uid {uid}: {out}");
    // personality(ADDR_NO_RANDOMIZE) is not among the values podman allows.
    assert!(out.stdout.contains("norandom-denied"), "{out}");
}

/// The podman default profile runs a normal busybox shell and denies what it does not list.
/// Installed both ways: last before execve (noNewPrivileges), and before the switch to the
/// container's user and capabilities (without it: seccomp then needs CAP_SYS_ADMIN, which a
/// non-root user with the default capabilities no longer has).
#[test]
fn podman_default_profile_runs_a_shell() {
    let Some(env) = Env::new("seccomp-podman") else { return };
    // The same shell without seccomp: ADDR_NO_RANDOMIZE is allowed there.
    env.sh(NORMAL_SHELL);
    let out = env.container("plain").run(&[]).ok();
    assert!(!out.stdout.contains("norandom-denied") && out.stdout.contains(&filters_line(0)), "{out}");

    env.set("/linux/seccomp", podman_profile());
    let out = env.container("podman").run(&[]).ok();
    assert_normal_shell_under_podman(&out, "0");

    env.set("/process/noNewPrivileges", json!(false));
    let out = env.container("podman-privs").run(&[]).ok();
    assert_normal_shell_under_podman(&out, "0");

    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    let out = env.container("podman-user").run(&[]).ok();
    assert_normal_shell_under_podman(&out, "1000");
    env.assert_clean();
}

/// TSYNC, LOG and SPEC_ALLOW are accepted and the filter still works.
#[test]
fn filter_flags() {
    let Some(env) = Env::new("seccomp-flags") else { return };
    let mut profile = allow_all_but(json!([errno_rule(&["mkdir", "mkdirat"], 38)]));
    profile["flags"] = json!(["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]);
    let out = run_with(&env, "flags", profile, "mkdir /dev/shm/f 2>&1; grep '^Seccomp:' /proc/self/status");
    if is_runc() && out.stderr.contains("seccomp flags are not yet supported") {
        return skip("this runc does not support seccomp flags");
    }
    let out = out.ok();
    assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("Seccomp:\t2"), "{out}");
    env.assert_clean();
}

/// `features` reports seccomp with what fdbox compiles, and the flags this kernel accepts.
#[test]
fn features_report_seccomp() {
    let Some(env) = Env::new("seccomp-features") else { return };
    if !is_fdbox() {
        return skip("checks fdbox's own features document");
    }
    let out = env.rt_bare(&["features"], &env.dir).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let s = &v["linux"]["seccomp"];
    assert_eq!(s["enabled"], json!(true), "{s}");
    for (key, want) in [
        ("actions", &["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"][..]),
        ("operators", &["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"][..]),
        ("archs", &["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"][..]),
        ("knownFlags", &["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"][..]),
        // All three exist since Linux 4.17.
        ("supportedFlags", &["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"][..]),
    ] {
        let list = s[key].as_array().unwrap_or_else(|| panic!("{key} missing: {s}"));
        for w in want {
            assert!(list.iter().any(|x| x == w), "{key} lacks {w}: {s}");
        }
    }
}

/// Profiles that do not allow `close_range` (older Docker and containerd profiles, generated
/// ones with a deny-by-default) or make it ENOSYS: the runtime's own use of it must not depend
/// on the profile (issue 16 items 1 and 27). Without no_new_privs the filter goes in before the
/// switch to the container's user, long before execve; `run` and `exec` must both work, the
/// filter must be in place, and the program must get no fd of the runtime (an fd 7 that the
/// runtime's caller left open without close-on-exec included).
#[test]
fn profile_that_denies_close_range() {
    let Some(env) = Env::new("seccomp-close-range") else { return };
    let inherited = env.dir.join("inherited");
    let via = ["sh", "-c", "exec 7>>\"$0\"; exec \"$@\"", inherited.to_str().unwrap()];
    // The program's fds, as ls sees them in its place: 0-2 and its own directory's 3.
    let script = "grep '^Seccomp:' /proc/self/status; exec ls /proc/self/fd";
    let check = |what: &str, out: &Output| {
        assert!(out.success(), "{what}: {out}");
        let fds: Vec<&str> = out.stdout.lines().filter(|l| l.parse::<u32>().is_ok()).collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "{what}: the program got other fds: {out}");
        assert!(out.stdout.contains("Seccomp:\t2"), "{what}: no filter: {out}");
    };
    for (errno, name) in [(1, "EPERM"), (38, "ENOSYS")] {
        for nnp in [false, true] {
            let what = format!("close_range → {name}, noNewPrivileges {nnp}");
            env.set("/linux/seccomp", allow_all_but(json!([errno_rule(&["close_range"], errno)])));
            env.set("/process/noNewPrivileges", json!(nnp));
            env.sh(script);
            let out = env.container("run").run_via(&via, &[]);
            check(&format!("{what}, run"), &out);

            env.args(&["sleep", "60"]);
            let c = env.container("exec");
            c.run(&["-d"]).ok();
            let mut args = vec!["exec", &c.id, "sh", "-c", script];
            let out = env.spawn_via(&via, &args).wait();
            check(&format!("{what}, exec"), &out);
            args.splice(1..1, ["--no-new-privs"]);
            let out = env.spawn_via(&via, &args).wait();
            check(&format!("{what}, exec --no-new-privs"), &out);
            c.delete(&["-f"]).ok();
        }
    }
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// NOTIFY
// ---------------------------------------------------------------------------------------------

/// Answer one notification on `listener`: receive it, check it is `nr` from `pid`, and make
/// the call return `val`.
fn answer(listener: impl AsFd, nr: i64, pid: i32, val: i64) {
    let fd = listener.as_fd().as_raw_fd();
    // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed and fills it in.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif into `req`, which lives across the call.
    let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req as *mut libc::seccomp_notif) };
    assert_eq!(r, 0, "SECCOMP_IOCTL_NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.data.nr as i64, nr, "notified for another system call");
    assert_eq!(req.data.arch, 0xc000_003e, "not an x86_64 call");
    assert_eq!(req.pid as i32, pid, "notified for another process");
    let mut resp = libc::seccomp_notif_resp { id: req.id, val, error: 0, flags: 0 };
    // SAFETY: SEND reads one seccomp_notif_resp, which lives across the call.
    let r = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp as *mut libc::seccomp_notif_resp) };
    assert_eq!(r, 0, "SECCOMP_IOCTL_NOTIF_SEND: {}", std::io::Error::last_os_error());
}

/// NOTIFY: the runtime connects to listenerPath and sends the runtime-spec "seccomp state"
/// (ociVersion, fds ["seccompFd"], pid, metadata, state) with the listener fd; the agent (this
/// test) answers the container's getppid with 4242, which the shell then prints as $PPID.
#[test]
fn notify_hands_the_listener_to_the_agent() {
    let Some(env) = Env::new("seccomp-notify") else { return };
    let sock = env.listen("agent.sock");
    let mut profile = allow_all_but(json!([rule(&["getppid"], "SCMP_ACT_NOTIFY")]));
    profile["listenerPath"] = json!(sock.path_str());
    profile["listenerMetadata"] = json!("fdbox-test-metadata");
    env.set("/linux/seccomp", profile);
    env.set("/annotations", json!({"org.example.seccomp": "yes"}));
    env.sh("echo ppid=$PPID");
    let c = env.container("notify");
    let mut run = c.spawn_run(&[]);
    let msg = sock.receive_from(&mut run).expect("no message on listenerPath");

    let state: Value = serde_json::from_slice(&msg.body).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&msg.body)));
    assert_eq!(msg.fds.len(), 1, "one fd, the listener: {state}");
    assert_eq!(readlink(format!("/proc/self/fd/{}", msg.fds[0].as_raw_fd())), "anon_inode:seccomp notify");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "fdbox-test-metadata", "{state}");
    assert!(state["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{state}");
    let inner = &state["state"];
    assert_eq!(inner["id"], json!(c.id), "{state}");
    assert_eq!(inner["bundle"], json!(env.bundle.to_string_lossy()), "{state}");
    assert_eq!(inner["annotations"]["org.example.seccomp"], "yes", "{state}");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert_eq!(inner["pid"].as_i64(), Some(pid as i64), "{state}");
    assert!(pid > 0 && pid_alive(pid), "{state}");
    // The container's process: in the container's pid namespace (and `answer` checks that the
    // notification comes from this pid).
    let ns = readlink(format!("/proc/{pid}/ns/pid"));
    assert!(!ns.is_empty() && ns != host_ns("pid"), "pid {pid} is not in the container's pid namespace");

    let mut pfd = [rustix::event::PollFd::new(&msg.fds[0], rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec { tv_sec: TIMEOUT.as_secs() as i64, tv_nsec: 0 };
    assert_eq!(rustix::event::poll(&mut pfd, Some(&ts)).unwrap(), 1, "no notification came");
    answer(&msg.fds[0], libc::SYS_getppid, pid, 4242);
    let deadline = Instant::now() + TIMEOUT;
    while !run.has_exited() {
        assert!(Instant::now() < deadline, "the container did not finish");
        // Answer any further getppid (none is expected from this shell).
        let mut pfd = [rustix::event::PollFd::new(&msg.fds[0], rustix::event::PollFlags::IN)];
        let ts = rustix::event::Timespec { tv_sec: 0, tv_nsec: 20_000_000 };
        if rustix::event::poll(&mut pfd, Some(&ts)).unwrap_or(0) == 1
            && pfd[0].revents().contains(rustix::event::PollFlags::IN)
        {
            answer(&msg.fds[0], libc::SYS_getppid, pid, 4242);
        }
    }
    let out = run.wait_timeout(Duration::from_secs(5)).ok();
    assert_eq!(out.stdout.trim(), "ppid=4242", "{out}");
    drop(c);
    env.assert_clean();
}

/// listenerPath is used exactly when the profile has a NOTIFY rule, as in runc (issue 16 item
/// 13): a NOTIFY rule whose only name this host does not know (the rule is skipped) still hands
/// a listener to the agent that waits on the socket, as runc 1.1.5 does; without a NOTIFY rule
/// nobody connects (runc neither), and a listenerPath where nobody listens does not matter.
#[test]
fn listener_path_serves_every_profile_with_a_notify_rule() {
    let Some(env) = Env::new("seccomp-listener") else { return };
    let sock = env.listen("agent.sock");
    let mkdir_enosys = errno_rule(&["mkdir", "mkdirat"], 38);
    let mut profile = allow_all_but(json!([rule(&["no_such_syscall"], "SCMP_ACT_NOTIFY"), mkdir_enosys.clone()]));
    profile["listenerPath"] = json!(sock.path_str());
    env.set("/linux/seccomp", profile);
    env.sh("mkdir /dev/shm/d 2>&1; echo done");
    let c = env.container("unknown");
    let mut run = c.spawn_run(&[]);
    let msg = sock.receive_from(&mut run).expect("the runtime did not connect to listenerPath");
    let state: Value = serde_json::from_slice(&msg.body).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&msg.body)));
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(msg.fds.len(), 1, "one fd, the listener: {state}");
    assert_eq!(readlink(format!("/proc/self/fd/{}", msg.fds[0].as_raw_fd())), "anon_inode:seccomp notify");
    let out = run.wait().ok();
    assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("done"), "{out}");
    drop(c);

    for (tag, path) in [("nobody", env.dir.join("nobody-listens.sock").display().to_string()), ("agent", sock.path_str())] {
        let mut profile = allow_all_but(json!([mkdir_enosys.clone()]));
        profile["listenerPath"] = json!(path);
        env.set("/linux/seccomp", profile);
        let out = env.container(tag).run(&[]).ok();
        assert!(out.stdout.contains("Function not implemented") && out.stdout.contains("done"), "{tag}: {out}");
    }
    assert!(sock.receive(Duration::from_millis(200)).is_err(), "the runtime connected without a NOTIFY rule");
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Profiles create refuses
// ---------------------------------------------------------------------------------------------

/// A bad profile fails `create` with one line naming the problem, and leaves nothing behind.
#[test]
fn bad_profiles_fail_create() {
    let Some(env) = Env::new("seccomp-bad") else { return };
    let nobody = env.dir.join("nobody-listens.sock");
    // An agent that listens: NOTIFY on `write` is refused for itself (issue 16 item 27; runc
    // says "SCMP_ACT_NOTIFY cannot be used for the write syscall").
    let agent = env.listen("agent.sock");
    let notify_write = json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": agent.path_str(), "syscalls": [rule(&["write"], "SCMP_ACT_NOTIFY")]});
    let cases = [
        (notify_write, "SCMP_ACT_NOTIFY cannot be used for the write syscall"),
        (json!({"defaultAction": "SCMP_ACT_BOGUS"}), "SCMP_ACT_BOGUS"),
        (allow_all_but(json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [arg(0, "SCMP_CMP_BOGUS", 1)]}])), "SCMP_CMP_BOGUS"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}), "SCMP_ARCH_BOGUS"),
        (json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}), "SECCOMP_FILTER_FLAG_BOGUS"),
        (allow_all_but(json!([rule(&["mkdir"], "SCMP_ACT_NOTIFY")])), "listenerPath"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": nobody, "syscalls": [rule(&["mkdir"], "SCMP_ACT_NOTIFY")]}),
            "nobody-listens.sock",
        ),
        (allow_all_but(json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [arg(7, "SCMP_CMP_EQ", 1)]}])), "index 7"),
    ];
    env.args(&["true"]);
    for (profile, needle) in cases {
        env.set("/linux/seccomp", profile.clone());
        let c = env.container("bad");
        let out = c.create(&[]);
        assert!(!out.success(), "create accepted {profile}: {out}");
        if is_fdbox() {
            let out = out.fails_with_one_line();
            assert!(out.stderr.contains(needle), "{profile}: the error does not name {needle:?}: {out}");
        }
        drop(c);
        env.assert_clean();
    }
}

/// A process started with `exec` runs under the container's profile too,
/// with and without no_new_privs.
#[test]
fn exec_runs_under_the_container_profile() {
    let Some(env) = Env::new("seccomp-exec") else { return };
    for nnp in [true, false] {
        env.set("/linux/seccomp", allow_all_but(json!([errno_rule(&["mkdir", "mkdirat"], 38)])));
        env.set("/process/noNewPrivileges", json!(nnp));
        env.args(&["sleep", "60"]);
        let c = env.container("x");
        c.run(&["-d"]).ok();
        let out = env
            .rt(&["exec", &c.id, "sh", "-c", "mkdir /dev/shm/d 2>&1; grep '^Seccomp:' /proc/self/status"])
            .ok();
        assert!(out.stdout.contains("Function not implemented"), "nnp={nnp}: {out}");
        assert!(out.stdout.contains("Seccomp:\t2"), "nnp={nnp}: {out}");
        c.delete(&["-f"]).ok();
    }
    env.assert_clean();
}

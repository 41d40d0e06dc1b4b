//! OCI lifecycle hooks (runtime-spec `config.md#posix-platform-hooks`).
//!
//! | hook              | run by                  | namespaces | when                                  |
//! |-------------------|-------------------------|------------|---------------------------------------|
//! | `prestart`        | `create` (the parent)   | runtime    | environment made, before pivot_root   |
//! | `createRuntime`   | `create` (the parent)   | runtime    | right after `prestart`                |
//! | `createContainer` | the init                | container  | after `createRuntime`, before pivot_root (path resolves on the host tree) |
//! | `startContainer`  | the init                | container  | on `start`, before the user's program (path resolves in the container) |
//! | `poststart`       | `start`                 | runtime    | the program runs, before `start` returns |
//! | `poststop`        | `delete`                | runtime    | the container is gone, before `delete` returns |
//!
//! Each hook gets the container's state (`ociVersion`, `id`, `status`, `pid`,
//! `bundle`, `annotations`) as JSON on stdin, its `args` as argv (`path` is
//! what is executed; without `args`, argv is `[path]`), its `env` as the
//! whole environment (without `env` it inherits the runtime's, as runc), and
//! is killed once its `timeout` has passed. A failing `prestart`,
//! `createRuntime`, `createContainer`, `startContainer` or `poststart` hook
//! fails the operation and the container is destroyed (runtime-spec 1.3 made
//! `poststart` fatal, lifecycle step 9, as runc always had it); a failing
//! `poststop` hook is a warning (lifecycle step 13).
//!
//! Hooks are spawned with `std::process::Command` and waited for in one
//! `poll` over the child's pidfd and its pipes: no thread is started, so the
//! fdbox process stays thread-free (DESIGN.md) and the init, which runs the
//! container-side hooks, stays a single-threaded copy of it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::process::sync::{Msg, SyncSocket};

/// Which list of `hooks` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

/// The hooks of one kind in the config (empty when there are none).
pub fn list(spec: &Spec, kind: Kind) -> &[Hook] {
    let Some(h) = spec.hooks().as_ref() else { return &[] };
    #[allow(deprecated)]
    let hooks = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    hooks.as_deref().unwrap_or_default()
}

/// Whether the init has to stop before pivot_root for hooks: the parent's
/// `prestart`/`createRuntime` run then, and the init needs the state that
/// the parent sends back for its own `createContainer`/`startContainer`.
pub fn init_needs_state(spec: &Spec) -> bool {
    [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer, Kind::StartContainer]
        .into_iter()
        .any(|k| !list(spec, k).is_empty())
}

/// The largest hook `timeout`: the seconds of runc's largest timeout (Go's
/// `time.Duration`, int64 nanoseconds), ~292 years. Beyond it runc's
/// arithmetic wraps; here it is refused.
pub const MAX_TIMEOUT_SECS: i64 = i64::MAX / 1_000_000_000;

/// Check what can be checked before anything is created: absolute paths and
/// positive, representable timeouts (runtime-spec: "If set, timeout MUST be greater than
/// zero").
pub fn validate(spec: &Spec) -> Result<()> {
    for kind in [Kind::Prestart, Kind::CreateRuntime, Kind::CreateContainer, Kind::StartContainer, Kind::Poststart, Kind::Poststop] {
        for h in list(spec, kind) {
            if !h.path().is_absolute() {
                return Err(Error::Config(format!("{} hook {:?}: path must be absolute", kind.name(), h.path())));
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    return Err(Error::Config(format!("{} hook {}: timeout must be greater than zero", kind.name(), h.path().display())));
                }
                if t > MAX_TIMEOUT_SECS {
                    return Err(Error::Config(format!(
                        "{} hook {}: timeout {t} is too large (at most {MAX_TIMEOUT_SECS} seconds)",
                        kind.name(),
                        h.path().display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The runtime-spec state a hook reads on stdin.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HookState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

impl HookState {
    /// The state of a recorded container, with `status`.
    pub fn of(st: &crate::state::State, status: &str) -> HookState {
        HookState {
            oci_version: st.oci_version.clone(),
            id: st.id.clone(),
            status: status.to_string(),
            pid: st.pid,
            bundle: st.bundle.clone(),
            annotations: st.annotations.clone(),
        }
    }

    pub fn with_status(&self, status: &str) -> HookState {
        HookState { status: status.to_string(), ..self.clone() }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Run every hook of `kind` in order; the first failure stops the list and
/// is the error (for the hooks whose failure fails the operation).
pub fn run(spec: &Spec, kind: Kind, state: &HookState) -> Result<()> {
    let stdin = state.to_json();
    for (i, h) in list(spec, kind).iter().enumerate() {
        run_one(h, &stdin).map_err(|e| Error::Hook(failure(kind, i, &e)))?;
    }
    Ok(())
}

/// Run every hook of `kind`, logging each failure as a warning and going on
/// (`poststop`).
pub fn run_warn(spec: &Spec, kind: Kind, state: &HookState) {
    let stdin = state.to_json();
    for (i, h) in list(spec, kind).iter().enumerate() {
        if let Err(e) = run_one(h, &stdin) {
            crate::log::warn(&failure(kind, i, &e));
        }
    }
}

/// The init's part of the create operation's hooks, between its last mount
/// and pivot_root: ask the parent to run `prestart` and `createRuntime`
/// (in the runtime's namespaces), then run `createContainer` here, in the
/// container's namespaces; the process still has the host's tree as its
/// root, so hook paths resolve as they do for the runtime. Returns the state
/// for the `startContainer` hooks (None when the config has no hooks that
/// need it).
pub fn init_before_pivot(sync: &SyncSocket, spec: &Spec) -> Result<Option<HookState>> {
    if !init_needs_state(spec) {
        return Ok(None);
    }
    sync.send(&Msg::Hooks, &[]).map_err(|e| Error::sys("sendmsg", "sync socket", e))?;
    let state = match sync.recv().map_err(|e| Error::sys("recvmsg", "sync socket", e))? {
        Some((Msg::HooksDone { state }, _)) => state,
        // The parent's hooks failed: it kills us and reports their error.
        _ => return Err(Error::Init("parent went away while running the createRuntime hooks".into())),
    };
    // The init works with umask 0 (modes exactly as the spec says); a hook
    // gets the usual 022.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let result = run(spec, Kind::CreateContainer, &state);
    rustix::process::umask(old);
    result?;
    Ok(Some(state.with_status("created")))
}

/// The one line that reports hook #`i` of `kind` failing, in runc's words
/// (clients grep for `error running <kind> hook #<n>:`).
fn failure(kind: Kind, i: usize, why: &str) -> String {
    format!("error running {} hook #{i}: {why}", kind.name())
}

/// Whether an error line reported by the init is a failed `kind` hook.
pub fn is_failure_of(message: &str, kind: Kind) -> bool {
    message.starts_with(&format!("error running {} hook #", kind.name()))
}

/// How much of a hook's stdout/stderr is kept for the error message.
const OUTPUT_LIMIT: usize = 4096;

/// Spawn one hook, feed it `stdin`, collect its output and wait for it
/// (killing it at its timeout). The error is one line.
fn run_one(hook: &Hook, stdin: &[u8]) -> Result<(), String> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some([arg0, rest @ ..]) = hook.args().as_deref() {
        cmd.arg0(arg0).args(rest);
    }
    if let Some(env) = hook.env() {
        cmd.env_clear();
        for e in env {
            match e.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    cmd.env(k, v);
                }
                _ => return Err(format!("env entry {e:?} is not KEY=VALUE")),
            }
        }
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Only stdio (no fd of ours or of our caller), and it dies with us.
    crate::sys::hook_child_setup(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("exec {}: {}", path.display(), fdbox_mount::describe(Errno::from_io_error(&e).unwrap_or(Errno::IO))))?;
    // Our own unreaped child: its pid cannot be reused before this open.
    let pidfd = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or(Errno::SRCH)
        .and_then(|pid| rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()));
    let pidfd = match pidfd {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("pidfd_open: {}", fdbox_mount::describe(e)));
        }
    };
    // Validated at create (1..=MAX_TIMEOUT_SECS); clamped and checked here
    // too, so no value can overflow: a deadline past what Instant holds is
    // no deadline.
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.clamp(1, MAX_TIMEOUT_SECS) as u64));
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));

    let mut input = child.stdin.take();
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    for fd in [input.as_ref().map(|f| f.as_fd()), out.as_ref().map(|f| f.as_fd()), err.as_ref().map(|f| f.as_fd())].into_iter().flatten() {
        let _ = rustix::io::ioctl_fionbio(fd, true);
    }
    let (mut written, mut out_buf, mut err_buf) = (0usize, Vec::new(), Vec::new());
    let mut exited = false;
    let mut timed_out = false;
    while !exited {
        if written >= stdin.len() {
            // All of the state is written: end-of-file for the hook.
            input = None;
        }
        let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
        let mut slots = [usize::MAX; 3];
        if let Some(f) = &input {
            slots[0] = fds.len();
            fds.push(PollFd::new(f, PollFlags::OUT));
        }
        if let Some(f) = &out {
            slots[1] = fds.len();
            fds.push(PollFd::new(f, PollFlags::IN));
        }
        if let Some(f) = &err {
            slots[2] = fds.len();
            fds.push(PollFd::new(f, PollFlags::IN));
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            timed_out = true;
            break;
        }
        let ts = left.map(|l| Timespec { tv_sec: i64::try_from(l.as_secs()).unwrap_or(i64::MAX), tv_nsec: l.subsec_nanos() as i64 });
        match poll(&mut fds, ts.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(format!("poll: {}", fdbox_mount::describe(e))),
        }
        let ready = |slot: usize| slot != usize::MAX && !fds[slot].revents().is_empty();
        let (r_in, r_out, r_err) = (ready(slots[0]), ready(slots[1]), ready(slots[2]));
        exited = fds[0].revents().contains(PollFlags::IN);
        drop(fds);
        if r_in {
            if let Some(f) = input.as_mut() {
                match f.write(&stdin[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    // The hook does not read its stdin (EPIPE): fine.
                    Err(_) => written = stdin.len(),
                }
            }
        }
        if r_out && !drain(&mut out, &mut out_buf) {
            out = None;
        }
        if r_err && !drain(&mut err, &mut err_buf) {
            err = None;
        }
    }
    if timed_out {
        let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
        let _ = child.wait();
        return Err(format!("hook ran past specified timeout of {}s and was killed", timeout.map_or(0, |t| t.as_secs())));
    }
    // What the hook wrote just before it exited (a descendant that kept the
    // pipes open is not waited for).
    drain(&mut out, &mut out_buf);
    drain(&mut err, &mut err_buf);
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    // As runc (Go's exec error, then both outputs), folded into one line.
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {}", signal_name(s)),
        _ => "failed".to_string(),
    };
    Err(format!("{how}, stdout: {}, stderr: {}", one_line(&out_buf), one_line(&err_buf)))
}

/// How Go names the signals that commonly end a hook (runc's messages).
fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "hangup".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGQUIT => "quit".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGKILL => "killed".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGPIPE => "broken pipe".into(),
        libc::SIGTERM => "terminated".into(),
        n => format!("signal {n}"),
    }
}

/// Read what is available; false at end-of-file or on an error.
fn drain<R: Read>(pipe: &mut Option<R>, buf: &mut Vec<u8>) -> bool {
    let Some(p) = pipe.as_mut() else { return false };
    let mut chunk = [0u8; 4096];
    loop {
        match p.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// A hook's output folded into one line for an error message; control
/// characters (a `\r`, terminal escapes from a hook that runs in the
/// container) become spaces.
fn one_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>())
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    fn state() -> HookState {
        HookState {
            oci_version: "1.2.0".into(),
            id: "c1".into(),
            status: "creating".into(),
            pid: 42,
            bundle: "/b".into(),
            annotations: HashMap::from([("k".to_string(), "v".to_string())]),
        }
    }

    #[test]
    fn state_json_has_the_runtime_spec_fields() {
        let v: serde_json::Value = serde_json::from_slice(&state().to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": 42, "bundle": "/b", "annotations": {"k": "v"}}));
    }

    #[test]
    fn stdin_args_env_reach_the_hook() {
        // Removed when dropped, also when an assertion fails.
        let tmp = tempfile::Builder::new().prefix("fdbox-hook-unit-").tempdir().unwrap();
        let out = tmp.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["my-hook", "-c", "echo \"$(tr '\\0' ' ' < /proc/$$/cmdline)$FOO ${HOME:-nohome}\" > \"$0\"; cat >> \"$0\"", out.to_str().unwrap()],
            "env": ["FOO=bar"],
        }));
        run_one(&h, &state().to_json()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        // argv[0] is args[0], not the path; the environment is only `env`.
        assert!(first.starts_with("my-hook -c "), "{first}");
        assert!(first.ends_with(&format!(" {} bar nohome", out.display())), "{first}");
        assert_eq!(serde_json::from_str::<HookState>(rest).unwrap(), state());
    }

    #[test]
    fn failure_carries_status_and_stderr() {
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo one >&2; echo two >&2; exit 3"]}));
        assert_eq!(run_one(&h, b"{}").unwrap_err(), "exit status 3, stdout: , stderr: one; two");
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; kill -9 $$"]}));
        assert_eq!(run_one(&h, b"{}").unwrap_err(), "signal: killed, stdout: out, stderr: err");
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "printf 'a\\r\\033[2Jb\\n' >&2; exit 1"]}));
        assert_eq!(run_one(&h, b"{}").unwrap_err(), "exit status 1, stdout: , stderr: a  [2Jb");
        let h = hook(serde_json::json!({"path": "/nonexistent/hook"}));
        assert!(run_one(&h, b"{}").unwrap_err().starts_with("exec /nonexistent/hook: "));
        assert_eq!(failure(Kind::StartContainer, 0, "x"), "error running startContainer hook #0: x");
        assert!(is_failure_of(&failure(Kind::StartContainer, 2, "x"), Kind::StartContainer));
        assert!(!is_failure_of(&failure(Kind::Poststart, 0, "x"), Kind::StartContainer));
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
        let t = Instant::now();
        assert_eq!(run_one(&h, b"{}").unwrap_err(), "hook ran past specified timeout of 1s and was killed");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_hook_that_ignores_stdin_and_a_large_state_are_fine() {
        let h = hook(serde_json::json!({"path": "/bin/true"}));
        let big = vec![b'x'; 1 << 20];
        run_one(&h, &big).unwrap();
    }

    #[test]
    fn validation() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "r"},
            "hooks": {"poststop": [{"path": "relative"}]}
        }))
        .unwrap();
        assert!(validate(&spec).unwrap_err().to_string().contains("absolute"));
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "r"},
            "hooks": {"createRuntime": [{"path": "/bin/true", "timeout": 0}]}
        }))
        .unwrap();
        assert!(validate(&spec).unwrap_err().to_string().contains("greater than zero"));
        for t in [i64::MIN, -1, MAX_TIMEOUT_SECS + 1, i64::MAX] {
            let spec: Spec = serde_json::from_value(serde_json::json!({
                "ociVersion": "1.2.0", "root": {"path": "r"},
                "hooks": {"prestart": [{"path": "/bin/true", "timeout": t}]}
            }))
            .unwrap();
            assert!(validate(&spec).is_err(), "timeout {t}");
        }
    }

    #[test]
    fn the_largest_timeout_does_not_overflow() {
        let h = hook(serde_json::json!({"path": "/bin/true", "timeout": MAX_TIMEOUT_SECS}));
        run_one(&h, b"{}").unwrap();
        // Not validated (a config recorded by an older fdbox): clamped, no panic.
        let h = hook(serde_json::json!({"path": "/bin/true", "timeout": i64::MAX}));
        run_one(&h, b"{}").unwrap();
    }
}

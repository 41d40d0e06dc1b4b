//! Running one command and measuring it: wall time from just before the
//! spawn to just after the reap, exit status, and `ru_maxrss` from `wait4`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::sys::{self, Reaped};

/// A measured, finished command.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub wall: Duration,
    /// When the reap returned (the end of `wall`).
    pub end: Instant,
    pub reaped: Reaped,
}

/// A started command, not yet reaped.
pub struct Spawned {
    pid: Pid,
    pidfd: OwnedFd,
    start: Instant,
    label: String,
}

/// A one-line description of a command for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Start `cmd`; the clock starts just before the fork.
pub fn spawn(cmd: &mut Command) -> Result<Spawned> {
    let label = describe(cmd);
    let start = Instant::now();
    let child = cmd.spawn().io("spawn", cmd.get_program())?;
    // Dropping a std Child neither kills nor waits for it: the process stays
    // our unreaped child, so its pid cannot be reused until `wait4` below.
    let raw = i32::try_from(child.id()).map_err(|_| Error::Setup(format!("pid {} out of range", child.id())))?;
    let pid = Pid::from_raw(raw).ok_or_else(|| Error::Setup(format!("bad pid {raw}")))?;
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).sys("pidfd_open", || format!("pid {raw} ({label})"))?;
    Ok(Spawned { pid, pidfd, start, label })
}

/// Wait until the process behind `pidfd` has exited (its pidfd polls
/// readable), for at most `timeout`. Works for any process, child or not.
pub fn wait_exit(pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: i64::from(left.subsec_nanos()) };
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e).sys("poll", || "pidfd".into()),
        }
    }
}

impl Spawned {
    /// Wait for the command (at most `timeout`, then SIGKILL) and reap it.
    pub fn finish(self, timeout: Duration) -> Result<Outcome> {
        if !wait_exit(self.pidfd.as_fd(), timeout)? {
            // Our own child: killing it is ours to do.
            let _ = pidfd_send_signal(&self.pidfd, Signal::KILL);
            let _ = sys::wait4(self.pid);
            return Err(Error::Timeout { cmd: self.label, secs: timeout.as_secs() });
        }
        let reaped = sys::wait4(self.pid).sys("wait4", || format!("pid {} ({})", self.pid, self.label))?;
        let end = Instant::now();
        Ok(Outcome { wall: end - self.start, end, reaped })
    }
}

/// Spawn, wait (with `timeout`) and reap.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Outcome> {
    spawn(cmd)?.finish(timeout)
}

/// Reap every exited child we did not wait for by pid (as a child
/// subreaper we inherit the orphans of the runtimes, such as a container
/// init whose `create` has exited). Returns how many were reaped.
pub fn reap_strays() -> usize {
    let mut n = 0;
    loop {
        match rustix::process::waitid(WaitId::All, WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {
            Ok(Some(_)) => n += 1,
            Ok(None) | Err(_) => return n,
        }
    }
}

/// Read a pid file written by a runtime (`--pid-file`).
pub fn read_pid_file(path: &std::path::Path) -> Result<Pid> {
    let text = std::fs::read_to_string(path).io("read", path)?;
    let raw: i32 = text
        .trim()
        .parse()
        .map_err(|_| Error::Setup(format!("{}: not a pid: {text:?}", path.display())))?;
    Pid::from_raw(raw).ok_or_else(|| Error::Setup(format!("{}: bad pid {raw}", path.display())))
}

/// Read the tail of a stderr log for an error message.
pub fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let s = lines[start..].join(" | ");
    if s.is_empty() {
        "(no stderr)".into()
    } else {
        s
    }
}

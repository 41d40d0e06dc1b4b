//! Processes as pidfds: reopening a recorded pid safely, signalling,
//! waiting.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

/// A process held by a pidfd.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: i32,
}

impl PidFd {
    pub fn new(fd: OwnedFd, pid: i32) -> Self {
        PidFd { fd, pid }
    }

    /// Reopen the process recorded as (`pid`, `start_time`): `pidfd_open`,
    /// then check the start time. Once the pidfd is open it names one
    /// process for good, so the check cannot race with pid reuse: if the
    /// recorded process had died and the pid were reused, the start time
    /// would differ. `None` when the recorded process no longer exists.
    pub fn reopen(pid: i32, start_time: u64) -> Option<PidFd> {
        let fd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
        (proc_start_time(pid) == Some(start_time)).then(|| PidFd { fd, pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `pidfd_send_signal(2)`.
    pub fn signal(&self, sig: i32) -> Result<(), Errno> {
        let sig = Signal::from_named_raw(sig).ok_or(Errno::INVAL)?;
        pidfd_send_signal(&self.fd, sig)
    }

    /// Whether the process has exited (the pidfd polls readable then).
    pub fn exited(&self) -> bool {
        self.wait_exit(Some(Duration::ZERO))
    }

    /// Poll the pidfd until the process exits or `timeout` passes; returns
    /// whether it exited.
    pub fn wait_exit(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let ts = left.map(|l| Timespec { tv_sec: l.as_secs() as i64, tv_nsec: l.subsec_nanos() as i64 });
            match poll(&mut fds, ts.as_ref()) {
                Ok(n) if n > 0 => return true,
                Ok(_) => return false,
                Err(Errno::INTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Reap our own child: `waitid(P_PIDFD, WEXITED)`. Returns the shell
    /// convention exit code (128+N for a signal).
    pub fn reap(&self) -> Result<i32, Errno> {
        use rustix::process::{waitid, WaitId, WaitIdOptions};
        loop {
            match waitid(WaitId::PidFd(self.fd.as_fd()), WaitIdOptions::EXITED) {
                Ok(Some(st)) => {
                    return Ok(match (st.exit_status(), st.terminating_signal()) {
                        (Some(code), _) => code,
                        (None, Some(sig)) => 128 + sig,
                        _ => 255,
                    })
                }
                Ok(None) => continue,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; the
    // fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self() {
        let me = std::process::id() as i32;
        let t = proc_start_time(me).unwrap();
        let p = PidFd::reopen(me, t).unwrap();
        assert!(!p.exited());
        assert!(PidFd::reopen(me, t + 1).is_none());
    }
}

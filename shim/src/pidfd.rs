//! A process held as a pidfd: signal it, see it exit, reap it, ask the
//! kernel about it. The shim never names a process by its pid.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{pidfd_send_signal, waitid, Signal, WaitId, WaitIdOptions};

use crate::sys;

/// How a process ended, in the shell's convention containerd uses: the exit
/// code, or 128 + the signal that killed it.
pub type ExitCode = u32;

/// A process held by a pidfd, with the pid it had when we got it (for
/// reporting only: nothing is ever looked up by that number).
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: i32,
}

impl Pidfd {
    /// Take ownership of a pidfd (received over SCM_RIGHTS or from
    /// `pidfd_open`). Fails with `EBADF` when `fd` is not a pidfd.
    pub fn new(fd: OwnedFd) -> Result<Pidfd, Errno> {
        let pid = fdinfo_pid(fd.as_fd()).ok_or(Errno::BADF)?;
        Ok(Pidfd { fd, pid })
    }

    /// The pid the process had when the pidfd was taken (in our pid
    /// namespace; 0 if it is not visible there).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `pidfd_send_signal(2)`. ESRCH once the process has exited.
    pub fn signal(&self, sig: u32) -> Result<(), Errno> {
        let sig = i32::try_from(sig).ok().and_then(Signal::from_named_raw).ok_or(Errno::INVAL)?;
        pidfd_send_signal(&self.fd, sig)
    }

    /// Whether the process has exited (a pidfd polls readable then).
    pub fn exited(&self) -> bool {
        self.wait_exit(Some(Duration::ZERO))
    }

    /// Poll the pidfd until the process exits or `timeout` passes.
    pub fn wait_exit(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let ts = left.map(|l| Timespec { tv_sec: l.as_secs() as i64, tv_nsec: l.subsec_nanos() as i64 });
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, ts.as_ref()) {
                Ok(n) if n > 0 => return true,
                Ok(_) => return false,
                Err(Errno::INTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`: reap the process if it is
    /// our exited child. `Ok(None)` while it runs; `ECHILD` when it is not
    /// (or not yet) our child.
    pub fn try_reap(&self) -> Result<Option<ExitCode>, Errno> {
        loop {
            match waitid(WaitId::PidFd(self.fd.as_fd()), WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {
                Ok(Some(st)) => {
                    let code = match (st.exit_status(), st.terminating_signal()) {
                        (Some(code), _) => code as u32,
                        (None, Some(sig)) => 128 + sig as u32,
                        _ => 255,
                    };
                    return Ok(Some(code));
                }
                Ok(None) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// `PIDFD_GET_INFO` (Linux 6.13+).
    pub fn info(&self, mask: u64) -> Result<sys::PidfdInfo, Errno> {
        sys::pidfd_get_info(self.fd.as_fd(), mask)
    }

    /// The exit status read with `PIDFD_GET_INFO(PIDFD_INFO_EXIT)`, which any
    /// holder of the pidfd may read once the process has been reaped (Linux
    /// 6.15+). `Ok(None)`: not available (still running, not reaped yet).
    /// Errors: ENOTTY/EINVAL on kernels without the ioctl.
    pub fn exit_info(&self) -> Result<Option<ExitCode>, Errno> {
        match self.info(sys::PIDFD_INFO_EXIT) {
            Ok(info) if info.mask & sys::PIDFD_INFO_EXIT != 0 => Ok(Some(wait_status_code(info.exit_code))),
            Ok(_) => Ok(None),
            // Reaped, and this kernel keeps no exit status for it.
            Err(Errno::SRCH) => Err(Errno::NOTSUP),
            Err(e) => Err(e),
        }
    }
}

/// A `waitpid`-style status as the shell convention (code or 128+signal).
pub fn wait_status_code(status: i32) -> ExitCode {
    let sig = status & 0x7f;
    if sig == 0 {
        ((status >> 8) & 0xff) as u32
    } else {
        128 + sig as u32
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The `Pid:` line of `/proc/self/fdinfo/<fd>`, present only for pidfds:
/// the process's pid in our namespace (0: not visible, -1: already reaped).
pub fn fdinfo_pid(fd: BorrowedFd<'_>) -> Option<i32> {
    let n = fd.as_raw_fd();
    if std::fs::read_link(format!("/proc/self/fd/{n}")).ok()?.to_string_lossy() != "anon_inode:[pidfd]" {
        return None;
    }
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}")).ok()?;
    info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|p| p.trim().parse().ok())
}

/// `pidfd_open(2)` of a child we have not reaped (so its pid cannot have
/// been reused): how the monitor takes hold of the helper processes it
/// starts with `std::process::Command`.
pub fn open_child(child: &std::process::Child) -> Result<Pidfd, Errno> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).ok_or(Errno::INVAL)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    Ok(Pidfd { fd, pid: child.id() as i32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses() {
        assert_eq!(wait_status_code(0), 0);
        assert_eq!(wait_status_code(3 << 8), 3);
        assert_eq!(wait_status_code(9), 137);
        assert_eq!(wait_status_code(15 | 0x80), 143); // core dumped flag
    }

    #[test]
    fn reap_and_exit_info_of_a_child() {
        // Reaped below through its pidfd, not with Child::wait.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let p = open_child(&child).unwrap();
        assert_eq!(p.pid(), child.id() as i32);
        assert!(p.wait_exit(Some(Duration::from_secs(10))));
        assert_eq!(p.try_reap().unwrap(), Some(7));
        match p.exit_info() {
            Ok(code) => assert_eq!(code, Some(7)),
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "skipped: PIDFD_INFO_EXIT unavailable on this kernel ({e})");
            }
        }
        assert!(Pidfd::new(rustix::fs::open("/", rustix::fs::OFlags::PATH, rustix::fs::Mode::empty()).unwrap()).is_err());
    }
}

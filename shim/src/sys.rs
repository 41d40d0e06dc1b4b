//! The raw calls rustix does not wrap, each in a small function with a
//! `// SAFETY:` comment; `unsafe` appears nowhere else in this crate.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL))
}

/// One malloc arena for the whole process (`mallopt(M_ARENA_MAX, 1)`).
/// glibc gives each new thread that allocates an arena of its own; the
/// shim's dozen mostly idle threads (ttrpc workers, monitor, publisher)
/// allocate little, and every arena keeps pages resident: measured with
/// shim/bench/rss.sh, this takes the PSS per container from 1.18 to about
/// 1.12 MB. Called first thing in `main`, before any thread exists.
///
/// See <https://man7.org/linux/man-pages/man3/mallopt.3.html>.
pub fn single_malloc_arena() {
    // SAFETY: mallopt only sets a tunable of the allocator; no thread
    // exists yet that could be allocating concurrently.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Block `SIGCHLD` in the calling thread (`pthread_sigmask`). Called first
/// thing in `main`, before any thread exists, so every thread inherits the
/// mask and the signal is only ever seen through the monitor's signalfd.
/// Children started with `std::process::Command` get an empty mask again.
///
/// See <https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html>.
pub fn block_sigchld() -> Result<(), Errno> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset;
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        match libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) {
            0 => Ok(()),
            e => Err(Errno::from_raw_os_error(e)),
        }
    }
}

/// `signalfd(-1, {SIGCHLD}, SFD_CLOEXEC | SFD_NONBLOCK)`: an fd that polls
/// readable while a `SIGCHLD` is pending (the signal must be blocked).
///
/// See <https://man7.org/linux/man-pages/man2/signalfd.2.html>.
pub fn sigchld_fd() -> Result<OwnedFd, Errno> {
    // SAFETY: the sigset is initialised by sigemptyset/sigaddset; signalfd
    // returns a new fd that we own, or -1.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(last_errno());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Drain the pending signals of a signalfd (their content does not matter:
/// the monitor rescans its children on any of them).
pub fn drain_signalfd(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 8];
    while let Ok(n) = rustix::io::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// `waitid(P_ALL, 0, WEXITED | WNOHANG | WNOWAIT)`: the pid of a child of
/// ours that has exited, left unreaped (so its owner, if any, can still
/// reap it through its pidfd). `None` when no child has exited.
///
/// rustix's `waitid` does not expose `si_pid`, hence this wrapper.
/// See <https://man7.org/linux/man-pages/man2/waitid.2.html>.
pub fn peek_exited_child() -> Result<Option<i32>, Errno> {
    // SAFETY: siginfo_t is plain data; waitid fills it. With WNOHANG and no
    // exited child, the kernel leaves si_pid 0 (it zeroes the struct).
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let ret = libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        if ret < 0 {
            return Err(last_errno());
        }
        let pid = info.si_pid();
        Ok((pid > 0).then_some(pid))
    }
}

/// `PIDFD_INFO_PID`: always returned.
pub const PIDFD_INFO_PID: u64 = 1 << 0;
/// `PIDFD_INFO_CREDS`: always returned.
pub const PIDFD_INFO_CREDS: u64 = 1 << 1;
/// `PIDFD_INFO_EXIT` (Linux 6.15): the exit status, once the process has
/// been reaped by its parent.
pub const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `struct pidfd_info` of `<linux/pidfd.h>` (PIDFD_INFO_SIZE_VER0, 64 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PidfdInfo {
    pub mask: u64,
    pub cgroupid: u64,
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub ruid: u32,
    pub rgid: u32,
    pub euid: u32,
    pub egid: u32,
    pub suid: u32,
    pub sgid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    /// A wait status (as from `waitpid`) when `mask` has [`PIDFD_INFO_EXIT`].
    pub exit_code: i32,
}

/// `PIDFD_GET_INFO = _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong = (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// `ioctl(pidfd, PIDFD_GET_INFO, {mask})` (Linux 6.13; the exit status with
/// [`PIDFD_INFO_EXIT`] since 6.15). ENOTTY/EINVAL on older kernels, ESRCH
/// for a reaped process when the exit status was not requested or is not
/// kept by this kernel.
///
/// See <https://man7.org/linux/man-pages/man2/pidfd_open.2.html> and
/// `include/uapi/linux/pidfd.h`.
pub fn pidfd_get_info(pidfd: BorrowedFd<'_>, mask: u64) -> Result<PidfdInfo, Errno> {
    let mut info = PidfdInfo { mask, ..Default::default() };
    // SAFETY: `info` is a valid, writable struct pidfd_info of the size
    // encoded in the request number; the kernel copies at most that size.
    let ret = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info as *mut PidfdInfo) };
    if ret < 0 {
        return Err(last_errno());
    }
    Ok(info)
}

/// Give the child that `cmd` spawns `fds[i]` as fd `3 + i` (containerd's
/// logging binaries get the process's stdout, stderr and a readiness pipe as
/// fds 3, 4 and 5). The fds are first duplicated above the target range
/// (close-on-exec), so a dup2 never overwrites a source still to be copied;
/// the child's dup2 copies are not close-on-exec. Returns the duplicates,
/// which must stay open until `cmd` has spawned.
pub fn pass_fds(cmd: &mut std::process::Command, fds: &[BorrowedFd<'_>]) -> Result<Vec<OwnedFd>, Errno> {
    use std::os::unix::process::CommandExt;
    let high = fds
        .iter()
        .map(|fd| rustix::io::fcntl_dupfd_cloexec(fd, 3 + fds.len() as i32 + 16))
        .collect::<Result<Vec<_>, _>>()?;
    let raw: Vec<i32> = high.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure runs in the forked child before execve and only
    // calls dup2, which is async-signal-safe; it touches no lock and
    // allocates nothing (`raw` was allocated before the fork).
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_matches_the_uapi_header() {
        // _IOWR(0xFF, 11, struct pidfd_info) with the 64-byte VER0 struct.
        assert_eq!(std::mem::size_of::<PidfdInfo>(), 64);
        assert_eq!(PIDFD_GET_INFO, 0xC040_FF0B);
    }

    #[test]
    fn fds_land_at_3_and_up() {
        use std::os::fd::AsFd;
        let (r1, w1) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (r2, w2) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "echo one >&3; echo two >&4"]);
        let keep = pass_fds(&mut cmd, &[w1.as_fd(), w2.as_fd()]).unwrap();
        let status = cmd.status().unwrap();
        drop((keep, w1, w2));
        assert!(status.success());
        let read = |r: &OwnedFd| {
            let mut buf = [0u8; 16];
            let n = rustix::io::read(r, &mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        assert_eq!(read(&r1), "one\n");
        assert_eq!(read(&r2), "two\n");
    }
}

//! The calls rustix does not wrap (or wraps as unsafe). Each is one small
//! function with a `// SAFETY:` comment; `unsafe` appears nowhere else in
//! this crate.

use rustix::io::Errno;
use rustix::process::Pid;

/// How a waited-for process ended, and its `ru_maxrss`.
#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    /// Exit code, or `128 + signal` for a process killed by a signal.
    pub code: i32,
    /// `true` if `code` came from a signal.
    pub signaled: bool,
    /// `ru_maxrss` from `wait4` (KiB): the peak RSS of the process itself
    /// and of every descendant it waited for (the kernel folds a reaped
    /// child's peak into its parent's `RUSAGE_CHILDREN`). A maximum, not a
    /// sum: two processes alive at the same time are not added up.
    pub maxrss_kib: u64,
}

/// `wait4(pid, &status, 0, &rusage)`: reap one child and read its rusage.
///
/// See <https://man7.org/linux/man-pages/man2/wait4.2.html>.
pub fn wait4(pid: Pid) -> Result<Reaped, Errno> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid, writable and live for the call;
        // the kernel writes only within them.
        let r = unsafe { libc::wait4(pid.as_raw_nonzero().get(), &mut status, 0, &mut ru) };
        if r >= 0 {
            break;
        }
        let errno = Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::INVAL);
        if errno != Errno::INTR {
            return Err(errno);
        }
    }
    let signaled = libc::WIFSIGNALED(status);
    let code = if signaled { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
    Ok(Reaped { code, signaled, maxrss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0) })
}

/// `unshare(CLONE_NEWNS)`: give this process its own mount namespace.
///
/// See <https://man7.org/linux/man-pages/man2/unshare.2.html>.
pub fn unshare_mount_ns() -> Result<(), Errno> {
    // SAFETY: only the mount namespace is unshared (no CLONE_FILES/CLONE_FS
    // subtleties for other threads): the benchmark is single-threaded, and
    // nothing in it holds paths that a new mount namespace would invalidate.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
}

//! The raw calls rustix lacks; `unsafe` lives only here.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL))
}

/// A child parked in a new user namespace until [`Parked::finish`].
pub struct Parked {
    pub pid: i32,
    pidfd: OwnedFd,
    release: OwnedFd,
}

impl Parked {
    /// Let the child exit and reap it.
    pub fn finish(self) {
        drop(self.release);
        let _ = rustix::process::waitid(rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&self.pidfd)), rustix::process::WaitIdOptions::EXITED);
    }
}

/// `clone3(CLONE_NEWUSER | CLONE_PIDFD)` of a child that only waits for
/// the read end of a pipe to report end-of-file, then `_exit`s. The child
/// runs no Rust code beyond two raw syscalls, so this is sound even if the
/// caller had threads.
pub fn spawn_userns_child() -> Result<Parked, Errno> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut pidfd: libc::c_int = -1;
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let mut args = CloneArgs {
        flags: (libc::CLONE_NEWUSER | libc::CLONE_PIDFD) as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    let rfd = r.as_raw_fd();
    let wfd = w.as_raw_fd();
    // SAFETY: `args` is a valid clone_args of the size passed and `pidfd`
    // outlives the call. No stack is given, so the child continues on a copy
    // of this stack like fork(2); it only calls close, read and _exit, which
    // are async-signal-safe and touch no Rust state.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if ret == 0 {
        // SAFETY: raw syscalls on fds this child owns; _exit never returns.
        unsafe {
            libc::close(wfd);
            let mut b = 0u8;
            libc::read(rfd, &mut b as *mut u8 as *mut libc::c_void, 1);
            libc::_exit(0);
        }
    }
    if ret < 0 {
        return Err(last_errno());
    }
    drop(r);
    // SAFETY: with CLONE_PIDFD the kernel stored a new owned fd in `pidfd`.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Parked { pid: ret as i32, pidfd, release: w })
}

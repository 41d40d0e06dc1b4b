//! The raw syscalls rustix does not wrap. Each is a small function with a
//! `// SAFETY:` comment; `unsafe` appears nowhere else in this crate.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::process::Pid;

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL))
}

/// `CLONE_INTO_CGROUP` (libc's constant is too narrow for clone3's flags).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `<linux/sched.h>` (CLONE_ARGS_SIZE_VER2).
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
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a [`clone3`] we are on.
pub enum Cloned {
    Parent { pid: Pid, pidfd: OwnedFd },
    Child,
}

/// `clone3({flags | CLONE_PIDFD, exit_signal = SIGCHLD, cgroup})`: a fork
/// that returns a pidfd of the child and can create namespaces and place the
/// child into a cgroup (`CLONE_INTO_CGROUP`) in the same call.
///
/// See <https://man7.org/linux/man-pages/man2/clone3.2.html>.
///
/// # Safety
/// The calling process must have exactly one thread: the child is a copy of
/// this thread only, so a lock held by another thread (the allocator's, for
/// instance) would stay locked in the child forever.
pub unsafe fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Cloned, Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed, `pidfd`
    // outlives the call, and no stack is given, so the child continues on a
    // copy of this stack exactly like fork(2). The caller guarantees the
    // process is single-threaded (see above).
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        r if r < 0 => Err(last_errno()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent {
            pid: Pid::from_raw(pid as i32).ok_or(Errno::INVAL)?,
            // SAFETY: with CLONE_PIDFD the kernel stored a new, owned,
            // close-on-exec pidfd in `pidfd` before returning to the parent.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// `_exit(code)`: leave the child of a clone without running the parent's
/// atexit handlers or flushing stdio buffers it inherited.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and never returns.
    unsafe { libc::_exit(code) }
}

/// `close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`: mark every fd from
/// `first` up close-on-exec, so `execve` leaves only the wanted ones open.
///
/// See <https://man7.org/linux/man-pages/man2/close_range.2.html>.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes flags on this process's fd table.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// Whether `fd` is an open entry of this process's fd table.
pub fn fd_is_open(fd: u32) -> bool {
    let Ok(fd) = libc::c_int::try_from(fd) else { return false };
    // SAFETY: F_GETFD only reads the flags of an fd table entry; an fd
    // that is not open is EBADF, nothing else.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Prepare the child that `cmd` spawns to run a hook:
/// * every fd from 3 up is marked close-on-exec right before its `execve`,
///   so the hook starts with only its stdio, whatever this process holds
///   without close-on-exec (fds its caller left open, say); std's own
///   exec-error pipe is close-on-exec already;
/// * it dies with this process (`PR_SET_PDEATHSIG`): a `kill -9` of create
///   (or of the init, or of delete) must not leave it running, orphaned,
///   with nobody to wait for it or enforce its timeout. Checking the parent
///   afterwards closes the race with a parent that died before the prctl.
pub fn hook_child_setup(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child between fork and execve,
    // where only async-signal-safe work is allowed: raw close_range, prctl
    // and getppid system calls and errno reads; it allocates nothing and
    // takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                return Err(Errno::SRCH.into());
            }
            cloexec_from(3).map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
        });
    }
}

/// Close every fd from `first` up except those in `keep` (`close_range`
/// over the gaps between them).
///
/// For a child of clone3 that inherited the whole fd table of its parent:
/// what the parent's stack frames own there is never used again, and the
/// caller must not use (or drop) any fd it closes here other than through
/// `keep`.
pub fn close_from_except(first: u32, keep: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    let close = |lo: u32, hi: u32| -> Result<(), Errno> {
        // SAFETY: close_range only closes entries of this process's fd
        // table; see the contract above for the owners of those fds.
        let ret = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
        if ret < 0 { Err(last_errno()) } else { Ok(()) }
    };
    let mut keep: Vec<u32> = keep.iter().filter_map(|fd| u32::try_from(fd.as_raw_fd()).ok()).filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for k in keep {
        if k > lo {
            close(lo, k - 1)?;
        }
        match k.checked_add(1) {
            Some(next) => lo = next,
            None => return Ok(()),
        }
    }
    close(lo, u32::MAX)
}

/// A blocked set of signals delivered through a signalfd.
pub struct SignalFd {
    fd: OwnedFd,
    old_mask: libc::sigset_t,
}

impl SignalFd {
    /// Block `signals` and return a `signalfd(2)` that reads them.
    /// See <https://man7.org/linux/man-pages/man2/signalfd.2.html>.
    pub fn new(signals: &[i32]) -> Result<Self, Errno> {
        // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise
        // it, sigprocmask and signalfd only read it and write `old`.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) < 0 {
                return Err(last_errno());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                let e = last_errno();
                libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                return Err(e);
            }
            Ok(SignalFd { fd: OwnedFd::from_raw_fd(fd), old_mask: old })
        }
    }

    /// The next pending signal, if any.
    pub fn read(&self) -> Option<i32> {
        let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match rustix::io::read(&self.fd, &mut buf) {
            Ok(n) if n == buf.len() => Some(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as i32),
            _ => None,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new`.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old_mask, std::ptr::null_mut()) };
    }
}

/// The signals that end runc's waiting init (Go's runtime exits on them
/// when nothing asked for them): HUP INT QUIT ILL TRAP ABRT BUS FPE SEGV
/// TERM STKFLT SYS. The others (USR1, PIPE, ALRM, CHLD, ...) it ignores.
pub const WAITING_INIT_DEADLY: [i32; 12] = [
    libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGILL, libc::SIGTRAP, libc::SIGABRT,
    libc::SIGBUS, libc::SIGFPE, libc::SIGSEGV, libc::SIGTERM, libc::SIGSTKFLT, libc::SIGSYS,
];

extern "C" fn exit_on_signal(sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(128 + sig) }
}

/// Make each of `signals` end this process (exit status 128 + the signal)
/// through a handler, and unblock them. For the init of a new pid
/// namespace, which the kernel spares every signal it has no handler for
/// (pid_namespaces(7)): without one, SIGTERM to a created container would
/// be dropped. `execve` resets the handlers to the default.
pub fn exit_on_signals(signals: &[i32]) -> Result<(), Errno> {
    // SAFETY: sigaction/sigset_t are plain data, initialised here; the
    // handler only calls _exit.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = exit_on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(sig, &act, std::ptr::null_mut()) < 0 {
                return Err(last_errno());
            }
            libc::sigaddset(&mut set, sig);
        }
        if libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) < 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// Unblock every signal and reset every handler to its default, so the
/// container process starts with a clean signal state (`sigprocmask`,
/// `sigaction`).
pub fn reset_signals() {
    // SAFETY: an empty sigset_t is valid; SIG_DFL is a valid disposition
    // for every catchable signal (the kernel refuses KILL/STOP, ignored).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// `prctl(PR_CAPBSET_DROP, cap)`.
pub fn capbset_drop(cap: u32) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)`.
pub fn ambient_raise(cap: u32) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong, cap as libc::c_ulong, 0, 0)
    };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `ioctl(fd, TIOCSCTTY, 0)`: make the terminal `fd` the controlling
/// terminal of this (session leader) process.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &std::ffi::CStr, argv: &[std::ffi::CString], envp: &[std::ffi::CString]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: both arrays are NULL-terminated and point to live C strings
    // for the duration of the call.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    last_errno()
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: join (creating) a new
/// session keyring. See <https://man7.org/linux/man-pages/man2/keyctl.2.html>.
pub fn join_session_keyring(name: &str) -> Result<(), Errno> {
    let name = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: the name is a valid NUL-terminated string for the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `unshare(CLONE_NEWCGROUP)`: a new cgroup namespace rooted at the
/// caller's current cgroup.
pub fn unshare_cgroupns() -> Result<(), Errno> {
    // SAFETY: CLONE_NEWCGROUP only changes the cgroup namespace; it does not
    // unshare the fd table or the filesystem context that Rust code relies on.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
}

/// `SECCOMP_SET_MODE_FILTER` of `<linux/seccomp.h>`.
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &{len, program})`: attach a
/// classic BPF filter to the calling thread (to every thread with
/// `SECCOMP_FILTER_FLAG_TSYNC`). The caller needs no_new_privs or
/// CAP_SYS_ADMIN. With `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel
/// returns a notification listener (close-on-exec), given back here.
///
/// See <https://man7.org/linux/man-pages/man2/seccomp.2.html>.
pub fn seccomp_set_mode_filter(flags: u32, program: &[libc::sock_filter]) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::INVAL)?;
    let prog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
    // SAFETY: `prog` describes `len` initialised instructions borrowed for
    // the duration of the call; the kernel copies them and never writes
    // through the pointer (the `*mut` is only the C struct's field type).
    let ret = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
    };
    if ret < 0 {
        return Err(last_errno());
    }
    if flags & SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER a successful call returns a new fd (opened
    // O_CLOEXEC by the kernel) that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }))
}

/// Whether the kernel accepts the filter `flags`, probed as runc does:
/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, NULL)` fails with EFAULT when
/// it gets as far as reading the program (the flags are valid) and with
/// EINVAL when it does not know them. Nothing is installed either way.
///
/// See <https://man7.org/linux/man-pages/man2/seccomp.2.html>.
pub fn seccomp_filter_flags_supported(flags: u32) -> bool {
    // SAFETY: a NULL program is never dereferenced by us; the kernel
    // validates the flags first and then fails to copy the program.
    let ret = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, std::ptr::null::<libc::sock_fprog>())
    };
    ret < 0 && last_errno() == Errno::FAULT
}

/// `personality(persona)`: the execution domain (`PER_LINUX`, `PER_LINUX32`)
/// and its flags, kept across execve.
///
/// See <https://man7.org/linux/man-pages/man2/personality.2.html>.
pub fn set_personality(persona: u32) -> Result<(), Errno> {
    // SAFETY: personality takes a plain integer and changes only this
    // process's execution domain.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `struct sched_attr` of `<linux/sched/types.h>` (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
    pub sched_util_min: u32,
    pub sched_util_max: u32,
}

/// `sched_setattr(0, attr, 0)`: the scheduling policy and its parameters of
/// the calling thread (inherited by children and kept across execve).
///
/// See <https://man7.org/linux/man-pages/man2/sched_setattr.2.html>.
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a valid sched_attr of the size it declares; the kernel
    // only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_PRIO_VALUE(class, level))`:
/// the I/O scheduling class and level of the calling thread.
///
/// See <https://man7.org/linux/man-pages/man2/ioprio_set.2.html>.
pub fn ioprio_set(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let value = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: ioprio_set takes integers only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value as libc::c_int) };
    if ret < 0 { Err(last_errno()) } else { Ok(()) }
}

/// `unshare(CLONE_NEWTIME)`: a new time namespace for the caller's future
/// children (the caller itself stays where it is); its offsets can be
/// written until the first process enters it.
///
/// See <https://man7.org/linux/man-pages/man7/time_namespaces.7.html>.
pub fn unshare_timens() -> Result<(), Errno> {
    // SAFETY: CLONE_NEWTIME only changes the time namespace of children; it
    // does not unshare the fd table or the filesystem context that Rust
    // code relies on.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWTIME) }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: run the program `fd`
/// refers to; returns only on failure.
///
/// See <https://man7.org/linux/man-pages/man2/execveat.2.html>.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[std::ffi::CString], envp: &[std::ffi::CString]) -> Errno {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: the path is an empty C string, both arrays are NULL-terminated
    // and point to live C strings for the duration of the call.
    unsafe { libc::syscall(libc::SYS_execveat, fd.as_raw_fd(), c"".as_ptr(), a.as_ptr(), e.as_ptr(), libc::AT_EMPTY_PATH) };
    last_errno()
}

/// `getresuid` and `getresgid`: the real, effective and saved uid and gid
/// of the calling thread, as the kernel holds them.
///
/// See <https://man7.org/linux/man-pages/man2/getresuid.2.html>.
pub fn getresuid_gid() -> Result<([u32; 3], [u32; 3]), Errno> {
    let (mut ru, mut eu, mut su) = (0 as libc::uid_t, 0 as libc::uid_t, 0 as libc::uid_t);
    let (mut rg, mut eg, mut sg) = (0 as libc::gid_t, 0 as libc::gid_t, 0 as libc::gid_t);
    // SAFETY: each pointer is to a live local the kernel writes one id to.
    if unsafe { libc::getresuid(&mut ru, &mut eu, &mut su) } < 0 {
        return Err(last_errno());
    }
    // SAFETY: as above.
    if unsafe { libc::getresgid(&mut rg, &mut eg, &mut sg) } < 0 {
        return Err(last_errno());
    }
    Ok(([ru, eu, su], [rg, eg, sg]))
}

/// Bring the loopback interface of this process's network namespace up:
/// `SIOCGIFFLAGS` then `SIOCSIFFLAGS` with `IFF_UP` on `lo`, through a
/// throwaway AF_INET datagram socket (closed on return).
///
/// See <https://man7.org/linux/man-pages/man7/netdevice.7.html>.
pub fn loopback_up() -> Result<(), Errno> {
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data (an array and a union of integers
    // and arrays); all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name of `req` and
    // writes its flags member; `req` lives across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req as *mut libc::ifreq) } < 0 {
        return Err(last_errno());
    }
    // SAFETY: SIOCGIFFLAGS filled in the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the name and flags of `req`, which lives
    // across the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req as *const libc::ifreq) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

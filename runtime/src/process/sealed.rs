//! CVE-2019-5736: a process that enters a container runs from a copy of
//! fdbox's binary that nobody can write.
//!
//! The init and an exec child are clones of `fdbox create`/`exec`, so their
//! `/proc/<pid>/exe` is fdbox's binary; and the container decides what they
//! execve: a script whose first line is `#!/proc/self/exe` makes the kernel
//! run that very binary again, now as a dumpable process of the container,
//! which can then open its `/proc/<pid>/exe` and write the host's fdbox once
//! it exits. Being non-dumpable while fdbox sets up does not help there.
//!
//! So before anything else, `create`, `run` and `exec` re-execute
//! themselves from a read-only mount of their own binary: `open_tree` of
//! `/proc/self/exe` makes a detached bind mount of the file alone,
//! `mount_setattr` makes it read-only, `execveat` runs it. The mount belongs
//! to no mount namespace once the fd is gone (it closes on that exec), so no
//! container can reach it to make it writable again or clone it
//! (`open_tree` refuses mounts outside the caller's namespace), and every
//! open for writing through `/proc/<pid>/exe` fails with EROFS. It costs
//! one execve, and no copy of the binary. Where a detached mount cannot be
//! made (no CAP_SYS_ADMIN over our mount namespace), a sealed memfd copy,
//! as runc makes it, is the fallback. A binary that already runs from a
//! read-only mount or a write-sealed file is left as it is.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags, SealFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Re-execute from a read-only or sealed copy of our binary unless we
/// already run from one. Returns only when nothing needs to be done, or
/// with the error that made it impossible (the caller must then stop:
/// fdbox never enters a container from a writable binary).
pub fn ensure() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let argv = std::env::args_os().map(|a| CString::new(a.as_bytes())).collect::<std::result::Result<Vec<_>, _>>();
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<std::result::Result<Vec<_>, _>>();
    let (Ok(argv), Ok(envp)) = (argv, envp) else {
        return Err(Error::Config("NUL byte in fdbox's own arguments or environment".into()));
    };
    let exe = match read_only_mount() {
        Ok(fd) => fd,
        Err(mount_err) => sealed_copy().map_err(|e| {
            Error::State(format!("cannot run from a read-only copy of fdbox's binary (CVE-2019-5736): {mount_err}; memfd copy: {e}"))
        })?,
    };
    let e = sys::execveat_fd(exe.as_fd(), &argv, &envp);
    Err(Error::sys("execveat", "read-only copy of fdbox's binary", e))
}

/// Whether `/proc/self/exe` cannot be written by anyone: it is on a
/// read-only mount (or superblock), or it is a memfd sealed against writes.
fn is_sealed() -> bool {
    let Ok(fd) = rustix::fs::open("/proc/self/exe", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    rustix::fs::fstatvfs(&fd).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
        || rustix::fs::fcntl_get_seals(&fd).is_ok_and(|s| s.contains(SealFlags::WRITE))
}

/// A detached, read-only bind mount of our binary (the file alone).
fn read_only_mount() -> Result<OwnedFd> {
    let m = fdbox_mount::MountFd::clone_tree(rustix::fs::CWD, "/proc/self/exe", false)?;
    m.set_attr(fdbox_mount::MountAttr::MOUNT_ATTR_RDONLY, fdbox_mount::MountAttr::empty(), None, false)?;
    Ok(m.into())
}

/// runc's way: a memfd with a copy of the binary, sealed against every change.
fn sealed_copy() -> Result<OwnedFd> {
    use rustix::fs::MemfdFlags;
    let src = rustix::fs::open("/proc/self/exe", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).sys("open", || "/proc/self/exe".into())?;
    let size = rustix::fs::fstat(&src).sys("fstat", || "/proc/self/exe".into())?.st_size;
    let memfd = rustix::fs::memfd_create("fdbox-sealed-exe", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .sys("memfd_create", || "fdbox-sealed-exe".into())?;
    let mut left = usize::try_from(size).map_err(|_| Error::State("fdbox's binary has a negative size".into()))?;
    while left > 0 {
        match rustix::fs::sendfile(&memfd, &src, None, left) {
            Ok(0) => break,
            Ok(n) => left -= n.min(left),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("sendfile", "fdbox's binary → memfd", e)),
        }
    }
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE)
        .sys("fcntl", || "F_ADD_SEALS on the copy of fdbox's binary".into())?;
    Ok(memfd)
}

//! User namespaces as file descriptors.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{openat, Mode, OFlags};
use rustix::io::Errno;

use crate::map::{format_map, IdMap};
use crate::{Error, Result};

/// An fd of a user namespace (`/proc/<pid>/ns/user`), the handle that
/// `MOUNT_ATTR_IDMAP` takes.
#[derive(Debug)]
pub struct UserNsFd(OwnedFd);

impl UserNsFd {
    /// The user namespace of the process whose `/proc/<pid>` dir is
    /// `proc_pid` (opened by the caller while it holds the process, e.g. as
    /// its unreaped parent, so the pid names the right process).
    pub fn of_process(proc_pid: BorrowedFd<'_>) -> Result<Self> {
        openat(proc_pid, "ns/user", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map(UserNsFd)
            .map_err(|e| Error::sys("openat", "ns/user", e))
    }
}

impl AsFd for UserNsFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Write `uid_map`, `setgroups` (`deny` when asked) and `gid_map` of a
/// child in a new user namespace, through its `/proc/<pid>` dirfd.
pub fn write_mappings(proc_pid: BorrowedFd<'_>, uid: &[IdMap], gid: &[IdMap], deny_setgroups: bool) -> Result<()> {
    let write = |name: &str, text: &str| -> Result<()> {
        let fd = openat(proc_pid, name, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| Error::sys("openat", name, e))?;
        match rustix::io::write(&fd, text.as_bytes()) {
            Ok(n) if n == text.len() => Ok(()),
            Ok(_) => Err(Error::sys("write", name, Errno::IO)),
            Err(e) => Err(Error::sys("write", format!("{name} = {:?}", text.trim_end()), e)),
        }
    };
    write("uid_map", &format_map(uid))?;
    if deny_setgroups {
        write("setgroups", "deny")?;
    }
    write("gid_map", &format_map(gid))
}

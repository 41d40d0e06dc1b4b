//! Owned handles for filesystem contexts and detached mounts.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
    open_tree, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::sys::{self, MountAttrRaw};
use crate::{Error, Result};

/// Per-mount flags, as `MOUNT_ATTR_*` bits.
pub type MountAttr = MountAttrFlags;

/// A propagation type for `mount_setattr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Private,
    Shared,
    Slave,
    Unbindable,
}

impl Propagation {
    fn raw(self) -> u64 {
        match self {
            Propagation::Private => libc::MS_PRIVATE,
            Propagation::Shared => libc::MS_SHARED,
            Propagation::Slave => libc::MS_SLAVE,
            Propagation::Unbindable => libc::MS_UNBINDABLE,
        }
    }
}

/// A filesystem context from `fsopen(2)`, configured with `fsconfig(2)`.
#[derive(Debug)]
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    /// `fsopen(fstype, FSOPEN_CLOEXEC)`.
    pub fn new(fstype: &str) -> Result<Self> {
        let fd = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|e| Error::sys("fsopen", fstype, e))?;
        Ok(FsContext {
            fd,
            fstype: fstype.to_string(),
        })
    }

    /// `fsconfig(FSCONFIG_SET_FLAG, key)`.
    pub fn set_flag(&self, key: &str) -> Result<()> {
        fsconfig_set_flag(&self.fd, key)
            .map_err(|e| Error::sys("fsconfig", format!("{} {key}", self.fstype), e))
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set_string(&self, key: &str, value: &str) -> Result<()> {
        fsconfig_set_string(&self.fd, key, value)
            .map_err(|e| Error::sys("fsconfig", format!("{} {key}={value}", self.fstype), e))
    }

    /// `fsconfig(FSCONFIG_SET_FD, key, fd)`: hand the filesystem a file
    /// descriptor (an overlay layer, for example).
    pub fn set_fd(&self, key: &str, fd: BorrowedFd<'_>) -> Result<()> {
        rustix::mount::fsconfig_set_fd(&self.fd, key, fd)
            .map_err(|e| Error::sys("fsconfig", format!("{} {key}=<fd>", self.fstype), e))
    }

    /// Apply one `key[=value]` data option.
    pub fn set_option(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.set_string(key, v),
            None => self.set_flag(key),
        }
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount(FSMOUNT_CLOEXEC, attrs)`:
    /// a detached mount of the configured filesystem.
    pub fn mount(self, attrs: MountAttr) -> Result<MountFd> {
        fsconfig_create(&self.fd).map_err(|e| Error::sys("fsconfig", format!("{} create", self.fstype), e))?;
        let fd = fsmount(&self.fd, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
            .map_err(|e| Error::sys("fsmount", self.fstype.as_str(), e))?;
        Ok(MountFd {
            fd,
            name: self.fstype,
        })
    }
}

/// A mount held as a file descriptor: detached (from `fsmount` or
/// `open_tree(OPEN_TREE_CLONE)`) until [`MountFd::attach`] puts it in place.
#[derive(Debug)]
pub struct MountFd {
    fd: OwnedFd,
    name: String,
}

impl MountFd {
    /// Wrap an fd received from another process (a detached mount sent
    /// over SCM_RIGHTS). `name` is used in error messages.
    pub fn from_owned(fd: OwnedFd, name: impl Into<String>) -> Self {
        MountFd {
            fd,
            name: name.into(),
        }
    }

    /// `open_tree(dirfd, path, OPEN_TREE_CLONE [| AT_RECURSIVE])`: a detached
    /// copy of the mount (tree) at `path`, the fd form of a bind mount.
    /// An empty `path` clones the object `dirfd` itself refers to.
    pub fn clone_tree(dirfd: BorrowedFd<'_>, path: &str, recursive: bool) -> Result<Self> {
        let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
        if recursive {
            flags |= OpenTreeFlags::AT_RECURSIVE;
        }
        if path.is_empty() {
            flags |= OpenTreeFlags::AT_EMPTY_PATH;
        }
        let fd = open_tree(dirfd, path, flags).map_err(|e| {
            Error::sys("open_tree", if path.is_empty() { "<fd>" } else { path }, e)
        })?;
        Ok(MountFd {
            fd,
            name: if path.is_empty() { "bind".into() } else { path.to_string() },
        })
    }

    /// The name used for this mount in error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `mount_setattr`: set and clear `MOUNT_ATTR_*` flags and change the
    /// propagation, on this mount alone or (`recursive`) on its whole tree.
    pub fn set_attr(
        &self,
        set: MountAttr,
        clear: MountAttr,
        propagation: Option<Propagation>,
        recursive: bool,
    ) -> Result<()> {
        set_attr_fd(self.fd.as_fd(), &self.name, set, clear, propagation, recursive)
    }

    /// `mount_setattr(MOUNT_ATTR_IDMAP)`: idmap this detached mount with the
    /// mappings of the user namespace `userns`.
    pub fn idmap(&self, userns: BorrowedFd<'_>, recursive: bool) -> Result<()> {
        let attr = MountAttrRaw {
            attr_set: MountAttrFlags::MOUNT_ATTR_IDMAP.bits() as u64,
            userns_fd: rustix::fd::AsRawFd::as_raw_fd(&userns) as u64,
            ..Default::default()
        };
        sys::mount_setattr(self.fd.as_fd(), recursive, &attr)
            .map_err(|e| Error::sys("mount_setattr", format!("{} idmap", self.name), e))
    }

    /// `move_mount(fd, "", target, "", F_EMPTY_PATH | T_EMPTY_PATH)`: attach
    /// this mount on top of the object `target` (an `O_PATH` fd) refers to.
    /// `dest` only names the target in errors.
    pub fn attach(&self, target: BorrowedFd<'_>, dest: &str) -> Result<()> {
        move_mount(
            &self.fd,
            "",
            target,
            "",
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .map_err(|e| Error::sys("move_mount", format!("{} → {dest}", self.name), e))
    }
}

impl AsFd for MountFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<MountFd> for OwnedFd {
    fn from(m: MountFd) -> OwnedFd {
        m.fd
    }
}

/// `mount_setattr` on any fd that refers to a mount (attached or not), e.g.
/// an `O_PATH` fd of a mount point.
pub fn set_attr_fd(
    fd: BorrowedFd<'_>,
    name: &str,
    set: MountAttr,
    clear: MountAttr,
    propagation: Option<Propagation>,
    recursive: bool,
) -> Result<()> {
    let mut clear = clear.bits() as u64;
    // The atime modes are one field: setting one means clearing the field.
    if set.intersects(MountAttrFlags::MOUNT_ATTR__ATIME) {
        clear |= MountAttrFlags::MOUNT_ATTR__ATIME.bits() as u64;
    }
    let attr = MountAttrRaw {
        attr_set: set.bits() as u64,
        attr_clr: clear,
        propagation: propagation.map_or(0, Propagation::raw),
        userns_fd: 0,
    };
    sys::mount_setattr(fd, recursive, &attr).map_err(|e| Error::sys("mount_setattr", name, e))
}

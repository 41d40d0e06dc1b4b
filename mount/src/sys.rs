//! Raw syscalls that rustix does not wrap. Nothing else in this crate is
//! `unsafe`.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

/// `struct mount_attr` of `<linux/mount.h>` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MountAttrRaw {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// `mount_setattr(dirfd, "", AT_EMPTY_PATH | flags, attr, sizeof attr)`:
/// change the flags, propagation or idmapping of the mount `fd` refers to
/// (and, with `AT_RECURSIVE`, of every mount below it).
///
/// See <https://man7.org/linux/man-pages/man2/mount_setattr.2.html>.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttrRaw) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` points
    // to a live, properly sized `struct mount_attr` that the kernel only
    // reads, and the fd is borrowed for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttrRaw,
            std::mem::size_of::<MountAttrRaw>(),
        )
    };
    if ret < 0 {
        Err(Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)))
    } else {
        Ok(())
    }
}

/// Run `f` with the filesystem ids set to (`uid`, `gid`) and every
/// permitted capability effective, then restore both (`setfsuid(2)`,
/// `setfsgid(2)`, `capset(2)`). overlayfs records the credentials of the
/// process that creates it and uses them for its own writes (the workdir,
/// copy-up): through idmapped layers those must be ids the idmap maps.
/// Per-thread; the caller is single-threaded.
pub fn with_fs_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> Result<T, Errno> {
    let caps = rustix::thread::capabilities(None)?;
    // SAFETY: setfsuid/setfsgid take plain integers and only change this
    // thread's filesystem ids; they return the previous id.
    let old_gid = unsafe { libc::setfsgid(gid) };
    // SAFETY: as above.
    let old_uid = unsafe { libc::setfsuid(uid) };
    // A change of fsuid away from 0 drops the fs capabilities from the
    // effective set: raise them again from the permitted set.
    let raised = rustix::thread::CapabilitySets { effective: caps.permitted, ..caps };
    let result = rustix::thread::set_capabilities(None, raised).map(|()| f());
    // SAFETY: restores the ids saved above.
    unsafe {
        libc::setfsuid(old_uid as libc::uid_t);
        libc::setfsgid(old_gid as libc::gid_t);
    }
    rustix::thread::set_capabilities(None, caps)?;
    result
}

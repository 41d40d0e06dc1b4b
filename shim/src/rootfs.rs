//! The rootfs containerd hands the shim (`CreateTaskRequest.rootfs`, an
//! overlay of the snapshot's layers, or a bind of a directory), mounted on
//! `<bundle>/rootfs` with the mount API: `fsopen` → `fsconfig` → `fsmount`
//! (or `open_tree` for a bind), then `move_mount` onto an `O_PATH` fd of the
//! target, with the attributes set on the detached mount first.

use std::os::fd::AsFd;
use std::path::Path;

use fdbox_mount::{FsContext, MountAttr, MountFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{unmount, UnmountFlags};

use crate::error::{Error, Result, SysContext};

/// One mount of the request.
#[derive(Debug, Clone)]
pub struct RootMount {
    pub typ: String,
    pub source: String,
    pub options: Vec<String>,
}

/// `fsconfig` takes string values of at most 256 bytes (including the NUL).
const FSCONFIG_STRING_MAX: usize = 255;

/// Mount `mounts` (in order, each on top of the previous) at `target`. On
/// failure, whatever was mounted is unmounted again.
pub fn mount_all(mounts: &[RootMount], target: &Path) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).sys("mkdir", || target.display().to_string())?;
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = unmount(target, UnmountFlags::DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &RootMount, target: &Path) -> Result<()> {
    let what = format!("rootfs {} mount of {}", m.typ, m.source);
    let opts = fdbox_mount::options::parse("/", &m.options).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?;
    let detached = if opts.bind || m.typ == "bind" {
        let src = rustix::fs::open(m.source.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::InvalidArgument(format!("{what}: source {}: {e}", m.source)))?;
        MountFd::clone_tree(src.as_fd(), "", opts.recursive_bind)?
    } else {
        new_filesystem(m, &opts.sb_flags, &opts.data, &what)?
    };
    let set = opts.set | opts.rec_set;
    let clear = opts.clear | opts.rec_clear;
    if !set.is_empty() || !clear.is_empty() {
        detached.set_attr(set, clear, None, !opts.rec_set.is_empty() || !opts.rec_clear.is_empty())?;
    }
    let dir = rustix::fs::open(target, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .sys("open", || target.display().to_string())?;
    detached.attach(dir.as_fd(), &target.to_string_lossy())?;
    Ok(())
}

fn new_filesystem(m: &RootMount, sb_flags: &[String], data: &[(String, Option<String>)], what: &str) -> Result<MountFd> {
    let fs = FsContext::new(&m.typ).map_err(|e| match e.errno() {
        Some(Errno::NODEV) => Error::InvalidArgument(format!("{what}: unknown filesystem type")),
        _ => e.into(),
    })?;
    let invalid = |e: fdbox_mount::Error| match e.errno() {
        Some(Errno::INVAL) | Some(Errno::NOENT) | Some(Errno::NOTDIR) => Error::InvalidArgument(format!("{what}: {e}")),
        _ => e.into(),
    };
    if !m.source.is_empty() {
        fs.set_string("source", &m.source).map_err(invalid)?;
    }
    for f in sb_flags {
        fs.set_flag(f).map_err(invalid)?;
    }
    for (k, v) in data {
        match v {
            // An overlay's layer list outgrows fsconfig's string limit
            // quickly: give the layers one by one (`lowerdir+`, Linux 6.8).
            Some(v) if m.typ == "overlay" && k == "lowerdir" && v.len() > FSCONFIG_STRING_MAX => {
                for layer in v.split(':') {
                    fs.set_string("lowerdir+", layer).map_err(invalid)?;
                }
            }
            _ => fs.set_option(k, v.as_deref()).map_err(invalid)?,
        }
    }
    fs.mount(MountAttr::empty()).map_err(invalid)
}

/// Unmount everything stacked on `target` (lazily if busy). Nothing happens
/// when `target` is not a mount point (EINVAL), so this is safe to call for
/// a bundle whose rootfs the shim did not mount.
pub fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..64 {
        match unmount(target, UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) => unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)
                .sys("umount2", || format!("{} (detach)", target.display()))?,
            Err(e) => return Err(Error::sys("umount2", target.display().to_string(), e)),
        }
    }
    Err(Error::Internal(format!("{}: still mounted after 64 unmounts", target.display())))
}

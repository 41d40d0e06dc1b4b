//! `tmpcopyup`: runc's mount extension that podman puts on every tmpfs it
//! adds (`--tmpfs`, and `/run`, `/tmp`, `/var/tmp` of `--read-only`). The
//! new tmpfs starts as a copy of the directory it covers, so what the image
//! ships there is still visible, now writable.
//!
//! Everything happens by fd, before the tmpfs is attached: the covered
//! directory is opened inside the root (`openat2(RESOLVE_IN_ROOT)`), the
//! detached tmpfs is written through its own mount fd, and nothing below is
//! ever followed through a symlink (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`): a
//! symlink is copied as a symlink. As runc, the copy keeps each entry's
//! type, permission bits and owner (not times, xattrs or hard links), and
//! the tmpfs root takes the covered directory's mode and owner.

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{
    chownat, fchmod, fchown, fstat, mkdirat, mknodat, openat, readlinkat, statat, symlinkat, AtFlags, FileType, Gid,
    Mode, OFlags, Stat, Uid,
};
use rustix::io::Errno;

use crate::fd::MountFd;
use crate::root::RootFd;
use crate::{Error, Result};

/// Directories deeper than this are refused rather than recursed into (a
/// rootfs cannot loop without symlinks, which are never followed; this only
/// bounds the stack).
const MAX_DEPTH: usize = 128;

/// Fill the detached `tmpfs` with a copy of `dest` inside `root`. A missing
/// `dest` (it is created empty when the tmpfs is attached) or one that is not
/// a directory (attaching then fails with a clear error) has nothing to copy.
pub(crate) fn copy_up(root: &RootFd, dest: &str, tmpfs: &MountFd) -> Result<()> {
    let src = match root.open(dest, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if matches!(e.errno(), Some(Errno::NOENT) | Some(Errno::NOTDIR)) => return Ok(()),
        Err(e) => return Err(e),
    };
    // The mount fd is O_PATH: reopen its root for fchmod/fchown.
    let dst = openat(tmpfs, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("openat", format!("tmpfs for {dest}"), e))?;
    let st = fstat(&src).map_err(|e| Error::sys("fstat", dest, e))?;
    copy_dir(src.as_fd(), dst.as_fd(), dest, 0)?;
    set_owner_and_mode(&dst, &st, dest)
}

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, path: &str, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::Path { path: path.into(), reason: format!("tmpcopyup: deeper than {MAX_DEPTH} directories") });
    }
    let dir = rustix::fs::Dir::read_from(src).map_err(|e| Error::sys("opendir", path, e))?;
    for entry in dir {
        let entry = entry.map_err(|e| Error::sys("getdents", path, e))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let child = format!("{}/{}", path.trim_end_matches('/'), name.to_string_lossy());
        copy_entry(src, dst, name, &child, depth)?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr, path: &str, depth: usize) -> Result<()> {
    let st = statat(src, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| Error::sys("fstatat", path, e))?;
    let perm = Mode::from_raw_mode(st.st_mode & 0o7777);
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            mkdirat(dst, name, Mode::from_raw_mode(0o700)).map_err(|e| Error::sys("mkdirat", path, e))?;
            let from = openat(src, name, dir_flags, Mode::empty()).map_err(|e| Error::sys("openat", path, e))?;
            let to = openat(dst, name, dir_flags, Mode::empty()).map_err(|e| Error::sys("openat", path, e))?;
            copy_dir(from.as_fd(), to.as_fd(), path, depth + 1)?;
            set_owner_and_mode(&to, &st, path)
        }
        FileType::RegularFile => {
            let from = openat(src, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("openat", path, e))?;
            let to = openat(
                dst,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| Error::sys("openat", path, e))?;
            let (mut from, mut to) = (File::from(from), File::from(to));
            // std's copy uses copy_file_range/sendfile where it can.
            std::io::copy(&mut from, &mut to).map_err(|e| Error::Path {
                path: path.into(),
                reason: format!("tmpcopyup: copying the file: {e}"),
            })?;
            set_owner_and_mode(&OwnedFd::from(to), &st, path)
        }
        FileType::Symlink => {
            let target = readlinkat(src, name, Vec::new()).map_err(|e| Error::sys("readlinkat", path, e))?;
            symlinkat(target.as_c_str(), dst, name).map_err(|e| Error::sys("symlinkat", path, e))?;
            match chownat(dst, name, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)), AtFlags::SYMLINK_NOFOLLOW) {
                // EINVAL: the owner has no id in the container's user namespace.
                Ok(()) | Err(Errno::INVAL) => Ok(()),
                Err(e) => Err(Error::sys("fchownat", path, e)),
            }
        }
        ft @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            mknodat(dst, name, ft, perm, st.st_rdev).map_err(|e| Error::sys("mknodat", path, e))?;
            match chownat(dst, name, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(()) | Err(Errno::INVAL) => Ok(()),
                Err(e) => Err(Error::sys("fchownat", path, e)),
            }
        }
        // A socket is bound by a process, not content to copy.
        _ => Ok(()),
    }
}

/// Owner first, then mode: a chown clears the set-id bits.
fn set_owner_and_mode(fd: &OwnedFd, st: &Stat, path: &str) -> Result<()> {
    match fchown(fd, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid))) {
        // EINVAL: the owner has no id in the container's user namespace.
        Ok(()) | Err(Errno::INVAL) => {}
        Err(e) => return Err(Error::sys("fchown", path, e)),
    }
    fchmod(fd, Mode::from_raw_mode(st.st_mode & 0o7777)).map_err(|e| Error::sys("fchmod", path, e))
}

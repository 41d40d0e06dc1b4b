//! Rootfs assembly: OCI mounts turned into detached mount fds and attached
//! inside the container's rootfs, then `/dev`, masks, read-only paths and
//! `pivot_root`.
//!
//! Two sides, as in crun: [`prepare_rootfs`] and [`prepare_bind`] run on the
//! host side (sources resolve in the host's mount namespace); everything
//! else runs in the container's init, in its new mount namespace, where
//! filesystems tied to the new pid/net namespaces (proc, sysfs, mqueue,
//! devpts) can be created.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{fstat, mknodat, symlinkat, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountAttrFlags as A;

use crate::fd::{set_attr_fd, FsContext, MountAttr, MountFd, Propagation};
use crate::options::{self, MountOptions};
use crate::root::{NodeKind, RootFd};
use crate::{Error, Result};

/// One OCI mount, free of any spec crate's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub destination: String,
    pub typ: Option<String>,
    pub source: Option<String>,
    pub options: Vec<String>,
}

impl MountEntry {
    /// Parsed options; `bind` type implies a bind mount.
    pub fn parsed(&self) -> Result<MountOptions> {
        let mut o = options::parse(&self.destination, &self.options)?;
        if self.typ.as_deref() == Some("bind") {
            o.bind = true;
        }
        Ok(o)
    }

    /// Whether the host side must prepare this mount (a bind).
    pub fn is_bind(&self) -> Result<bool> {
        Ok(self.parsed()?.bind)
    }
}

/// Host side: a detached, recursive clone of the rootfs directory, made
/// private so nothing mounted inside it propagates back to the host.
pub fn prepare_rootfs(rootfs_dir: BorrowedFd<'_>) -> Result<MountFd> {
    let m = MountFd::clone_tree(rootfs_dir, "", true)?;
    m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(Propagation::Private), true)?;
    Ok(m)
}

/// Host side: the detached mount for a bind entry, with its flags and
/// propagation (private by default, so the container's mounts never reach
/// the host's tree) already applied.
pub fn prepare_bind(entry: &MountEntry, base: BorrowedFd<'_>) -> Result<MountFd> {
    let o = entry.parsed()?;
    if let Some((k, _)) = o.data.first() {
        return Err(Error::Option {
            dest: entry.destination.clone(),
            option: k.clone(),
            reason: "unknown option for a bind mount",
        });
    }
    let source = entry.source.as_deref().ok_or_else(|| Error::Path {
        path: entry.destination.clone(),
        reason: "bind mount without a source".into(),
    })?;
    let m = MountFd::clone_tree(base, source, o.recursive_bind).map_err(|e| match e.errno() {
        Some(Errno::NOENT) => Error::Path {
            path: entry.destination.clone(),
            reason: format!("bind source {source:?} does not exist"),
        },
        _ => e,
    })?;
    let prop = o.propagation.unwrap_or(options::PropagationChange { kind: Propagation::Private, recursive: true });
    m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(prop.kind), prop.recursive)?;
    if !o.rec_set.is_empty() || !o.rec_clear.is_empty() {
        m.set_attr(o.rec_set, o.rec_clear, None, true)?;
    }
    if !o.set.is_empty() || !o.clear.is_empty() {
        m.set_attr(o.set, o.clear, None, false)?;
    }
    Ok(m)
}

/// The cgroup hierarchies of the host, read from `/proc/self/mountinfo`
/// (in the init's copy of the host's mount namespace, before pivot_root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHierarchy {
    /// Directory name under /sys/fs/cgroup (`memory`, `unified`, …).
    pub name: String,
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: String,
    /// v1 options naming the hierarchy (`memory`, `cpu`, `name=systemd`).
    pub options: Vec<String>,
}

/// Parse the cgroup mounts under /sys/fs/cgroup out of a mountinfo text.
pub fn cgroup_hierarchies(mountinfo: &str) -> Vec<CgroupHierarchy> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let super_opts = r.next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let name = if mount_point == "/sys/fs/cgroup" {
            String::new()
        } else if let Some(n) = mount_point.strip_prefix("/sys/fs/cgroup/") {
            n.to_string()
        } else {
            continue;
        };
        let options = super_opts
            .split(',')
            .filter(|o| fstype == "cgroup" && !matches!(*o, "rw" | "ro" | "") && !o.starts_with("release_agent") && *o != "clone_children" && !o.starts_with("xattr"))
            .map(str::to_string)
            .collect();
        out.push(CgroupHierarchy { name, fstype: fstype.to_string(), options });
    }
    out
}

/// The attributes a freshly created filesystem mount gets from `fsmount`.
fn fresh_attrs(o: &MountOptions) -> MountAttr {
    let mut attrs = (o.set | o.rec_set) & !(o.clear | o.rec_clear);
    // RELATIME is 0: keep only the atime bits the options set.
    if (o.clear | o.rec_clear).contains(A::MOUNT_ATTR__ATIME) {
        attrs.remove(A::MOUNT_ATTR__ATIME);
        attrs |= (o.set | o.rec_set) & A::MOUNT_ATTR__ATIME;
    }
    attrs
}

/// Create a detached mount of a new filesystem for `entry`.
pub fn new_filesystem(entry: &MountEntry, fstype: &str, o: &MountOptions) -> Result<MountFd> {
    let ctx = FsContext::new(fstype).map_err(|e| match e.errno() {
        Some(Errno::NODEV) => Error::Path {
            path: entry.destination.clone(),
            reason: format!("unknown filesystem type {fstype:?}"),
        },
        _ => e,
    })?;
    if let Some(src) = entry.source.as_deref() {
        // The source is only a label for most virtual filesystems; some
        // refuse the key, which is harmless for those.
        match ctx.set_string("source", src) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::INVAL) && is_virtual(fstype) => {}
            Err(e) => return Err(e),
        }
    }
    for f in &o.sb_flags {
        ctx.set_flag(f)?;
    }
    for (k, v) in &o.data {
        ctx.set_option(k, v.as_deref()).map_err(|e| match e.errno() {
            Some(Errno::INVAL) => Error::Option {
                dest: entry.destination.clone(),
                option: match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                },
                reason: "rejected by the filesystem",
            },
            _ => e,
        })?;
    }
    ctx.mount(fresh_attrs(o))
}

fn is_virtual(fstype: &str) -> bool {
    matches!(fstype, "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2")
}

/// Attach `m` at `dest` inside the root, creating the destination (a
/// directory, or an empty file when the source is not a directory).
pub fn attach_at(root: &RootFd, m: &MountFd, dest: &str) -> Result<OwnedFd> {
    let st = fstat(m).map_err(|e| Error::sys("fstat", m.name(), e))?;
    let kind = if FileType::from_raw_mode(st.st_mode) == FileType::Directory { NodeKind::Dir } else { NodeKind::File };
    let target = root.ensure(dest, kind)?;
    m.attach(target.as_fd(), dest)?;
    Ok(target)
}

/// Container side: create (or take the prepared bind of) one OCI mount and
/// attach it. `cgroups` describes the host's hierarchies for `cgroup`.
pub fn mount_entry(root: &RootFd, entry: &MountEntry, prepared: Option<MountFd>, cgroups: &[CgroupHierarchy]) -> Result<()> {
    let o = entry.parsed()?;
    let dest = entry.destination.as_str();
    if o.bind {
        let m = prepared.ok_or_else(|| Error::Path { path: dest.into(), reason: "bind mount was not prepared".into() })?;
        attach_at(root, &m, dest)?;
        return Ok(());
    }
    let fstype = entry.typ.as_deref().unwrap_or("");
    if fstype.is_empty() || fstype == "none" {
        return Err(Error::Path { path: dest.into(), reason: "mount has no type and is not a bind mount".into() });
    }
    if fstype == "cgroup" && !cgroups.iter().any(|h| h.name.is_empty() && h.fstype == "cgroup2") {
        return mount_cgroup_v1_tree(root, entry, &o, cgroups);
    }
    let fstype = if fstype == "cgroup" { "cgroup2" } else { fstype };
    let m = new_filesystem(entry, fstype, &o)?;
    attach_at(root, &m, dest)?;
    if let Some(p) = o.propagation {
        m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(p.kind), p.recursive)?;
    }
    Ok(())
}

/// `cgroup` on a v1 or hybrid host: a tmpfs with one mount per hierarchy,
/// laid out like the host's /sys/fs/cgroup, and then made read-only if the
/// entry asks for it.
fn mount_cgroup_v1_tree(root: &RootFd, entry: &MountEntry, o: &MountOptions, cgroups: &[CgroupHierarchy]) -> Result<()> {
    let dest = entry.destination.as_str();
    let tmpfs = FsContext::new("tmpfs")?;
    tmpfs.set_string("mode", "755")?;
    let base_attrs = fresh_attrs(o) & !A::MOUNT_ATTR_RDONLY;
    let t = tmpfs.mount(base_attrs)?;
    attach_at(root, &t, dest)?;
    for h in cgroups {
        let ctx = FsContext::new(&h.fstype)?;
        for opt in &h.options {
            match opt.split_once('=') {
                Some((k, v)) => ctx.set_string(k, v)?,
                None => ctx.set_flag(opt)?,
            }
        }
        let m = ctx.mount(fresh_attrs(o))?;
        attach_at(root, &m, &format!("{dest}/{}", h.name))?;
    }
    if o.readonly() {
        t.set_attr(A::MOUNT_ATTR_RDONLY, MountAttr::empty(), None, false)?;
    }
    Ok(())
}

/// A device node for /dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub path: String,
    /// `c`, `b`, `u` or `p`.
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices: null, zero, full, random, urandom, tty.
pub fn default_devices() -> Vec<Device> {
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]
        .into_iter()
        .map(|(n, ma, mi)| Device { path: format!("/dev/{n}"), kind: 'c', major: ma, minor: mi, mode: 0o666, uid: 0, gid: 0 })
        .collect()
}

/// Create device nodes (`mknodat` relative to the parent's fd) and the
/// standard /dev symlinks.
pub fn setup_dev(root: &RootFd, devices: &[Device], console: bool) -> Result<()> {
    for d in devices {
        let (parent, name) = split_parent(&d.path);
        let dir = root.ensure(parent, NodeKind::Dir)?;
        let dir = reopen_dir(&dir, parent)?;
        let ft = match d.kind {
            'b' => FileType::BlockDevice,
            'p' => FileType::Fifo,
            _ => FileType::CharacterDevice,
        };
        let dev = rustix::fs::makedev(d.major, d.minor);
        match mknodat(&dir, name, ft, Mode::from_raw_mode(d.mode & 0o7777), dev) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty()).map_err(|e| Error::sys("unlinkat", d.path.as_str(), e))?;
                mknodat(&dir, name, ft, Mode::from_raw_mode(d.mode & 0o7777), dev).map_err(|e| Error::sys("mknodat", d.path.as_str(), e))?;
            }
            Err(e) => return Err(Error::sys("mknodat", d.path.as_str(), e)),
        }
        rustix::fs::chownat(&dir, name, Some(uid(d.uid)), Some(gid(d.gid)), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::sys("fchownat", d.path.as_str(), e))?;
        // mknod honours the umask; set the mode the spec asked for.
        rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(d.mode & 0o7777), rustix::fs::AtFlags::empty())
            .map_err(|e| Error::sys("fchmodat", d.path.as_str(), e))?;
    }
    let dev = reopen_dir(&root.ensure("/dev", NodeKind::Dir)?, "/dev")?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Error::sys("symlinkat", format!("/dev/{name}"), e)),
        }
    }
    if console {
        // The mount point for the console: an empty regular file.
        root.ensure("/dev/console", NodeKind::File)?;
    }
    Ok(())
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}

fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((p, n)) => (p, n),
        None => ("/", path),
    }
}

/// Turn an `O_PATH` directory fd into one that `*at` calls can create in.
fn reopen_dir(fd: &OwnedFd, name: &str) -> Result<OwnedFd> {
    rustix::fs::openat(fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("openat", name, e))
}

/// Bind the pty slave (the container's terminal) over /dev/console.
pub fn bind_console(root: &RootFd, slave: BorrowedFd<'_>) -> Result<()> {
    let m = MountFd::clone_tree(slave, "", false)?;
    let target = root.ensure("/dev/console", NodeKind::File)?;
    m.attach(target.as_fd(), "/dev/console")
}

/// `linux.maskedPaths`: a file is covered by the container's /dev/null —
/// after `fstat` proves it is the real null device, so a rootfs cannot make
/// the mask bind a host file — and a directory by an empty read-only tmpfs.
pub fn mask_paths(root: &RootFd, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut null: Option<MountFd> = None;
    for p in paths {
        let target = match root.open_path(p) {
            Ok(t) => t,
            Err(e) if e.errno() == Some(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        let st = fstat(&target).map_err(|e| Error::sys("fstat", p.as_str(), e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let ctx = FsContext::new("tmpfs")?;
            ctx.set_string("size", "0")?;
            let m = ctx.mount(A::MOUNT_ATTR_RDONLY | A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV | A::MOUNT_ATTR_NOEXEC)?;
            m.attach(target.as_fd(), p)?;
        } else {
            if null.is_none() {
                null = Some(dev_null(root)?);
            }
            let src = null.as_ref().map(|n| n.as_fd()).ok_or_else(|| Error::Path { path: "/dev/null".into(), reason: "missing".into() })?;
            let m = MountFd::clone_tree(src, "", false)?;
            m.attach(target.as_fd(), p)?;
        }
    }
    Ok(())
}

/// An `O_PATH` handle of the container's /dev/null, refused unless it is
/// the character device 1:3 (CVE-2025-31133: a rootfs that replaces
/// /dev/null with a symlink or a file must not turn masks into binds of
/// something else).
fn dev_null(root: &RootFd) -> Result<MountFd> {
    let fd = root.open("/dev/null", OFlags::PATH | OFlags::NOFOLLOW, Mode::empty())?;
    let st = fstat(&fd).map_err(|e| Error::sys("fstat", "/dev/null", e))?;
    let rdev = st.st_rdev;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice
        || rustix::fs::major(rdev) != 1
        || rustix::fs::minor(rdev) != 3
    {
        return Err(Error::Path { path: "/dev/null".into(), reason: "is not the null device; refusing to use it for masked paths".into() });
    }
    Ok(MountFd::from_owned(fd, "/dev/null"))
}

/// `linux.readonlyPaths`: each path re-bound onto itself read-only
/// (recursively), through fds only.
pub fn readonly_paths(root: &RootFd, paths: &[String]) -> Result<()> {
    for p in paths {
        let target = match root.open_path(p) {
            Ok(t) => t,
            Err(e) if e.errno() == Some(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        let m = MountFd::clone_tree(target.as_fd(), "", true)?;
        m.set_attr(A::MOUNT_ATTR_RDONLY, MountAttr::empty(), None, true)?;
        m.attach(target.as_fd(), p)?;
    }
    Ok(())
}

/// Attach the rootfs mount on top of the init's `/` (its private copy of
/// the host tree), after making that tree a slave (or the propagation
/// `linux.rootfsPropagation` asks for) so nothing propagates to the host.
pub fn attach_rootfs(rootfs: &MountFd, propagation: Option<&str>) -> Result<RootFd> {
    let slash = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("open", "/", e))?;
    let prop = match propagation {
        None | Some("") => options::PropagationChange { kind: Propagation::Slave, recursive: true },
        Some(p) => options::parse("rootfsPropagation", &[p.to_string()])?
            .propagation
            .ok_or_else(|| Error::Option { dest: "rootfsPropagation".into(), option: p.into(), reason: "not a propagation type" })?,
    };
    set_attr_fd(slash.as_fd(), "/", MountAttr::empty(), MountAttr::empty(), Some(prop.kind), true)?;
    // pivot_root refuses a shared parent mount: keep `/` itself out of any
    // peer group (its children keep the requested propagation).
    if prop.kind == Propagation::Shared {
        set_attr_fd(slash.as_fd(), "/", MountAttr::empty(), MountAttr::empty(), Some(Propagation::Private), false)?;
    }
    rootfs.attach(slash.as_fd(), "/")?;
    let fd = rustix::io::dup(rootfs).map_err(|e| Error::sys("dup", "rootfs", e))?;
    Ok(RootFd::new(fd))
}

/// Make the rootfs the process's root: `fchdir(rootfs)`,
/// `pivot_root(".", ".")`, then detach the old root stacked on top.
/// With `no_pivot` (runc's --no-pivot, for ramfs roots where pivot_root is
/// impossible) the documented fallback is `chroot(".")`.
pub fn enter_root(root: &RootFd, no_pivot: bool) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| Error::sys("fchdir", "rootfs", e))?;
    if no_pivot {
        rustix::process::chroot(".").map_err(|e| Error::sys("chroot", "rootfs", e))?;
    } else {
        rustix::process::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", "rootfs", e))?;
        rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH).map_err(|e| Error::sys("umount2", "old root", e))?;
    }
    rustix::process::chdir("/").map_err(|e| Error::sys("chdir", "/", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_hierarchies_of_a_hybrid_host() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                  42 27 0:39 / /mnt/other rw - cgroup2 cgroup2 rw\n";
        let h = cgroup_hierarchies(mi);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0], CgroupHierarchy { name: "cpu".into(), fstype: "cgroup".into(), options: vec!["cpu".into()] });
        assert_eq!(h[1].options, vec!["name=systemd".to_string()]);
        assert_eq!(h[2].fstype, "cgroup2");
    }

    #[test]
    fn fresh_attrs_keep_atime_mode() {
        let o = options::parse("/d", &["nosuid".into(), "strictatime".into(), "ro".into()]).unwrap();
        let a = fresh_attrs(&o);
        assert!(a.contains(A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_STRICTATIME | A::MOUNT_ATTR_RDONLY));
        let o = options::parse("/d", &["ro".into(), "rw".into()]).unwrap();
        assert!(!fresh_attrs(&o).contains(A::MOUNT_ATTR_RDONLY));
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("/dev/null"), ("/dev", "null"));
        assert_eq!(split_parent("/x"), ("/", "x"));
        assert_eq!(split_parent("/dev/net/tun"), ("/dev/net", "tun"));
    }
}

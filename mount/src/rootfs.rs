//! Rootfs assembly: OCI mounts turned into detached mount fds and attached
//! inside the container's rootfs, then `/dev`, masks, read-only paths and
//! `pivot_root`.
//!
//! Two sides, as in crun: [`prepare_rootfs`] and [`prepare_host_side`] run on
//! the host side (bind sources and overlay layers resolve in the host's mount
//! namespace, relative ones from the bundle); everything else runs in the
//! container's init, in its new mount namespace, where filesystems tied to
//! the new pid/net namespaces (proc, sysfs, mqueue, devpts) can be created.
//!
//! Propagation: the rootfs and every bind start as recursive slaves of their
//! source (runc's `rslave` default), so host mounts below them still appear
//! inside while nothing mounted inside can propagate back to the host; the
//! options and `linux.rootfsPropagation` are applied on top of that.

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
    /// Parsed options; `bind` type implies a bind mount. A destination that
    /// is not an absolute path is refused here, before anything is mounted.
    pub fn parsed(&self) -> Result<MountOptions> {
        if !self.destination.starts_with('/') {
            return Err(Error::Path {
                path: self.destination.clone(),
                reason: "mount destination must be an absolute path".into(),
            });
        }
        let mut o = options::parse(&self.destination, &self.options)?;
        if self.typ.as_deref() == Some("bind") {
            o.bind = true;
        }
        Ok(o)
    }

    /// Whether the host side makes this mount: binds (their sources are
    /// host paths) and overlays (their layers are host paths, relative ones
    /// relative to the bundle).
    pub fn is_host_side(&self) -> Result<bool> {
        let o = self.parsed()?;
        Ok(o.bind || self.typ.as_deref() == Some("overlay") || self.is_idmapped_tmpfs(&o))
    }

    /// A tmpfs with `idmap`/`ridmap`: made on the host side so that it can
    /// be idmapped (an idmap needs a mount not yet attached, owned by a
    /// user namespace the runtime is privileged over).
    fn is_idmapped_tmpfs(&self, o: &MountOptions) -> bool {
        !o.bind && o.idmap.is_some() && self.typ.as_deref() == Some("tmpfs")
    }

    /// Whether the host side must prepare this mount (a bind).
    pub fn is_bind(&self) -> Result<bool> {
        Ok(self.parsed()?.bind)
    }
}

/// Host side: a detached, recursive clone of the rootfs directory, made a
/// slave of its source (runc's default `rslave`): mounts the host makes
/// below the rootfs later still show up inside, and nothing mounted inside
/// can ever propagate back to the host. `linux.rootfsPropagation` is
/// applied on top of that once the container's root is in place
/// ([`enter_root`]).
pub fn prepare_rootfs(rootfs_dir: BorrowedFd<'_>) -> Result<MountFd> {
    let m = MountFd::clone_tree(rootfs_dir, "", true)?;
    m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(Propagation::Slave), true)?;
    Ok(m)
}

/// Host side: the detached mount for an entry whose sources are host paths
/// (see [`MountEntry::is_host_side`]), or `None` for a filesystem the
/// container's init creates itself. Also validates every entry, so a bad
/// mount fails `create` before the init exists.
pub fn prepare_host_side(entry: &MountEntry, bundle: BorrowedFd<'_>) -> Result<Option<MountFd>> {
    let o = entry.parsed()?;
    if o.bind {
        prepare_bind(entry, bundle).map(Some)
    } else if entry.typ.as_deref() == Some("overlay") {
        prepare_overlay(entry, &o, bundle).map(Some)
    } else if entry.is_idmapped_tmpfs(&o) {
        new_filesystem(entry, "tmpfs", &o).map(Some)
    } else {
        Ok(None)
    }
}

/// Host side: the detached mount for a bind entry, with its flags and
/// propagation already applied. The clone is first made a recursive slave
/// of its source (runc's default, inherited from the rslave root), so that
/// whatever propagation the options ask for, the container's mounts never
/// reach the host's tree; the options' propagation is applied on top.
pub fn prepare_bind(entry: &MountEntry, base: BorrowedFd<'_>) -> Result<MountFd> {
    let (o, source) = check_bind(entry)?;
    bind_from(entry, &o, base, source)
}

/// A bind entry's options (no filesystem data allowed) and its source.
pub fn check_bind(entry: &MountEntry) -> Result<(MountOptions, &str)> {
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
    Ok((o, source))
}

/// Where a bind's source lies in the container's own tree, as runc sees
/// it: runc makes its mounts in the container's mount namespace, with the
/// rootfs at its host path and every earlier mount of the container on it,
/// so a source below `<rootfs>/<dest of an earlier mount>` is what that
/// mount shows, not the host directory under it. For such a source this
/// returns its path inside the root (absolute; `earlier` are the
/// destinations of the mounts before it): the init binds it there,
/// after the earlier mounts, resolved within the root. Any other source
/// (`None`) is a host path prepared on the host side. `source` is made
/// absolute from `bundle`; the comparison is lexical (`..` cannot climb
/// above `/`), so a spelling through a symlink stays a host path.
pub fn source_in_root(source: &str, bundle: &str, rootfs: &str, earlier: &[&str]) -> Option<String> {
    let abs = |p: &str| if p.starts_with('/') { clean(p) } else { clean(&format!("{bundle}/{p}")) };
    let (src, root) = (abs(source), abs(rootfs));
    let inside = if root == "/" { src.clone() } else { format!("/{}", src.strip_prefix(&root)?.strip_prefix('/')?) };
    let under = |d: &str| {
        let d = clean(d);
        d == "/" || inside == d || inside.strip_prefix(&d).is_some_and(|r| r.starts_with('/'))
    };
    earlier.iter().any(|d| under(d)).then_some(inside)
}

/// `path` cleaned lexically: absolute, no `.`, `..` or empty components.
fn clean(path: &str) -> String {
    let mut comps: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    format!("/{}", comps.join("/"))
}

/// The detached bind of `source` (relative to `base`) for `entry`, with
/// its flags and propagation applied.
fn bind_from(entry: &MountEntry, o: &MountOptions, base: BorrowedFd<'_>, source: &str) -> Result<MountFd> {
    let m = MountFd::clone_tree(base, source, o.recursive_bind).map_err(|e| match e.errno() {
        Some(Errno::NOENT) => Error::Path {
            path: entry.destination.clone(),
            reason: format!("bind source {source:?} does not exist"),
        },
        _ => e,
    })?;
    m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(Propagation::Slave), true)?;
    if let Some(p) = o.propagation {
        m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(p.kind), p.recursive)?;
    }
    // This mount's flags by runc's rule (see options::bind_attrs), then
    // the recursive forms on the whole tree, in runc's order.
    if let Some((set, clear)) = options::bind_attrs(&entry.options) {
        m.set_attr(set, clear, None, false)?;
    }
    if !o.rec_set.is_empty() || !o.rec_clear.is_empty() {
        m.set_attr(o.rec_set, o.rec_clear, None, true)?;
    }
    Ok(m)
}

/// Host side: an overlay made entirely by fd. Each layer directory is
/// opened relative to the bundle (absolute paths work too) and handed to
/// overlayfs with `fsconfig(FSCONFIG_SET_FD)` (`lowerdir+`, `upperdir`,
/// `workdir`; Linux 6.13+). A kernel that refuses layer fds gets the same
/// fds as `/proc/self/fd/N` paths, which still name exactly the
/// directories opened here.
fn prepare_overlay(entry: &MountEntry, o: &MountOptions, bundle: BorrowedFd<'_>) -> Result<MountFd> {
    let dest = entry.destination.as_str();
    let open_layer = |key: &str, path: &str| -> Result<OwnedFd> {
        rustix::fs::openat(bundle, path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| match e {
            Errno::NOENT | Errno::NOTDIR => Error::Path { path: dest.into(), reason: format!("overlay {key} {path:?} is not a directory") },
            e => Error::sys("openat", format!("overlay {key} {path}"), e),
        })
    };
    let mut lower = Vec::new();
    let mut upper = None;
    let mut work = None;
    let mut other = Vec::new();
    for (k, v) in &o.data {
        match (k.as_str(), v.as_deref()) {
            ("lowerdir", Some(v)) => {
                for l in v.split(':').filter(|l| !l.is_empty()) {
                    lower.push(open_layer("lowerdir", l)?);
                }
            }
            ("lowerdir+", Some(v)) => lower.push(open_layer("lowerdir", v)?),
            ("upperdir", Some(v)) => upper = Some(open_layer("upperdir", v)?),
            ("workdir", Some(v)) => work = Some(open_layer("workdir", v)?),
            _ => other.push((k.clone(), v.clone())),
        }
    }
    if lower.is_empty() {
        return Err(Error::Path { path: dest.into(), reason: "overlay mount without a lowerdir".into() });
    }
    if upper.is_some() != work.is_some() {
        return Err(Error::Path { path: dest.into(), reason: "overlay upperdir and workdir go together".into() });
    }
    let ctx = FsContext::new("overlay").map_err(|e| unknown_type(entry, "overlay", e))?;
    ctx.set_string("source", entry.source.as_deref().unwrap_or("overlay"))?;
    for f in &o.sb_flags {
        ctx.set_flag(f)?;
    }
    for (k, v) in &other {
        set_data_option(&ctx, entry, k, v.as_deref())?;
    }
    let by_fd = ctx.set_fd("lowerdir+", lower[0].as_fd());
    match by_fd {
        Ok(()) => {
            for l in &lower[1..] {
                ctx.set_fd("lowerdir+", l.as_fd())?;
            }
            if let (Some(u), Some(w)) = (&upper, &work) {
                ctx.set_fd("upperdir", u.as_fd())?;
                ctx.set_fd("workdir", w.as_fd())?;
            }
        }
        // Older kernels: no layer fds (6.12: EBADF) or no `lowerdir+`
        // (6.1: EOPNOTSUPP); some report EINVAL.
        Err(e) if matches!(e.errno(), Some(Errno::INVAL | Errno::BADF | Errno::OPNOTSUPP)) => {
            let path = |fd: &OwnedFd| format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
            let lowers: Vec<String> = lower.iter().map(path).collect();
            ctx.set_string("lowerdir", &lowers.join(":"))?;
            if let (Some(u), Some(w)) = (&upper, &work) {
                ctx.set_string("upperdir", &path(u))?;
                ctx.set_string("workdir", &path(w))?;
            }
        }
        Err(e) => return Err(e),
    }
    ctx.mount(fresh_attrs(o))
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
    /// The container's cgroup in this hierarchy (from /proc/self/cgroup of
    /// the init, read before it enters a cgroup namespace).
    pub path: String,
}

/// Fill in each hierarchy's cgroup path from a `/proc/self/cgroup` text.
pub fn assign_cgroup_paths(hiers: &mut [CgroupHierarchy], proc_self_cgroup: &str) {
    for line in proc_self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        for h in hiers.iter_mut() {
            let matches = if h.fstype == "cgroup2" {
                ctrls.is_empty()
            } else {
                let mut a: Vec<&str> = ctrls.split(',').collect();
                let mut b: Vec<&str> = h.options.iter().map(String::as_str).collect();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            };
            if matches {
                h.path = path.to_string();
            }
        }
    }
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
        out.push(CgroupHierarchy { name, fstype: fstype.to_string(), options, path: String::new() });
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
    let ctx = FsContext::new(fstype).map_err(|e| unknown_type(entry, fstype, e))?;
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
        set_data_option(&ctx, entry, k, v.as_deref())?;
    }
    ctx.mount(fresh_attrs(o))
}

/// `fsopen` failed: ENODEV means the kernel knows no such filesystem.
fn unknown_type(entry: &MountEntry, fstype: &str, e: Error) -> Error {
    match e.errno() {
        Some(Errno::NODEV) => Error::Path {
            path: entry.destination.clone(),
            reason: format!("unknown filesystem type {fstype:?}"),
        },
        _ => e,
    }
}

/// One data option through `fsconfig`; EINVAL means the filesystem does
/// not know the option (or refuses its value).
fn set_data_option(ctx: &FsContext, entry: &MountEntry, k: &str, v: Option<&str>) -> Result<()> {
    ctx.set_option(k, v).map_err(|e| match e.errno() {
        Some(Errno::INVAL) => Error::Option {
            dest: entry.destination.clone(),
            option: match v {
                Some(v) => format!("{k}={v}"),
                None => k.to_string(),
            },
            reason: "rejected by the filesystem",
        },
        _ => e,
    })
}

fn is_virtual(fstype: &str) -> bool {
    matches!(fstype, "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2")
}

/// Attach `m` at `dest` inside the root, creating the destination (a
/// directory, or an empty file when the source is not a directory).
pub fn attach_at(root: &RootFd, m: &MountFd, dest: &str) -> Result<OwnedFd> {
    let st = fstat(m).map_err(|e| Error::sys("fstat", m.name(), e))?;
    let src_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let target = root.ensure(dest, if src_dir { NodeKind::Dir } else { NodeKind::File })?;
    let st = fstat(&target).map_err(|e| Error::sys("fstat", dest, e))?;
    let dst_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    if src_dir != dst_dir {
        let what = |dir: bool| if dir { "a directory" } else { "a file" };
        return Err(Error::Path {
            path: dest.into(),
            reason: format!("cannot mount {} onto {}", what(src_dir), what(dst_dir)),
        });
    }
    m.attach(target.as_fd(), dest)?;
    Ok(target)
}

/// The mount point of a procfs or sysfs: `dest` (cleaned lexically) must be
/// an ordinary directory of the rootfs, never a symlink, as runc requires.
/// Parents resolve inside the root; a symlink as the last component (an
/// image whose /proc points elsewhere) would put the filesystem where LSM
/// policies and anything sharing that directory do not expect it (the
/// CVE-2019-19921 / CVE-2023-27561 class). A missing directory is created.
fn ordinary_dir(root: &RootFd, dest: &str, fstype: &str) -> Result<OwnedFd> {
    let clean = clean(dest);
    let refuse = |what: &str| Error::Path {
        path: dest.into(),
        reason: format!("{fstype} must be mounted on an ordinary directory, and {clean} is {what}"),
    };
    let open = || root.open(&clean, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty());
    let target = match open() {
        Err(e) if e.errno() == Some(Errno::NOENT) => {
            root.ensure(&clean, NodeKind::Dir)?;
            open()?
        }
        other => other?,
    };
    let st = fstat(&target).map_err(|e| Error::sys("fstat", clean.as_str(), e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Ok(target),
        FileType::Symlink => Err(refuse("a symlink")),
        t => Err(refuse(&format!("a {}", type_name(t)))),
    }
}

/// Container side: create (or take the prepared bind of) one OCI mount and
/// attach it. `cgroups` describes the host's hierarchies and the
/// container's place in them, for `cgroup` mounts; `cgroupns` says whether
/// the container has its own cgroup namespace.
///
/// Returns the mount to make read-only once every mount, device and file
/// of the container is made: as runc does, a read-only tmpfs (and a
/// read-only filesystem on /dev) is made read-write first, so that what
/// goes below it (devpts on /dev/pts, device nodes, nested mount points)
/// can be created, and turned read-only last ([`make_readonly`]).
pub fn mount_entry(root: &RootFd, entry: &MountEntry, prepared: Option<MountFd>, cgroups: &[CgroupHierarchy], cgroupns: bool) -> Result<Option<MountFd>> {
    let mut o = entry.parsed()?;
    let dest = entry.destination.as_str();
    if o.bind {
        // Flags and propagation were applied on the host side; a bind not
        // prepared there has its source in the root ([`source_in_root`]),
        // under an earlier mount: resolved now, within the root.
        let m = match prepared {
            Some(m) => m,
            None => {
                let (o, source) = check_bind(entry)?;
                let base = root.open_path(source).map_err(|e| match e.errno() {
                    Some(Errno::NOENT) => Error::Path { path: dest.into(), reason: format!("bind source {source:?} does not exist in the container") },
                    _ => e,
                })?;
                bind_from(entry, &o, base.as_fd(), "")?
            }
        };
        attach_at(root, &m, dest)?;
        return Ok(None);
    }
    let fstype = entry.typ.as_deref().unwrap_or("");
    if fstype.is_empty() || fstype == "none" {
        return Err(Error::Path { path: dest.into(), reason: "mount has no type and is not a bind mount".into() });
    }
    if o.idmap.is_some() && prepared.is_none() {
        return Err(Error::Option { dest: dest.into(), option: "idmap".into(), reason: "supported on bind and tmpfs mounts only" });
    }
    let pure_v2 = cgroups.iter().any(|h| h.name.is_empty() && h.fstype == "cgroup2");
    if fstype == "cgroup" && !pure_v2 {
        return mount_cgroup_v1_tree(root, entry, &o, cgroups).map(|()| None);
    }
    // The unified hierarchy where the host has it: /sys/fs/cgroup on a pure
    // v2 host, /sys/fs/cgroup/unified (or the like) on a hybrid one.
    let unified = cgroups
        .iter()
        .find(|h| h.name.is_empty() && h.fstype == "cgroup2")
        .or_else(|| cgroups.iter().find(|h| h.fstype == "cgroup2"));
    if let (true, false, Some(h)) = (matches!(fstype, "cgroup" | "cgroup2"), cgroupns, unified) {
        // Without a cgroup namespace a new cgroup2 mount would show the
        // host's whole tree: bind the container's own cgroup instead.
        let base = if h.name.is_empty() { "/sys/fs/cgroup".to_string() } else { format!("/sys/fs/cgroup/{}", h.name) };
        let m = bind_host(&format!("{base}{}", h.path), false)?;
        attach_at(root, &m, dest)?;
        return apply_bind_attrs(&m, &o).map(|()| None);
    }
    let fstype = if fstype == "cgroup" { "cgroup2" } else { fstype };
    if o.copy_up && fstype != "tmpfs" {
        return Err(Error::Option { dest: dest.into(), option: "tmpcopyup".into(), reason: "supported on tmpfs only" });
    }
    let ro_last = prepared.is_none() && o.readonly() && (fstype == "tmpfs" || clean(dest) == "/dev");
    if ro_last {
        o.set.remove(A::MOUNT_ATTR_RDONLY);
        o.rec_set.remove(A::MOUNT_ATTR_RDONLY);
    }
    if fstype == "tmpfs" && prepared.is_none() {
        keep_mount_point_mode(root, dest, &mut o);
    }
    let m = match prepared {
        Some(m) => m,
        None => new_filesystem(entry, fstype, &o)?,
    };
    if o.copy_up {
        crate::copyup::copy_up(root, dest, &m)?;
    }
    if matches!(fstype, "proc" | "sysfs") {
        let target = ordinary_dir(root, dest, fstype)?;
        m.attach(target.as_fd(), dest)?;
    } else {
        attach_at(root, &m, dest)?;
    }
    if let Some(p) = o.propagation {
        m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(p.kind), p.recursive)?;
    }
    Ok(ro_last.then_some(m))
}

/// A tmpfs without `mode=` over an existing directory gets that
/// directory's mode (runc since 1.1.8 and crun: the option goes first, an
/// explicit `mode=` wins; runc 1.1.5 chmodded the tmpfs to it even over an
/// explicit `mode=`), where the kernel would give 1777. A missing mount
/// point leaves the kernel's default.
fn keep_mount_point_mode(root: &RootFd, dest: &str, o: &mut MountOptions) {
    if o.data.iter().any(|(k, _)| k == "mode") {
        return;
    }
    let Ok(fd) = root.open_path(dest) else { return };
    let Ok(st) = fstat(&fd) else { return };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        o.data.insert(0, ("mode".into(), Some(format!("{:o}", st.st_mode & 0o7777))));
    }
}

/// The read-only step [`mount_entry`] left for last: this mount only, the
/// mounts made on it since keep their own flags (as runc's remount).
pub fn make_readonly(m: &MountFd) -> Result<()> {
    m.set_attr(A::MOUNT_ATTR_RDONLY, MountAttr::empty(), None, false)
}

/// `cgroup` on a v1 or hybrid host: a tmpfs laid out like the host's
/// /sys/fs/cgroup, with each hierarchy's directory of the container bound
/// in its place (as runc; new v1 mounts are refused in a user namespace and
/// would show the host's whole tree), then made read-only if asked.
fn mount_cgroup_v1_tree(root: &RootFd, entry: &MountEntry, o: &MountOptions, cgroups: &[CgroupHierarchy]) -> Result<()> {
    let dest = entry.destination.as_str();
    let tmpfs = FsContext::new("tmpfs")?;
    tmpfs.set_string("mode", "755")?;
    let base_attrs = fresh_attrs(o) & !A::MOUNT_ATTR_RDONLY;
    let t = tmpfs.mount(base_attrs)?;
    attach_at(root, &t, dest)?;
    for h in cgroups {
        let m = bind_host(&format!("/sys/fs/cgroup/{}{}", h.name, h.path), false)?;
        if h.name.is_empty() || h.name.contains('/') || h.name.starts_with('.') {
            attach_at(root, &m, &format!("{dest}/{}", h.name))?;
        } else {
            // The tmpfs is ours and brand new (nothing in it to resolve,
            // nobody else can reach it yet): its mount point directories
            // are made and opened through its own root fd.
            let point = format!("{dest}/{}", h.name);
            match rustix::fs::mkdirat(&t, h.name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(Error::sys("mkdirat", point, e)),
            }
            let dir = rustix::fs::openat(&t, h.name.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("openat", point.clone(), e))?;
            m.attach(dir.as_fd(), &point)?;
        }
        apply_bind_attrs(&m, o)?;
        // A co-mounted hierarchy (`cpu,cpuacct`) is also reachable by each
        // of its names, as on the host.
        if h.name.contains(',') {
            for part in h.name.split(',').filter(|p| !p.is_empty() && !cgroups.iter().any(|o| o.name == *p)) {
                match symlinkat(h.name.as_str(), &t, part) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::sys("symlinkat", format!("{dest}/{part}"), e)),
                }
            }
        }
    }
    if o.readonly() {
        t.set_attr(A::MOUNT_ATTR_RDONLY, MountAttr::empty(), None, false)?;
    }
    Ok(())
}

/// A detached bind of a host path, resolved in the init's copy of the
/// host's mount tree (before pivot_root).
fn bind_host(path: &str, recursive: bool) -> Result<MountFd> {
    MountFd::clone_tree(rustix::fs::CWD, path, recursive)
}

/// The per-mount flags of an entry on a bind it was turned into.
fn apply_bind_attrs(m: &MountFd, o: &MountOptions) -> Result<()> {
    let set = (o.set | o.rec_set) & !A::MOUNT_ATTR__ATIME;
    let clear = (o.clear | o.rec_clear) & !A::MOUNT_ATTR__ATIME;
    if !set.is_empty() || !clear.is_empty() {
        m.set_attr(set, clear, None, false)?;
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
/// standard /dev symlinks. Where `mknod` is not allowed (no CAP_MKNOD, a
/// user namespace) the host's node at the same path is bind-mounted
/// instead, after `fstat` shows it is the device the spec asks for; its
/// owner and mode are the host's and are left alone.
pub fn setup_dev(root: &RootFd, devices: &[Device], console: bool) -> Result<()> {
    // mknod honours the umask: without one, nodes get exactly the spec's
    // mode in the same call (no chmod by name afterwards).
    let umask = rustix::process::umask(Mode::empty());
    // Each parent directory (usually just /dev) resolved once.
    let mut dirs: Vec<(&str, OwnedFd)> = Vec::new();
    let made = devices.iter().try_for_each(|d| {
        let (parent, name) = split_parent(&d.path);
        let i = match dirs.iter().position(|(p, _)| *p == parent) {
            Some(i) => i,
            None => {
                dirs.push((parent, reopen_dir(&root.ensure(parent, NodeKind::Dir)?, parent)?));
                dirs.len() - 1
            }
        };
        make_device(root, d, &dirs[i].1, name)
    });
    rustix::process::umask(umask);
    made?;
    let dev = match dirs.iter().position(|(p, _)| *p == "/dev") {
        Some(i) => dirs.swap_remove(i).1,
        None => reopen_dir(&root.ensure("/dev", NodeKind::Dir)?, "/dev")?,
    };
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

/// One device node of [`setup_dev`]: `name` in `dir`, its parent.
fn make_device(root: &RootFd, d: &Device, dir: &OwnedFd, name: &str) -> Result<()> {
    let ft = device_type(d.kind);
    let dev = rustix::fs::makedev(d.major, d.minor);
    let mode = Mode::from_raw_mode(d.mode & 0o7777);
    let made = match mknodat(dir, name, ft, mode, dev) {
        // Something is in the way (a node of the rootfs, or a symlink an
        // attacker left there): replace the name itself, never its target.
        Err(Errno::EXIST) => {
            rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty()).map_err(|e| Error::sys("unlinkat", d.path.as_str(), e))?;
            mknodat(dir, name, ft, mode, dev)
        }
        other => other,
    };
    match made {
        Ok(()) => rustix::fs::chownat(dir, name, Some(uid(d.uid)), Some(gid(d.gid)), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::sys("fchownat", d.path.as_str(), e)),
        Err(Errno::PERM) if d.kind != 'p' => bind_host_device(root, d),
        Err(e) => Err(Error::sys("mknodat", d.path.as_str(), e)),
    }
}

fn device_type(kind: char) -> FileType {
    match kind {
        'b' => FileType::BlockDevice,
        'p' => FileType::Fifo,
        _ => FileType::CharacterDevice,
    }
}

/// The fallback of [`make_device`]: bind the host's node at the same path.
/// Runs before pivot_root, so an absolute path still resolves in the init's
/// copy of the host's tree.
fn bind_host_device(root: &RootFd, d: &Device) -> Result<()> {
    let host = MountFd::clone_tree(rustix::fs::CWD, &d.path, false).map_err(|e| match e.errno() {
        Some(Errno::NOENT) => Error::Path {
            path: d.path.clone(),
            reason: "mknod is not permitted and the host has no such device node to bind".into(),
        },
        _ => e,
    })?;
    let st = fstat(&host).map_err(|e| Error::sys("fstat", format!("host {}", d.path), e))?;
    let want = device_type(d.kind);
    if FileType::from_raw_mode(st.st_mode) != want
        || rustix::fs::major(st.st_rdev) != d.major
        || rustix::fs::minor(st.st_rdev) != d.minor
    {
        return Err(Error::Path {
            path: d.path.clone(),
            reason: format!(
                "mknod is not permitted and the host's node is not {} {}:{}",
                type_name(want),
                d.major,
                d.minor
            ),
        });
    }
    let target = root.ensure(&d.path, NodeKind::File)?;
    host.attach(target.as_fd(), &d.path)
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

/// Bind the pty slave (the container's terminal) over /dev/console. The
/// mount point must be a regular file or a device node in the container's
/// /dev: a symlink there is refused rather than followed (CVE-2025-52565:
/// a rootfs must not be able to redirect the console mount).
pub fn bind_console(root: &RootFd, slave: BorrowedFd<'_>) -> Result<()> {
    let m = MountFd::clone_tree(slave, "", false)?;
    let target = match root.open("/dev/console", OFlags::PATH | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(t) => t,
        Err(e) if e.errno() == Some(Errno::NOENT) => root.ensure("/dev/console", NodeKind::File)?,
        Err(e) => return Err(e),
    };
    let st = fstat(&target).map_err(|e| Error::sys("fstat", "/dev/console", e))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile | FileType::CharacterDevice => {}
        other => {
            return Err(Error::Path {
                path: "/dev/console".into(),
                reason: format!("is a {}, not a file or a device; refusing to mount the console there", type_name(other)),
            })
        }
    }
    m.attach(target.as_fd(), "/dev/console")
}

fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::Symlink => "symlink",
        FileType::Directory => "directory",
        FileType::RegularFile => "regular file",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::Unknown => "file of unknown type",
    }
}

/// `linux.maskedPaths`: a file is covered by the container's /dev/null —
/// after `fstat` proves it is the real null device, so a rootfs cannot make
/// the mask bind a host file — and a directory by an empty read-only tmpfs,
/// one for all of them (the first is made, the others are binds of it; as
/// issue 16 reports of runc 1.3 — runc 1.1.5 still made one each).
pub fn mask_paths(root: &RootFd, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut null: Option<MountFd> = None;
    let mut empty: Option<MountFd> = None;
    for p in paths {
        let target = match root.open_path(p) {
            Ok(t) => t,
            Err(e) if e.errno() == Some(Errno::NOENT) => continue,
            Err(e) => return Err(e),
        };
        let st = fstat(&target).map_err(|e| Error::sys("fstat", p.as_str(), e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let m = match &empty {
                Some(first) => MountFd::clone_tree(first.as_fd(), "", false)?,
                None => {
                    let ctx = FsContext::new("tmpfs")?;
                    ctx.set_string("size", "0")?;
                    ctx.mount(A::MOUNT_ATTR_RDONLY | A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV | A::MOUNT_ATTR_NOEXEC)?
                }
            };
            let made = fstat(&m).map_err(|e| Error::sys("fstat", "masking tmpfs", e))?;
            m.attach(target.as_fd(), p)?;
            if empty.is_none() {
                // The attached mount itself, to clone for the next ones
                // (a detached one cannot be cloned): reopened by path, so
                // only taken if it is still our tmpfs's root.
                let fd = root.open_path(p)?;
                let st = fstat(&fd).map_err(|e| Error::sys("fstat", p.as_str(), e))?;
                if (st.st_dev, st.st_ino) == (made.st_dev, made.st_ino) {
                    empty = Some(MountFd::from_owned(fd, "masked path"));
                }
            }
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
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::CharacterDevice || rustix::fs::major(rdev) != 1 || rustix::fs::minor(rdev) != 3 {
        return Err(Error::Path {
            path: "/dev/null".into(),
            reason: format!("is a {}, not the null device 1:3; refusing to use it to mask paths", type_name(ft)),
        });
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
/// the host tree), after making that whole tree a recursive slave: neither
/// this attach nor the later detach of the old root can propagate to the
/// host. `propagation` (`linux.rootfsPropagation`) is only validated here;
/// [`enter_root`] applies it.
pub fn attach_rootfs(rootfs: &MountFd, propagation: Option<&str>) -> Result<RootFd> {
    root_propagation(propagation)?;
    let slash = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("open", "/", e))?;
    set_attr_fd(slash.as_fd(), "/", MountAttr::empty(), MountAttr::empty(), Some(Propagation::Slave), true)?;
    rootfs.attach(slash.as_fd(), "/")?;
    let fd = rustix::io::fcntl_dupfd_cloexec(rootfs, 0).map_err(|e| Error::sys("fcntl(F_DUPFD_CLOEXEC)", "rootfs", e))?;
    Ok(RootFd::new(fd))
}

/// `linux.rootfsPropagation` parsed (`None` when unset: the rootfs stays the
/// slave [`prepare_rootfs`] made it).
fn root_propagation(propagation: Option<&str>) -> Result<Option<options::PropagationChange>> {
    match propagation {
        None | Some("") => Ok(None),
        Some(p) => options::parse("rootfsPropagation", &[p.to_string()])?
            .propagation
            .map(Some)
            .ok_or_else(|| Error::Option { dest: "linux.rootfsPropagation".into(), option: p.into(), reason: "not a propagation type" }),
    }
}

/// Make the rootfs the process's root: `fchdir(rootfs)`,
/// `pivot_root(".", ".")`, then detach the old root stacked on top.
/// With `no_pivot` (runc's --no-pivot, for ramfs roots where pivot_root is
/// impossible) the documented fallback is `chroot(".")`.
///
/// Then `linux.rootfsPropagation` is applied to the new `/` (recursively for
/// the `r` forms). Only now: pivot_root refuses a shared new root, and
/// every mount of the container exists by this point.
pub fn enter_root(root: &RootFd, no_pivot: bool, propagation: Option<&str>) -> Result<()> {
    let propagation = root_propagation(propagation)?;
    rustix::process::fchdir(root).map_err(|e| Error::sys("fchdir", "rootfs", e))?;
    if no_pivot {
        detach_host_mounts(root)?;
        rustix::process::chroot(".").map_err(|e| Error::sys("chroot", "rootfs", e))?;
    } else {
        rustix::process::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root", "rootfs", e))?;
        rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH).map_err(|e| Error::sys("umount2", "old root", e))?;
    }
    rustix::process::chdir("/").map_err(|e| Error::sys("chdir", "/", e))?;
    if let Some(p) = propagation {
        set_attr_fd(root.as_fd(), "/ (rootfsPropagation)", MountAttr::empty(), MountAttr::empty(), Some(p.kind), p.recursive)?;
    }
    Ok(())
}

/// `--no-pivot`: the mount namespace is a copy of the host's, and a chroot
/// does not remove anything from it. Before the chroot, detach every mount
/// that is neither the rootfs (with what is mounted in it) nor one of the
/// mounts it sits on (the old root cannot be removed without pivot_root):
/// the host's /proc, /sys, /dev, /tmp… are gone from the container's
/// namespace, not just out of its sight. The tree is a recursive slave
/// ([`attach_rootfs`]), so nothing propagates to the host. A mount that
/// cannot be detached (locked: a user namespace) is covered with an empty
/// read-only tmpfs when it is a directory. Last, the old root is made
/// private, so that no later host mount propagates into it.
fn detach_host_mounts(root: &RootFd) -> Result<()> {
    use rustix::fs::{statx, AtFlags, StatxFlags};
    use rustix::mount::{unmount, UnmountFlags};
    let me = statx(root, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID).map_err(|e| Error::sys("statx", "rootfs", e))?.stx_mnt_id;
    let mut left_alone: Vec<u64> = Vec::new();
    // Opened once: the host's /proc it is on goes away in the first pass.
    let path = "/proc/self/mountinfo";
    let mut file = std::fs::File::open(path).map_err(|e| Error::Path { path: path.into(), reason: e.to_string() })?;
    // Each pass detaches every candidate; another pass finds what was
    // stacked below one. Bounded: each pass removes or skips a mount.
    for _ in 0..64 {
        use std::io::{Read, Seek};
        let mut text = String::new();
        file.seek(std::io::SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| Error::Path { path: path.into(), reason: e.to_string() })?;
        let mounts: Vec<(u64, u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let id = f.next()?.parse().ok()?;
                let parent = f.next()?.parse().ok()?;
                let point = f.nth(2)?;
                Some((id, parent, unescape_mountinfo(point)))
            })
            .collect();
        let mut ancestors = Vec::new();
        let mut cur = me;
        while let Some(&(_, parent, _)) = mounts.iter().find(|m| m.0 == cur) {
            if parent == cur || ancestors.contains(&parent) || !mounts.iter().any(|m| m.0 == parent) {
                break;
            }
            ancestors.push(parent);
            cur = parent;
        }
        let candidates: Vec<&(u64, u64, String)> = mounts
            .iter()
            .filter(|m| m.0 != me && !ancestors.contains(&m.0) && ancestors.contains(&m.1))
            .filter(|m| !left_alone.contains(&m.0) && m.2 != "/")
            .collect();
        if candidates.is_empty() {
            // Nor may the host's later mounts propagate into the old root.
            let slash = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("open", "/ (old root)", e))?;
            return set_attr_fd(slash.as_fd(), "/ (old root)", MountAttr::empty(), MountAttr::empty(), Some(Propagation::Private), false);
        }
        for (id, _, point) in candidates {
            // Absolute paths still resolve from the old root here: a lookup
            // does not cross the rootfs stacked on "/" itself.
            match unmount(point.as_str(), UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
                Ok(()) => {}
                Err(Errno::INVAL | Errno::PERM) => {
                    cover_with_tmpfs(point)?;
                    left_alone.push(*id);
                }
                Err(Errno::NOENT) => left_alone.push(*id),
                Err(e) => return Err(Error::sys("umount2", format!("host mount {point} (--no-pivot)"), e)),
            }
        }
    }
    Err(Error::Path { path: "/".into(), reason: "--no-pivot: the host's mounts could not all be detached".into() })
}

/// An empty read-only tmpfs over the host directory `point` (a mount
/// [`detach_host_mounts`] cannot detach). Not a directory: left as it is.
fn cover_with_tmpfs(point: &str) -> Result<()> {
    let target = rustix::fs::open(point, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("open", format!("host mount {point} (--no-pivot)"), e))?;
    let st = fstat(&target).map_err(|e| Error::sys("fstat", point, e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(());
    }
    let ctx = FsContext::new("tmpfs")?;
    ctx.set_string("mode", "0")?;
    let m = ctx.mount(MountAttr::MOUNT_ATTR_RDONLY | MountAttr::MOUNT_ATTR_NOSUID | MountAttr::MOUNT_ATTR_NODEV | MountAttr::MOUNT_ATTR_NOEXEC)?;
    m.attach(target.as_fd(), point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_and_sysfs_need_an_ordinary_directory() {
        let d_dir = tempfile::Builder::new().prefix("fdbox-mount-procdir-").tempdir().unwrap();
        let d = d_dir.path();
        std::fs::create_dir_all(d.join("tmp/fake")).unwrap();
        std::os::unix::fs::symlink("/tmp/fake", d.join("proc")).unwrap();
        std::os::unix::fs::symlink("/nowhere", d.join("dangling")).unwrap();
        std::fs::write(d.join("file"), "").unwrap();
        let root = RootFd::new(rustix::fs::open(d, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap());
        for dest in ["/proc", "/proc/", "/./proc", "/tmp/../proc", "/dangling"] {
            let e = ordinary_dir(&root, dest, "proc").unwrap_err().to_string();
            assert!(e.contains("ordinary directory") && e.contains("symlink"), "{dest}: {e}");
        }
        assert!(ordinary_dir(&root, "/file", "sysfs").unwrap_err().to_string().contains("a regular file"));
        ordinary_dir(&root, "/tmp/fake", "proc").unwrap();
        ordinary_dir(&root, "/new/sys", "sysfs").unwrap();
        assert!(d.join("new/sys").is_dir());
        assert!(!d.join("nowhere").exists(), "a dangling symlink's target was created");
    }

    #[test]
    fn cgroup_hierarchies_of_a_hybrid_host() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                  42 27 0:39 / /mnt/other rw - cgroup2 cgroup2 rw\n";
        let h = cgroup_hierarchies(mi);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0], CgroupHierarchy { name: "cpu".into(), fstype: "cgroup".into(), options: vec!["cpu".into()], path: String::new() });
        assert_eq!(h[1].options, vec!["name=systemd".to_string()]);
        assert_eq!(h[2].fstype, "cgroup2");
        let mut h = h;
        assign_cgroup_paths(&mut h, "9:name=systemd:/fdbox/a\n1:cpu:/fdbox/a\n0::/fdbox/a\n");
        assert!(h.iter().all(|x| x.path == "/fdbox/a"), "{h:?}");
    }

    #[test]
    fn fresh_attrs_keep_atime_mode() {
        let o = options::parse("/d", &["nosuid".into(), "strictatime".into(), "ro".into()]).unwrap();
        let a = fresh_attrs(&o);
        assert!(a.contains(A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_STRICTATIME | A::MOUNT_ATTR_RDONLY));
        let o = options::parse("/d", &["ro".into(), "rw".into()]).unwrap();
        assert!(!fresh_attrs(&o).contains(A::MOUNT_ATTR_RDONLY));
    }

    fn entry(dest: &str, typ: Option<&str>, options: &[&str]) -> MountEntry {
        MountEntry {
            destination: dest.into(),
            typ: typ.map(str::to_string),
            source: Some("src".into()),
            options: options.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn destinations_must_be_absolute() {
        let e = entry("tmp/x", Some("tmpfs"), &[]).parsed().unwrap_err();
        assert!(e.to_string().contains("tmp/x") && e.to_string().contains("absolute"), "{e}");
        assert!(entry("", Some("tmpfs"), &[]).parsed().is_err());
        assert!(entry("/tmp/x", Some("tmpfs"), &[]).parsed().is_ok());
    }

    #[test]
    fn host_side_entries() {
        assert!(entry("/a", Some("bind"), &[]).is_host_side().unwrap());
        assert!(entry("/a", None, &["rbind"]).is_host_side().unwrap());
        // `bind` on any type is a bind.
        assert!(entry("/a", Some("tmpfs"), &["bind"]).is_host_side().unwrap());
        assert!(entry("/a", Some("overlay"), &["lowerdir=l"]).is_host_side().unwrap());
        assert!(!entry("/a", Some("tmpfs"), &["size=1m"]).is_host_side().unwrap());
        assert!(!entry("/proc", Some("proc"), &[]).is_host_side().unwrap());
    }

    #[test]
    fn sources_in_root() {
        let earlier = ["/proc", "/data"];
        let f = |src: &str| source_in_root(src, "/b", "rootfs", &earlier);
        assert_eq!(f("/b/rootfs/data/sub").as_deref(), Some("/data/sub"));
        assert_eq!(f("rootfs/data").as_deref(), Some("/data"));
        assert_eq!(f("/b/rootfs/./data/../data/x").as_deref(), Some("/data/x"));
        // Not under an earlier mount, not in the rootfs, or only sharing a prefix of a name.
        assert_eq!(f("/b/rootfs/etc"), None);
        assert_eq!(f("/b/rootfs/database"), None);
        assert_eq!(f("/b/rootfsx/data"), None);
        assert_eq!(f("/data"), None);
        assert_eq!(f("/b/rootfs/../rootfs2/data"), None);
        assert_eq!(source_in_root("/srv/data", "/b", "/", &["/srv"]).as_deref(), Some("/srv/data"));
    }

    #[test]
    fn root_propagation_values() {
        assert_eq!(root_propagation(None).unwrap(), None);
        assert_eq!(root_propagation(Some("")).unwrap(), None);
        let p = root_propagation(Some("rshared")).unwrap().unwrap();
        assert_eq!((p.kind, p.recursive), (Propagation::Shared, true));
        let p = root_propagation(Some("private")).unwrap().unwrap();
        assert_eq!((p.kind, p.recursive), (Propagation::Private, false));
        assert!(root_propagation(Some("ro")).is_err());
        assert!(root_propagation(Some("sideways")).is_err());
    }

    #[test]
    fn parents() {
        assert_eq!(split_parent("/dev/null"), ("/dev", "null"));
        assert_eq!(split_parent("/x"), ("/", "x"));
        assert_eq!(split_parent("/dev/net/tun"), ("/dev/net", "tun"));
    }
}

/// The overlay mounted at the directory `dir` refers to, rebuilt from its
/// layers with each layer idmapped onto `userns` (overlayfs itself cannot
/// be idmapped; its layers can). The layers are read from mountinfo of the
/// mount `dir` is the root of, opened with `open_tree`, idmapped, and handed
/// to a new overlay with `fsconfig(FSCONFIG_SET_FD)`. `Ok(None)` when `dir`
/// is not the root of an overlay mount.
/// `owner` is the host (uid, gid) of the container's root: the overlay is
/// created with those filesystem ids, so its own writes through the
/// idmapped upper layer land as the on-disk owner of the layers.
pub fn idmapped_overlay(dir: BorrowedFd<'_>, userns: BorrowedFd<'_>, mountinfo: &str, owner: (u32, u32)) -> Result<Option<MountFd>> {
    let st = rustix::fs::statx(dir, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::MNT_ID)
        .map_err(|e| Error::sys("statx", "rootfs", e))?;
    let Some(opts) = overlay_options(mountinfo, st.stx_mnt_id) else { return Ok(None) };
    let layer = |key: &str, path: &str| -> Result<MountFd> {
        let m = MountFd::clone_tree(rustix::fs::CWD, path, false)
            .map_err(|e| Error::Path { path: path.into(), reason: format!("overlay {key} of the rootfs: {e}") })?;
        m.idmap(userns, false)?;
        Ok(m)
    };
    let ctx = FsContext::new("overlay")?;
    ctx.set_string("source", "overlay")?;
    let mut lowers = 0;
    let mut upper = None;
    let mut work = None;
    // The detached layer mounts must stay open until the overlay exists:
    // closing one dissolves it, and overlayfs clones its layers at create.
    let mut keep: Vec<MountFd> = Vec::new();
    for (k, v) in &opts {
        match k.as_str() {
            "lowerdir" => {
                for l in v.split(':').filter(|l| !l.is_empty()) {
                    let m = layer("lowerdir", l)?;
                    ctx.set_fd("lowerdir+", m.as_fd()).map_err(|e| match e.errno() {
                        Some(errno @ (Errno::INVAL | Errno::BADF | Errno::OPNOTSUPP)) => Error::Path {
                            path: "rootfs".into(),
                            reason: format!(
                                "an overlay rootfs in a user namespace is rebuilt from idmapped layer mounts, \
                                 which needs overlayfs to take layers as fds (Linux 6.13+); this kernel refused \
                                 fsconfig(FSCONFIG_SET_FD, lowerdir+): {}",
                                crate::describe(errno)
                            ),
                        },
                        _ => e,
                    })?;
                    keep.push(m);
                    lowers += 1;
                }
            }
            "upperdir" => upper = Some(v.as_str()),
            "workdir" => work = Some(v.as_str()),
            _ => {}
        }
    }
    if lowers == 0 {
        return Err(Error::Path { path: "rootfs".into(), reason: "overlay without lowerdir in mountinfo".into() });
    }
    if let (Some(u), Some(w)) = (upper, work) {
        // overlayfs wants upperdir and workdir on one mount: idmap their
        // common parent once and open both below it.
        let base = common_parent(u, w);
        let m = layer("upperdir", base)?;
        let below = |p: &str| -> Result<OwnedFd> {
            let rel = p[base.len()..].trim_start_matches('/');
            rustix::fs::openat(&m, if rel.is_empty() { "." } else { rel }, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::sys("openat", p, e))
        };
        ctx.set_fd("upperdir", below(u)?.as_fd())?;
        ctx.set_fd("workdir", below(w)?.as_fd())?;
        keep.push(m);
    }
    let m = crate::sys::with_fs_ids(owner.0, owner.1, || ctx.mount(MountAttr::empty()))
        .map_err(|e| Error::sys("setfsuid", format!("{}:{}", owner.0, owner.1), e))??;
    drop(keep);
    m.set_attr(MountAttr::empty(), MountAttr::empty(), Some(Propagation::Private), true)?;
    Ok(Some(m))
}

/// The longest common directory of two absolute paths.
fn common_parent<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        if x == '/' {
            end = i;
        }
    }
    let full = a.len().min(b.len());
    if a.len() == full && b[full..].starts_with('/') || b.len() == full && a[full..].starts_with('/') {
        end = full;
    }
    if end == 0 {
        "/"
    } else {
        &a[..end]
    }
}

/// The `key=value` super options of the overlay mount with id `mnt_id`,
/// unescaped (mountinfo writes space, tab, newline and `\` as `\ooo`).
fn overlay_options(mountinfo: &str, mnt_id: u64) -> Option<Vec<(String, String)>> {
    let line = mountinfo.lines().find(|l| l.split(' ').next().and_then(|id| id.parse::<u64>().ok()) == Some(mnt_id))?;
    let (_, right) = line.split_once(" - ")?;
    let mut r = right.split(' ');
    if r.next()? != "overlay" {
        return None;
    }
    let _source = r.next();
    let opts = r.next()?;
    Some(
        opts.split(',')
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape_mountinfo(v)))
            .collect(),
    )
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn overlay_options_from_mountinfo() {
        let mi = "30 27 0:40 / /b/rootfs rw,relatime - overlay overlay rw,lowerdir=/l1:/l\\0402,upperdir=/u,workdir=/w\n\
                  31 27 0:41 / /x rw - tmpfs tmpfs rw\n";
        let o = overlay_options(mi, 30).unwrap();
        assert_eq!(o[0], ("lowerdir".into(), "/l1:/l 2".into()));
        assert_eq!(o[1], ("upperdir".into(), "/u".into()));
        assert!(overlay_options(mi, 31).is_none());
        assert!(overlay_options(mi, 99).is_none());
    }

    #[test]
    fn common_parents() {
        assert_eq!(common_parent("/t/x/upper", "/t/x/work"), "/t/x");
        assert_eq!(common_parent("/a/upper", "/b/work"), "/");
        assert_eq!(common_parent("/t/up", "/t/upper2"), "/t");
    }
}

/// The name of the filesystem a mount fd is on (`fstatfs` magic), for
/// errors such as "the kernel cannot idmap a tmpfs mount".
pub fn fs_type_name(fd: BorrowedFd<'_>) -> String {
    let Ok(st) = rustix::fs::fstatfs(fd) else { return "unknown".into() };
    let name = match st.f_type as i64 {
        0x0102_1994 => "tmpfs",
        0xEF53 => "ext4",
        0x794c_7630 => "overlay",
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x6367_7270 => "cgroup2",
        0x27e0eb => "cgroup",
        0x1cd1 => "devpts",
        0x1980_0202 => "mqueue",
        0x6573_5546 => "fuse",
        0x858458f6 => "ramfs",
        other => return format!("filesystem 0x{other:x}"),
    };
    name.into()
}

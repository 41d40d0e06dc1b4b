//! cgroups for fdbox: one interface over cgroup v2, v1 and hybrid hosts.
//!
//! A container's cgroup is held as directory fds — one per v1 hierarchy
//! (plus the cgroup2 directory on a hybrid host), or one cgroup2 fd — and
//! every control file is reached with `openat` relative to them. Only the
//! hierarchy mount points are opened by absolute path, once.
//!
//! On pure v2 the runtime places processes at birth with
//! `clone3(CLONE_INTO_CGROUP)` using [`Cgroup::clone_into_fd`]; elsewhere it
//! calls [`Cgroup::attach`] before the process runs container code. Every
//! container gets a fresh cgroup directory: since Linux 6.12, once
//! `cgroup.kill` was written to a cgroup, children placed into it with
//! CLONE_INTO_CGROUP die at birth.
//!
//! ```no_run
//! # fn main() -> fdbox_cgroups::Result<()> {
//! use fdbox_cgroups::{detect, Cgroup};
//! let cg = Cgroup::create(detect()?, Some("/fdbox/demo"), "demo", None)?;
//! // … clone3(CLONE_INTO_CGROUP, cg.clone_into_fd()) or cg.attach(pid) …
//! let recorded = cg.path().to_string(); // into state.json
//! let again = Cgroup::open(cg.layout(), &recorded)?;
//! again.destroy()?;
//! # Ok(()) }
//! ```

pub mod devices;
mod dir;
mod error;
mod mounts;
mod oom;
mod path;
mod plan;
pub mod stats;
mod sys;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread::sleep;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::process::PidfdFlags;
use serde::{Deserialize, Serialize};

pub use rustix::process::{Pid, Signal};

use crate::dir::{keyed, read_fd};
pub use crate::dir::CgroupDir;
pub use crate::mounts::{read_proc, visible as visible_mountinfo};
pub use crate::error::{errno_name, Error, Result};
pub use crate::path::DEFAULT_PARENT;
use crate::plan::{Avail, Op, Target};
pub use crate::plan::{blkio_to_io_weight, ignored_resources, shares_to_weight, swap_to_v2, Version};
pub use crate::stats::Stats;
pub use crate::oom::OomWatcher;

/// How long freeze/thaw may take before it is an error.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `destroy` retries `rmdir` while the last processes exit.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(3);
/// How deep `pids` and `destroy` walk into cgroups a container made.
const MAX_DEPTH: usize = 32;
/// How often `create` starts over when a parent directory vanished under it.
const PARENT_RACE_RETRIES: u32 = 5;

/// The cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Pure cgroup v2.
    Unified,
    /// Controllers on v1 hierarchies plus a cgroup2 mount (usually at
    /// /sys/fs/cgroup/unified) that tracks processes and may hold some
    /// controllers (hugetlb on the development host).
    Hybrid,
    /// Pure cgroup v1.
    Legacy,
}

/// The layout of this host, from /proc/self/mountinfo: a cgroup2 mount
/// only is `Unified`; v1 hierarchies with controllers only is `Legacy`;
/// both is `Hybrid`.
pub fn detect() -> Result<Layout> {
    mounts::layout_of(&mounts::read_mountinfo()?)
}

/// [`detect`] from the text of /proc/self/mountinfo the caller read
/// already (a runtime that reads it for other reasons too reads it once).
pub fn detect_in(mountinfo: &str) -> Result<Layout> {
    mounts::layout_of(&mounts::parse_mountinfo(&visible_mountinfo(mountinfo)))
}

/// One hierarchy's view of the container's cgroup.
#[derive(Debug)]
struct Hier {
    /// `memory`, `cpu,cpuacct`, `name=systemd`; `""` for cgroup2.
    key: String,
    /// The v1 controllers of this hierarchy (empty for cgroup2).
    controllers: Vec<String>,
    /// The hierarchy's root (the mount point).
    root: CgroupDir,
    /// The cgroup's path relative to `root`, e.g. `fdbox/abc`.
    rel: String,
    /// The cgroup itself.
    dir: CgroupDir,
    /// Directories this object created, outermost first (the cgroup last).
    created: Vec<String>,
}

impl Hier {
    fn is_v2(&self) -> bool {
        self.key.is_empty()
    }
}

fn hier_name(key: &str) -> &str {
    if key.is_empty() {
        "cgroup2"
    } else {
        key
    }
}

struct Root {
    mount: mounts::Mount,
    dir: CgroupDir,
}

/// Open the root of every hierarchy the layout uses and learn which
/// controllers they offer.
fn open_roots(layout: Layout, mountinfo: &str) -> Result<(Vec<Root>, Avail)> {
    let selected = mounts::select(&mounts::parse_mountinfo(&visible_mountinfo(mountinfo)), layout)?;
    let mut roots = Vec::with_capacity(selected.len());
    let mut avail = Avail::default();
    for m in selected {
        let key = m.key();
        let dir = CgroupDir::open_root(&m.mountpoint, m.is_v2(), format!("{}:/", hier_name(&key)))?;
        match &m.controllers {
            None => {
                let c = dir.read("cgroup.controllers")?;
                avail.v2 = Some(c.split_whitespace().map(str::to_string).collect());
            }
            Some(c) => avail.v1.extend(c.iter().filter(|x| !x.starts_with("name=")).cloned()),
        }
        roots.push(Root { mount: m, dir });
    }
    Ok((roots, avail))
}

/// A directory being prepared by [`Cgroup::create`].
struct Pending {
    key: String,
    controllers: Vec<String>,
    root: CgroupDir,
    comps: Vec<String>,
    created: Vec<String>,
    parent: Option<CgroupDir>,
    existing: Option<CgroupDir>,
    leaf: Option<CgroupDir>,
}

impl Pending {
    fn label(&self, rel: &str) -> String {
        format!("{}:/{rel}", hier_name(&self.key))
    }

    fn has_cpuset(&self) -> bool {
        self.controllers.iter().any(|c| c == "cpuset")
    }

    /// Remove what was created, innermost first (failure cleanup).
    fn undo(&self) {
        for rel in self.created.iter().rev() {
            let _ = self.root.rmdir(rel);
        }
    }

    /// The hierarchy's part of the cgroup, once its leaf is made.
    fn into_hier(self) -> Option<Hier> {
        let rel = self.comps.join("/");
        let dir = self.leaf?;
        Some(Hier {
            key: self.key,
            controllers: self.controllers,
            root: self.root,
            rel,
            dir,
            created: self.created,
        })
    }

    /// Forget the progress of a failed [`make_fresh`] (after [`Pending::undo`]).
    fn reset(&mut self) {
        self.created.clear();
        self.parent = None;
        self.existing = None;
        self.leaf = None;
    }
}

/// A new cgroup directory in a v1 cpuset hierarchy has empty cpuset.cpus
/// and cpuset.mems, and no process can join it until they are set: copy
/// them from the parent, as runc does.
fn copy_cpuset(parent: &CgroupDir, child: &CgroupDir) -> Result<()> {
    for f in ["cpuset.cpus", "cpuset.mems"] {
        if !child.read(f)?.trim().is_empty() {
            continue;
        }
        let v = parent.read(f)?;
        let v = v.trim();
        if v.is_empty() {
            return Err(Error::Unsupported(format!(
                "{f} of {} is empty, so its new child cgroup cannot get a cpuset",
                parent.label()
            )));
        }
        child.write(f, v)?;
    }
    Ok(())
}

/// How long an RT write the kernel refuses is retried.
const RT_RETRY: Duration = Duration::from_millis(500);
/// The kernel compares RT bandwidth as `(runtime << 20) / period`.
const RT_SHIFT: u32 = 20;

/// The kernel's RT bandwidth ratio; -1 (unlimited) is the whole period.
fn rt_ratio(runtime: i64, period: u64) -> u128 {
    if period == 0 {
        return 0;
    }
    let r = if runtime < 0 { u128::from(period) } else { runtime as u128 };
    (r << RT_SHIFT) / u128::from(period)
}

fn is_inval(e: &Error) -> bool {
    matches!(e, Error::Write { errno, .. } if *errno == Errno::INVAL)
}

/// cpu.rt_period_us and cpu.rt_runtime_us in runc's order: the period
/// first; if the kernel refuses it and a runtime comes too, the runtime
/// then the period (a shorter period below the old runtime is refused).
fn write_rt(d: &CgroupDir, period: u64, runtime: i64) -> Result<()> {
    let mut retry_period = false;
    if period != 0 {
        match d.write("cpu.rt_period_us", &period.to_string()) {
            Err(e) if is_inval(&e) && runtime != 0 => retry_period = true,
            r => r?,
        }
    }
    if runtime != 0 {
        d.write("cpu.rt_runtime_us", &runtime.to_string())?;
        if retry_period {
            d.write("cpu.rt_period_us", &period.to_string())?;
        }
    }
    Ok(())
}

/// Whether `d` is frozen, by itself or by a parent: v1 `freezer.state`
/// other than THAWED (FREEZING too), cgroup2 `cgroup.events` frozen 1 or
/// `cgroup.freeze` 1. Hierarchies without a freezer are never frozen.
fn frozen(d: &CgroupDir, controllers: &[String], v2: bool) -> Result<bool> {
    if v2 {
        if !d.exists("cgroup.freeze") {
            return Ok(false);
        }
        return Ok(d.read("cgroup.freeze")?.trim() == "1" || keyed(&d.read("cgroup.events")?, "frozen") == Some(1));
    }
    if !controllers.iter().any(|c| c == "freezer") {
        return Ok(false);
    }
    Ok(d.read("freezer.state")?.trim() != "THAWED")
}

/// Refuse a frozen cgroup (runc: "container's cgroup unexpectedly frozen"):
/// the container's processes would hang in it.
fn refuse_frozen(p: &Pending, d: &CgroupDir, path: &str) -> Result<()> {
    if frozen(d, &p.controllers, p.key.is_empty())? {
        return Err(Error::Frozen { path: path.to_string(), label: d.label().to_string() });
    }
    Ok(())
}

/// Create the parents (as needed) and a fresh leaf in every hierarchy.
/// Leaves that exist are checked for processes in *all* hierarchies before
/// any is replaced, so an in-use cgroup is reported without side effects.
fn make_fresh(pend: &mut [Pending], path: &str) -> Result<()> {
    let openat = |label: String| move |e| Error::sys("openat2", label, e);
    for p in pend.iter_mut() {
        let n = p.comps.len();
        let mut parent = p.root.open_sub(".", p.label("")).map_err(openat(p.label("")))?;
        for i in 0..n.saturating_sub(1) {
            let rel = p.comps[..=i].join("/");
            let made = parent.mkdir(&p.comps[i])?;
            if made {
                p.created.push(rel.clone());
            }
            let child = parent.open_sub(&p.comps[i], p.label(&rel)).map_err(openat(p.label(&rel)))?;
            // Also a parent someone else made: a concurrent create may
            // not have filled it yet (copy_cpuset only fills empty files,
            // with the values it would get anyway).
            if p.has_cpuset() {
                copy_cpuset(&parent, &child)?;
            }
            parent = child;
        }
        let leaf_rel = p.comps.join("/");
        let name = p.comps.last().map(String::as_str).unwrap_or_default();
        match parent.open_sub(name, p.label(&leaf_rel)) {
            Ok(d) => p.existing = Some(d),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(openat(p.label(&leaf_rel))(e)),
        }
        p.parent = Some(parent);
    }
    for p in pend.iter() {
        if let Some(d) = &p.existing {
            refuse_frozen(p, d, path)?;
            let pids = d.procs_recursive(MAX_DEPTH)?;
            if !pids.is_empty() {
                return Err(Error::InUse {
                    path: path.to_string(),
                    reason: format!("{} process(es) in {}", pids.len(), d.label()),
                });
            }
        }
    }
    for p in pend.iter_mut() {
        let leaf_rel = p.comps.join("/");
        let label = p.label(&leaf_rel);
        if p.existing.take().is_some() {
            // Empty but not ours: replace it, so nothing (a cgroup.kill,
            // old limits, attached programs) carries over.
            p.root.rmdir(&leaf_rel).map_err(|e| match e {
                Errno::BUSY | Errno::NOTEMPTY => Error::InUse {
                    path: path.to_string(),
                    reason: format!("{label} has child cgroups"),
                },
                e => Error::sys("unlinkat", label.clone(), e),
            })?;
        }
        let parent = p
            .parent
            .take()
            .ok_or_else(|| Error::sys("mkdirat", label.clone(), Errno::NOENT))?;
        let name = p.comps.last().map(String::as_str).unwrap_or_default();
        if !parent.mkdir(name)? {
            return Err(Error::InUse {
                path: path.to_string(),
                reason: format!("{label} was created concurrently by someone else"),
            });
        }
        p.created.push(leaf_rel.clone());
        let leaf = parent.open_sub(name, label.clone()).map_err(openat(label))?;
        // frozen by a parent
        refuse_frozen(p, &leaf, path)?;
        if p.has_cpuset() {
            copy_cpuset(&parent, &leaf)?;
        }
        p.leaf = Some(leaf);
    }
    Ok(())
}

/// Make the directories of `pend` fresh, starting over when a parent
/// vanished under us; on failure nothing of them is left.
fn make_all_fresh(pend: &mut [Pending], path: &str) -> Result<()> {
    let mut tries = 0;
    while let Err(e) = make_fresh(pend, path) {
        pend.iter().for_each(Pending::undo);
        // ENOENT (ENODEV in its files) on the way down: a parent
        // vanished after our mkdir (EEXIST) or open, removed by a
        // concurrent create that had made it and then failed. Start over.
        if tries == PARENT_RACE_RETRIES || !matches!(e.errno(), Some(Errno::NOENT | Errno::NODEV)) {
            return Err(e);
        }
        tries += 1;
        pend.iter_mut().for_each(Pending::reset);
    }
    if pend.iter().any(|p| p.leaf.is_none()) {
        pend.iter().for_each(Pending::undo);
        return Err(Error::NoHierarchy("a cgroup directory was not created".into()));
    }
    Ok(())
}

/// A cgroup half made by [`Cgroup::begin_in`]: its cgroup2 directory
/// exists, its v1 directories and limits not yet.
pub struct Creating {
    /// What is made so far.
    cg: Cgroup,
    /// The v1 hierarchies still to make.
    later: Vec<Pending>,
    /// The limits, the device rules and whether the bundle asked for
    /// devices, while not yet applied.
    limits: Option<(Vec<Op>, Vec<devices::Rule>, bool)>,
}

impl Creating {
    /// The cgroup2 directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.cg.clone_into_fd()
    }

    /// The path [`Cgroup::path`] will return.
    pub fn path(&self) -> &str {
        self.cg.path()
    }

    /// Make the v1 directories, then apply the limits and the device
    /// allowlist everywhere. On failure the error comes with what exists
    /// of the cgroup, for the caller to [`Cgroup::destroy`] once nothing
    /// runs in it any more (an init born in the cgroup2 directory).
    pub fn finish(mut self) -> std::result::Result<Cgroup, (Error, Cgroup)> {
        let mut cg = self.cg;
        if let Err(e) = make_all_fresh(&mut self.later, cg.path()) {
            return Err((e, cg));
        }
        cg.hiers.extend(self.later.into_iter().filter_map(Pending::into_hier));
        if let Some((ops, rules, wanted)) = self.limits.take() {
            if let Err(e) = cg.apply(&ops, Some(&rules), wanted) {
                return Err((e, cg));
            }
        }
        Ok(cg)
    }

    /// Give up: remove what was made (once nothing runs in it).
    pub fn abandon(self) -> Result<()> {
        self.cg.destroy()
    }
}

/// A cgroup planned by [`Cgroup::plan_in`]: its path resolved in every
/// hierarchy and the bundle's resources checked; no directory made yet.
pub struct Planned {
    layout: Layout,
    path: String,
    /// The hierarchies [`Planned::begin`] makes.
    now: Vec<Pending>,
    /// The v1 hierarchies left to [`Creating::finish`].
    later: Vec<Pending>,
    avail: Avail,
    /// The limits, the device rules and whether the bundle asked for devices.
    limits: (Vec<Op>, Vec<devices::Rule>, bool),
}

impl Planned {
    /// The path [`Cgroup::path`] will return, for [`Cgroup::open`] or
    /// [`Cgroup::open_remains`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Make the directories [`Cgroup::begin_in`] makes (on pure v2 the
    /// whole cgroup, limits included). On failure nothing of them is left.
    pub fn begin(self) -> Result<Creating> {
        let Planned { layout, path, mut now, later, avail, limits } = self;
        make_all_fresh(&mut now, &path)?;
        let cg = Cgroup {
            layout,
            path,
            hiers: now.into_iter().filter_map(Pending::into_hier).collect(),
            avail,
        };
        if layout != Layout::Unified {
            return Ok(Creating { cg, later, limits: Some(limits) });
        }
        // Pure v2: nothing is left for later, the limits included (before
        // anyone is born in it).
        let (ops, rules, wanted) = limits;
        let res = (|| {
            // as runc: every controller the root offers, best effort
            let all = cg.avail.v2.clone().unwrap_or_default();
            cg.enable_v2(&all, false)?;
            cg.apply(&ops, Some(&rules), wanted)
        })();
        match res {
            Ok(()) => Ok(Creating { cg, later, limits: None }),
            Err(e) => {
                // the original error matters more than a failed cleanup
                let _ = cg.destroy();
                Err(e)
            }
        }
    }
}

/// The `tasks` files of a cgroup's v1 hierarchies, open for writing, from
/// [`Cgroup::self_attach`].
///
/// A process moves itself in by writing `0` (itself) to each. The kernel
/// moves a single thread that way without taking the global threadgroup
/// lock for writing, which a write of a pid to `cgroup.procs` takes and
/// which waits for an RCU grace period when nothing else holds it: 5 to
/// 20 ms on the development host for the first `cgroup.procs` write after
/// a quiet moment, against 0.02 ms per `tasks` write. The caller must be
/// single-threaded, so that its one thread is the whole process: a child
/// of `clone3` run by a single-threaded runtime is.
#[derive(Debug)]
pub struct SelfAttach {
    files: Vec<(String, OwnedFd)>,
}

impl SelfAttach {
    /// Nothing to join (pure v2: `CLONE_INTO_CGROUP` places the child).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The fds this holds (for a child that closes every other fd).
    pub fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.files.iter().map(|(_, fd)| fd.as_fd()).collect()
    }

    /// The files' names (for messages) and fds, to hand to another
    /// process (SCM_RIGHTS); [`SelfAttach::from_parts`] puts them together.
    pub fn into_parts(self) -> (Vec<String>, Vec<OwnedFd>) {
        self.files.into_iter().unzip()
    }

    /// The inverse of [`SelfAttach::into_parts`]: names and fds in order.
    pub fn from_parts(names: Vec<String>, fds: Vec<OwnedFd>) -> SelfAttach {
        SelfAttach { files: names.into_iter().zip(fds).collect() }
    }

    /// Move the calling (single-threaded) process into the cgroup in every
    /// v1 hierarchy. Consumes the fds: nothing of the container keeps them.
    pub fn join(self) -> Result<()> {
        for (file, fd) in self.files {
            let err = |errno| Error::Write {
                file: file.clone(),
                value: "0".into(),
                errno,
            };
            loop {
                match rustix::io::write(&fd, b"0") {
                    Err(Errno::INTR) => continue,
                    Ok(1) => break,
                    Ok(_) => return Err(err(Errno::IO)),
                    Err(e) => return Err(err(e)),
                }
            }
        }
        Ok(())
    }
}

enum Freezer<'a> {
    V1(&'a CgroupDir),
    V2(&'a CgroupDir),
}

/// A container's cgroup, held as directory fds.
#[derive(Debug)]
pub struct Cgroup {
    layout: Layout,
    path: String,
    hiers: Vec<Hier>,
    avail: Avail,
}

impl Cgroup {
    /// Create the container's cgroup and apply `resources`.
    ///
    /// `cgroups_path` is `linux.cgroupsPath`: absolute from each hierarchy
    /// root; relative below the runtime's own cgroup (v1, and the cgroup2
    /// directory of a hybrid host) or below its parent (pure v2), as runc;
    /// absent or empty: `/fdbox/<id>`. `..` anywhere is refused.
    ///
    /// The cgroup directory is always fresh: an existing one with processes
    /// (in it or below it) is "already in use"; an existing empty one is
    /// removed and made again. Missing parents are created and removed
    /// again by [`Cgroup::destroy`] if empty. The device allowlist is always
    /// applied (deny all, the spec's rules, runc's default devices). On any
    /// error nothing is left behind.
    pub fn create(
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        Self::create_in(&read_proc("/proc/self/mountinfo")?, layout, cgroups_path, id, resources)
    }

    /// [`Cgroup::create`] with the text of /proc/self/mountinfo the caller
    /// read already.
    pub fn create_in(
        mountinfo: &str,
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        let creating = Self::plan_impl(mountinfo, layout, cgroups_path, id, resources, false)?.begin()?;
        creating.finish().map_err(|(e, made)| {
            // the original error matters more than a failed cleanup
            let _ = made.destroy();
            e
        })
    }

    /// [`Cgroup::create_in`] in two steps, for a runtime that has its init
    /// born in the cgroup2 directory (`clone3(CLONE_INTO_CGROUP)`) but
    /// wants the v1 hierarchies, a directory each, made while the init
    /// already sets itself up: this step checks everything the bundle
    /// asks for and makes the cgroup2 directory (pure v2: the whole
    /// cgroup, limits included); [`Creating::finish`] makes the rest.
    ///
    /// An existing empty cgroup2 directory may then be replaced before a
    /// v1 directory is found in use (the one-step create checks every
    /// hierarchy first).
    pub fn begin_in(
        mountinfo: &str,
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Creating> {
        Self::plan_in(mountinfo, layout, cgroups_path, id, resources)?.begin()
    }

    /// The first half of [`Cgroup::begin_in`]: resolve the path and check
    /// what the bundle asks for, making nothing yet, so that a runtime can
    /// record [`Planned::path`] (to undo a create killed half-way) before
    /// [`Planned::begin`] makes the first directory.
    pub fn plan_in(
        mountinfo: &str,
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Planned> {
        Self::plan_impl(mountinfo, layout, cgroups_path, id, resources, true)
    }

    /// `split`: only the cgroup2 directory at [`Planned::begin`], the v1
    /// ones in [`Creating::finish`]; else every directory at once.
    fn plan_impl(
        mountinfo: &str,
        layout: Layout,
        cgroups_path: Option<&str>,
        id: &str,
        resources: Option<&LinuxResources>,
        split: bool,
    ) -> Result<Planned> {
        let spec = path::parse(cgroups_path, id)?;
        let (roots, avail) = open_roots(layout, mountinfo)?;
        // Check everything the bundle asks for before touching the tree.
        let ops = match resources {
            Some(r) => plan::plan(r, &avail)?,
            None => Vec::new(),
        };
        let spec_rules = resources.and_then(|r| r.devices().as_deref()).unwrap_or(&[]);
        let rules = devices::rules(spec_rules)?;
        let own = match spec {
            path::Spec::Relative(_) => mounts::read_own_cgroups()?,
            path::Spec::Absolute(_) => Vec::new(),
        };
        let mut resolved = Vec::with_capacity(roots.len());
        let mut now = Vec::with_capacity(roots.len());
        let mut later = Vec::with_capacity(roots.len());
        for r in roots {
            let key = r.mount.key();
            let own_path = own.iter().find(|(k, _)| *k == key).map(|(_, p)| p.as_str());
            let p = path::resolve_one(
                &spec,
                &path::Base {
                    key: &key,
                    mount_root: &r.mount.root,
                    own: own_path,
                    parent_of_own: layout == Layout::Unified,
                },
            )?;
            let pending = Pending {
                key: key.clone(),
                controllers: r.mount.controllers.clone().unwrap_or_default(),
                root: r.dir,
                comps: path::components(&p)?,
                created: Vec::new(),
                parent: None,
                existing: None,
                leaf: None,
            };
            if split && !r.mount.is_v2() {
                later.push(pending);
            } else {
                now.push(pending);
            }
            resolved.push((key, p));
        }
        Ok(Planned {
            layout,
            path: path::Resolved(resolved).encode(),
            now,
            later,
            avail,
            limits: (ops, rules, !spec_rules.is_empty()),
        })
    }

    /// Open an existing cgroup by the path [`Cgroup::path`] returned.
    pub fn open(layout: Layout, resolved_path: &str) -> Result<Cgroup> {
        Self::open_impl(layout, resolved_path, false)
    }

    /// [`Cgroup::open`] of a cgroup that may exist in some hierarchies only
    /// (or in none): what is left of a create that was killed half-way,
    /// for [`Cgroup::kill_all`] and [`Cgroup::destroy`].
    pub fn open_remains(layout: Layout, resolved_path: &str) -> Result<Cgroup> {
        Self::open_impl(layout, resolved_path, true)
    }

    fn open_impl(layout: Layout, resolved_path: &str, remains: bool) -> Result<Cgroup> {
        let (roots, avail) = open_roots(layout, &read_proc("/proc/self/mountinfo")?)?;
        let mut hiers = Vec::with_capacity(roots.len());
        for r in roots {
            let key = r.mount.key();
            let p = path::Resolved::decode_for(resolved_path, &key)?;
            let rel = p.trim_start_matches('/').to_string();
            let label = format!("{}:{p}", hier_name(&key));
            let dir = match r.dir.open_sub(&rel, label.clone()) {
                Ok(d) => d,
                Err(Errno::NOENT) if remains => continue,
                Err(e) => return Err(Error::sys("openat2", label, e)),
            };
            hiers.push(Hier {
                key,
                controllers: r.mount.controllers.unwrap_or_default(),
                root: r.dir,
                rel,
                dir,
                created: Vec::new(),
            });
        }
        Ok(Cgroup {
            layout,
            path: resolved_path.to_string(),
            hiers,
            avail,
        })
    }

    /// The layout this cgroup was created or opened with.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The resolved path to record (e.g. in state.json) for
    /// [`Cgroup::open`]: `/fdbox/<id>`, or per-hierarchy lines when a
    /// relative cgroupsPath resolved differently per hierarchy.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The cgroup2 directory for `clone3(CLONE_INTO_CGROUP)`: on pure v2,
    /// and on a hybrid host for its cgroup2 hierarchy (the v1 hierarchies
    /// then need [`Cgroup::self_attach`] or [`Cgroup::attach`]).
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2_dir().map(AsFd::as_fd)
    }

    /// What a process needs to move itself into the cgroup's v1
    /// hierarchies ([`SelfAttach::join`]); empty on pure v2. Open it before
    /// `clone3(CLONE_INTO_CGROUP, `[`Cgroup::clone_into_fd`]`)`, and let
    /// the child join.
    pub fn self_attach(&self) -> Result<SelfAttach> {
        let mut files = Vec::new();
        for h in self.hiers.iter().filter(|h| !h.is_v2()) {
            let fd = h.dir.open_file("tasks", OFlags::WRONLY).map_err(|errno| Error::Write {
                file: h.dir.name_of("tasks"),
                value: "0".into(),
                errno,
            })?;
            files.push((h.dir.name_of("tasks"), fd));
        }
        Ok(SelfAttach { files })
    }

    /// Move a process (its whole thread group) into the cgroup in every
    /// hierarchy by writing `cgroup.procs`.
    pub fn attach(&self, pid: Pid) -> Result<()> {
        let v = pid.as_raw_pid().to_string();
        for h in &self.hiers {
            h.dir.write("cgroup.procs", &v)?;
        }
        Ok(())
    }

    pub(crate) fn v1_dir(&self, ctrl: &str) -> Option<&CgroupDir> {
        self.hiers
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == ctrl))
            .map(|h| &h.dir)
    }

    pub(crate) fn v2_dir(&self) -> Option<&CgroupDir> {
        self.hiers.iter().find(|h| h.is_v2()).map(|h| &h.dir)
    }

    fn v2_hier(&self) -> Option<&Hier> {
        self.hiers.iter().find(|h| h.is_v2())
    }

    /// Enable `ctrls` in `cgroup.subtree_control` of every ancestor of the
    /// cgroup2 directory (the root included), where not yet enabled.
    /// `strict`: a controller that cannot be enabled is an error.
    fn enable_v2(&self, ctrls: &[String], strict: bool) -> Result<()> {
        if ctrls.is_empty() {
            return Ok(());
        }
        let Some(h) = self.v2_hier() else {
            return Err(Error::Unsupported(format!(
                "{}: no cgroup v2 hierarchy in this layout",
                ctrls.join(", ")
            )));
        };
        let comps = path::components(&h.rel)?;
        let mut cur = h
            .root
            .open_sub(".", "cgroup2:/".into())
            .map_err(|e| Error::sys("openat2", "cgroup2:/", e))?;
        for (i, name) in comps.iter().enumerate() {
            let available = cur.read("cgroup.controllers")?;
            let enabled = cur.read("cgroup.subtree_control")?;
            for c in ctrls {
                if enabled.split_whitespace().any(|e| e == c) {
                    continue;
                }
                if !available.split_whitespace().any(|a| a == c) {
                    if strict {
                        return Err(Error::Unsupported(format!(
                            "{c}: controller not available in {} (cgroup.controllers: {})",
                            cur.label(),
                            available.trim()
                        )));
                    }
                    continue;
                }
                match cur.write("cgroup.subtree_control", &format!("+{c}")) {
                    Ok(()) => {}
                    Err(e) if strict => return Err(e),
                    Err(_) => {}
                }
            }
            let rel = comps[..=i].join("/");
            cur = cur
                .open_sub(name, format!("cgroup2:/{rel}"))
                .map_err(|e| Error::sys("openat2", format!("cgroup2:/{rel}"), e))?;
        }
        Ok(())
    }

    /// Change limits of a live cgroup. Only what `resources` sets changes;
    /// `devices`, when present, replaces the whole allowlist.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        let ops = plan::plan(resources, &self.avail)?;
        let rules = match resources.devices() {
            Some(d) => Some(devices::rules(d)?),
            None => None,
        };
        let wanted = resources.devices().is_some();
        self.apply(&ops, rules.as_deref(), wanted)
    }

    /// Enable the v2 controllers the ops need, set devices, run the ops.
    fn apply(&self, ops: &[Op], rules: Option<&[devices::Rule]>, devices_wanted: bool) -> Result<()> {
        let mut need: Vec<String> = ops
            .iter()
            .map(Op::target)
            .filter(|t| t.ver == Version::V2 && t.ctrl != "cgroup")
            .map(|t| t.ctrl.clone())
            .collect();
        need.sort();
        need.dedup();
        self.enable_v2(&need, true)?;
        if let Some(rules) = rules {
            self.apply_devices(rules, devices_wanted)?;
        }
        for op in ops {
            self.execute(op)?;
        }
        Ok(())
    }

    fn apply_devices(&self, rules: &[devices::Rule], wanted: bool) -> Result<()> {
        if let Some(d) = self.v1_dir("devices") {
            // deny everything, then the rules in order (each file opened once)
            let deny = d.open_writer("devices.deny", "a")?;
            deny.write("a")?;
            let mut allow = None;
            for r in rules {
                let v = r.v1_string();
                if r.v1_file() == "devices.deny" {
                    deny.write(&v)?;
                } else {
                    if allow.is_none() {
                        allow = Some(d.open_writer("devices.allow", &v)?);
                    }
                    if let Some(a) = &allow {
                        a.write(&v)?;
                    }
                }
            }
            return Ok(());
        }
        if self.layout != Layout::Legacy {
            if let Some(d) = self.v2_dir() {
                return self.attach_device_program(d, rules);
            }
        }
        if wanted {
            return Err(Error::Unsupported(
                "linux.resources.devices: no devices cgroup hierarchy is mounted".into(),
            ));
        }
        Ok(())
    }

    /// Load the allowlist as a cgroup device program, attach it, then
    /// detach the programs it replaces (so there is no unprotected gap).
    fn attach_device_program(&self, d: &CgroupDir, rules: &[devices::Rule]) -> Result<()> {
        let old = sys::query_device_programs(d.as_fd())
            .map_err(|e| Error::sys("bpf(BPF_PROG_QUERY)", d.label(), e))?;
        let prog = sys::load_device_program(&devices::program(rules)).map_err(|(e, log)| {
            let what = if log.is_empty() {
                "device program".to_string()
            } else {
                format!("device program (verifier: {log})")
            };
            Error::sys("bpf(BPF_PROG_LOAD)", what, e)
        })?;
        sys::attach_device_program(d.as_fd(), prog.as_fd())
            .map_err(|e| Error::sys("bpf(BPF_PROG_ATTACH)", d.label(), e))?;
        for id in old {
            let fd = match sys::prog_fd_by_id(id) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::sys("bpf(BPF_PROG_GET_FD_BY_ID)", id.to_string(), e)),
            };
            match sys::detach_device_program(d.as_fd(), fd.as_fd()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::sys("bpf(BPF_PROG_DETACH)", d.label(), e)),
            }
        }
        Ok(())
    }

    fn dir_for(&self, t: &Target) -> Result<&CgroupDir> {
        let d = match t.ver {
            Version::V1 => self.v1_dir(&t.ctrl),
            Version::V2 => self.v2_dir(),
        };
        d.ok_or_else(|| Error::Unsupported(format!("{}: no {:?} hierarchy for it", t.ctrl, t.ver)))
    }

    fn execute(&self, op: &Op) -> Result<()> {
        let d = self.dir_for(op.target())?;
        match op {
            Op::Write { file, value, .. } => d.write(file, value),
            Op::WriteVerify { file, value, .. } => {
                d.write(file, value)?;
                let got = d.read(file)?;
                if got.trim() != value {
                    return Err(Error::InvalidResource {
                        what: file.clone(),
                        reason: format!("the kernel stored {} instead of {value} (out of range)", got.trim()),
                    });
                }
                Ok(())
            }
            Op::WriteFirst { what, alts, .. } => {
                for (f, v) in alts {
                    if d.exists(f) {
                        return d.write(f, v);
                    }
                }
                let files: Vec<&str> = alts.iter().map(|(f, _)| f.as_str()).collect();
                Err(Error::Unsupported(format!(
                    "{what}: not supported here (none of {} exists in {})",
                    files.join(", "),
                    d.label()
                )))
            }
            Op::WriteIfExists { file, value, .. } => {
                if d.exists(file) {
                    d.write(file, value)?;
                }
                Ok(())
            }
            Op::MemoryV1 { limit, swap, .. } => {
                let (limit, mut swap) = (*limit, *swap);
                // unlimited memory without a swap value: unlimited swap too
                if limit == -1 && swap == 0 {
                    swap = -1;
                }
                if swap != 0 && !d.exists("memory.memsw.limit_in_bytes") {
                    if swap != -1 {
                        return Err(Error::Unsupported(
                            "memory.memsw.limit_in_bytes (memory.swap): swap accounting is not enabled in this kernel"
                                .into(),
                        ));
                    }
                    swap = 0;
                }
                // The kernel keeps limit <= memsw: raise memsw first when
                // it grows beyond the current limit.
                if limit != 0 && swap != 0 {
                    let cur = d.read_u64("memory.limit_in_bytes")?;
                    if swap == -1 || u64::try_from(swap).is_ok_and(|s| cur < s) {
                        d.write("memory.memsw.limit_in_bytes", &swap.to_string())?;
                        return d.write("memory.limit_in_bytes", &limit.to_string());
                    }
                }
                if limit != 0 {
                    d.write("memory.limit_in_bytes", &limit.to_string())?;
                }
                if swap != 0 {
                    d.write("memory.memsw.limit_in_bytes", &swap.to_string())?;
                }
                Ok(())
            }
            Op::MemoryCheckV2 { limit, .. } => {
                let cur = d.read_u64("memory.current")?;
                if u64::try_from(*limit).is_ok_and(|l| cur >= l) {
                    return Err(Error::InvalidResource {
                        what: "memory.max".into(),
                        reason: format!("{limit} is not above the current usage {cur} (checkBeforeUpdate)"),
                    });
                }
                Ok(())
            }
            Op::CpuV1 { period, quota, burst, .. } => {
                // A smaller period or a larger burst can be refused until
                // the quota changes: retry those after the quota.
                let mut retry_period = false;
                if *period != 0 {
                    match d.write("cpu.cfs_period_us", &period.to_string()) {
                        Err(e) if is_inval(&e) && *quota != 0 => retry_period = true,
                        r => r?,
                    }
                }
                let mut retry_burst = false;
                if let Some(b) = burst {
                    match d.write("cpu.cfs_burst_us", &b.to_string()) {
                        Err(e) if is_inval(&e) && *quota != 0 => retry_burst = true,
                        r => r?,
                    }
                }
                if *quota != 0 {
                    d.write("cpu.cfs_quota_us", &quota.to_string())?;
                    if retry_period {
                        d.write("cpu.cfs_period_us", &period.to_string())?;
                    }
                    if let (true, Some(b)) = (retry_burst, burst) {
                        d.write("cpu.cfs_burst_us", &b.to_string())?;
                    }
                }
                Ok(())
            }
            Op::CpuV2 { period, quota, burst, .. } => {
                let bandwidth = *quota != 0 || *period != 0;
                let mut retry_burst = false;
                if let Some(b) = burst {
                    match d.write("cpu.max.burst", &b.to_string()) {
                        Err(e) if is_inval(&e) && bandwidth => retry_burst = true,
                        r => r?,
                    }
                }
                if bandwidth {
                    let q = match *quota {
                        q if q > 0 => q.to_string(),
                        -1 => "max".to_string(),
                        // only the period changes: keep the current quota
                        _ => d
                            .read("cpu.max")?
                            .split_whitespace()
                            .next()
                            .unwrap_or("max")
                            .to_string(),
                    };
                    let v = if *period != 0 { format!("{q} {period}") } else { q };
                    d.write("cpu.max", &v)?;
                    if let (true, Some(b)) = (retry_burst, burst) {
                        d.write("cpu.max.burst", &b.to_string())?;
                    }
                }
                Ok(())
            }
            Op::RtV1 { period, runtime, .. } => {
                self.raise_rt_parents(d, *period, *runtime)?;
                // A sibling removed a moment ago keeps its budget in the
                // kernel until it is freed: retry a refusal for a while.
                let deadline = Instant::now() + RT_RETRY;
                loop {
                    match write_rt(d, *period, *runtime) {
                        Err(e) if is_inval(&e) && Instant::now() < deadline => sleep(Duration::from_millis(20)),
                        r => return r,
                    }
                }
            }
            Op::Unified { key, value, .. } => {
                let lines: Vec<&str> = if value.contains('\n') {
                    value.lines().filter(|l| !l.trim().is_empty()).collect()
                } else {
                    vec![value.as_str()]
                };
                for l in lines {
                    d.write(key, l).map_err(|e| match e {
                        Error::Unsupported(_) => Error::Unsupported(format!(
                            "unified key {key:?}: {} has no such file",
                            d.label()
                        )),
                        e => e,
                    })?;
                }
                Ok(())
            }
        }
    }

    /// Give each parent of the cgroup in the cpu hierarchy (below the
    /// root, which is never written) at least the RT bandwidth its
    /// children then need, top down, as a parent with less makes the
    /// kernel refuse the child (a new cgroup starts with none). Only
    /// raised, never lowered; only the cgroups on this cgroup's path.
    fn raise_rt_parents(&self, leaf: &CgroupDir, period: u64, runtime: i64) -> Result<()> {
        let Some(h) = self.hiers.iter().find(|h| h.controllers.iter().any(|c| c == "cpu")) else { return Ok(()) };
        if runtime <= 0 {
            return Ok(());
        }
        let leaf_period = if period != 0 { period } else { leaf.read_u64("cpu.rt_period_us")? };
        let comps = path::components(&h.rel)?;
        // need[k]: the bandwidth the cgroup comps[..=k] must have
        let mut need = rt_ratio(runtime, leaf_period);
        let mut plan = Vec::new();
        for k in (0..comps.len().saturating_sub(1)).rev() {
            let rel = comps[..=k].join("/");
            let dir = h.root.open_sub(&rel, format!("{}:/{rel}", hier_name(&h.key))).map_err(|e| Error::sys("openat2", rel.clone(), e))?;
            for c in dir.children()? {
                if c == comps[k + 1] {
                    continue;
                }
                let Ok(sib) = dir.open_sub(&c, format!("{}:/{rel}/{c}", hier_name(&h.key))) else { continue };
                if let (Ok(r), Ok(p)) = (sib.read("cpu.rt_runtime_us"), sib.read_u64("cpu.rt_period_us")) {
                    need = need.saturating_add(rt_ratio(r.trim().parse().unwrap_or(0), p));
                }
            }
            plan.push((dir, need));
        }
        for (dir, need) in plan.into_iter().rev() {
            let have: i64 = dir.read("cpu.rt_runtime_us")?.trim().parse().unwrap_or(0);
            let p = dir.read_u64("cpu.rt_period_us")?;
            if have == -1 || rt_ratio(have, p) >= need {
                continue;
            }
            // the least runtime whose ratio reaches `need`
            let want = (need * u128::from(p)).div_ceil(1 << RT_SHIFT);
            dir.write("cpu.rt_runtime_us", &want.to_string())?;
        }
        Ok(())
    }

    fn freezer(&self) -> Result<Freezer<'_>> {
        if self.layout != Layout::Unified {
            if let Some(d) = self.v1_dir("freezer") {
                return Ok(Freezer::V1(d));
            }
        }
        match self.v2_dir() {
            Some(d) => Ok(Freezer::V2(d)),
            None => Err(Error::Unsupported(
                "freezer: no v1 freezer hierarchy is mounted and there is no cgroup v2".into(),
            )),
        }
    }

    /// Freeze every process of the cgroup and wait until the kernel says
    /// frozen (v1 `freezer.state` FROZEN, v2 `cgroup.events` frozen 1).
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => freeze_v1(d),
            Freezer::V2(d) => set_frozen_v2(d, true),
        }
    }

    /// Thaw the cgroup and wait until it is.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(d) => thaw_v1(d),
            Freezer::V2(d) => set_frozen_v2(d, false),
        }
    }

    /// Whether the cgroup is (completely) frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(d) => Ok(d.read("freezer.state")?.trim() == "FROZEN"),
            Freezer::V2(d) => Ok(keyed(&d.read("cgroup.events")?, "frozen") == Some(1)),
        }
    }

    fn procs_dir(&self) -> Result<&CgroupDir> {
        if self.layout == Layout::Unified {
            if let Some(d) = self.v2_dir() {
                return Ok(d);
            }
        }
        ["pids", "freezer", "memory", "cpu", "devices"]
            .iter()
            .find_map(|c| self.v1_dir(c))
            .or_else(|| self.hiers.first().map(|h| &h.dir))
            .ok_or_else(|| Error::NoHierarchy("the cgroup has no hierarchy".into()))
    }

    /// Every process in the cgroup and the cgroups below it, as host pids,
    /// sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut v = self.procs_dir()?.procs_recursive(MAX_DEPTH)?;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// Signal every process of the cgroup. SIGKILL on pure v2 writes
    /// `cgroup.kill`. Otherwise the cgroup is frozen (so nothing forks or
    /// exits and reuses a pid meanwhile), each member is opened with
    /// `pidfd_open` and — if still a member afterwards — signalled through
    /// its pidfd, and the cgroup is thawed again (always for SIGKILL, so the
    /// processes can die; otherwise only if it was not frozen before).
    pub fn kill_all(&self, sig: Signal) -> Result<()> {
        if self.layout == Layout::Unified && sig == Signal::KILL {
            if let Some(d) = self.v2_dir() {
                if d.exists("cgroup.kill") {
                    return d.write("cgroup.kill", "1");
                }
            }
        }
        // Nothing to signal: skip the freeze/thaw round trip (each freezer
        // transition costs the kernel an RCU grace period or more).
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let has_freezer = self.freezer().is_ok();
        let was_frozen = has_freezer && self.is_frozen()?;
        let froze = if has_freezer && !was_frozen {
            self.freeze()
        } else {
            Ok(())
        };
        let signalled = self.signal_members(sig);
        let thawed = if has_freezer && (!was_frozen || sig == Signal::KILL) {
            self.thaw()
        } else {
            Ok(())
        };
        froze.and(signalled).and(thawed)
    }

    fn signal_members(&self, sig: Signal) -> Result<()> {
        let mut fds = Vec::new();
        for p in self.pids()? {
            let Some(pid) = Pid::from_raw(p) else { continue };
            match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
                Ok(fd) => fds.push((p, fd)),
                Err(Errno::SRCH) => {}
                Err(e) => return Err(Error::sys("pidfd_open", p.to_string(), e)),
            }
        }
        // A pid listed again after its pidfd was opened was a member when
        // the pidfd was taken (or the pidfd points to an exited process,
        // which a signal does not reach): no stranger gets the signal.
        let again = self.pids()?;
        for (p, fd) in fds {
            if again.binary_search(&p).is_err() {
                continue;
            }
            match rustix::process::pidfd_send_signal(&fd, sig) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => return Err(Error::sys("pidfd_send_signal", p.to_string(), e)),
            }
        }
        Ok(())
    }

    /// Usage figures shaped like runc's `events --stats` data.
    pub fn stats(&self) -> Result<Stats> {
        stats::collect(self)
    }

    fn memory_dir(&self) -> Option<(&CgroupDir, Version)> {
        if let Some(d) = self.v1_dir("memory") {
            return Some((d, Version::V1));
        }
        self.v2_dir()
            .filter(|d| d.exists("memory.events"))
            .map(|d| (d, Version::V2))
    }

    /// A watch on the OOM kills in the cgroup ([`OomWatcher`]), `None`
    /// without a memory controller.
    pub fn oom_watcher(&self) -> Result<Option<OomWatcher>> {
        match self.memory_dir() {
            None => Ok(None),
            Some((d, version)) => OomWatcher::open(d, version == Version::V2, d.label().to_string()),
        }
    }

    /// How many processes of the cgroup the OOM killer killed
    /// (`oom_kill` of v1 memory.oom_control or v2 memory.events).
    pub fn oom_kill_count(&self) -> Result<u64> {
        match self.memory_dir() {
            Some((d, Version::V1)) => Ok(keyed(&d.read("memory.oom_control")?, "oom_kill").unwrap_or(0)),
            Some((d, Version::V2)) => Ok(keyed(&d.read("memory.events")?, "oom_kill").unwrap_or(0)),
            None => Err(Error::Unsupported("memory: no memory controller for this cgroup".into())),
        }
    }

    /// Remove the cgroup in every hierarchy: first cgroups the container
    /// created below it, then the cgroup itself (retrying while the last
    /// processes exit), then the parents this object created, if empty.
    /// Every hierarchy is tried; the first error is returned.
    pub fn destroy(self) -> Result<()> {
        let deadline = Instant::now() + RMDIR_TIMEOUT;
        let mut first: Option<Error> = None;
        for h in &self.hiers {
            if let Err(e) = remove_tree(&h.root, &h.dir, &h.rel, hier_name(&h.key), deadline, MAX_DEPTH) {
                first.get_or_insert(e);
                continue;
            }
            for rel in h.created.iter().rev().filter(|r| **r != h.rel) {
                match h.root.rmdir(rel) {
                    Ok(()) | Err(Errno::NOENT) => {}
                    // someone else's cgroup appeared in it: keep it
                    Err(Errno::BUSY) | Err(Errno::NOTEMPTY) => break,
                    Err(e) => {
                        first.get_or_insert(Error::sys("unlinkat", format!("{}:/{rel}", hier_name(&h.key)), e));
                        break;
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Whether `rel` below `root` still names the directory `dir` holds (not a
/// newer cgroup made at the same path after ours was removed).
fn still_names(root: &CgroupDir, rel: &str, dir: &CgroupDir) -> Result<bool> {
    let ours = rustix::fs::fstat(dir).map_err(|e| Error::sys("fstat", dir.label(), e))?;
    match rustix::fs::statat(root, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(st.st_ino == ours.st_ino && st.st_dev == ours.st_dev),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(Error::sys("fstatat", dir.label(), e)),
    }
}

fn remove_tree(root: &CgroupDir, dir: &CgroupDir, rel: &str, hname: &str, deadline: Instant, depth: usize) -> Result<()> {
    let label = format!("{hname}:/{rel}");
    if !still_names(root, rel, dir)? {
        // already removed (and maybe replaced by another container's)
        return Ok(());
    }
    // Usually empty: try the rmdir before listing children.
    match root.rmdir(rel) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(_) => {}
    }
    if depth > 0 {
        let children = match dir.children() {
            Ok(c) => c,
            Err(e) if e.errno() == Some(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in children {
            let sub_rel = format!("{rel}/{c}");
            match dir.open_sub(&c, format!("{hname}:/{sub_rel}")) {
                Ok(sub) => remove_tree(root, &sub, &sub_rel, hname, deadline, depth - 1)?,
                Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::sys("openat2", format!("{hname}:/{sub_rel}"), e)),
            }
        }
    }
    loop {
        match root.rmdir(rel) {
            Ok(()) | Err(Errno::NOENT) => return Ok(()),
            Err(Errno::BUSY) if Instant::now() < deadline => sleep(Duration::from_millis(10)),
            Err(Errno::BUSY) => {
                let pids = dir
                    .procs()
                    .map(|p| p.iter().map(i32::to_string).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                return Err(Error::Busy { path: label, pids });
            }
            Err(e) => return Err(Error::sys("unlinkat", label, e)),
        }
    }
}

fn freeze_v1(d: &CgroupDir) -> Result<()> {
    let start = Instant::now();
    let mut i = 0u32;
    loop {
        // Tasks can get stuck FREEZING; thawing now and then and writing
        // FROZEN again unsticks them (as runc does).
        if i % 50 == 49 {
            d.write("freezer.state", "THAWED")?;
            sleep(Duration::from_millis(10));
        }
        d.write("freezer.state", "FROZEN")?;
        let state = d.read("freezer.state")?;
        match state.trim() {
            "FROZEN" => return Ok(()),
            "FREEZING" => {}
            other => {
                return Err(Error::Parse {
                    file: d.name_of("freezer.state"),
                    content: other.to_string(),
                })
            }
        }
        if start.elapsed() >= FREEZE_TIMEOUT {
            let _ = d.write("freezer.state", "THAWED");
            return Err(Error::Timeout {
                file: "freezer.state".into(),
                want: "FROZEN",
                ms: FREEZE_TIMEOUT.as_millis() as u64,
            });
        }
        sleep(Duration::from_millis(if i % 25 == 24 { 10 } else { 1 }));
        i += 1;
    }
}

fn thaw_v1(d: &CgroupDir) -> Result<()> {
    let start = Instant::now();
    loop {
        d.write("freezer.state", "THAWED")?;
        if d.read("freezer.state")?.trim() == "THAWED" {
            return Ok(());
        }
        if start.elapsed() >= FREEZE_TIMEOUT {
            return Err(Error::Timeout {
                file: "freezer.state".into(),
                want: "THAWED",
                ms: FREEZE_TIMEOUT.as_millis() as u64,
            });
        }
        sleep(Duration::from_millis(1));
    }
}

/// Write cgroup.freeze and wait on cgroup.events (POLLPRI on change).
fn set_frozen_v2(d: &CgroupDir, frozen: bool) -> Result<()> {
    d.write("cgroup.freeze", if frozen { "1" } else { "0" })?;
    let ev = d.open_file("cgroup.events", OFlags::RDONLY).map_err(|errno| Error::Read {
        file: d.name_of("cgroup.events"),
        errno,
    })?;
    let start = Instant::now();
    loop {
        let s = read_fd(&ev, 0).map_err(|errno| Error::Read {
            file: d.name_of("cgroup.events"),
            errno,
        })?;
        if keyed(&s, "frozen") == Some(u64::from(frozen)) {
            return Ok(());
        }
        let left = FREEZE_TIMEOUT.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(Error::Timeout {
                file: d.name_of("cgroup.events"),
                want: if frozen { "frozen 1" } else { "frozen 0" },
                ms: FREEZE_TIMEOUT.as_millis() as u64,
            });
        }
        let ts = Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(&ev, PollFlags::PRI)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(Error::sys("poll", d.name_of("cgroup.events"), e)),
        }
    }
}

//! The conditions every runtime runs under: a private mount namespace of
//! this process (what `unshare -m --propagation private` gives a shell),
//! with a throwaway tmpfs over /sys/fs/cgroup/unified on a hybrid host (crun
//! 1.8 refuses hybrid hosts otherwise), and a work directory on a private
//! tmpfs. None of it is visible outside this process and its children, and
//! all of it goes away with them.

use std::path::{Path, PathBuf};

use rustix::fs::statfs;
use rustix::mount::{mount, mount_change, unmount, MountFlags, MountPropagationFlags, UnmountFlags};

use crate::error::{Error, IoContext, Result, SysContext};
use crate::sys;

const UNIFIED: &str = "/sys/fs/cgroup/unified";
/// `CGROUP2_SUPER_MAGIC` of <linux/magic.h>.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// Enter a private mount namespace. With `hide_unified`, mount an empty
/// tmpfs over /sys/fs/cgroup/unified if a cgroup2 hierarchy is there (a
/// hybrid host); returns whether it did.
pub fn isolate(hide_unified: bool) -> Result<bool> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Setup("run as root: the benchmark runs real containers".into()));
    }
    sys::unshare_mount_ns().sys("unshare", || "CLONE_NEWNS".into())?;
    // From here on, no mount or unmount of ours propagates to the host.
    mount_change("/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)
        .sys("mount", || "/ MS_REC|MS_PRIVATE".into())?;
    if !hide_unified {
        return Ok(false);
    }
    match statfs(UNIFIED) {
        Ok(s) if u64::try_from(s.f_type).ok() == Some(CGROUP2_SUPER_MAGIC) => {
            mount("tmpfs", UNIFIED, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, c"mode=755")
                .sys("mount", || format!("tmpfs on {UNIFIED}"))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Become the child subreaper, so container inits orphaned by `create`
/// are reparented to us and we can reap them (and read their rusage).
pub fn become_subreaper() -> Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).sys("prctl", || "PR_SET_CHILD_SUBREAPER".into())
}

/// A work directory: an empty directory under /tmp with a private tmpfs
/// mounted on it (inside our mount namespace only).
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn new(prefix: &str) -> Result<WorkDir> {
        let tmp = std::env::temp_dir();
        let mut n = 0u32;
        let path = loop {
            let p = tmp.join(format!("{prefix}.{}.{n}", std::process::id()));
            match std::fs::create_dir(&p) {
                Ok(()) => break p,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e).io("mkdir", p),
            }
        };
        if let Err(e) = mount("tmpfs", &path, "tmpfs", MountFlags::NOSUID | MountFlags::NODEV, c"mode=700") {
            let _ = std::fs::remove_dir(&path);
            return Err(e).sys("mount", || format!("tmpfs on {}", path.display()));
        }
        Ok(WorkDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = unmount(&self.path, UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

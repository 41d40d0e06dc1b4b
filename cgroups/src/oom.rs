//! OOM kills of a running process's memory cgroup, watched with as few fds
//! as possible: for a long-lived watcher (a shim) that knows a container
//! only by its init process and holds one watch per container.
//!
//! [`OomWatcher::of_process`] finds the memory cgroup from
//! `/proc/<pid>/cgroup` (v1 `memory` hierarchy first, as
//! [`crate::Cgroup::oom_watcher`]; else cgroup2 with `memory.events`) and
//! holds v1: an eventfd registered on `memory.oom_control` plus that file;
//! v2: `memory.events`. v2 wakes on a change of any counter in
//! `memory.events`: an OOM kill is a grown `oom_kill` count. v1 wakes on each
//! OOM (before its kill is counted) and once more when the cgroup is
//! removed: a wakeup is an OOM if the cgroup can still be read. A kill that
//! raised no wakeup before the watch began (or raced with the process's
//! exit) is found by comparing the count ([`OomWatcher::check`]).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::dir::{keyed, read_fd, CgroupDir};
use crate::error::{Error, Result};
use crate::mounts::{self, Mount};
use crate::path;

/// Where a process's memory cgroup is: the hierarchy's mount point, whether
/// it is cgroup2, and the cgroup's path relative to the mount.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MemoryCgroup {
    pub mountpoint: String,
    pub v2: bool,
    pub rel: String,
}

/// The memory cgroup of a process from its `/proc/<pid>/cgroup` lines and
/// the cgroup mounts: the v1 `memory` hierarchy if mounted, else cgroup2.
/// `None` when the process is in the root of that hierarchy (that is the
/// whole host, not a container) or the hierarchy is not mounted.
pub(crate) fn memory_cgroup(mounts: &[Mount], proc_cgroup: &[(String, String)]) -> Result<Option<MemoryCgroup>> {
    let v1 = mounts
        .iter()
        .find(|m| m.controllers.as_ref().is_some_and(|c| c.iter().any(|x| x == "memory")));
    let m = match v1 {
        Some(m) => m,
        None => match mounts.iter().find(|m| m.is_v2()) {
            Some(m) => m,
            None => return Ok(None),
        },
    };
    let key = m.key();
    let Some((_, p)) = proc_cgroup.iter().find(|(k, _)| *k == key) else {
        return Ok(None);
    };
    // Both are relative to our cgroup namespace's root; the mount shows the
    // subtree below its root (field 4 of mountinfo).
    let own = path::components(p)?;
    let root = path::components(&m.root)?;
    if !own.starts_with(&root) {
        return Err(Error::InvalidPath {
            path: p.clone(),
            reason: format!("outside the mounted subtree {} of {}", m.root, m.mountpoint),
        });
    }
    let rel = own[root.len()..].join("/");
    if rel.is_empty() {
        return Ok(None);
    }
    Ok(Some(MemoryCgroup {
        mountpoint: m.mountpoint.clone(),
        v2: m.is_v2(),
        rel,
    }))
}

#[derive(Debug)]
enum Kind {
    /// The eventfd (registered through `cgroup.event_control`) and the
    /// `memory.oom_control` it watches.
    V1 { eventfd: OwnedFd, control: OwnedFd },
    /// `memory.events` (POLLPRI on change).
    V2 { events: OwnedFd },
}

/// A watch on the OOM kills in one memory cgroup: poll [`AsFd::as_fd`] for
/// [`OomWatcher::poll_flags`] (level-triggered) and call
/// [`OomWatcher::check`] on readiness.
#[derive(Debug)]
pub struct OomWatcher {
    kind: Kind,
    label: String,
    /// The `oom_kill` count last reported.
    last: u64,
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { eventfd, .. } => eventfd.as_fd(),
            Kind::V2 { events } => events.as_fd(),
        }
    }
}

impl OomWatcher {
    /// Watch the memory cgroup the process `pid` is in now. `pidfd` must
    /// refer to that process: it is checked to be still running after the
    /// cgroup was opened, so a reused pid cannot lead to another cgroup.
    /// `Ok(None)`: no memory controller for the process (or it is in a
    /// hierarchy's root cgroup).
    ///
    /// Kills that happened before the watch began count too: the first
    /// [`OomWatcher::check`] reports them.
    pub fn of_process(pidfd: BorrowedFd<'_>, pid: i32) -> Result<Option<OomWatcher>> {
        let text = mounts::read_proc(&format!("/proc/{pid}/cgroup"))?;
        let Some(mc) = memory_cgroup(&mounts::read_mountinfo()?, &mounts::parse_proc_cgroup(&text))? else {
            return Ok(None);
        };
        let label = format!("{}:/{}", if mc.v2 { "cgroup2" } else { "memory" }, mc.rel);
        let root = CgroupDir::open_root(&mc.mountpoint, mc.v2, mc.mountpoint.clone())?;
        let dir = root
            .open_sub(&mc.rel, label.clone())
            .map_err(|e| Error::sys("openat2", label.clone(), e))?;
        let w = Self::open(&dir, mc.v2, label)?;
        // The pid named our process while we read and opened its cgroup
        // only if the process still runs now (an exited one is not reaped
        // while its pidfd's owner has not waited for it, but zombies may be
        // anywhere: refuse them too).
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        let exited = rustix::event::poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 }))
            .map_err(|e| Error::sys("poll", format!("pidfd of {pid}"), e))?
            > 0;
        if exited {
            return Err(Error::sys("watch OOM kills of", format!("process {pid}"), Errno::SRCH));
        }
        Ok(w)
    }

    /// Watch the memory cgroup `dir` (v1 memory hierarchy or cgroup2).
    pub(crate) fn open(dir: &CgroupDir, v2: bool, label: String) -> Result<Option<OomWatcher>> {
        let read_err = |file: &str| {
            let file = file.to_string();
            move |errno| Error::Read { file, errno }
        };
        let kind = if v2 {
            match dir.open_file("memory.events", OFlags::RDONLY) {
                Ok(events) => Kind::V2 { events },
                // No memory controller enabled for this cgroup.
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(read_err("memory.events")(e)),
            }
        } else {
            let eventfd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| Error::sys("eventfd", "oom notification", e))?;
            let control = dir
                .open_file("memory.oom_control", OFlags::RDONLY)
                .map_err(read_err("memory.oom_control"))?;
            dir.write(
                "cgroup.event_control",
                &format!("{} {}", eventfd.as_raw_fd(), control.as_raw_fd()),
            )?;
            Kind::V1 { eventfd, control }
        };
        Ok(Some(OomWatcher { kind, label, last: 0 }))
    }

    /// The events to poll for (`IN` for v1, `PRI` for v2).
    pub fn poll_flags(&self) -> PollFlags {
        match self.kind {
            Kind::V1 { .. } => PollFlags::IN,
            Kind::V2 { .. } => PollFlags::PRI,
        }
    }

    /// The memory cgroup, for messages (`memory:/fdbox/abc`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// After readiness (or at any time, e.g. once the process exited):
    /// re-arm the fd and tell whether OOM kills happened since the last
    /// call (since the cgroup was made, for the first call). An error
    /// means the cgroup is gone (v1 wakes the eventfd once then, v2 polls
    /// ready for ever): stop watching.
    pub fn check(&mut self) -> Result<bool> {
        let (text, notified) = match &self.kind {
            Kind::V1 { eventfd, control } => {
                let mut b = [0u8; 8];
                let notified = match rustix::io::read(eventfd, &mut b) {
                    Ok(8) => u64::from_ne_bytes(b),
                    Ok(_) | Err(Errno::AGAIN) => 0,
                    Err(e) => return Err(Error::sys("read", "oom eventfd", e)),
                };
                let text = read_fd(control, 0).map_err(|errno| Error::Read {
                    file: format!("{}/memory.oom_control", self.label),
                    errno,
                })?;
                (text, notified)
            }
            Kind::V2 { events } => {
                let text = read_fd(events, 0).map_err(|errno| Error::Read {
                    file: format!("{}/memory.events", self.label),
                    errno,
                })?;
                (text, 0)
            }
        };
        let count = keyed(&text, "oom_kill");
        if notified > 0 {
            // v1 notifies before the kill is counted, so the count may not
            // have grown yet: a notification of a cgroup that still exists
            // (its file was just read) is an OOM. The kill it announces is
            // counted in advance, not reported again by a later check.
            self.last = count.unwrap_or(0).max(self.last + 1);
            return Ok(true);
        }
        match count {
            Some(n) if n > self.last => {
                self.last = n;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    fn pc(t: &str) -> Vec<(String, String)> {
        mounts::parse_proc_cgroup(t)
    }

    #[test]
    fn memory_cgroup_prefers_v1_memory() {
        let m = mounts::parse_mountinfo(HYBRID);
        let got = memory_cgroup(&m, &pc("4:memory:/fdbox/a\n1:name=systemd:/x\n0::/fdbox/a\n")).unwrap();
        assert_eq!(
            got,
            Some(MemoryCgroup {
                mountpoint: "/sys/fs/cgroup/memory".into(),
                v2: false,
                rel: "fdbox/a".into()
            })
        );
    }

    #[test]
    fn memory_cgroup_v2_and_roots() {
        let m = mounts::parse_mountinfo("25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let got = memory_cgroup(&m, &pc("0::/k/c\n")).unwrap().unwrap();
        assert!(got.v2);
        assert_eq!(got.rel, "k/c");
        assert_eq!(got.mountpoint, "/sys/fs/cgroup");
        // The root cgroup is the host: nothing to watch.
        assert_eq!(memory_cgroup(&m, &pc("0::/\n")).unwrap(), None);
        // No line for the hierarchy, no mounts.
        assert_eq!(memory_cgroup(&m, &pc("4:memory:/x\n")).unwrap(), None);
        assert_eq!(memory_cgroup(&[], &pc("0::/x\n")).unwrap(), None);
    }

    #[test]
    fn memory_cgroup_below_a_mount_root() {
        let m = mounts::parse_mountinfo("90 88 0:32 /docker/x /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
        let got = memory_cgroup(&m, &pc("4:memory:/docker/x/fdbox/c\n")).unwrap().unwrap();
        assert_eq!(got.rel, "fdbox/c");
        assert!(memory_cgroup(&m, &pc("4:memory:/other/c\n")).is_err());
        assert!(memory_cgroup(&m, &pc("4:memory:/../c\n")).is_err());
        assert_eq!(memory_cgroup(&m, &pc("4:memory:/docker/x\n")).unwrap(), None);
    }
}

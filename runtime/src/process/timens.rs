//! A new time namespace with `linux.timeOffsets`.
//!
//! The offsets of a time namespace can only be written before the first
//! process enters it, so `clone3(CLONE_NEWTIME)` will not do: the child is
//! in the namespace the moment it exists, with zero offsets. Instead the
//! parent (`create`) does what runc and crun do in their intermediate
//! process: `unshare(CLONE_NEWTIME)` — which makes a namespace for its
//! future children only, the caller stays where it is — writes the offsets
//! to `/proc/self/timens_offsets` (which describes that children's
//! namespace), and then clones the init, which enters the namespace at
//! birth (the kernel's `timens_on_fork`). Right after, the parent goes back
//! to its own namespace for its later children (hooks), with `setns` on the
//! fd it kept.
//!
//! The init itself is therefore in the time namespace, and so is its
//! program after execve; `exec` joins it through the init's pidfd.

use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// The clocks a time namespace offsets, by their timens_offsets names.
const CLOCKS: &[&str] = &["monotonic", "boottime"];

/// Whether the config asks for a new time namespace (no `path`).
fn new_time_ns(spec: &Spec) -> Option<bool> {
    let ns = spec.linux().as_ref()?.namespaces().as_ref()?.iter().find(|n| n.typ() == LinuxNamespaceType::Time)?;
    Some(ns.path().is_none())
}

/// `linux.timeOffsets` needs a new time namespace, and names only the
/// clocks a time namespace has.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref()).filter(|o| !o.is_empty()) else {
        return Ok(());
    };
    match new_time_ns(spec) {
        None => return Err(Error::Config("linux.timeOffsets needs a time namespace in linux.namespaces".into())),
        Some(false) => {
            return Err(Error::Config("linux.timeOffsets cannot change a time namespace joined by path".into()))
        }
        Some(true) => {}
    }
    for (clock, off) in offsets {
        if !CLOCKS.contains(&clock.as_str()) {
            return Err(Error::Config(format!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)")));
        }
        if off.nanosecs().unwrap_or(0) >= 1_000_000_000 {
            return Err(Error::Config(format!("linux.timeOffsets.{clock}: nanosecs must be below 1e9")));
        }
    }
    Ok(())
}

/// The parent's own time namespace while its children's is the
/// container's; [`ParentTimeNs::restore`] goes back.
pub struct ParentTimeNs {
    own: OwnedFd,
}

/// Make the container's time namespace the one the next child is born in,
/// with the configured offsets (None when the config has no new time
/// namespace).
pub fn prepare(spec: &Spec) -> Result<Option<ParentTimeNs>> {
    if new_time_ns(spec) != Some(true) {
        return Ok(None);
    }
    let own = rustix::fs::open("/proc/self/ns/time", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .sys("open", || "/proc/self/ns/time".into())?;
    sys::unshare_timens().sys("unshare", || "time namespace".into())?;
    let parent = ParentTimeNs { own };
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().as_ref());
    let mut text = String::new();
    for (clock, off) in offsets.into_iter().flatten() {
        text.push_str(&format!("{clock} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    if !text.is_empty() {
        let fd = rustix::fs::open("/proc/self/timens_offsets", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
            .sys("open", || "/proc/self/timens_offsets".into())?;
        crate::security::sysctl::check_procfs(fd.as_fd(), "/proc/self/timens_offsets")?;
        // One write per line: the kernel parses one offset per write.
        for line in text.lines() {
            let line = format!("{line}\n");
            rustix::io::write(&fd, line.as_bytes())
                .map_err(|e| Error::Config(format!("linux.timeOffsets: write {:?} to /proc/self/timens_offsets: {}", line.trim(), fdbox_mount::describe(e))))?;
        }
    }
    Ok(Some(parent))
}

impl ParentTimeNs {
    /// Back to the parent's own time namespace (for the children it starts
    /// later, such as hooks).
    pub fn restore(self) -> Result<()> {
        rustix::thread::move_into_link_name_space(self.own.as_fd(), Some(rustix::thread::LinkNameSpaceType::Time))
            .sys("setns", || "the runtime's own time namespace".into())
    }
}

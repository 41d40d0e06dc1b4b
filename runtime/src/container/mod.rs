//! The container lifecycle: create, start, run, kill, delete, state, list.

mod create;
mod delete;
mod exec;
mod kill;
mod list;
mod manage;
mod run;
mod start;
mod state;

pub use create::{create, CreateOpts, Created};
pub(crate) use create::listen_fds;
pub use delete::delete;
pub use exec::{exec, ExecOpts};
pub use kill::{kill, parse_signal};
pub use list::{list, ListFormat};
pub use manage::{events, pause, ps, resume, update};
pub use run::{run, RunOpts};
pub use start::start;
pub use state::{state_json, OciState};

use crate::process::pidfd::PidFd;
use crate::state::{State, StateDir, INIT_SOCK};

/// A container's status, derived from its init process (never from a
/// status field in a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The status of the container and, while it lives, its init as a pidfd
/// (reopened and verified against the recorded start time).
pub fn status(dir: &StateDir, st: &State) -> (Status, Option<PidFd>) {
    let Some(init) = PidFd::reopen(st.pid, st.start_time) else {
        return (Status::Stopped, None);
    };
    if init.exited() {
        return (Status::Stopped, None);
    }
    if open_cgroup(st).is_some_and(|cg| cg.is_frozen().unwrap_or(false)) {
        return (Status::Paused, Some(init));
    }
    // The created init waits on init.sock; `start` removes it.
    let status = if dir.has(INIT_SOCK) { Status::Created } else { Status::Running };
    (status, Some(init))
}

/// The container's cgroup as recorded at create, if it still exists.
pub fn open_cgroup(st: &State) -> Option<fdbox_cgroups::Cgroup> {
    let (layout, path) = (st.cgroup_layout?, st.cgroup.as_deref()?);
    fdbox_cgroups::Cgroup::open(layout, path).ok()
}

/// Whether the container made a pid namespace of its own (listed without a
/// path): once its init is gone, no process of it is left anywhere.
pub fn has_private_pid_ns(st: &State) -> bool {
    st.config.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| {
        n.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty()))
    })
}

/// The container's cgroup, or an error saying why there is none.
pub fn require_cgroup(st: &State) -> crate::Result<fdbox_cgroups::Cgroup> {
    let (layout, path) = match (st.cgroup_layout, st.cgroup.as_deref()) {
        (Some(l), Some(p)) => (l, p),
        _ => return Err(crate::Error::State(format!("container \"{}\" has no cgroup", st.id))),
    };
    Ok(fdbox_cgroups::Cgroup::open(layout, path)?)
}

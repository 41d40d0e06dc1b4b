//! `delete [-f] ID`.

use std::time::Duration;

use super::{status, Status};
use crate::error::{Error, Result};
use crate::process::pidfd::PidFd;
use crate::state::{Root, State, StateDir, Unfinished};
use fdbox_cgroups::Cgroup;

/// Remove a stopped container; with `force`, kill it first (SIGKILL through
/// the pidfd, then poll the pidfd until it is gone). A created container is
/// killed and removed without `force` too, as runc does: its program never
/// ran, so nothing of the user's is lost. A container whose
/// create was killed before it wrote state.json is undone either way.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let dir = match root.open_container(id) {
        Ok(d) => d,
        // As runc: forcing the delete of a container that is gone succeeds.
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = match dir.read_state() {
        Ok(st) => st,
        // A create that died before writing its state (or, forced, a state
        // that cannot be read): undo what the create recorded.
        Err(_) if force || !dir.has_state() => return undo_unfinished(dir, id, force),
        Err(e) => return Err(e),
    };
    let (s, init) = status(&dir, &st);
    crate::debug!("delete {id}: container is {}", s.as_str());
    if let Some(init) = init {
        if !force && s != Status::Created {
            return Err(Error::State(format!(
                "cannot delete container \"{id}\" that is not stopped: {}",
                s.as_str()
            )));
        }
        crate::debug!("delete {id}: killing init pid {}", st.pid);
        let _ = init.signal(libc::SIGKILL);
        // A frozen process acts on SIGKILL only once thawed (v1 freezer).
        if s == Status::Paused {
            if let Some(cg) = super::open_cgroup(&st) {
                let _ = cg.thaw();
            }
        }
        if !init.wait_exit(Some(Duration::from_secs(10))) {
            return Err(Error::State(format!("container \"{id}\" did not exit after SIGKILL")));
        }
    }
    debug_assert!(s == Status::Stopped || s == Status::Created || force);
    remove(dir, &st, super::open_cgroup(&st))
}

/// Undo a create that died before it wrote state.json (a `kill -9`), from
/// what it recorded: its init (if the recorded pid still is that process),
/// what runs in its cgroup, the cgroup in every hierarchy it was made in,
/// then the state dir. Without `force` too: such a container never ran the
/// user's program and never can (`start` needs state.json), and its init,
/// which dies with create until "ready", may still be exiting.
fn undo_unfinished(dir: StateDir, id: &str, force: bool) -> Result<()> {
    let rec = match dir.read_unfinished() {
        Ok(rec) => rec.unwrap_or_default(),
        Err(e) if force => {
            crate::log::warn(&format!("{e}: removing the state only"));
            Unfinished::default()
        }
        Err(e) => return Err(e),
    };
    let init = match (rec.pid, rec.start_time) {
        (Some(pid), Some(start_time)) => PidFd::reopen(pid, start_time).filter(|init| !init.exited()),
        _ => None,
    };
    if let Some(init) = init {
        let _ = init.signal(libc::SIGKILL);
        if !init.wait_exit(Some(Duration::from_secs(10))) {
            return Err(Error::State(format!("container \"{id}\" did not exit after SIGKILL")));
        }
    }
    if let (Some(layout), Some(path)) = (rec.cgroup_layout, rec.cgroup.as_deref()) {
        let cg = Cgroup::open_remains(layout, path)?;
        // Only once the init was cloned (and recorded) can anything of the
        // container run in it; before, it is at most an empty directory.
        if rec.pid.is_some() {
            let _ = cg.kill_all(fdbox_cgroups::Signal::KILL);
        }
        cg.destroy()?;
    }
    dir.remove()
}

/// Delete the container a foreground `run` created, whose init it reaped:
/// with the cgroup it kept open and the state it wrote.
pub(super) fn delete_stopped(root: &Root, st: &State, cgroup: Option<Cgroup>) -> Result<()> {
    let dir = root.open_container(&st.id)?;
    remove(dir, st, cgroup)
}

/// The end of every delete, once the init is gone: what is left in the
/// cgroup, the cgroup, the state dir, then the poststop hooks.
fn remove(dir: StateDir, st: &State, cgroup: Option<Cgroup>) -> Result<()> {
    if let Some(cg) = cgroup {
        // Processes that outlived the init (a shared pid namespace) go with
        // the container, then the cgroup. With a pid namespace of its own
        // nothing outlives the init (the kernel killed the namespace): a
        // process still in the cgroup is another container's, made since at
        // the same cgroupsPath; it is not killed, and keeps its cgroup.
        let private = super::has_private_pid_ns(st);
        if !private {
            if cg.is_frozen().unwrap_or(false) {
                let _ = cg.thaw();
            }
            let _ = cg.kill_all(fdbox_cgroups::Signal::KILL);
        }
        match cg.destroy() {
            Err(fdbox_cgroups::Error::Busy { pids, .. }) if private => {
                crate::debug!("delete {}: cgroup kept, it holds processes of another (pids {pids})", st.id);
            }
            r => r?,
        }
    }
    dir.remove()?;
    crate::debug!("delete {}: cgroup and state removed", st.id);
    // After the container is deleted, before delete returns; failures are
    // warnings (runtime-spec lifecycle step 13).
    let state = crate::hooks::HookState::of(st, "stopped");
    crate::hooks::run_warn(&st.config, crate::hooks::Kind::Poststop, &state);
    Ok(())
}

//! `delete [-f] ID`.

use std::time::Duration;

use super::{status, Status};
use crate::error::{Error, Result};
use crate::state::{Root, State, StateDir};
use fdbox_cgroups::Cgroup;

/// Remove a stopped container; with `force`, kill it first (SIGKILL through
/// the pidfd, then poll the pidfd until it is gone).
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let dir = match root.open_container(id) {
        Ok(d) => d,
        // As runc: forcing the delete of a container that is gone succeeds.
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = match dir.read_state() {
        Ok(st) => st,
        // A create that died before writing its state: nothing runs.
        Err(_) if force => return dir.remove(),
        Err(e) => return Err(e),
    };
    let (s, init) = status(&dir, &st);
    if let Some(init) = init {
        if !force {
            return Err(Error::State(format!(
                "cannot delete container \"{id}\" that is not stopped: {}",
                s.as_str()
            )));
        }
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
    debug_assert!(s == Status::Stopped || force);
    remove(dir, &st, super::open_cgroup(&st))
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
        // Processes that outlived the init (a shared pid namespace, or
        // escapees of a killed one) go with the container, then the cgroup.
        if cg.is_frozen().unwrap_or(false) {
            let _ = cg.thaw();
        }
        let _ = cg.kill_all(fdbox_cgroups::Signal::KILL);
        cg.destroy()?;
    }
    dir.remove()?;
    // After the container is deleted, before delete returns; failures are
    // warnings (runtime-spec lifecycle step 13).
    let state = crate::hooks::HookState::of(st, "stopped");
    crate::hooks::run_warn(&st.config, crate::hooks::Kind::Poststop, &state);
    Ok(())
}

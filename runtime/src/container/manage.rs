//! The commands that act on a running container's cgroup: pause, resume,
//! ps, events, update.

use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use serde::Serialize;

use super::{require_cgroup, status, Status};
use crate::error::{Error, Result};
use crate::state::Root;

/// Freeze every process of the container.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    match status(&dir, &st).0 {
        Status::Running | Status::Created => {}
        s => return Err(Error::State(format!("cannot pause container \"{id}\": it is {}", s.as_str()))),
    }
    Ok(require_cgroup(&st)?.freeze()?)
}

/// Thaw a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    match status(&dir, &st).0 {
        Status::Paused => {}
        s => return Err(Error::State(format!("cannot resume container \"{id}\": it is {}, not paused", s.as_str()))),
    }
    Ok(require_cgroup(&st)?.thaw()?)
}

/// The pids of the container's processes, in the host's pid view. As
/// runc, a stopped container is no error: what is left in its cgroup (often
/// nothing, so `ps` prints just the header).
pub fn ps(root: &Root, id: &str) -> Result<Vec<i32>> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    if status(&dir, &st).0 == Status::Stopped {
        // Nothing outlives the init of a pid namespace of its own: what the
        // cgroup holds now is another container's (see kill).
        if super::has_private_pid_ns(&st) {
            return Ok(Vec::new());
        }
        return match super::open_cgroup(&st) {
            Some(cg) => Ok(cg.pids()?),
            None => Ok(Vec::new()),
        };
    }
    Ok(require_cgroup(&st)?.pids()?)
}

/// Apply new resource limits to a running container.
pub fn update(root: &Root, id: &str, resources: &LinuxResources) -> Result<()> {
    let dir = root.open_container(id)?;
    let mut st = dir.read_state()?;
    if status(&dir, &st).0 == Status::Stopped {
        return Err(Error::State(format!("container \"{id}\" is not running")));
    }
    require_cgroup(&st)?.update(resources)?;
    // Keep the recorded config in step, as runc does.
    if let Some(linux) = st.config.linux_mut() {
        linux.set_resources(Some(resources.clone()));
    }
    dir.write_state(&st)
}

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

/// runc's `events`: with `stats`, one stats event; otherwise a stats event
/// every `interval` and an `oom` event whenever the kernel OOM-kills in the
/// container, until it stops. Each event is one JSON line given to `out`.
pub fn events(root: &Root, id: &str, interval: Duration, stats: bool, out: &mut dyn FnMut(String)) -> Result<()> {
    let (st, cg) = {
        let dir = root.open_container(id)?;
        let st = dir.read_state()?;
        if status(&dir, &st).0 == Status::Stopped {
            return Err(Error::State(format!("container \"{id}\" is not running")));
        }
        let cg = require_cgroup(&st)?;
        (st, cg)
    };
    let line = |typ: &str, data: Option<serde_json::Value>| {
        serde_json::to_string(&Event { typ, id, data }).unwrap_or_default()
    };
    if stats {
        let s = serde_json::to_value(cg.stats()?).unwrap_or_default();
        out(line("stats", Some(s)));
        return Ok(());
    }
    let mut oom = cg.oom_watcher()?;
    let init = crate::process::pidfd::PidFd::reopen(st.pid, st.start_time);
    // Every OOM kill of the container's life is reported, also one that
    // happened before this command started watching (a shim starts it
    // alongside the container, and a fast program may be killed first):
    // the watcher's first check reports those.
    if oom_killed(&mut oom) {
        out(line("oom", None));
    }
    loop {
        let Some(init) = init.as_ref().filter(|i| !i.exited()) else { return Ok(()) };
        let ts = Timespec { tv_sec: interval.as_secs() as i64, tv_nsec: interval.subsec_nanos() as i64 };
        let mut fds = vec![PollFd::new(init, PollFlags::IN)];
        if let Some(w) = &oom {
            fds.push(PollFd::new(w, w.poll_flags()));
        }
        let n = match poll(&mut fds, Some(&ts)) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll", "events", e)),
        };
        if n == 0 {
            let s = serde_json::to_value(cg.stats()?).unwrap_or_default();
            out(line("stats", Some(s)));
            continue;
        }
        let exited = fds[0].revents().contains(PollFlags::IN);
        let oom_ready = fds.get(1).is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        // An OOM kill of the init itself ends the container: report it
        // even if its notification raced with the exit.
        if (oom_ready || exited) && oom_killed(&mut oom) {
            out(line("oom", None));
        }
        if exited {
            return Ok(());
        }
    }
}

/// Whether the watch saw OOM kills since it last looked; a cgroup that is
/// gone ends the watch.
fn oom_killed(watch: &mut Option<fdbox_cgroups::OomWatcher>) -> bool {
    match watch.as_mut().map(|w| w.check()) {
        Some(Ok(seen)) => seen,
        Some(Err(_)) => {
            *watch = None;
            false
        }
        None => false,
    }
}

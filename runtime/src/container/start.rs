//! `start`: release a created container's init.

use std::os::fd::AsFd;

use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::{status, Status};
use crate::error::{Error, Result, SysContext};
use crate::hooks::{self, HookState};
use crate::process::pidfd::PidFd;
use crate::state::{Root, State, StateDir, INIT_SOCK};

/// Connect to the init's `init.sock` and say "start". The init answers by
/// exec'ing the user's program: the connection is close-on-exec in the
/// init, so end-of-file means the program runs, and any bytes are the
/// error that stopped it.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    let (current, init) = status(&dir, &st);
    match current {
        Status::Created => {}
        Status::Stopped => return Err(Error::State(format!("cannot start container \"{id}\": it has stopped"))),
        s => return Err(Error::State(format!("cannot start container \"{id}\": it is {}", s.as_str()))),
    }
    release(root, dir, &st, init.as_ref())
}

/// `start` of the container a foreground `run` just created: its state and
/// init are known, so only check that nobody started it meanwhile.
pub(super) fn start_created(root: &Root, st: &State, init: &PidFd) -> Result<()> {
    let dir = root.open_container(&st.id)?;
    if !dir.has(INIT_SOCK) {
        return Err(Error::State(format!("cannot start container \"{}\": it was started by someone else", st.id)));
    }
    release(root, dir, st, Some(init))
}

/// Tell the created init to exec, then run the poststart hooks.
fn release(root: &Root, dir: StateDir, st: &State, init: Option<&PidFd>) -> Result<()> {
    let id = st.id.as_str();
    let sock = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .sys("socket", || INIT_SOCK.into())?;
    let addr = SocketAddrUnix::new(dir.socket_path(INIT_SOCK)).sys("connect", || INIT_SOCK.into())?;
    rustix::net::connect(&sock, &addr).sys("connect", || format!("{}/{INIT_SOCK}", dir.path()))?;
    // sd_notify: our socket must exist before the program can notify.
    let notify = crate::notify::bind(&dir)?;
    // From here on the container counts as started, whatever the exec does.
    dir.unlink(INIT_SOCK)?;
    rustix::io::write(&sock, b"start").sys("write", || INIT_SOCK.into())?;
    crate::debug!("start {id}: told init pid {} to run the program", st.pid);
    let mut buf = vec![0u8; 4096];
    let n = loop {
        match rustix::io::read(sock.as_fd(), &mut buf) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::CONNRESET) => break 0,
            other => break other.sys("read", || INIT_SOCK.into())?,
        }
    };
    if n > 0 {
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        // A failed startContainer hook stops the container, which is then
        // destroyed (runtime-spec lifecycle steps 7 → 12, 13).
        if hooks::is_failure_of(&message, hooks::Kind::StartContainer) {
            drop(dir);
            let _ = super::delete(root, id, true);
            return Err(Error::Hook(message));
        }
        return Err(Error::Init(message));
    }
    // The container runs: other commands (a hook's `fdbox state`) may lock
    // its state dir now.
    drop(dir);
    // A failed poststart hook fails start and stops the container, which is
    // then destroyed and its poststop hooks run (runtime-spec 1.3 lifecycle
    // steps 9 → 12, 13; runc kills the container too).
    crate::debug!("start {id}: the program runs");
    let state = HookState::of(st, "running");
    if let Err(e) = hooks::run(&st.config, hooks::Kind::Poststart, &state) {
        if let Err(d) = super::delete(root, id, true) {
            crate::log::warn(&format!("destroying container \"{id}\" after its poststart hook failed: {d}"));
        }
        return Err(e);
    }
    // As runc: start returns once the container said READY (or died).
    if let (Some(notify), Some(init)) = (notify, init) {
        notify.forward(init)?;
    }
    Ok(())
}

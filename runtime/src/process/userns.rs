//! A user namespace that no container lives in: what a mount's own
//! `uidMappings`/`gidMappings` are idmapped with.

use std::os::fd::AsFd;

use fdbox_idmap::{write_mappings, IdMap, UserNsFd};
use rustix::fs::{Mode, OFlags};

use crate::error::{Result, SysContext};
use crate::process::pidfd::PidFd;
use crate::sys::{self, Cloned};

/// Clone a child into a new user namespace, write its mappings, keep the
/// namespace as an fd, and let the child go. The child only blocks on a
/// pipe until the parent closes it, then `_exit`s.
pub fn with_mappings(uid: &[IdMap], gid: &[IdMap]) -> Result<UserNsFd> {
    let (release_rx, release_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).sys("pipe", || "userns holder".into())?;
    // SAFETY: the fdbox process that creates containers has one thread.
    let cloned = unsafe { sys::clone3(libc::CLONE_NEWUSER as u64, None) }.sys("clone3", || "CLONE_NEWUSER".into())?;
    let (pid, pidfd) = match cloned {
        Cloned::Child => {
            drop(release_tx);
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&release_rx, &mut b);
            sys::exit_now(0)
        }
        Cloned::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(release_rx);
    let child = PidFd::new(pidfd, pid.as_raw_nonzero().get());
    let result = (|| {
        // Our unreaped child: /proc/<pid> is it.
        let dir = rustix::fs::open(format!("/proc/{}", child.pid()), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .sys("open", || format!("/proc/{}", child.pid()))?;
        write_mappings(dir.as_fd(), uid, gid, false)?;
        Ok(UserNsFd::of_process(dir.as_fd())?)
    })();
    drop(release_tx);
    let _ = child.reap();
    result
}

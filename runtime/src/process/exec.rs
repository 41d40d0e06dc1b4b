//! The child side of `exec`: a process that joins a running container
//! through its init's pidfd and runs one program there.
//!
//! ```text
//! setsid → (wait for cgroup) → setns(pidfd, all namespaces) → terminal → cwd
//!   → rlimits → user + capabilities → no_new_privs → exec
//! ```
//! The pid namespace was joined by the parent before clone3 (setns on a
//! pid namespace only affects children), so this process is born inside it.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};

use oci_spec::runtime::Process;
use rustix::thread::{move_into_thread_name_spaces, ThreadNameSpaceType};

use crate::error::{Error, Result, SysContext};
use crate::process::init::{become_process, open_terminal, send_master};
use crate::process::sync::{Msg, SyncSocket};
use crate::security::caps::CapMasks;
use crate::sys;

/// What the exec'd process needs, prepared by the parent before clone3.
pub struct ExecCtx<'a> {
    pub process: &'a Process,
    pub sync: SyncSocket,
    /// The container's init.
    pub init: BorrowedFd<'a>,
    /// Namespaces to join through the init's pidfd (no pid: see above).
    pub namespaces: ThreadNameSpaceType,
    /// The init's root, to chroot into, when the container has no mount
    /// namespace of its own (the init is chrooted in ours).
    pub root: Option<BorrowedFd<'a>>,
    /// Our way into the container's v1 cgroups, taken first thing.
    pub self_attach: Option<fdbox_cgroups::SelfAttach>,
    pub terminal: bool,
    pub extra_fds: u32,
    pub caps: Option<CapMasks>,
    /// The container's seccomp profile, compiled by the parent.
    pub seccomp: Option<crate::security::seccomp::Prepared>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The container's `linux` section (its personality applies to us too).
    pub linux: Option<&'a oci_spec::runtime::Linux>,
}

/// Entry point of the exec child. Never returns: it execs, or reports the
/// error on the sync socket and exits 127. The sync socket is close-on-exec,
/// so the parent reads end-of-file exactly when the exec succeeded.
pub fn run(mut ctx: ExecCtx<'_>) -> ! {
    let err = match setup(&mut ctx) {
        Ok(exe) => {
            let e = sys::execve(&exe, &ctx.argv, &ctx.envp);
            Error::Init(format!("exec {:?}: {}", exe, fdbox_mount::describe(e)))
        }
        Err(e) => e,
    };
    let _ = ctx.sync.send(&Msg::Error { message: err.to_string() }, &[]);
    sys::exit_now(127)
}

fn setup(ctx: &mut ExecCtx<'_>) -> Result<CString> {
    // Die with `fdbox exec` until the program runs.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .sys("prctl", || "PR_SET_PDEATHSIG".into())?;
    // Not dumpable while we are the runtime (its binary is our
    // /proc/self/exe, the init's pidfd is in our fd table): no container
    // process may open our /proc files (CVE-2019-5736 class). execve makes
    // the program dumpable again.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .sys("prctl", || "PR_SET_DUMPABLE".into())?;
    // We hold a copy of `fdbox exec`'s fd table (the container's cgroup
    // directories, its caller's fds), and we are in the container's pid
    // namespace already: keep only what we use and the fds passed on.
    if let Some(s) = &ctx.seccomp {
        s.drop_parent_end();
    }
    let mut keep = vec![ctx.sync.as_fd(), ctx.init];
    keep.extend(ctx.root);
    keep.extend(ctx.self_attach.iter().flat_map(|a| a.fds()));
    keep.extend(ctx.seccomp.iter().flat_map(|s| s.fds()));
    sys::close_from_except(3 + ctx.extra_fds, &keep).sys("close_range", || "fds the exec child does not need".into())?;
    // Into the container's v1 cgroups (we were born in its cgroup2 one).
    if let Some(a) = ctx.self_attach.take() {
        a.join()?;
    }
    // Through the host's /proc, before we join the container's mounts.
    crate::process::attrs::apply_oom_score_adj(ctx.process)?;
    // All of the container's namespaces in one call; joining the mount
    // namespace also puts our root and cwd at the container's root.
    if !ctx.namespaces.is_empty() {
        move_into_thread_name_spaces(ctx.init, ctx.namespaces).sys("setns", || "container namespaces through the init's pidfd".into())?;
    }
    if let Some(root) = ctx.root {
        rustix::process::fchdir(root).sys("fchdir", || "the container's root".into())?;
        rustix::process::chroot(".").sys("chroot", || "the container's root".into())?;
    }
    // In the container now: the init's pidfd (and its root's fd) are not
    // needed any more (and not used after this).
    let mut keep = vec![ctx.sync.as_fd()];
    keep.extend(ctx.seccomp.iter().flat_map(|s| s.fds()));
    sys::close_from_except(3 + ctx.extra_fds, &keep).sys("close_range", || "the init's pidfd".into())?;
    // A pid namespace joined only applies to our children: fork the process
    // that runs there, born with the container's root and cwd and with no
    // fd but the ones kept above. This one hands it to `fdbox exec` (a
    // subreaper: it becomes the parent) and exits.
    let forked = ctx.namespaces.contains(ThreadNameSpaceType::PROCESS_ID);
    if forked {
        // SAFETY: we are a clone of the single-threaded `fdbox exec` and
        // started no thread.
        let cloned = unsafe { sys::clone3(0, None) }.sys("clone3", || "the process in the container's pid namespace".into())?;
        if let sys::Cloned::Parent { pid, pidfd } = cloned {
            let sent = ctx.sync.send(&Msg::Spawned { pid: pid.as_raw_nonzero().get() }, &[pidfd.as_fd()]);
            sys::exit_now(if sent.is_ok() { 0 } else { 1 })
        }
    }
    let process = ctx.process;
    // A session (and process group) of its own, with or without a
    // terminal, as runc does: not the process group of `fdbox exec`'s
    // caller (whose job-control signals it would get, and which is no
    // group inside the container's pid namespace: getpgrp() said 0).
    rustix::process::setsid().sys("setsid", String::new)?;
    if ctx.terminal {
        let (master, _slave) = open_terminal(process)?;
        send_master(&ctx.sync, master)?;
    }
    // Before become_process: without no_new_privs it installs the
    // container's seccomp filter, which may deny close_range (older
    // profiles do not list it). Every fd opened after this is ours and
    // close-on-exec.
    sys::cloexec_from(3 + ctx.extra_fds).sys("close_range", || "fds above the passed ones".into())?;
    let exe = become_process(process, ctx.linux, ctx.caps.as_ref(), ctx.seccomp.as_ref(), &ctx.argv[0], &mut ctx.envp)?;
    // With no_new_privs, seccomp goes in as the very last step.
    let nnp = process.no_new_privileges() == Some(true);
    if nnp {
        rustix::thread::set_no_new_privs(true).sys("prctl", || "PR_SET_NO_NEW_PRIVS".into())?;
    }
    rustix::process::set_parent_process_death_signal(None).sys("prctl", || "PR_SET_PDEATHSIG".into())?;
    // A forked process had no parent-death signal (its parent exits): if
    // `fdbox exec` died meanwhile, its end of the sync socket is closed, and
    // the program must not run orphaned.
    if forked && peer_gone(&ctx.sync) {
        return Err(Error::Init("fdbox exec went away before the program ran".into()));
    }
    sys::reset_signals();
    if let (true, Some(s)) = (nnp, &ctx.seccomp) {
        s.install()?;
    }
    Ok(exe)
}

/// Whether the other end of the sync socket was closed.
fn peer_gone(sync: &SyncSocket) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(sync, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0 && fds[0].revents().contains(PollFlags::HUP))
}

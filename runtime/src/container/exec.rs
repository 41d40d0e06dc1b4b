//! `exec`: run another process in a running container, joined through the
//! init's pidfd.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, Process};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::ThreadNameSpaceType as Ns;

use super::run::{wait, RawTerminal, FORWARDED};
use super::{open_cgroup, status, Status};
use crate::error::{Error, Result, SysContext};
use crate::fdpass;
use crate::process::exec::{self, ExecCtx};
use crate::process::pidfd::PidFd;
use crate::process::sync::{Msg, SyncSocket};
use crate::security::caps::CapMasks;
use crate::state::Root;
use crate::sys::{self, Cloned, SignalFd};

/// How the process to run is described: a whole OCI process (`-p`), or
/// the container's own process with runc's `exec` flags applied.
#[derive(Debug, Default, Clone)]
pub struct ExecOpts {
    pub id: String,
    pub process: Option<Process>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub console_socket: Option<String>,
    pub pidfd_socket: Option<String>,
    pub pid_file: Option<String>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

/// The process `exec` runs, built as runc builds it.
fn build_process(base: Option<&Process>, o: &ExecOpts) -> Result<Process> {
    if let Some(p) = &o.process {
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::Config("process.json: args must not be empty".into()));
        }
        return Ok(p.clone());
    }
    if o.args.is_empty() {
        return Err(Error::Config("exec: no command given".into()));
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &o.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.into());
    }
    let mut user = p.user().clone();
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let bad = || Error::Config(format!("--user {u:?}: expected uid[:gid] as numbers"));
        let uid: u32 = uid.parse().map_err(|_| bad())?;
        let gid: u32 = match gid {
            Some(g) => g.parse().map_err(|_| bad())?,
            None => 0,
        };
        crate::process::attrs::check_id("--user uid", uid)?;
        crate::process::attrs::check_id("--user gid", gid)?;
        user.set_uid(uid);
        user.set_gid(gid);
    }
    if !o.additional_gids.is_empty() {
        for g in &o.additional_gids {
            crate::process::attrs::check_id("--additional-gids", *g)?;
        }
        user.set_additional_gids(Some(o.additional_gids.clone()));
    }
    p.set_user(user);
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let cap: oci_spec::runtime::Capability = serde_json::from_value(serde_json::Value::String(
                if name.to_ascii_uppercase().starts_with("CAP_") { name.to_ascii_uppercase() } else { format!("CAP_{}", name.to_ascii_uppercase()) },
            ))
            .map_err(|_| Error::Config(format!("unknown capability {name:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, pm) = (add(c.bounding()), add(c.effective()), add(c.permitted()));
            c.set_bounding(b);
            c.set_effective(e);
            c.set_permitted(pm);
        }
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

/// Run the process; returns its exit code (0 right away with `detach`).
pub fn exec(root: &Root, o: &ExecOpts) -> Result<i32> {
    let (st, init) = {
        let dir = root.open_container(&o.id)?;
        let st = dir.read_state()?;
        match status(&dir, &st) {
            (Status::Stopped, _) | (_, None) => {
                return Err(Error::State(format!("cannot exec in container \"{}\": it is not running", o.id)))
            }
            (Status::Paused, _) if !o.ignore_paused => {
                return Err(Error::State(format!("cannot exec in container \"{}\": it is paused", o.id)))
            }
            (_, Some(init)) => (st, init),
        }
    };
    let process = build_process(st.config.process().as_ref(), o)?;
    crate::process::attrs::validate_process(&process)?;
    let terminal = process.terminal().unwrap_or(false);
    if o.console_socket.is_some() && !terminal {
        return Err(Error::Config("--console-socket given but the process has no terminal".into()));
    }
    if terminal && o.detach && o.console_socket.is_none() {
        return Err(Error::Config("a detached exec with a terminal needs --console-socket".into()));
    }
    if terminal && !o.detach && o.console_socket.is_none() {
        super::run::require_host_terminal()?;
    }

    // Every namespace the container has, as the init holds it.
    let mut namespaces = Ns::empty();
    let mut join_pid = false;
    for ns in st.config.linux().as_ref().and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
        namespaces |= match ns.typ() {
            LinuxNamespaceType::Mount => Ns::MOUNT,
            LinuxNamespaceType::Network => Ns::NETWORK,
            LinuxNamespaceType::Ipc => Ns::INTER_PROCESS_COMMUNICATION,
            LinuxNamespaceType::Uts => Ns::HOST_NAME_AND_NIS_DOMAIN_NAME,
            LinuxNamespaceType::Cgroup => Ns::CONTROL_GROUP,
            LinuxNamespaceType::User => Ns::USER,
            LinuxNamespaceType::Time => Ns::TIME,
            LinuxNamespaceType::Pid => {
                join_pid = true;
                continue;
            }
        };
    }
    if join_pid {
        // Joining a pid namespace only affects children: our child joins
        // it with the rest (not us: it would see our fds and our root from
        // birth) and forks the process that runs there, which then becomes
        // our child (as a subreaper) once that child has exited.
        namespaces |= Ns::PROCESS_ID;
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).sys("prctl", || "PR_SET_CHILD_SUBREAPER".into())?;
    }

    // Without a mount namespace of its own the container shares ours, and
    // its init is chrooted: take its root (after the open, the init still
    // lives, so the pid was its), for the child to chroot into.
    let root = if namespaces.contains(Ns::MOUNT) {
        None
    } else {
        let path = format!("/proc/{}/root", init.pid());
        let fd = rustix::fs::open(path.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).sys("open", || path.clone())?;
        if init.exited() {
            return Err(Error::State(format!("cannot exec in container \"{}\": it is not running", o.id)));
        }
        Some(fd)
    };
    let cgroup = open_cgroup(&st);
    // Born in the cgroup2 directory, it moves itself into the v1 ones.
    let self_attach = cgroup.as_ref().map(|c| c.self_attach()).transpose()?;
    let caps = process.capabilities().as_ref().map(CapMasks::from_spec).transpose()?;
    let argv = cstrings(process.args().as_deref().unwrap_or_default())?;
    let envp = cstrings(process.env().as_deref().unwrap_or_default())?;
    let sigfd = if o.detach { None } else { Some(SignalFd::new(FORWARDED).sys("signalfd", String::new)?) };
    // exec'd processes run under the container's profile too.
    let seccomp = crate::security::seccomp::prepare(&st.config, &o.id, &st.bundle)?;
    let (parent_sync, child_sync) = SyncSocket::pair().sys("socketpair", || "sync".into())?;

    // SAFETY: the fdbox process never starts a thread (see DESIGN.md).
    let cloned = unsafe { sys::clone3(0, cgroup.as_ref().and_then(|c| c.clone_into_fd())) }.sys("clone3", || "exec".into())?;
    let (pid, pidfd) = match cloned {
        Cloned::Child => {
            drop(parent_sync);
            exec::run(ExecCtx {
                process: &process,
                sync: child_sync,
                init: init.as_fd(),
                namespaces,
                root: root.as_ref().map(|r| r.as_fd()),
                self_attach,
                terminal,
                extra_fds: o.preserve_fds,
                caps,
                seccomp,
                argv,
                envp,
                linux: st.config.linux().as_ref(),
            })
        }
        Cloned::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((child_sync, self_attach));
    let mut child = PidFd::new(pidfd, pid.as_raw_nonzero().get());
    let result = (|| {
        if join_pid {
            child = wait_spawned(&parent_sync, &child)?;
        }
        if let Some(s) = seccomp {
            s.send_state(child.pid())?;
        }
        wait_exec(&parent_sync, o)
    })();
    let console = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = child.signal(libc::SIGKILL);
            let _ = child.reap();
            return Err(e);
        }
    };
    crate::debug!("exec {}: process pid {} runs", o.id, child.pid());
    if let Some(path) = &o.pid_file {
        super::create::write_pid_file(path, child.pid())?;
    }
    if let Some(sock) = &o.pidfd_socket {
        let conn = fdpass::connect(sock).sys("connect", || format!("pidfd socket {sock}"))?;
        fdpass::send(conn.as_fd(), b"setns", &[child.as_fd()]).sys("sendmsg", || format!("pidfd socket {sock}"))?;
    }
    let Some(sigfd) = sigfd else { return Ok(0) };
    let raw = console.as_ref().map(|m| RawTerminal::enter(m.as_fd()));
    let waited = wait(&child, &sigfd, console.as_ref());
    drop(raw);
    let code = child.reap().sys("waitid", || "exec process".into())?;
    crate::debug!("exec {}: process exited ({code})", o.id);
    Ok(waited?.unwrap_or(code))
}

/// Wait for the child to join the container and fork the process that
/// runs there; reap the child and return that process (ours now: we are a
/// subreaper).
fn wait_spawned(sync: &SyncSocket, child: &PidFd) -> Result<PidFd> {
    loop {
        let mut fds = [PollFd::new(sync, PollFlags::IN)];
        match poll(&mut fds, None) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll", "sync socket", e)),
            Ok(_) => break,
        }
    }
    let spawned = match sync.recv().sys("recvmsg", || "sync socket".into())? {
        Some((Msg::Spawned { pid }, mut fds)) => {
            let pidfd = fds.pop().ok_or_else(|| Error::Init("exec child: no pidfd of the process it forked".into()))?;
            PidFd::new(pidfd, pid)
        }
        Some((Msg::Error { message }, _)) => return Err(Error::Init(message)),
        None => return Err(Error::Init("exec child exited before it joined the container".into())),
        Some(_) => return Err(Error::Init("unexpected message from the exec child".into())),
    };
    child.reap().sys("waitid", || "exec child".into())?;
    Ok(spawned)
}

/// Wait until the child has exec'd (end-of-file on the close-on-exec sync
/// socket) or failed; forward its pty master if it opened one.
fn wait_exec(sync: &SyncSocket, o: &ExecOpts) -> Result<Option<OwnedFd>> {
    let mut console = None;
    loop {
        let mut fds = [PollFd::new(sync, PollFlags::IN)];
        match poll(&mut fds, None) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll", "sync socket", e)),
            Ok(_) => {}
        }
        match sync.recv().sys("recvmsg", || "sync socket".into())? {
            // Closed: the program runs (a child that died before exec
            // without a word shows in its exit code).
            None => return Ok(console),
            Some((Msg::Error { message }, _)) => return Err(Error::Init(message)),
            Some((Msg::Console { name }, mut fds)) => {
                let master = fds.pop().ok_or_else(|| Error::Init("console message without a pty".into()))?;
                match &o.console_socket {
                    Some(path) => {
                        let conn = fdpass::connect(path).sys("connect", || format!("console socket {path}"))?;
                        fdpass::send(conn.as_fd(), name.as_bytes(), &[master.as_fd()]).sys("sendmsg", || format!("console socket {path}"))?;
                    }
                    None => console = Some(master),
                }
            }
            Some(_) => return Err(Error::Init("unexpected message from the exec child".into())),
        }
    }
}

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| Error::Config(format!("NUL byte in {s:?}")))).collect()
}

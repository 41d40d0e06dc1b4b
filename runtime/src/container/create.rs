//! `create`: one straight line from the bundle to a container whose init
//! waits for `start`. The order matters where a comment says so.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use fdbox_mount::rootfs::{self, MountEntry};
use oci_spec::runtime::LinuxNamespaceType;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, Result, SysContext};
use crate::fdpass;
use crate::hooks::{self, HookState};
use crate::process::init::{self, InitCtx};
use crate::process::pidfd::{proc_start_time, PidFd};
use crate::process::sync::{Msg, SyncSocket};
use crate::security::caps::CapMasks;
use crate::state::{self, Root, State, StateDir, Unfinished, INIT_SOCK};
use crate::sys::{self, Cloned};
use fdbox_cgroups::Cgroup;

/// How long the init may take to set up before `create` gives up on it.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The options of `create` (and of `run`).
#[derive(Debug, Default, Clone)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: String,
    pub console_socket: Option<String>,
    pub pidfd_socket: Option<String>,
    pub pid_file: Option<String>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Keep the pty master (a foreground `run` with a terminal and no
    /// console socket proxies it itself).
    pub keep_console: bool,
}

/// A created container: its init (we are its parent), when kept the pty
/// master, and what a foreground `run` needs to start and delete it
/// without reading it back (the state written, the cgroup still open).
pub struct Created {
    pub init: PidFd,
    pub console: Option<OwnedFd>,
    pub state: State,
    pub cgroup: Option<Cgroup>,
}

/// Create the container `o.id`. On any failure nothing is left behind: the
/// init is killed and reaped, and the state directory removed.
pub fn create(root: &Root, o: &CreateOpts) -> Result<Created> {
    // The bundle and its config first: a bad one fails before anything is
    // made, and nothing is left if `create` is killed while reading it.
    state::validate_id(&o.id)?;
    let bundle = absolute(&o.bundle)?;
    let bundle_fd = rustix::fs::open(bundle.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| match e {
            Errno::NOENT | Errno::NOTDIR => Error::Config(format!("bundle {bundle}: no such directory")),
            e => Error::sys("open", format!("bundle {bundle}"), e),
        })?;
    let spec = crate::spec::load(bundle_fd.as_fd(), &bundle)?;
    crate::debug!("create {}: bundle {bundle}, config loaded", o.id);
    let mut guard = Cleanup { dir: Some(root.create_container(&o.id)?), child: None, creating: None, cgroup: None, poststop: None, armed: true };
    let created = create_in(&mut guard, o, Bundle { path: bundle, fd: bundle_fd, spec })?;
    guard.armed = false;
    crate::debug!("create {}: created, init pid {}", o.id, created.state.pid);
    Ok(created)
}

/// Undoes a failed create: kills and reaps the init, removes the state dir,
/// and then, once the init existed, runs the poststop hooks (runtime-spec
/// lifecycle: a failed create hook continues at "destroy", then poststop).
struct Cleanup {
    dir: Option<StateDir>,
    child: Option<PidFd>,
    creating: Option<fdbox_cgroups::Creating>,
    cgroup: Option<Cgroup>,
    poststop: Option<(oci_spec::runtime::Spec, HookState)>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(init) = self.child.take() {
            let _ = init.signal(libc::SIGKILL);
            let _ = init.reap();
        }
        if let Some(c) = self.creating.take() {
            let _ = c.abandon();
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.remove();
        }
        if let Some((spec, state)) = self.poststop.take() {
            hooks::run_warn(&spec, hooks::Kind::Poststop, &state.with_status("stopped"));
        }
    }
}

/// The bundle as `create` read it before taking the state directory.
struct Bundle {
    path: String,
    fd: OwnedFd,
    spec: oci_spec::runtime::Spec,
}

fn create_in(guard: &mut Cleanup, o: &CreateOpts, b: Bundle) -> Result<Created> {
    let dir = guard.dir.as_ref().ok_or_else(|| Error::State("no state directory".into()))?;
    let Bundle { path: bundle, fd: bundle_fd, spec } = b;
    // sd_notify: the container gets a socket of ours (see notify.rs).
    let spec = crate::notify::setup_spec(spec, dir)?;
    let process = spec.process().as_ref().ok_or_else(|| Error::Config("process is missing".into()))?;
    let terminal = process.terminal().unwrap_or(false);
    if o.console_socket.is_some() && !terminal {
        return Err(Error::Config("--console-socket given but process.terminal is false".into()));
    }
    if terminal && o.console_socket.is_none() && !o.keep_console {
        return Err(Error::Config("process.terminal is true: a detached container needs --console-socket".into()));
    }
    if terminal && o.console_socket.is_none() && o.keep_console {
        super::run::require_host_terminal()?;
    }

    // The rootfs, relative to the bundle unless absolute.
    let root_cfg = spec.root().as_ref().ok_or_else(|| Error::Config("root is missing".into()))?;
    let root_path = root_cfg.path().to_string_lossy().into_owned();
    let rootfs_path = if root_path.starts_with('/') { root_path.clone() } else { format!("{bundle}/{root_path}") };
    // No symlink anywhere in root.path (runc refuses one too: the rootfs
    // would be wherever the link points when it is read).
    let rootfs_dir = rustix::fs::openat2(&bundle_fd, root_path.as_str(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), rustix::fs::ResolveFlags::NO_SYMLINKS)
        .map_err(|e| match e {
            Errno::NOENT | Errno::NOTDIR => Error::Config(format!("rootfs {rootfs_path}: no such directory")),
            Errno::LOOP => Error::Config(format!("invalid rootfs {rootfs_path}: not an absolute path, or a symlink")),
            e => Error::sys("openat", format!("rootfs {rootfs_path}"), e),
        })?;

    // Namespaces: new ones become clone3 flags; existing ones (by path) are
    // opened here, in the host's view, and joined by the init with setns.
    let linux = spec.linux().as_ref().ok_or_else(|| Error::Config("linux is missing".into()))?;
    let mut clone_flags = 0u64;
    let mut join = Vec::new();
    let mut join_pid = None;
    let mut new_cgroupns = false;
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        match ns.path() {
            None if ns.typ() == LinuxNamespaceType::Cgroup => new_cgroupns = true,
            None => clone_flags |= ns.typ() as u64,
            Some(p) => {
                let fd = crate::spec::open_namespace(p, &format!("{:?} namespace {}", ns.typ(), p.display()))?;
                if ns.typ() == LinuxNamespaceType::Pid {
                    join_pid = Some(fd);
                } else if ns.typ() == LinuxNamespaceType::User {
                    // Joined first: it owns the others.
                    join.insert(0, (ns.typ(), fd));
                } else {
                    join.push((ns.typ(), fd));
                }
            }
        }
    }

    // Mounts are prepared here, on the host side, as detached mount fds:
    // bind sources resolve in the host's mount namespace (even when the
    // container joins another one), and the init inherits the fds.
    let rootfs = rootfs::prepare_rootfs(rootfs_dir.as_fd())?;
    let mut mounts = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let entry = MountEntry {
            destination: m.destination().to_string_lossy().into_owned(),
            typ: m.typ().clone(),
            source: m.source().as_ref().map(|s| s.to_string_lossy().into_owned()),
            options: m.options().clone().unwrap_or_default(),
        };
        let mut entry = entry;
        let earlier: Vec<&str> = mounts.iter().map(|(e, _): &(MountEntry, _)| e.destination.as_str()).collect();
        let in_root = match (&entry.source, entry.parsed().map(|o| o.bind && o.idmap.is_none())) {
            (Some(src), Ok(true)) => rootfs::source_in_root(src, &bundle, &rootfs_path, &earlier),
            _ => None,
        };
        // A bind source under an earlier mount of the container (by its
        // host path in the rootfs) is bound by the init, after that mount.
        let prepared = match in_root {
            Some(inside) => {
                entry.source = Some(inside);
                rootfs::check_bind(&entry).map(|_| None)
            }
            None => rootfs::prepare_host_side(&entry, bundle_fd.as_fd()),
        }
        .map_err(|e| Error::Config(format!("mount {}: {e}", entry.destination)))?;
        mounts.push((entry, prepared));
    }
    // Without a new user namespace, `idmap` binds are mapped now (with the
    // mount's own mappings); with one, once its mappings are written.
    let new_userns = clone_flags & LinuxNamespaceType::User as u64 != 0;
    let uid_maps = crate::spec::id_maps(linux.uid_mappings());
    let gid_maps = crate::spec::id_maps(linux.gid_mappings());
    if !new_userns {
        idmap_binds(&spec, &mounts, None)?;
    }
    // Read once: the cgroup hierarchies to mount, the layout, the cgroup.
    let mountinfo = fdbox_cgroups::read_proc("/proc/self/mountinfo")?;
    let cgroups = rootfs::cgroup_hierarchies(&fdbox_cgroups::visible_mountinfo(&mountinfo));

    let caps = process.capabilities().as_ref().map(CapMasks::from_spec).transpose()?;
    let argv = cstrings(process.args().as_deref().unwrap_or_default(), "process.args")?;
    let listen_fds = listen_fds();
    let mut env_list = process.env().clone().unwrap_or_default();
    if let Some(n) = listen_fds {
        env_list.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env_list.push(format!("LISTEN_FDS={n}"));
        env_list.push("LISTEN_PID=1".into());
    }
    let envp = cstrings(&env_list, "process.env")?;

    // init.sock: where the created init waits for `start`. Bound through
    // the state dirfd, so the root's path length does not matter.
    let listener = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .sys("socket", || "init.sock".into())?;
    let addr = SocketAddrUnix::new(dir.socket_path(INIT_SOCK)).sys("bind", || "init.sock".into())?;
    rustix::net::bind(&listener, &addr).sys("bind", || format!("{}/{INIT_SOCK}", dir.path()))?;
    rustix::net::listen(&listener, 1).sys("listen", || "init.sock".into())?;

    // Compiled before clone3, so that a bad profile is a create error;
    // with SCMP_ACT_NOTIFY this also connects to listenerPath, a host path.
    let seccomp = crate::security::seccomp::prepare(&spec, &o.id, &bundle)?;

    let (parent_sync, child_sync) = SyncSocket::pair().sys("socketpair", || "sync".into())?;

    // A fresh cgroup per container (kernel 6.12+ kills children cloned into
    // a cgroup that once saw cgroup.kill). The init is born in its cgroup2
    // directory (CLONE_INTO_CGROUP), made now; v1 directories are made
    // after clone3, while the init sets up (a mkdir each: half a
    // millisecond on a host with nine hierarchies), and it moves itself
    // into them once we say "go" (see SelfAttach).
    let layout = fdbox_cgroups::detect_in(&mountinfo)?;
    let planned = Cgroup::plan_in(&mountinfo, layout, linux.cgroups_path().as_ref().map(|p| p.to_string_lossy()).as_deref(), &o.id, linux.resources().as_ref())?;
    // From here on a `kill -9` of create leaves things only `delete` can
    // undo: record them before each is made (state.json comes last).
    let mut unfinished = Unfinished { cgroup: Some(planned.path().to_string()), cgroup_layout: Some(layout), ..Unfinished::default() };
    dir.write_unfinished(&unfinished)?;
    let creating = planned.begin()?;
    for warning in linux.resources().as_ref().map(fdbox_cgroups::ignored_resources).unwrap_or_default() {
        crate::log::warn(&warning);
    }
    if layout == fdbox_cgroups::Layout::Unified && linux.resources().as_ref().and_then(|r| r.memory().as_ref()?.kernel_tcp()).is_some_and(|v| v != 0) {
        crate::log::debug("memory.kernelTCP is ignored: cgroup v2 has no TCP memory limit");
    }
    let cgroup_path = creating.path().to_string();
    // "go" comes with the v1 cgroup (none on pure v2) or the id maps.
    let await_go = layout != fdbox_cgroups::Layout::Unified || new_userns;
    guard.creating = Some(creating);
    let creating = guard.creating.as_ref().ok_or_else(|| Error::State("lost the cgroup".into()))?;

    // Joining a pid namespace only affects children, so the parent joins it
    // and the init is born inside.
    if let Some(fd) = &join_pid {
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(rustix::thread::LinkNameSpaceType::ProcessID))
            .sys("setns", || "pid namespace".into())?;
    }

    // A new time namespace is made here rather than by clone3, so that its
    // offsets can be written first (see process/timens.rs).
    let timens = crate::process::timens::prepare(&spec)?;
    if timens.is_some() {
        clone_flags &= !(LinuxNamespaceType::Time as u64);
    }

    // SAFETY: fdbox never starts a thread in the process that creates
    // containers (see DESIGN.md), so this process is single-threaded.
    let cloned = unsafe { sys::clone3(clone_flags, creating.clone_into_fd()) }.sys("clone3", || format!("flags {clone_flags:#x}"))?;
    let (pid, pidfd) = match cloned {
        Cloned::Child => {
            drop(parent_sync);
            // The state dir's flock belongs to its open file description,
            // which this copy of the fd shares: the init must not hold it,
            // or `start` would wait for the init forever.
            drop(guard.dir.take());
            init::run(InitCtx {
                spec: &spec,
                id: &o.id,
                sync: child_sync,
                listener,
                join,
                rootfs,
                mounts,
                cgroups,
                terminal,
                extra_fds: listen_fds.unwrap_or(0).saturating_add(o.preserve_fds),
                no_pivot: o.no_pivot,
                await_go,
                new_userns,
                in_cgroup: false,
                new_cgroupns,
                no_new_keyring: o.no_new_keyring,
                caps,
                argv,
                envp,
                seccomp,
                hook_state: None,
            })
        }
        Cloned::Parent { pid, pidfd } => (pid, pidfd),
    };
    crate::debug!("create {}: init cloned, pid {}", o.id, pid.as_raw_nonzero());
    guard.child = Some(PidFd::new(pidfd, pid.as_raw_nonzero().get()));
    // We are the parent and have not reaped it, so the pid cannot be reused
    // before this read. The init dies with us until "ready" (its
    // PR_SET_PDEATHSIG), but not after, and not once a user namespace's
    // switch to its root cleared that: record it for `delete`.
    let start_time = proc_start_time(pid.as_raw_nonzero().get()).ok_or_else(|| Error::State("init exited at once".into()))?;
    unfinished.pid = Some(pid.as_raw_nonzero().get());
    unfinished.start_time = Some(start_time);
    dir.write_unfinished(&unfinished)?;
    if let Some(t) = timens {
        t.restore()?;
    }
    // The rest of the cgroup; with a user namespace the id maps and the
    // idmapped mounts; then "go". If the init died meanwhile, its own error
    // message is the one to show.
    let placed = (|| -> Result<()> {
        if let Some(creating) = guard.creating.take() {
            match creating.finish() {
                Ok(cg) => guard.cgroup = Some(cg),
                Err((e, made)) => {
                    guard.cgroup = Some(made);
                    return Err(e.into());
                }
            }
        }
        let mut new_rootfs = None;
        if new_userns {
            // We are the init's unreaped parent: /proc/<pid> is the init's.
            let proc_dir = rustix::fs::open(format!("/proc/{}", pid.as_raw_nonzero()), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .sys("open", || format!("/proc/{}", pid.as_raw_nonzero()))?;
            fdbox_idmap::write_mappings(proc_dir.as_fd(), &uid_maps, &gid_maps, false)?;
            let userns = fdbox_idmap::UserNsFd::of_process(proc_dir.as_fd())?;
            // The rootfs, unless its owner already is the container's root:
            // the same detached mount the init inherited, so it sees the idmap.
            let root_owner = rustix::fs::fstat(&rootfs_dir).sys("fstat", || rootfs_path.clone())?.st_uid;
            let mapped_root = uid_maps.iter().find(|m| m.container_id == 0).map(|m| m.host_id);
            if mapped_root != Some(root_owner) {
                match rootfs.idmap(userns.as_fd(), true) {
                    Ok(()) => {}
                    // overlayfs cannot be idmapped, its layers can: rebuild it.
                    Err(e) if e.errno() == Some(Errno::INVAL) => {
                        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
                        let root_gid = gid_maps.iter().find(|m| m.container_id == 0).map_or(0, |m| m.host_id);
                        let owner = (mapped_root.unwrap_or(0), root_gid);
                        match rootfs::idmapped_overlay(rootfs_dir.as_fd(), userns.as_fd(), &mountinfo, owner)? {
                            Some(m) => new_rootfs = Some(m),
                            None => return Err(Error::Config(format!("idmap of the rootfs {rootfs_path}: {e}"))),
                        }
                    }
                    Err(e) => return Err(Error::Config(format!("idmap of the rootfs {rootfs_path}: {e}"))),
                }
            }
            idmap_binds(&spec, &mounts, Some(&userns))?;
        }
        if await_go {
            let cgroup = guard.cgroup.as_ref().ok_or_else(|| Error::State("lost the cgroup".into()))?;
            let (cgroup_files, tasks) = cgroup.self_attach()?.into_parts();
            let mut fds: Vec<_> = new_rootfs.iter().map(|m| m.as_fd()).collect();
            fds.extend(tasks.iter().map(|f| f.as_fd()));
            let go = Msg::Go { rootfs: new_rootfs.is_some(), cgroup_files };
            parent_sync.send(&go, &fds).sys("sendmsg", || "sync socket".into())?;
        }
        drop(new_rootfs);
        Ok(())
    })();
    if let Err(e) = placed {
        return Err(pending_child_error(&parent_sync).unwrap_or(e));
    }
    let pid = pid.as_raw_nonzero().get();
    // The seccomp agent's state names the init's pid, known only now.
    if let Some(s) = seccomp {
        s.send_state(pid)?;
    }
    let init = guard.child.as_ref().ok_or_else(|| Error::State("lost the init".into()))?;
    // The init holds its own copies now; ours would keep the mounts and
    // the listening socket alive after the init exits.
    drop((child_sync, listener, rootfs, mounts, rootfs_dir));

    let hook_state = HookState {
        oci_version: spec.version().clone(),
        id: o.id.clone(),
        status: "creating".into(),
        pid,
        bundle: bundle.clone(),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    if !hooks::list(&spec, hooks::Kind::Poststop).is_empty() {
        guard.poststop = Some((spec.clone(), hook_state.clone()));
    }
    let console = wait_ready(&parent_sync, init, o, (&spec, &hook_state)).map_err(|e| oom_hint(guard.cgroup.as_ref(), e))?;

    let st = State {
        id: o.id.clone(),
        pid,
        start_time,
        bundle: bundle.clone(),
        rootfs: rootfs_path,
        created: crate::time::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        owner: owner_name(),
        oci_version: spec.version().clone(),
        cgroup: Some(cgroup_path),
        cgroup_layout: Some(layout),
        config: spec.clone(),
    };
    dir.write_state(&st)?;
    if let Some(path) = &o.pid_file {
        write_pid_file(path, pid)?;
    }
    if let Some(sock) = &o.pidfd_socket {
        let conn = fdpass::connect(sock).sys("connect", || format!("pidfd socket {sock}"))?;
        fdpass::send(conn.as_fd(), b"standard", &[init.as_fd()]).sys("sendmsg", || format!("pidfd socket {sock}"))?;
    }
    let init = guard.child.take().ok_or_else(|| Error::State("lost the init".into()))?;
    let cgroup = guard.cgroup.take();
    Ok(Created { init, console, state: st, cgroup })
}

/// An init that died during setup in a cgroup where the OOM killer struck
/// was killed for memory (a limit too low to start it): say so, as runc
/// does, instead of "exited during setup".
fn oom_hint(cgroup: Option<&Cgroup>, e: Error) -> Error {
    match e {
        Error::Init(_) if cgroup.is_some_and(|cg| cg.oom_kill_count().unwrap_or(0) > 0) => {
            Error::Init("container init was OOM-killed during setup (memory limit too low?)".into())
        }
        e => e,
    }
}

/// An error the init reported before it died, if one is waiting on the
/// sync socket.
fn pending_child_error(sync: &SyncSocket) -> Option<Error> {
    let mut fds = [PollFd::new(sync, PollFlags::IN)];
    if !matches!(poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0) {
        return None;
    }
    match sync.recv() {
        Ok(Some((Msg::Error { message }, _))) => Some(Error::Init(message)),
        _ => None,
    }
}

/// Poll the sync socket and the pidfd until the init says "ready": a dead
/// init or a stuck one is an error, never a hang.
fn wait_ready(sync: &SyncSocket, init: &PidFd, o: &CreateOpts, hook_ctx: (&oci_spec::runtime::Spec, &HookState)) -> Result<Option<OwnedFd>> {
    let mut deadline = Instant::now() + SETUP_TIMEOUT;
    let mut console = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Init(format!("container init did not finish its setup in {}s", SETUP_TIMEOUT.as_secs())));
        }
        let ts = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
        let mut fds = [PollFd::new(sync, PollFlags::IN), PollFd::new(init, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Err(Errno::INTR) | Ok(0) => continue,
            Err(e) => return Err(Error::sys("poll", "sync socket", e)),
            Ok(_) => {}
        }
        // Messages first: an init that failed sent its error before dying.
        if fds[0].revents().intersects(PollFlags::IN | PollFlags::HUP) {
            match sync.recv().sys("recvmsg", || "sync socket".into())? {
                Some((Msg::Ready, _)) => return Ok(console),
                Some((Msg::Error { message }, _)) => return Err(Error::Init(message)),
                Some((Msg::Console { name }, mut fds)) => {
                    let master = fds.pop().ok_or_else(|| Error::Init("console message without a pty".into()))?;
                    match &o.console_socket {
                        Some(path) => {
                            let conn = fdpass::connect(path).sys("connect", || format!("console socket {path}"))?;
                            fdpass::send(conn.as_fd(), name.as_bytes(), &[master.as_fd()])
                                .sys("sendmsg", || format!("console socket {path}"))?;
                        }
                        None => console = Some(master),
                    }
                }
                // The init made every mount and waits before pivot_root.
                Some((Msg::Hooks, _)) => {
                    let (spec, state) = hook_ctx;
                    crate::debug!("create {}: running the prestart and createRuntime hooks", state.id);
                    hooks::run(spec, hooks::Kind::Prestart, state)?;
                    hooks::run(spec, hooks::Kind::CreateRuntime, state)?;
                    sync.send(&Msg::HooksDone { state: state.clone() }, &[]).sys("sendmsg", || "sync socket".into())?;
                    // The hooks' time does not count against the init's.
                    deadline = Instant::now() + SETUP_TIMEOUT;
                }
                Some((Msg::Go { .. } | Msg::HooksDone { .. } | Msg::Spawned { .. }, _)) => return Err(Error::Init("unexpected message from the init".into())),
                None => return Err(Error::Init("container init exited during setup".into())),
            }
        } else if fds[1].revents().contains(PollFlags::IN) {
            return Err(Error::Init("container init exited during setup".into()));
        }
    }
}

fn absolute(path: &str) -> Result<String> {
    if path.starts_with('/') {
        let trimmed = path.trim_end_matches('/');
        return Ok(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() });
    }
    let cwd = std::env::current_dir().map_err(|e| Error::State(format!("getcwd: {e}")))?;
    let joined = if path.is_empty() || path == "." { cwd } else { cwd.join(path) };
    Ok(joined.to_string_lossy().into_owned())
}

fn cstrings(items: &[String], what: &str) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| Error::Config(format!("{what}: NUL byte in {s:?}"))))
        .collect()
}

/// Socket activation: `LISTEN_FDS` meant for this process (systemd sets
/// `LISTEN_PID` to it) are passed on as fds 3…
pub(crate) fn listen_fds() -> Option<u32> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    if pid != std::process::id() {
        return None;
    }
    std::env::var("LISTEN_FDS").ok()?.parse().ok()
}

/// The pid file, written atomically (clients poll for it).
pub(super) fn write_pid_file(path: &str, pid: i32) -> Result<()> {
    let p = std::path::Path::new(path);
    let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = p.file_name().ok_or_else(|| Error::Config(format!("--pid-file {path}: not a file name")))?;
    let dir = rustix::fs::open(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .sys("open", || parent.display().to_string())?;
    state::write_atomic(dir.as_fd(), &name.to_string_lossy(), pid.to_string().as_bytes()).sys("write", || path.to_string())
}

/// The user that owns the container, as runc reports it.
fn owner_name() -> String {
    let uid = rustix::process::geteuid().as_raw();
    if uid == 0 {
        return "root".into();
    }
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

/// Idmap the bind mounts that ask for it (`idmap`, `ridmap`): with the
/// mount's own `uidMappings`/`gidMappings` when it has them (a user
/// namespace made for that), else with the container's user namespace.
fn idmap_binds(spec: &oci_spec::runtime::Spec, mounts: &[(MountEntry, Option<fdbox_mount::MountFd>)], container: Option<&fdbox_idmap::UserNsFd>) -> Result<()> {
    let oci = spec.mounts().as_deref().unwrap_or_default();
    for ((entry, prepared), m) in mounts.iter().zip(oci) {
        let Some(recursive) = entry.parsed()?.idmap else { continue };
        let Some(mount) = prepared else {
            return Err(Error::Config(format!("mount {}: idmap is supported on bind and tmpfs mounts only", entry.destination)));
        };
        let (uid, gid) = (crate::spec::id_maps(m.uid_mappings()), crate::spec::id_maps(m.gid_mappings()));
        let own;
        let userns = if !uid.is_empty() || !gid.is_empty() {
            fdbox_idmap::validate(&format!("mount {} uidMappings", entry.destination), &uid)?;
            fdbox_idmap::validate(&format!("mount {} gidMappings", entry.destination), &gid)?;
            own = crate::process::userns::with_mappings(&uid, &gid)?;
            &own
        } else {
            container.ok_or_else(|| Error::Config(format!(
                "mount {}: idmap needs uidMappings/gidMappings on the mount or a user namespace", entry.destination)))?
        };
        mount.idmap(userns.as_fd(), recursive).map_err(|e| {
            Error::Config(format!(
                "mount {}: the kernel cannot idmap this {} mount: {e}",
                entry.destination,
                rootfs::fs_type_name(mount.as_fd())
            ))
        })?;
    }
    Ok(())
}

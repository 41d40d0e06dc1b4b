//! The task service (containerd's `containerd.task.v2.Task`) and the shim's
//! `start`/`delete` actions.
//!
//! Concurrency: one lock (`Shared::tasks`) over all containers and their
//! processes. Lifecycle RPCs that must order events (Create, Start, Exec,
//! Pause, Resume) queue their event while holding it, and the exit handler
//! takes it before queueing TaskExit, so containerd always sees
//! create → start → exit → delete. The monitor thread (the only reaper)
//! never takes this lock: `fdbox` helpers run under it are waited for
//! through the monitor without deadlock.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim::api;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{ExitSignal, Flags, TtrpcContext, TtrpcResult};
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::{Options, ProcessDetails};
use containerd_shim_protos::topics;
use containerd_shim_protos::types::task::{ProcessInfo, Status};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};
use crate::events::{timestamp, Events};
use crate::handoff::{self, Lookup, Response};
use crate::monitor::{Exit, Monitor, Notice, Token};
use crate::pidfd::{ExitCode, Pidfd};
use crate::rootfs::{self, RootMount};
use crate::runtime::{self, Fdbox};
use crate::stdio::{HelperStdio, IoSpec, LogContext, ProcessIo};
use crate::{args, fdpass};

/// The runtime name containerd knows this shim by.
pub const RUNTIME_ID: &str = "io.containerd.fdbox.v2";
/// Where Create records how the task's `fdbox` is run, for the `delete`
/// action (a fresh process that has only the bundle).
const SHIM_CONFIG: &str = "fdbox-shim.json";
/// The JSON log every `fdbox` command writes its errors to.
const LOG_NAME: &str = "log.json";
/// How long Delete waits for a process's output to drain (as the runc shim).
const IO_DRAIN: Duration = Duration::from_secs(2);
/// How long `fdbox create`/`exec` may take to hand over the process.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcStatus {
    Created,
    Running,
    Stopped,
}

struct Proc {
    exec_id: String,
    io_spec: IoSpec,
    io: Option<ProcessIo>,
    pidfd: Option<Arc<Pidfd>>,
    pid: i32,
    status: ProcStatus,
    exit_code: ExitCode,
    exited_at: Option<SystemTime>,
    token: Option<Token>,
    /// An exec's `process` JSON (from the Exec request) until it starts.
    process_json: Option<Vec<u8>>,
}

impl Proc {
    fn new(exec_id: &str, io_spec: IoSpec) -> Proc {
        Proc {
            exec_id: exec_id.to_string(),
            io_spec,
            io: None,
            pidfd: None,
            pid: 0,
            status: ProcStatus::Created,
            exit_code: 0,
            exited_at: None,
            token: None,
            process_json: None,
        }
    }

    fn exited_at(&self) -> MessageField<containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp> {
        self.exited_at.map(timestamp).into()
    }
}

struct Container {
    id: String,
    bundle: PathBuf,
    fdbox: Arc<Fdbox>,
    rootfs_mounted: bool,
    init: Proc,
    execs: HashMap<String, Proc>,
    paused: bool,
    handoff: Option<handoff::Server>,
}

impl Container {
    fn process(&self, exec_id: &str) -> Result<&Proc> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs.get(exec_id).ok_or_else(|| Error::NotFound(format!("exec {exec_id:?} of task {:?} does not exist", self.id)))
    }

    fn process_mut(&mut self, exec_id: &str) -> Result<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        let id = self.id.clone();
        self.execs.get_mut(exec_id).ok_or_else(|| Error::NotFound(format!("exec {exec_id:?} of task {id:?} does not exist")))
    }

    fn log(&self) -> PathBuf {
        self.bundle.join(LOG_NAME)
    }
}

#[derive(Default)]
struct Tasks {
    containers: HashMap<String, Container>,
    /// Monitor token → (container id, exec id).
    tokens: HashMap<Token, (String, String)>,
    /// Exits of processes tracked but not recorded yet (a container init
    /// that died while its Create was finishing).
    early: HashMap<Token, Exit>,
}

/// State shared by the RPC threads, the exit handler and the hand-off
/// servers.
pub struct Shared {
    namespace: String,
    monitor: Monitor,
    events: Events,
    exit: Arc<ExitSignal>,
    tasks: Mutex<Tasks>,
    changed: Condvar,
    unified: bool,
    seq: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Record exits and OOM kills delivered by the monitor (the exit
    /// handler thread). Under the lock: TaskOOM comes after the TaskStart
    /// of a Start in progress, and before the init's TaskExit (the monitor
    /// sends a kill of the init before its exit).
    fn handle_exits(&self, notices: Receiver<Notice>) {
        for notice in notices {
            let mut tasks = self.lock();
            match notice {
                Notice::Exit(exit) => self.apply_exit(&mut tasks, exit),
                Notice::Oom { token } => {
                    let cid = tasks.tokens.get(&token).map(|(c, _)| c.clone()).or_else(|| {
                        tasks.containers.values().find(|c| c.init.token == Some(token)).map(|c| c.id.clone())
                    });
                    if let Some(cid) = cid {
                        log::info!("{cid}: OOM kill in the container");
                        self.events.send(topics::TASK_OOM_EVENT_TOPIC, TaskOOM { container_id: cid, ..Default::default() });
                    }
                }
            }
        }
    }

    /// Record `token` as (container, exec) and apply an exit that came
    /// before it was recorded.
    fn record(&self, tasks: &mut Tasks, token: Token, container: &str, exec_id: &str) {
        tasks.tokens.insert(token, (container.to_string(), exec_id.to_string()));
        if let Some(exit) = tasks.early.remove(&token) {
            self.apply_exit(tasks, exit);
        }
    }

    /// A tracked process exited: mark it stopped and publish TaskExit.
    fn apply_exit(&self, tasks: &mut Tasks, exit: Exit) {
        let Some((cid, exec_id)) = tasks.tokens.remove(&exit.token) else {
            tasks.early.insert(exit.token, exit);
            return;
        };
        let Some(c) = tasks.containers.get_mut(&cid) else { return };
        let Ok(p) = c.process_mut(&exec_id) else { return };
        p.status = ProcStatus::Stopped;
        p.exit_code = exit.code;
        p.exited_at = Some(exit.at);
        p.token = None;
        let pid = p.pid;
        if exec_id.is_empty() {
            c.paused = false;
            // Execs do not outlive the init (the runc shim kills them too);
            // in a private pid namespace the kernel already did.
            for e in c.execs.values().filter(|e| e.status == ProcStatus::Running) {
                if let Some(fd) = &e.pidfd {
                    let _ = fd.signal(libc::SIGKILL as u32);
                }
            }
        }
        self.events.send(
            topics::TASK_EXIT_EVENT_TOPIC,
            TaskExit {
                container_id: cid.clone(),
                id: if exec_id.is_empty() { cid.clone() } else { exec_id.clone() },
                pid: pid as u32,
                exit_status: exit.code,
                exited_at: MessageField::some(timestamp(exit.at)),
                ..Default::default()
            },
        );
        log::info!("{cid}/{exec_id}: exited with {}", exit.code);
        self.changed.notify_all();
    }
}

impl Lookup for Shared {
    fn lookup(&self, container: &str, exec: &str) -> std::result::Result<(Response, Arc<Pidfd>), String> {
        let tasks = self.lock();
        let c = tasks.containers.get(container).ok_or_else(|| format!("task {container:?} does not exist"))?;
        let p = c.process(exec).map_err(|e| e.to_string())?;
        let pidfd = p.pidfd.clone().ok_or_else(|| format!("exec {exec:?} has not been started"))?;
        let status = match (p.status, exec.is_empty() && c.paused) {
            (ProcStatus::Created, _) => "created",
            (ProcStatus::Running, true) => "paused",
            (ProcStatus::Running, false) => "running",
            (ProcStatus::Stopped, _) => "stopped",
        };
        let resp = Response {
            version: handoff::VERSION,
            error: None,
            container: container.to_string(),
            exec_id: exec.to_string(),
            pid: p.pid,
            status: status.into(),
            exit_status: (p.status == ProcStatus::Stopped).then_some(p.exit_code),
            exited_at: p.exited_at.map(rfc3339),
        };
        Ok((resp, pidfd))
    }
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// The task service containerd talks to.
pub struct TaskService {
    shared: Arc<Shared>,
}

/// The shim (containerd-shim's `Shim`): the `start` and `delete` actions
/// and the construction of the task service.
pub struct FdboxShim {
    namespace: String,
    id: String,
    bundle: String,
    exit: Arc<ExitSignal>,
}

/// What Create records for the `delete` action.
#[derive(Serialize, Deserialize)]
struct ShimConfig {
    binary: PathBuf,
    root: PathBuf,
}

impl containerd_shim::Shim for FdboxShim {
    type T = TaskService;

    fn new(_runtime_id: &str, args: &Flags, config: &mut containerd_shim::Config) -> Self {
        // The monitor is the only reaper (see monitor.rs).
        config.no_reaper = true;
        FdboxShim {
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            bundle: args.bundle.clone(),
            exit: Arc::new(ExitSignal::default()),
        }
    }

    fn start_shim(&mut self, opts: containerd_shim::StartOpts) -> containerd_shim::Result<String> {
        // CRI puts the containers of a pod in the pod's shim.
        let grouping = std::fs::read("config.json")
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|spec| spec["annotations"]["io.kubernetes.cri.sandbox-id"].as_str().map(str::to_string))
            .unwrap_or_else(|| opts.id.clone());
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        containerd_shim::util::write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<api::DeleteResponse> {
        let bundle = if self.bundle.is_empty() {
            std::env::current_dir().map_err(|e| containerd_shim::Error::Other(format!("getcwd: {e}")))?
        } else {
            PathBuf::from(&self.bundle)
        };
        let cfg: Option<ShimConfig> = std::fs::read(bundle.join(SHIM_CONFIG)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let (binary, root) = match cfg {
            Some(c) => (Ok(c.binary), c.root),
            None => (runtime::find_binary(None), runtime::state_root(None, &self.namespace)),
        };
        let other = |e: Error| containerd_shim::Error::Other(e.to_string());
        if let Ok(binary) = binary {
            let (monitor, _exits) = Monitor::start().map_err(|e| containerd_shim::Error::Other(format!("monitor: {e}")))?;
            let fdbox = Fdbox::new(binary, root, monitor);
            let log = bundle.join(LOG_NAME);
            if let Err(e) = fdbox.check(Some(&log), &args!["delete", "--force", &self.id]) {
                log::warn!("cleanup of {}: {e}", self.id);
            }
        }
        rootfs::unmount_all(&bundle.join("rootfs")).map_err(other)?;
        let _ = std::fs::remove_file(bundle.join(handoff::SOCKET_NAME));
        Ok(api::DeleteResponse {
            pid: 0,
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: MessageField::some(timestamp(SystemTime::now())),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        let (monitor, exits) = match Monitor::start() {
            Ok(m) => m,
            Err(e) => {
                // Without the monitor no exit could ever be seen: give up.
                log::error!("cannot start the exit monitor: {e}");
                std::process::exit(1);
            }
        };
        let shared = Arc::new(Shared {
            namespace: self.namespace.clone(),
            monitor,
            events: Events::start(publisher, self.namespace.clone()),
            exit: self.exit.clone(),
            tasks: Mutex::new(Tasks::default()),
            changed: Condvar::new(),
            unified: crate::metrics::unified_host(),
            seq: std::sync::atomic::AtomicU64::new(0),
        });
        let handler = shared.clone();
        if let Err(e) = std::thread::Builder::new().name("exits".into()).stack_size(256 * 1024).spawn(move || handler.handle_exits(exits)) {
            log::error!("cannot start the exit handler: {e}");
            std::process::exit(1);
        }
        TaskService { shared }
    }
}

/// Decode the runtime options containerd may pass (the runc shim's
/// `containerd.runc.v1.Options`: BinaryName, Root, NoPivotRoot, …).
fn runtime_options(any: Option<&Any>) -> Result<Options> {
    match any {
        None => Ok(Options::default()),
        Some(a) if a.type_url.is_empty() && a.value.is_empty() => Ok(Options::default()),
        Some(a) if a.type_url.ends_with("containerd.runc.v1.Options") => {
            Options::parse_from_bytes(&a.value).map_err(|e| Error::InvalidArgument(format!("runtime options: {e}")))
        }
        Some(a) => Err(Error::InvalidArgument(format!("runtime options of type {:?}: only containerd.runc.v1.Options are understood", a.type_url))),
    }
}

/// Temporary sockets in the bundle for one `fdbox create`/`exec`; removed
/// on drop.
struct HandoverSockets {
    dir: OwnedFd,
    names: Vec<String>,
    pidfd: OwnedFd,
    pidfd_arg: String,
    console: Option<(OwnedFd, String)>,
}

impl HandoverSockets {
    fn new(bundle: &Path, tag: &str, terminal: bool) -> Result<HandoverSockets> {
        let dir = fdpass::open_dir(bundle).sys("open", || bundle.display().to_string())?;
        let name = format!("{tag}-pidfd.sock");
        let pidfd = fdpass::listen_in(dir.as_fd(), &name, 0o600).sys("bind", || format!("{}/{name}", bundle.display()))?;
        let pidfd_arg = fdpass::socket_address(dir.as_fd(), bundle, &name);
        let mut names = vec![name];
        let console = if terminal {
            let name = format!("{tag}-console.sock");
            let l = fdpass::listen_in(dir.as_fd(), &name, 0o600).sys("bind", || format!("{}/{name}", bundle.display()))?;
            let arg = fdpass::socket_address(dir.as_fd(), bundle, &name);
            names.push(name);
            Some((l, arg))
        } else {
            None
        };
        Ok(HandoverSockets { dir, names, pidfd, pidfd_arg, console })
    }

    /// Wait for the helper to exit while accepting what it sends: the
    /// process's pidfd ("standard"/"setns") and, with a terminal, the pty
    /// master. Returns the helper's exit code and what arrived.
    fn collect(&self, helper: &crate::monitor::Helper) -> Result<(ExitCode, Option<OwnedFd>, Option<OwnedFd>)> {
        let deadline = Instant::now() + HANDOVER_TIMEOUT;
        let (mut pidfd, mut console) = (None, None);
        loop {
            let mut fds = vec![PollFd::new(helper.pidfd.as_ref(), PollFlags::IN), PollFd::new(&self.pidfd, PollFlags::IN)];
            if let Some((l, _)) = &self.console {
                fds.push(PollFd::new(l, PollFlags::IN));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = rustix::event::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
            match poll(&mut fds, Some(&ts)) {
                Ok(0) => {
                    let _ = helper.pidfd.signal(libc::SIGKILL as u32);
                    return Err(Error::Internal(format!("fdbox did not finish within {}s", HANDOVER_TIMEOUT.as_secs())));
                }
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(Error::sys("poll", "fdbox hand-over", e)),
            }
            let exited = fds[0].revents().contains(PollFlags::IN);
            let want_pidfd = !fds[1].revents().is_empty();
            let want_console = fds.get(2).is_some_and(|f| !f.revents().is_empty());
            drop(fds);
            if want_pidfd {
                pidfd = receive_one(self.pidfd.as_fd(), "pidfd socket")?.or(pidfd);
            }
            if want_console {
                if let Some((l, _)) = &self.console {
                    console = receive_one(l.as_fd(), "console socket")?.or(console);
                }
            }
            if exited {
                // Anything sent before the exit is queued on the listeners.
                if pidfd.is_none() && readable(self.pidfd.as_fd()) {
                    pidfd = receive_one(self.pidfd.as_fd(), "pidfd socket")?;
                }
                if let Some((l, _)) = &self.console {
                    if console.is_none() && readable(l.as_fd()) {
                        console = receive_one(l.as_fd(), "console socket")?;
                    }
                }
                return Ok((helper.wait(), pidfd, console));
            }
        }
    }
}

impl Drop for HandoverSockets {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = rustix::fs::unlinkat(&self.dir, n.as_str(), rustix::fs::AtFlags::empty());
        }
    }
}

fn readable(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
}

/// Accept one connection on `listener` and receive the one fd it carries.
fn receive_one(listener: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<Option<OwnedFd>> {
    let conn = fdpass::accept(listener).sys("accept", || what.into())?;
    let mut buf = [0u8; 512];
    let (_, mut fds) = fdpass::recv(conn.as_fd(), &mut buf).sys("recvmsg", || what.into())?;
    Ok(if fds.is_empty() { None } else { Some(fds.remove(0)) })
}

impl TaskService {
    fn lock(&self) -> MutexGuard<'_, Tasks> {
        self.shared.lock()
    }

    /// Run `fdbox ARGS` for a process (create or exec) with its stdio and
    /// hand-over sockets, take the process as a pidfd and track it. Orphan
    /// reaping is held off until it is tracked (see [`Monitor::hold`]).
    fn hand_over(&self, fdbox: &Fdbox, bundle: &Path, tag: &str, io: &IoSpec, mut args: Vec<OsString>, id: &str) -> Result<(Arc<Pidfd>, Token, ProcessIo)> {
        let _hold = self.shared.monitor.hold();
        let sockets = HandoverSockets::new(bundle, tag, io.terminal)?;
        let ctx = LogContext { monitor: &self.shared.monitor, id, namespace: &self.shared.namespace };
        let (pio, stdio) = if io.terminal { (None, HelperStdio::null()) } else {
            let (p, s) = ProcessIo::pipes(io, &ctx)?;
            (Some(p), s)
        };
        args.push("--pidfd-socket".into());
        args.push(sockets.pidfd_arg.clone().into());
        if let Some((_, arg)) = &sockets.console {
            args.push("--console-socket".into());
            args.push(arg.into());
        }
        args.push(id.into());
        let log = bundle.join(LOG_NAME);
        let mark = runtime::log_len(&log);
        let helper = fdbox.spawn(Some(&log), &args, stdio)?;
        let (code, pidfd, console) = sockets.collect(&helper)?;
        if code != 0 {
            return Err(fdbox.failure(&args, code, Some(&log), mark, ""));
        }
        let pidfd = pidfd.ok_or_else(|| Error::Internal(format!("fdbox {} handed over no pidfd", args[0].to_string_lossy())))?;
        let pidfd = Pidfd::new(pidfd).map_err(|_| Error::Internal("fdbox sent something that is not a pidfd".into()))?;
        let io = match (pio, console) {
            (Some(p), _) => p,
            (None, Some(master)) => ProcessIo::console(io, master, &ctx)?,
            (None, None) => return Err(Error::Internal("process.terminal is set but fdbox sent no pty master".into())),
        };
        let pidfd = Arc::new(pidfd);
        let token = self.shared.monitor.track(pidfd.clone()).sys("epoll_ctl", || format!("pidfd of {id}"))?;
        Ok((pidfd, token, io))
    }

    fn create(&self, req: api::CreateTaskRequest) -> Result<api::CreateTaskResponse> {
        let id = req.id.clone();
        if id.is_empty() {
            return Err(Error::InvalidArgument("task id is empty".into()));
        }
        if self.lock().containers.contains_key(&id) {
            return Err(Error::AlreadyExists(format!("task {id:?} already exists")));
        }
        if !req.checkpoint.is_empty() {
            return Err(Error::Unimplemented("restoring from a checkpoint is not supported by fdbox yet".into()));
        }
        let opts = runtime_options(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        let fdbox = Arc::new(Fdbox::new(
            runtime::find_binary(Some(&opts.binary_name))?,
            runtime::state_root(Some(&opts.root), &self.shared.namespace),
            self.shared.monitor.clone(),
        ));
        let cfg = serde_json::to_vec(&ShimConfig { binary: fdbox.bin.clone(), root: fdbox.root.clone() }).unwrap_or_default();
        std::fs::write(bundle.join(SHIM_CONFIG), cfg).sys("write", || format!("{}/{SHIM_CONFIG}", bundle.display()))?;

        let mounts: Vec<RootMount> = req
            .rootfs
            .iter()
            .map(|m| RootMount { typ: m.type_.clone(), source: m.source.clone(), options: m.options.clone() })
            .collect();
        let rootfs_dir = bundle.join("rootfs");
        rootfs::mount_all(&mounts, &rootfs_dir).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("mounting the rootfs: {m}")),
            e => Error::InvalidArgument(format!("mounting the rootfs: {e}")),
        })?;
        let unmount = |e: Error| {
            if !mounts.is_empty() {
                let _ = rootfs::unmount_all(&rootfs_dir);
            }
            e
        };

        let io = IoSpec { stdin: req.stdin.clone(), stdout: req.stdout.clone(), stderr: req.stderr.clone(), terminal: req.terminal };
        let mut args = args!["create", "--bundle", &bundle].to_vec();
        if opts.no_pivot_root {
            args.push("--no-pivot".into());
        }
        if opts.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        let (pidfd, token, pio) = match self.hand_over(&fdbox, &bundle, "init", &io, args, &id) {
            Ok(r) => r,
            Err(e) => {
                // fdbox removes what it made on failure; a state dir left by
                // a failure after its hand-over (tracking) is removed here.
                let _ = fdbox.check(Some(&bundle.join(LOG_NAME)), &args!["delete", "--force", &id]);
                return Err(unmount(e));
            }
        };
        let pid = pidfd.pid();

        let server = handoff::Server::start(&bundle, &id, self.shared.clone());
        let server = match server {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!("{id}: no pidfd hand-off socket: {e}");
                None
            }
        };

        let mut tasks = self.lock();
        let mut init = Proc::new("", io.clone());
        init.io = Some(pio);
        init.pid = pid;
        init.pidfd = Some(pidfd);
        init.token = Some(token);
        tasks.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                bundle: bundle.clone(),
                fdbox,
                rootfs_mounted: !mounts.is_empty(),
                init,
                execs: HashMap::new(),
                paused: false,
                handoff: server,
            },
        );
        let tasks = &mut *tasks;
        self.shared.events.send(
            topics::TASK_CREATE_EVENT_TOPIC,
            TaskCreate {
                container_id: id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                checkpoint: req.checkpoint.clone(),
                pid: pid as u32,
                ..Default::default()
            },
        );
        // After TaskCreate: an init that died already gets its TaskExit now.
        self.shared.record(tasks, token, &id, "");
        log::info!("{id}: created, init pid {pid}");
        Ok(api::CreateTaskResponse { pid: pid as u32, ..Default::default() })
    }

    fn start(&self, req: api::StartRequest) -> Result<api::StartResponse> {
        let mut tasks = self.lock();
        let tasks = &mut *tasks;
        let c = tasks.containers.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if req.exec_id.is_empty() {
            if c.init.status != ProcStatus::Created {
                return Err(Error::FailedPrecondition(format!("task {:?} was started already", req.id)));
            }
            let log = c.log();
            // Watch for OOM kills before the program runs: one right after
            // start must not go unseen.
            if let Err(e) = watch_oom(&self.shared.monitor, &c.init) {
                log::warn!("{}: no OOM events: {e}", req.id);
            }
            c.fdbox.check(Some(&log), &args!["start", &req.id])?;
            c.init.status = ProcStatus::Running;
            let pid = c.init.pid;
            self.shared.events.send(topics::TASK_START_EVENT_TOPIC, TaskStart { container_id: req.id.clone(), pid: pid as u32, ..Default::default() });
            return Ok(api::StartResponse { pid: pid as u32, ..Default::default() });
        }
        // An exec: `fdbox exec --detach` starts it and hands it over.
        if c.init.status != ProcStatus::Running {
            return Err(Error::FailedPrecondition(format!("task {:?} is not running", req.id)));
        }
        let (bundle, fdbox) = (c.bundle.clone(), c.fdbox.clone());
        let p = c.execs.get_mut(&req.exec_id).ok_or_else(|| Error::NotFound(format!("exec {:?} of task {:?} does not exist", req.exec_id, req.id)))?;
        if p.status != ProcStatus::Created {
            return Err(Error::FailedPrecondition(format!("exec {:?} was started already", req.exec_id)));
        }
        let n = self.shared.next();
        let spec_path = bundle.join(format!("exec-{n}.json"));
        std::fs::write(&spec_path, p.process_json.as_deref().unwrap_or_default()).sys("write", || spec_path.display().to_string())?;
        let args = args!["exec", "--process", &spec_path, "--detach"].to_vec();
        let result = self.hand_over(&fdbox, &bundle, &format!("exec-{n}"), &p.io_spec, args, &req.id);
        let _ = std::fs::remove_file(&spec_path);
        let (pidfd, token, pio) = result?;
        p.pid = pidfd.pid();
        p.pidfd = Some(pidfd);
        p.io = Some(pio);
        p.token = Some(token);
        p.status = ProcStatus::Running;
        p.process_json = None;
        let pid = p.pid;
        self.shared.events.send(
            topics::TASK_EXEC_STARTED_EVENT_TOPIC,
            TaskExecStarted { container_id: req.id.clone(), exec_id: req.exec_id.clone(), pid: pid as u32, ..Default::default() },
        );
        // After TaskExecStarted: an exec that is done already gets its TaskExit now.
        self.shared.record(tasks, token, &req.id, &req.exec_id);
        Ok(api::StartResponse { pid: pid as u32, ..Default::default() })
    }

    fn delete(&self, req: api::DeleteRequest) -> Result<api::DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut tasks = self.lock();
            let c = tasks.containers.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
            let p = c.process(&req.exec_id)?;
            if p.status == ProcStatus::Running {
                return Err(Error::FailedPrecondition(format!("exec {:?} is running: kill it before deleting it", req.exec_id)));
            }
            let Some(mut p) = c.execs.remove(&req.exec_id) else { return Err(not_found(&req.exec_id)) };
            // Waiters of a deleted process get NotFound.
            self.shared.changed.notify_all();
            drop(tasks);
            if let Some(io) = p.io.as_mut() {
                io.finish(IO_DRAIN);
            }
            return Ok(api::DeleteResponse { pid: p.pid as u32, exit_status: p.exit_code, exited_at: p.exited_at(), ..Default::default() });
        }

        let mut tasks = self.lock();
        let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        match c.init.status {
            ProcStatus::Running => {
                return Err(Error::FailedPrecondition(format!("task {:?} is running: kill it before deleting it", req.id)))
            }
            // Never started: kill the waiting init and let the monitor reap it.
            ProcStatus::Created => {
                if let Some(fd) = &c.init.pidfd {
                    let _ = fd.signal(libc::SIGKILL as u32);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match tasks.containers.get(&req.id) {
                        Some(c) if c.init.status != ProcStatus::Stopped && Instant::now() < deadline => {}
                        Some(_) => break,
                        None => return Err(not_found(&req.id)),
                    }
                    let (t, _) = self.shared.changed.wait_timeout(tasks, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner());
                    tasks = t;
                }
            }
            ProcStatus::Stopped => {}
        }
        let Some(mut c) = tasks.containers.remove(&req.id) else { return Err(not_found(&req.id)) };
        // Execs that outlived the init (host pid namespace): kill and forget.
        for e in c.execs.values_mut() {
            if let (Some(fd), ProcStatus::Running) = (&e.pidfd, e.status) {
                let _ = fd.signal(libc::SIGKILL as u32);
            }
            if let Some(t) = e.token.take() {
                tasks.tokens.remove(&t);
                self.shared.monitor.forget(t);
            }
        }
        if let Some(t) = c.init.token.take() {
            tasks.tokens.remove(&t);
            self.shared.monitor.forget(t);
        }
        // Waiters of the deleted task's processes get NotFound.
        self.shared.changed.notify_all();
        drop(tasks);

        let mut errors = Vec::new();
        if let Err(e) = c.fdbox.check(Some(&c.log()), &args!["delete", "--force", &req.id]) {
            errors.push(e.to_string());
        }
        for p in std::iter::once(&mut c.init).chain(c.execs.values_mut()) {
            if let Some(io) = p.io.as_mut() {
                io.finish(IO_DRAIN);
            }
        }
        c.handoff.take();
        if c.rootfs_mounted {
            if let Err(e) = rootfs::unmount_all(&c.bundle.join("rootfs")) {
                errors.push(e.to_string());
            }
        }
        let resp = api::DeleteResponse { pid: c.init.pid as u32, exit_status: c.init.exit_code, exited_at: c.init.exited_at(), ..Default::default() };
        self.shared.events.send(
            topics::TASK_DELETE_EVENT_TOPIC,
            TaskDelete {
                container_id: req.id.clone(),
                id: req.id.clone(),
                pid: resp.pid,
                exit_status: resp.exit_status,
                exited_at: resp.exited_at.clone(),
                ..Default::default()
            },
        );
        if !errors.is_empty() {
            log::warn!("{}: delete: {}", req.id, errors.join("; "));
        }
        Ok(resp)
    }

    fn kill(&self, req: api::KillRequest) -> Result<()> {
        let tasks = self.lock();
        let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        if req.all && req.exec_id.is_empty() {
            // As the runc shim: killing a task whose init has exited is
            // NotFound ("process already finished"), which containerd (CRI's
            // task-exit handling, task delete) takes as done, not as a failure
            // to retry forever.
            if c.init.status == ProcStatus::Stopped {
                return Err(Error::NotFound(format!("task {:?}: process already finished", req.id)));
            }
            if !c.fdbox.supports("kill", &["--all"]) {
                return Err(c.fdbox.missing("kill --all"));
            }
            let sig = req.signal.to_string();
            return match c.fdbox.check(Some(&c.log()), &args!["kill", "--all", &req.id, sig]) {
                // The init exited between our check and fdbox's.
                Err(e) if e.to_string().contains("not running") => {
                    Err(Error::NotFound(format!("task {:?}: process already finished", req.id)))
                }
                other => other.map(drop),
            };
        }
        let p = c.process(&req.exec_id)?;
        let what = if req.exec_id.is_empty() { format!("task {:?}", req.id) } else { format!("exec {:?}", req.exec_id) };
        if p.status == ProcStatus::Stopped {
            return Err(Error::NotFound(format!("{what}: process already finished")));
        }
        let fd = p.pidfd.as_ref().ok_or_else(|| Error::FailedPrecondition(format!("{what} has not been started")))?;
        match fd.signal(req.signal) {
            Ok(()) => Ok(()),
            Err(Errno::SRCH) => Err(Error::NotFound(format!("{what}: process already finished"))),
            Err(Errno::INVAL) => Err(Error::InvalidArgument(format!("invalid signal {}", req.signal))),
            Err(e) => Err(Error::sys("pidfd_send_signal", format!("{what}, signal {}", req.signal), e)),
        }
    }

    fn exec(&self, req: api::ExecProcessRequest) -> Result<()> {
        let mut tasks = self.lock();
        let c = tasks.containers.get_mut(&req.id).ok_or_else(|| not_found(&req.id))?;
        if req.exec_id.is_empty() {
            return Err(Error::InvalidArgument("exec id is empty".into()));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(Error::AlreadyExists(format!("exec {:?} of task {:?} already exists", req.exec_id, req.id)));
        }
        if c.init.status != ProcStatus::Running {
            return Err(Error::FailedPrecondition(format!("task {:?} is not running", req.id)));
        }
        if !c.fdbox.supports("exec", &["--process", "--pidfd-socket", "--detach"]) {
            return Err(c.fdbox.missing("exec"));
        }
        let spec = req.spec.as_ref().ok_or_else(|| Error::InvalidArgument("exec without a process spec".into()))?;
        // containerd sends the OCI process as JSON (typeurl of specs.Process).
        serde_json::from_slice::<serde_json::Value>(&spec.value)
            .map_err(|e| Error::InvalidArgument(format!("exec process spec ({}): {e}", spec.type_url)))?;
        let io = IoSpec { stdin: req.stdin.clone(), stdout: req.stdout.clone(), stderr: req.stderr.clone(), terminal: req.terminal };
        let mut p = Proc::new(&req.exec_id, io);
        p.process_json = Some(spec.value.clone());
        c.execs.insert(req.exec_id.clone(), p);
        self.shared.events.send(
            topics::TASK_EXEC_ADDED_EVENT_TOPIC,
            TaskExecAdded { container_id: req.id.clone(), exec_id: req.exec_id.clone(), ..Default::default() },
        );
        Ok(())
    }

    fn state(&self, req: api::StateRequest) -> Result<api::StateResponse> {
        let tasks = self.lock();
        let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
        let p = c.process(&req.exec_id)?;
        let status = match p.status {
            ProcStatus::Created => Status::CREATED,
            ProcStatus::Running if req.exec_id.is_empty() && c.paused => Status::PAUSED,
            ProcStatus::Running => Status::RUNNING,
            ProcStatus::Stopped => Status::STOPPED,
        };
        Ok(api::StateResponse {
            id: req.id.clone(),
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: p.pid as u32,
            status: status.into(),
            stdin: p.io_spec.stdin.clone(),
            stdout: p.io_spec.stdout.clone(),
            stderr: p.io_spec.stderr.clone(),
            terminal: p.io_spec.terminal,
            exit_status: p.exit_code,
            exited_at: p.exited_at(),
            exec_id: p.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, req: api::WaitRequest) -> Result<api::WaitResponse> {
        let mut tasks = self.lock();
        loop {
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            let p = c.process(&req.exec_id)?;
            if p.status == ProcStatus::Stopped {
                return Ok(api::WaitResponse { exit_status: p.exit_code, exited_at: p.exited_at(), ..Default::default() });
            }
            tasks = self.shared.changed.wait(tasks).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn pause_resume(&self, id: &str, pause: bool) -> Result<()> {
        let mut tasks = self.lock();
        let c = tasks.containers.get_mut(id).ok_or_else(|| not_found(id))?;
        let cmd = if pause { "pause" } else { "resume" };
        if !c.fdbox.supports(cmd, &[]) {
            return Err(c.fdbox.missing(cmd));
        }
        if c.init.status != ProcStatus::Running {
            return Err(Error::FailedPrecondition(format!("task {id:?} is not running")));
        }
        c.fdbox.check(Some(&c.log()), &args![cmd, id])?;
        c.paused = pause;
        if pause {
            self.shared.events.send(topics::TASK_PAUSED_EVENT_TOPIC, TaskPaused { container_id: id.to_string(), ..Default::default() });
        } else {
            self.shared.events.send(topics::TASK_RESUMED_EVENT_TOPIC, TaskResumed { container_id: id.to_string(), ..Default::default() });
        }
        Ok(())
    }

    fn pids(&self, req: api::PidsRequest) -> Result<api::PidsResponse> {
        let (fdbox, log, execs) = {
            let tasks = self.lock();
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            let execs: HashMap<i32, String> = c.execs.values().filter(|e| e.pid > 0).map(|e| (e.pid, e.exec_id.clone())).collect();
            (c.fdbox.clone(), c.log(), execs)
        };
        if !fdbox.supports("ps", &["--format"]) {
            return Err(fdbox.missing("ps"));
        }
        let out = fdbox.check(Some(&log), &args!["ps", "--format", "json", &req.id])?;
        let pids: Vec<i32> = serde_json::from_str(out.stdout.trim()).map_err(|e| Error::Internal(format!("fdbox ps printed {:?}: {e}", out.stdout)))?;
        let processes = pids
            .into_iter()
            .map(|pid| {
                let info = execs.get(&pid).and_then(|exec_id| {
                    let d = ProcessDetails { exec_id: exec_id.clone(), ..Default::default() };
                    d.write_to_bytes().ok().map(|value| Any { type_url: "containerd.runc.v1.ProcessDetails".into(), value, ..Default::default() })
                });
                ProcessInfo { pid: pid as u32, info: info.into(), ..Default::default() }
            })
            .collect();
        Ok(api::PidsResponse { processes, ..Default::default() })
    }

    fn update(&self, req: api::UpdateTaskRequest) -> Result<()> {
        let (fdbox, log, bundle) = {
            let tasks = self.lock();
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            (c.fdbox.clone(), c.log(), c.bundle.clone())
        };
        if !fdbox.supports("update", &["--resources"]) {
            return Err(fdbox.missing("update"));
        }
        let res = req.resources.as_ref().ok_or_else(|| Error::InvalidArgument("update without resources".into()))?;
        serde_json::from_slice::<serde_json::Value>(&res.value)
            .map_err(|e| Error::InvalidArgument(format!("resources ({}): {e}", res.type_url)))?;
        let path = bundle.join(format!("update-{}.json", self.shared.next()));
        std::fs::write(&path, &res.value).sys("write", || path.display().to_string())?;
        let r = fdbox.check(Some(&log), &args!["update", "--resources", &path, &req.id]);
        let _ = std::fs::remove_file(&path);
        r.map(|_| ())
    }

    fn stats(&self, req: api::StatsRequest) -> Result<api::StatsResponse> {
        let (fdbox, log) = {
            let tasks = self.lock();
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            (c.fdbox.clone(), c.log())
        };
        if !fdbox.supports("events", &["--stats"]) {
            return Err(fdbox.missing("events --stats"));
        }
        let out = fdbox.check(Some(&log), &args!["events", "--stats", &req.id])?;
        let event: serde_json::Value = out
            .stdout
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| Error::Internal(format!("fdbox events --stats printed no event: {:?}", out.stdout)))?;
        let any = crate::metrics::to_any(&event["data"], self.shared.unified)?;
        Ok(api::StatsResponse { stats: MessageField::some(any), ..Default::default() })
    }
}

/// TaskOOM: watch the memory cgroup of the container's init for OOM kills,
/// in the monitor's epoll set (see [`Monitor::watch_oom`]): no process or
/// thread per container. The cgroup is the one `/proc/<init>/cgroup` names,
/// read while the init's pidfd shows it alive (so the pid is the init's).
/// The watch ends with the init (or the task's deletion).
fn watch_oom(monitor: &Monitor, init: &Proc) -> Result<()> {
    let (Some(pidfd), Some(token)) = (init.pidfd.as_ref(), init.token) else {
        return Err(Error::FailedPrecondition("the init is not running".into()));
    };
    match fdbox_cgroups::OomWatcher::of_process(pidfd.as_fd(), init.pid) {
        Ok(Some(w)) => monitor.watch_oom(token, w).sys("epoll_ctl", || format!("OOM watch of pid {}", init.pid)),
        Ok(None) => {
            log::info!("pid {}: no memory cgroup of its own, no OOM events", init.pid);
            Ok(())
        }
        Err(e) => Err(Error::Internal(format!("OOM watch of pid {}: {e}", init.pid))),
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("task {id:?} does not exist"))
}

fn rpc<T>(what: &str, r: Result<T>) -> TtrpcResult<T> {
    r.map_err(|e| {
        log::warn!("{what}: {e}");
        e.into()
    })
}

impl containerd_shim::Task for TaskService {
    fn state(&self, _ctx: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        rpc("state", TaskService::state(self, req))
    }

    fn create(&self, _ctx: &TtrpcContext, req: api::CreateTaskRequest) -> TtrpcResult<api::CreateTaskResponse> {
        rpc("create", TaskService::create(self, req))
    }

    fn start(&self, _ctx: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        rpc("start", TaskService::start(self, req))
    }

    fn delete(&self, _ctx: &TtrpcContext, req: api::DeleteRequest) -> TtrpcResult<api::DeleteResponse> {
        rpc("delete", TaskService::delete(self, req))
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        rpc("pids", TaskService::pids(self, req))
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        rpc("pause", self.pause_resume(&req.id, true).map(|()| api::Empty::default()))
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        rpc("resume", self.pause_resume(&req.id, false).map(|()| api::Empty::default()))
    }

    fn checkpoint(&self, _ctx: &TtrpcContext, _req: api::CheckpointTaskRequest) -> TtrpcResult<api::Empty> {
        rpc("checkpoint", Err(Error::Unimplemented("checkpoint is not supported by fdbox yet".into())))
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        rpc("kill", TaskService::kill(self, req).map(|()| api::Empty::default()))
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        rpc("exec", TaskService::exec(self, req).map(|()| api::Empty::default()))
    }

    fn resize_pty(&self, _ctx: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let r = (|| {
            let tasks = self.lock();
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            let p = c.process(&req.exec_id)?;
            let io = p.io.as_ref().ok_or_else(|| Error::FailedPrecondition("the process has not been started".into()))?;
            io.resize(req.width, req.height)
        })();
        rpc("resize_pty", r.map(|()| api::Empty::default()))
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let r = (|| {
            let tasks = self.lock();
            let c = tasks.containers.get(&req.id).ok_or_else(|| not_found(&req.id))?;
            let p = c.process(&req.exec_id)?;
            if req.stdin {
                if let Some(io) = p.io.as_ref() {
                    io.close_stdin();
                }
            }
            Ok(())
        })();
        rpc("close_io", r.map(|()| api::Empty::default()))
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        rpc("update", TaskService::update(self, req).map(|()| api::Empty::default()))
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        rpc("wait", TaskService::wait(self, req))
    }

    fn stats(&self, _ctx: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        rpc("stats", TaskService::stats(self, req))
    }

    fn connect(&self, _ctx: &TtrpcContext, req: api::ConnectRequest) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.lock().containers.get(&req.id).map(|c| c.init.pid as u32).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: format!("fdbox-shim {}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if !req.now && !self.lock().containers.is_empty() {
            return Ok(api::Empty::default());
        }
        // The last events (TaskDelete) must reach containerd before we go.
        self.shared.events.flush(Duration::from_secs(5));
        self.shared.exit.signal();
        Ok(api::Empty::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_772_242, 5);
        assert_eq!(rfc3339(t), "2026-11-27T09:37:22.000000005Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn options() {
        assert!(runtime_options(None).unwrap().binary_name.is_empty());
        let o = Options { binary_name: "/x/fdbox".into(), root: "/r".into(), ..Default::default() };
        let any = Any { type_url: "containerd.runc.v1.Options".into(), value: o.write_to_bytes().unwrap(), ..Default::default() };
        let back = runtime_options(Some(&any)).unwrap();
        assert_eq!(back.binary_name, "/x/fdbox");
        assert_eq!(back.root, "/r");
        let bad = Any { type_url: "example.com/Other".into(), value: vec![1], ..Default::default() };
        assert!(runtime_options(Some(&bad)).is_err());
    }
}

//! The exit monitor: one thread, one epoll set over every pidfd the shim
//! holds plus a signalfd for SIGCHLD. It is the only reaper in the shim.
//!
//! * A tracked process (container init, exec, or an `fdbox` helper the shim
//!   started) is reaped with `waitid(P_PIDFD)` when its pidfd polls readable
//!   and its exit is delivered to its owner.
//! * A tracked process that is not our child yet (a container init whose
//!   `fdbox create` parent still runs) makes `waitid` fail with ECHILD: it is
//!   left alone until it is reparented to us, the subreaper; the kernel then
//!   sends SIGCHLD and the sweep below finds it.
//! * The sweep, on SIGCHLD: `waitid(P_ALL, WNOWAIT)` peeks at an exited child
//!   without reaping it; a tracked one is reaped through its pidfd (so its
//!   exit reaches its owner), any other one is an orphan that reparented to
//!   us and is reaped by pid. Only this thread reaps, and the registry lock
//!   is held from peek to reap, so the pid cannot change meaning in between;
//!   helpers are registered under the same lock right after `spawn`, so the
//!   sweep never takes one for an orphan.
//! * A process handed over by `fdbox create`/`exec` may die and be
//!   reparented to us before its pidfd has been received: while a hand-over
//!   is in progress ([`Monitor::hold`]) no untracked child is reaped.
//! * OOM watches ([`Monitor::watch_oom`]): the fd of a container's memory
//!   cgroup (v1 eventfd, v2 `memory.events`) is in the same epoll set,
//!   level-triggered, tied to the container's init. Each OOM kill is sent
//!   as [`Notice::Oom`]; the watch is checked a last time and closed when
//!   the init is reaped (so an OOM kill of the init itself is sent before
//!   its exit), or dropped with [`Monitor::forget`]. No process or thread
//!   per container.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use fdbox_cgroups::OomWatcher;
use rustix::event::{epoll, PollFlags};
use rustix::io::Errno;

use crate::pidfd::{ExitCode, Pidfd};
use crate::sys;

/// Identifies a tracked process in the registry and in epoll.
pub type Token = u64;

const SIGNAL_TOKEN: Token = 0;

/// A process exit, as delivered to the owner of a tracked container process.
#[derive(Debug, Clone)]
pub struct Exit {
    pub token: Token,
    pub code: ExitCode,
    pub at: SystemTime,
}

/// What the monitor tells the service, in the order it happened.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A tracked container process exited.
    Exit(Exit),
    /// The kernel OOM-killed in the memory cgroup watched for the container
    /// whose init is the tracked process `token` (see [`Monitor::watch_oom`]).
    Oom { token: Token },
}

enum Sink {
    /// A helper the shim started: its waiter gets the exit code.
    Helper(Sender<ExitCode>),
    /// A container process: the exit goes to the service's exit channel.
    Process,
}

struct Entry {
    pidfd: Arc<Pidfd>,
    sink: Sink,
}

/// An OOM watch in the epoll set, owned by a tracked process.
struct OomEntry {
    owner: Token,
    watcher: OomWatcher,
}

#[derive(Default)]
struct Registry {
    next: Token,
    entries: HashMap<Token, Entry>,
    by_pid: HashMap<i32, Token>,
    /// OOM watches by their own token, and their tokens by owner.
    ooms: HashMap<Token, OomEntry>,
    oom_of: HashMap<Token, Token>,
    /// Hand-overs in progress (see [`Monitor::hold`]): while any runs, no
    /// untracked child is reaped.
    holds: usize,
}

struct Inner {
    epoll: OwnedFd,
    registry: Mutex<Registry>,
    exits: Sender<Notice>,
}

/// Handle on the monitor thread.
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

/// A helper process started through [`Monitor::spawn`]: its stdio pipes
/// (from `Command`) and the channel its exit code arrives on.
pub struct Helper {
    pub child: Child,
    pub pidfd: Arc<Pidfd>,
    exit: Receiver<ExitCode>,
}

impl Helper {
    /// Block until the helper exits (the monitor reaps it).
    pub fn wait(&self) -> ExitCode {
        // The monitor lives as long as the shim; a closed channel would mean
        // it died, and the helper's fate is unknown then.
        self.exit.recv().unwrap_or(255)
    }

    /// Like [`Helper::wait`], but a helper still running after `timeout` is
    /// killed (through its pidfd) and reported as such.
    pub fn wait_timeout(&self, timeout: std::time::Duration) -> Result<ExitCode, ExitCode> {
        match self.exit.recv_timeout(timeout) {
            Ok(code) => Ok(code),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.pidfd.signal(libc::SIGKILL as u32);
                Err(self.wait())
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(255),
        }
    }
}

impl Monitor {
    /// Start the monitor thread. Exits of tracked container processes and
    /// OOM kills are sent to the returned receiver. SIGCHLD must already be
    /// blocked in every thread (see [`sys::block_sigchld`]).
    pub fn start() -> Result<(Monitor, Receiver<Notice>), Errno> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let sigfd = sys::sigchld_fd()?;
        epoll::add(&epoll, &sigfd, epoll::EventData::new_u64(SIGNAL_TOKEN), epoll::EventFlags::IN)?;
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner { epoll, registry: Mutex::new(Registry { next: 1, ..Default::default() }), exits: tx });
        let thread_inner = inner.clone();
        std::thread::Builder::new()
            .name("monitor".into())
            .stack_size(256 * 1024)
            .spawn(move || thread_inner.run(sigfd))
            .map_err(|_| Errno::AGAIN)?;
        Ok((Monitor { inner }, rx))
    }

    /// Track a container process; its exit is sent to the exit channel
    /// with the returned token.
    pub fn track(&self, pidfd: Arc<Pidfd>) -> Result<Token, Errno> {
        let mut reg = self.inner.lock();
        self.inner.register(&mut reg, pidfd, Sink::Process)
    }

    /// Watch the OOM kills of the container whose init is the tracked
    /// process `owner`: each is sent as [`Notice::Oom`] (also one that
    /// happened before the watch began). The watch ends when the owner is
    /// reaped (after a last check) or forgotten; a new watch for the same
    /// owner replaces the old one. ESRCH: the owner is not tracked (any
    /// more).
    pub fn watch_oom(&self, owner: Token, mut watcher: OomWatcher) -> Result<(), Errno> {
        let mut reg = self.inner.lock();
        if !reg.entries.contains_key(&owner) {
            return Err(Errno::SRCH);
        }
        self.inner.end_oom(&mut reg, owner, false);
        let token = reg.next;
        reg.next += 1;
        // Level-triggered: `check` re-arms (reads) the fd.
        let flags = if watcher.poll_flags().contains(PollFlags::PRI) { epoll::EventFlags::PRI } else { epoll::EventFlags::IN };
        epoll::add(&self.inner.epoll, &watcher, epoll::EventData::new_u64(token), flags)?;
        // A kill before the watch raised no wakeup: compare the count now.
        if let Ok(true) = watcher.check() {
            let _ = self.inner.exits.send(Notice::Oom { token: owner });
        }
        reg.ooms.insert(token, OomEntry { owner, watcher });
        reg.oom_of.insert(owner, token);
        Ok(())
    }

    /// Stop tracking a process whose exit no longer matters (its create
    /// failed, its task was deleted). Nothing is delivered for it; its OOM
    /// watch is closed.
    pub fn forget(&self, token: Token) {
        let mut reg = self.inner.lock();
        self.inner.end_oom(&mut reg, token, false);
        if let Some(e) = reg.entries.remove(&token) {
            let _ = epoll::delete(&self.inner.epoll, e.pidfd.as_fd());
            if reg.by_pid.get(&e.pidfd.pid()) == Some(&token) {
                reg.by_pid.remove(&e.pidfd.pid());
            }
        }
    }

    /// Hold off orphan reaping during a hand-over. `fdbox create`/`exec`
    /// sends the new process's pidfd and exits; if the process died
    /// already, it is reparented to us as a zombie at that moment, possibly
    /// before we have received and tracked its pidfd. Until the guard is
    /// dropped (after tracking), such a zombie is left alone; dropping the
    /// last guard sweeps.
    pub fn hold(&self) -> Hold {
        self.inner.lock().holds += 1;
        Hold { inner: self.inner.clone() }
    }

    /// Spawn `cmd` and track it before anything can reap it.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<Helper> {
        let mut reg = self.inner.lock();
        let mut child = cmd.spawn()?;
        let pidfd = match crate::pidfd::open_child(&child) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                // Cannot happen for an unreaped child; do not leave it behind.
                let _ = child.kill();
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::channel();
        self.inner.register(&mut reg, pidfd.clone(), Sink::Helper(tx))?;
        Ok(Helper { child, pidfd, exit: rx })
    }
}

/// See [`Monitor::hold`].
pub struct Hold {
    inner: Arc<Inner>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let last = {
            let mut reg = self.inner.lock();
            reg.holds -= 1;
            reg.holds == 0
        };
        if last {
            self.inner.sweep();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, reg: &mut Registry, pidfd: Arc<Pidfd>, sink: Sink) -> Result<Token, Errno> {
        let token = reg.next;
        reg.next += 1;
        // A pid can only be in use twice if the older entry's process was
        // reaped by someone else (its `fdbox create` parent, on failure):
        // that entry can never be reaped by us, so drop it.
        if let Some(old) = reg.by_pid.insert(pidfd.pid(), token) {
            self.end_oom(reg, old, false);
            if let Some(e) = reg.entries.remove(&old) {
                let _ = epoll::delete(&self.epoll, e.pidfd.as_fd());
                self.deliver(old, e, 255);
            }
        }
        let flags = epoll::EventFlags::IN | epoll::EventFlags::ONESHOT;
        epoll::add(&self.epoll, pidfd.as_fd(), epoll::EventData::new_u64(token), flags)?;
        reg.entries.insert(token, Entry { pidfd, sink });
        Ok(token)
    }

    fn deliver(&self, token: Token, entry: Entry, code: ExitCode) {
        match entry.sink {
            Sink::Helper(tx) => {
                let _ = tx.send(code);
            }
            Sink::Process => {
                let _ = self.exits.send(Notice::Exit(Exit { token, code, at: SystemTime::now() }));
            }
        }
    }

    /// Close the OOM watch of `owner`, if any; with `last`, report a kill
    /// not reported yet first (the init itself, its wakeup racing with the
    /// exit).
    fn end_oom(&self, reg: &mut Registry, owner: Token, last: bool) {
        let Some(t) = reg.oom_of.remove(&owner) else { return };
        let Some(mut o) = reg.ooms.remove(&t) else { return };
        let _ = epoll::delete(&self.epoll, &o.watcher);
        if last && matches!(o.watcher.check(), Ok(true)) {
            let _ = self.exits.send(Notice::Oom { token: owner });
        }
    }

    /// An OOM watch polled ready.
    fn oom_ready(&self, reg: &mut Registry, token: Token) {
        let Some(o) = reg.ooms.get_mut(&token) else { return };
        match o.watcher.check() {
            Ok(true) => {
                let _ = self.exits.send(Notice::Oom { token: o.owner });
            }
            Ok(false) => {}
            // The cgroup is gone (the container was deleted under a living
            // init?): a dead watch would poll ready for ever.
            Err(e) => {
                log::debug!("monitor: OOM watch of {}: {e}", o.watcher.label());
                let owner = o.owner;
                self.end_oom(reg, owner, false);
            }
        }
    }

    fn run(&self, sigfd: OwnedFd) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(32);
        loop {
            events.clear();
            match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), None) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => {
                    log::error!("monitor: epoll_wait: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            }
            let mut sweep = false;
            for ev in &events {
                let token = ev.data.u64();
                if token == SIGNAL_TOKEN {
                    sys::drain_signalfd(sigfd.as_fd());
                    sweep = true;
                } else {
                    self.ready(token);
                }
            }
            if sweep {
                self.sweep();
            }
        }
    }

    /// A tracked pidfd polled readable (its process exited), or an OOM
    /// watch polled ready.
    fn ready(&self, token: Token) {
        let mut reg = self.lock();
        if reg.ooms.contains_key(&token) {
            return self.oom_ready(&mut reg, token);
        }
        let Some(entry) = reg.entries.get(&token) else { return };
        match entry.pidfd.try_reap() {
            Ok(Some(code)) => self.reaped(&mut reg, token, code),
            // Not exited after all (cannot happen for a pidfd): re-arm.
            Ok(None) => {
                let flags = epoll::EventFlags::IN | epoll::EventFlags::ONESHOT;
                let _ = epoll::modify(&self.epoll, entry.pidfd.as_fd(), epoll::EventData::new_u64(token), flags);
            }
            // Not our child yet: the sweep reaps it once it reparents to us.
            Err(Errno::CHILD) => {}
            Err(e) => log::warn!("monitor: waitid(P_PIDFD, pid {}): {e}", entry.pidfd.pid()),
        }
    }

    fn reaped(&self, reg: &mut Registry, token: Token, code: ExitCode) {
        // Before the exit: an OOM kill of the init is reported first.
        self.end_oom(reg, token, true);
        if let Some(entry) = reg.entries.remove(&token) {
            let _ = epoll::delete(&self.epoll, entry.pidfd.as_fd());
            if reg.by_pid.get(&entry.pidfd.pid()) == Some(&token) {
                reg.by_pid.remove(&entry.pidfd.pid());
            }
            self.deliver(token, entry, code);
        }
    }

    /// Reap every exited child: tracked ones through their pidfd, orphans
    /// by pid (see the module docs for why this cannot race).
    fn sweep(&self) {
        loop {
            let mut reg = self.lock();
            let pid = match sys::peek_exited_child() {
                Ok(Some(pid)) => pid,
                Ok(None) | Err(Errno::CHILD) => return,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    log::warn!("monitor: waitid(P_ALL, WNOWAIT): {e}");
                    return;
                }
            };
            if let Some(&token) = reg.by_pid.get(&pid) {
                let reaped = reg.entries.get(&token).map(|e| e.pidfd.try_reap());
                match reaped {
                    Some(Ok(Some(code))) => {
                        self.reaped(&mut reg, token, code);
                        continue;
                    }
                    // Not exited after all (another thread of it still runs?):
                    // nothing to reap now.
                    Some(Ok(None)) => return,
                    // The entry's pidfd names another (long reaped) process
                    // that had this pid: drop it and reap the child as an orphan.
                    _ => {
                        reg.by_pid.remove(&pid);
                        self.end_oom(&mut reg, token, false);
                        if let Some(e) = reg.entries.remove(&token) {
                            let _ = epoll::delete(&self.epoll, e.pidfd.as_fd());
                            self.deliver(token, e, 255);
                        }
                    }
                }
            }
            if reg.holds > 0 {
                // Possibly a process whose pidfd is on its way to us: the
                // last hand-over to finish sweeps again.
                return;
            }
            self.reap_orphan(pid);
        }
    }

    fn reap_orphan(&self, pid: i32) {
        let Some(p) = rustix::process::Pid::from_raw(pid) else { return };
        let opts = rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG;
        match rustix::process::waitid(rustix::process::WaitId::Pid(p), opts) {
            Ok(_) => log::debug!("monitor: reaped orphan {pid}"),
            Err(e) => log::warn!("monitor: waitid(P_PID, {pid}): {e}"),
        }
    }
}

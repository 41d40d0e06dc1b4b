//! `run`: create + start + wait, with signals forwarded to the container
//! and, for a terminal without a console socket, the pty proxied.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;

use super::{create, delete, start, CreateOpts};
use crate::error::{Error, Result, SysContext};
use crate::state::Root;
use crate::sys::SignalFd;

#[derive(Debug, Default, Clone)]
pub struct RunOpts {
    pub create: CreateOpts,
    pub detach: bool,
    pub keep: bool,
}

/// Signals a foreground `run` passes on to the container, as runc does.
pub(super) const FORWARDED: &[i32] = &[
    libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2,
    libc::SIGWINCH, libc::SIGCONT, libc::SIGALRM,
];

/// Run the container; returns the exit code for fdbox to exit with (the
/// container's, or 128+N when a signal killed it).
pub fn run(root: &Root, o: &RunOpts) -> Result<i32> {
    if o.detach {
        let _created = create(root, &o.create)?;
        return match start(root, &o.create.id) {
            Ok(()) => Ok(0),
            Err(e) => {
                let _ = delete(root, &o.create.id, true);
                Err(e)
            }
        };
    }
    // Block the forwarded signals before the container exists, so none is
    // lost (or kills us) between create and the wait. The init resets its
    // signal mask before exec.
    let sigfd = SignalFd::new(FORWARDED).sys("signalfd", String::new)?;
    let mut copts = o.create.clone();
    copts.keep_console = true;
    let mut created = create(root, &copts)?;
    crate::debug!("run {}: starting, then waiting for init pid {}", copts.id, created.state.pid);
    let result = start::start_created(root, &created.state, &created.init).and_then(|()| {
        let raw = created.console.as_ref().map(|m| RawTerminal::enter(m.as_fd()));
        let code = wait(&created.init, &sigfd, created.console.as_ref());
        drop(raw);
        code
    });
    if result.is_err() {
        let _ = created.init.signal(libc::SIGKILL);
    }
    let reaped = created.init.reap();
    crate::debug!("run {}: init exited{}", copts.id, reaped.as_ref().map(|c| format!(" ({c})")).unwrap_or_default());
    if !o.keep {
        // Reaped, so stopped: no need to look the container up again.
        match delete::delete_stopped(root, &created.state, created.cgroup.take()) {
            // A failed startContainer or poststart hook destroyed it
            // already: its error is the one to report.
            Err(Error::NotFound(_)) if result.is_err() => {}
            other => other?,
        }
    }
    let code = result?;
    let reaped = reaped.sys("waitid", || "container init".into())?;
    Ok(code.unwrap_or(reaped))
}

/// A foreground `run` or `exec` whose process has a terminal and no
/// console socket proxies the pty to a terminal of ours. Without one
/// (stdin, stdout and stderr are not terminals, and there is no
/// controlling terminal) nobody could type into it, and the program would
/// wait forever: refuse at once, before anything is made, as runc does
/// (in its words, which clients may look for).
pub(super) fn require_host_terminal() -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    if [rustix::stdio::stderr(), rustix::stdio::stdout(), rustix::stdio::stdin()].into_iter().any(rustix::termios::isatty) {
        return Ok(());
    }
    match rustix::fs::open("/dev/tty", OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Config(format!(
            "process.terminal is true, but there is no --console-socket and no terminal to connect it to: open /dev/tty: {}",
            fdbox_mount::describe(e).to_lowercase()
        ))),
    }
}

/// Poll the init's pidfd, the signalfd and (with a pty) stdin and the pty
/// master until the init exits. Returns `None` when the exit code must be
/// taken from the reaped status.
pub(super) fn wait(init: &crate::process::pidfd::PidFd, sigfd: &SignalFd, console: Option<&OwnedFd>) -> Result<Option<i32>> {
    let stdin = rustix::stdio::stdin();
    let mut master_open = console.is_some();
    let mut stdin_open = console.is_some();
    loop {
        let mut fds = vec![PollFd::new(init, PollFlags::IN), PollFd::from_borrowed_fd(sigfd.fd(), PollFlags::IN)];
        let master_idx = fds.len();
        if let (Some(m), true) = (console, master_open) {
            fds.push(PollFd::new(m, PollFlags::IN));
        }
        let stdin_idx = fds.len();
        if stdin_open {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll", "container init", e)),
            Ok(_) => {}
        }
        let ready: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        if ready[1].contains(PollFlags::IN) {
            while let Some(sig) = sigfd.read() {
                if sig == libc::SIGWINCH {
                    if let Some(m) = console {
                        copy_winsize(stdin, m.as_fd());
                    }
                    continue;
                }
                let _ = init.signal(sig);
            }
        }
        if let Some(m) = console {
            if master_open && !ready[master_idx].is_empty() && !pump(m.as_fd(), rustix::stdio::stdout()) {
                master_open = false;
            }
            if stdin_open && !ready[stdin_idx].is_empty() && !pump(stdin, m.as_fd()) {
                stdin_open = false;
            }
        }
        if ready[0].contains(PollFlags::IN) {
            // Drain what the container still wrote to its terminal.
            if let (Some(m), true) = (console, master_open) {
                while pump_nonblocking(m.as_fd()) {}
            }
            return Ok(None);
        }
    }
}

/// Copy one chunk from `from` to `to`; false at end-of-file or error.
fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match rustix::io::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => write_all(to, &buf[..n]),
    }
}

fn pump_nonblocking(m: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(m, PollFlags::IN)];
    matches!(poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })), Ok(n) if n > 0)
        && pump(m, rustix::stdio::stdout())
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    true
}

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}

/// Our own terminal in raw mode while a container's pty is proxied;
/// restored on drop.
pub(super) struct RawTerminal {
    saved: Option<rustix::termios::Termios>,
}

impl RawTerminal {
    pub(super) fn enter(master: BorrowedFd<'_>) -> RawTerminal {
        let stdin = rustix::stdio::stdin();
        copy_winsize(stdin, master);
        let saved = rustix::termios::tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        RawTerminal { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), rustix::termios::OptionalActions::Now, t);
        }
    }
}

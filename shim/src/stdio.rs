//! A container process's stdio, as containerd describes it: FIFO paths
//! created by the client (ctr uses /run/containerd/fifo/…), `file://` URIs,
//! or nothing. The process gets pipes (or, with a terminal, the pty slave)
//! and the shim copies between them and the client's FIFOs, like the runc
//! shim does, so the client may come and go without the process noticing.
//!
//! Each copy runs in its own small thread that polls its source together
//! with a stop pipe, so the shim can end the copies of a deleted process.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::{pipe_with, PipeFlags};

use crate::error::{Error, Result, SysContext};

/// The stdio of one process as given in a Create or Exec request.
#[derive(Debug, Clone, Default)]
pub struct IoSpec {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Where one output stream goes.
enum Sink {
    None,
    Fifo(PathBuf),
    File(PathBuf),
    /// containerd's logging binary: `binary:///path?arg=value&flag`.
    Binary { path: PathBuf, args: Vec<String> },
}

/// The context a `binary://` logger is started in.
pub struct LogContext<'a> {
    pub monitor: &'a crate::monitor::Monitor,
    pub id: &'a str,
    pub namespace: &'a str,
}

/// How long a logging binary may take to say it is ready (closing fd 5),
/// and to finish once the process's output ended.
const LOGGER_TIMEOUT: Duration = Duration::from_secs(12);

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let decoded = match b[i] {
            b'%' if i + 2 < b.len() => hex(b[i + 1]).zip(hex(b[i + 2])).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (decoded, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, c) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_output(uri: &str) -> Result<Sink> {
    if uri.is_empty() {
        return Ok(Sink::None);
    }
    if let Some(path) = uri.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(Error::InvalidArgument(format!("stdio {uri}: a file:// URI needs an absolute path")));
        }
        return Ok(Sink::File(PathBuf::from(path)));
    }
    if let Some(path) = uri.strip_prefix("fifo://") {
        return Ok(Sink::Fifo(PathBuf::from(path)));
    }
    if let Some(rest) = uri.strip_prefix("binary://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !path.starts_with('/') {
            return Err(Error::InvalidArgument(format!("stdio {uri}: a binary:// URI needs an absolute path")));
        }
        // Each query pair becomes arguments: the key, then the value if any
        // (as containerd's runc shim does), in the order given.
        let mut args = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').map_or((pair, None), |(k, v)| (k, Some(v)));
            args.push(percent_decode(k));
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                args.push(percent_decode(v));
            }
        }
        return Ok(Sink::Binary { path: PathBuf::from(percent_decode(path)), args });
    }
    if uri.contains("://") {
        return Err(Error::InvalidArgument(format!(
            "stdio {uri}: unsupported URI scheme (fifo paths, file:// and binary:// are)"
        )));
    }
    Ok(Sink::Fifo(PathBuf::from(uri)))
}

/// The stdio the `fdbox` helper (and through it the container process)
/// is started with.
pub struct HelperStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl HelperStdio {
    pub fn null() -> HelperStdio {
        HelperStdio { stdin: Stdio::null(), stdout: Stdio::null(), stderr: Stdio::null() }
    }
}

/// The shim's side of a process's stdio.
pub struct ProcessIo {
    /// Where the stdin copy writes (pipe write end or pty master); taken
    /// away by CloseIO, which closes the process's stdin.
    stdin_dst: Arc<Mutex<Option<Arc<OwnedFd>>>>,
    /// The pty master of a terminal process (for ResizePty).
    console: Option<Arc<OwnedFd>>,
    /// Write end of the stop pipe: closing it ends every copy.
    stop: Option<OwnedFd>,
    stop_rd: Arc<OwnedFd>,
    /// One message per output copy when it finished.
    done_tx: Sender<()>,
    done_rx: Receiver<()>,
    outputs: usize,
    /// A `binary://` logging process.
    logger: Option<crate::monitor::Helper>,
}

impl ProcessIo {
    fn new() -> Result<ProcessIo> {
        let (stop_rd, stop) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", || "stdio stop pipe".into())?;
        let (done_tx, done_rx) = mpsc::channel();
        Ok(ProcessIo {
            stdin_dst: Arc::new(Mutex::new(None)),
            console: None,
            stop: Some(stop),
            stop_rd: Arc::new(stop_rd),
            done_tx,
            done_rx,
            outputs: 0,
            logger: None,
        })
    }

    /// No terminal: pipes for the process, copies to and from the client's
    /// FIFOs; a `file://` output is given to the process directly.
    pub fn pipes(spec: &IoSpec, ctx: &LogContext<'_>) -> Result<(ProcessIo, HelperStdio)> {
        let mut io = ProcessIo::new()?;
        let stdin = if spec.stdin.is_empty() {
            Stdio::null()
        } else {
            let (r, w) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", || "stdin".into())?;
            let w = Arc::new(w);
            *io.stdin_dst.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
            io.copy_stdin(PathBuf::from(&spec.stdin))?;
            Stdio::from(r)
        };
        if let Sink::Binary { path, args } = parse_output(&spec.stdout)? {
            if !spec.stderr.is_empty() && spec.stderr != spec.stdout {
                return Err(Error::InvalidArgument(format!(
                    "stdio: a binary:// logger takes both stdout and stderr (stderr is {:?})",
                    spec.stderr
                )));
            }
            let (out, err) = io.start_logger(&path, &args, ctx)?;
            return Ok((io, HelperStdio { stdin, stdout: Stdio::from(out), stderr: Stdio::from(err) }));
        }
        let stdout = io.output(&spec.stdout, "stdout")?;
        // stdout and stderr to the same file: one open file description, so
        // appends interleave instead of overwriting each other.
        let stderr = if !spec.stderr.is_empty() && spec.stderr == spec.stdout && spec.stdout.starts_with("file://") {
            match &stdout {
                Output::Fd(fd) => Output::Fd(fd.try_clone().sys("dup", || "stdout file".into())?),
                _ => io.output(&spec.stderr, "stderr")?,
            }
        } else {
            io.output(&spec.stderr, "stderr")?
        };
        Ok((io, HelperStdio { stdin, stdout: stdout.into(), stderr: stderr.into() }))
    }

    /// A terminal: copies between the pty master and the client's FIFOs.
    pub fn console(spec: &IoSpec, master: OwnedFd, ctx: &LogContext<'_>) -> Result<ProcessIo> {
        let mut io = ProcessIo::new()?;
        set_nonblocking(master.as_fd()).sys("fcntl", || "pty master O_NONBLOCK".into())?;
        let master = Arc::new(master);
        io.console = Some(master.clone());
        if !spec.stdin.is_empty() {
            *io.stdin_dst.lock().unwrap_or_else(|p| p.into_inner()) = Some(master.clone());
            io.copy_stdin(PathBuf::from(&spec.stdin))?;
        }
        match parse_output(&spec.stdout)? {
            Sink::None => {}
            Sink::Fifo(path) => {
                let dst = open_fifo_writer(&path)?;
                io.spawn_output(master.clone(), dst, "stdout")?;
            }
            Sink::File(path) => {
                let dst = open_log_file(&path)?;
                io.spawn_output(master.clone(), dst, "stdout")?;
            }
            Sink::Binary { path, args } => {
                let (dst, _stderr) = io.start_logger(&path, &args, ctx)?;
                io.spawn_output(master.clone(), dst, "stdout")?;
            }
        }
        Ok(io)
    }

    /// Start containerd's kind of logging binary: the process's stdout and
    /// stderr pipes as its fds 3 and 4, and fd 5, which it closes once it is
    /// ready; `CONTAINER_ID` and `CONTAINER_NAMESPACE` in its environment.
    /// Returns the write ends for the process.
    fn start_logger(&mut self, path: &Path, args: &[String], ctx: &LogContext<'_>) -> Result<(OwnedFd, OwnedFd)> {
        let what = || format!("logging binary {}", path.display());
        let (out_r, out_w) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", what)?;
        let (err_r, err_w) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", what)?;
        let (ready_r, ready_w) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", what)?;
        let mut cmd = std::process::Command::new(path);
        cmd.args(args)
            .env("CONTAINER_ID", ctx.id)
            .env("CONTAINER_NAMESPACE", ctx.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let keep = crate::sys::pass_fds(&mut cmd, &[out_r.as_fd(), err_r.as_fd(), ready_w.as_fd()]).sys("fcntl", what)?;
        let helper = ctx
            .monitor
            .spawn(&mut cmd)
            .map_err(|e| Error::InvalidArgument(format!("starting the {}: {e}", what())))?;
        drop((cmd, keep, out_r, err_r, ready_w));
        // Ready: fd 5 closed (or written to) by the logger, or the logger gone.
        let mut fds = [PollFd::new(&ready_r, PollFlags::IN)];
        let ts = rustix::event::Timespec { tv_sec: LOGGER_TIMEOUT.as_secs() as i64, tv_nsec: 0 };
        let ready = loop {
            match poll(&mut fds, Some(&ts)) {
                Err(Errno::INTR) => continue,
                Ok(n) => break n > 0,
                Err(_) => break false,
            }
        };
        self.logger = Some(helper);
        if !ready {
            return Err(Error::Internal(format!("the {} did not get ready within {}s", what(), LOGGER_TIMEOUT.as_secs())));
        }
        Ok((out_w, err_w))
    }

    fn output(&mut self, uri: &str, what: &'static str) -> Result<Output> {
        match parse_output(uri)? {
            Sink::None => Ok(Output::Null),
            Sink::File(path) => Ok(Output::Fd(open_log_file(&path)?)),
            Sink::Fifo(path) => {
                let (r, w) = pipe_with(PipeFlags::CLOEXEC).sys("pipe", || what.into())?;
                set_nonblocking(r.as_fd()).sys("fcntl", || format!("{what} pipe O_NONBLOCK"))?;
                let dst = open_fifo_writer(&path)?;
                self.spawn_output(Arc::new(r), dst, what)?;
                Ok(Output::Fd(w))
            }
            // Only as stdout together with stderr (see `pipes`).
            Sink::Binary { .. } => Err(Error::InvalidArgument(format!("stdio: {what} alone cannot go to a binary:// logger"))),
        }
    }

    fn spawn_output(&mut self, src: Arc<OwnedFd>, dst: OwnedFd, what: &'static str) -> Result<()> {
        let stop = self.stop_rd.clone();
        let done = self.done_tx.clone();
        spawn_thread(what, move || {
            copy(src.as_fd(), |data| write_all(dst.as_fd(), data), stop.as_fd());
            drop(dst);
            let _ = done.send(());
        })?;
        self.outputs += 1;
        Ok(())
    }

    /// Copy the client's stdin FIFO into the process until the client closes
    /// it (or CloseIO / stop), then close the process's stdin.
    fn copy_stdin(&mut self, fifo: PathBuf) -> Result<()> {
        // Opened non-blocking so the open does not wait for a writer; a FIFO
        // that never had a writer does not poll readable (nor HUP), so the
        // copy simply waits for the client to connect.
        let src = rustix::fs::open(&fifo, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .sys("open", || format!("stdin fifo {}", fifo.display()))?;
        let dst_slot = self.stdin_dst.clone();
        let stop = self.stop_rd.clone();
        spawn_thread("stdin", move || {
            copy(
                src.as_fd(),
                |data| {
                    // A clone of the Arc: CloseIO may take the slot meanwhile,
                    // and the fd closes once this write is done.
                    let dst = dst_slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    match dst {
                        Some(fd) => write_all(fd.as_fd(), data),
                        None => Err(Errno::PIPE),
                    }
                },
                stop.as_fd(),
            );
            dst_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        })
    }

    /// CloseIO: close the process's stdin (the pipe's write end; for a
    /// terminal, stop forwarding input to the pty).
    pub fn close_stdin(&self) {
        self.stdin_dst.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// ResizePty: `TIOCSWINSZ` on the pty master.
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let master = self.console.as_ref().ok_or_else(|| Error::FailedPrecondition("the process has no terminal".into()))?;
        let ws = rustix::termios::Winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(master.as_fd(), ws).sys("ioctl", || "TIOCSWINSZ on the pty master".into())
    }

    /// Wait until every output copy has reached the end of its stream (the
    /// process and everything that inherited its stdio exited), at most
    /// `timeout`; then stop whatever still runs.
    pub fn finish(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.outputs > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.done_rx.recv_timeout(left).is_err() {
                break;
            }
            self.outputs -= 1;
        }
        self.stop.take();
        self.close_stdin();
        // A logging binary reads to the end of the process's output; it
        // gets as long as containerd gives it, then it is killed.
        if let Some(logger) = self.logger.take() {
            let _ = logger.wait_timeout(LOGGER_TIMEOUT);
        }
    }
}

impl Drop for ProcessIo {
    fn drop(&mut self) {
        // Closing the stop pipe ends the copies that still run.
        self.stop.take();
        if let Some(logger) = self.logger.take() {
            let _ = logger.pidfd.signal(libc::SIGKILL as u32);
        }
    }
}

enum Output {
    Null,
    Fd(OwnedFd),
}

impl From<Output> for Stdio {
    fn from(o: Output) -> Stdio {
        match o {
            Output::Null => Stdio::null(),
            Output::Fd(fd) => Stdio::from(fd),
        }
    }
}

fn spawn_thread(what: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("io-{what}"))
        .stack_size(64 * 1024)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("starting the {what} copy thread: {e}")))
}

/// Open the client's output FIFO for writing without waiting for a reader:
/// O_RDWR never blocks on a FIFO and keeps it open even if the client goes
/// away, so the process never gets EPIPE (as with the runc shim).
fn open_fifo_writer(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).sys("open", || format!("output fifo {}", path.display()))
}

fn open_log_file(path: &Path) -> Result<OwnedFd> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).sys("mkdir", || dir.display().to_string())?;
    }
    rustix::fs::open(path, OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
        .sys("open", || format!("log file {}", path.display()))
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> std::result::Result<(), Errno> {
    let fl = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, fl | OFlags::NONBLOCK)
}

/// Copy from `src` (non-blocking) to `write` until EOF, EIO (a pty whose
/// slave side is closed), a write error, or `stop` polls readable/HUP.
///
/// Poll first, read second: a FIFO that no writer has opened yet reads as
/// EOF, but does not poll readable until a writer came (and wrote or left).
fn copy(src: BorrowedFd<'_>, mut write: impl FnMut(&[u8]) -> std::result::Result<(), Errno>, stop: BorrowedFd<'_>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = [PollFd::new(&src, PollFlags::IN), PollFd::new(&stop, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(_) => return,
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        loop {
            match rustix::io::read(src, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if write(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(Errno::AGAIN) | Err(Errno::INTR) => break,
                Err(_) => return,
            }
        }
    }
}

/// Write all of `data`, waiting for room when `fd` is non-blocking.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
                let _ = poll(&mut fds, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn uris() {
        assert!(matches!(parse_output("").unwrap(), Sink::None));
        assert!(matches!(parse_output("/run/x/stdout").unwrap(), Sink::Fifo(_)));
        assert!(matches!(parse_output("file:///var/log/x").unwrap(), Sink::File(_)));
        assert!(parse_output("file://relative").is_err());
        assert!(parse_output("tcp://host:1").is_err());
        match parse_output("binary:///usr/bin/log%20ger?a=1&flag&b=x%2Fy").unwrap() {
            Sink::Binary { path, args } => {
                assert_eq!(path, PathBuf::from("/usr/bin/log ger"));
                assert_eq!(args, ["a", "1", "flag", "b", "x/y"]);
            }
            _ => panic!("not a binary sink"),
        }
        assert!(parse_output("binary://relative").is_err());
    }

    #[test]
    fn fifo_round_trip_and_close_stdin() {
        // Removed when dropped, also when an assertion fails.
        let dir = tempfile::Builder::new().prefix("fdbox-shim-stdio-").tempdir().unwrap();
        let (fin, fout) = (dir.path().join("in"), dir.path().join("out"));
        for p in [&fin, &fout] {
            rustix::fs::mknodat(rustix::fs::CWD, p, rustix::fs::FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        }
        // The client opens its ends first, as ctr does.
        let rd = rustix::fs::open(&fout, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()).unwrap();
        rustix::fs::fcntl_setfl(&rd, OFlags::RDONLY).unwrap();
        let mut reader = Some(std::fs::File::from(rd));
        let spec = IoSpec { stdin: fin.to_string_lossy().into(), stdout: fout.to_string_lossy().into(), ..Default::default() };
        let (monitor, _exits) = crate::monitor::Monitor::start().unwrap();
        let ctx = LogContext { monitor: &monitor, id: "t", namespace: "ns" };
        let (mut io, stdio) = ProcessIo::pipes(&spec, &ctx).unwrap();
        // `cat` plays the process: stdin → stdout.
        let mut cat = std::process::Command::new("cat").stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr).spawn().unwrap();
        let mut writer = std::fs::OpenOptions::new().write(true).open(&fin).unwrap();
        writer.write_all(b"hello\n").unwrap();
        drop(writer); // the client's EOF closes the process's stdin
        let mut out = String::new();
        reader.as_mut().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello\n");
        assert!(cat.wait().unwrap().success());
        io.finish(Duration::from_secs(5));
        assert_eq!(io.outputs, 0);
    }
}

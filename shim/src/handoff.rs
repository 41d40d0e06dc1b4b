//! The pidfd hand-off: a unix socket beside each task (`<bundle>/pidfd.sock`,
//! mode 0600) on which an authorised local client asks for a container's
//! process and gets it as a pidfd (SCM_RIGHTS) with a small JSON header.
//! The protocol is documented in docs/pidfd-handoff.md; [`request`] is the
//! client side, used by `fdbox-pidfd`.
//!
//! One request per connection: the client sends one JSON object (one line,
//! at most [`MAX_MESSAGE`] bytes), the shim answers with one message and
//! closes the connection.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};
use crate::fdpass;

/// The socket's name in the bundle directory.
pub const SOCKET_NAME: &str = "pidfd.sock";
/// Largest request or response.
pub const MAX_MESSAGE: usize = 4096;
/// The protocol version in every response.
pub const VERSION: u32 = 1;

/// A request: which process of which container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// The container (task) id; the socket's own container when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The exec id; the container's init when absent or empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<String>,
}

/// The response header. With `error` set, no fd comes with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub container: String,
    /// "" for the init.
    #[serde(default)]
    pub exec_id: String,
    /// The pid in the shim's pid namespace when the process was started.
    #[serde(default)]
    pub pid: i32,
    /// created, running, paused or stopped.
    #[serde(default)]
    pub status: String,
    /// Once stopped: the exit status (code, or 128 + signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u32>,
    /// Once stopped: when, as RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
}

impl Response {
    pub fn error(msg: impl Into<String>) -> Response {
        Response { version: VERSION, error: Some(msg.into()), ..Default::default() }
    }
}

/// What the server needs from the service: look a process up.
pub trait Lookup: Send + Sync + 'static {
    /// The header and the pidfd for (`container`, `exec`), or an error text.
    fn lookup(&self, container: &str, exec: &str) -> std::result::Result<(Response, Arc<crate::pidfd::Pidfd>), String>;
}

/// A running hand-off server; dropping it stops the thread and removes
/// the socket.
pub struct Server {
    path: PathBuf,
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Listen on `<dir>/pidfd.sock` for the container `id`.
    pub fn start(dir: &Path, id: &str, lookup: Arc<dyn Lookup>) -> Result<Server> {
        let dirfd = fdpass::open_dir(dir).sys("open", || dir.display().to_string())?;
        let listener = fdpass::listen_in(dirfd.as_fd(), SOCKET_NAME, 0o600).sys("bind", || format!("{}/{SOCKET_NAME}", dir.display()))?;
        let (stop_rd, stop) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).sys("pipe", || "hand-off stop".into())?;
        let id = id.to_string();
        let owner = rustix::process::geteuid().as_raw();
        let thread = std::thread::Builder::new()
            .name("pidfd-handoff".into())
            .stack_size(128 * 1024)
            .spawn(move || serve(listener, stop_rd, &id, owner, lookup.as_ref()))
            .map_err(|e| Error::Internal(format!("starting the hand-off thread: {e}")))?;
        Ok(Server { path: dir.join(SOCKET_NAME), stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: OwnedFd, stop: OwnedFd, id: &str, owner: u32, lookup: &dyn Lookup) {
    loop {
        let mut fds = [PollFd::new(&listener, PollFlags::IN), PollFd::new(&stop, PollFlags::IN)];
        match poll(&mut fds, None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                log::error!("pidfd hand-off: poll: {e}");
                return;
            }
        }
        if !fds[1].revents().is_empty() {
            return;
        }
        if fds[0].revents().contains(PollFlags::IN) {
            match fdpass::accept(listener.as_fd()) {
                Ok(conn) => handle(conn.as_fd(), id, owner, lookup),
                Err(e) => log::warn!("pidfd hand-off: accept: {e}"),
            }
        }
    }
}

fn handle(conn: BorrowedFd<'_>, id: &str, owner: u32, lookup: &dyn Lookup) {
    let reply = |resp: &Response, fd: Option<BorrowedFd<'_>>| {
        let body = serde_json::to_vec(resp).unwrap_or_default();
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        if let Err(e) = fdpass::send(conn, &body, &fds) {
            log::warn!("pidfd hand-off: send: {e}");
        }
    };
    // A client that never sends must not hold the server: 5s to speak.
    let _ = rustix::net::sockopt::set_socket_timeout(conn, rustix::net::sockopt::Timeout::Recv, Some(Duration::from_secs(5)));
    let mut buf = vec![0u8; MAX_MESSAGE];
    let req: Request = match fdpass::recv(conn, &mut buf) {
        Ok((n, _fds)) => match serde_json::from_slice(buf[..n].trim_ascii()) {
            Ok(r) => r,
            Err(e) => return reply(&Response::error(format!("bad request: {e}")), None),
        },
        Err(e) => return reply(&Response::error(format!("reading the request: {e}")), None),
    };
    // The kernel recorded the peer's credentials at connect(); only our own
    // user and root may take our processes.
    match fdpass::peer_cred(conn) {
        Ok(cred) if cred.uid.as_raw() == owner || cred.uid.is_root() => {}
        Ok(cred) => {
            log::warn!("pidfd hand-off: refused uid {} (pid {})", cred.uid.as_raw(), cred.pid.as_raw_nonzero());
            return reply(&Response::error(format!("permission denied: uid {} may not take pidfds from this shim", cred.uid.as_raw())), None);
        }
        Err(e) => return reply(&Response::error(format!("SO_PEERCRED: {e}")), None),
    }
    let container = req.container.as_deref().unwrap_or(id);
    let exec = req.exec.as_deref().unwrap_or("");
    if container != id {
        return reply(&Response::error(format!("task {container:?} is not served by this socket (it serves {id:?})")), None);
    }
    match lookup.lookup(container, exec) {
        Ok((resp, pidfd)) => reply(&resp, Some(pidfd.as_fd())),
        Err(msg) => reply(&Response::error(msg), None),
    }
}

/// The client side: connect to `socket`, ask for (`container`, `exec`),
/// return the header and the pidfd. A refusal is `Ok` with `error` set.
pub fn request(socket: &Path, req: &Request) -> std::io::Result<(Response, Option<OwnedFd>)> {
    let conn = fdpass::connect(socket)?;
    let mut body = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    body.push(b'\n');
    // A refused client may find the connection closed already: the answer
    // is still there to read.
    match fdpass::send(conn.as_fd(), &body, &[]) {
        Ok(()) | Err(Errno::PIPE) | Err(Errno::CONNRESET) => {}
        Err(e) => return Err(e.into()),
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (n, mut fds) = fdpass::recv(conn.as_fd(), &mut buf)?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the shim closed the connection without answering"));
    }
    let resp: Response = serde_json::from_slice(&buf[..n]).map_err(std::io::Error::other)?;
    let fd = if fds.is_empty() { None } else { Some(fds.remove(0)) };
    Ok((resp, fd))
}

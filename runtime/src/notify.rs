//! `NOTIFY_SOCKET` (sd_notify) proxied as runc does.
//!
//! When fdbox runs with `NOTIFY_SOCKET` set (systemd, or podman's
//! `--sdnotify=container`), the container must not get the host's socket:
//! it gets one of ours instead.
//!
//! * `create` makes `<state>/<id>/notify/`, binds it read-only at
//!   `/run/notify` in the container and sets
//!   `NOTIFY_SOCKET=/run/notify/notify.sock` in the process's environment
//!   (recorded in the saved config, as runc does).
//! * `start` (and so `run`), when it has `NOTIFY_SOCKET` too, binds a
//!   datagram socket at `notify/notify.sock` before it releases the init,
//!   then waits until the container sends a `READY=…` line (or its init
//!   exits), and passes that line on to the host's socket, followed by
//!   `MAINPID=<init pid>` and the sd_notify barrier (`BARRIER=1` with the
//!   write end of a pipe, waiting up to 30 s for the receiver to close it).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Mount, Spec};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{AtFlags, Mode};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::error::{Error, Result, SysContext};
use crate::process::pidfd::PidFd;
use crate::state::StateDir;

/// The directory in the state dir that is bound into the container.
const DIR: &str = "notify";
/// The socket, relative to the state dir.
const SOCK: &str = "notify/notify.sock";
/// Where the container sees the directory and the socket.
const DIR_IN_CONTAINER: &str = "/run/notify";
const SOCK_IN_CONTAINER: &str = "/run/notify/notify.sock";
/// How long the receiver gets to acknowledge the barrier.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(30);

/// The host's `NOTIFY_SOCKET`, if fdbox was given one.
fn host_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty())
}

/// At create: make the directory and give the container its socket (see
/// the module docs). Returns the spec unchanged without `NOTIFY_SOCKET`.
pub fn setup_spec(mut spec: Spec, dir: &StateDir) -> Result<Spec> {
    if host_socket().is_none() {
        return Ok(spec);
    }
    rustix::fs::mkdirat(dir, DIR, Mode::from_raw_mode(0o755)).sys("mkdirat", || format!("{}/{DIR}", dir.path()))?;
    let mount: Mount = serde_json::from_value(serde_json::json!({
        "destination": DIR_IN_CONTAINER,
        "type": "bind",
        "source": format!("{}/{DIR}", dir.path()),
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    }))
    .map_err(|e| Error::Config(format!("notify socket mount: {e}")))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(mut process) = spec.process().clone() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={SOCK_IN_CONTAINER}"));
        process.set_env(Some(env));
        spec.set_process(Some(process));
    }
    Ok(spec)
}

/// The bound container-side socket, waiting for `READY=`.
pub struct Notify {
    sock: OwnedFd,
    host: String,
}

/// At start, before the init is released: bind our socket (None when there
/// is no host socket or the container was created without one).
pub fn bind(dir: &StateDir) -> Result<Option<Notify>> {
    let Some(host) = host_socket() else { return Ok(None) };
    if !dir.has(DIR) {
        return Ok(None);
    }
    let sock = rustix::net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None)
        .sys("socket", || "notify socket".into())?;
    let _ = dir.unlink(SOCK);
    // Through the state dirfd: the root's path length does not matter.
    let addr = SocketAddrUnix::new(dir.socket_path(SOCK)).sys("bind", || SOCK.into())?;
    rustix::net::bind(&sock, &addr).sys("bind", || format!("{}/{SOCK}", dir.path()))?;
    // Any container user may notify.
    rustix::fs::chmodat(dir, SOCK, Mode::from_raw_mode(0o777), AtFlags::empty())
        .sys("chmod", || format!("{}/{SOCK}", dir.path()))?;
    Ok(Some(Notify { sock, host }))
}

impl Notify {
    /// Wait for the container's `READY=` (or its init's exit) and pass it on
    /// to the host's socket with `MAINPID` and a barrier.
    pub fn forward(self, init: &PidFd) -> Result<()> {
        let ready = loop {
            let mut fds = [PollFd::new(&self.sock, PollFlags::IN), PollFd::new(init, PollFlags::IN)];
            match poll(&mut fds, None) {
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::sys("poll", "notify socket", e)),
                Ok(_) => {}
            }
            if fds[0].revents().contains(PollFlags::IN) {
                let mut buf = vec![0u8; 4096];
                let n = match rustix::net::recv(&self.sock, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
                    Ok((n, _)) => n,
                    Err(Errno::AGAIN | Errno::INTR) => continue,
                    Err(e) => return Err(Error::sys("recv", "notify socket", e)),
                };
                let text = String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned();
                if let Some(line) = text.lines().find(|l| l.starts_with("READY=")) {
                    break line.to_string();
                }
            } else if fds[1].revents().contains(PollFlags::IN) {
                // The container is gone without being ready: nothing to say.
                return Ok(());
            }
        };
        let host = rustix::net::socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::CLOEXEC, None)
            .sys("socket", || "host notify socket".into())?;
        let addr = match self.host.strip_prefix('@') {
            Some(name) => SocketAddrUnix::new_abstract_name(name.as_bytes()),
            None => SocketAddrUnix::new(self.host.as_str()),
        }
        .sys("connect", || format!("NOTIFY_SOCKET {}", self.host))?;
        rustix::net::connect(&host, &addr).sys("connect", || format!("NOTIFY_SOCKET {}", self.host))?;
        let send = |msg: &str| rustix::net::send(&host, msg.as_bytes(), rustix::net::SendFlags::NOSIGNAL).map(|_| ());
        send(&format!("{ready}\n")).sys("send", || format!("NOTIFY_SOCKET {}", self.host))?;
        send(&format!("MAINPID={}\n", init.pid())).sys("send", || format!("NOTIFY_SOCKET {}", self.host))?;
        barrier(&host, &self.host)
    }
}

/// sd_notify's barrier: `BARRIER=1` with the write end of a pipe; the
/// receiver has processed everything before it once it closes that fd.
fn barrier(host: &OwnedFd, name: &str) -> Result<()> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).sys("pipe2", || "notify barrier".into())?;
    crate::fdpass::send(host.as_fd(), b"BARRIER=1", &[write.as_fd()]).sys("sendmsg", || format!("NOTIFY_SOCKET {name}"))?;
    drop(write);
    let deadline = Instant::now() + BARRIER_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            crate::log::warn(&format!("NOTIFY_SOCKET {name}: no answer to the barrier in {}s; ignored", BARRIER_TIMEOUT.as_secs()));
            return Ok(());
        }
        let ts = Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
        let mut fds = [PollFd::new(&read, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::sys("poll", "notify barrier", e)),
            // HUP (or EOF): the receiver closed its end.
            Ok(_) => return Ok(()),
        }
    }
}

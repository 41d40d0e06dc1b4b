//! Unix sockets and SCM_RIGHTS, for fdbox and its shim: the sync socket
//! between fdbox and the container init, the client sockets of runc's
//! protocols (`--console-socket`, `--pidfd-socket`), and the shim's pidfd
//! hand-off socket.
//!
//! Socket paths under a containerd bundle can be longer than `sun_path`
//! (108 bytes), so sockets are bound and connected through
//! `/proc/self/fd/<dirfd>/<name>` when the plain path does not fit.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// The most fds one message of ours carries: "go" carries a rootfs and
/// one `tasks` file per cgroup v1 hierarchy (a dozen or so on a v1 host).
/// The kernel's own limit (SCM_MAX_FD) is 253. More arriving is an error
/// (MSG_CTRUNC), never a silent loss.
pub const MAX_FDS: usize = 64;

/// Longest path `sun_path` takes (108 bytes with the terminating NUL).
const SUN_PATH_MAX: usize = 107;

/// Send `body` with `fds` attached, in one message.
pub fn send(sock: BorrowedFd<'_>, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::NOBUFS);
    }
    let n = loop {
        match sendmsg(sock, &[IoSlice::new(body)], &mut control, SendFlags::NOSIGNAL) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    if n != body.len() {
        return Err(Errno::MSGSIZE);
    }
    Ok(())
}

/// Receive one message into `buf`: its length and the fds it carried
/// (close-on-exec). Length 0 without fds: the peer closed.
pub fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Vec<OwnedFd>), Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) || msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(Errno::MSGSIZE);
    }
    Ok((msg.bytes, fds))
}

/// An `O_PATH` directory fd: the anchor of sockets bound inside it.
pub fn open_dir(path: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// The address of `name` in `dir`: the plain path when it fits in
/// `sun_path`, else the same file through this process's fd of the dir
/// (`/proc/<pid>/fd/<n>/<name>`, usable by other processes of the same
/// user while this process lives).
pub fn socket_address(dir: BorrowedFd<'_>, dir_path: &Path, name: &str) -> String {
    let plain = dir_path.join(name);
    let plain = plain.to_string_lossy();
    if plain.len() <= SUN_PATH_MAX {
        return plain.into_owned();
    }
    format!("/proc/{}/fd/{}/{name}", std::process::id(), dir.as_raw_fd())
}

/// A listening stream socket at `dir/name` with mode `mode`, made visible
/// under its name only once the mode is set: bound to a temporary name,
/// `chmod`ed, then renamed into place. Replaces a stale socket of that name.
pub fn listen_in(dir: BorrowedFd<'_>, name: &str, mode: u32) -> Result<OwnedFd, Errno> {
    let sock = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    let tmp = format!(".{name}.{}", std::process::id());
    let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
    let addr = SocketAddrUnix::new(format!("/proc/self/fd/{}/{tmp}", dir.as_raw_fd()))?;
    rustix::net::bind(&sock, &addr)?;
    let placed = rustix::fs::chmodat(dir, tmp.as_str(), Mode::from_raw_mode(mode), rustix::fs::AtFlags::empty())
        .and_then(|()| rustix::fs::renameat(dir, tmp.as_str(), dir, name));
    if let Err(e) = placed {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(e);
    }
    rustix::net::listen(&sock, 16)?;
    Ok(sock)
}

/// Connect to the unix socket at `path`: a stream socket (runc's console
/// and pidfd sockets), else seqpacket or datagram, whichever the listener
/// is. A path too long for `sun_path` is reached through an `O_PATH` fd of
/// its directory.
pub fn connect(path: impl AsRef<Path>) -> Result<OwnedFd, Errno> {
    let path = path.as_ref();
    let text = path.to_string_lossy();
    let (_dir, addr) = if text.len() <= SUN_PATH_MAX {
        (None, SocketAddrUnix::new(path)?)
    } else {
        let dir = open_dir(path.parent().ok_or(Errno::INVAL)?)?;
        let name = path.file_name().ok_or(Errno::INVAL)?.to_string_lossy();
        let addr = SocketAddrUnix::new(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))?;
        (Some(dir), addr)
    };
    let mut last = Errno::INVAL;
    for ty in [SocketType::STREAM, SocketType::SEQPACKET, SocketType::DGRAM] {
        let sock = rustix::net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)?;
        match rustix::net::connect(&sock, &addr) {
            Ok(()) => return Ok(sock),
            Err(e @ Errno::PROTOTYPE) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Accept one connection (close-on-exec), retrying on EINTR.
pub fn accept(listener: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// The credentials of the peer of a connected unix socket (`SO_PEERCRED`),
/// as the kernel recorded them at `connect` time.
pub fn peer_cred(sock: impl AsFd) -> Result<rustix::net::UCred, Errno> {
    rustix::net::sockopt::socket_peercred(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_go_through_the_dir_fd() {
        // Removed when dropped, also when an assertion fails.
        let base = tempfile::Builder::new().prefix("fdbox-fdpass-").tempdir().unwrap();
        let deep = base.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let dir = open_dir(&deep).unwrap();
        let listener = listen_in(dir.as_fd(), "test.sock", 0o600).unwrap();
        let addr = socket_address(dir.as_fd(), &deep, "test.sock");
        assert!(addr.starts_with("/proc/"), "{addr}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::symlink_metadata(deep.join("test.sock")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let client = connect(&deep.join("test.sock")).unwrap();
        let server = accept(listener.as_fd()).unwrap();
        send(client.as_fd(), b"hello", &[dir.as_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv(server.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let cred = peer_cred(&server).unwrap();
        assert_eq!(cred.pid.as_raw_nonzero().get() as u32, std::process::id());
    }

    /// A seqpacket listener (some clients of --console-socket use one) is
    /// connected to as such; more fds than fit are an error, not a loss.
    #[test]
    fn seqpacket_listeners_and_too_many_fds() {
        let base = tempfile::Builder::new().prefix("fdbox-fdpass-sp-").tempdir().unwrap();
        let path = base.path().join("sp.sock");
        let listener = rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None).unwrap();
        rustix::net::bind(&listener, &SocketAddrUnix::new(&path).unwrap()).unwrap();
        rustix::net::listen(&listener, 1).unwrap();
        let client = connect(&path).unwrap();
        let server = accept(listener.as_fd()).unwrap();
        let dir = open_dir(base.path()).unwrap();
        let many: Vec<_> = (0..MAX_FDS).map(|_| dir.as_fd()).collect();
        send(client.as_fd(), b"x", &many).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(recv(server.as_fd(), &mut buf).unwrap().1.len(), MAX_FDS);
        // A peer that sends more than we take: the receiver says so.
        let too_many: Vec<_> = (0..MAX_FDS + 8).map(|_| dir.as_fd()).collect();
        let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS + 8))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&too_many)));
        sendmsg(client.as_fd(), &[IoSlice::new(b"z")], &mut control, SendFlags::empty()).unwrap();
        assert_eq!(recv(server.as_fd(), &mut buf).unwrap_err(), Errno::MSGSIZE);
    }
}

//! Passing file descriptors between processes with SCM_RIGHTS over unix
//! sockets: the sync socket between fdbox and the container init, and the
//! client sockets of runc's protocols (`--console-socket`, `--pidfd-socket`).

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    recvmsg, sendmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketType,
};

/// Most fds one message carries (the kernel's SCM_MAX_FD is 253).
pub const MAX_FDS: usize = 16;

/// Send `body` with `fds` attached in one message.
pub fn send(sock: BorrowedFd<'_>, body: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    debug_assert!(fds.len() <= MAX_FDS);
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::NOBUFS);
    }
    let iov = [IoSlice::new(body)];
    let n = sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL)?;
    if n != body.len() {
        return Err(Errno::MSGSIZE);
    }
    Ok(())
}

/// Receive one message into `buf`; returns its length and the fds it carried
/// (already close-on-exec). A length of 0 with no fds means the peer closed.
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
    if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(Errno::MSGSIZE);
    }
    Ok((msg.bytes, fds))
}

/// Connect to the unix socket at `path` (runc's console and pidfd sockets
/// are stream sockets; a datagram/seqpacket listener is tried too).
pub fn connect(path: &str) -> Result<OwnedFd, Errno> {
    let addr = SocketAddrUnix::new(path)?;
    let mut last = Errno::INVAL;
    for ty in [SocketType::STREAM, SocketType::SEQPACKET, SocketType::DGRAM] {
        let sock = rustix::net::socket_with(AddressFamily::UNIX, ty, rustix::net::SocketFlags::CLOEXEC, None)?;
        match rustix::net::connect(&sock, &addr) {
            Ok(()) => return Ok(sock),
            Err(e @ Errno::PROTOTYPE) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

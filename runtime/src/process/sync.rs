//! The parent/child sync protocol: typed messages (JSON) over one
//! `SOCK_SEQPACKET` socketpair, with fds attached by SCM_RIGHTS.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{socketpair, AddressFamily, RecvFlags, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};

use crate::fdpass;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// parent → child: the container's cgroup is made and, with a user
    /// namespace, the id maps are written; go on. Attached fds: the new
    /// rootfs when `rootfs` (an overlay rebuilt from idmapped layers), then
    /// one `tasks` file per v1 hierarchy, named by `cgroup_files`, for the
    /// init to move itself in.
    Go {
        #[serde(default)]
        rootfs: bool,
        #[serde(default)]
        cgroup_files: Vec<String>,
    },
    /// exec child → parent: it joined the container and forked the process
    /// that runs there, born in the container's pid namespace (its pidfd
    /// attached; `pid` as the runtime sees it); it exits now.
    Spawned { pid: i32 },
    /// child → parent: the pty master for `--console-socket` (fd attached).
    Console { name: String },
    /// child → parent: the container is set up and waits for `start`.
    Ready,
    /// child → parent: setup failed; `message` is the one line to print.
    Error { message: String },
    /// child → parent: every mount is made, pivot_root is next: run the
    /// `prestart` and `createRuntime` hooks now.
    Hooks,
    /// parent → child: those hooks succeeded; `state` is what the init's own
    /// hooks (`createContainer`, `startContainer`) get on stdin.
    HooksDone { state: crate::hooks::HookState },
}

/// One end of the sync socketpair.
#[derive(Debug)]
pub struct SyncSocket(OwnedFd);

impl SyncSocket {
    /// A connected pair: (parent end, child end), both close-on-exec.
    pub fn pair() -> Result<(SyncSocket, SyncSocket), Errno> {
        let (a, b) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        Ok((SyncSocket(a), SyncSocket(b)))
    }

    pub fn send(&self, msg: &Msg, fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        let body = serde_json::to_vec(msg).map_err(|_| Errno::INVAL)?;
        fdpass::send(self.0.as_fd(), &body, fds)
    }

    /// The next message; `Ok(None)` when the peer has closed its end.
    pub fn recv(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>, Errno> {
        // A peer that died with our last message unread leaves ECONNRESET
        // pending, and the kernel reports it before the messages the peer
        // sent first (its error, say); reading it clears it, so read again.
        // It can come between the peek and the read, too.
        let mut reset = false;
        let (buf, n, fds) = loop {
            let size = match self.next_size() {
                Err(Errno::CONNRESET) if !reset => {
                    reset = true;
                    continue;
                }
                other => other?,
            };
            // Exactly the message's size: hook states carry the annotations,
            // which have no fixed limit, and a small message touches few pages.
            let mut buf = vec![0u8; size.max(1)];
            match fdpass::recv(self.0.as_fd(), &mut buf) {
                Err(Errno::CONNRESET) if !reset => reset = true,
                Err(e) => return Err(e),
                Ok((n, fds)) => break (buf, n, fds),
            }
        };
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|_| Errno::PROTO)?;
        Ok(Some((msg, fds)))
    }
}

impl SyncSocket {
    /// The length of the next message, waiting for one, without taking it
    /// (MSG_PEEK | MSG_TRUNC: a unix seqpacket reports its full length).
    fn next_size(&self) -> Result<usize, Errno> {
        loop {
            match rustix::net::recv(&self.0, &mut [0u8; 0][..], RecvFlags::PEEK | RecvFlags::TRUNC) {
                Err(Errno::INTR) => continue,
                other => return other.map(|(_, len)| len),
            }
        }
    }
}

impl AsFd for SyncSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_round_trip() {
        let (a, b) = SyncSocket::pair().unwrap();
        let (r, _w) = rustix::pipe::pipe().unwrap();
        a.send(&Msg::Console { name: "/dev/ptmx".into() }, &[r.as_fd()]).unwrap();
        a.send(&Msg::Error { message: "boom".into() }, &[]).unwrap();
        let (m, fds) = b.recv().unwrap().unwrap();
        assert_eq!(m, Msg::Console { name: "/dev/ptmx".into() });
        assert_eq!(fds.len(), 1);
        assert_eq!(b.recv().unwrap().unwrap().0, Msg::Error { message: "boom".into() });
        drop(a);
        assert!(b.recv().unwrap().is_none());
    }

    /// A message far larger than a page (a hook state with big annotations)
    /// arrives whole.
    #[test]
    fn large_messages_arrive_whole() {
        let (a, b) = SyncSocket::pair().unwrap();
        let message = "x".repeat(150 * 1024);
        a.send(&Msg::Error { message: message.clone() }, &[]).unwrap();
        assert_eq!(b.recv().unwrap().unwrap().0, Msg::Error { message });
    }

    /// The init reports an error and dies with our "go" unread: its error
    /// still reaches us (the kernel reports ECONNRESET first).
    #[test]
    fn error_of_a_peer_that_died_with_our_message_unread() {
        let (parent, child) = SyncSocket::pair().unwrap();
        child.send(&Msg::Error { message: "oom_score_adj: EACCES".into() }, &[]).unwrap();
        parent.send(&Msg::Go { rootfs: false, cgroup_files: vec![] }, &[]).unwrap();
        drop(child);
        assert_eq!(parent.recv().unwrap().unwrap().0, Msg::Error { message: "oom_score_adj: EACCES".into() });
        assert!(parent.recv().unwrap().is_none());
    }
}

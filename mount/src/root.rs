//! Path resolution inside a container's rootfs, always relative to the
//! rootfs fd and never above it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{mkdirat, openat, openat2, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::{Error, Result};

/// What to create when a mount destination is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
}

/// A directory fd that acts as the root for every path resolved through it:
/// `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..` and absolute
/// symlinks stay inside and `/proc/self/…`-style magic links are refused.
#[derive(Debug)]
pub struct RootFd {
    fd: OwnedFd,
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// How often a resolution is retried after EAGAIN before giving up.
const EAGAIN_RETRIES: u32 = 1000;

/// `openat2(dirfd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, retried on
/// EAGAIN: the kernel returns that when a `..` is resolved while a rename or a mount happens
/// anywhere on the system (it cannot then prove the walk stayed inside), and asks the caller
/// to try again.
fn openat2_in_root(dirfd: BorrowedFd<'_>, path: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match openat2(dirfd, path, flags | OFlags::CLOEXEC, mode, RESOLVE) {
            Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

impl RootFd {
    pub fn new(fd: OwnedFd) -> Self {
        RootFd { fd }
    }

    /// Open `path` inside the root with `flags` (`O_CLOEXEC` is always added).
    pub fn open(&self, path: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd> {
        let rel = relative(path);
        openat2_in_root(self.fd.as_fd(), rel, flags, mode).map_err(|e| Error::sys("openat2", path, e))
    }

    /// An `O_PATH` fd of `path` inside the root (the last component is
    /// followed if it is a symlink, but only within the root).
    pub fn open_path(&self, path: &str) -> Result<OwnedFd> {
        self.open(path, OFlags::PATH, Mode::empty())
    }

    /// An `O_PATH` fd of `path`, creating what is missing: directories for
    /// the parents, and for the last component a directory or an empty
    /// file as `kind` says. Each component is created relative to the fd
    /// of its resolved parent and then resolved again from the root, so a
    /// symlink raced into the path can only ever point inside the root.
    pub fn ensure(&self, path: &str, kind: NodeKind) -> Result<OwnedFd> {
        self.ensure_depth(path, kind, 0)
    }

    fn ensure_depth(&self, path: &str, kind: NodeKind, depth: u32) -> Result<OwnedFd> {
        // The same bound the kernel puts on nested symlinks (ELOOP).
        if depth > 40 {
            return Err(Error::sys("openat2", path, Errno::LOOP));
        }
        match self.open_path(path) {
            Err(e) if e.errno() == Some(Errno::NOENT) => {}
            other => return other,
        }
        let comps: Vec<&str> = relative(path)
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let mut parent: OwnedFd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| Error::sys("fcntl(F_DUPFD_CLOEXEC)", path, e))?;
        let mut prefix = String::new();
        for (i, comp) in comps.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            let last = i + 1 == comps.len();
            match openat2_in_root(self.fd.as_fd(), prefix.as_str(), OFlags::PATH, Mode::empty()) {
                Ok(fd) => {
                    parent = fd;
                    continue;
                }
                Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::sys("openat2", format!("/{prefix}"), e)),
            }
            let created = if last && kind == NodeKind::File {
                openat(
                    &parent,
                    *comp,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o644),
                )
                .map(drop)
            } else {
                mkdirat(&parent, *comp, Mode::from_raw_mode(0o755))
            };
            match created {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    // Something is there yet does not resolve: a dangling
                    // symlink. Create its target instead, resolved (like
                    // everything else) inside the root.
                    if let Ok(target) = rustix::fs::readlinkat(&parent, *comp, Vec::new()) {
                        let target = target.to_string_lossy().into_owned();
                        let base = if target.starts_with('/') {
                            target
                        } else {
                            let dir = prefix.rsplit_once('/').map_or("", |(d, _)| d);
                            format!("{dir}/{target}")
                        };
                        let rest = comps[i + 1..].join("/");
                        let next = if rest.is_empty() { base } else { format!("{base}/{rest}") };
                        return self.ensure_depth(&next, kind, depth + 1);
                    }
                }
                Err(e) => {
                    let call = if last && kind == NodeKind::File { "openat" } else { "mkdirat" };
                    return Err(Error::sys(call, format!("/{prefix}"), e));
                }
            }
            parent = openat2_in_root(self.fd.as_fd(), prefix.as_str(), OFlags::PATH, Mode::empty())
                .map_err(|e| Error::sys("openat2", format!("/{prefix}"), e))?;
        }
        Ok(parent)
    }
}

impl AsFd for RootFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `path` without its leading slashes; the empty path is the root itself.
fn relative(path: &str) -> &str {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A directory removed when dropped, also when an assertion fails.
    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("fdbox-mount-root-").tempdir().unwrap()
    }

    fn root_of(d: &std::path::Path) -> RootFd {
        RootFd::new(rustix::fs::open(d, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap())
    }

    #[test]
    fn ensure_creates_inside_through_escaping_symlinks() {
        let (outside_dir, d_dir) = (tmp(), tmp());
        let (outside, d) = (outside_dir.path(), d_dir.path());
        // An absolute symlink and a ../ symlink that both point outside.
        symlink(outside, d.join("abs")).unwrap();
        symlink("../../../../../..", d.join("up")).unwrap();
        let root = root_of(d);
        root.ensure("/abs/new/dir", NodeKind::Dir).unwrap();
        root.ensure("up/file", NodeKind::File).unwrap();
        root.ensure("/../../a/b", NodeKind::Dir).unwrap();
        // Nothing was created outside the root...
        assert_eq!(std::fs::read_dir(outside).unwrap().count(), 0);
        // ...and the escaping paths were resolved inside it instead.
        assert!(d.join(outside.strip_prefix("/").unwrap()).join("new/dir").is_dir());
        assert!(d.join("file").is_file());
        assert!(d.join("a/b").is_dir());
    }

    #[test]
    fn ensure_keeps_existing_and_refuses_magic_links() {
        let d_dir = tmp();
        let d = d_dir.path();
        std::fs::create_dir(d.join("x")).unwrap();
        symlink("/proc/self/root", d.join("magic")).unwrap();
        let root = root_of(d);
        root.ensure("x", NodeKind::Dir).unwrap();
        // /proc/self/root inside the root resolves to <root>/proc/self/root,
        // which does not exist: it must not reach the host's procfs.
        assert!(root.open_path("magic/etc").is_err());
    }
}

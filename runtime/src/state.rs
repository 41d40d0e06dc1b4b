//! The state directory `<root>/<id>/`, held as a dirfd under an exclusive
//! `flock`: `state.json` written atomically (`O_TMPFILE` + `linkat` + `renameat`), and
//! `init.sock`, where the created init waits for `start`.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{flock, linkat, mkdirat, openat, renameat, unlinkat, AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

/// Name of the socket on which a created container's init waits for `start`.
pub const INIT_SOCK: &str = "init.sock";
const STATE_JSON: &str = "state.json";
/// What a create has made so far (see [`Unfinished`]): its cgroup, then
/// also its init. A file per step, each written once: a rename over an
/// existing file costs 0.4 ms on ext4 (auto_da_alloc writes it back), a
/// fresh one 0.05 ms.
const CREATING_JSON: &str = "creating.json";
const CREATING_INIT_JSON: &str = "creating-init.json";

/// Check an id as runc does: `[A-Za-z0-9_+.-]+`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// What fdbox records about a container (the `state` command derives the
/// status from the process itself, never from this file).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub pid: i32,
    /// Start time of the init in clock ticks since boot (`/proc/<pid>/stat`
    /// field 22): with the pid, the identity of the process.
    pub start_time: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    pub oci_version: String,
    /// The container's cgroup, as recorded by the cgroup backend, and the
    /// host layout it was made on.
    #[serde(default)]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub cgroup_layout: Option<fdbox_cgroups::Layout>,
    /// The config the container was created from.
    pub config: oci_spec::runtime::Spec,
}

/// What a create that has not finished (yet) has made that outlives it: the
/// cgroup, recorded before its first directory is made, and the init, recorded
/// right after clone3. `delete` undoes it when the create died before writing
/// state.json (a `kill -9`); a create that finishes leaves it beside
/// state.json, which supersedes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Unfinished {
    #[serde(default)]
    pub cgroup: Option<String>,
    #[serde(default)]
    pub cgroup_layout: Option<fdbox_cgroups::Layout>,
    #[serde(default)]
    pub pid: Option<i32>,
    /// The init's start time (see [`State::start_time`]).
    #[serde(default)]
    pub start_time: Option<u64>,
}

/// The runtime's root directory (`--root`), as a dirfd.
pub struct Root {
    fd: OwnedFd,
    path: String,
}

impl Root {
    /// Open the root directory, creating it (mode 0700) if `create`.
    pub fn open(path: &str, create: bool) -> Result<Root> {
        let open = || rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        // Usually there already: create it only when it is not.
        let fd = match open() {
            Err(Errno::NOENT) if create => {
                std::fs::create_dir_all(path).map_err(|e| Error::State(format!("create root directory {path}: {e}")))?;
                open()
            }
            other => other,
        }
        .sys("open", || path.to_string())?;
        Ok(Root { fd, path: path.to_string() })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Create the state directory of a new container. `mkdirat` is the
    /// atomic test: of two creates of one id, exactly one succeeds.
    pub fn create_container(&self, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        match mkdirat(&self.fd, id, Mode::from_raw_mode(0o700)) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(Error::Exists(id.to_string())),
            Err(e) => return Err(Error::sys("mkdirat", format!("{}/{id}", self.path), e)),
        }
        let dir = self.open_container(id);
        if dir.is_err() {
            let _ = unlinkat(&self.fd, id, AtFlags::REMOVEDIR);
        }
        dir
    }

    /// Open and lock the state directory of an existing container.
    pub fn open_container(&self, id: &str) -> Result<StateDir> {
        validate_id(id)?;
        let fd = match openat(&self.fd, id, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Error::NotFound(id.to_string())),
            Err(e) => return Err(Error::sys("openat", format!("{}/{id}", self.path), e)),
        };
        flock(&fd, FlockOperation::LockExclusive).sys("flock", || format!("{}/{id}", self.path))?;
        let root = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).sys("fcntl(F_DUPFD_CLOEXEC)", || self.path.clone())?;
        Ok(StateDir { fd, root, id: id.to_string(), path: format!("{}/{id}", self.path) })
    }

    /// Ids of every container under this root.
    pub fn ids(&self) -> Result<Vec<String>> {
        let dir = openat(&self.fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .sys("openat", || self.path.clone())?;
        let mut ids = Vec::new();
        for entry in rustix::fs::Dir::new(dir).sys("fdopendir", || self.path.clone())? {
            let entry = entry.sys("readdir", || self.path.clone())?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type() == rustix::fs::FileType::Directory && validate_id(&name).is_ok() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// A locked state directory. The lock is released when this is dropped.
pub struct StateDir {
    fd: OwnedFd,
    root: OwnedFd,
    id: String,
    path: String,
}

impl StateDir {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Write state.json atomically: a temporary file, then `renameat`.
    pub fn write_state(&self, state: &State) -> Result<()> {
        let json = serde_json::to_vec(state).map_err(|e| Error::State(format!("encode state: {e}")))?;
        write_atomic(self.fd.as_fd(), STATE_JSON, &json).sys("write", || format!("{}/{STATE_JSON}", self.path))
    }

    pub fn read_state(&self) -> Result<State> {
        let fd = match openat(&self.fd, STATE_JSON, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            // A create holds the lock until it wrote state.json: holding it
            // now, we see one that died half-way (`kill -9`).
            Err(Errno::NOENT) => {
                return Err(Error::State(format!(
                    "container \"{}\" was never fully created (its create was interrupted): delete removes it",
                    self.id
                )))
            }
            Err(e) => return Err(Error::sys("openat", format!("{}/{STATE_JSON}", self.path), e)),
        };
        serde_json::from_reader(std::io::BufReader::new(std::fs::File::from(fd)))
            .map_err(|e| Error::State(format!("{}/{STATE_JSON}: {e}", self.path)))
    }

    /// Record what an unfinished create has made so far (see [`Unfinished`]).
    /// Atomic, not synced: it only has to survive the create, not a crash of
    /// the host (which takes the cgroups and processes with it).
    /// The whole record each time; once with the init, to a file of its own.
    pub fn write_unfinished(&self, u: &Unfinished) -> Result<()> {
        let name = if u.pid.is_some() { CREATING_INIT_JSON } else { CREATING_JSON };
        let json = serde_json::to_vec(u).map_err(|e| Error::State(format!("encode {name}: {e}")))?;
        write_atomic(self.fd.as_fd(), name, &json).sys("write", || format!("{}/{name}", self.path))
    }

    /// What an unfinished create recorded last; `None` if it recorded nothing.
    pub fn read_unfinished(&self) -> Result<Option<Unfinished>> {
        for name in [CREATING_INIT_JSON, CREATING_JSON] {
            let fd = match openat(&self.fd, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::sys("openat", format!("{}/{name}", self.path), e)),
            };
            return serde_json::from_reader(std::io::BufReader::new(std::fs::File::from(fd)))
                .map(Some)
                .map_err(|e| Error::State(format!("{}/{name}: {e}", self.path)));
        }
        Ok(None)
    }

    /// Whether state.json exists (a create finished).
    pub fn has_state(&self) -> bool {
        self.has(STATE_JSON)
    }

    /// Whether `name` exists in the state directory.
    pub fn has(&self, name: &str) -> bool {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Remove one entry (missing is fine).
    pub fn unlink(&self, name: &str) -> Result<()> {
        match unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::sys("unlinkat", format!("{}/{name}", self.path), e)),
        }
    }

    /// Remove the state directory and everything in it.
    pub fn remove(self) -> Result<()> {
        let dir = openat(&self.fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .sys("openat", || self.path.clone())?;
        for entry in rustix::fs::Dir::new(dir).sys("fdopendir", || self.path.clone())? {
            let entry = entry.sys("readdir", || self.path.clone())?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            let name = name.to_string_lossy().into_owned();
            if entry.file_type() == rustix::fs::FileType::Directory {
                // notify/ (the sd_notify socket's directory): one level.
                self.remove_subdir(&name)?;
            } else {
                self.unlink(&name)?;
            }
        }
        match unlinkat(&self.root, self.id.as_str(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::sys("unlinkat", self.path.clone(), e)),
        }
    }

    /// Remove the subdirectory `name` and the files in it.
    fn remove_subdir(&self, name: &str) -> Result<()> {
        let sub = openat(&self.fd, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .sys("openat", || format!("{}/{name}", self.path))?;
        let list = rustix::io::fcntl_dupfd_cloexec(&sub, 0).sys("fcntl(F_DUPFD_CLOEXEC)", || format!("{}/{name}", self.path))?;
        for entry in rustix::fs::Dir::new(list).sys("fdopendir", || format!("{}/{name}", self.path))? {
            let entry = entry.sys("readdir", || format!("{}/{name}", self.path))?;
            let file = entry.file_name();
            if file.to_bytes() == b"." || file.to_bytes() == b".." {
                continue;
            }
            match unlinkat(&sub, file, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::sys("unlinkat", format!("{}/{name}/{}", self.path, file.to_string_lossy()), e)),
            }
        }
        match unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::sys("unlinkat", format!("{}/{name}", self.path), e)),
        }
    }

    /// The `sun_path` that reaches `name` in this directory through the
    /// dirfd (`/proc/self/fd/N/name`), independent of the root's length.
    pub fn socket_path(&self, name: &str) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}/{name}", self.fd.as_raw_fd())
    }
}

impl AsFd for StateDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Write `data` to `name` under `dir` atomically, so that nothing planted
/// in `dir` can redirect the write (a pid file's directory may be a volume
/// the container writes to): the data goes into an unnamed `O_TMPFILE`,
/// which is linked under a fresh random name (`linkat` never follows a
/// symlink at its target: EEXIST) and renamed over `name` (`renameat`
/// replaces a symlink at `name` itself, never what it points to). Where the
/// filesystem has no `O_TMPFILE`, the temp file is created under a random
/// name with `O_CREAT|O_EXCL|O_NOFOLLOW`, which fails on anything planted.
pub fn write_atomic(dir: BorrowedFd<'_>, name: &str, data: &[u8]) -> Result<(), Errno> {
    let write = |fd: OwnedFd| -> Result<(), Errno> {
        let mut f = std::fs::File::from(fd);
        f.write_all(data).map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
    };
    let mode = Mode::from_raw_mode(0o644);
    // A few tries: a name the container guessed (or a clash) is only EEXIST.
    let tmp_name = || format!(".{name}.{:016x}.tmp", random_u64());
    match openat(dir, ".", OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC, mode) {
        Ok(fd) => {
            use std::os::fd::AsRawFd;
            write(fd.try_clone().map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?)?;
            for _ in 0..16 {
                let tmp = tmp_name();
                // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc/self/fd
                // link of an O_TMPFILE works for its owner.
                let linked = match linkat(&fd, "", dir, tmp.as_str(), AtFlags::EMPTY_PATH) {
                    Err(Errno::NOENT | Errno::PERM | Errno::ACCESS | Errno::INVAL) => {
                        linkat(rustix::fs::CWD, format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(), dir, tmp.as_str(), AtFlags::SYMLINK_FOLLOW)
                    }
                    other => other,
                };
                match linked {
                    Ok(()) => return rename_or_remove(dir, &tmp, name),
                    Err(Errno::EXIST) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(Errno::EXIST)
        }
        // No O_TMPFILE on this filesystem (or kernel).
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
            for _ in 0..16 {
                let tmp = tmp_name();
                let fd = match openat(dir, tmp.as_str(), OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode) {
                    Ok(fd) => fd,
                    Err(Errno::EXIST) => continue,
                    Err(e) => return Err(e),
                };
                if let Err(e) = write(fd) {
                    let _ = unlinkat(dir, tmp.as_str(), AtFlags::empty());
                    return Err(e);
                }
                return rename_or_remove(dir, &tmp, name);
            }
            Err(Errno::EXIST)
        }
        Err(e) => Err(e),
    }
}

fn rename_or_remove(dir: BorrowedFd<'_>, tmp: &str, name: &str) -> Result<(), Errno> {
    renameat(dir, tmp, dir, name).inspect_err(|_| {
        let _ = unlinkat(dir, tmp, AtFlags::empty());
    })
}

/// 64 random bits (std seeds its hash keys from the kernel's getrandom).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "A-b_c.d+e", "123", "..a"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "a\0", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }
}

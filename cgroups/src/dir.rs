//! A cgroup directory held as an fd; every file is reached with `openat`
//! relative to it, never through an absolute path.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Flags every control file is opened with: no symlink follows, no fd leak.
const FILE_FLAGS: OFlags = OFlags::CLOEXEC.union(OFlags::NOFOLLOW).union(OFlags::NOCTTY);

/// Resolution used below a hierarchy root: never leave the root, never
/// follow a link, never cross into another mount.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

/// A cgroup directory fd plus a label (`memory:/fdbox/x`) for messages.
#[derive(Debug)]
pub struct CgroupDir {
    fd: OwnedFd,
    label: String,
}

impl AsFd for CgroupDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl CgroupDir {
    /// Open a hierarchy's mount point (the only absolute path this crate
    /// opens) and check it is cgroupfs (`v2` says which kind).
    pub(crate) fn open_root(mountpoint: &str, v2: bool, label: String) -> Result<Self> {
        let fd = fs::open(
            mountpoint,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("open", mountpoint, e))?;
        let st = fs::fstatfs(&fd).map_err(|e| Error::sys("fstatfs", mountpoint, e))?;
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let magic = st.f_type as i64;
        let want = if v2 { CGROUP2_SUPER_MAGIC } else { CGROUP_SUPER_MAGIC };
        if magic != want {
            return Err(Error::NoHierarchy(format!(
                "{mountpoint} is not a {} filesystem (f_type {magic:#x})",
                if v2 { "cgroup2" } else { "cgroup" }
            )));
        }
        Ok(CgroupDir { fd, label })
    }

    /// Open the directory `rel` (relative, no `..`) below this one.
    pub(crate) fn open_sub(&self, rel: &str, label: String) -> rustix::io::Result<Self> {
        let fd = fs::openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        )?;
        Ok(CgroupDir { fd, label })
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// How a file of this cgroup is named in messages: controller files by
    /// their name (it says which controller), core `cgroup.*` files and
    /// anything else with the cgroup's label so the hierarchy is clear.
    pub(crate) fn name_of(&self, file: &str) -> String {
        if file.starts_with("cgroup.") || file == "tasks" {
            format!("{}/{file}", self.label)
        } else {
            file.to_string()
        }
    }

    /// Open a file of this cgroup.
    pub(crate) fn open_file(&self, file: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        fs::openat(&self.fd, file, flags | FILE_FLAGS, Mode::empty())
    }

    pub(crate) fn exists(&self, file: &str) -> bool {
        fs::statat(&self.fd, file, fs::AtFlags::SYMLINK_NOFOLLOW).is_ok()
    }

    /// Read a whole file.
    pub(crate) fn read(&self, file: &str) -> Result<String> {
        let err = |errno| Error::Read {
            file: self.name_of(file),
            errno,
        };
        let fd = self.open_file(file, OFlags::RDONLY).map_err(err)?;
        read_fd(&fd, 0).map_err(err)
    }

    /// Read a file, `None` if it does not exist.
    pub(crate) fn read_opt(&self, file: &str) -> Result<Option<String>> {
        match self.read(file) {
            Ok(s) => Ok(Some(s)),
            Err(Error::Read { errno, .. }) if errno == Errno::NOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read a file holding one unsigned number (`max` reads as u64::MAX).
    pub(crate) fn read_u64(&self, file: &str) -> Result<u64> {
        let s = self.read(file)?;
        parse_u64(s.trim()).ok_or_else(|| Error::Parse {
            file: self.name_of(file),
            content: s.trim().to_string(),
        })
    }

    /// Write `value` to a control file in one `write(2)`, as the kernel
    /// parses each write separately. A missing file is reported as
    /// unsupported: the running kernel or layout has no such knob.
    pub(crate) fn write(&self, file: &str, value: &str) -> Result<()> {
        self.open_writer(file, value)?.write(value)
    }

    /// Open a control file for several writes, each parsed on its own by
    /// the kernel (`devices.allow` rule after rule). `value` is what the
    /// first write will be, for the error message.
    pub(crate) fn open_writer(&self, file: &str, value: &str) -> Result<Writer> {
        let fd = self.open_file(file, OFlags::WRONLY).map_err(|errno| {
            if errno == Errno::NOENT {
                Error::Unsupported(format!(
                    "{}: not supported here (cgroup {} has no such file)",
                    file, self.label
                ))
            } else {
                Error::Write {
                    file: self.name_of(file),
                    value: value.to_string(),
                    errno,
                }
            }
        })?;
        Ok(Writer { fd, name: self.name_of(file) })
    }

    /// Create the subdirectory `name`. `Ok(false)` if it already existed.
    pub(crate) fn mkdir(&self, name: &str) -> Result<bool> {
        match fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(Error::sys("mkdirat", format!("{}/{name}", self.label), e)),
        }
    }

    /// Remove the (empty) cgroup directory `rel` below this one.
    pub(crate) fn rmdir(&self, rel: &str) -> rustix::io::Result<()> {
        fs::unlinkat(&self.fd, rel, fs::AtFlags::REMOVEDIR)
    }

    /// Names of the child cgroups.
    pub(crate) fn children(&self) -> Result<Vec<String>> {
        self.entries(true)
    }

    /// Names of the control files.
    pub(crate) fn files(&self) -> Result<Vec<String>> {
        self.entries(false)
    }

    fn entries(&self, dirs: bool) -> Result<Vec<String>> {
        let err = |e| Error::sys("readdir", self.label.clone(), e);
        // A fresh fd: `Dir` keeps the file position of the fd it reads.
        let fd = self.open_file(".", OFlags::RDONLY | OFlags::DIRECTORY).map_err(err)?;
        let dir = fs::Dir::read_from(&fd).map_err(err)?;
        let mut out = Vec::new();
        for ent in dir {
            let ent = ent.map_err(err)?;
            if (ent.file_type() == fs::FileType::Directory) != dirs {
                continue;
            }
            let name = ent.file_name().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// The pids in `cgroup.procs` of this cgroup only.
    pub(crate) fn procs(&self) -> Result<Vec<i32>> {
        let s = self.read("cgroup.procs")?;
        parse_pids(&s).ok_or_else(|| Error::Parse {
            file: self.name_of("cgroup.procs"),
            content: s,
        })
    }

    /// The pids of this cgroup and of every cgroup below it.
    pub(crate) fn procs_recursive(&self, depth: usize) -> Result<Vec<i32>> {
        let mut pids = self.procs()?;
        if depth == 0 {
            return Ok(pids);
        }
        for child in self.children()? {
            let label = format!("{}/{child}", self.label);
            let sub = match self.open_sub(&child, label) {
                Ok(s) => s,
                // removed while we looked: it has no processes to report
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(Error::sys("openat2", format!("{}/{child}", self.label), e)),
            };
            pids.extend(sub.procs_recursive(depth - 1)?);
        }
        Ok(pids)
    }
}

/// A control file open for writing, from [`CgroupDir::open_writer`].
pub(crate) struct Writer {
    fd: OwnedFd,
    name: String,
}

impl Writer {
    /// Write `value` in one `write(2)`, as the kernel parses each write
    /// separately.
    pub(crate) fn write(&self, value: &str) -> Result<()> {
        let err = |errno| Error::Write {
            file: self.name.clone(),
            value: value.to_string(),
            errno,
        };
        let n = loop {
            match rustix::io::write(&self.fd, value.as_bytes()) {
                Err(Errno::INTR) => continue,
                r => break r.map_err(err)?,
            }
        };
        if n != value.len() {
            return Err(err(Errno::IO));
        }
        Ok(())
    }
}

/// Read an fd from `offset` to its end (cgroup files are small).
pub(crate) fn read_fd(fd: &OwnedFd, offset: u64) -> rustix::io::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut off = offset;
    loop {
        let n = match rustix::io::pread(fd, &mut buf, off) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        off += n as u64;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A number as cgroup files print it; `max` is `u64::MAX`.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

pub(crate) fn parse_pids(s: &str) -> Option<Vec<i32>> {
    s.split_whitespace().map(|p| p.parse().ok()).collect()
}

/// `key value` lines (memory.stat, cpu.stat, cgroup.events, …).
pub(crate) fn parse_flat_keyed(s: &str) -> Vec<(String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub(crate) fn keyed(s: &str, key: &str) -> Option<u64> {
    parse_flat_keyed(s).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_u64("max"), Some(u64::MAX));
        assert_eq!(parse_u64("12"), Some(12));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_pids("1\n22\n"), Some(vec![1, 22]));
        assert_eq!(parse_pids(""), Some(vec![]));
        assert_eq!(parse_pids("x"), None);
        let ev = "populated 1\nfrozen 0\n";
        assert_eq!(keyed(ev, "frozen"), Some(0));
        assert_eq!(keyed(ev, "populated"), Some(1));
        assert_eq!(keyed(ev, "nope"), None);
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
    }
}

//! A writer for the `newc` cpio format, the one the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Written here rather than by running `cpio`, so that device nodes and root-owned files can be
//! put into the archive without being root and without touching the host filesystem.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Streams entries into a newc archive. Paths are relative (`bin/busybox`); a directory must be
/// added before what it contains. Every entry is owned by root with mtime 0, so the archive only
/// depends on its contents.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    offset: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            offset: 0,
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | perm, (0, 0), b"")
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | perm, (0, 0), data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | perm, (major, minor), b"")
    }

    /// A regular file copied from the host, keeping its permission bits.
    pub fn host_file(&mut self, path: &str, host: &Path) -> io::Result<()> {
        let data = fs::read(host)?;
        let perm = fs::metadata(host)?.permissions().mode() & 0o7777;
        self.file(path, perm, &data)
    }

    /// Everything below the host directory `host` (not `host` itself), as `prefix/…`, in a
    /// stable (sorted) order: directories, regular files and symlinks; anything else is refused.
    pub fn host_tree(&mut self, prefix: &str, host: &Path) -> io::Result<()> {
        let mut entries = fs::read_dir(host)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_str().ok_or_else(|| {
                io::Error::other(format!("{}: not a UTF-8 file name", e.path().display()))
            })?;
            let path = format!("{prefix}/{name}");
            let meta = fs::symlink_metadata(e.path())?;
            let ft = meta.file_type();
            if ft.is_dir() {
                self.dir(&path, meta.mode() & 0o7777)?;
                self.host_tree(&path, &e.path())?;
            } else if ft.is_symlink() {
                let target = fs::read_link(e.path())?;
                self.symlink(&path, &target.to_string_lossy())?;
            } else if ft.is_file() {
                self.host_file(&path, &e.path())?;
            } else {
                return Err(io::Error::other(format!(
                    "{}: not a file, dir or symlink",
                    e.path().display()
                )));
            }
        }
        Ok(())
    }

    /// Write the trailer and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), b"")?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.as_bytes().contains(&0) {
            return Err(io::Error::other(format!("bad cpio path {path:?}")));
        }
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::other(format!("{path}: over 4 GiB")))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let nlink = if mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
        // magic, then 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize
        // devmajor devminor rdevmajor rdevminor namesize check.
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, 0, 0, 0, 0, rdev.0, rdev.1, path.len() + 1, 0
        );
        self.write(header.as_bytes())?;
        self.write(path.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Header+name and data each end on a 4-byte boundary.
    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - (self.offset % 4) as usize) % 4;
        self.write(&[0u8; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// The archive is read back by a real cpio implementation (busybox's), which checks the
    /// magic, the field layout and the padding.
    #[test]
    fn busybox_cpio_reads_it_back() {
        let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
        else {
            eprintln!("skipped: no busybox to read the archive back");
            return;
        };
        let mut w = CpioWriter::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
        w.file("odd", 0o644, b"12345").unwrap();
        w.symlink("bin/sh", "/bin/busybox").unwrap();
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        let archive = w.finish().unwrap();
        assert_eq!(archive.len() % 4, 0);

        let mut child = Command::new(busybox)
            .args(["cpio", "-t", "-v"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 6, "{listing}");
        assert!(
            lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" bin"),
            "{listing}"
        );
        assert!(
            lines[1].starts_with("-rwxr-xr-x") && lines[1].contains(" 18 "),
            "{listing}"
        );
        assert!(lines[1].ends_with(" bin/hello"), "{listing}");
        assert!(
            lines[2].starts_with("-rw-r--r--") && lines[2].contains(" 5 "),
            "{listing}"
        );
        assert!(
            lines[3].starts_with("lrwxrwxrwx") && lines[3].ends_with("bin/sh -> /bin/busybox"),
            "{listing}"
        );
        assert!(
            lines[5].starts_with("crw-------") && lines[5].ends_with(" dev/console"),
            "{listing}"
        );
    }

    #[test]
    fn rejects_empty_and_nul_paths() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}

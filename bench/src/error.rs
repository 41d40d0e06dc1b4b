//! The one error type of the benchmark.

use std::path::PathBuf;

use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall failed: the call and the object it was made on.
    #[error("{call}({what}): {errno}")]
    Sys { call: &'static str, what: String, errno: Errno },
    /// A file operation failed.
    #[error("{op} {path}: {err}")]
    Io { op: &'static str, path: PathBuf, err: std::io::Error },
    /// A runtime command exited with a failure.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command { cmd: String, status: String, stderr: String },
    /// A command did not finish within its time limit (it was killed).
    #[error("`{cmd}` did not finish within {secs} s (killed)")]
    Timeout { cmd: String, secs: u64 },
    /// Bad arguments or an unusable environment.
    #[error("{0}")]
    Setup(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// `map_err` helper for syscalls: `.sys("pidfd_open", || format!("pid {pid}"))`.
pub trait SysContext<T> {
    fn sys(self, call: &'static str, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn sys(self, call: &'static str, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Sys { call, what: what(), errno })
    }
}

/// `map_err` helper for std I/O: `.io("write", &path)`.
pub trait IoContext<T> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, std::io::Error> {
    fn io(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|err| Error::Io { op, path: path.into(), err })
    }
}

//! The crate's one error type. Every kernel error names the file (or the
//! call and its object) and the errno, e.g.
//! `write memory.limit_in_bytes = 1024: EINVAL`.

use rustix::io::Errno;

/// Errors of the cgroup crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A syscall on a cgroup directory or another kernel object failed.
    #[error("{call} {object}: {}", errno_name(*.errno))]
    Sys {
        call: &'static str,
        object: String,
        errno: Errno,
    },
    /// The kernel refused a value written to a cgroup file.
    #[error("write {file} = {value}: {}", errno_name(*.errno))]
    Write {
        file: String,
        value: String,
        errno: Errno,
    },
    /// Reading a cgroup file failed.
    #[error("read {file}: {}", errno_name(*.errno))]
    Read { file: String, errno: Errno },
    /// A cgroup file held something this crate cannot parse.
    #[error("{file}: cannot parse {content:?}")]
    Parse { file: String, content: String },
    /// The running cgroup layout has no file or controller for a request.
    #[error("{0}")]
    Unsupported(String),
    /// `linux.cgroupsPath` (or a path recorded in state) is not acceptable.
    #[error("invalid cgroupsPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A `linux.resources` value is invalid before it reaches the kernel.
    #[error("invalid {what}: {reason}")]
    InvalidResource { what: String, reason: String },
    /// The cgroup exists and belongs to someone else.
    #[error("cgroup {path} already in use: {reason}")]
    InUse { path: String, reason: String },
    /// The cgroup (or a parent) is frozen: a container in it would hang.
    #[error("cgroup {path}: container's cgroup unexpectedly frozen ({label} is frozen)")]
    Frozen { path: String, label: String },
    /// Nothing in /proc/self/mountinfo matches the requested layout.
    #[error("no cgroup hierarchy mounted: {0}")]
    NoHierarchy(String),
    /// A state change the kernel applies asynchronously did not complete.
    #[error("timed out after {ms} ms waiting for {file} to become {want}")]
    Timeout {
        file: String,
        want: &'static str,
        ms: u64,
    },
    /// Processes are still in the cgroup, so it cannot be removed.
    #[error("cgroup {path} still has processes ({pids}); not removed")]
    Busy { path: String, pids: String },
}

impl Error {
    pub(crate) fn sys(call: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            call,
            object: object.into(),
            errno,
        }
    }

    /// The errno behind this error, if the kernel produced it.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } | Error::Write { errno, .. } | Error::Read { errno, .. } => {
                Some(*errno)
            }
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The symbolic name of an errno (`EINVAL`), or `errno N` for rare ones.
pub fn errno_name(errno: Errno) -> String {
    let n = errno.raw_os_error();
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ECANCELED => "ECANCELED",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_names_file_value_and_errno() {
        let e = Error::Write {
            file: "memory.limit_in_bytes".into(),
            value: "1024".into(),
            errno: Errno::INVAL,
        };
        assert_eq!(e.to_string(), "write memory.limit_in_bytes = 1024: EINVAL");
        assert_eq!(errno_name(Errno::from_raw_os_error(4095)), "errno 4095");
    }
}

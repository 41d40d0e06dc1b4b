use rustix::io::Errno;

/// Errors of the mount crate. A syscall error names the call and the object
/// it acted on, e.g. `move_mount(tmpfs → /dev): Operation not permitted`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{call}({object}): {}", describe(*.errno))]
    Sys {
        call: &'static str,
        object: String,
        errno: Errno,
    },
    #[error("mount option {option:?} of {dest}: {reason}")]
    Option {
        dest: String,
        option: String,
        reason: &'static str,
    },
    #[error("{path}: {reason}")]
    Path { path: String, reason: String },
}

impl Error {
    pub(crate) fn sys(call: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            call,
            object: object.into(),
            errno,
        }
    }

    /// The errno behind a syscall error, if this is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// The libc description of an errno without Rust's "(os error N)" suffix.
pub fn describe(errno: Errno) -> String {
    let msg = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

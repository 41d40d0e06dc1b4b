use rustix::io::Errno;

/// Every error of the runtime. A syscall error names the call and the object
/// it acted on; the CLI prints the error as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{call}({object}): {}", fdbox_mount::describe(*.errno))]
    Sys {
        call: &'static str,
        object: String,
        errno: Errno,
    },
    #[error(transparent)]
    Mount(#[from] fdbox_mount::Error),
    #[error(transparent)]
    Idmap(#[from] fdbox_idmap::Error),
    #[error("cgroup: {0}")]
    Cgroup(#[from] fdbox_cgroups::Error),
    #[error("{0}")]
    Config(String),
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: ids are made of letters, digits, '_', '+', '-' and '.', and are not '.' or '..'")]
    InvalidId(String),
    #[error("{0}")]
    State(String),
    /// An error reported by the container's init process before it ran the
    /// user's program.
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Unsupported(String),
    /// A lifecycle hook failed (its kind, path and why, on one line).
    #[error("{0}")]
    Hook(String),
}

impl Error {
    pub fn sys(call: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            call,
            object: object.into(),
            errno,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for mapping an `Errno` into [`Error::Sys`].
pub trait SysContext<T> {
    fn sys(self, call: &'static str, object: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for Result<T, Errno> {
    fn sys(self, call: &'static str, object: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(call, object(), e))
    }
}

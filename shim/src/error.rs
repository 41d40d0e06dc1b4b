use rustix::io::Errno;

/// Every error of the shim. Each maps to the ttrpc status code containerd
/// turns into its own error kinds (`errdefs`), so `ctr` prints the message
/// with the right meaning (not found, already exists, …).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{call}({object}): {errno}")]
    Sys { call: &'static str, object: String, errno: Errno },
    #[error(transparent)]
    Mount(#[from] fdbox_mount::Error),
    /// A command of the `fdbox` binary failed; `msg` is its error line.
    #[error("fdbox {cmd}: {msg}")]
    Runtime { cmd: String, msg: String, not_found: bool },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn sys(call: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Error::Sys { call, object: object.into(), errno }
    }

    fn code(&self) -> containerd_shim_protos::ttrpc::Code {
        use containerd_shim_protos::ttrpc::Code;
        match self {
            Error::InvalidArgument(_) | Error::Mount(_) => Code::INVALID_ARGUMENT,
            Error::NotFound(_) | Error::Runtime { not_found: true, .. } => Code::NOT_FOUND,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            Error::Unimplemented(_) => Code::UNIMPLEMENTED,
            Error::Sys { .. } | Error::Runtime { .. } | Error::Internal(_) => Code::UNKNOWN,
        }
    }
}

impl From<Error> for containerd_shim_protos::ttrpc::Error {
    fn from(e: Error) -> Self {
        let status = containerd_shim_protos::ttrpc::get_status(e.code(), e.to_string());
        containerd_shim_protos::ttrpc::Error::RpcStatus(status)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for mapping an `Errno` into [`Error::Sys`].
pub trait SysContext<T> {
    fn sys(self, call: &'static str, object: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, Errno> {
    fn sys(self, call: &'static str, object: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(call, object(), e))
    }
}

impl<T> SysContext<T> for std::io::Result<T> {
    fn sys(self, call: &'static str, object: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::sys(call, object(), Errno::from_io_error(&e).unwrap_or(Errno::IO)))
    }
}

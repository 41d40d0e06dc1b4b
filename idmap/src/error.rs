use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error("{call}({object}): {}", describe(*.errno))]
    Sys { call: &'static str, object: String, errno: Errno },
}

impl Error {
    pub(crate) fn sys(call: &'static str, object: impl Into<String>, errno: Errno) -> Self {
        Error::Sys { call, object: object.into(), errno }
    }
}

fn describe(errno: Errno) -> String {
    let msg = std::io::Error::from_raw_os_error(errno.raw_os_error()).to_string();
    match msg.find(" (os error") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

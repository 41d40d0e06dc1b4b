//! The runner's one error type: every error says what was being done.

use std::fmt::Write as _;
use std::io;
use std::process::{Command, Output, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("`{cmd}` {status}{detail}")]
    Command {
        cmd: String,
        status: String,
        detail: String,
    },
    #[error("{0}")]
    Msg(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach "what was being done" to an io::Result.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

pub fn msg(text: impl Into<String>) -> Error {
    Error::Msg(text.into())
}

/// A command line as a person would type it (for messages).
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            let _ = write!(s, " '{a}'");
        } else {
            let _ = write!(s, " {a}");
        }
    }
    s
}

/// Run to completion with stdin closed, capturing stdout and stderr; a non-zero exit is an error
/// that quotes the end of stderr.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Io {
            what: format!("running `{}`", display(cmd)),
            source,
        })?;
    if !out.status.success() {
        return Err(failed(cmd, &out));
    }
    Ok(out)
}

/// The error for a command that ran and failed.
pub fn failed(cmd: &Command, out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    let detail = if tail.is_empty() {
        String::new()
    } else {
        format!(
            ":\n  {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
        )
    };
    Error::Command {
        cmd: display(cmd),
        status: format!("failed ({})", out.status),
        detail,
    }
}

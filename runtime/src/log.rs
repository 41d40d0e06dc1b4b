//! Logging as runc does it: `--log FILE` and `--log-format text|json`.
//! containerd and conmon read the last `error` line of the log file to tell
//! the user why a command failed, so an error always reaches it.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Config {
    file: Option<String>,
    format: Format,
    debug: bool,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

pub fn init(file: Option<String>, format: Format, debug: bool) {
    let _ = CONFIG.set(Config { file, format, debug });
}

fn entry(format: Format, level: &str, msg: &str) -> String {
    let time = crate::time::now_rfc3339();
    match format {
        Format::Json => format!("{}\n", serde_json::json!({"level": level, "msg": msg, "time": time})),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

fn write_file(path: &str, line: &str) {
    if let Ok(fd) = open_log(path) {
        let _ = std::fs::File::from(fd).write_all(line.as_bytes());
    }
}

/// Open the log file for appending so that nothing planted at its path can
/// redirect it: a symlink there is not followed (except one to an fd of our
/// own, as `/dev/stderr` is), a missing file is created with `O_EXCL`, and a
/// FIFO without a reader fails (`O_NONBLOCK`) instead of blocking.
fn open_log(path: &str) -> Result<std::os::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::{open, Mode, OFlags};
    use rustix::io::Errno;
    let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let own_fd = |p: &[u8], prefix: &[u8]| p.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit));
    let own = |p: &[u8]| own_fd(p, b"/proc/self/fd/") || own_fd(p, b"/dev/fd/");
    // One of our own fds, named as such.
    if own(path.as_bytes()) {
        return open(path, flags, Mode::empty());
    }
    for _ in 0..2 {
        match open(path, flags | OFlags::NOFOLLOW, Mode::empty()) {
            Err(Errno::NOENT) => match open(path, flags | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW, Mode::from_raw_mode(0o644)) {
                // Made by someone else in between: open that one.
                Err(Errno::EXIST) => continue,
                other => return other,
            },
            Err(Errno::LOOP) => {
                let target = rustix::fs::readlink(path, Vec::new())?;
                return if own(target.to_bytes()) { open(path, flags, Mode::empty()) } else { Err(Errno::LOOP) };
            }
            other => return other,
        }
    }
    Err(Errno::EXIST)
}

/// Log an error: one line on stderr and, with `--log`, one entry in the
/// log file. Under `--log-format json` without `--log`, the JSON entry is
/// the stderr line.
pub fn error(msg: &str) {
    let cfg = CONFIG.get();
    let format = cfg.map_or(Format::Text, |c| c.format);
    match cfg.and_then(|c| c.file.as_deref()) {
        Some(path) => {
            write_file(path, &entry(format, "error", msg));
            eprintln!("fdbox: {msg}");
        }
        None if format == Format::Json => eprint!("{}", entry(format, "error", msg)),
        None => eprintln!("fdbox: {msg}"),
    }
}

/// Log a warning (to the log file if any, else stderr).
pub fn warn(msg: &str) {
    let cfg = CONFIG.get();
    let format = cfg.map_or(Format::Text, |c| c.format);
    match cfg.and_then(|c| c.file.as_deref()) {
        Some(path) => write_file(path, &entry(format, "warning", msg)),
        None => eprint!("{}", entry(format, "warning", msg)),
    }
}

/// Whether `--debug` is set: check it before building a debug message
/// (the [`debug!`](crate::debug) macro does), so that logging costs nothing
/// without it.
pub fn debug_enabled() -> bool {
    CONFIG.get().is_some_and(|c| c.debug)
}

/// `debug!("fmt", args…)`: log at debug level (runc's `level=debug`) when
/// `--debug` is set; the message is only formatted then. Only for the fdbox
/// process itself: the init and exec children write to the container's stdio.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::debug_enabled() {
            $crate::log::debug(&format!($($arg)*));
        }
    };
}

/// Log a debug message when `--debug` is set.
pub fn debug(msg: &str) {
    let Some(cfg) = CONFIG.get() else { return };
    if !cfg.debug {
        return;
    }
    match cfg.file.as_deref() {
        Some(path) => write_file(path, &entry(cfg.format, "debug", msg)),
        None => eprint!("{}", entry(cfg.format, "debug", msg)),
    }
}

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
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
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

//! Driving the `fdbox` binary. The shim has threads, so it never clones a
//! container itself: every container process is started by an `fdbox`
//! command (runc's CLI), which hands the process back as a pidfd.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::monitor::{Helper, Monitor};
use crate::stdio::HelperStdio;

/// Environment variable naming the `fdbox` binary (tests set it).
pub const ENV_BINARY: &str = "FDBOX_SHIM_FDBOX";
/// Environment variable naming the state root's parent (tests set it).
pub const ENV_ROOT: &str = "FDBOX_SHIM_ROOT";
/// The default state root's parent; the namespace is appended, like the
/// runc shim's `/run/containerd/runc/<namespace>`.
pub const DEFAULT_ROOT: &str = "/run/containerd/fdbox";

/// Longest an `fdbox` command may take before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Find the `fdbox` binary: `$FDBOX_SHIM_FDBOX`, the runtime options'
/// `BinaryName`, the directory of the shim binary, then `$PATH`.
pub fn find_binary(option: Option<&str>) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_BINARY).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(name) = option.filter(|n| !n.is_empty()) {
        if name.contains('/') {
            return Ok(PathBuf::from(name));
        }
        return in_path(name).ok_or_else(|| Error::InvalidArgument(format!("runtime binary {name:?} not found in PATH")));
    }
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        let sibling = dir.join("fdbox");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    in_path("fdbox").ok_or_else(|| {
        Error::InvalidArgument(format!("the fdbox binary was found neither next to the shim nor in PATH (set {ENV_BINARY})"))
    })
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The state root for `namespace`: `$FDBOX_SHIM_ROOT`, the runtime
/// options' `Root`, or [`DEFAULT_ROOT`], each with the namespace appended.
pub fn state_root(option: Option<&str>, namespace: &str) -> PathBuf {
    let base = std::env::var_os(ENV_ROOT)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| option.filter(|r| !r.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    base.join(namespace)
}

/// The result of a finished `fdbox` command.
#[derive(Debug)]
pub struct Output {
    pub code: u32,
    pub stdout: String,
    pub stderr: String,
}

/// The `fdbox` binary and the state root the shim runs it with.
pub struct Fdbox {
    pub bin: PathBuf,
    pub root: PathBuf,
    monitor: Monitor,
    supported: Mutex<HashMap<String, bool>>,
}

impl Fdbox {
    pub fn new(bin: PathBuf, root: PathBuf, monitor: Monitor) -> Fdbox {
        Fdbox { bin, root, monitor, supported: Mutex::new(HashMap::new()) }
    }

    fn command(&self, log: Option<&Path>, args: &[OsString]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.root);
        if let Some(log) = log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        cmd.args(args);
        cmd
    }

    /// Start `fdbox [--log LOG] ARGS…` with the given stdio; the monitor
    /// tracks it from birth.
    pub fn spawn(&self, log: Option<&Path>, args: &[OsString], stdio: HelperStdio) -> Result<Helper> {
        let mut cmd = self.command(log, args);
        cmd.stdin(stdio.stdin).stdout(stdio.stdout).stderr(stdio.stderr);
        let helper = self.monitor.spawn(&mut cmd).map_err(|e| Error::Internal(format!("starting {}: {e}", self.bin.display())))?;
        // `cmd` holds the parent's copies of the child's stdio until it is
        // dropped: drop it now, so the pipes see EOF when the container does.
        drop(cmd);
        Ok(helper)
    }

    /// Run `fdbox ARGS…` to completion, capturing its output.
    pub fn run(&self, log: Option<&Path>, args: &[OsString]) -> Result<Output> {
        let stdio = HelperStdio { stdin: Stdio::null(), stdout: Stdio::piped(), stderr: Stdio::piped() };
        let mut helper = self.spawn(log, args, stdio)?;
        let mut stderr_pipe = helper.child.stderr.take();
        let stderr = std::thread::scope(|s| {
            let t = s.spawn(move || {
                let mut text = String::new();
                if let Some(p) = stderr_pipe.as_mut() {
                    let _ = p.read_to_string(&mut text);
                }
                text
            });
            let mut stdout = String::new();
            if let Some(p) = helper.child.stdout.as_mut() {
                let _ = p.read_to_string(&mut stdout);
            }
            (stdout, t.join().unwrap_or_default())
        });
        let code = helper.wait_timeout(COMMAND_TIMEOUT).unwrap_or_else(|c| c);
        Ok(Output { code, stdout: stderr.0, stderr: stderr.1 })
    }

    /// Run `fdbox ARGS…` and turn a failure into an error carrying its
    /// error line (from the JSON log when given, else stderr).
    pub fn check(&self, log: Option<&Path>, args: &[OsString]) -> Result<Output> {
        let mark = log.map(log_len).unwrap_or(0);
        let out = self.run(log, args)?;
        if out.code != 0 {
            return Err(self.failure(args, out.code, log, mark, &out.stderr));
        }
        Ok(out)
    }

    /// The error of a failed command (see [`Fdbox::check`]); `mark` is the
    /// log's length before the command ran.
    pub fn failure(&self, args: &[OsString], code: u32, log: Option<&Path>, mark: u64, stderr: &str) -> Error {
        let cmd = args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
        let msg = log
            .and_then(|l| last_log_error(l, mark))
            .or_else(|| {
                stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.trim().trim_start_matches("fdbox: ").to_string())
            })
            .unwrap_or_else(|| format!("exited with status {code}"));
        let not_found = msg.contains("does not exist");
        Error::Runtime { cmd, msg, not_found }
    }

    /// Whether this `fdbox` has the subcommand `sub` (and, for each flag in
    /// `flags`, that flag), from its `--help`. Cached.
    pub fn supports(&self, sub: &str, flags: &[&str]) -> bool {
        let key = format!("{sub} {}", flags.join(" "));
        if let Some(&known) = self.supported.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return known;
        }
        let args: Vec<OsString> = vec![sub.into(), "--help".into()];
        let ok = match self.run(None, &args) {
            Ok(out) => out.code == 0 && flags.iter().all(|f| out.stdout.contains(f)),
            Err(_) => false,
        };
        self.supported.lock().unwrap_or_else(|p| p.into_inner()).insert(key, ok);
        ok
    }

    /// An error for a subcommand this `fdbox` lacks.
    pub fn missing(&self, what: &str) -> Error {
        Error::Unimplemented(format!("{what}: {} has no such command yet", self.bin.display()))
    }
}

pub fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The message of the last `"level":"error"` entry written to the JSON log
/// after offset `from`.
pub fn last_log_error(path: &Path, from: u64) -> Option<String> {
    let data = std::fs::read(path).ok()?;
    let tail = data.get(from as usize..)?;
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
}

/// `args!["create", "--bundle", path]`: an array of OsStrings.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { [$(std::ffi::OsString::from($a)),*] };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_errors() {
        let file = tempfile::Builder::new().prefix("fdbox-shim-log-").suffix(".json").tempfile().unwrap();
        let p = file.path();
        std::fs::write(p, "{\"level\":\"error\",\"msg\":\"old\"}\n").unwrap();
        let mark = log_len(&p);
        assert_eq!(last_log_error(&p, 0).as_deref(), Some("old"));
        assert_eq!(last_log_error(&p, mark), None);
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("{\"level\":\"error\",\"msg\":\"new one\",\"time\":\"t\"}\n{\"level\":\"warning\",\"msg\":\"w\"}\n");
        std::fs::write(p, text).unwrap();
        assert_eq!(last_log_error(p, mark).as_deref(), Some("new one"));
    }
}

//! The shim crate's binaries on their own, without containerd (which tests/tests/shim.rs runs):
//! the hand-off client `fdbox-pidfd` against a hand-off server serving a real process, and the
//! shim's `delete` action as containerd calls it after a task. (These tests also make
//! `cargo test --workspace` build the binaries the containerd tests need.)

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::protobuf::Message;
use fdbox_shim::handoff::{self, Lookup, Response};
use fdbox_shim::pidfd::Pidfd;

const CLIENT: &str = env!("CARGO_BIN_EXE_fdbox-pidfd");
const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-fdbox-v2");

/// A directory removed when dropped, also when an assertion fails.
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("fdbox-shim-cli-{tag}-")).tempdir().unwrap()
}

fn client(args: &[&str]) -> Output {
    Command::new(CLIENT).args(args).stdin(Stdio::null()).output().expect("running fdbox-pidfd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn client_reports_a_missing_socket_in_one_line() {
    let out = client(&["info", "--socket", "/nonexistent/fdbox/pidfd.sock"]);
    assert_eq!(out.status.code(), Some(125));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/fdbox/pidfd.sock") && err.contains("No such file"), "{err}");
    assert!(out.stdout.is_empty());
}

/// Serves one process: a child of this test, so the test is the parent that reaps it.
struct OneProcess {
    pidfd: Arc<Pidfd>,
    exit: Mutex<Option<u32>>,
}

impl Lookup for OneProcess {
    fn lookup(&self, container: &str, exec: &str) -> Result<(Response, Arc<Pidfd>), String> {
        if !exec.is_empty() {
            return Err(format!("exec {exec:?} of task {container:?} does not exist"));
        }
        let exit = *self.exit.lock().unwrap();
        let resp = Response {
            version: handoff::VERSION,
            container: container.into(),
            pid: self.pidfd.pid(),
            status: if exit.is_some() { "stopped" } else { "running" }.into(),
            exit_status: exit,
            ..Default::default()
        };
        Ok((resp, self.pidfd.clone()))
    }
}

/// A process that is not the parent takes the pidfd from the socket, signals the process
/// through it, and reads its exit status (PIDFD_GET_INFO, or the server's answer).
#[test]
fn client_takes_a_pidfd_signals_and_waits() {
    let tmp = temp_dir("handoff");
    let dir = tmp.path();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
    let served = Arc::new(OneProcess { pidfd: Arc::new(Pidfd::new(fd).unwrap()), exit: Mutex::new(None) });
    let server = handoff::Server::start(dir, "box", served.clone()).unwrap();
    let sock = dir.join(handoff::SOCKET_NAME);
    let sock_s = sock.to_str().unwrap();

    let out = client(&["info", "--socket", sock_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["shim"]["pid"], child.id(), "{info}");
    assert_eq!(info["shim"]["container"], "box", "{info}");
    assert_eq!(info["pidfd"]["pid"], child.id(), "{info}");
    assert_eq!(info["exited"], false);

    let out = client(&["info", "--socket", sock_s, "--exec", "e9"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("exec \"e9\" of task \"box\" does not exist"), "{}", text(&out.stderr));

    let waiter = Command::new(CLIENT).args(["wait", "--timeout", "30", "--socket", sock_s]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let out = client(&["signal", "--socket", sock_s, "TERM"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The parent reaps; the status then exists for every pidfd holder.
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15));
    *served.exit.lock().unwrap() = Some(143);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stdout));
    let w: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(w["exit_status"], 143, "{w}");
    assert!(served.pidfd.exited());
    // Which source answered depends on whether the client asked before or after the reap
    // (the kernel keeps the exit info for pidfd holders once the process is reaped): either
    // is right, as long as PIDFD_GET_INFO is only claimed where the kernel has it.
    match w["source"].as_str() {
        Some("PIDFD_GET_INFO") => assert!(served.pidfd.exit_info().is_ok(), "{w}"),
        Some("shim") => {}
        _ => panic!("unknown source: {w}"),
    }

    drop(server);
    assert!(!sock.exists(), "the socket outlived its server");
}

/// `containerd-shim-fdbox-v2 … delete` as containerd runs it after a task (in the bundle, with
/// TTRPC_ADDRESS set): it cleans up and prints a DeleteResponse protobuf (exit status 137, as
/// the runc shim reports for a task it had to clean up).
#[test]
fn delete_action_prints_a_delete_response() {
    let Some(fdbox) = [std::env::var_os("FDBOX_BIN").map(PathBuf::from), Some(PathBuf::from(SHIM).with_file_name("fdbox"))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
    else {
        let _ = writeln!(std::io::stderr(), "skipped: the fdbox binary is not built (cargo build -p fdbox)");
        return;
    };
    let tmp = temp_dir("delete");
    let dir = tmp.path();
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let out = Command::new(SHIM)
        .args(["-namespace", "shimcli", "-id", "gone", "-address", "/nonexistent.sock", "-bundle"])
        .arg(&bundle)
        .arg("delete")
        .current_dir(&bundle)
        .env("TTRPC_ADDRESS", "/nonexistent.sock.ttrpc")
        .env("FDBOX_SHIM_FDBOX", &fdbox)
        .env("FDBOX_SHIM_ROOT", dir.join("root"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let resp = containerd_shim_protos::shim::shim::DeleteResponse::parse_from_bytes(&out.stdout).expect("a DeleteResponse");
    assert_eq!(resp.exit_status, 137);
    assert!(resp.exited_at.seconds > 0);
}

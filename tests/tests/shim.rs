//! containerd drives fdbox through its own shim, `containerd-shim-fdbox-v2` (issue 7), and
//! every scenario runs again in the same test with containerd's runc shim
//! (`io.containerd.runc.v2` and runc) as the reference behaviour.
//!
//! Each test starts its own containerd (Debian's 1.6) on its own socket, root and state dirs in
//! the test's dir (the CRI plugin off), with the target dir first in its PATH so
//! `--runtime io.containerd.fdbox.v2` finds the shim, and the shim told where fdbox is and where
//! to keep fdbox's state (`FDBOX_SHIM_FDBOX`, `FDBOX_SHIM_ROOT`, both in the test's dir). A
//! busybox image built offline (an OCI layout tarball) is imported with `ctr image import`.
//! containerd is stopped by its pid at the end; the test then checks that nothing is left: no
//! task, no shim, no container process, no mount, no runtime state, no cgroup, no shim socket.
//! containerd 1.6 always puts shim sockets in `/run/containerd/s`; that directory is removed
//! again if it did not exist before.
//!
//! The shim binaries are built by `cargo test --workspace` (the shim crate has integration
//! tests of its own), or `cargo build -p fdbox-shim`.

use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fdbox_tests::clients::{require_tool, HostDirs};
use fdbox_tests::ctr::{read_file, wait_file_contains, Ctr, CMD_TIMEOUT};
use fdbox_tests::*;

const IMAGE: &str = "localhost/fdbox-shim-test-busybox:latest";
const NS: &str = "fdbox-shim-test";
const FDBOX_RUNTIME: &str = "io.containerd.fdbox.v2";

/// One way of running a task: a runtime name or shim path for `ctr run --runtime`.
#[derive(Clone, Copy, Debug)]
struct Rt<'a> {
    runtime: &'a str,
    tag: &'static str,
    /// The fdbox shim (as opposed to the runc reference).
    fdbox: bool,
}

/// The shim binaries in the target dir.
fn shim_binaries() -> Option<(PathBuf, PathBuf)> {
    let dir = target_dir().join("debug");
    let (shim, client) = (dir.join("containerd-shim-fdbox-v2"), dir.join("fdbox-pidfd"));
    if shim.is_file() && client.is_file() {
        return Some((shim, client));
    }
    let msg = format!("{} not built: cargo build -p fdbox-shim (cargo test --workspace builds it)", shim.display());
    assert!(!in_ci(), "{msg}");
    skip(&msg);
    None
}

/// The test's containerd, the fdbox shim and its pidfd client.
struct Containerd<'e> {
    ctr: Ctr<'e>,
    shim: PathBuf,
    client: PathBuf,
}

impl<'e> Deref for Containerd<'e> {
    type Target = Ctr<'e>;
    fn deref(&self) -> &Ctr<'e> {
        &self.ctr
    }
}

impl<'e> Containerd<'e> {
    fn start(env: &'e Env) -> Option<Self> {
        if is_runc() {
            skip("the fdbox shim runs fdbox; FDBOX_TEST_RUNTIME=runc validates the runtime tests only");
            return None;
        }
        require_tool("containerd-shim-runc-v2", "containerd")?;
        require_tool("runc", "runc")?;
        require_tool("script", "bsdutils")?;
        require_tool("setpriv", "util-linux")?;
        let (shim, target_client) = shim_binaries()?;
        // The client runs as another uid too: a copy where any uid may run it.
        let client = env.dir.join("fdbox-pidfd");
        fs::copy(&target_client, &client).expect("copying fdbox-pidfd");
        fs::set_permissions(&client, fs::Permissions::from_mode(0o755)).expect("chmod fdbox-pidfd");
        let fdbox = fs::canonicalize(&runtime().bin).unwrap_or_else(|_| runtime().bin.clone());
        // The shim by name: containerd looks `containerd-shim-fdbox-v2` up in its PATH.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![shim.parent().expect("target dir").to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        let path = std::env::join_paths(dirs).expect("PATH");
        let fdbox_root = env.dir.join("c").join("fdbox-root");
        let envs = [("PATH", path.as_os_str()), ("FDBOX_SHIM_FDBOX", fdbox.as_os_str()), ("FDBOX_SHIM_ROOT", fdbox_root.as_os_str())];
        let ctr = Ctr::start(env, "shim", NS, IMAGE, &envs)?;
        Some(Containerd { ctr, shim, client })
    }

    /// The runtimes every scenario runs with: the fdbox shim by name (from PATH), by absolute
    /// path, and the runc shim.
    fn runtimes(&self) -> Vec<Rt<'_>> {
        vec![
            Rt { runtime: FDBOX_RUNTIME, tag: "fdbox", fdbox: true },
            Rt { runtime: self.shim.to_str().expect("utf-8 path"), tag: "fdbox-abs", fdbox: true },
            Rt { runtime: "io.containerd.runc.v2", tag: "runc", fdbox: false },
        ]
    }

    /// `ctr run --runtime <rt>` (and, for runc, its state root in the test's dir); `opts` go
    /// before the image, `args` after the container id.
    fn run_args(&self, rt: Rt<'_>, opts: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut runtime = vec!["--runtime".to_string(), rt.runtime.to_string()];
        if !rt.fdbox {
            runtime.push("--runc-root".into());
            runtime.push(self.runc_root().to_string_lossy().into_owned());
        }
        self.ctr.run_args(&runtime, IMAGE, opts, id, args)
    }

    #[track_caller]
    fn run(&self, rt: Rt<'_>, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let v = self.run_args(rt, opts, id, args);
        self.ctr_cmd(&v.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn runc_root(&self) -> PathBuf {
        self.base.join("runc-root")
    }

    fn fdbox_root(&self) -> PathBuf {
        self.base.join("fdbox-root").join(NS)
    }

    /// The task's bundle, where the shim keeps `pidfd.sock` and containerd the `address` file.
    fn bundle(&self, id: &str) -> PathBuf {
        self.base.join("state/io.containerd.runtime.v2.task").join(NS).join(id)
    }

    /// The shim of a running task: the parent of its init (the shim is the subreaper that
    /// the init is reparented to once `fdbox create` / `runc create` exits).
    fn shim_pid(&self, id: &str) -> i32 {
        let (pid, _) = self.task(id).unwrap_or_else(|| panic!("task {id} is not listed"));
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("PPid:")).and_then(|p| p.trim().parse().ok()).unwrap_or(0)
    }

    /// `fdbox-pidfd <args…>` (optionally through a prefix such as `setpriv …`).
    #[track_caller]
    fn client(&self, prefix: &[&str], args: &[&str]) -> Output {
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&self.client);
                c
            }
            None => Command::new(&self.client),
        };
        cmd.args(args);
        self.env.run_tool(cmd, CMD_TIMEOUT)
    }

    #[track_caller]
    fn assert_clean(&self) {
        self.ctr.assert_clean(&[self.runc_root().join(NS), self.fdbox_root()]);
    }

    fn stop(&mut self) {
        self.ctr.stop();
    }
}

/// The entries of `/proc/<pid>/fd` that are pidfds (`ls -l` shows `anon_inode:[pidfd]`).
fn pidfds_of(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.filter_map(|e| e.ok()).filter(|e| readlink(e.path()) == "anon_inode:[pidfd]").count())
        .unwrap_or(0)
}

/// Run `scenario` with every runtime, check the fdbox results with `check`, and compare them
/// with the runc shim's.
#[track_caller]
fn compare<T: PartialEq + std::fmt::Debug>(c: &Containerd<'_>, what: &str, scenario: impl Fn(Rt<'_>) -> T, check: impl Fn(&T)) {
    let rts = c.runtimes();
    let results: Vec<(Rt<'_>, T)> = rts.iter().map(|rt| (*rt, scenario(*rt))).collect();
    let (reference, ours): (Vec<_>, Vec<_>) = results.iter().partition(|(rt, _)| !rt.fdbox);
    for (rt, r) in &ours {
        check(r);
        assert_eq!(r, &reference[0].1, "{what}: fdbox shim as {} (left) and the runc shim (right) differ", rt.runtime);
    }
}

// ---------------------------------------------------------------------------------------------

/// `ctr run --rm` with the shim by name and by absolute path: the task's output, its stderr and
/// its exit code are ctr's; stdin reaches the task; a `binary://` logging binary gets the
/// output; and on a terminal
/// (`ctr run -t`: the console socket, the pty copied to ctr, ResizePty from ctr's terminal).
#[test]
fn ctr_run_exit_code_and_terminal() {
    let Some(env) = Env::new("shim-run") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };

    compare(
        &c,
        "ctr run --rm",
        |rt| {
            let out = c.run(rt, &["--rm"], &format!("{}-run", rt.tag), &["sh", "-c", "echo hi; echo oops >&2; sleep 0.3; exit 7"]);
            (out.code(), out.stdout.trim().to_string(), out.stderr.contains("oops"))
        },
        |r| assert_eq!(r, &(7, "hi".to_string(), true), "ctr run --rm: (exit code, stdout, stderr reached ctr)"),
    );
    compare(
        &c,
        "ctr run --rm with stdin",
        |rt| {
            let args = c.run_args(rt, &["--rm"], &format!("{}-in", rt.tag), &["sh", "-c", "read line; echo got:$line"]);
            let cmd = c.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let out = env.run_tool_with_input(cmd, b"hello\n", CMD_TIMEOUT);
            (out.code(), out.stdout.trim().to_string())
        },
        |r| assert_eq!(r, &(0, "got:hello".to_string())),
    );
    // containerd's logging binaries: stdout on fd 3, stderr on fd 4, fd 5 closed when ready.
    let logger = env.dir.join("logger.sh");
    fs::write(
        &logger,
        "#!/bin/sh\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID\" > \"$2/env\"\nexec 5>&-\ncat <&3 > \"$2/stdout\" &\ncat <&4 > \"$2/stderr\"\nwait\n",
    )
    .expect("write logger.sh");
    fs::set_permissions(&logger, fs::Permissions::from_mode(0o755)).expect("chmod logger.sh");
    compare(
        &c,
        "ctr run --rm --log-uri binary://",
        |rt| {
            let id = format!("{}-binlog", rt.tag);
            let dir = env.subdir(&format!("binlog-{}", rt.tag));
            let uri = format!("binary://{}?dir={}", logger.display(), dir.display());
            let out = c.run(rt, &["--rm", "--log-uri", &uri], &id, &["sh", "-c", "echo to-out; echo to-err >&2; sleep 0.3; exit 5"]);
            let env_line = read_file(&dir.join("env")).trim().replace(&id, "ID");
            (out.code(), read_file(&dir.join("stdout")), read_file(&dir.join("stderr")), env_line)
        },
        |r| assert_eq!(r, &(5, "to-out\n".to_string(), "to-err\n".to_string(), format!("{NS}/ID")), "(exit code, stdout, stderr, logger env)"),
    );
    compare(
        &c,
        "ctr run -t",
        |rt| {
            let args = c.run_args(rt, &["--rm", "-t"], &format!("{}-tty", rt.tag), &["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-ttys; sleep 0.5; stty size; exit 3"]);
            let out = c.on_terminal(&args);
            let pts = out.stdout.lines().any(|l| l.contains("/dev/pts/"));
            (out.code(), pts, out.stdout.contains("both-ttys"), out.stdout.contains("30 100"))
        },
        |r| assert_eq!(r, &(3, true, true, true), "ctr run -t: (exit code, a /dev/pts tty, stdin and stdout ttys, the 30x100 size)"),
    );
    c.assert_clean();
    c.stop();
}

/// A detached task (`ctr run -d`): `task exec` (exit code, `--user`, `--cwd`, `-t`, `-d`), the
/// shim holding each process as a pidfd (`/proc/<shim>/fd`), `task ps`, `task pause` / `task
/// resume` (the task stops making progress and resumes; exec refused while paused), `task
/// metrics`, `task kill` with signals the task traps, `task kill --all -s SIGKILL`, and the exit
/// status `task delete` reports.
#[test]
fn ctr_task_exec_pause_resume_metrics_kill() {
    let Some(env) = Env::new("shim-task") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };
    let out_dir = env.subdir("out");
    fs::set_permissions(&out_dir, fs::Permissions::from_mode(0o777)).expect("chmod out");

    compare(
        &c,
        "the life of a detached task",
        |rt| {
            let id = format!("{}-task", rt.tag);
            let log = c.base.join(format!("{id}.log"));
            let counter = out_dir.join(format!("{}.count", rt.tag));
            let mount = format!("type=bind,src={},dst=/out,options=rbind:rw", out_dir.display());
            let log_uri = format!("file://{}", log.display());
            let script = format!(
                "echo started; trap 'echo got-usr1' USR1; trap 'echo got-term' TERM; \
                 i=0; while :; do i=$((i+1)); echo $i > /out/{}.count; sleep 0.02; done",
                rt.tag
            );
            let mut s: Vec<(&str, String)> = vec![];
            c.run(rt, &["-d", "--log-uri", &log_uri, "--mount", &mount], &id, &["sh", "-c", &script]).ok();
            wait_file_contains(&log, "started");
            s.push(("status", c.task_status(&id)));
            let shim = c.shim_pid(&id);
            let address = read_file(&c.bundle(&id).join("address"));
            let shim_socket = PathBuf::from(address.trim().trim_start_matches("unix://"));
            assert!(shim_socket.starts_with("/run/containerd/s"), "the shim's address: {address:?}");
            let shim_cmd = String::from_utf8_lossy(&fs::read(format!("/proc/{shim}/cmdline")).unwrap_or_default()).replace('\0', " ");
            let pidfds_at_start = pidfds_of(shim);
            if rt.fdbox {
                assert!(shim_cmd.contains("containerd-shim-fdbox-v2"), "the init's parent is not the fdbox shim: {shim_cmd}");
                assert!(pidfds_at_start >= 1, "the shim holds no pidfd for the init: /proc/{shim}/fd has none");
            }

            let out = c.ctr_cmd(&["task", "exec", "--exec-id", "e1", &id, "sh", "-c", "echo in-exec; sleep 0.3; exit 4"]);
            s.push(("exec", format!("{:?}", (out.code(), out.stdout.trim()))));
            let out = c.ctr_cmd(&["task", "exec", "--exec-id", "e2", "--user", "65534", "--cwd", "/tmp", &id, "sh", "-c", "id -u; pwd; sleep 0.3"]);
            s.push(("exec --user --cwd", format!("{:?}", (out.code(), out.stdout.trim()))));
            let ctr_args: Vec<String> = ["task", "exec", "-t", "--exec-id", "e3", &id, "sh", "-c", "tty; test -t 1 && echo is-tty; sleep 0.5; stty size; exit 5"]
                .iter()
                .map(|a| a.to_string())
                .collect();
            let out = c.on_terminal(&ctr_args);
            let pts = out.stdout.lines().any(|l| l.contains("/dev/pts/"));
            s.push(("exec -t", format!("{:?}", (out.code(), pts, out.stdout.contains("is-tty"), out.stdout.contains("30 100")))));

            // A detached exec: one more process the shim holds as a pidfd.
            c.ctr_cmd(&["task", "exec", "-d", "--exec-id", "bg", &id, "sleep", "1000"]).ok();
            if rt.fdbox {
                assert_eq!(pidfds_of(shim), pidfds_at_start + 1, "the shim holds no pidfd for the detached exec");
            }
            let out = c.ctr_cmd(&["task", "ps", &id]).ok();
            let pids = out.stdout.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
            s.push(("ps lists the init and the exec", (pids >= 2).to_string()));
            c.ctr_cmd(&["task", "kill", "--exec-id", "bg", "-s", "SIGKILL", &id]).ok();
            // `task delete` of a process exits with that process's exit status.
            let deadline = Instant::now() + Duration::from_secs(30);
            let deleted = loop {
                let out = c.ctr_cmd(&["task", "delete", "--exec-id", "bg", &id]);
                if out.code() == 137 || Instant::now() > deadline {
                    break out.code();
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            s.push(("killed exec deleted", deleted.to_string()));
            if rt.fdbox {
                assert_eq!(pidfds_of(shim), pidfds_at_start, "the deleted exec's pidfd is still held");
            }

            let read = || read_file(&counter).trim().parse::<u64>().unwrap_or(0);
            c.ctr_cmd(&["task", "pause", &id]).ok();
            s.push(("paused", c.task_status(&id)));
            let at_pause = read();
            std::thread::sleep(Duration::from_millis(300));
            s.push(("frozen", (read() == at_pause).to_string()));
            let out = c.ctr_cmd(&["task", "exec", "--exec-id", "e4", &id, "true"]);
            s.push(("exec while paused", format!("{} {}", out.success(), out.stderr.contains("paused"))));
            c.ctr_cmd(&["task", "resume", &id]).ok();
            s.push(("resumed", c.task_status(&id)));
            let deadline = Instant::now() + Duration::from_secs(10);
            while read() <= at_pause + 2 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            s.push(("advances", (read() > at_pause + 2).to_string()));

            let out = c.ctr_cmd(&["task", "metrics", "--format", "json", &id]).ok();
            let m: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
            let pids_current = m.pointer("/pids/current").and_then(Value::as_u64).unwrap_or(0);
            // cgroup v1 metrics, or v2's.
            let mem = m.pointer("/memory/usage/usage").or_else(|| m.pointer("/memory/usage")).and_then(Value::as_u64).unwrap_or(0);
            let cpu = m.pointer("/cpu/usage/total").or_else(|| m.pointer("/cpu/usage_usec")).and_then(Value::as_u64).unwrap_or(0);
            s.push(("metrics", format!("pids>=1:{} memory>0:{} cpu>0:{}", pids_current >= 1, mem > 0, cpu > 0)));

            c.ctr_cmd(&["task", "kill", "-s", "SIGUSR1", &id]).ok();
            wait_file_contains(&log, "got-usr1");
            c.ctr_cmd(&["task", "kill", "-s", "SIGTERM", &id]).ok();
            wait_file_contains(&log, "got-term");
            s.push(("trapped signals", c.task_status(&id)));
            // A running task is not deleted without -f.
            s.push(("delete while running", c.ctr_cmd(&["task", "delete", &id]).success().to_string()));
            c.ctr_cmd(&["task", "kill", "--all", "-s", "SIGKILL", &id]).ok();
            s.push(("killed", c.wait_status(&id, "STOPPED")));
            let out = c.ctr_cmd(&["task", "delete", &id]);
            s.push(("delete", format!("{} {}", out.success(), out.stderr.contains("exit code 137"))));
            c.ctr_cmd(&["container", "delete", &id]).ok();
            s.push(("log", read_file(&log).trim().to_string()));
            let gone = wait_until(Duration::from_secs(10), "the shim's socket to be removed", || (!shim_socket.exists()).then_some(true));
            s.push(("shim socket removed", gone.to_string()));
            s
        },
        |s| {
            let get = |k: &str| s.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap_or("");
            assert_eq!(get("status"), "RUNNING");
            assert_eq!(get("exec"), format!("{:?}", (4, "in-exec")));
            assert_eq!(get("exec --user --cwd"), format!("{:?}", (0, "65534\n/tmp")));
            assert_eq!(get("exec -t"), "(5, true, true, true)");
            assert_eq!(get("ps lists the init and the exec"), "true");
            assert_eq!(get("killed exec deleted"), "137");
            assert_eq!(get("paused"), "PAUSED");
            assert_eq!(get("frozen"), "true");
            assert_eq!(get("exec while paused"), "false true");
            assert_eq!(get("resumed"), "RUNNING");
            assert_eq!(get("advances"), "true");
            assert_eq!(get("metrics"), "pids>=1:true memory>0:true cpu>0:true");
            assert_eq!(get("trapped signals"), "RUNNING");
            assert_eq!(get("delete while running"), "false");
            assert_eq!(get("killed"), "STOPPED");
            assert_eq!(get("delete"), "true true");
            assert_eq!(get("log"), "started\ngot-usr1\ngot-term");
            assert_eq!(get("shim socket removed"), "true");
        },
    );
    c.assert_clean();
    c.stop();
}

/// The pidfd hand-off (docs/pidfd-handoff.md): `fdbox-pidfd`, a process that is neither the
/// container's parent nor containerd, takes the init and an exec as pidfds from the shim's
/// socket, signals one through its pidfd and observes both exits through them (exit status
/// from `PIDFD_GET_INFO` on 6.15+, else from the shim). Refused: another uid (by the socket's
/// mode, and by SO_PEERCRED when the mode is overridden), an unknown task or exec, a request
/// that is not JSON. The socket is gone with the task.
#[test]
fn pidfd_handoff_client() {
    let Some(env) = Env::new("shim-handoff") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };
    let rt = c.runtimes()[0];
    let id = "handoff";
    c.run(rt, &["-d"], id, &["sleep", "1000"]).ok();
    let (init_pid, status) = c.task(id).expect("the task is listed");
    assert_eq!(status, "RUNNING");
    let sock = c.bundle(id).join("pidfd.sock");
    let sock_s = sock.to_str().expect("utf-8").to_string();
    let meta = fs::symlink_metadata(&sock).unwrap_or_else(|e| panic!("{}: {e}", sock.display()));
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the hand-off socket's mode");

    // info: the shim's header and the kernel's view of the received pidfd agree with ctr.
    let out = c.client(&[], &["info", "--socket", &sock_s]).ok();
    let info: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("info printed no JSON ({e}): {out}"));
    assert_eq!(info["shim"]["status"], "running", "{info}");
    assert_eq!(info["shim"]["container"], id, "{info}");
    assert_eq!(info["shim"]["pid"], init_pid, "{info}");
    assert_eq!(info["pidfd"]["pid"], init_pid, "the received pidfd is not the init: {info}");
    assert_eq!(info["exited"], false, "{info}");

    // An exec, taken by its exec id.
    c.ctr_cmd(&["task", "exec", "-d", "--exec-id", "bg", id, "sleep", "1000"]).ok();
    let out = c.client(&[], &["info", "--socket", &sock_s, "--exec", "bg"]).ok();
    let exec_info: Value = serde_json::from_str(out.stdout.trim()).expect("info JSON");
    let exec_pid = exec_info["pidfd"]["pid"].as_i64().unwrap_or(0) as i32;
    assert_eq!(exec_info["shim"]["exec_id"], "bg", "{exec_info}");
    assert!(exec_pid > 0 && exec_pid != init_pid, "{exec_info}");
    let ps = c.ctr_cmd(&["task", "ps", id]).ok();
    assert!(ps.stdout.contains(&exec_pid.to_string()), "ctr task ps does not list the exec's pid {exec_pid}: {ps}");

    // Waiters: other processes that only hold the pidfds.
    let mut wait_cmd = Command::new(&c.client);
    wait_cmd.args(["wait", "--timeout", "60", "--socket", &sock_s]);
    let init_waiter = env.spawn_tool(wait_cmd);
    let mut wait_cmd = Command::new(&c.client);
    wait_cmd.args(["wait", "--timeout", "60", "--socket", &sock_s, "--exec", "bg"]);
    let exec_waiter = env.spawn_tool(wait_cmd);
    std::thread::sleep(Duration::from_millis(200));

    // The exec is killed through the client's pidfd.
    c.client(&[], &["signal", "--socket", &sock_s, "--exec", "bg", "KILL"]).ok();
    let out = exec_waiter.wait();
    assert_eq!(out.code(), 137, "the exec's waiter: {out}");
    let w: Value = serde_json::from_str(out.stdout.trim()).expect("wait JSON");
    assert_eq!(w["exit_status"], 137, "{w}");
    assert_eq!(w["exec_id"], "bg", "{w}");
    assert!(matches!(w["source"].as_str(), Some("PIDFD_GET_INFO") | Some("shim")), "{w}");
    assert_eq!(c.task_status(id), "RUNNING", "killing the exec stopped the task");

    // The init, killed by containerd, seen exiting through the pidfd.
    c.ctr_cmd(&["task", "kill", "-s", "SIGKILL", id]).ok();
    let out = init_waiter.wait();
    assert_eq!(out.code(), 137, "the init's waiter: {out}");
    let w: Value = serde_json::from_str(out.stdout.trim()).expect("wait JSON");
    assert_eq!(w["exit_status"], 137, "{w}");
    assert_eq!(w["pid"], init_pid, "{w}");
    assert_eq!(c.wait_status(id, "STOPPED"), "STOPPED");
    // After the exit the pidfd is still handed out, with the status.
    let out = c.client(&[], &["info", "--socket", &sock_s]).ok();
    let after: Value = serde_json::from_str(out.stdout.trim()).expect("info JSON");
    assert_eq!(after["shim"]["status"], "stopped", "{after}");
    assert_eq!(after["shim"]["exit_status"], 137, "{after}");
    assert_eq!(after["exited"], true, "{after}");

    // Refusals: one clear line each, no fd.
    let refused = |prefix: &[&str], args: &[&str], needle: &str| {
        let out = c.client(prefix, args);
        assert_eq!(out.code(), 125, "expected a refusal: {out}");
        assert!(out.stdout.trim().is_empty(), "a refused request printed: {out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "expected one error line: {out}");
        assert!(out.stderr.contains(needle), "expected {needle:?}: {out}");
    };
    refused(&[], &["info", "--socket", &sock_s, "--container", "nope"], "not served by this socket");
    refused(&[], &["info", "--socket", &sock_s, "--exec", "nope"], "does not exist");
    let nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"];
    // The socket's mode keeps another uid out...
    refused(&nobody, &["info", "--socket", &sock_s], "Permission denied");
    // ...and one that may override the mode is refused by its credentials.
    let mut with_cap = nobody.to_vec();
    with_cap.extend(["--inh-caps", "+dac_override", "--ambient-caps", "+dac_override"]);
    refused(&with_cap, &["info", "--socket", &sock_s], "permission denied: uid 65534");
    // Not JSON.
    {
        use std::io::{Read, Write};
        // The bundle's path may be too long for sun_path: connect through a dir fd.
        let dir = fs::File::open(c.bundle(id)).expect("open the bundle dir");
        let via = format!("/proc/self/fd/{}/pidfd.sock", std::os::fd::AsRawFd::as_raw_fd(&dir));
        let mut s = std::os::unix::net::UnixStream::connect(via).expect("connect");
        s.write_all(b"give me everything\n").expect("write");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        assert!(answer.contains("bad request"), "{answer}");
    }

    c.ctr_cmd(&["task", "delete", id]).ok();
    assert!(fs::symlink_metadata(&sock).is_err(), "the hand-off socket outlived its task");
    c.ctr_cmd(&["container", "delete", id]).ok();
    c.assert_clean();
    c.stop();
}

/// Bad input, with the runc shim as the reference where it applies: a rootfs containerd gives
/// that cannot be mounted (the snapshot's upper dir gone), an exec id used twice, a kill of an
/// exec that does not exist. Each is a clear error, and nothing is left behind: no shim, no
/// mount, no runtime state, no shim socket.
#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let Some(env) = Env::new("shim-bad") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };
    let runc_default_root = HostDirs::hold(&["/run/containerd/runc/fdbox-shim-test", "/run/containerd/runc"]);

    compare(
        &c,
        "a rootfs that cannot be mounted",
        |rt| {
            let id = format!("{}-nomount", rt.tag);
            // `container create` has no --cgroup or --runc-root: the task never gets as far as
            // a cgroup, and the runc shim's default root is held (and removed) below.
            c.ctr_cmd(&["container", "create", "--runtime", rt.runtime, IMAGE, &id, "true"]).ok();
            // The snapshot's overlay, as containerd will hand it to the shim.
            let out = c.ctr_cmd(&["snapshots", "mounts", "/mnt", &id]).ok();
            let upper = out
                .stdout
                .split([',', ' '])
                .find_map(|o| o.strip_prefix("upperdir="))
                .unwrap_or_else(|| panic!("no upperdir in {out}"))
                .to_string();
            assert!(upper.starts_with(c.base.to_str().unwrap()), "the snapshot is not in the test's dir: {upper}");
            let moved = format!("{upper}.moved");
            fs::rename(&upper, &moved).expect("moving the upper dir away");
            let out = c.ctr_cmd(&["task", "start", "--null-io", &id]);
            fs::rename(&moved, &upper).expect("moving the upper dir back");
            if rt.fdbox {
                assert!(out.stderr.contains("mounting the rootfs"), "not a clear error: {out}");
            }
            let listed = c.task(&id).is_some();
            c.ctr_cmd(&["container", "delete", &id]).ok();
            (out.success(), listed)
        },
        |r| assert_eq!(r, &(false, false), "(task start succeeded, a task is listed)"),
    );
    compare(
        &c,
        "an exec id used twice; a kill of an exec that does not exist",
        |rt| {
            let id = format!("{}-exec", rt.tag);
            c.run(rt, &["-d"], &id, &["sleep", "1000"]).ok();
            let first = c.ctr_cmd(&["task", "exec", "-d", "--exec-id", "dup", &id, "sleep", "1000"]);
            let second = c.ctr_cmd(&["task", "exec", "-d", "--exec-id", "dup", &id, "sleep", "1000"]);
            let kill = c.ctr_cmd(&["task", "kill", "--exec-id", "nope", "-s", "SIGKILL", &id]);
            let still = c.task_status(&id);
            c.ctr_cmd(&["task", "kill", "-s", "SIGKILL", &id]).ok();
            c.wait_status(&id, "STOPPED");
            c.ctr_cmd(&["task", "delete", &id]).ok();
            c.ctr_cmd(&["container", "delete", &id]).ok();
            (
                first.success(),
                second.success(),
                second.stderr.contains("already exists"),
                kill.success(),
                kill.stderr.contains("not found"),
                still,
            )
        },
        |r| assert_eq!(r, &(true, false, true, false, true, "RUNNING".to_string())),
    );
    // The shims of the tasks above are gone, and with them their sockets.
    let left: Vec<_> = fs::read_dir(c.base.join("state/io.containerd.runtime.v2.task").join(NS))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "bundles left: {left:?}");
    c.assert_clean();
    c.stop();
    drop(runc_default_root);
}

/// The task events containerd gets from the shim (`ctr events`), in order, the same as from
/// the runc shim: create → start → exit → delete for a task; exec-added → exec-started → exit
/// for an exec; paused / resumed; and oom when the kernel OOM-kills in the container.
#[test]
fn task_events_in_containerd_order() {
    let Some(env) = Env::new("shim-events") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };
    let mut events_cmd = c.command(&["events"]);
    events_cmd.stdin(std::process::Stdio::null());
    let watcher = env.spawn_tool(events_cmd);
    // ctr events subscribes asynchronously: wait until it sees an event of ours.
    wait_until(Duration::from_secs(30), "ctr events to subscribe", || {
        c.ctr_cmd(&["image", "label", IMAGE, "subscribed=yes"]);
        watcher.stdout().contains("/images/update").then_some(())
    });
    // The /tasks/ topics of one container, in the order ctr saw them.
    let topics_of = |id: &str| -> Vec<String> {
        let needle = format!("\"container_id\":\"{id}\"");
        watcher
            .stdout()
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("/tasks/")).map(str::to_string))
            .collect()
    };
    let wait_topic = |id: &str, topic: &str, n: usize| {
        wait_until(Duration::from_secs(30), &format!("{n} {topic} event(s) of {id}"), || {
            (topics_of(id).iter().filter(|t| *t == topic).count() >= n).then_some(())
        })
    };

    compare(
        &c,
        "the events of a task's life",
        |rt| {
            let id = format!("{}-ev", rt.tag);
            c.run(rt, &["-d"], &id, &["sleep", "1000"]).ok();
            c.ctr_cmd(&["task", "exec", "--exec-id", "e1", &id, "sh", "-c", "exit 2"]);
            c.ctr_cmd(&["task", "pause", &id]).ok();
            c.ctr_cmd(&["task", "resume", &id]).ok();
            c.ctr_cmd(&["task", "kill", "-s", "SIGKILL", &id]).ok();
            c.wait_status(&id, "STOPPED");
            c.ctr_cmd(&["task", "delete", &id]);
            c.ctr_cmd(&["container", "delete", &id]).ok();
            wait_topic(&id, "/tasks/delete", 1);
            topics_of(&id)
        },
        |t| {
            assert_eq!(
                t,
                &[
                    "/tasks/create",
                    "/tasks/start",
                    "/tasks/exec-added",
                    "/tasks/exec-started",
                    "/tasks/exit",
                    "/tasks/paused",
                    "/tasks/resumed",
                    "/tasks/exit",
                    "/tasks/delete"
                ]
            )
        },
    );
    compare(
        &c,
        "an OOM kill in the container",
        |rt| {
            let id = format!("{}-oom", rt.tag);
            // 32 MiB for the container; dd's 128 MiB buffer is OOM-killed, the init goes on.
            let out = c.run(rt, &["--rm", "--memory-limit", "33554432"], &id, &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null; echo dd:$?; sleep 0.3"]);
            wait_topic(&id, "/tasks/delete", 1);
            let topics = topics_of(&id);
            let oom = topics.iter().position(|t| t == "/tasks/oom");
            let exit = topics.iter().position(|t| t == "/tasks/exit");
            (out.code(), out.stdout.trim().to_string(), oom.is_some(), exit.is_some())
        },
        |r| assert_eq!(r, &(0, "dd:137".to_string(), true, true), "(exit code, stdout, an oom event, an exit event)"),
    );
    drop(watcher);
    c.assert_clean();
    c.stop();
}

//! containerd drives fdbox through its stock runc shim (issue 10): Debian's containerd 1.6 and
//! `containerd-shim-runc-v2`, told to run fdbox with `BinaryName` in the runc options (`ctr run
//! --runc-binary`, the client side of the same option CRI sets from config.toml). Every scenario
//! runs again with runc in the same test and the two are compared.
//!
//! Each test starts its own containerd (`fdbox_tests::ctr::Ctr`: its own socket, root and state dirs
//! in the test's dir, its `opt` plugin's dir too, and the CRI plugin off), imports a busybox image built offline
//! (an OCI layout tarball), and stops containerd by its pid at the end. Containers get their
//! cgroups below `/fdbox-test/<test>` (`ctr run --cgroup`) and the runtime its state root in the
//! test's dir (`--runc-root`).

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fdbox_tests::clients::{require_tool, runtimes_under_test};
use fdbox_tests::ctr::{read_file, seen, wait_file_contains, Ctr, Seen, CMD_TIMEOUT};
use fdbox_tests::*;

const IMAGE: &str = "localhost/fdbox-test-busybox:latest";
const NS: &str = "fdbox-test";

#[derive(Clone, Copy)]
struct Rt<'a> {
    path: &'a Path,
    tag: &'static str,
}

/// The test's containerd, and the two runtimes the runc shim is told to run.
struct Containerd<'e> {
    ctr: Ctr<'e>,
    under_test: PathBuf,
    runc: PathBuf,
}

impl<'e> Deref for Containerd<'e> {
    type Target = Ctr<'e>;
    fn deref(&self) -> &Ctr<'e> {
        &self.ctr
    }
}

impl<'e> Containerd<'e> {
    fn start(env: &'e Env) -> Option<Self> {
        require_tool("containerd-shim-runc-v2", "containerd")?;
        require_tool("script", "bsdutils")?;
        let (under_test, runc) = runtimes_under_test()?;
        let ctr = Ctr::start(env, "ctrd", NS, IMAGE, &[])?;
        Some(Containerd { ctr, under_test, runc })
    }

    fn rt_under_test(&self) -> Rt<'_> {
        Rt { path: &self.under_test, tag: "ut" }
    }

    fn rt_runc(&self) -> Rt<'_> {
        Rt { path: &self.runc, tag: "ref" }
    }

    fn runc_root(&self, tag: &str) -> PathBuf {
        self.base.join(format!("runc-root-{tag}"))
    }

    /// `ctr run` with the runtime as the runc shim's binary and its state root in the test's
    /// dir; `opts` go before the image, `args` after the container id.
    fn run_args(&self, rt: Rt<'_>, opts: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let runtime = [
            "--runc-binary".into(),
            rt.path.to_string_lossy().into_owned(),
            "--runc-root".into(),
            self.runc_root(rt.tag).to_string_lossy().into_owned(),
        ];
        self.ctr.run_args(&runtime, IMAGE, opts, id, args)
    }

    #[track_caller]
    fn run(&self, rt: Rt<'_>, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let v = self.run_args(rt, opts, id, args);
        self.ctr_cmd(&v.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[track_caller]
    fn assert_clean(&self) {
        self.ctr.assert_clean(&[self.runc_root("ut").join(NS), self.runc_root("ref").join(NS)]);
    }

    fn stop(&mut self) {
        self.ctr.stop();
    }
}

#[track_caller]
fn compare<T: PartialEq + std::fmt::Debug>(c: &Containerd<'_>, what: &str, scenario: impl Fn(Rt<'_>) -> T, check: impl Fn(&T)) {
    let ut = scenario(c.rt_under_test());
    check(&ut);
    let reference = scenario(c.rt_runc());
    assert_eq!(ut, reference, "{what}: fdbox (left) and runc (right) differ");
}

// ---------------------------------------------------------------------------------------------

/// `ctr run --rm`: the task's output, its stderr and its exit code are ctr's; and on a terminal
/// (`ctr run -t`, the shim's console socket).
#[test]
fn ctr_run_exit_code_and_terminal() {
    let Some(env) = Env::new("ctr-run") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };

    compare(
        &c,
        "ctr run --rm",
        |rt| {
            let out = c.run(rt, &["--rm"], &format!("{}-run", rt.tag), &["sh", "-c", "echo hi; echo oops >&2; exit 7"]);
            (seen(&out), out.stderr.contains("oops"))
        },
        |(s, err)| {
            assert_eq!(s, &Seen { code: 7, stdout: "hi".into() });
            assert!(err, "the task's stderr did not reach ctr's stderr");
        },
    );
    compare(
        &c,
        "ctr run -t",
        |rt| {
            let args = c.run_args(rt, &["--rm", "-t"], &format!("{}-tty", rt.tag), &["sh", "-c", "tty; test -t 0 && test -t 1 && echo both-ttys; sleep 0.5; exit 3"]);
            let out = c.on_terminal(&args);
            let pts = out.stdout.lines().any(|l| l.contains("/dev/pts/"));
            (out.code(), pts, out.stdout.contains("both-ttys"))
        },
        |r| assert_eq!(r, &(3, true, true), "ctr run -t: (exit code, a /dev/pts tty, stdin and stdout ttys)"),
    );
    c.assert_clean();
    c.stop();
}

/// A detached task: `task exec` (exit code, `--user`, `--cwd`, `-t`), `task ps`, `task pause` /
/// `task resume` (the task stops making progress and resumes; exec refused while paused),
/// `task metrics`, `task kill` with a signal the task traps, `task kill --all -s SIGKILL`, and
/// the exit status `task delete` reports.
#[test]
fn ctr_task_exec_pause_resume_metrics_kill() {
    let Some(env) = Env::new("ctr-task") else { return };
    let Some(mut c) = Containerd::start(&env) else { return };
    let out_dir = env.subdir("out");

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

            let out = c.ctr_cmd(&["task", "exec", "--exec-id", "e1", &id, "sh", "-c", "echo in-exec; sleep 0.3; exit 4"]);
            s.push(("exec", format!("{:?}", seen(&out))));
            let out = c.ctr_cmd(&["task", "exec", "--exec-id", "e2", "--user", "65534", "--cwd", "/tmp", &id, "sh", "-c", "id -u; pwd; sleep 0.3"]);
            s.push(("exec --user --cwd", format!("{:?}", seen(&out))));
            let ctr_args: Vec<String> = ["task", "exec", "-t", "--exec-id", "e3", &id, "sh", "-c", "tty; test -t 1 && echo is-tty; sleep 0.5; exit 5"]
                .iter()
                .map(|a| a.to_string())
                .collect();
            let out = c.on_terminal(&ctr_args);
            let pts = out.stdout.lines().any(|l| l.contains("/dev/pts/"));
            s.push(("exec -t", format!("{:?}", (out.code(), pts, out.stdout.contains("is-tty")))));

            let out = c.ctr_cmd(&["task", "ps", &id]).ok();
            let pids = out.stdout.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
            s.push(("ps lists processes", (pids >= 1).to_string()));

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
            c.ctr_cmd(&["task", "kill", "--all", "-s", "SIGKILL", &id]).ok();
            s.push(("killed", c.wait_status(&id, "STOPPED")));
            let out = c.ctr_cmd(&["task", "delete", &id]);
            s.push(("delete", format!("{} {}", out.success(), out.stderr.contains("exit code 137"))));
            c.ctr_cmd(&["container", "delete", &id]).ok();
            s.push(("log", read_file(&log).trim().to_string()));
            s
        },
        |s| {
            let get = |k: &str| s.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str()).unwrap_or("");
            assert_eq!(get("status"), "RUNNING");
            assert_eq!(get("exec"), format!("{:?}", Seen { code: 4, stdout: "in-exec".into() }));
            assert_eq!(get("exec --user --cwd"), format!("{:?}", Seen { code: 0, stdout: "65534\n/tmp".into() }));
            assert_eq!(get("exec -t"), "(5, true, true)");
            assert_eq!(get("ps lists processes"), "true");
            assert_eq!(get("paused"), "PAUSED");
            assert_eq!(get("frozen"), "true");
            assert_eq!(get("exec while paused"), "false true");
            assert_eq!(get("resumed"), "RUNNING");
            assert_eq!(get("advances"), "true");
            assert_eq!(get("metrics"), "pids>=1:true memory>0:true cpu>0:true");
            assert_eq!(get("trapped signals"), "RUNNING");
            assert_eq!(get("killed"), "STOPPED");
            assert_eq!(get("delete"), "true true");
            assert_eq!(get("log"), "started\ngot-usr1\ngot-term");
        },
    );
    c.assert_clean();
    c.stop();
}

/// The runtime as the runc shim calls it, for the outcomes the shim tells apart by the text of
/// the runtime's last JSON log line (containerd 1.6's `checkKillError` and delete): a kill of a
/// container that already stopped must read "container not running" (NotFound: "process
/// already finished", not an error), and a missing container "does not exist".
#[test]
fn runc_shim_contract_kill_and_delete_messages() {
    let Some(env) = Env::new("shim-contract") else { return };
    let Some((under_test, runc)) = runtimes_under_test() else { return };
    env.args(&["true"]);
    env.write_config();

    let messages = |bin: &Path, tag: &str| -> (i32, String, i32, String, i32) {
        let root = env.dir.join(format!("root-{tag}"));
        let log = env.dir.join(format!("{tag}.log.json"));
        let id = env.id(tag);
        let mut cmd = Command::new(bin);
        // As the shim: global --root/--log/--log-format, then the command.
        let base = |cmd: &mut Command| {
            cmd.arg("--root").arg(&root).arg("--log").arg(&log).args(["--log-format", "json"]);
        };
        base(&mut cmd);
        // Detached, so the stopped container stays until it is deleted.
        cmd.args(["run", "--detach", "--bundle"]).arg(&env.bundle).arg(&id);
        env.run_tool(cmd, CMD_TIMEOUT).ok();
        wait_until(Duration::from_secs(30), "the container to stop", || {
            let mut state = Command::new(bin);
            state.arg("--root").arg(&root).args(["state", &id]);
            let out = env.run_tool(state, CMD_TIMEOUT);
            let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
            (v["status"] == "stopped").then_some(())
        });
        let last_error = || {
            read_file(&log)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .rfind(|v| v["level"] == "error")
                .and_then(|v| v["msg"].as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let mut kill = Command::new(bin);
        base(&mut kill);
        kill.args(["kill", &id, "9"]);
        let kill_code = env.run_tool(kill, CMD_TIMEOUT).code();
        let kill_msg = last_error();
        let mut del = Command::new(bin);
        base(&mut del);
        del.args(["delete", &id]);
        env.run_tool(del, CMD_TIMEOUT).ok();
        let mut del = Command::new(bin);
        base(&mut del);
        del.args(["delete", &id]);
        let del_code = env.run_tool(del, CMD_TIMEOUT).code();
        let del_msg = last_error();
        let mut force = Command::new(bin);
        base(&mut force);
        force.args(["delete", "--force", &id]);
        let force_code = env.run_tool(force, CMD_TIMEOUT).code();
        (kill_code, kill_msg, del_code, del_msg, force_code)
    };
    let ut = messages(&under_test, "ut");
    let reference = messages(&runc, "ref");
    for (who, m) in [("under test", &ut), ("runc", &reference)] {
        assert_ne!(m.0, 0, "{who}: kill of a stopped container succeeded");
        assert!(m.1.contains("container not running"), "{who}: kill's log line {:?} does not say \"container not running\"", m.1);
        assert_ne!(m.2, 0, "{who}: delete of a missing container succeeded");
        assert!(m.3.contains("does not exist"), "{who}: delete's log line {:?} does not say \"does not exist\"", m.3);
        assert_eq!(m.4, 0, "{who}: delete --force of a missing container failed (the shim's cleanup runs it)");
    }
    for tag in ["ut", "ref"] {
        let root = env.dir.join(format!("root-{tag}"));
        let left: Vec<_> = fs::read_dir(&root).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "state left in {}: {left:?}", root.display());
    }
    env.assert_clean();
}

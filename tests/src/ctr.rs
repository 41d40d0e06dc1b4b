//! A containerd of the test's own, driven with `ctr` in one namespace: what the containerd
//! tests share whichever shim runs their tasks (`containerd_runc_shim.rs`: the runc shim told to
//! run fdbox; `shim.rs`: fdbox's own shim). Each test file wraps a [`Ctr`] in a struct of its own
//! that knows how to name its runtimes in `ctr run`, and derefs to it.
//!
//! FIFOs (`ctr run`, `ctr task exec`) live in the test's dir, not in ctr's default
//! /run/containerd/fifo; containers get their cgroups below the test's [`CgroupSubtree`]. After
//! a failure, dropping the [`Ctr`] kills and deletes what is left, then stops containerd.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::clients::{busybox_oci_image, CgroupSubtree, ContainerdDaemon};
use crate::{wait_until, Env, Output};

/// How long a `ctr` command may take.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Ctr<'e> {
    pub env: &'e Env,
    /// containerd's dir (root, state, sockets, FIFOs) in the test's dir.
    pub base: PathBuf,
    pub daemon: ContainerdDaemon<'e>,
    /// The cgroups of the test's containers (`ctr run --cgroup <path>/<id>`).
    pub cgroup: CgroupSubtree,
    /// The containerd namespace of every command.
    pub ns: &'static str,
}

impl<'e> Ctr<'e> {
    /// Start containerd (the CRI plugin off) with `envs` added to its environment, and import
    /// the busybox image `image` built offline. `None` after a visible skip when containerd is
    /// not installed (outside CI).
    pub fn start(env: &'e Env, cgroup_tag: &str, ns: &'static str, image: &str, envs: &[(&str, &OsStr)]) -> Option<Self> {
        let base = env.subdir("c");
        let daemon = ContainerdDaemon::start(env, base.clone(), false, "", envs)?;
        let c = Ctr { env, cgroup: CgroupSubtree::new(&env.id(cgroup_tag)), base, daemon, ns };
        let tarball = busybox_oci_image(&c.base, image).expect("building the OCI image tarball");
        c.ctr_cmd(&["image", "import", tarball.to_str().expect("utf-8 path")]).ok();
        let images = c.ctr_cmd(&["image", "ls", "-q"]).ok();
        assert!(images.stdout.lines().any(|l| l == image), "the imported image is not listed: {images}");
        Some(c)
    }

    /// Where ctr makes the tasks' FIFOs.
    pub fn fifo_dir(&self) -> PathBuf {
        self.base.join("fifo")
    }

    /// `ctr <args>` in the test's namespace, `task exec` with its FIFOs in the test's dir.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.daemon.ctr(self.ns);
        if args.starts_with(&["task", "exec"]) {
            cmd.args(&args[..2]).arg("--fifo-dir").arg(self.fifo_dir()).args(&args[2..]);
        } else {
            cmd.args(args);
        }
        cmd
    }

    #[track_caller]
    pub fn ctr_cmd(&self, args: &[&str]) -> Output {
        self.env.run_tool(self.command(args), CMD_TIMEOUT)
    }

    /// `ctr run` with FIFOs in the test's dir and the container's cgroup below the test's
    /// subtree: `runtime` (how the caller names its runtime: `--runtime …`, `--runc-binary …`)
    /// and `opts` go before the image, `args` after the container id.
    pub fn run_args(&self, runtime: &[String], image: &str, opts: &[&str], id: &str, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec!["run".into()];
        v.extend(runtime.iter().cloned());
        v.extend([
            "--fifo-dir".into(),
            self.fifo_dir().to_string_lossy().into_owned(),
            "--cgroup".into(),
            format!("{}/{id}", self.cgroup.path),
        ]);
        v.extend(opts.iter().map(|s| s.to_string()));
        v.push(image.into());
        v.push(id.into());
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    /// A ctr command on a terminal of its own (util-linux `script`) sized 30x100. ctr can lose
    /// the last output of a terminal task that exits at once (with runc as with fdbox: it stops
    /// copying when the task exits), so the tasks run this way linger a moment before they exit.
    #[track_caller]
    pub fn on_terminal(&self, args: &[String]) -> Output {
        let cmd = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut words = vec![shell_quote(&cmd.get_program().to_string_lossy())];
        words.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
        let mut script = Command::new("script");
        script.args(["-qec", &format!("stty rows 30 cols 100; {}", words.join(" ")), "/dev/null"]);
        let mut out = self.env.run_tool(script, CMD_TIMEOUT);
        out.stdout = out.stdout.replace(['\r', '\0'], "");
        out
    }

    /// `ctr task ls` for `id`: (pid, status).
    pub fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.ctr_cmd(&["task", "ls"]).ok();
        out.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|w| w.first() == Some(&id)).and_then(|w| {
            Some((w.get(1)?.parse().ok()?, w.get(2)?.to_string()))
        })
    }

    /// The status column of `ctr task ls` for `id` ("" if it is not listed).
    pub fn task_status(&self, id: &str) -> String {
        self.task(id).map(|t| t.1).unwrap_or_default()
    }

    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.task_status(id);
            if s == want || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything of the test gone: no container, no task, no shim, no runtime state in
    /// `state_roots`, no mount, no cgroup.
    #[track_caller]
    pub fn assert_clean(&self, state_roots: &[PathBuf]) {
        let out = self.ctr_cmd(&["container", "ls", "-q"]).ok();
        assert!(out.stdout.trim().is_empty(), "containers left in containerd:\n{}", out.stdout);
        for root in state_roots {
            let left: Vec<_> = fs::read_dir(root).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
            assert!(left.is_empty(), "runtime state left in {}: {left:?}", root.display());
        }
        let daemon_pid = self.daemon.pid();
        wait_until(Duration::from_secs(10), "the shims and the containers to be gone", || {
            let shims: Vec<i32> = self.env.pids_mentioning_dir().into_iter().filter(|p| *p != daemon_pid).collect();
            (shims.is_empty() && self.cgroup.pids().is_empty()).then_some(())
        });
        let stray: Vec<i32> = self.env.marked_pids().into_iter().filter(|p| *p != daemon_pid).collect();
        assert!(stray.is_empty(), "processes left: {stray:?}");
        self.env.assert_no_mounts();
        let left = self.cgroup.remove();
        assert!(left.is_empty(), "cgroups that could not be removed: {left:?}");
    }

    /// Stop containerd (SIGTERM to its pid, which this test started) and wait for it.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        // After a failure: take down what the test left, then containerd (whose own guard
        // stops it).
        if self.daemon.is_running() {
            let out = self.ctr_cmd(&["task", "ls", "-q"]);
            for id in out.stdout.split_whitespace() {
                let _ = self.ctr_cmd(&["task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.wait_status(id, "STOPPED");
                let _ = self.ctr_cmd(&["task", "delete", "-f", id]);
            }
            let out = self.ctr_cmd(&["container", "ls", "-q"]);
            for id in out.stdout.split_whitespace() {
                let _ = self.ctr_cmd(&["container", "delete", id]);
            }
        }
    }
}

/// `s` quoted for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a user sees of a command: its exit code and its output.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Seen {
    pub code: i32,
    pub stdout: String,
}

pub fn seen(out: &Output) -> Seen {
    Seen { code: out.code(), stdout: out.stdout.trim().to_string() }
}

/// A file's text ("" while it does not exist).
pub fn read_file(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

#[track_caller]
pub fn wait_file_contains(p: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = read_file(p);
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{} never contained {needle:?}: {text:?}", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

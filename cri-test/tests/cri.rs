//! Kubernetes through CRI (issue 11): fdbox as a RuntimeClass handler of containerd's CRI
//! plugin, driven with the kubelet's calls over the CRI gRPC API.
//!
//! Each test starts its own containerd (Debian's 1.6) with the CRI plugin on, its socket, root
//! and state in the test's dir, and three runtime handlers (as docs/kubernetes.md configures
//! them): `runc` (the stock runc shim and runc, the reference), `fdbox-runc-shim` (the stock runc
//! shim with `BinaryName` = fdbox) and `fdbox` (`io.containerd.fdbox.v2`, fdbox's own shim
//! `containerd-shim-fdbox-v2`, found on containerd's PATH). Each runtime gets its state root in
//! the test's dir, pods their cgroups below `/fdbox-test/<test>/<handler>` (cgroupfs), and their
//! logs in the test's dir. Pods use the host's network (no CNI), so containerd runs with an
//! empty CNI config dir of its own. The pause image is a local stand-in (busybox `sleep`) and
//! the container image the busybox rootfs, both imported into the `k8s.io` namespace.
//!
//! The scenario runs for runc and then for the handler under test, and both must see the same:
//! RunPodSandbox (host network), CreateContainer and StartContainer (two containers, one with a
//! memory limit), ListContainers, ExecSync (stdout, stderr, exit code, the container's env),
//! ContainerStatus after a container exits by itself (exit code, reason) and after StopContainer
//! (its stop signal trapped), the logs in the CRI log format at the CRI log path,
//! RemoveContainer, StopPodSandbox, RemovePodSandbox; then no shim, no container process, no
//! mount, no cgroup and no runtime state may be left. Each handler's result is printed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fdbox_cri_test::api::{self, ContainerState, NamespaceMode, PodSandboxState};
use fdbox_cri_test::CriClient;
use fdbox_tests::clients::{busybox_oci_images, require_tool, runtimes_under_test, CgroupSubtree, ContainerdDaemon};
use fdbox_tests::*;

const PAUSE_IMAGE: &str = "localhost/fdbox-test-pause:1.0";
const IMAGE: &str = "localhost/fdbox-test-busybox:latest";
/// The containerd namespace of the CRI plugin.
const K8S_NS: &str = "k8s.io";
const FDBOX_SHIM: &str = "containerd-shim-fdbox-v2";
const RUNC_SHIM: &str = "containerd-shim-runc-v2";
/// How long the test waits for a state the CRI reports.
const WAIT: Duration = Duration::from_secs(30);
/// How long a CRI call may take (a pod's whole life takes about a second here).
const CALL: Duration = Duration::from_secs(60);
/// How long a CRI call may take while a failed test takes its pod down.
const TEARDOWN_CALL: Duration = Duration::from_secs(5);

/// A runtime handler of the CRI config.
#[derive(Clone)]
struct Handler {
    name: &'static str,
    runtime_type: &'static str,
    /// The file name of the shim containerd starts for it.
    shim: &'static str,
    /// The OCI runtime the shim runs.
    bin: PathBuf,
    /// The runtime's state root (the shim appends the containerd namespace).
    root: PathBuf,
}

/// What one run of the scenario saw, step by step: compared between handlers.
type Seen = Vec<(&'static str, String)>;

struct Cri<'e> {
    env: &'e Env,
    daemon: ContainerdDaemon<'e>,
    client: CriClient,
    cgroup: CgroupSubtree,
    handlers: Vec<Handler>,
    logs: PathBuf,
}

/// A line straight to stderr, so that libtest does not capture it.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The fdbox shim binary: `FDBOX_SHIM_BIN`, else next to fdbox in the target dir; `None` after
/// a visible skip line when it cannot be used.
fn fdbox_shim() -> Option<PathBuf> {
    if is_runc() {
        skip("CRI handler fdbox: FDBOX_TEST_RUNTIME=runc, and the fdbox shim drives only fdbox");
        return None;
    }
    let shim = match std::env::var_os("FDBOX_SHIM_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => runtime().bin.parent().map(|d| d.join(FDBOX_SHIM)).unwrap_or_default(),
    };
    if shim.is_file() {
        return Some(shim);
    }
    let why = format!("CRI handler fdbox: {} is not built (`cargo build -p fdbox-shim`)", shim.display());
    // `make test` builds the shim whenever the workspace has it.
    assert!(!(in_ci() && workspace_dir().join("shim/Cargo.toml").is_file()), "{why}");
    skip(&why);
    None
}

impl<'e> Cri<'e> {
    fn start(env: &'e Env, shim: Option<&Path>) -> Option<Self> {
        require_tool(RUNC_SHIM, "containerd")?;
        let (under_test, runc) = runtimes_under_test()?;
        let base = env.subdir("c");
        let logs = env.subdir("logs");
        let handlers = vec![
            Handler { name: "runc", runtime_type: "io.containerd.runc.v2", shim: RUNC_SHIM, bin: runc, root: base.join("rt-runc") },
            Handler {
                name: "fdbox-runc-shim",
                runtime_type: "io.containerd.runc.v2",
                shim: RUNC_SHIM,
                bin: under_test.clone(),
                root: base.join("rt-fdbox-runc-shim"),
            },
            Handler { name: "fdbox", runtime_type: "io.containerd.fdbox.v2", shim: FDBOX_SHIM, bin: under_test.clone(), root: base.join("rt-fdbox") },
        ];
        // containerd finds a shim by its name on its PATH: a dir with only the fdbox shim in it
        // first. The fdbox shim takes fdbox and its state root from its environment (a
        // non-runc runtime_type gets no runc options from CRI).
        let bin_dir = env.subdir("shim-bin");
        if let Some(shim) = shim {
            std::os::unix::fs::symlink(shim, bin_dir.join(FDBOX_SHIM)).expect("symlink the fdbox shim");
        }
        let path = std::env::join_paths(std::iter::once(bin_dir.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())))
            .expect("PATH for containerd");
        let fdbox_root = handlers[2].root.clone();
        let envs = [("PATH", path.as_os_str()), ("FDBOX_SHIM_FDBOX", under_test.as_os_str()), ("FDBOX_SHIM_ROOT", fdbox_root.as_os_str())];
        let daemon = ContainerdDaemon::start(env, base.clone(), true, &cri_config(&base, &handlers), &envs)?;

        let mut client = CriClient::connect(&daemon.socket).unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", daemon.log()));
        client.set_timeout(CALL);
        // The CRI plugin answers once it has initialized.
        let deadline = Instant::now() + WAIT;
        loop {
            match client.status(false) {
                Ok(s) if s.status.iter().flat_map(|s| &s.conditions).any(|c| c.r#type == "RuntimeReady" && c.status) => break,
                r => assert!(Instant::now() < deadline, "the CRI plugin is not ready: {r:?}\ncontainerd's log:\n{}", daemon.log()),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let version = client.version().expect("CRI Version");
        assert_eq!(version.runtime_name, "containerd");
        assert_eq!(version.runtime_api_version, "v1");

        let tarball = busybox_oci_images(&base, &[(PAUSE_IMAGE, &["sleep", "1000000000"]), (IMAGE, &["sh"])]).expect("building the OCI images");
        daemon.ctr_cmd(K8S_NS, &["image", "import", &tarball.to_string_lossy()]).ok();
        for image in [PAUSE_IMAGE, IMAGE] {
            // The CRI plugin learns of imported images from containerd's events.
            wait_until(WAIT, &format!("CRI's ImageStatus to list {image}"), || client.image_status(image).ok().flatten());
        }
        let cgroup = CgroupSubtree::new(&env.id("cri"));
        Some(Cri { env, daemon, client, cgroup, handlers, logs })
    }

    fn handler(&self, name: &str) -> &Handler {
        self.handlers.iter().find(|h| h.name == name).expect("a configured handler")
    }

    fn pod_config(&self, h: &Handler) -> api::PodSandboxConfig {
        let ns = api::NamespaceOption { network: NamespaceMode::Node as i32, pid: NamespaceMode::Container as i32, ipc: NamespaceMode::Pod as i32, ..Default::default() };
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata { name: format!("pod-{}", h.name), uid: self.env.id(h.name), namespace: "fdbox-test".into(), attempt: 0 }),
            // As the kubelet: no hostname for a pod on the host's network (it has the host's
            // UTS namespace, whose name the runtime must not change).
            hostname: String::new(),
            log_directory: self.logs.join(h.name).to_string_lossy().into_owned(),
            linux: Some(api::LinuxPodSandboxConfig {
                cgroup_parent: self.pod_cgroup(h),
                security_context: Some(api::LinuxSandboxSecurityContext { namespace_options: Some(ns), privileged: false }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod_cgroup(&self, h: &Handler) -> String {
        format!("{}/{}", self.cgroup.path, h.name)
    }

    fn container_config(&self, name: &str, script: &str, memory_limit: i64) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(api::ImageSpec { image: IMAGE.into() }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            envs: vec![
                api::KeyValue { key: "FOO".into(), value: "bar".into() },
                // So that a container process left behind is seen (Env::marked_pids).
                api::KeyValue { key: MARK_VAR.into(), value: self.env.mark().into() },
            ],
            log_path: format!("{name}.log"),
            linux: Some(api::LinuxContainerConfig {
                resources: Some(api::LinuxContainerResources { memory_limit_in_bytes: memory_limit, ..Default::default() }),
                security_context: None,
            }),
            ..Default::default()
        }
    }

    /// The status of a container, waiting until it is in `want`.
    fn wait_container(&mut self, id: &str, want: ContainerState) -> Result<api::ContainerStatus, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let st = self.client.container_status(id, false).map_err(|e| e.to_string())?.status.unwrap_or_default();
            if st.state == want as i32 {
                return Ok(st);
            }
            if Instant::now() > deadline {
                return Err(format!("container {id} never reached {want:?}: {st:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pid in containerd's verbose info of a container or sandbox.
    fn info_pid(info: &std::collections::HashMap<String, String>) -> i32 {
        let v: Value = serde_json::from_str(info.get("info").map(String::as_str).unwrap_or("")).unwrap_or(Value::Null);
        v["pid"].as_i64().unwrap_or(0) as i32
    }

    /// The shim processes of this test's containerd (their command lines name its socket), by
    /// their executable's file name.
    fn shims(&self) -> Vec<String> {
        let daemon = self.daemon.pid();
        self.env
            .pids_mentioning_dir()
            .into_iter()
            .filter(|p| *p != daemon)
            .map(|p| readlink(format!("/proc/{p}/exe")))
            .map(|exe| Path::new(&exe).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(exe))
            .filter(|name| name.starts_with("containerd-shim"))
            .collect()
    }

    /// Any process of this test but containerd: shims, their helpers, containers.
    fn processes(&self) -> Vec<i32> {
        let daemon = self.daemon.pid();
        let mut pids = self.env.pids_mentioning_dir();
        pids.extend(self.env.marked_pids());
        pids.extend(self.cgroup.pids());
        pids.sort();
        pids.dedup();
        pids.retain(|p| *p != daemon);
        pids
    }

    /// `<runtime> --root <its state root> state <id>`: the container's status, as the runtime
    /// that the handler runs sees it.
    fn runtime_status(&self, h: &Handler, id: &str) -> String {
        let mut cmd = std::process::Command::new(&h.bin);
        cmd.arg("--root").arg(h.root.join(K8S_NS)).args(["state", id]);
        let out = self.env.run_tool(cmd, WAIT);
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        v["status"].as_str().map(str::to_string).unwrap_or_else(|| format!("(state failed: {})", out.stderr.trim()))
    }

    /// The whole pod's life through CRI with handler `h`: what it saw, or the first error.
    fn pod_lifecycle(&mut self, h: &Handler, seen: &mut Seen, problems: &mut Vec<String>) -> Result<(), String> {
        let cri = |step: &'static str| move |e: fdbox_cri_test::Error| format!("{step}: {e}");
        let pod_config = self.pod_config(h);
        let pod = self.client.run_pod_sandbox(pod_config.clone(), h.name).map_err(cri("RunPodSandbox"))?;
        let pod_result = self.in_pod(h, &pod, pod_config, seen, problems);
        if pod_result.is_err() {
            self.teardown(&pod);
        }
        pod_result?;

        // After RemovePodSandbox: nothing of the pod may be left on the host.
        let deadline = Instant::now() + Duration::from_secs(10);
        let parent = self.pod_cgroup(h);
        let left = loop {
            let shims = self.shims();
            let procs = self.processes();
            let cg_pids = self.cgroup.pids();
            let cgroups = child_cgroups(&parent);
            let mounts = self.env.leaked_mounts();
            let state: Vec<String> = fs::read_dir(h.root.join(K8S_NS)).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
            let all_gone = shims.is_empty() && procs.is_empty() && cg_pids.is_empty() && cgroups.is_empty() && mounts.is_empty() && state.is_empty();
            if all_gone || Instant::now() > deadline {
                break format!("shims {shims:?}, processes {procs:?}, pids in cgroups {cg_pids:?}, cgroups {cgroups:?}, mounts {mounts:?}, runtime state {state:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        seen.push(("left on the host", left));
        Ok(())
    }

    fn in_pod(&mut self, h: &Handler, pod: &str, pod_config: api::PodSandboxConfig, seen: &mut Seen, problems: &mut Vec<String>) -> Result<(), String> {
        let cri = |step: &'static str| move |e: fdbox_cri_test::Error| format!("{step}: {e}");
        let st = self.client.pod_sandbox_status(pod, true).map_err(cri("PodSandboxStatus"))?;
        let status = st.status.clone().unwrap_or_default();
        let network = status.linux.and_then(|l| l.namespaces).and_then(|n| n.options).map(|o| o.network).unwrap_or(-1);
        seen.push(("PodSandboxStatus", format!("{:?}, network {:?}", PodSandboxState::try_from(status.state), NamespaceMode::try_from(network))));
        let info: Value = serde_json::from_str(st.info.get("info").map(String::as_str).unwrap_or("")).unwrap_or(Value::Null);
        if info["runtimeHandler"] != h.name || info["runtimeType"] != h.runtime_type {
            problems.push(format!("the sandbox's runtime is {} / {}, not {} / {}", info["runtimeHandler"], info["runtimeType"], h.name, h.runtime_type));
        }
        let sandbox_pid = Self::info_pid(&st.info);
        seen.push(("sandbox's cgroup", in_cgroup(sandbox_pid, &format!("{}/{pod}", self.pod_cgroup(h))).to_string()));

        let worker_script = "echo worker-out; echo worker-err >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo worker-done; exit 7";
        let sleeper_script = "trap 'echo got-term; exit 9' TERM; echo sleeper-up; while :; do sleep 0.05; done";
        let worker_cfg = self.container_config("worker", worker_script, 64 << 20);
        let worker = self.client.create_container(pod, worker_cfg, pod_config.clone()).map_err(cri("CreateContainer worker"))?;
        self.client.start_container(&worker).map_err(cri("StartContainer worker"))?;
        let sleeper_cfg = self.container_config("sleeper", sleeper_script, 0);
        let sleeper = self.client.create_container(pod, sleeper_cfg, pod_config).map_err(cri("CreateContainer sleeper"))?;
        self.client.start_container(&sleeper).map_err(cri("StartContainer sleeper"))?;

        let mut listed: Vec<String> = self
            .client
            .list_containers(Some(pod))
            .map_err(cri("ListContainers"))?
            .iter()
            .map(|c| format!("{} {:?}", c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(""), ContainerState::try_from(c.state)))
            .collect();
        listed.sort();
        seen.push(("ListContainers", listed.join(", ")));
        seen.push(("the runtime's state", format!("{} {}", self.runtime_status(h, &worker), self.runtime_status(h, &sleeper))));
        let mut shims = self.shims();
        shims.sort();
        if shims.iter().any(|s| s != h.shim) {
            problems.push(format!("shims running: {shims:?}, expected only {}", h.shim));
        }
        seen.push(("shim processes for the pod", shims.len().to_string()));

        let wst = self.client.container_status(&worker, true).map_err(cri("ContainerStatus worker"))?;
        let worker_pid = Self::info_pid(&wst.info);
        let cg = format!("{}/{worker}", self.pod_cgroup(h));
        seen.push(("worker's cgroup", format!("{}, memory limit {}", in_cgroup(worker_pid, &cg), memory_limit(worker_pid))));

        let ex = self.client.exec_sync(&worker, &["sh", "-c", "echo exec-out; echo exec-err >&2; id -u; pwd; echo $FOO; touch /tmp/go; exit 5"], 30).map_err(cri("ExecSync"))?;
        seen.push(("ExecSync", exec_text(&ex)));
        let missing = self.client.exec_sync(&sleeper, &["/no/such/binary"], 30);
        seen.push(("ExecSync of a missing binary", match missing {
            Ok(r) => format!("exit code {}", r.exit_code),
            Err(e) => format!("error {:?}", e.code()),
        }));
        // The exec made /tmp/go: the worker ends by itself.
        let ws = self.wait_container(&worker, ContainerState::ContainerExited)?;
        seen.push(("worker exited", exit_text(&ws)));

        let t = Instant::now();
        self.client.stop_container(&sleeper, 10).map_err(cri("StopContainer sleeper"))?;
        let stop_took = t.elapsed();
        let ss = self.client.container_status(&sleeper, false).map_err(cri("ContainerStatus sleeper"))?.status.unwrap_or_default();
        seen.push(("StopContainer (SIGTERM trapped)", format!("{}, before the timeout: {}", exit_text(&ss), stop_took < Duration::from_secs(8))));
        // The kubelet stops a container that has already exited, too.
        self.client.stop_container(&worker, 10).map_err(cri("StopContainer of the exited worker"))?;

        let log_dir = Path::new(&self.pod_config(h).log_directory).to_path_buf();
        seen.push(("worker's log", cri_log(&log_dir.join("worker.log"), ws.log_path.as_str())));
        seen.push(("sleeper's log", cri_log(&log_dir.join("sleeper.log"), ss.log_path.as_str())));

        self.client.remove_container(&worker).map_err(cri("RemoveContainer worker"))?;
        self.client.remove_container(&sleeper).map_err(cri("RemoveContainer sleeper"))?;
        let left = self.client.list_containers(Some(pod)).map_err(cri("ListContainers"))?.len();
        seen.push(("containers after RemoveContainer", left.to_string()));

        self.client.stop_pod_sandbox(pod).map_err(cri("StopPodSandbox"))?;
        let st = self.client.pod_sandbox_status(pod, false).map_err(cri("PodSandboxStatus"))?;
        seen.push(("after StopPodSandbox", format!("{:?}", PodSandboxState::try_from(st.status.unwrap_or_default().state))));
        self.client.remove_pod_sandbox(pod).map_err(cri("RemovePodSandbox"))?;
        let gone = self.client.pod_sandbox_status(pod, false).err().and_then(|e| e.code());
        let listed = self.client.list_pod_sandbox().map_err(cri("ListPodSandbox"))?.iter().any(|p| p.id == pod);
        seen.push(("after RemovePodSandbox", format!("status {gone:?}, listed {listed}")));
        Ok(())
    }

    /// After a failure: stop and remove what is left of the pod, as the kubelet would, each
    /// call given a few seconds only (what is left then is reaped on drop).
    fn teardown(&mut self, pod: &str) {
        self.client.set_timeout(TEARDOWN_CALL);
        for c in self.client.list_containers(Some(pod)).unwrap_or_default() {
            let _ = self.client.stop_container(&c.id, 0);
            let _ = self.client.remove_container(&c.id);
        }
        let _ = self.client.stop_pod_sandbox(pod);
        let _ = self.client.remove_pod_sandbox(pod);
        self.client.set_timeout(CALL);
    }
}

impl Drop for Cri<'_> {
    fn drop(&mut self) {
        // After a failure: take the pods down as the kubelet would, without waiting long.
        if self.daemon.is_running() {
            for pod in self.client.list_pod_sandbox().unwrap_or_default() {
                self.teardown(&pod.id);
            }
        }
        self.daemon.stop();
        self.reap();
    }
}

impl Cri<'_> {
    /// Whatever is still left once containerd is stopped (after a failure, or a shim that did
    /// not clean up): all of it was started for this test (by its containerd, in its cgroups, with
    /// its mark) or mounted below its dir, so it is taken down here, and said so.
    fn reap(&self) {
        let bundles = self.daemon.base.join("state/io.containerd.runtime.v2.task").join(K8S_NS);
        let sockets: Vec<String> = fs::read_dir(&bundles)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| fs::read_to_string(e.path().join("address")).ok())
            .filter_map(|a| a.trim().strip_prefix("unix://").map(str::to_string))
            .filter(|p| p.starts_with("/run/containerd/s/"))
            .collect();
        let mut pids = self.cgroup.pids();
        pids.extend(self.env.pids_mentioning_dir());
        pids.extend(self.env.marked_pids());
        pids.sort();
        pids.dedup();
        for pid in &pids {
            if let Some(p) = rustix::process::Pid::from_raw(*pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = format!("{}/", self.env.dir.display());
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        // Deepest first.
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            let _ = rustix::mount::unmount(m.as_str(), rustix::mount::UnmountFlags::DETACH);
        }
        let sockets: Vec<&String> = sockets.iter().filter(|s| fs::remove_file(s).is_ok()).collect();
        if !pids.is_empty() || !mounts.is_empty() || !sockets.is_empty() {
            report(&format!("warning: taken down after the test: processes {pids:?}, mounts {mounts:?}, shim sockets {sockets:?}"));
        }
    }
}

/// The CRI plugin's section of containerd's config: the handlers, cgroupfs, no CNI, and
/// `restrict_oom_score_adj` (no CAP_SYS_RESOURCE here).
fn cri_config(base: &Path, handlers: &[Handler]) -> String {
    let b = base.display();
    let mut s = format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_cgroup = false
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{b}/cni/bin"
    conf_dir = "{b}/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
"#
    );
    for h in handlers {
        let section = format!(r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{}]"#, h.name);
        s += &format!("    {section}\n      runtime_type = \"{}\"\n", h.runtime_type);
        if h.runtime_type == "io.containerd.runc.v2" {
            s += &format!(
                "      [{}.options]\n        BinaryName = \"{}\"\n        Root = \"{}\"\n        SystemdCgroup = false\n",
                &section[1..section.len() - 1],
                h.bin.display(),
                h.root.display()
            );
        }
    }
    s
}

/// Whether process `pid` is in cgroup `path` (below a hierarchy's root) in some hierarchy.
fn in_cgroup(pid: i32, path: &str) -> bool {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    pid > 0 && text.lines().any(|l| l.splitn(3, ':').nth(2) == Some(path))
}

/// The memory limit of process `pid`'s cgroup, as the host's cgroupfs shows it.
fn memory_limit(pid: i32) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(3, ':').collect();
        if f.len() == 3 && f[1].split(',').any(|c| c == "memory") {
            return fs::read_to_string(format!("/sys/fs/cgroup/memory{}/memory.limit_in_bytes", f[2])).unwrap_or_default().trim().to_string();
        }
    }
    // cgroup v2 only.
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("");
    fs::read_to_string(format!("/sys/fs/cgroup{v2}/memory.max")).unwrap_or_default().trim().to_string()
}

/// The cgroups below `path` (relative to each hierarchy's root), in any hierarchy.
fn child_cgroups(path: &str) -> Vec<String> {
    let mut found = vec![];
    for mp in cgroup_mount_points() {
        let dir = mp.join(path.trim_start_matches('/'));
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().filter_map(|e| e.ok()) {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    found.push(e.path().display().to_string());
                    stack.push(e.path());
                }
            }
        }
    }
    found
}

fn exec_text(r: &api::ExecSyncResponse) -> String {
    format!("exit code {}, stdout {:?}, stderr {:?}", r.exit_code, String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr))
}

fn exit_text(s: &api::ContainerStatus) -> String {
    let times = s.created_at > 0 && s.started_at >= s.created_at && s.finished_at >= s.started_at;
    format!("{:?}, exit code {}, reason {:?}, times in order: {times}", ContainerState::try_from(s.state), s.exit_code, s.reason)
}

/// A container's log in the CRI log format (`<RFC 3339 time> <stream> <P|F> <text>` per line):
/// its lines without the time, sorted (stdout and stderr are copied independently), or what is
/// wrong with it. `status_path` is the log path ContainerStatus reported.
fn cri_log(path: &Path, status_path: &str) -> String {
    if Path::new(status_path) != path {
        return format!("ContainerStatus's log path {status_path:?} is not {}", path.display());
    }
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return format!("reading {}: {e}", path.display()),
    };
    let mut lines = vec![];
    for l in text.lines() {
        let f: Vec<&str> = l.splitn(4, ' ').collect();
        let ok = f.len() == 4 && is_rfc3339(f[0]) && matches!(f[1], "stdout" | "stderr") && matches!(f[2], "P" | "F");
        if !ok {
            return format!("not a CRI log line: {l:?}");
        }
        lines.push(f[1..].join(" "));
    }
    lines.sort();
    lines.join(" | ")
}

/// What runc's run must see, and so every handler's.
fn expected() -> Seen {
    vec![
        ("PodSandboxStatus", "Ok(SandboxReady), network Ok(Node)".into()),
        ("sandbox's cgroup", "true".into()),
        ("ListContainers", "sleeper Ok(ContainerRunning), worker Ok(ContainerRunning)".into()),
        ("the runtime's state", "running running".into()),
        ("shim processes for the pod", "1".into()),
        ("worker's cgroup", format!("true, memory limit {}", 64 << 20)),
        ("ExecSync", r#"exit code 5, stdout "exec-out\n0\n/\nbar\n", stderr "exec-err\n""#.into()),
        ("ExecSync of a missing binary", "error Some(Unknown)".into()),
        ("worker exited", "Ok(ContainerExited), exit code 7, reason \"Error\", times in order: true".into()),
        ("StopContainer (SIGTERM trapped)", "Ok(ContainerExited), exit code 9, reason \"Error\", times in order: true, before the timeout: true".into()),
        ("worker's log", "stderr F worker-err | stdout F worker-done | stdout F worker-out".into()),
        ("sleeper's log", "stdout F got-term | stdout F sleeper-up".into()),
        ("containers after RemoveContainer", "0".into()),
        ("after StopPodSandbox", "Ok(SandboxNotready)".into()),
        ("after RemovePodSandbox", "status Some(NotFound), listed false".into()),
        ("left on the host", "shims [], processes [], pids in cgroups [], cgroups [], mounts [], runtime state []".into()),
    ]
}

/// The differences between what a run saw and what it should have; steps it did not reach
/// count only if it did not stop early (with an error of its own).
fn differences(seen: &Seen, want: &Seen, stopped_early: bool) -> Vec<String> {
    let mut d = vec![];
    for (k, v) in want {
        match seen.iter().find(|(s, _)| s == k) {
            Some((_, got)) if got == v => {}
            Some((_, got)) => d.push(format!("{k}: {got}\n      expected: {v}")),
            None if stopped_early => {}
            None => d.push(format!("{k}: not reached")),
        }
    }
    d
}

/// The scenario with runc (the reference) and then with `handler`, in one containerd;
/// each handler's result is printed, and the test fails unless both pass.
fn run_with_reference(test: &str, handler: &str) {
    let shim = if handler == "fdbox" {
        match fdbox_shim() {
            Some(s) => Some(s),
            None => return,
        }
    } else {
        None
    };
    let Some(env) = Env::new(test) else { return };
    let Some(mut cri) = Cri::start(&env, shim.as_deref()) else { return };
    let mut failures = vec![];
    for name in ["runc", handler] {
        let h = cri.handler(name).clone();
        let t = Instant::now();
        let mut problems = vec![];
        let mut seen = vec![];
        let result = cri.pod_lifecycle(&h, &mut seen, &mut problems);
        let mut wrong = differences(&seen, &expected(), result.is_err());
        if let Err(e) = result {
            wrong.push(format!("failed: {e}"));
        }
        wrong.extend(problems);
        let took = t.elapsed().as_secs_f64();
        // The details, for `--nocapture` (make cri-test).
        for (step, what) in &seen {
            eprintln!("  {name}: {step}: {what}");
        }
        if wrong.is_empty() {
            report(&format!("CRI handler {name}: passed ({took:.1}s): RunPodSandbox, CreateContainer, StartContainer, ExecSync, ContainerStatus, logs, StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox, nothing left"));
        } else {
            report(&format!("CRI handler {name}: FAILED ({took:.1}s):\n    {}", wrong.join("\n    ")));
            failures.push(format!("{name}: {}", wrong.join("; ")));
        }
    }
    if !failures.is_empty() {
        let log = cri.daemon.log();
        let errors: Vec<&str> = log.lines().filter(|l| l.contains("level=error") || l.contains("level=warn")).collect();
        // The first ones: what went wrong first, not the retries after it.
        let tail = &errors[..errors.len().min(12)];
        drop(cri);
        panic!("CRI scenario failed for {}\ncontainerd's errors and warnings:\n{}", failures.join("\n"), tail.join("\n"));
    }
    cri.daemon.stop();
    let left = cri.cgroup.remove();
    assert!(left.is_empty(), "cgroups that could not be removed: {left:?}");
    drop(cri);
    env.assert_no_mounts();
}

/// Handler `fdbox`: containerd's CRI plugin runs the pod through fdbox's own shim.
#[test]
fn cri_handler_fdbox_shim() {
    run_with_reference("cri-fdbox", "fdbox");
}

/// Handler `fdbox-runc-shim`: the stock runc shim with `BinaryName` = fdbox.
#[test]
fn cri_handler_runc_shim_with_fdbox() {
    run_with_reference("cri-runc-shim", "fdbox-runc-shim");
}

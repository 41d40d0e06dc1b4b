//! The task API of `containerd-shim-fdbox-v2` called directly over ttrpc, as containerd calls
//! it, for what `ctr` cannot reach: Update, Connect, Checkpoint, CloseIO, Shutdown, error
//! codes, and the rootfs given as a bind mount. The shim is started with its `start` action;
//! the events it publishes go to an events service of this test (a ttrpc server on the
//! TTRPC_ADDRESS the shim is given), which records them in order. Root only (it runs a real
//! container with the `fdbox` binary); everything is removed afterwards, the cgroups too.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use containerd_shim_protos::events::task::{TaskExit, TaskOOM};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::shim::shim as api;
use containerd_shim_protos::ttrpc::{self, context, Code};
use containerd_shim_protos::types::empty::Empty;
use containerd_shim_protos::types::mount::Mount;
use containerd_shim_protos::types::task::Status;
use containerd_shim_protos::{Events, TaskClient};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-fdbox-v2");
const NS: &str = "fdbox-shim-api";

fn skip(reason: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}

fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The events the shim forwards, as "topic" or "topic id" lines.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl Events for Recorder {
    fn forward(&self, _ctx: &ttrpc::TtrpcContext, req: ForwardRequest) -> ttrpc::Result<Empty> {
        let env = req.envelope;
        let topic = env.topic.clone();
        let any = env.event.clone().unwrap_or_default();
        let line = match topic.as_str() {
            "/tasks/exit" => TaskExit::parse_from_bytes(&any.value).map(|e| format!("{topic} {} {}", e.id, e.exit_status)).unwrap_or(topic),
            "/tasks/oom" => TaskOOM::parse_from_bytes(&any.value).map(|e| format!("{topic} {}", e.container_id)).unwrap_or(topic),
            _ => topic,
        };
        assert_eq!(env.namespace, NS);
        self.seen.lock().unwrap().push(line);
        Ok(Empty::default())
    }
}

fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(60).as_nanos() as i64)
}

fn code_of(e: &ttrpc::Error) -> Option<Code> {
    match e {
        ttrpc::Error::RpcStatus(s) => Some(s.code()),
        _ => None,
    }
}

/// Busybox (static) and a few applets: a rootfs to bind-mount.
fn busybox_rootfs(dir: &Path) -> Option<()> {
    let bb = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.is_file())?;
    fs::create_dir_all(dir.join("bin")).ok()?;
    for d in ["proc", "sys", "dev", "tmp", "etc"] {
        fs::create_dir_all(dir.join(d)).ok()?;
    }
    fs::copy(bb, dir.join("bin/busybox")).ok()?;
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).ok()?;
    for a in ["sh", "sleep", "cat", "echo", "true"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).ok()?;
    }
    Some(())
}

fn cgroup_mount_points() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

struct Cleanup {
    dir: PathBuf,
    cgroup_parent: String,
    run_s_existed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for mp in cgroup_mount_points() {
            let parent = mp.join(&self.cgroup_parent);
            if let Ok(rd) = fs::read_dir(&parent) {
                for e in rd.filter_map(|e| e.ok()).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
                    let _ = fs::remove_dir(e.path());
                }
            }
            let _ = fs::remove_dir(&parent);
        }
        if !self.run_s_existed {
            let _ = fs::remove_dir("/run/containerd/s");
            let _ = fs::remove_dir("/run/containerd");
        }
        let mounted = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().contains(self.dir.to_str().unwrap_or("-"));
        if !mounted {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[test]
fn task_api_over_ttrpc() {
    if !rustix::process::geteuid().is_root() {
        assert!(!in_ci(), "the task API test must run as root in CI");
        return skip("not root: the task API test runs a real container");
    }
    let fdbox = match std::env::var_os("FDBOX_BIN").map(PathBuf::from).or_else(|| Some(PathBuf::from(SHIM).with_file_name("fdbox"))) {
        Some(p) if p.is_file() => p,
        _ => {
            assert!(!in_ci(), "the fdbox binary is not built");
            return skip("the fdbox binary is not built (cargo build -p fdbox)");
        }
    };
    let dir = std::env::temp_dir().join(format!("fdbox-shim-api-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let cleanup = Cleanup { dir: dir.clone(), cgroup_parent: format!("fdbox-shim-api-{}", std::process::id()), run_s_existed: Path::new("/run/containerd/s").exists() };
    let src = dir.join("rootfs-src");
    if busybox_rootfs(&src).is_none() {
        assert!(!in_ci(), "busybox-static is not installed");
        return skip("no busybox (apt-get install busybox-static)");
    }

    // The events service the shim publishes to.
    let recorder = Arc::new(Recorder::default());
    let events_sock = dir.join("events.sock");
    let mut events = ttrpc::Server::new()
        .bind(&format!("unix://{}", events_sock.display()))
        .unwrap()
        .register_service(containerd_shim_protos::create_events(recorder.clone()));
    events.start().unwrap();

    // The bundle: fdbox's own spec, the rootfs as a bind mount in the request.
    let id = "api";
    let bundle = dir.join("bundle");
    fs::create_dir_all(&bundle).unwrap();
    let out = Command::new(&fdbox).arg("spec").current_dir(&bundle).output().unwrap();
    assert!(out.status.success(), "fdbox spec: {}", String::from_utf8_lossy(&out.stderr));
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    spec["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    spec["root"] = serde_json::json!({"path": "rootfs", "readonly": true});
    spec["linux"]["cgroupsPath"] = format!("/{}/{id}", cleanup.cgroup_parent).into();
    fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    // containerd gives the shim a FIFO named `log` for its log; a file does here.
    fs::write(bundle.join("log"), "").unwrap();

    // `start`: the shim daemonises and prints its ttrpc address.
    let shim_env = |cmd: &mut Command| {
        cmd.current_dir(&bundle)
            .env("TTRPC_ADDRESS", &events_sock)
            .env("FDBOX_SHIM_FDBOX", &fdbox)
            .env("FDBOX_SHIM_ROOT", dir.join("state"))
            .stdin(Stdio::null());
    };
    let mut start = Command::new(SHIM);
    start.args(["-namespace", NS, "-id", id, "-address"]).arg(dir.join("containerd.sock")).args(["-publish-binary", "/bin/true", "start"]);
    shim_env(&mut start);
    let out = start.output().unwrap();
    assert!(out.status.success(), "shim start: {}", String::from_utf8_lossy(&out.stderr));
    let address = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(address.starts_with("unix:///run/containerd/s/"), "{address:?}");
    let task = TaskClient::new(ttrpc::Client::connect(&address).unwrap());

    let connect = task.connect(ctx(), &api::ConnectRequest { id: id.into(), ..Default::default() }).unwrap();
    let shim_pid = connect.shim_pid as i32;
    assert!(shim_pid > 0);
    assert_eq!(connect.task_pid, 0, "no task yet");

    let log = dir.join("out.log");
    let create = api::CreateTaskRequest {
        id: id.into(),
        bundle: bundle.to_string_lossy().into_owned(),
        rootfs: vec![Mount { type_: "bind".into(), source: src.to_string_lossy().into_owned(), options: vec!["rbind".into(), "ro".into()], ..Default::default() }],
        stdout: format!("file://{}", log.display()),
        stderr: format!("file://{}", log.display()),
        ..Default::default()
    };
    let pid = task.create(ctx(), &create).unwrap().pid;
    let rootfs = bundle.join("rootfs");
    let mountinfo = || fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mountinfo().contains(&format!(" {} ", rootfs.display())), "the rootfs is not mounted at {}", rootfs.display());
    let again = task.create(ctx(), &create).unwrap_err();
    assert_eq!(code_of(&again), Some(Code::ALREADY_EXISTS), "{again:?}");
    assert_eq!(task.start(ctx(), &api::StartRequest { id: id.into(), ..Default::default() }).unwrap().pid, pid);
    let state = task.state(ctx(), &api::StateRequest { id: id.into(), ..Default::default() }).unwrap();
    assert_eq!(state.status.enum_value(), Ok(Status::RUNNING));
    assert_eq!(task.connect(ctx(), &api::ConnectRequest { id: id.into(), ..Default::default() }).unwrap().task_pid, pid);

    // Update, seen in the cgroup metrics of Stats.
    let resources = Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into(),
        value: br#"{"memory":{"limit":67108864}}"#.to_vec(),
        ..Default::default()
    };
    task.update(ctx(), &api::UpdateTaskRequest { id: id.into(), resources: MessageField::some(resources), ..Default::default() }).unwrap();
    let stats = task.stats(ctx(), &api::StatsRequest { id: id.into(), ..Default::default() }).unwrap();
    let any = stats.stats.unwrap();
    let limit = match any.type_url.as_str() {
        "io.containerd.cgroups.v1.Metrics" => containerd_shim_protos::cgroups::metrics::Metrics::parse_from_bytes(&any.value).unwrap().memory.usage.limit,
        "io.containerd.cgroups.v2.Metrics" => containerd_shim_protos::cgroups_v2::metrics::Metrics::parse_from_bytes(&any.value).unwrap().memory.usage_limit,
        other => panic!("metrics of type {other}"),
    };
    assert_eq!(limit, 67108864, "the memory limit after Update");

    // Error codes containerd tells apart.
    let e = task.checkpoint(ctx(), &api::CheckpointTaskRequest { id: id.into(), ..Default::default() }).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::UNIMPLEMENTED), "{e:?}");
    let e = task.kill(ctx(), &api::KillRequest { id: id.into(), exec_id: "nope".into(), signal: 9, ..Default::default() }).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::NOT_FOUND), "{e:?}");
    let e = task.state(ctx(), &api::StateRequest { id: "other".into(), ..Default::default() }).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::NOT_FOUND), "{e:?}");
    let e = task.delete(ctx(), &api::DeleteRequest { id: id.into(), ..Default::default() }).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::FAILED_PRECONDITION), "deleting a running task: {e:?}");

    // An exec whose stdin is closed with CloseIO while the client still holds the FIFO open.
    let fifo = dir.join("e1.stdin");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).unwrap();
    let process = serde_json::json!({"args": ["sh", "-c", "cat; echo exec-done; exit 3"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    let exec = api::ExecProcessRequest {
        id: id.into(),
        exec_id: "e1".into(),
        stdin: fifo.to_string_lossy().into_owned(),
        stdout: format!("file://{}", log.display()),
        spec: MessageField::some(Any { type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(), value: process.to_string().into_bytes(), ..Default::default() }),
        ..Default::default()
    };
    task.exec(ctx(), &exec).unwrap();
    let e = task.exec(ctx(), &exec).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::ALREADY_EXISTS), "{e:?}");
    let exec_pid = task.start(ctx(), &api::StartRequest { id: id.into(), exec_id: "e1".into(), ..Default::default() }).unwrap().pid;
    assert!(exec_pid > 0 && exec_pid != pid);
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(b"through-stdin\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    task.close_io(ctx(), &api::CloseIORequest { id: id.into(), exec_id: "e1".into(), stdin: true, ..Default::default() }).unwrap();
    let waited = task.wait(ctx(), &api::WaitRequest { id: id.into(), exec_id: "e1".into(), ..Default::default() }).unwrap();
    assert_eq!(waited.exit_status, 3);
    drop(writer);
    let deleted = task.delete(ctx(), &api::DeleteRequest { id: id.into(), exec_id: "e1".into(), ..Default::default() }).unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (exec_pid, 3));
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("through-stdin\nexec-done\n"), "the exec's output: {text:?}");

    // A second task in the same shim (as CRI groups a pod's containers), deleted without ever
    // being started: its waiting init is killed and reaped, its rootfs unmounted.
    let bundle2 = dir.join("bundle2");
    fs::create_dir_all(&bundle2).unwrap();
    spec["linux"]["cgroupsPath"] = format!("/{}/api2", cleanup.cgroup_parent).into();
    fs::write(bundle2.join("config.json"), spec.to_string()).unwrap();
    let create2 = api::CreateTaskRequest { id: "api2".into(), bundle: bundle2.to_string_lossy().into_owned(), stdout: String::new(), stderr: String::new(), ..create.clone() };
    let pid2 = task.create(ctx(), &create2).unwrap().pid;
    let state2 = task.state(ctx(), &api::StateRequest { id: "api2".into(), ..Default::default() }).unwrap();
    assert_eq!(state2.status.enum_value(), Ok(Status::CREATED));
    let deleted = task.delete(ctx(), &api::DeleteRequest { id: "api2".into(), ..Default::default() }).unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (pid2, 137));
    assert!(!Path::new(&format!("/proc/{pid2}")).exists(), "the created init {pid2} is still there");
    assert!(!mountinfo().contains(&format!(" {} ", bundle2.join("rootfs").display())), "api2's rootfs is still mounted");

    // The end: kill, wait, delete, shutdown.
    task.kill(ctx(), &api::KillRequest { id: id.into(), signal: 9, ..Default::default() }).unwrap();
    let waited = task.wait(ctx(), &api::WaitRequest { id: id.into(), ..Default::default() }).unwrap();
    assert_eq!(waited.exit_status, 137);
    assert!(waited.exited_at.seconds > 0);
    let e = task.kill(ctx(), &api::KillRequest { id: id.into(), signal: 9, ..Default::default() }).unwrap_err();
    assert_eq!(code_of(&e), Some(Code::NOT_FOUND), "a kill after the exit: {e:?}");
    let deleted = task.delete(ctx(), &api::DeleteRequest { id: id.into(), ..Default::default() }).unwrap();
    assert_eq!((deleted.pid, deleted.exit_status), (pid, 137));
    assert!(!mountinfo().contains(&format!(" {} ", rootfs.display())), "the rootfs is still mounted");
    assert!(!bundle.join("pidfd.sock").exists(), "the hand-off socket outlived its task");
    let left: Vec<_> = fs::read_dir(dir.join("state").join(NS)).map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "fdbox state left: {left:?}");
    let _ = task.shutdown(ctx(), &api::ShutdownRequest { id: id.into(), ..Default::default() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{shim_pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = fs::read_to_string(format!("/proc/{shim_pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z"), "the shim did not exit after Shutdown");
    let socket = address.trim_start_matches("unix://");
    assert!(!Path::new(socket).exists(), "the shim's socket {socket} is left");

    // The events, in containerd's order.
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit e1 3",
            "/tasks/create",
            "/tasks/exit api2 137",
            "/tasks/delete",
            "/tasks/exit api 137",
            "/tasks/delete"
        ],
        "the events the shim published"
    );
    events.shutdown();
    drop(cleanup);
}

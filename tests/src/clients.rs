//! Helpers for the end-to-end tests with real clients (podman, containerd's runc shim): client
//! tools run with their output captured in the test's dir, offline images of the busybox rootfs,
//! the clients' cgroup subtrees, and the few host directories those clients create outside the
//! test's own dir.
//!
//! Every client process a test starts carries the test's mark ([`MARK_VAR`]) in its
//! environment, and so do the processes it starts in turn (conmon, the runtime, the containerd
//! shims), so [`Env::assert_no_processes`] sees whatever a client left running.

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::{cgroup_mount_points, display_args, find_in_path, in_ci, rootfs, skip, Env, Output, Proc, MARK_VAR};

/// Where a client tool is, or `None` after a visible `skipped:` line (outside CI; in CI a
/// missing client is a failure: `scripts/install-test-deps.sh` installs them).
#[track_caller]
pub fn require_tool(name: &str, package: &str) -> Option<PathBuf> {
    match find_in_path(name) {
        Some(p) => Some(p),
        None if in_ci() => panic!("{name} is not installed (Debian package {package}): run scripts/install-test-deps.sh"),
        None => {
            skip(&format!("{name} is not installed (apt-get install {package}, or scripts/install-test-deps.sh)"));
            None
        }
    }
}

impl Env {
    /// Start a client command in the background, stdout and stderr to files in the test's dir,
    /// with the test's mark in its environment.
    pub fn spawn_tool(&self, mut cmd: Command) -> Proc {
        self.spawn_tool_with_stdin(&mut cmd, Stdio::null())
    }

    /// [`Env::spawn_tool`] with the given stdin.
    pub fn spawn_tool_with_stdin(&self, cmd: &mut Command, stdin: Stdio) -> Proc {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let stdout_path = self.dir.join(format!("tool{n}.stdout"));
        let stderr_path = self.dir.join(format!("tool{n}.stderr"));
        let stdout = fs::File::create(&stdout_path).expect("create stdout file");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        cmd.stdin(stdin).stdout(stdout).stderr(stderr).env(MARK_VAR, &self.mark);
        let args: Vec<_> = cmd.get_args().collect();
        let cmdline = display_args(Path::new(cmd.get_program()), &args);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning `{cmdline}`: {e}"));
        Proc { child: Some(child), cmdline, stdout_path, stderr_path }
    }

    /// Run a client command to its end (killed, and the test failed, after `timeout`).
    #[track_caller]
    pub fn run_tool(&self, cmd: Command, timeout: Duration) -> Output {
        self.spawn_tool(cmd).wait_timeout(timeout)
    }

    /// Run a client command with `input` on its stdin.
    #[track_caller]
    pub fn run_tool_with_input(&self, mut cmd: Command, input: &[u8], timeout: Duration) -> Output {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let path = self.dir.join(format!("tool{n}.stdin"));
        fs::write(&path, input).expect("writing the stdin file");
        let stdin = fs::File::open(&path).expect("opening the stdin file");
        self.spawn_tool_with_stdin(&mut cmd, Stdio::from(stdin)).wait_timeout(timeout)
    }

    /// Live processes whose command line mentions this test's dir (conmon, a containerd shim,
    /// a client still running): what a client left behind, whatever its environment.
    pub fn pids_mentioning_dir(&self) -> Vec<i32> {
        let needle = self.dir.to_string_lossy().into_owned();
        let me = std::process::id() as i32;
        let mut pids = vec![];
        for entry in fs::read_dir("/proc").expect("read /proc").filter_map(|e| e.ok()) {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
            if String::from_utf8_lossy(&cmdline).contains(&needle) && crate::pid_alive(pid) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// `tar` of the shared busybox rootfs at `dest` (the layer of the test images).
pub fn busybox_rootfs_tar(dest: &Path) -> io::Result<()> {
    let out = Command::new("tar")
        .arg("-C")
        .arg(rootfs())
        // Owned by root whoever builds it, with stable names: a reproducible layer.
        .args(["--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-cf"])
        .arg(dest)
        .arg(".")
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("tar of the busybox rootfs: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(())
}

/// The sha256 of a file, hex (coreutils' `sha256sum`).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(h) if out.status.success() && h.len() == 64 => Ok(h.to_string()),
        _ => Err(io::Error::other(format!("sha256sum {}: {}", path.display(), String::from_utf8_lossy(&out.stderr)))),
    }
}

/// An OCI image layout tarball (what `ctr image import` reads) of the busybox rootfs, named
/// `name` (`io.containerd.image.name`), built offline in `work`, with `sh` as its command: see
/// [`busybox_oci_images`].
pub fn busybox_oci_image(work: &Path, name: &str) -> io::Result<PathBuf> {
    busybox_oci_images(work, &[(name, &["sh"])])
}

/// An OCI image layout tarball of several images of the busybox rootfs, each `(name, command)`,
/// built offline in `work`: one uncompressed layer that they share, and per image a config with
/// `PATH=/bin` and that command, a manifest, and an entry in the index named by the
/// `io.containerd.image.name` annotation; every blob stored under its sha256 digest.
pub fn busybox_oci_images(work: &Path, images: &[(&str, &[&str])]) -> io::Result<PathBuf> {
    let layout = work.join("oci-layout-dir");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    let add_blob = |path: &Path| -> io::Result<(String, u64)> {
        let digest = sha256_file(path)?;
        let size = fs::metadata(path)?.len();
        fs::rename(path, blobs.join(&digest))?;
        Ok((digest, size))
    };
    let layer = work.join("layer.tar");
    busybox_rootfs_tar(&layer)?;
    let (layer_digest, layer_size) = add_blob(&layer)?;
    let mut manifests = vec![];
    for (i, (name, cmd)) in images.iter().enumerate() {
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": cmd},
            // An uncompressed layer's diff id is its digest.
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]}
        });
        let config_path = work.join("config.json");
        fs::write(&config_path, config.to_string())?;
        let (config_digest, config_size) = add_blob(&config_path)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer_size}]
        });
        let manifest_path = work.join("manifest.json");
        fs::write(&manifest_path, manifest.to_string())?;
        let (manifest_digest, manifest_size) = add_blob(&manifest_path)?;
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": format!("test{i}")}
        }));
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    fs::write(layout.join("index.json"), index.to_string())?;
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let tarball = work.join("image.tar");
    let out = Command::new("tar").arg("-C").arg(&layout).args(["-cf"]).arg(&tarball).args(["oci-layout", "index.json", "blobs"]).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("tar of the OCI layout: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(tarball)
}

/// A cgroup subtree `/<TEST_CGROUP_PARENT>/<leaf>` that a client puts containers (and, for
/// podman, conmon) into. Clients remove the containers' cgroups but not the parents they were
/// given, so the test removes them: on [`CgroupSubtree::remove`] or on drop.
pub struct CgroupSubtree {
    /// The path below each hierarchy's root, starting with `/`.
    pub path: String,
}

impl CgroupSubtree {
    pub fn new(leaf: &str) -> Self {
        CgroupSubtree { path: format!("/{}/{leaf}", crate::TEST_CGROUP_PARENT) }
    }

    /// Pids still in the subtree, in any hierarchy.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = vec![];
        for mp in cgroup_mount_points() {
            collect_pids(&mp.join(self.path.trim_start_matches('/')), &mut pids);
        }
        pids.sort();
        pids.dedup();
        pids
    }

    /// Remove the subtree bottom-up in every hierarchy; returns the directories that could not
    /// be removed (a cgroup with a process in it).
    pub fn remove(&self) -> Vec<String> {
        let mut left = vec![];
        for mp in cgroup_mount_points() {
            remove_tree(&mp.join(self.path.trim_start_matches('/')), &mut left);
        }
        left
    }
}

impl Drop for CgroupSubtree {
    fn drop(&mut self) {
        let left = self.remove();
        if !left.is_empty() {
            eprintln!("warning: cgroups left with processes in them: {left:?}");
        }
    }
}

fn collect_pids(dir: &Path, pids: &mut Vec<i32>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&e.path(), pids);
        }
    }
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
}

fn remove_tree(dir: &Path, left: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        // A cgroup's children are directories; its control files are not.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path(), left);
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(_) => left.push(dir.display().to_string()),
    }
}

/// Host directories that a client creates outside the test's dir and never removes (podman's
/// runtime state roots `/run/fdbox` and `/run/runc`, containerd 1.6's fixed shim socket dir
/// `/run/containerd/s`). Each test holds a [`HostDirs`] while it may use them; when the last
/// holder in this test process lets go, the ones that did not exist before the first holder
/// came are removed if empty (`rmdir`: never anything in them).
pub struct HostDirs {
    paths: Vec<&'static str>,
}

/// Per path: (holders, existed before the first holder).
static HOST_DIRS: Mutex<Option<HashMap<&'static str, (usize, bool)>>> = Mutex::new(None);

impl HostDirs {
    /// `paths` children before parents (`/run/containerd/s` before `/run/containerd`).
    pub fn hold(paths: &[&'static str]) -> Self {
        let mut guard = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        let map = guard.get_or_insert_with(HashMap::new);
        for p in paths {
            let entry = map.entry(p).or_insert((0, false));
            if entry.0 == 0 {
                entry.1 = Path::new(p).exists();
            }
            entry.0 += 1;
        }
        HostDirs { paths: paths.to_vec() }
    }
}

impl Drop for HostDirs {
    fn drop(&mut self) {
        let mut guard = HOST_DIRS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(map) = guard.as_mut() else { return };
        for p in &self.paths {
            if let Some(entry) = map.get_mut(p) {
                entry.0 -= 1;
                if entry.0 == 0 && !entry.1 {
                    let _ = fs::remove_dir(p);
                }
            }
        }
    }
}

/// The runtime under test (fdbox, or runc when the suite is validated against runc) and the
/// reference it is compared with (runc), as absolute paths a client can be given.
pub fn runtimes_under_test() -> Option<(PathBuf, PathBuf)> {
    let runc = require_tool("runc", "runc")?;
    let under_test = crate::runtime().bin.clone();
    let under_test = fs::canonicalize(&under_test).unwrap_or(under_test);
    Some((under_test, runc))
}

/// A containerd (Debian's 1.6) of the test's own: its socket, root, state and `opt` plugin dirs
/// in `base`, the test's mark in its environment (so in its shims' too), started by
/// [`ContainerdDaemon::start`] and stopped by its pid ([`ContainerdDaemon::stop`], or on drop).
/// containerd 1.6 always puts shim sockets in `/run/containerd/s`: that directory (and
/// `/run/containerd`) is removed again if it did not exist before.
pub struct ContainerdDaemon<'e> {
    pub env: &'e Env,
    pub base: PathBuf,
    /// The gRPC socket.
    pub socket: PathBuf,
    pub ctr: PathBuf,
    daemon: Option<Proc>,
    _host_dirs: HostDirs,
}

/// How long a `ctr` command may take.
pub const CTR_TIMEOUT: Duration = Duration::from_secs(60);

impl<'e> ContainerdDaemon<'e> {
    /// Start containerd with the config of [`containerd_config`] plus `extra` (more TOML,
    /// appended) and `envs` added to its environment, and wait until it answers. `None` after
    /// a visible skip if containerd or ctr is not installed (outside CI).
    pub fn start(env: &'e Env, base: PathBuf, cri: bool, extra: &str, envs: &[(&str, &std::ffi::OsStr)]) -> Option<Self> {
        let containerd = require_tool("containerd", "containerd")?;
        let ctr = require_tool("ctr", "containerd")?;
        fs::create_dir_all(&base).expect("mkdir containerd base");
        let config = base.join("config.toml");
        fs::write(&config, containerd_config(&base, cri) + extra).expect("write config.toml");
        let host_dirs = HostDirs::hold(&["/run/containerd/s", "/run/containerd"]);
        let mut cmd = Command::new(containerd);
        cmd.arg("--config").arg(&config);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let daemon = env.spawn_tool(cmd);
        let mut d = ContainerdDaemon { env, socket: base.join("containerd.sock"), base, ctr, daemon: Some(daemon), _host_dirs: host_dirs };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if d.ctr_cmd("default", &["version"]).success() {
                break;
            }
            let daemon = d.daemon.as_mut().expect("daemon");
            assert!(!daemon.has_exited(), "containerd exited at start:\n{}", daemon.stderr());
            assert!(std::time::Instant::now() < deadline, "containerd did not answer within 30s:\n{}", daemon.stderr());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(d)
    }

    /// `ctr --address <socket> --namespace <namespace>`, arguments to be added.
    pub fn ctr(&self, namespace: &str) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address").arg(&self.socket).args(["--namespace", namespace]);
        cmd
    }

    /// Run `ctr … <args>` in `namespace` to its end.
    #[track_caller]
    pub fn ctr_cmd(&self, namespace: &str, args: &[&str]) -> Output {
        let mut cmd = self.ctr(namespace);
        cmd.args(args);
        self.env.run_tool(cmd, CTR_TIMEOUT)
    }

    /// containerd's pid (0 once stopped).
    pub fn pid(&self) -> i32 {
        self.daemon.as_ref().map(Proc::pid).unwrap_or(0)
    }

    /// Whether containerd is still running (started, not stopped, not exited).
    pub fn is_running(&mut self) -> bool {
        self.daemon.as_mut().is_some_and(|d| !d.has_exited())
    }

    /// What containerd wrote to its stderr (its log) so far.
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// Stop containerd (SIGTERM to its pid, which this test started) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            if !daemon.has_exited() {
                daemon.signal(rustix::process::Signal::TERM);
            }
            let _ = daemon.wait_timeout(Duration::from_secs(20));
        }
    }
}

impl Drop for ContainerdDaemon<'_> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// containerd's config for a test: socket, root, state and the `opt` plugin's dir in `base`,
/// no debug or metrics listener, the snapshotters this host cannot have off; the CRI plugin off
/// unless `cri` (its own section then comes from the caller).
pub fn containerd_config(base: &Path, cri: bool) -> String {
    let b = base.display();
    let cri_off = if cri { "" } else { "\"io.containerd.grpc.v1.cri\", " };
    format!(
        r#"version = 2
root = "{b}/root"
state = "{b}/state"
disabled_plugins = [{cri_off}"io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{b}/containerd.sock"

[ttrpc]
  address = "{b}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{b}/opt"
"#
    )
}

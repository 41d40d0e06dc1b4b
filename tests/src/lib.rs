//! Harness for fdbox's integration tests.
//!
//! The tests run real containers, as root, from a busybox rootfs, and check both what the
//! container saw (its output) and what is left on the host afterwards (state dirs, processes,
//! mounts). They are written against runc's CLI semantics, so the same tests can validate
//! themselves against runc (`FDBOX_TEST_RUNTIME=runc`) and then judge fdbox.
//!
//! * Runtime: `FDBOX_TEST_RUNTIME=runc` uses `runc` from PATH; otherwise `FDBOX_BIN`, else
//!   `<workspace>/target/debug/fdbox` (or under `CARGO_TARGET_DIR`).
//! * Rootfs: built once per test process into `<target>/fdbox-test-rootfs` (built in a temp dir,
//!   then renamed into place, so concurrent test binaries never see a half-built one). Bundles
//!   point `root.path` at it with `root.readonly = true`; a test that writes gets its own copy
//!   ([`Env::writable_rootfs`]).
//! * [`Env`]: one per test: a temp dir with the `--root` state dir, the bundle, sockets and the
//!   captured output of every runtime command. [`Container`] guards an id and runs
//!   `delete -f` on drop, so a failing test leaves nothing behind.
//! * Cgroups: every config is written with `linux.cgroupsPath = /fdbox-test/<id>` unless the test
//!   set one ([`TEST_CGROUP_PARENT`]). Each live [`Env`] holds a shared `flock` on
//!   `/sys/fs/cgroup`; the last one to go (in any test process on the host) takes it exclusively
//!   and removes the then empty `/fdbox-test` parents, which no runtime removes by itself.
//! * Every process the runtime starts for a test carries the environment variable
//!   `FDBOX_TEST_MARK=<unique>` (the runtime's own environment and the container's
//!   `process.env`), which is how [`Env::marked_pids`] finds leftovers of that test only.

use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
pub use serde_json::{json, Value};

/// Upper bound for any single runtime command and for any condition a test polls for.
/// Generous on purpose: a test only waits this long when something is already broken.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Name of the environment variable that marks every process started for one test.
pub const MARK_VAR: &str = "FDBOX_TEST_MARK";

/// The cgroup (in every hierarchy) below which the tests' containers get theirs: a config
/// without `linux.cgroupsPath` is written with `/fdbox-test/<container id>`, so no test touches
/// the runtime's default parent (`/fdbox` for fdbox, the root for runc).
pub const TEST_CGROUP_PARENT: &str = "fdbox-test";

// ---------------------------------------------------------------------------------------------
// Runtime selection
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Fdbox,
    Runc,
}

#[derive(Debug)]
pub struct Runtime {
    pub bin: PathBuf,
    pub kind: Kind,
}

/// The runtime under test (see the module docs for how it is chosen).
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| match std::env::var("FDBOX_TEST_RUNTIME").as_deref() {
        Ok("runc") => Runtime {
            bin: find_in_path("runc").expect("FDBOX_TEST_RUNTIME=runc but no runc on PATH"),
            kind: Kind::Runc,
        },
        Ok("") | Ok("fdbox") | Err(_) => {
            let bin = match std::env::var_os("FDBOX_BIN") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => target_dir().join("debug/fdbox"),
            };
            assert!(
                bin.is_file(),
                "fdbox binary {} not found: build it with `cargo build -p fdbox`, set FDBOX_BIN, \
                 or set FDBOX_TEST_RUNTIME=runc to validate the tests against runc",
                bin.display()
            );
            Runtime { bin, kind: Kind::Fdbox }
        }
        Ok(other) => panic!("FDBOX_TEST_RUNTIME={other:?}: only `runc` or `fdbox` (or unset)"),
    })
}

/// True when the tests judge fdbox (FDBOX_TEST_RUNTIME unset or `fdbox`).
pub fn is_fdbox() -> bool {
    runtime().kind == Kind::Fdbox
}

/// True when the tests are being validated against runc.
pub fn is_runc() -> bool {
    runtime().kind == Kind::Runc
}

/// The workspace root (parent of this crate's manifest dir).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target dir: `CARGO_TARGET_DIR` if set (relative to the workspace), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => workspace_dir().join(d),
        _ => workspace_dir().join("target"),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Print a visible skip line. Call it and `return`: a skipped test never passes silently.
///
/// Written straight to the process's stderr, not through `eprintln!`, so that libtest's output
/// capture does not hide it when the test "passes".
pub fn skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr().lock(), "skipped: {reason}");
}

/// Whether the tests run in CI (where a missing prerequisite is a failure, not a skip).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

// ---------------------------------------------------------------------------------------------
// The busybox rootfs
// ---------------------------------------------------------------------------------------------

/// The shared busybox rootfs (absolute path), built on first use.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        build_rootfs().unwrap_or_else(|e| panic!("building the busybox test rootfs: {e}"))
    })
}

fn find_busybox() -> io::Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(p);
        if p.is_file() {
            if !is_static_elf(p)? {
                return Err(io::Error::other(format!(
                    "{} is dynamically linked; install busybox-static",
                    p.display()
                )));
            }
            return Ok(p.to_path_buf());
        }
    }
    Err(io::Error::other("no busybox: apt-get install busybox-static (or run scripts/install-test-deps.sh)"))
}

/// Whether a 64-bit little-endian ELF file has no PT_INTERP program header (is static).
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    let data = fs::read(path)?;
    let bad = || io::Error::other(format!("{} is not a 64-bit LE ELF file", path.display()));
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let p_type = data.get(off..off + 4).ok_or_else(bad)?;
        if u32::from_le_bytes(p_type.try_into().unwrap()) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
}

fn build_rootfs() -> io::Result<PathBuf> {
    let target = target_dir();
    let dest = target.join("fdbox-test-rootfs");
    // The rename below is atomic, so a dest with a busybox in it is a complete one.
    if dest.join("bin/busybox").is_file() {
        return Ok(dest);
    }
    let busybox = find_busybox()?;
    fs::create_dir_all(&target)?;
    let tmp = target.join(format!(".fdbox-test-rootfs.{}.{}", std::process::id(), nanos()));
    populate_rootfs(&tmp, &busybox)?;
    match fs::rename(&tmp, &dest) {
        Ok(()) => Ok(dest),
        // Another test process won the race; use its rootfs.
        Err(_) if dest.join("bin/busybox").is_file() => {
            fs::remove_dir_all(&tmp)?;
            Ok(dest)
        }
        Err(e) => Err(e),
    }
}

fn populate_rootfs(dir: &Path, busybox: &Path) -> io::Result<()> {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    fs::set_permissions(dir.join("root"), fs::Permissions::from_mode(0o700))?;
    let bb = dir.join("bin/busybox");
    fs::copy(busybox, &bb)?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755))?;
    let list = Command::new(busybox).arg("--list").output()?;
    if !list.status.success() {
        return Err(io::Error::other("busybox --list failed"));
    }
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        // `busybox` itself is in the list; linking it would replace the binary.
        if applet == "busybox" || applet.contains('/') {
            continue;
        }
        symlink("busybox", dir.join("bin").join(applet))?;
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// Copy a directory tree (regular files, dirs, symlinks; modes kept).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn next_seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// Poll `f` until it returns `Some`, with a short growing back-off, for at most `timeout`.
#[track_caller]
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// `readlink` as a String ("" if it fails).
pub fn readlink(p: impl AsRef<Path>) -> String {
    fs::read_link(p)
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The host's namespace link (`pid:[4026531836]`) of this test process.
pub fn host_ns(kind: &str) -> String {
    readlink(format!("/proc/self/ns/{kind}"))
}

/// Whether `pid` names a live (not zombie) process.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the last ')' (the command name may contain one).
        Ok(stat) => match stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next()) {
            Some("Z") | Some("X") | None => false,
            Some(_) => true,
        },
        Err(_) => false,
    }
}

/// A JSON-aware check of an RFC 3339 date-time, e.g. `2026-11-27T06:30:42.62305191Z` or
/// `2026-11-27T08:30:42+02:00`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if b.len() < 20
        || !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10))
        || !matches!(b[10], b'T' | b't')
        || !(digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19))
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) || num(11..13) > 23
        || num(14..16) > 59 || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
                && num(i + 1..i + 3) <= 23 && num(i + 4..i + 6) <= 59
        }
        _ => false,
    }
}

/// Set the value at a JSON pointer (`/a/b`; no `~` escapes), creating objects on the way.
pub fn set_pointer(root: &mut Value, pointer: &str, value: Value) {
    let mut cur = root;
    for key in pointer.split('/').skip(1) {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .expect("made an object above")
            .entry(key.to_string())
            .or_insert(Value::Null);
    }
    *cur = value;
}

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mounted directory of the filesystem (field 4: `/` for a whole filesystem, a
    /// subdirectory for a bind of one).
    pub root: String,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    pub mount_options: String,
    /// The optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub super_options: String,
}

impl MountEntry {
    /// Whether the per-mount options (`ro`, `nosuid`, `noatime`, …) include `opt`.
    pub fn has_option(&self, opt: &str) -> bool {
        self.mount_options.split(',').any(|o| o == opt)
    }

    /// Whether the superblock options (`size=64k`, `mode=755`, …) include `opt`.
    pub fn has_super_option(&self, opt: &str) -> bool {
        self.super_options.split(',').any(|o| o == opt)
    }

    /// Whether an optional field starts with `prefix` (`shared:`, `master:`, `unbindable`).
    pub fn has_tag(&self, prefix: &str) -> bool {
        self.optional.iter().any(|t| t.starts_with(prefix))
    }
}

/// The visible (last) mount at `point` in a parsed mountinfo.
pub fn find_mount<'a>(mounts: &'a [MountEntry], point: &str) -> Option<&'a MountEntry> {
    mounts.iter().rev().find(|m| m.mount_point == point)
}

/// This test process's /proc/self/mountinfo (the host's mount namespace).
pub fn host_mountinfo() -> String {
    fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo")
}

/// The host's mountinfo without the mounts other tests make under their own temp dirs
/// (podman and containerd tests mount there while other test binaries may run): what a
/// test compares before and after to prove it left the host's mounts alone.
pub fn host_mountinfo_except_other_tests(own_dir: &Path) -> String {
    let others = std::env::temp_dir().join("fdbox-test-");
    let others = others.to_string_lossy().into_owned();
    let own = own_dir.to_string_lossy().into_owned();
    host_mountinfo()
        .lines()
        .filter(|l| {
            let mount_point = l.split(' ').nth(4).unwrap_or("");
            !mount_point.starts_with(&others) || mount_point.starts_with(&own)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Parse mountinfo text (see proc(5)); octal escapes like `\040` are left as they are.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                root: l.get(3)?.to_string(),
                mount_point: l.get(4)?.to_string(),
                mount_options: l.get(5)?.to_string(),
                optional: l.iter().skip(6).map(|t| t.to_string()).collect(),
                fstype: r.first()?.to_string(),
                source: r.get(1).unwrap_or(&"").to_string(),
                super_options: r.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running runtime commands
// ---------------------------------------------------------------------------------------------

/// A finished command: exit status and everything it wrote.
#[derive(Debug)]
pub struct Output {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code as a shell would report it (128+N for death by signal N).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Assert success and return self.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "expected success: {self}");
        self
    }

    /// Assert failure with an error message on stderr; for fdbox also that the message is
    /// exactly one line (issue 2: "one clear error line"). runc's messages are logrus lines,
    /// usually one, but that is not asserted for runc.
    #[track_caller]
    pub fn fails_with_one_line(self) -> Self {
        assert!(!self.success(), "expected failure: {self}");
        assert!(!self.stderr.trim().is_empty(), "expected an error message on stderr: {self}");
        if is_fdbox() {
            let lines = self.stderr.trim_end().lines().count();
            assert_eq!(lines, 1, "expected exactly one line on stderr: {self}");
        }
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.cmdline,
            self.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// A runtime process running in the background (e.g. a foreground `run`). Its stdout and
/// stderr go to files, never to pipes: a container that inherits them must not be able to
/// keep the test waiting for EOF. Killed (SIGKILL) and reaped on drop if still running.
pub struct Proc {
    child: Option<Child>,
    cmdline: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// What the process (and anything that inherited its stdout) has written so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Wait until stdout contains `needle`; panics (with the output) on timeout or if the
    /// process exits first without printing it.
    #[track_caller]
    pub fn wait_for_stdout(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.stdout().contains(needle) {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                // One last look: the output may have landed just before the exit.
                if self.stdout().contains(needle) {
                    return;
                }
                panic!(
                    "`{}` exited ({status}) before printing {needle:?}\nstdout: {}\nstderr: {}",
                    self.cmdline,
                    self.stdout(),
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {needle:?} from `{}`\nstdout: {}\nstderr: {}",
                    self.cmdline,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited (it is reaped then; `wait` still reports its status).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Send a signal to the runtime process itself (which this harness started).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("child pid");
        rustix::process::kill_process(pid, sig).expect("kill(runtime process)");
    }

    /// Wait for the exit (killing it and panicking after `timeout`) and collect the output.
    #[track_caller]
    pub fn wait_timeout(mut self, timeout: Duration) -> Output {
        match self.try_wait_timeout(timeout) {
            Ok(out) => out,
            Err(msg) => panic!("{msg}"),
        }
    }

    #[track_caller]
    pub fn wait(self) -> Output {
        self.wait_timeout(TIMEOUT)
    }

    fn try_wait_timeout(&mut self, timeout: Duration) -> Result<Output, String> {
        let mut child = self.child.take().expect("waited twice");
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for `{}`: {e}", self.cmdline)),
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{}` did not finish within {timeout:?} (killed)\nstdout: {}\nstderr: {}",
                    self.cmdline,
                    self.stdout(),
                    self.stderr()
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        Ok(Output {
            cmdline: self.cmdline.clone(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
}

fn display_args<S: AsRef<OsStr>>(bin: &Path, args: &[S]) -> String {
    let mut s = bin.file_name().unwrap_or_default().to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Per-test environment
// ---------------------------------------------------------------------------------------------

/// One test's private world: temp dir, `--root` state dir, bundle (config.json from the
/// runtime's own `spec`, edited), and the mark that tags its processes.
pub struct Env {
    pub name: String,
    /// The test's temp dir; everything below belongs to this test.
    pub dir: PathBuf,
    /// The `--root` state dir (not created in advance: runtimes create it like runc does).
    pub root: PathBuf,
    /// The bundle dir; `config.json` is (re)written from [`Env::config`] by every create/run.
    pub bundle: PathBuf,
    config: RefCell<Value>,
    mark: String,
    seq: Cell<u32>,
    /// Shared lock on the cgroup root while this test may create cgroups (see the module docs).
    cgroup_lock: Option<OwnedFd>,
}

impl Env {
    /// Set up a test; `None` (after printing `skipped: …`) when not root, outside CI.
    #[track_caller]
    pub fn new(name: &str) -> Option<Env> {
        if !is_root() {
            assert!(!in_ci(), "the integration tests must run as root in CI");
            skip("not root: the integration tests run real containers");
            return None;
        }
        let rt = runtime();
        let rootfs = rootfs();
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(24)
            .collect();
        let mark = format!("{}-{}-{}", std::process::id(), next_seq(), nanos() % 1_000_000_007);
        let dir = make_temp_dir(&name).expect("creating the test's temp dir");
        let env = Env {
            root: dir.join("state"),
            bundle: dir.join("bundle"),
            dir,
            name,
            config: RefCell::new(Value::Null),
            mark,
            seq: Cell::new(0),
            cgroup_lock: cgroup_lock_shared(),
        };
        fs::create_dir(&env.bundle).expect("mkdir bundle");
        // config.json comes from the runtime's own `spec`, run in the bundle dir.
        let out = env
            .spawn_cmd(Command::new(&rt.bin), &["spec"], Some(&env.bundle), false, Stdio::null())
            .wait();
        assert!(out.success(), "`spec` failed: {out}");
        let text = fs::read_to_string(env.bundle.join("config.json")).expect("spec wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("spec wrote valid JSON");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        config["root"] = json!({ "path": rootfs, "readonly": true });
        let mark_env = format!("{MARK_VAR}={}", env.mark);
        match config["process"]["env"].as_array_mut() {
            Some(list) => list.push(json!(mark_env)),
            None => config["process"]["env"] = json!(["PATH=/bin", mark_env]),
        }
        *env.config.borrow_mut() = config;
        Some(env)
    }

    /// The mark in the environment of this test's processes (the value of [`MARK_VAR`]), for a
    /// client that sets a container's environment itself.
    pub fn mark(&self) -> &str {
        &self.mark
    }

    // --- config editing -----------------------------------------------------------------

    /// Edit the config that the next create/run writes to `config.json`.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) -> &Self {
        f(&mut self.config.borrow_mut());
        self
    }

    /// A copy of the current config.
    pub fn config(&self) -> Value {
        self.config.borrow().clone()
    }

    pub fn args(&self, args: &[&str]) -> &Self {
        self.edit(|c| c["process"]["args"] = json!(args))
    }

    /// `process.args = ["sh", "-c", script]`.
    pub fn sh(&self, script: &str) -> &Self {
        self.args(&["sh", "-c", script])
    }

    /// Set the value at a JSON pointer (`/process/cwd`), creating objects on the way.
    pub fn set(&self, pointer: &str, value: Value) -> &Self {
        self.edit(|c| set_pointer(c, pointer, value))
    }

    /// Append one entry to `mounts`.
    pub fn add_mount(&self, mount: Value) -> &Self {
        self.edit(|c| match c["mounts"].as_array_mut() {
            Some(list) => list.push(mount),
            None => c["mounts"] = json!([mount]),
        })
    }

    /// Remove the entries of `mounts` whose destination is `dest`.
    pub fn remove_mount(&self, dest: &str) -> &Self {
        self.edit(|c| {
            if let Some(list) = c["mounts"].as_array_mut() {
                list.retain(|m| m["destination"] != dest);
            }
        })
    }

    /// Write the current config to `<bundle>/config.json`. Without a `linux.cgroupsPath` of
    /// the test's own, the container's cgroup is `/fdbox-test/fdt-env-<test mark>` (one per
    /// test; [`Container`] writes `/fdbox-test/<id>` instead).
    pub fn write_config(&self) {
        let leaf = format!("fdt-env-{}", self.mark);
        self.write_config_with_cgroup(&leaf);
    }

    /// Write the config with `linux.cgroupsPath = /fdbox-test/<leaf>` unless the test set one.
    fn write_config_with_cgroup(&self, leaf: &str) {
        let mut config = self.config.borrow().clone();
        if let Some(linux) = config.get_mut("linux").and_then(Value::as_object_mut) {
            linux
                .entry("cgroupsPath")
                .or_insert_with(|| json!(format!("/{TEST_CGROUP_PARENT}/{leaf}")));
        }
        let text = serde_json::to_string_pretty(&config).unwrap();
        fs::write(self.bundle.join("config.json"), text).expect("writing config.json");
    }

    /// The `linux.cgroupsPath` the next create/run of container `id` gets: the test's own, or
    /// `/fdbox-test/<id>`.
    pub fn cgroups_path_of(&self, id: &str) -> String {
        match self.config.borrow().pointer("/linux/cgroupsPath").and_then(Value::as_str) {
            Some(p) => p.to_string(),
            None => format!("/{TEST_CGROUP_PARENT}/{id}"),
        }
    }

    /// A new user namespace mapping container ids 0..65536 to host ids `host_base`..
    pub fn with_userns(&self, host_base: u32) -> &Self {
        self.edit(|c| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": host_base, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": host_base, "size": 65536}]);
        })
    }

    /// Give this test its own writable copy of the rootfs at `<bundle>/rootfs`
    /// (`root.path = "rootfs"`, `readonly = false`) and return its path.
    pub fn writable_rootfs(&self) -> PathBuf {
        let dst = self.bundle.join("rootfs");
        copy_tree(rootfs(), &dst).expect("copying the rootfs");
        self.set("/root", json!({ "path": "rootfs", "readonly": false }));
        dst
    }

    /// A fresh directory inside the test's temp dir.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        fs::create_dir_all(&p).expect("mkdir");
        p
    }

    // --- ids and containers -------------------------------------------------------------

    /// A container id unique on the host (runc names cgroups after ids, so ids must not clash
    /// between tests that run at the same time).
    pub fn id(&self, tag: &str) -> String {
        let n = self.seq.get();
        self.seq.set(n + 1);
        format!("fdt-{}-{}-{}", tag, self.mark.split('-').take(2).collect::<Vec<_>>().join("-"), n)
    }

    /// A guard for a fresh id; nothing is created until [`Container::create`] or `run`.
    pub fn container(&self, tag: &str) -> Container<'_> {
        Container::with_id(self, self.id(tag))
    }

    // --- running the runtime ------------------------------------------------------------

    /// `<runtime> --root <root> <args…>` started in the background.
    pub fn spawn<S: AsRef<OsStr>>(&self, args: &[S]) -> Proc {
        let mut cmd = Command::new(&runtime().bin);
        cmd.arg("--root").arg(&self.root);
        self.spawn_cmd(cmd, args, None, true, Stdio::null())
    }

    /// `<runtime> --root <root> <args…>` with `input` on its stdin, waited for.
    #[track_caller]
    pub fn rt_with_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let path = self.dir.join(format!("cmd{n}.stdin"));
        fs::write(&path, input).expect("writing the stdin file");
        let stdin = fs::File::open(&path).expect("opening the stdin file");
        let mut cmd = Command::new(&runtime().bin);
        cmd.arg("--root").arg(&self.root);
        self.spawn_cmd(cmd, args, None, true, Stdio::from(stdin)).wait()
    }

    /// `<prefix…> <runtime> --root <root> <args…>` in the background: for a wrapper such as
    /// `sh -c 'exec 3>file; exec "$@"' file` that prepares fds the runtime inherits.
    pub fn spawn_via<S: AsRef<OsStr>>(&self, prefix: &[&str], args: &[S]) -> Proc {
        let mut cmd = Command::new(prefix[0]);
        cmd.args(&prefix[1..]).arg(&runtime().bin).arg("--root").arg(&self.root);
        self.spawn_cmd(cmd, args, None, true, Stdio::null())
    }

    /// `<runtime> --root <root> <args…>`, waited for.
    #[track_caller]
    pub fn rt<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.spawn(args).wait()
    }

    /// `<runtime> <args…>` (no `--root`) in `cwd`, waited for.
    #[track_caller]
    pub fn rt_bare<S: AsRef<OsStr>>(&self, args: &[S], cwd: &Path) -> Output {
        self.spawn_cmd(Command::new(&runtime().bin), args, Some(cwd), true, Stdio::null()).wait()
    }

    fn spawn_cmd<S: AsRef<OsStr>>(
        &self,
        mut cmd: Command,
        args: &[S],
        cwd: Option<&Path>,
        mark: bool,
        stdin: Stdio,
    ) -> Proc {
        let n = self.seq.get();
        self.seq.set(n + 1);
        let stdout_path = self.dir.join(format!("cmd{n}.stdout"));
        let stderr_path = self.dir.join(format!("cmd{n}.stderr"));
        let stdout = fs::File::create(&stdout_path).expect("create stdout file");
        let stderr = fs::File::create(&stderr_path).expect("create stderr file");
        cmd.args(args).stdin(stdin).stdout(stdout).stderr(stderr);
        if mark {
            cmd.env(MARK_VAR, &self.mark);
        }
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let mut all: Vec<&OsStr> = cmd.get_args().collect();
        // Keep the printed command short: drop `--root <path>`.
        if all.first() == Some(&OsStr::new("--root")) {
            all.drain(..2);
        }
        let cmdline = display_args(&runtime().bin, &all);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{cmdline}`: {e}"));
        Proc { child: Some(child), cmdline, stdout_path, stderr_path }
    }

    /// Listen on a unix socket in the test dir (for --console-socket / --pidfd-socket).
    pub fn listen(&self, name: &str) -> FdListener {
        FdListener::bind(&self.dir.join(name)).expect("bind unix socket")
    }

    // --- what is left on the host -------------------------------------------------------

    /// Entries under the `--root` state dir (empty if it does not exist).
    pub fn state_entries(&self) -> Vec<String> {
        match fs::read_dir(&self.root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == ErrorKind::NotFound => vec![],
            Err(e) => panic!("reading {}: {e}", self.root.display()),
        }
    }

    /// Lines of the host's mountinfo that mention this test's dir or the shared rootfs.
    /// Nothing a runtime does should ever put a mount there in the host's mount namespace,
    /// so this is safe with tests running in parallel.
    pub fn leaked_mounts(&self) -> Vec<String> {
        let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
        let ours = [self.dir.to_string_lossy().into_owned(), rootfs().to_string_lossy().into_owned()];
        info.lines()
            .filter(|l| {
                l.split(' ')
                    .any(|field| ours.iter().any(|p| field == p || field.starts_with(&format!("{p}/"))))
            })
            .map(str::to_string)
            .collect()
    }

    /// Live processes carrying this test's mark: the runtime's own processes (and any child it
    /// cloned without exec) and the container processes (the mark is in `process.env`).
    pub fn marked_pids(&self) -> Vec<i32> {
        let needle = format!("{MARK_VAR}={}", self.mark);
        let me = std::process::id() as i32;
        let mut pids = vec![];
        for entry in fs::read_dir("/proc").expect("read /proc").filter_map(|e| e.ok()) {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(environ) = fs::read(entry.path().join("environ")) else { continue };
            if environ.split(|b| *b == 0).any(|var| var == needle.as_bytes()) && pid_alive(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    fn describe_pids(pids: &[i32]) -> String {
        pids.iter()
            .map(|p| {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let cmd: Vec<String> = cmd
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                format!("{p} ({})", cmd.join(" "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Wait (briefly: a killed process may still be exiting) until no marked process is left.
    #[track_caller]
    pub fn assert_no_processes(&self) {
        self.assert_only_processes(&[]);
    }

    /// Wait until the marked processes are exactly `expected`.
    #[track_caller]
    pub fn assert_only_processes(&self, expected: &[i32]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pids = self.marked_pids();
            pids.sort();
            let mut want = expected.to_vec();
            want.sort();
            if pids == want {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the processes of this test on the host are [{}], expected {:?}",
                    Self::describe_pids(&pids),
                    want
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[track_caller]
    pub fn assert_no_mounts(&self) {
        let leaked = self.leaked_mounts();
        assert!(leaked.is_empty(), "mounts left on the host:\n{}", leaked.join("\n"));
    }

    #[track_caller]
    pub fn assert_no_state(&self, id: &str) {
        let dir = self.root.join(id);
        assert!(
            fs::symlink_metadata(&dir).is_err(),
            "state dir {} left behind (entries under --root: {:?})",
            dir.display(),
            self.state_entries()
        );
    }

    /// Nothing of this test is left on the host: no state dir under `--root`, no process,
    /// no mount.
    #[track_caller]
    pub fn assert_clean(&self) {
        let entries = self.state_entries();
        assert!(entries.is_empty(), "left under --root {}: {entries:?}", self.root.display());
        self.assert_no_processes();
        self.assert_no_mounts();
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.cgroup_lock.take().is_some() {
            remove_test_cgroup_parents();
        }
        // Never delete through a leaked mount (that could delete host files): keep the dir.
        let leaked = self.leaked_mounts();
        if leaked.is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "warning: not removing {} because mounts point into it:\n{}",
                self.dir.display(),
                leaked.join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests' cgroup parent
// ---------------------------------------------------------------------------------------------

/// What the shared/exclusive lock is taken on: the cgroup root, which every test process on
/// the host sees (a lock file would have to be left somewhere).
const CGROUP_LOCK_DIR: &str = "/sys/fs/cgroup";

fn open_cgroup_lock_dir() -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(CGROUP_LOCK_DIR, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()
}

/// A shared lock held while a test may have cgroups under `/fdbox-test`. Waits (briefly) while
/// another test process removes the parents; `None` if there is no cgroup root or the lock
/// cannot be had, which only means that this test does not take part in the cleanup.
fn cgroup_lock_shared() -> Option<OwnedFd> {
    use rustix::fs::{flock, FlockOperation};
    let fd = open_cgroup_lock_dir()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match flock(&fd, FlockOperation::NonBlockingLockShared) {
            Ok(()) => return Some(fd),
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return None,
        }
    }
}

/// The mount points of the host's cgroup hierarchies (v1 and v2).
pub fn cgroup_mount_points() -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = parse_mountinfo(&info)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Remove the empty `/fdbox-test` parents if no test anywhere on the host still holds the
/// shared lock (so none is about to create a cgroup in them). `rmdir` never removes a cgroup
/// that still has a child cgroup: a container's cgroup left by a broken test stays visible.
fn remove_test_cgroup_parents() {
    use rustix::fs::{flock, FlockOperation};
    let Some(fd) = open_cgroup_lock_dir() else { return };
    if flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return; // another test is still running; the last one cleans up
    }
    for mp in cgroup_mount_points() {
        let _ = fs::remove_dir(mp.join(TEST_CGROUP_PARENT));
    }
    // Closing the fd releases the lock.
}

fn make_temp_dir(name: &str) -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    loop {
        let p = base.join(format!("fdbox-test-{name}-{}-{}", std::process::id(), next_seq()));
        match fs::create_dir(&p) {
            Ok(()) => {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
                return Ok(p);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Container guard
// ---------------------------------------------------------------------------------------------

/// One container id of a test. Dropping it runs `delete -f` (whatever state it is in, and
/// even if it was never created), so a failing test leaves nothing behind.
pub struct Container<'e> {
    pub env: &'e Env,
    pub id: String,
    /// Where the container's stdout went (the create/run command's stdout file).
    stdout_path: RefCell<Option<PathBuf>>,
}

impl<'e> Container<'e> {
    pub fn with_id(env: &'e Env, id: impl Into<String>) -> Self {
        Container { env, id: id.into(), stdout_path: RefCell::new(None) }
    }

    fn lifecycle_args(&self, cmd: &str, bundle: &Path, extra: &[&str]) -> Vec<String> {
        let mut args = vec![cmd.to_string(), "--bundle".into(), bundle.to_string_lossy().into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(self.id.clone());
        args
    }

    /// Write config.json (with `linux.cgroupsPath = /fdbox-test/<id>` unless the test set one)
    /// and start `<cmd> --bundle <bundle> <extra…> <id>` in the background.
    pub fn spawn_lifecycle(&self, cmd: &str, extra: &[&str]) -> Proc {
        self.env.write_config_with_cgroup(&self.id);
        self.spawn_in(cmd, &self.env.bundle, extra)
    }

    /// Like [`Self::spawn_lifecycle`] with another bundle dir (config.json not written).
    pub fn spawn_in(&self, cmd: &str, bundle: &Path, extra: &[&str]) -> Proc {
        let proc = self.env.spawn(&self.lifecycle_args(cmd, bundle, extra));
        *self.stdout_path.borrow_mut() = Some(proc.stdout_path.clone());
        proc
    }

    /// `create --bundle <bundle> <extra…> <id>` (writes config.json first).
    #[track_caller]
    pub fn create(&self, extra: &[&str]) -> Output {
        self.spawn_lifecycle("create", extra).wait()
    }

    /// `create` with a given bundle dir (config.json is not written).
    #[track_caller]
    pub fn create_in(&self, bundle: &Path, extra: &[&str]) -> Output {
        self.spawn_in("create", bundle, extra).wait()
    }

    /// `run --bundle <bundle> <extra…> <id>` (writes config.json first), waited for.
    #[track_caller]
    pub fn run(&self, extra: &[&str]) -> Output {
        self.spawn_lifecycle("run", extra).wait()
    }

    /// `run` in the background (foreground mode of runc, so the test can signal it).
    pub fn spawn_run(&self, extra: &[&str]) -> Proc {
        self.spawn_lifecycle("run", extra)
    }

    /// `<prefix…> <runtime> --root <root> run --bundle <bundle> <extra…> <id>`, waited for: a
    /// run inside a wrapper such as `unshare -m sh -c '…; exec "$@"' sh` (a private mount
    /// namespace of the test) or `setpriv` (fewer capabilities).
    #[track_caller]
    pub fn run_via(&self, prefix: &[&str], extra: &[&str]) -> Output {
        self.env.write_config();
        let proc = self.env.spawn_via(prefix, &self.lifecycle_args("run", &self.env.bundle, extra));
        *self.stdout_path.borrow_mut() = Some(proc.stdout_path.clone());
        proc.wait()
    }

    /// Everything the container wrote to stdout so far (after create/run).
    pub fn stdout(&self) -> String {
        self.stdout_path.borrow().as_deref().map(read_lossy).unwrap_or_default()
    }

    /// Wait until the container's stdout contains `needle`.
    #[track_caller]
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        wait_until(TIMEOUT, &format!("{needle:?} on the stdout of {}", self.id), || {
            let s = self.stdout();
            s.contains(needle).then_some(s)
        })
    }

    #[track_caller]
    pub fn start(&self) -> Output {
        self.env.rt(&["start", &self.id])
    }

    #[track_caller]
    pub fn kill(&self, sig: &str) -> Output {
        self.env.rt(&["kill", &self.id, sig])
    }

    #[track_caller]
    pub fn delete(&self, extra: &[&str]) -> Output {
        let mut args = vec!["delete"];
        args.extend_from_slice(extra);
        args.push(&self.id);
        self.env.rt(&args)
    }

    /// `state <id>`: the parsed JSON, or the failed command's output.
    #[track_caller]
    pub fn state(&self) -> Result<Value, Output> {
        let out = self.env.rt(&["state", &self.id]);
        if !out.success() {
            return Err(out);
        }
        match serde_json::from_str(&out.stdout) {
            Ok(v) => Ok(v),
            Err(e) => panic!("`state` printed invalid JSON ({e}): {out}"),
        }
    }

    #[track_caller]
    pub fn state_ok(&self) -> Value {
        self.state().unwrap_or_else(|out| panic!("state failed: {out}"))
    }

    #[track_caller]
    pub fn status(&self) -> String {
        self.state_ok()["status"].as_str().unwrap_or_default().to_string()
    }

    /// The init's pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let st = self.state_ok();
        st["pid"].as_i64().unwrap_or_else(|| panic!("state has no pid: {st}")) as i32
    }

    /// Poll `state` until its status is `want`; returns that state.
    #[track_caller]
    pub fn wait_status(&self, want: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            let last = match self.state() {
                Ok(st) if st["status"] == want => return st,
                Ok(st) => st.to_string(),
                Err(out) => out.to_string(),
            };
            if Instant::now() >= deadline {
                panic!("{} never reached status {want:?}; last: {last}", self.id);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// create + start, asserting both succeed; returns the init pid.
    #[track_caller]
    pub fn create_and_start(&self) -> i32 {
        self.create(&[]).ok();
        self.start().ok();
        self.pid()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.env.root.join(&self.id)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let mut proc = self.env.spawn(&["delete", "-f", &self.id]);
        if let Err(msg) = proc.try_wait_timeout(TIMEOUT) {
            eprintln!("warning: cleanup of {}: {msg}", self.id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fd hand-off sockets
// ---------------------------------------------------------------------------------------------

/// A unix socket that a runtime connects to in order to hand over one fd (SCM_RIGHTS).
pub struct FdListener {
    listener: UnixListener,
    pub path: PathBuf,
}

/// One received message: its body and the fds that came with it.
pub struct FdMessage {
    pub body: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

impl FdListener {
    pub fn bind(path: &Path) -> io::Result<FdListener> {
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(FdListener { listener, path: path.to_path_buf() })
    }

    pub fn path_str(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Accept one connection and receive one message with its fds, within `timeout`.
    pub fn receive(&self, timeout: Duration) -> io::Result<FdMessage> {
        self.receive_while(timeout, || true)
    }

    /// Like [`Self::receive`], for a message that `sender` (a runtime command) should send:
    /// gives up as soon as the sender has exited without connecting.
    pub fn receive_from(&self, sender: &mut Proc) -> io::Result<FdMessage> {
        self.receive_while(TIMEOUT, || !sender.has_exited()).map_err(|e| {
            io::Error::new(e.kind(), format!("{e}\nstdout: {}\nstderr: {}", sender.stdout(), sender.stderr()))
        })
    }

    fn receive_while(&self, timeout: Duration, mut waiting: impl FnMut() -> bool) -> io::Result<FdMessage> {
        let deadline = Instant::now() + timeout;
        let (stream, _) = loop {
            // Checked before accept: a sender that connected and then exited is still served.
            let still_waiting = waiting();
            match self.listener.accept() {
                Ok(conn) => break conn,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !still_waiting {
                        return Err(io::Error::new(ErrorKind::NotConnected, "the sender exited without connecting"));
                    }
                    let slice = (Instant::now() + Duration::from_millis(20)).min(deadline);
                    wait_readable(&self.listener, slice)?;
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(ErrorKind::TimedOut, "timed out waiting for a connection"));
                    }
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(true)?;
        let mut body = vec![0u8; 4096];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        loop {
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [io::IoSliceMut::new(&mut body)];
            match recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(msg) => {
                    let mut fds = vec![];
                    for cmsg in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(rights) = cmsg {
                            fds.extend(rights);
                        }
                    }
                    body.truncate(msg.bytes);
                    return Ok(FdMessage { body, fds });
                }
                Err(rustix::io::Errno::AGAIN) => wait_readable(&stream, deadline)?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn wait_readable(fd: impl AsFd, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(ErrorKind::TimedOut, "timed out waiting on a socket"));
    }
    let ts = rustix::event::Timespec {
        tv_sec: left.as_secs() as i64,
        tv_nsec: left.subsec_nanos() as i64,
    };
    let mut pfd = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut pfd, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Read from `fd` (made non-blocking) until the accumulated text contains all `needles`,
/// EOF/EIO, or `timeout`. Returns what was read.
pub fn read_until(fd: impl AsFd, needles: &[&str], timeout: Duration) -> String {
    let fd = fd.as_fd();
    let flags = rustix::fs::fcntl_getfl(fd).expect("F_GETFL");
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK).expect("F_SETFL");
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    loop {
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return text,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                if wait_readable(fd, deadline).is_err() {
                    return text;
                }
            }
            // A pty master reads EIO once the slave side is closed.
            Err(_) => return text,
        }
    }
}

/// If `fd` is a pidfd, the pid it refers to in this test's pid namespace (from
/// `/proc/self/fdinfo`); `None` for any other kind of fd.
pub fn pidfd_pid(fd: impl AsFd) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let n = fd.as_fd().as_raw_fd();
    if readlink(format!("/proc/self/fd/{n}")) != "anon_inode:[pidfd]" {
        return None;
    }
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{n}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|p| p.trim().parse().ok())
}

/// Whether `path` is a character device.
pub fn is_char_device(path: &Path) -> bool {
    fs::metadata(path).map(|m| m.file_type().is_char_device()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert!(is_rfc3339("2026-11-27T06:30:42.62305191Z"));
        assert!(is_rfc3339("2026-11-27T06:30:42Z"));
        assert!(is_rfc3339("2026-11-27T08:30:42+02:00"));
        assert!(is_rfc3339("2026-11-27t08:30:42.1-05:30"));
        assert!(!is_rfc3339("2026-11-27 06:30:42Z"));
        assert!(!is_rfc3339("2026-13-27T06:30:42Z"));
        assert!(!is_rfc3339("2026-11-27T06:30:42"));
        assert!(!is_rfc3339("2026-11-27T06:30:42.Z"));
        assert!(!is_rfc3339("2026-11-27T06:30:42+0200"));
        assert!(!is_rfc3339("1764225042"));
        assert!(!is_rfc3339(""));
    }

    #[test]
    fn mountinfo() {
        let text = "68 67 0:42 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620\n\
                    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/dev/pts");
        assert_eq!(m[0].fstype, "devpts");
        assert_eq!(m[0].super_options, "rw,gid=5,mode=620");
        assert_eq!(m[1].mount_point, "/mnt2");
        assert_eq!(m[1].fstype, "ext3");
        assert_eq!(m[1].source, "/dev/root");
        assert_eq!(m[1].mount_options, "rw,noatime");
        assert_eq!(m[1].root, "/mnt1");
        assert_eq!(m[1].optional, ["master:1", "shared:2"]);
        assert!(m[1].has_tag("shared:") && m[1].has_tag("master:") && !m[0].has_tag("shared:"));
        assert!(m[0].has_option("noexec") && !m[0].has_option("exec"));
        assert!(m[0].has_super_option("gid=5"));
        assert_eq!(find_mount(&m, "/dev/pts").map(|e| e.fstype.as_str()), Some("devpts"));
    }

    #[test]
    fn static_elf_detection() {
        // /proc/self/exe is this test binary: dynamically linked on glibc targets, unless built
        // with crt-static (as vm-tests builds it).
        assert_eq!(is_static_elf(Path::new("/proc/self/exe")).unwrap(), cfg!(target_feature = "crt-static"));
        assert!(is_static_elf(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).is_err());
    }

    /// The receiving side of the fd hand-off, checked against a pidfd this test sends itself
    /// (runc 1.1.5 has no --pidfd-socket to check it against).
    #[test]
    fn fd_listener_receives_a_pidfd() {
        use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        use std::os::unix::net::UnixStream;

        let path = std::env::temp_dir().join(format!("fdbox-harness-{}-{}.sock", std::process::id(), nanos()));
        let listener = FdListener::bind(&path).unwrap();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap();
        assert_eq!(pidfd_pid(&pidfd), Some(child.id() as i32));

        let stream = UnixStream::connect(&path).unwrap();
        let fds = [pidfd.as_fd()];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        sendmsg(&stream, &[io::IoSlice::new(b"standard")], &mut control, SendFlags::empty()).unwrap();

        let msg = listener.receive(Duration::from_secs(5)).unwrap();
        assert_eq!(msg.body, b"standard");
        assert_eq!(msg.fds.len(), 1);
        assert_eq!(pidfd_pid(&msg.fds[0]), Some(child.id() as i32));
        // Not a pidfd: the socket itself.
        assert_eq!(pidfd_pid(&stream), None);

        let _ = child.kill();
        let _ = child.wait();
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn json_pointer_set() {
        let mut c = json!({"process": {"args": ["sh"]}, "linux": 5});
        set_pointer(&mut c, "/process/cwd", json!("/tmp"));
        set_pointer(&mut c, "/linux/sysctl/net.ipv4.ip_forward", json!("1"));
        assert_eq!(c["process"]["cwd"], "/tmp");
        assert_eq!(c["process"]["args"], json!(["sh"]));
        assert_eq!(c["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
    }
}

// End-to-end tests with real clients (podman, containerd): see the module.
pub mod clients;
pub mod ctr;

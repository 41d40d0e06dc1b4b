//! The benchmark: fdbox, crun and runc measured in the same run, round by
//! round (A B C, B C A, C A B, …), so slow phases of a noisy machine hit
//! every runtime alike and the ratios stay meaningful.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

use crate::bundle;
use crate::env::{self, WorkDir};
use crate::error::{Error, IoContext, Result, SysContext};
use crate::proc::{self, Outcome};
use crate::stats::Samples;
use crate::sys;

/// The runtimes, in the order of the report's columns.
pub const RUNTIMES: [&str; 3] = ["fdbox", "crun", "runc"];
/// Reference rows measured beside `run`: the cost of the namespaces alone
/// and of a bare fork+exec.
pub const FLOORS: [&str; 2] = ["unshare", "spawn"];

/// Any single command gets this long before it is killed and counted as a
/// failure (a hang must not stop the benchmark).
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Opts {
    pub fdbox: PathBuf,
    pub crun: PathBuf,
    pub runc: PathBuf,
    pub busybox: PathBuf,
    pub rounds: usize,
    pub seq_rounds: usize,
    pub seq_n: usize,
    pub conc_rounds: usize,
    pub conc_n: usize,
    pub notes: Vec<String>,
}

/// What a finished benchmark hands to the report.
pub struct Results {
    pub opts_rounds: (usize, usize, usize),
    pub seq_n: usize,
    pub conc_n: usize,
    pub samples: Samples,
    /// (runtime, version line) for the runtimes that were measured.
    pub versions: Vec<(String, String)>,
    /// Runtimes (or commands of a runtime) left out, with the reason.
    pub notes: Vec<String>,
    pub hid_unified: bool,
    pub machine: Machine,
    pub elapsed: Duration,
    /// Container ids or cgroups the runtimes left behind (should be empty).
    pub leftovers: Vec<String>,
    /// Notes given on the command line (`--note`).
    pub extra_notes: Vec<String>,
}

pub struct Machine {
    pub date: String,
    pub nproc: usize,
    pub kernel: String,
    pub cpu: String,
    pub load_before: String,
    pub load_after: String,
}

/// A container kept running for the `exec` measurements.
struct ExecTarget {
    id: String,
    pid: Pid,
    pidfd: OwnedFd,
}

struct Rt {
    name: &'static str,
    bin: PathBuf,
    version: String,
    root: PathBuf,
    bundle: PathBuf,
    exec_bundle: PathBuf,
    err: PathBuf,
    pidfile: PathBuf,
    exec: Option<ExecTarget>,
    /// Ids that may still exist in this runtime's state root.
    live: BTreeSet<String>,
}

impl Rt {
    /// `bin --root ROOT args…`, stdin and stdout on /dev/null, stderr into
    /// this runtime's log (truncated, so a failure shows its own message).
    fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Command> {
        let err = File::create(&self.err).io("create", &self.err)?;
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        Ok(c)
    }

    /// Run `cmd` measured; a non-zero exit is an error with the stderr tail.
    fn measure(&self, mut cmd: Command) -> Result<Outcome> {
        let out = proc::run(&mut cmd, TIMEOUT)?;
        self.check(&cmd, &out)?;
        Ok(out)
    }

    fn check(&self, cmd: &Command, out: &Outcome) -> Result<()> {
        if out.reaped.code == 0 {
            return Ok(());
        }
        let status = if out.reaped.signaled { format!("signal {}", out.reaped.code - 128) } else { format!("exit {}", out.reaped.code) };
        Err(Error::Command { cmd: proc::describe(cmd), status, stderr: proc::tail(&self.err) })
    }

    fn exists(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// Untimed: `delete -f id` if the runtime still has it.
    fn cleanup(&mut self, id: &str) {
        if self.exists(id) {
            if let Ok(mut c) = self.cmd(&["delete", "-f", id]) {
                let _ = proc::run(&mut c, TIMEOUT);
            }
        }
        if !self.exists(id) {
            self.live.remove(id);
        }
    }

    /// `run` of /bin/true; the delete (if the runtime kept the container)
    /// happens after the clock stopped.
    fn run_once(&mut self, id: String) -> Result<Outcome> {
        self.live.insert(id.clone());
        let cmd = self.cmd(&["run", "--bundle", &self.bundle.to_string_lossy(), &id])?;
        let r = self.measure(cmd);
        self.cleanup(&id);
        r
    }

    /// create, start, wait, delete, each timed alone. Returns the four
    /// durations, the create and delete outcomes, and the init's peak RSS
    /// (KiB; the init is the runtime's helper until it execs /bin/true).
    fn lifecycle(&mut self, id: String) -> Result<Lifecycle> {
        self.live.insert(id.clone());
        let r = self.lifecycle_in(&id);
        if r.is_err() {
            self.cleanup(&id);
            proc::reap_strays();
        }
        r
    }

    fn lifecycle_in(&mut self, id: &str) -> Result<Lifecycle> {
        let _ = std::fs::remove_file(&self.pidfile);
        let cmd = self.cmd(&["create", "--bundle", &self.bundle.to_string_lossy(), "--pid-file", &self.pidfile.to_string_lossy(), id])?;
        let create = self.measure(cmd)?;
        // Untimed: learn the init's pid and open a pidfd on it before start,
        // so its exit can be seen the moment it happens.
        let pid = proc::read_pid_file(&self.pidfile)?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).sys("pidfd_open", || format!("init pid {pid} of {id}"))?;
        let start = self.measure(self.cmd(&["start", id])?)?;
        // wait: from `start` returning to the init's exit (its pidfd polls
        // readable when it becomes a zombie; we are its subreaper).
        if !proc::wait_exit(pidfd.as_fd(), TIMEOUT)? {
            return Err(Error::Timeout { cmd: format!("{} container {id} running /bin/true", self.name), secs: TIMEOUT.as_secs() });
        }
        let exited = Instant::now();
        let wait = exited - start.end;
        // Reaping the orphaned init gives its rusage: the peak RSS of the
        // runtime's code in the init before it exec'd /bin/true.
        let init_rss = sys::wait4(pid).ok().map(|r| r.maxrss_kib);
        let delete = self.measure(self.cmd(&["delete", id])?)?;
        if self.exists(id) {
            return Err(Error::Setup(format!("{}: `delete {id}` succeeded but {} is still there", self.name, self.root.join(id).display())));
        }
        self.live.remove(id);
        Ok(Lifecycle { create, start: start.wall, wait, delete, init_rss })
    }

    fn exec_once(&mut self) -> Result<Outcome> {
        let id = match &self.exec {
            Some(t) => t.id.clone(),
            None => return Err(Error::Setup("no exec target".into())),
        };
        self.measure(self.cmd(&["exec", &id, "/bin/true"])?)
    }

    /// `n` runs one after the other; the total of their wall times (the
    /// untimed deletes excluded).
    fn sequential(&mut self, ids: Vec<String>) -> Result<Duration> {
        let mut total = Duration::ZERO;
        for id in ids {
            total += self.run_once(id)?.wall;
        }
        Ok(total)
    }

    /// `n` runs started at once; wall time from the first spawn to the
    /// last reap. Returns the total and the largest peak RSS.
    fn concurrent(&mut self, ids: Vec<String>) -> Result<Duration> {
        let t0 = Instant::now();
        let mut spawned = Vec::new();
        let mut first_err = None;
        for id in &ids {
            self.live.insert(id.clone());
            // One shared stderr log for the batch: opened once, before t0 matters little.
            let cmd = self.cmd(&["run", "--bundle", &self.bundle.to_string_lossy(), id]);
            match cmd.and_then(|mut c| proc::spawn(&mut c).map(|s| (s, c))) {
                Ok(s) => spawned.push(s),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let mut end = t0;
        for (s, cmd) in spawned {
            match s.finish(TIMEOUT) {
                Ok(out) => {
                    end = end.max(out.end);
                    if let Err(e) = self.check(&cmd, &out) {
                        first_err.get_or_insert(e);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        for id in &ids {
            self.cleanup(id);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(end - t0),
        }
    }

    /// A container running `sleep` for the exec measurements.
    fn start_exec_target(&mut self, id: String) -> Result<()> {
        self.live.insert(id.clone());
        let _ = std::fs::remove_file(&self.pidfile);
        let cmd = self.cmd(&["create", "--bundle", &self.exec_bundle.to_string_lossy(), "--pid-file", &self.pidfile.to_string_lossy(), &id])?;
        let r = (|| {
            self.measure(cmd)?;
            let pid = proc::read_pid_file(&self.pidfile)?;
            let pidfd = pidfd_open(pid, PidfdFlags::empty()).sys("pidfd_open", || format!("init pid {pid} of {id}"))?;
            self.measure(self.cmd(&["start", &id])?)?;
            Ok(ExecTarget { id: id.clone(), pid, pidfd })
        })();
        match r {
            Ok(t) => {
                self.exec = Some(t);
                Ok(())
            }
            Err(e) => {
                self.cleanup(&id);
                Err(e)
            }
        }
    }

    fn stop_exec_target(&mut self) {
        let Some(t) = self.exec.take() else { return };
        if let Ok(mut c) = self.cmd(&["kill", &t.id, "KILL"]) {
            let _ = proc::run(&mut c, TIMEOUT);
        }
        if !proc::wait_exit(t.pidfd.as_fd(), Duration::from_secs(10)).unwrap_or(false) {
            // The runtime's kill did not work: the container is ours to stop.
            let _ = pidfd_send_signal(&t.pidfd, Signal::KILL);
            let _ = proc::wait_exit(t.pidfd.as_fd(), Duration::from_secs(10));
        }
        let _ = sys::wait4(t.pid);
        self.cleanup(&t.id);
    }
}

struct Lifecycle {
    create: Outcome,
    start: Duration,
    wait: Duration,
    delete: Outcome,
    init_rss: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `items` rotated left by `r`: round 0 is A B C, round 1 is B C A, …
fn rotated<T: Clone>(items: &[T], r: usize) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let k = r % items.len();
    items[k..].iter().chain(&items[..k]).cloned().collect()
}

fn first_line(bin: &Path, arg: &str) -> String {
    Command::new(bin)
        .arg(arg)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "(unknown version)".into())
}

/// Whether `bin` has subcommand `sub` (`bin sub --help` succeeds).
fn has_command(bin: &Path, sub: &str) -> bool {
    Command::new(bin)
        .args([sub, "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown".into());
    Machine {
        date: crate::report::utc_now(),
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        kernel: rustix::system::uname().release().to_string_lossy().into_owned(),
        cpu,
        load_before: read_trim("/proc/loadavg"),
        load_after: String::new(),
    }
}

/// Cgroup directories whose name starts with `prefix`, in every mounted
/// hierarchy, up to three levels deep.
pub fn cgroups_named(prefix: &str) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(prefix) {
                out.push(p.display().to_string());
            } else if depth > 0 {
                walk(&p, prefix, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), prefix, 3, &mut out);
    out
}

struct Bench {
    prefix: String,
    counter: u64,
    rts: Vec<Rt>,
    samples: Samples,
    notes: Vec<String>,
}

impl Bench {
    fn id(&mut self, rt: &str) -> String {
        self.counter += 1;
        format!("{}-{rt}-{}", self.prefix, self.counter)
    }

    fn record_run(&mut self, i: usize) {
        let id = self.id(self.rts[i].name);
        let name = self.rts[i].name;
        match self.rts[i].run_once(id) {
            Ok(o) => {
                self.samples.push("run", name, ms(o.wall));
                self.samples.push("rss_run", name, mib(o.reaped.maxrss_kib));
            }
            Err(e) => self.samples.fail("run", name, e.to_string()),
        }
    }

    fn record_lifecycle(&mut self, i: usize) {
        let id = self.id(self.rts[i].name);
        let name = self.rts[i].name;
        match self.rts[i].lifecycle(id) {
            Ok(l) => {
                self.samples.push("create", name, ms(l.create.wall));
                self.samples.push("start", name, ms(l.start));
                self.samples.push("wait", name, ms(l.wait));
                self.samples.push("delete", name, ms(l.delete.wall));
                self.samples.push("rss_create", name, mib(l.create.reaped.maxrss_kib));
                if let Some(k) = l.init_rss {
                    self.samples.push("rss_init", name, mib(k));
                }
            }
            Err(e) => self.samples.fail("lifecycle", name, e.to_string()),
        }
    }

    fn record_exec(&mut self, i: usize) {
        let name = self.rts[i].name;
        match self.rts[i].exec_once() {
            Ok(o) => {
                self.samples.push("exec", name, ms(o.wall));
                self.samples.push("rss_exec", name, mib(o.reaped.maxrss_kib));
            }
            Err(e) => self.samples.fail("exec", name, e.to_string()),
        }
    }

    fn record_floor(&mut self, which: &str, rootfs: &Path) {
        let tru = rootfs.join("bin/true");
        let mut cmd = if which == "unshare" {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--mount", "--uts", "--ipc", "--net", "--fork"]).arg(&tru);
            c
        } else {
            Command::new(&tru)
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        match proc::run(&mut cmd, TIMEOUT) {
            Ok(o) if o.reaped.code == 0 => {
                self.samples.push("run", which, ms(o.wall));
                self.samples.push("rss_run", which, mib(o.reaped.maxrss_kib));
            }
            Ok(o) => self.samples.fail("run", which, format!("{} exited {}", proc::describe(&cmd), o.reaped.code)),
            Err(e) => self.samples.fail("run", which, e.to_string()),
        }
    }
}

#[derive(Clone, Copy)]
enum Entry {
    Rt(usize),
    Floor(&'static str),
}

/// An absolute path for `bin`: as given if it has a `/` (made absolute),
/// else the first match on `PATH` (bundles are made in other directories).
pub fn resolve(bin: &Path) -> Result<PathBuf> {
    if bin.as_os_str().to_string_lossy().contains('/') {
        return std::fs::canonicalize(bin).io("find", bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Setup(format!("{} not found on PATH", bin.display())))
}

/// Set everything up, measure, tear everything down.
pub fn run(o: &Opts) -> Result<Results> {
    let hid_unified = env::isolate(true)?;
    env::become_subreaper()?;
    let mut machine = machine();
    let t_start = Instant::now();
    let work = WorkDir::new("fdbox-bench")?;
    let rootfs = work.path().join("rootfs");
    bundle::make_rootfs(&rootfs, &o.busybox)?;

    let mut b = Bench { prefix: format!("fb{}", std::process::id()), counter: 0, rts: Vec::new(), samples: Samples::default(), notes: Vec::new() };
    let mut versions = Vec::new();
    for (name, bin) in [("fdbox", &o.fdbox), ("crun", &o.crun), ("runc", &o.runc)] {
        let bin = &match resolve(bin) {
            Ok(b) => b,
            Err(e) => {
                b.notes.push(format!("{name} left out: {e}"));
                continue;
            }
        };
        let dir = work.path().join(name);
        let version = first_line(bin, "--version");
        let made = (|| -> Result<Rt> {
            let root = dir.join("state");
            std::fs::create_dir_all(&root).io("mkdir", &root)?;
            let bundle = bundle::make_bundle(bin, &dir.join("bundle"), &rootfs, &["/bin/true"])?;
            let exec_bundle = bundle::make_bundle(bin, &dir.join("exec-bundle"), &rootfs, &["/bin/sleep", "1000000"])?;
            Ok(Rt {
                name,
                bin: bin.clone(),
                version: version.clone(),
                root,
                bundle,
                exec_bundle,
                err: dir.join("stderr.log"),
                pidfile: dir.join("pid"),
                exec: None,
                live: BTreeSet::new(),
            })
        })();
        let mut rt = match made {
            Ok(rt) => rt,
            Err(e) => {
                b.notes.push(format!("{name} left out: {e}"));
                continue;
            }
        };
        // A smoke run: a runtime that cannot run the bundle at all is left
        // out with the reason, rather than failing every round.
        let id = b.id(name);
        if let Err(e) = rt.run_once(id) {
            b.notes.push(format!("{name} left out: its first `run` failed: {e}"));
            continue;
        }
        if !has_command(bin, "exec") {
            b.notes.push(format!("{name} has no `exec` command yet: its exec rows are empty (the benchmark measures it once `{name} exec --help` succeeds)"));
        } else {
            let id = format!("{}-{name}-exec", b.prefix);
            if let Err(e) = rt.start_exec_target(id) {
                b.notes.push(format!("{name}: exec left out: its long-running container failed to start: {e}"));
            } else if let Err(e) = rt.exec_once() {
                b.notes.push(format!("{name}: exec left out: its first `exec` failed: {e}"));
                rt.stop_exec_target();
            }
        }
        versions.push((name.to_string(), rt.version.clone()));
        b.rts.push(rt);
    }
    proc::reap_strays();

    let all: Vec<usize> = (0..b.rts.len()).collect();
    let mut entries: Vec<Entry> = all.iter().map(|&i| Entry::Rt(i)).collect();
    entries.extend(FLOORS.iter().map(|f| Entry::Floor(f)));
    let with_exec: Vec<usize> = all.iter().copied().filter(|&i| b.rts[i].exec.is_some()).collect();
    for r in 0..o.rounds {
        b.samples.round = r;
        for e in rotated(&entries, r) {
            match e {
                Entry::Rt(i) => b.record_run(i),
                Entry::Floor(f) => b.record_floor(f, &rootfs),
            }
        }
        for i in rotated(&all, r) {
            b.record_lifecycle(i);
        }
        for i in rotated(&with_exec, r) {
            b.record_exec(i);
        }
        proc::reap_strays();
        if (r + 1) % 10 == 0 || r + 1 == o.rounds {
            eprintln!("fdbox-bench: round {}/{} done ({:.0} s)", r + 1, o.rounds, t_start.elapsed().as_secs_f64());
        }
    }
    for r in 0..o.seq_rounds {
        b.samples.round = r;
        for i in rotated(&all, r) {
            let ids: Vec<String> = (0..o.seq_n).map(|_| b.id(b.rts[i].name)).collect();
            let name = b.rts[i].name;
            match b.rts[i].sequential(ids) {
                Ok(d) => b.samples.push("seq", name, d.as_secs_f64()),
                Err(e) => b.samples.fail("seq", name, e.to_string()),
            }
        }
        proc::reap_strays();
        eprintln!("fdbox-bench: {} sequential runs, round {}/{} done", o.seq_n, r + 1, o.seq_rounds);
    }
    for r in 0..o.conc_rounds {
        b.samples.round = r;
        for i in rotated(&all, r) {
            let ids: Vec<String> = (0..o.conc_n).map(|_| b.id(b.rts[i].name)).collect();
            let name = b.rts[i].name;
            match b.rts[i].concurrent(ids) {
                Ok(d) => b.samples.push("conc", name, d.as_secs_f64()),
                Err(e) => b.samples.fail("conc", name, e.to_string()),
            }
        }
        proc::reap_strays();
    }
    eprintln!("fdbox-bench: {} concurrent runs, {} rounds done", o.conc_n, o.conc_rounds);

    // Tear down: the exec targets, anything a failure left, the orphans.
    let mut leftovers = Vec::new();
    for rt in &mut b.rts {
        rt.stop_exec_target();
        let ids: Vec<String> = rt.live.iter().cloned().collect();
        for id in ids {
            rt.cleanup(&id);
        }
        leftovers.extend(rt.live.iter().map(|id| format!("{}: container {id} could not be deleted", rt.name)));
    }
    proc::reap_strays();
    // A cgroup a runtime left behind is reported, and removed (innermost
    // first; rmdir refuses a cgroup that still has processes).
    // (With unified hidden, what crun writes under /sys/fs/cgroup/unified
    // are plain files in our throwaway tmpfs, not cgroups: skip it.)
    let mut cgs: Vec<String> = cgroups_named(&b.prefix)
        .into_iter()
        .filter(|p| !(hid_unified && p.starts_with("/sys/fs/cgroup/unified/")))
        .collect();
    cgs.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in cgs {
        let removed = std::fs::remove_dir(&p).is_ok();
        leftovers.push(format!("cgroup {p}{}", if removed { " (removed by the benchmark)" } else { " (could not be removed)" }));
    }
    machine.load_after = read_trim("/proc/loadavg");
    drop(work);
    Ok(Results {
        opts_rounds: (o.rounds, o.seq_rounds, o.conc_rounds),
        seq_n: o.seq_n,
        conc_n: o.conc_n,
        samples: b.samples,
        versions,
        notes: b.notes,
        hid_unified,
        machine,
        elapsed: t_start.elapsed(),
        leftovers,
        extra_notes: o.notes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_order() {
        let v = ["a", "b", "c"];
        assert_eq!(rotated(&v, 0), ["a", "b", "c"]);
        assert_eq!(rotated(&v, 1), ["b", "c", "a"]);
        assert_eq!(rotated(&v, 2), ["c", "a", "b"]);
        assert_eq!(rotated(&v, 3), ["a", "b", "c"]);
        assert!(rotated::<u8>(&[], 5).is_empty());
    }
}

//! Issue 6: the cgroups of real containers, checked where a user would look: the control files
//! on the host (and inside the container where it can see them), and the output of `pause`,
//! `resume`, `ps`, `events`, `update` and `kill --all`.
//!
//! Every container's cgroup is `/fdbox-test/<id>` in every hierarchy (the harness writes that
//! `linux.cgroupsPath`). The file names depend on the layout, detected with
//! `fdbox_cgroups::detect()`: on v1 and hybrid hosts the v1 controller files
//! (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, `freezer.state`, …), on pure v2 their
//! cgroup2 counterparts (`memory.max`, `cpu.max`, `cgroup.freeze`, …).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use fdbox_cgroups::Layout;
use fdbox_tests::*;

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Where the files are, per layout
// ---------------------------------------------------------------------------------------------

fn layout() -> Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    *L.get_or_init(|| fdbox_cgroups::detect().unwrap_or_else(|e| panic!("detecting the cgroup layout: {e}")))
}

fn v2() -> bool {
    layout() == Layout::Unified
}

/// The mount point of the hierarchy that holds controller `ctrl`: the cgroup2 mount on a pure
/// v2 host, else the v1 mount whose options name it.
fn hierarchy(ctrl: &str) -> PathBuf {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mounts = parse_mountinfo(&info);
    let found = if v2() {
        mounts.iter().find(|m| m.fstype == "cgroup2")
    } else {
        mounts
            .iter()
            .find(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == ctrl))
    };
    match found {
        Some(m) => PathBuf::from(&m.mount_point),
        None => panic!("no cgroup hierarchy with the {ctrl} controller is mounted ({:?})", layout()),
    }
}

/// `key value` lines (memory.events, cpu.stat, …): the value of `key`.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A limit as the kernel shows it: `max` (v2) and v1's huge "unlimited" value are `None`.
fn limit(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => None,
        t => t.parse::<u64>().ok().filter(|v| *v < (1 << 62)),
    }
}

/// One container's cgroup, as the host sees it.
struct Cg {
    /// The cgroup path relative to each hierarchy's root, e.g. `fdbox-test/<id>`.
    rel: String,
}

impl Cg {
    fn of(c: &Container) -> Cg {
        Cg::at(&c.env.cgroups_path_of(&c.id))
    }

    fn at(cgroups_path: &str) -> Cg {
        assert!(cgroups_path.starts_with('/'), "the tests use absolute cgroup paths: {cgroups_path}");
        Cg { rel: cgroups_path.trim_start_matches('/').to_string() }
    }

    fn dir(&self, ctrl: &str) -> PathBuf {
        hierarchy(ctrl).join(&self.rel)
    }

    #[track_caller]
    fn read(&self, ctrl: &str, file: &str) -> String {
        let p = self.dir(ctrl).join(file);
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    /// The memory limit in bytes (`None`: unlimited).
    fn memory_limit(&self) -> Option<u64> {
        limit(&self.read("memory", if v2() { "memory.max" } else { "memory.limit_in_bytes" }))
    }

    /// Memory plus swap, as OCI's `memory.swap` counts it (v1 memsw; v2 max + swap.max).
    fn memory_and_swap_limit(&self) -> Option<u64> {
        if v2() {
            let swap = limit(&self.read("memory", "memory.swap.max"))?;
            Some(self.memory_limit()? + swap)
        } else {
            limit(&self.read("memory", "memory.memsw.limit_in_bytes"))
        }
    }

    /// How many processes the OOM killer killed in the cgroup.
    fn oom_kills(&self) -> u64 {
        let (file, text) = if v2() {
            ("memory.events", self.read("memory", "memory.events"))
        } else {
            ("memory.oom_control", self.read("memory", "memory.oom_control"))
        };
        keyed(&text, "oom_kill").unwrap_or_else(|| panic!("no oom_kill in {file}: {text}"))
    }

    fn pids_max(&self) -> Option<u64> {
        limit(&self.read("pids", "pids.max"))
    }

    fn pids_current(&self) -> u64 {
        self.read("pids", "pids.current").trim().parse().expect("pids.current is a number")
    }

    /// How often a fork failed at the limit (`max` of pids.events).
    fn pids_limit_hits(&self) -> u64 {
        let text = self.read("pids", "pids.events");
        keyed(&text, "max").unwrap_or_else(|| panic!("no max in pids.events: {text}"))
    }

    /// (quota, period) in µs; quota `None` is unlimited.
    fn cpu_quota(&self) -> (Option<u64>, u64) {
        if v2() {
            let text = self.read("cpu", "cpu.max");
            let mut f = text.split_whitespace();
            let quota = limit(f.next().unwrap_or_default());
            let period = f.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("cpu.max: {text}"));
            (quota, period)
        } else {
            let quota = self.read("cpu", "cpu.cfs_quota_us").trim().parse::<i64>().expect("cfs_quota_us");
            let period = self.read("cpu", "cpu.cfs_period_us").trim().parse().expect("cfs_period_us");
            ((quota >= 0).then_some(quota as u64), period)
        }
    }

    fn cpu_throttled_periods(&self) -> u64 {
        let text = self.read("cpu", "cpu.stat");
        keyed(&text, "nr_throttled").unwrap_or_else(|| panic!("no nr_throttled in cpu.stat: {text}"))
    }

    fn frozen(&self) -> bool {
        if v2() {
            keyed(&self.read("freezer", "cgroup.events"), "frozen") == Some(1)
        } else {
            self.read("freezer", "freezer.state").trim() == "FROZEN"
        }
    }

    /// The pids listed in the cgroup's `cgroup.procs` (the pids hierarchy on v1).
    fn procs(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .read("pids", "cgroup.procs")
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        v.sort();
        v
    }

    /// The hierarchies in which this cgroup exists.
    fn existing(&self) -> Vec<PathBuf> {
        cgroup_mount_points()
            .into_iter()
            .map(|mp| mp.join(&self.rel))
            .filter(|p| p.is_dir())
            .collect()
    }

    #[track_caller]
    fn assert_gone(&self) {
        let left = self.existing();
        assert!(left.is_empty(), "cgroup {} left behind in: {left:?}", self.rel);
    }
}

/// The file with the memory limit as the container sees it at /sys/fs/cgroup (with its own
/// cgroup namespace, whose root is the container's cgroup).
fn memory_limit_file_inside() -> &'static str {
    if v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    }
}

fn add_cgroup_namespace(env: &Env) {
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("linux.namespaces is a list");
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({ "type": "cgroup" }));
        }
    });
}

/// `ps -f json ID`: the pids, sorted.
#[track_caller]
fn ps_json(c: &Container) -> Vec<i32> {
    let out = c.env.rt(&["ps", "-f", "json", &c.id]).ok();
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("ps -f json is not JSON ({e}): {out}"));
    let mut pids: Vec<i32> = v
        .as_array()
        .unwrap_or_else(|| panic!("ps -f json is not a list: {out}"))
        .iter()
        .map(|p| p.as_i64().unwrap_or_else(|| panic!("not a pid: {p} in {out}")) as i32)
        .collect();
    pids.sort();
    pids
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(n - 3).map(str::to_string)
}

fn ppid(pid: i32) -> Option<i32> {
    stat_field(pid, 4)?.parse().ok()
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// The live children of `pid`.
fn children(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ppid(*p) == Some(pid) && pid_alive(*p))
        .collect();
    v.sort();
    v
}

/// The stdout lines of a runtime command that are JSON objects.
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

/// A 32 MiB limit with no swap shows in the host's memory cgroup and inside the container; an
/// allocation of 100 MB past it is OOM-killed, and `events` (started before) reports the OOM.
#[test]
fn memory_limit_is_enforced_and_oom_is_reported() {
    let Some(env) = Env::new("cg-memory") else { return };
    let lim = 32 * MIB;
    env.set("/linux/resources/memory", json!({ "limit": lim, "swap": lim }));
    add_cgroup_namespace(&env);
    env.sh(&format!(
        "echo inside=$(cat {}); \
         sh -c 'echo 1000 > /proc/self/oom_score_adj; exec tail /dev/zero'; \
         echo child=$?",
        memory_limit_file_inside()
    ));
    let c = env.container("oom");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    assert_eq!(cg.memory_limit(), Some(lim), "host side memory limit");
    assert_eq!(cg.memory_and_swap_limit(), Some(lim), "memory + swap (swap disabled)");
    assert_eq!(cg.oom_kills(), 0);

    // events first: its first stats line shows it is watching before the container runs.
    let mut events = env.spawn(&["events", "--interval", "200ms", &c.id]);
    events.wait_for_stdout("\"type\":\"stats\"");
    c.start().ok();
    c.wait_status("stopped");
    let out = c.stdout();
    assert!(out.contains(&format!("inside={lim}\n")), "the container does not see its limit: {out}");
    assert!(out.contains("child=137\n"), "the allocation was not SIGKILLed: {out}");
    assert!(cg.oom_kills() >= 1, "no OOM kill counted in the cgroup");

    events.wait_for_stdout("\"type\":\"oom\"");
    let lines = json_lines(&events.stdout());
    let oom: Vec<&Value> = lines.iter().filter(|l| l["type"] == "oom").collect();
    assert!(!oom.is_empty());
    for l in &oom {
        assert_eq!(l["id"], c.id.as_str(), "{l}");
    }
    for l in &lines {
        assert!(l["type"] == "oom" || l["type"] == "stats", "unexpected event {l}");
        assert_eq!(l["id"], c.id.as_str(), "{l}");
    }
    drop(events);
    c.delete(&[]).ok();
    cg.assert_gone();
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Pids
// ---------------------------------------------------------------------------------------------

/// A pids limit of 10 (visible inside the container, whose /sys/fs/cgroup shows its own
/// cgroup) stops a loop that would start 50 sleeps: forks fail, the shell that forks gives up,
/// and the cgroup never holds more than 10 tasks.
#[test]
fn pids_limit_stops_a_fork_bomb() {
    let Some(env) = Env::new("cg-pids") else { return };
    env.set("/linux/resources/pids", json!({ "limit": 10 }));
    let inside = if v2() { "/sys/fs/cgroup/pids.max" } else { "/sys/fs/cgroup/pids/pids.max" };
    env.sh(&format!(
        "echo inside=$(cat {inside}); \
         sh -c 'for i in $(seq 50); do sleep 60 & echo started=$i; done' 2>&1; echo bomb=$?; exec sleep 60"
    ));
    let c = env.container("pids");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    assert_eq!(cg.pids_max(), Some(10));
    c.start().ok();
    let out = c.wait_for_stdout("bomb=");
    let started = out
        .lines()
        .filter_map(|l| l.strip_prefix("started="))
        .filter_map(|n| n.parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    assert!((1..50).contains(&started), "{started} sleeps started under a limit of 10: {out}");
    assert!(out.starts_with("inside=10\n"), "the container does not see its limit: {out}");
    assert!(!out.contains("bomb=0"), "the forking shell did not fail: {out}");
    let current = cg.pids_current();
    assert!(current <= 10, "pids.current {current} > 10");
    assert!(cg.pids_limit_hits() >= 1, "pids.events counts no fork refused at the limit");
    let pids = ps_json(&c);
    assert!(pids.len() <= 10, "ps lists {} processes: {pids:?}", pids.len());
    // The init (now `sleep 60`) and every sleep that did start.
    assert_eq!(pids.len() as u32, started + 1, "{pids:?}\n{out}");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// CPU
// ---------------------------------------------------------------------------------------------

/// A cpu quota of 20 ms per 100 ms shows in cpu.cfs_quota_us/cfs_period_us (v2: cpu.max), and
/// a busy loop gets throttled.
#[test]
fn cpu_quota_is_set_and_throttles() {
    let Some(env) = Env::new("cg-cpu") else { return };
    env.set("/linux/resources/cpu", json!({ "quota": 20000, "period": 100000 }));
    env.sh("while :; do :; done");
    let c = env.container("cpu");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    assert_eq!(cg.cpu_quota(), (Some(20000), 100000));
    // The init's own setup may already have been throttled (on a slow,
    // emulated CPU it is): what counts is the busy loop after start.
    let before = cg.cpu_throttled_periods();
    c.start().ok();
    wait_until(TIMEOUT, "the busy loop to be throttled", || (cg.cpu_throttled_periods() > before).then_some(()));
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// pause / resume
// ---------------------------------------------------------------------------------------------

/// The counter the container below keeps in /dev/shm (its own tmpfs), read through
/// /proc/PID/root; `None` while the shell is between truncating and writing it.
fn counter(pid: i32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/root/dev/shm/count")).ok()?.trim().parse().ok()
}

#[track_caller]
fn wait_counter_above(pid: i32, floor: Option<u64>) -> u64 {
    wait_until(TIMEOUT, "the counter to advance", || counter(pid).filter(|n| Some(*n) > floor))
}

/// `pause` freezes every process (a counter stops), `state` says "paused"; `resume` thaws
/// ("running", the counter goes on). Pausing twice or resuming a running container fails.
/// A paused container can be deleted with `delete -f`.
#[test]
fn pause_freezes_and_resume_thaws() {
    let Some(env) = Env::new("cg-pause") else { return };
    env.sh("i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count; done");
    let c = env.container("pause");
    let pid = c.create_and_start();
    let cg = Cg::of(&c);
    let first = wait_counter_above(pid, None);
    wait_counter_above(pid, Some(first));
    assert!(!cg.frozen());

    c.env.rt(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    assert!(cg.frozen(), "the freezer does not say frozen");
    let a = counter(pid);
    std::thread::sleep(Duration::from_millis(300));
    let b = counter(pid);
    assert_eq!(a, b, "the counter moved while paused");
    assert!(pid_alive(pid));
    env.rt(&["pause", &c.id]).fails_with_one_line();
    assert_eq!(c.status(), "paused");

    env.rt(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");
    assert!(!cg.frozen());
    let after = wait_counter_above(pid, b);
    wait_counter_above(pid, Some(after));
    env.rt(&["resume", &c.id]).fails_with_one_line();
    assert_eq!(c.status(), "running");

    // A frozen process acts on SIGKILL only once thawed (v1): `kill KILL` and `delete -f` of
    // a paused container must see to that.
    env.rt(&["pause", &c.id]).ok();
    c.kill("KILL").ok();
    c.wait_status("stopped");
    assert!(!pid_alive(pid));
    c.delete(&[]).ok();
    cg.assert_gone();

    env.args(&["sleep", "1000"]);
    let d = env.container("pause-del");
    let dpid = d.create_and_start();
    env.rt(&["pause", &d.id]).ok();
    assert_eq!(d.status(), "paused");
    d.delete(&["-f"]).ok();
    env.assert_no_state(&d.id);
    assert!(!pid_alive(dpid));
    Cg::of(&d).assert_gone();
    drop((c, d));
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// ps
// ---------------------------------------------------------------------------------------------

/// `ps -f json` lists exactly the container's processes in the host's pid view: the init
/// alone while created, then the init and the sleep it started; the table form (with ps
/// options) shows the same pids.
#[test]
fn ps_lists_exactly_the_container_processes() {
    let Some(env) = Env::new("cg-ps") else { return };
    env.sh("sleep 1000 & echo started; wait");
    let c = env.container("ps");
    c.create(&[]).ok();
    let init = c.pid();
    assert_eq!(ps_json(&c), vec![init], "created: only the init");
    c.start().ok();
    c.wait_for_stdout("started");
    let kids = wait_until(TIMEOUT, "the sleep to start", || {
        let k = children(init);
        (k.len() == 1 && comm(k[0]) == "sleep").then_some(k)
    });
    let mut want = vec![init, kids[0]];
    want.sort();
    assert_eq!(ps_json(&c), want);
    assert_eq!(Cg::of(&c).procs(), want, "cgroup.procs");

    let out = env.rt(&["ps", &c.id, "-o", "pid,comm"]).ok();
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.split_whitespace().any(|h| h == "PID"), "{out}");
    let mut rows: Vec<(i32, String)> = lines
        .map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("bad row {l:?}: {out}"));
            (pid, f.next().unwrap_or_default().to_string())
        })
        .collect();
    rows.sort();
    let mut expect = vec![(init, "sh".to_string()), (kids[0], "sleep".to_string())];
    expect.sort();
    assert_eq!(rows, expect, "{out}");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// events --stats
// ---------------------------------------------------------------------------------------------

/// `events --stats` prints one runc-shaped JSON line with memory, cpu and pids figures that
/// match the container.
#[test]
fn events_stats_prints_one_runc_shaped_line() {
    let Some(env) = Env::new("cg-stats") else { return };
    let lim = 64 * MIB;
    env.set("/linux/resources/memory", json!({ "limit": lim }));
    env.set("/linux/resources/pids", json!({ "limit": 20 }));
    // Some cpu time first, then two processes that wait.
    env.sh("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000 & echo ready; wait");
    let c = env.container("stats");
    c.create_and_start();
    c.wait_for_stdout("ready");
    wait_until(TIMEOUT, "two processes in the container", || (ps_json(&c).len() == 2).then_some(()));

    let out = env.rt(&["events", "--stats", &c.id]).ok();
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "expected one line: {out}");
    let ev = &lines[0];
    assert_eq!(ev["type"], "stats", "{ev}");
    assert_eq!(ev["id"], c.id.as_str(), "{ev}");
    let d = &ev["data"];
    for key in ["cpu", "memory", "pids", "blkio"] {
        assert!(d[key].is_object(), "data.{key} missing: {ev}");
    }
    let num = |p: &str| d.pointer(p).and_then(Value::as_u64).unwrap_or_else(|| panic!("no number at data{p}: {ev}"));
    assert_eq!(num("/pids/current"), 2, "{ev}");
    assert_eq!(num("/pids/limit"), 20, "{ev}");
    let total = num("/cpu/usage/total");
    assert!(total > 1_000_000, "cpu usage {total} ns after a 20000-step shell loop: {ev}");
    let usage = num("/memory/usage/usage");
    assert!(usage > 0 && usage < lim, "memory usage {usage}: {ev}");
    assert_eq!(num("/memory/usage/limit"), lim, "{ev}");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------------------------

/// `update` changes limits of a running container: with runc's flags, with `-r FILE` and with
/// `-r -` (stdin); the cgroup files follow, the container keeps running, and a value the kernel
/// refuses is one error line that leaves the old limit.
#[test]
fn update_changes_limits_live() {
    let Some(env) = Env::new("cg-update") else { return };
    env.set("/linux/resources/memory", json!({ "limit": 32 * MIB, "swap": 32 * MIB }));
    env.set("/linux/resources/pids", json!({ "limit": 10 }));
    env.set("/linux/resources/cpu", json!({ "quota": 20000, "period": 100000 }));
    env.args(&["sleep", "1000"]);
    let c = env.container("upd");
    let pid = c.create_and_start();
    let cg = Cg::of(&c);
    assert_eq!((cg.memory_limit(), cg.pids_max(), cg.cpu_quota()), (Some(32 * MIB), Some(10), (Some(20000), 100000)));

    env.rt(&["update", "--memory", "64m", "--memory-swap", "64m", "--pids-limit", "20", "--cpu-quota", "50000", &c.id])
        .ok();
    assert_eq!(cg.memory_limit(), Some(64 * MIB));
    assert_eq!(cg.memory_and_swap_limit(), Some(64 * MIB));
    assert_eq!(cg.pids_max(), Some(20));
    assert_eq!(cg.cpu_quota(), (Some(50000), 100000));

    // Smaller again, from a file: memory then swap must be written in the right order.
    let file = env.dir.join("resources.json");
    fs::write(&file, json!({ "memory": { "limit": 48 * MIB, "swap": 48 * MIB }, "pids": { "limit": 15 } }).to_string())
        .unwrap();
    env.rt(&["update", "-r", file.to_str().unwrap(), &c.id]).ok();
    assert_eq!(cg.memory_limit(), Some(48 * MIB));
    assert_eq!(cg.memory_and_swap_limit(), Some(48 * MIB));
    assert_eq!(cg.pids_max(), Some(15));
    assert_eq!(cg.cpu_quota(), (Some(50000), 100000), "a limit not in the update is kept");

    let stdin = json!({ "pids": { "limit": 12 }, "cpu": { "quota": 30000, "period": 200000 } }).to_string();
    env.rt_with_stdin(&["update", "-r", "-", &c.id], stdin.as_bytes()).ok();
    assert_eq!(cg.pids_max(), Some(12));
    assert_eq!(cg.cpu_quota(), (Some(30000), 200000));
    assert_eq!(cg.memory_limit(), Some(48 * MIB));

    // The kernel refuses a quota below 1 ms.
    env.rt(&["update", "--cpu-quota", "500", &c.id]).fails_with_one_line();
    assert_eq!(cg.cpu_quota(), (Some(30000), 200000));

    // The stats see the new limits too, and the container never stopped.
    let out = env.rt(&["events", "--stats", &c.id]).ok();
    let ev = &json_lines(&out.stdout)[0];
    assert_eq!(ev["data"]["pids"]["limit"], 12, "{ev}");
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 48 * MIB, "{ev}");
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// kill --all
// ---------------------------------------------------------------------------------------------

/// `kill ID TERM` reaches only the init (which, as a pid namespace init without a handler,
/// ignores it); `kill --all ID TERM` reaches the two background sleeps; `kill -a ID KILL`
/// ends everything.
#[test]
fn kill_all_signals_every_process() {
    let Some(env) = Env::new("cg-kill-all") else { return };
    env.sh("sleep 1000 & sleep 1000 & echo started; wait; echo waited; exec sleep 1000");
    let c = env.container("killall");
    let init = c.create_and_start();
    c.wait_for_stdout("started");
    let sleeps = wait_until(TIMEOUT, "two sleeps", || {
        let k = children(init);
        (k.len() == 2).then_some(k)
    });

    c.kill("TERM").ok();
    std::thread::sleep(Duration::from_millis(200));
    assert!(sleeps.iter().all(|p| pid_alive(*p)), "a plain kill reached a child");
    assert_eq!(ps_json(&c).len(), 3);

    env.rt(&["kill", "--all", &c.id, "TERM"]).ok();
    c.wait_for_stdout("waited");
    wait_until(TIMEOUT, "the sleeps to die", || sleeps.iter().all(|p| !pid_alive(*p)).then_some(()));
    assert_eq!(c.status(), "running", "the init ignores TERM");
    wait_until(TIMEOUT, "only the init left", || (ps_json(&c) == vec![init]).then_some(()));

    env.rt(&["kill", "-a", &c.id, "KILL"]).ok();
    c.wait_status("stopped");
    assert!(!pid_alive(init));
    assert_eq!(Cg::of(&c).procs(), Vec::<i32>::new());
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------------------------

/// The hierarchies a process is in whose path is not `want`, from `/proc/<pid>/cgroup`
/// (`id:controllers:path`; a cgroup2 line has no controllers).
fn hierarchies_elsewhere(pid: i32, want: &str) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "/proc/{pid}/cgroup is empty");
    lines.into_iter().filter(|l| l.splitn(3, ':').nth(2) != Some(want)).map(str::to_string).collect()
}

/// The init is in the container's cgroup in every hierarchy (v1 controllers, named ones like
/// name=systemd, and the cgroup2 one of a hybrid host) as soon as `create` returns, and so
/// is a process `exec` starts.
#[test]
fn init_and_exec_are_in_the_cgroup_in_every_hierarchy() {
    let Some(env) = Env::new("cg-member") else { return };
    env.args(&["sleep", "1000"]);
    let c = env.container("member");
    c.create(&[]).ok();
    let want = env.cgroups_path_of(&c.id);
    let init = c.pid();
    assert_eq!(hierarchies_elsewhere(init, &want), Vec::<String>::new(), "the created init is outside {want} in these");
    c.start().ok();
    let exec = env.rt(&["exec", "--detach", "--pid-file", &env.subdir("x").join("pid").display().to_string(), &c.id, "sleep", "1000"]);
    exec.ok();
    let pid: i32 = fs::read_to_string(env.subdir("x").join("pid")).expect("exec pid file").trim().parse().expect("a pid");
    assert_eq!(hierarchies_elsewhere(pid, &want), Vec::<String>::new(), "the exec'd process is outside {want} in these");
    let mut want_procs = vec![init, pid];
    want_procs.sort();
    assert_eq!(ps_json(&c), want_procs);
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Nothing left behind
// ---------------------------------------------------------------------------------------------

/// The container's cgroup exists in every hierarchy while it lives and in none after
/// `delete` (and after a foreground `run`).
#[test]
fn delete_removes_the_cgroup_everywhere() {
    let Some(env) = Env::new("cg-delete") else { return };
    env.set("/linux/resources/memory", json!({ "limit": 64 * MIB }));
    env.args(&["sleep", "1000"]);
    let c = env.container("del");
    c.create_and_start();
    let cg = Cg::of(&c);
    let existing = cg.existing();
    for ctrl in ["memory", "pids", "cpu", "freezer", "devices"] {
        assert!(existing.contains(&cg.dir(ctrl)), "no {ctrl} cgroup: {existing:?}");
    }
    if is_fdbox() {
        // fdbox makes the cgroup in every mounted hierarchy (cgroup2 and name=systemd too).
        assert_eq!(existing.len(), cgroup_mount_points().len(), "{existing:?}");
    }
    c.kill("KILL").ok();
    c.wait_status("stopped");
    assert!(!cg.existing().is_empty(), "the cgroup went before delete");
    c.delete(&[]).ok();
    cg.assert_gone();

    env.sh("echo ran");
    let r = env.container("run");
    let out = r.run(&[]).ok();
    assert_eq!(out.stdout, "ran\n");
    Cg::of(&r).assert_gone();
    drop((c, r));
    env.assert_clean();
}

/// Every cgroup directory named `name` up to `depth` levels below each hierarchy root.
fn find_cgroups_named(name: &str, depth: usize) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(|e| e.ok()) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name() == name {
                out.push(p.clone());
            }
            if depth > 1 {
                walk(&p, name, depth - 1, out);
            }
        }
    }
    let mut out = vec![];
    for mp in cgroup_mount_points() {
        walk(&mp, name, depth, &mut out);
    }
    out
}

/// A failed create leaves no state dir, no process and no cgroup.
#[track_caller]
fn assert_create_fails_cleanly(c: &Container, out: Output, cgroups_path: &str) {
    out.fails_with_one_line();
    c.env.assert_no_state(&c.id);
    if cgroups_path.starts_with('/') && !cgroups_path.contains("..") {
        Cg::at(cgroups_path).assert_gone();
    }
    c.env.assert_clean();
}

/// Resources that cannot be applied fail the create with one line and leave nothing: a
/// memory limit of 1 byte (the init cannot even start), a quota below the kernel's 1 ms
/// minimum, a cpuset naming a cpu that does not exist, a unified key for a file that does not
/// exist.
#[test]
fn failed_create_leaves_no_cgroup() {
    let Some(env) = Env::new("cg-bad-resources") else { return };
    env.args(&["true"]);
    let cases = [
        ("memory limit of 1 byte", json!({ "memory": { "limit": 1 } })),
        ("cpu quota below the minimum", json!({ "cpu": { "quota": 500, "period": 100000 } })),
        ("cpuset of a cpu that does not exist", json!({ "cpu": { "cpus": "4095" } })),
        ("unified key naming no file", json!({ "unified": { "cgroup.fdbox-no-such-file": "1" } })),
    ];
    for (what, resources) in cases {
        env.set("/linux/resources", resources);
        let c = env.container("bad");
        let path = env.cgroups_path_of(&c.id);
        let out = c.create(&[]);
        if is_runc() && out.success() {
            skip(&format!("runc accepts a {what}"));
            continue;
        }
        assert!(!out.success(), "{what}: {out}");
        if what.contains("1 byte") && is_fdbox() {
            assert!(out.stderr.contains("OOM"), "{what}: the error should say the init was OOM-killed: {out}");
        }
        assert_create_fails_cleanly(&c, out, &path);
    }
}

/// A cgroupsPath with `..` is refused (it could name a cgroup outside the hierarchy): one
/// line, nothing created anywhere.
#[test]
fn cgroups_path_with_dot_dot_is_refused() {
    let Some(env) = Env::new("cg-bad-path") else { return };
    let name = format!("fdbox-escape-{}", env.id("x"));
    for path in [format!("/{TEST_CGROUP_PARENT}/../{name}"), format!("{TEST_CGROUP_PARENT}/../../{name}")] {
        env.set("/linux/cgroupsPath", json!(path));
        let c = env.container("esc");
        let out = c.create(&[]);
        if is_runc() && out.success() {
            // runc cleans the path lexically instead of refusing it.
            skip(&format!("runc accepts cgroupsPath {path}"));
            drop(c);
            continue;
        }
        assert_create_fails_cleanly(&c, out, &path);
        let made = find_cgroups_named(&name, 4);
        assert!(made.is_empty(), "cgroupsPath {path} created {made:?}");
    }
    env.assert_clean();
}

/// The cgroup of a running container cannot be taken by a second one: the second create
/// fails with one line and the first container and its cgroup are untouched.
#[test]
fn cgroups_path_of_a_running_container_is_refused() {
    let Some(env) = Env::new("cg-in-use") else { return };
    env.args(&["sleep", "1000"]);
    let first = env.container("first");
    let pid = first.create_and_start();
    let path = env.cgroups_path_of(&first.id);
    let cg = Cg::at(&path);
    assert_eq!(cg.procs(), vec![pid]);

    env.set("/linux/cgroupsPath", json!(path));
    let second = env.container("second");
    let out = second.create(&[]);
    if is_runc() && out.success() {
        skip("runc lets a second container join a used cgroup");
        return;
    }
    out.fails_with_one_line();
    env.assert_no_state(&second.id);
    assert_eq!(first.status(), "running");
    assert_eq!(cg.procs(), vec![pid], "the first container's cgroup changed");
    env.assert_only_processes(&[pid]);
    drop(second);
    drop(first);
    cg.assert_gone();
    env.assert_clean();
}

/// `--systemd-cgroup`: fdbox has no systemd driver and says so.
#[test]
fn systemd_cgroup_is_not_supported() {
    let Some(env) = Env::new("cg-systemd") else { return };
    if is_runc() {
        return skip("runc implements --systemd-cgroup");
    }
    env.write_config();
    let c = env.container("sd");
    let out = env.rt(&["--systemd-cgroup", "create", "--bundle", env.bundle.to_str().unwrap(), &c.id]);
    let out = out.fails_with_one_line();
    assert!(out.stderr.contains("not supported"), "{out}");
    env.assert_no_state(&c.id);
    drop(c);
    env.assert_clean();
}

/// The harness puts every test container's cgroup at `/fdbox-test/<id>`, never under the
/// runtime's default parent.
#[test]
fn test_containers_live_under_the_test_parent() {
    let Some(env) = Env::new("cg-parent") else { return };
    env.args(&["sleep", "1000"]);
    let c = env.container("parent");
    c.create(&[]).ok();
    let path = env.cgroups_path_of(&c.id);
    assert_eq!(path, format!("/{TEST_CGROUP_PARENT}/{}", c.id));
    let pid = c.pid();
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the init's /proc/PID/cgroup");
    for line in own.lines() {
        assert!(line.ends_with(&format!(":{path}")), "the init is not in {path}: {own}");
    }
    assert!(!hierarchy("memory").join("fdbox").join(&c.id).exists(), "the test container used /fdbox");
    drop(c);
    env.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Parity with runc (issues 16 and 22)
// ---------------------------------------------------------------------------------------------

/// Issue 22: the `linux.resources` block dockerd writes for a container without limits: every
/// field present with its zero value (`"blockIO": {"weight": 0}`, shares/quota/period 0, pids
/// 0, …). runc treats each zero as "not set"; so must fdbox (a blkio weight of 0 made every
/// `docker run` fail on a host without blkio.weight).
#[test]
fn docker_shaped_zero_resources_are_not_set() {
    let Some(env) = Env::new("cg-docker-zero") else { return };
    env.set(
        "/linux/resources",
        json!({
            "devices": [
                { "allow": false, "access": "rwm" },
                { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
                { "allow": true, "type": "c", "major": 136, "access": "rwm" }
            ],
            "memory": { "limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "disableOOMKiller": false },
            "cpu": { "shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": "" },
            "pids": { "limit": 0 },
            "blockIO": { "weight": 0, "leafWeight": 0 }
        }),
    );
    env.args(&["sleep", "1000"]);
    let c = env.container("dz");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    assert_eq!(cg.memory_limit(), None, "memory limit 0 must leave it unlimited");
    assert_eq!(cg.pids_max(), None, "pids limit 0 must leave it unlimited");
    assert_eq!(cg.cpu_quota().0, None, "cpu quota 0 must leave it unlimited");
    c.start().ok();
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

/// Issue 16 item 16: `memory.kernelTCP` is set where the kernel has the file (cgroup v1
/// memory.kmem.tcp.limit_in_bytes), as crun does, and ignored where it does not (cgroup v2).
#[test]
fn memory_kernel_tcp_is_set_where_the_kernel_has_it() {
    let Some(env) = Env::new("cg-kmem-tcp") else { return };
    let lim = 16 * MIB;
    env.set("/linux/resources/memory", json!({ "kernelTCP": lim }));
    env.args(&["sleep", "1000"]);
    let c = env.container("ktcp");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    let file = cg.dir("memory").join("memory.kmem.tcp.limit_in_bytes");
    if v2() || !file.exists() {
        // nothing to set: the create above succeeded, which is the point here
    } else if is_fdbox() {
        assert_eq!(limit(&cg.read("memory", "memory.kmem.tcp.limit_in_bytes")), Some(lim));
    } else {
        // runc 1.1.5 warns "Kernel memory settings are ignored" and leaves it unlimited
        assert_eq!(limit(&cg.read("memory", "memory.kmem.tcp.limit_in_bytes")), None);
    }
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

/// The RT tests below share the RT budget of the test parent: one at a time.
static RT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test parent's directory in the cpu hierarchy, or why the RT tests cannot run here.
fn rt_parent() -> Result<PathBuf, &'static str> {
    if v2() {
        return Err("cgroup v2 has no RT group scheduling files");
    }
    let cpu = hierarchy("cpu");
    if !cpu.join("cpu.rt_runtime_us").exists() {
        return Err("the kernel has no CONFIG_RT_GROUP_SCHED (no cpu.rt_runtime_us)");
    }
    Ok(cpu.join(TEST_CGROUP_PARENT))
}

fn rt_runtime(dir: &Path) -> i64 {
    let p = dir.join("cpu.rt_runtime_us");
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display())).trim().parse().expect("a number")
}

/// Give the test parent (only it, never a cgroup above it) an RT budget of at least `us` per
/// second, for runtimes that do not raise parents themselves.
fn give_test_parent_rt(parent: &Path, us: i64) {
    fs::create_dir_all(parent).expect("mkdir the test parent in the cpu hierarchy");
    if rt_runtime(parent) < us {
        fs::write(parent.join("cpu.rt_runtime_us"), us.to_string()).expect("raising the test parent's RT budget");
    }
}

/// Take the test parent's RT budget back (best effort: another test's container may still use
/// it; the parent goes away with the last test anyway).
fn reset_test_parent_rt(parent: &Path) {
    // a child removed a moment ago keeps its budget in the kernel until it is freed
    for _ in 0..100 {
        if fs::write(parent.join("cpu.rt_runtime_us"), "0").is_ok() || !parent.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue 16 item 11: `cpu.realtimeRuntime` in a parent without an RT budget (the kernel starts
/// each new cgroup with `cpu.rt_runtime_us` 0, and refuses a child more than its parent has):
/// fdbox gives the container's parents what it asks for, top down, when they have less.
/// runc 1.1.5 does not (EINVAL), so under runc the test gives the parent its budget itself.
#[test]
fn realtime_runtime_gets_a_budget_from_the_parent() {
    let parent = match rt_parent() {
        Ok(p) => p,
        Err(why) => return skip(why),
    };
    let Some(env) = Env::new("cg-rt-parent") else { return };
    let _rt = RT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if is_runc() {
        give_test_parent_rt(&parent, 10_000);
    } else {
        reset_test_parent_rt(&parent);
    }
    env.set("/linux/resources/cpu", json!({ "realtimeRuntime": 10000, "realtimePeriod": 1000000 }));
    env.args(&["sleep", "1000"]);
    let c = env.container("rt");
    let out = c.create(&[]);
    let created = out.success();
    let cg = Cg::of(&c);
    if created {
        assert_eq!(cg.read("cpu", "cpu.rt_runtime_us").trim(), "10000");
        assert_eq!(cg.read("cpu", "cpu.rt_period_us").trim(), "1000000");
        assert!(rt_runtime(&parent) >= 10_000, "the parent has less than its child");
    }
    drop(c);
    reset_test_parent_rt(&parent);
    assert!(created, "create with realtimeRuntime failed: {out}");
    cg.assert_gone();
    env.assert_clean();
}

/// Issue 16 item 28: an update of the RT period and runtime is written in the order the kernel
/// accepts (runc since 1.2: the period first, and if the kernel refuses it, the runtime then the period;
/// runc 1.1.5 fails):
/// from 10000/1000000 µs to 50/5000 µs, the new period alone would be below the old runtime.
#[test]
fn update_realtime_writes_in_an_order_the_kernel_accepts() {
    let parent = match rt_parent() {
        Ok(p) => p,
        Err(why) => return skip(why),
    };
    let Some(env) = Env::new("cg-rt-update") else { return };
    let _rt = RT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    give_test_parent_rt(&parent, 10_000);
    env.set("/linux/resources/cpu", json!({ "realtimeRuntime": 10000, "realtimePeriod": 1000000 }));
    env.args(&["sleep", "1000"]);
    let c = env.container("rtu");
    let created = c.create(&[]);
    let cg = Cg::of(&c);
    let result = created.success().then(|| {
        let down = env.rt(&["update", "--cpu-rt-period", "5000", "--cpu-rt-runtime", "50", &c.id]);
        let after_down = (cg.read("cpu", "cpu.rt_period_us"), cg.read("cpu", "cpu.rt_runtime_us"));
        let up = env.rt(&["update", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "10000", &c.id]);
        let after_up = (cg.read("cpu", "cpu.rt_period_us"), cg.read("cpu", "cpu.rt_runtime_us"));
        (down, after_down, up, after_up)
    });
    drop(c);
    reset_test_parent_rt(&parent);
    let (down, after_down, up, after_up) = result.unwrap_or_else(|| panic!("create failed: {created}"));
    // runc 1.1.5 writes the period first and fails (EINVAL); later runc retries in this order
    if is_fdbox() {
        assert!(down.success(), "update to 50/5000 failed: {down}");
        assert_eq!((after_down.0.trim(), after_down.1.trim()), ("5000", "50"));
    }
    assert!(up.success(), "update back to 10000/1000000 failed: {up}");
    assert_eq!((after_up.0.trim(), after_up.1.trim()), ("1000000", "10000"));
    cg.assert_gone();
    env.assert_clean();
}

/// Issue 16 item 28: `update --cpu-quota -1` removes the quota (runc's flag parser takes -1).
#[test]
fn update_cpu_quota_minus_one_is_unlimited() {
    let Some(env) = Env::new("cg-quota-m1") else { return };
    env.set("/linux/resources/cpu", json!({ "quota": 20000, "period": 100000 }));
    env.args(&["sleep", "1000"]);
    let c = env.container("q");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    assert_eq!(cg.cpu_quota(), (Some(20000), 100000));
    env.rt(&["update", "--cpu-quota", "-1", &c.id]).ok();
    assert_eq!(cg.cpu_quota(), (None, 100000));
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

/// Issue 16 item 28: device access `a` in `linux.resources.devices` is ignored, as runc does
/// (`rwa` is `rw`), instead of refusing the config.
#[test]
fn device_access_a_is_ignored() {
    let Some(env) = Env::new("cg-dev-rwa") else { return };
    env.set(
        "/linux/resources/devices",
        json!([{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwa" }]),
    );
    env.args(&["sleep", "1000"]);
    let c = env.container("rwa");
    c.create(&[]).ok();
    let cg = Cg::of(&c);
    if !v2() {
        let list = cg.read("devices", "devices.list");
        assert!(list.lines().any(|l| l == "c 10:229 rw"), "devices.list: {list}");
    }
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

/// Issue 16 item 28: a cgroup that exists already and is frozen is refused at create (runc:
/// "container's cgroup unexpectedly frozen"), in one line, leaving nothing behind; the frozen
/// cgroup (not the runtime's) stays as it was.
#[test]
fn a_frozen_cgroup_is_refused() {
    let Some(env) = Env::new("cg-frozen") else { return };
    let c = env.container("frz");
    let cg = Cg::of(&c);
    let dir = cg.dir("freezer");
    fs::create_dir_all(&dir).expect("making the cgroup to freeze");
    if v2() {
        fs::write(dir.join("cgroup.freeze"), "1").expect("freezing it");
    } else {
        fs::write(dir.join("freezer.state"), "FROZEN").expect("freezing it");
    }
    assert!(cg.frozen());
    let out = c.create(&[]);
    let frozen_after = cg.frozen();
    if v2() {
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
    } else {
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
    }
    let _ = fs::remove_dir(&dir);
    let out = out.fails_with_one_line();
    assert!(out.stderr.contains("unexpectedly frozen"), "{out}");
    assert!(frozen_after, "the runtime thawed a cgroup that was not its own");
    env.assert_no_state(&c.id);
    drop(c);
    cg.assert_gone();
    env.assert_clean();
}

//! Property test (issue 15): random and mutated config.json documents go
//! through every check `create` makes before it creates anything (parsing,
//! `spec::validate` with the hook, process-attribute, sysctl, time-namespace
//! and id-map checks, mount options, capabilities, the seccomp compiler, the
//! device cgroup rules, the mounts' own id maps). None may panic (the release
//! build aborts on a panic, leaving a half-made container) and each case
//! must finish quickly. Bounded in time so that it runs in `make test`; the
//! seed is printed, and `FDBOX_FUZZ_SEED` / `FDBOX_FUZZ_SECS` replay or
//! lengthen a run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// xorshift64*: small, seedable, good enough to pick mutations.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break assumptions: limits of every integer type, negative,
/// fractional, huge, empty, odd strings and paths, wrong types.
pub(crate) fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(40) {
        0 => json!(u64::MAX),
        1 => json!(i64::MIN),
        2 => json!(i64::MAX),
        3 => json!(-1),
        4 => json!(0),
        5 => json!(1),
        6 => json!(u32::MAX),
        7 => json!(u32::MAX as u64 + 1),
        8 => json!(i32::MAX as u64 + 1),
        9 => json!(i32::MIN),
        10 => json!(1e308),
        11 => json!(-0.5),
        12 => json!(""),
        13 => json!("x".repeat(5000)),
        14 => json!("/"),
        15 => json!("../../../../etc"),
        16 => json!("a\u{0}b"),
        17 => Value::Null,
        18 => json!([]),
        19 => json!({}),
        20 => json!(true),
        21 => json!("proc"),
        22 => json!("18446744073709551616"),
        23 => json!(["ro", "rw", "bind", "rbind", "size=99999999999999999999", "mode=99999", "idmap", "uid=-1"]),
        24 => json!(u16::MAX as u64 + 1),
        25 => json!(rng.next()),
        26 => json!(-(rng.below(1 << 20) as i64)),
        27 => json!(rng.below(1 << 16)),
        28 => json!("/proc/self/fd/0"),
        29 => json!("-1"),
        30 => json!("max"),
        31 => json!("0-99999999999,1-"),
        32 => json!(9.999e18),
        33 => json!(255),
        34 => json!(4096),
        35 => json!(64),
        36 => json!(63),
        37 => json!("\u{202e}évil"),
        38 => json!([{"a": 1}]),
        _ => json!(rng.below(5000) as i64 - 2500),
    }
}

/// An odd value of JSON number type (most fields are numbers).
fn odd_number(rng: &mut Rng) -> Value {
    loop {
        let v = odd_value(rng);
        if v.is_number() {
            return v;
        }
    }
}

/// An odd value of JSON string type.
fn odd_string(rng: &mut Rng) -> Value {
    loop {
        let v = odd_value(rng);
        if v.is_string() {
            return v;
        }
        if rng.below(4) == 0 {
            return json!(v.to_string());
        }
    }
}

/// Fields the create path reads, with a value of about the right shape
/// (so that parsing gets through to the checks behind it).
fn targeted(rng: &mut Rng) -> (&'static str, Value) {
    let rng = std::cell::RefCell::new(rng);
    let v = || odd_value(&mut rng.borrow_mut());
    let n = || odd_number(&mut rng.borrow_mut());
    let st = || odd_string(&mut rng.borrow_mut());
    let choices: Vec<(&'static str, Value)> = vec![
        ("/process/user/uid", n()),
        ("/process/user/gid", n()),
        ("/process/user/additionalGids", json!([n(), n()])),
        ("/process/user/umask", n()),
        ("/process/rlimits", json!([{"type": "RLIMIT_NOFILE", "hard": n(), "soft": n()}])),
        ("/process/rlimits", json!([{"type": v(), "hard": 1, "soft": 1}])),
        ("/process/oomScoreAdj", n()),
        ("/process/consoleSize", json!({"height": n(), "width": n()})),
        ("/process/scheduler", json!({"policy": "SCHED_DEADLINE", "nice": n(), "priority": n(), "runtime": n(), "deadline": n(), "period": n()})),
        ("/process/scheduler", json!({"policy": "SCHED_FIFO", "priority": n(), "flags": ["SCHED_FLAG_RECLAIM"]})),
        ("/process/ioPriority", json!({"class": "IOPRIO_CLASS_RT", "priority": n()})),
        ("/process/capabilities/bounding", json!([st()])),
        ("/process/cwd", st()),
        ("/process/args", json!([st()])),
        ("/process/env", json!([st()])),
        ("/process/execCPUAffinity", json!({"initial": st(), "final": st()})),
        ("/hostname", st()),
        ("/domainname", st()),
        ("/ociVersion", st()),
        ("/root/path", st()),
        ("/hooks/prestart", json!([{"path": "/bin/true", "timeout": n()}])),
        ("/hooks/createRuntime", json!([{"path": st(), "args": [st()], "timeout": n()}])),
        ("/hooks/poststart", json!([{"path": "/bin/true", "timeout": n()}])),
        ("/linux/resources/cpu", json!({"shares": n(), "quota": n(), "period": n(), "burst": n(), "realtimeRuntime": n(), "realtimePeriod": n(), "cpus": st(), "mems": st(), "idle": n()})),
        ("/linux/resources/memory", json!({"limit": n(), "reservation": n(), "swap": n(), "kernel": n(), "kernelTCP": n(), "swappiness": n()})),
        ("/linux/resources/pids", json!({"limit": n()})),
        ("/linux/resources/blockIO", json!({"weight": n(), "leafWeight": n(), "weightDevice": [{"major": n(), "minor": n(), "weight": n()}], "throttleReadBpsDevice": [{"major": n(), "minor": n(), "rate": n()}]})),
        ("/linux/resources/hugepageLimits", json!([{"pageSize": n(), "limit": n()}])),
        ("/linux/resources/unified", json!({"memory.max": st(), "cgroup.procs": "1"})),
        ("/linux/resources/devices", json!([{"allow": true, "type": "c", "major": n(), "minor": n(), "access": st()}])),
        ("/linux/devices", json!([{"path": st(), "type": "c", "major": n(), "minor": n(), "fileMode": n(), "uid": n(), "gid": n()}])),
        ("/linux/uidMappings", json!([{"containerID": n(), "hostID": n(), "size": n()}])),
        ("/linux/gidMappings", json!([{"containerID": n(), "hostID": n(), "size": n()}])),
        ("/linux/namespaces", json!([{"type": n()}, {"type": "mount", "path": st()}])),
        ("/linux/namespaces", json!([{"type": "mount"}, {"type": "user"}, {"type": "time"}, {"type": "cgroup"}])),
        ("/linux/timeOffsets", json!({"monotonic": {"secs": n(), "nanosecs": n()}, "boottime": {"secs": n(), "nanosecs": n()}})),
        ("/linux/sysctl", json!({"net.ipv4.ip_forward": st(), "kernel.hostname": st(), "../../x": "1"})),
        ("/linux/personality", json!({"domain": "LINUX32", "flags": [v()]})),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": n(), "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": [st(), "read"], "action": "SCMP_ACT_ERRNO", "errnoRet": n(),
                "args": [{"index": n(), "value": n(), "valueTwo": n(), "op": "SCMP_CMP_MASKED_EQ"}]}]})),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [v()], "syscalls": [{"names": ["write"], "action": "SCMP_ACT_TRACE", "errnoRet": n()}]})),
        ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_KILL", "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 5, "value": n(), "op": "SCMP_CMP_LT"}, {"index": n(), "value": 1, "op": "SCMP_CMP_GE"}]}]})),
        ("/linux/maskedPaths", json!([st()])),
        ("/linux/readonlyPaths", json!([st()])),
        ("/linux/cgroupsPath", st()),
        ("/linux/rootfsPropagation", st()),
        ("/linux/intelRdt", json!({"closID": st(), "l3CacheSchema": st()})),
        ("/mounts/0/options", json!([st(), st()])),
        ("/mounts/0/destination", st()),
        ("/mounts/1/type", st()),
        ("/mounts", json!([{"destination": st(), "type": "tmpfs", "source": "tmpfs", "options": [format!("size={}", rng.borrow_mut().next()), "mode=7777777"]}])),
        ("/mounts", json!([{"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": u32::MAX, "size": u32::MAX}], "gidMappings": [{"containerID": 0, "hostID": 0, "size": 0}]}])),
        ("/mounts", json!([{"destination": "/x", "type": "overlay", "source": "overlay", "options": ["lowerdir=", "upperdir=../../..", "workdir=/"]}])),
    ];
    let i = rng.borrow_mut().below(choices.len());
    choices.into_iter().nth(i).unwrap_or(("/hostname", Value::Null))
}

/// Set `pointer` in `doc`, creating objects on the way (an array index
/// past the end is left alone).
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let Some((parent, key)) = pointer.rsplit_once('/') else { return };
    if !parent.is_empty() && !doc.pointer(parent).is_some_and(|p| p.is_object() || p.is_array()) {
        set(doc, parent, json!({}));
    }
    let target = if parent.is_empty() { Some(doc) } else { doc.pointer_mut(parent) };
    match target {
        Some(Value::Object(o)) => {
            o.insert(key.to_string(), value);
        }
        Some(Value::Array(a)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = value;
            }
        }
        _ => {}
    }
}

/// Replace a random node anywhere in the document with an odd value.
fn mutate_anywhere(doc: &mut Value, rng: &mut Rng, depth: u32) {
    let descend = depth < 8 && rng.below(3) != 0;
    match doc {
        Value::Object(o) if descend && !o.is_empty() => {
            let k = rng.below(o.len());
            if let Some(v) = o.values_mut().nth(k) {
                return mutate_anywhere(v, rng, depth + 1);
            }
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let k = rng.below(a.len());
            if let Some(v) = a.get_mut(k) {
                return mutate_anywhere(v, rng, depth + 1);
            }
        }
        _ => {}
    }
    *doc = odd_value(rng);
}

/// One document: `fdbox spec` (or its rootless form), mutated a few times.
pub(crate) fn random_config(rng: &mut Rng) -> Value {
    let mut doc = crate::spec::default_spec(rng.below(4) == 0);
    for _ in 0..1 + rng.below(3) {
        if rng.below(5) == 0 {
            mutate_anywhere(&mut doc, rng, 0);
        } else {
            let (pointer, value) = targeted(rng);
            set(&mut doc, pointer, value);
        }
    }
    doc
}

/// Everything create checks before it makes anything, on one document.
fn check(doc: Value) -> u8 {
    let Ok(spec) = serde_json::from_value::<oci_spec::runtime::Spec>(doc) else { return 0 };
    if crate::spec::validate(&spec).is_err() {
        return 1;
    }
    for m in spec.mounts().iter().flatten() {
        let entry = fdbox_mount::rootfs::MountEntry {
            destination: m.destination().to_string_lossy().into_owned(),
            typ: m.typ().clone(),
            source: m.source().as_ref().map(|s| s.to_string_lossy().into_owned()),
            options: m.options().clone().unwrap_or_default(),
        };
        let _ = entry.parsed();
        let _ = entry.is_host_side();
        for maps in [m.uid_mappings(), m.gid_mappings()] {
            let _ = fdbox_idmap::validate("mount", &crate::spec::id_maps(maps));
        }
    }
    if let Some(p) = spec.process() {
        if let Some(c) = p.capabilities() {
            let _ = crate::security::caps::CapMasks::from_spec(c);
        }
        if let Some(s) = p.scheduler() {
            let _ = crate::process::attrs::sched_attr(s);
        }
    }
    if let Some(linux) = spec.linux() {
        if let Some(profile) = linux.seccomp() {
            let _ = crate::security::seccomp::compile(profile);
        }
        if let Some(r) = linux.resources() {
            let _ = fdbox_cgroups::devices::rules(r.devices().as_deref().unwrap_or_default());
            let _ = fdbox_cgroups::ignored_resources(r);
        }
    }
    2
}

#[test]
fn random_configs_never_panic() {
    let seed = std::env::var("FDBOX_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let secs = std::env::var("FDBOX_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    eprintln!("fuzz seed {seed} (FDBOX_FUZZ_SEED={seed} replays it), {secs} s");
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut cases = 0u64;
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    let mut reached = [0u64; 3];
    while Instant::now() < deadline && failures.len() < 5 {
        let doc = random_config(&mut rng);
        let text = doc.to_string();
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(doc)));
        let took = start.elapsed();
        if let Ok(n) = outcome {
            reached[usize::from(n)] += 1;
        }
        if let Err(p) = outcome {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            failures.push(format!("panic {msg:?} on {text}"));
        } else if took > Duration::from_secs(1) {
            failures.push(format!("took {took:?} on {text}"));
        }
        cases += 1;
    }
    std::panic::set_hook(quiet);
    eprintln!("fuzz: {cases} configs: {} not parsed, {} refused by validation, {} valid", reached[0], reached[1], reached[2]);
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n\n"));
    assert!(cases > 100, "only {cases} configs in {secs} s");
}

//! `linux.resources` → the list of cgroup file writes for the running
//! layout. Pure: which controllers exist comes in as [`Avail`], so every
//! mapping and conversion is unit tested without a kernel. Writes whose
//! order depends on current kernel state are special [`Op`]s the executor
//! resolves.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

/// Which cgroup version serves a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The controllers of the selected hierarchies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Avail {
    /// Controllers mounted as v1 hierarchies.
    pub v1: Vec<String>,
    /// `None`: no cgroup2 hierarchy in this layout; otherwise the root's
    /// `cgroup.controllers` (what can be enabled for our cgroup).
    pub v2: Option<Vec<String>>,
}

impl Avail {
    /// A v1 hierarchy wins (hybrid hosts bind most controllers to v1).
    pub fn version_of(&self, ctrl: &str) -> Option<Version> {
        if self.v1.iter().any(|c| c == ctrl) {
            Some(Version::V1)
        } else if self.v2.as_ref().is_some_and(|v| v.iter().any(|c| c == ctrl)) {
            Some(Version::V2)
        } else {
            None
        }
    }

    fn on_v2(&self, ctrl: &str) -> bool {
        self.v2.as_ref().is_some_and(|v| v.iter().any(|c| c == ctrl))
    }
}

/// Where a write goes: the hierarchy of `ctrl` in version `ver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub ver: Version,
    pub ctrl: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    Write { t: Target, file: String, value: String },
    /// Write, read back, and fail if the kernel stored something else
    /// (cpu.shares is clamped silently).
    WriteVerify { t: Target, file: String, value: String },
    /// Write to the first of the files that exists; none is an error.
    WriteFirst { t: Target, what: String, alts: Vec<(String, String)> },
    /// Write only if the file exists (optional companions like rsvd.max,
    /// or "no swap" on a kernel without swap accounting).
    WriteIfExists { t: Target, file: String, value: String },
    /// v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes; the order
    /// depends on the current limit (the kernel wants limit <= memsw).
    MemoryV1 { t: Target, limit: i64, swap: i64 },
    /// v2 checkBeforeUpdate: refuse a limit at or below current usage.
    MemoryCheckV2 { t: Target, limit: i64 },
    /// v1 cpu.cfs_period_us/quota_us/burst_us with runc's retry order.
    CpuV1 { t: Target, period: u64, quota: i64, burst: Option<u64> },
    /// v2 cpu.max/cpu.max.burst.
    CpuV2 { t: Target, period: u64, quota: i64, burst: Option<u64> },
    /// v1 cpu.rt_period_us/rt_runtime_us (0: leave alone), in an order the
    /// kernel accepts, after raising the parents' RT budget where it is short.
    RtV1 { t: Target, period: u64, runtime: i64 },
    /// A `unified` key, written line by line.
    Unified { t: Target, key: String, value: String },
}

impl Op {
    pub fn target(&self) -> &Target {
        match self {
            Op::Write { t, .. }
            | Op::WriteVerify { t, .. }
            | Op::WriteFirst { t, .. }
            | Op::WriteIfExists { t, .. }
            | Op::MemoryV1 { t, .. }
            | Op::MemoryCheckV2 { t, .. }
            | Op::CpuV1 { t, .. }
            | Op::CpuV2 { t, .. }
            | Op::RtV1 { t, .. }
            | Op::Unified { t, .. } => t,
        }
    }
}

fn invalid(what: &str, reason: impl Into<String>) -> Error {
    Error::InvalidResource {
        what: what.to_string(),
        reason: reason.into(),
    }
}

fn unsupported_v2(what: &str) -> Error {
    Error::Unsupported(format!("{what}: not supported on cgroup v2"))
}

fn target(avail: &Avail, ctrl: &str, what: &str) -> Result<Target> {
    match avail.version_of(ctrl) {
        Some(ver) => Ok(Target {
            ver,
            ctrl: ctrl.to_string(),
        }),
        None => Err(Error::Unsupported(format!(
            "{what}: the {ctrl} controller is not available (not a mounted cgroup v1 hierarchy{})",
            if avail.v2.is_some() {
                ", not in the cgroup v2 root's cgroup.controllers"
            } else {
                ""
            }
        ))),
    }
}

/// runc's cgroup v1 `cpu.shares` → v2 `cpu.weight`: a quadratic in log
/// space through (2, 1), (1024, 100) and (262144, 10000); 0 means unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// v1 `blkio.weight` (10..=1000) → v2 `io.weight` (1..=10000), as runc.
pub fn blkio_to_io_weight(w: u16) -> Result<u64> {
    if !(10..=1000).contains(&w) {
        return Err(invalid("blockIO.weight", format!("{w} is outside 10..=1000")));
    }
    Ok(1 + (u64::from(w) - 10) * 9999 / 990)
}

/// OCI `memory.swap` is memory+swap (the v1 memsw meaning); v2's
/// memory.swap.max is swap alone. Returns the value for memory.swap.max
/// (-1 = "max"), or `None` to leave it alone. As runc.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<Option<i64>> {
    // unlimited memory and no swap given: unlimited swap too
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if limit == 0 || limit == -1 {
        return Err(invalid("memory.swap", "a swap limit needs a memory limit"));
    }
    if swap < limit {
        return Err(invalid(
            "memory.swap",
            format!("memory+swap limit {swap} is below the memory limit {limit}"),
        ));
    }
    swap.checked_sub(limit).map(Some).ok_or_else(|| invalid("memory.swap", format!("{swap} - {limit} overflows")))
}

/// A v2 number: -1 is "max".
fn v2num(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn check_mem(what: &str, v: Option<i64>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(n) if n < -1 => Err(invalid(what, format!("{n} is negative (only -1, unlimited, is allowed)"))),
        Some(n) => Ok(n),
    }
}

fn devnum(what: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(invalid(what, format!("device {major}:{minor} is not a device number")));
    }
    Ok(format!("{major}:{minor}"))
}

/// A hugepage size as in file names: digits then KB, MB or GB.
fn check_pagesize(ps: &str) -> Result<()> {
    let digits = ps.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &ps[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !["KB", "MB", "GB"].contains(&unit) {
        return Err(invalid(
            "hugepageLimits.pageSize",
            format!("{ps:?} is not a page size like 2MB or 1GB"),
        ));
    }
    Ok(())
}

/// `unified` keys that must never come from a bundle: they move processes,
/// kill, or reshape the tree.
const UNIFIED_DENY: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.kill",
    "cgroup.subtree_control",
    "cgroup.type",
    "cgroup.freeze",
];

/// The writes for `r` on the hierarchies in `avail`. Devices are not here
/// (see [`crate::devices`]).
pub(crate) fn plan(r: &LinuxResources, avail: &Avail) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    use Version::{V1, V2};

    if let Some(c) = r.cpu() {
        let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
        let mems = c.mems().as_deref().filter(|s| !s.is_empty());
        if cpus.is_some() || mems.is_some() {
            let t = target(avail, "cpuset", "cpu.cpus/cpu.mems")?;
            if let Some(v) = cpus {
                ops.push(Op::Write { t: t.clone(), file: "cpuset.cpus".into(), value: v.to_string() });
            }
            if let Some(v) = mems {
                ops.push(Op::Write { t, file: "cpuset.mems".into(), value: v.to_string() });
            }
        }
    }

    if let Some(m) = r.memory() {
        let limit = check_mem("memory.limit", m.limit())?;
        let swap = check_mem("memory.swap", m.swap())?;
        let reservation = check_mem("memory.reservation", m.reservation())?;
        let oom_off = m.disable_oom_killer() == Some(true);
        let check = m.check_before_update() == Some(true);
        // swappiness -1 (u64::MAX in the spec's unsigned field) is "not set", as runc
        let swappiness = m.swappiness().filter(|s| *s != u64::MAX);
        let kernel_tcp = check_mem("memory.kernelTCP", m.kernel_tcp())?;
        if limit != 0 || swap != 0 || reservation != 0 || swappiness.is_some() || oom_off || kernel_tcp != 0 {
            let t = target(avail, "memory", "memory")?;
            match t.ver {
                V1 => {
                    if limit != 0 || swap != 0 {
                        ops.push(Op::MemoryV1 { t: t.clone(), limit, swap });
                    }
                    if reservation != 0 {
                        ops.push(Op::Write {
                            t: t.clone(),
                            file: "memory.soft_limit_in_bytes".into(),
                            value: reservation.to_string(),
                        });
                    }
                    if let Some(s) = swappiness {
                        if s > 100 {
                            return Err(invalid("memory.swappiness", format!("{s} is above 100")));
                        }
                        ops.push(Op::Write { t: t.clone(), file: "memory.swappiness".into(), value: s.to_string() });
                    }
                    // where the kernel has TCP memory accounting (as crun)
                    if kernel_tcp != 0 {
                        ops.push(Op::WriteIfExists {
                            t: t.clone(),
                            file: "memory.kmem.tcp.limit_in_bytes".into(),
                            value: kernel_tcp.to_string(),
                        });
                    }
                    if oom_off {
                        ops.push(Op::Write { t, file: "memory.oom_control".into(), value: "1".into() });
                    }
                }
                V2 => {
                    if swappiness.is_some() {
                        return Err(unsupported_v2("memory.swappiness"));
                    }
                    if oom_off {
                        return Err(unsupported_v2("memory.oom_control (disableOOMKiller)"));
                    }
                    if check && limit > 0 {
                        ops.push(Op::MemoryCheckV2 { t: t.clone(), limit });
                    }
                    match swap_to_v2(swap, limit)? {
                        // "no swap" or "unlimited swap" is what a kernel
                        // without swap accounting does anyway
                        Some(v) if v <= 0 => ops.push(Op::WriteIfExists {
                            t: t.clone(),
                            file: "memory.swap.max".into(),
                            value: v2num(v),
                        }),
                        Some(v) => ops.push(Op::Write { t: t.clone(), file: "memory.swap.max".into(), value: v.to_string() }),
                        None => {}
                    }
                    if limit != 0 {
                        ops.push(Op::Write { t: t.clone(), file: "memory.max".into(), value: v2num(limit) });
                    }
                    if reservation != 0 {
                        ops.push(Op::Write { t, file: "memory.low".into(), value: v2num(reservation) });
                    }
                }
            }
        }
    }

    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            let t = target(avail, "cpu", "cpu.shares")?;
            ops.push(match t.ver {
                V1 => Op::WriteVerify { t, file: "cpu.shares".into(), value: s.to_string() },
                V2 => Op::Write { t, file: "cpu.weight".into(), value: shares_to_weight(s).to_string() },
            });
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if quota < -1 {
            return Err(invalid("cpu.quota", format!("{quota} is negative (only -1, unlimited, is allowed)")));
        }
        if quota != 0 || period != 0 || c.burst().is_some() {
            let t = target(avail, "cpu", "cpu.quota/cpu.period/cpu.burst")?;
            let burst = c.burst();
            ops.push(match t.ver {
                V1 => Op::CpuV1 { t, period, quota, burst },
                V2 => Op::CpuV2 { t, period, quota, burst },
            });
        }
        let rt_runtime = c.realtime_runtime().unwrap_or(0);
        let rt_period = c.realtime_period().unwrap_or(0);
        if rt_runtime != 0 || rt_period != 0 {
            let t = target(avail, "cpu", "cpu.realtimeRuntime/realtimePeriod")?;
            if t.ver == V2 {
                return Err(unsupported_v2("cpu.rt_runtime_us/cpu.rt_period_us (realtimeRuntime/realtimePeriod)"));
            }
            if rt_runtime < -1 {
                return Err(invalid("cpu.realtimeRuntime", format!("{rt_runtime} is negative (only -1, unlimited, is allowed)")));
            }
            ops.push(Op::RtV1 { t, period: rt_period, runtime: rt_runtime });
        }
        if let Some(idle) = c.idle() {
            if idle != 0 && idle != 1 {
                return Err(invalid("cpu.idle", format!("{idle} is not 0 or 1")));
            }
            let t = target(avail, "cpu", "cpu.idle")?;
            ops.push(Op::Write { t, file: "cpu.idle".into(), value: idle.to_string() });
        }
    }

    if let Some(p) = r.pids() {
        let limit = p.limit();
        // 0 leaves the limit alone (runc), negative is unlimited
        if limit != 0 {
            let t = target(avail, "pids", "pids.limit")?;
            let value = if limit > 0 { limit.to_string() } else { "max".into() };
            ops.push(Op::Write { t, file: "pids.max".into(), value });
        }
    }

    if let Some(b) = r.block_io() {
        // 0 is "not set" (runc; dockerd always writes `"weight": 0`, and
        // the kernel's range starts at 1 or 10 anyway)
        let weight = b.weight().filter(|w| *w != 0);
        let leaf_weight = b.leaf_weight().filter(|w| *w != 0);
        let any = weight.is_some()
            || leaf_weight.is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()));
        if any {
            let t = match avail.version_of("blkio") {
                Some(V1) => Target { ver: V1, ctrl: "blkio".into() },
                _ => target(avail, "io", "blockIO")?,
            };
            let v1 = t.ver == V1;
            if let Some(w) = weight {
                let alts = if v1 {
                    vec![("blkio.weight".into(), w.to_string()), ("blkio.bfq.weight".into(), w.to_string())]
                } else {
                    vec![("io.bfq.weight".into(), w.to_string()), ("io.weight".into(), blkio_to_io_weight(w)?.to_string())]
                };
                ops.push(Op::WriteFirst { t: t.clone(), what: "blockIO.weight".into(), alts });
            }
            if let Some(w) = leaf_weight {
                if !v1 {
                    return Err(unsupported_v2("blkio.leaf_weight (blockIO.leafWeight)"));
                }
                ops.push(Op::Write { t: t.clone(), file: "blkio.leaf_weight".into(), value: w.to_string() });
            }
            for wd in b.weight_device().iter().flatten() {
                let dev = devnum("blockIO.weightDevice", wd.major(), wd.minor())?;
                if let Some(w) = wd.weight().filter(|w| *w != 0) {
                    let alts = if v1 {
                        vec![
                            ("blkio.weight_device".into(), format!("{dev} {w}")),
                            ("blkio.bfq.weight_device".into(), format!("{dev} {w}")),
                        ]
                    } else {
                        vec![
                            ("io.bfq.weight".into(), format!("{dev} {w}")),
                            ("io.weight".into(), format!("{dev} {}", blkio_to_io_weight(w)?)),
                        ]
                    };
                    ops.push(Op::WriteFirst { t: t.clone(), what: "blockIO.weightDevice".into(), alts });
                }
                if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
                    if !v1 {
                        return Err(unsupported_v2("blkio.leaf_weight_device (blockIO.weightDevice.leafWeight)"));
                    }
                    ops.push(Op::Write {
                        t: t.clone(),
                        file: "blkio.leaf_weight_device".into(),
                        value: format!("{dev} {w}"),
                    });
                }
            }
            let throttles = [
                (b.throttle_read_bps_device(), "blkio.throttle.read_bps_device", "rbps"),
                (b.throttle_write_bps_device(), "blkio.throttle.write_bps_device", "wbps"),
                (b.throttle_read_iops_device(), "blkio.throttle.read_iops_device", "riops"),
                (b.throttle_write_iops_device(), "blkio.throttle.write_iops_device", "wiops"),
            ];
            for (list, v1file, key) in throttles {
                for d in list.iter().flatten() {
                    let dev = devnum("blockIO.throttle*Device", d.major(), d.minor())?;
                    ops.push(if v1 {
                        Op::Write { t: t.clone(), file: v1file.into(), value: format!("{dev} {}", d.rate()) }
                    } else {
                        Op::Write { t: t.clone(), file: "io.max".into(), value: format!("{dev} {key}={}", d.rate()) }
                    });
                }
            }
        }
    }

    for h in r.hugepage_limits().iter().flatten() {
        let ps = h.page_size();
        check_pagesize(ps)?;
        let t = target(avail, "hugetlb", "hugepageLimits")?;
        match t.ver {
            V1 => ops.push(Op::Write {
                t,
                file: format!("hugetlb.{ps}.limit_in_bytes"),
                value: h.limit().max(-1).to_string(),
            }),
            V2 => {
                let value = v2num(h.limit());
                ops.push(Op::Write { t: t.clone(), file: format!("hugetlb.{ps}.max"), value: value.clone() });
                ops.push(Op::WriteIfExists { t, file: format!("hugetlb.{ps}.rsvd.max"), value });
            }
        }
    }

    if let Some(rdma) = r.rdma() {
        let mut devs: Vec<_> = rdma.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        for (dev, l) in devs {
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                return Err(invalid("rdma", format!("device name {dev:?}")));
            }
            let mut v = dev.clone();
            if let Some(h) = l.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            if v.len() == dev.len() {
                continue;
            }
            let t = target(avail, "rdma", "rdma")?;
            ops.push(Op::Write { t, file: "rdma.max".into(), value: v });
        }
    }

    if let Some(n) = r.network() {
        let prios = n.priorities().as_deref().unwrap_or(&[]);
        if n.class_id().is_some() || !prios.is_empty() {
            if avail.version_of("net_cls") != Some(V1) && avail.version_of("net_prio") != Some(V1) && avail.v2.is_some() {
                return Err(unsupported_v2("linux.resources.network (net_cls/net_prio)"));
            }
            if let Some(id) = n.class_id() {
                let t = target(avail, "net_cls", "network.classID")?;
                ops.push(Op::Write { t, file: "net_cls.classid".into(), value: id.to_string() });
            }
            for p in prios {
                let t = target(avail, "net_prio", "network.priorities")?;
                ops.push(Op::Write {
                    t,
                    file: "net_prio.ifpriomap".into(),
                    value: format!("{} {}", p.name(), p.priority()),
                });
            }
        }
    }

    if let Some(u) = r.unified() {
        if !u.is_empty() && avail.v2.is_none() {
            return Err(Error::Unsupported(
                "linux.resources.unified: needs cgroup v2, and this host has only cgroup v1".into(),
            ));
        }
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in keys {
            let what = format!("unified key {k:?}");
            if k.contains('/') || k.contains('\0') || k.starts_with('.') {
                return Err(invalid(&what, "must be a file name"));
            }
            let Some((ctrl, _)) = k.split_once('.') else {
                return Err(invalid(&what, "must be CONTROLLER.PARAMETER"));
            };
            if UNIFIED_DENY.contains(&k.as_str()) {
                return Err(invalid(&what, "is managed by the runtime and cannot be set"));
            }
            if ctrl != "cgroup" && !avail.on_v2(ctrl) {
                return Err(Error::Unsupported(format!(
                    "{what}: the {ctrl} controller is not available on the cgroup v2 hierarchy"
                )));
            }
            ops.push(Op::Unified {
                t: Target { ver: V2, ctrl: ctrl.to_string() },
                key: k.clone(),
                value: v.clone(),
            });
        }
    }

    Ok(ops)
}

/// Resource fields that are accepted but have no effect, for the caller to
/// log as warnings (runc: "Kernel memory settings are ignored").
pub fn ignored_resources(r: &LinuxResources) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() {
            w.push("memory.kernel is ignored: kernel memory is not limited separately".into());
        }
        if m.use_hierarchy().is_some() {
            w.push("memory.useHierarchy is ignored: the kernel always accounts hierarchically".into());
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
    };
    use std::collections::HashMap;

    fn v1() -> Avail {
        Avail {
            v1: ["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer"]
                .map(String::from)
                .to_vec(),
            v2: None,
        }
    }
    fn hybrid() -> Avail {
        Avail { v2: Some(vec!["hugetlb".into()]), ..v1() }
    }
    fn v2() -> Avail {
        Avail {
            v1: vec![],
            v2: Some(["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"].map(String::from).to_vec()),
        }
    }

    /// Property test (issue 15): random `linux.resources` with the values
    /// that break arithmetic (limits of each integer type, -1, 0) through
    /// the planner for every layout: errors are fine, a panic is not.
    #[test]
    fn random_resources_never_panic() {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1;
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let odd: [serde_json::Value; 14] = [
            serde_json::json!(u64::MAX), serde_json::json!(i64::MAX), serde_json::json!(i64::MIN), serde_json::json!(-1),
            serde_json::json!(-2), serde_json::json!(0), serde_json::json!(1), serde_json::json!(u32::MAX),
            serde_json::json!(u16::MAX), serde_json::json!(10), serde_json::json!(1000), serde_json::json!(262_144),
            serde_json::json!(i64::MAX - 1), serde_json::json!(1u64 << 53),
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut cases = 0;
        while std::time::Instant::now() < deadline {
            let mut v = || odd[(next() % odd.len() as u64) as usize].clone();
            let doc = serde_json::json!({
                "cpu": {"shares": v(), "quota": v(), "period": v(), "burst": v(), "realtimeRuntime": v(), "realtimePeriod": v(), "idle": v()},
                "memory": {"limit": v(), "reservation": v(), "swap": v(), "kernel": v(), "kernelTCP": v(), "swappiness": v()},
                "pids": {"limit": v()},
                "blockIO": {"weight": v(), "leafWeight": v(), "weightDevice": [{"major": v(), "minor": v(), "weight": v(), "leafWeight": v()}],
                    "throttleReadBpsDevice": [{"major": v(), "minor": v(), "rate": v()}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": v()}],
                "rdma": {"mlx": {"hcaHandles": v(), "hcaObjects": v()}},
            });
            // Drop a random subset of sections so that each one is also reached alone.
            let mut doc = doc;
            if let Some(o) = doc.as_object_mut() {
                let keys: Vec<String> = o.keys().cloned().collect();
                for k in keys {
                    if next() % 2 == 0 {
                        o.remove(&k);
                    }
                }
            }
            let text = doc.to_string();
            let Ok(r) = serde_json::from_value::<LinuxResources>(doc) else { continue };
            for avail in [v1(), v2(), hybrid()] {
                let got = std::panic::catch_unwind(|| {
                    let _ = plan(&r, &avail);
                    let _ = ignored_resources(&r);
                });
                assert!(got.is_ok(), "seed {seed}: panic on {text}");
            }
            cases += 1;
        }
        assert!(cases > 100, "only {cases} cases");
    }

    fn writes(ops: &[Op]) -> Vec<(String, String)> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Write { file, value, .. } | Op::WriteVerify { file, value, .. } | Op::WriteIfExists { file, value, .. } => {
                    Some((file.clone(), value.clone()))
                }
                Op::Unified { key, value, .. } => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }

    fn w(f: &str, v: &str) -> (String, String) {
        (f.to_string(), v.to_string())
    }

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(100), 17);
        assert_eq!(blkio_to_io_weight(10).ok(), Some(1));
        assert_eq!(blkio_to_io_weight(1000).ok(), Some(10_000));
        assert_eq!(blkio_to_io_weight(500).ok(), Some(4950));
        assert!(blkio_to_io_weight(5).is_err());
        assert_eq!(swap_to_v2(0, -1).ok(), Some(Some(-1)));
        assert_eq!(swap_to_v2(-1, 100).ok(), Some(Some(-1)));
        assert_eq!(swap_to_v2(0, 100).ok(), Some(None));
        assert_eq!(swap_to_v2(300, 100).ok(), Some(Some(200)));
        assert_eq!(swap_to_v2(100, 100).ok(), Some(Some(0)));
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    fn mem(limit: i64, swap: Option<i64>) -> LinuxResources {
        let mut m = LinuxMemoryBuilder::default().limit(limit).reservation(limit / 2);
        if let Some(s) = swap {
            m = m.swap(s);
        }
        LinuxResourcesBuilder::default().memory(m.build().expect("memory")).build().expect("resources")
    }

    #[test]
    fn memory_v1_and_v2() {
        let r = mem(1 << 24, Some(1 << 25));
        let ops = plan(&r, &v1()).expect("plan");
        assert!(matches!(ops[0], Op::MemoryV1 { limit: 16777216, swap: 33554432, .. }));
        assert_eq!(writes(&ops), vec![w("memory.soft_limit_in_bytes", "8388608")]);
        let ops = plan(&r, &v2()).expect("plan");
        assert_eq!(
            writes(&ops),
            vec![w("memory.swap.max", "16777216"), w("memory.max", "16777216"), w("memory.low", "8388608")]
        );
        let ops = plan(&mem(-1, None), &v2()).expect("plan");
        assert_eq!(writes(&ops)[..2], [w("memory.swap.max", "max"), w("memory.max", "max")]);
    }

    #[test]
    fn memory_v1_only_knobs_fail_on_v2() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().swappiness(10u64).build().expect("m"))
            .build()
            .expect("r");
        assert_eq!(writes(&plan(&r, &v1()).expect("plan")), vec![w("memory.swappiness", "10")]);
        let e = plan(&r, &v2()).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("memory.swappiness: not supported on cgroup v2"));
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().disable_oom_killer(true).build().expect("m"))
            .build()
            .expect("r");
        assert_eq!(writes(&plan(&r, &v1()).expect("plan")), vec![w("memory.oom_control", "1")]);
        assert!(plan(&r, &v2()).is_err());
        let bad = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().swappiness(101u64).build().expect("m"))
            .build()
            .expect("r");
        assert!(plan(&bad, &v1()).is_err());
        assert!(plan(&mem(-5, None), &v1()).is_err());
    }

    #[test]
    fn cpu_v1_and_v2() {
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .cpus("0")
                    .mems("0")
                    .idle(0i64)
                    .build()
                    .expect("cpu"),
            )
            .build()
            .expect("r");
        let ops = plan(&r, &v1()).expect("plan");
        assert_eq!(
            writes(&ops),
            vec![w("cpuset.cpus", "0"), w("cpuset.mems", "0"), w("cpu.shares", "512"), w("cpu.idle", "0")]
        );
        assert!(ops.iter().any(|o| matches!(o, Op::CpuV1 { quota: 50_000, period: 100_000, burst: None, .. })));
        let ops = plan(&r, &v2()).expect("plan");
        assert_eq!(
            writes(&ops),
            vec![w("cpuset.cpus", "0"), w("cpuset.mems", "0"), w("cpu.weight", "59"), w("cpu.idle", "0")]
        );
        assert!(ops.iter().any(|o| matches!(o, Op::CpuV2 { quota: 50_000, period: 100_000, .. })));
    }

    #[test]
    fn realtime_is_v1_only() {
        let r = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().realtime_runtime(1000i64).realtime_period(10_000u64).build().expect("c"))
            .build()
            .expect("r");
        let ops = plan(&r, &v1()).expect("plan");
        assert!(matches!(ops[..], [Op::RtV1 { period: 10_000, runtime: 1000, .. }]), "{ops:?}");
        let e = plan(&r, &v2()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not supported on cgroup v2"), "{e}");
    }

    #[test]
    fn pids() {
        let r = |l: i64| LinuxResourcesBuilder::default().pids(LinuxPidsBuilder::default().limit(l).build().expect("p")).build().expect("r");
        assert_eq!(writes(&plan(&r(5), &v1()).expect("plan")), vec![w("pids.max", "5")]);
        assert_eq!(writes(&plan(&r(-1), &v2()).expect("plan")), vec![w("pids.max", "max")]);
        assert!(plan(&r(0), &v2()).expect("plan").is_empty());
        let none = Avail { v1: vec!["memory".into()], v2: None };
        let e = plan(&r(5), &none).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("pids controller is not available"), "{e}");
    }

    #[test]
    fn block_io() {
        let td = |maj: i64, rate: u64| LinuxThrottleDeviceBuilder::default().major(maj).minor(0i64).rate(rate).build().expect("td");
        let r = LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(500u16)
                    .weight_device(vec![LinuxWeightDeviceBuilder::default().major(8i64).minor(0i64).weight(200u16).build().expect("wd")])
                    .throttle_read_bps_device(vec![td(8, 1_048_576)])
                    .throttle_write_iops_device(vec![td(8, 100)])
                    .build()
                    .expect("b"),
            )
            .build()
            .expect("r");
        let ops = plan(&r, &v1()).expect("plan");
        assert!(matches!(&ops[0], Op::WriteFirst { alts, .. } if alts[0] == w("blkio.weight", "500")));
        assert!(matches!(&ops[1], Op::WriteFirst { alts, .. } if alts[0] == w("blkio.weight_device", "8:0 200")));
        assert_eq!(
            writes(&ops),
            vec![w("blkio.throttle.read_bps_device", "8:0 1048576"), w("blkio.throttle.write_iops_device", "8:0 100")]
        );
        let ops = plan(&r, &v2()).expect("plan");
        assert!(matches!(&ops[0], Op::WriteFirst { alts, .. } if alts[1] == w("io.weight", "4950")));
        assert!(matches!(&ops[1], Op::WriteFirst { alts, .. } if alts[1] == w("io.weight", "8:0 1920")));
        assert_eq!(writes(&ops), vec![w("io.max", "8:0 rbps=1048576"), w("io.max", "8:0 wiops=100")]);
        let leaf = LinuxResourcesBuilder::default()
            .block_io(LinuxBlockIoBuilder::default().leaf_weight(300u16).build().expect("b"))
            .build()
            .expect("r");
        assert!(plan(&leaf, &v2()).is_err());
        assert_eq!(writes(&plan(&leaf, &v1()).expect("plan")), vec![w("blkio.leaf_weight", "300")]);
    }

    /// Issue 22: what dockerd writes for a container without limits plans
    /// no write at all, on every layout (runc: zero is "not set").
    #[test]
    fn docker_zero_values_are_unset() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "swappiness": u64::MAX, "disableOOMKiller": false},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
            "pids": {"limit": 0},
            "blockIO": {"weight": 0, "leafWeight": 0, "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0}]},
        }))
        .expect("docker-shaped resources");
        for avail in [v1(), v2(), hybrid()] {
            assert_eq!(plan(&r, &avail).expect("plan"), vec![], "{avail:?}");
        }
    }

    #[test]
    fn hugetlb_goes_to_v2_on_hybrid() {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default().page_size("2MB").limit(4_194_304i64).build().expect("h")])
            .build()
            .expect("r");
        let ops = plan(&r, &hybrid()).expect("plan");
        assert_eq!(ops[0].target().ver, Version::V2);
        assert_eq!(writes(&ops), vec![w("hugetlb.2MB.max", "4194304"), w("hugetlb.2MB.rsvd.max", "4194304")]);
        let mut v1h = v1();
        v1h.v1.push("hugetlb".into());
        assert_eq!(writes(&plan(&r, &v1h).expect("plan")), vec![w("hugetlb.2MB.limit_in_bytes", "4194304")]);
        assert!(plan(&r, &v1()).is_err());
        let bad = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default().page_size("../2MB").limit(1i64).build().expect("h")])
            .build()
            .expect("r");
        assert!(plan(&bad, &hybrid()).is_err());
    }

    #[test]
    fn unified() {
        let r = |k: &str, v: &str| {
            LinuxResourcesBuilder::default()
                .unified(HashMap::from([(k.to_string(), v.to_string())]))
                .build()
                .expect("r")
        };
        assert_eq!(writes(&plan(&r("memory.high", "1G"), &v2()).expect("plan")), vec![w("memory.high", "1G")]);
        let e = plan(&r("memory.high", "1G"), &v1()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("only cgroup v1"), "{e}");
        // hybrid: memory is bound to v1, not available in v2
        let e = plan(&r("memory.high", "1G"), &hybrid()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("not available on the cgroup v2"), "{e}");
        assert!(plan(&r("hugetlb.2MB.max", "0"), &hybrid()).is_ok());
        assert!(plan(&r("../memory.max", "1"), &v2()).is_err());
        assert!(plan(&r("cgroup.procs", "1"), &v2()).is_err());
        assert!(plan(&r("nodot", "1"), &v2()).is_err());
        assert!(plan(&r("cgroup.max.depth", "3"), &v2()).is_ok());
    }

    #[test]
    fn ignored_kernel_memory() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().kernel(1i64).build().expect("m"))
            .build()
            .expect("r");
        assert_eq!(ignored_resources(&r).len(), 1);
        assert!(plan(&r, &v1()).expect("plan").is_empty());
    }

    #[test]
    fn kernel_tcp_on_v1_only() {
        let r = |v: i64| {
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().kernel_tcp(v).build().expect("m"))
                .build()
                .expect("r")
        };
        assert_eq!(writes(&plan(&r(1 << 24), &v1()).expect("plan")), vec![w("memory.kmem.tcp.limit_in_bytes", "16777216")]);
        assert_eq!(writes(&plan(&r(-1), &hybrid()).expect("plan")), vec![w("memory.kmem.tcp.limit_in_bytes", "-1")]);
        assert!(plan(&r(1 << 24), &v2()).expect("plan").is_empty());
        assert!(plan(&r(0), &v1()).expect("plan").is_empty());
        assert!(plan(&r(-2), &v1()).is_err());
        assert!(ignored_resources(&r(1)).is_empty());
    }
}

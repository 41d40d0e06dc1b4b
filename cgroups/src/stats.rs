//! Resource usage in the shape of runc's `events --stats` data
//! (`types.Stats` of runc): `{"cpu":{"usage":{…},"throttling":{…}},
//! "cpuset":{…},"memory":{"usage":{…},"swap":{…},"kernel":{…},"raw":{…}},
//! "pids":{…},"blkio":{…},"hugetlb":{…},"intel_rdt":{},"network_interfaces":null}`.
//! Zero numbers are omitted where runc omits them (`omitempty`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dir::{keyed, parse_flat_keyed, parse_u64, CgroupDir};
use crate::error::{Error, Result};
use crate::Cgroup;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// All statistics of one container cgroup.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Keyed by page size (`2MB`).
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Always `null`: fdbox does not collect network statistics.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// Bytes; `limit` is `u64::MAX` for "max" on v2.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// memory+swap, as v1's memsw (v2: memory.current + memory.swap.current).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 is "no limit".
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queue_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServiceTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT is not supported; kept so the JSON has runc's keys.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntelRdt {}

/// USER_HZ, the unit of cpuacct.stat: 100 on every Linux ABI.
const USER_HZ: u64 = 100;

fn opt_u64(d: &CgroupDir, file: &str) -> Result<Option<u64>> {
    match d.read_opt(file)? {
        None => Ok(None),
        Some(s) => parse_u64(s.trim()).map(Some).ok_or_else(|| Error::Parse {
            file: d.name_of(file),
            content: s.trim().to_string(),
        }),
    }
}

fn u64_or0(d: &CgroupDir, file: &str) -> Result<u64> {
    Ok(opt_u64(d, file)?.unwrap_or(0))
}

fn list_u64(d: &CgroupDir, file: &str) -> Result<Vec<u64>> {
    match d.read_opt(file)? {
        None => Ok(Vec::new()),
        Some(s) => s
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| Error::Parse {
                file: d.name_of(file),
                content: s,
            }),
    }
}

/// A cpuset list (`0-3,8`) as numbers.
pub(crate) fn parse_cpu_list(s: &str) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// v1 blkio lines `8:0 Read 4096`; the `Total` line is skipped.
pub(crate) fn parse_blkio_v1(s: &str) -> Vec<BlkioEntry> {
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 3 {
                return None;
            }
            let (maj, min) = f[0].split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: f[1].to_string(),
                value: f[2].parse().ok()?,
            })
        })
        .collect()
}

/// v2 io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 …`) mapped to v1's
/// service-bytes and serviced tables, as runc does.
pub(crate) fn parse_io_stat(s: &str) -> Blkio {
    let mut b = Blkio::default();
    for l in s.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse() else { continue };
            let (table, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            table.push(BlkioEntry { major, minor, op: op.into(), value });
        }
    }
    b
}

fn memory_entry_v1(d: &CgroupDir, prefix: &str) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        limit: u64_or0(d, &format!("{prefix}.limit_in_bytes"))?,
        usage: u64_or0(d, &format!("{prefix}.usage_in_bytes"))?,
        max: u64_or0(d, &format!("{prefix}.max_usage_in_bytes"))?,
        failcnt: u64_or0(d, &format!("{prefix}.failcnt"))?,
    })
}

/// Page sizes that have files in this cgroup (`hugetlb.<size>.<suffix>`).
fn page_sizes(d: &CgroupDir, suffix: &str) -> Result<Vec<String>> {
    let mut v: Vec<String> = d
        .files()?
        .into_iter()
        .filter_map(|f| {
            let rest = f.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!rest.contains('.')).then(|| rest.to_string())
        })
        .collect();
    v.sort();
    Ok(v)
}

pub(crate) fn collect(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    let v2 = cg.v2_dir();

    // cpu
    if let Some(d) = cg.v1_dir("cpuacct") {
        s.cpu.usage.total = u64_or0(d, "cpuacct.usage")?;
        s.cpu.usage.percpu = list_u64(d, "cpuacct.usage_percpu")?;
        s.cpu.usage.percpu_kernel = list_u64(d, "cpuacct.usage_percpu_sys")?;
        s.cpu.usage.percpu_user = list_u64(d, "cpuacct.usage_percpu_user")?;
        match (opt_u64(d, "cpuacct.usage_sys")?, opt_u64(d, "cpuacct.usage_user")?) {
            (Some(k), Some(u)) => (s.cpu.usage.kernel, s.cpu.usage.user) = (k, u),
            _ => {
                if let Some(st) = d.read_opt("cpuacct.stat")? {
                    let ns = 1_000_000_000 / USER_HZ;
                    s.cpu.usage.kernel = keyed(&st, "system").unwrap_or(0).saturating_mul(ns);
                    s.cpu.usage.user = keyed(&st, "user").unwrap_or(0).saturating_mul(ns);
                }
            }
        }
    }
    if let Some(d) = cg.v1_dir("cpu") {
        if let Some(st) = d.read_opt("cpu.stat")? {
            s.cpu.throttling.periods = keyed(&st, "nr_periods").unwrap_or(0);
            s.cpu.throttling.throttled_periods = keyed(&st, "nr_throttled").unwrap_or(0);
            s.cpu.throttling.throttled_time = keyed(&st, "throttled_time").unwrap_or(0);
        }
    } else if let Some(d) = v2 {
        if let Some(st) = d.read_opt("cpu.stat")? {
            let us = |k| keyed(&st, k).unwrap_or(0).saturating_mul(1000);
            s.cpu.usage.total = us("usage_usec");
            s.cpu.usage.user = us("user_usec");
            s.cpu.usage.kernel = us("system_usec");
            s.cpu.throttling.periods = keyed(&st, "nr_periods").unwrap_or(0);
            s.cpu.throttling.throttled_periods = keyed(&st, "nr_throttled").unwrap_or(0);
            s.cpu.throttling.throttled_time = us("throttled_usec");
        }
    }

    // cpuset
    if let Some(d) = cg.v1_dir("cpuset").or(v2) {
        let list = |f: &str| -> Result<Vec<u16>> {
            match d.read_opt(f)? {
                None => Ok(Vec::new()),
                Some(t) => parse_cpu_list(&t).ok_or_else(|| Error::Parse {
                    file: d.name_of(f),
                    content: t.trim().to_string(),
                }),
            }
        };
        let effective_or = |a: &str, b: &str| -> Result<Vec<u16>> {
            let v = list(a)?;
            if v.is_empty() {
                list(b)
            } else {
                Ok(v)
            }
        };
        s.cpuset.cpus = effective_or("cpuset.cpus", "cpuset.cpus.effective")?;
        s.cpuset.mems = effective_or("cpuset.mems", "cpuset.mems.effective")?;
        if cg.v1_dir("cpuset").is_some() {
            s.cpuset.cpu_exclusive = u64_or0(d, "cpuset.cpu_exclusive")?;
            s.cpuset.mem_hardwall = u64_or0(d, "cpuset.mem_hardwall")?;
            s.cpuset.mem_exclusive = u64_or0(d, "cpuset.mem_exclusive")?;
            s.cpuset.memory_migrate = u64_or0(d, "cpuset.memory_migrate")?;
            s.cpuset.memory_spread_page = u64_or0(d, "cpuset.memory_spread_page")?;
            s.cpuset.memory_spread_slab = u64_or0(d, "cpuset.memory_spread_slab")?;
            s.cpuset.memory_pressure = u64_or0(d, "cpuset.memory_pressure")?;
            s.cpuset.sched_load_balance = u64_or0(d, "cpuset.sched_load_balance")?;
            s.cpuset.sched_relax_domain_level = d
                .read_opt("cpuset.sched_relax_domain_level")?
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
        }
    }

    // memory
    if let Some(d) = cg.v1_dir("memory") {
        s.memory.usage = memory_entry_v1(d, "memory")?;
        s.memory.swap = memory_entry_v1(d, "memory.memsw")?;
        s.memory.kernel = memory_entry_v1(d, "memory.kmem")?;
        s.memory.kernel_tcp = memory_entry_v1(d, "memory.kmem.tcp")?;
        if let Some(st) = d.read_opt("memory.stat")? {
            s.memory.raw = parse_flat_keyed(&st).into_iter().collect();
        }
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    } else if let Some(d) = v2 {
        if let Some(current) = opt_u64(d, "memory.current")? {
            let max = u64_or0(d, "memory.max")?;
            let events = d.read_opt("memory.events")?.unwrap_or_default();
            s.memory.usage = MemoryEntry {
                limit: max,
                usage: current,
                max: u64_or0(d, "memory.peak")?,
                failcnt: keyed(&events, "max").unwrap_or(0),
            };
            if let Some(swap) = opt_u64(d, "memory.swap.current")? {
                let swap_max = u64_or0(d, "memory.swap.max")?;
                s.memory.swap = MemoryEntry {
                    limit: if max == u64::MAX || swap_max == u64::MAX {
                        u64::MAX
                    } else {
                        max.saturating_add(swap_max)
                    },
                    usage: current.saturating_add(swap),
                    max: 0,
                    failcnt: 0,
                };
            }
            if let Some(st) = d.read_opt("memory.stat")? {
                s.memory.raw = parse_flat_keyed(&st).into_iter().collect();
            }
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        }
    }

    // pids
    if let Some(d) = cg.v1_dir("pids").or(v2) {
        if let Some(current) = opt_u64(d, "pids.current")? {
            s.pids.current = current;
            let max = u64_or0(d, "pids.max")?;
            s.pids.limit = if max == u64::MAX { 0 } else { max };
        }
    }

    // blkio / io
    if let Some(d) = cg.v1_dir("blkio") {
        let pick = |a: &str, b: &str| -> Result<Vec<BlkioEntry>> {
            Ok(match d.read_opt(a)? {
                Some(t) => parse_blkio_v1(&t),
                None => d.read_opt(b)?.map(|t| parse_blkio_v1(&t)).unwrap_or_default(),
            })
        };
        s.blkio.io_service_bytes_recursive =
            pick("blkio.bfq.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive")?;
        s.blkio.io_serviced_recursive = pick("blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced_recursive")?;
    } else if let Some(d) = v2 {
        if let Some(t) = d.read_opt("io.stat")? {
            s.blkio = parse_io_stat(&t);
        }
    }

    // hugetlb
    if let Some(d) = cg.v1_dir("hugetlb") {
        for ps in page_sizes(d, ".limit_in_bytes")? {
            let e = memory_entry_v1(d, &format!("hugetlb.{ps}"))?;
            s.hugetlb.insert(ps, Hugetlb { usage: e.usage, max: e.max, failcnt: e.failcnt });
        }
    } else if let Some(d) = v2 {
        for ps in page_sizes(d, ".current")? {
            let events = d.read_opt(&format!("hugetlb.{ps}.events"))?.unwrap_or_default();
            let usage = u64_or0(d, &format!("hugetlb.{ps}.current"))?;
            s.hugetlb.insert(ps, Hugetlb { usage, max: 0, failcnt: keyed(&events, "max").unwrap_or(0) });
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8\n"), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn blkio_parsers() {
        let v1 = "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n";
        let e = parse_blkio_v1(v1);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0], BlkioEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 });
        let b = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(b.io_serviced_recursive[1].op, "Write");
        assert_eq!(b.io_serviced_recursive[1].value, 2);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.usage.limit = 5;
        s.pids.current = 2;
        let v = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("total").is_none(), "omitempty");
        assert_eq!(v["memory"]["usage"]["limit"], 5);
        assert_eq!(v["memory"]["kernelTCP"]["failcnt"], 0);
        assert_eq!(v["pids"]["current"], 2);
        assert!(v["pids"].get("limit").is_none());
        assert!(v["network_interfaces"].is_null());
        assert!(v["intel_rdt"].is_object());
        assert!(v["hugetlb"].is_object());
    }
}

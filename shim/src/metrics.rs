//! Stats: the JSON of `fdbox events --stats` (runc's `types.Stats`) turned
//! into containerd's cgroup metrics protobufs: `io.containerd.cgroups.v1.Metrics`
//! on a host whose controllers are v1 (legacy or hybrid), v2 on a unified one.

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use serde_json::Value;

use crate::error::{Error, Result};

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn raw(stats: &Value, key: &str) -> u64 {
    u(&stats["memory"]["raw"], key)
}

/// Whether the host's cgroup controllers are on the unified (v2) hierarchy.
pub fn unified_host() -> bool {
    rustix::fs::statfs("/sys/fs/cgroup").map(|s| s.f_type == 0x6367_7270).unwrap_or(false)
}

/// The `Any` for `StatsResponse.stats` from one `stats` event's `data`.
pub fn to_any(stats: &Value, unified: bool) -> Result<Any> {
    let (bytes, name) = if unified {
        let m = to_v2(stats);
        (m.write_to_bytes(), "io.containerd.cgroups.v2.Metrics")
    } else {
        let m = to_v1(stats);
        (m.write_to_bytes(), "io.containerd.cgroups.v1.Metrics")
    };
    let value = bytes.map_err(|e| Error::Internal(format!("encoding metrics: {e}")))?;
    Ok(Any { type_url: name.to_string(), value, ..Default::default() })
}

fn entry(v: &Value) -> v1::MemoryEntry {
    v1::MemoryEntry { limit: u(v, "limit"), usage: u(v, "usage"), max: u(v, "max"), failcnt: u(v, "failcnt"), ..Default::default() }
}

fn blkio(list: &Value) -> Vec<v1::BlkIOEntry> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|e| v1::BlkIOEntry {
                    op: e["op"].as_str().unwrap_or_default().to_string(),
                    major: u(e, "major"),
                    minor: u(e, "minor"),
                    value: u(e, "value"),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn to_v1(s: &Value) -> v1::Metrics {
    let cpu = &s["cpu"];
    let mem = &s["memory"];
    let b = &s["blkio"];
    let mut m = v1::Metrics {
        pids: MessageField::some(v1::PidsStat { current: u(&s["pids"], "current"), limit: u(&s["pids"], "limit"), ..Default::default() }),
        ..Default::default()
    };
    m.cpu = MessageField::some(v1::CPUStat {
        usage: MessageField::some(v1::CPUUsage {
            total: u(&cpu["usage"], "total"),
            kernel: u(&cpu["usage"], "kernel"),
            user: u(&cpu["usage"], "user"),
            per_cpu: cpu["usage"]["percpu"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default(),
            ..Default::default()
        }),
        throttling: MessageField::some(v1::Throttle {
            periods: u(&cpu["throttling"], "periods"),
            throttled_periods: u(&cpu["throttling"], "throttledPeriods"),
            throttled_time: u(&cpu["throttling"], "throttledTime"),
            ..Default::default()
        }),
        ..Default::default()
    });
    m.memory = MessageField::some(v1::MemoryStat {
        cache: u(mem, "cache"),
        rss: raw(s, "rss"),
        rss_huge: raw(s, "rss_huge"),
        mapped_file: raw(s, "mapped_file"),
        dirty: raw(s, "dirty"),
        writeback: raw(s, "writeback"),
        pg_pg_in: raw(s, "pgpgin"),
        pg_pg_out: raw(s, "pgpgout"),
        pg_fault: raw(s, "pgfault"),
        pg_maj_fault: raw(s, "pgmajfault"),
        inactive_anon: raw(s, "inactive_anon"),
        active_anon: raw(s, "active_anon"),
        inactive_file: raw(s, "inactive_file"),
        active_file: raw(s, "active_file"),
        unevictable: raw(s, "unevictable"),
        hierarchical_memory_limit: raw(s, "hierarchical_memory_limit"),
        hierarchical_swap_limit: raw(s, "hierarchical_memsw_limit"),
        total_cache: raw(s, "total_cache"),
        total_rss: raw(s, "total_rss"),
        total_rss_huge: raw(s, "total_rss_huge"),
        total_mapped_file: raw(s, "total_mapped_file"),
        total_dirty: raw(s, "total_dirty"),
        total_writeback: raw(s, "total_writeback"),
        total_pg_pg_in: raw(s, "total_pgpgin"),
        total_pg_pg_out: raw(s, "total_pgpgout"),
        total_pg_fault: raw(s, "total_pgfault"),
        total_pg_maj_fault: raw(s, "total_pgmajfault"),
        total_inactive_anon: raw(s, "total_inactive_anon"),
        total_active_anon: raw(s, "total_active_anon"),
        total_inactive_file: raw(s, "total_inactive_file"),
        total_active_file: raw(s, "total_active_file"),
        total_unevictable: raw(s, "total_unevictable"),
        usage: MessageField::some(entry(&mem["usage"])),
        swap: MessageField::some(entry(&mem["swap"])),
        kernel: MessageField::some(entry(&mem["kernel"])),
        kernel_tcp: MessageField::some(entry(&mem["kernelTCP"])),
        ..Default::default()
    });
    m.blkio = MessageField::some(v1::BlkIOStat {
        io_service_bytes_recursive: blkio(&b["ioServiceBytesRecursive"]),
        io_serviced_recursive: blkio(&b["ioServicedRecursive"]),
        io_queued_recursive: blkio(&b["ioQueueRecursive"]),
        io_service_time_recursive: blkio(&b["ioServiceTimeRecursive"]),
        io_wait_time_recursive: blkio(&b["ioWaitTimeRecursive"]),
        io_merged_recursive: blkio(&b["ioMergedRecursive"]),
        io_time_recursive: blkio(&b["ioTimeRecursive"]),
        sectors_recursive: blkio(&b["sectorsRecursive"]),
        ..Default::default()
    });
    if let Some(h) = s["hugetlb"].as_object() {
        m.hugetlb = h
            .iter()
            .map(|(size, v)| v1::HugetlbStat {
                usage: u(v, "usage"),
                max: u(v, "max"),
                failcnt: u(v, "failcnt"),
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect();
    }
    m
}

pub fn to_v2(s: &Value) -> v2::Metrics {
    let cpu = &s["cpu"];
    let mem = &s["memory"];
    let mut m = v2::Metrics {
        pids: MessageField::some(v2::PidsStat { current: u(&s["pids"], "current"), limit: u(&s["pids"], "limit"), ..Default::default() }),
        ..Default::default()
    };
    // runc reports v2 CPU times in nanoseconds; containerd's v2 metrics use µs.
    m.cpu = MessageField::some(v2::CPUStat {
        usage_usec: u(&cpu["usage"], "total") / 1000,
        user_usec: u(&cpu["usage"], "user") / 1000,
        system_usec: u(&cpu["usage"], "kernel") / 1000,
        nr_periods: u(&cpu["throttling"], "periods"),
        nr_throttled: u(&cpu["throttling"], "throttledPeriods"),
        throttled_usec: u(&cpu["throttling"], "throttledTime") / 1000,
        ..Default::default()
    });
    m.memory = MessageField::some(v2::MemoryStat {
        anon: raw(s, "anon"),
        file: raw(s, "file"),
        kernel_stack: raw(s, "kernel_stack"),
        slab: raw(s, "slab"),
        sock: raw(s, "sock"),
        shmem: raw(s, "shmem"),
        file_mapped: raw(s, "file_mapped"),
        file_dirty: raw(s, "file_dirty"),
        file_writeback: raw(s, "file_writeback"),
        inactive_anon: raw(s, "inactive_anon"),
        active_anon: raw(s, "active_anon"),
        inactive_file: raw(s, "inactive_file"),
        active_file: raw(s, "active_file"),
        unevictable: raw(s, "unevictable"),
        pgfault: raw(s, "pgfault"),
        pgmajfault: raw(s, "pgmajfault"),
        usage: u(&mem["usage"], "usage"),
        usage_limit: u(&mem["usage"], "limit"),
        max_usage: u(&mem["usage"], "max"),
        swap_usage: u(&mem["swap"], "usage"),
        swap_limit: u(&mem["swap"], "limit"),
        ..Default::default()
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_from_runc_stats() {
        let s: Value = serde_json::json!({
            "cpu": {"usage": {"total": 5000, "percpu": [2000, 3000], "kernel": 10, "user": 20},
                    "throttling": {"periods": 3, "throttledPeriods": 1}},
            "memory": {"cache": 4096, "usage": {"limit": 1 << 30, "usage": 8192, "max": 9000, "failcnt": 0},
                       "raw": {"rss": 1234, "total_rss": 2345}},
            "pids": {"current": 2, "limit": 100},
            "blkio": {"ioServiceBytesRecursive": [{"major": 8, "minor": 0, "op": "Read", "value": 512}]},
            "hugetlb": {"2MB": {"usage": 0, "failcnt": 0}}
        });
        let m = to_v1(&s);
        assert_eq!(m.pids.current, 2);
        assert_eq!(m.pids.limit, 100);
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(m.cpu.usage.per_cpu, vec![2000, 3000]);
        assert_eq!(m.cpu.throttling.throttled_periods, 1);
        assert_eq!(m.memory.usage.usage, 8192);
        assert_eq!(m.memory.usage.limit, 1 << 30);
        assert_eq!(m.memory.cache, 4096);
        assert_eq!(m.memory.rss, 1234);
        assert_eq!(m.memory.total_rss, 2345);
        assert_eq!(m.blkio.io_service_bytes_recursive[0].value, 512);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
        let any = to_any(&s, false).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let back = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(back, m);
        let any2 = to_any(&s, true).unwrap();
        assert_eq!(any2.type_url, "io.containerd.cgroups.v2.Metrics");
        assert_eq!(v2::Metrics::parse_from_bytes(&any2.value).unwrap().cpu.usage_usec, 5);
    }
}

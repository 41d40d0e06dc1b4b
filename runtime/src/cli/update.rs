use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// runc's `update` flags; only the given ones change.
#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    /// Resources as OCI JSON (`linux.resources`), from a file or `-` for stdin.
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// -1 removes the quota (runc).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    /// Memory limit (bytes, or with k/m/g suffix; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

/// A size as runc's `units.RAMInBytes`: digits with an optional b/k/m/g/t
/// suffix (powers of 1024); `-1` means unlimited.
pub fn parse_size(s: &str) -> Result<i64> {
    let bad = || Error::Config(format!("invalid size {s:?}"));
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    // Digits and at most one point: f64's parser would also take "nan",
    // "inf" and exponents, which `as i64` turns into 0 or i64::MAX.
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') || num.matches('.').count() > 1 {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(Error::Config(format!("size {s:?} is too large")));
    }
    Ok(bytes as i64)
}

impl UpdateArgs {
    pub fn resources(&self) -> Result<LinuxResources> {
        if self.l3_cache_schema.is_some() || self.mem_bw_schema.is_some() {
            return Err(Error::Unsupported("Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported".into()));
        }
        let mut r: Map<String, Value> = match &self.resources {
            Some(path) => {
                let text = if path == "-" {
                    std::io::read_to_string(std::io::stdin()).map_err(|e| Error::Config(format!("stdin: {e}")))?
                } else {
                    let text = crate::spec::read_input(rustix::fs::CWD, path, path)?;
                    String::from_utf8(text).map_err(|e| Error::Config(format!("{path}: {e}")))?
                };
                serde_json::from_str(&text).map_err(|e| Error::Config(format!("{path}: {e}")))?
            }
            None => Map::new(),
        };
        let mut set = |section: &str, key: &str, v: Value| {
            let s = r.entry(section.to_string()).or_insert_with(|| json!({}));
            if let Some(o) = s.as_object_mut() {
                o.insert(key.to_string(), v);
            }
        };
        if let Some(v) = self.blkio_weight {
            set("blockIO", "weight", json!(v));
        }
        if let Some(v) = self.cpu_period {
            set("cpu", "period", json!(v));
        }
        if let Some(v) = self.cpu_quota {
            set("cpu", "quota", json!(v));
        }
        if let Some(v) = self.cpu_burst {
            set("cpu", "burst", json!(v));
        }
        if let Some(v) = self.cpu_share {
            set("cpu", "shares", json!(v));
        }
        if let Some(v) = self.cpu_rt_period {
            set("cpu", "realtimePeriod", json!(v));
        }
        if let Some(v) = self.cpu_rt_runtime {
            set("cpu", "realtimeRuntime", json!(v));
        }
        if let Some(v) = &self.cpuset_cpus {
            set("cpu", "cpus", json!(v));
        }
        if let Some(v) = &self.cpuset_mems {
            set("cpu", "mems", json!(v));
        }
        if let Some(v) = self.cpu_idle {
            set("cpu", "idle", json!(v));
        }
        if let Some(v) = &self.memory {
            set("memory", "limit", json!(parse_size(v)?));
        }
        if let Some(v) = &self.memory_reservation {
            set("memory", "reservation", json!(parse_size(v)?));
        }
        if let Some(v) = &self.memory_swap {
            set("memory", "swap", json!(parse_size(v)?));
        }
        if let Some(v) = self.pids_limit {
            set("pids", "limit", json!(v));
        }
        serde_json::from_value(Value::Object(r)).map_err(|e| Error::Config(format!("resources: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["nan", "inf", "1e30", "-5", "", "k", "1.2.3m", "99999999999999999999t", "9223372036854775807"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("x").is_err());
    }
}

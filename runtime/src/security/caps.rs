//! Linux capabilities by name, and applying an OCI capability set across
//! the switch to the container's user (as runc does: bounding set first,
//! keep-caps over setuid, then effective/permitted/inheritable, ambient).

use oci_spec::runtime::LinuxCapabilities;
use rustix::io::Errno;
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// Capability names in kernel order (`capability.h`).
pub const NAMES: &[&str] = &[
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/// The number of a capability name (`CAP_KILL` or `KILL`, any case).
pub fn number(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The capabilities as bit masks, resolved from the spec's names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapMasks {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapMasks {
    /// Resolve the names of an OCI capability set. The spec crate has
    /// already refused unknown names while parsing.
    pub fn from_spec(c: &LinuxCapabilities) -> Result<Self> {
        fn mask(set: &Option<oci_spec::runtime::Capabilities>) -> Result<u64> {
            let mut m = 0u64;
            for cap in set.iter().flatten() {
                let name = cap.to_string();
                let n = number(&name).ok_or_else(|| Error::Config(format!("unknown capability {name:?}")))?;
                m |= 1 << n;
            }
            Ok(m)
        }
        Ok(CapMasks {
            bounding: mask(c.bounding())?,
            effective: mask(c.effective())?,
            permitted: mask(c.permitted())?,
            inheritable: mask(c.inheritable())?,
            ambient: mask(c.ambient())?,
        })
    }
}

/// Highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Step 1, while still root with CAP_SETPCAP: drop what is not in the
/// bounding set, and keep the permitted set over the coming setuid.
pub fn drop_bounding(m: &CapMasks) -> Result<()> {
    // Up to the kernel's last capability, which refuses the next with
    // EINVAL (no need to read /proc/sys/kernel/cap_last_cap for that).
    for cap in 0..64 {
        if m.bounding & (1 << cap) == 0 {
            match sys::capbset_drop(cap) {
                Ok(()) => {}
                Err(Errno::INVAL) if cap > 0 => break,
                Err(e) => return Err(Error::sys("prctl", format!("PR_CAPBSET_DROP {}", name(cap)), e)),
            }
        }
    }
    rustix::thread::set_keep_capabilities(true).sys("prctl", || "PR_SET_KEEPCAPS".into())
}

/// Step 2, after setuid: the final effective/permitted/inheritable sets,
/// then the ambient set.
pub fn apply_sets(m: &CapMasks) -> Result<()> {
    rustix::thread::set_keep_capabilities(false).sys("prctl", || "PR_SET_KEEPCAPS".into())?;
    let sets = CapabilitySets {
        effective: CapabilitySet::from_bits_retain(m.effective),
        permitted: CapabilitySet::from_bits_retain(m.permitted),
        inheritable: CapabilitySet::from_bits_retain(m.inheritable),
    };
    rustix::thread::set_capabilities(None, sets).sys("capset", || "container process".into())?;
    for cap in (0..=last_cap()).take_while(|_| m.ambient != 0) {
        if m.ambient & (1 << cap) != 0 {
            // As runc: an ambient capability the other sets do not allow is
            // skipped, not an error.
            let _ = sys::ambient_raise(cap);
        }
    }
    Ok(())
}

fn name(cap: u32) -> &'static str {
    NAMES.get(cap as usize).copied().unwrap_or("CAP_?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("kill"), Some(5));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NOPE"), None);
    }

    #[test]
    fn masks_from_spec() {
        let c: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]
        }))
        .unwrap();
        let m = CapMasks::from_spec(&c).unwrap();
        assert_eq!(m.bounding, 1 | 1 << 5);
        assert_eq!(m.effective, 1 << 5);
        assert_eq!(m.ambient, 0);
    }
}

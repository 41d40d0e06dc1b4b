//! Id mappings as in `uid_map`/`gid_map` and `linux.uidMappings`.

use crate::{Error, Result};

/// Most extents a `uid_map` may hold (kernel 4.15+).
pub const MAX_EXTENTS: usize = 340;

/// One extent: `size` ids from `container_id` inside map to `host_id` outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// Check mappings as the kernel would, but with an error that says what is
/// wrong: no empty extent, no id of 2^32-1 (the kernel's -1) or past it, no overlap on either side,
/// at most [`MAX_EXTENTS`].
pub fn validate(what: &str, maps: &[IdMap]) -> Result<()> {
    let bad = |reason: String| Error::Invalid { what: what.to_string(), reason };
    if maps.is_empty() {
        return Err(bad("no mappings".into()));
    }
    if maps.len() > MAX_EXTENTS {
        return Err(bad(format!("{} extents; the kernel allows at most {MAX_EXTENTS}", maps.len())));
    }
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return Err(bad(format!("extent {i} has size 0")));
        }
        for (side, start) in [("container", m.container_id), ("host", m.host_id)] {
            // The kernel refuses an extent that reaches 2^32 - 1 (its -1).
            if u64::from(start) + u64::from(m.size) > u64::from(u32::MAX) {
                return Err(bad(format!("extent {i}: {side} ids {start}+{} reach past 4294967294 (2^32-2)", m.size)));
            }
        }
        for (j, n) in maps.iter().enumerate().skip(i + 1) {
            let overlap = |a: u32, b: u32| {
                let (a0, a1) = (u64::from(a), u64::from(a) + u64::from(m.size));
                let (b0, b1) = (u64::from(b), u64::from(b) + u64::from(n.size));
                a0 < b1 && b0 < a1
            };
            if overlap(m.container_id, n.container_id) {
                return Err(bad(format!("extents {i} and {j} overlap in container ids")));
            }
            if overlap(m.host_id, n.host_id) {
                return Err(bad(format!("extents {i} and {j} overlap in host ids")));
            }
        }
    }
    Ok(())
}

/// The text of a `uid_map`/`gid_map` file.
pub fn format_map(maps: &[IdMap]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, s: u32) -> IdMap {
        IdMap { container_id: c, host_id: h, size: s }
    }

    #[test]
    fn valid_and_formatted() {
        let maps = [m(0, 100000, 65536)];
        validate("uidMappings", &maps).unwrap();
        assert_eq!(format_map(&maps), "0 100000 65536\n");
        validate("x", &[m(0, 1000, 1), m(1, 100000, 65535)]).unwrap();
    }

    #[test]
    fn refused() {
        assert!(validate("x", &[]).is_err());
        assert!(validate("x", &[m(0, 1, 0)]).is_err());
        let e = validate("uidMappings", &[m(0, 100000, 10), m(5, 200000, 10)]).unwrap_err();
        assert!(e.to_string().contains("overlap in container ids"), "{e}");
        assert!(validate("x", &[m(0, 100000, 10), m(50, 100005, 10)]).unwrap_err().to_string().contains("host ids"));
        assert!(validate("x", &[m(u32::MAX, 0, 2)]).is_err());
        // 2^32 - 1 is -1 to the kernel: an extent may end just before it.
        validate("x", &[m(0, u32::MAX - 1, 1)]).unwrap();
        assert!(validate("x", &[m(0, u32::MAX, 1)]).is_err());
        assert!(validate("x", &[m(1, 0, u32::MAX)]).is_err());
        validate("x", &[m(0, 0, u32::MAX)]).unwrap();
        let many: Vec<IdMap> = (0..341).map(|i| m(i, 100000 + i, 1)).collect();
        assert!(validate("x", &many).is_err());
    }
}

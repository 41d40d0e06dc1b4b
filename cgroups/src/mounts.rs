//! Where the cgroup hierarchies are: `/proc/self/mountinfo` and
//! `/proc/self/cgroup`, parsed by pure functions so they can be unit tested.

use crate::error::{Error, Result};
use crate::Layout;

/// Controllers a v1 hierarchy can carry (named hierarchies are `name=…`).
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// `None` for cgroup2; the controllers (and `name=…`) for v1.
    pub controllers: Option<Vec<String>>,
    /// Where it is mounted.
    pub mountpoint: String,
    /// Which cgroup of the hierarchy is the root of this mount (field 4 of
    /// mountinfo; `/` unless a subtree was bind-mounted, e.g. in a container).
    pub root: String,
}

impl Mount {
    pub fn is_v2(&self) -> bool {
        self.controllers.is_none()
    }

    /// A stable key naming the hierarchy: its controllers sorted and joined
    /// with `,` (`cpu,cpuacct`, `name=systemd`), or `""` for cgroup2.
    pub fn key(&self) -> String {
        match &self.controllers {
            None => String::new(),
            Some(c) => controllers_key(c),
        }
    }

    /// Whether this v1 hierarchy carries a real controller (not only a name).
    fn has_real_controller(&self) -> bool {
        self.controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|x| !x.starts_with("name=")))
    }
}

pub(crate) fn controllers_key(c: &[String]) -> String {
    let mut v: Vec<&str> = c.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.join(",")
}

/// Undo mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64 + (oct[1] - b'0') as u32 * 8 + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every cgroup and cgroup2 mount in a mountinfo text, first mount of each
/// hierarchy only (later ones are bind mounts of the same hierarchy).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 4 {
            continue;
        }
        let root = unescape(fields[3]);
        let mountpoint = unescape(fields[4]);
        let fstype = fields[sep + 1];
        let super_opts = fields[sep + 3];
        let controllers = match fstype {
            "cgroup2" => None,
            "cgroup" => {
                let c: Vec<String> = super_opts
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                if c.is_empty() {
                    continue;
                }
                Some(c)
            }
            _ => continue,
        };
        let m = Mount {
            controllers,
            mountpoint,
            root,
        };
        if out.iter().any(|o| o.key() == m.key() && o.is_v2() == m.is_v2()) {
            continue;
        }
        out.push(m);
    }
    out
}

/// The layout the mounts describe.
pub(crate) fn layout_of(mounts: &[Mount]) -> Result<Layout> {
    let v1 = mounts.iter().any(Mount::has_real_controller);
    let v2 = mounts.iter().any(Mount::is_v2);
    match (v1, v2) {
        (true, true) => Ok(Layout::Hybrid),
        (true, false) => Ok(Layout::Legacy),
        (false, true) => Ok(Layout::Unified),
        (false, false) => Err(Error::NoHierarchy(
            "neither cgroup nor cgroup2 in /proc/self/mountinfo".into(),
        )),
    }
}

/// The hierarchies a layout uses: Unified only cgroup2; Legacy only v1;
/// Hybrid both (the cgroup2 directory tracks processes and holds the
/// controllers bound to v2, e.g. hugetlb on this kind of host).
pub(crate) fn select(mounts: &[Mount], layout: Layout) -> Result<Vec<Mount>> {
    let sel: Vec<Mount> = mounts
        .iter()
        .filter(|m| match layout {
            Layout::Unified => m.is_v2(),
            Layout::Legacy => !m.is_v2(),
            Layout::Hybrid => true,
        })
        .cloned()
        .collect();
    let ok = match layout {
        Layout::Unified => sel.iter().any(Mount::is_v2),
        Layout::Legacy => sel.iter().any(Mount::has_real_controller),
        Layout::Hybrid => {
            sel.iter().any(Mount::is_v2) && sel.iter().any(Mount::has_real_controller)
        }
    };
    if !ok {
        return Err(Error::NoHierarchy(format!(
            "layout {layout:?} needs {}",
            match layout {
                Layout::Unified => "a cgroup2 mount",
                Layout::Legacy => "a cgroup v1 mount with a controller",
                Layout::Hybrid => "both cgroup v1 controller mounts and a cgroup2 mount",
            }
        )));
    }
    Ok(sel)
}

/// `/proc/self/cgroup` as (hierarchy key, path) pairs; the v2 line has key "".
pub(crate) fn parse_proc_cgroup(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let list: Vec<String> = if ctrls.is_empty() {
            Vec::new()
        } else {
            ctrls.split(',').map(str::to_string).collect()
        };
        out.push((controllers_key(&list), path.to_string()));
    }
    out
}

pub(crate) fn read_mountinfo() -> Result<Vec<Mount>> {
    Ok(parse_mountinfo(&visible(&read_proc("/proc/self/mountinfo")?)))
}

/// Read a /proc file whole. Such files report a size of 0, which makes
/// `read_to_string` start with tiny reads; a page-sized buffer takes a
/// typical mountinfo in one or two.
pub fn read_proc(path: &str) -> Result<String> {
    use std::io::Read;
    let err = |e: std::io::Error| Error::Read {
        file: path.into(),
        errno: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
    };
    let mut text = String::with_capacity(16 << 10);
    std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text)).map_err(err)?;
    Ok(text)
}

/// The mountinfo lines of mounts that can be seen: a mount covered by a
/// later one on the same mount point or on one of its parents (a tmpfs
/// over /sys/fs/cgroup/unified, say) is not what a path reaches.
pub fn visible(text: &str) -> String {
    let points: Vec<String> = text.lines().map(|l| unescape(l.split(' ').nth(4).unwrap_or(""))).collect();
    let covers = |later: &str, earlier: &str| {
        later == earlier || later == "/" || earlier.strip_prefix(later).is_some_and(|rest| rest.starts_with('/'))
    };
    text.lines()
        .enumerate()
        .filter(|(i, _)| !points[i + 1..].iter().any(|later| covers(later, &points[*i])))
        .map(|(_, l)| format!("{l}\n"))
        .collect()
}

pub(crate) fn read_own_cgroups() -> Result<Vec<(String, String)>> {
    Ok(parse_proc_cgroup(&read_proc("/proc/self/cgroup")?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn covered_mounts_are_not_visible() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n90 31 0:50 / /sys/fs/cgroup/unified rw - tmpfs tmpfs rw\n";
        let v = super::visible(mi);
        assert!(!v.contains("cgroup2"), "{v}");
        assert!(v.contains("memory"));
        assert!(v.contains("0:50"));
    }

    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 88 0:32 /docker/x /mnt/memory\\040copy rw shared:5 - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_hybrid() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(m[0].key(), "cpu");
        assert_eq!(m[3].key(), "name=systemd");
        assert!(m[4].is_v2());
        assert_eq!(m[4].mountpoint, "/sys/fs/cgroup/unified");
        assert_eq!(layout_of(&m).ok(), Some(Layout::Hybrid));
        let uni = select(&m, Layout::Unified).map(|v| v.len()).ok();
        assert_eq!(uni, Some(1));
        assert_eq!(select(&m, Layout::Legacy).map(|v| v.len()).ok(), Some(4));
    }

    #[test]
    fn mountinfo_unified_and_optional_fields() {
        let t = "25 1 0:22 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 1);
        assert_eq!(layout_of(&m).ok(), Some(Layout::Unified));
        assert!(select(&m, Layout::Hybrid).is_err());
        assert!(select(&m, Layout::Legacy).is_err());
    }

    #[test]
    fn mountinfo_comounted_and_escapes() {
        let t = "1 1 0:1 /a\\040b /x\\134y rw - cgroup cgroup rw,cpuacct,cpu\n";
        let m = parse_mountinfo(t);
        assert_eq!(m[0].key(), "cpu,cpuacct");
        assert_eq!(m[0].root, "/a b");
        assert_eq!(m[0].mountpoint, "/x\\y");
        assert_eq!(layout_of(&m).ok(), Some(Layout::Legacy));
        assert!(layout_of(&[]).is_err());
    }

    #[test]
    fn proc_cgroup() {
        let t = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct,cpu:/x\n0::/user.slice\n";
        let p = parse_proc_cgroup(t);
        assert_eq!(p[1], ("memory".to_string(), "/process_api/abc".to_string()));
        assert_eq!(p[2].0, "cpu,cpuacct");
        assert_eq!(p[3], (String::new(), "/user.slice".to_string()));
    }
}

//! OCI mount options (`mounts[].options`) parsed into what the mount API
//! needs: per-mount attributes (this mount, or the whole tree for the `r*`
//! forms), a propagation change, superblock flags and filesystem data.

use rustix::mount::MountAttrFlags as A;

use crate::fd::{MountAttr, Propagation};
use crate::{Error, Result};

/// A propagation change requested by an option such as `rslave`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropagationChange {
    pub kind: Propagation,
    pub recursive: bool,
}

/// The parsed options of one OCI mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `bind` or `rbind` was given (or the type is `bind`).
    pub bind: bool,
    /// `rbind`: clone the whole tree below the source.
    pub recursive_bind: bool,
    /// Attributes to set / clear on this mount only.
    pub set: MountAttr,
    pub clear: MountAttr,
    /// Attributes to set / clear on every mount of the tree (`rro`, `rnosuid`, …).
    pub rec_set: MountAttr,
    pub rec_clear: MountAttr,
    pub propagation: Option<PropagationChange>,
    /// Superblock flags (`sync`, `dirsync`, `mand`, `lazytime`, …) given to
    /// `fsconfig` as flags; meaningless for a bind mount.
    pub sb_flags: Vec<String>,
    /// Filesystem data (`size=64k`, `mode=755`, `newinstance`, …).
    pub data: Vec<(String, Option<String>)>,
    /// `idmap` (false) or `ridmap` (true).
    pub idmap: Option<bool>,
    /// `tmpcopyup` (runc's extension): a tmpfs starts as a copy of the
    /// directory it covers.
    pub copy_up: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            bind: false,
            recursive_bind: false,
            set: MountAttr::empty(),
            clear: MountAttr::empty(),
            rec_set: MountAttr::empty(),
            rec_clear: MountAttr::empty(),
            propagation: None,
            sb_flags: Vec::new(),
            data: Vec::new(),
            idmap: None,
            copy_up: false,
        }
    }
}

impl MountOptions {
    /// Whether the mount should be read-only.
    pub fn readonly(&self) -> bool {
        self.set.contains(A::MOUNT_ATTR_RDONLY) || self.rec_set.contains(A::MOUNT_ATTR_RDONLY)
    }
}

enum Attr {
    Set(MountAttr),
    Clear(MountAttr),
    /// An atime mode: clear the atime field, then set the mode.
    Atime(MountAttr),
}

fn attr_option(name: &str) -> Option<Attr> {
    Some(match name {
        "ro" => Attr::Set(A::MOUNT_ATTR_RDONLY),
        "rw" => Attr::Clear(A::MOUNT_ATTR_RDONLY),
        "nosuid" => Attr::Set(A::MOUNT_ATTR_NOSUID),
        "suid" => Attr::Clear(A::MOUNT_ATTR_NOSUID),
        "nodev" => Attr::Set(A::MOUNT_ATTR_NODEV),
        "dev" => Attr::Clear(A::MOUNT_ATTR_NODEV),
        "noexec" => Attr::Set(A::MOUNT_ATTR_NOEXEC),
        "exec" => Attr::Clear(A::MOUNT_ATTR_NOEXEC),
        "nodiratime" => Attr::Set(A::MOUNT_ATTR_NODIRATIME),
        "diratime" => Attr::Clear(A::MOUNT_ATTR_NODIRATIME),
        "nosymfollow" => Attr::Set(A::MOUNT_ATTR_NOSYMFOLLOW),
        "symfollow" => Attr::Clear(A::MOUNT_ATTR_NOSYMFOLLOW),
        "noatime" => Attr::Atime(A::MOUNT_ATTR_NOATIME),
        "strictatime" => Attr::Atime(A::MOUNT_ATTR_STRICTATIME),
        "relatime" | "atime" | "norelatime" | "nostrictatime" => Attr::Atime(A::MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

fn propagation_option(name: &str) -> Option<PropagationChange> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(b @ ("private" | "shared" | "slave" | "unbindable")) => (true, b),
        _ => (false, name),
    };
    let kind = match base {
        "private" => Propagation::Private,
        "shared" => Propagation::Shared,
        "slave" => Propagation::Slave,
        "unbindable" => Propagation::Unbindable,
        _ => return None,
    };
    Some(PropagationChange { kind, recursive })
}

const SB_FLAGS: &[&str] = &[
    "sync", "async", "dirsync", "mand", "nomand", "lazytime", "nolazytime", "iversion", "noiversion",
];

/// Parse the options of the mount at `dest` (used in errors).
pub fn parse(dest: &str, options: &[String]) -> Result<MountOptions> {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        match opt {
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
            }
            "idmap" => o.idmap = Some(false),
            "ridmap" => o.idmap = Some(true),
            // No-ops: the mount API has no remount step to request, and
            // `defaults` (fstab's) and `silent`/`loud` change nothing.
            "remount" | "defaults" | "silent" | "loud" => {}
            "tmpcopyup" => o.copy_up = true,
            _ if SB_FLAGS.contains(&opt) => o.sb_flags.push(opt.to_string()),
            _ => {
                if let Some(p) = propagation_option(opt) {
                    o.propagation = Some(p);
                } else if let Some(a) = attr_option(opt) {
                    apply(&mut o.set, &mut o.clear, a);
                } else if let Some(a) = opt.strip_prefix('r').and_then(attr_option) {
                    apply(&mut o.rec_set, &mut o.rec_clear, a);
                } else if opt.is_empty() {
                    return Err(Error::Option {
                        dest: dest.into(),
                        option: opt.into(),
                        reason: "empty option",
                    });
                } else {
                    let (k, v) = match opt.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (opt.to_string(), None),
                    };
                    o.data.push((k, v));
                }
            }
        }
    }
    Ok(o)
}

/// The per-mount flags of a bind, by runc's rule (runc 1.1.5, measured on
/// this machine; it is the kernel's `MS_BIND|MS_REMOUNT`):
///
/// - The options are folded in order into one set of flags: `ro`,
///   `nosuid`, `nodev`, `noexec`, `nosymfollow`, `noatime`, `nodiratime`,
///   `relatime`, `strictatime` add theirs; `rw`, `suid`, `dev`, `exec`,
///   `symfollow`, `atime`, `diratime`, `norelatime`, `nostrictatime` only
///   take back what an earlier option added (`atime` takes back `noatime`).
/// - No flag left (`bind`, `bind,rw`, `bind,dev`, `bind,exec`, ...): the
///   bind keeps the source's flags exactly, read-only and all.
/// - Else the bind's `ro`, `nosuid`, `nodev`, `noexec`, `nosymfollow`
///   become exactly the set's: what it lacks is cleared (`bind,nosuid`
///   over a read-only source is read-write). Its atime mode stays the
///   source's unless the set has an atime flag; then it is `strictatime`
///   if given, else `noatime` if given, else `relatime`, plus `nodiratime`
///   if given.
///
/// Returns the attributes to set and to clear, `None` for "keep the
/// source's". The recursive forms (`rro`, ...) are applied afterwards, on
/// the whole tree, as runc does.
pub fn bind_attrs(options: &[String]) -> Option<(MountAttr, MountAttr)> {
    const PLAIN: [(&str, &str, MountAttr); 5] = [
        ("ro", "rw", A::MOUNT_ATTR_RDONLY),
        ("nosuid", "suid", A::MOUNT_ATTR_NOSUID),
        ("nodev", "dev", A::MOUNT_ATTR_NODEV),
        ("noexec", "exec", A::MOUNT_ATTR_NOEXEC),
        ("nosymfollow", "symfollow", A::MOUNT_ATTR_NOSYMFOLLOW),
    ];
    // Atime flags, as bits of our own (relatime is 0 among mount attrs).
    const ATIME: [(&str, &str, u8); 4] =
        [("noatime", "atime", 1), ("nodiratime", "diratime", 2), ("relatime", "norelatime", 4), ("strictatime", "nostrictatime", 8)];
    let mut plain = MountAttr::empty();
    let mut atime = 0u8;
    for opt in options {
        let opt = opt.as_str();
        for (on, off, f) in PLAIN {
            if opt == on {
                plain.insert(f);
            } else if opt == off {
                plain.remove(f);
            }
        }
        for (on, off, f) in ATIME {
            if opt == on {
                atime |= f;
            } else if opt == off {
                atime &= !f;
            }
        }
    }
    if plain.is_empty() && atime == 0 {
        return None;
    }
    let all = PLAIN.iter().fold(MountAttr::empty(), |a, (_, _, f)| a | *f);
    let (mut set, mut clear) = (plain, all & !plain);
    if atime != 0 {
        clear |= A::MOUNT_ATTR__ATIME;
        set |= if atime & 8 != 0 {
            A::MOUNT_ATTR_STRICTATIME
        } else if atime & 1 != 0 {
            A::MOUNT_ATTR_NOATIME
        } else {
            A::MOUNT_ATTR_RELATIME
        };
        if atime & 2 != 0 {
            set |= A::MOUNT_ATTR_NODIRATIME;
        } else {
            clear |= A::MOUNT_ATTR_NODIRATIME;
        }
    }
    Some((set, clear))
}

fn apply(set: &mut MountAttr, clear: &mut MountAttr, a: Attr) {
    match a {
        Attr::Set(f) => {
            set.insert(f);
            clear.remove(f);
        }
        Attr::Clear(f) => {
            clear.insert(f);
            set.remove(f);
        }
        Attr::Atime(f) => {
            set.remove(A::MOUNT_ATTR__ATIME);
            set.insert(f);
            clear.insert(A::MOUNT_ATTR__ATIME);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse("/x", &opts.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert!(o.set.contains(A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_STRICTATIME));
        assert!(o.clear.contains(A::MOUNT_ATTR__ATIME));
        assert_eq!(
            o.data,
            vec![("mode".into(), Some("755".into())), ("size".into(), Some("65536k".into()))]
        );
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert!(!o.readonly());
        assert!(o.clear.contains(A::MOUNT_ATTR_RDONLY));
        assert!(p(&["rw", "ro"]).readonly());
    }

    #[test]
    fn recursive_forms() {
        let o = p(&["rbind", "rro", "rnosuid", "rslave"]);
        assert!(o.bind && o.recursive_bind);
        assert!(o.rec_set.contains(A::MOUNT_ATTR_RDONLY | A::MOUNT_ATTR_NOSUID));
        assert!(o.set.is_empty());
        assert_eq!(
            o.propagation,
            Some(PropagationChange { kind: Propagation::Slave, recursive: true })
        );
        assert!(o.readonly());
    }

    #[test]
    fn propagation_forms() {
        assert_eq!(p(&["private"]).propagation.unwrap().kind, Propagation::Private);
        assert!(!p(&["shared"]).propagation.unwrap().recursive);
        assert!(p(&["runbindable"]).propagation.unwrap().recursive);
    }

    #[test]
    fn flag_data_and_sb_flags() {
        let o = p(&["newinstance", "ptmxmode=0666", "sync"]);
        assert_eq!(o.data[0], ("newinstance".into(), None));
        assert_eq!(o.sb_flags, vec!["sync".to_string()]);
    }

    #[test]
    fn bad_options() {
        assert!(parse("/x", &["".to_string()]).is_err());
    }

    #[test]
    fn tmpcopyup_option() {
        assert!(p(&["tmpcopyup", "nosuid"]).copy_up);
        assert!(!p(&["nosuid"]).copy_up);
    }

    #[test]
    fn no_op_options() {
        assert_eq!(p(&["defaults", "remount", "silent", "loud"]), MountOptions::default());
    }

    #[test]
    fn bind_attrs_as_runc() {
        let b = |opts: &[&str]| bind_attrs(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let plain = A::MOUNT_ATTR_RDONLY | A::MOUNT_ATTR_NOSUID | A::MOUNT_ATTR_NODEV | A::MOUNT_ATTR_NOEXEC | A::MOUNT_ATTR_NOSYMFOLLOW;
        // Only clearing options, or none: the source's flags stay.
        for o in [&["bind"][..], &["bind", "rw"], &["bind", "dev", "exec", "suid"], &["bind", "atime", "norelatime"], &["rbind", "private"], &["bind", "ro", "rw"]] {
            assert_eq!(b(o), None, "{o:?}");
        }
        // Any flag: the plain ones become exactly the set's, atime is kept.
        assert_eq!(b(&["bind", "nosuid"]), Some((A::MOUNT_ATTR_NOSUID, plain & !A::MOUNT_ATTR_NOSUID)));
        assert_eq!(b(&["bind", "ro", "dev"]), Some((A::MOUNT_ATTR_RDONLY, plain & !A::MOUNT_ATTR_RDONLY)));
        // An atime flag resets the atime mode and nodiratime.
        let atime = A::MOUNT_ATTR__ATIME | A::MOUNT_ATTR_NODIRATIME;
        assert_eq!(b(&["bind", "noatime"]), Some((A::MOUNT_ATTR_NOATIME, plain | atime)));
        assert_eq!(b(&["bind", "noatime", "strictatime"]), Some((A::MOUNT_ATTR_STRICTATIME, plain | atime)));
        assert_eq!(
            b(&["bind", "nodiratime"]),
            Some((A::MOUNT_ATTR_RELATIME | A::MOUNT_ATTR_NODIRATIME, plain | A::MOUNT_ATTR__ATIME))
        );
    }

    #[test]
    fn idmap_options() {
        assert_eq!(p(&["idmap"]).idmap, Some(false));
        assert_eq!(p(&["ridmap"]).idmap, Some(true));
    }
}

//! `linux.cgroupsPath` → one path per hierarchy, as runc resolves it:
//!
//! - absolute (`/a/b`): from the root of every hierarchy;
//! - relative (`a/b`): on v1 (and the cgroup2 directory of a hybrid host)
//!   below the runtime's own cgroup in that hierarchy; on pure v2 below the
//!   *parent* of the runtime's own cgroup (the runtime's cgroup has processes,
//!   so controllers could not be enabled for a child of it);
//! - absent or empty: `/fdbox/<id>`.
//!
//! Unlike runc, which lexically cleans `..` away, any `..` component is
//! rejected, so a path can never name a cgroup outside the hierarchy.

use crate::error::{Error, Result};

/// Parent of the default cgroup of every container.
pub const DEFAULT_PARENT: &str = "fdbox";

/// A validated `cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spec {
    Absolute(Vec<String>),
    Relative(Vec<String>),
}

fn invalid(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidPath {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Split a path into components, rejecting `..`, NUL, newlines and
/// over-long names; `.` and empty components are dropped.
pub(crate) fn components(path: &str) -> Result<Vec<String>> {
    if path.contains('\0') || path.contains('\n') {
        return Err(invalid(path, "contains a NUL or newline character"));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(invalid(path, "'..' is not allowed (it could escape the cgroup root)")),
            _ if c.len() > 255 => return Err(invalid(path, "a component is longer than 255 bytes")),
            _ => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// Validate `linux.cgroupsPath` (or build the default from the container id).
pub(crate) fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Spec> {
    match cgroups_path {
        None | Some("") => {
            if id.is_empty() || id == "." || id == ".." || id.contains('/') {
                return Err(invalid(
                    &format!("/{DEFAULT_PARENT}/{id}"),
                    "the container id cannot name a cgroup",
                ));
            }
            let comps = components(id)?;
            if comps.len() != 1 {
                return Err(invalid(id, "the container id cannot name a cgroup"));
            }
            Ok(Spec::Absolute(vec![DEFAULT_PARENT.to_string(), id.to_string()]))
        }
        Some(p) => {
            let comps = components(p)?;
            if comps.is_empty() {
                return Err(invalid(p, "names the root cgroup, which a container cannot own"));
            }
            if p.starts_with('/') {
                Ok(Spec::Absolute(comps))
            } else {
                Ok(Spec::Relative(comps))
            }
        }
    }
}

/// Where a relative path starts in one hierarchy.
pub(crate) struct Base<'a> {
    /// The hierarchy key (`memory`, `cpu,cpuacct`, `""` for cgroup2).
    pub key: &'a str,
    /// The mount's root inside the hierarchy (mountinfo field 4).
    pub mount_root: &'a str,
    /// The runtime's own cgroup in that hierarchy (/proc/self/cgroup).
    pub own: Option<&'a str>,
    /// Pure v2: start at the parent of the own cgroup.
    pub parent_of_own: bool,
}

/// The absolute path (from the mounted root of the hierarchy) of the
/// container's cgroup in one hierarchy.
pub(crate) fn resolve_one(spec: &Spec, base: &Base<'_>) -> Result<String> {
    let comps = match spec {
        Spec::Absolute(c) => c.clone(),
        Spec::Relative(rel) => {
            let own = base.own.ok_or_else(|| {
                invalid(
                    &rel.join("/"),
                    format!("the runtime's own cgroup in hierarchy {:?} is unknown", base.key),
                )
            })?;
            // The own path is in the hierarchy's namespace; the mount shows
            // the subtree below `mount_root`.
            let own_c = components(own)?;
            let root_c = components(base.mount_root)?;
            if !own_c.starts_with(&root_c) {
                return Err(invalid(
                    &rel.join("/"),
                    format!("the runtime's cgroup {own} is outside the mounted subtree {}", base.mount_root),
                ));
            }
            let mut c: Vec<String> = own_c[root_c.len()..].to_vec();
            if base.parent_of_own {
                c.pop();
            }
            c.extend(rel.iter().cloned());
            c
        }
    };
    Ok(format!("/{}", comps.join("/")))
}

/// The resolved path of a container's cgroup, recorded in state.json and
/// given back to [`crate::Cgroup::open`]. When every hierarchy has the same
/// path (always, unless a relative cgroupsPath met different own cgroups)
/// it is that path, e.g. `/fdbox/abc`; otherwise one line per hierarchy in
/// `/proc/self/cgroup` style: `memory:/a/x\ncpu:/x\n:/x` (":" alone for v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved(pub Vec<(String, String)>);

impl Resolved {
    pub fn encode(&self) -> String {
        let first = self.0.first().map(|(_, p)| p.as_str());
        if let Some(f) = first {
            if self.0.iter().all(|(_, p)| p == f) {
                return f.to_string();
            }
        }
        self.0
            .iter()
            .map(|(k, p)| format!("{k}:{p}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The path for hierarchy `key` from an encoded string.
    pub fn decode_for(encoded: &str, key: &str) -> Result<String> {
        let path = if encoded.starts_with('/') && !encoded.contains('\n') {
            encoded.to_string()
        } else {
            let found = encoded.lines().find_map(|l| {
                let (k, p) = l.split_once(':')?;
                (k == key).then(|| p.to_string())
            });
            found.ok_or_else(|| invalid(encoded, format!("no path recorded for hierarchy {key:?}")))?
        };
        let comps = components(&path)?;
        if !path.starts_with('/') || comps.is_empty() {
            return Err(invalid(encoded, "not an absolute, non-root cgroup path"));
        }
        Ok(format!("/{}", comps.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>(own: Option<&'a str>, root: &'a str, parent: bool) -> Base<'a> {
        Base {
            key: "memory",
            mount_root: root,
            own,
            parent_of_own: parent,
        }
    }

    #[test]
    fn default_is_fdbox_id() {
        let s = parse(None, "abc").ok();
        assert_eq!(s, Some(Spec::Absolute(vec!["fdbox".into(), "abc".into()])));
        assert_eq!(parse(Some(""), "abc").ok(), s);
        assert!(parse(None, "a/b").is_err());
        assert!(parse(None, "..").is_err());
        assert!(parse(None, "").is_err());
    }

    #[test]
    fn dotdot_is_rejected_everywhere() {
        for p in ["/a/../b", "../x", "/..", "a/..", "/a/b/.."] {
            let e = parse(Some(p), "id").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("'..' is not allowed"), "{p}: {e}");
        }
        assert!(parse(Some("/"), "id").is_err());
        assert!(parse(Some("/a\nb"), "id").is_err());
        assert!(parse(Some(&format!("/{}", "x".repeat(256))), "id").is_err());
    }

    #[test]
    fn absolute_and_relative_forms() {
        assert_eq!(
            parse(Some("//a/./b/"), "id").ok(),
            Some(Spec::Absolute(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            parse(Some("a/b"), "id").ok(),
            Some(Spec::Relative(vec!["a".into(), "b".into()]))
        );
        // runc's systemd form is just a name for the cgroupfs driver
        assert_eq!(
            parse(Some("system.slice:docker:1"), "id").ok(),
            Some(Spec::Relative(vec!["system.slice:docker:1".into()]))
        );
    }

    #[test]
    fn resolve_absolute_ignores_own_cgroup() {
        let s = Spec::Absolute(vec!["a".into(), "b".into()]);
        let r = resolve_one(&s, &base(Some("/x/y"), "/", false)).ok();
        assert_eq!(r.as_deref(), Some("/a/b"));
    }

    #[test]
    fn resolve_relative_v1_below_own_cgroup() {
        let s = Spec::Relative(vec!["c1".into()]);
        let r = resolve_one(&s, &base(Some("/process_api/h"), "/", false)).ok();
        assert_eq!(r.as_deref(), Some("/process_api/h/c1"));
        // a container's view: the mount shows /docker/x as its root
        let r = resolve_one(&s, &base(Some("/docker/x/sub"), "/docker/x", false)).ok();
        assert_eq!(r.as_deref(), Some("/sub/c1"));
        assert!(resolve_one(&s, &base(Some("/other"), "/docker/x", false)).is_err());
        assert!(resolve_one(&s, &base(None, "/", false)).is_err());
        // own cgroup outside a cgroup namespace shows as /..: refused
        assert!(resolve_one(&s, &base(Some("/../x"), "/", false)).is_err());
    }

    #[test]
    fn resolve_relative_v2_below_parent_of_own() {
        let s = Spec::Relative(vec!["c1".into()]);
        let r = resolve_one(&s, &base(Some("/user.slice/session-1.scope"), "/", true)).ok();
        assert_eq!(r.as_deref(), Some("/user.slice/c1"));
        let r = resolve_one(&s, &base(Some("/"), "/", true)).ok();
        assert_eq!(r.as_deref(), Some("/c1"));
    }

    #[test]
    fn encode_decode() {
        let uniform = Resolved(vec![("memory".into(), "/a/b".into()), (String::new(), "/a/b".into())]);
        assert_eq!(uniform.encode(), "/a/b");
        assert_eq!(Resolved::decode_for("/a/b", "cpu").ok().as_deref(), Some("/a/b"));
        let mixed = Resolved(vec![
            ("memory".into(), "/p/h/c".into()),
            ("cpu,cpuacct".into(), "/c".into()),
            (String::new(), "/c".into()),
        ]);
        let e = mixed.encode();
        assert_eq!(e, "memory:/p/h/c\ncpu,cpuacct:/c\n:/c");
        assert_eq!(Resolved::decode_for(&e, "memory").ok().as_deref(), Some("/p/h/c"));
        assert_eq!(Resolved::decode_for(&e, "cpu,cpuacct").ok().as_deref(), Some("/c"));
        assert_eq!(Resolved::decode_for(&e, "").ok().as_deref(), Some("/c"));
        assert!(Resolved::decode_for(&e, "pids").is_err());
        assert!(Resolved::decode_for("/a/../b", "x").is_err());
        assert!(Resolved::decode_for("/", "x").is_err());
        assert!(Resolved::decode_for("memory:/x/..", "memory").is_err());
    }
}

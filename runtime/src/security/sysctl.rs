//! `linux.sysctl`: kernel parameters of the container's own namespaces.
//!
//! Only parameters that belong to a namespace the container owns are
//! accepted (as runc's validator): `net.*` needs a network namespace,
//! the System V IPC and POSIX message queue ones an IPC namespace,
//! `kernel.domainname` a UTS namespace (`kernel.hostname` is refused: the
//! `hostname` field sets it; `kernel.domainname` wins over the `domainname`
//! field, as in runc, which writes sysctls last). Joining the
//! host's own namespace by path does not count. Anything else would change
//! the host.
//!
//! The values are written by the init, after it is in the container's
//! namespaces and before any container mount exists, through a procfs of
//! its own: a fresh `fsopen("proc")` → `fsmount` that is never attached
//! anywhere. Nothing in the rootfs or the config's mounts can redirect
//! these writes (the CVE-2025-52881 class: a `/proc` or `/proc/sys/...`
//! replaced by a bind or a symlink), and every file is opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` and checked with `fstatfs` to be procfs.

use std::collections::HashMap;
use std::os::fd::AsFd;

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

/// The namespace a sysctl belongs to, or None when it is global.
pub fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
        "kernel.shmmni", "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// The file of `key` below `/proc/sys`: dots separate components, and a
/// slash stands for a dot inside one (`net.ipv4.conf.eth0/100.forwarding`
/// is `net/ipv4/conf/eth0.100/forwarding`), as sysctl(8) has it.
pub fn path_of(key: &str) -> Result<String> {
    let bad = || Error::Config(format!("linux.sysctl {key:?}: not a valid sysctl name"));
    let mut parts = Vec::new();
    for comp in key.split('.') {
        let comp = comp.replace('/', ".");
        if comp.is_empty() || comp == "." || comp == ".." || comp.contains('\0') {
            return Err(bad());
        }
        parts.push(comp);
    }
    Ok(format!("sys/{}", parts.join("/")))
}

/// Whether the namespace file at `path` is the host's (this process's) one.
fn is_host_namespace(path: &std::path::Path, typ: LinuxNamespaceType) -> bool {
    let name = match typ {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        _ => return false,
    };
    match (rustix::fs::stat(path), rustix::fs::stat(format!("/proc/self/ns/{name}").as_str())) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Refuse sysctls that are not namespaced, or whose namespace the
/// container does not own.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else { return Ok(()) };
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).cloned().unwrap_or_default();
    for key in sorted_keys(sysctl) {
        path_of(key)?;
        // As runc: the hostname has a field of its own, and two sources
        // for one value are refused, even when they agree.
        if key == "kernel.hostname" {
            return Err(Error::Config(
                "linux.sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field".into(),
            ));
        }
        let Some(typ) = namespace_of(key) else {
            return Err(Error::Config(format!(
                "linux.sysctl {key:?}: not in a namespace the container owns (it would change the host)"
            )));
        };
        let owned = namespaces.iter().find(|n| n.typ() == typ).is_some_and(|n| match n.path() {
            None => true,
            Some(p) => !is_host_namespace(p, typ),
        });
        if !owned {
            return Err(Error::Config(format!(
                "linux.sysctl {key:?}: needs a {} namespace of the container's own",
                match typ {
                    LinuxNamespaceType::Network => "network",
                    LinuxNamespaceType::Ipc => "ipc",
                    _ => "uts",
                }
            )));
        }
    }
    Ok(())
}

fn sorted_keys(sysctl: &HashMap<String, String>) -> Vec<&String> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    keys
}

/// Write every `linux.sysctl` value (in the init, in the container's
/// namespaces; see the module docs).
pub fn apply(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let proc = fdbox_mount::FsContext::new("proc")?.mount(
        fdbox_mount::MountAttr::MOUNT_ATTR_NOSUID | fdbox_mount::MountAttr::MOUNT_ATTR_NODEV | fdbox_mount::MountAttr::MOUNT_ATTR_NOEXEC,
    )?;
    check_procfs(proc.as_fd(), "proc (for linux.sysctl)")?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_XDEV | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    for key in sorted_keys(sysctl) {
        let value = &sysctl[key];
        let path = path_of(key)?;
        let fd = rustix::fs::openat2(&proc, path.as_str(), OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty(), resolve)
            .map_err(|e| Error::Config(format!("linux.sysctl {key}: open /proc/{path}: {}", fdbox_mount::describe(e))))?;
        check_procfs(fd.as_fd(), &format!("/proc/{path}"))?;
        match rustix::io::write(&fd, value.as_bytes()) {
            Ok(n) if n == value.len() => {}
            Ok(_) => return Err(Error::Config(format!("linux.sysctl {key}={value}: short write"))),
            Err(e) => return Err(Error::Config(format!("linux.sysctl {key}={value}: write /proc/{path}: {}", fdbox_mount::describe(e)))),
        }
    }
    Ok(())
}

/// `fstatfs(fd)` must say procfs.
pub fn check_procfs(fd: std::os::fd::BorrowedFd<'_>, what: &str) -> Result<()> {
    let st = rustix::fs::fstatfs(fd).map_err(|e| Error::sys("fstatfs", what, e))?;
    if st.f_type != rustix::fs::PROC_SUPER_MAGIC {
        return Err(Error::Config(format!("{what} is not on procfs (f_type {:#x})", st.f_type)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        let mut base = serde_json::json!({"ociVersion": "1.2.0", "root": {"path": "r"}, "linux": {}});
        base["linux"] = v;
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn namespaces_of_sysctls() {
        assert_eq!(namespace_of("net.ipv4.ip_forward"), Some(LinuxNamespaceType::Network));
        assert_eq!(namespace_of("kernel.shmmax"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(namespace_of("fs.mqueue.queues_max"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(namespace_of("kernel.domainname"), Some(LinuxNamespaceType::Uts));
        assert_eq!(namespace_of("kernel.pid_max"), None);
        assert_eq!(namespace_of("vm.swappiness"), None);
        assert_eq!(namespace_of("kernel.shm_next_id"), None);
    }

    #[test]
    fn paths_of_sysctls() {
        assert_eq!(path_of("net.ipv4.ip_forward").unwrap(), "sys/net/ipv4/ip_forward");
        assert_eq!(path_of("net.ipv4.conf.eth0/100.forwarding").unwrap(), "sys/net/ipv4/conf/eth0.100/forwarding");
        for bad in ["net..x", "net.ipv4.", ".net", "net./.x", "net.//.x"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_against_namespaces() {
        let ok = spec(serde_json::json!({"namespaces": [{"type": "network"}, {"type": "ipc"}], "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}}));
        validate(&ok).unwrap();
        let no_net = spec(serde_json::json!({"namespaces": [{"type": "ipc"}], "sysctl": {"net.ipv4.ip_forward": "1"}}));
        assert!(validate(&no_net).unwrap_err().to_string().contains("network namespace"));
        let global = spec(serde_json::json!({"namespaces": [{"type": "network"}], "sysctl": {"vm.swappiness": "1"}}));
        assert!(validate(&global).unwrap_err().to_string().contains("would change the host"));
        let host_net = spec(serde_json::json!({"namespaces": [{"type": "network", "path": "/proc/self/ns/net"}], "sysctl": {"net.ipv4.ip_forward": "1"}}));
        assert!(validate(&host_net).is_err());
    }
}

//! The bundle's config.json: the default `spec`, loading and validation.

use std::os::fd::BorrowedFd;

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};

/// The runtime-spec version this runtime implements (and `spec` writes).
pub const OCI_VERSION: &str = "1.2.0";

/// What `fdbox spec` writes: the same container as `runc spec` (a shell on a
/// read-only rootfs with the default mounts, masks and namespaces).
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "fdbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        // As `runc spec --rootless`: a user namespace mapping the caller to
        // root, no network namespace, and /sys bound from the host.
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let linux = &mut spec["linux"];
        linux["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        linux["namespaces"] = serde_json::json!([
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}
        ]);
        linux.as_object_mut().map(|o| o.remove("resources"));
        let mounts = spec["mounts"].as_array_mut().expect("mounts is an array");
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup" && m["destination"] != "/dev/mqueue");
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys" {
                *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if m["destination"] == "/dev/pts" {
                m["options"] = serde_json::json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
            }
        }
        mounts.push(serde_json::json!({"destination": "/dev/mqueue", "type": "bind", "source": "/dev/mqueue",
            "options": ["rbind", "nosuid", "noexec", "nodev"]}));
    }
    spec
}

/// Read and parse `config.json` from the bundle directory fd.
pub fn load(bundle: BorrowedFd<'_>, bundle_path: &str) -> Result<Spec> {
    let text = read_input(bundle, "config.json", &format!("{bundle_path}/config.json"))?;
    let mut spec: Spec = serde_json::from_slice(&text).map_err(|e| Error::Config(format!("{bundle_path}/config.json: {e}")))?;
    new_namespace_for_empty_path(&mut spec);
    validate(&spec)?;
    Ok(spec)
}

/// A namespace whose `path` is empty is a new one, as one without a path
/// (runtime-spec: "If path is not specified, the runtime MUST create a new
/// container namespace"; runc treats "" so): drop the empty paths once, so
/// that everything after sees only real ones.
fn new_namespace_for_empty_path(spec: &mut Spec) {
    let namespaces = spec.linux_mut().as_mut().and_then(|l| l.namespaces_mut().as_mut());
    for ns in namespaces.into_iter().flatten() {
        if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            ns.set_path(None);
        }
    }
}

/// Read an input file (config.json, `exec --process`, `update -r`) without
/// blocking on whatever was put at its path: it is opened `O_NONBLOCK` (a
/// FIFO does not wait for a writer, a device is not set up as a tty) and
/// read only if it is a regular file. `shown` names it in errors.
pub fn read_input(dir: BorrowedFd<'_>, path: &str, shown: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| match e {
            rustix::io::Errno::NOENT => Error::Config(format!("{shown}: no such file")),
            e => Error::sys("open", shown.to_string(), e),
        })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::sys("fstat", shown.to_string(), e))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(Error::Config(format!("{shown}: not a regular file")));
    }
    let mut text = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut text).map_err(|e| Error::Config(format!("{shown}: {e}")))?;
    Ok(text)
}

/// Open a namespace file (`linux.namespaces[].path`) to join: `O_NONBLOCK`
/// (a FIFO there does not block `create`), and it must be an nsfs file
/// (`/proc/<pid>/ns/*` or a bind mount of one), which is all `setns` takes.
pub fn open_namespace(path: &std::path::Path, shown: &str) -> Result<std::os::fd::OwnedFd> {
    /// `NSFS_MAGIC` of `<linux/magic.h>`.
    const NSFS_MAGIC: i128 = 0x6e73_6673;
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys("open", shown.to_string(), e))?;
    let st = rustix::fs::fstatfs(&fd).map_err(|e| Error::sys("fstatfs", shown.to_string(), e))?;
    if i128::from(st.f_type) != NSFS_MAGIC {
        return Err(Error::Config(format!("{shown}: not a namespace file")));
    }
    Ok(fd)
}

/// Checks that do not need the filesystem: what runc's validator refuses
/// before it starts anything.
pub fn validate(spec: &Spec) -> Result<()> {
    let version = spec.version();
    let major = version.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(Error::Config(format!(
            "unsupported ociVersion {version:?}: fdbox implements runtime-spec 1.x"
        )));
    }
    if spec.root().is_none() {
        return Err(Error::Config("config.json: root is missing".into()));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Config("config.json: process is missing".into()))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err(Error::Config("config.json: process.args must not be empty".into())),
    }
    if !process.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "config.json: process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| Error::Config("config.json: linux is missing".into()))?;
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = Vec::new();
    for ns in namespaces {
        if seen.contains(&ns.typ()) {
            return Err(Error::Config(format!("config.json: namespace {:?} listed twice", ns.typ())));
        }
        seen.push(ns.typ());
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        check_without_mount_namespace(spec, linux)?;
    }
    let has_uts = seen.contains(&LinuxNamespaceType::Uts);
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_uts {
        return Err(Error::Config("config.json: hostname requires a new uts namespace".into()));
    }
    let new_userns = namespaces.iter().any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let uid = id_maps(linux.uid_mappings());
    let gid = id_maps(linux.gid_mappings());
    if new_userns {
        fdbox_idmap::validate("linux.uidMappings", &uid)?;
        fdbox_idmap::validate("linux.gidMappings", &gid)?;
    } else if !uid.is_empty() || !gid.is_empty() {
        return Err(Error::Config(
            "config.json: linux.uidMappings/gidMappings given without a new user namespace".into(),
        ));
    }
    for d in linux.devices().as_deref().unwrap_or_default() {
        let path = d.path().display();
        // The kernel's dev_t holds a 12-bit major and a 20-bit minor: a
        // bigger value would be cut down to another device.
        if !(0..=0xfff).contains(&d.major()) || !(0..=0xf_ffff).contains(&d.minor()) {
            return Err(Error::Config(format!(
                "linux.devices {path}: major {} / minor {} out of range (0..4095 / 0..1048575)",
                d.major(),
                d.minor()
            )));
        }
        if let Some(mode) = d.file_mode().filter(|m| m & !0o17_7777 != 0) {
            return Err(Error::Config(format!("linux.devices {path}: fileMode {mode:#o} is not a file mode")));
        }
        crate::process::attrs::check_id(&format!("linux.devices {path}: uid"), d.uid().unwrap_or(0))?;
        crate::process::attrs::check_id(&format!("linux.devices {path}: gid"), d.gid().unwrap_or(0))?;
    }
    crate::hooks::validate(spec)?;
    crate::process::attrs::validate(spec)?;
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(Error::Config(format!(
                "mount {:?}: destination must be an absolute path",
                m.destination()
            )));
        }
    }
    Ok(())
}

/// A namespace not listed is the runtime's (runtime-spec), the mount
/// namespace too: the container then lives in the host's mount namespace,
/// chrooted into its rootfs (a detached clone of it, so `root.readonly`
/// still changes no host mount). What would need a mount made there is
/// refused, where runc would make it on the host and leave it behind.
fn check_without_mount_namespace(spec: &Spec, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let needs_mount = if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        Some("mounts")
    } else if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        Some("linux.devices")
    } else if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        Some("linux.maskedPaths")
    } else if linux.readonly_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        Some("linux.readonlyPaths")
    } else if linux.rootfs_propagation().as_ref().is_some_and(|p| !p.is_empty()) {
        Some("linux.rootfsPropagation")
    } else if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) {
        Some("process.terminal (the console is a mount)")
    } else {
        None
    };
    match needs_mount {
        Some(what) => Err(Error::Config(format!(
            "config.json: {what} without a mount namespace would change the host's mounts: add {{\"type\": \"mount\"}} to linux.namespaces"
        ))),
        None => Ok(()),
    }
}

/// OCI id mappings as `fdbox_idmap` extents.
pub fn id_maps(maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<fdbox_idmap::IdMap> {
    maps.iter()
        .flatten()
        .map(|m| fdbox_idmap::IdMap { container_id: m.container_id(), host_id: m.host_id(), size: m.size() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Spec> {
        let s: Spec = serde_json::from_value(v).map_err(|e| Error::Config(e.to_string()))?;
        validate(&s)?;
        Ok(s)
    }

    #[test]
    fn default_spec_is_valid() {
        let s = parse(default_spec(false)).unwrap();
        assert_eq!(s.process().as_ref().unwrap().args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
    }

    #[test]
    fn refuses_major_2_and_empty_args() {
        let mut v = default_spec(false);
        v["ociVersion"] = "2.0.0".into();
        assert!(parse(v).unwrap_err().to_string().contains("unsupported ociVersion"));
        let mut v = default_spec(false);
        v["process"]["args"] = serde_json::json!([]);
        assert!(parse(v).unwrap_err().to_string().contains("process.args"));
    }

    #[test]
    fn user_namespace_mappings() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"].as_array_mut().unwrap().push(serde_json::json!({"type": "user"}));
        assert!(parse(v.clone()).unwrap_err().to_string().contains("no mappings"));
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        parse(v.clone()).unwrap();
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 1}]);
        assert!(parse(v).unwrap_err().to_string().contains("overlap"));
        let mut v = default_spec(false);
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        assert!(parse(v).unwrap_err().to_string().contains("without a new user namespace"));
    }

    /// oci-spec checks `execCPUAffinity` with a regex (served by regex-lite
    /// here, see third_party/regex-lite-as-regex): cpu lists pass, anything
    /// else is a config error.
    #[test]
    fn exec_cpu_affinity_is_checked() {
        for ok in ["0", "0-1", "0,2-3,7", "10-12,15"] {
            let mut v = default_spec(false);
            v["process"]["execCPUAffinity"] = serde_json::json!({ "initial": ok, "final": ok });
            parse(v).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "a", "1-", "1,,2", "-1", "1 2", "١"] {
            let mut v = default_spec(false);
            v["process"]["execCPUAffinity"] = serde_json::json!({ "initial": bad });
            assert!(parse(v).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_missing_mount_ns_and_relative_destination() {
        let mut v = default_spec(false);
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "uts"}]);
        assert!(parse(v).unwrap_err().to_string().contains("mount namespace"));
        let mut v = default_spec(false);
        v["mounts"][0]["destination"] = "proc".into();
        assert!(parse(v).unwrap_err().to_string().contains("absolute"));
    }
}

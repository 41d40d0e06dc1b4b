use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct FeaturesArgs {}

/// The features document: only what this build actually does.
pub fn features_json() -> String {
    let caps: Vec<&str> = crate::security::caps::NAMES.to_vec();
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "diratime", "dirsync", "exec", "lazytime", "loud", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime",
            "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount",
            "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
            "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
            "idmap", "ridmap", "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnoatime",
            "ratime", "rrelatime", "rnorelatime", "rstrictatime", "rnostrictatime", "rnodiratime",
            "rdiratime", "rnosymfollow", "rsymfollow"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": crate::security::seccomp::features(),
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.fdbox.pidfd": "true"
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

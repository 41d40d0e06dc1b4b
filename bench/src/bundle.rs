//! The busybox rootfs shared by every bundle, and one bundle per runtime
//! from that runtime's own `spec`, adjusted identically.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::proc;

/// The namespaces every bundle gets: the default set of runc, crun and
/// fdbox `spec` (pid, network, ipc, uts, mount), written out explicitly so
/// a runtime whose default differs cannot make the comparison unfair.
pub const NAMESPACES: [&str; 5] = ["pid", "network", "ipc", "uts", "mount"];

/// A static busybox with the applets the benchmark runs.
pub fn make_rootfs(dir: &Path, busybox: &Path) -> Result<()> {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).io("mkdir", &p)?;
    }
    let bb = dir.join("bin/busybox");
    std::fs::copy(busybox, &bb).io("copy busybox to", &bb)?;
    for applet in ["true", "sleep", "sh"] {
        let l = dir.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &l).io("symlink", &l)?;
    }
    Ok(())
}

/// The same edits for every runtime's `spec` output: no terminal, the
/// given args, the shared rootfs (read-only, as `spec` has it), one
/// hostname, and the same namespaces.
pub fn adjust_spec(spec: &mut Value, rootfs: &Path, args: &[&str]) -> Result<()> {
    let bad = |what: &str| Error::Setup(format!("spec output has no {what}"));
    let process = spec.get_mut("process").and_then(Value::as_object_mut).ok_or_else(|| bad("process"))?;
    process.insert("terminal".into(), json!(false));
    process.insert("args".into(), json!(args));
    let root = spec.get_mut("root").and_then(Value::as_object_mut).ok_or_else(|| bad("root"))?;
    root.insert("path".into(), json!(rootfs.to_string_lossy()));
    root.insert("readonly".into(), json!(true));
    let obj = spec.as_object_mut().ok_or_else(|| bad("top-level object"))?;
    obj.insert("hostname".into(), json!("bench"));
    let linux = obj.get_mut("linux").and_then(Value::as_object_mut).ok_or_else(|| bad("linux"))?;
    let ns: Vec<Value> = NAMESPACES.iter().map(|t| json!({ "type": t })).collect();
    linux.insert("namespaces".into(), Value::Array(ns));
    Ok(())
}

/// `runtime spec` in `dir`, adjusted with [`adjust_spec`].
pub fn make_bundle(runtime: &Path, dir: &Path, rootfs: &Path, args: &[&str]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).io("mkdir", dir)?;
    let err = dir.join("spec.err");
    let errf = std::fs::File::create(&err).io("create", &err)?;
    let mut cmd = Command::new(runtime);
    cmd.arg("spec").current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(errf);
    let out = proc::run(&mut cmd, Duration::from_secs(30))?;
    if out.reaped.code != 0 {
        return Err(Error::Command { cmd: proc::describe(&cmd), status: format!("exit {}", out.reaped.code), stderr: proc::tail(&err) });
    }
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).io("read", &path)?;
    let mut spec: Value = serde_json::from_str(&text).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    adjust_spec(&mut spec, rootfs, args)?;
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Error::Setup(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, text).io("write", &path)?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_like(hostname: &str, extra_ns: &[&str]) -> Value {
        let mut ns: Vec<Value> = vec![json!({"type": "pid"}), json!({"type": "mount"})];
        ns.extend(extra_ns.iter().map(|t| json!({"type": t})));
        json!({
            "ociVersion": "1.0.2",
            "process": {"terminal": true, "args": ["sh"], "cwd": "/"},
            "root": {"path": "rootfs", "readonly": false},
            "hostname": hostname,
            "linux": {"namespaces": ns, "maskedPaths": ["/proc/kcore"]}
        })
    }

    #[test]
    fn specs_of_different_runtimes_come_out_equal() {
        let mut a = spec_like("runc", &["network", "cgroup"]);
        let mut b = spec_like("crun", &["user"]);
        let rootfs = Path::new("/tmp/x/rootfs");
        adjust_spec(&mut a, rootfs, &["/bin/true"]).unwrap();
        adjust_spec(&mut b, rootfs, &["/bin/true"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a["process"]["terminal"], json!(false));
        assert_eq!(a["process"]["args"], json!(["/bin/true"]));
        assert_eq!(a["root"]["path"], json!("/tmp/x/rootfs"));
        let ns: Vec<&str> = a["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(ns, NAMESPACES);
        // What is not the benchmark's business stays as the runtime wrote it.
        assert_eq!(a["linux"]["maskedPaths"], json!(["/proc/kcore"]));
        assert_eq!(a["process"]["cwd"], json!("/"));
    }

    #[test]
    fn a_spec_without_process_is_an_error() {
        let mut v = json!({"root": {"path": "rootfs"}, "linux": {}});
        let e = adjust_spec(&mut v, Path::new("/r"), &["/bin/true"]).unwrap_err();
        assert!(e.to_string().contains("process"), "{e}");
    }
}

//! Namespaces as runc takes them (issue 16 item 24): an empty `path` means a new namespace.
//! (Joining another container's user namespace is not done yet: see issue 16.)

use fdbox_tests::*;

/// `{"type": "...", "path": ""}` is a new namespace of that type (runtime-spec: the runtime
/// creates one when no path is given), for every type, not a path to open.
#[test]
fn empty_namespace_path_means_new() {
    let Some(env) = Env::new("ns-empty-path") else { return };
    env.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().expect("linux.namespaces") {
            ns["path"] = json!("");
        }
    });
    let kinds = ["pid", "mnt", "uts", "ipc", "net", "cgroup"];
    env.sh(&kinds.iter().map(|k| format!("readlink /proc/self/ns/{k}")).collect::<Vec<_>>().join("; "));
    let has_cgroupns = env.config()["linux"]["namespaces"].as_array().is_some_and(|n| n.iter().any(|n| n["type"] == "cgroup"));
    let c = env.container("empty");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), kinds.len(), "{out}");
    for (kind, inside) in kinds.iter().zip(&lines) {
        if *kind == "cgroup" && !has_cgroupns {
            continue;
        }
        assert_ne!(*inside, host_ns(kind), "an empty path joined the host's {kind} namespace: {out}");
    }
    drop(c);
    env.assert_clean();
}

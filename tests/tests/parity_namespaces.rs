//! Namespaces as runc takes them (issue 16 item 24): an empty `path` means a new namespace, and
//! a container joins another one's user namespace and the namespaces that it owns.

use fdbox_tests::*;

const MAP: u32 = 100_000;

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

/// Container B joins container A's user namespace and its network namespace (owned by that
/// user namespace) by path, and makes its other namespaces new in that user namespace: both
/// run, and B is in A's user and network namespaces. The user namespace is joined first, then
/// the others, as runc does. Passes under runc 1.1.5; fdbox does not do it yet (it refuses the
/// mappings with a joined user namespace, and makes the new namespaces with clone3 in the host's
/// user namespace, so the joined one has no power over them: `mount_setattr(/)` EPERM).
#[test]
#[ignore = "issue 16 item 24: joining a user namespace, not done yet"]
fn joins_another_containers_user_and_network_namespaces() {
    let Some(env_a) = Env::new("ns-join-user-a") else { return };
    env_a.with_userns(MAP);
    env_a.args(&["sleep", "600"]);
    let a = env_a.container("owner");
    let pid = a.create_and_start();
    let (user_a, net_a) = (readlink(format!("/proc/{pid}/ns/user")), readlink(format!("/proc/{pid}/ns/net")));
    assert_ne!(user_a, host_ns("user"));

    let Some(env_b) = Env::new("ns-join-user-b") else { return };
    env_b.with_userns(MAP);
    env_b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "user" || ns["type"] == "network" {
                let kind = if ns["type"] == "user" { "user" } else { "net" };
                ns["path"] = json!(format!("/proc/{pid}/ns/{kind}"));
            }
        }
    });
    env_b.sh("readlink /proc/self/ns/user; readlink /proc/self/ns/net; readlink /proc/self/ns/mnt; id -u");
    let b = env_b.container("joiner");
    let out = b.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], user_a, "not in A's user namespace: {out}");
    assert_eq!(lines[1], net_a, "not in A's network namespace: {out}");
    assert_ne!(lines[2], readlink(format!("/proc/{pid}/ns/mnt")), "B shares A's mount namespace: {out}");
    assert_eq!(lines[3], "0", "{out}");
    assert_eq!(a.status(), "running");
    drop(b);
    env_b.assert_clean();
    drop(a);
    env_a.assert_clean();
}

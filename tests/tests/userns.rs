//! User namespaces on a root-owned rootfs that is never chowned: idmapped
//! mounts (issue 4).

use fdbox_tests::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

const MAP: u32 = 100_000;


/// Inside, `id -u` is 0 and the root-owned busybox shows uid 0; the rootfs
/// on disk still belongs to host root (nothing was chowned).
#[test]
fn root_owned_rootfs_appears_owned_by_container_root() {
    let Some(env) = Env::new("userns-rootfs") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped rootfs");
    }
    env.with_userns(MAP);
    env.sh("id -u; id -g; stat -c '%u:%g' /bin/busybox; cat /proc/self/uid_map");
    let c = env.container("u");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["0", "0", "0:0"], "{out}");
    let map: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{out}");
    let meta = fs::metadata(rootfs().join("bin/busybox")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the rootfs was chowned");
    drop(c);
    env.assert_clean();
}

/// A root-owned host directory bound with `idmap` is writable by container
/// root and what it writes lands on disk as host uid 0; without `idmap` the
/// same directory shows as nobody and refuses the write.
#[test]
fn idmap_bind_is_writable_and_plain_bind_is_not() {
    let Some(env) = Env::new("userns-bind") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped mounts");
    }
    let data = env.subdir("data");
    env.with_userns(MAP);
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().extend([
            json!({"destination": "/mapped", "type": "bind", "source": data, "options": ["rbind", "idmap"]}),
            json!({"destination": "/plain", "type": "bind", "source": data, "options": ["rbind"]}),
        ]);
    });
    env.sh("stat -c '%u' /mapped; echo hi > /mapped/by-root && echo mapped-ok; \
            stat -c '%u' /plain; echo no > /plain/nope 2>/dev/null && echo plain-wrote || echo plain-denied");
    let c = env.container("b");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0", "mapped-ok", "65534", "plain-denied"], "{out}");
    let meta = fs::metadata(data.join("by-root")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the write did not land as host root");
    assert!(!data.join("nope").exists());
    drop(c);
    env.assert_clean();
}

/// exec joins the user namespace too.
#[test]
fn exec_joins_the_user_namespace() {
    let Some(env) = Env::new("userns-exec") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped rootfs");
    }
    env.with_userns(MAP);
    env.args(&["sleep", "60"]);
    let c = env.container("x");
    c.run(&["-d"]).ok();
    let out = env.rt(&["exec", &c.id, "sh", "-c", "cat /proc/self/uid_map; stat -c %u /bin/busybox"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], "0", "{out}");
    c.delete(&["-f"]).ok();
    drop(c);
    env.assert_clean();
}

/// Bad mappings: one clear error line each, nothing left behind.
#[test]
fn bad_mappings_are_refused() {
    let Some(env) = Env::new("userns-bad") else { return };
    if !is_fdbox() {
        return skip("error wording is fdbox's");
    }
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("overlap", Box::new(|c: &mut Value| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 100}, {"containerID": 50, "hostID": 300000, "size": 10}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 100}]);
        })),
        ("no mappings", Box::new(|c: &mut Value| {
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        })),
        // procfs cannot be idmapped: the error names the filesystem and errno.
        ("cannot idmap this proc mount: mount_setattr", Box::new(|c: &mut Value| {
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/p", "type": "bind", "source": "/proc/sys", "options": ["rbind", "idmap"]}));
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 65536}]);
        })),
        ("without a new user namespace", Box::new(|c: &mut Value| {
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 10}]);
        })),
        ("bind and tmpfs mounts only", Box::new(|c: &mut Value| {
            c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/q", "type": "mqueue", "source": "mqueue", "options": ["idmap"]}));
            c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 65536}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": MAP, "size": 65536}]);
        })),
    ];
    let pristine = env.config();
    for (want, edit) in cases {
        env.edit(|c| *c = pristine.clone());
        env.edit(|c| edit(c));
        let c = env.container("bad");
        let out = c.run(&[]).fails_with_one_line();
        assert!(out.stderr.contains(want), "expected {want:?}: {out}");
        env.assert_no_state(&c.id);
        drop(c);
    }
    env.assert_clean();
}

/// An overlay rootfs (the layout containerd and podman hand over): the
/// overlay cannot be idmapped, so fdbox rebuilds it from idmapped layers.
/// The overlay is mounted in a private mount namespace of the test, never
/// on the host.
#[test]
fn overlay_rootfs_with_user_namespace() {
    let Some(env) = Env::new("userns-overlay") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped rootfs");
    }
    let upper = env.subdir("upper");
    let work = env.subdir("work");
    let merged = env.bundle.join("rootfs");
    fs::create_dir(&merged).unwrap();
    env.with_userns(MAP);
    env.set("/root", json!({"path": "rootfs", "readonly": false}));
    env.sh("id -u; stat -c %u /bin/busybox; echo new > /written && stat -c %u /written");
    let script = format!(
        "mount -t overlay overlay -o lowerdir={},upperdir={},workdir={} {} && exec \"$@\"",
        rootfs().display(),
        upper.display(),
        work.display(),
        merged.display()
    );
    let c = env.container("o");
    let out = c.run_via(&["unshare", "-m", "--propagation", "private", "sh", "-c", &script, "sh"], &[]);
    if !out.success() && out.stderr.contains("needs overlayfs to take layers as fds") {
        return skip("kernel lacks overlay layers as fds (FSCONFIG_SET_FD lowerdir+, Linux 6.13+)");
    }
    let out = out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0", "0", "0"], "{out}");
    // The write went to the upper layer, as host root, not as 100000.
    let meta = fs::metadata(upper.join("written")).unwrap();
    assert_eq!(meta.uid(), 0, "the write landed as uid {}", meta.uid());
    assert!(!rootfs().join("written").exists(), "the lower layer was written");
    drop(c);
    env.assert_clean();
}

/// A bind mount with its own `uidMappings`/`gidMappings` (runtime-spec
/// 1.1 mount idmaps), in a container without a user namespace: files
/// owned by host root on disk show as the mapped ids.
#[test]
fn mount_with_its_own_mappings() {
    let Some(env) = Env::new("userns-mount-maps") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped mounts");
    }
    let data = env.subdir("data");
    fs::write(data.join("f"), "x").unwrap();
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/m", "type": "bind", "source": data, "options": ["rbind", "idmap"],
            "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 4321, "size": 1}],
        }));
    });
    env.sh("stat -c '%u:%g' /m/f");
    let c = env.container("m");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "1234:4321", "{out}");
    drop(c);
    env.assert_clean();
}

/// A tmpfs with `idmap` in a user namespace container: made and idmapped on
/// the host side, owned by host root on the tmpfs yet container root's
/// inside, and writable by it.
#[test]
fn idmapped_tmpfs() {
    let Some(env) = Env::new("userns-tmpfs") else { return };
    if !is_fdbox() {
        return skip("runc 1.1 has no idmapped mounts");
    }
    env.with_userns(MAP);
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap", "mode=0755", "size=1m"]
        }));
    });
    env.sh("stat -c '%u:%g %a' /t; touch /t/x && stat -c %u /t/x");
    let c = env.container("t");
    let out = c.run(&[]);
    if !out.success() && out.stderr.contains("cannot idmap this tmpfs mount") {
        return skip("kernel cannot idmap tmpfs (Linux 6.3+)");
    }
    let out = out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["0:0 755", "0"], "{out}");
    drop(c);
    env.assert_clean();
}

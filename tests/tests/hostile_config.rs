//! Issue 15: hostile values in config.json and on the command line. Ids the kernel reads as -1
//! ("unchanged"), procfs/sysfs mounted through a symlink, `--no-pivot` keeping the host's
//! mounts, and random invalid configs: each is refused with one line and leaves nothing, or
//! (for `--no-pivot`) the container sees none of the host's mounts.

use fdbox_tests::*;
use serde_json::json;
use std::fs;

/// The container prints `id`; the test checks that it never ran as root.
const PRINT_ID: &str = "echo ran:$(id)";

#[track_caller]
fn assert_never_root(what: &str, c: &Container<'_>, out: &Output) {
    let printed = format!("{}{}", c.stdout(), out.stdout);
    assert!(!printed.contains("uid=0"), "{what}: the process ran as root: {printed:?} {out}");
}

/// 4294967295 is -1 to setresuid/setresgid/setgroups ("leave unchanged"): a container asking
/// for it must be refused before anything is made, never run as uid 0 or gid 0.
#[test]
fn ids_of_minus_one_are_refused() {
    let Some(env) = Env::new("ids-minus-one") else { return };
    let cases: [(&str, serde_json::Value); 5] = [
        ("uid", json!({"uid": 4294967295u32, "gid": 1000})),
        ("gid", json!({"uid": 1000, "gid": 4294967295u32})),
        ("additionalGids", json!({"uid": 1000, "gid": 1000, "additionalGids": [4294967295u32]})),
        ("uid 2^31", json!({"uid": 2147483648u32, "gid": 1000})),
        ("uid and gid", json!({"uid": 4294967295u32, "gid": 4294967295u32})),
    ];
    for (what, user) in cases {
        env.sh(PRINT_ID).set("/process/user", user);
        let c = env.container("ids");
        let out = c.run(&[]);
        assert_never_root(what, &c, &out);
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains("2147483647"), "{what}: the error should name the limit: {out}");
        }
        env.assert_clean();
    }
    // Just below the limit is an ordinary id.
    env.sh(PRINT_ID).set("/process/user", json!({"uid": 2147483647u32, "gid": 2147483647u32}));
    let c = env.container("ids-max");
    let out = c.run(&[]).ok();
    assert!(c.stdout().contains("uid=2147483647"), "{out} {}", c.stdout());
    env.assert_clean();
}

/// The same for `exec -u`, `exec --additional-gids` and `exec -p` with such a user.
#[test]
fn exec_ids_of_minus_one_are_refused() {
    let Some(env) = Env::new("exec-ids-minus-one") else { return };
    env.sh("echo up; exec sleep 600");
    let c = env.container("exec-ids");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("up");
    let process = env.dir.join("process.json");
    let mut p = env.config()["process"].clone();
    p["args"] = json!(["sh", "-c", PRINT_ID]);
    p["user"] = json!({"uid": 4294967295u32, "gid": 0});
    fs::write(&process, p.to_string()).unwrap();
    let process = process.to_string_lossy().into_owned();
    let attempts: [Vec<&str>; 5] = [
        vec!["-u", "4294967295"],
        vec!["-u", "4294967295:4294967295"],
        vec!["-u", "1000:4294967295"],
        vec!["-u", "1000:1000", "--additional-gids", "4294967295"],
        vec!["-p", &process],
    ];
    for a in attempts {
        let mut args = vec!["exec"];
        args.extend_from_slice(&a);
        args.push(&c.id);
        if !a.contains(&"-p") {
            args.extend_from_slice(&["sh", "-c", PRINT_ID]);
        }
        let out = env.rt(&args);
        assert!(!out.stdout.contains("uid=0") && !out.stdout.contains("ran:"), "{a:?}: the process ran: {out}");
        out.fails_with_one_line();
    }
    c.delete(&["-f"]).ok();
    env.assert_clean();
}

/// linux.devices with ids or numbers the kernel would read differently (-1, a major cut to
/// 12 bits) and uid/gid mappings that reach the kernel's -1: refused with one line.
#[test]
fn device_and_mapping_values_out_of_range_are_refused() {
    let Some(env) = Env::new("dev-map-range") else { return };
    if !is_fdbox() {
        return skip("fdbox's own range checks");
    }
    let dev = |extra: serde_json::Value| {
        let mut d = json!({"path": "/dev/fdt-null", "type": "c", "major": 1, "minor": 3});
        d.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!([d])
    };
    let cases = [
        ("device uid", "/linux/devices", dev(json!({"uid": 4294967295u32}))),
        ("device gid", "/linux/devices", dev(json!({"gid": 4294967295u32}))),
        ("device major", "/linux/devices", dev(json!({"major": 4294967297u64}))),
        ("device minor", "/linux/devices", dev(json!({"minor": -1}))),
        ("device fileMode", "/linux/devices", dev(json!({"fileMode": 4294967295u32}))),
    ];
    for (what, pointer, value) in cases {
        env.sh("true").set(pointer, value);
        let c = env.container("range");
        let out = c.run(&[]);
        assert!(!out.success(), "{what} was accepted: {out}");
        out.fails_with_one_line();
        env.assert_clean();
    }
    env.set("/linux/devices", json!([]));
    // A user namespace whose mapping ends at 2^32-1 (the kernel refuses it when it is written).
    env.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 4294901760u32, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let c = env.container("map");
    let out = c.run(&[]).fails_with_one_line();
    assert!(out.stderr.contains("uidMappings"), "{out}");
    env.assert_clean();
}

/// An image whose /proc (or /sys) is a symlink, to a directory inside the rootfs: procfs and
/// sysfs must be mounted on an ordinary directory (runc: "must be mounted on ordinary
/// directory"), never where the symlink points. One line, nothing left, nothing mounted at the
/// target.
#[test]
fn proc_and_sys_through_a_symlink_are_refused() {
    let Some(env) = Env::new("proc-sys-symlink") else { return };
    let rootfs = env.writable_rootfs();
    for (dest, target) in [("proc", "/tmp/fakeproc"), ("sys", "/tmp/fakesys"), ("proc", "tmp/fakeproc")] {
        fs::create_dir_all(rootfs.join("tmp/fakeproc")).unwrap();
        fs::create_dir_all(rootfs.join("tmp/fakesys")).unwrap();
        let link = rootfs.join(dest);
        let _ = fs::remove_dir_all(&link).or_else(|_| fs::remove_file(&link));
        std::os::unix::fs::symlink(target, &link).unwrap();
        env.sh("echo ran; ls /tmp/fakeproc /tmp/fakesys | head -3");
        let c = env.container("procsym");
        let out = c.run(&[]);
        assert!(!c.stdout().contains("ran"), "/{dest} -> {target}: the container ran: {} {out}", c.stdout());
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains("ordinary directory") && out.stderr.contains(&format!("/{dest}")), "{out}");
        }
        env.assert_clean();
        for d in ["tmp/fakeproc", "tmp/fakesys"] {
            assert_eq!(fs::read_dir(rootfs.join(d)).unwrap().count(), 0, "{d} was written or mounted on");
        }
        fs::remove_file(&link).unwrap();
        fs::create_dir(&link).unwrap();
    }
    // The same rootfs with ordinary directories runs.
    env.sh("echo ran");
    let c = env.container("procdir");
    c.run(&[]).ok();
    assert!(c.stdout().contains("ran"));
    env.assert_clean();
}

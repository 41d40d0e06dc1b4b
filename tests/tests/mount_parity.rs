//! Issue 16 item 25: mounts as runc 1.1.5 makes them, each checked from inside a real container.
//! Every test passes under `FDBOX_TEST_RUNTIME=runc` too: runc's behaviour is the reference.

use fdbox_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn tmpfs(dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options })
}

/// A bind whose source is the host path of something in the rootfs under an earlier mount of the
/// same container binds what that mount shows (runc makes its mounts in the container's mount
/// namespace, in order): here a file only the earlier bind has, by absolute and by
/// bundle-relative path, and the earlier tmpfs itself (a file the container writes there shows
/// through the second bind).
#[test]
fn bind_source_under_an_earlier_mount() {
    let Some(env) = Env::new("bind-under-earlier") else { return };
    let rootfs = env.writable_rootfs();
    let vol = env.subdir("vol");
    fs::create_dir(vol.join("sub")).unwrap();
    fs::write(vol.join("sub/f"), "in-the-volume\n").unwrap();
    env.add_mount(json!({ "destination": "/data", "type": "bind", "source": vol, "options": ["rbind"] }))
        .add_mount(json!({ "destination": "/other", "type": "bind", "source": rootfs.join("data/sub"), "options": ["rbind", "ro"] }))
        .add_mount(json!({ "destination": "/rel", "type": "bind", "source": "rootfs/data/sub/f", "options": ["bind"] }))
        .add_mount(tmpfs("/t", &[]))
        .add_mount(json!({ "destination": "/t2", "type": "bind", "source": "rootfs/t", "options": ["bind"] }));
    env.sh("cat /other/f /rel; touch /other/x 2>/dev/null || echo other-ro; echo y > /t/y; cat /t2/y");
    let out = env.container("c").run(&[]).ok();
    assert_eq!(out.stdout, "in-the-volume\nin-the-volume\nother-ro\ny\n", "{out}");
    // The host's directories under the mount points were not touched.
    assert!(!rootfs.join("data/sub").exists() && !rootfs.join("t/y").exists());
    env.assert_clean();
}

/// A read-only tmpfs on /dev (and anywhere else) is read-only only once what goes under it is
/// made: devpts, /dev/shm, /dev/mqueue, the device nodes, a nested mount point (runc remounts it
/// read-only last).
#[test]
fn readonly_tmpfs_is_made_readonly_last() {
    let Some(env) = Env::new("ro-tmpfs-last") else { return };
    env.writable_rootfs();
    env.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    })
    .add_mount(tmpfs("/rot", &["ro"]))
    .add_mount(tmpfs("/rot/sub", &[]));
    env.sh(
        "ls /dev/null /dev/pts/ptmx; echo > /dev/null && echo null-works; \
         touch /dev/x 2>/dev/null || echo dev-ro; touch /rot/x 2>/dev/null || echo rot-ro; \
         touch /rot/sub/x && echo sub-rw; grep -c ' /dev/\\(pts\\|shm\\|mqueue\\) ' /proc/self/mountinfo",
    );
    let out = env.container("c").run(&[]).ok();
    assert_eq!(out.stdout, "/dev/null\n/dev/pts/ptmx\nnull-works\ndev-ro\nrot-ro\nsub-rw\n3\n", "{out}");
    env.assert_clean();
}

/// A tmpfs without `mode=` keeps the mode of the directory it covers (the kernel's default is
/// 1777, which runc keeps only for a mount point it creates); an explicit `mode=` wins (runc
/// 1.1.8+ and crun; runc 1.1.5 still chmodded to the directory's mode, so that part is fdbox's).
#[test]
fn tmpfs_keeps_the_mount_points_mode() {
    let Some(env) = Env::new("tmpfs-mode") else { return };
    let rootfs = env.writable_rootfs();
    for (d, mode) in [("m700", 0o700), ("m2750", 0o2750), ("m750", 0o750)] {
        fs::create_dir(rootfs.join(d)).unwrap();
        fs::set_permissions(rootfs.join(d), fs::Permissions::from_mode(mode)).unwrap();
    }
    env.add_mount(tmpfs("/m700", &["nosuid"]))
        .add_mount(tmpfs("/m2750", &[]))
        .add_mount(tmpfs("/m750", &["mode=1777"]))
        .add_mount(tmpfs("/new", &[]));
    env.sh("stat -c '%a %n' /m700 /m2750 /new; grep -c ' /m700 .* tmpfs ' /proc/self/mountinfo; stat -c %a /m750");
    let out = env.container("c").run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.get(..4), Some(&["700 /m700", "2750 /m2750", "1777 /new", "1"][..]), "{out}");
    if is_fdbox() {
        assert_eq!(lines.get(4..), Some(&["1777"][..]), "{out}");
    }
    env.assert_clean();
}

/// A bind's own flags follow runc's rule (options::bind_attrs): over a source mounted
/// `ro,nosuid,nodev,noexec,noatime` (in a private mount namespace of this test), options that
/// only clear (`rw`, `dev`, `exec`, `atime`, ...) keep every flag of the source; any flag resets
/// the others (`nosuid` alone is read-write); the atime mode is the source's unless an atime
/// option is given. Each expectation is what runc 1.1.5 shows for the same config.
#[test]
fn bind_flags_follow_runcs_rule() {
    let Some(env) = Env::new("bind-flag-rule") else { return };
    let src = env.subdir("src");
    let setup = format!("mount -t tmpfs -o ro,nosuid,nodev,noexec,noatime fdbox-src '{}'", src.display());
    let cases: [(&str, &[&str], &str); 14] = [
        ("a", &["bind"], "ro,nosuid,nodev,noexec,noatime"),
        ("b", &["bind", "dev"], "ro,nosuid,nodev,noexec,noatime"),
        ("c", &["bind", "rw"], "ro,nosuid,nodev,noexec,noatime"),
        ("d", &["bind", "rw", "dev", "exec", "suid"], "ro,nosuid,nodev,noexec,noatime"),
        ("e", &["bind", "atime"], "ro,nosuid,nodev,noexec,noatime"),
        ("f", &["bind", "norelatime"], "ro,nosuid,nodev,noexec,noatime"),
        ("g", &["bind", "nosuid"], "rw,nosuid,noatime"),
        ("h", &["bind", "ro"], "ro,noatime"),
        ("i", &["bind", "noatime"], "rw,noatime"),
        ("j", &["bind", "strictatime"], "rw"),
        ("k", &["bind", "relatime"], "rw,relatime"),
        ("l", &["bind", "nodiratime"], "rw,nodiratime,relatime"),
        ("m", &["bind", "ro", "nodev", "dev"], "ro,noatime"),
        ("n", &["rbind", "private"], "ro,nosuid,nodev,noexec,noatime"),
    ];
    for (name, opts, _) in &cases {
        env.add_mount(json!({ "destination": format!("/{name}"), "type": "bind", "source": src, "options": opts }));
    }
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    env.sh(&format!("for k in {}; do echo \"$k $(grep \" /$k \" /proc/self/mountinfo | cut -d' ' -f6)\"; done", names.join(" ")));
    let args: Vec<String> = ["unshare", "-m", "--propagation", "private", "sh", "-euc", &format!("{setup}; exec \"$@\""), "sh"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let c = env.container("c");
    let out = c.run_via(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]).ok();
    let want: Vec<String> = cases.iter().map(|(n, o, f)| format!("{n} {f}   ({o:?})")).collect();
    let got: Vec<String> = out.stdout.lines().zip(&cases).map(|(l, (_, o, _))| format!("{l}   ({o:?})")).collect();
    assert_eq!(got, want, "{out}");
    drop(c);
    env.assert_clean();
}

/// Masked directories are empty and read-only; fdbox covers them all with one tmpfs (issue 16
/// reports runc 1.3 sharing one; runc 1.1.5 made one each, so the sharing is checked under fdbox only).
#[test]
fn masked_directories_share_one_tmpfs() {
    let Some(env) = Env::new("masked-dirs") else { return };
    let rootfs = env.writable_rootfs();
    for d in ["m1", "m2", "m3"] {
        fs::create_dir(rootfs.join(d)).unwrap();
        fs::write(rootfs.join(d).join("secret"), "s\n").unwrap();
    }
    env.set("/linux/maskedPaths", json!(["/m1", "/m2", "/m3"]));
    env.sh("ls -A /m1 /m2 /m3; touch /m2/x 2>/dev/null || echo m2-ro; stat -c %d /m1 /m2 /m3 | sort -u | wc -l");
    let out = env.container("c").run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.get(..6), Some(&["/m1:", "", "/m2:", "", "/m3:", "m2-ro"][..]), "{out}");
    if is_fdbox() {
        assert_eq!(lines.get(6..), Some(&["1"][..]), "one tmpfs for every masked directory: {out}");
    }
    env.assert_clean();
}

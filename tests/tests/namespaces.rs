//! Namespaces and the default mounts and devices, seen from inside the container.

use fdbox_tests::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NAMESPACES: [&str; 5] = ["pid", "mnt", "uts", "ipc", "net"];

fn ns_script() -> String {
    NAMESPACES
        .iter()
        .map(|n| format!("readlink /proc/self/ns/{n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The container gets its own pid, mount, uts, ipc and net namespaces.
#[test]
fn new_namespaces_differ_from_the_host() {
    let Some(env) = Env::new("ns-new") else { return };
    env.sh(&ns_script());
    let c = env.container("ns");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), NAMESPACES.len(), "{out}");
    for (kind, inside) in NAMESPACES.iter().zip(&lines) {
        let host = host_ns(kind);
        assert!(inside.starts_with(&format!("{kind}:[")), "{kind}: {inside:?}");
        assert_ne!(*inside, host, "the container shares the host's {kind} namespace");
    }
}

/// A process this test starts and kills itself, holding a new network namespace.
struct NetnsHolder(Child);

impl NetnsHolder {
    fn start() -> NetnsHolder {
        let child = Command::new("unshare")
            .args(["--net", "--", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        NetnsHolder(child)
    }

    /// Path of its netns, once `unshare` has switched to it.
    fn netns(&self) -> (String, String) {
        let path = format!("/proc/{}/ns/net", self.0.id());
        let host = host_ns("net");
        let link = wait_until(Duration::from_secs(10), "unshare to enter its netns", || {
            let link = readlink(&path);
            (!link.is_empty() && link != host).then_some(link)
        });
        (path, link)
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A namespace with a `path` is joined instead of created.
#[test]
fn joins_a_network_namespace_by_path() {
    let Some(env) = Env::new("ns-join") else { return };
    let holder = NetnsHolder::start();
    let (path, link) = holder.netns();
    env.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(path);
            }
        }
    });
    env.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts");
    let c = env.container("join");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some(link.as_str()), "netns not joined: {out}");
    // The other namespaces are still new ones.
    assert_ne!(lines.get(1).copied(), Some(host_ns("uts").as_str()), "{out}");
    drop(c);
    env.assert_clean();
}

/// The spec's default mounts are there, with the right types.
#[test]
fn default_mounts_are_visible_inside() {
    let Some(env) = Env::new("mounts") else { return };
    env.args(&["cat", "/proc/self/mountinfo"]);
    let c = env.container("m");
    let out = c.run(&[]).ok();
    let mounts = parse_mountinfo(&out.stdout);
    for (dest, fstype) in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ] {
        // The last mount on a path is the visible one.
        let m = mounts.iter().rev().find(|m| m.mount_point == dest);
        let m = m.unwrap_or_else(|| panic!("{dest} is not a mount point inside: {out}"));
        assert_eq!(m.fstype, fstype, "{dest}: {out}");
    }
    // The root is the bundle's rootfs, mounted read-only as the config asks.
    let root = mounts.iter().rev().find(|m| m.mount_point == "/").expect("a / mount");
    assert!(root.mount_options.split(',').any(|o| o == "ro"), "/ is not read-only: {out}");
    // The host's mounts are not visible: pivot_root detached the old root.
    let host = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    let inside: Vec<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
    for m in &host {
        if m.mount_point.starts_with("/work") || m.mount_point == "/boot" || m.mount_point == "/run" {
            assert!(!inside.contains(&m.mount_point.as_str()), "host mount {} visible: {out}", m.mount_point);
        }
    }
}

/// The default devices exist as character devices, and /dev/null, /dev/zero work.
#[test]
fn default_devices_are_char_devices() {
    let Some(env) = Env::new("devices") else { return };
    env.sh(
        "for d in null zero full random urandom tty; do \
           if [ -c /dev/$d ]; then echo \"ok $d\"; else echo \"bad $d\"; fi; \
         done; \
         echo data > /dev/null && echo null-writable; \
         head -c 4 /dev/zero | od -An -tx1 | tr -d ' '; \
         head -c 8 /dev/urandom | wc -c",
    );
    let c = env.container("dev");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..6],
        ["ok null", "ok zero", "ok full", "ok random", "ok urandom", "ok tty"],
        "{out}"
    );
    assert_eq!(&lines[6..], ["null-writable", "00000000", "8"], "{out}");
}

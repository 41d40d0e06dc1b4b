//! What the container process sees: pid 1, hostname, env, cwd, user and groups, the rootfs.

use fdbox_tests::*;
use std::fs;

/// The command is pid 1 of its own pid namespace.
#[test]
fn command_is_pid_1() {
    let Some(env) = Env::new("pid1") else { return };
    // `$$` is the shell's pid; /proc/self/stat's first field is cat's own (a child, so not 1)
    // while /proc/1/cmdline names the shell.
    env.sh("echo pid=$$; tr '\\0' ' ' < /proc/1/cmdline; echo");
    let c = env.container("p");
    let out = c.run(&[]).ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("pid=1"), "{out}");
    let cmdline = lines.next().unwrap_or_default();
    assert!(cmdline.starts_with("sh -c echo pid=$$"), "pid 1 is not the command: {out}");
}

/// `hostname` (and `domainname`) from the config are set in the container's UTS namespace.
#[test]
fn hostname_and_domainname_from_config() {
    let Some(env) = Env::new("hostname") else { return };
    env.set("/hostname", json!("fdbox-test-host"));
    env.set("/domainname", json!("fdbox.test"));
    env.sh("hostname; cat /proc/sys/kernel/domainname");
    let c = env.container("h");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("fdbox-test-host"), "{out}");
    // runc 1.1.5 ignores `domainname` (it came with runc 1.2), so only fdbox is held to it.
    if is_fdbox() {
        assert_eq!(lines.get(1).copied(), Some("fdbox.test"), "{out}");
    }
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "fdbox-test-host", "the host's hostname was changed");
}

/// `process.env` is the whole environment and `process.cwd` the working directory.
#[test]
fn env_and_cwd() {
    let Some(env) = Env::new("env-cwd") else { return };
    env.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .extend([json!("FOO=bar baz"), json!("EMPTY=")]);
        c["process"]["cwd"] = json!("/tmp");
    });
    env.sh("echo \"foo=$FOO\"; echo \"empty=[$EMPTY]\"; pwd; env | sort");
    let c = env.container("e");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["foo=bar baz", "empty=[]", "/tmp"], "{out}");
    // Nothing of the runtime's own environment leaks in: only what the config lists
    // (plus PWD/SHLVL that sh itself sets, and HOME, which runc and crun add from the
    // rootfs's /etc/passwd when the config has none).
    let config = env.config();
    let allowed: Vec<String> = config["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(|s| s.split('=').next().unwrap().to_string()))
        .chain(["PWD", "SHLVL", "_", "OLDPWD", "HOME"].map(String::from))
        .collect();
    for var in &lines[3..] {
        let name = var.split('=').next().unwrap();
        assert!(allowed.iter().any(|a| a == name), "unexpected variable {var:?} in: {out}");
    }
}

/// `process.user` uid/gid and `additionalGids` are applied.
#[test]
fn user_and_additional_gids() {
    let Some(env) = Env::new("user") else { return };
    env.set("/process/user", json!({ "uid": 1000, "gid": 1000 }));
    env.args(&["id"]);
    let c = env.container("u");
    let out = c.run(&[]).ok();
    // No supplementary groups beyond additionalGids (none here): busybox prints no groups=.
    assert_eq!(out.stdout.trim(), "uid=1000 gid=1000", "{out}");
    drop(c);

    env.set("/process/user", json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 20] }));
    let c = env.container("g");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "uid=1000 gid=1000 groups=10,20", "{out}");
    drop(c);

    // A uid from /etc/passwd of the rootfs works as well.
    env.set("/process/user", json!({ "uid": 65534, "gid": 65534 }));
    env.sh("id -u; id -g; cat /proc/self/status | grep -E '^(Uid|Gid):'");
    let c = env.container("n");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], ["65534", "65534"], "{out}");
    // real, effective, saved and filesystem ids are all switched.
    assert!(lines[2].split_whitespace().skip(1).all(|v| v == "65534"), "{out}");
    assert!(lines[3].split_whitespace().skip(1).all(|v| v == "65534"), "{out}");
    drop(c);
    env.assert_clean();
}

/// `root.readonly = true` makes / read-only inside; the shared rootfs is not written.
#[test]
fn readonly_rootfs() {
    let Some(env) = Env::new("ro-root") else { return };
    env.sh("if touch /ro-probe 2>/dev/null; then echo writable; else echo readonly; fi");
    let c = env.container("ro");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout.trim(), "readonly", "{out}");
    assert!(!rootfs().join("ro-probe").exists(), "the shared rootfs was written");
}

/// A writable rootfs: what the container writes lands in the bundle's rootfs on the host,
/// which shows `root.path` (relative to the bundle) is the container's /.
#[test]
fn writable_rootfs_is_the_bundle_rootfs() {
    let Some(env) = Env::new("rw-root") else { return };
    let rootfs = env.writable_rootfs();
    fs::write(rootfs.join("etc/from-host"), "hello from the host\n").unwrap();
    env.sh("cat /etc/from-host; echo written-inside > /tmp/from-container");
    let c = env.container("rw");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout, "hello from the host\n", "{out}");
    let written = fs::read_to_string(rootfs.join("tmp/from-container")).expect("file written inside");
    assert_eq!(written, "written-inside\n");
    drop(c);
    env.assert_clean();
}

/// `<runtime> --root <root> <args…>` with its stdio on a new pty whose own ONLCR is off (so the
/// bytes read from its master are the ones the runtime wrote), waited for. Returns what the pty
/// showed and whether the runtime succeeded.
fn on_pty(env: &Env, args: &[&str]) -> (String, bool) {
    use rustix::pty::{openpt, ptsname, unlockpt, OpenptFlags};
    use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, OutputModes};
    use std::process::{Command, Stdio};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = rustix::fs::open(name.as_c_str(), rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY, rustix::fs::Mode::empty()).unwrap();
    let mut t = tcgetattr(&slave).unwrap();
    t.output_modes.remove(OutputModes::ONLCR);
    tcsetattr(&slave, OptionalActions::Now, &t).unwrap();
    let stdio = |fd: &std::os::fd::OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut child = Command::new(&runtime().bin)
        .arg("--root")
        .arg(&env.root)
        .args(args)
        .env(MARK_VAR, env.mark())
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave))
        .spawn()
        .unwrap();
    drop(slave);
    // Until the runtime exits and the slave is closed (EIO).
    let shown = read_until(&master, &["\0never"], TIMEOUT);
    let status = child.wait().unwrap();
    (shown, status.success())
}

/// A foreground `run` with `terminal: true` and an `exec -t` print what the program wrote, `\n`
/// as `\n`: the runtime clears ONLCR on the container's pty, as runc does (its terminal
/// otherwise turns every `\n` into `\r\n`, and clients compare output).
#[test]
fn terminal_output_keeps_newlines() {
    let Some(env) = Env::new("terminal-onlcr") else { return };
    env.set("/process/terminal", json!(true));
    env.args(&["printf", "a\\nb\\n"]);
    let c = env.container("tty");
    env.write_config();
    let bundle = env.bundle.to_string_lossy().into_owned();
    let (shown, ok) = on_pty(&env, &["run", "--bundle", &bundle, &c.id]);
    assert!(ok, "run failed: {shown:?}");
    assert_eq!(shown, "a\nb\n", "run with a terminal");
    drop(c);

    env.set("/process/terminal", json!(false));
    env.args(&["sleep", "600"]);
    let c = env.container("ttyexec");
    c.create_and_start();
    let (shown, ok) = on_pty(&env, &["exec", "-t", &c.id, "printf", "c\\nd\\n"]);
    assert!(ok, "exec failed: {shown:?}");
    assert_eq!(shown, "c\nd\n", "exec -t");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    drop(c);
    env.assert_clean();
}

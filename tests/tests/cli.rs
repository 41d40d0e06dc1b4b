//! The rest of runc's CLI surface that issue 2 lists: -v, --debug, features, and the
//! create/run flags --keep, -b, --no-pivot, --no-new-keyring, --preserve-fds.

use fdbox_tests::*;
use std::fs;

#[test]
fn version_flag() {
    let Some(env) = Env::new("version") else { return };
    for flag in ["-v", "--version"] {
        let out = env.rt_bare(&[flag], &env.dir).ok();
        assert!(out.stdout.to_lowercase().contains("version"), "{out}");
    }
}

/// `features` prints JSON that at least covers what issue 2 implements.
#[test]
fn features_is_json() {
    let Some(env) = Env::new("features") else { return };
    let out = env.rt_bare(&["features"], &env.dir).ok();
    let f: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let min = f["ociVersionMin"].as_str().unwrap_or_else(|| panic!("no ociVersionMin: {out}"));
    let max = f["ociVersionMax"].as_str().unwrap_or_else(|| panic!("no ociVersionMax: {out}"));
    assert!(min.starts_with("1."), "{min}");
    assert!(max.starts_with("1."), "{max}");
    if let Some(ns) = f["linux"]["namespaces"].as_array() {
        for want in ["pid", "mount", "uts", "ipc", "network"] {
            assert!(ns.iter().any(|n| n == want), "features lacks namespace {want}: {out}");
        }
    }
}

/// `--debug` is accepted and does not change the result.
#[test]
fn debug_flag() {
    let Some(env) = Env::new("debug") else { return };
    env.sh("echo debug-ok");
    env.write_config();
    let c = env.container("dbg");
    let out = env.rt(&["--debug", "run", "--bundle", env.bundle.to_str().unwrap(), &c.id]).ok();
    assert!(out.stdout.contains("debug-ok"), "{out}");
    drop(c);
    env.assert_clean();
}

/// `run --keep` leaves the stopped container for `state` and `delete`; `-b` is `--bundle`.
#[test]
fn run_keep_and_short_bundle_flag() {
    let Some(env) = Env::new("run-keep") else { return };
    env.sh("echo kept; exit 5");
    env.write_config();
    let c = env.container("keep");
    let out = env.rt(&["run", "-b", env.bundle.to_str().unwrap(), "--keep", &c.id]);
    assert_eq!(out.code(), 5, "{out}");
    assert_eq!(out.stdout, "kept\n", "{out}");
    let st = c.state_ok();
    assert_eq!(st["status"], "stopped", "{st}");
    assert!(c.state_dir().is_dir());
    c.delete(&[]).ok();
    env.assert_no_state(&c.id);
    drop(c);
    env.assert_clean();
}

/// `--no-pivot` and `--no-new-keyring` are accepted and the container still runs as pid 1 in
/// its rootfs.
#[test]
fn run_no_pivot_and_no_new_keyring() {
    let Some(env) = Env::new("no-pivot") else { return };
    env.sh("echo pid=$$; cat /etc/passwd | head -n1");
    for flag in ["--no-pivot", "--no-new-keyring"] {
        let c = env.container("flag");
        let out = c.run(&[flag]).ok();
        assert_eq!(out.stdout, "pid=1\nroot:x:0:0:root:/root:/bin/sh\n", "{flag}: {out}");
    }
    env.assert_clean();
}

/// `--preserve-fds 1` passes the runtime's fd 3 to the container; without it, fd 3 is closed
/// (no host fd leaks into the container).
#[test]
fn preserve_fds() {
    let Some(env) = Env::new("preserve-fds") else { return };
    env.sh("if echo through-fd3 >&3; then echo wrote; else echo no-fd3; fi 2>/dev/null");
    env.write_config();
    let bundle = env.bundle.to_str().unwrap().to_string();
    let wrapper = ["sh", "-c", "exec 3>>\"$0\"; exec \"$@\""];
    for (preserve, want_stdout, want_file) in
        [(true, "wrote\n", "through-fd3\n"), (false, "no-fd3\n", "")]
    {
        let file = env.dir.join(format!("fd3-{preserve}"));
        fs::write(&file, "").unwrap();
        let mut prefix = wrapper.to_vec();
        let file_str = file.to_str().unwrap().to_string();
        prefix.push(&file_str);
        let c = env.container("fds");
        let mut args = vec!["run", "--bundle", &bundle];
        if preserve {
            args.extend(["--preserve-fds", "1"]);
        }
        args.push(&c.id);
        let out = env.spawn_via(&prefix, &args).wait().ok();
        assert_eq!(out.stdout, want_stdout, "preserve={preserve}: {out}");
        assert_eq!(fs::read_to_string(&file).unwrap(), want_file, "preserve={preserve}");
    }
    env.assert_clean();
}

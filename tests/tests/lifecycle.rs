//! The core lifecycle of issue 2, with runc's CLI semantics: spec, run, create/start/state/
//! kill/delete, list, --pid-file, run -d, signal forwarding.

use fdbox_tests::*;
use rustix::process::Signal;
use std::fs;

/// `spec` writes a config.json that parses and has what a bundle needs.
#[test]
fn spec_writes_a_valid_config() {
    let Some(env) = Env::new("spec") else { return };
    let dir = env.subdir("spec-cwd");
    env.rt_bare(&["spec"], &dir).ok();
    check_spec(&dir.join("config.json"));

    // `spec --bundle DIR` writes into DIR instead of the cwd.
    let other = env.subdir("spec-bundle");
    let elsewhere = env.subdir("spec-elsewhere");
    env.rt_bare(&["spec", "--bundle", other.to_str().unwrap()], &elsewhere).ok();
    check_spec(&other.join("config.json"));
    assert!(!elsewhere.join("config.json").exists(), "spec --bundle wrote into the cwd");
}

fn check_spec(path: &std::path::Path) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let c: Value = serde_json::from_str(&text).expect("config.json is JSON");
    let version = c["ociVersion"].as_str().expect("ociVersion is a string");
    assert!(version.starts_with("1."), "ociVersion {version}");
    assert_eq!(c["root"]["path"], "rootfs", "{c}");
    let args = c["process"]["args"].as_array().expect("process.args");
    assert!(!args.is_empty(), "process.args is empty");
    assert!(c["process"]["cwd"].is_string(), "process.cwd");
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "mount", "uts", "ipc", "network"] {
        assert!(ns.contains(&want), "namespace {want} missing from spec: {ns:?}");
    }
    let dests: Vec<&str> = c["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for want in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"] {
        assert!(dests.contains(&want), "mount {want} missing from spec: {dests:?}");
    }
}

/// `run` passes the container's stdout and stderr through and exits with its exit code.
#[test]
fn run_prints_output_and_returns_exit_code() {
    let Some(env) = Env::new("run-exit") else { return };
    env.sh("echo to-stdout; echo to-stderr >&2; exit 3");
    let c = env.container("exit");
    let out = c.run(&[]);
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(out.stdout, "to-stdout\n", "{out}");
    assert!(out.stderr.contains("to-stderr"), "{out}");
    drop(c);

    env.args(&["true"]);
    let c = env.container("true");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout, "", "{out}");
    drop(c);

    // `run` deletes the container it ran (no --keep): nothing is left.
    env.assert_clean();
}

/// A container killed by SIGKILL makes `run` exit with 128+9.
#[test]
fn run_of_killed_container_exits_137() {
    let Some(env) = Env::new("run-137") else { return };
    env.sh("echo up; exec sleep 60");
    let c = env.container("k");
    let mut run = c.spawn_run(&[]);
    run.wait_for_stdout("up");
    c.kill("KILL").ok();
    let out = run.wait();
    assert_eq!(out.code(), 137, "{out}");
    drop(c);
    env.assert_clean();
}

/// `run` forwards SIGTERM, SIGINT and SIGHUP to the container and exits with its code.
#[test]
fn run_forwards_signals() {
    let Some(env) = Env::new("run-signals") else { return };
    for (sig, name, code) in [(Signal::TERM, "TERM", 42), (Signal::INT, "INT", 43), (Signal::HUP, "HUP", 44)] {
        // sh as pid 1 only sees a signal it has a handler for: the trap installs one.
        env.sh(&format!("trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done"));
        let c = env.container(&name.to_lowercase());
        let mut run = c.spawn_run(&[]);
        run.wait_for_stdout("ready");
        run.signal(sig);
        let out = run.wait();
        assert_eq!(out.code(), code, "SIG{name} was not forwarded: {out}");
    }
    env.assert_clean();
}

/// `kill ID` without a signal sends SIGTERM.
#[test]
fn kill_defaults_to_sigterm() {
    let Some(env) = Env::new("kill-default") else { return };
    env.sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    let c = env.container("term");
    let mut run = c.spawn_run(&[]);
    run.wait_for_stdout("ready");
    env.rt(&["kill", &c.id]).ok();
    let out = run.wait();
    assert_eq!(out.code(), 7, "{out}");
    drop(c);
    env.assert_clean();
}

/// create → created → start → running → kill → stopped → delete → gone, with runc's state JSON.
#[test]
fn create_start_kill_delete() {
    let Some(env) = Env::new("lifecycle") else { return };
    env.sh("echo started; exec sleep 60");
    let c = env.container("life");
    c.create(&[]).ok();

    let st = c.state_ok();
    assert_eq!(st["status"], "created", "{st}");
    for field in ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"] {
        assert!(st.get(field).is_some(), "state lacks {field}: {st}");
    }
    assert!(st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()), "{st}");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert_eq!(st["bundle"], env.bundle.to_str().unwrap(), "{st}");
    assert_eq!(st["rootfs"], rootfs().to_str().unwrap(), "{st}");
    assert!(st["owner"].is_string(), "{st}");
    let created = st["created"].as_str().unwrap_or_default();
    assert!(is_rfc3339(created), "created is not RFC 3339: {created:?}");
    let pid = st["pid"].as_i64().expect("pid is a number") as i32;
    assert!(pid > 0, "{st}");
    assert!(pid_alive(pid), "init {pid} of a created container is not alive");
    assert!(c.state_dir().is_dir(), "no state dir {}", c.state_dir().display());
    // The process must not have run yet.
    assert_eq!(c.stdout(), "", "the container ran before start");

    c.start().ok();
    let st = c.state_ok();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], pid, "pid changed across start: {st}");
    c.wait_for_stdout("started");

    c.kill("KILL").ok();
    let st = c.wait_status("stopped");
    assert_eq!(st["id"], c.id.as_str());
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));

    c.delete(&[]).ok();
    let err = c.state().expect_err("state of a deleted container must fail");
    assert!(!err.stderr.trim().is_empty(), "{err}");
    env.assert_no_state(&c.id);
    env.assert_clean();
}

/// `kill` takes a signal as `KILL`, `SIGKILL` or `9`.
#[test]
fn kill_accepts_names_and_numbers() {
    let Some(env) = Env::new("kill-forms") else { return };
    env.args(&["sleep", "60"]);
    for sig in ["KILL", "SIGKILL", "9"] {
        let c = env.container("sig");
        let pid = c.create_and_start();
        c.kill(sig).ok();
        c.wait_status("stopped");
        wait_until(TIMEOUT, &format!("init {pid} to die of `kill {sig}`"), || {
            (!pid_alive(pid)).then_some(())
        });
        c.delete(&[]).ok();
    }
    env.assert_clean();
}

/// `run -d` returns at once and leaves the container running.
#[test]
fn run_detached() {
    let Some(env) = Env::new("run-detach") else { return };
    env.sh("echo detached-up; exec sleep 60");
    let c = env.container("d");
    c.run(&["-d"]).ok();
    let st = c.state_ok();
    assert_eq!(st["status"], "running", "{st}");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(pid));
    c.wait_for_stdout("detached-up");
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete(&[]).ok();
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));
    drop(c);
    env.assert_clean();
}

/// `delete -f` kills and removes a running container.
#[test]
fn delete_force_of_running_container() {
    let Some(env) = Env::new("delete-force") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("f");
    let pid = c.create_and_start();
    c.delete(&["-f"]).ok();
    assert!(c.state().is_err(), "state after delete -f");
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));
    drop(c);
    env.assert_clean();
}

/// `list`, `list -q` and `list -f json` show this root's containers.
#[test]
fn list_formats() {
    let Some(env) = Env::new("list") else { return };
    env.args(&["sleep", "60"]);

    // An empty (or missing) root lists nothing.
    let out = env.rt(&["list", "-q"]).ok();
    assert_eq!(out.stdout.trim(), "", "{out}");

    let a = env.container("a");
    let b = env.container("b");
    a.create(&[]).ok();
    b.create_and_start();
    let (pid_a, pid_b) = (a.pid(), b.pid());

    let out = env.rt(&["list", "-q"]).ok();
    let mut ids: Vec<&str> = out.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b.id.as_str()];
    want.sort();
    assert_eq!(ids, want, "{out}");

    let out = env.rt(&["list"]).ok();
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.split_whitespace().any(|w| w == col), "header lacks {col}: {out}");
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let row = |id: &str| rows.iter().find(|r| r.first() == Some(&id)).cloned();
    let ra = row(&a.id).unwrap_or_else(|| panic!("no row for {}: {out}", a.id));
    let rb = row(&b.id).unwrap_or_else(|| panic!("no row for {}: {out}", b.id));
    assert_eq!((ra[1], ra[2]), (pid_a.to_string().as_str(), "created"), "{out}");
    assert_eq!((rb[1], rb[2]), (pid_b.to_string().as_str(), "running"), "{out}");

    let out = env.rt(&["list", "-f", "json"]).ok();
    let list: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let list = list.as_array().unwrap_or_else(|| panic!("not an array: {out}"));
    assert_eq!(list.len(), 2, "{out}");
    for (c, pid, status) in [(&a, pid_a, "created"), (&b, pid_b, "running")] {
        let entry = list
            .iter()
            .find(|e| e["id"] == c.id.as_str())
            .unwrap_or_else(|| panic!("{} missing: {out}", c.id));
        assert_eq!(entry["pid"], pid, "{entry}");
        assert_eq!(entry["status"], status, "{entry}");
        assert_eq!(entry["bundle"], env.bundle.to_str().unwrap(), "{entry}");
        assert!(entry["created"].as_str().is_some_and(is_rfc3339), "{entry}");
    }

    drop(a);
    drop(b);
    env.assert_clean();
}

/// `--pid-file` holds the init's pid.
#[test]
fn pid_file() {
    let Some(env) = Env::new("pid-file") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("p");
    let pid_file = env.dir.join("init.pid");
    c.create(&["--pid-file", pid_file.to_str().unwrap()]).ok();
    let text = fs::read_to_string(&pid_file).expect("pid file written");
    let pid: i32 = text.trim().parse().unwrap_or_else(|_| panic!("pid file holds {text:?}"));
    assert_eq!(pid, c.pid());
    assert!(pid_alive(pid));
    // Written atomically: no temporary file is left beside it.
    let stray: Vec<_> = fs::read_dir(&env.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("init.pid") && n != "init.pid")
        .collect();
    assert!(stray.is_empty(), "temporary pid files left: {stray:?}");
    drop(c);
    env.assert_clean();
}

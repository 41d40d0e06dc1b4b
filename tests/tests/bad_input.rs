//! Issue 2, "Bad input": each case fails with a non-zero exit and an error message (exactly one
//! line for fdbox), and leaves nothing behind: no state dir, no process, no mount.

use fdbox_tests::*;
use std::fs;

/// The checks shared by every failed create/run.
#[track_caller]
fn assert_failed_cleanly(env: &Env, c: &Container, out: Output) {
    out.fails_with_one_line();
    env.assert_no_state(&c.id);
    env.assert_clean();
}

#[test]
fn missing_bundle() {
    let Some(env) = Env::new("bad-no-bundle") else { return };
    let c = env.container("nob");
    let out = c.create_in(&env.dir.join("no-such-bundle"), &[]);
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn missing_config_json() {
    let Some(env) = Env::new("bad-no-config") else { return };
    let bundle = env.subdir("empty-bundle");
    let c = env.container("noc");
    let out = c.create_in(&bundle, &[]);
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn malformed_config_json() {
    let Some(env) = Env::new("bad-json") else { return };
    let bundle = env.subdir("broken");
    let c = env.container("json");
    for text in ["{ \"ociVersion\": \"1.0.2\", \"process\": ", "not json at all", ""] {
        fs::write(bundle.join("config.json"), text).unwrap();
        let out = c.create_in(&bundle, &[]);
        assert_failed_cleanly(&env, &c, out);
    }
    // Valid JSON of the wrong shape is malformed too.
    fs::write(bundle.join("config.json"), "{\"ociVersion\": \"1.0.2\", \"process\": 5}").unwrap();
    let out = c.create_in(&bundle, &[]);
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn unsupported_oci_version_major() {
    let Some(env) = Env::new("bad-oci-version") else { return };
    env.set("/ociVersion", json!("2.0.0"));
    let c = env.container("v2");
    let out = c.create(&[]);
    // runc 1.1.5 does not check ociVersion at all and creates the container; the issue asks
    // fdbox to refuse an unknown major version, so the failure is asserted for fdbox only.
    if is_runc() && out.success() {
        return skip("runc accepts ociVersion 2.0.0; the refusal is checked for fdbox only");
    }
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn missing_rootfs() {
    let Some(env) = Env::new("bad-no-rootfs") else { return };
    env.set("/root", json!({ "path": env.dir.join("no-such-rootfs"), "readonly": true }));
    let c = env.container("nor");
    let out = c.create(&[]);
    assert_failed_cleanly(&env, &c, out);

    // A relative root.path with nothing there, too.
    env.set("/root", json!({ "path": "rootfs", "readonly": true }));
    let out = c.create(&[]);
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn empty_process_args() {
    let Some(env) = Env::new("bad-empty-args") else { return };
    env.args(&[]);
    let c = env.container("noargs");
    let out = c.create(&[]);
    assert_failed_cleanly(&env, &c, out);
    // Same through `run`.
    let out = c.run(&[]);
    assert_failed_cleanly(&env, &c, out);
}

#[test]
fn executable_not_found() {
    let Some(env) = Env::new("bad-no-exe") else { return };
    // Both a bare name looked up in PATH and an absolute path; both fail at create time (the
    // process is never started), as runc does.
    for exe in ["no-such-command", "/bin/no-such-binary"] {
        env.args(&[exe]);
        let c = env.container("noexe");
        let out = c.create(&[]);
        assert!(out.stderr.contains(exe), "the error does not name {exe}: {out}");
        assert_failed_cleanly(&env, &c, out);
        let out = c.run(&[]);
        assert_failed_cleanly(&env, &c, out);
    }
}

#[test]
fn duplicate_id() {
    let Some(env) = Env::new("bad-dup") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("dup");
    c.create(&[]).ok();
    let pid = c.pid();
    let before = fs::read(c.state_dir().join("state.json")).ok();

    let out = c.create(&[]);
    out.fails_with_one_line();
    let out = c.run(&["-d"]);
    out.fails_with_one_line();

    // The first container is untouched: same state, same init, nothing else started.
    let st = c.state_ok();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    assert!(pid_alive(pid));
    if before.is_some() {
        assert_eq!(fs::read(c.state_dir().join("state.json")).ok(), before, "state.json rewritten");
    }
    assert_eq!(env.state_entries(), vec![c.id.clone()]);
    // fdbox's init is a clone of fdbox and carries the test's mark from the start; runc's
    // `runc init` gets a fresh environment, so before `start` it is not marked.
    let expected: Vec<i32> = if is_fdbox() { vec![pid] } else { vec![] };
    env.assert_only_processes(&expected);
    env.assert_no_mounts();

    drop(c);
    env.assert_clean();
}

#[test]
fn invalid_ids() {
    let Some(env) = Env::new("bad-id") else { return };
    for id in ["../x", "a/b", "..", ".", "", "/abs", "x y"] {
        let c = Container::with_id(&env, id);
        let out = c.create(&[]);
        out.fails_with_one_line();
        // Nothing was created anywhere: not under the root, not beside it.
        assert!(env.state_entries().is_empty(), "{id:?}: {:?}", env.state_entries());
        assert!(!env.dir.join("x").exists(), "{id:?} escaped the state dir");
        env.assert_no_processes();
        env.assert_no_mounts();
    }
    env.assert_clean();
}

#[test]
fn delete_of_running_container_without_force() {
    let Some(env) = Env::new("bad-delete-running") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("run");
    let pid = c.create_and_start();
    c.delete(&[]).fails_with_one_line();
    // Still there and still running.
    let st = c.state_ok();
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"], pid);
    assert!(pid_alive(pid));
    assert!(c.state_dir().is_dir());
    c.delete(&["-f"]).ok();
    drop(c);
    env.assert_clean();
}

#[test]
fn commands_on_an_unknown_id() {
    let Some(env) = Env::new("bad-unknown") else { return };
    let id = env.id("ghost");
    env.rt(&["kill", &id, "KILL"]).fails_with_one_line();
    env.rt(&["kill", &id]).fails_with_one_line();
    env.rt(&["start", &id]).fails_with_one_line();
    env.rt(&["state", &id]).fails_with_one_line();
    env.rt(&["delete", &id]).fails_with_one_line();
    env.assert_clean();

    // The same with an existing --root that holds another container.
    env.args(&["sleep", "60"]);
    let other = env.container("other");
    other.create(&[]).ok();
    env.rt(&["kill", &id, "KILL"]).fails_with_one_line();
    env.rt(&["start", &id]).fails_with_one_line();
    env.rt(&["state", &id]).fails_with_one_line();
    assert_eq!(other.status(), "created", "the other container was disturbed");
    drop(other);
    env.assert_clean();
}

#[test]
fn kill_of_a_stopped_container() {
    let Some(env) = Env::new("bad-kill-stopped") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("stopped");
    let pid = c.create_and_start();
    c.kill("KILL").ok();
    c.wait_status("stopped");
    wait_until(TIMEOUT, "the init to be gone", || (!pid_alive(pid)).then_some(()));
    c.kill("KILL").fails_with_one_line();
    c.kill("TERM").fails_with_one_line();
    assert_eq!(c.status(), "stopped");
    c.delete(&[]).ok();
    drop(c);
    env.assert_clean();
}

#[test]
fn start_twice_fails() {
    let Some(env) = Env::new("bad-start-twice") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("twice");
    let pid = c.create_and_start();
    c.start().fails_with_one_line();
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    drop(c);
    env.assert_clean();
}

#[test]
fn unknown_signal_is_refused() {
    let Some(env) = Env::new("bad-signal") else { return };
    env.args(&["sleep", "60"]);
    let c = env.container("sig");
    let pid = c.create_and_start();
    c.kill("NOSUCHSIG").fails_with_one_line();
    c.kill("99999").fails_with_one_line();
    assert_eq!(c.status(), "running");
    assert!(pid_alive(pid));
    drop(c);
    env.assert_clean();
}

/// `--log FILE --log-format json`: a failing create leaves runc's JSON line
/// `{"level":"error","msg":…,"time":RFC3339}` as the file's last line.
#[test]
fn json_log_of_a_failing_create() {
    let Some(env) = Env::new("bad-json-log") else { return };
    env.set("/root", json!({ "path": env.dir.join("no-such-rootfs"), "readonly": true }));
    env.write_config();
    let log = env.dir.join("runtime.log");
    let id = env.id("log");
    let c = Container::with_id(&env, id.clone());
    let out = env.rt(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ]);
    assert!(!out.success(), "{out}");
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("no log file ({e}): {out}"));
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).expect("empty log file");
    let entry: Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("last log line is not JSON ({e}): {last}"));
    assert_eq!(entry["level"], "error", "{last}");
    assert!(entry["msg"].as_str().is_some_and(|m| !m.is_empty()), "{last}");
    let time = entry["time"].as_str().unwrap_or_default();
    assert!(is_rfc3339(time), "time is not RFC 3339: {last}");
    // Every line of the file is JSON in this format.
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["msg"].is_string() && v["time"].is_string(), "{line}");
    }
    drop(c);
    env.assert_clean();
}

/// Issue 15 item 8: `events --interval` with a value no duration can hold (fdbox aborted in
/// `Duration::from_secs_f64`), zero, negative, or without a unit fails at once with one line;
/// the container is untouched.
#[test]
fn events_interval_out_of_range() {
    let Some(env) = Env::new("bad-events-interval") else { return };
    env.args(&["sleep", "600"]);
    let c = env.container("ev");
    c.create_and_start();
    for interval in ["99999999999999999999999h", "2562048h", "9223372036854775808ns", "0s", "0", "-1s", "5", "1x"] {
        let out = env.spawn(&["events", "--interval", interval, &c.id]).wait_timeout(std::time::Duration::from_secs(10));
        if is_runc() && ["0", "0s", "-1s"].contains(&interval) && out.code() != 0 && out.stderr.lines().count() != 1 {
            // runc 1.1.5 refuses these too, in its own words.
            continue;
        }
        out.fails_with_one_line();
        assert_eq!(c.status(), "running", "--interval {interval}");
    }
    drop(c);
    env.assert_clean();
}

fn mkfifo(path: &std::path::Path) {
    let _ = fs::remove_file(path);
    rustix::fs::mknodat(rustix::fs::CWD, path, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0).expect("mkfifo");
}

const FAST: std::time::Duration = std::time::Duration::from_secs(10);

/// Issue 15 item 9: a config.json that is a FIFO (no writer ever comes) or not a regular file
/// fails `create` at once with one line, and nothing is left (fdbox blocked forever in open and
/// had made the state dir before reading the config).
#[test]
fn config_json_that_is_not_a_regular_file() {
    let Some(env) = Env::new("bad-config-fifo") else { return };
    if is_runc() {
        return skip("runc 1.1.5 blocks on a FIFO config.json");
    }
    let bundle = env.subdir("fifo-bundle");
    let c = env.container("fifo");
    mkfifo(&bundle.join("config.json"));
    let out = c.spawn_in("create", &bundle, &[]).wait_timeout(FAST);
    assert!(out.stderr.contains("config.json"), "{out}");
    assert_failed_cleanly(&env, &c, out);
    fs::remove_file(bundle.join("config.json")).unwrap();
    fs::create_dir(bundle.join("config.json")).unwrap();
    let out = c.spawn_in("create", &bundle, &[]).wait_timeout(FAST);
    assert_failed_cleanly(&env, &c, out);
}

/// Issue 15 item 9: a `linux.namespaces[].path` that is a FIFO, a regular file or a directory
/// (not a namespace) fails `create` at once with one line and leaves nothing.
#[test]
fn namespace_path_that_is_not_a_namespace() {
    let Some(env) = Env::new("bad-ns-path") else { return };
    let fifo = env.dir.join("ns-fifo");
    mkfifo(&fifo);
    let file = env.dir.join("ns-file");
    fs::write(&file, "not a namespace").unwrap();
    let dir = env.subdir("ns-dir");
    for (what, path) in [("FIFO", &fifo), ("regular file", &file), ("directory", &dir)] {
        if is_runc() && what == "FIFO" {
            continue; // runc 1.1.5 blocks on it
        }
        let mut config = env.config();
        let list = config["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": path}));
        env.edit(|c| *c = config);
        let c = env.container("ns");
        let out = c.spawn_lifecycle("create", &[]).wait_timeout(FAST).fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains(path.to_str().unwrap()), "{what}: the error does not name the path: {out}");
        }
        env.assert_no_state(&c.id);
        drop(c);
        env.assert_clean();
    }
}

/// Issue 15 item 9: `exec --process` with a FIFO, and `--console-socket`/`--pidfd-socket` at a
/// FIFO, fail at once with one line; the container is untouched.
#[test]
fn exec_inputs_that_are_fifos() {
    let Some(env) = Env::new("bad-exec-fifo") else { return };
    env.args(&["sleep", "600"]);
    let c = env.container("fifo");
    c.create_and_start();
    let fifo = env.dir.join("fifo");
    mkfifo(&fifo);
    let f = fifo.to_str().unwrap();
    let mut cases: Vec<Vec<&str>> = vec![vec!["--pidfd-socket", f, &c.id, "true"], vec!["-t", "-d", "--console-socket", f, &c.id, "true"]];
    if is_fdbox() {
        // runc 1.1.5 blocks on a FIFO process.json; and has no --pidfd-socket.
        cases.push(vec!["--process", f, &c.id]);
    } else {
        cases.remove(0);
    }
    for case in cases {
        let mut args = vec!["exec"];
        args.extend(case.iter().copied());
        let out = env.spawn(&args).wait_timeout(FAST);
        out.fails_with_one_line();
        assert_eq!(c.status(), "running", "{case:?}");
    }
    drop(c);
    env.assert_clean();
}

/// `terminal: true` in the foreground, with no console socket and no terminal at all (stdio
/// are files, and `setsid` leaves no controlling terminal): nobody could type into the
/// container's terminal, and its shell waited forever. runc refuses at once ("open /dev/tty:
/// no such device or address"); so does fdbox, with one line and nothing left behind. The same
/// for `exec -t` (issue 16 item 15).
/// Run the command in a session of its own (no controlling terminal) and wait for it: a
/// background job of a non-interactive shell is no process group leader, so `setsid` (util-linux's
/// or busybox's, which has no `-w`) makes the session and execs the command in the same process.
const NEW_SESSION: &[&str] = &["sh", "-c", "setsid \"$@\" & wait $!", "sh"];

#[test]
fn terminal_without_any_terminal_is_refused() {
    let Some(env) = Env::new("no-terminal") else { return };
    env.set("/process/terminal", json!(true));
    env.args(&["sh"]);
    let c = env.container("run");
    let out = c.run_via(NEW_SESSION, &[]);
    assert!(out.stderr.contains("open /dev/tty: no such device or address"), "{out}");
    assert_failed_cleanly(&env, &c, out);

    env.set("/process/terminal", json!(false));
    env.sh("echo up; exec sleep 600");
    let c = env.container("exec");
    c.run(&["-d"]).ok();
    let out = env.spawn_via(NEW_SESSION, &["exec", "-t", &c.id, "sh"]).wait();
    assert!(out.stderr.contains("open /dev/tty: no such device or address"), "{out}");
    out.fails_with_one_line();
    // Only the init is left of the container: no exec'd shell waits for input.
    env.assert_only_processes(&[c.pid()]);
    c.delete(&["-f"]).ok();
    env.assert_clean();
}

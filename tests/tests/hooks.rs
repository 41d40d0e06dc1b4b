//! OCI lifecycle hooks: order, the namespaces each kind runs in, the state on stdin, `args`,
//! `env`, `timeout`, and the failure semantics of runtime-spec 1.3 (a failing create/start/
//! poststart hook fails the operation and destroys the container; poststop failures are
//! warnings).
//!
//! Every hook is `/bin/sh -c SCRIPT NAME` (`$0` is the hook's name): it appends a line to a log
//! and saves its stdin. The runtime-namespace hooks (and `createContainer`, which runs before
//! pivot_root, on the host's tree) use the log's host path; `startContainer` runs inside the
//! container and reaches the same directory through a bind mount over its `/tmp` (a directory the shared
//! read-only rootfs already has).

use fdbox_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KINDS: [&str; 6] = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

/// The hook log directory (bind-mounted over /tmp in the container).
fn log_dir(env: &Env) -> PathBuf {
    let dir = env.dir.join("hooklog");
    if !dir.exists() {
        fs::create_dir(&dir).unwrap();
        env.edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/tmp", "type": "bind", "source": dir, "options": ["rbind", "rw"]
            }))
        });
    }
    dir
}

/// A hook of `kind` that logs `<kind> <mnt ns> <net ns>` and saves its stdin as `<kind>.json`,
/// then runs `extra` (e.g. `exit 3`).
fn logging_hook(env: &Env, kind: &str, extra: &str) -> Value {
    let dir = if kind == "startContainer" { PathBuf::from("/tmp") } else { log_dir(env) };
    let script = format!(
        "echo \"$0 $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/net)\" >> {d}/log; cat > {d}/$0.json; {extra}",
        d = dir.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, kind]})
}

fn set_hooks(env: &Env, hooks: &[(&str, Value)]) {
    log_dir(env);
    let mut obj = serde_json::Map::new();
    for (kind, hook) in hooks {
        obj.entry(kind.to_string()).or_insert_with(|| json!([])).as_array_mut().unwrap().push(hook.clone());
    }
    env.set("/hooks", Value::Object(obj));
}

/// The log as (kind, mnt ns, net ns) lines.
fn log(env: &Env) -> Vec<(String, String, String)> {
    fs::read_to_string(log_dir(env).join("log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), f.get(1).unwrap_or(&"").to_string(), f.get(2).unwrap_or(&"").to_string())
        })
        .collect()
}

fn kinds_logged(env: &Env) -> Vec<String> {
    log(env).into_iter().map(|l| l.0).collect()
}

fn hook_stdin(env: &Env, kind: &str) -> Value {
    let text = fs::read_to_string(log_dir(env).join(format!("{kind}.json")))
        .unwrap_or_else(|e| panic!("{kind} hook left no stdin copy: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{kind} hook got invalid JSON on stdin ({e}): {text:?}"))
}

/// Cgroup directories named `id` anywhere under /sys/fs/cgroup (a few levels deep).
fn cgroups_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if e.file_name() == id {
                    found.push(e.path());
                } else if depth > 0 {
                    walk(&e.path(), id, depth - 1, found);
                }
            }
        }
    }
    let mut found = vec![];
    walk(Path::new("/sys/fs/cgroup"), id, 4, &mut found);
    found
}

/// All six hooks run once each, in the spec's order and at the right moment of the lifecycle:
/// prestart, createRuntime, createContainer during `create`; startContainer (before the
/// program) and poststart during `start`; poststop during `delete`. Each runs in the namespaces
/// the spec gives, and reads the state with the right status on stdin.
#[test]
fn hooks_run_in_order_in_their_namespaces_with_the_state() {
    let Some(env) = Env::new("hooks-order") else { return };
    let hooks: Vec<(&str, Value)> = KINDS.iter().map(|k| (*k, logging_hook(&env, k, ""))).collect();
    set_hooks(&env, &hooks);
    env.set("/annotations", json!({"org.fdbox.test": "hooks"}));
    env.sh("echo process >> /tmp/log; echo up; exec sleep 600");
    let c = env.container("order");
    c.create(&[]).ok();
    if is_runc() {
        // runc 1.1 runs poststart hooks during `create` (fixed in runc 1.2).
        return skip("runc 1.1 runs poststart hooks at create");
    }
    assert_eq!(kinds_logged(&env), ["prestart", "createRuntime", "createContainer"], "after create");
    let init = c.pid();
    c.start().ok();
    c.wait_for_stdout("up");
    let after_start = kinds_logged(&env);
    // The program runs after startContainer; poststart ran before `start` returned (the
    // program's own line may come before or after it).
    let without_process: Vec<&String> = after_start.iter().filter(|k| *k != "process").collect();
    assert_eq!(without_process, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"]);
    let pos = |k: &str| after_start.iter().position(|x| x == k).unwrap();
    assert!(pos("startContainer") < pos("process"), "the program ran before startContainer: {after_start:?}");

    let (c_mnt, c_net) = (readlink(format!("/proc/{init}/ns/mnt")), readlink(format!("/proc/{init}/ns/net")));
    c.kill("KILL").ok();
    c.wait_status("stopped");
    c.delete(&[]).ok();
    assert_eq!(kinds_logged(&env).last().map(String::as_str), Some("poststop"));
    assert_eq!(kinds_logged(&env).len(), 7, "{:?}", kinds_logged(&env));

    // Namespaces: the runtime's for four kinds, the container's for two.
    let host = (host_ns("mnt"), host_ns("net"));
    assert_ne!(c_mnt, host.0);
    for (kind, mnt, net) in log(&env).into_iter().filter(|l| l.0 != "process") {
        let want = if ["createContainer", "startContainer"].contains(&kind.as_str()) {
            (&c_mnt, &c_net)
        } else {
            (&host.0, &host.1)
        };
        assert_eq!((&mnt, &net), want, "{kind} ran in the wrong namespaces");
    }

    // The state on stdin.
    let bundle = env.bundle.to_string_lossy().into_owned();
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st = hook_stdin(&env, kind);
        assert_eq!(st["id"], c.id.as_str(), "{kind}: {st}");
        assert_eq!(st["status"], status, "{kind}: {st}");
        assert_eq!(st["bundle"], bundle.as_str(), "{kind}: {st}");
        assert_eq!(st["annotations"]["org.fdbox.test"], "hooks", "{kind}: {st}");
        assert!(st["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{kind}: {st}");
        // The pid as the host sees it. (runc 1.1 gives the container's view, 1, to the two
        // hooks that run inside.)
        let pid = st["pid"].as_i64().unwrap_or(0) as i32;
        if is_fdbox() || !["createContainer", "startContainer"].contains(&kind) {
            assert_eq!(pid, init, "{kind}: {st}");
        }
    }
    drop(c);
    env.assert_clean();
}

/// `args` is the argv (args[0] is argv[0], `path` is what runs) and `env` is the whole
/// environment of the hook.
#[test]
fn hook_args_and_env() {
    let Some(env) = Env::new("hooks-args") else { return };
    let dir = log_dir(&env);
    let script = format!("tr '\\0' '\\n' < /proc/$$/cmdline > {d}/argv; env > {d}/env", d = dir.display());
    env.set(
        "/hooks",
        json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["my-hook-name", "-c", script, "zero", "one two"],
            "env": ["HOOK_VAR=hook value", "OTHER=1"],
        }]}),
    );
    let c = env.container("args");
    c.create(&[]).ok();
    let argv = fs::read_to_string(dir.join("argv")).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(argv[0], "my-hook-name", "argv[0] is args[0]: {argv:?}");
    assert_eq!(&argv[argv.len() - 2..], ["zero", "one two"], "{argv:?}");
    let vars = fs::read_to_string(dir.join("env")).unwrap();
    assert!(vars.lines().any(|l| l == "HOOK_VAR=hook value"), "{vars}");
    assert!(vars.lines().any(|l| l == "OTHER=1"), "{vars}");
    // Nothing of the runtime's environment (the test mark is in it).
    assert!(!vars.contains(MARK_VAR), "the runtime's environment leaked into the hook: {vars}");
    drop(c);
    env.assert_clean();
}

/// A hook that outlives its `timeout` is killed and fails the create, which leaves nothing.
#[test]
fn hook_timeout_kills_it_and_fails_create() {
    let Some(env) = Env::new("hooks-timeout") else { return };
    // `sleep` itself is the hook (no shell in between that would leave it orphaned).
    env.set("/hooks", json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "60"], "timeout": 1}]}));
    let c = env.container("timeout");
    let started = Instant::now();
    let out = c.create(&[]).fails_with_one_line();
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout was not enforced: {out}");
    if is_fdbox() {
        assert!(out.stderr.contains("createRuntime") && out.stderr.contains("timeout"), "{out}");
    }
    assert!(cgroups_named(&c.id).is_empty(), "cgroups left: {:?}", cgroups_named(&c.id));
    drop(c);
    env.assert_clean();
}

/// A failing prestart, createRuntime or createContainer hook fails `create` with one line that
/// names the hook and carries its stderr; the container is destroyed (no state, process, mount
/// or cgroup left) and the poststop hooks run.
#[test]
fn failing_create_hooks_destroy_the_container() {
    let Some(env) = Env::new("hooks-create-fail") else { return };
    for failing in ["prestart", "createRuntime", "createContainer"] {
        let _ = fs::remove_file(log_dir(&env).join("log"));
        let mut hooks: Vec<(&str, Value)> = vec![];
        for kind in ["prestart", "createRuntime", "createContainer", "poststop"] {
            let extra = if kind == failing { "echo hook-said-no >&2; exit 3" } else { "" };
            hooks.push((kind, logging_hook(&env, kind, extra)));
        }
        set_hooks(&env, &hooks);
        let c = env.container("fail");
        let out = c.create(&[]).fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains(failing), "{failing}: the error does not name the hook: {out}");
            assert!(out.stderr.contains("hook-said-no"), "{failing}: the hook's stderr is missing: {out}");
        }
        // Nothing after the failing hook ran, except poststop.
        let ran = kinds_logged(&env);
        let upto = KINDS.iter().position(|k| *k == failing).unwrap();
        let mut want: Vec<&str> = KINDS[..=upto].to_vec();
        want.push("poststop");
        assert_eq!(ran, want, "{failing}");
        assert!(cgroups_named(&c.id).is_empty(), "{failing}: cgroups left: {:?}", cgroups_named(&c.id));
        drop(c);
        env.assert_clean();
    }
}

/// A failing startContainer hook fails `start` (one line): the program never runs, the
/// container is destroyed, and poststop runs.
#[test]
fn failing_start_container_hook_destroys_the_container() {
    let Some(env) = Env::new("hooks-start-fail") else { return };
    set_hooks(
        &env,
        &[
            ("startContainer", logging_hook(&env, "startContainer", "echo not-today >&2; exit 4")),
            ("poststart", logging_hook(&env, "poststart", "")),
            ("poststop", logging_hook(&env, "poststop", "")),
        ],
    );
    env.sh("echo process >> /tmp/log; exec sleep 600");
    let c = env.container("startfail");
    c.create(&[]).ok();
    if is_runc() {
        // runc 1.1 reports success from `start` and leaves a stopped container.
        return skip("runc 1.1 does not fail start on a startContainer hook");
    }
    let out = c.start().fails_with_one_line();
    // runc's words: `error running startContainer hook #0: exit status 4, stdout: …, stderr: …`.
    assert!(out.stderr.contains("error running startContainer hook #0: exit status 4, stdout: , stderr: not-today"), "{out}");
    assert_eq!(kinds_logged(&env), ["startContainer", "poststop"]);
    assert!(c.state().is_err(), "the container still exists after its startContainer hook failed");
    assert!(cgroups_named(&c.id).is_empty(), "cgroups left: {:?}", cgroups_named(&c.id));
    drop(c);
    env.assert_clean();
}

/// A foreground `run` whose startContainer hook fails reports the hook's failure (index, exit
/// status, stdout and stderr, in runc's words, on one line), not a missing container; the
/// program never runs and nothing is left, with `--keep` too (runtime-spec lifecycle step 7;
/// runc keeps a stopped container under `--keep`). runc 1.1.5 fails the same way
/// (`error running hook #0: error running hook: exit status 3, stdout: …, stderr: …`, the output's
/// newlines kept) and leaves nothing.
#[test]
fn failing_start_container_hook_fails_run_with_the_hook_error() {
    let Some(env) = Env::new("hooks-run-startfail") else { return };
    set_hooks(
        &env,
        &[
            ("startContainer", logging_hook(&env, "startContainer", "echo hook-out; echo hook-err >&2; exit 3")),
            ("poststop", logging_hook(&env, "poststop", "")),
        ],
    );
    env.sh("echo process >> /tmp/log; exec sleep 600");
    for extra in [&[][..], &["--keep"][..]] {
        let _ = fs::remove_file(log_dir(&env).join("log"));
        let c = env.container("runfail");
        let out = c.run(extra);
        assert!(!out.success(), "{extra:?}: run succeeded: {out}");
        assert!(out.stderr.contains("exit status 3") && out.stderr.contains("hook-err"), "{extra:?}: {out}");
        if is_fdbox() {
            let out = out.fails_with_one_line();
            assert!(
                out.stderr.contains("error running startContainer hook #0: exit status 3, stdout: hook-out, stderr: hook-err"),
                "{extra:?}: {out}"
            );
            assert_eq!(kinds_logged(&env), ["startContainer", "poststop"], "{extra:?}");
        }
        // runc keeps a stopped container under `--keep`; fdbox destroys it, as runtime-spec
        // lifecycle step 7 says for a failed startContainer hook.
        if is_fdbox() || extra.is_empty() {
            assert!(c.state().is_err(), "{extra:?}: the container still exists after its startContainer hook failed");
            assert!(cgroups_named(&c.id).is_empty(), "{extra:?}: cgroups left: {:?}", cgroups_named(&c.id));
        }
        drop(c);
        env.assert_clean();
    }
}

/// poststop failures are warnings: delete succeeds, the remaining poststop hooks still run,
/// and the warning names the hook.
#[test]
fn failing_poststop_hooks_are_warnings() {
    let Some(env) = Env::new("hooks-post-fail") else { return };
    if is_runc() {
        // runc 1.1 runs poststart hooks at create.
        return skip("runc 1.1 runs poststart hooks at create");
    }
    let mut second_poststart = logging_hook(&env, "poststart", "");
    second_poststart["args"][3] = json!("poststart2");
    set_hooks(
        &env,
        &[
            ("poststart", logging_hook(&env, "poststart", "")),
            ("poststart", second_poststart),
            ("poststop", logging_hook(&env, "poststop", "exit 6")),
            ("poststop", logging_hook(&env, "poststop", "")),
        ],
    );
    env.sh("echo up; exec sleep 600");
    let c = env.container("post");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("up");
    assert_eq!(c.status(), "running");
    assert_eq!(kinds_logged(&env), ["poststart", "poststart2"]);
    c.kill("KILL").ok();
    c.wait_status("stopped");
    let out = c.delete(&[]).ok();
    assert!(out.stderr.contains("error running poststop hook #0: exit status 6"), "no warning: {out}");
    assert!(out.stderr.contains("warn"), "not logged as a warning: {out}");
    assert_eq!(kinds_logged(&env), ["poststart", "poststart2", "poststop", "poststop"]);
    assert!(c.state().is_err(), "the container still exists after delete");
    drop(c);
    env.assert_clean();
}

/// runtime-spec 1.3 (lifecycle step 9, PR #1262): a failing poststart hook fails `start` with
/// one line in runc's words; the container is stopped and destroyed (its program, already
/// running, is killed; no state, process, mount or cgroup is left), the remaining poststart
/// hooks do not run, and the poststop hooks do. runc kills the container too (runc 1.1.5 runs
/// poststart at `create`, which then fails; it has no `start` to check).
#[test]
fn failing_poststart_hook_fails_start_and_destroys_the_container() {
    let Some(env) = Env::new("hooks-poststart-fail") else { return };
    if is_runc() {
        return skip("runc 1.1 runs poststart hooks at create");
    }
    let mut second_poststart = logging_hook(&env, "poststart", "");
    second_poststart["args"][3] = json!("poststart2");
    set_hooks(
        &env,
        &[
            ("poststart", logging_hook(&env, "poststart", "echo ps-out; echo poststart-broke >&2; exit 5")),
            ("poststart", second_poststart),
            ("poststop", logging_hook(&env, "poststop", "")),
        ],
    );
    env.sh("echo process >> /tmp/log; exec sleep 600");
    let c = env.container("poststart");
    c.create(&[]).ok();
    let init = c.pid();
    let out = c.start().fails_with_one_line();
    assert!(
        out.stderr.contains("error running poststart hook #0: exit status 5, stdout: ps-out, stderr: poststart-broke"),
        "{out}"
    );
    assert!(!pid_alive(init), "the container's program still runs after its poststart hook failed");
    let ran: Vec<String> = kinds_logged(&env).into_iter().filter(|k| k != "process").collect();
    assert_eq!(ran, ["poststart", "poststop"]);
    assert!(c.state().is_err(), "the container still exists after its poststart hook failed");
    assert!(cgroups_named(&c.id).is_empty(), "cgroups left: {:?}", cgroups_named(&c.id));
    drop(c);
    env.assert_clean();
}

/// The same through `run` (foreground and detached): it fails with the hook's error and leaves
/// nothing; runc 1.1.5 fails `run` the same way and leaves nothing either.
#[test]
fn failing_poststart_hook_fails_run_and_leaves_nothing() {
    let Some(env) = Env::new("hooks-poststart-run") else { return };
    set_hooks(
        &env,
        &[
            ("poststart", logging_hook(&env, "poststart", "echo poststart-broke >&2; exit 5")),
            ("poststop", logging_hook(&env, "poststop", "")),
        ],
    );
    env.sh("exec sleep 600");
    for extra in [&[][..], &["-d"][..]] {
        let _ = fs::remove_file(log_dir(&env).join("log"));
        let c = env.container("psrun");
        let out = c.run(extra);
        assert!(!out.success(), "{extra:?}: run succeeded: {out}");
        assert!(out.stderr.contains("poststart-broke"), "{extra:?}: {out}");
        if is_fdbox() {
            let out = out.fails_with_one_line();
            assert!(out.stderr.contains("error running poststart hook #0: exit status 5"), "{extra:?}: {out}");
        }
        assert_eq!(kinds_logged(&env), ["poststart", "poststop"], "{extra:?}");
        assert!(c.state().is_err(), "{extra:?}: the container still exists after its poststart hook failed");
        assert!(cgroups_named(&c.id).is_empty(), "{extra:?}: cgroups left: {:?}", cgroups_named(&c.id));
        drop(c);
        env.assert_clean();
    }
}

/// A hook path must be absolute, a timeout positive: refused before anything is created.
#[test]
fn invalid_hooks_are_refused() {
    let Some(env) = Env::new("hooks-invalid") else { return };
    for hook in [json!({"path": "bin/true"}), json!({"path": "/bin/true", "timeout": 0})] {
        env.set("/hooks", json!({"poststart": [hook]}));
        let c = env.container("invalid");
        let out = c.create(&[]);
        if is_runc() && out.success() {
            // runc 1.1 does not validate hooks.
            continue;
        }
        out.fails_with_one_line();
        drop(c);
        env.assert_clean();
    }
}

/// Issue 15 item 7: a hook `timeout` that no clock can hold (i64::MAX seconds, where fdbox
/// overflowed and panicked) is refused by `create`, for every kind of hook, with one line and
/// nothing left (no state dir, no cgroup). The largest accepted timeout (Go's largest duration,
/// in whole seconds, which runc can represent too) works.
#[test]
fn huge_hook_timeouts_are_refused_cleanly() {
    let Some(env) = Env::new("hooks-huge-timeout") else { return };
    env.args(&["sleep", "600"]);
    for kind in KINDS {
        env.set("/hooks", json!({kind: [{"path": "/bin/true", "timeout": i64::MAX}]}));
        let c = env.container("huge");
        let out = c.create(&[]);
        if is_runc() && out.success() {
            // runc 1.1 wraps the timeout (a negative duration) instead of refusing it.
            continue;
        }
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains(kind) && out.stderr.contains("timeout"), "{kind}: {out}");
        }
        assert!(cgroups_named(&c.id).is_empty(), "{kind}: cgroups left: {:?}", cgroups_named(&c.id));
        env.assert_no_state(&c.id);
        drop(c);
        env.assert_clean();
    }
    if !is_fdbox() {
        return skip("the largest timeout fdbox accepts is its own limit");
    }
    let largest = json!([{"path": "/bin/true", "timeout": 9223372036i64}]);
    env.set("/hooks", json!({"prestart": largest, "createContainer": largest, "poststart": largest}));
    let c = env.container("largest");
    c.create(&[]).ok();
    c.start().ok();
    assert_eq!(c.status(), "running");
    drop(c);
    env.assert_clean();
}

/// Issue 15 item 11: every kind of hook starts with only fds 0, 1 and 2: neither the runtime's
/// own fds (the state root's and the rootfs's dups were not close-on-exec) nor an fd that the
/// caller of the runtime left open without close-on-exec (fd 7 here) reach it. Each hook is
/// `exec ls /proc/self/fd`, whose listing is its fds plus the one ls reads the directory with
/// (3, the lowest free one: any leak shows as an extra fd).
#[test]
fn hooks_get_only_stdio() {
    let Some(env) = Env::new("hooks-fds") else { return };
    let dir = log_dir(&env);
    let hooks: Vec<(&str, Value)> = KINDS
        .iter()
        .map(|k| {
            let d = if *k == "startContainer" { PathBuf::from("/tmp") } else { dir.clone() };
            (*k, json!({"path": "/bin/sh", "args": ["sh", "-c", format!("exec ls /proc/self/fd > {}/$0.fds", d.display()), k]}))
        })
        .collect();
    set_hooks(&env, &hooks);
    let extra = dir.join("extra-fd");
    for inherited in [false, true] {
        for k in KINDS {
            let _ = fs::remove_file(dir.join(format!("{k}.fds")));
        }
        let c = env.container("fds");
        if inherited {
            c.run_via(&["sh", "-c", "exec 7>>\"$0\"; exec \"$@\"", extra.to_str().unwrap()], &[]).ok();
        } else {
            c.run(&[]).ok();
        }
        for k in KINDS {
            let text = fs::read_to_string(dir.join(format!("{k}.fds"))).unwrap_or_else(|e| panic!("{k} hook did not run: {e}"));
            if is_runc() && ["createContainer", "startContainer"].contains(&k) {
                // runc 1.1.5's init runs these with fds 3-6 of its own open.
                continue;
            }
            let fds: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(fds, ["0", "1", "2", "3"], "{k} hook (caller's fd 7 open: {inherited}) got more than stdio");
        }
        drop(c);
        env.assert_clean();
    }
}

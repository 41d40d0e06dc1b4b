//! fd hygiene and runtime-escape classes, each tried by a malicious container process; the
//! host must stay untouched.
//!
//! * CVE-2024-21626: a host fd of the runtime (state dir, bundle, cgroup dir, sync socket)
//!   visible in the container process or usable as its cwd (`/proc/self/fd/N`).
//! * CVE-2019-5736: a container process opens the runtime binary through `/proc/<pid>/exe` of
//!   a runtime process in the container (the waiting init, an `exec` in progress) and writes
//!   it once the runtime has exited. These tests run a *copy* of the runtime binary, so even a
//!   regression cannot damage the build.
//! * Socket activation (`LISTEN_FDS`/`LISTEN_PID`) and `--preserve-fds` pass exactly their fds.

use fdbox_tests::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host-side names that must never show up in a directory listing inside a container: the
/// state dir, the bundle, cgroup directories.
const HOST_MARKERS: &[&str] = &["state.json", "init.sock", "config.json", "cgroup.procs", "tasks", "notify_on_release"];

fn fd_numbers(line: &str) -> Vec<i32> {
    line.split_whitespace().filter_map(|s| s.parse().ok()).collect()
}

/// The container process (the init after execve) and an exec'd process have exactly fds 0,
/// 1 and 2, and `/` as cwd; the init's fds are not even listable while it waits for start.
#[test]
fn no_host_fd_in_container_processes() {
    let Some(env) = Env::new("fd-hygiene") else { return };
    let script = "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; readlink /proc/self/cwd";
    // The init, once it is the user's program.
    env.args(&["sh", "-c", &format!("{script}; exec sleep 600")]);
    let c = env.container("fds");
    c.create(&[]).ok();

    // While created, the init is still the runtime: an exec'd root process with the default
    // capabilities cannot follow its exe, cwd, root or fd links (it is not dumpable).
    let probe = env.rt(&["exec", &c.id, "sh", "-c", "for l in exe cwd root fd/0; do readlink /proc/1/$l >/dev/null 2>&1 && echo visible || echo hidden; done"]).ok();
    if is_fdbox() {
        assert_eq!(probe.stdout, "hidden\nhidden\nhidden\nhidden\n", "the waiting init's exe, cwd, root or fds are visible: {probe}");
    }

    c.start().ok();
    let text = c.wait_for_stdout("/\n");
    let mut lines = text.lines();
    // `ls` lists its own directory fd too (the last number).
    let fds = fd_numbers(lines.next().unwrap_or_default());
    assert_eq!(&fds[..fds.len().saturating_sub(1)], [0, 1, 2], "the init has more than stdio: {text}");
    assert_eq!(lines.next(), Some("/"), "{text}");

    // An exec'd process, with and without --cwd.
    for (extra, want_cwd) in [(None, "/"), (Some("/tmp"), "/tmp")] {
        let mut args = vec!["exec"];
        if let Some(cwd) = extra {
            args.extend(["--cwd", cwd]);
        }
        args.extend([c.id.as_str(), "sh", "-c", script]);
        let out = env.rt(&args).ok();
        let mut lines = out.stdout.lines();
        let fds = fd_numbers(lines.next().unwrap_or_default());
        assert_eq!(&fds[..fds.len().saturating_sub(1)], [0, 1, 2], "the exec'd process has more than stdio: {out}");
        assert_eq!(lines.next(), Some(want_cwd), "{out}");
    }
    drop(c);
    env.assert_clean();
}

/// CVE-2024-21626: `process.cwd` (and `exec --cwd`) set to `/proc/self/fd/N` for every small
/// N. Whatever fd of the runtime that names, the process must not start with a cwd outside its
/// root: either the runtime refuses (one line), or the directory the process sees is inside.
#[test]
fn cwd_through_a_runtime_fd_stays_inside() {
    let Some(env) = Env::new("cwd-escape") else { return };
    let script = "ls -a . ..";
    env.sh(script);
    let check = |what: &str, out: &Output| {
        if out.success() {
            for m in HOST_MARKERS {
                assert!(!out.stdout.lines().any(|l| l == *m), "{what}: the process saw the host's {m}: {out}");
            }
        } else {
            assert_eq!(out.stderr.trim_end().lines().count(), 1, "{what}: {out}");
        }
    };
    for n in 3..=24 {
        env.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
        let c = env.container("cwd");
        let out = c.run(&[]);
        check(&format!("process.cwd /proc/self/fd/{n}"), &out);
        drop(c);
    }
    // exec --cwd, into a running container.
    env.set("/process/cwd", json!("/"));
    env.sh("exec sleep 600");
    let c = env.container("cwd-exec");
    c.create(&[]).ok();
    c.start().ok();
    for n in 3..=24 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.rt(&["exec", "--cwd", &cwd, &c.id, "sh", "-c", script]);
        check(&format!("exec --cwd {cwd}"), &out);
    }
    drop(c);
    env.assert_clean();
}

/// A copy of the runtime binary in the test dir: what the CVE-2019-5736 tests run, so that a
/// successful attack could only ever overwrite the copy.
fn runtime_copy(env: &Env) -> PathBuf {
    let copy = env.dir.join("rt-copy");
    fs::copy(&runtime().bin, &copy).expect("copying the runtime binary");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// `env.spawn` but running `bin` instead of the runtime under test.
fn spawn_with(env: &Env, bin: &Path, args: &[&str]) -> Proc {
    let run_copy = format!("shift; exec '{}' \"$@\"", bin.display());
    env.spawn_via(&["sh", "-c", &run_copy, "sh"], args)
}

/// CVE-2019-5736, against the init waiting for `start` (it runs the runtime binary, with the
/// container's own user and capabilities): an exec'd root process tries to open
/// `/proc/1/exe`, keeps it, and once the runtime is gone (the init has exec'd the program,
/// the exec command has exited) reopens it for writing. The runtime binary is unchanged.
#[test]
fn runtime_binary_cannot_be_overwritten_through_the_waiting_init() {
    let Some(env) = Env::new("cve-2019-5736") else { return };
    let copy = runtime_copy(&env);
    let before = fs::read(&copy).unwrap();
    let bundle = env.bundle.to_string_lossy().into_owned();
    env.sh("exec sleep 600");
    env.write_config();
    let c = env.container("exe");
    spawn_with(&env, &copy, &["create", "--bundle", &bundle, &c.id]).wait().ok();

    // The probe: can /proc/1/exe be opened at all?
    let probe = spawn_with(
        &env,
        &copy,
        &["exec", &c.id, "sh", "-c", "if (exec 3</proc/1/exe) 2>/dev/null; then echo OPENED; else echo DENIED; fi"],
    )
    .wait()
    .ok();
    // The attack: keep the fd, and write through it as soon as the binary is not busy.
    let attack = "exec 3</proc/1/exe || exit 0; echo holding > /tmp/attack-state; \
                  i=0; while [ $i -lt 300 ]; do if echo pwned >/proc/self/fd/3; then echo WROTE > /tmp/attack-state; exit 0; fi; \
                  usleep 20000; i=$((i+1)); done";
    spawn_with(&env, &copy, &["exec", "-d", &c.id, "sh", "-c", attack]).wait().ok();
    spawn_with(&env, &copy, &["start", &c.id]).wait().ok();
    // Give a would-be attacker time to find the binary idle.
    std::thread::sleep(Duration::from_millis(1500));
    let state = spawn_with(&env, &copy, &["exec", &c.id, "sh", "-c", "cat /tmp/attack-state 2>/dev/null || echo none"]).wait();
    // (With the real runtime: the copy may be damaged by now.)
    drop(c);
    let after = fs::read(&copy).unwrap();
    assert!(before == after, "the runtime binary was modified from inside the container (probe: {probe}, attack: {state})");
    if is_fdbox() {
        assert_eq!(probe.stdout.trim(), "DENIED", "a container process opened the waiting init's /proc/1/exe: {probe}");
    }
    env.assert_clean();
}

/// CVE-2019-5736 against `exec` in progress: the container's init scans /proc as fast as a
/// shell can for any process whose exe is the runtime binary and tries to open it, while the
/// test runs many `exec`s. It must never get one, and the binary stays unchanged.
#[test]
fn runtime_binary_of_exec_in_progress_is_out_of_reach() {
    let Some(env) = Env::new("exec-exe") else { return };
    let copy = runtime_copy(&env);
    let before = fs::read(&copy).unwrap();
    let bundle = env.bundle.to_string_lossy().into_owned();
    let scan = "echo scanning; while :; do for p in /proc/[0-9]*; do \
                t=$(readlink $p/exe 2>/dev/null); case \"$t\" in *rt-copy*) \
                if (exec 3<$p/exe) 2>/dev/null; then echo \"OPENED $p $t\"; else echo \"SAW $p $t\"; fi;; esac; \
                done; done";
    env.sh(scan);
    env.write_config();
    let c = env.container("scan");
    let create = spawn_with(&env, &copy, &["create", "--bundle", &bundle, &c.id]);
    // The container's stdout is the create command's.
    let container_stdout = create.stdout_path.clone();
    create.wait().ok();
    spawn_with(&env, &copy, &["start", &c.id]).wait().ok();
    wait_until(TIMEOUT, "the scanner to start", || fs::read_to_string(&container_stdout).ok().filter(|s| s.contains("scanning")));
    for _ in 0..40 {
        spawn_with(&env, &copy, &["exec", &c.id, "true"]).wait().ok();
    }
    let seen = fs::read_to_string(&container_stdout).unwrap_or_default();
    // The scanner ran all along.
    let status = spawn_with(&env, &copy, &["state", &c.id]).wait().ok();
    assert!(status.stdout.contains("\"running\""), "the scanner died: {status}\n{seen}");
    drop(c);
    assert!(fs::read(&copy).unwrap() == before, "the runtime binary was modified: {seen}");
    if is_fdbox() {
        assert!(!seen.contains("OPENED") && !seen.contains("SAW"), "a container process reached a runtime process's exe: {seen}");
    }
    env.assert_clean();
}

/// The init waiting for `start` holds nothing of the host (issue 15, items 2 and 6): a process
/// of the container with CAP_SYS_PTRACE, which may follow the init's `/proc/1/fd` links, finds
/// no host directory behind them and no fd of create's caller other than stdio. Through each
/// link it tries to write a decoy next to the bundle and the state root (`N/..`, `N/../..`, …),
/// and it writes to every non-stdio fd directly (create's caller left fd 7 open on another
/// decoy, not passed with --preserve-fds). Both decoys stay untouched, and every fd of the init
/// above stdio is a socket.
#[test]
fn waiting_init_holds_no_host_fd_for_a_ptrace_capable_container() {
    let Some(env) = Env::new("init-fds-ptrace") else { return };
    // A name of this test's own, written only where it exists: a regression must not create
    // files next to every host directory an fd leads to (the rootfs's parent, /sys/fs/cgroup).
    let name = format!("decoy-{}", env.mark());
    let decoy = env.dir.join(&name);
    let caller_decoy = env.dir.join("caller-decoy");
    fs::write(&decoy, "untouched\n").unwrap();
    fs::write(&caller_decoy, "untouched\n").unwrap();
    env.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_SYS_PTRACE"));
        }
    });
    env.sh("exec sleep 600");
    env.write_config();
    let c = env.container("ptrace");
    let bundle = env.bundle.to_string_lossy().into_owned();
    // A copy of the runtime: the attack also writes the waiting init's /proc/1/exe.
    let copy = runtime_copy(&env);
    let before = fs::read(&copy).unwrap();
    // (spawn_via puts the runtime's path first: dropped by the shift.)
    let create = format!("exec 7<>\"$0\"; shift; exec '{}' \"$@\"", copy.display());
    env.spawn_via(&["sh", "-c", &create, caller_decoy.to_str().unwrap()], &["create", "--bundle", &bundle, &c.id]).wait().ok();
    let attack = format!(
        r#"if ( echo pwned >> /proc/1/exe ) 2>/dev/null; then echo "WROTE /proc/1/exe"; fi
for f in /proc/1/fd/*; do
  n=${{f##*/}}
  echo "fd $n $(readlink $f)"
  [ "$n" -gt 2 ] || continue
  for up in . .. ../.. ../../.. ../../../..; do
    if [ -f "$f/$up/{name}" ] && ( echo pwned > "$f/$up/{name}" ) 2>/dev/null; then echo "WROTE $f/$up/{name}"; fi
  done
  if [ -f "$f" ] && ( echo pwned >> "$f" ) 2>/dev/null; then echo "WROTE $f"; fi
done"#
    );
    let out = spawn_with(&env, &copy, &["exec", &c.id, "sh", "-c", &attack]).wait().ok();
    drop(c);
    assert!(fs::read(&copy).unwrap() == before, "the runtime binary was written through the waiting init's /proc/1/exe:\n{out}");
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "untouched\n", "a host file was written through the waiting init's fds:\n{out}");
    assert_eq!(fs::read_to_string(&caller_decoy).unwrap(), "untouched\n", "the caller's fd reached the container:\n{out}");
    // The probe saw the init's fds at all (else it proves nothing).
    assert!(out.stdout.contains("fd 0 "), "{out}");
    if is_fdbox() {
        for line in out.stdout.lines().filter(|l| l.starts_with("fd ")) {
            let mut f = line.split_whitespace().skip(1);
            let (n, target) = (f.next().unwrap_or_default().parse::<i32>().unwrap_or(-1), f.next().unwrap_or_default());
            assert!(n <= 2 || target.starts_with("socket:"), "the waiting init holds fd {n} → {target}:\n{out}");
        }
        assert!(!out.stdout.contains("WROTE"), "{out}");
    }
    env.assert_clean();
}

/// Copy the shared libraries `bin` is linked with (and its dynamic loader) into `rootfs` at
/// the same paths; nothing for a static binary.
fn give_rootfs_the_libraries_of(rootfs: &Path, bin: &Path) {
    if is_static_elf(bin).unwrap_or(false) {
        return;
    }
    let out = std::process::Command::new("ldd").arg(bin).output().expect("running ldd (for a dynamically linked runtime)");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(lib) = line.split_whitespace().find(|w| w.starts_with('/')) else { continue };
        let dst = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap_or_else(|e| panic!("copying {lib} into the rootfs: {e}"));
    }
}

/// CVE-2019-5736, the original exploit with the default capabilities: the container plants
/// `/bin/evil` whose first line is `#!/proc/self/exe`, and the operator runs `exec <id>
/// /bin/evil` until the attack held the runtime's binary 20 times. Each time the kernel runs the runtime's own binary inside the container
/// (as the interpreter of the script), as a dumpable container process. The container's init
/// watches /proc, opens each such process's `/proc/<pid>/exe`,
/// keeps the fd, and writes through it once the process has exited. The runtime binary (a copy:
/// see [`runtime_copy`]) must be unchanged.
#[test]
fn shebang_proc_self_exe_cannot_overwrite_the_runtime() {
    let Some(env) = Env::new("cve-2019-5736-shebang") else { return };
    let copy = runtime_copy(&env);
    let before = fs::read(&copy).unwrap();
    let rootfs = env.writable_rootfs();
    // The image carries the libraries the runtime's binary needs (a glibc image), so that the
    // kernel can run that binary inside the container.
    give_rootfs_the_libraries_of(&rootfs, &copy);
    let bundle = env.bundle.to_string_lossy().into_owned();
    // Builtins only while it watches (a glob of /proc, an open of each new process's exe);
    // a process it held is not tried again.
    let attacker = r#"printf '#!/proc/self/exe\n' > /bin/evil; chmod 755 /bin/evil; echo planted
last=1
while :; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" -gt "$last" ] || continue
    if { command exec 3<$d/exe; } 2>/dev/null; then
      last=$p; i=0; w=no
      while [ $i -lt 3000 ]; do
        if { command echo pwned >/proc/self/fd/3; } 2>/dev/null; then w=yes; break; fi
        i=$((i+1))
      done
      echo "held $p wrote=$w exe=$(readlink /proc/self/fd/3)"
      exec 3<&-
    fi
  done
done"#;
    env.sh(attacker);
    env.write_config();
    let c = env.container("shebang");
    let create = spawn_with(&env, &copy, &["create", "--bundle", &bundle, &c.id]);
    let container_stdout = create.stdout_path.clone();
    create.wait().ok();
    spawn_with(&env, &copy, &["start", &c.id]).wait().ok();
    wait_until(TIMEOUT, "the attacker to plant /bin/evil", || fs::read_to_string(&container_stdout).ok().filter(|s| s.contains("planted")));
    // Execs until the attacker held the runtime's binary 20 times (on a loaded machine it may
    // miss a short-lived process now and then), 60 at most.
    const HOLDS: usize = 20;
    const MAX_EXECS: usize = 60;
    let holds = || fs::read_to_string(&container_stdout).unwrap_or_default().matches("held ").count();
    let mut execs = 0;
    while holds() < HOLDS && execs < MAX_EXECS && fs::read(&copy).unwrap() == before {
        let n = holds();
        // The exec "fails": the runtime's binary, run with the script as argument, refuses it.
        spawn_with(&env, &copy, &["exec", &c.id, "/bin/evil"]).wait();
        execs += 1;
        // The attacker reports a hold once it gave up writing.
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        while holds() == n && std::time::Instant::now() < deadline && fs::read(&copy).unwrap() == before {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let seen = fs::read_to_string(&container_stdout).unwrap_or_default();
    drop(c);
    assert!(fs::read(&copy).unwrap() == before, "the runtime binary was overwritten from inside the container:\n{seen}");
    let held = seen.lines().filter(|l| l.starts_with("held ")).count();
    assert!(held >= HOLDS, "the attack reached the interpreter {held} times in {execs} execs (the test would prove little):\n{seen}");
    assert!(!seen.contains("wrote=yes"), "{seen}");
    env.assert_clean();
}

/// Socket activation: `LISTEN_FDS=2` for the runtime's own pid passes fds 3 and 4 (and
/// nothing above) with `LISTEN_FDS=2 LISTEN_PID=1`; `--preserve-fds 1` then passes one more.
/// Fds meant for another process (LISTEN_PID elsewhere) are not passed at all.
#[test]
fn socket_activation_and_preserve_fds_pass_exactly_their_fds() {
    let Some(env) = Env::new("listen-fds") else { return };
    let file = env.dir.join("activation");
    fs::write(&file, "socket-activated\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    env.sh("echo fds=$(ls /proc/self/fd | sort -n | tr '\\n' ' '); echo env=$LISTEN_FDS/$LISTEN_PID; cat <&3 2>/dev/null || echo no-fd3");
    env.write_config();
    let bundle = env.bundle.to_string_lossy().into_owned();
    for (listen_pid, preserve, want_fds, want_env, want_fd3) in [
        ("$$", None, vec![0, 1, 2, 3, 4], "env=2/1", "socket-activated"),
        ("$$", Some("1"), vec![0, 1, 2, 3, 4, 5], "env=2/1", "socket-activated"),
        ("1", None, vec![0, 1, 2], "env=/", "no-fd3"),
    ] {
        let wrapper = format!("exec 3<\"$0\" 4<\"$0\" 5<\"$0\" 6<\"$0\"; export LISTEN_FDS=2 LISTEN_PID={listen_pid}; exec \"$@\"");
        let c = env.container("listen");
        let mut args = vec!["run", "--bundle", &bundle];
        if let Some(n) = preserve {
            args.extend(["--preserve-fds", n]);
        }
        args.push(&c.id);
        let out = env.spawn_via(&["sh", "-c", &wrapper, &file], &args).wait().ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        let fds = fd_numbers(lines[0].trim_start_matches("fds="));
        assert_eq!(&fds[..fds.len() - 1], want_fds, "LISTEN_PID={listen_pid} preserve={preserve:?}: {out}");
        assert_eq!(lines[1], want_env, "{out}");
        assert_eq!(lines[2], want_fd3, "{out}");
        drop(c);
    }
    env.assert_clean();
}

/// Receive `count` datagrams (with any fds they carry, which are closed at once: that is
/// how a receiver acknowledges the sd_notify barrier) within `TIMEOUT`.
fn receive_datagrams(sock: std::os::unix::net::UnixDatagram, count: usize) -> std::thread::JoinHandle<Vec<(String, usize)>> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    std::thread::spawn(move || {
        let mut got = vec![];
        while got.len() < count {
            let mut buf = vec![0u8; 4096];
            let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let Ok(msg) = recvmsg(&sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) else { break };
            let mut fds = 0;
            for cmsg in control.drain() {
                if let RecvAncillaryMessage::ScmRights(rights) = cmsg {
                    fds += rights.count();
                }
            }
            got.push((String::from_utf8_lossy(&buf[..msg.bytes]).into_owned(), fds));
        }
        got
    })
}

/// NOTIFY_SOCKET, proxied as runc does: the container gets `/run/notify/notify.sock` (never
/// the host's socket), `start` returns only once the container sent `READY=1`, and the host's
/// socket then receives `READY=1`, `MAINPID=<init pid>` and the barrier.
#[test]
fn notify_socket_is_proxied() {
    let Some(env) = Env::new("notify-socket") else { return };
    // busybox cannot send a datagram: the container uses the host's python, bound in.
    if !Path::new("/usr/bin/python3").exists() || !Path::new("/usr/lib64").exists() {
        assert!(!in_ci(), "the NOTIFY_SOCKET test needs /usr/bin/python3 on the host");
        return skip("no /usr/bin/python3 (and /usr/lib64) on the host to send sd_notify from inside");
    }
    let rootfs = env.writable_rootfs();
    std::os::unix::fs::symlink("usr/lib", rootfs.join("lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib64", rootfs.join("lib64")).unwrap();
    fs::create_dir_all(rootfs.join("usr")).unwrap();
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]}))
    });
    let notify = "import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
                  p = os.environ['NOTIFY_SOCKET']; s.sendto(b'STATUS=starting', p); s.sendto(b'READY=1', p)";
    env.sh(&format!("echo sock=$NOTIFY_SOCKET; ls /run/notify; sleep 1; /usr/bin/python3 -c \"{notify}\" && echo notified; exec sleep 600"));
    env.write_config();
    let bundle = env.bundle.to_string_lossy().into_owned();

    let host_sock = env.dir.join("host-notify.sock");
    // runc 1.1 predates the barrier (runc 1.2 sends it).
    let count = if is_runc() { 2 } else { 3 };
    let receiver = receive_datagrams(std::os::unix::net::UnixDatagram::bind(&host_sock).unwrap(), count);
    let with_notify = format!("NOTIFY_SOCKET={}", host_sock.display());
    let c = env.container("notify");
    let create = env.spawn_via(&["env", &with_notify], &["create", "--bundle", &bundle, &c.id]);
    let container_stdout = create.stdout_path.clone();
    create.wait().ok();
    let started = std::time::Instant::now();
    env.spawn_via(&["env", &with_notify], &["start", &c.id]).wait().ok();
    let took = started.elapsed();
    // The container sleeps a second before it notifies.
    assert!(took >= Duration::from_secs(1), "start returned before the container was ready ({took:?})");
    let got = receiver.join().unwrap();
    let text = wait_until(TIMEOUT, "the container's output", || {
        fs::read_to_string(&container_stdout).ok().filter(|t| t.contains("notified"))
    });
    let pid = c.pid();
    let want = [("READY=1\n".to_string(), 0), (format!("MAINPID={pid}\n"), 0), ("BARRIER=1".to_string(), 1)];
    assert_eq!(got, want[..count], "what the host's NOTIFY_SOCKET received");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sock=/run/notify/notify.sock"), "{text}");
    assert_eq!(lines.next(), Some("notify.sock"), "{text}");
    drop(c);
    env.assert_clean();
}

/// The capability masks of a `/proc/PID/status` text.
fn cap_masks(status: &str) -> Vec<(String, u64)> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.starts_with("Cap").then(|| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap_or(u64::MAX)))
        })
        .collect()
}

const CAP_KILL: u32 = 5;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;

/// Capabilities outside the configured sets are absent from every set in /proc/self/status
/// (bounding included, so nothing can regain them), and a privileged operation that needs one
/// of them fails.
#[test]
fn capabilities_outside_the_set_are_absent() {
    let Some(env) = Env::new("caps-absent") else { return };
    env.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
               "inheritable": [], "ambient": []}),
    );
    env.sh("cat /proc/self/status; if hostname escaped 2>/dev/null; then echo HOSTNAME-CHANGED; else echo hostname-denied; fi");
    let c = env.container("caps");
    let out = c.run(&[]).ok();
    let masks = cap_masks(&out.stdout);
    let get = |k: &str| masks.iter().find(|(n, _)| n == k).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {k}: {out}"));
    // sh is the container process; cat is its child (execve without file caps keeps only
    // what the ambient set carries, so the child's sets are at most the parent's).
    assert_eq!(get("CapBnd"), (1 << CAP_KILL) | (1 << CAP_NET_BIND_SERVICE), "{out}");
    assert_eq!(get("CapInh"), 0, "{out}");
    assert_eq!(get("CapAmb"), 0, "{out}");
    assert_eq!(get("CapPrm") & !(1 << CAP_KILL), 0, "{out}");
    assert_eq!(get("CapEff") & !(1 << CAP_KILL), 0, "{out}");
    assert!(out.stdout.contains("hostname-denied"), "CAP_SYS_ADMIN was usable: {out}");
    drop(c);
    env.assert_clean();
}

/// no_new_privs blocks a privilege gain through execve: a non-root container process runs a
/// binary with file capabilities (CAP_NET_RAW, within its bounding set). Without
/// no_new_privs it gains the capability; with it, it does not.
#[test]
fn no_new_privs_blocks_a_privilege_gain() {
    let Some(env) = Env::new("nnp-gain") else { return };
    let rootfs = env.writable_rootfs();
    // Named busybox (it picks the applet from argv[1] only under that name).
    fs::create_dir(rootfs.join("opt")).unwrap();
    let capbox = rootfs.join("opt/busybox");
    fs::copy(rootfs.join("bin/busybox"), &capbox).unwrap();
    // struct vfs_cap_data, revision 2, effective: permitted = CAP_NET_RAW.
    let mut xattr = vec![];
    for word in [0x0200_0001u32, 1 << CAP_NET_RAW, 0, 0, 0] {
        xattr.extend_from_slice(&word.to_le_bytes());
    }
    if let Err(e) = rustix::fs::setxattr(&capbox, "security.capability", &xattr, rustix::fs::XattrFlags::empty()) {
        assert!(!in_ci(), "setting a file capability in the test dir failed: {e}");
        return skip(&format!("file capabilities are not supported under {}: {e}", env.dir.display()));
    }
    env.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    env.set(
        "/process/capabilities",
        json!({"bounding": ["CAP_NET_RAW"], "effective": [], "permitted": [], "inheritable": [], "ambient": []}),
    );
    env.args(&["/opt/busybox", "grep", "^CapEff", "/proc/self/status"]);
    for (nnp, gains) in [(false, true), (true, false)] {
        env.set("/process/noNewPrivileges", json!(nnp));
        let c = env.container("nnp");
        let out = c.run(&[]).ok();
        let eff = cap_masks(&out.stdout).first().map(|(_, v)| *v).unwrap_or_else(|| panic!("no CapEff: {out}"));
        assert_eq!(eff & (1 << CAP_NET_RAW) != 0, gains, "noNewPrivileges={nnp}: CapEff {eff:#x}: {out}");
        drop(c);
    }
    env.assert_clean();
}

//! Process attributes, each checked from inside a real container: oomScoreAdj, linux.sysctl
//! (only in namespaces the container owns, never redirectable by its mounts), personality,
//! scheduler, ioPriority, umask, time namespace offsets, and the LSM labels (a clear error
//! where the LSM is absent).

use fdbox_tests::*;
use std::fs;

/// Fields of /proc/PID/stat after the command name (index 0 is field 3, the state).
fn stat_fields(stat: &str) -> Vec<String> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

fn has_cap(cap: u32) -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    eff & (1 << cap) != 0
}

const CAP_SYS_RESOURCE: u32 = 24;

/// Whether the runtime under test is runc older than 1.2 (which lacks several of these).
fn old_runc(env: &Env) -> bool {
    is_runc() && {
        let v = env.rt_bare(&["--version"], &env.dir).stdout;
        v.lines().next().is_some_and(|l| l.contains("version 1.0") || l.contains("version 1.1"))
    }
}

/// Raising `oomScoreAdj` works, for the container process and for an `exec -p` process.
#[test]
fn oom_score_adj_raised() {
    let Some(env) = Env::new("oom-raise") else { return };
    env.set("/process/oomScoreAdj", json!(500));
    env.sh("cat /proc/self/oom_score_adj; exec sleep 600");
    let c = env.container("oom");
    c.create(&[]).ok();
    c.start().ok();
    c.wait_for_stdout("500");
    assert_eq!(fs::read_to_string(format!("/proc/{}/oom_score_adj", c.pid())).unwrap().trim(), "500");
    let process = json!({"args": ["cat", "/proc/self/oom_score_adj"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                         "env": ["PATH=/bin"], "oomScoreAdj": 700});
    let path = env.dir.join("process.json");
    fs::write(&path, process.to_string()).unwrap();
    let out = env.rt(&["exec", "-p", path.to_str().unwrap(), &c.id]).ok();
    // runc 1.1 gives an exec'd process the container's value instead.
    if is_fdbox() {
        assert_eq!(out.stdout.trim(), "700", "{out}");
    }
    drop(c);
    env.assert_clean();
}

/// Lowering `oomScoreAdj` below the current value needs CAP_SYS_RESOURCE, which this host's
/// root lacks: create fails with one clear line and leaves nothing.
#[test]
fn oom_score_adj_lowered_without_cap_sys_resource() {
    let Some(env) = Env::new("oom-lower") else { return };
    env.set("/process/oomScoreAdj", json!(-500));
    env.sh("cat /proc/self/oom_score_adj");
    let c = env.container("oom");
    if has_cap(CAP_SYS_RESOURCE) {
        // With the capability lowering is allowed, and must work.
        let out = c.run(&[]).ok();
        assert_eq!(out.stdout.trim(), "-500", "{out}");
        return skip("this host has CAP_SYS_RESOURCE: only the success path was checked");
    }
    let out = c.create(&[]).fails_with_one_line();
    if is_fdbox() {
        assert!(out.stderr.contains("CAP_SYS_RESOURCE") && out.stderr.contains("oomScoreAdj"), "{out}");
    }
    drop(c);
    env.assert_clean();
}

/// Namespaced sysctls are set in the container's namespaces (net, ipc, uts) and the host's
/// values are untouched.
#[test]
fn sysctl_in_the_container_namespaces() {
    let Some(env) = Env::new("sysctl") else { return };
    let host_before: Vec<String> = ["net/ipv4/ip_forward", "kernel/shmmni", "kernel/domainname", "net/ipv4/ping_group_range"]
        .iter()
        .map(|p| fs::read_to_string(format!("/proc/sys/{p}")).unwrap())
        .collect();
    env.set(
        "/linux/sysctl",
        json!({
            "net.ipv4.ip_forward": "1",
            "net.ipv4.ping_group_range": "0 1000",
            "kernel.shmmni": "1234",
            "kernel.domainname": "sysctl.example",
        }),
    );
    env.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range /proc/sys/kernel/shmmni /proc/sys/kernel/domainname");
    let c = env.container("sysctl");
    let out = c.run(&[]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["0", "1000"], "{out}");
    assert_eq!(&lines[2..], ["1234", "sysctl.example"], "{out}");
    let host_after: Vec<String> = ["net/ipv4/ip_forward", "kernel/shmmni", "kernel/domainname", "net/ipv4/ping_group_range"]
        .iter()
        .map(|p| fs::read_to_string(format!("/proc/sys/{p}")).unwrap())
        .collect();
    assert_eq!(host_before, host_after, "a container sysctl changed the host");
    drop(c);
    env.assert_clean();
}

/// Sysctls that are global, or whose namespace the container does not own, are refused
/// before anything is created.
#[test]
fn sysctl_outside_the_container_namespaces_is_refused() {
    let Some(env) = Env::new("sysctl-refused") else { return };
    let host_swappiness = fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let without_net: Vec<Value> = env.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] != "network")
        .cloned()
        .collect();
    for (sysctl, namespaces) in [
        (json!({"vm.swappiness": "1"}), None),
        (json!({"kernel.pid_max": "4194304"}), None),
        (json!({"net.ipv4.ip_forward": "1"}), Some(json!(without_net))),
        (json!({"net.ipv4.ip_forward": "1"}), Some(json!([{"type": "mount"}, {"type": "pid"}, {"type": "network", "path": "/proc/self/ns/net"}]))),
    ] {
        let saved = env.config();
        env.set("/linux/sysctl", sysctl.clone());
        if let Some(ns) = namespaces {
            env.set("/linux/namespaces", ns);
        }
        let c = env.container("refused");
        c.create(&[]).fails_with_one_line();
        drop(c);
        env.edit(|cfg| *cfg = saved);
        env.assert_clean();
    }
    assert_eq!(fs::read_to_string("/proc/sys/vm/swappiness").unwrap(), host_swappiness);
}

/// The CVE-2025-52881 class: the config binds a host file over the very procfs file a sysctl
/// names. The value must reach the container's network namespace, never the bound file.
#[test]
fn sysctl_is_not_redirected_by_a_mount_over_proc() {
    let Some(env) = Env::new("sysctl-redirect") else { return };
    let decoy = env.dir.join("decoy");
    fs::write(&decoy, "untouched\n").unwrap();
    env.set("/linux/sysctl", json!({"net.ipv4.ip_forward": "1"}));
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind", "source": decoy, "options": ["bind", "rw"]
        }))
    });
    env.sh("echo up; exec sleep 600");
    let c = env.container("redirect");
    let out = c.create(&[]);
    if out.success() {
        c.start().ok();
        c.wait_for_stdout("up");
        // The container's own network namespace got the value (read from the host side,
        // under the container's netns, where no bind covers /proc/sys).
        let ns = format!("--net=/proc/{}/ns/net", c.pid());
        let read = std::process::Command::new("nsenter").args([ns.as_str(), "cat", "/proc/sys/net/ipv4/ip_forward"]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "1", "the sysctl did not reach the container's netns");
    }
    // Refusing the mount is fine too; writing through it is not.
    assert_eq!(fs::read_to_string(&decoy).unwrap(), "untouched\n", "the sysctl was written through the bind mount: {out}");
    drop(c);
    env.assert_clean();
}

/// `linux.personality` LINUX32 makes `uname -m` report the 32-bit machine; LINUX leaves it.
#[test]
fn personality_linux32() {
    let Some(env) = Env::new("personality") else { return };
    if old_runc(&env) {
        return skip("runc < 1.2 has no linux.personality");
    }
    let host = std::process::Command::new("uname").arg("-m").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    if host != "x86_64" {
        return skip(&format!("LINUX32 is checked on x86_64 only (this is {host})"));
    }
    env.args(&["uname", "-m"]);
    for (domain, want) in [("LINUX32", "i686"), ("LINUX", "x86_64")] {
        env.set("/linux/personality", json!({"domain": domain}));
        let c = env.container("pers");
        let out = c.run(&[]).ok();
        assert_eq!(out.stdout.trim(), want, "{domain}: {out}");
    }
    env.assert_clean();
}

/// `process.scheduler`: policy and nice (SCHED_BATCH, SCHED_IDLE) as the kernel reports them
/// in /proc/self/stat (field 19 nice, field 41 policy).
#[test]
fn scheduler_policy_and_nice() {
    let Some(env) = Env::new("scheduler") else { return };
    if old_runc(&env) {
        return skip("runc < 1.2 has no process.scheduler");
    }
    env.args(&["cat", "/proc/self/stat"]);
    for (sched, policy, nice) in [
        (json!({"policy": "SCHED_BATCH", "nice": 7}), "3", "7"),
        (json!({"policy": "SCHED_IDLE"}), "5", "0"),
        (json!({"policy": "SCHED_OTHER", "nice": -5}), "0", "-5"),
    ] {
        env.set("/process/scheduler", sched.clone());
        let c = env.container("sched");
        let out = c.run(&[]).ok();
        let f = stat_fields(&out.stdout);
        assert_eq!((f[16].as_str(), f[38].as_str()), (nice, policy), "{sched}: {out}");
    }
    // Invalid parameters are refused with one line.
    env.set("/process/scheduler", json!({"policy": "SCHED_FIFO"}));
    let c = env.container("sched-bad");
    c.create(&[]).fails_with_one_line();
    drop(c);
    env.assert_clean();
}

/// `process.ioPriority`, as `ionice` inside reports it.
#[test]
fn io_priority() {
    let Some(env) = Env::new("ioprio") else { return };
    if old_runc(&env) {
        return skip("runc < 1.2 has no process.ioPriority");
    }
    env.args(&["ionice", "-p", "1"]);
    for (class, prio, want) in [("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"), ("IOPRIO_CLASS_IDLE", 0, "idle")] {
        env.set("/process/ioPriority", json!({"class": class, "priority": prio}));
        let c = env.container("io");
        let out = c.run(&[]).ok();
        assert_eq!(out.stdout.trim(), want, "{class}: {out}");
    }
    env.assert_clean();
}

/// `process.user.umask` is the umask of the container process (and of what it creates).
#[test]
fn umask_applies() {
    let Some(env) = Env::new("umask") else { return };
    env.set("/process/user/umask", json!(0o027));
    env.sh("umask; touch /tmp/f; mkdir /tmp/d; stat -c %a /tmp/f /tmp/d");
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}))
    });
    let c = env.container("umask");
    let out = c.run(&[]).ok();
    assert_eq!(out.stdout, "0027\n640\n750\n", "{out}");
    env.assert_clean();
}

/// A time namespace with `linux.timeOffsets`: the container's (and an exec'd process's)
/// boottime and monotonic clocks are shifted; the host's are not.
#[test]
fn time_namespace_offsets() {
    let Some(env) = Env::new("timens") else { return };
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        return skip("kernel without time namespaces");
    }
    if old_runc(&env) {
        return skip("runc < 1.2 has no time namespace");
    }
    const BOOT: u64 = 10_000_000;
    env.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({"type": "time"})));
    env.set("/linux/timeOffsets", json!({"boottime": {"secs": BOOT, "nanosecs": 0}, "monotonic": {"secs": 2 * BOOT, "nanosecs": 5}}));
    env.sh("cat /proc/uptime; cat /proc/self/timens_offsets; readlink /proc/self/ns/time; exec sleep 600");
    let c = env.container("time");
    c.create(&[]).ok();
    c.start().ok();
    let text = c.wait_for_stdout("time:[");
    let lines: Vec<&str> = text.lines().collect();
    let uptime: f64 = lines[0].split_whitespace().next().unwrap().parse().unwrap();
    let host_uptime: f64 = fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime >= BOOT as f64 && uptime < BOOT as f64 + host_uptime + 60.0, "uptime {uptime} in the container: {text}");
    let offsets: Vec<Vec<&str>> = lines[1..3].iter().map(|l| l.split_whitespace().collect()).collect();
    assert!(offsets.contains(&vec!["monotonic", "20000000", "5"]), "{text}");
    assert!(offsets.contains(&vec!["boottime", "10000000", "0"]), "{text}");
    assert_ne!(lines[3], host_ns("time"), "the container is in the host's time namespace");
    assert_eq!(readlink(format!("/proc/{}/ns/time", c.pid())), lines[3]);
    // An exec'd process joins it.
    let out = env.rt(&["exec", &c.id, "cat", "/proc/uptime"]).ok();
    let exec_uptime: f64 = out.stdout.split_whitespace().next().unwrap().parse().unwrap();
    assert!(exec_uptime >= BOOT as f64, "exec is not in the time namespace: {out}");
    // The runtime went back to its own time namespace: its hooks and the host are unshifted.
    let host_now: f64 = fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(host_now < BOOT as f64);
    drop(c);

    // Offsets without a time namespace are refused.
    env.edit(|c| c["linux"]["namespaces"].as_array_mut().unwrap().retain(|n| n["type"] != "time"));
    let c = env.container("time-bad");
    c.create(&[]).fails_with_one_line();
    drop(c);
    env.assert_clean();
}

fn lsm_active(name: &str) -> bool {
    if let Ok(list) = fs::read_to_string("/sys/kernel/security/lsm") {
        return list.trim().split(',').any(|l| l == name);
    }
    match name {
        "apparmor" => fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with('Y')),
        _ => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
    }
}

/// `apparmorProfile` / `selinuxLabel` on a host without that LSM: one clear error line, for
/// create and for `exec -p`, and nothing left behind.
#[test]
fn lsm_labels_without_the_lsm_are_refused() {
    let Some(env) = Env::new("lsm") else { return };
    for (field, value, lsm) in [("apparmorProfile", "fdbox-test-profile", "apparmor"), ("selinuxLabel", "system_u:system_r:container_t:s0", "selinux")] {
        if lsm_active(lsm) {
            skip(&format!("{lsm} is enabled on this host: its missing-LSM error cannot be checked"));
            continue;
        }
        let saved = env.config();
        env.set(&format!("/process/{field}"), json!(value));
        let c = env.container("lsm");
        let out = c.create(&[]);
        if is_runc() && out.success() {
            // runc 1.1 silently ignores a label for an absent LSM.
            drop(c);
            env.edit(|cfg| *cfg = saved);
            continue;
        }
        let out = out.fails_with_one_line();
        if is_fdbox() {
            assert!(out.stderr.contains(field) && out.stderr.contains("not enabled"), "{out}");
        }
        drop(c);
        env.edit(|cfg| *cfg = saved.clone());

        // exec -p with the label, into a container without one.
        env.sh("exec sleep 600");
        let c = env.container("lsm-exec");
        c.create(&[]).ok();
        c.start().ok();
        let process = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, field: value});
        let path = env.dir.join("process.json");
        fs::write(&path, process.to_string()).unwrap();
        env.rt(&["exec", "-p", path.to_str().unwrap(), &c.id]).fails_with_one_line();
        drop(c);
        env.edit(|cfg| *cfg = saved.clone());
        env.assert_clean();
    }
}

//! Root tests of [`OomWatcher`] against the host's cgroups, in the style of
//! host.rs: everything below an own parent `/fdbox-oomtest-<pid>-<n>`,
//! removed (with the processes the test started) by a guard, also when the
//! test fails.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fdbox_cgroups::{detect, Cgroup, OomWatcher, Pid, Signal};
use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};
use rustix::event::{poll, PollFd, Timespec};
use rustix::process::PidfdFlags;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn mountpoints() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            matches!(f[sep + 1], "cgroup" | "cgroup2").then(|| f[4].to_string())
        })
        .collect()
}

struct Guard {
    parent: String,
    child: Option<Child>,
}

impl Guard {
    fn new() -> Guard {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Guard { parent: format!("/fdbox-oomtest-{}-{n}", std::process::id()), child: None }
    }

    fn leftovers(&self) -> Vec<String> {
        mountpoints()
            .into_iter()
            .map(|mp| format!("{mp}{}", self.parent))
            .filter(|p| std::path::Path::new(p).exists())
            .collect()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for mp in mountpoints() {
            for p in [format!("{mp}{}/c", self.parent), format!("{mp}{}", self.parent)] {
                for _ in 0..100 {
                    match std::fs::remove_dir(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => std::thread::sleep(Duration::from_millis(20)),
                        _ => break,
                    }
                }
            }
        }
    }
}

fn readable(w: &OomWatcher, timeout: Duration) -> bool {
    let ts = Timespec { tv_sec: timeout.as_secs() as _, tv_nsec: 0 };
    let mut fds = [PollFd::new(w, w.poll_flags())];
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

fn pidfd(child: &Child) -> OwnedFd {
    rustix::process::pidfd_open(Pid::from_raw(child.id() as i32).expect("pid"), PidfdFlags::empty()).expect("pidfd_open")
}

#[test]
fn watcher_of_a_process_reports_each_oom_kill_and_ends_with_the_cgroup() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: cgroup tests need root");
        return;
    }
    let mut g = Guard::new();
    let layout = detect().expect("detect");
    let mem = LinuxMemoryBuilder::default().limit(16i64 << 20).swap(16i64 << 20).build().expect("memory");
    let r = LinuxResourcesBuilder::default().memory(mem).build().expect("resources");
    let cg = Cgroup::create(layout, Some(&format!("{}/c", g.parent)), "t", Some(&r)).expect("create");
    // Each line on stdin: a dd whose 64 MiB buffer is OOM-killed; the shell goes on.
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg("while read _go; do dd if=/dev/zero of=/dev/null bs=64M count=1; done")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id() as i32;
    g.child = Some(child);
    cg.attach(Pid::from_raw(pid).expect("pid")).expect("attach");
    let fd = pidfd(g.child.as_ref().expect("child"));
    let Some(mut w) = OomWatcher::of_process(rustix::fd::AsFd::as_fd(&fd), pid).expect("watch") else {
        println!("skipped: no memory controller for the test cgroup");
        return;
    };
    assert!(w.label().ends_with(&format!("{}/c", g.parent)), "{}", w.label());
    assert!(!w.check().expect("first check"), "no OOM kill yet");

    for round in 1..=2 {
        let stdin = g.child.as_mut().and_then(|c| c.stdin.as_mut()).expect("stdin");
        stdin.write_all(b"go\n").expect("release");
        stdin.flush().expect("flush");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while !seen && Instant::now() < deadline {
            if readable(&w, Duration::from_secs(1)) {
                seen = w.check().expect("check");
            }
        }
        assert!(seen, "OOM kill {round} reported (oom_kill {:?})", cg.oom_kill_count());
        // v1 notifies just before the kill is counted.
        let counted = Instant::now() + Duration::from_secs(5);
        while cg.oom_kill_count().expect("count") < round && Instant::now() < counted {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(cg.oom_kill_count().expect("count"), round);
        assert!(!w.check().expect("again"), "one report per kill");
    }

    // The init is gone; its cgroup removed: the watch ends with an error,
    // never with a report.
    if let Some(c) = &mut g.child {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(OomWatcher::of_process(rustix::fd::AsFd::as_fd(&fd), pid).is_err(), "an exited process is refused");
    cg.kill_all(Signal::KILL).expect("kill rest");
    cg.destroy().expect("destroy");
    if readable(&w, Duration::from_secs(2)) {
        assert!(w.check().is_err(), "the cgroup's removal is not an OOM kill");
    } else {
        assert!(w.check().is_err(), "the removed cgroup cannot be read");
    }
    assert!(g.leftovers().is_empty(), "{:?}", g.leftovers());
}

//! `make soak`: many sequential `fdbox run`s of /bin/true, watching for
//! hangs and for anything left behind (state dirs, cgroups, mounts,
//! processes).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::cgroups_named;
use crate::bundle;
use crate::env::{self, WorkDir};
use crate::error::{Error, IoContext, Result};
use crate::proc;
use crate::stats::summarize;

pub struct Opts {
    pub fdbox: PathBuf,
    pub busybox: PathBuf,
    pub n: usize,
    pub timeout: Duration,
}

fn mountinfo() -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").io("read", "/proc/self/mountinfo")?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Every directory under a `fdbox` directory of any mounted hierarchy
/// (`/sys/fs/cgroup/<hierarchy>/fdbox/…`, and `/sys/fs/cgroup/fdbox/…` on
/// a pure v2 host), up to four levels below it.
fn fdbox_cgroups() -> BTreeSet<String> {
    fn walk(dir: &Path, depth: usize, out: &mut BTreeSet<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(e.path().display().to_string());
                if depth > 0 {
                    walk(&e.path(), depth - 1, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    let base = Path::new("/sys/fs/cgroup");
    let mut tops = vec![base.join("fdbox")];
    if let Ok(rd) = std::fs::read_dir(base) {
        tops.extend(rd.flatten().map(|e| e.path().join("fdbox")));
    }
    for t in tops {
        walk(&t, 4, &mut out);
    }
    out
}

fn delete_force(fdbox: &Path, root: &Path, id: &str, timeout: Duration) {
    let mut c = Command::new(fdbox);
    c.arg("--root").arg(root).args(["delete", "-f", id]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let _ = proc::run(&mut c, timeout);
}

/// Run the soak; returns whether it was clean (no hang, failure or leak).
pub fn run(o: &Opts) -> Result<bool> {
    env::isolate(false)?;
    env::become_subreaper()?;
    let work = WorkDir::new("fdbox-soak")?;
    let rootfs = work.path().join("rootfs");
    bundle::make_rootfs(&rootfs, &o.busybox)?;
    let bundle = bundle::make_bundle(&o.fdbox, &work.path().join("bundle"), &rootfs, &["/bin/true"])?;
    let root = work.path().join("state");
    std::fs::create_dir_all(&root).io("mkdir", &root)?;
    let err = work.path().join("stderr.log");
    let prefix = format!("soak{}", std::process::id());

    let mounts_before = mountinfo()?;
    let cgroups_before = fdbox_cgroups();
    let mut times = Vec::with_capacity(o.n);
    let mut hangs = Vec::new();
    let mut failures: Vec<(usize, String)> = Vec::new();
    let mut leaked_state = Vec::new();
    let mut orphans = 0usize;
    let t0 = Instant::now();
    let every = (o.n / 20).max(1);
    for i in 0..o.n {
        let id = format!("{prefix}-{i}");
        let errf = File::create(&err).io("create", &err)?;
        let mut cmd = Command::new(&o.fdbox);
        cmd.arg("--root").arg(&root).args(["run", "--bundle"]).arg(&bundle).arg(&id);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(errf);
        match proc::run(&mut cmd, o.timeout) {
            Ok(out) => {
                times.push(out.wall.as_secs_f64() * 1e3);
                if out.reaped.code != 0 {
                    failures.push((i, format!("exit {}: {}", out.reaped.code, proc::tail(&err))));
                }
            }
            Err(Error::Timeout { .. }) => {
                hangs.push(i);
                // The runtime was killed; its container is removed the way a user would.
                delete_force(&o.fdbox, &root, &id, o.timeout);
            }
            Err(e) => failures.push((i, e.to_string())),
        }
        if root.join(&id).exists() {
            leaked_state.push(id.clone());
            delete_force(&o.fdbox, &root, &id, o.timeout);
        }
        orphans += proc::reap_strays();
        if (i + 1) % every == 0 || i + 1 == o.n {
            let s = summarize(&times);
            eprintln!(
                "soak: {}/{} runs, {:.0} s, median {} ms, hangs {}, failures {}, leaked state {}, orphans {}",
                i + 1,
                o.n,
                t0.elapsed().as_secs_f64(),
                s.map(|s| format!("{:.2}", s.median)).unwrap_or_else(|| "-".into()),
                hangs.len(),
                failures.len(),
                leaked_state.len(),
                orphans
            );
        }
    }
    let elapsed = t0.elapsed();
    let mounts_after = mountinfo()?;
    let cgroups_after = fdbox_cgroups();
    let ours = cgroups_named(&prefix);
    let new_mounts: Vec<&String> = mounts_after.difference(&mounts_before).collect();
    let gone_mounts: Vec<&String> = mounts_before.difference(&mounts_after).collect();
    let new_cgroups: Vec<&String> = cgroups_after.difference(&cgroups_before).collect();
    let left_in_root: Vec<String> = std::fs::read_dir(&root)
        .io("readdir", &root)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();

    println!("soak: {} sequential `fdbox run` of /bin/true in {:.1} s ({})", o.n, elapsed.as_secs_f64(), o.fdbox.display());
    if let Some(s) = summarize(&times) {
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let p99 = sorted[((sorted.len() * 99) / 100).min(sorted.len() - 1)];
        println!("  run time: median {:.2} ms, min {:.2}, p99 {:.2}, max {:.2}", s.median, s.min, p99, s.max);
    }
    println!("  hangs (> {} s, killed): {} {:?}", o.timeout.as_secs(), hangs.len(), &hangs[..hangs.len().min(10)]);
    println!("  failed runs: {}", failures.len());
    for (i, m) in failures.iter().take(5) {
        println!("    run {i}: {m}");
    }
    println!("  leaked state dirs (still in --root after run): {} {:?}", leaked_state.len(), &leaked_state[..leaked_state.len().min(10)]);
    println!("  state root at the end: {} entries", left_in_root.len());
    println!("  leaked cgroups named {prefix}-*: {}", ours.len());
    for c in ours.iter().take(10) {
        println!("    {c}");
    }
    println!("  new dirs under /sys/fs/cgroup/*/fdbox (any user of this machine): {}", new_cgroups.len());
    for c in new_cgroups.iter().take(10) {
        println!("    {c}");
    }
    println!("  mountinfo: {} lines before, {} after; {} new, {} gone", mounts_before.len(), mounts_after.len(), new_mounts.len(), gone_mounts.len());
    for m in new_mounts.iter().take(10) {
        println!("    + {m}");
    }
    println!("  orphaned processes reparented to the soak and reaped: {orphans}");
    let clean = hangs.is_empty() && failures.is_empty() && leaked_state.is_empty() && left_in_root.is_empty() && ours.is_empty() && new_mounts.is_empty() && orphans == 0;
    println!("soak: {}", if clean { "clean" } else { "NOT clean" });
    Ok(clean)
}

//! `vm-tests`: fdbox's integration tests inside VMs booted from real Debian kernels.
//!
//! For every configured kernel ([`kernel::KERNELS`]): fetch the Debian package (cached under
//! `target/vm-tests/`), build an initramfs with busybox, fdbox and the statically linked test
//! executables, boot it under qemu (KVM when it works here, else TCG) with a scratch ext4 disk,
//! let `src/init.sh` run every test in its own process on a pure cgroup v2 machine, and read the
//! results off the serial console. Ends with one line `N passed, M failed, K skipped`.
//!
//! Usage: `vm-tests [--kernels 6.1,6.12] [--accel auto|kvm|tcg] [--timeout SECS]
//! [--test-timeout SECS] [--jobs N] [--filter TEXT] [--list]`; each option also reads an
//! environment variable (`VM_KERNELS`, `VM_ACCEL`, `VM_TIMEOUT`, `VM_TEST_TIMEOUT`, `VM_JOBS`,
//! `VM_FILTER`).

mod build;
mod cpio;
mod error;
mod image;
mod kernel;
mod qemu;
mod report;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use error::{msg, Context, Result};
use image::PlanEntry;
use kernel::{Kernel, KernelSpec, KERNELS};
use qemu::{Accel, Next, Vm};
use report::{Console, Counts, Event, Status, TestResult};

const USAGE: &str = "usage: vm-tests [--kernels LIST] [--accel auto|kvm|tcg] [--timeout SECS] \
[--test-timeout SECS] [--jobs N] [--filter TEXT] [--list]
  --kernels LIST      kernels to boot, comma or space separated (default: all; env VM_KERNELS)
  --accel MODE        kvm, tcg, or auto: kvm if a probe guest boots with it (env VM_ACCEL)
  --timeout SECS      limit for one kernel's whole run (default 1200; env VM_TIMEOUT)
  --test-timeout SECS limit for one test inside the VM (default 300; env VM_TEST_TIMEOUT)
  --jobs N            tests run at once in a VM (default 3; env VM_JOBS)
  --filter TEXT       only tests whose `<executable> <name>` contains TEXT (env VM_FILTER)
  --list              print the configured kernels and exit";

struct Options {
    kernels: Vec<&'static KernelSpec>,
    accel: String,
    timeout: Duration,
    test_timeout: u64,
    jobs: u32,
    filter: Option<String>,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vm-tests: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options() -> Result<Option<Options>> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut kernels = env("VM_KERNELS");
    let mut accel = env("VM_ACCEL").unwrap_or_else(|| "auto".into());
    let mut timeout = env("VM_TIMEOUT").unwrap_or_else(|| "1200".into());
    let mut test_timeout = env("VM_TEST_TIMEOUT").unwrap_or_else(|| "300".into());
    let mut jobs = env("VM_JOBS").unwrap_or_else(|| "3".into());
    let mut filter = env("VM_FILTER");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| msg(format!("{a} needs a value\n{USAGE}")))
        };
        match a.as_str() {
            "--kernels" => kernels = Some(value()?),
            "--accel" => accel = value()?,
            "--timeout" => timeout = value()?,
            "--test-timeout" => test_timeout = value()?,
            "--jobs" => jobs = value()?,
            "--filter" => filter = Some(value()?),
            "--list" => {
                for k in KERNELS {
                    println!(
                        "{}\t{} from {}",
                        k.name,
                        k.package,
                        k.suite.unwrap_or("the system's apt sources")
                    );
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            _ => return Err(msg(format!("unknown argument {a:?}\n{USAGE}"))),
        }
    }
    let kernels = match kernels {
        None => KERNELS.iter().collect(),
        Some(list) => list
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|name| {
                KERNELS.iter().find(|k| k.name == name).ok_or_else(|| {
                    let known: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
                    msg(format!(
                        "unknown kernel {name:?}; configured: {}",
                        known.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    if !matches!(accel.as_str(), "auto" | "kvm" | "tcg") {
        return Err(msg(format!("--accel {accel}: expected auto, kvm or tcg")));
    }
    let secs = |what: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| msg(format!("{what} {v:?}: expected seconds")))
    };
    Ok(Some(Options {
        kernels,
        accel,
        timeout: Duration::from_secs(secs("--timeout", &timeout)?),
        test_timeout: secs("--test-timeout", &test_timeout)?,
        jobs: jobs
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| msg(format!("--jobs {jobs:?}: expected 1 to 64")))?,
        filter,
    }))
}

/// The workspace root (this crate's parent) and cargo's target dir.
fn workspace() -> (PathBuf, PathBuf) {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("vm-tests/ has a parent")
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => ws.join(d),
        _ => ws.join("target"),
    };
    (ws, target)
}

/// The host tools the runner calls, with the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("mkfs.ext4", "e2fsprogs"),
    ("xz", "xz-utils"),
];

fn check_tools() -> Result<()> {
    // depmod and mkfs.ext4 live in sbin, which a user's PATH may lack.
    let mut path = std::env::var("PATH").unwrap_or_default();
    for sbin in ["/usr/sbin", "/sbin"] {
        if !path.split(':').any(|p| p == sbin) {
            path = format!("{path}:{sbin}");
        }
    }
    std::env::set_var("PATH", &path);
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| !path.split(':').any(|d| Path::new(d).join(tool).is_file()))
        .map(|(tool, pkg)| format!("{tool} (package {pkg})"))
        .collect();
    if !missing.is_empty() {
        return Err(msg(format!(
            "missing: {}; vm-tests/install-deps.sh installs them",
            missing.join(", ")
        )));
    }
    Ok(())
}

fn run() -> Result<bool> {
    let Some(opts) = parse_options()? else {
        return Ok(true);
    };
    let started = Instant::now();
    check_tools()?;
    let (ws, target) = workspace();
    let cache = target.join("vm-tests");
    fs::create_dir_all(&cache).ctx(|| format!("mkdir {}", cache.display()))?;
    let busybox = image::find_busybox()?;
    let (programs, missing) = image::host_programs()?;
    if !missing.is_empty() {
        println!(
            "vm-tests: not on this host, so not in the VMs: {}",
            missing.join(", ")
        );
    }

    let built = build::build(&ws, &target.join("vm-static"))?;
    let plan: Vec<PlanEntry> = built
        .exes
        .iter()
        .flat_map(|e| e.tests.iter().map(|t| (e.label.clone(), t.clone())))
        .filter(|(exe, name)| {
            opts.filter
                .as_ref()
                .is_none_or(|f| format!("{exe} {name}").contains(f.as_str()))
        })
        .collect();
    if plan.is_empty() {
        return Err(msg("no test to run (check --filter)"));
    }
    println!(
        "vm-tests: {} tests from {} executables; build done after {:.0} s",
        plan.len(),
        built.exes.len(),
        started.elapsed().as_secs_f64()
    );

    let kernels: Vec<(&KernelSpec, Result<Kernel>)> = opts
        .kernels
        .iter()
        .map(|spec| (*spec, kernel::prepare(spec, &cache)))
        .collect();
    let accel = match kernels.iter().find_map(|(_, k)| k.as_ref().ok()) {
        Some(k) => choose_accel(&opts.accel, k, &cache, &busybox)?,
        None => Accel::Tcg,
    };

    let mut reports = vec![];
    for (spec, k) in kernels {
        let report = match k {
            Ok(k) => run_kernel(
                &k,
                accel,
                &opts,
                &ws,
                &cache,
                (&busybox, &programs),
                &built,
                &plan,
            )?,
            Err(e) => {
                println!("[{}] cannot prepare the kernel: {e}", spec.name);
                let results = Console::default()
                    .finish(&plan, &format!("the kernel could not be prepared ({e})"));
                KernelReport {
                    title: spec.name.to_string(),
                    results,
                    notes: vec![format!("error: {e}")],
                }
            }
        };
        reports.push(report);
    }

    println!();
    println!(
        "vm-tests summary ({:.0} s in all):",
        started.elapsed().as_secs_f64()
    );
    let mut total = Counts::default();
    for r in &reports {
        let c = Counts::of(&r.results);
        println!("== {}: {}", r.title, c.line());
        for n in &r.notes {
            println!("   {n}");
        }
        for t in &r.results {
            match &t.status {
                Status::Pass => {}
                Status::Skip(why) => println!("   skipped {} {}: {why}", t.exe, t.name),
                Status::Fail(why) => println!("   FAILED  {} {}: {why}", t.exe, t.name),
            }
        }
        total.add(&c);
    }
    println!("{}", total.line());
    Ok(total.failed == 0)
}

fn choose_accel(setting: &str, k: &Kernel, cache: &Path, busybox: &Path) -> Result<Accel> {
    match setting {
        "kvm" => return Ok(Accel::Kvm),
        "tcg" => return Ok(Accel::Tcg),
        _ => {}
    }
    let probe = cache.join("probe.cpio");
    image::probe_initramfs(&probe, busybox)?;
    let (works, why) = qemu::kvm_works(&k.vmlinuz, &probe, Duration::from_secs(10));
    let accel = if works { Accel::Kvm } else { Accel::Tcg };
    println!(
        "vm-tests: accelerator {}: kvm {}: {why}",
        accel.name(),
        if works { "works" } else { "unusable" }
    );
    Ok(accel)
}

struct KernelReport {
    title: String,
    results: Vec<TestResult>,
    notes: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn run_kernel(
    k: &Kernel,
    accel: Accel,
    opts: &Options,
    ws: &Path,
    cache: &Path,
    (busybox, programs): (&Path, &[image::HostProgram]),
    built: &build::Built,
    plan: &[PlanEntry],
) -> Result<KernelReport> {
    let dir = cache.join("run").join(&k.name);
    fs::create_dir_all(&dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let env = vec![
        ("FDBOX_BIN", format!("{}/fdbox", image::BIN_DIR)),
        ("WORKSPACE", ws.display().to_string()),
        ("TMPDIR", "/scratch/tmp".to_string()),
        ("TEST_TIMEOUT", opts.test_timeout.to_string()),
        ("JOBS", opts.jobs.to_string()),
    ];
    // CI stays unset in the VM: the tests then skip, saying so, where a tool the VM does not
    // have (podman, containerd, runc, python3) is missing, instead of failing as they do in CI.
    let initramfs = dir.join("initramfs.cpio");
    image::initramfs(
        &initramfs,
        busybox,
        programs,
        k,
        built,
        plan,
        &image::env_script(&env),
    )?;
    let disk = dir.join("scratch.img");
    image::scratch_disk(&disk, &dir.join("disk-stage"), ws)?;
    let log_path = dir.join("console.log");
    let mut log = fs::File::create(&log_path).ctx(|| format!("creating {}", log_path.display()))?;

    println!(
        "[{}] booting {} ({}, initramfs {} MiB) with {}",
        k.name,
        k.package,
        k.release,
        fs::metadata(&initramfs).map(|m| m.len() >> 20).unwrap_or(0),
        accel.name()
    );
    let tag = format!("[{}]", k.name);
    let mut console = Console::default();
    let mut booted_after: Option<f64> = None;
    let t0 = Instant::now();
    let vm = Vm {
        vmlinuz: &k.vmlinuz,
        initramfs: &initramfs,
        disk: Some(&disk),
        accel,
    };
    let boot = qemu::boot(&vm, opts.timeout, |line| {
        let _ = writeln!(log, "{line}");
        match console.feed(line) {
            Event::Outside(l) if !l.trim().is_empty() => println!("{tag} {l}"),
            Event::Finished(r) => print_result(&tag, r),
            _ => {}
        }
        if booted_after.is_none() && console.begin_uptime.is_some() {
            booted_after = Some(t0.elapsed().as_secs_f64());
            println!(
                "{tag} booted and set up after {:.1} s; running {} tests, {} at a time",
                t0.elapsed().as_secs_f64(),
                plan.len(),
                opts.jobs
            );
        }
        Next::Continue
    })?;

    let mut notes = vec![];
    let stopped = if boot.killed {
        format!(
            "the VM was killed at the {} s limit",
            opts.timeout.as_secs()
        )
    } else if let Some(why) = &console.setup_failed {
        format!("the VM's setup failed ({why})")
    } else if console.end_uptime.is_none() {
        format!("the VM stopped early (qemu: {:?})", boot.status)
    } else {
        String::new()
    };
    if !stopped.is_empty() {
        notes.push(format!(
            "error: {stopped}; console log: {}",
            log_path.display()
        ));
    }
    if let Some(cg) = &console.cgroup {
        notes.push(format!("cgroup v2 controllers enabled in the VM: {cg}"));
    }
    let timing = match (booted_after, console.begin_uptime, console.end_uptime) {
        (Some(host), Some(b), Some(e)) => {
            format!(
                "boot+setup {host:.1} s (guest uptime {b:.1} s), tests {:.0} s, VM {:.0} s",
                e - b,
                boot.elapsed.as_secs_f64()
            )
        }
        _ => format!("VM {:.0} s", boot.elapsed.as_secs_f64()),
    };
    let title = format!(
        "{} ({}, {}, {}; {timing})",
        k.name,
        k.package,
        console.release.clone().unwrap_or_else(|| k.release.clone()),
        accel.name()
    );
    let results = console.finish(
        plan,
        if stopped.is_empty() {
            "the VM finished without it"
        } else {
            &stopped
        },
    );
    Ok(KernelReport {
        title,
        results,
        notes,
    })
}

fn print_result(tag: &str, r: &TestResult) {
    let secs = r.secs.map(|s| format!(" ({s:.1} s)")).unwrap_or_default();
    match &r.status {
        Status::Pass => println!("{tag} ok      {} {}{secs}", r.exe, r.name),
        Status::Skip(why) => println!("{tag} skipped {} {}{secs}: {why}", r.exe, r.name),
        Status::Fail(why) => {
            println!("{tag} FAILED  {} {}{secs}: {why}", r.exe, r.name);
            for l in &r.output {
                println!("{tag}   | {l}");
            }
        }
    }
}

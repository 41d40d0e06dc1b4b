//! `fdbox-bench bench`: fdbox, crun and runc measured in the same run,
//! interleaved round by round; writes docs/bench.md and docs/bench.svg.
//! `fdbox-bench soak`: N sequential `fdbox run`s, reporting hangs and
//! leaks. Both need root; both run in a private mount namespace.

mod bench;
mod bundle;
mod env;
mod error;
mod proc;
mod report;
mod soak;
mod stats;
mod svg;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use error::{Error, IoContext, Result};

const USAGE: &str = "usage:
  fdbox-bench bench [--fdbox PATH] [--crun PATH] [--runc PATH] [--busybox PATH]
                    [--rounds N] [--seq-rounds N] [--seq-n N] [--conc-rounds N] [--conc-n N]
                    [--out DIR] [--raw FILE.csv] [--note TEXT]...
  (BENCH_NOTE in the environment adds one more note)
  fdbox-bench soak  [--fdbox PATH] [--busybox PATH] [-n N] [--timeout SECS]";

struct Args {
    items: Vec<(String, String)>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Args> {
        let mut items = Vec::new();
        let mut it = raw.iter();
        while let Some(k) = it.next() {
            if !k.starts_with('-') {
                return Err(Error::Setup(format!("unexpected argument {k:?}\n{USAGE}")));
            }
            let v = it.next().ok_or_else(|| Error::Setup(format!("{k} needs a value\n{USAGE}")))?;
            items.push((k.clone(), v.clone()));
        }
        Ok(Args { items })
    }

    fn take(&mut self, names: &[&str]) -> Option<String> {
        let i = self.items.iter().position(|(k, _)| names.contains(&k.as_str()))?;
        Some(self.items.remove(i).1)
    }

    fn path(&mut self, name: &str, default: &str) -> PathBuf {
        PathBuf::from(self.take(&[name]).unwrap_or_else(|| default.to_string()))
    }

    fn num(&mut self, names: &[&str], default: usize) -> Result<usize> {
        match self.take(names) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::Setup(format!("{}: not a number: {v:?}", names[0]))),
        }
    }

    fn done(self) -> Result<()> {
        match self.items.first() {
            None => Ok(()),
            Some((k, _)) => Err(Error::Setup(format!("unknown option {k}\n{USAGE}"))),
        }
    }
}

fn bench(mut a: Args) -> Result<()> {
    let o = bench::Opts {
        fdbox: a.path("--fdbox", "target/release/fdbox"),
        crun: a.path("--crun", "crun"),
        runc: a.path("--runc", "runc"),
        busybox: a.path("--busybox", "/bin/busybox"),
        rounds: a.num(&["--rounds"], 60)?,
        seq_rounds: a.num(&["--seq-rounds"], 3)?,
        seq_n: a.num(&["--seq-n"], 100)?,
        conc_rounds: a.num(&["--conc-rounds"], 5)?,
        conc_n: a.num(&["--conc-n"], 20)?,
        notes: std::iter::from_fn(|| a.take(&["--note"]))
            .chain(std::env::var("BENCH_NOTE").ok())
            .filter(|n| !n.trim().is_empty())
            .collect(),
    };
    let out = a.take(&["--out"]).map(PathBuf::from);
    let raw = a.take(&["--raw"]).map(PathBuf::from);
    a.done()?;
    let r = bench::run(&o)?;
    let chart = out.as_ref().map(|_| "bench.svg");
    let md = report::markdown(&r, chart);
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).io("mkdir", dir)?;
        let p = dir.join("bench.md");
        std::fs::write(&p, &md).io("write", &p)?;
        let p = dir.join("bench.svg");
        std::fs::write(&p, svg::chart(&r)).io("write", &p)?;
        eprintln!("fdbox-bench: wrote {} and {}", dir.join("bench.md").display(), p.display());
    }
    if let Some(p) = &raw {
        std::fs::write(p, r.samples.csv()).io("write", p)?;
    }
    println!("{md}");
    Ok(())
}

fn soak(mut a: Args) -> Result<bool> {
    let o = soak::Opts {
        fdbox: bench::resolve(&a.path("--fdbox", "target/release/fdbox"))?,
        busybox: a.path("--busybox", "/bin/busybox"),
        n: a.num(&["-n", "--n"], 10_000)?,
        timeout: Duration::from_secs(a.num(&["--timeout"], 30)? as u64),
    };
    a.done()?;
    soak::run(&o)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let r = match argv.first().map(String::as_str) {
        Some("bench") => Args::parse(&argv[1..]).and_then(bench).map(|()| true),
        Some("soak") => Args::parse(&argv[1..]).and_then(soak),
        _ => Err(Error::Setup(USAGE.into())),
    };
    match r {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("fdbox-bench: {e}");
            std::process::exit(2);
        }
    }
}

//! Reading the results off a VM's console (the markers src/init.sh prints) and summing them up.

use crate::image::PlanEntry;

pub const MARK: &str = "@@FDBOX-VM ";

/// Output lines kept per test (the full console is in the log file).
const MAX_OUTPUT_LINES: usize = 300;

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Pass,
    /// The test printed `skipped: <reason>` (the project's convention) and exited 0.
    Skip(String),
    Fail(String),
}

#[derive(Debug, Clone)]
pub struct TestResult {
    pub exe: String,
    pub name: String,
    pub status: Status,
    pub secs: Option<f64>,
    pub output: Vec<String>,
}

/// What a line was, for the caller that echoes the console.
pub enum Event<'a> {
    /// A line outside any test (boot, setup): worth showing as it is.
    Outside(&'a str),
    /// A line of a running test's output (shown only if the test fails).
    TestOutput,
    /// A test finished.
    Finished(&'a TestResult),
    /// A marker without output of its own.
    Marker,
}

struct Running {
    exe: String,
    name: String,
    t0: Option<f64>,
    output: Vec<String>,
}

/// Incremental reader of one VM's console.
#[derive(Default)]
pub struct Console {
    pub release: Option<String>,
    /// The root cgroup's subtree_control as the VM reported it.
    pub cgroup: Option<String>,
    pub setup_failed: Option<String>,
    /// Guest uptime when the first test started (boot + setup time).
    pub begin_uptime: Option<f64>,
    pub end_uptime: Option<f64>,
    pub results: Vec<TestResult>,
    /// Tests that said START (their block follows when they finish).
    started: Vec<(String, String)>,
    running: Option<Running>,
}

impl Console {
    pub fn feed<'a>(&'a mut self, line: &'a str) -> Event<'a> {
        let Some(i) = line.find(MARK) else {
            return match &mut self.running {
                Some(r) => {
                    if r.output.len() < MAX_OUTPUT_LINES {
                        r.output.push(line.to_string());
                    }
                    Event::TestOutput
                }
                None => Event::Outside(line),
            };
        };
        // Output without a final newline ends up in front of the next marker.
        if i > 0 {
            if let Some(r) = &mut self.running {
                r.output.push(line[..i].to_string());
            }
        }
        let rest = &line[i + MARK.len()..];
        let mut words = rest.split_whitespace();
        let kind = words.next().unwrap_or("");
        let words: Vec<&str> = words.collect();
        let field = |k: &str| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let t = field("t").and_then(|v| v.parse::<f64>().ok());
        match kind {
            "CGROUP" => self.cgroup = Some(words.join(" ")),
            "SETUP-FAILED" => self.setup_failed = Some(words.join(" ")),
            "BEGIN" => {
                self.release = field("release").map(str::to_string);
                self.begin_uptime = t;
            }
            "END" => self.end_uptime = t,
            "START" if words.len() >= 2 => self.started.push((words[0].into(), words[1].into())),
            "TEST" if words.len() >= 2 => {
                self.running = Some(Running {
                    exe: words[0].into(),
                    name: words[1].into(),
                    t0: t,
                    output: vec![],
                });
            }
            "RESULT" if words.len() >= 2 => {
                let rc = field("rc").and_then(|v| v.parse::<i32>().ok());
                let run = match self.running.take() {
                    Some(r) if r.exe == words[0] && r.name == words[1] => r,
                    other => {
                        // A RESULT without its TEST: keep what there is.
                        self.running = other;
                        Running {
                            exe: words[0].into(),
                            name: words[1].into(),
                            t0: None,
                            output: vec![],
                        }
                    }
                };
                let status = judge(rc, &run.output);
                let secs = match (run.t0, t) {
                    (Some(a), Some(b)) => Some(b - a),
                    _ => None,
                };
                self.results.push(TestResult {
                    exe: run.exe,
                    name: run.name,
                    status,
                    secs,
                    output: run.output,
                });
                return Event::Finished(self.results.last().expect("just pushed"));
            }
            _ => {}
        }
        Event::Marker
    }

    /// All results for `plan`, in plan order: a test the VM never finished is a failure that
    /// says why (`stopped`: what happened to the VM).
    pub fn finish(mut self, plan: &[PlanEntry], stopped: &str) -> Vec<TestResult> {
        let running = self.running.take();
        plan.iter()
            .map(|(exe, name)| {
                if let Some(r) = self
                    .results
                    .iter()
                    .find(|r| r.exe == *exe && r.name == *name)
                {
                    return r.clone();
                }
                let started = self.started.iter().any(|(e, n)| e == exe && n == name);
                let (why, output) = match &running {
                    Some(r) if r.exe == *exe && r.name == *name => (
                        format!("did not finish: {stopped} while it ran"),
                        r.output.clone(),
                    ),
                    _ if started => (format!("did not finish: {stopped} while it ran"), vec![]),
                    _ => (format!("not run: {stopped}"), vec![]),
                };
                TestResult {
                    exe: exe.clone(),
                    name: name.clone(),
                    status: Status::Fail(why),
                    secs: None,
                    output,
                }
            })
            .collect()
    }
}

/// A test's status from its exit code and output.
fn judge(rc: Option<i32>, output: &[String]) -> Status {
    match rc {
        Some(0) => {}
        Some(137) => {
            return Status::Fail("killed (rc=137): it ran over the in-VM time limit".into())
        }
        Some(rc) => return Status::Fail(format!("rc={rc}: {}", panic_message(output))),
        None => return Status::Fail("no exit code reported".into()),
    }
    // libtest exits 0 when the name matched no test: that is not a pass.
    if !output
        .iter()
        .any(|l| l.contains("test result: ok. 1 passed"))
    {
        return Status::Fail("the executable exited 0 without running the test".into());
    }
    let reasons: Vec<&str> = output
        .iter()
        .filter_map(|l| {
            l.find("skipped: ")
                .map(|i| l[i + "skipped: ".len()..].trim())
        })
        .collect();
    if reasons.is_empty() {
        Status::Pass
    } else {
        Status::Skip(reasons.join("; "))
    }
}

/// The message of the first panic in a test's output: Rust prints it on the lines after
/// `thread '…' panicked at file:line:col:`, up to the `note:` about backtraces.
fn panic_message(output: &[String]) -> String {
    let Some(i) = output.iter().position(|l| l.contains("panicked at")) else {
        return "no panic message".into();
    };
    let at = output[i].trim_end();
    let lines: Vec<&str> = if at.ends_with(':') {
        output[i + 1..]
            .iter()
            .map(|l| l.trim())
            .take_while(|l| {
                !(l.starts_with("note: ")
                    || l.starts_with("stack backtrace:")
                    || *l == "FAILED"
                    || *l == "failures:"
                    || (l.starts_with("test ") && l.contains(" ... ")))
            })
            .filter(|l| !l.is_empty() && !l.starts_with("---"))
            .collect()
    } else {
        vec![at]
    };
    let mut msg = lines.join(" / ");
    if msg.len() > 400 {
        let mut cut = 400;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push('…');
    }
    msg
}

#[derive(Default, Debug, PartialEq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    pub fn of(results: &[TestResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.status {
                Status::Pass => c.passed += 1,
                Status::Skip(_) => c.skipped += 1,
                Status::Fail(_) => c.failed += 1,
            }
        }
        c
    }

    pub fn add(&mut self, o: &Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }

    /// The plain closing line: `N passed, M failed, K skipped`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(v: &[(&str, &str)]) -> Vec<PlanEntry> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_console_with_pass_skip_fail_and_a_crash() {
        let console = "\
SeaBIOS noise
@@FDBOX-VM CGROUP cpuset cpu io memory hugetlb pids rdma misc
@@FDBOX-VM BEGIN release=6.1.0-56-amd64 tests=5 t=3.50
@@FDBOX-VM TEST tests-lifecycle run_prints t=3.60

running 1 test
test run_prints ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 10 filtered out; finished in 0.50s

@@FDBOX-VM RESULT tests-lifecycle run_prints rc=0 t=4.60
@@FDBOX-VM TEST tests-handoff pidfd t=4.70
running 1 test
test pidfd ... skipped: runtime lacks --pidfd-socket
ok
test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 0.01s
@@FDBOX-VM RESULT tests-handoff pidfd rc=0 t=4.80
@@FDBOX-VM TEST tests-cli version t=4.90
running 1 test
thread 'version' panicked at tests/tests/cli.rs:10:5:
assertion failed: out.success()
test version ... FAILED
partial line without newline@@FDBOX-VM RESULT tests-cli version rc=101 t=5.00
@@FDBOX-VM TEST tests-cli nothing t=5.10
running 0 tests
@@FDBOX-VM RESULT tests-cli nothing rc=0 t=5.20
@@FDBOX-VM START tests-cli hangs
@@FDBOX-VM START tests-cli stuck
@@FDBOX-VM TEST tests-cli stuck t=5.30
running 1 test
";
        let mut c = Console::default();
        let mut outside = vec![];
        let mut finished = vec![];
        for line in console.lines() {
            match c.feed(line) {
                Event::Outside(l) => outside.push(l.to_string()),
                Event::Finished(r) => finished.push(r.name.clone()),
                _ => {}
            }
        }
        assert_eq!(outside, ["SeaBIOS noise"]);
        assert_eq!(finished, ["run_prints", "pidfd", "version", "nothing"]);
        assert_eq!(c.release.as_deref(), Some("6.1.0-56-amd64"));
        assert_eq!(
            c.cgroup.as_deref(),
            Some("cpuset cpu io memory hugetlb pids rdma misc")
        );
        assert_eq!(c.begin_uptime, Some(3.5));

        let p = plan(&[
            ("tests-lifecycle", "run_prints"),
            ("tests-handoff", "pidfd"),
            ("tests-cli", "version"),
            ("tests-cli", "nothing"),
            ("tests-cli", "hangs"),
            ("tests-cli", "stuck"),
            ("tests-cli", "never"),
        ]);
        let r = c.finish(&p, "the VM timed out");
        assert_eq!(r[0].status, Status::Pass);
        assert!((r[0].secs.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(
            r[1].status,
            Status::Skip("runtime lacks --pidfd-socket".into())
        );
        assert_eq!(
            r[2].status,
            Status::Fail("rc=101: assertion failed: out.success()".into())
        );
        assert!(r[2]
            .output
            .iter()
            .any(|l| l == "partial line without newline"));
        assert!(matches!(&r[3].status, Status::Fail(m) if m.contains("without running")));
        assert_eq!(
            r[4].status,
            Status::Fail("did not finish: the VM timed out while it ran".into())
        );
        assert_eq!(
            r[5].status,
            Status::Fail("did not finish: the VM timed out while it ran".into())
        );
        assert_eq!(r[5].output, ["running 1 test"]);
        assert_eq!(
            r[6].status,
            Status::Fail("not run: the VM timed out".into())
        );
        let counts = Counts::of(&r);
        assert_eq!(
            counts,
            Counts {
                passed: 1,
                failed: 5,
                skipped: 1
            }
        );
        assert_eq!(counts.line(), "1 passed, 5 failed, 1 skipped");
    }

    #[test]
    fn panic_messages_span_lines() {
        let out: Vec<String> = [
            "test x ... ",
            "thread 'x' (12) panicked at tests/tests/cgroups.rs:367:5:",
            "assertion `left == right` failed",
            "  left: 2",
            " right: 0",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            panic_message(&out),
            "assertion `left == right` failed / left: 2 / right: 0"
        );
        let old_style = vec!["thread 'x' panicked at 'boom', src/a.rs:1:1".to_string()];
        assert_eq!(
            panic_message(&old_style),
            "thread 'x' panicked at 'boom', src/a.rs:1:1"
        );
    }

    #[test]
    fn a_killed_test_and_a_failed_setup() {
        assert!(matches!(judge(Some(137), &[]), Status::Fail(m) if m.contains("time limit")));
        let mut c = Console::default();
        c.feed("@@FDBOX-VM SETUP-FAILED modprobe ext4");
        assert_eq!(c.setup_failed.as_deref(), Some("modprobe ext4"));
    }
}

//! The binaries that go into the VM: fdbox and the test executables, linked statically (glibc's
//! `crt-static` on the gnu target) into a target dir of their own, so the normal build is not
//! invalidated and nothing in the VM needs a shared library.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{display, msg, Context, Error, Result};

pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The packages whose test executables run in the VM: the integration tests, and the crates
/// whose own tests call the kernel as root (cgroups, mount API, pidfds).
pub const PACKAGES: &[&str] = &["fdbox-tests", "fdbox-cgroups", "fdbox-mount", "fdbox"];

/// One test executable and the tests it contains.
pub struct TestExe {
    /// A short unique name, also its file name in the VM: `tests-lifecycle`, `cgroups-lib`.
    pub label: String,
    pub path: PathBuf,
    pub tests: Vec<String>,
}

pub struct Built {
    pub fdbox: PathBuf,
    pub exes: Vec<TestExe>,
}

/// Build fdbox and the test executables of [`PACKAGES`] into `target_dir` and list their tests.
pub fn build(workspace: &Path, target_dir: &Path) -> Result<Built> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let base = |sub: &str| {
        let mut cmd = Command::new(&cargo);
        cmd.arg(sub)
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .args([
                "--message-format=json-render-diagnostics",
                "--target",
                TARGET,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .env("RUSTFLAGS", rustflags())
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            // No debug info: the binaries are a tenth of the size, and so is the initramfs.
            .env("CARGO_PROFILE_DEV_DEBUG", "false");
        cmd
    };

    let mut cmd = base("build");
    cmd.args(["-p", "fdbox", "--bin", "fdbox"]);
    let fdbox = artifacts(&mut cmd)?
        .into_iter()
        .find(|a| a.name == "fdbox" && a.kind == "bin")
        .ok_or_else(|| msg("cargo built no fdbox binary"))?
        .path;

    let mut cmd = base("test");
    cmd.arg("--no-run");
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    let mut exes = vec![];
    for a in artifacts(&mut cmd)?.into_iter().filter(|a| a.test) {
        let dir = a
            .manifest_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = match a.kind.as_str() {
            "lib" => format!("{dir}-lib"),
            "bin" => format!("{dir}-bin-{}", a.name),
            _ => format!("{dir}-{}", a.name),
        };
        let tests = list_tests(&a.path)?;
        exes.push(TestExe {
            label,
            path: a.path,
            tests,
        });
    }
    exes.sort_by(|a, b| a.label.cmp(&b.label));
    if let Some(w) = exes.windows(2).find(|w| w[0].label == w[1].label) {
        return Err(msg(format!("two test executables named {}", w[0].label)));
    }
    Ok(Built { fdbox, exes })
}

fn rustflags() -> OsString {
    let mut flags = std::env::var_os("RUSTFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(" ");
    }
    flags.push("-C target-feature=+crt-static");
    flags
}

struct Artifact {
    name: String,
    kind: String,
    test: bool,
    path: PathBuf,
    manifest_dir: PathBuf,
}

/// Run cargo (its diagnostics go to our stderr) and collect the executables it reports.
fn artifacts(cmd: &mut Command) -> Result<Vec<Artifact>> {
    println!("vm-tests: {}", display(cmd));
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .ctx(|| format!("running `{}`", display(cmd)))?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: display(cmd),
            status: format!("failed ({})", out.status),
            detail: String::new(),
        });
    }
    Ok(parse_artifacts(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_artifacts(json_lines: &str) -> Vec<Artifact> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| {
            Some(Artifact {
                name: m["target"]["name"].as_str()?.to_string(),
                kind: m["target"]["kind"][0].as_str()?.to_string(),
                test: m["profile"]["test"].as_bool()?,
                path: PathBuf::from(m["executable"].as_str()?),
                manifest_dir: Path::new(m["manifest_path"].as_str()?)
                    .parent()?
                    .to_path_buf(),
            })
        })
        .collect()
}

/// The tests of a libtest executable (`--list --format terse`: `name: test`).
fn list_tests(exe: &Path) -> Result<Vec<String>> {
    let mut cmd = Command::new(exe);
    cmd.args(["--list", "--format", "terse"]);
    let out = crate::error::run(&mut cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_from_cargo_json() {
        let text = r#"{"reason":"compiler-artifact","package_id":"x","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["test"],"name":"lifecycle"},"profile":{"test":true},"executable":"/t/deps/lifecycle-1"}
{"reason":"compiler-artifact","manifest_path":"/w/tests/Cargo.toml","target":{"kind":["lib"],"name":"fdbox_tests"},"profile":{"test":false},"executable":null}
{"reason":"build-finished","success":true}
not json"#;
        let a = parse_artifacts(text);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, "lifecycle");
        assert_eq!(a[0].kind, "test");
        assert!(a[0].test);
        assert_eq!(a[0].manifest_dir, Path::new("/w/tests"));
    }
}

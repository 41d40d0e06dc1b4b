//! What a VM boots from: the initramfs (busybox, the init script, fdbox, the test executables,
//! the kernel's modules, the test plan) and the scratch disk (ext4: temp dirs, the workspace's
//! target dir and its fixture dirs).

use std::collections::BTreeSet;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::Built;
use crate::cpio::CpioWriter;
use crate::error::{msg, run, Context, Result};
use crate::kernel::Kernel;

const INIT: &str = include_str!("init.sh");

/// Where the VM finds fdbox and the test executables.
pub const BIN_DIR: &str = "/fdbox-vm/bin";

/// One test to run: (executable label, test name).
pub type PlanEntry = (String, String);

/// A static busybox on the host (the VM's userland, and the rootfs of the test containers).
pub fn find_busybox() -> Result<PathBuf> {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        let p = Path::new(p);
        if p.is_file() {
            if !is_static_elf(p)? {
                return Err(msg(format!(
                    "{} is dynamically linked: install busybox-static",
                    p.display()
                )));
            }
            return Ok(p.to_path_buf());
        }
    }
    Err(msg("no busybox: install busybox-static"))
}

/// Whether a 64-bit little-endian ELF file has no PT_INTERP program header.
fn is_static_elf(path: &Path) -> Result<bool> {
    let data = fs::read(path).ctx(|| format!("reading {}", path.display()))?;
    let bad = || msg(format!("{} is not a 64-bit LE ELF file", path.display()));
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&data[32..40]);
    let phoff = u64::from_le_bytes(phoff) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        let p_type = data.get(off..off + 4).ok_or_else(bad)?;
        if p_type == 3u32.to_le_bytes() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Programs copied from the host into the VM's /bin, with the shared libraries `ldd` lists, in
/// place of busybox's applets of the same name, as (program, other names for it). The tests
/// expect a Debian host's tools: dash as /bin/sh (busybox's sh picks an applet by argv[0], which
/// OCI hooks set freely), util-linux's setpriv/unshare/nsenter, strace, and runc (the tests
/// compare fdbox with it). A program the host lacks is left out (its tests say they skip).
const HOST_PROGRAMS: &[(&str, &[&str])] = &[
    ("dash", &["sh"]),
    ("setpriv", &[]),
    ("unshare", &[]),
    ("nsenter", &[]),
    ("strace", &[]),
    ("runc", &[]),
];

/// A host program to copy and what it needs.
pub struct HostProgram {
    name: &'static str,
    aliases: &'static [&'static str],
    path: PathBuf,
    libs: Vec<PathBuf>,
}

/// The [`HOST_PROGRAMS`] found on this host, and the names of those that are not.
pub fn host_programs() -> Result<(Vec<HostProgram>, Vec<&'static str>)> {
    let (mut found, mut missing) = (vec![], vec![]);
    for &(name, aliases) in HOST_PROGRAMS {
        let Some(path) = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
        else {
            missing.push(name);
            continue;
        };
        let libs = if is_static_elf(&path)? {
            vec![]
        } else {
            let out = run(Command::new("ldd").arg(&path))?;
            parse_ldd(&String::from_utf8_lossy(&out.stdout))
        };
        found.push(HostProgram {
            name,
            aliases,
            path,
            libs,
        });
    }
    Ok((found, missing))
}

/// The files `ldd` names: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and the loader
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vdso has no file.
fn parse_ldd(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let file = match l.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            file.starts_with('/').then(|| PathBuf::from(file))
        })
        .collect()
}

/// Adds files at absolute paths, creating their parent directories once.
struct Tree<'a> {
    w: &'a mut CpioWriter<BufWriter<fs::File>>,
    dirs: BTreeSet<String>,
}

impl Tree<'_> {
    fn dir(&mut self, path: &str, mode: u32) -> std::io::Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return Ok(());
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent, 0o755)?;
        }
        self.dirs.insert(path.to_string());
        self.w.dir(path, mode)
    }

    fn parent(&mut self, path: &str) -> std::io::Result<()> {
        match path.trim_matches('/').rsplit_once('/') {
            Some((parent, _)) => self.dir(parent, 0o755),
            None => Ok(()),
        }
    }

    fn host_file(&mut self, path: &str, host: &Path) -> std::io::Result<()> {
        self.parent(path)?;
        self.w.host_file(path, host)
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.parent(path)?;
        self.w.file(path, mode, data)
    }

    fn symlink(&mut self, path: &str, target: &str) -> std::io::Result<()> {
        self.parent(path)?;
        self.w.symlink(path, target)
    }
}

/// busybox with its applets as symlinks, the host programs, the directories every stage needs,
/// and /dev/console (the kernel opens it for init's stdio before anything is mounted).
fn base(t: &mut Tree, busybox: &Path, programs: &[HostProgram]) -> Result<()> {
    let what = || "writing the initramfs".to_string();
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "run",
        "etc",
        "root",
        "var",
        "scratch",
        "lib/modules",
    ] {
        t.dir(d, 0o755).ctx(what)?;
    }
    t.dir("tmp", 0o1777).ctx(what)?;
    t.w.char_device("dev/console", 0o600, 5, 1).ctx(what)?;
    t.host_file("bin/busybox", busybox)
        .ctx(|| "adding busybox".into())?;
    let taken: BTreeSet<&str> = programs
        .iter()
        .flat_map(|p| p.aliases.iter().copied().chain([p.name]))
        .collect();
    let out = run(Command::new(busybox).arg("--list-full"))?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        let name = applet.rsplit('/').next().unwrap_or(applet);
        if applet.is_empty() || name == "busybox" || taken.contains(name) {
            continue;
        }
        t.symlink(applet, "/bin/busybox").ctx(what)?;
    }
    let mut libs = BTreeSet::new();
    for p in programs {
        t.host_file(&format!("bin/{}", p.name), &p.path)
            .ctx(|| format!("adding {}", p.path.display()))?;
        for alias in p.aliases {
            t.symlink(&format!("bin/{alias}"), p.name).ctx(what)?;
        }
        libs.extend(p.libs.iter().cloned());
    }
    for lib in libs {
        // fs::read follows the symlink: the VM gets the file under the name the loader asks for.
        t.host_file(&lib.to_string_lossy(), &lib)
            .ctx(|| format!("adding {}", lib.display()))?;
    }
    t.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .ctx(what)?;
    t.file(
        "etc/group",
        0o644,
        b"root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    )
    .ctx(what)?;
    Ok(())
}

/// The environment of the test processes, as a shell fragment (values single-quoted).
pub fn env_script(vars: &[(&str, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
        .collect()
}

/// The initramfs for one kernel.
pub fn initramfs(
    out: &Path,
    busybox: &Path,
    programs: &[HostProgram],
    kernel: &Kernel,
    built: &Built,
    plan: &[PlanEntry],
    env: &str,
) -> Result<()> {
    let file = fs::File::create(out).ctx(|| format!("creating {}", out.display()))?;
    let mut w = CpioWriter::new(BufWriter::new(file));
    let mut t = Tree {
        w: &mut w,
        dirs: BTreeSet::new(),
    };
    let what = || format!("writing {}", out.display());
    base(&mut t, busybox, programs)?;
    t.file("init", 0o755, INIT.as_bytes()).ctx(what)?;
    t.host_file(&format!("{BIN_DIR}/fdbox"), &built.fdbox)
        .ctx(what)?;
    for exe in &built.exes {
        if plan.iter().any(|(label, _)| *label == exe.label) {
            t.host_file(&format!("{BIN_DIR}/{}", exe.label), &exe.path)
                .ctx(what)?;
        }
    }
    let plan_text: String = plan
        .iter()
        .map(|(exe, name)| format!("{exe} {name}\n"))
        .collect();
    t.file("fdbox-vm/plan", 0o644, plan_text.as_bytes())
        .ctx(what)?;
    t.file("fdbox-vm/env", 0o644, env.as_bytes()).ctx(what)?;
    t.file(
        "fdbox-vm/modules",
        0o644,
        (kernel.load.join("\n") + "\n").as_bytes(),
    )
    .ctx(what)?;
    w.host_tree("lib/modules", &kernel.modules_root.join("lib/modules"))
        .ctx(what)?;
    w.finish().ctx(what)?;
    Ok(())
}

/// A tiny initramfs whose init only says it ran: boots in a second where the accelerator works.
pub fn probe_initramfs(out: &Path, busybox: &Path) -> Result<()> {
    let file = fs::File::create(out).ctx(|| format!("creating {}", out.display()))?;
    let mut w = CpioWriter::new(BufWriter::new(file));
    let mut t = Tree {
        w: &mut w,
        dirs: BTreeSet::new(),
    };
    let what = || format!("writing {}", out.display());
    base(&mut t, busybox, &[])?;
    t.file(
        "init",
        0o755,
        b"#!/bin/busybox sh\necho '@@FDBOX-VM PROBE-OK'\npoweroff -f\n",
    )
    .ctx(what)?;
    w.finish().ctx(what)?;
    Ok(())
}

/// Size of the scratch disk (a sparse file: only what the tests write takes space).
const DISK_BYTES: u64 = 4 << 30;

/// The scratch disk: an ext4 image made with `mkfs.ext4 -d` from a staging dir with `tmp/`,
/// `workspace/target/` and a copy of every `fixtures` dir of the workspace's crates (at
/// `workspace/<crate>/fixtures` or `workspace/<crate>/tests/fixtures`, as on the host).
pub fn scratch_disk(out: &Path, staging: &Path, workspace: &Path) -> Result<()> {
    if staging.exists() {
        fs::remove_dir_all(staging).ctx(|| format!("rm -r {}", staging.display()))?;
    }
    let mkdir = |p: &Path| fs::create_dir_all(p).ctx(|| format!("mkdir {}", p.display()));
    mkdir(&staging.join("tmp"))?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(staging.join("tmp"), fs::Permissions::from_mode(0o1777))
        .ctx(|| "chmod tmp".into())?;
    mkdir(&staging.join("workspace/target"))?;
    for entry in fs::read_dir(workspace)
        .ctx(|| format!("reading {}", workspace.display()))?
        .flatten()
    {
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        for sub in ["fixtures", "tests/fixtures"] {
            let from = entry.path().join(sub);
            if from.is_dir() {
                let to = staging.join("workspace").join(&name).join(sub);
                mkdir(to.parent().expect("has a parent"))?;
                copy_tree(&from, &to).ctx(|| format!("copying {}", from.display()))?;
            }
        }
    }
    let _ = fs::remove_file(out);
    let file = fs::File::create(out).ctx(|| format!("creating {}", out.display()))?;
    file.set_len(DISK_BYTES)
        .ctx(|| format!("sizing {}", out.display()))?;
    drop(file);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-L", "fdbox-scratch", "-d"])
        .arg(staging)
        .arg(out);
    run(&mut cmd)?;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\tlibgone.so.1 => not found\n";
        assert_eq!(
            parse_ldd(text),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2")
            ]
        );
    }

    #[test]
    fn env_values_are_quoted() {
        let s = env_script(&[("A", "x y".into()), ("B", "it's".into())]);
        assert_eq!(s, "export A='x y'\nexport B='it'\\''s'\n");
    }

    #[test]
    fn static_detection() {
        // This test executable is dynamically linked on the gnu target.
        let me = std::env::current_exe().unwrap();
        assert_eq!(
            is_static_elf(&me).unwrap(),
            cfg!(target_feature = "crt-static")
        );
        assert!(is_static_elf(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("Cargo.toml")
                .as_path()
        )
        .is_err());
    }
}

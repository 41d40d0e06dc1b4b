//! The kernels the VMs boot: which ones, how they are fetched (Debian packages through apt,
//! without touching the system's apt configuration) and what of each package the VM needs
//! (the bzImage and a few modules with their dependencies).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{failed, msg, run, Context, Error, Result};

/// One configured kernel. To add a kernel, add a row to [`KERNELS`].
pub struct KernelSpec {
    /// The name on the command line and in reports (`VM_KERNELS=6.1`).
    pub name: &'static str,
    /// Where apt finds the package. `None`: the system's own apt sources (bookworm on the
    /// Debian 12 machines this project targets). `Some(suite)`: a private apt configuration under
    /// `target/vm-tests/apt/<suite>` listing only that suite, from the Debian mirror the system
    /// already uses.
    pub suite: Option<&'static str>,
    /// A metapackage such as `linux-image-amd64` (resolved to the `linux-image-…` package it
    /// depends on, so the newest build is used) or a concrete `linux-image-…` package (pinned).
    pub package: &'static str,
    /// The concrete package must start with this: a metapackage that moved on to another
    /// kernel series is an error, not a silent change of what is tested.
    pub expect: &'static str,
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        name: "6.1",
        suite: None,
        package: "linux-image-amd64",
        expect: "linux-image-6.1.",
    },
    KernelSpec {
        name: "6.12",
        suite: Some("bookworm-backports"),
        package: "linux-image-amd64",
        expect: "linux-image-6.12.",
    },
];

/// Modules the VM loads, in this order, as (name, required). A module built into a kernel is
/// left out for that kernel; an optional one the kernel does not have is skipped.
pub const MODULES: &[(&str, bool)] = &[
    ("virtio_pci", true),
    ("virtio_blk", true),
    // ext4's journal looks up the "crc32c" algorithm at mount time, not through a module dep.
    ("crc32c_generic", false),
    ("ext4", true),
    ("overlay", true),
    // /dev/fuse, which the device tests bind from the host (built into 6.12).
    ("fuse", false),
];

/// A kernel ready to boot.
pub struct Kernel {
    pub name: String,
    /// The concrete Debian package, e.g. `linux-image-6.1.0-56-amd64`.
    pub package: String,
    /// `uname -r` of the kernel, e.g. `6.1.0-56-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// A tree with `lib/modules/<release>/…`: the selected modules (uncompressed) and depmod's
    /// index files.
    pub modules_root: PathBuf,
    /// The module names to `modprobe` in the VM, in order.
    pub load: Vec<String>,
}

/// Fetch (or take from the cache under `cache`) the kernel `spec` names.
pub fn prepare(spec: &KernelSpec, cache: &Path) -> Result<Kernel> {
    let apt = match spec.suite {
        None => Apt::system(),
        Some(suite) => Apt::private(&cache.join("apt").join(suite), suite)?,
    };
    let package = apt.resolve_fresh(spec.package)?;
    if !package.starts_with(spec.expect) {
        return Err(msg(format!(
            "kernel {}: {} in {} is {package}, expected {}*: update KERNELS in vm-tests/src/kernel.rs",
            spec.name, spec.package, apt.label, spec.expect
        )));
    }
    let dir = cache.join("kernels").join(&package);
    let stamp = stamp_text(&package);
    if fs::read_to_string(dir.join("stamp")).ok().as_deref() == Some(stamp.as_str()) {
        return load_cached(spec, &dir, package);
    }

    println!(
        "vm-tests: kernel {}: fetching {package} ({})",
        spec.name, apt.label
    );
    let debs = cache.join("debs");
    fs::create_dir_all(&debs).ctx(|| format!("mkdir {}", debs.display()))?;
    let deb = match apt.download(&package, &debs) {
        Ok(deb) => deb,
        // Lists older than the mirror name a file the mirror no longer has.
        Err(first) => {
            println!(
                "vm-tests: download failed ({first}); updating the package lists and retrying"
            );
            apt.update()?;
            apt.download(&package, &debs)?
        }
    };
    let extract = cache.join(format!("extract-{package}"));
    let staging = cache.join("kernels").join(format!(".{package}.tmp"));
    for d in [&extract, &staging] {
        remove_dir_if_exists(d)?;
    }
    let mut cmd = Command::new("dpkg-deb");
    run(cmd.arg("-x").arg(&deb).arg(&extract))?;
    stage(&extract, &staging, &stamp)?;
    remove_dir_if_exists(&dir)?;
    fs::rename(&staging, &dir)
        .ctx(|| format!("rename {} to {}", staging.display(), dir.display()))?;
    // The cache keeps only what the VM needs (a few MB instead of a few hundred).
    remove_dir_if_exists(&extract)?;
    fs::remove_file(&deb).ctx(|| format!("rm {}", deb.display()))?;
    load_cached(spec, &dir, package)
}

/// The cache is valid for one package and one module list.
fn stamp_text(package: &str) -> String {
    let mods: Vec<&str> = MODULES.iter().map(|(m, _)| *m).collect();
    format!("{package}\nmodules: {}\n", mods.join(" "))
}

fn load_cached(spec: &KernelSpec, dir: &Path, package: String) -> Result<Kernel> {
    let read = |name: &str| {
        fs::read_to_string(dir.join(name)).ctx(|| format!("reading {}/{name}", dir.display()))
    };
    Ok(Kernel {
        name: spec.name.to_string(),
        package,
        release: read("release")?.trim().to_string(),
        vmlinuz: dir.join("vmlinuz"),
        modules_root: dir.join("root"),
        load: read("load")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

/// From an extracted package in `extract`, make the cache entry in `out`: `vmlinuz`, `release`,
/// `load`, `root/lib/modules/<release>/…` and finally `stamp`.
fn stage(extract: &Path, out: &Path, stamp: &str) -> Result<()> {
    // bookworm's packages ship /lib/modules; a merged-/usr package ships /usr/lib/modules, which
    // `depmod -b` (kmod 30) does not look at.
    if !extract.join("lib/modules").is_dir() && extract.join("usr/lib/modules").is_dir() {
        std::os::unix::fs::symlink("usr/lib", extract.join("lib"))
            .ctx(|| "symlink lib -> usr/lib".into())?;
    }
    let mod_base = extract.join("lib/modules");
    let releases: Vec<String> = fs::read_dir(&mod_base)
        .ctx(|| format!("reading {}", mod_base.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let [release] = releases.as_slice() else {
        return Err(msg(format!(
            "{}: expected one kernel release, found {releases:?}",
            mod_base.display()
        )));
    };
    let vmlinuz = extract.join(format!("boot/vmlinuz-{release}"));
    fs::create_dir_all(out).ctx(|| format!("mkdir {}", out.display()))?;
    fs::copy(&vmlinuz, out.join("vmlinuz")).ctx(|| format!("copying {}", vmlinuz.display()))?;

    // The package has no modules.dep (its postinst makes it): make one to follow dependencies.
    let mut cmd = Command::new("depmod");
    run(cmd.arg("-b").arg(extract).arg(release))?;
    let src = mod_base.join(release);
    let read = |name: &str| {
        fs::read_to_string(src.join(name)).ctx(|| format!("reading {}/{name}", src.display()))
    };
    let db = ModDb::parse(&read("modules.dep")?, &read("modules.builtin")?);
    let sel = db.select(MODULES)?;
    for m in &sel.builtin {
        println!("vm-tests:   {m}: built into {release}");
    }
    for m in &sel.missing {
        println!("vm-tests:   {m}: not in {release} (optional, skipped)");
    }

    let dst = out.join("root/lib/modules").join(release);
    for file in &sel.files {
        let to = dst.join(strip_compression(file));
        let parent = to.parent().expect("a module path has a parent");
        fs::create_dir_all(parent).ctx(|| format!("mkdir {}", parent.display()))?;
        copy_module(&src.join(file), &to)?;
    }
    for name in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        if src.join(name).is_file() {
            fs::copy(src.join(name), dst.join(name)).ctx(|| format!("copying {name}"))?;
        }
    }
    let mut cmd = Command::new("depmod");
    run(cmd.arg("-b").arg(out.join("root")).arg(release))?;
    let write = |name: &str, text: String| {
        fs::write(out.join(name), text).ctx(|| format!("writing {name}"))
    };
    write("release", format!("{release}\n"))?;
    write("load", sel.load.join("\n") + "\n")?;
    write("stamp", stamp.to_string())
}

/// Copy a module, decompressing it: the VM's busybox modprobe then needs no decompressor.
fn copy_module(from: &Path, to: &Path) -> Result<()> {
    let name = from.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        "xz"
    } else if name.ends_with(".zst") {
        "zstd"
    } else if name.ends_with(".gz") {
        "gzip"
    } else {
        fs::copy(from, to).ctx(|| format!("copying {}", from.display()))?;
        return Ok(());
    };
    let file = fs::File::create(to).ctx(|| format!("creating {}", to.display()))?;
    let mut cmd = Command::new(tool);
    cmd.arg("-dc").arg(from).stdout(file);
    let out = cmd
        .output()
        .ctx(|| format!("running {tool} -dc {}", from.display()))?;
    if !out.status.success() {
        return Err(failed(&cmd, &out));
    }
    Ok(())
}

fn strip_compression(path: &str) -> &str {
    [".xz", ".zst", ".gz"]
        .iter()
        .find_map(|s| path.strip_suffix(s))
        .unwrap_or(path)
}

fn remove_dir_if_exists(d: &Path) -> Result<()> {
    match fs::remove_dir_all(d) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            what: format!("rm -r {}", d.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Module dependencies
// ---------------------------------------------------------------------------------------------

/// A module's name from its path: `kernel/fs/ext4/ext4.ko.xz` → `ext4`; `-` and `_` are the
/// same to the kernel, `_` is the canonical form.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = strip_compression(base);
    base.strip_suffix(".ko").unwrap_or(base).replace('-', "_")
}

/// What depmod's `modules.dep` and `modules.builtin` say.
pub struct ModDb {
    /// name → (path, the paths of everything it needs, transitively, as depmod lists them)
    modules: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
}

/// The modules picked for a VM.
#[derive(Debug, PartialEq)]
pub struct Selection {
    /// Module files to copy (paths relative to lib/modules/<release>).
    pub files: BTreeSet<String>,
    /// Names to modprobe, in the order asked for.
    pub load: Vec<String>,
    pub builtin: Vec<String>,
    /// Optional modules the kernel does not have.
    pub missing: Vec<String>,
}

impl ModDb {
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> ModDb {
        let modules = modules_dep
            .lines()
            .filter_map(|line| {
                let (path, deps) = line.split_once(':')?;
                let deps = deps.split_whitespace().map(str::to_string).collect();
                Some((module_name(path), (path.trim().to_string(), deps)))
            })
            .collect();
        let builtin = modules_builtin
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(module_name)
            .collect();
        ModDb { modules, builtin }
    }

    pub fn select(&self, wanted: &[(&str, bool)]) -> Result<Selection> {
        let mut sel = Selection {
            files: BTreeSet::new(),
            load: vec![],
            builtin: vec![],
            missing: vec![],
        };
        for &(name, required) in wanted {
            let name = name.replace('-', "_");
            if let Some((path, deps)) = self.modules.get(&name) {
                sel.files.insert(path.clone());
                sel.files.extend(deps.iter().cloned());
                sel.load.push(name);
            } else if self.builtin.contains(&name) {
                sel.builtin.push(name);
            } else if required {
                return Err(msg(format!(
                    "the kernel has no module {name} (neither loadable nor built in)"
                )));
            } else {
                sel.missing.push(name);
            }
        }
        Ok(sel)
    }
}

// ---------------------------------------------------------------------------------------------
// apt, with the system's configuration or a private one
// ---------------------------------------------------------------------------------------------

struct Apt {
    /// `-o` options that point apt at a private configuration (empty: the system's).
    opts: Vec<String>,
    /// The private lists dir, if any.
    lists: Option<PathBuf>,
    label: String,
}

impl Apt {
    fn system() -> Apt {
        Apt {
            opts: vec![],
            lists: None,
            label: "the system's apt sources".into(),
        }
    }

    /// A configuration of its own in `dir`: its sources.list names only `suite`, on the mirror
    /// the system uses for that release; lists and caches live in `dir` too, so nothing
    /// system-wide changes.
    fn private(dir: &Path, suite: &str) -> Result<Apt> {
        let release = suite.split('-').next().unwrap_or(suite);
        let (uri, signed_by) = system_mirror(release);
        for d in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            fs::create_dir_all(dir.join(d)).ctx(|| format!("mkdir {}/{d}", dir.display()))?;
        }
        let opts = match &signed_by {
            Some(k) => format!("[signed-by={k}] "),
            None => String::new(),
        };
        let sources = dir.join("sources.list");
        fs::write(&sources, format!("deb {opts}{uri} {suite} main\n"))
            .ctx(|| format!("writing {}", sources.display()))?;
        let o = |k: &str, v: &Path| ["-o".to_string(), format!("{k}={}", v.display())];
        let mut opts = vec![];
        opts.extend(o("Dir::Etc::sourcelist", &sources));
        opts.extend(o("Dir::Etc::sourceparts", &dir.join("sources.list.d")));
        opts.extend(o("Dir::State::Lists", &dir.join("lists")));
        opts.extend(o("Dir::Cache", &dir.join("cache")));
        Ok(Apt {
            opts,
            lists: Some(dir.join("lists")),
            label: format!("{suite} from {uri}"),
        })
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.args(&self.opts);
        // Downloads into a directory that apt's sandbox user may not write to are fine here.
        cmd.args(["-o", "APT::Sandbox::User=root", "-q"]);
        cmd
    }

    fn update(&self) -> Result<()> {
        if self.lists.is_none() && !is_root() {
            return Err(msg(
                "the system's apt lists lack the kernel package: run `apt-get update` as root",
            ));
        }
        println!("vm-tests: apt-get update ({})", self.label);
        run(self.command("apt-get").arg("update")).map(|_| ())
    }

    /// [`Self::resolve`], after an update if the lists are missing or lack the package.
    fn resolve_fresh(&self, package: &str) -> Result<String> {
        let has_lists = match &self.lists {
            Some(dir) => fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
                })
                .unwrap_or(false),
            None => true,
        };
        if has_lists {
            if let Some(p) = self.resolve(package)? {
                return Ok(p);
            }
        }
        self.update()?;
        self.resolve(package)?.ok_or_else(|| {
            msg(format!(
                "no package {package} in {} (even after apt-get update)",
                self.label
            ))
        })
    }

    /// The concrete kernel package: what the metapackage `package` depends on, or `package`.
    fn resolve(&self, package: &str) -> Result<Option<String>> {
        let mut cmd = self.command("apt-cache");
        cmd.args(["depends", "--no-recommends", "--no-suggests", package]);
        let out = cmd.output().ctx(|| "running apt-cache".into())?;
        if !out.status.success() {
            return Ok(None); // "No packages found"
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Some(parse_depends(&text).unwrap_or(package).to_string()))
    }

    fn download(&self, package: &str, dir: &Path) -> Result<PathBuf> {
        run(self
            .command("apt-get")
            .arg("download")
            .arg(package)
            .current_dir(dir))?;
        let prefix = format!("{package}_");
        fs::read_dir(dir)
            .ctx(|| format!("reading {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".deb")
            })
            .ok_or_else(|| {
                msg(format!(
                    "apt-get download {package} left no {prefix}*.deb in {}",
                    dir.display()
                ))
            })
    }
}

/// In `apt-cache depends` output, the first `linux-image-…` package depended on.
fn parse_depends(text: &str) -> Option<&str> {
    text.lines().find_map(|l| {
        let dep = l
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends:")?
            .trim();
        dep.starts_with("linux-image-").then_some(dep)
    })
}

fn is_root() -> bool {
    // The second Uid: field of /proc/self/status is the effective uid.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

/// One `deb` source of the system's apt configuration.
#[derive(Debug, PartialEq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    signed_by: Option<String>,
}

/// The mirror (and keyring) the system's apt uses for `release`; Debian's own by default.
fn system_mirror(release: &str) -> (String, Option<String>) {
    let mut sources = vec![];
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        sources.extend(parse_one_line_sources(&text));
    }
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let Ok(text) = fs::read_to_string(&p) else {
                continue;
            };
            match p.extension().and_then(|e| e.to_str()) {
                Some("list") => sources.extend(parse_one_line_sources(&text)),
                Some("sources") => sources.extend(parse_deb822_sources(&text)),
                _ => {}
            }
        }
    }
    pick_mirror(sources, release)
}

/// The source for `release` itself, else any main-archive (not `-security`) source: a Debian
/// mirror carries every release.
fn pick_mirror(sources: Vec<Source>, release: &str) -> (String, Option<String>) {
    let exact = sources
        .iter()
        .position(|s| s.suites.iter().any(|x| x == release));
    let main = || {
        sources
            .iter()
            .position(|s| s.suites.iter().any(|x| !x.ends_with("-security")))
    };
    match exact.or_else(main) {
        Some(i) => (sources[i].uri.clone(), sources[i].signed_by.clone()),
        None => ("http://deb.debian.org/debian".into(), None),
    }
}

/// `deb [opt=val …] URI SUITE COMPONENT…` lines.
fn parse_one_line_sources(text: &str) -> Vec<Source> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let rest = rest.trim_start();
        let (options, rest) = match rest.strip_prefix('[') {
            Some(r) => match r.split_once(']') {
                Some((o, r)) => (o, r),
                None => continue,
            },
            None => ("", rest),
        };
        let signed_by = options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("signed-by=").map(str::to_string));
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Source {
                uri: uri.to_string(),
                suites: vec![suite.to_string()],
                signed_by,
            });
        }
    }
    out
}

/// deb822 `.sources` stanzas (Types/URIs/Suites/Signed-By; `Enabled: no` is honoured). An
/// inline key in Signed-By is not carried over (the system keyrings are then used).
fn parse_deb822_sources(text: &str) -> Vec<Source> {
    let mut out = vec![];
    for stanza in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(k) = &last {
                    fields.entry(k.clone()).or_default().push('\n');
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                fields.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
        }
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if !get("types").split_whitespace().any(|t| t == "deb")
            || get("enabled").eq_ignore_ascii_case("no")
        {
            continue;
        }
        let signed_by = Some(get("signed-by"))
            .filter(|k| !k.is_empty() && !k.contains('\n'))
            .map(str::to_string);
        let suites: Vec<String> = get("suites")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for uri in get("uris").split_whitespace() {
            out.push(Source {
                uri: uri.to_string(),
                suites: suites.clone(),
                signed_by: signed_by.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        assert_eq!(module_name("kernel/fs/ext4/ext4.ko"), "ext4");
        assert_eq!(
            module_name("kernel/drivers/virtio/virtio_pci.ko.xz"),
            "virtio_pci"
        );
        assert_eq!(
            module_name("kernel/crypto/crc32c-generic.ko.zst"),
            "crc32c_generic"
        );
    }

    #[test]
    fn selection_follows_dependencies_and_builtins() {
        let dep = "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz kernel/lib/crc16.ko.xz\n\
                   kernel/fs/jbd2/jbd2.ko.xz:\n\
                   kernel/fs/mbcache.ko.xz:\n\
                   kernel/lib/crc16.ko.xz:\n\
                   kernel/fs/overlayfs/overlay.ko.xz:\n\
                   kernel/drivers/block/virtio_blk.ko.xz:\n";
        let builtin = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/virtio/virtio.ko\n";
        let db = ModDb::parse(dep, builtin);
        let sel = db
            .select(&[
                ("virtio_pci", true),
                ("virtio_blk", true),
                ("crc32c_generic", false),
                ("ext4", true),
                ("overlay", true),
            ])
            .unwrap();
        assert_eq!(sel.load, ["virtio_blk", "ext4", "overlay"]);
        assert_eq!(sel.builtin, ["virtio_pci"]);
        assert_eq!(sel.missing, ["crc32c_generic"]);
        assert_eq!(sel.files.len(), 6, "{:?}", sel.files);
        assert!(sel.files.contains("kernel/fs/jbd2/jbd2.ko.xz"));
        let Err(err) = db.select(&[("nosuch", true)]) else {
            panic!("a required module that is missing is an error")
        };
        assert!(err.to_string().contains("nosuch"), "{err}");
    }

    #[test]
    fn depends_of_the_metapackage() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(parse_depends(text), Some("linux-image-6.1.0-56-amd64"));
        let concrete = "linux-image-6.1.0-56-amd64\n  Depends: kmod\n  Depends: linux-base\n |Depends: initramfs-tools\n";
        assert_eq!(parse_depends(concrete), None);
    }

    #[test]
    fn sources_in_both_formats() {
        let one = "# comment\ndeb http://ftp.example.org/debian bookworm main\n\
                   deb [arch=amd64 signed-by=/k.gpg] http://m.example.org/debian bookworm-updates main\n\
                   deb-src http://src.example.org/debian bookworm main\n";
        let s = parse_one_line_sources(one);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].uri, "http://ftp.example.org/debian");
        assert_eq!(s[1].signed_by.as_deref(), Some("/k.gpg"));
        assert_eq!(s[1].suites, ["bookworm-updates"]);

        let deb822 = "Types: deb\n# http://snapshot.example.org/\nURIs: http://deb.debian.org/debian\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n\
                      Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                      Types: deb\nURIs: http://off.example.org/\nSuites: bookworm\nEnabled: no\n\n\
                      Types: deb\nURIs: http://inline.example.org/\nSuites: trixie\nSigned-By:\n -----BEGIN PGP\n .\n";
        let s = parse_deb822_sources(deb822);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].uri, "http://deb.debian.org/debian");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            s[0].signed_by.as_deref(),
            Some("/usr/share/keyrings/debian-archive-keyring.gpg")
        );
        assert_eq!(s[1].signed_by, None);

        let sec = Source {
            uri: "http://sec.example.org/".into(),
            suites: vec!["bookworm-security".into()],
            signed_by: None,
        };
        let main = Source {
            uri: "http://m.example.org/debian".into(),
            suites: vec!["bookworm".into()],
            signed_by: Some("/k".into()),
        };
        assert_eq!(
            pick_mirror(vec![sec, main], "trixie"),
            ("http://m.example.org/debian".into(), Some("/k".into()))
        );
        assert_eq!(
            pick_mirror(vec![], "bookworm").0,
            "http://deb.debian.org/debian"
        );
    }
}

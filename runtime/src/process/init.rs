//! The container's init: the child of `clone3`, already in its new
//! namespaces. It runs one straight line of stages, each ordering
//! constraint explained where it matters, and reports any failure to the
//! parent as one typed message before it exits.
//!
//! ```text
//! join namespaces → rootfs → hostname → console → cwd/executable
//!   → rlimits → user + capabilities → "ready" → wait for start → exec
//! ```

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use fdbox_mount::rootfs::{self, CgroupHierarchy, MountEntry};
use fdbox_mount::{MountFd, RootFd};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, SysContext};
use crate::process::sync::{Msg, SyncSocket};
use crate::security::caps::{self, CapMasks};
use crate::sys;

/// Everything the init needs, prepared by the parent before `clone3` (the
/// child gets a copy of the parent's memory and fd table).
pub struct InitCtx<'a> {
    pub spec: &'a Spec,
    pub id: &'a str,
    /// The child's end of the sync socketpair.
    pub sync: SyncSocket,
    /// Listening socket (`<state>/init.sock`) on which `start` connects.
    pub listener: OwnedFd,
    /// Existing namespaces to join (`linux.namespaces[].path`), opened by
    /// the parent. The pid namespace is not among them: the parent joins
    /// it before clone3 so that the child is born inside it.
    pub join: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// Detached mount of the rootfs (host side `open_tree`).
    pub rootfs: MountFd,
    /// The OCI mounts, and for each bind the detached mount the parent made.
    pub mounts: Vec<(MountEntry, Option<MountFd>)>,
    /// Host cgroup hierarchies, for `cgroup` mounts.
    pub cgroups: Vec<CgroupHierarchy>,
    /// Send the pty master to the parent (`process.terminal`).
    pub terminal: bool,
    /// fds 3.. that pass to the container (LISTEN_FDS + --preserve-fds).
    pub extra_fds: u32,
    pub no_pivot: bool,
    /// The parent says "go" once it made the v1 part of our cgroup (we
    /// were born in the cgroup2 one) and, with a new user namespace, wrote
    /// our id maps; see [`enter_cgroup`].
    pub await_go: bool,
    /// With a new user namespace "go" is awaited before anything else.
    pub new_userns: bool,
    /// [`enter_cgroup`] has run.
    pub in_cgroup: bool,
    /// Enter a new cgroup namespace once in the container's cgroup.
    pub new_cgroupns: bool,
    pub no_new_keyring: bool,
    pub caps: Option<CapMasks>,
    /// argv and envp, converted once by the parent.
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// The compiled `linux.seccomp` profile (and the agent connection).
    pub seccomp: Option<crate::security::seccomp::Prepared>,
    /// The state for `startContainer` hooks: None when created, filled in
    /// by [`crate::hooks::init_before_pivot`] when the config has hooks.
    pub hook_state: Option<crate::hooks::HookState>,
}

impl InitCtx<'_> {
    /// Every fd this context owns.
    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = self.waiting_fds();
        fds.extend(self.join.iter().map(|(_, fd)| fd.as_fd()));
        fds.push(self.rootfs.as_fd());
        fds.extend(self.mounts.iter().filter_map(|(_, m)| m.as_ref()).map(|m| m.as_fd()));
        fds
    }

    /// The fds the init needs once its setup is done: the sockets to the
    /// parent, to `start` and to the seccomp agent. (The rootfs mount fd
    /// stays owned by the context, closed: the context is never dropped and
    /// the mount is not used after pivot_root.)
    fn waiting_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.sync.as_fd(), self.listener.as_fd()];
        fds.extend(self.seccomp.iter().flat_map(|s| s.fds()));
        fds
    }
}

/// The child's entry point after clone3. Never returns.
pub fn run(mut ctx: InitCtx<'_>) -> ! {
    match setup(&mut ctx) {
        Ok(exe) => {
            if ctx.sync.send(&Msg::Ready, &[]).is_err() {
                sys::exit_now(1);
            }
            let code = wait_and_exec(&ctx, &exe);
            sys::exit_now(code)
        }
        Err(e) => {
            let _ = ctx.sync.send(&Msg::Error { message: e.to_string() }, &[]);
            sys::exit_now(1)
        }
    }
}

/// All stages up to "ready"; returns the resolved executable.
fn setup(ctx: &mut InitCtx<'_>) -> Result<CString> {
    // Die with the parent while it still owns us: a create that is killed
    // half-way must not leave a half-made container behind. Cleared again
    // just before "ready", when the container must outlive `create`.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .sys("prctl", || "PR_SET_PDEATHSIG".into())?;
    // Not dumpable while we are the runtime (its binary is our
    // /proc/self/exe; the sync socket and init.sock are in our fd table):
    // no container process may open our /proc files (CVE-2019-5736 class).
    // execve makes the program dumpable again.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .sys("prctl", || "PR_SET_DUMPABLE".into())?;
    // We hold a copy of `create`'s whole fd table: its bundle, rootfs and
    // state root dirfds, fds of its caller that are neither stdio nor
    // passed on. Keep what this init owns (its context) and the fds that
    // pass to the container; nothing else stays (CVE-2024-21626 class).
    if let Some(s) = &ctx.seccomp {
        s.drop_parent_end();
    }
    sys::close_from_except(3 + ctx.extra_fds, &ctx.fds()).sys("close_range", || "fds the init does not need".into())?;
    // A new session: the container's processes are not in the caller's
    // process group (its job-control signals), and a terminal can become
    // our controlling terminal.
    rustix::process::setsid().sys("setsid", String::new)?;
    // Device nodes and mount points get exactly the modes the spec asks for.
    rustix::process::umask(Mode::empty());
    // A new user namespace maps nothing until the parent wrote our maps:
    // wait for that before anything else.
    if ctx.new_userns {
        enter_cgroup(ctx)?;
    }
    // Through the host's /proc, before any container mount exists.
    if let Some(p) = ctx.spec.process() {
        crate::process::attrs::apply_oom_score_adj(p)?;
    }
    join_namespaces(ctx)?;
    // In a user namespace we are still host root, which it does not map:
    // become its root, or nothing we create could be owned by anyone.
    let in_userns = ctx.spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if in_userns {
        switch_user(0, 0, &[])?;
    }
    // A new network namespace has only a loopback device, down: as runc,
    // bring it up (a joined namespace is someone else's to configure).
    let new_netns = ctx.spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|n| {
        n.iter().any(|n| n.typ() == LinuxNamespaceType::Network && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty()))
    });
    if new_netns {
        sys::loopback_up().sys("ioctl(SIOCSIFFLAGS)", || "lo up".into())?;
    }
    // In our namespaces, before any container mount (see security/sysctl.rs).
    crate::security::sysctl::apply(ctx.spec)?;
    let root = setup_rootfs(ctx)?;
    set_hostname(ctx.spec)?;
    if ctx.terminal {
        setup_console(ctx, &root)?;
    }
    drop(root);
    if !ctx.no_new_keyring {
        join_session_keyring(ctx.id)?;
    }
    let process = ctx.spec.process().as_ref().ok_or_else(|| Error::Config("process is missing".into()))?;
    // From "ready" on, a process of the container (`exec`) may look at us
    // (/proc/1/fd with CAP_SYS_PTRACE): the host's mounts and namespaces we
    // made the container from are gone by then. What stays: init.sock, the
    // sync socket, the seccomp agent's, the fds passed to the container.
    // Before become_process: without no_new_privs it installs the
    // container's seccomp filter, which may deny close_range (older
    // profiles do not list it); so is the close-on-exec marking of what
    // stays (see wait_and_exec).
    ctx.join.clear();
    let keep = ctx.waiting_fds();
    sys::close_from_except(3 + ctx.extra_fds, &keep).sys("close_range", || "the host fds of the init's setup".into())?;
    sys::cloexec_from(3 + ctx.extra_fds).sys("close_range", || "fds above the passed ones".into())?;
    // While it waits for `start`, the init dies of the signals runc's
    // waiting init dies of (SIGTERM through `kill` or the pidfd of
    // --pidfd-socket, ...): as pid 1 of a new pid namespace it would
    // otherwise ignore them. Before the container's seccomp filter, which
    // may deny rt_sigaction.
    sys::exit_on_signals(&sys::WAITING_INIT_DEADLY).sys("sigaction", || "signals of the waiting init".into())?;
    let exe = become_process(process, ctx.spec.linux().as_ref(), ctx.caps.as_ref(), ctx.seccomp.as_ref(), &ctx.argv[0], &mut ctx.envp)?;
    rustix::process::set_parent_process_death_signal(None).sys("prctl", || "PR_SET_PDEATHSIG".into())?;
    Ok(exe)
}

/// Turn this process into the container's `process` (the init, or an exec
/// child already in the container's namespaces): cwd, the executable,
/// rlimits, capabilities around the switch to the user, process attributes,
/// umask; and, without no_new_privs, seccomp (which then needs
/// CAP_SYS_ADMIN, so before the switch, as runc does; with no_new_privs the
/// caller installs it as its very last step). Returns the executable.
pub(crate) fn become_process(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
    caps: Option<&CapMasks>,
    seccomp: Option<&crate::security::seccomp::Prepared>,
    arg0: &CString,
    envp: &mut Vec<CString>,
) -> Result<CString> {
    let user = process.user();
    set_home(envp, user.uid());
    // cwd before the user switch (root can enter any directory); again
    // after it if root could not (a directory only the user can search).
    let cwd = process.cwd().to_string_lossy().into_owned();
    let cwd_early = enter_cwd(&cwd);
    let exe = find_executable(arg0, envp)?;
    if let Some(limits) = process.rlimits() {
        crate::security::rlimits::apply(limits)?;
    }
    if let Some(m) = caps {
        caps::drop_bounding(m)?;
    }
    if let (false, Some(s)) = (process.no_new_privileges() == Some(true), seccomp) {
        s.install()?;
    }
    crate::process::attrs::apply(process, linux)?;
    fix_stdio_owner(user.uid(), user.gid());
    switch_user(user.uid(), user.gid(), user.additional_gids().as_deref().unwrap_or_default())?;
    if let Some(m) = caps {
        caps::apply_sets(m)?;
    }
    if cwd_early.is_err() {
        enter_cwd(&cwd).sys("chdir", || cwd.clone())?;
    }
    rustix::process::umask(Mode::from_raw_mode(user.umask().unwrap_or(0o022) & 0o777));
    Ok(exe)
}

/// Be in the container's cgroup: wait for the parent's "go" and move into
/// the v1 hierarchies it made meanwhile (a thread moving itself: see
/// SelfAttach); learn our place in each hierarchy (for /sys/fs/cgroup);
/// make the cgroup namespace, which is rooted where we are when it is made.
///
/// Runs once: first thing with a new user namespace (nothing is mapped
/// before "go"); else as late as it can, at the first cgroup mount or
/// before the hooks, so that the parent's mkdirs overlap with our mounts.
/// Nothing of the container, hooks included, runs before. A user namespace
/// joined by path is joined before, and so owns the new cgroup namespace.
fn enter_cgroup(ctx: &mut InitCtx<'_>) -> Result<()> {
    if ctx.in_cgroup {
        return Ok(());
    }
    ctx.in_cgroup = true;
    if ctx.await_go {
        match ctx.sync.recv().sys("recvmsg", || "sync socket".into())? {
            Some((Msg::Go { rootfs, cgroup_files }, fds)) => {
                let mut fds = fds.into_iter();
                // With a user namespace over an overlay rootfs, the parent
                // made a new overlay from idmapped layers: our rootfs now
                // (only then is "go" awaited before the rootfs is attached).
                if rootfs {
                    let fd = fds.next().ok_or_else(|| Error::Init("\"go\" without its rootfs".into()))?;
                    ctx.rootfs = fdbox_mount::MountFd::from_owned(fd, "rootfs");
                }
                let tasks: Vec<_> = fds.collect();
                if tasks.len() != cgroup_files.len() {
                    return Err(Error::Init("\"go\" without its cgroup files".into()));
                }
                fdbox_cgroups::SelfAttach::from_parts(cgroup_files, tasks).join()?;
            }
            _ => return Err(Error::Init("parent went away before the init's cgroup was made".into())),
        }
    }
    // Where we are in each hierarchy: read before a cgroup namespace hides it.
    if let Ok(text) = fdbox_cgroups::read_proc("/proc/self/cgroup") {
        rootfs::assign_cgroup_paths(&mut ctx.cgroups, &text);
    }
    if ctx.new_cgroupns {
        sys::unshare_cgroupns().sys("unshare", || "cgroup namespace".into())?;
    }
    Ok(())
}

fn join_namespaces(ctx: &InitCtx<'_>) -> Result<()> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType as L};
    for (typ, fd) in &ctx.join {
        let kind = match typ {
            LinuxNamespaceType::Network => L::Network,
            LinuxNamespaceType::Ipc => L::InterProcessCommunication,
            LinuxNamespaceType::Uts => L::HostNameAndNISDomainName,
            LinuxNamespaceType::Mount => L::Mount,
            LinuxNamespaceType::Cgroup => L::ControlGroup,
            LinuxNamespaceType::Time => L::Time,
            LinuxNamespaceType::User => L::User,
            LinuxNamespaceType::Pid => continue,
        };
        move_into_link_name_space(fd.as_fd(), Some(kind)).sys("setns", || format!("{typ:?} namespace"))?;
    }
    Ok(())
}

fn setup_rootfs(ctx: &mut InitCtx<'_>) -> Result<RootFd> {
    let linux = ctx.spec.linux().as_ref();
    let mount_ns = linux.and_then(|l| l.namespaces().as_ref()).is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    if !mount_ns {
        return chroot_rootfs(ctx);
    }
    let propagation = linux.and_then(|l| l.rootfs_propagation().as_deref());
    let root = rootfs::attach_rootfs(&ctx.rootfs, propagation)?;
    let mut dev_is_tmpfs = false;
    let mut readonly_last = Vec::new();
    for i in 0..ctx.mounts.len() {
        if matches!(ctx.mounts[i].0.typ.as_deref(), Some("cgroup" | "cgroup2")) {
            enter_cgroup(ctx)?;
        }
        let (entry, prepared) = &mut ctx.mounts[i];
        let ro = rootfs::mount_entry(&root, entry, prepared.take(), &ctx.cgroups, ctx.new_cgroupns)
            .map_err(|e| Error::Config(format!("mount {} ({}): {e}", entry.destination, entry.typ.as_deref().unwrap_or("bind"))))?;
        readonly_last.extend(ro);
        if entry.destination.trim_end_matches('/') == "/dev" && entry.typ.as_deref() == Some("tmpfs") {
            dev_is_tmpfs = true;
        }
    }
    let mut devices = if dev_is_tmpfs { rootfs::default_devices() } else { Vec::new() };
    for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        devices.retain(|x| x.path != d.path().to_string_lossy());
        devices.push(rootfs::Device {
            path: d.path().to_string_lossy().into_owned(),
            kind: match d.typ() {
                oci_spec::runtime::LinuxDeviceType::B => 'b',
                oci_spec::runtime::LinuxDeviceType::P => 'p',
                _ => 'c',
            },
            major: d.major() as u32,
            minor: d.minor() as u32,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    if dev_is_tmpfs || !devices.is_empty() {
        rootfs::setup_dev(&root, &devices, ctx.terminal)?;
    }
    // A missing cwd is made, as runc does (root's, 0755), once every mount
    // is there and before the rootfs turns read-only: inside the root, a
    // symlink on the way resolved in it (RootFd), never out of it.
    if let Some(p) = ctx.spec.process() {
        let cwd = p.cwd().to_string_lossy();
        root.ensure(&cwd, fdbox_mount::NodeKind::Dir).map_err(|e| Error::Config(format!("process.cwd {cwd:?}: {e}")))?;
    }
    // The create operation's hooks run here: every mount is made, and
    // pivot_root has not happened yet (runtime-spec); as in runc, before
    // the masks and read-only remounts, so they may still write there.
    enter_cgroup(ctx)?;
    ctx.hook_state = crate::hooks::init_before_pivot(&ctx.sync, ctx.spec)?;
    if let Some(l) = linux {
        rootfs::mask_paths(&root, l.masked_paths().as_deref().unwrap_or_default())?;
        rootfs::readonly_paths(&root, l.readonly_paths().as_deref().unwrap_or_default())?;
    }
    // A read-only tmpfs (or /dev) was made read-write for what goes in
    // and under it (devpts, device nodes, mount points): read-only now.
    for m in &readonly_last {
        rootfs::make_readonly(m)?;
    }
    // Last, once every mount point exists: `root.readonly` covers the
    // rootfs mount itself, not the mounts on top of it (as runc).
    if ctx.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        ctx.rootfs.set_attr(fdbox_mount::MountAttr::MOUNT_ATTR_RDONLY, fdbox_mount::MountAttr::empty(), None, false)?;
    }
    rootfs::enter_root(&root, ctx.no_pivot, propagation)?;
    Ok(root)
}

/// Without a mount namespace of its own (spec::validate refused whatever
/// needs a mount) the container shares the host's: no mount is made, and
/// the init chroots into its rootfs, the detached clone the parent made
/// (in no namespace, so `root.readonly` on it changes no host mount).
fn chroot_rootfs(ctx: &mut InitCtx<'_>) -> Result<RootFd> {
    if !ctx.mounts.is_empty() {
        return Err(Error::Config("mounts need a mount namespace of the container's own".into()));
    }
    let root = RootFd::new(rustix::io::fcntl_dupfd_cloexec(&ctx.rootfs, 0).sys("fcntl(F_DUPFD_CLOEXEC)", || "rootfs".into())?);
    if let Some(p) = ctx.spec.process() {
        let cwd = p.cwd().to_string_lossy();
        root.ensure(&cwd, fdbox_mount::NodeKind::Dir).map_err(|e| Error::Config(format!("process.cwd {cwd:?}: {e}")))?;
    }
    enter_cgroup(ctx)?;
    ctx.hook_state = crate::hooks::init_before_pivot(&ctx.sync, ctx.spec)?;
    if ctx.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        ctx.rootfs.set_attr(fdbox_mount::MountAttr::MOUNT_ATTR_RDONLY, fdbox_mount::MountAttr::empty(), None, false)?;
    }
    rustix::process::fchdir(&root).sys("fchdir", || "rootfs".into())?;
    rustix::process::chroot(".").sys("chroot", || "rootfs".into())?;
    rustix::process::chdir("/").sys("chdir", || "/".into())?;
    Ok(root)
}

fn set_hostname(spec: &Spec) -> Result<()> {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        rustix::system::sethostname(h.as_bytes()).sys("sethostname", || h.to_string())?;
    }
    // A `kernel.domainname` sysctl (written before) wins, as in runc.
    let sysctl_sets_it = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).is_some_and(|s| s.contains_key("kernel.domainname"));
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty() && !sysctl_sets_it) {
        rustix::system::setdomainname(d.as_bytes()).sys("setdomainname", || d.to_string())?;
    }
    Ok(())
}

/// Open a pty in the container's own devpts, send the master to the parent
/// (which hands it to the console socket), and make the slave our stdio and
/// controlling terminal, bound over /dev/console.
fn setup_console(ctx: &InitCtx<'_>, root: &RootFd) -> Result<()> {
    let process = ctx.spec.process().as_ref().ok_or_else(|| Error::Config("process is missing".into()))?;
    let (master, slave) = open_terminal(process)?;
    rootfs::bind_console(root, slave.as_fd())?;
    send_master(&ctx.sync, master)
}

/// Hand the pty master to the parent, last: once the client has it, it may
/// close it at any time, and nothing of our setup may depend on it then.
pub(crate) fn send_master(sync: &SyncSocket, master: OwnedFd) -> Result<()> {
    sync.send(&Msg::Console { name: "/dev/ptmx".into() }, &[master.as_fd()])
        .sys("sendmsg", || "console".into())
}

/// The terminal of a container process: a pty from the devpts of the mount
/// namespace we are in (the container's), its slave already our
/// controlling terminal and stdio. Returns (master, slave).
pub(crate) fn open_terminal(process: &oci_spec::runtime::Process) -> Result<(OwnedFd, OwnedFd)> {
    use rustix::pty::{openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).sys("open", || "/dev/ptmx".into())?;
    unlockpt(&master).sys("unlockpt", || "/dev/ptmx".into())?;
    let name = ptsname(&master, Vec::new()).sys("ptsname", || "/dev/ptmx".into())?;
    let name = name.to_string_lossy().into_owned();
    let slave = rustix::fs::open(name.as_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
        .sys("open", || name.clone())?;
    if let Some(size) = process.console_size() {
        let ws = rustix::termios::Winsize { ws_row: u16::try_from(size.height()).unwrap_or(u16::MAX), ws_col: u16::try_from(size.width()).unwrap_or(u16::MAX), ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&master, ws).sys("ioctl", || "TIOCSWINSZ".into())?;
    }
    // A new pty turns every "\n" written into "\r\n"; runc clears ONLCR so
    // that the program's output reaches the client as it wrote it.
    let mut t = rustix::termios::tcgetattr(&slave).sys("ioctl", || "TCGETS".into())?;
    t.output_modes.remove(rustix::termios::OutputModes::ONLCR);
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t).sys("ioctl", || "TCSETS".into())?;
    let _ = rustix::fs::fchown(&slave, Some(rustix::fs::Uid::from_raw(process.user().uid())), None);
    sys::set_controlling_terminal(slave.as_fd()).sys("ioctl", || "TIOCSCTTY".into())?;
    rustix::stdio::dup2_stdin(&slave).sys("dup2", || "pty → stdin".into())?;
    rustix::stdio::dup2_stdout(&slave).sys("dup2", || "pty → stdout".into())?;
    rustix::stdio::dup2_stderr(&slave).sys("dup2", || "pty → stderr".into())?;
    Ok((master, slave))
}

/// A new session keyring per container (runc's default), so containers do
/// not share the host's keys.
fn join_session_keyring(id: &str) -> Result<()> {
    match sys::join_session_keyring(&format!("_ses.{id}")) {
        // Kernels without keyrings, or a seccomp host policy that denies it.
        Ok(()) | Err(Errno::NOSYS) | Err(Errno::PERM) => Ok(()),
        Err(e) => Err(Error::sys("keyctl", "KEYCTL_JOIN_SESSION_KEYRING", e)),
    }
}

/// As runc: without a (non-empty) HOME in the environment, HOME is the
/// home directory of the process's uid in the container's /etc/passwd, or
/// "/". Runs in the container's root, as root, before the user switch.
fn set_home(envp: &mut Vec<CString>, uid: u32) {
    if envp.iter().any(|e| e.as_bytes().strip_prefix(b"HOME=").is_some_and(|v| !v.is_empty())) {
        return;
    }
    envp.retain(|e| e.as_bytes() != b"HOME=");
    let home = passwd_home(uid).unwrap_or_else(|| "/".into());
    // home_of never returns a NUL.
    if let Ok(h) = CString::new(format!("HOME={home}")) {
        envp.push(h);
    }
}

/// The home field of `uid`'s first entry in /etc/passwd (the container's:
/// we are in its root), if there is a non-empty one. The file is the
/// container's to shape: it is resolved in our root without magic links,
/// and only a regular file is read (no FIFO to block on, no device), at
/// most 4 MiB of it.
fn passwd_home(uid: u32) -> Option<String> {
    use std::io::Read;
    // No magic link: /proc/self/fd/N would name one of our own fds.
    let root = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    let fd = rustix::fs::openat2(&root, "etc/passwd", flags, Mode::empty(), resolve).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return None;
    }
    // Nor a "regular file" of the kernel's (a symlink to /proc/kmsg: we read
    // it with every capability, and a read consumes the host's kernel log).
    if rustix::fs::fstatfs(&fd).map_or(true, |fs| KERNEL_FS.contains(&(fs.f_type as u32))) {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::from(fd).take(4 << 20).read_to_end(&mut text).ok()?;
    home_of(&String::from_utf8_lossy(&text), uid)
}

/// Filesystems whose files the kernel makes up (procfs, sysfs, debugfs,
/// tracefs, securityfs, configfs, efivarfs, pstore, bpf, cgroup v1 and v2):
/// never a passwd file, and reading some of them acts on the host.
const KERNEL_FS: [u32; 11] =
    [0x9fa0, 0x6265_6572, 0x6462_6720, 0x7472_6163, 0x7363_6673, 0x6265_6570, 0xde5e_81e4, 0x6165_676c, 0xcafe_4a11, 0x0027_e0eb, 0x6367_7270];

/// `uid`'s home in passwd(5) text.
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty() && !f[5].contains('\0')).then(|| f[5].to_string())
    })
}

/// Resolve `argv[0]` as execvp would, inside the container, so that a
/// missing executable fails `create` (as runc does) rather than `start`.
fn find_executable(arg0: &CString, envp: &[CString]) -> Result<CString> {
    let name = arg0.to_string_lossy().into_owned();
    let runnable = |p: &str| -> bool {
        rustix::fs::stat(p).is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile)
            && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
    };
    if name.contains('/') {
        if runnable(&name) {
            return Ok(arg0.clone());
        }
        // runc's (Go's exec.LookPath) wording: clients map it to an exit code. podman
        // and conmon turn "no such file or directory" into 127 and "permission denied"
        // into 126, as a shell does.
        return Err(Error::Init(match rustix::fs::stat(name.as_str()) {
            Err(Errno::NOENT) => format!("exec: {name:?}: stat {name}: no such file or directory"),
            Err(e) => format!("exec: {name:?}: stat {name}: {e}"),
            Ok(_) => format!("exec: {name:?}: permission denied"),
        }));
    }
    let path = envp
        .iter()
        .filter_map(|e| e.to_str().ok())
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{name}");
        if runnable(&cand) {
            return CString::new(cand).map_err(|_| Error::Config("NUL in PATH".into()));
        }
    }
    Err(Error::Init(format!("exec: {name:?}: executable file not found in $PATH")))
}

/// Make `cwd` the working directory, resolved inside the process's root
/// (the container's, after pivot_root): `openat2("/", cwd, RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS)` and `fchdir`. A `/proc/self/fd/N` cwd would
/// otherwise follow one of our own host fds (the state dir, the bundle, a
/// cgroup directory) out of the container: the CVE-2024-21626 class.
fn enter_cwd(cwd: &str) -> Result<(), Errno> {
    use rustix::fs::ResolveFlags;
    let root = rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let dir = rustix::fs::openat2(
        &root,
        cwd,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?;
    rustix::process::fchdir(&dir)
}

/// Let a non-root container user use the stdio it was given (pipes from
/// the caller), as runc does; /dev/null and terminals are left alone.
fn fix_stdio_owner(uid: u32, gid: u32) {
    if uid == 0 {
        return;
    }
    for fd in [rustix::stdio::stdin(), rustix::stdio::stdout(), rustix::stdio::stderr()] {
        if let Ok(st) = rustix::fs::fstat(fd) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice {
                continue;
            }
            let _ = rustix::fs::fchown(fd, Some(rustix::fs::Uid::from_raw(uid)), Some(rustix::fs::Gid::from_raw(gid)));
        }
    }
}

pub(crate) fn switch_user(uid: u32, gid: u32, additional: &[u32]) -> Result<()> {
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let groups: Vec<rustix::process::Gid> = additional.iter().map(|g| rustix::process::Gid::from_raw(*g)).collect();
    set_thread_groups(&groups).sys("setgroups", || format!("{additional:?}"))?;
    let g = rustix::process::Gid::from_raw(gid);
    set_thread_res_gid(g, g, g).sys("setresgid", || gid.to_string())?;
    let u = rustix::process::Uid::from_raw(uid);
    set_thread_res_uid(u, u, u).sys("setresuid", || uid.to_string())?;
    // Defence in depth: an id the kernel reads as -1 ("unchanged") or any
    // other surprise must not leave the process with ids it did not ask for
    // (validation refuses such ids before anything is made).
    let (uids, gids) = crate::sys::getresuid_gid().sys("getresuid", String::new)?;
    let mut got: Vec<u32> = rustix::process::getgroups().sys("getgroups", String::new)?.iter().map(|g| g.as_raw()).collect();
    let mut want = additional.to_vec();
    got.sort_unstable();
    got.dedup();
    want.sort_unstable();
    want.dedup();
    if uids != [uid; 3] || gids != [gid; 3] || got != want {
        return Err(Error::Config(format!(
            "switching to uid {uid} gid {gid} groups {additional:?} left uids {uids:?} gids {gids:?} groups {got:?}"
        )));
    }
    Ok(())
}

/// Wait on init.sock for `start`, then exec. After a successful execve the
/// close-on-exec connection closes, which tells `start` that the program
/// runs; a failure is written to the connection instead.
fn wait_and_exec(ctx: &InitCtx<'_>, exe: &CString) -> i32 {
    // The sync socket is done with; the parent may be gone already.
    let conn = loop {
        match rustix::net::accept_with(&ctx.listener, rustix::net::SocketFlags::CLOEXEC) {
            Ok(c) => break c,
            Err(Errno::INTR) => continue,
            Err(_) => return 1,
        }
    };
    let mut buf = [0u8; 16];
    match rustix::io::read(&conn, &mut buf) {
        Ok(n) if &buf[..n] == b"start" => {}
        _ => return 1,
    }
    let fail = |msg: String| -> i32 {
        let _ = rustix::io::write(&conn, msg.as_bytes());
        127
    };
    // In the container, as its user, before its program (runtime-spec).
    if let Some(state) = &ctx.hook_state {
        if let Err(e) = crate::hooks::run(ctx.spec, crate::hooks::Kind::StartContainer, state) {
            return fail(e.to_string());
        }
    }
    let process = match ctx.spec.process().as_ref() {
        Some(p) => p,
        None => return fail("process is missing".into()),
    };
    if process.no_new_privileges() == Some(true) {
        if let Err(e) = rustix::thread::set_no_new_privs(true) {
            return fail(format!("prctl(PR_SET_NO_NEW_PRIVS): {}", fdbox_mount::describe(e)));
        }
    }
    // Again, for what was opened since setup (every such fd of ours is
    // close-on-exec already). Not under the container's seccomp filter,
    // which without no_new_privs is in place by now: it may deny
    // close_range (EPERM, ENOSYS, a fake success with errnoRet 0) or hand
    // it to a NOTIFY agent that expects only the container's calls; the
    // marking before the filter is what counts then (see setup).
    let filtered = process.no_new_privileges() != Some(true) && ctx.seccomp.is_some();
    if !filtered {
        if let Err(e) = sys::cloexec_from(3 + ctx.extra_fds) {
            return fail(format!("close_range: {}", fdbox_mount::describe(e)));
        }
    }
    sys::reset_signals();
    // With no_new_privs, seccomp is the last step before execve, so that
    // the filter sees as few of our own system calls as possible.
    if process.no_new_privileges() == Some(true) {
        if let Some(s) = &ctx.seccomp {
            if let Err(e) = s.install() {
                return fail(e.to_string());
            }
        }
    }
    let e = sys::execve(exe, &ctx.argv, &ctx.envp);
    fail(format!("exec {:?}: {}", exe, fdbox_mount::describe(e)))
}

#[cfg(test)]
mod tests {
    use super::home_of;

    #[test]
    fn home_from_passwd() {
        let text = "root:x:0:0:root:/root:/bin/sh\nbad line\nnobody:x:65534:65534::/nonexistent:/bin/false\n\
                    noshell:x:7:7::/seven\nempty:x:8:8:::/bin/sh\nnul:x:9:9::/a\0b:/bin/sh\ndup:x:0:0::/other:/bin/sh\n";
        assert_eq!(home_of(text, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(text, 65534).as_deref(), Some("/nonexistent"));
        assert_eq!(home_of(text, 7).as_deref(), Some("/seven"));
        assert_eq!(home_of(text, 8), None);
        assert_eq!(home_of(text, 9), None);
        assert_eq!(home_of(text, 1234), None);
    }
}

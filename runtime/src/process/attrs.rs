//! Process attributes of the config that are not privileges:
//! `process.oomScoreAdj`, `process.scheduler`, `process.ioPriority`,
//! `linux.personality`, and the LSM labels `process.apparmorProfile` /
//! `process.selinuxLabel` (honoured where the LSM is enabled, a clear error
//! where it is not). The init and the `exec` child both apply them.

use std::os::fd::AsFd;

use oci_spec::runtime::{
    IOPriorityClass, Linux, LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, Process, Scheduler, Spec,
};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result, SysContext};
use crate::security::sysctl::check_procfs;
use crate::sys;

/// Checks that need nothing but the config (and, for the LSMs, whether the
/// host has them): everything `create` would otherwise find out half-way.
pub fn validate(spec: &Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        validate_process(p)?;
    }
    if let Some(linux) = spec.linux() {
        if let Some(flags) = linux.personality().as_ref().and_then(|p| p.flags().as_ref()).filter(|f| !f.is_empty()) {
            return Err(Error::Config(format!("linux.personality.flags {flags:?}: no personality flags are supported")));
        }
        if linux.mount_label().as_deref().is_some_and(|l| !l.is_empty()) && !lsm_enabled("selinux") {
            return Err(Error::Unsupported("linux.mountLabel is set but SELinux is not enabled on this host".into()));
        }
    }
    crate::security::sysctl::validate(spec)?;
    crate::process::timens::validate(spec)
}

/// The highest uid or gid a process may be given: runc's limit (2^31-1).
/// Above it, 4294967295 is -1 to setresuid/setresgid/setgroups, which means
/// "leave unchanged": the process would keep the init's uid 0.
pub const MAX_ID: u32 = i32::MAX as u32;

/// Refuse an id above [`MAX_ID`]; `what` names where it came from.
pub fn check_id(what: &str, id: u32) -> Result<()> {
    if id > MAX_ID {
        return Err(Error::Config(format!(
            "{what} {id}: ids above {MAX_ID} (2^31-1, runc's limit) are refused (to setresuid, 4294967295 means \"unchanged\")"
        )));
    }
    Ok(())
}

/// The checks of one process (the container's, or an `exec -p` one).
pub fn validate_process(p: &Process) -> Result<()> {
    let user = p.user();
    check_id("process.user.uid", user.uid())?;
    check_id("process.user.gid", user.gid())?;
    for g in user.additional_gids().iter().flatten() {
        check_id("process.user.additionalGids entry", *g)?;
    }
    if let Some(size) = p.console_size() {
        if size.height() > u64::from(u16::MAX) || size.width() > u64::from(u16::MAX) {
            return Err(Error::Config(format!(
                "process.consoleSize {}x{}: a terminal is at most 65535x65535",
                size.height(),
                size.width()
            )));
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(Error::Config(format!("process.oomScoreAdj {adj}: must be within -1000..1000")));
        }
    }
    if let Some(s) = p.scheduler() {
        sched_attr(s)?;
    }
    if let Some(io) = p.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return Err(Error::Config(format!("process.ioPriority.priority {}: must be within 0..7", io.priority())));
        }
    }
    if p.apparmor_profile().as_deref().is_some_and(|s| !s.is_empty()) && !lsm_enabled("apparmor") {
        return Err(Error::Unsupported("process.apparmorProfile is set but AppArmor is not enabled on this host".into()));
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) && !lsm_enabled("selinux") {
        return Err(Error::Unsupported("process.selinuxLabel is set but SELinux is not enabled on this host".into()));
    }
    Ok(())
}

/// Whether the LSM `name` is active: the list in securityfs when it is
/// mounted, else the module's own switch (AppArmor) or filesystem (SELinux).
pub fn lsm_enabled(name: &str) -> bool {
    if let Ok(list) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        return list.trim().split(',').any(|l| l == name);
    }
    match name {
        "apparmor" => std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.starts_with('Y')),
        "selinux" => std::path::Path::new("/sys/fs/selinux/enforce").exists(),
        _ => false,
    }
}

/// `process.oomScoreAdj`, written to `/proc/self/oom_score_adj` at the very
/// start of the init or exec child: still in the host's mount namespace, so
/// through the host's procfs (nothing of the container can redirect it),
/// and before any privilege is dropped. Raising works for anyone; lowering
/// needs CAP_SYS_RESOURCE, and its absence is named in the error.
pub fn apply_oom_score_adj(p: &Process) -> Result<()> {
    let Some(adj) = p.oom_score_adj() else { return Ok(()) };
    let path = "/proc/self/oom_score_adj";
    let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).sys("open", || path.into())?;
    check_procfs(fd.as_fd(), path)?;
    let mut buf = [0u8; 16];
    let n = rustix::io::read(&fd, &mut buf).sys("read", || path.into())?;
    let current: i32 = std::str::from_utf8(&buf[..n]).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    if current == adj {
        return Ok(());
    }
    match rustix::io::pwrite(&fd, adj.to_string().as_bytes(), 0) {
        Ok(_) => Ok(()),
        Err(Errno::ACCESS | Errno::PERM) if adj < current => Err(Error::Config(format!(
            "process.oomScoreAdj {adj}: lowering the OOM score adjustment below {current} needs CAP_SYS_RESOURCE, \
             which this runtime does not have (write {path}: EACCES)"
        ))),
        Err(e) => Err(Error::sys("write", format!("{path} ({adj})"), e)),
    }
}

/// `linux.personality`, `process.scheduler`, `process.ioPriority` and the
/// LSM labels: applied before the switch to the container's user, while
/// the capabilities a real-time class or a negative nice needs are still
/// there. All of them survive execve.
pub fn apply(p: &Process, linux: Option<&Linux>) -> Result<()> {
    if let Some(pers) = linux.and_then(|l| l.personality().as_ref()) {
        let persona = match pers.domain() {
            LinuxPersonalityDomain::PerLinux => 0x0000,
            LinuxPersonalityDomain::PerLinux32 => 0x0008,
        };
        sys::set_personality(persona).sys("personality", || format!("{:?}", pers.domain()))?;
    }
    if let Some(s) = p.scheduler() {
        let attr = sched_attr(s)?;
        sys::sched_setattr(&attr).map_err(|e| {
            Error::Config(format!("process.scheduler {:?}: sched_setattr: {}", s.policy(), fdbox_mount::describe(e)))
        })?;
    }
    if let Some(io) = p.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => 1,
            IOPriorityClass::IoprioClassBe => 2,
            IOPriorityClass::IoprioClassIdle => 3,
        };
        sys::ioprio_set(class, io.priority() as u32).map_err(|e| {
            Error::Config(format!("process.ioPriority {:?}/{}: ioprio_set: {}", io.class(), io.priority(), fdbox_mount::describe(e)))
        })?;
    }
    apply_lsm(p)
}

/// The `sched_attr` of a `process.scheduler`, validated as sched_setattr(2)
/// would (so that `create` fails before anything exists).
pub fn sched_attr(s: &Scheduler) -> Result<sys::SchedAttr> {
    let policy = *s.policy();
    let bad = |why: &str| Error::Config(format!("process.scheduler ({policy:?}): {why}"));
    let number = match policy {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => return Err(bad("SCHED_ISO is not implemented by Linux")),
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(bad("nice must be within -20..19"));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, LinuxSchedulerPolicy::SchedFifo | LinuxSchedulerPolicy::SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(bad("priority must be within 1..99 for a real-time policy"));
    }
    if !realtime && priority != 0 {
        return Err(bad("priority must be 0 for a policy that is not real-time"));
    }
    let (runtime, deadline, period) = (s.runtime().unwrap_or(0), s.deadline().unwrap_or(0), s.period().unwrap_or(0));
    if policy == LinuxSchedulerPolicy::SchedDeadline {
        let period_or_deadline = if period == 0 { deadline } else { period };
        if runtime == 0 || runtime > deadline || deadline > period_or_deadline {
            return Err(bad("SCHED_DEADLINE needs 0 < runtime <= deadline <= period"));
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err(bad("runtime, deadline and period are for SCHED_DEADLINE only"));
    }
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(sys::SchedAttr {
        sched_policy: number,
        sched_flags: flags,
        sched_nice: nice,
        sched_priority: priority as u32,
        sched_runtime: runtime,
        sched_deadline: deadline,
        sched_period: period,
        ..Default::default()
    })
}

/// Where the LSM is enabled, set the label the next execve switches to:
/// `exec <profile>` to AppArmor's `attr/apparmor/exec` (or the older shared
/// `attr/exec`), the SELinux context to `attr/exec`. The attribute is
/// written through a procfs of our own (a detached `fsopen("proc")` mount)
/// and checked to be procfs, so a fake /proc in the container cannot
/// swallow it (the CVE-2019-16884 / CVE-2023-27561 class).
fn apply_lsm(p: &Process) -> Result<()> {
    let apparmor = p.apparmor_profile().as_deref().filter(|s| !s.is_empty());
    let selinux = p.selinux_label().as_deref().filter(|s| !s.is_empty());
    if apparmor.is_none() && selinux.is_none() {
        return Ok(());
    }
    let proc = fdbox_mount::FsContext::new("proc")?.mount(
        fdbox_mount::MountAttr::MOUNT_ATTR_NOSUID | fdbox_mount::MountAttr::MOUNT_ATTR_NODEV | fdbox_mount::MountAttr::MOUNT_ATTR_NOEXEC,
    )?;
    check_procfs(proc.as_fd(), "proc (for the LSM label)")?;
    // thread-self is a plain symlink inside this procfs; magic links and
    // other mounts stay refused.
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_XDEV | ResolveFlags::NO_MAGICLINKS;
    let write_attr = |paths: &[&str], value: &str, what: &str| -> Result<()> {
        let mut last = Errno::NOENT;
        for path in paths {
            match rustix::fs::openat2(&proc, *path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty(), resolve) {
                Ok(fd) => {
                    check_procfs(fd.as_fd(), path)?;
                    return rustix::io::write(&fd, value.as_bytes())
                        .map(|_| ())
                        .map_err(|e| Error::Config(format!("{what}: write /proc/{path}: {}", fdbox_mount::describe(e))));
                }
                Err(e) => last = e,
            }
        }
        Err(Error::Config(format!("{what}: open /proc/{}: {}", paths[0], fdbox_mount::describe(last))))
    };
    if let Some(profile) = apparmor {
        write_attr(&["thread-self/attr/apparmor/exec", "thread-self/attr/exec"], &format!("exec {profile}"), "process.apparmorProfile")?;
    }
    if let Some(label) = selinux {
        write_attr(&["thread-self/attr/exec"], label, "process.selinuxLabel")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(v: serde_json::Value) -> Result<sys::SchedAttr> {
        sched_attr(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn scheduler_validation() {
        let a = sched(serde_json::json!({"policy": "SCHED_FIFO", "priority": 10})).unwrap();
        assert_eq!((a.sched_policy, a.sched_priority), (1, 10));
        let a = sched(serde_json::json!({"policy": "SCHED_BATCH", "nice": 5})).unwrap();
        assert_eq!((a.sched_policy, a.sched_nice), (3, 5));
        assert!(sched(serde_json::json!({"policy": "SCHED_FIFO"})).is_err());
        assert!(sched(serde_json::json!({"policy": "SCHED_OTHER", "priority": 3})).is_err());
        assert!(sched(serde_json::json!({"policy": "SCHED_OTHER", "nice": 40})).is_err());
        assert!(sched(serde_json::json!({"policy": "SCHED_ISO"})).is_err());
        assert!(sched(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 5, "period": 20})).is_err());
        let a = sched(serde_json::json!({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30})).unwrap();
        assert_eq!((a.sched_policy, a.sched_runtime, a.sched_period), (6, 10, 30));
        assert!(sched(serde_json::json!({"policy": "SCHED_OTHER", "runtime": 10})).is_err());
    }

    #[test]
    fn process_validation() {
        let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "oomScoreAdj": 2000})).unwrap();
        assert!(validate_process(&p).unwrap_err().to_string().contains("oomScoreAdj"));
        let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 0, "gid": 0}, "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 9}})).unwrap();
        assert!(validate_process(&p).unwrap_err().to_string().contains("ioPriority"));
        for user in [
            serde_json::json!({"uid": 4294967295u32, "gid": 0}),
            serde_json::json!({"uid": 0, "gid": 2147483648u32}),
            serde_json::json!({"uid": 0, "gid": 0, "additionalGids": [1, 4294967295u32]}),
        ] {
            let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": user})).unwrap();
            assert!(validate_process(&p).unwrap_err().to_string().contains("2147483647"), "{user}");
        }
        let p: Process = serde_json::from_value(serde_json::json!({"cwd": "/", "user": {"uid": 2147483647u32, "gid": 2147483647u32}})).unwrap();
        validate_process(&p).unwrap();
    }
}

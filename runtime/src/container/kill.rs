//! `kill ID [SIGNAL]`.

use super::{status, Status};
use crate::error::{Error, Result, SysContext};
use crate::state::Root;

/// Parse a signal as runc does: a number, or a name with or without `SIG`.
/// 0 is accepted, as by runc and kill(1): a probe that only checks the
/// container is alive.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (0..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Config(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => {
            let rt = |base: i32, off: &str| off.parse::<i32>().ok().map(|o| base + o);
            let n = if name == "RTMIN" {
                Some(libc::SIGRTMIN())
            } else if name == "RTMAX" {
                Some(libc::SIGRTMAX())
            } else if let Some(o) = name.strip_prefix("RTMIN+") {
                rt(libc::SIGRTMIN(), o)
            } else if let Some(o) = name.strip_prefix("RTMAX-") {
                o.parse::<i32>().ok().map(|o| libc::SIGRTMAX() - o)
            } else {
                None
            };
            match n {
                Some(n) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => n,
                _ => return Err(Error::Config(format!("unknown signal {s:?}"))),
            }
        }
    };
    Ok(n)
}

/// Send `sig` to the container's init through its pidfd; with `all`, to
/// every process of its cgroup (v2 `cgroup.kill` for SIGKILL; otherwise
/// each member through its own pidfd, frozen meanwhile on v1). Signal 0
/// sends nothing: it succeeds while the init lives.
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    let (s, init) = status(&dir, &st);
    let init = match (s, init) {
        // As runc, `--all` of a stopped container signals what is left in
        // its cgroup (processes that outlived the init of a shared pid
        // namespace) and succeeds when nothing is: containerd's runc shim
        // calls it after the first process of such a pod exits.
        // With a pid namespace of its own, nothing of the container can be
        // left (the kernel killed the namespace with its init): whatever its
        // recorded cgroup holds now is not its own (another container made at
        // the same cgroupsPath since), and is not signalled, as runc 1.2.
        (Status::Stopped, _) | (_, None) if all && super::has_private_pid_ns(&st) => return Ok(()),
        (Status::Stopped, _) | (_, None) if all => {
            return match super::open_cgroup(&st) {
                Some(cg) if sig != 0 => Ok(cg.kill_all(signal_of(sig)?)?),
                _ => Ok(()),
            };
        }
        // "container not running" is runc's wording, and containerd's runc shim looks for
        // it to tell "the process already exited" (NotFound) from a failed kill.
        (Status::Stopped, _) | (_, None) => {
            return Err(Error::State(format!("cannot signal container \"{id}\": container not running")))
        }
        (_, Some(i)) => i,
    };
    if sig == 0 {
        return Ok(());
    }
    if all {
        let cg = super::require_cgroup(&st)?;
        return Ok(cg.kill_all(signal_of(sig)?)?);
    }
    // SIGKILL of the init of a pid namespace of the container's own kills
    // every process of it (pid_namespaces(7)); in the host's pid namespace
    // (or a joined one), the rest of the container would outlive it: as
    // runc (1.2 on), SIGKILL goes to every process of the cgroup then.
    if sig == libc::SIGKILL && !own_pid_namespace(&st.config) {
        if let Some(cg) = super::open_cgroup(&st) {
            // (kill_all thaws a frozen cgroup for SIGKILL.)
            return Ok(cg.kill_all(rustix::process::Signal::KILL)?);
        }
    }
    init.signal(sig).sys("pidfd_send_signal", || format!("container {id} init (pid {})", init.pid()))?;
    // A frozen process acts on SIGKILL only once thawed (v1 freezer): as
    // runc, a paused container is thawed for SIGKILL, and only for it.
    if sig == libc::SIGKILL && s == Status::Paused {
        super::require_cgroup(&st)?.thaw()?;
    }
    Ok(())
}

/// Whether the container has a new pid namespace (one without a path; an
/// empty path means new too).
fn own_pid_namespace(spec: &oci_spec::runtime::Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType;
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    namespaces.is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())))
}

fn signal_of(sig: i32) -> Result<rustix::process::Signal> {
    rustix::process::Signal::from_named_raw(sig).ok_or_else(|| Error::Config(format!("invalid signal {sig}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("NOPE").is_err());
        assert_eq!(parse_signal("0").unwrap(), 0);
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal("99").is_err());
    }
}

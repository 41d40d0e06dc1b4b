//! `process.rlimits` with `prlimit` on the init itself.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType as T};
use rustix::process::{prlimit, Resource, Rlimit};

use crate::error::{Error, Result};

fn resource(t: T) -> Option<Resource> {
    Some(match t {
        T::RlimitCpu => Resource::Cpu,
        T::RlimitFsize => Resource::Fsize,
        T::RlimitData => Resource::Data,
        T::RlimitStack => Resource::Stack,
        T::RlimitCore => Resource::Core,
        T::RlimitRss => Resource::Rss,
        T::RlimitNproc => Resource::Nproc,
        T::RlimitNofile => Resource::Nofile,
        T::RlimitMemlock => Resource::Memlock,
        T::RlimitAs => Resource::As,
        T::RlimitLocks => Resource::Locks,
        T::RlimitSigpending => Resource::Sigpending,
        T::RlimitMsgqueue => Resource::Msgqueue,
        T::RlimitNice => Resource::Nice,
        T::RlimitRtprio => Resource::Rtprio,
        T::RlimitRttime => Resource::Rttime,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// Set every rlimit; a raise of a hard limit without CAP_SYS_RESOURCE
/// fails with a message that names the limit.
pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let r = resource(l.typ()).ok_or_else(|| Error::Config(format!("unsupported rlimit {:?}", l.typ())))?;
        let lim = Rlimit { current: Some(l.soft()), maximum: Some(l.hard()) };
        let lim = Rlimit {
            current: lim.current.filter(|v| *v != u64::MAX),
            maximum: lim.maximum.filter(|v| *v != u64::MAX),
        };
        prlimit(None, r, lim).map(drop).map_err(|e| {
            Error::Config(format!(
                "setrlimit {:?} soft={} hard={}: {}",
                l.typ(),
                l.soft(),
                l.hard(),
                fdbox_mount::describe(e)
            ))
        })?;
    }
    Ok(())
}

//! What shapes the container process's privileges: capabilities, rlimits,
//! seccomp.

pub mod caps;
pub mod rlimits;
pub mod seccomp;
pub mod sysctl;

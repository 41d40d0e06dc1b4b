//! What shapes the container process's privileges: capabilities, rlimits.

pub mod caps;
pub mod rlimits;

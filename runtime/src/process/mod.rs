//! The container's process: `clone3` with a pidfd, the sync protocol, and
//! the init side that turns the clone into the container.

pub mod attrs;
pub mod exec;
pub mod init;
pub mod pidfd;
pub mod sealed;
pub mod sync;
pub mod userns;
pub mod timens;

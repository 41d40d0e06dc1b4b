//! `containerd-shim-fdbox-v2`: a containerd runtime v2 shim (task API v2)
//! that runs containers with the `fdbox` binary and holds every container
//! process as a pidfd.
//!
//! * [`service`]: the task service and the `start`/`delete` actions.
//! * [`monitor`]: the one event loop that polls every pidfd and reaps.
//! * [`runtime`]: driving the `fdbox` binary (`create`/`exec` hand the
//!   process back over `--pidfd-socket`).
//! * [`stdio`]: the process's stdio and the copies to containerd's FIFOs.
//! * [`rootfs`]: mounting the rootfs containerd gives on `<bundle>/rootfs`.
//! * [`handoff`]: the pidfd hand-off socket (docs/pidfd-handoff.md).
//! * [`events`], [`metrics`]: what is reported to containerd.

pub mod error;
pub mod events;
pub use fdbox_fdpass as fdpass;
pub mod handoff;
pub mod metrics;
pub mod monitor;
pub mod pidfd;
pub mod rootfs;
pub mod runtime;
pub mod service;
pub mod stdio;
pub mod sys;

pub use error::{Error, Result};

/// The shim's `main`: one malloc arena and SIGCHLD blocked before any
/// thread exists (the monitor reads SIGCHLD from a signalfd), then containerd-shim parses the
/// command line and runs the action (`start`, `delete`, or serving).
pub fn main() {
    sys::single_malloc_arena();
    if let Err(e) = sys::block_sigchld() {
        eprintln!("{}: blocking SIGCHLD: {e}", service::RUNTIME_ID);
        std::process::exit(1);
    }
    let config = containerd_shim::Config { no_reaper: true, ..Default::default() };
    containerd_shim::run::<service::FdboxShim>(service::RUNTIME_ID, Some(config));
}

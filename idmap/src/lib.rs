//! `fdbox-idmap`: id mappings (validated), user namespaces held as fds,
//! and what it takes to idmap a mount onto one.
//!
//! A container with a user namespace runs from an ordinary root-owned
//! rootfs: instead of `chown -R`, the rootfs is an idmapped mount whose
//! mapping is the container's user namespace, so host uid 0 on disk appears
//! as container uid 0 and what container root writes lands as host uid 0.

mod error;
mod map;
mod userns;

pub use error::{Error, Result};
pub use map::{format_map, validate, IdMap, MAX_EXTENTS};
pub use userns::{write_mappings, UserNsFd};

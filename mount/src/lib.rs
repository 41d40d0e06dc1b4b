//! `fdbox-mount`: typed wrappers over the Linux mount API and the rootfs
//! assembly built on them.
//!
//! Every mount is a file descriptor from creation to attachment:
//!
//! * a new filesystem: [`FsContext`] (`fsopen` → `fsconfig`) → [`FsContext::mount`]
//!   (`fsmount`) → [`MountFd`];
//! * a bind mount: [`MountFd::clone_tree`] (`open_tree(OPEN_TREE_CLONE)`);
//! * flags and propagation: [`MountFd::set_attr`] (`mount_setattr`);
//! * attaching: [`MountFd::attach`] (`move_mount` onto an `O_PATH` fd).
//!
//! Paths inside a container's rootfs are resolved with [`RootFd`]
//! (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`), so no symlink in a
//! rootfs can point a mount, a mask or a write outside it.

mod copyup;
mod error;
mod fd;
pub mod options;
mod root;
pub mod rootfs;
mod sys;

pub use error::{describe, Error, Result};
pub use fd::{set_attr_fd, FsContext, MountAttr, MountFd, Propagation};
pub use options::{MountOptions, PropagationChange};
pub use root::{NodeKind, RootFd};

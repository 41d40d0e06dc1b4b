//! fdbox: an OCI container runtime that holds every kernel object as a file
//! descriptor. See DESIGN.md for the architecture and the create flow.

pub mod cli;
pub mod container;
pub mod error;
pub use fdbox_fdpass as fdpass;
pub mod hooks;
pub mod log;
pub mod notify;
pub mod process;
pub mod security;
pub mod spec;
pub mod state;
pub mod sys;
pub mod time;

pub use error::{Error, Result};

#[cfg(test)]
mod fuzz_tests;

//! `regex`, as far as fdbox's dependencies use it, over `regex-lite`.
//!
//! oci-spec (0.9 and 0.10) validates `process.execCPUAffinity` with one
//! ASCII pattern (`^(\d+(-\d+)?)(,\d+(-\d+)?)*$`) and, in its
//! `distribution` module, image references; for that it pulls in the full
//! `regex` engine, about 490 KiB of fdbox's static binary (regex-automata,
//! aho-corasick, regex-syntax). On the development host the kernel makes
//! the whole executable resident at exec, so that was 490 KiB of peak RSS
//! in every `fdbox` process. `regex-lite` has the same syntax for these
//! patterns, with ASCII-only classes (`\d` is `[0-9]`, which is what the
//! kernel's cpu list parser accepts anyway) and no Unicode tables.
//!
//! The workspace's `[patch.crates-io]` puts this crate in place of
//! `regex`; remove both to go back to the real one.

pub use regex_lite::{escape, Captures, Error, Match, Regex, RegexBuilder};

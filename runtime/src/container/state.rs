//! `state ID`: the runtime-spec state of a container, as runc prints it.

use std::collections::HashMap;

use serde::Serialize;

use super::status;
use crate::error::Result;
use crate::state::{Root, State, StateDir};

/// The runtime-spec state object (runc's field order and names).
#[derive(Debug, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

impl OciState {
    pub fn of(dir: &StateDir, st: &State) -> OciState {
        let (s, init) = status(dir, st);
        OciState {
            oci_version: st.oci_version.clone(),
            id: st.id.clone(),
            pid: if init.is_some() { st.pid } else { 0 },
            status: s.as_str(),
            bundle: st.bundle.clone(),
            rootfs: st.rootfs.clone(),
            created: st.created.clone(),
            annotations: st.annotations.clone(),
            owner: st.owner.clone(),
        }
    }
}

/// The state of `id` as pretty JSON (runc indents it).
pub fn state_json(root: &Root, id: &str) -> Result<String> {
    let dir = root.open_container(id)?;
    let st = dir.read_state()?;
    Ok(serde_json::to_string_pretty(&OciState::of(&dir, &st)).unwrap_or_default())
}

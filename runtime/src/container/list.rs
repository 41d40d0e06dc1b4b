//! `list [-f table|json] [-q]`.

use super::OciState;
use crate::error::Result;
use crate::state::Root;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Table,
    Json,
}

/// Every container under the root; containers mid-create (no state yet)
/// are skipped, as are ids another command is deleting.
pub fn list(root_path: &str, format: ListFormat, quiet: bool) -> Result<String> {
    let states: Vec<OciState> = match crate::state::Root::open(root_path, false) {
        Ok(root) => collect(&root)?,
        Err(_) => Vec::new(),
    };
    if quiet {
        return Ok(states.iter().map(|s| format!("{}\n", s.id)).collect());
    }
    Ok(match format {
        // runc prints Go's nil slice, `null`, when there is no container.
        ListFormat::Json if states.is_empty() => "null\n".to_string(),
        ListFormat::Json => format!("{}\n", serde_json::to_string(&states).unwrap_or_else(|_| "[]".into())),
        ListFormat::Table => table(&states),
    })
}

fn collect(root: &Root) -> Result<Vec<OciState>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        let Ok(dir) = root.open_container(&id) else { continue };
        let Ok(st) = dir.read_state() else { continue };
        out.push(OciState::of(&dir, &st));
    }
    Ok(out)
}

fn table(states: &[OciState]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| [s.id.clone(), s.pid.to_string(), s.status.to_string(), s.bundle.clone(), s.created.clone(), s.owner.clone()])
        .collect();
    // runc's tabwriter: cells padded by 3, at least 12 wide.
    let mut width = header.map(|h| (h.len() + 3).max(12));
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.len() + 3);
        }
    }
    let line = |cells: &[&str]| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}", w = width[i]));
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(&r.each_ref().map(|s| s.as_str())));
    }
    out
}

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Output format: table (ps output) or json (a list of pids).
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Options for ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

impl PsArgs {
    /// As runc: JSON is the pid list; the table is ps(1)'s output filtered
    /// to the container's processes.
    pub fn render(&self, pids: &[i32]) -> Result<String> {
        if self.format == "json" {
            return Ok(format!("{}\n", serde_json::to_string(pids).unwrap_or_else(|_| "[]".into())));
        }
        let args: Vec<String> = if self.ps_args.is_empty() { vec!["-ef".into()] } else { self.ps_args.clone() };
        let out = std::process::Command::new("ps")
            .args(&args)
            .output()
            .map_err(|e| Error::State(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::State(format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let col = header
            .split_whitespace()
            .position(|h| h == "PID")
            .ok_or_else(|| Error::State("ps output has no PID column".into()))?;
        let mut res = format!("{header}\n");
        for l in lines {
            if let Some(pid) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
                if pids.contains(&pid) {
                    res.push_str(l);
                    res.push('\n');
                }
            }
        }
        Ok(res)
    }
}

use clap::Args;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct SpecArgs {
    /// Directory to write config.json into.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: String,
    /// A spec for a rootless container.
    #[arg(long)]
    pub rootless: bool,
}

impl SpecArgs {
    /// Write `<bundle>/config.json`; refuse to overwrite one, as runc does.
    pub fn run(&self) -> Result<()> {
        let path = std::path::Path::new(&self.bundle).join("config.json");
        let json = serde_json::to_string_pretty(&crate::spec::default_spec(self.rootless)).unwrap_or_default();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        std::io::Write::write_all(&mut f, json.as_bytes()).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

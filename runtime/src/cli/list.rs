use clap::Args;

use crate::container::ListFormat;

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Output format: table or json.
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl ListArgs {
    pub fn format(&self) -> ListFormat {
        if self.format == "json" {
            ListFormat::Json
        } else {
            ListFormat::Table
        }
    }
}

use clap::Args;

use super::create::CreateArgs;
use crate::container::RunOpts;

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Detach from the container (do not wait for it).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Accepted for compatibility: fdbox is the parent of the init anyway.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

impl RunArgs {
    pub fn opts(&self) -> RunOpts {
        RunOpts { create: self.create.opts(), detach: self.detach, keep: self.keep }
    }
}

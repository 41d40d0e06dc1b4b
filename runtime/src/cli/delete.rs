use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

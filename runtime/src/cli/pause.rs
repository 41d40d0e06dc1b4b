use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct PauseArgs {
    /// Container id.
    pub id: String,
}

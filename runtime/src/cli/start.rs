use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Container id.
    pub id: String,
}

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// Container id.
    pub id: String,
}

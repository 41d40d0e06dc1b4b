use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Send the signal to every process of the container.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

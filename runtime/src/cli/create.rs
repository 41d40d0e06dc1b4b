use clap::Args;

use crate::container::CreateOpts;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: String,
    /// Unix socket that receives the pty master (SCM_RIGHTS).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<String>,
    /// Unix socket that receives the init's pidfd (SCM_RIGHTS).
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<String>,
    /// File to write the init's pid to.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<String>,
    /// Use chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more fds (3, 4, …) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

impl CreateArgs {
    pub fn opts(&self) -> CreateOpts {
        CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            console_socket: self.console_socket.clone(),
            pidfd_socket: self.pidfd_socket.clone(),
            pid_file: self.pid_file.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            keep_console: false,
        }
    }
}

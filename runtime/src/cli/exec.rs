use clap::Args;

use crate::container::ExecOpts;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Unix socket that receives the pty master (SCM_RIGHTS).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<String>,
    /// Unix socket that receives the process's pidfd (SCM_RIGHTS).
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pub pidfd_socket: Option<String>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE); repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// User as uid[:gid].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids; repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// The process as an OCI process JSON file.
    #[arg(short = 'p', long)]
    pub process: Option<String>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file", value_name = "PATH")]
    pub pid_file: Option<String>,
    /// SELinux label (refused: no SELinux here).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile (refused: no AppArmor here).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability; repeatable.
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Pass N more fds (3, 4, …).
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run in a sub-cgroup ([controller:]path).
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id.
    pub id: String,
    /// Command and arguments (unless -p).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl ExecArgs {
    pub fn opts(&self) -> Result<ExecOpts> {
        if self.process_label.is_some() {
            return Err(Error::Unsupported("--process-label: SELinux is not enabled on this host".into()));
        }
        if self.apparmor.is_some() {
            return Err(Error::Unsupported("--apparmor: AppArmor is not enabled on this host".into()));
        }
        if !self.cgroup.is_empty() {
            return Err(Error::Unsupported("--cgroup: sub-cgroups for exec are not supported yet".into()));
        }
        let process = match &self.process {
            Some(path) => {
                let text = crate::spec::read_input(rustix::fs::CWD, path, path)?;
                Some(serde_json::from_slice(&text).map_err(|e| Error::Config(format!("{path}: {e}")))?)
            }
            None => None,
        };
        Ok(ExecOpts {
            id: self.id.clone(),
            process,
            args: self.command.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            additional_gids: self.additional_gids.clone(),
            tty: self.tty,
            caps: self.cap.clone(),
            no_new_privs: self.no_new_privs,
            console_socket: self.console_socket.clone(),
            pidfd_socket: self.pidfd_socket.clone(),
            pid_file: self.pid_file.clone(),
            detach: self.detach,
            preserve_fds: self.preserve_fds,
            ignore_paused: self.ignore_paused,
        })
    }
}

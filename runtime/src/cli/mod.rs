//! The runc-compatible command line: clap definitions, one file per
//! command, and the dispatch to the library. No logic beyond parsing.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::log;
use crate::state::Root;

/// fdbox: an OCI container runtime built on file descriptors.
#[derive(Debug, Parser)]
#[command(name = "fdbox", disable_version_flag = true)]
pub struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Enable debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Log file (default: stderr).
    #[arg(long, value_name = "PATH")]
    pub log: Option<String>,
    /// Log format.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Root directory for container state.
    #[arg(long, default_value = "/run/fdbox", value_name = "DIR")]
    pub root: String,
    /// Use systemd to manage cgroups: not supported yet, so not in --help
    /// (given, it is refused with one line).
    #[arg(long = "systemd-cgroup", hide = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode (true, false or auto); accepted for compatibility.
    #[arg(long, value_name = "VALUE", default_value = "auto")]
    pub rootless: String,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Each command's flags are built only when it is the one given (clap's
/// `defer`): building all of them cost every invocation about 0.1 ms.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container.
    Create(create::CreateArgs),
    /// Start a created container.
    Start(start::StartArgs),
    /// Create and start a container, and wait for it.
    Run(run::RunArgs),
    /// Run a process in a running container.
    Exec(exec::ExecArgs),
    /// Send a signal to a container's init.
    Kill(kill::KillArgs),
    /// Delete a container.
    Delete(delete::DeleteArgs),
    /// Print a container's state.
    State(state::StateArgs),
    /// List containers.
    List(list::ListArgs),
    /// Freeze every process of a container.
    Pause(pause::PauseArgs),
    /// Thaw a paused container.
    Resume(pause::PauseArgs),
    /// List the processes of a container.
    Ps(ps::PsArgs),
    /// Print a container's resource usage and OOM events (JSON lines).
    Events(events::EventsArgs),
    /// Change a running container's resource limits.
    Update(update::UpdateArgs),
    /// Write a default config.json.
    Spec(spec::SpecArgs),
    /// Print the features this runtime supports (JSON).
    Features(features::FeaturesArgs),
}

/// Run the parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    // Before we open anything (the log, our binary, the state root): the
    // fds passed on must all be the caller's.
    let passed = match &cli.command {
        Some(Command::Create(a)) => Some((a.preserve_fds, crate::container::listen_fds())),
        Some(Command::Run(a)) => Some((a.create.preserve_fds, crate::container::listen_fds())),
        Some(Command::Exec(a)) => Some((a.preserve_fds, None)),
        _ => None,
    };
    if let Some((preserve, listen)) = passed {
        check_passed_fds(preserve, listen)?;
    }
    log::init(
        cli.log.clone(),
        match cli.log_format {
            LogFormat::Text => log::Format::Text,
            LogFormat::Json => log::Format::Json,
        },
        cli.debug,
    );
    // The init and exec children enter the container: first of all, run
    // from a binary the container cannot write (see process/sealed.rs).
    if matches!(cli.command, Some(Command::Create(_) | Command::Run(_) | Command::Exec(_))) {
        crate::process::sealed::ensure()?;
    }
    if cli.systemd_cgroup {
        return Err(Error::Unsupported("--systemd-cgroup: the systemd cgroup driver is not supported".into()));
    }
    let open_root = |create: bool| Root::open(&cli.root, create);
    let Some(command) = cli.command else {
        if cli.version {
            // runc's layout, which tools parse.
            println!("fdbox version {}\nspec: {}", env!("CARGO_PKG_VERSION"), crate::spec::OCI_VERSION);
            return Ok(0);
        }
        return Err(Error::Config("no command given; see fdbox --help".into()));
    };
    match command {
        Command::Create(a) => {
            crate::container::create(&open_root(true)?, &a.opts())?;
            Ok(0)
        }
        Command::Start(a) => crate::container::start(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id).map(|()| 0),
        Command::Run(a) => crate::container::run(&open_root(true)?, &a.opts()),
        Command::Exec(a) => crate::container::exec(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.opts()?),
        Command::Kill(a) => {
            let sig = crate::container::parse_signal(&a.signal)?;
            crate::container::kill(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id, sig, a.all).map(|()| 0)
        }
        Command::Delete(a) => match open_root(false) {
            Ok(root) => crate::container::delete(&root, &a.id, a.force).map(|()| 0),
            Err(_) if a.force => Ok(0),
            Err(_) => Err(Error::NotFound(a.id)),
        },
        Command::State(a) => {
            let root = open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?;
            println!("{}", crate::container::state_json(&root, &a.id)?);
            Ok(0)
        }
        Command::List(a) => {
            print!("{}", crate::container::list(&cli.root, a.format(), a.quiet)?);
            Ok(0)
        }
        Command::Pause(a) => crate::container::pause(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id).map(|()| 0),
        Command::Resume(a) => crate::container::resume(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id).map(|()| 0),
        Command::Ps(a) => {
            let pids = crate::container::ps(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id)?;
            print!("{}", a.render(&pids)?);
            Ok(0)
        }
        Command::Events(a) => {
            let root = open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?;
            let interval = a.interval()?;
            crate::container::events(&root, &a.id, interval, a.stats, &mut |line| {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            })?;
            Ok(0)
        }
        Command::Update(a) => {
            let resources = a.resources()?;
            crate::container::update(&open_root(false).map_err(|_| Error::NotFound(a.id.clone()))?, &a.id, &resources).map(|()| 0)
        }
        Command::Spec(a) => a.run().map(|()| 0),
        Command::Features(_) => {
            println!("{}", features::features_json());
            Ok(0)
        }
    }
}

/// `--preserve-fds N` (and `LISTEN_FDS`) pass fds 3… to the container as
/// they are. Each of them must be open when we start: one that is not
/// would be taken by the first fd we open ourselves (the state root, the
/// bundle, the rootfs, a cgroup hierarchy), which would then stay in the
/// init waiting for `start` or the exec child, and pass to the container.
/// The range is bounded by the fd limit (no fd above it can be open), which
/// also keeps `3 + N` from overflowing anywhere further on.
fn check_passed_fds(preserve: u32, listen: Option<u32>) -> Result<()> {
    let listen = listen.unwrap_or(0);
    let what = || if listen > 0 { format!("LISTEN_FDS={listen} with --preserve-fds {preserve}") } else { format!("--preserve-fds {preserve}") };
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    let end = 3 + u64::from(listen) + u64::from(preserve);
    let end = match u32::try_from(end) {
        Ok(end) if u64::from(end) <= limit && i32::try_from(end).is_ok() => end,
        _ => return Err(Error::Config(format!("{}: fds up to {} would be passed, above the open file limit {limit}", what(), end - 1))),
    };
    if let Some(fd) = (3..end).find(|&fd| !crate::sys::fd_is_open(fd)) {
        return Err(Error::Config(format!("{}: fd {fd} is not open (only open fds can be passed to the container)", what())));
    }
    Ok(())
}

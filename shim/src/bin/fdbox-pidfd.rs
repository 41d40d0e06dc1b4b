//! `fdbox-pidfd`: the client of the shim's pidfd hand-off socket
//! (docs/pidfd-handoff.md). It takes a container's process as a pidfd from
//! `containerd-shim-fdbox-v2` and uses it — it never knows the process by
//! its pid:
//!
//! * `info`: print the shim's header and what the kernel says about the
//!   pidfd (`PIDFD_GET_INFO`, or `/proc/self/fdinfo`).
//! * `wait`: poll the pidfd until the process exits, then read the exit
//!   status with `PIDFD_GET_INFO(PIDFD_INFO_EXIT)` (Linux 6.15+); on older
//!   kernels ask the shim again, and report the status as unavailable if
//!   the shim cannot say either. Exits with the process's exit status.
//! * `signal`: `pidfd_send_signal`.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use fdbox_shim::handoff::{self, Request, Response};
use fdbox_shim::pidfd::Pidfd;
use serde_json::json;

#[derive(Parser)]
#[command(name = "fdbox-pidfd", about = "Take a container's process as a pidfd from containerd-shim-fdbox-v2")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// The task's hand-off socket: <bundle>/pidfd.sock, e.g.
    /// /run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/pidfd.sock.
    #[arg(long, short = 's')]
    socket: PathBuf,
    /// The container (task) id; default: the socket's own task.
    #[arg(long, short = 'c')]
    container: Option<String>,
    /// An exec id; default: the container's init.
    #[arg(long, short = 'e')]
    exec: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the process's header and pidfd information as JSON.
    Info(Target),
    /// Wait for the process to exit and print its exit status.
    Wait {
        #[command(flatten)]
        target: Target,
        /// Give up after this many seconds (default: wait forever).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Send a signal (number or name such as KILL, SIGTERM).
    Signal {
        #[command(flatten)]
        target: Target,
        signal: String,
    },
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("fdbox-pidfd: {msg}");
    std::process::exit(125)
}

fn take(t: &Target) -> (Response, Pidfd) {
    let req = Request { container: t.container.clone(), exec: t.exec.clone() };
    let (resp, fd) = handoff::request(&t.socket, &req).unwrap_or_else(|e| fail(format!("{}: {e}", t.socket.display())));
    if let Some(err) = &resp.error {
        fail(err);
    }
    let fd = fd.unwrap_or_else(|| fail("the shim answered without a pidfd"));
    let pidfd = Pidfd::new(fd).unwrap_or_else(|_| fail("the shim sent an fd that is not a pidfd"));
    (resp, pidfd)
}

fn signal_number(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => return None,
    } as u32)
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Info(t) => {
            let (resp, pidfd) = take(&t);
            let kernel = match pidfd.info(fdbox_shim::sys::PIDFD_INFO_PID | fdbox_shim::sys::PIDFD_INFO_CREDS) {
                Ok(i) => json!({"source": "PIDFD_GET_INFO", "pid": i.pid, "ppid": i.ppid, "uid": i.ruid, "gid": i.rgid}),
                Err(e) => json!({"source": "fdinfo", "pid": fdbox_shim::pidfd::fdinfo_pid(pidfd.as_fd()), "PIDFD_GET_INFO": e.to_string()}),
            };
            println!("{}", json!({"shim": resp, "pidfd": kernel, "exited": pidfd.exited()}));
        }
        Cmd::Wait { target, timeout } => {
            let (resp, pidfd) = take(&target);
            if !pidfd.wait_exit(timeout.map(Duration::from_secs)) {
                fail(format!("timed out after {}s waiting for pid {} to exit", timeout.unwrap_or(0), resp.pid));
            }
            // The exit status exists once the shim (the parent) has reaped
            // the process, which it does as soon as it sees the exit.
            let deadline = Instant::now() + Duration::from_secs(10);
            let (status, source) = loop {
                match pidfd.exit_info() {
                    Ok(Some(code)) => break (Some(code), "PIDFD_GET_INFO"),
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                    Ok(None) => break (None, "unavailable"),
                    // No PIDFD_INFO_EXIT on this kernel: the shim knows.
                    Err(_) => match handoff::request(&target.socket, &Request { container: target.container.clone(), exec: target.exec.clone() }) {
                        Ok((r, _)) if r.exit_status.is_some() => break (r.exit_status, "shim"),
                        Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                        _ => break (None, "unavailable"),
                    },
                }
            };
            println!("{}", json!({"container": resp.container, "exec_id": resp.exec_id, "pid": resp.pid, "exit_status": status, "source": source}));
            std::process::exit(status.map(|s| s as i32).unwrap_or(125));
        }
        Cmd::Signal { target, signal } => {
            let sig = signal_number(&signal).unwrap_or_else(|| fail(format!("unknown signal {signal:?}")));
            let (resp, pidfd) = take(&target);
            if let Err(e) = pidfd.signal(sig) {
                fail(format!("pidfd_send_signal(pid {}, {sig}): {e}", resp.pid));
            }
        }
    }
}

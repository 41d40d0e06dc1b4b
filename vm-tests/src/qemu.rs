//! Booting a kernel under qemu-system-x86_64 and reading its serial console line by line.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{display, Context, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

pub struct Vm<'a> {
    pub vmlinuz: &'a Path,
    pub initramfs: &'a Path,
    pub disk: Option<&'a Path>,
    pub accel: Accel,
}

pub struct Boot {
    /// Killed at the timeout (or by `on_line` asking to stop).
    pub killed: bool,
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
}

/// What `on_line` tells the boot loop.
#[derive(PartialEq, Eq)]
pub enum Next {
    Continue,
    Stop,
}

/// Boot `vm`, calling `on_line` for every console line (and qemu's own stderr lines), until qemu
/// exits (the guest powered off, or panicked: `panic=-1` reboots and `-no-reboot` exits) or
/// `timeout` passes, when qemu is killed.
pub fn boot(vm: &Vm, timeout: Duration, mut on_line: impl FnMut(&str) -> Next) -> Result<Boot> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", vm.accel.name(), "-m", "2048", "-smp", "2"])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vm.vmlinuz)
        .arg("-initrd")
        .arg(vm.initramfs)
        .args(["-append", "console=ttyS0 panic=-1 quiet"]);
    if let Some(disk) = vm.disk {
        let mut spec = std::ffi::OsString::from("file=");
        spec.push(disk);
        spec.push(",format=raw,if=virtio,cache=unsafe");
        cmd.arg("-drive").arg(spec);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .ctx(|| format!("starting `{}`", display(&cmd)))?;

    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let readers = [
        spawn_reader(Box::new(stdout), tx.clone(), ""),
        spawn_reader(Box::new(stderr), tx, "qemu: "),
    ];

    let deadline = start + timeout;
    let mut killed = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if on_line(&line) == Next::Stop {
                    killed = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                killed = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if killed {
        // Our own child, by its handle.
        let _ = child.kill();
    }
    let status = child.wait().ok();
    for r in readers {
        let _ = r.join();
    }
    // Lines that arrived between the decision to stop and qemu's exit.
    for line in rx.try_iter() {
        on_line(&line);
    }
    Ok(Boot {
        killed,
        status,
        elapsed: start.elapsed(),
    })
}

fn spawn_reader(
    src: Box<dyn Read + Send>,
    tx: mpsc::Sender<String>,
    prefix: &'static str,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = format!("{prefix}{}", clean_line(&String::from_utf8_lossy(&buf)));
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// A console line without its line ending, carriage returns and terminal escape sequences
/// (SeaBIOS clears the screen).
pub fn clean_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters, then one final byte in @..~
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next(); // a two-byte escape such as ESC c
                }
            }
            '\r' | '\n' => {}
            c if c.is_control() && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether KVM can boot `vmlinuz` here: /dev/kvm must open, and a probe initramfs must report
/// from userspace within `timeout` (on some hosts /dev/kvm opens but guests hang or crash).
pub fn kvm_works(vmlinuz: &Path, probe_initramfs: &Path, timeout: Duration) -> (bool, String) {
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return (false, format!("/dev/kvm: {e}"));
    }
    let vm = Vm {
        vmlinuz,
        initramfs: probe_initramfs,
        disk: None,
        accel: Accel::Kvm,
    };
    let mut ok = false;
    let mut last = String::new();
    let result = boot(&vm, timeout, |line| {
        if line.contains("@@FDBOX-VM PROBE-OK") {
            ok = true;
            return Next::Stop;
        }
        if !line.trim().is_empty() {
            last = line.to_string();
        }
        Next::Continue
    });
    match result {
        Ok(_) if ok => (true, "a probe guest booted".into()),
        Ok(b) if b.killed => (
            false,
            format!("a probe guest did not boot within {timeout:?} (last console line: {last:?})"),
        ),
        Ok(b) => (
            false,
            format!(
                "qemu exited ({:?}) before the probe guest booted: {last}",
                b.status
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_cleaned() {
        assert_eq!(clean_line("\u{1b}c\u{1b}[?7l\u{1b}[2JHELLO\r\n"), "HELLO");
        assert_eq!(
            clean_line("[    1.4] reboot: Power down\r\n"),
            "[    1.4] reboot: Power down"
        );
        assert_eq!(clean_line("a\tb\u{7}\n"), "a\tb");
    }
}

//! seccomp: the OCI `linux.seccomp` profile compiled to a classic BPF
//! program by fdbox itself, and installed with its own `seccomp(2)` call.
//!
//! # Why an own compiler
//! `seccompiler` cannot express what OCI profiles need: it has one action
//! per filter for matches (no per-rule `ERRNO(n)`), no NOTIFY, TRACE, LOG
//! or KILL_THREAD, no filter flags, and no i386/x32 sections. The part of
//! libseccomp that runtimes use is small: an architecture dispatch, one
//! comparison chain per system call, and 64-bit argument compares made of
//! two 32-bit halves. That is what this module emits, through a tiny
//! assembler that resolves labels and widens a conditional jump whose
//! target is out of its 8-bit reach.
//!
//! # Semantics (those of libseccomp as runc drives it)
//! * The architecture comes first. The native x86_64 is always part of the
//!   filter (libseccomp's `seccomp_init` adds it and runc never removes
//!   it); `SCMP_ARCH_X86` and `SCMP_ARCH_X32` add theirs. A system call
//!   from an architecture that is not part of the filter — an `int 0x80`
//!   without `SCMP_ARCH_X86`, an x32 call (`__X32_SYSCALL_BIT` set) without
//!   `SCMP_ARCH_X32` — gets libseccomp's default "bad arch" action,
//!   `SCMP_ACT_KILL` (kill the thread). Other architectures' names are
//!   accepted and never match here.
//! * Names are resolved per architecture from the tables in
//!   [`syscalls`]; a name an architecture lacks is skipped there, and a name
//!   no table knows is skipped with a debug log, as runc does.
//! * A rule whose action equals the default action is skipped (libseccomp
//!   refuses it; runc skips it).
//! * For one system call, an unconditional rule wins over conditional ones
//!   and the first unconditional rule wins over later ones (libseccomp's
//!   behaviour); conditional rules are tried in profile order and the first
//!   whose conditions all hold decides.
//! * The conditions of one rule are ANDed. When one argument index appears
//!   in several conditions of one rule, each becomes a rule of its own
//!   (ORed), as runc does, because libseccomp refuses that rule.
//! * Arguments compare as unsigned 64-bit values on x86_64 (high half,
//!   then low half). On the 32-bit ABIs (i386, x32) only the low halves are
//!   compared, as libseccomp does. `SCMP_CMP_MASKED_EQ` is
//!   `(arg & value) == (valueTwo & value)`.
//! * `errnoRet` defaults to EPERM for ERRNO and TRACE (the trace message
//!   data), and is an error on any other action (runtime-spec).
//!
//! # Where it runs
//! `create` calls [`prepare`] before clone3: profile errors are create
//! errors, and for `SCMP_ACT_NOTIFY` it connects to `listenerPath` on the
//! host (the init cannot reach a host path once it has pivoted). The init
//! calls [`Prepared::install`]: as the last step before execve when
//! `noNewPrivileges` is set, else before it drops its capabilities (without
//! no_new_privs, seccomp(2) needs CAP_SYS_ADMIN; runc does the same). With
//! NOTIFY, install hands the listener to the agent with the runtime-spec's
//! seccomp state, which the parent sent over a socketpair once it knew the
//! init's pid.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op, Spec,
};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::{Error, Result, SysContext};
use crate::{fdpass, sys};

mod syscalls;

/// `AUDIT_ARCH_X86_64` (`<linux/audit.h>`): x86_64 and x32 system calls.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`: i386 system calls (32-bit processes, `int 0x80`).
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Set in the number of every x32 system call.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Filter return values (`SECCOMP_RET_*` of `<linux/seccomp.h>`).
pub mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const KILL_THREAD: u32 = 0x0000_0000;
    pub const TRAP: u32 = 0x0003_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const LOG: u32 = 0x7ffc_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
    /// The low 16 bits: the errno of ERRNO, the message data of TRACE.
    pub const DATA: u32 = 0x0000_ffff;
}

/// Flags of `seccomp(SECCOMP_SET_MODE_FILTER)` (`SECCOMP_FILTER_FLAG_*`).
pub mod flag {
    pub const TSYNC: u32 = 1 << 0;
    pub const LOG: u32 = 1 << 1;
    pub const SPEC_ALLOW: u32 = 1 << 2;
    pub const NEW_LISTENER: u32 = 1 << 3;
    pub const TSYNC_ESRCH: u32 = 1 << 4;
    pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;
}

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

// Offsets into `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

// Classic BPF opcodes (`<linux/bpf_common.h>`).
const LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const ALU_AND_K: u16 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA (0)
const JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K
const JMP_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// The OCI names fdbox understands, for `features`.
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
];
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
];
const KNOWN_FLAGS: &[(&str, u32)] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", flag::TSYNC),
    ("SECCOMP_FILTER_FLAG_LOG", flag::LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", flag::SPEC_ALLOW),
    // Only meaningful with a listener, and the kernel refuses it without one.
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", flag::WAIT_KILLABLE_RECV | flag::NEW_LISTENER),
];

/// The `linux.seccomp` part of `fdbox features`.
pub fn features() -> serde_json::Value {
    let archs: Vec<String> = ALL_ARCHS.iter().map(|a| a.to_string()).collect();
    let known: Vec<&str> = KNOWN_FLAGS.iter().map(|(n, _)| *n).collect();
    let supported: Vec<&str> = KNOWN_FLAGS
        .iter()
        .filter(|(_, f)| sys::seccomp_filter_flags_supported(*f))
        .map(|(n, _)| *n)
        .collect();
    serde_json::json!({
        "enabled": cfg!(target_arch = "x86_64"),
        "actions": ACTIONS,
        "operators": OPERATORS,
        "archs": archs,
        "knownFlags": known,
        "supportedFlags": supported,
    })
}

/// Every architecture name a profile may list (libseccomp's): x86_64,
/// x86 and x32 get code, the others never occur on an x86_64 host.
const ALL_ARCHS: &[Arch] = &[
    Arch::ScmpArchNative, Arch::ScmpArchX86, Arch::ScmpArchX86_64, Arch::ScmpArchX32, Arch::ScmpArchArm,
    Arch::ScmpArchAarch64, Arch::ScmpArchMips, Arch::ScmpArchMips64, Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64, Arch::ScmpArchMipsel64n32, Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64, Arch::ScmpArchPpc64le, Arch::ScmpArchS390, Arch::ScmpArchS390x,
    Arch::ScmpArchParisc, Arch::ScmpArchParisc64, Arch::ScmpArchRiscv64, Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k, Arch::ScmpArchSh, Arch::ScmpArchSheb,
];

// ---------------------------------------------------------------------------------------------
// The compiled filter
// ---------------------------------------------------------------------------------------------

/// A compiled profile: the BPF program and the flags to install it with.
#[derive(Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: u32,
}

impl Filter {
    pub fn program(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// `SECCOMP_FILTER_FLAG_*` (with NEW_LISTENER when a NOTIFY rule is in).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether installing returns a notification listener.
    pub fn has_listener(&self) -> bool {
        self.flags & flag::NEW_LISTENER != 0
    }

    /// Attach the filter to the calling thread (to all threads with TSYNC).
    /// Needs no_new_privs or CAP_SYS_ADMIN. Returns the listener fd when
    /// the filter has NOTIFY rules.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        sys::seccomp_set_mode_filter(self.flags, &self.program)
            .sys("seccomp", || format!("SECCOMP_SET_MODE_FILTER, flags {:#x}, {} instructions", self.flags, self.program.len()))
    }
}

/// The architectures fdbox generates code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Abi {
    X86_64,
    X32,
    I386,
}

impl Abi {
    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X32 => syscalls::X32,
            Abi::I386 => syscalls::I386,
        }
    }

    /// The number `seccomp_data.nr` carries for `name` on this ABI.
    fn nr(self, name: &str) -> Option<u32> {
        let nr = self.table().iter().find(|(n, _)| *n == name)?.1;
        Some(if self == Abi::X32 { nr | X32_SYSCALL_BIT } else { nr })
    }

    /// Whether arguments are 64 bits wide (compared in two halves).
    fn wide(self) -> bool {
        self == Abi::X86_64
    }
}

/// One argument condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// The rules of each system call an architecture knows, by number.
type Section<'a> = (Abi, Vec<(u32, &'a [Rule])>);

/// One rule for one system call: all conditions must hold.
#[derive(Clone, Debug)]
struct Rule {
    action: u32,
    conds: Vec<Cond>,
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn action_value(action: Action, errno_ret: Option<u32>, what: &str) -> Result<u32> {
    let data = || -> Result<u32> {
        match errno_ret {
            None => Ok(libc::EPERM as u32),
            Some(e) if e <= ret::DATA => Ok(e),
            Some(e) => Err(Error::Config(format!("seccomp: {what}: errnoRet {e} is out of range (0-65535)"))),
        }
    };
    let plain = |value: u32| -> Result<u32> {
        match errno_ret {
            None => Ok(value),
            Some(_) => Err(Error::Config(format!(
                "seccomp: {what}: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {action}"
            ))),
        }
    };
    match action {
        Action::ScmpActAllow => plain(ret::ALLOW),
        Action::ScmpActErrno => Ok(ret::ERRNO | data()?),
        // libseccomp's SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
        Action::ScmpActKill | Action::ScmpActKillThread => plain(ret::KILL_THREAD),
        Action::ScmpActKillProcess => plain(ret::KILL_PROCESS),
        Action::ScmpActTrap => plain(ret::TRAP),
        Action::ScmpActTrace => Ok(ret::TRACE | data()?),
        Action::ScmpActLog => plain(ret::LOG),
        Action::ScmpActNotify => plain(ret::USER_NOTIF),
    }
}

/// Compile a profile. Everything a profile can get wrong is reported here,
/// so that `create` fails before it starts anything.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter> {
    if !cfg!(target_arch = "x86_64") {
        return Err(Error::Unsupported("seccomp: fdbox compiles profiles for x86_64 hosts only".into()));
    }
    if profile.default_action() == Action::ScmpActNotify {
        return Err(Error::Config("seccomp: SCMP_ACT_NOTIFY cannot be the defaultAction".into()));
    }
    let default = action_value(profile.default_action(), profile.default_errno_ret(), "defaultAction")?;

    let mut abis = vec![Abi::X86_64];
    for arch in profile.architectures().as_deref().unwrap_or_default() {
        let abi = match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                crate::log::debug(&format!("seccomp: architecture {other} never occurs on x86_64; its rules never match"));
                continue;
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }

    let mut flags = 0;
    for f in profile.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            Flag::SeccompFilterFlagTsync => flag::TSYNC,
            Flag::SeccompFilterFlagLog => flag::LOG,
            Flag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => flag::WAIT_KILLABLE_RECV,
        };
    }

    // The rules of every name, in the order the profile gives them.
    let mut order: Vec<&str> = Vec::new();
    let mut by_name: HashMap<&str, Vec<Rule>> = HashMap::new();
    let mut notify = false;
    for (i, sc) in profile.syscalls().as_deref().unwrap_or_default().iter().enumerate() {
        let what = format!("syscalls[{i}] ({})", sc.names().join(","));
        let action = action_value(sc.action(), sc.errno_ret(), &what)?;
        let mut conds = Vec::new();
        for arg in sc.args().as_deref().unwrap_or_default() {
            if arg.index() > 5 {
                return Err(Error::Config(format!(
                    "seccomp: {what}: argument index {} is out of range (0-5)",
                    arg.index()
                )));
            }
            conds.push(Cond { index: arg.index() as u32, op: arg.op(), value: arg.value(), value_two: arg.value_two().unwrap_or(0) });
        }
        if sc.action() == Action::ScmpActNotify {
            notify = true;
            // Between installing the filter and execve the init sends the
            // listener with sendmsg, and without no_new_privs writes its
            // errors and talks to `start` with write: notifying either
            // would wait for an agent that has no listener yet. runc
            // refuses `write` for the same reason, in these words.
            if let Some(n) = sc.names().iter().find(|n| *n == "sendmsg" || *n == "write") {
                return Err(Error::Config(format!(
                    "seccomp: {what}: SCMP_ACT_NOTIFY cannot be used for the {n} syscall: the runtime uses it after the filter is installed"
                )));
            }
        }
        if action == default {
            crate::log::debug(&format!("seccomp: {what}: same action as the default action, skipped"));
            continue;
        }
        // Conditions on one argument twice cannot be ANDed in one
        // libseccomp rule; runc then adds each as a rule of its own.
        let mut seen = [false; 6];
        let repeated = conds.iter().any(|c| std::mem::replace(&mut seen[c.index as usize], true));
        let rules: Vec<Vec<Cond>> = if repeated { conds.iter().map(|c| vec![*c]).collect() } else { vec![conds] };
        for name in sc.names() {
            let list = by_name.entry(name.as_str()).or_insert_with(|| {
                order.push(name.as_str());
                Vec::new()
            });
            list.extend(rules.iter().map(|conds| Rule { action, conds: conds.clone() }));
        }
    }
    if notify && profile.listener_path().is_none() {
        return Err(Error::Config("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into()));
    }
    for name in &order {
        if [Abi::X86_64, Abi::X32, Abi::I386].iter().all(|abi| abi.nr(name).is_none()) {
            crate::log::debug(&format!("seccomp: unknown system call {name:?} skipped"));
        }
    }

    let mut asm = Asm::default();
    let sections: Vec<Section> = abis
        .iter()
        .map(|&abi| {
            let list: Vec<(u32, &[Rule])> =
                order.iter().filter_map(|name| Some((abi.nr(name)?, by_name[name].as_slice()))).collect();
            (abi, list)
        })
        .collect();
    emit_program(&mut asm, &sections, default);
    let program = asm.assemble()?;
    if program.len() > MAX_INSNS {
        return Err(Error::Config(format!(
            "seccomp: the profile compiles to {} BPF instructions, more than the kernel's limit of {MAX_INSNS}",
            program.len()
        )));
    }

    // A listener whenever the profile has a NOTIFY rule, even one whose
    // names this host does not know (so that no rule is emitted): the
    // agent waits on listenerPath for it, and runc connects then too.
    if notify {
        flags |= flag::NEW_LISTENER;
        // The kernel refuses TSYNC with a listener unless a failed sync
        // reports ESRCH instead of a thread id (the fd would be ambiguous).
        if flags & flag::TSYNC != 0 {
            flags |= flag::TSYNC_ESRCH;
        }
    } else {
        flags &= !flag::WAIT_KILLABLE_RECV;
    }
    Ok(Filter { program, flags })
}

// ---------------------------------------------------------------------------------------------
// Code generation
// ---------------------------------------------------------------------------------------------

/// How many system calls share one `ret` in a run of unconditional rules
/// (each `jeq` must reach it within 255 instructions).
const CHUNK: usize = 200;

/// ```text
///       ld  arch
///       jeq AUDIT_ARCH_X86_64 ? fam64 : other
/// other: jeq AUDIT_ARCH_I386 ? i386 : bad          (if x86 is in the filter)
/// fam64: ld  nr
///       jge X32_SYSCALL_BIT ? hi : x86_64
/// hi:    jeq -1 ? x86_64 : x32                      (-1: a tracer skipped the call)
/// bad:   ret KILL_THREAD
/// x86_64, x32, i386: one section each (see emit_section)
/// ```
fn emit_program(asm: &mut Asm, sections: &[Section], default: u32) {
    let label_of = |asm: &mut Asm, abi: Abi| sections.iter().any(|(a, _)| *a == abi).then(|| asm.label());
    let l64 = label_of(asm, Abi::X86_64);
    let lx32 = label_of(asm, Abi::X32);
    let l386 = label_of(asm, Abi::I386);
    let bad = asm.label();
    let fam64 = asm.label();
    let other = asm.label();

    asm.load(OFF_ARCH);
    asm.jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, fam64, other);
    asm.bind(other);
    match l386 {
        Some(l) => asm.jump(JMP_JEQ_K, AUDIT_ARCH_I386, l, bad),
        None => asm.goto(bad),
    }
    asm.bind(fam64);
    asm.load(OFF_NR);
    let hi = asm.label();
    asm.jump(JMP_JGE_K, X32_SYSCALL_BIT, hi, l64.unwrap_or(bad));
    asm.bind(hi);
    asm.jump(JMP_JEQ_K, u32::MAX, l64.unwrap_or(bad), lx32.unwrap_or(bad));
    asm.bind(bad);
    asm.ret(ret::KILL_THREAD);

    for (abi, list) in sections {
        let label = match abi {
            Abi::X86_64 => l64,
            Abi::X32 => lx32,
            Abi::I386 => l386,
        };
        if let Some(l) = label {
            asm.bind(l);
        }
        emit_section(asm, *abi, list, default);
    }
}

/// One architecture: unconditional rules grouped by action (a run of
/// `jeq nr` sharing one `ret`), then each system call with conditional
/// rules (`jeq nr` over an inline body that always returns), then the
/// default action.
fn emit_section(asm: &mut Asm, abi: Abi, list: &[(u32, &[Rule])], default: u32) {
    asm.load(OFF_NR);
    let mut groups: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut conditional: Vec<(u32, &[Rule])> = Vec::new();
    for &(nr, rules) in list {
        match rules.iter().find(|r| r.conds.is_empty()) {
            Some(r) => match groups.iter_mut().find(|(a, _)| *a == r.action) {
                Some((_, nrs)) => nrs.push(nr),
                None => groups.push((r.action, vec![nr])),
            },
            None => conditional.push((nr, rules)),
        }
    }
    for (action, nrs) in &groups {
        for chunk in nrs.chunks(CHUNK) {
            let hit = asm.label();
            let miss = asm.label();
            for (i, nr) in chunk.iter().enumerate() {
                if i + 1 == chunk.len() {
                    asm.jump(JMP_JEQ_K, *nr, hit, miss);
                } else {
                    let next = asm.label();
                    asm.jump(JMP_JEQ_K, *nr, hit, next);
                    asm.bind(next);
                }
            }
            asm.bind(hit);
            asm.ret(*action);
            asm.bind(miss);
        }
    }
    for (nr, rules) in conditional {
        let body = asm.label();
        let after = asm.label();
        asm.jump(JMP_JEQ_K, nr, body, after);
        asm.bind(body);
        for rule in rules {
            let next = asm.label();
            for cond in &rule.conds {
                emit_cond(asm, abi, cond, next);
            }
            asm.ret(rule.action);
            asm.bind(next);
        }
        asm.ret(default);
        // Reached only from the `jeq` above, so A still holds the number.
        asm.bind(after);
    }
    asm.ret(default);
}

/// Code that falls through when `cond` holds and jumps to `fail` if not.
fn emit_cond(asm: &mut Asm, abi: Abi, cond: &Cond, fail: Label) {
    let lo_off = OFF_ARGS + 8 * cond.index;
    let hi_off = lo_off + 4;
    let (v_lo, v_hi) = (cond.value as u32, (cond.value >> 32) as u32);
    let ok = asm.label();
    if abi.wide() {
        let n1 = asm.label();
        let n2 = asm.label();
        asm.load(hi_off);
        match cond.op {
            Op::ScmpCmpEq => {
                asm.jump(JMP_JEQ_K, v_hi, n1, fail);
                asm.bind(n1);
                asm.load(lo_off);
                asm.jump(JMP_JEQ_K, v_lo, ok, fail);
            }
            Op::ScmpCmpNe => {
                asm.jump(JMP_JEQ_K, v_hi, n1, ok);
                asm.bind(n1);
                asm.load(lo_off);
                asm.jump(JMP_JEQ_K, v_lo, fail, ok);
            }
            // hi > v_hi decides; hi == v_hi defers to the low halves.
            Op::ScmpCmpGt | Op::ScmpCmpGe => {
                asm.jump(JMP_JGT_K, v_hi, ok, n1);
                asm.bind(n1);
                asm.jump(JMP_JEQ_K, v_hi, n2, fail);
                asm.bind(n2);
                asm.load(lo_off);
                let code = if cond.op == Op::ScmpCmpGt { JMP_JGT_K } else { JMP_JGE_K };
                asm.jump(code, v_lo, ok, fail);
            }
            // a < v is !(a >= v), a <= v is !(a > v).
            Op::ScmpCmpLt | Op::ScmpCmpLe => {
                asm.jump(JMP_JGT_K, v_hi, fail, n1);
                asm.bind(n1);
                asm.jump(JMP_JEQ_K, v_hi, n2, ok);
                asm.bind(n2);
                asm.load(lo_off);
                let code = if cond.op == Op::ScmpCmpLt { JMP_JGE_K } else { JMP_JGT_K };
                asm.jump(code, v_lo, fail, ok);
            }
            Op::ScmpCmpMaskedEq => {
                let (m_lo, m_hi) = (v_lo, v_hi);
                let (d_lo, d_hi) = (cond.value_two as u32 & m_lo, (cond.value_two >> 32) as u32 & m_hi);
                asm.and(m_hi);
                asm.jump(JMP_JEQ_K, d_hi, n1, fail);
                asm.bind(n1);
                asm.load(lo_off);
                asm.and(m_lo);
                asm.jump(JMP_JEQ_K, d_lo, ok, fail);
            }
        }
    } else {
        asm.load(lo_off);
        match cond.op {
            Op::ScmpCmpEq => asm.jump(JMP_JEQ_K, v_lo, ok, fail),
            Op::ScmpCmpNe => asm.jump(JMP_JEQ_K, v_lo, fail, ok),
            Op::ScmpCmpGt => asm.jump(JMP_JGT_K, v_lo, ok, fail),
            Op::ScmpCmpGe => asm.jump(JMP_JGE_K, v_lo, ok, fail),
            Op::ScmpCmpLt => asm.jump(JMP_JGE_K, v_lo, fail, ok),
            Op::ScmpCmpLe => asm.jump(JMP_JGT_K, v_lo, fail, ok),
            Op::ScmpCmpMaskedEq => {
                asm.and(v_lo);
                asm.jump(JMP_JEQ_K, cond.value_two as u32 & v_lo, ok, fail);
            }
        }
    }
    asm.bind(ok);
}

/// A forward-only label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

enum Item {
    Stmt { code: u16, k: u32 },
    Jump { code: u16, k: u32, jt: Label, jf: Label },
    Goto(Label),
    Bind(Label),
}

/// A classic BPF assembler with labels. Conditional jumps reach 255
/// instructions; one whose target is further is widened into
/// `jcc +0/+1; ja target_true; ja target_false` until every jump fits.
#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }
    fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt { code: LD_W_ABS, k: offset });
    }
    fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: ALU_AND_K, k });
    }
    fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt { code: RET_K, k });
    }
    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { code, k, jt, jf });
    }
    fn goto(&mut self, l: Label) {
        self.items.push(Item::Goto(l));
    }

    fn assemble(&self) -> Result<Vec<libc::sock_filter>> {
        let internal = |what: &str| Error::Config(format!("seccomp: internal compiler error: {what}"));
        let mut wide = vec![false; self.items.len()];
        loop {
            // Lay out with the current widths.
            let mut at = vec![0usize; self.items.len()];
            let mut label_at = vec![usize::MAX; self.labels];
            let mut pc = 0;
            for (i, item) in self.items.iter().enumerate() {
                at[i] = pc;
                pc += match item {
                    Item::Bind(l) => {
                        label_at[l.0] = pc;
                        0
                    }
                    Item::Jump { .. } if wide[i] => 3,
                    _ => 1,
                };
            }
            let dist = |from: usize, l: Label| -> Result<usize> {
                let to = label_at[l.0];
                if to == usize::MAX || to < from {
                    return Err(internal("a jump to an unbound or earlier label"));
                }
                Ok(to - from)
            };
            // Widen what does not fit; the layout grows, so repeat.
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    if !wide[i] && (dist(at[i] + 1, *jt)? > 255 || dist(at[i] + 1, *jf)? > 255) {
                        wide[i] = true;
                        changed = true;
                    }
                }
            }
            if changed {
                continue;
            }
            let mut out = Vec::with_capacity(pc);
            let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
            for (i, item) in self.items.iter().enumerate() {
                match item {
                    Item::Bind(_) => {}
                    Item::Stmt { code, k } => out.push(insn(*code, 0, 0, *k)),
                    Item::Goto(l) => out.push(insn(JMP_JA, 0, 0, dist(at[i] + 1, *l)? as u32)),
                    Item::Jump { code, k, jt, jf } if wide[i] => {
                        out.push(insn(*code, 0, 1, *k));
                        out.push(insn(JMP_JA, 0, 0, dist(at[i] + 2, *jt)? as u32));
                        out.push(insn(JMP_JA, 0, 0, dist(at[i] + 3, *jf)? as u32));
                    }
                    Item::Jump { code, k, jt, jf } => {
                        out.push(insn(*code, dist(at[i] + 1, *jt)? as u8, dist(at[i] + 1, *jf)? as u8, *k))
                    }
                }
            }
            return Ok(out);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// create (parent) and init (child) sides
// ---------------------------------------------------------------------------------------------

/// The largest seccomp state message the init accepts from the parent.
const MAX_STATE: usize = 256 * 1024;

/// A compiled profile ready for the init, with what NOTIFY needs.
pub struct Prepared {
    filter: Filter,
    notify: Option<Notify>,
}

struct Notify {
    /// `listenerPath`, for messages.
    path: String,
    /// Connected to `listenerPath` by the parent, in the host's view.
    agent: OwnedFd,
    /// The seccomp state travels parent → init over this pair: the parent
    /// knows the init's pid only after clone3.
    state_rx: OwnedFd,
    /// The parent's end; the init closes its copy before it waits.
    state_tx: Cell<Option<OwnedFd>>,
    /// The runtime-spec "seccomp state", without the pid yet.
    state: serde_json::Value,
}

/// Compile the container's profile (if any) and, for NOTIFY, connect to
/// the agent. Called by `create` before clone3; the init inherits it all.
pub fn prepare(spec: &Spec, id: &str, bundle: &str) -> Result<Option<Prepared>> {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let filter = compile(profile)?;
    let notify = match (filter.has_listener(), profile.listener_path()) {
        (true, Some(path)) => {
            let path = path.to_string_lossy().into_owned();
            let agent = fdpass::connect(&path).sys("connect", || format!("seccomp listenerPath {path}"))?;
            let (state_rx, state_tx) =
                rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
                    .sys("socketpair", || "seccomp state".into())?;
            let mut state = serde_json::json!({
                "ociVersion": crate::spec::OCI_VERSION,
                "fds": ["seccompFd"],
                "pid": 0,
                "state": {
                    "ociVersion": spec.version(),
                    "id": id,
                    // runc and crun send it while creating; so does fdbox's
                    // parent, even when the init hands it over at `start`.
                    "status": "creating",
                    "pid": 0,
                    "bundle": bundle,
                },
            });
            if let Some(meta) = profile.listener_metadata().as_deref().filter(|m| !m.is_empty()) {
                state["metadata"] = meta.into();
            }
            if let Some(a) = spec.annotations().as_ref().filter(|a| !a.is_empty()) {
                state["state"]["annotations"] = serde_json::json!(a);
            }
            Some(Notify { path, agent, state_rx, state_tx: Cell::new(Some(state_tx)), state })
        }
        (true, None) => return Err(Error::Config("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into())),
        (false, _) => None,
    };
    Ok(Some(Prepared { filter, notify }))
}

impl Prepared {
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Child side, first thing: close our copy of the parent's end of the
    /// state pair (it must not keep the pair open, and a child that closes
    /// every fd it does not hold must not find it later).
    pub fn drop_parent_end(&self) {
        if let Some(n) = &self.notify {
            drop(n.state_tx.take());
        }
    }

    /// The fds the child keeps (the agent connection and its end of the
    /// state pair), for one that closes everything else.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.notify.iter().flat_map(|n| [n.agent.as_fd(), n.state_rx.as_fd()]).collect()
    }

    /// Parent side, right after clone3: send the seccomp state with the
    /// init's pid (as the runtime sees it). Drops the parent's copies of
    /// the agent connection and the pair.
    pub fn send_state(self, pid: i32) -> Result<()> {
        let Some(n) = self.notify else { return Ok(()) };
        let mut state = n.state;
        state["pid"] = pid.into();
        state["state"]["pid"] = pid.into();
        let body = serde_json::to_vec(&state).map_err(|e| Error::State(format!("seccomp state: {e}")))?;
        let tx = n.state_tx.take().ok_or_else(|| Error::State("seccomp state sent twice".into()))?;
        fdpass::send(tx.as_fd(), &body, &[]).sys("sendmsg", || "seccomp state to the init".into())
    }

    /// Init side: install the filter and, with NOTIFY, hand the listener to
    /// the agent. Every system call after this one goes through the filter,
    /// so it does the least possible afterwards: one sendmsg.
    pub fn install(&self) -> Result<()> {
        let state = match &self.notify {
            None => None,
            Some(n) => {
                // Our copy of the parent's end must not keep the pair open.
                drop(n.state_tx.take());
                let mut buf = vec![0u8; MAX_STATE];
                let (len, _) = fdpass::recv(n.state_rx.as_fd(), &mut buf).sys("recvmsg", || "seccomp state".into())?;
                if len == 0 {
                    return Err(Error::Init("seccomp: the runtime sent no container state for the agent".into()));
                }
                // Exactly sized, and the large buffer freed (a munmap)
                // before the filter is in place.
                Some(buf[..len].to_vec())
            }
        };
        let listener = self.filter.install()?;
        if let (Some(n), Some(state)) = (&self.notify, state) {
            let listener = listener.ok_or_else(|| Error::Init("seccomp: the kernel returned no listener".into()))?;
            fdpass::send(n.agent.as_fd(), &state, &[listener.as_fd()])
                .sys("sendmsg", || format!("seccomp listener to {}", n.path))?;
            // Close-on-exec: execve closes it. Closing it now would be one
            // more system call through the new filter.
            std::mem::forget(listener);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

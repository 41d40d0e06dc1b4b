//! The compiler, checked three ways: a small classic-BPF interpreter that
//! runs the programs on made-up `seccomp_data` (after the checks the
//! kernel's verifier makes), the semantics written down independently of
//! the code generator, and the kernel itself (a child process installs a
//! compiled filter and makes real system calls).

use super::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// A classic BPF interpreter for seccomp programs
// ---------------------------------------------------------------------------------------------

/// `struct seccomp_data`.
#[derive(Clone, Copy, Debug)]
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn x86_64(nr: u32, args: &[u64]) -> Data {
        Data::new(AUDIT_ARCH_X86_64, nr, args)
    }
    fn new(arch: u32, nr: u32, args: &[u64]) -> Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Data { nr, arch, args: a }
    }
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        b
    }
}

/// What the kernel checks before it accepts a seccomp program
/// (`bpf_check_classic` + `seccomp_check_filter`), for what we emit.
fn verify(prog: &[libc::sock_filter]) {
    assert!(!prog.is_empty() && prog.len() <= MAX_INSNS, "program length {}", prog.len());
    for (pc, i) in prog.iter().enumerate() {
        let reach = |off: usize| assert!(pc + 1 + off < prog.len(), "jump out of the program at {pc}");
        match i.code {
            LD_W_ABS => assert!(i.k < 64 && i.k % 4 == 0, "bad load offset {} at {pc}", i.k),
            ALU_AND_K | RET_K => {}
            JMP_JA => reach(i.k as usize),
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                reach(i.jt as usize);
                reach(i.jf as usize);
            }
            c => panic!("opcode {c:#x} at {pc}"),
        }
    }
    assert_eq!(prog.last().unwrap().code, RET_K, "the program must end with a return");
}

fn run(prog: &[libc::sock_filter], d: &Data) -> u32 {
    let bytes = d.bytes();
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        let k = i.k;
        match i.code {
            LD_W_ABS => a = u32::from_le_bytes(bytes[k as usize..k as usize + 4].try_into().unwrap()),
            ALU_AND_K => a &= k,
            JMP_JA => pc += k as usize,
            JMP_JEQ_K => pc += if a == k { i.jt } else { i.jf } as usize,
            JMP_JGT_K => pc += if a > k { i.jt } else { i.jf } as usize,
            JMP_JGE_K => pc += if a >= k { i.jt } else { i.jf } as usize,
            RET_K => return k,
            c => panic!("opcode {c:#x}"),
        }
    }
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid LinuxSeccomp")
}

fn compiled(v: Value) -> Filter {
    let f = compile(&profile(v)).unwrap_or_else(|e| panic!("compile: {e}"));
    verify(f.program());
    f
}

fn compile_err(v: Value) -> String {
    match compile(&profile(v)) {
        Ok(_) => panic!("compiled, expected an error"),
        Err(e) => e.to_string(),
    }
}

fn nr64(name: &str) -> u32 {
    Abi::X86_64.nr(name).unwrap()
}

const ERRNO_38: u32 = ret::ERRNO | 38;

// ---------------------------------------------------------------------------------------------
// Actions and errno values
// ---------------------------------------------------------------------------------------------

#[test]
fn every_action_has_its_kernel_value() {
    let cases = [
        (json!({"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}), ret::ALLOW),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}), ret::ERRNO | libc::EPERM as u32),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}), ERRNO_38),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_KILL"}), ret::KILL_THREAD),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"}), ret::KILL_THREAD),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}), ret::KILL_PROCESS),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_TRAP"}), ret::TRAP),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_TRACE"}), ret::TRACE | libc::EPERM as u32),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_TRACE", "errnoRet": 1234}), ret::TRACE | 1234),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_LOG"}), ret::LOG),
        (json!({"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}), ret::USER_NOTIF),
    ];
    for (rule, want) in cases {
        // A default that differs from every rule action above.
        let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99,
            "listenerPath": "/run/agent.sock", "syscalls": [rule]}));
        assert_eq!(run(f.program(), &Data::x86_64(nr64("getppid"), &[])), want, "{rule}");
        assert_eq!(run(f.program(), &Data::x86_64(nr64("getpid"), &[])), ret::ERRNO | 99, "{rule}");
        assert_eq!(f.has_listener(), want == ret::USER_NOTIF, "{rule}");
    }
}

#[test]
fn default_action_and_default_errno() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO"}));
    assert_eq!(run(f.program(), &Data::x86_64(0, &[])), ret::ERRNO | libc::EPERM as u32);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}));
    assert_eq!(run(f.program(), &Data::x86_64(0, &[])), ERRNO_38);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}));
    assert_eq!(run(f.program(), &Data::x86_64(12, &[])), ret::KILL_PROCESS);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert_eq!(run(f.program(), &Data::x86_64(12, &[])), ret::ALLOW);
    assert_eq!(f.flags(), 0);
}

#[test]
fn bad_profiles_are_errors_that_name_the_problem() {
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}));
    assert!(e.contains("defaultAction") && e.contains("errnoRet") && e.contains("SCMP_ACT_ALLOW"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 3}]}));
    assert!(e.contains("syscalls[0] (read)") && e.contains("SCMP_ACT_KILL"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert!(e.contains("70000"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
    assert!(e.contains("defaultAction"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(e.contains("listenerPath"), "{e}");
    for name in ["sendmsg", "write"] {
        let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
            "syscalls": [{"names": ["mkdir", name], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(e.contains(&format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall")), "{e}");
    }
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(e.contains("index 6"), "{e}");
    // Unknown names of actions, operators, architectures and flags do not
    // even parse (oci-spec's enums), which `create` reports as a config
    // error naming the value.
    for bad in [
        json!({"defaultAction": "SCMP_ACT_BOGUS"}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]}]}),
    ] {
        let e = serde_json::from_value::<LinuxSeccomp>(bad.clone()).unwrap_err().to_string();
        assert!(e.contains("BOGUS") || e.contains("VAX"), "{bad}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Argument conditions
// ---------------------------------------------------------------------------------------------

const OPS: [(&str, Op); 7] = [
    ("SCMP_CMP_NE", Op::ScmpCmpNe),
    ("SCMP_CMP_LT", Op::ScmpCmpLt),
    ("SCMP_CMP_LE", Op::ScmpCmpLe),
    ("SCMP_CMP_EQ", Op::ScmpCmpEq),
    ("SCMP_CMP_GE", Op::ScmpCmpGe),
    ("SCMP_CMP_GT", Op::ScmpCmpGt),
    ("SCMP_CMP_MASKED_EQ", Op::ScmpCmpMaskedEq),
];

/// The meaning of a condition, written down without the code generator.
fn holds(op: Op, arg: u64, value: u64, value_two: u64) -> bool {
    match op {
        Op::ScmpCmpNe => arg != value,
        Op::ScmpCmpLt => arg < value,
        Op::ScmpCmpLe => arg <= value,
        Op::ScmpCmpEq => arg == value,
        Op::ScmpCmpGe => arg >= value,
        Op::ScmpCmpGt => arg > value,
        Op::ScmpCmpMaskedEq => arg & value == value_two & value,
    }
}

/// Values that straddle the halves: equal high and different low halves,
/// and the other way round, the extremes, and their neighbours.
fn interesting() -> Vec<u64> {
    let base = [
        0u64, 1, 5, 8, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff, 0x1_0000_0000, 0x1_0000_0005,
        0x1_ffff_ffff, 0x2_0000_0005, 0xffff_ffff_0000_0005, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000,
        0xffff_ffff_ffff_fffe, u64::MAX,
    ];
    let mut v: Vec<u64> = base.iter().flat_map(|&b| [b.wrapping_sub(1), b, b.wrapping_add(1)]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn cond_rule(op: &str, index: u32, value: u64, value_two: u64) -> Value {
    json!({"index": index, "op": op, "value": value, "valueTwo": value_two})
}

#[test]
fn every_operator_compares_64_bit_arguments_by_halves() {
    let values = interesting();
    for (name, op) in OPS {
        for &value in &values {
            let value_two = value.rotate_left(17) ^ 0x0000_0001_0000_0004;
            let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [cond_rule(name, 1, value, value_two)]}
            ]}));
            for &arg in &values {
                let got = run(f.program(), &Data::x86_64(nr64("lseek"), &[3, arg, 1]));
                let want = if holds(op, arg, value, value_two) { ERRNO_38 } else { ret::ALLOW };
                assert_eq!(got, want, "{name} value {value:#x} valueTwo {value_two:#x}: arg {arg:#x}");
            }
        }
    }
}

#[test]
fn masked_eq_masks_the_expected_value_too() {
    // libseccomp compares (arg & mask) == (datum & mask).
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
        "action": "SCMP_ACT_ERRNO", "args": [cond_rule("SCMP_CMP_MASKED_EQ", 0, 0x7e02_0000, 0xffff_ffff_7e02_0000)]}]}));
    let clone = |flags: u64| run(f.program(), &Data::x86_64(nr64("clone"), &[flags]));
    assert_eq!(clone(0x7e02_0000), ret::ERRNO | 1);
    assert_eq!(clone(0xffff_0000_7e02_0011), ret::ERRNO | 1);
    assert_eq!(clone(0x7e00_0000), ret::ALLOW);
}

#[test]
fn the_32_bit_abis_compare_the_low_halves_only() {
    let values = interesting();
    for (abi, arch) in [(Abi::I386, "SCMP_ARCH_X86"), (Abi::X32, "SCMP_ARCH_X32")] {
        for (name, op) in OPS {
            for &value in &[5u64, 0x1_0000_0005, 0xffff_ffff, u64::MAX] {
                let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch],
                    "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                        "args": [cond_rule(name, 0, value, 0x1_0000_0005)]}]}));
                let arch_value = if abi == Abi::I386 { AUDIT_ARCH_I386 } else { AUDIT_ARCH_X86_64 };
                for &arg in &values {
                    let lo = |x: u64| x & 0xffff_ffff;
                    let want = if holds(op, lo(arg), lo(value), lo(0x1_0000_0005)) { ERRNO_38 } else { ret::ALLOW };
                    let got = run(f.program(), &Data::new(arch_value, abi.nr("kill").unwrap(), &[arg]));
                    assert_eq!(got, want, "{arch} {name} {value:#x}: arg {arg:#x}");
                }
            }
        }
    }
}

#[test]
fn conditions_of_one_rule_are_anded() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
        "args": [cond_rule("SCMP_CMP_EQ", 0, 1, 0), cond_rule("SCMP_CMP_EQ", 1, 0, 0), cond_rule("SCMP_CMP_GT", 5, 7, 0)]}]}));
    let kill = |a: &[u64]| run(f.program(), &Data::x86_64(nr64("kill"), a));
    assert_eq!(kill(&[1, 0, 0, 0, 0, 8]), ERRNO_38);
    assert_eq!(kill(&[1, 0, 0, 0, 0, 7]), ret::ALLOW);
    assert_eq!(kill(&[1, 18, 0, 0, 0, 8]), ret::ALLOW);
    assert_eq!(kill(&[0, 0, 0, 0, 0, 8]), ret::ALLOW);
}

#[test]
fn conditions_on_one_argument_twice_are_ored_as_runc_does() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
        "args": [cond_rule("SCMP_CMP_EQ", 0, 1, 0), cond_rule("SCMP_CMP_EQ", 0, 0, 0), cond_rule("SCMP_CMP_EQ", 1, 9, 0)]}]}));
    let kill = |a: &[u64]| run(f.program(), &Data::x86_64(nr64("kill"), a));
    assert_eq!(kill(&[1, 18]), ERRNO_38);
    assert_eq!(kill(&[0, 18]), ERRNO_38);
    assert_eq!(kill(&[5, 9]), ERRNO_38);
    assert_eq!(kill(&[5, 18]), ret::ALLOW);
}

// ---------------------------------------------------------------------------------------------
// One system call in several rules
// ---------------------------------------------------------------------------------------------

#[test]
fn unconditional_rules_win_and_the_first_one_wins() {
    for rules in [
        json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [cond_rule("SCMP_CMP_EQ", 0, 5, 0)]}]),
        json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2, "args": [cond_rule("SCMP_CMP_EQ", 0, 5, 0)]},
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]),
        json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
               {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]),
    ] {
        let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
        for arg in [0, 5] {
            assert_eq!(run(f.program(), &Data::x86_64(nr64("kill"), &[arg])), ret::ERRNO | 1, "{rules}");
        }
    }
}

#[test]
fn conditional_rules_are_tried_in_profile_order() {
    // The podman/docker pattern: several ALLOW rules for one call, each
    // with one value, and the default for every other value.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [cond_rule("SCMP_CMP_EQ", 0, 0, 0)]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [cond_rule("SCMP_CMP_EQ", 0, 8, 0)]},
        {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [cond_rule("SCMP_CMP_GT", 0, 4, 0)]},
        {"names": ["personality"], "action": "SCMP_ACT_TRAP", "args": [cond_rule("SCMP_CMP_GT", 0, 2, 0)]},
        {"names": ["getppid", "personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [cond_rule("SCMP_CMP_EQ", 0, 1, 0)]}
    ]}));
    let p = |a: u64| run(f.program(), &Data::x86_64(nr64("personality"), &[a]));
    assert_eq!(p(0), ret::ALLOW);
    assert_eq!(p(8), ret::ALLOW);
    assert_eq!(p(9), ret::LOG);
    assert_eq!(p(3), ret::TRAP);
    assert_eq!(p(1), ret::ERRNO | 5);
    assert_eq!(p(2), ERRNO_38);
    let g = |a: u64| run(f.program(), &Data::x86_64(nr64("getppid"), &[a]));
    assert_eq!(g(1), ret::ERRNO | 5);
    assert_eq!(g(0), ERRNO_38);
}

#[test]
fn rules_with_the_default_action_are_skipped_as_runc_does() {
    // With the ALLOW rule skipped, the ERRNO rule after it decides.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [cond_rule("SCMP_CMP_EQ", 0, 1, 0)]},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [cond_rule("SCMP_CMP_LT", 0, 5, 0)]}
    ]}));
    assert_eq!(run(f.program(), &Data::x86_64(nr64("kill"), &[1])), ret::ERRNO | 1);
    // The same action with another errno is another action.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3}]}));
    assert_eq!(run(f.program(), &Data::x86_64(nr64("kill"), &[1])), ret::ERRNO | 3);
}

// ---------------------------------------------------------------------------------------------
// Architectures
// ---------------------------------------------------------------------------------------------

#[test]
fn architectures_not_in_the_filter_are_killed() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}));
    let mkdir64 = nr64("mkdir");
    assert_eq!(run(f.program(), &Data::x86_64(mkdir64, &[])), ERRNO_38);
    assert_eq!(run(f.program(), &Data::x86_64(0, &[])), ret::ALLOW);
    // i386 and x32 calls: libseccomp's default bad-arch action.
    assert_eq!(run(f.program(), &Data::new(AUDIT_ARCH_I386, 39, &[])), ret::KILL_THREAD);
    assert_eq!(run(f.program(), &Data::x86_64(X32_SYSCALL_BIT | mkdir64, &[])), ret::KILL_THREAD);
    assert_eq!(run(f.program(), &Data::x86_64(X32_SYSCALL_BIT, &[])), ret::KILL_THREAD);
    // A foreign architecture, listed or not.
    assert_eq!(run(f.program(), &Data::new(0xc000_00b7, mkdir64, &[])), ret::KILL_THREAD);
    // -1: a tracer skipped the call; it is no x32 call.
    assert_eq!(run(f.program(), &Data::x86_64(u32::MAX, &[])), ret::ALLOW);
}

#[test]
fn listed_architectures_use_their_own_numbers() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["execve"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7},
            {"names": ["socketcall", "arch_prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}
        ]}));
    let p = f.program();
    // mkdir: 83 on x86_64, 39 on i386, 83|bit on x32.
    assert_eq!(run(p, &Data::x86_64(83, &[])), ERRNO_38);
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, 39, &[])), ERRNO_38);
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, 83, &[])), ret::ALLOW);
    assert_eq!(run(p, &Data::x86_64(X32_SYSCALL_BIT | 83, &[])), ERRNO_38);
    // execve: 59 on x86_64, 11 on i386, 520|bit on x32 (59|bit is 64-bit only).
    assert_eq!(run(p, &Data::x86_64(59, &[])), ret::ERRNO | 7);
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, 11, &[])), ret::ERRNO | 7);
    assert_eq!(run(p, &Data::x86_64(X32_SYSCALL_BIT | 520, &[])), ret::ERRNO | 7);
    assert_eq!(run(p, &Data::x86_64(X32_SYSCALL_BIT | 59, &[])), ret::ALLOW);
    // Names one architecture lacks are skipped there only.
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, 102, &[])), ret::ERRNO | 9);
    assert_eq!(run(p, &Data::x86_64(158, &[])), ret::ERRNO | 9);
    assert_eq!(run(p, &Data::x86_64(102, &[])), ret::ALLOW);
    // Still killed: an architecture nobody can list on x86_64.
    assert_eq!(run(p, &Data::new(0x4000_0028, 1, &[])), ret::KILL_THREAD);
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": ["no_such_call", "getppid", "_llseek"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(run(f.program(), &Data::x86_64(nr64("getppid"), &[])), ret::ALLOW);
    assert_eq!(run(f.program(), &Data::x86_64(nr64("getpid"), &[])), ERRNO_38);
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

#[test]
fn flags_and_the_listener() {
    let all = json!(["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": all}));
    // WAIT_KILLABLE_RECV only exists with a listener (the kernel says EINVAL).
    assert_eq!(f.flags(), flag::TSYNC | flag::LOG | flag::SPEC_ALLOW);
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": all, "listenerPath": "/a",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(
        f.flags(),
        flag::TSYNC | flag::LOG | flag::SPEC_ALLOW | flag::WAIT_KILLABLE_RECV | flag::NEW_LISTENER | flag::TSYNC_ESRCH
    );
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(f.flags(), flag::NEW_LISTENER);
    // A NOTIFY rule that matches nothing here still makes a listener, as
    // in runc: the agent waits for it.
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(f.flags(), flag::NEW_LISTENER);
    // A listenerPath without a NOTIFY rule makes none (runc does not connect then either).
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(f.flags(), 0);
}

// ---------------------------------------------------------------------------------------------
// Size: wide jumps and the kernel's limit
// ---------------------------------------------------------------------------------------------

#[test]
fn long_bodies_get_wide_jumps() {
    // 150 conditional rules on one call: its body is far longer than a
    // conditional jump reaches, and 600 unconditional names around it.
    let mut rules: Vec<Value> = (0..150u64)
        .map(|v| json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100 + v,
            "args": [cond_rule("SCMP_CMP_EQ", 1, v << 32 | v, 0)]}))
        .collect();
    let names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).filter(|n| *n != "kill").collect();
    rules.push(json!({"names": names, "action": "SCMP_ACT_LOG"}));
    let f = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules}));
    assert!(f.program().len() > 1000, "{}", f.program().len());
    assert!(f.program().iter().any(|i| i.code == JMP_JA), "expected widened jumps");
    for v in 0..150u64 {
        assert_eq!(run(f.program(), &Data::x86_64(nr64("kill"), &[0, v << 32 | v])), ret::ERRNO | (100 + v as u32));
        assert_eq!(run(f.program(), &Data::new(AUDIT_ARCH_I386, 37, &[0, v])), ret::ERRNO | (100 + v as u32));
    }
    assert_eq!(run(f.program(), &Data::x86_64(nr64("kill"), &[0, 1])), ret::ERRNO | 1);
    for (name, nr) in syscalls::X86_64.iter().filter(|(n, _)| *n != "kill") {
        assert_eq!(run(f.program(), &Data::x86_64(*nr, &[])), ret::LOG, "{name}");
    }
    for (name, nr) in syscalls::I386.iter().filter(|(n, _)| *n != "kill") {
        let want = if Abi::X86_64.nr(name).is_some() { ret::LOG } else { ret::ERRNO | 1 };
        assert_eq!(run(f.program(), &Data::new(AUDIT_ARCH_I386, *nr, &[])), want, "i386 {name}");
    }
}

#[test]
fn programs_over_the_kernel_limit_are_refused() {
    let rules: Vec<Value> = (0..1500u64)
        .map(|v| json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [cond_rule("SCMP_CMP_EQ", 0, v, 0)]}))
        .collect();
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert!(e.contains("4096"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The podman default profile
// ---------------------------------------------------------------------------------------------

#[test]
fn podman_default_profile() {
    let text = include_str!("../../../../tests/fixtures/seccomp-podman-default.json");
    let f = compiled(serde_json::from_str(text).unwrap());
    let p = f.program();
    let x64 = |name: &str, args: &[u64]| run(p, &Data::x86_64(nr64(name), args));
    assert_eq!(x64("read", &[]), ret::ALLOW);
    assert_eq!(x64("mkdir", &[]), ret::ALLOW);
    assert_eq!(x64("kcmp", &[]), ret::ERRNO | 1);
    assert_eq!(x64("kexec_load", &[]), ret::ERRNO | 1);
    assert_eq!(x64("personality", &[0]), ret::ALLOW);
    assert_eq!(x64("personality", &[0xffff_ffff]), ret::ALLOW);
    assert_eq!(x64("personality", &[0x1_ffff_ffff]), ERRNO_38);
    assert_eq!(x64("personality", &[0x0004_0000]), ERRNO_38);
    // Not listed at all: the default, ENOSYS.
    assert_eq!(x64("add_key", &[]), ERRNO_38);
    assert_eq!(run(p, &Data::x86_64(1000, &[])), ERRNO_38);
    // i386 and x32 are listed.
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, Abi::I386.nr("_llseek").unwrap(), &[])), ret::ALLOW);
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, Abi::I386.nr("personality").unwrap(), &[8])), ret::ALLOW);
    assert_eq!(run(p, &Data::new(AUDIT_ARCH_I386, Abi::I386.nr("personality").unwrap(), &[9])), ERRNO_38);
    assert_eq!(run(p, &Data::x86_64(Abi::X32.nr("read").unwrap(), &[])), ret::ALLOW);
    assert_eq!(run(p, &Data::new(0xc000_00b7, 63, &[])), ret::KILL_THREAD);
    assert_eq!(f.flags(), 0);
}

// ---------------------------------------------------------------------------------------------
// The syscall tables
// ---------------------------------------------------------------------------------------------

#[test]
fn tables_have_unique_names_and_numbers() {
    for (abi, table) in [("x86_64", syscalls::X86_64), ("i386", syscalls::I386), ("x32", syscalls::X32)] {
        let mut names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        let mut nrs: Vec<u32> = table.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        nrs.sort_unstable();
        let (n1, n2) = (names.len(), nrs.len());
        names.dedup();
        nrs.dedup();
        assert_eq!(names.len(), n1, "{abi}: a name twice");
        assert_eq!(nrs.len(), n2, "{abi}: a number twice");
        assert!(nrs.iter().all(|n| *n < X32_SYSCALL_BIT), "{abi}");
    }
}

/// The x86_64 table agrees with the `libc` crate's `SYS_*` constants for
/// every name libc has (libc lacks a few that the kernel headers list).
#[test]
fn x86_64_table_matches_libc() {
    let libc_nrs: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read), ("write", libc::SYS_write), ("open", libc::SYS_open),
        ("close", libc::SYS_close), ("stat", libc::SYS_stat), ("fstat", libc::SYS_fstat),
        ("lstat", libc::SYS_lstat), ("poll", libc::SYS_poll), ("lseek", libc::SYS_lseek),
        ("mmap", libc::SYS_mmap), ("mprotect", libc::SYS_mprotect), ("munmap", libc::SYS_munmap),
        ("brk", libc::SYS_brk), ("rt_sigaction", libc::SYS_rt_sigaction),
        ("rt_sigprocmask", libc::SYS_rt_sigprocmask), ("rt_sigreturn", libc::SYS_rt_sigreturn),
        ("ioctl", libc::SYS_ioctl), ("pread64", libc::SYS_pread64), ("pwrite64", libc::SYS_pwrite64),
        ("readv", libc::SYS_readv), ("writev", libc::SYS_writev), ("access", libc::SYS_access),
        ("pipe", libc::SYS_pipe), ("select", libc::SYS_select), ("sched_yield", libc::SYS_sched_yield),
        ("mremap", libc::SYS_mremap), ("msync", libc::SYS_msync), ("mincore", libc::SYS_mincore),
        ("madvise", libc::SYS_madvise), ("shmget", libc::SYS_shmget), ("shmat", libc::SYS_shmat),
        ("shmctl", libc::SYS_shmctl), ("dup", libc::SYS_dup), ("dup2", libc::SYS_dup2),
        ("pause", libc::SYS_pause), ("nanosleep", libc::SYS_nanosleep),
        ("getitimer", libc::SYS_getitimer), ("alarm", libc::SYS_alarm),
        ("setitimer", libc::SYS_setitimer), ("getpid", libc::SYS_getpid),
        ("sendfile", libc::SYS_sendfile), ("socket", libc::SYS_socket), ("connect", libc::SYS_connect),
        ("accept", libc::SYS_accept), ("sendto", libc::SYS_sendto), ("recvfrom", libc::SYS_recvfrom),
        ("sendmsg", libc::SYS_sendmsg), ("recvmsg", libc::SYS_recvmsg),
        ("shutdown", libc::SYS_shutdown), ("bind", libc::SYS_bind), ("listen", libc::SYS_listen),
        ("getsockname", libc::SYS_getsockname), ("getpeername", libc::SYS_getpeername),
        ("socketpair", libc::SYS_socketpair), ("setsockopt", libc::SYS_setsockopt),
        ("getsockopt", libc::SYS_getsockopt), ("clone", libc::SYS_clone), ("fork", libc::SYS_fork),
        ("vfork", libc::SYS_vfork), ("execve", libc::SYS_execve), ("exit", libc::SYS_exit),
        ("wait4", libc::SYS_wait4), ("kill", libc::SYS_kill), ("uname", libc::SYS_uname),
        ("semget", libc::SYS_semget), ("semop", libc::SYS_semop), ("semctl", libc::SYS_semctl),
        ("shmdt", libc::SYS_shmdt), ("msgget", libc::SYS_msgget), ("msgsnd", libc::SYS_msgsnd),
        ("msgrcv", libc::SYS_msgrcv), ("msgctl", libc::SYS_msgctl), ("fcntl", libc::SYS_fcntl),
        ("flock", libc::SYS_flock), ("fsync", libc::SYS_fsync), ("fdatasync", libc::SYS_fdatasync),
        ("truncate", libc::SYS_truncate), ("ftruncate", libc::SYS_ftruncate),
        ("getdents", libc::SYS_getdents), ("getcwd", libc::SYS_getcwd), ("chdir", libc::SYS_chdir),
        ("fchdir", libc::SYS_fchdir), ("rename", libc::SYS_rename), ("mkdir", libc::SYS_mkdir),
        ("rmdir", libc::SYS_rmdir), ("creat", libc::SYS_creat), ("link", libc::SYS_link),
        ("unlink", libc::SYS_unlink), ("symlink", libc::SYS_symlink), ("readlink", libc::SYS_readlink),
        ("chmod", libc::SYS_chmod), ("fchmod", libc::SYS_fchmod), ("chown", libc::SYS_chown),
        ("fchown", libc::SYS_fchown), ("lchown", libc::SYS_lchown), ("umask", libc::SYS_umask),
        ("gettimeofday", libc::SYS_gettimeofday), ("getrlimit", libc::SYS_getrlimit),
        ("getrusage", libc::SYS_getrusage), ("sysinfo", libc::SYS_sysinfo), ("times", libc::SYS_times),
        ("ptrace", libc::SYS_ptrace), ("getuid", libc::SYS_getuid), ("syslog", libc::SYS_syslog),
        ("getgid", libc::SYS_getgid), ("setuid", libc::SYS_setuid), ("setgid", libc::SYS_setgid),
        ("geteuid", libc::SYS_geteuid), ("getegid", libc::SYS_getegid), ("setpgid", libc::SYS_setpgid),
        ("getppid", libc::SYS_getppid), ("getpgrp", libc::SYS_getpgrp), ("setsid", libc::SYS_setsid),
        ("setreuid", libc::SYS_setreuid), ("setregid", libc::SYS_setregid),
        ("getgroups", libc::SYS_getgroups), ("setgroups", libc::SYS_setgroups),
        ("setresuid", libc::SYS_setresuid), ("getresuid", libc::SYS_getresuid),
        ("setresgid", libc::SYS_setresgid), ("getresgid", libc::SYS_getresgid),
        ("getpgid", libc::SYS_getpgid), ("setfsuid", libc::SYS_setfsuid),
        ("setfsgid", libc::SYS_setfsgid), ("getsid", libc::SYS_getsid), ("capget", libc::SYS_capget),
        ("capset", libc::SYS_capset), ("rt_sigpending", libc::SYS_rt_sigpending),
        ("rt_sigtimedwait", libc::SYS_rt_sigtimedwait), ("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo),
        ("rt_sigsuspend", libc::SYS_rt_sigsuspend), ("sigaltstack", libc::SYS_sigaltstack),
        ("utime", libc::SYS_utime), ("mknod", libc::SYS_mknod), ("uselib", libc::SYS_uselib),
        ("personality", libc::SYS_personality), ("ustat", libc::SYS_ustat),
        ("statfs", libc::SYS_statfs), ("fstatfs", libc::SYS_fstatfs), ("sysfs", libc::SYS_sysfs),
        ("getpriority", libc::SYS_getpriority), ("setpriority", libc::SYS_setpriority),
        ("sched_setparam", libc::SYS_sched_setparam), ("sched_getparam", libc::SYS_sched_getparam),
        ("sched_setscheduler", libc::SYS_sched_setscheduler),
        ("sched_getscheduler", libc::SYS_sched_getscheduler),
        ("sched_get_priority_max", libc::SYS_sched_get_priority_max),
        ("sched_get_priority_min", libc::SYS_sched_get_priority_min),
        ("sched_rr_get_interval", libc::SYS_sched_rr_get_interval), ("mlock", libc::SYS_mlock),
        ("munlock", libc::SYS_munlock), ("mlockall", libc::SYS_mlockall),
        ("munlockall", libc::SYS_munlockall), ("vhangup", libc::SYS_vhangup),
        ("modify_ldt", libc::SYS_modify_ldt), ("pivot_root", libc::SYS_pivot_root),
        ("_sysctl", libc::SYS__sysctl), ("prctl", libc::SYS_prctl),
        ("arch_prctl", libc::SYS_arch_prctl), ("adjtimex", libc::SYS_adjtimex),
        ("setrlimit", libc::SYS_setrlimit), ("chroot", libc::SYS_chroot), ("sync", libc::SYS_sync),
        ("acct", libc::SYS_acct), ("settimeofday", libc::SYS_settimeofday), ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2), ("swapon", libc::SYS_swapon), ("swapoff", libc::SYS_swapoff),
        ("reboot", libc::SYS_reboot), ("sethostname", libc::SYS_sethostname),
        ("setdomainname", libc::SYS_setdomainname), ("iopl", libc::SYS_iopl),
        ("ioperm", libc::SYS_ioperm), ("init_module", libc::SYS_init_module),
        ("delete_module", libc::SYS_delete_module), ("quotactl", libc::SYS_quotactl),
        ("nfsservctl", libc::SYS_nfsservctl), ("getpmsg", libc::SYS_getpmsg),
        ("putpmsg", libc::SYS_putpmsg), ("afs_syscall", libc::SYS_afs_syscall),
        ("tuxcall", libc::SYS_tuxcall), ("security", libc::SYS_security), ("gettid", libc::SYS_gettid),
        ("readahead", libc::SYS_readahead), ("setxattr", libc::SYS_setxattr),
        ("lsetxattr", libc::SYS_lsetxattr), ("fsetxattr", libc::SYS_fsetxattr),
        ("getxattr", libc::SYS_getxattr), ("lgetxattr", libc::SYS_lgetxattr),
        ("fgetxattr", libc::SYS_fgetxattr), ("listxattr", libc::SYS_listxattr),
        ("llistxattr", libc::SYS_llistxattr), ("flistxattr", libc::SYS_flistxattr),
        ("removexattr", libc::SYS_removexattr), ("lremovexattr", libc::SYS_lremovexattr),
        ("fremovexattr", libc::SYS_fremovexattr), ("tkill", libc::SYS_tkill), ("time", libc::SYS_time),
        ("futex", libc::SYS_futex), ("sched_setaffinity", libc::SYS_sched_setaffinity),
        ("sched_getaffinity", libc::SYS_sched_getaffinity),
        ("set_thread_area", libc::SYS_set_thread_area), ("io_setup", libc::SYS_io_setup),
        ("io_destroy", libc::SYS_io_destroy), ("io_getevents", libc::SYS_io_getevents),
        ("io_submit", libc::SYS_io_submit), ("io_cancel", libc::SYS_io_cancel),
        ("get_thread_area", libc::SYS_get_thread_area), ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("epoll_create", libc::SYS_epoll_create), ("epoll_ctl_old", libc::SYS_epoll_ctl_old),
        ("epoll_wait_old", libc::SYS_epoll_wait_old), ("remap_file_pages", libc::SYS_remap_file_pages),
        ("getdents64", libc::SYS_getdents64), ("set_tid_address", libc::SYS_set_tid_address),
        ("restart_syscall", libc::SYS_restart_syscall), ("semtimedop", libc::SYS_semtimedop),
        ("fadvise64", libc::SYS_fadvise64), ("timer_create", libc::SYS_timer_create),
        ("timer_settime", libc::SYS_timer_settime), ("timer_gettime", libc::SYS_timer_gettime),
        ("timer_getoverrun", libc::SYS_timer_getoverrun), ("timer_delete", libc::SYS_timer_delete),
        ("clock_settime", libc::SYS_clock_settime), ("clock_gettime", libc::SYS_clock_gettime),
        ("clock_getres", libc::SYS_clock_getres), ("clock_nanosleep", libc::SYS_clock_nanosleep),
        ("exit_group", libc::SYS_exit_group), ("epoll_wait", libc::SYS_epoll_wait),
        ("epoll_ctl", libc::SYS_epoll_ctl), ("tgkill", libc::SYS_tgkill), ("utimes", libc::SYS_utimes),
        ("vserver", libc::SYS_vserver), ("mbind", libc::SYS_mbind),
        ("set_mempolicy", libc::SYS_set_mempolicy), ("get_mempolicy", libc::SYS_get_mempolicy),
        ("mq_open", libc::SYS_mq_open), ("mq_unlink", libc::SYS_mq_unlink),
        ("mq_timedsend", libc::SYS_mq_timedsend), ("mq_timedreceive", libc::SYS_mq_timedreceive),
        ("mq_notify", libc::SYS_mq_notify), ("mq_getsetattr", libc::SYS_mq_getsetattr),
        ("kexec_load", libc::SYS_kexec_load), ("waitid", libc::SYS_waitid),
        ("add_key", libc::SYS_add_key), ("request_key", libc::SYS_request_key),
        ("keyctl", libc::SYS_keyctl), ("ioprio_set", libc::SYS_ioprio_set),
        ("ioprio_get", libc::SYS_ioprio_get), ("inotify_init", libc::SYS_inotify_init),
        ("inotify_add_watch", libc::SYS_inotify_add_watch),
        ("inotify_rm_watch", libc::SYS_inotify_rm_watch), ("migrate_pages", libc::SYS_migrate_pages),
        ("openat", libc::SYS_openat), ("mkdirat", libc::SYS_mkdirat), ("mknodat", libc::SYS_mknodat),
        ("fchownat", libc::SYS_fchownat), ("futimesat", libc::SYS_futimesat),
        ("newfstatat", libc::SYS_newfstatat), ("unlinkat", libc::SYS_unlinkat),
        ("renameat", libc::SYS_renameat), ("linkat", libc::SYS_linkat),
        ("symlinkat", libc::SYS_symlinkat), ("readlinkat", libc::SYS_readlinkat),
        ("fchmodat", libc::SYS_fchmodat), ("faccessat", libc::SYS_faccessat),
        ("pselect6", libc::SYS_pselect6), ("ppoll", libc::SYS_ppoll), ("unshare", libc::SYS_unshare),
        ("set_robust_list", libc::SYS_set_robust_list), ("get_robust_list", libc::SYS_get_robust_list),
        ("splice", libc::SYS_splice), ("tee", libc::SYS_tee),
        ("sync_file_range", libc::SYS_sync_file_range), ("vmsplice", libc::SYS_vmsplice),
        ("move_pages", libc::SYS_move_pages), ("utimensat", libc::SYS_utimensat),
        ("epoll_pwait", libc::SYS_epoll_pwait), ("signalfd", libc::SYS_signalfd),
        ("timerfd_create", libc::SYS_timerfd_create), ("eventfd", libc::SYS_eventfd),
        ("fallocate", libc::SYS_fallocate), ("timerfd_settime", libc::SYS_timerfd_settime),
        ("timerfd_gettime", libc::SYS_timerfd_gettime), ("accept4", libc::SYS_accept4),
        ("signalfd4", libc::SYS_signalfd4), ("eventfd2", libc::SYS_eventfd2),
        ("epoll_create1", libc::SYS_epoll_create1), ("dup3", libc::SYS_dup3),
        ("pipe2", libc::SYS_pipe2), ("inotify_init1", libc::SYS_inotify_init1),
        ("preadv", libc::SYS_preadv), ("pwritev", libc::SYS_pwritev),
        ("rt_tgsigqueueinfo", libc::SYS_rt_tgsigqueueinfo),
        ("perf_event_open", libc::SYS_perf_event_open), ("recvmmsg", libc::SYS_recvmmsg),
        ("fanotify_init", libc::SYS_fanotify_init), ("fanotify_mark", libc::SYS_fanotify_mark),
        ("prlimit64", libc::SYS_prlimit64), ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("open_by_handle_at", libc::SYS_open_by_handle_at), ("clock_adjtime", libc::SYS_clock_adjtime),
        ("syncfs", libc::SYS_syncfs), ("sendmmsg", libc::SYS_sendmmsg), ("setns", libc::SYS_setns),
        ("getcpu", libc::SYS_getcpu), ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev), ("kcmp", libc::SYS_kcmp),
        ("finit_module", libc::SYS_finit_module), ("sched_setattr", libc::SYS_sched_setattr),
        ("sched_getattr", libc::SYS_sched_getattr), ("renameat2", libc::SYS_renameat2),
        ("seccomp", libc::SYS_seccomp), ("getrandom", libc::SYS_getrandom),
        ("memfd_create", libc::SYS_memfd_create), ("kexec_file_load", libc::SYS_kexec_file_load),
        ("bpf", libc::SYS_bpf), ("execveat", libc::SYS_execveat),
        ("userfaultfd", libc::SYS_userfaultfd), ("membarrier", libc::SYS_membarrier),
        ("mlock2", libc::SYS_mlock2), ("copy_file_range", libc::SYS_copy_file_range),
        ("preadv2", libc::SYS_preadv2), ("pwritev2", libc::SYS_pwritev2),
        ("pkey_mprotect", libc::SYS_pkey_mprotect), ("pkey_alloc", libc::SYS_pkey_alloc),
        ("pkey_free", libc::SYS_pkey_free), ("statx", libc::SYS_statx), ("rseq", libc::SYS_rseq),
        ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
        ("io_uring_setup", libc::SYS_io_uring_setup), ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register), ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount), ("fsopen", libc::SYS_fsopen),
        ("fsconfig", libc::SYS_fsconfig), ("fsmount", libc::SYS_fsmount), ("fspick", libc::SYS_fspick),
        ("pidfd_open", libc::SYS_pidfd_open), ("clone3", libc::SYS_clone3),
        ("close_range", libc::SYS_close_range), ("openat2", libc::SYS_openat2),
        ("pidfd_getfd", libc::SYS_pidfd_getfd), ("faccessat2", libc::SYS_faccessat2),
        ("process_madvise", libc::SYS_process_madvise), ("epoll_pwait2", libc::SYS_epoll_pwait2),
        ("mount_setattr", libc::SYS_mount_setattr), ("quotactl_fd", libc::SYS_quotactl_fd),
        ("landlock_create_ruleset", libc::SYS_landlock_create_ruleset),
        ("landlock_add_rule", libc::SYS_landlock_add_rule),
        ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
        ("memfd_secret", libc::SYS_memfd_secret), ("process_mrelease", libc::SYS_process_mrelease),
        ("futex_waitv", libc::SYS_futex_waitv),
        ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
        ("fchmodat2", libc::SYS_fchmodat2), ("mseal", libc::SYS_mseal),
    ];
    assert!(libc_nrs.len() > 350);
    for (name, nr) in libc_nrs {
        assert_eq!(Abi::X86_64.nr(name), Some(*nr as u32), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The kernel agrees
// ---------------------------------------------------------------------------------------------

const CHILD_PROFILE: &str = "FDBOX_SECCOMP_TEST_PROFILE";

/// Offsets probed with lseek(/dev/null, offset, SEEK_CUR): /dev/null
/// accepts any offset, so the result is the filter's alone.
fn probes() -> Vec<u64> {
    interesting()
}

/// Install a compiled profile in a child process (the test binary run
/// again, for this test only) and return its lseek results per probe:
/// `Ok(())` or the errno.
fn kernel_results(profile: &Value) -> Vec<(u64, Result<(), i32>)> {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "security::seccomp::tests::the_kernel_runs_the_programs_as_the_interpreter_does"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD_PROFILE, profile.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<(u64, Result<(), i32>)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .map(|l| {
            let (arg, res) = l.split_once(' ').unwrap();
            let arg = u64::from_str_radix(arg.trim_start_matches("0x"), 16).unwrap();
            (arg, if res == "ok" { Ok(()) } else { Err(res.parse().unwrap()) })
        })
        .collect();
    assert_eq!(results.len(), probes().len(), "child output: {stdout}");
    results
}

/// The child's side: install and probe.
fn child_main(profile: &str) {
    let profile: Value = serde_json::from_str(profile).unwrap();
    let filter = compiled(profile);
    let devnull = rustix::fs::open("/dev/null", rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .unwrap();
    rustix::thread::set_no_new_privs(true).unwrap();
    filter.install().unwrap();
    // libtest has already written "test … ... " without a newline.
    let mut lines = String::from("\n");
    for arg in probes() {
        let r = rustix::fs::seek(&devnull, rustix::fs::SeekFrom::Current(arg as i64));
        let r = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.raw_os_error().to_string(),
        };
        lines.push_str(&format!("PROBE {arg:#x} {r}\n"));
    }
    print!("{lines}");
}

#[test]
fn the_kernel_runs_the_programs_as_the_interpreter_does() {
    if let Ok(profile) = std::env::var(CHILD_PROFILE) {
        return child_main(&profile);
    }
    let values = [5u64, 0x1_0000_0005, 0xffff_ffff, 0xffff_ffff_0000_0005];
    for (name, op) in OPS {
        for value in values {
            let value_two = 0x1_0000_0004u64;
            let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                 "args": [cond_rule(name, 1, value, value_two), cond_rule("SCMP_CMP_EQ", 2, libc::SEEK_CUR as u64, 0)]}
            ]});
            let program = compiled(profile.clone());
            for (arg, kernel) in kernel_results(&profile) {
                let expected = if holds(op, arg, value, value_two) { Err(77) } else { Ok(()) };
                assert_eq!(kernel, expected, "kernel: {name} {value:#x}: lseek offset {arg:#x}");
                let interpreted = run(program.program(), &Data::x86_64(nr64("lseek"), &[0, arg, libc::SEEK_CUR as u64]));
                let interpreted = if interpreted == ret::ALLOW { Ok(()) } else { Err((interpreted & ret::DATA) as i32) };
                assert_eq!(interpreted, expected, "interpreter: {name} {value:#x}: lseek offset {arg:#x}");
            }
        }
    }
}

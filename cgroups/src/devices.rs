//! The device allowlist: OCI `linux.resources.devices` rules, runc's
//! default rules appended after them, rendered as v1 `devices.allow/deny`
//! writes or compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE` program for v2.
//!
//! Semantics (both backends): the list starts from "deny everything"; a rule
//! of type `a` resets to allow-all or deny-all (the v1 kernel ignores its
//! major/minor/access); later rules override earlier ones.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Access bits, as in `BPF_DEVCG_ACC_*`.
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device types, as in `BPF_DEVCG_DEV_*`.
pub const DEV_BLOCK: u32 = 1;
pub const DEV_CHAR: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    All,
    Block,
    Char,
}

/// One normalised rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` is the wildcard `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

impl Rule {
    const fn chr(major: Option<u32>, minor: Option<u32>, access: u32) -> Rule {
        Rule {
            allow: true,
            kind: Kind::Char,
            major,
            minor,
            access,
        }
    }

    /// The v1 text form (`c 1:3 rwm`); `a` rules are written as plain `a`.
    pub fn v1_string(&self) -> String {
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
        let t = match self.kind {
            Kind::All => return "a".to_string(),
            Kind::Block => 'b',
            Kind::Char => 'c',
        };
        let mut acc = String::new();
        if self.access & ACC_READ != 0 {
            acc.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            acc.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            acc.push('m');
        }
        format!("{t} {}:{} {acc}", num(self.major), num(self.minor))
    }

    /// The v1 file this rule is written to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

/// runc's rules for every container, appended after the spec's rules:
/// mknod of any device, /dev/null, random, full, tty, zero, urandom,
/// /dev/pts/*, /dev/ptmx, /dev/net/tun.
pub const DEFAULT_RULES: &[Rule] = &[
    Rule::chr(None, None, ACC_MKNOD),
    Rule {
        allow: true,
        kind: Kind::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::chr(Some(1), Some(3), ACC_ALL),
    Rule::chr(Some(1), Some(8), ACC_ALL),
    Rule::chr(Some(1), Some(7), ACC_ALL),
    Rule::chr(Some(5), Some(0), ACC_ALL),
    Rule::chr(Some(1), Some(5), ACC_ALL),
    Rule::chr(Some(1), Some(9), ACC_ALL),
    Rule::chr(Some(136), None, ACC_ALL),
    Rule::chr(Some(5), Some(2), ACC_ALL),
    Rule::chr(Some(10), Some(200), ACC_ALL),
];

fn bad(i: usize, reason: impl Into<String>) -> Error {
    Error::InvalidResource {
        what: format!("linux.resources.devices[{i}]"),
        reason: reason.into(),
    }
}

fn number(i: usize, what: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        // BPF compares against a sign-extended 32-bit immediate
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(u32::try_from(n).ok()),
        Some(n) => Err(bad(i, format!("{what} {n} out of range"))),
    }
}

/// Normalise the spec's rules (in order) and append [`DEFAULT_RULES`].
pub fn rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(spec.len() + DEFAULT_RULES.len());
    for (i, d) in spec.iter().enumerate() {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::C) => Kind::Char,
            Some(t) => return Err(bad(i, format!("device type {:?} has no cgroup rule (use a, b or c)", t.as_str()))),
        };
        let acc_str = d.access().as_deref().unwrap_or("");
        if acc_str.is_empty() {
            return Err(bad(i, "access cannot be empty"));
        }
        let mut access = 0;
        for ch in acc_str.chars() {
            access |= match ch {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                // runc ignores `a` (Docker's "all" spelling sneaks into configs)
                'a' => 0,
                _ => return Err(bad(i, format!("access {acc_str:?}: only r, w and m are allowed"))),
            };
        }
        if access == 0 {
            return Err(bad(i, format!("access {acc_str:?}: none of r, w and m")));
        }
        out.push(Rule {
            allow: d.allow(),
            kind,
            major: number(i, "major", d.major())?,
            minor: number(i, "minor", d.minor())?,
            access,
        });
    }
    out.extend_from_slice(DEFAULT_RULES);
    Ok(out)
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55;
const JMP_JNE_X: u8 = 0x5d;
const JMP_EXIT: u8 = 0x95;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// Compile the rules into a cgroup device program. The context is
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
/// with `access_type = (access << 16) | type`. The last matching rule wins,
/// so rules are emitted from last to first and the first match returns;
/// nothing matching means deny.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    // r2 = type, r3 = access, r4 = major, r5 = minor
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        if r.kind == Kind::All {
            // matches everything: the verdict, and nothing after it runs
            // (the verifier refuses unreachable instructions)
            p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
            p.push(insn(JMP_EXIT, 0, 0, 0, 0));
            return p;
        }
        let mut checks: Vec<Vec<Insn>> = Vec::new();
        let t = if r.kind == Kind::Block { DEV_BLOCK } else { DEV_CHAR };
        checks.push(vec![insn(JMP_JNE_K, 2, 0, 0, t as i32)]);
        if r.access & ACC_ALL != ACC_ALL {
            // every requested bit must be in the rule: (r3 & acc) == r3
            checks.push(vec![
                insn(ALU64_MOV_X, 1, 3, 0, 0),
                insn(ALU64_AND_K, 1, 0, 0, r.access as i32),
                insn(JMP_JNE_X, 1, 3, 0, 0),
            ]);
        }
        if let Some(m) = r.major {
            checks.push(vec![insn(JMP_JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = r.minor {
            checks.push(vec![insn(JMP_JNE_K, 5, 0, 0, m as i32)]);
        }
        let block_len: usize = checks.iter().map(Vec::len).sum::<usize>() + 2;
        let mut pos = 0usize;
        for c in checks {
            for mut i in c {
                pos += 1;
                if i.code == JMP_JNE_K || i.code == JMP_JNE_X {
                    // skip to the end of this rule's block
                    i.off = (block_len - pos) as i16;
                }
                p.push(i);
            }
        }
        p.push(insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Run a program on one access, to test the compiler without a kernel:
/// a tiny interpreter for exactly the instructions [`program`] emits.
#[cfg(test)]
pub(crate) fn simulate(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> Option<u64> {
    let ctx = [(access << 16) | typ, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = *p.get(pc)?;
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
            ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
            ALU64_RSH_K => r[dst] >>= i.imm,
            ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
            ALU64_MOV_X => r[dst] = r[src],
            JMP_JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
            JMP_JNE_X if r[dst] != r[src] => pc += i.off as usize,
            JMP_JNE_K | JMP_JNE_X => {}
            JMP_EXIT => return Some(r[0]),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn spec(allow: bool, t: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, acc: &str) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).typ(t).access(acc);
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap_or_default()
    }

    #[test]
    fn rules_normalise_and_append_defaults() {
        let r = rules(&[spec(false, LinuxDeviceType::A, None, None, "rwm")]).unwrap_or_default();
        assert_eq!(r.len(), 1 + DEFAULT_RULES.len());
        assert_eq!(r[0].v1_string(), "a");
        assert_eq!(r[0].v1_file(), "devices.deny");
        assert_eq!(r[1].v1_string(), "c *:* m");
        assert_eq!(r[3].v1_string(), "c 1:3 rwm");
        assert_eq!(r[3].v1_file(), "devices.allow");
        assert_eq!(r[9].v1_string(), "c 136:* rwm");
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(rules(&[spec(true, LinuxDeviceType::C, Some(1), Some(3), "")]).is_err());
        assert!(rules(&[spec(true, LinuxDeviceType::C, Some(1), Some(3), "rx")]).is_err());
        assert!(rules(&[spec(true, LinuxDeviceType::C, Some(1), Some(3), "a")]).is_err());
        let rwa = rules(&[spec(true, LinuxDeviceType::C, Some(10), Some(229), "rwa")]).unwrap_or_default();
        assert_eq!(rwa.first().map(Rule::v1_string).as_deref(), Some("c 10:229 rw"));
        assert!(rules(&[spec(true, LinuxDeviceType::P, Some(1), Some(3), "r")]).is_err());
        assert!(rules(&[spec(true, LinuxDeviceType::C, Some(1 << 40), Some(3), "r")]).is_err());
        let e = rules(&[spec(true, LinuxDeviceType::U, Some(1), Some(3), "r")]);
        assert!(e.is_err());
    }

    #[test]
    fn program_last_match_wins_default_deny() {
        let r = rules(&[
            spec(false, LinuxDeviceType::A, None, None, "rwm"),
            spec(true, LinuxDeviceType::B, Some(8), None, "r"),
            spec(false, LinuxDeviceType::B, Some(8), Some(1), "rwm"),
        ])
        .unwrap_or_default();
        let p = program(&r);
        let rw = ACC_READ | ACC_WRITE;
        // defaults
        assert_eq!(simulate(&p, DEV_CHAR, rw, 1, 3), Some(1), "/dev/null");
        assert_eq!(simulate(&p, DEV_CHAR, ACC_MKNOD, 4, 4), Some(1), "mknod any char");
        assert_eq!(simulate(&p, DEV_CHAR, ACC_READ, 4, 4), Some(0), "read tty4");
        assert_eq!(simulate(&p, DEV_CHAR, rw, 136, 7), Some(1), "pts");
        // spec rules
        assert_eq!(simulate(&p, DEV_BLOCK, ACC_READ, 8, 0), Some(1), "sda read");
        assert_eq!(simulate(&p, DEV_BLOCK, rw, 8, 0), Some(0), "sda write");
        assert_eq!(simulate(&p, DEV_BLOCK, ACC_READ, 8, 1), Some(0), "sda1 denied later");
        assert_eq!(simulate(&p, DEV_BLOCK, ACC_READ, 259, 0), Some(0), "nvme");
    }

    #[test]
    fn program_has_no_unreachable_code() {
        // the usual spec: deny all first; it becomes the final verdict
        let r = rules(&[spec(false, LinuxDeviceType::A, None, None, "rwm")]).unwrap_or_default();
        let p = program(&r);
        let exits = p.iter().filter(|i| i.code == JMP_EXIT).count();
        assert_eq!(exits, DEFAULT_RULES.len() + 1, "one exit per rule, no default tail");
        assert_eq!(p.last().map(|i| i.code), Some(JMP_EXIT));
        assert_eq!(simulate(&p, DEV_CHAR, ACC_READ, 1, 11), Some(0));
        // rules before an allow-all are dead and not emitted
        let r = rules(&[
            spec(false, LinuxDeviceType::C, Some(7), Some(77), "rwm"),
            spec(true, LinuxDeviceType::A, None, None, "rwm"),
        ])
        .unwrap_or_default();
        let p = program(&r);
        assert!(!p.iter().any(|i| i.code == JMP_JNE_K && i.imm == 77));
        assert_eq!(simulate(&p, DEV_CHAR, ACC_READ, 7, 77), Some(1));
    }

    #[test]
    fn program_allow_all_rule_resets() {
        let r = rules(&[
            spec(false, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
            spec(true, LinuxDeviceType::A, None, None, "rwm"),
        ])
        .unwrap_or_default();
        let p = program(&r);
        assert_eq!(simulate(&p, DEV_CHAR, ACC_READ, 1, 3), Some(1));
        assert_eq!(simulate(&p, DEV_BLOCK, ACC_WRITE, 8, 0), Some(1));
    }
}

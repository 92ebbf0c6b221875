//! A readable listing of a seccomp BPF program:
//!
//! ```text
//! L0:   ld [4]                          ; arch
//! L1:   jeq #0xc000003e, L3, L2         ; AUDIT_ARCH_X86_64
//! L2:   ret KILL_PROCESS
//! L3:   ld [0]                          ; nr
//! L4:   jge #0x40000000, L2, L5         ; x32 syscall numbers
//! L5:   jge #0x27, L7, L6               ; nr >= getpid (x86_64)
//! L6:   ret ALLOW
//! L7:   ret ERRNO(1)
//! ```
//!
//! Jump targets are absolute (`L<n>` is instruction n). Comments name the
//! `seccomp_data` field loaded, the architecture compared and, where the
//! architecture is known on that path, the syscall a number stands for.

use crate::arch::*;
use crate::bpf::*;
use crate::{syscalls, Action, Arch};
use std::fmt::Write;

/// What the accumulator holds, as far as a forward scan can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acc {
    Unknown,
    Arch,
    Nr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    acc: Acc,
    audit: Option<u32>,
}

fn merge(a: Option<State>, b: State) -> State {
    match a {
        None => b,
        Some(a) => State {
            acc: if a.acc == b.acc { a.acc } else { Acc::Unknown },
            audit: if a.audit == b.audit { a.audit } else { None },
        },
    }
}

fn field(k: u32) -> String {
    match k {
        DATA_NR => "nr".into(),
        DATA_ARCH => "arch".into(),
        8 => "instruction_pointer low".into(),
        12 => "instruction_pointer high".into(),
        k if (DATA_ARGS..DATA_SIZE).contains(&k) => {
            let i = (k - DATA_ARGS) / 8;
            let half = if (k - DATA_ARGS).is_multiple_of(8) { "low" } else { "high" };
            format!("arg{i} {half}")
        }
        _ => "?".into(),
    }
}

fn audit_name(k: u32) -> Option<&'static str> {
    Some(match k {
        AUDIT_ARCH_X86_64 => "AUDIT_ARCH_X86_64",
        AUDIT_ARCH_I386 => "AUDIT_ARCH_I386",
        AUDIT_ARCH_AARCH64 => "AUDIT_ARCH_AARCH64",
        AUDIT_ARCH_ARM => "AUDIT_ARCH_ARM",
        _ => return None,
    })
}

fn syscall_name(audit: u32, nr: u32) -> Option<String> {
    let arch = match audit {
        AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => Arch::X32,
        AUDIT_ARCH_X86_64 => Arch::X86_64,
        AUDIT_ARCH_I386 => Arch::X86,
        AUDIT_ARCH_AARCH64 => Arch::Aarch64,
        AUDIT_ARCH_ARM => Arch::Arm,
        _ => return None,
    };
    syscalls::name(arch, nr).map(|n| format!("{n} ({arch})"))
}

fn ret_text(k: u32) -> String {
    Action::from_ret(k).to_string()
}

/// The listing, one instruction per line.
pub fn disassemble(prog: &Program) -> String {
    let n = prog.insns.len();
    let mut states: Vec<Option<State>> = vec![None; n + 1];
    if n > 0 {
        states[0] = Some(State { acc: Acc::Unknown, audit: None });
    }
    let width = format!("L{}:", n.saturating_sub(1)).len() + 2;
    let mut out = String::new();
    for (pc, i) in prog.insns.iter().enumerate() {
        let st = states[pc].unwrap_or(State { acc: Acc::Unknown, audit: None });
        let target = |off: usize| pc + 1 + off;
        let send = |to: usize, s: State, states: &mut Vec<Option<State>>| {
            if to <= n {
                states[to] = Some(merge(states[to], s));
            }
        };
        let mut comment = String::new();
        let text = match i.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let reg = if i.code & 0x07 == BPF_LD { "ld" } else { "ldx" };
                let mut next = st;
                let t = match i.code & 0xe0 {
                    BPF_ABS => {
                        comment = field(i.k);
                        if reg == "ld" {
                            next.acc = match i.k {
                                DATA_NR => Acc::Nr,
                                DATA_ARCH => Acc::Arch,
                                _ => Acc::Unknown,
                            };
                        }
                        format!("{reg} [{}]", i.k)
                    }
                    BPF_IMM => {
                        if reg == "ld" {
                            next.acc = Acc::Unknown;
                        }
                        format!("{reg} #{:#x}", i.k)
                    }
                    BPF_MEM => {
                        if reg == "ld" {
                            next.acc = Acc::Unknown;
                        }
                        format!("{reg} M[{}]", i.k)
                    }
                    BPF_LEN => {
                        if reg == "ld" {
                            next.acc = Acc::Unknown;
                        }
                        format!("{reg} len")
                    }
                    _ => format!(".word {:#06x}, {:#x}", i.code, i.k),
                };
                send(pc + 1, next, &mut states);
                t
            }
            BPF_ST => {
                send(pc + 1, st, &mut states);
                format!("st M[{}]", i.k)
            }
            BPF_STX => {
                send(pc + 1, st, &mut states);
                format!("stx M[{}]", i.k)
            }
            BPF_ALU => {
                let op = match i.code & 0xf0 {
                    BPF_ADD => "add",
                    BPF_SUB => "sub",
                    BPF_MUL => "mul",
                    BPF_DIV => "div",
                    BPF_OR => "or",
                    BPF_AND => "and",
                    BPF_LSH => "lsh",
                    BPF_RSH => "rsh",
                    BPF_NEG => "neg",
                    BPF_MOD => "mod",
                    BPF_XOR => "xor",
                    _ => "alu?",
                };
                send(pc + 1, State { acc: Acc::Unknown, ..st }, &mut states);
                if i.code & 0xf0 == BPF_NEG {
                    op.to_string()
                } else if i.code & BPF_X != 0 {
                    format!("{op} x")
                } else {
                    format!("{op} #{:#x}", i.k)
                }
            }
            BPF_JMP if i.code & 0xf0 == BPF_JA => {
                send(target(i.k as usize), st, &mut states);
                format!("ja L{}", target(i.k as usize))
            }
            BPF_JMP => {
                let op = match i.code & 0xf0 {
                    BPF_JEQ => "jeq",
                    BPF_JGT => "jgt",
                    BPF_JGE => "jge",
                    BPF_JSET => "jset",
                    _ => "j?",
                };
                let (t, f) = (target(usize::from(i.jt)), target(usize::from(i.jf)));
                let mut taken = st;
                if st.acc == Acc::Arch && i.code & 0xf0 == BPF_JEQ {
                    taken.audit = Some(i.k);
                    comment = audit_name(i.k).unwrap_or("unknown architecture").to_string();
                } else if st.acc == Acc::Nr && i.code & BPF_X == 0 {
                    if i.k == X32_SYSCALL_BIT && st.audit == Some(AUDIT_ARCH_X86_64) && op == "jge" {
                        comment = "x32 syscall numbers".to_string();
                    } else if let Some(name) = st.audit.and_then(|a| syscall_name(a, i.k)) {
                        comment = match op {
                            "jeq" => name,
                            "jge" => format!("nr >= {name}"),
                            "jgt" => format!("nr > {name}"),
                            _ => name,
                        };
                    }
                }
                send(t, taken, &mut states);
                send(f, st, &mut states);
                let operand = if i.code & BPF_X != 0 { "x".to_string() } else { format!("#{:#x}", i.k) };
                format!("{op} {operand}, L{t}, L{f}")
            }
            BPF_RET => match i.code & 0x18 {
                BPF_A => "ret A".to_string(),
                _ => format!("ret {}", ret_text(i.k)),
            },
            _ => {
                let t = if i.code & 0xf8 == BPF_TXA { "txa" } else { "tax" };
                send(pc + 1, State { acc: Acc::Unknown, ..st }, &mut states);
                t.to_string()
            }
        };
        let label = format!("L{pc}:");
        if comment.is_empty() {
            let _ = writeln!(out, "{label:<width$}{text}");
        } else {
            let _ = writeln!(out, "{label:<width$}{text:<32}; {comment}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loads_jumps_and_returns() {
        let p = Program {
            insns: vec![
                Insn::stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH),
                Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                Insn::stmt(BPF_RET | BPF_K, Action::KillProcess.to_ret()),
                Insn::stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR),
                Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 39, 0, 1),
                Insn::stmt(BPF_RET | BPF_K, Action::Errno(1).to_ret()),
                Insn::stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARGS + 4),
                Insn::stmt(BPF_ALU | BPF_AND | BPF_K, 0x7e02_0000),
                Insn::stmt(BPF_JMP | BPF_JA, 0),
                Insn::stmt(BPF_RET | BPF_K, Action::Allow.to_ret()),
            ],
        };
        let text = disassemble(&p);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "L0:  ld [4]                          ; arch");
        assert!(
            lines[1].starts_with("L1:  jeq #0xc000003e, L3, L2") && lines[1].ends_with("; AUDIT_ARCH_X86_64")
        );
        assert_eq!(lines[2], "L2:  ret KILL_PROCESS");
        assert!(
            lines[4].starts_with("L4:  jeq #0x27, L5, L6") && lines[4].ends_with("; getpid (x86_64)"),
            "{}",
            lines[4]
        );
        assert_eq!(lines[5], "L5:  ret ERRNO(1)");
        assert!(lines[6].ends_with("; arg0 high"));
        assert_eq!(lines[7], "L7:  and #0x7e020000");
        assert_eq!(lines[8], "L8:  ja L9");
        assert_eq!(lines[9], "L9:  ret ALLOW");
    }
}

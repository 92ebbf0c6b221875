//! Classic BPF: instructions, programs, and a simulator that runs a program
//! over a `seccomp_data` the way the kernel does.

use crate::{Error, Result};

// Instruction classes and fields (linux/bpf_common.h).
pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IMM: u16 = 0x00;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_MUL: u16 = 0x20;
pub const BPF_DIV: u16 = 0x30;
pub const BPF_OR: u16 = 0x40;
pub const BPF_AND: u16 = 0x50;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_NEG: u16 = 0x80;
pub const BPF_MOD: u16 = 0x90;
pub const BPF_XOR: u16 = 0xa0;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;
/// `BPF_MAXINSNS`: the kernel refuses longer classic programs.
pub const BPF_MAXINSNS: usize = 4096;
/// `BPF_MEMWORDS`: scratch memory slots.
const BPF_MEMWORDS: usize = 16;

/// Offsets in `struct seccomp_data`.
pub const DATA_NR: u32 = 0;
pub const DATA_ARCH: u32 = 4;
pub const DATA_IP: u32 = 8;
pub const DATA_ARGS: u32 = 16;
/// `sizeof(struct seccomp_data)`.
pub const DATA_SIZE: u32 = 64;

/// One classic BPF instruction, laid out exactly like `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    /// `code k` with no jumps (loads, ALU, returns).
    pub const fn stmt(code: u16, k: u32) -> Insn {
        Insn { code, jt: 0, jf: 0, k }
    }

    /// A conditional jump: `jt`/`jf` are forward offsets from the next instruction.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn { code, jt, jf, k }
    }

    /// The instruction as libc's `sock_filter`.
    pub fn to_sock_filter(self) -> libc::sock_filter {
        libc::sock_filter { code: self.code, jt: self.jt, jf: self.jf, k: self.k }
    }
}

/// A seccomp BPF program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    pub insns: Vec<Insn>,
}

/// The input of a seccomp filter: `struct seccomp_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at `offset`, as the kernel's `BPF_LD|BPF_W|BPF_ABS`
    /// reads it (native-endian; all supported architectures are little-endian).
    fn word(&self, offset: u32) -> Option<u32> {
        if !offset.is_multiple_of(4) || offset + 4 > DATA_SIZE {
            return None;
        }
        Some(match offset {
            DATA_NR => self.nr,
            DATA_ARCH => self.arch,
            8 => self.instruction_pointer as u32,
            12 => (self.instruction_pointer >> 32) as u32,
            o => {
                let arg = self.args[((o - DATA_ARGS) / 8) as usize];
                if (o - DATA_ARGS).is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
        })
    }
}

impl Program {
    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether the program is empty.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The program as libc's `sock_filter` array (what `seccomp(2)` takes).
    pub fn to_sock_filters(&self) -> Vec<libc::sock_filter> {
        self.insns.iter().map(|i| i.to_sock_filter()).collect()
    }

    /// Raw `struct sock_filter` bytes (8 per instruction, native-endian), the
    /// format `seccomp_export_bpf` writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    /// Reads raw `struct sock_filter` bytes (e.g. libseccomp's export).
    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        if !bytes.len().is_multiple_of(8) {
            return Err(Error::Bpf {
                pc: bytes.len() / 8,
                message: format!("{} bytes is not a whole number of 8-byte instructions", bytes.len()),
            });
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Program { insns })
    }

    /// Checks what the kernel's seccomp checker checks: length, every jump
    /// inside the program, loads only of aligned words of `seccomp_data`, only
    /// the instructions seccomp accepts, and no path that runs off the end.
    pub fn validate(&self) -> Result<()> {
        let n = self.insns.len();
        if n == 0 || n > BPF_MAXINSNS {
            return Err(Error::Bpf {
                pc: 0,
                message: format!("program length {n} is not within 1..={BPF_MAXINSNS}"),
            });
        }
        for (pc, i) in self.insns.iter().enumerate() {
            let bad = |message: String| Err(Error::Bpf { pc, message });
            match i.code & 0x07 {
                BPF_LD | BPF_LDX => match i.code & 0xe0 {
                    BPF_ABS if i.code == BPF_LD | BPF_W | BPF_ABS => {
                        if !i.k.is_multiple_of(4) || i.k >= DATA_SIZE {
                            return bad(format!("load of seccomp_data offset {} is not an aligned word", i.k));
                        }
                    }
                    BPF_IMM => {}
                    BPF_MEM if (i.k as usize) < BPF_MEMWORDS => {}
                    BPF_LEN if i.code & 0x18 == BPF_W => {}
                    _ => return bad(format!("load code {:#06x} is not allowed in seccomp filters", i.code)),
                },
                BPF_ST | BPF_STX if i.k as usize >= BPF_MEMWORDS => {
                    return bad(format!("store to scratch slot {} out of range", i.k));
                }
                BPF_ST | BPF_STX => {}
                BPF_ALU => {
                    let op = i.code & 0xf0;
                    if matches!(op, BPF_DIV | BPF_MOD) && i.code & BPF_X == 0 && i.k == 0 {
                        return bad("division by constant zero".to_string());
                    }
                    if !matches!(
                        op,
                        BPF_ADD | BPF_SUB | BPF_MUL | BPF_DIV | BPF_OR | BPF_AND | BPF_LSH | BPF_RSH | BPF_NEG | BPF_MOD | BPF_XOR
                    ) {
                        return bad(format!("unknown ALU code {:#06x}", i.code));
                    }
                }
                BPF_JMP => {
                    let op = i.code & 0xf0;
                    if op == BPF_JA {
                        if pc + 1 + i.k as usize >= n {
                            return bad(format!("ja +{} jumps past the end", i.k));
                        }
                    } else {
                        if !matches!(op, BPF_JEQ | BPF_JGT | BPF_JGE | BPF_JSET) {
                            return bad(format!("unknown jump code {:#06x}", i.code));
                        }
                        if pc + 1 + usize::from(i.jt.max(i.jf)) >= n {
                            return bad(format!("jump ({}, {}) goes past the end", i.jt, i.jf));
                        }
                    }
                }
                BPF_RET => {}
                _ /* BPF_MISC */ => {}
            }
        }
        let last = self.insns[n - 1];
        // Every jump lands inside the program, so a final return means no path
        // runs off the end.
        if last.code & 0x07 != BPF_RET {
            return Err(Error::Bpf { pc: n - 1, message: "the program can run off its end".to_string() });
        }
        Ok(())
    }

    /// Runs the program over `data` and returns the filter's return value,
    /// exactly as the kernel's classic BPF interpreter would.
    pub fn run(&self, data: &SeccompData) -> Result<u32> {
        self.execute(data, None)
    }

    /// [`Program::run`], also returning the index of every instruction executed.
    pub fn run_traced(&self, data: &SeccompData) -> Result<(u32, Vec<usize>)> {
        let mut trace = Vec::new();
        let ret = self.execute(data, Some(&mut trace))?;
        Ok((ret, trace))
    }

    fn execute(&self, data: &SeccompData, mut trace: Option<&mut Vec<usize>>) -> Result<u32> {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; BPF_MEMWORDS];
        let mut pc = 0usize;
        loop {
            let Some(&i) = self.insns.get(pc) else {
                return Err(Error::Bpf { pc, message: "ran off the end of the program".to_string() });
            };
            let here = pc;
            if let Some(t) = trace.as_deref_mut() {
                t.push(here);
            }
            let bad = |message: String| Err(Error::Bpf { pc: here, message });
            let src = if i.code & BPF_X != 0 { x } else { i.k };
            pc += 1;
            match i.code & 0x07 {
                BPF_LD | BPF_LDX => {
                    let v = match i.code & 0xe0 {
                        BPF_ABS => match data.word(i.k) {
                            Some(v) => v,
                            None => return bad(format!("bad load at offset {}", i.k)),
                        },
                        BPF_IMM => i.k,
                        BPF_MEM => match mem.get(i.k as usize) {
                            Some(v) => *v,
                            None => return bad(format!("bad scratch slot {}", i.k)),
                        },
                        BPF_LEN => DATA_SIZE,
                        _ => return bad(format!("unsupported load {:#06x}", i.code)),
                    };
                    if i.code & 0x07 == BPF_LD {
                        a = v;
                    } else {
                        x = v;
                    }
                }
                BPF_ST | BPF_STX => {
                    let v = if i.code & 0x07 == BPF_ST { a } else { x };
                    match mem.get_mut(i.k as usize) {
                        Some(slot) => *slot = v,
                        None => return bad(format!("bad scratch slot {}", i.k)),
                    }
                }
                BPF_ALU => {
                    a = match i.code & 0xf0 {
                        BPF_ADD => a.wrapping_add(src),
                        BPF_SUB => a.wrapping_sub(src),
                        BPF_MUL => a.wrapping_mul(src),
                        BPF_DIV if src == 0 => return Ok(0),
                        BPF_DIV => a / src,
                        BPF_MOD if src == 0 => return Ok(0),
                        BPF_MOD => a % src,
                        BPF_OR => a | src,
                        BPF_AND => a & src,
                        BPF_XOR => a ^ src,
                        BPF_LSH => a.checked_shl(src).unwrap_or(0),
                        BPF_RSH => a.checked_shr(src).unwrap_or(0),
                        BPF_NEG => a.wrapping_neg(),
                        _ => return bad(format!("unsupported ALU op {:#06x}", i.code)),
                    };
                }
                BPF_JMP => {
                    let op = i.code & 0xf0;
                    if op == BPF_JA {
                        pc += i.k as usize;
                    } else {
                        let taken = match op {
                            BPF_JEQ => a == src,
                            BPF_JGT => a > src,
                            BPF_JGE => a >= src,
                            BPF_JSET => a & src != 0,
                            _ => return bad(format!("unsupported jump {:#06x}", i.code)),
                        };
                        pc += usize::from(if taken { i.jt } else { i.jf });
                    }
                }
                BPF_RET => {
                    return Ok(match i.code & 0x18 {
                        BPF_A => a,
                        _ => i.k,
                    })
                }
                _ => {
                    if i.code & 0xf8 == BPF_TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(k: u32) -> Insn {
        Insn::stmt(BPF_LD | BPF_W | BPF_ABS, k)
    }

    #[test]
    fn runs_a_tiny_filter() {
        // nr == 39 ? ERRNO(1) : ALLOW
        let p = Program {
            insns: vec![
                ld(DATA_NR),
                Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 39, 0, 1),
                Insn::stmt(BPF_RET | BPF_K, 0x0005_0001),
                Insn::stmt(BPF_RET | BPF_K, 0x7fff_0000),
            ],
        };
        p.validate().unwrap();
        assert_eq!(p.run(&SeccompData { nr: 39, ..Default::default() }).unwrap(), 0x0005_0001);
        assert_eq!(p.run(&SeccompData { nr: 40, ..Default::default() }).unwrap(), 0x7fff_0000);
    }

    #[test]
    fn loads_hi_and_lo_words_of_arguments() {
        let d = SeccompData { args: [0, 0, 0x1122_3344_5566_7788, 0, 0, 0], ..Default::default() };
        assert_eq!(d.word(DATA_ARGS + 16), Some(0x5566_7788));
        assert_eq!(d.word(DATA_ARGS + 20), Some(0x1122_3344));
        assert_eq!(d.word(62), None);
        assert_eq!(d.word(64), None);
    }

    #[test]
    fn bytes_round_trip_and_validation_catches_bad_programs() {
        let p = Program { insns: vec![ld(DATA_ARCH), Insn::stmt(BPF_RET | BPF_K, 0)] };
        assert_eq!(Program::from_bytes(&p.to_bytes()).unwrap(), p);
        assert!(Program::from_bytes(&[0; 7]).is_err());
        let far = Program {
            insns: vec![Insn::jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0), Insn::stmt(BPF_RET | BPF_K, 0)],
        };
        assert!(far.validate().unwrap_err().to_string().contains("past the end"));
        let misaligned = Program { insns: vec![ld(2), Insn::stmt(BPF_RET | BPF_K, 0)] };
        assert!(misaligned.validate().is_err());
        let off_end = Program { insns: vec![ld(0)] };
        assert!(off_end.validate().is_err());
        assert!(off_end.run(&SeccompData::default()).is_err());
    }
}

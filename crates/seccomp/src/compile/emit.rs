//! The rule model ([`Policy`]) -> classic BPF: the arch check, then per
//! architecture a binary search over syscall-number ranges, and per
//! conditional syscall its rules in order (see [`super`] for the semantics).

use super::asm::{Asm, Label};
use super::{ArchPolicy, Condition, Decision, Policy, Rule};
use crate::arch::{join_arches, X32_SYSCALL_BIT};
use crate::bpf::*;
use crate::profile::Op;
use crate::{Action, Arch, Error, Result};

impl Policy {
    /// The BPF program; errors if it exceeds `BPF_MAXINSNS`.
    pub fn to_program(&self) -> Result<Program> {
        let mut asm = Asm::default();
        asm.stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH);
        let bad = asm.label();
        // One section per AUDIT_ARCH value (x86_64 and x32 share one).
        let mut audits: Vec<u32> = Vec::new();
        for a in &self.arches {
            if !audits.contains(&a.arch.audit_arch()) {
                audits.push(a.arch.audit_arch());
            }
        }
        let sections: Vec<Label> = audits.iter().map(|_| asm.label()).collect();
        for (audit, &section) in audits.iter().zip(&sections) {
            let next = asm.label();
            asm.jump(BPF_JEQ, *audit, section, next);
            asm.place(next);
        }
        asm.place(bad);
        asm.ret(self.bad_arch_action.to_ret());
        for (audit, &section) in audits.iter().zip(&sections) {
            asm.place(section);
            asm.stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR);
            if *audit == Arch::X86_64.audit_arch() {
                let x64 = self.arch(Arch::X86_64);
                let x32 = self.arch(Arch::X32);
                let bad_ret = asm.label();
                let x64_label = asm.label();
                let x32_label = asm.label();
                // nr -1 (a tracer skipping the call) is not an x32 number:
                // without x32 rules it stays with x86_64's, as in libseccomp.
                let high = if x32.is_some() { x32_label } else { asm.label() };
                asm.jump(BPF_JGE, X32_SYSCALL_BIT, high, if x64.is_some() { x64_label } else { bad_ret });
                if x32.is_none() {
                    asm.place(high);
                    asm.jump(BPF_JEQ, u32::MAX, if x64.is_some() { x64_label } else { bad_ret }, bad_ret);
                }
                if x64.is_none() || x32.is_none() {
                    asm.place(bad_ret);
                    asm.ret(self.bad_arch_action.to_ret());
                }
                if let Some(p) = x64 {
                    asm.place(x64_label);
                    self.dispatch(&mut asm, p);
                }
                if let Some(p) = x32 {
                    asm.place(x32_label);
                    self.dispatch(&mut asm, p);
                }
            } else {
                let p =
                    self.arches.iter().find(|a| a.arch.audit_arch() == *audit).expect("section has an arch");
                self.dispatch(&mut asm, p);
            }
        }
        let insns = asm.assemble();
        if insns.len() > BPF_MAXINSNS {
            return Err(Error::TooLarge {
                arches: join_arches(&self.arch_list()),
                insns: insns.len(),
                max: BPF_MAXINSNS,
            });
        }
        Ok(Program { insns })
    }

    /// Binary search over ranges of syscall numbers with one outcome; the
    /// accumulator holds the syscall number on entry.
    fn dispatch(&self, asm: &mut Asm, p: &ArchPolicy) {
        #[derive(Clone, Copy, PartialEq)]
        enum Leaf<'a> {
            Ret(Action),
            Rules(&'a [Rule]),
        }
        // (first number, outcome up to the next segment's first number)
        fn push<'a>(segs: &mut Vec<(u32, Leaf<'a>)>, start: u32, leaf: Leaf<'a>) {
            let same = matches!((segs.last(), &leaf), (Some((_, Leaf::Ret(a))), Leaf::Ret(b)) if a == b);
            if !same {
                segs.push((start, leaf));
            }
        }
        let mut segs: Vec<(u32, Leaf)> = Vec::new();
        let mut next: u64 = 0;
        for (&nr, sp) in &p.syscalls {
            if u64::from(nr) > next {
                push(&mut segs, next as u32, Leaf::Ret(self.default_action));
            }
            let leaf = match &sp.decision {
                Decision::Always { action, .. } => Leaf::Ret(*action),
                Decision::Conditional(rules) => Leaf::Rules(rules),
            };
            push(&mut segs, nr, leaf);
            next = u64::from(nr) + 1;
        }
        if next <= u64::from(u32::MAX) {
            push(&mut segs, next as u32, Leaf::Ret(self.default_action));
        }
        let wide = p.arch.args_are_64bit();
        let default = self.default_action;
        fn emit(asm: &mut Asm, segs: &[(u32, Leaf)], wide: bool, default: Action) {
            if segs.len() == 1 {
                match segs[0].1 {
                    Leaf::Ret(a) => asm.ret(a.to_ret()),
                    Leaf::Rules(rules) => emit_rules(asm, rules, wide, default),
                }
                return;
            }
            let mid = segs.len() / 2;
            let (left, right) = (asm.label(), asm.label());
            asm.jump(BPF_JGE, segs[mid].0, right, left);
            asm.place(left);
            emit(asm, &segs[..mid], wide, default);
            asm.place(right);
            emit(asm, &segs[mid..], wide, default);
        }
        emit(asm, &segs, wide, default);
    }
}

/// A conditional syscall: each rule's comparisons, failing to the next rule.
fn emit_rules(asm: &mut Asm, rules: &[Rule], wide: bool, default: Action) {
    for rule in rules {
        let fail = asm.label();
        for c in &rule.conditions {
            let pass = asm.label();
            emit_condition(asm, c, wide, pass, fail);
            asm.place(pass);
        }
        asm.ret(rule.action.to_ret());
        asm.place(fail);
    }
    asm.ret(default.to_ret());
}

/// Jumps to `pass` when the comparison holds, else to `fail`.
fn emit_condition(asm: &mut Asm, c: &Condition, wide: bool, pass: Label, fail: Label) {
    let lo_off = DATA_ARGS + 8 * u32::from(c.arg);
    let hi_off = lo_off + 4;
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let ld = |asm: &mut Asm, off: u32| asm.stmt(BPF_LD | BPF_W | BPF_ABS, off);
    if !wide {
        ld(asm, lo_off);
        match c.op {
            Op::Eq => asm.jump(BPF_JEQ, vl, pass, fail),
            Op::Ne => asm.jump(BPF_JEQ, vl, fail, pass),
            Op::Gt => asm.jump(BPF_JGT, vl, pass, fail),
            Op::Ge => asm.jump(BPF_JGE, vl, pass, fail),
            Op::Lt => asm.jump(BPF_JGE, vl, fail, pass),
            Op::Le => asm.jump(BPF_JGT, vl, fail, pass),
            Op::MaskedEq => {
                asm.stmt(BPF_ALU | BPF_AND | BPF_K, vl);
                asm.jump(BPF_JEQ, c.value_two as u32, pass, fail);
            }
        }
        return;
    }
    match c.op {
        Op::Eq | Op::Ne => {
            let (t, f) = if c.op == Op::Eq { (pass, fail) } else { (fail, pass) };
            let lo = asm.label();
            ld(asm, hi_off);
            asm.jump(BPF_JEQ, vh, lo, f);
            asm.place(lo);
            ld(asm, lo_off);
            asm.jump(BPF_JEQ, vl, t, f);
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // Greater high word decides; equal high word defers to the low word.
            let greater = matches!(c.op, Op::Gt | Op::Ge);
            let (above, below) = if greater { (pass, fail) } else { (fail, pass) };
            let (eq, lo) = (asm.label(), asm.label());
            ld(asm, hi_off);
            asm.jump(BPF_JGT, vh, above, eq);
            asm.place(eq);
            asm.jump(BPF_JEQ, vh, lo, below);
            asm.place(lo);
            ld(asm, lo_off);
            match c.op {
                Op::Gt => asm.jump(BPF_JGT, vl, pass, fail),
                Op::Ge => asm.jump(BPF_JGE, vl, pass, fail),
                Op::Lt => asm.jump(BPF_JGE, vl, fail, pass),
                _ => asm.jump(BPF_JGT, vl, fail, pass),
            }
        }
        Op::MaskedEq => {
            let (mh, ml) = (vh, vl);
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            // A word whose mask is zero always matches (its datum is zero too).
            if mh != 0 {
                let next = if ml != 0 { asm.label() } else { pass };
                ld(asm, hi_off);
                asm.stmt(BPF_ALU | BPF_AND | BPF_K, mh);
                asm.jump(BPF_JEQ, dh, next, fail);
                if ml != 0 {
                    asm.place(next);
                }
            }
            if ml != 0 {
                ld(asm, lo_off);
                asm.stmt(BPF_ALU | BPF_AND | BPF_K, ml);
                asm.jump(BPF_JEQ, dl, pass, fail);
            } else if mh == 0 {
                asm.ja(pass);
            }
        }
    }
}

//! A tiny classic-BPF assembler: instructions and jumps to labels, resolved
//! into offsets at the end, with long-jump fixups (a conditional jump reaches
//! only 255 instructions).

use crate::bpf::*;

/// A jump target, resolved at assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Item {
    Insn(Insn),
    /// Conditional jump (`BPF_JMP | op | BPF_K`).
    Jump {
        op: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ja(Label),
    Place(Label),
}

/// A tiny assembler with labels; [`Asm::assemble`] adds trampolines for
/// conditional jumps farther than 255 instructions.
#[derive(Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub(super) fn place(&mut self, l: Label) {
        self.items.push(Item::Place(l));
    }
    pub(super) fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(Insn::stmt(code, k)));
    }
    pub(super) fn ret(&mut self, k: u32) {
        self.stmt(BPF_RET | BPF_K, k);
    }
    pub(super) fn jump(&mut self, op: u16, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { op, k, jt, jf });
    }
    pub(super) fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Instruction index of every label (the next instruction after it).
    fn positions(&self) -> Vec<usize> {
        let mut pos = vec![usize::MAX; self.labels];
        let mut n = 0;
        for it in &self.items {
            match it {
                Item::Place(l) => pos[l.0] = n,
                _ => n += 1,
            }
        }
        pos
    }

    pub(super) fn assemble(mut self) -> Vec<Insn> {
        // Each pass gives every conditional jump with a target beyond 255
        // instructions a trampoline right after it; the insertions can push
        // other jumps out of range, so repeat until none is.
        loop {
            let pos = self.positions();
            let real: Vec<Option<Insn>> = self
                .items
                .iter()
                .filter(|it| !matches!(it, Item::Place(_)))
                .map(|it| if let Item::Insn(x) = it { Some(*x) } else { None })
                .collect();
            let items = std::mem::take(&mut self.items);
            let mut out = Vec::with_capacity(items.len() + 16);
            // Index of the current item among the old list's instructions:
            // distances are measured in the list `pos` was computed from.
            let mut n = 0usize;
            let mut changed = false;
            for it in items {
                let Item::Jump { op, k, jt, jf } = it else {
                    if !matches!(it, Item::Place(_)) {
                        n += 1;
                    }
                    out.push(it);
                    continue;
                };
                let far = |l: Label| pos[l.0] - n - 1 > 255;
                let mut tramp = Vec::new();
                let mut near = |l: Label, asm: &mut Asm| -> Label {
                    let nl = asm.label();
                    tramp.push(Item::Place(nl));
                    // A far `ret` is copied rather than jumped to.
                    match real[pos[l.0]] {
                        Some(x) if x.code == BPF_RET | BPF_K => tramp.push(Item::Insn(x)),
                        _ => tramp.push(Item::Ja(l)),
                    }
                    nl
                };
                let nt = if far(jt) { near(jt, &mut self) } else { jt };
                let nf = if far(jf) { near(jf, &mut self) } else { jf };
                changed |= !tramp.is_empty();
                out.push(Item::Jump { op, k, jt: nt, jf: nf });
                out.extend(tramp);
                n += 1;
            }
            self.items = out;
            if !changed {
                break;
            }
        }
        let pos = self.positions();
        let mut insns = Vec::new();
        for it in &self.items {
            let n = insns.len();
            match *it {
                Item::Place(_) => {}
                Item::Insn(x) => insns.push(x),
                Item::Jump { op, k, jt, jf } => {
                    let t = (pos[jt.0] - n - 1) as u8;
                    let f = (pos[jf.0] - n - 1) as u8;
                    insns.push(Insn::jump(BPF_JMP | op | BPF_K, k, t, f));
                }
                Item::Ja(l) => insns.push(Insn::stmt(BPF_JMP | BPF_JA, (pos[l.0] - n - 1) as u32)),
            }
        }
        insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Program, SeccompData};

    #[test]
    fn assembler_trampolines_by_hand() {
        let mut asm = Asm::default();
        let (far, near) = (asm.label(), asm.label());
        asm.stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR);
        asm.jump(BPF_JEQ, 1, far, near);
        asm.place(near);
        for _ in 0..300 {
            asm.stmt(BPF_ALU | BPF_ADD | BPF_K, 0);
        }
        asm.ret(7);
        asm.place(far);
        asm.ret(9);
        let prog = Program { insns: asm.assemble() };
        prog.validate().unwrap();
        // jt now points at a copy of `ret 9` placed right after the jump.
        assert_eq!(prog.insns[1].jt, 0);
        assert_eq!(prog.insns[2], Insn::stmt(BPF_RET | BPF_K, 9));
        assert_eq!(prog.run(&SeccompData { nr: 1, ..Default::default() }).unwrap(), 9);
        assert_eq!(prog.run(&SeccompData { nr: 2, ..Default::default() }).unwrap(), 7);
    }
}

//! Profile -> rule model ([`Policy`]) -> classic BPF ([`Program`]).
//!
//! The semantics follow what a container actually gets from Docker/runc and
//! libseccomp, so that `check` and `diff` answer for the real thing:
//!
//! - **Architectures**: the native one (the compile target) always, plus
//!   `architectures`, plus the `archMap` entry whose `architecture` is the
//!   native one with its `subArchitectures` (as moby does). A process of an
//!   architecture outside that list gets the bad-architecture action:
//!   KILL_PROCESS by default (libseccomp's default is KILL_THREAD, which leaves
//!   the rest of the process running; rampart prefers killing it all).
//!   Listed architectures rampart cannot compile for are left out with a note,
//!   which is stricter (they get the bad-architecture action), never weaker.
//!   x86_64 and x32 share `AUDIT_ARCH_X86_64`; x32 numbers have bit 30 set,
//!   so the x86_64 section sends numbers >= 0x40000000 to the x32 rules, or to
//!   the bad-architecture action when x32 is not covered (except -1, which a
//!   tracer uses to skip a call), as libseccomp does.
//! - **x86 multiplexers**: on x86 (i386) a rule for a socket call (`socket`,
//!   `connect`, ...) or a SysV IPC call (`shmget`, `semop`, ...) also applies
//!   to socketcall(2)/ipc(2) when their first argument selects that call, with
//!   the rule's other argument checks kept, exactly as libseccomp rewrites it.
//! - **includes / excludes** are judged against the caller's capabilities
//!   (default: Docker's default set), the native architecture's Go name and
//!   the kernel version (unset: every `minKernel` counts as met), like moby's
//!   `setupSeccomp`.
//! - **Names**: a name the architecture lacks is skipped for that
//!   architecture (libseccomp resolves names per architecture: Docker's
//!   profile lists i386-only and arm-only calls). A name no architecture
//!   rampart knows has is an error: it is a typo or a syscall newer than
//!   rampart's tables, and silently dropping it would change the filter.
//! - **Rules with the default action** are dropped (runc does, libseccomp
//!   refuses them).
//! - **Arguments**: comparisons in one entry are ANDed; when one argument
//!   appears twice in an entry, each comparison becomes a rule of its own
//!   (runc's fallback, as libseccomp takes one comparison per argument).
//! - **Several rules for one syscall** (Docker's `personality`, `clone`): an
//!   unconditional rule wins over conditional ones and the first unconditional
//!   rule wins over later ones (libseccomp's database keeps the broadest
//!   rule); conditional rules are an OR: the first whose comparisons all hold
//!   gives the action, else the default. libseccomp orders conditional rules
//!   of *different* actions by argument, not by profile order, so when such
//!   rules may overlap the compiler adds a note.
//! - **64-bit arguments** on x86_64 and aarch64 compare the high word, then the
//!   low word, as libseccomp does; on the 32-bit ABIs (x86, x32, arm) only the
//!   low 32 bits of the argument and of the value are compared, also as
//!   libseccomp does (for x32 this means the high half of a register is not
//!   checked).
//!
//! The BPF has the arch check, then per architecture a binary search over
//! syscall-number ranges with a constant outcome, and per conditional syscall
//! its rules in order. Conditional jumps reach 255 instructions; farther
//! targets go through a `ja` trampoline (or a copy of the target's `ret`).
//! That code generation is in `compile/emit.rs`, over the label assembler
//! in `compile/asm.rs`; this file is the profile semantics.

use crate::arch::{join_arches, X32_SYSCALL_BIT};
use crate::bpf::*;
use crate::profile::{ArchName, FilterFlag, KernelVersion, Op, Profile, Syscall};
use crate::{syscalls, Action, Arch, Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod asm;
mod emit;

/// What the filter is compiled for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// The native architecture: it picks the `archMap` entry and is matched
    /// against `includes.arches` / `excludes.arches` (by its Go name).
    pub arch: Arch,
    /// The container's capabilities (`CAP_*`), for `includes.caps` /
    /// `excludes.caps`.
    pub caps: BTreeSet<String>,
    /// The kernel version for `minKernel`; `None` counts every `minKernel` as met.
    pub kernel: Option<KernelVersion>,
    /// What a process of an architecture outside the filter gets.
    pub bad_arch_action: Action,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions::new(Arch::native())
    }
}

impl CompileOptions {
    /// For `arch`, with Docker's default capabilities, every `minKernel` met
    /// and KILL_PROCESS for foreign architectures.
    pub fn new(arch: Arch) -> CompileOptions {
        CompileOptions {
            arch,
            caps: model::names::DOCKER_DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            kernel: None,
            bad_arch_action: Action::KillProcess,
        }
    }

    /// Replaces the capability set; names may omit `CAP_` and any case is
    /// accepted (`sys_admin`, `CAP_SYS_ADMIN`). `ALL` means every capability.
    pub fn with_caps<I, S>(mut self, caps: I) -> Result<CompileOptions>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.caps.clear();
        for c in caps {
            let c = c.as_ref().trim();
            if c.is_empty() {
                continue;
            }
            if c.eq_ignore_ascii_case("all") {
                self.caps.extend(model::names::CAPABILITIES.iter().map(|c| c.to_string()));
                continue;
            }
            let n = model::names::cap_number(c).ok_or_else(|| Error::Invalid {
                location: "capabilities".to_string(),
                message: format!("unknown capability \"{c}\""),
            })?;
            self.caps.insert(model::names::cap_name(n));
        }
        Ok(self)
    }

    fn has_cap(&self, cap: &str) -> bool {
        model::names::cap_number(cap).is_some_and(|n| self.caps.contains(&model::names::cap_name(n)))
    }

    fn kernel_at_least(&self, v: KernelVersion) -> bool {
        self.kernel.is_none_or(|k| k >= v)
    }

    /// Whether the entry's `includes.arches` / `excludes.arches` admit the
    /// native architecture (its other conditions aside).
    pub fn arch_selects(&self, s: &Syscall) -> bool {
        let go = self.arch.go_arch();
        let excluded = s.excludes.as_ref().is_some_and(|ex| ex.arches.iter().any(|a| a == go));
        let included =
            s.includes.as_ref().is_none_or(|inc| inc.arches.is_empty() || inc.arches.iter().any(|a| a == go));
        included && !excluded
    }

    /// Whether a profile entry applies (Docker's includes/excludes logic).
    pub fn selects(&self, s: &Syscall) -> bool {
        let go = self.arch.go_arch();
        if let Some(ex) = &s.excludes {
            if ex.arches.iter().any(|a| a == go) || ex.caps.iter().any(|c| self.has_cap(c)) {
                return false;
            }
            if ex.min_kernel.is_some_and(|v| self.kernel_at_least(v)) {
                return false;
            }
        }
        if let Some(inc) = &s.includes {
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == go) {
                return false;
            }
            if !inc.caps.iter().all(|c| self.has_cap(c)) {
                return false;
            }
            if inc.min_kernel.is_some_and(|v| !self.kernel_at_least(v)) {
                return false;
            }
        }
        true
    }
}

/// One argument comparison as compiled for an architecture (on 32-bit ABIs
/// `value` and `value_two` are already cut to their low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Condition {
    pub arg: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

impl Condition {
    /// Whether the comparison holds for these argument values; `wide` is the
    /// architecture's [`Arch::args_are_64bit`].
    pub fn holds(&self, args: &[u64; 6], wide: bool) -> bool {
        let a = args[usize::from(self.arg)];
        let a = if wide { a } else { a & 0xffff_ffff };
        let v = self.value;
        match self.op {
            Op::Eq => a == v,
            Op::Ne => a != v,
            Op::Lt => a < v,
            Op::Le => a <= v,
            Op::Gt => a > v,
            Op::Ge => a >= v,
            Op::MaskedEq => a & v == self.value_two,
        }
    }
}

impl fmt::Display for Condition {
    /// `arg0 == 0x8`, `arg0 & 0x7e020000 == 0x0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sym = match self.op {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::MaskedEq => return write!(f, "arg{} & {:#x} == {:#x}", self.arg, self.value, self.value_two),
        };
        write!(f, "arg{} {sym} {:#x}", self.arg, self.value)
    }
}

/// A conditional rule: when every condition holds, `action`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub conditions: Vec<Condition>,
    pub action: Action,
    /// Index of the profile's `syscalls[]` entry it comes from.
    pub entry: usize,
}

/// What a syscall gets on one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Always this action (from profile entry `entry`).
    Always { action: Action, entry: usize },
    /// The first rule whose conditions hold, else the default action.
    Conditional(Vec<Rule>),
}

impl Decision {
    /// Readable: `ALLOW`, or `ALLOW when arg0 == 0x0 or arg0 == 0x8, else ERRNO(1)`.
    pub fn describe(&self, default: Action) -> String {
        match self {
            Decision::Always { action, .. } => action.to_string(),
            Decision::Conditional(rules) => describe_rules(rules, default),
        }
    }
}

fn describe_rules(rules: &[Rule], default: Action) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < rules.len() {
        // Consecutive rules with one action read as one "when A or B".
        let action = rules[i].action;
        let mut alts = Vec::new();
        while i < rules.len() && rules[i].action == action {
            let conds: Vec<String> = rules[i].conditions.iter().map(|c| c.to_string()).collect();
            alts.push(conds.join(" and "));
            i += 1;
        }
        parts.push(format!("{action} when {}", alts.join(" or ")));
    }
    format!("{}, else {default}", parts.join("; "))
}

/// One syscall's entry in an architecture's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallPolicy {
    pub name: &'static str,
    pub decision: Decision,
}

/// The rules of one architecture, by syscall number; numbers not listed get
/// the default action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchPolicy {
    pub arch: Arch,
    pub syscalls: BTreeMap<u32, SyscallPolicy>,
}

/// The outcome for one `seccomp_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The architecture whose rules applied (`None`: bad architecture).
    pub arch: Option<Arch>,
    /// The profile entry that decided (`None`: default or bad-arch action).
    pub entry: Option<usize>,
}

/// A compiled profile: what every syscall of every covered architecture
/// gets. [`Policy::decide`] is the reference semantics; [`Policy::to_program`]
/// the BPF, which must agree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The compile target.
    pub native: Arch,
    /// Covered architectures, native first.
    pub arches: Vec<ArchPolicy>,
    pub default_action: Action,
    pub bad_arch_action: Action,
    /// The profile's filter flags (applied when installing).
    pub flags: Vec<FilterFlag>,
    /// Things the user should know: architectures left out, overlapping
    /// rules with different actions, entries dropped.
    pub notes: Vec<String>,
}

/// Compiles `profile` for `opts` into the rule model.
pub fn compile(profile: &Profile, opts: &CompileOptions) -> Result<Policy> {
    profile.validate()?;
    let mut notes = Vec::new();
    let arches = covered_arches(profile, opts, &mut notes);
    let default_action = profile.resolved_default();

    // Entries that apply, with their resolved action and rule shapes.
    let mut selected: Vec<(usize, &Syscall, Action)> = Vec::new();
    for (i, s) in profile.syscalls.iter().enumerate() {
        // Names are checked in every entry meant for this architecture, even
        // one the capabilities or kernel leave out now: a typo there would
        // show only on the container that has the capability.
        if opts.arch_selects(s) {
            for (j, name) in s.all_names().enumerate() {
                if !syscalls::is_known(name) {
                    return Err(Error::UnknownSyscall {
                        entry: i,
                        name_index: j,
                        name: name.to_string(),
                        arches: join_arches(&arches),
                    });
                }
            }
        }
        if !opts.selects(s) {
            continue;
        }
        let action = s.resolved_action();
        if action == default_action {
            continue;
        }
        selected.push((i, s, action));
    }

    let mut out = Vec::new();
    for &arch in &arches {
        let wide = arch.args_are_64bit();
        let mut per_nr: BTreeMap<u32, (&'static str, Vec<Rule>)> = BTreeMap::new();
        for &(entry, s, action) in &selected {
            let rules = entry_rules(s, action, entry, wide);
            for name in s.all_names() {
                if arch == Arch::X86 {
                    if let Some((mux, call)) = x86_multiplexed(name) {
                        // libseccomp also filters the call through socketcall(2)
                        // or ipc(2): the same rule with arg0 replaced by the
                        // call number (the real arguments are in memory).
                        let muxed = rules.iter().map(|r| Rule {
                            conditions: std::iter::once(Condition {
                                arg: 0,
                                op: Op::Eq,
                                value: call,
                                value_two: 0,
                            })
                            .chain(r.conditions.iter().filter(|c| c.arg != 0).copied())
                            .collect(),
                            ..r.clone()
                        });
                        let mux_name = syscalls::name(arch, mux).unwrap_or("?");
                        per_nr.entry(mux).or_insert_with(|| (mux_name, Vec::new())).1.extend(muxed);
                    }
                }
                let Some(nr) = syscalls::number(arch, name) else { continue };
                let canonical = syscalls::name(arch, nr).unwrap_or("?");
                per_nr.entry(nr).or_insert_with(|| (canonical, Vec::new())).1.extend(rules.iter().cloned());
            }
        }
        let mut table = BTreeMap::new();
        for (nr, (name, rules)) in per_nr {
            let decision = match rules.iter().find(|r| r.conditions.is_empty()) {
                Some(r) => Decision::Always { action: r.action, entry: r.entry },
                None => {
                    if let Some(note) = overlap_note(arch, name, &rules) {
                        if !notes.contains(&note) {
                            notes.push(note);
                        }
                    }
                    Decision::Conditional(rules)
                }
            };
            table.insert(nr, SyscallPolicy { name, decision });
        }
        out.push(ArchPolicy { arch, syscalls: table });
    }
    Ok(Policy {
        native: opts.arch,
        arches: out,
        default_action,
        bad_arch_action: opts.bad_arch_action,
        flags: profile.flags.clone(),
        notes,
    })
}

/// Compiles straight to BPF (the rule model is dropped).
pub fn compile_bpf(profile: &Profile, opts: &CompileOptions) -> Result<Program> {
    compile(profile, opts)?.to_program()
}

fn covered_arches(profile: &Profile, opts: &CompileOptions, notes: &mut Vec<String>) -> Vec<Arch> {
    let mut names: Vec<ArchName> = vec![ArchName::from_arch(opts.arch)];
    names.extend(profile.architectures.iter().copied());
    let native = ArchName::from_arch(opts.arch);
    for m in profile.arch_map.iter().filter(|m| m.architecture == native) {
        names.push(m.architecture);
        names.extend(m.sub_architectures.iter().copied());
    }
    let mut arches = Vec::new();
    for n in names {
        let arch = if n == ArchName::Native { Some(opts.arch) } else { n.arch() };
        match arch {
            Some(a) if !arches.contains(&a) => arches.push(a),
            Some(_) => {}
            None => {
                let note = format!(
                    "{} is listed but rampart does not compile for it: its processes get {}",
                    n.as_str(),
                    opts.bad_arch_action
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
    }
    arches
}

/// On x86 (i386) the socket and SysV IPC calls also go through the
/// multiplexers socketcall(2) (nr 102) and ipc(2) (nr 117): the call number
/// and its `SYS_*` / IPC operation number.
fn x86_multiplexed(name: &str) -> Option<(u32, u64)> {
    const SOCKETCALL: u32 = 102;
    const IPC: u32 = 117;
    const SOCKET_CALLS: [&str; 20] = [
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
        "recvmmsg",
        "sendmmsg",
    ];
    const IPC_CALLS: [(&str, u64); 12] = [
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    if let Some(i) = SOCKET_CALLS.iter().position(|n| *n == name) {
        return Some((SOCKETCALL, i as u64 + 1));
    }
    IPC_CALLS.iter().find(|(n, _)| *n == name).map(|(_, call)| (IPC, *call))
}

/// The rules one profile entry makes, for an architecture's argument width.
fn entry_rules(s: &Syscall, action: Action, entry: usize, wide: bool) -> Vec<Rule> {
    let conds: Vec<Condition> = s
        .args
        .iter()
        .map(|a| {
            let cut = |v: u64| if wide { v } else { v & 0xffff_ffff };
            Condition { arg: a.index as u8, op: a.op, value: cut(a.value), value_two: cut(a.value_two) }
        })
        .collect();
    let mut seen = [false; 6];
    let repeated = conds.iter().any(|c| std::mem::replace(&mut seen[usize::from(c.arg)], true));
    let groups: Vec<Vec<Condition>> =
        if repeated { conds.into_iter().map(|c| vec![c]).collect() } else { vec![conds] };
    groups
        .into_iter()
        .map(|g| {
            // `arg & 0 == 0` always holds: libseccomp drops it, and a rule left
            // with no comparison is unconditional.
            let conditions = g.into_iter().filter(|c| !(c.op == Op::MaskedEq && c.value == 0)).collect();
            Rule { conditions, action, entry }
        })
        .collect()
}

/// A note when conditional rules with different actions may both match.
fn overlap_note(arch: Arch, name: &str, rules: &[Rule]) -> Option<String> {
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.action != b.action && !provably_disjoint(a, b) {
                return Some(format!(
                    "{name} ({arch}): rules from syscalls[{}] ({}) and syscalls[{}] ({}) may both match; \
                     rampart applies the first in profile order, libseccomp orders them by argument",
                    a.entry, a.action, b.entry, b.action
                ));
            }
        }
    }
    None
}

/// Whether no argument values satisfy both rules (checked for the simple,
/// common shapes: one argument compared with EQ against different values, or
/// EQ against NE of the same value).
fn provably_disjoint(a: &Rule, b: &Rule) -> bool {
    a.conditions.iter().any(|x| {
        b.conditions.iter().any(|y| {
            x.arg == y.arg
                && match (x.op, y.op) {
                    (Op::Eq, Op::Eq) => x.value != y.value,
                    (Op::Eq, Op::Ne) | (Op::Ne, Op::Eq) => x.value == y.value,
                    _ => false,
                }
        })
    })
}

impl Policy {
    /// The rules of `arch`, if covered.
    pub fn arch(&self, arch: Arch) -> Option<&ArchPolicy> {
        self.arches.iter().find(|a| a.arch == arch)
    }

    /// Covered architectures, native first.
    pub fn arch_list(&self) -> Vec<Arch> {
        self.arches.iter().map(|a| a.arch).collect()
    }

    /// Which covered architecture a `seccomp_data` belongs to.
    pub fn arch_of(&self, audit_arch: u32, nr: u32) -> Option<Arch> {
        if audit_arch == Arch::X86_64.audit_arch() {
            let want = match nr {
                u32::MAX if self.arch(Arch::X32).is_none() => Arch::X86_64,
                n if n >= X32_SYSCALL_BIT => Arch::X32,
                _ => Arch::X86_64,
            };
            return self.arch(want).map(|a| a.arch);
        }
        self.arches.iter().map(|a| a.arch).find(|a| a.audit_arch() == audit_arch)
    }

    /// The reference semantics: what the filter does with `data`.
    pub fn decide(&self, data: &SeccompData) -> Verdict {
        let Some(arch) = self.arch_of(data.arch, data.nr) else {
            return Verdict { action: self.bad_arch_action, arch: None, entry: None };
        };
        let ap = self.arch(arch).expect("arch_of returns covered architectures");
        let wide = arch.args_are_64bit();
        let (action, entry) = match ap.syscalls.get(&data.nr).map(|s| &s.decision) {
            None => (self.default_action, None),
            Some(Decision::Always { action, entry }) => (*action, Some(*entry)),
            Some(Decision::Conditional(rules)) => {
                match rules.iter().find(|r| r.conditions.iter().all(|c| c.holds(&data.args, wide))) {
                    Some(r) => (r.action, Some(r.entry)),
                    None => (self.default_action, None),
                }
            }
        };
        Verdict { action, arch: Some(arch), entry }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Arg;
    use crate::Syscall;

    fn profile(json: &str) -> Profile {
        Profile::from_json_str(json, "t.json").unwrap()
    }

    fn data(arch: Arch, name: &str, args: [u64; 6]) -> SeccompData {
        let nr = syscalls::number(arch, name).unwrap();
        SeccompData { nr, arch: arch.audit_arch(), instruction_pointer: 0, args }
    }

    /// Runs both the BPF and the rule model and insists they agree.
    fn run(policy: &Policy, prog: &Program, d: SeccompData) -> Action {
        let bpf = Action::from_ret(prog.run(&d).unwrap());
        assert_eq!(bpf, policy.decide(&d).action, "BPF vs model for {d:?}");
        bpf
    }

    const VALUES: [u64; 12] = [
        0,
        1,
        0x7fff_ffff,
        0xffff_fffe,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        u64::MAX - 1,
        u64::MAX,
    ];

    #[test]
    fn sixty_four_bit_comparisons_at_boundaries() {
        for op in [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge] {
            for value in VALUES {
                let mut p = Profile::new(Action::Errno(1));
                let mut s = Syscall::new(["read"], Action::Allow);
                s.args.push(Arg { index: 2, value, value_two: 0, op });
                p.syscalls.push(s);
                let pol = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
                let prog = pol.to_program().unwrap();
                prog.validate().unwrap();
                let mut probes: Vec<u64> = VALUES.to_vec();
                probes.extend([value.wrapping_sub(1), value.wrapping_add(1), value ^ (1 << 32), value ^ 1]);
                for a in probes {
                    let want = match op {
                        Op::Eq => a == value,
                        Op::Ne => a != value,
                        Op::Lt => a < value,
                        Op::Le => a <= value,
                        Op::Gt => a > value,
                        _ => a >= value,
                    };
                    let got = run(&pol, &prog, data(Arch::X86_64, "read", [0, 0, a, 0, 0, 0]));
                    assert_eq!(got == Action::Allow, want, "{a:#x} {op:?} {value:#x}");
                }
            }
        }
    }

    #[test]
    fn masked_eq_in_each_half() {
        for (mask, datum) in
            [(0x7e02_0000u64, 0u64), (0xff_0000_0000, 0x12_0000_0000), (0xf0_0000_00f0, 0x10_0000_0010)]
        {
            let mut p = Profile::new(Action::Errno(1));
            let mut s = Syscall::new(["clone"], Action::Allow);
            s.args.push(Arg { index: 0, value: mask, value_two: datum, op: Op::MaskedEq });
            p.syscalls.push(s);
            for arch in [Arch::X86_64, Arch::X86] {
                let pol = compile(&p, &CompileOptions::new(arch)).unwrap();
                let prog = pol.to_program().unwrap();
                for a in crate::check::boundary_values(Op::MaskedEq, mask, datum) {
                    let wide = arch.args_are_64bit();
                    let (a_cut, m, d) = if wide {
                        (a, mask, datum)
                    } else {
                        (a as u32 as u64, mask as u32 as u64, datum as u32 as u64)
                    };
                    let got = run(&pol, &prog, data(arch, "clone", [a, 0, 0, 0, 0, 0]));
                    assert_eq!(
                        got == Action::Allow,
                        a_cut & m == d,
                        "{arch} {a:#x} & {mask:#x} == {datum:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn thirty_two_bit_abis_compare_the_low_word() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        for (arch, high_bits_allowed) in [
            (Arch::X86_64, false),
            (Arch::X86, true),
            (Arch::X32, true),
            (Arch::Arm, true),
            (Arch::Aarch64, false),
        ] {
            let pol = compile(&p, &CompileOptions::new(arch)).unwrap();
            let prog = pol.to_program().unwrap();
            assert_eq!(
                run(&pol, &prog, data(arch, "personality", [0xffff_ffff, 0, 0, 0, 0, 0])),
                Action::Allow
            );
            let high = run(&pol, &prog, data(arch, "personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]));
            assert_eq!(high == Action::Allow, high_bits_allowed, "{arch}");
        }
    }

    #[test]
    fn rules_combine_like_libseccomp() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 20, "op": "SCMP_CMP_LT"}]},
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 0, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let pol = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
        let prog = pol.to_program().unwrap();
        let x = |name, args| run(&pol, &prog, data(Arch::X86_64, name, args));
        // OR of the personality rules.
        assert_eq!(x("personality", [0; 6]), Action::Allow);
        assert_eq!(x("personality", [8, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(x("personality", [4, 0, 0, 0, 0, 0]), Action::Errno(1));
        // The first unconditional rule wins over conditional and later ones.
        assert_eq!(x("write", [1, 0, 0, 0, 0, 0]), Action::Allow);
        // A rule with the default action is dropped: read is just the default.
        assert!(!pol.arch(Arch::X86_64).unwrap().syscalls.contains_key(&0));
        // One argument compared twice: two rules (runc), so an OR, not an AND.
        assert_eq!(x("mmap", [0, 5, 0, 0, 0, 0]), Action::Allow, "5 < 20");
        assert_eq!(x("mmap", [0, 25, 0, 0, 0, 0]), Action::Allow, "25 > 10");
        // (arg & 0) == 0 always holds: the rule is unconditional.
        assert!(matches!(
            pol.arch(Arch::X86_64).unwrap().syscalls[&16].decision,
            Decision::Always { action: Action::Allow, entry: 7 }
        ));
    }

    #[test]
    fn architectures_and_the_x32_bit() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_MIPS"]}],
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let pol = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
        assert_eq!(pol.arch_list(), [Arch::X86_64, Arch::X86]);
        assert!(pol.notes.iter().any(|n| n.contains("SCMP_ARCH_MIPS")), "{:?}", pol.notes);
        let prog = pol.to_program().unwrap();
        let d = |nr: u32, arch: u32| SeccompData { nr, arch, instruction_pointer: 0, args: [0; 6] };
        let act = |x: SeccompData| {
            let a = Action::from_ret(prog.run(&x).unwrap());
            assert_eq!(a, pol.decide(&x).action);
            a
        };
        assert_eq!(act(d(39, AUDIT_X86_64)), Action::Allow);
        assert_eq!(act(d(20, 0x4000_0003)), Action::Allow, "i386 getpid");
        assert_eq!(act(d(X32_SYSCALL_BIT | 39, AUDIT_X86_64)), Action::KillProcess, "x32 is not covered");
        assert_eq!(act(d(u32::MAX, AUDIT_X86_64)), Action::Errno(1), "nr -1 is not an x32 call");
        assert_eq!(act(d(39, 0xc000_00b7)), Action::KillProcess, "aarch64 is not covered");
        // With x32 covered, its numbers get its rules.
        let with_x32 = CompileOptions::new(Arch::X86_64);
        let mut p2 = p.clone();
        p2.arch_map[0].sub_architectures.push(crate::profile::ArchName::X32);
        let pol = compile(&p2, &with_x32).unwrap();
        let prog = pol.to_program().unwrap();
        assert_eq!(
            Action::from_ret(prog.run(&d(X32_SYSCALL_BIT | 39, AUDIT_X86_64)).unwrap()),
            Action::Allow
        );
        assert_eq!(
            Action::from_ret(prog.run(&d(X32_SYSCALL_BIT | 40, AUDIT_X86_64)).unwrap()),
            Action::Errno(1)
        );
    }

    const AUDIT_X86_64: u32 = crate::arch::AUDIT_ARCH_X86_64;

    #[test]
    fn includes_and_excludes() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["riscv_flush_icache"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["riscv64"]}}]}"#,
        );
        let has = |opts: &CompileOptions, name: &str| {
            let pol = compile(&p, opts).unwrap();
            let nr = syscalls::number(opts.arch, name).unwrap();
            pol.arch(opts.arch).unwrap().syscalls.contains_key(&nr)
        };
        let docker = CompileOptions::new(Arch::X86_64);
        assert!(
            !has(&docker, "mount")
                && has(&docker, "clone")
                && has(&docker, "arch_prctl")
                && has(&docker, "ptrace")
        );
        let admin = CompileOptions::new(Arch::X86_64).with_caps(["sys_admin"]).unwrap();
        assert!(has(&admin, "mount") && !has(&admin, "clone"));
        let old_kernel =
            CompileOptions { kernel: Some(KernelVersion { major: 4, minor: 4 }), ..docker.clone() };
        assert!(!has(&old_kernel, "ptrace"));
        let arm64 = CompileOptions::new(Arch::Aarch64);
        assert!(!has(&arm64, "clone3") && has(&arm64, "ptrace"));
        assert!(CompileOptions::new(Arch::X86_64).with_caps(["CAP_NOPE"]).is_err());
        let all = CompileOptions::new(Arch::X86_64).with_caps(["ALL"]).unwrap();
        assert_eq!(all.caps.len(), model::names::CAPABILITIES.len());
    }

    #[test]
    fn unknown_names_are_errors_and_foreign_names_are_skipped() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mountt"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
        );
        let e = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap_err().to_string();
        assert!(
            e.contains("unknown syscall \"mountt\""),
            "typos hide in entries for other capabilities: {e}"
        );
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "getpidd"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let e = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap_err().to_string();
        assert_eq!(
            e,
            "syscalls[0].names[1]: unknown syscall \"getpidd\" (not a syscall of x86_64 nor of any other architecture rampart knows)"
        );
        // `open` is not an aarch64 syscall, `_llseek` not an x86_64 one: skipped there.
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["open", "_llseek", "s390_sthyi"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let pol = compile(&p, &CompileOptions::new(Arch::Aarch64)).unwrap();
        assert!(pol.arch(Arch::Aarch64).unwrap().syscalls.is_empty());
        let pol = compile(&p, &CompileOptions::new(Arch::X86)).unwrap();
        assert_eq!(pol.arch(Arch::X86).unwrap().syscalls.len(), 2);
    }

    #[test]
    fn x86_multiplexers_follow_the_socket_rules() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
                {"names": ["shmget"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let pol = compile(&p, &CompileOptions::new(Arch::X86)).unwrap();
        let prog = pol.to_program().unwrap();
        let x = |name, args| run(&pol, &prog, data(Arch::X86, name, args));
        assert_eq!(x("socketcall", [1, 0, 0, 0, 0, 0]), Action::Allow, "SYS_SOCKET");
        assert_eq!(x("socketcall", [3, 0, 0, 0, 0, 0]), Action::Errno(1), "SYS_CONNECT");
        assert_eq!(x("ipc", [23, 0, 0, 0, 0, 0]), Action::Allow, "SHMGET");
        assert_eq!(x("ipc", [21, 0, 0, 0, 0, 0]), Action::Errno(1), "SHMAT");
        assert_eq!(x("socket", [40, 0, 0, 0, 0, 0]), Action::Errno(1));
    }

    #[test]
    fn overlapping_rules_with_different_actions_get_a_note() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
                {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_GT"}]},
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LT"}]}]}"#,
        );
        let pol = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
        assert_eq!(pol.notes.len(), 1, "{:?}", pol.notes);
        assert!(
            pol.notes[0].starts_with("ioctl (x86_64): rules from syscalls[2] (LOG) and syscalls[3] (ALLOW)")
        );
    }

    #[test]
    fn far_jumps_get_trampolines() {
        // Many conditional syscalls: the binary search's jumps span far more
        // than 255 instructions.
        let mut p = Profile::new(Action::Errno(1));
        let names: Vec<&str> =
            syscalls::all(Arch::X86_64).map(|(n, _)| n).filter(|n| *n != "read").take(120).collect();
        for (i, n) in names.iter().enumerate() {
            let mut s = Syscall::new([*n], Action::Allow);
            s.args.push(Arg { index: 1, value: i as u64 * 3 + 1, value_two: 0, op: Op::Gt });
            p.syscalls.push(s);
        }
        p.syscalls.push(Syscall::new(["read"], Action::Log));
        let pol = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
        let prog = pol.to_program().unwrap();
        prog.validate().unwrap();
        assert!(prog.len() > 800, "{}", prog.len());
        assert!(prog.insns.iter().any(|i| i.code == BPF_JMP | BPF_JA), "expected ja trampolines");
        for (i, n) in names.iter().enumerate() {
            let v = i as u64 * 3 + 1;
            for (arg, want) in [(v, Action::Errno(1)), (v + 1, Action::Allow), (v + (1 << 32), Action::Allow)]
            {
                assert_eq!(
                    run(&pol, &prog, data(Arch::X86_64, n, [0, arg, 0, 0, 0, 0])),
                    want,
                    "{n} {arg:#x}"
                );
            }
        }
        assert_eq!(run(&pol, &prog, data(Arch::X86_64, "read", [0; 6])), Action::Log);
    }

    #[test]
    fn programs_over_the_kernel_limit_are_refused() {
        let mut p = Profile::new(Action::Errno(1));
        for (i, (n, _)) in syscalls::all(Arch::X86_64).enumerate().take(300) {
            let mut s = Syscall::new([n], Action::Allow);
            for arg in 0..3 {
                s.args.push(Arg { index: arg, value: i as u64 + 1, value_two: 0, op: Op::Gt });
            }
            p.syscalls.push(s);
        }
        let e =
            compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap_err().to_string();
        assert!(e.contains("more than the kernel's limit of 4096 (BPF_MAXINSNS)"), "{e}");
    }

    #[test]
    fn disassembly_of_a_compiled_filter_reads_well() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let prog = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap();
        let text = crate::disassemble(&prog);
        assert!(text.lines().next().unwrap().starts_with("L0:   ld [4]"), "{text}");
        assert!(text.contains("jeq #0xc000003e, L3, L2") && text.contains("; AUDIT_ARCH_X86_64"), "{text}");
        assert!(text.contains("; x32 syscall numbers"), "{text}");
        assert!(text.contains("; nr >= getpid (x86_64)"), "{text}");
        assert!(
            text.contains("ret ERRNO(1)") && text.contains("ret ALLOW") && text.contains("ret KILL_PROCESS"),
            "{text}"
        );
        assert_eq!(text.lines().count(), prog.len());
    }
}

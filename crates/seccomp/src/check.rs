//! `check`: what one syscall gets, and which rule decided; `diff`: where two
//! compiled profiles disagree, argument conditions included.

use crate::compile::{Decision, Policy};
use crate::profile::Op;
use crate::{syscalls, Action, Arch, Error, Program, Result, SeccompData};
use std::collections::BTreeSet;

/// The answer of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub arch: Arch,
    pub name: String,
    pub nr: u32,
    /// What the filter returns (the BPF and the rule model agree on it).
    pub action: Action,
    /// The raw filter return value.
    pub ret: u32,
    /// The profile's `syscalls[]` entry that decided (`None`: the default
    /// action, or the bad-architecture action when `arch` is not covered).
    pub entry: Option<usize>,
    /// Whether `arch` is one of the filter's architectures.
    pub arch_covered: bool,
    /// The syscall's whole decision, e.g. `ALLOW when arg0 != 0x28, else ERRNO(1)`.
    pub decision: String,
}

/// What `syscall` with `args` gets on `arch`: runs the compiled `program` in
/// the simulator and checks that the rule model agrees (a disagreement is a
/// compiler bug and an error, never an answer).
pub fn check(
    policy: &Policy,
    program: &Program,
    arch: Arch,
    syscall: &str,
    args: [u64; 6],
) -> Result<CheckResult> {
    let nr = syscalls::number(arch, syscall).ok_or_else(|| Error::Invalid {
        location: format!("syscall \"{syscall}\""),
        message: if syscalls::is_known(syscall) {
            format!("{arch} has no such syscall")
        } else {
            "unknown syscall".to_string()
        },
    })?;
    check_number(policy, program, arch, nr, args)
}

/// [`check`] by syscall number.
pub fn check_number(
    policy: &Policy,
    program: &Program,
    arch: Arch,
    nr: u32,
    args: [u64; 6],
) -> Result<CheckResult> {
    let data = SeccompData { nr, arch: arch.audit_arch(), instruction_pointer: 0, args };
    let verdict = policy.decide(&data);
    let ret = program.run(&data)?;
    let name = syscalls::name(arch, nr).map_or_else(|| format!("#{nr}"), str::to_string);
    if Action::from_ret(ret) != verdict.action {
        return Err(Error::Mismatch {
            arch: arch.to_string(),
            syscall: name,
            bpf: Action::from_ret(ret).to_string(),
            model: verdict.action.to_string(),
        });
    }
    let decision = match (verdict.arch, verdict.arch.and_then(|a| policy.arch(a))) {
        (Some(_), Some(ap)) => match ap.syscalls.get(&nr) {
            Some(sp) => sp.decision.describe(policy.default_action),
            None => format!("{} (default action)", policy.default_action),
        },
        _ => format!("{} (architecture not in the filter)", policy.bad_arch_action),
    };
    Ok(CheckResult {
        arch,
        name,
        nr,
        action: verdict.action,
        ret,
        entry: verdict.entry,
        arch_covered: verdict.arch.is_some(),
        decision,
    })
}

/// One syscall the two profiles treat differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallDiff {
    pub arch: Arch,
    pub name: &'static str,
    pub nr: u32,
    /// Profile A's decision, e.g. `ALLOW` or `ALLOW when arg0 & 0x7e020000 == 0x0, else ERRNO(1)`.
    pub a: String,
    /// Profile B's decision.
    pub b: String,
    /// Argument values where the actions differ, with both actions; `None`
    /// when argument rules are written differently but no tried values
    /// (every comparison boundary) tell them apart.
    pub witness: Option<([u64; 6], Action, Action)>,
    /// Neither profile lists the syscall: it differs only because the default
    /// actions do.
    pub via_default: bool,
}

impl SyscallDiff {
    /// Whether one side runs the syscall (ALLOW/LOG) for some arguments
    /// where the other does not.
    pub fn changes_what_runs(&self) -> bool {
        self.witness.is_some_and(|(_, a, b)| a.runs_syscall() != b.runs_syscall())
    }
}

/// Differences between two compiled profiles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyDiff {
    /// Default actions, when they differ.
    pub default: Option<(Action, Action)>,
    /// Bad-architecture actions, when they differ.
    pub bad_arch: Option<(Action, Action)>,
    /// Architectures only A covers.
    pub only_a: Vec<Arch>,
    /// Architectures only B covers.
    pub only_b: Vec<Arch>,
    /// Per-syscall differences, by architecture then number.
    pub syscalls: Vec<SyscallDiff>,
}

impl PolicyDiff {
    /// Whether the two behave the same.
    pub fn is_empty(&self) -> bool {
        self.default.is_none()
            && self.bad_arch.is_none()
            && self.only_a.is_empty()
            && self.only_b.is_empty()
            && self.syscalls.is_empty()
    }
}

/// Where `a` and `b` disagree, for every syscall of every architecture both
/// cover (including syscalls neither lists, when the defaults differ).
pub fn diff(a: &Policy, b: &Policy) -> PolicyDiff {
    let mut out = PolicyDiff {
        default: (a.default_action != b.default_action).then_some((a.default_action, b.default_action)),
        bad_arch: (a.bad_arch_action != b.bad_arch_action).then_some((a.bad_arch_action, b.bad_arch_action)),
        only_a: a.arch_list().into_iter().filter(|x| b.arch(*x).is_none()).collect(),
        only_b: b.arch_list().into_iter().filter(|x| a.arch(*x).is_none()).collect(),
        syscalls: Vec::new(),
    };
    for arch in a.arch_list().into_iter().filter(|x| b.arch(*x).is_some()) {
        let (pa, pb) = (a.arch(arch).expect("covered"), b.arch(arch).expect("covered"));
        let mut nrs: BTreeSet<u32> = syscalls::all(arch).map(|(_, nr)| nr).collect();
        nrs.extend(pa.syscalls.keys().copied());
        nrs.extend(pb.syscalls.keys().copied());
        for nr in nrs {
            let (da, db) =
                (pa.syscalls.get(&nr).map(|s| &s.decision), pb.syscalls.get(&nr).map(|s| &s.decision));
            if same_decision(da, db) && a.default_action == b.default_action {
                continue;
            }
            let name = syscalls::name(arch, nr)
                .or_else(|| pa.syscalls.get(&nr).or_else(|| pb.syscalls.get(&nr)).map(|s| s.name))
                .unwrap_or("?");
            let describe = |d: Option<&Decision>, p: &Policy| {
                d.map_or_else(|| format!("{} (default)", p.default_action), |d| d.describe(p.default_action))
            };
            let witness = find_witness(a, b, arch, nr, da, db);
            let via_default = da.is_none() && db.is_none();
            let conditional = [da, db].iter().any(|d| matches!(d, Some(Decision::Conditional(_))));
            if witness.is_none() && (same_decision(da, db) || !conditional) {
                // Same outcome: without argument conditions the all-zero
                // vector already covers every input.
                continue;
            }
            out.syscalls.push(SyscallDiff {
                arch,
                name,
                nr,
                a: describe(da, a),
                b: describe(db, b),
                witness,
                via_default,
            });
        }
    }
    out
}

/// Structural equality, ignoring which profile entry a rule came from.
fn same_decision(a: Option<&Decision>, b: Option<&Decision>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Decision::Always { action: x, .. }), Some(Decision::Always { action: y, .. })) => x == y,
        (Some(Decision::Conditional(x)), Some(Decision::Conditional(y))) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(r, s)| r.action == s.action && r.conditions == s.conditions)
        }
        _ => false,
    }
}

/// Argument vectors that exercise every comparison boundary of both
/// decisions; the first where the actions differ.
fn find_witness(
    a: &Policy,
    b: &Policy,
    arch: Arch,
    nr: u32,
    da: Option<&Decision>,
    db: Option<&Decision>,
) -> Option<([u64; 6], Action, Action)> {
    let mut per_arg: [BTreeSet<u64>; 6] = Default::default();
    for d in [da, db].into_iter().flatten() {
        if let Decision::Conditional(rules) = d {
            for c in rules.iter().flat_map(|r| &r.conditions) {
                per_arg[usize::from(c.arg)].extend(boundary_values(c.op, c.value, c.value_two));
            }
        }
    }
    let args: Vec<usize> = (0..6).filter(|i| !per_arg[*i].is_empty()).collect();
    let data = |v: [u64; 6]| SeccompData { nr, arch: arch.audit_arch(), instruction_pointer: 0, args: v };
    let try_vec = |v: [u64; 6]| {
        let (x, y) = (a.decide(&data(v)).action, b.decide(&data(v)).action);
        (x != y).then_some((v, x, y))
    };
    if let Some(w) = try_vec([0; 6]) {
        return Some(w);
    }
    // Each argument alone, then combinations (all of them when few, else a
    // deterministic sample).
    for &i in &args {
        for &v in &per_arg[i] {
            let mut vec = [0u64; 6];
            vec[i] = v;
            if let Some(w) = try_vec(vec) {
                return Some(w);
            }
        }
    }
    let sets: Vec<Vec<u64>> = args.iter().map(|i| per_arg[*i].iter().copied().collect()).collect();
    let total: u128 = sets.iter().map(|s| s.len() as u128).product();
    const LIMIT: u128 = 50_000;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let count = total.min(LIMIT) as u64;
    for n in 0..count {
        let mut vec = [0u64; 6];
        let mut k = if total <= LIMIT {
            u128::from(n)
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            u128::from(seed) % total
        };
        for (slot, set) in args.iter().zip(&sets) {
            let len = set.len() as u128;
            vec[*slot] = set[(k % len) as usize];
            k /= len;
        }
        if let Some(w) = try_vec(vec) {
            return Some(w);
        }
    }
    None
}

/// Values around a comparison's boundary (value - 1, value, value + 1, mask
/// variants), in both 32-bit halves: what `diff` and the tests try.
pub fn boundary_values(op: Op, value: u64, value_two: u64) -> Vec<u64> {
    let mut v = vec![0, u64::MAX, 1 << 32, 0xffff_ffff];
    for base in [value, value_two] {
        v.extend([base, base.wrapping_sub(1), base.wrapping_add(1), base | (1 << 32), base ^ (1 << 63)]);
        v.extend([base as u32 as u64, base & !0xffff_ffff]);
    }
    if op == Op::MaskedEq {
        let (m, d) = (value, value_two);
        v.extend([d | !m, d ^ m, d ^ (m & m.wrapping_neg())]);
        if m != 0 {
            v.push(d ^ (1u64 << (63 - m.leading_zeros())));
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, CompileOptions, Profile};

    fn policy(json: &str) -> Policy {
        let p = Profile::from_json_str(json, "t.json").unwrap();
        compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap()
    }

    #[test]
    fn check_names_the_rule() {
        let pol = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        let prog = pol.to_program().unwrap();
        let r = check(&pol, &prog, Arch::X86_64, "personality", [0; 6]).unwrap();
        assert_eq!((r.action, r.entry), (Action::Allow, Some(2)));
        assert_eq!(r.decision, "ALLOW when arg0 == 0x8 or arg0 == 0x0, else ERRNO(1)");
        let r = check(&pol, &prog, Arch::X86_64, "personality", [9, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((r.action, r.entry), (Action::Errno(1), None));
        let r = check(&pol, &prog, Arch::X86, "read", [0; 6]).unwrap();
        assert_eq!(r.action, Action::KillProcess, "x86 is not covered");
        assert!(!r.arch_covered);
        assert!(check(&pol, &prog, Arch::X86_64, "readd", [0; 6])
            .unwrap_err()
            .to_string()
            .contains("unknown syscall"));
        assert!(check(&pol, &prog, Arch::Aarch64, "open", [0; 6])
            .unwrap_err()
            .to_string()
            .contains("aarch64 has no"));
    }

    #[test]
    fn check_refuses_a_program_that_disagrees() {
        let pol = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let mut prog = pol.to_program().unwrap();
        for i in &mut prog.insns {
            if i.k == Action::Allow.to_ret() {
                i.k = Action::Log.to_ret();
            }
        }
        let e = check(&pol, &prog, Arch::X86_64, "read", [0; 6]).unwrap_err().to_string();
        assert!(e.contains("internal error") && e.contains("LOG") && e.contains("ALLOW"), "{e}");
    }

    #[test]
    fn diff_reports_actions_and_argument_conditions() {
        let a = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
                {"names": ["read", "write", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
        );
        let b = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
                {"names": ["read", "write", "clone"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
        );
        let d = diff(&a, &b);
        assert!(d.default.is_none() && d.only_a.is_empty());
        let names: Vec<&str> = d.syscalls.iter().map(|s| s.name).collect();
        assert_eq!(names, ["getpid", "clone"]);
        let getpid = &d.syscalls[0];
        assert_eq!((getpid.a.as_str(), getpid.b.as_str()), ("ALLOW", "ERRNO(13)"));
        let clone = &d.syscalls[1];
        assert_eq!(clone.a, "ALLOW when arg0 & 0x7e020000 == 0x0, else ERRNO(1)");
        let (args, x, y) = clone.witness.unwrap();
        assert_ne!(args[0] & 0x7e02_0000, 0, "the witness sets a namespace flag");
        assert_eq!((x, y), (Action::Errno(1), Action::Allow));
        assert!(clone.changes_what_runs());
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn diff_sees_through_rewritten_rules() {
        // Same behaviour, different spelling: no witness, so no difference.
        let a = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]}"#,
        );
        let b = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 39, "op": "SCMP_CMP_LE"}]},
                                                                         {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 41, "op": "SCMP_CMP_GE"}]}]}"#,
        );
        let d = diff(&a, &b);
        assert_eq!(d.syscalls.len(), 1);
        assert!(d.syscalls[0].witness.is_none(), "{:?}", d.syscalls[0]);
        let c = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 39, "op": "SCMP_CMP_LE"}]}]}"#,
        );
        let (w, _, _) = diff(&a, &c).syscalls[0].witness.unwrap();
        assert!(w[0] > 40, "{w:?}");
    }

    #[test]
    fn diff_of_defaults_covers_unlisted_syscalls() {
        let a = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let b = policy(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        );
        let d = diff(&a, &b);
        assert_eq!(d.default, Some((Action::Errno(1), Action::Errno(38))));
        assert!(d.syscalls.iter().all(|s| s.via_default && s.name != "read"));
        assert_eq!(d.syscalls.len(), syscalls::all(Arch::X86_64).filter(|(n, _)| *n != "read").count());
    }
}

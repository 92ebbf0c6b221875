//! Reference tests: rampart's compiler against libseccomp 2.5 (the library
//! runc builds container filters with).
//!
//! For a profile, the same filter is built with libseccomp the way runc does
//! (entries selected by includes/excludes, rules with the default action
//! dropped, names libseccomp cannot resolve skipped, one argument compared
//! twice split into separate rules), exported as BPF with
//! `seccomp_export_bpf`, and run in rampart's simulator next to rampart's own
//! program, for every syscall number of every covered architecture, with
//! argument values around every comparison boundary. The rule model
//! (`Policy::decide`) must agree too.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use proptest::prelude::*;
use seccomp::{
    boundary_values, compile, syscalls, Action, Arch, CompileOptions, Op, Policy, Profile, Program,
    SeccompData,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};
use std::os::fd::FromRawFd;

fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X86 => ScmpArch::X86,
        Arch::X32 => ScmpArch::X32,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Arm => ScmpArch::Arm,
    }
}

fn scmp_action(a: Action) -> ScmpAction {
    match a {
        Action::KillProcess => ScmpAction::KillProcess,
        Action::KillThread => ScmpAction::KillThread,
        Action::Trap => ScmpAction::Trap,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::Notify => ScmpAction::Notify,
        Action::Trace(m) => ScmpAction::Trace(m),
        Action::Log => ScmpAction::Log,
        Action::Allow => ScmpAction::Allow,
    }
}

fn scmp_cmp(index: u32, op: Op, value: u64, value_two: u64) -> ScmpArgCompare {
    match op {
        Op::Ne => ScmpArgCompare::new(index, ScmpCompareOp::NotEqual, value),
        Op::Lt => ScmpArgCompare::new(index, ScmpCompareOp::Less, value),
        Op::Le => ScmpArgCompare::new(index, ScmpCompareOp::LessOrEqual, value),
        Op::Eq => ScmpArgCompare::new(index, ScmpCompareOp::Equal, value),
        Op::Ge => ScmpArgCompare::new(index, ScmpCompareOp::GreaterEqual, value),
        Op::Gt => ScmpArgCompare::new(index, ScmpCompareOp::Greater, value),
        Op::MaskedEq => ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(value), value_two),
    }
}

/// libseccomp's filter for `profile`, built as runc builds it, with the
/// profile names libseccomp could not resolve (runc skips them); `None` when
/// libseccomp refuses the rules as conflicting (EEXIST: the same comparisons
/// with two actions), which makes runc fail the container.
fn libseccomp_program(
    profile: &Profile,
    opts: &CompileOptions,
    arches: &[Arch],
) -> Option<(Program, BTreeSet<String>)> {
    let default = profile.resolved_default();
    let mut ctx = ScmpFilterContext::new(scmp_action(default)).unwrap();
    ctx.set_act_badarch(scmp_action(opts.bad_arch_action)).unwrap();
    for a in arches {
        if !ctx.is_arch_present(scmp_arch(*a)).unwrap() {
            ctx.add_arch(scmp_arch(*a)).unwrap();
        }
    }
    if !arches.contains(&Arch::native()) {
        ctx.remove_arch(scmp_arch(Arch::native())).unwrap();
    }
    let mut unresolved = BTreeSet::new();
    for s in profile.syscalls.iter().filter(|s| opts.selects(s)) {
        let action = s.resolved_action();
        if action == default {
            continue;
        }
        let conds: Vec<ScmpArgCompare> =
            s.args.iter().map(|a| scmp_cmp(a.index, a.op, a.value, a.value_two)).collect();
        let mut seen = BTreeSet::new();
        let repeated = s.args.iter().any(|a| !seen.insert(a.index));
        for name in s.all_names() {
            let Ok(sys) = ScmpSyscall::from_name(name) else {
                unresolved.insert(name.to_string());
                continue;
            };
            let groups: Vec<Vec<ScmpArgCompare>> =
                if repeated { conds.iter().map(|c| vec![*c]).collect() } else { vec![conds.clone()] };
            for g in groups {
                let added = if g.is_empty() {
                    ctx.add_rule(scmp_action(action), sys)
                } else {
                    ctx.add_rule_conditional(scmp_action(action), sys, &g)
                };
                match added {
                    Ok(_) => {}
                    Err(e) if e.errno() == Some(libseccomp::error::SeccompErrno::EEXIST) => return None,
                    Err(e) => panic!("libseccomp refused {name} {g:?}: {e}"),
                }
            }
        }
    }
    Some((export(&ctx), unresolved))
}

/// `seccomp_export_bpf` into a memfd, read back as a program.
fn export(ctx: &ScmpFilterContext) -> Program {
    // SAFETY: memfd_create with a valid C string; the fd is owned by the File.
    let fd = unsafe { libc::memfd_create(c"rampart-ref".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd nobody else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    ctx.export_bpf(&file).unwrap();
    file.rewind().unwrap();
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    let prog = Program::from_bytes(&bytes).unwrap();
    prog.validate().unwrap();
    prog
}

/// Argument vectors for a syscall: zero, all ones, and each comparison's
/// boundary values on its argument alone and combined with the others'.
fn arg_vectors(policy: &Policy, arch: Arch, nr: u32) -> Vec<[u64; 6]> {
    let mut per_arg: BTreeMap<u8, BTreeSet<u64>> = BTreeMap::new();
    if let Some(sp) = policy.arch(arch).and_then(|a| a.syscalls.get(&nr)) {
        if let seccomp::Decision::Conditional(rules) = &sp.decision {
            for c in rules.iter().flat_map(|r| &r.conditions) {
                per_arg.entry(c.arg).or_default().extend(boundary_values(c.op, c.value, c.value_two));
            }
        }
    }
    let mut out = vec![[0u64; 6], [u64::MAX; 6], [0x1_0000_0000; 6]];
    for (arg, values) in &per_arg {
        for v in values {
            let mut a = [0u64; 6];
            a[usize::from(*arg)] = *v;
            out.push(a);
        }
    }
    // Pairs of arguments together (every combination of their values).
    let args: Vec<(&u8, &BTreeSet<u64>)> = per_arg.iter().collect();
    for (i, (ai, vi)) in args.iter().enumerate() {
        for (aj, vj) in &args[i + 1..] {
            for x in vi.iter() {
                for y in vj.iter() {
                    let mut a = [0u64; 6];
                    a[usize::from(**ai)] = *x;
                    a[usize::from(**aj)] = *y;
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Instructions of `prog` that use the accumulator when it may hold
/// different words depending on the path taken to them. libseccomp 2.5.4
/// sometimes skips reloading an argument at a point where two rule chains
/// meet (it then compares another argument's word): a bug of its code
/// generator, seen by the property tests below. A result of libseccomp's that
/// went through such an instruction is not a reference.
fn ambiguous_accumulator(prog: &Program) -> BTreeSet<usize> {
    use seccomp::bpf::*;
    #[derive(Clone, Copy, PartialEq)]
    enum Src {
        Word(u32),
        Other,
        Mixed,
    }
    let n = prog.insns.len();
    let mut state: Vec<Option<Src>> = vec![None; n + 1];
    state[0] = Some(Src::Other);
    let mut out = BTreeSet::new();
    let join = |a: Option<Src>, b: Src| match a {
        None => Some(b),
        Some(x) if x == b => Some(x),
        _ => Some(Src::Mixed),
    };
    for pc in 0..n {
        let Some(st) = state[pc] else { continue };
        let i = prog.insns[pc];
        let class = i.code & 0x07;
        let reads_a = matches!(class, BPF_ALU | BPF_ST)
            || (class == BPF_JMP && i.code & 0xf0 != BPF_JA)
            || (class == BPF_RET && i.code & 0x18 == BPF_A);
        if reads_a && st == Src::Mixed {
            out.insert(pc);
        }
        let after = match class {
            BPF_LD if i.code & 0xe0 == BPF_ABS => Src::Word(i.k),
            BPF_LD | BPF_ALU => Src::Other,
            _ => st,
        };
        match class {
            BPF_RET => {}
            BPF_JMP if i.code & 0xf0 == BPF_JA => {
                state[pc + 1 + i.k as usize] = join(state[pc + 1 + i.k as usize], after)
            }
            BPF_JMP => {
                for t in [pc + 1 + usize::from(i.jt), pc + 1 + usize::from(i.jf)] {
                    state[t] = join(state[t], after);
                }
            }
            _ => state[pc + 1] = join(state[pc + 1], after),
        }
    }
    out
}

/// Compares rampart's program, the rule model and libseccomp's program on
/// every syscall of every covered architecture; returns how many inputs
/// agreed and how many libseccomp got wrong through its accumulator bug, or
/// `None` when libseccomp refuses the profile (then rampart must have noted
/// the conflicting rules).
fn compare(profile: &Profile, opts: &CompileOptions, what: &str) -> Option<(usize, usize)> {
    compare_some(profile, opts, what, true)
}

/// [`compare`]; unless `every_syscall`, only the syscalls the profile names
/// (and their multiplexers) plus every seventh other number are tried, which
/// keeps property tests and their shrinking fast.
fn compare_some(
    profile: &Profile,
    opts: &CompileOptions,
    what: &str,
    every_syscall: bool,
) -> Option<(usize, usize)> {
    let policy = compile(profile, opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    let ours = policy.to_program().unwrap();
    ours.validate().unwrap();
    let arches = policy.arch_list();
    let Some((theirs, unresolved)) = libseccomp_program(profile, opts, &arches) else {
        assert!(
            policy.notes.iter().any(|n| n.contains("may both match")),
            "{what}: libseccomp refused conflicting rules that rampart did not note: {:?}",
            policy.notes
        );
        return None;
    };
    let broken = ambiguous_accumulator(&theirs);
    assert!(
        ambiguous_accumulator(&ours).is_empty(),
        "{what}: rampart's program reads a path-dependent accumulator"
    );
    let (mut checked, mut excused) = (0, 0);
    for &arch in &arches {
        // Syscalls a profile name libseccomp cannot resolve stands for: runc
        // leaves them to the default action, rampart compiles them.
        let skip: BTreeSet<u32> = unresolved.iter().filter_map(|n| syscalls::number(arch, n)).collect();
        let mut nrs: BTreeSet<u32> = syscalls::all(arch)
            .map(|(_, nr)| nr)
            .enumerate()
            .filter(|(i, _)| every_syscall || i % 7 == 0)
            .map(|(_, nr)| nr)
            .collect();
        nrs.extend(policy.arch(arch).into_iter().flat_map(|a| a.syscalls.keys().copied()));
        nrs.extend(
            profile.syscalls.iter().flat_map(|s| s.all_names()).filter_map(|n| syscalls::number(arch, n)),
        );
        // Numbers no table has, at both ends of each range.
        let base = if arch == Arch::X32 { 0x4000_0000 } else { 0 };
        nrs.extend([base + 1023, base + 0x3fff_ffff, 0xffff_ffff, 0x4000_0000 - 1]);
        for nr in nrs.into_iter().filter(|nr| !skip.contains(nr)) {
            for args in arg_vectors(&policy, arch, nr) {
                let data = SeccompData { nr, arch: arch.audit_arch(), instruction_pointer: 0x1234, args };
                let a = ours.run(&data).unwrap();
                let (b, path) = theirs.run_traced(&data).unwrap();
                let model = policy.decide(&data).action;
                let name = syscalls::name(arch, nr).unwrap_or("?");
                assert_eq!(
                    Action::from_ret(a),
                    model,
                    "{what}: {arch} {name} args {args:x?}: BPF vs rule model"
                );
                if a != b && path.iter().any(|pc| broken.contains(pc)) {
                    excused += 1;
                    continue;
                }
                assert_eq!(
                    Action::from_ret(a),
                    Action::from_ret(b),
                    "{what}: {arch} {name} ({nr:#x}) args {args:x?}: rampart {a:#x}, libseccomp {b:#x}\nprofile: {}\nlibseccomp:\n{}",
                    serde_json::to_string(profile).unwrap(),
                    seccomp::disassemble(&theirs)
                );
                checked += 1;
            }
        }
    }
    // Foreign architectures get the bad-architecture action in both.
    for audit in [0u32, 0x4000_0028, 0xc000_00b7, 0x8000_0016, 0x4000_0003, 0xc000_003e] {
        if arches.iter().any(|a| a.audit_arch() == audit) {
            continue;
        }
        let data = SeccompData { nr: 0, arch: audit, instruction_pointer: 0, args: [0; 6] };
        assert_eq!(ours.run(&data).unwrap(), theirs.run(&data).unwrap(), "{what}: foreign arch {audit:#x}");
    }
    Some((checked, excused))
}

fn docker_profile() -> Profile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker-default.json");
    Profile::load(std::path::Path::new(path)).unwrap()
}

fn containers_profile() -> Profile {
    // Installed by scripts/setup.sh (golang-github-containers-common): a test
    // fixture, so its absence is a failure, not a skip.
    Profile::load(std::path::Path::new("/usr/share/containers/seccomp.json")).expect(
        "/usr/share/containers/seccomp.json (package golang-github-containers-common, scripts/setup.sh)",
    )
}

#[test]
fn tables_agree_with_libseccomp() {
    // Every name both know has the same number on every architecture.
    let mut compared = 0;
    for arch in Arch::ALL {
        for (name, nr) in syscalls::all(arch) {
            let Ok(sys) = ScmpSyscall::from_name_by_arch(name, scmp_arch(arch)) else { continue };
            let theirs = sys.as_raw_syscall();
            if theirs < 0 {
                continue; // libseccomp's "not on this architecture" pseudo-number
            }
            // libseccomp 2.5 numbers arm's private calls from 0x0f0000 like the kernel.
            assert_eq!(nr as i32, theirs, "{arch} {name}");
            compared += 1;
        }
    }
    assert!(compared > 1700, "compared {compared} names");
}

#[test]
fn docker_default_profile_matches_libseccomp() {
    let p = docker_profile();
    let mut total = 0;
    // Docker's default capabilities, then a container with CAP_SYS_ADMIN
    // (clone without the namespace-flag check, mount, unshare...), then none.
    for caps in [None, Some(vec!["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"]), Some(vec![])] {
        let mut opts = CompileOptions::new(Arch::X86_64);
        if let Some(c) = caps.clone() {
            opts = opts.with_caps(c).unwrap();
        }
        let policy = compile(&p, &opts).unwrap();
        assert_eq!(policy.arch_list(), [Arch::X86_64, Arch::X86, Arch::X32]);
        let (checked, excused) = compare(&p, &opts, &format!("docker default, caps {caps:?}")).unwrap();
        assert_eq!(excused, 0, "libseccomp's program for Docker's profile has no accumulator problem");
        total += checked;
    }
    assert!(total > 3000, "checked {total}");
}

#[test]
fn containers_common_profile_matches_libseccomp() {
    let p = containers_profile();
    for caps in [None, Some(vec!["CAP_AUDIT_WRITE", "CAP_SYS_ADMIN"])] {
        let mut opts = CompileOptions::new(Arch::X86_64);
        if let Some(c) = caps.clone() {
            opts = opts.with_caps(c).unwrap();
        }
        let (_, excused) = compare(&p, &opts, &format!("containers-common, caps {caps:?}")).unwrap();
        assert_eq!(excused, 0);
    }
}

#[test]
fn real_profiles_for_x86_alone_match_libseccomp() {
    // The 32-bit compare path (low words only) on real rules: x86 as the native arch.
    let opts = CompileOptions::new(Arch::X86);
    assert_eq!(compare(&docker_profile(), &opts, "docker default on x86").unwrap().1, 0);
    assert_eq!(compare(&containers_profile(), &opts, "containers-common on x86").unwrap().1, 0);
}

#[test]
fn docker_default_keeps_its_promises() {
    // The few facts about Docker's profile everybody relies on, through check().
    let p = docker_profile();
    let policy = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap();
    let prog = policy.to_program().unwrap();
    let check = |arch, name: &str, args| seccomp::check(&policy, &prog, arch, name, args).unwrap().action;
    assert_eq!(check(Arch::X86_64, "read", [0; 6]), Action::Allow);
    assert_eq!(check(Arch::X86_64, "mount", [0; 6]), Action::Errno(1));
    assert_eq!(check(Arch::X86_64, "clone", [0x11, 0, 0, 0, 0, 0]), Action::Allow, "plain fork-style clone");
    assert_eq!(check(Arch::X86_64, "clone", [0x1000_0000, 0, 0, 0, 0, 0]), Action::Errno(1), "CLONE_NEWUSER");
    assert_eq!(check(Arch::X86_64, "clone3", [0; 6]), Action::Errno(38));
    assert_eq!(check(Arch::X86_64, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(check(Arch::X86_64, "personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), Action::Errno(1));
    // On x86 only the low word counts (libseccomp's 32-bit compare).
    assert_eq!(check(Arch::X86, "personality", [0x1_ffff_ffff, 0, 0, 0, 0, 0]), Action::Allow);
    assert_eq!(check(Arch::X86_64, "socket", [40, 0, 0, 0, 0, 0]), Action::Errno(1), "AF_VSOCK");
    assert_eq!(check(Arch::X32, "read", [0; 6]), Action::Allow);
    assert_eq!(check(Arch::Aarch64, "read", [0; 6]), Action::KillProcess, "not in the filter");
}

#[test]
fn libseccomp_mishandles_rules_sharing_an_argument() {
    // Found by the property tests: several rules of one syscall comparing
    // the same argument, where libseccomp 2.5.4's filter answers differently
    // from the rules (noted by hand below) and rampart's does not. If one of
    // these starts failing because libseccomp got it right, the property
    // tests can widen what they generate.
    let cases: [(&str, &str, [u64; 6], Action); 4] = [
        // Range rules: the second rule is pruned (the shared "arg0 high word
        // > 0" node is taken for a common prefix).
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 24, "op": "SCMP_CMP_GT"}]},
                {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
            "personality",
            [1, 0, 0, 0, 0, 0],
            Action::Log,
        ),
        // NE rules: after "arg2 != 0x7e020000" holds, the other rule's
        // "arg3 == 1" is checked without its "arg2 != 0".
        (
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 3, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 2114060288, "op": "SCMP_CMP_NE"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 3, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 0, "op": "SCMP_CMP_NE"}]}]}"#,
            "personality",
            [0, 0, 0, 1, 0, 0],
            Action::KillProcess,
        ),
        // EQ and NE of one value: the NE rule disappears.
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["write"], "action": "SCMP_ACT_LOG", "args": [{"index": 3, "value": 2114060288, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 3, "value": 2114060288, "op": "SCMP_CMP_NE"}]}]}"#,
            "write",
            [0; 6],
            Action::Log,
        ),
        // GE and EQ on one argument: a match of the GE prefix runs into the
        // other rule's "arg1 == 1".
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mmap"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mmap"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "mmap",
            [0, 1, 0, 0, 0, 0],
            Action::Allow,
        ),
    ];
    for (json, name, args, want) in cases {
        let p = Profile::from_json_str(json, "shared.json").unwrap();
        let opts = CompileOptions::new(Arch::X86_64);
        let policy = compile(&p, &opts).unwrap();
        let ours = policy.to_program().unwrap();
        let (theirs, _) = libseccomp_program(&p, &opts, &policy.arch_list()).unwrap();
        let nr = syscalls::number(Arch::X86_64, name).unwrap();
        let data = SeccompData { nr, arch: Arch::X86_64.audit_arch(), instruction_pointer: 0, args };
        assert_eq!(Action::from_ret(ours.run(&data).unwrap()), want, "{json}");
        assert_ne!(Action::from_ret(theirs.run(&data).unwrap()), want, "libseccomp now gets {json} right");
    }
}

// ---- property tests: random profiles against libseccomp -------------------

const NAMES: [&str; 10] =
    ["read", "write", "openat", "close", "mmap", "getpid", "clone", "personality", "socket", "ioctl"];

fn value_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(0xffff_ffff),
        Just(0x1_0000_0000),
        Just(u64::MAX),
        Just(0x8000_0000_0000_0000),
        Just(0x7e02_0000),
        0u64..1024,
        any::<u64>(),
        any::<u32>().prop_map(u64::from),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::MaskedEq)
    ]
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::Log),
        Just(Action::KillProcess),
        Just(Action::KillThread),
        Just(Action::Trap),
        (1u16..200).prop_map(Action::Errno),
        (0u16..100).prop_map(Action::Trace),
    ]
}

#[derive(Debug, Clone)]
struct RandomRule {
    name: &'static str,
    action: Action,
    args: Vec<(u32, Op, u64, u64)>,
}

fn rule_strategy() -> impl Strategy<Value = RandomRule> {
    let arg = (0u32..6, op_strategy(), value_strategy(), value_strategy()).prop_map(|(i, op, v, w)| {
        if op == Op::MaskedEq {
            (i, op, v, w & v)
        } else {
            (i, op, v, 0)
        }
    });
    (prop::sample::select(&NAMES[..]), action_strategy(), prop::collection::vec(arg, 0..4))
        .prop_map(|(name, action, args)| RandomRule { name, action, args })
}

/// A profile from random rules, shaped around what libseccomp 2.5.4 gets
/// wrong or defines differently:
/// - conditional rules of one syscall get one action: libseccomp orders
///   conditional rules with different actions by its own tree order, a
///   documented difference (see `compile`);
/// - when several rules of one syscall compare the same argument, they all
///   use EQ (Docker's `personality` shape): libseccomp 2.5.4 merges the
///   comparison trees of such rules wrongly otherwise, dropping a rule or
///   grafting one rule's checks onto another's (see
///   `libseccomp_mishandles_rules_sharing_an_argument`). One argument compared
///   twice in one entry becomes two rules (runc), so it counts too.
fn random_profile(default: Action, mut rules: Vec<RandomRule>) -> Profile {
    let mut first_action: BTreeMap<&str, Action> = BTreeMap::new();
    for r in rules.iter_mut().filter(|r| !r.args.is_empty()) {
        r.action = *first_action.entry(r.name).or_insert(r.action);
    }
    let mut touched: BTreeMap<(&str, u32), usize> = BTreeMap::new();
    for r in rules.iter() {
        for a in r.args.iter().map(|a| a.0).collect::<BTreeSet<u32>>() {
            *touched.entry((r.name, a)).or_default() += 1;
        }
    }
    for r in rules.iter_mut() {
        let mut count: BTreeMap<u32, usize> = BTreeMap::new();
        for a in &r.args {
            *count.entry(a.0).or_default() += 1;
        }
        for a in r.args.iter_mut() {
            if touched[&(r.name, a.0)] > 1 || count[&a.0] > 1 {
                a.1 = Op::Eq;
                a.3 = 0;
            }
        }
    }
    let mut p = Profile::new(default);
    for r in rules {
        let mut s = seccomp::Syscall::new([r.name], r.action);
        s.args = r
            .args
            .iter()
            .map(|&(index, op, value, value_two)| seccomp::Arg { index, value, value_two, op })
            .collect();
        p.syscalls.push(s);
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_profiles_match_libseccomp_on_x86_64(
        default in action_strategy(),
        rules in prop::collection::vec(rule_strategy(), 0..10),
    ) {
        let p = random_profile(default, rules);
        if let Some((checked, excused)) = compare_some(&p, &CompileOptions::new(Arch::X86_64), "random x86_64", false) {
            prop_assert!(excused * 4 <= checked, "libseccomp's bug explains {excused} of {checked}");
        }
    }

    #[test]
    fn random_profiles_match_libseccomp_on_x86(
        default in action_strategy(),
        rules in prop::collection::vec(rule_strategy(), 0..10),
    ) {
        let p = random_profile(default, rules);
        if let Some((checked, excused)) = compare_some(&p, &CompileOptions::new(Arch::X86), "random x86", false) {
            prop_assert!(excused * 4 <= checked, "libseccomp's bug explains {excused} of {checked}");
        }
    }

    #[test]
    fn random_profiles_match_libseccomp_on_aarch64(
        default in action_strategy(),
        rules in prop::collection::vec(rule_strategy(), 0..10),
    ) {
        let p = random_profile(default, rules);
        if let Some((checked, excused)) = compare_some(&p, &CompileOptions::new(Arch::Aarch64), "random aarch64", false) {
            prop_assert!(excused * 4 <= checked, "libseccomp's bug explains {excused} of {checked}");
        }
    }
}

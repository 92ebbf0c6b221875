use super::*;
use crate::actions::plans;
use crate::actions::testing::ruleset;

const DENY: &str = "- rule: shadow\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and container.id != host\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EACCES}}]\n\
- rule: nc\n  desc: d\n  condition: evt.type = execve and proc.exepath = /bin/nc\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: 1}}]\n\
- rule: dns\n  desc: d\n  condition: evt.type = connect\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n\
- rule: watch\n  desc: d\n  condition: evt.type = openat and fd.name = /etc/passwd\n  output: o\n  priority: WARNING\n";

fn deny_rules(text: &str) -> DenyRules {
    let rs = Arc::new(ruleset(text));
    let p = plans(&rs).unwrap();
    DenyRules::new(rs, &p, false)
}

/// A thread whose memory is a few strings at fixed addresses.
struct Fake {
    mem: BTreeMap<u64, &'static str>,
    cwd: &'static str,
}

impl Target for Fake {
    fn string(&self, addr: u64) -> std::io::Result<Vec<u8>> {
        self.mem
            .get(&addr)
            .map(|s| s.as_bytes().to_vec())
            .ok_or(std::io::Error::from_raw_os_error(libc::EFAULT))
    }
    fn u64_at(&self, _: u64) -> std::io::Result<u64> {
        Ok(0)
    }
    fn link(&self, name: &str) -> Option<String> {
        match name {
            "cwd" => Some(self.cwd.into()),
            "fd/3" => Some("/etc".into()),
            _ => None,
        }
    }
    fn process(&self) -> ProcessCtx {
        ProcessCtx { pid: 7, comm: "cat".into(), ..Default::default() }
    }
}

fn notif(name: &str, args: [u64; 6]) -> Notif {
    let nr = seccomp::syscalls::number(Arch::X86_64, name).unwrap() as i32;
    Notif { id: 1, tid: 7, nr, arch: seccomp::arch::AUDIT_ARCH_X86_64, args }
}

fn container() -> Option<Arc<Container>> {
    Some(Arc::new(Container { id: "c".repeat(64), ..Default::default() }))
}

#[test]
fn deny_rules_pick_their_syscalls_and_say_what_they_cannot_decide() {
    let d = deny_rules(DENY);
    assert_eq!(
        d.syscalls().iter().copied().collect::<Vec<_>>(),
        ["execve", "execveat", "open", "openat", "openat2"]
    );
    assert_eq!(d.not_enforced.len(), 1);
    assert!(d.not_enforced[0].1.contains("not connect"), "{:?}", d.not_enforced);
    let lines = d.describe();
    assert!(lines[0].starts_with("deny (errno 13) by the seccomp agent"), "{lines:?}");
    // A dry run denies nothing.
    let rs = Arc::new(ruleset(DENY));
    assert!(DenyRules::new(rs.clone(), &plans(&rs).unwrap(), true).is_empty());
}

#[test]
fn paths_are_normalised_lexically() {
    assert_eq!(normalize("/", "etc/shadow"), "/etc/shadow");
    assert_eq!(normalize("/tmp", "../etc//./shadow"), "/etc/shadow");
    assert_eq!(normalize("/x", "/../../etc/shadow"), "/etc/shadow");
    assert_eq!(normalize("/", ""), "/");
}

#[test]
fn open_and_exec_notifications_are_decided_by_the_rules() {
    let d = deny_rules(DENY);
    let t = Fake {
        mem: [(0x1000, "/etc/shadow"), (0x2000, "shadow"), (0x3000, "/etc/passwd"), (0x4000, "/bin/nc")]
            .into(),
        cwd: "/etc",
    };
    let at_cwd = libc::AT_FDCWD as u32 as u64;
    let cases = [
        (notif("openat", [at_cwd, 0x1000, 0, 0, 0, 0]), Answer::Deny(libc::EACCES)),
        // Relative to the cwd, and to a dirfd.
        (notif("openat", [at_cwd, 0x2000, 0, 0, 0, 0]), Answer::Deny(libc::EACCES)),
        (notif("openat", [3, 0x2000, 0, 0, 0, 0]), Answer::Deny(libc::EACCES)),
        (notif("open", [0x1000, 0, 0, 0, 0, 0]), Answer::Deny(libc::EACCES)),
        (notif("openat", [at_cwd, 0x3000, 0, 0, 0, 0]), Answer::Continue),
        (notif("execve", [0x4000, 0, 0, 0, 0, 0]), Answer::Deny(libc::EPERM)),
        (notif("execveat", [at_cwd, 0x4000, 0, 0, 0, 0]), Answer::Deny(libc::EPERM)),
        // An unreadable pointer: the kernel runs it (and faults the same way).
        (notif("openat", [at_cwd, 0x9000, 0, 0, 0, 0]), Answer::Continue),
        // Not a call the agent decides.
        (notif("getpid", [0; 6]), Answer::Continue),
    ];
    for (n, want) in cases {
        let mut ev = event_for(&n, &t, container());
        assert_eq!(decide(&d, ev.as_mut(), &t).0, want, "{n:?} {ev:?}");
    }
    // The host is not a container: `container.id != host` does not hold.
    let mut ev = event_for(&notif("open", [0x1000, 0, 0, 0, 0, 0]), &t, None);
    assert_eq!(decide(&d, ev.as_mut(), &t).0, Answer::Continue);
}

#[test]
fn the_process_is_read_only_when_a_path_test_holds() {
    // A rule on the process too: decided on the full event, and the process
    // is what the Fake gives (comm "cat").
    let d = deny_rules("- rule: cat\n  desc: d\n  condition: evt.type = open and fd.name = /etc/shadow and proc.name = cat\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n");
    let t = Fake { mem: [(0x1000, "/etc/shadow"), (0x2000, "/etc/passwd")].into(), cwd: "/" };
    let mut ev = event_for(&notif("open", [0x1000, 0, 0, 0, 0, 0]), &t, container()).unwrap();
    assert!(ev.process.comm.is_empty());
    assert!(d.may_match(&ev));
    assert_eq!(decide(&d, Some(&mut ev), &t).0, Answer::Deny(libc::EPERM));
    assert_eq!(ev.process.comm, "cat");
    let mut ev = event_for(&notif("open", [0x2000, 0, 0, 0, 0, 0]), &t, container()).unwrap();
    assert!(!d.may_match(&ev));
    assert_eq!(decide(&d, Some(&mut ev), &t).0, Answer::Continue);
    assert!(ev.process.comm.is_empty(), "the process was read for a path no rule names");
}

#[test]
fn compat_syscall_numbers_are_decided_too() {
    // int 0x80 on x86_64: i386's numbers under AUDIT_ARCH_I386.
    let d = deny_rules(DENY);
    let t = Fake { mem: [(0x1000, "/etc/shadow")].into(), cwd: "/" };
    let nr = seccomp::syscalls::number(Arch::X86, "open").unwrap() as i32;
    let n = Notif { id: 1, tid: 7, nr, arch: seccomp::arch::AUDIT_ARCH_I386, args: [0x1000, 0, 0, 0, 0, 0] };
    assert_eq!(decide(&d, event_for(&n, &t, container()).as_mut(), &t).0, Answer::Deny(libc::EACCES));
}

#[test]
fn the_profile_notifies_only_what_the_rules_need() {
    let d = deny_rules(DENY);
    let p = notify_profile(d.syscalls(), None, DEFAULT_SOCKET).unwrap();
    assert_eq!(p.resolved_default(), Action::Allow);
    assert_eq!(p.listener_path.as_deref(), Some(DEFAULT_SOCKET));
    assert_eq!(p.syscalls.len(), 1);
    assert_eq!(p.syscalls[0].resolved_action(), Action::Notify);
    assert_eq!(p.syscalls[0].names, ["execve", "execveat", "open", "openat", "openat2"]);
    // Round trip through the parser (what runc and Docker read).
    Profile::from_json_str(&p.to_json_pretty(), "p.json").unwrap();
    assert!(notify_profile(&BTreeSet::new(), None, DEFAULT_SOCKET).is_err());
}

#[test]
fn the_profile_layers_on_a_base() {
    let base = Profile::from_json_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read", "openat", "open"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["execve"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
        "base.json",
    )
    .unwrap();
    let p = notify_profile(&deny_rules(DENY).syscalls().clone(), Some(base), "/s").unwrap();
    // execveat: refused by the base's default; openat2: by its own entry.
    let notified = &p.syscalls.last().unwrap().names;
    assert_eq!(notified, &["execve", "open", "openat"]);
    assert_eq!(p.syscalls[0].names, ["read"]);
    assert_eq!(p.syscalls.len(), 3, "the emptied execve entry is gone: {:#?}", p.syscalls);
    let conditional = Profile::from_json_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["openat"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        "c.json",
    )
    .unwrap();
    let err = notify_profile(&deny_rules(DENY).syscalls().clone(), Some(conditional), "/s").unwrap_err();
    assert!(err.contains("argument conditions"), "{err}");
}

#[test]
fn runtime_messages_are_checked() {
    let msg = br#"{"ociVersion":"1.0.2","fds":["seccompFd"],"pid":42,"metadata":"","state":{"ociVersion":"1.0.2","id":"web","status":"running","pid":42,"bundle":"/b","annotations":{"a":"b"}}}"#;
    let fd = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let (state, _fd) = agent::parse_message(msg, vec![fd()]).unwrap();
    assert_eq!(state.state.id, "web");
    assert_eq!(container_of(&state, None).labels["a"], "b");
    assert!(agent::parse_message(msg, vec![]).unwrap_err().contains("carries 0"));
    assert!(agent::parse_message(b"{", vec![fd()]).is_err());
    let two = br#"{"fds":["seccompFd","seccompFd"],"pid":1,"state":{"id":"x"}}"#;
    assert!(agent::parse_message(two, vec![fd(), fd()]).unwrap_err().contains("exactly one"));
}

use std::os::fd::OwnedFd;

const SCALAR_DENY: &str = "- rule: userns\n  desc: d\n  condition: evt.type = unshare and evt.arg.flags contains CLONE_NEWUSER and container.id != host\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n\
- rule: attach\n  desc: d\n  condition: evt.type = ptrace and evt.arg.request = PTRACE_ATTACH\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n\
- rule: bpfload\n  desc: d\n  condition: evt.type = bpf and evt.arg.cmd = BPF_PROG_LOAD\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n\
- rule: mnt\n  desc: d\n  condition: evt.type = setns and evt.arg.nstype = CLONE_NEWNS\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n\
- rule: mount\n  desc: d\n  condition: evt.type = mount\n  output: o\n  priority: WARNING\n  actions: [{deny: {errno: EPERM}}]\n";

#[test]
fn scalar_syscalls_are_notified_and_decided_on_their_registers() {
    let d = deny_rules(SCALAR_DENY);
    assert_eq!(d.syscalls().iter().copied().collect::<Vec<_>>(), ["bpf", "ptrace", "setns", "unshare"]);
    // mount's arguments are pointers: not the agent's.
    assert_eq!(d.not_enforced.len(), 1, "{:?}", d.not_enforced);
    assert!(
        d.not_enforced[0].0 == "mount"
            && d.not_enforced[0].1.contains("not mount; mount and umount take their paths as pointers"),
        "{:?}",
        d.not_enforced
    );
    assert!(d.describe()[0].ends_with("userns (unshare)"), "{:?}", d.describe());
    let t = Fake { mem: BTreeMap::new(), cwd: "/" };
    let answer = |name: &str, args: [u64; 6]| {
        let n = notif(name, args);
        let mut ev = event_for(&n, &t, container());
        decide(&d, ev.as_mut(), &t).0
    };
    let (newuser, newuts, newns) =
        (libc::CLONE_NEWUSER as u64, libc::CLONE_NEWUTS as u64, libc::CLONE_NEWNS as u64);
    assert_eq!(answer("unshare", [newuser | newuts, 0, 0, 0, 0, 0]), Answer::Deny(libc::EPERM));
    assert_eq!(answer("unshare", [newuts, 0, 0, 0, 0, 0]), Answer::Continue);
    assert_eq!(answer("ptrace", [libc::PTRACE_ATTACH as u64, 9, 0, 0, 0, 0]), Answer::Deny(libc::EPERM));
    assert_eq!(answer("ptrace", [libc::PTRACE_TRACEME as u64, 0, 0, 0, 0, 0]), Answer::Continue);
    assert_eq!(answer("bpf", [5, 0x1000, 128, 0, 0, 0]), Answer::Deny(libc::EPERM));
    assert_eq!(answer("bpf", [0, 0x1000, 128, 0, 0, 0]), Answer::Continue);
    assert_eq!(answer("setns", [3, newns, 0, 0, 0, 0]), Answer::Deny(libc::EPERM));
    assert_eq!(answer("setns", [3, newuts, 0, 0, 0, 0]), Answer::Continue);
    // Flags no rule asks for: answered without reading the process.
    let mut ev = event_for(&notif("unshare", [newuts, 0, 0, 0, 0, 0]), &t, container()).unwrap();
    assert!(!d.may_match(&ev));
    assert_eq!(decide(&d, Some(&mut ev), &t).0, Answer::Continue);
    assert!(ev.process.comm.is_empty(), "the process was read for flags no rule names");
    // setns names the namespace file through the fd's link, as the sensor does.
    let ev = event_for(&notif("setns", [3, newns, 0, 0, 0, 0]), &t, None).unwrap();
    assert!(matches!(ev.kind, EventKind::Setns { fd: 3, ns_path: Some(ref p), .. } if p == "/etc"), "{ev:?}");
}

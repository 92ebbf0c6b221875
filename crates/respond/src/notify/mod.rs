//! Deny actions through seccomp user notification: `actions: [{deny:
//! {errno: EPERM}}]` makes a file open, an exec, or one of the syscalls
//! decided on their registers alone ([`SCALAR_SYSCALLS`]) fail with that
//! errno before it runs, and the process carries on.
//!
//! * The container runs under a profile whose only `SCMP_ACT_NOTIFY`
//!   entries are the syscalls the loaded deny rules need ([`DenyRules::syscalls`],
//!   [`notify_profile`]), with `listenerPath` naming rampart's socket.
//! * runc connects to that socket when it starts the container (and each
//!   `exec`), sends the OCI container process state (JSON) and the filter's
//!   listener fd (runtime-spec `seccompFd`, SCM_RIGHTS); see [`agent`].
//! * Each listener gets its own thread: receive a notification, read the
//!   path argument from the thread's memory (bounded), check the notification
//!   is still alive, build the event the rules see and evaluate the deny
//!   rules; answer the errno, or let the kernel run the call as asked
//!   (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Nothing is ever emulated.
//!
//! The path read is the argument, not the file: a second thread can swap it
//! after the check, and symlinks or `..` through them are not resolved
//! here. Each deny rule is therefore also a kill rule on the file actually
//! opened ([`crate::actions::kernel`], the `backstop`), checked by the
//! sensor at syscall exit.

pub mod agent;
pub mod sys;

use crate::actions::{ActionKind, Plans};
use model::{Container, Event, EventKind, OpenFlags, ProcessCtx};
use rules::{CompiledRule, EvalCtx, Ruleset};
use seccomp::{Action, ActionName, Arch, Profile, Syscall};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use sys::{Answer, Notif};

/// Where `rampart run` listens by default, and what profiles name.
pub const DEFAULT_SOCKET: &str = "/run/rampart/seccomp-notify.sock";

/// What a rule's event type needs notified. `execve` stands for both exec
/// calls (the sensor reports execveat as execve). Besides file opens and
/// execs, the syscalls whose event the agent builds from scalar arguments
/// alone ([`SCALAR_SYSCALLS`]): nothing read from the process's memory, so
/// nothing another thread can change after the check.
fn syscalls_of(evt_type: &str) -> &'static [&'static str] {
    match evt_type {
        "open" => &["open"],
        "openat" => &["openat"],
        "openat2" => &["openat2"],
        "creat" => &["creat"],
        "execve" | "execveat" => &["execve", "execveat"],
        "unshare" => &["unshare"],
        "setns" => &["setns"],
        "ptrace" => &["ptrace"],
        "bpf" => &["bpf"],
        _ => &[],
    }
}

/// The syscalls decided on register arguments only: unshare (flags), setns
/// (fd, nstype; the namespace file is the fd's link), ptrace (request,
/// pid), bpf (cmd). mount and umount2 are left out: their paths are
/// pointers. init_module and finit_module fail with ENOSYS on kernels
/// without module support, and are kill rules' business elsewhere.
pub const SCALAR_SYSCALLS: &[&str] = &["unshare", "setns", "ptrace", "bpf"];

/// The loaded rules with a syscall deny, and what the agent needs of them.
#[derive(Clone)]
pub struct DenyRules {
    ruleset: Arc<Ruleset>,
    /// Rule index -> errno.
    rules: Vec<(usize, i32)>,
    syscalls: BTreeSet<&'static str>,
    /// Deny rules the agent cannot decide, with why (they keep only the
    /// backstop).
    pub not_enforced: Vec<(String, String)>,
}

impl std::fmt::Debug for DenyRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenyRules").field("rules", &self.rules).field("syscalls", &self.syscalls).finish()
    }
}

impl DenyRules {
    /// The enabled rules with `{deny: {errno: ...}}` and no dry run (a dry
    /// run never denies).
    pub fn new(ruleset: Arc<Ruleset>, plans: &Plans, dry_run: bool) -> DenyRules {
        let mut rules = Vec::new();
        let mut syscalls = BTreeSet::new();
        let mut not_enforced = Vec::new();
        for (i, rule) in ruleset.rules().iter().enumerate() {
            let Some(plan) = plans.get(&rule.name) else { continue };
            let Some(errno) = plan.actions.iter().find_map(|a| match a {
                ActionKind::DenySyscall { errno, .. } => Some(*errno),
                _ => None,
            }) else {
                continue;
            };
            let why = if !rule.enabled {
                Some("disabled".to_string())
            } else if dry_run || plan.dry_run {
                Some("dry run".to_string())
            } else {
                match &rule.evt_types {
                    None => Some("no event type in the condition (it would stop every syscall)".into()),
                    Some(types) => {
                        let (known, other): (Vec<&String>, Vec<&String>) =
                            types.iter().partition(|t| !syscalls_of(t).is_empty());
                        if !other.is_empty() {
                            let o: Vec<&str> = other.iter().map(|s| s.as_str()).collect();
                            let pointers = if o
                                .iter()
                                .any(|t| t.starts_with("mount") || t.starts_with("umount"))
                            {
                                "; mount and umount take their paths as pointers, which another thread can change after the check: use a kill rule"
                            } else {
                                ""
                            };
                            Some(format!(
                                "the agent decides file opens, execs and {} only, not {}{pointers}",
                                SCALAR_SYSCALLS.join(", "),
                                o.join(", ")
                            ))
                        } else {
                            known.iter().for_each(|t| syscalls.extend(syscalls_of(t)));
                            None
                        }
                    }
                }
            };
            match why {
                Some(w) => not_enforced.push((rule.name.clone(), w)),
                None => rules.push((i, errno)),
            }
        }
        DenyRules { ruleset, rules, syscalls, not_enforced }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The syscalls a notify profile must send to the agent, and no more.
    pub fn syscalls(&self) -> &BTreeSet<&'static str> {
        &self.syscalls
    }

    /// Whether some deny rule may match `ev`, judged by its tests on the
    /// call alone (path, event type, arguments: they need nothing of the
    /// process): when none may, the agent answers without reading `/proc`.
    pub fn may_match(&self, ev: &Event) -> bool {
        const CALL_FIELDS: &[&str] =
            &["fd.name", "fd.directory", "fd.filename", "evt.type", "evt.arg", "evt.rawarg", "evt.args"];
        let ctx = EvalCtx::default();
        self.rules.iter().any(|&(i, _)| {
            let rule = &self.ruleset.rules()[i];
            let typed = rule
                .evt_types
                .as_ref()
                .is_none_or(|t| t.iter().any(|t| Some(t.as_str()) == ev.syscall.as_deref()));
            typed
                && rule.conjuncts().iter().all(|c| {
                    let f = c.fields();
                    f.is_empty() || !f.iter().all(|f| CALL_FIELDS.contains(f)) || c.eval(ev, &ctx)
                })
        })
    }

    /// The first deny rule matching `ev`, with its errno.
    pub fn decide(&self, ev: &Event) -> Option<(&CompiledRule, i32)> {
        let ctx = EvalCtx::default();
        self.rules.iter().find_map(|&(i, errno)| {
            let rule = &self.ruleset.rules()[i];
            rule.matches(ev, &ctx).then_some((rule, errno))
        })
    }

    /// `rules check`'s lines: the mechanism of each deny rule.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for &(i, errno) in &self.rules {
            let rule = &self.ruleset.rules()[i];
            let types: Vec<&str> = rule.evt_types.iter().flatten().map(|s| s.as_str()).collect();
            lines.push(format!(
                "deny (errno {errno}) by the seccomp agent, in containers under the notify profile: {} ({})",
                rule.name,
                types.join(",")
            ));
        }
        for (rule, why) in &self.not_enforced {
            lines.push(format!("deny not enforced by the seccomp agent: {rule} ({why})"));
        }
        lines
    }
}

/// A profile sending the deny rules' syscalls to `listener`: on top of
/// `base`, or allowing everything else. On a base, a syscall the base does
/// not allow stays as the base has it (already refused); one the base
/// allows unconditionally is notified instead; one it allows only under
/// argument conditions is an error (the notify entry would widen or narrow
/// it).
pub fn notify_profile(
    syscalls: &BTreeSet<&'static str>,
    base: Option<Profile>,
    listener: &str,
) -> Result<Profile, String> {
    if syscalls.is_empty() {
        return Err("no loaded rule has a syscall deny (actions: [{deny: {errno: EPERM}}])".into());
    }
    let mut p = base.unwrap_or_else(|| {
        // The native family, as Docker's default lists it: 32-bit programs
        // keep working, and their calls come to the agent too.
        let mut p = Profile::new(Action::Allow);
        let family: &[Arch] = match Arch::native() {
            Arch::X86_64 | Arch::X86 | Arch::X32 => &[Arch::X86_64, Arch::X86, Arch::X32],
            Arch::Aarch64 | Arch::Arm => &[Arch::Aarch64, Arch::Arm],
        };
        p.architectures = family.iter().map(|&a| seccomp::profile::ArchName::from_arch(a)).collect();
        p
    });
    if p.default_action == ActionName::Notify {
        return Err("the base profile's default action is SCMP_ACT_NOTIFY".into());
    }
    let mut notify = Vec::new();
    for &name in syscalls {
        let mut listed_allow = false;
        let mut listed_other = false;
        for s in &mut p.syscalls {
            if !s.all_names().any(|n| n == name) {
                continue;
            }
            let allows = s.resolved_action() == Action::Allow;
            if allows && !s.args.is_empty() {
                return Err(format!("the base profile allows {name} under argument conditions"));
            }
            let filtered = |f: &Option<seccomp::Filter>| f.as_ref().is_some_and(|f| !f.is_empty());
            if allows && (filtered(&s.includes) || filtered(&s.excludes)) {
                return Err(format!("the base profile allows {name} under includes/excludes"));
            }
            if allows {
                listed_allow = true;
                s.names.retain(|n| n != name);
                if s.name.as_deref() == Some(name) {
                    s.name = None;
                }
            } else {
                listed_other = true;
            }
        }
        let default_allows = p.resolved_default() == Action::Allow;
        if listed_allow || (!listed_other && default_allows) {
            notify.push(name);
        }
    }
    p.syscalls.retain(|s| s.all_names().next().is_some());
    if notify.is_empty() {
        return Err("the base profile already refuses every syscall the deny rules need".into());
    }
    let mut entry = Syscall::new(notify, Action::Notify);
    entry.comment = Some("rampart: the deny rules' syscalls, decided by rampart's seccomp agent".into());
    p.syscalls.push(entry);
    p.listener_path = Some(listener.to_string());
    p.validate().map_err(|e| e.to_string())?;
    Ok(p)
}

/// What a notified syscall is about, from its number and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    /// Path argument index, dirfd argument index (for *at), open flags
    /// argument (index, or openat2's `how` pointer).
    Open {
        name: &'static str,
        path: usize,
        dirfd: Option<usize>,
        flags: Flags,
    },
    Exec {
        path: usize,
        dirfd: Option<usize>,
    },
    /// One of [`SCALAR_SYSCALLS`].
    Scalar(&'static str),
    /// Not one the agent decides: the kernel runs it.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flags {
    Arg(usize),
    /// openat2: `struct open_how *` (flags are its first u64).
    How(usize),
    /// creat: O_CREAT|O_WRONLY|O_TRUNC.
    Creat,
}

fn arch_of(audit_arch: u32, nr: i32) -> Option<(Arch, u32)> {
    let nr = nr as u32;
    match audit_arch {
        seccomp::arch::AUDIT_ARCH_X86_64 if nr & seccomp::arch::X32_SYSCALL_BIT != 0 => Some((Arch::X32, nr)),
        seccomp::arch::AUDIT_ARCH_X86_64 => Some((Arch::X86_64, nr)),
        seccomp::arch::AUDIT_ARCH_I386 => Some((Arch::X86, nr)),
        seccomp::arch::AUDIT_ARCH_AARCH64 => Some((Arch::Aarch64, nr)),
        seccomp::arch::AUDIT_ARCH_ARM => Some((Arch::Arm, nr)),
        _ => None,
    }
}

fn call_of(n: &Notif) -> Call {
    let Some(name) = arch_of(n.arch, n.nr).and_then(|(a, nr)| seccomp::syscalls::name(a, nr)) else {
        return Call::Other;
    };
    match name {
        "open" => Call::Open { name: "open", path: 0, dirfd: None, flags: Flags::Arg(1) },
        "openat" => Call::Open { name: "openat", path: 1, dirfd: Some(0), flags: Flags::Arg(2) },
        "openat2" => Call::Open { name: "openat2", path: 1, dirfd: Some(0), flags: Flags::How(2) },
        "creat" => Call::Open { name: "creat", path: 0, dirfd: None, flags: Flags::Creat },
        "execve" => Call::Exec { path: 0, dirfd: None },
        "execveat" => Call::Exec { path: 1, dirfd: Some(0) },
        other => SCALAR_SYSCALLS.iter().find(|&&s| s == other).map_or(Call::Other, |&s| Call::Scalar(s)),
    }
}

/// `rel` made absolute against `base` and normalised lexically (`.`, `..`,
/// repeated slashes): what the process named, not what a symlink leads to.
pub fn normalize(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if rel.starts_with('/') { [rel, ""] } else { [base, rel] };
    for piece in joined.iter().flat_map(|s| s.split('/')) {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// How the agent reads a notifying thread: the real one reads `/proc`; tests
/// give a fake.
pub trait Target {
    fn string(&self, addr: u64) -> std::io::Result<Vec<u8>>;
    fn u64_at(&self, addr: u64) -> std::io::Result<u64>;
    /// `cwd`, `exe` or `fd/N` of the thread.
    fn link(&self, name: &str) -> Option<String>;
    fn process(&self) -> ProcessCtx;
}

/// The event the deny rules see for a notification; `None` when the call is
/// not one the agent decides, or its path cannot be read (the kernel then
/// runs it, and meets the same fault, or the backstop).
pub fn event_for(n: &Notif, t: &dyn Target, container: Option<Arc<Container>>) -> Option<Event> {
    let (path_arg, dirfd_arg) = match call_of(n) {
        Call::Open { path, dirfd, .. } | Call::Exec { path, dirfd } => (path, dirfd),
        Call::Scalar(name) => return Some(event(name, scalar_kind(name, n, t)?, n, container)),
        Call::Other => return None,
    };
    let raw = t.string(n.args[path_arg]).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let base = if raw.starts_with('/') {
        String::new()
    } else {
        match dirfd_arg.map(|i| n.args[i] as i32) {
            None | Some(libc::AT_FDCWD) => t.link("cwd")?,
            Some(fd) if fd >= 0 => t.link(&format!("fd/{fd}"))?,
            Some(_) => return None,
        }
    };
    let path = normalize(&base, &raw);
    let raw_path = (path != raw).then_some(raw);
    let (syscall, kind) = match call_of(n) {
        Call::Open { name, flags, .. } => {
            let raw_flags = match flags {
                Flags::Arg(i) => n.args[i] as u32,
                Flags::How(i) => t.u64_at(n.args[i]).ok()? as u32,
                Flags::Creat => (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u32,
            };
            (name, EventKind::Open { path, flags: OpenFlags::from_raw(raw_flags), mode: 0, raw_path })
        }
        _ => (
            "execve",
            EventKind::Exec {
                filename: raw_path.unwrap_or_else(|| path.clone()),
                exe: path,
                argv: Vec::new(),
                argv_truncated: false,
                cwd: t.link("cwd").unwrap_or_default(),
                tty: None,
                cap_effective: 0,
                cap_permitted: 0,
                exe_from_memfd: false,
                exe_upper_layer: None,
                details: None,
            },
        ),
    };
    Some(event(syscall, kind, n, container))
}

fn event(syscall: &'static str, kind: EventKind, n: &Notif, container: Option<Arc<Container>>) -> Event {
    Event {
        ts_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        // Filled by `decide` only when a rule may match.
        process: ProcessCtx { pid: n.tid, tid: n.tid, ..Default::default() },
        container,
        ret: None,
        syscall: Some(syscall.into()),
        kind,
    }
}

/// The event of a [`SCALAR_SYSCALLS`] call, from its registers (as the
/// sensor reports the same call).
fn scalar_kind(name: &str, n: &Notif, t: &dyn Target) -> Option<EventKind> {
    let a = n.args;
    Some(match name {
        "unshare" => EventKind::Unshare { flags: a[0] },
        "setns" => {
            let fd = a[0] as i32;
            let ns_path = (fd >= 0).then(|| t.link(&format!("fd/{fd}"))).flatten();
            EventKind::Setns { fd, ns_path, nstype: a[1] as u32 }
        }
        "ptrace" => EventKind::Ptrace { request: a[0] as i64, target_pid: a[1] as u32 },
        "bpf" => EventKind::Bpf { cmd: a[0] as u32 },
        _ => return None,
    })
}

/// The answer for one notification, and the rule behind a denial. The
/// process is read from `t` only when a rule's path tests hold.
pub fn decide(
    rules: &DenyRules,
    ev: Option<&mut Event>,
    t: &dyn Target,
) -> (Answer, Option<(String, model::Priority)>) {
    let Some(ev) = ev.filter(|ev| rules.may_match(ev)) else {
        return (Answer::Continue, None);
    };
    ev.process = t.process();
    match rules.decide(ev) {
        Some((rule, errno)) => (Answer::Deny(errno), Some((rule.name.clone(), rule.priority))),
        None => (Answer::Continue, None),
    }
}

/// The live thread behind a notification, read through `/proc/<tid>`.
pub struct ProcTarget {
    pub tid: u32,
}

impl Target for ProcTarget {
    fn string(&self, addr: u64) -> std::io::Result<Vec<u8>> {
        sys::read_c_string(self.tid, addr, sys::PATH_MAX - 1)
    }

    fn u64_at(&self, addr: u64) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        sys::read_bytes(self.tid, addr, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    fn link(&self, name: &str) -> Option<String> {
        sys::read_link(Path::new(&format!("/proc/{}/{name}", self.tid)))
    }

    fn process(&self) -> ProcessCtx {
        let dir = format!("/proc/{}", self.tid);
        let mut p = ProcessCtx { pid: self.tid, tid: self.tid, auid: u32::MAX, ..Default::default() };
        if let Some(status) = sys::read_small(Path::new(&format!("{dir}/status")), 8192) {
            let status = String::from_utf8_lossy(&status);
            let field = |key: &str| -> Vec<u32> {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.split_whitespace().filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default()
            };
            if let [tgid] = field("Tgid:")[..] {
                p.pid = tgid;
            }
            if let [ppid] = field("PPid:")[..] {
                p.ppid = ppid;
            }
            if let [uid, euid, ..] = field("Uid:")[..] {
                (p.uid, p.euid) = (uid, euid);
            }
            if let [gid, egid, ..] = field("Gid:")[..] {
                (p.gid, p.egid) = (gid, egid);
            }
            // NSpid: ours first, the innermost namespace's last.
            p.vpid = field("NSpid:").last().copied().unwrap_or(p.pid);
        }
        if let Some(comm) = sys::read_small(Path::new(&format!("{dir}/comm")), 64) {
            p.comm = String::from_utf8_lossy(&comm).trim_end_matches('\n').into();
        }
        p.exe = self.link("exe").unwrap_or_default().into();
        if let Some(cmd) = sys::read_small(Path::new(&format!("{dir}/cmdline")), 4096) {
            let args: Vec<String> = cmd
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into())
                .collect();
            p.cmdline = args.join(" ").into();
        }
        p
    }
}

/// The container a runtime's message describes, with what the registry
/// knows of it when it knows it.
pub fn container_of(state: &agent::ProcessState, known: Option<Arc<Container>>) -> Arc<Container> {
    if let Some(c) = known {
        return c;
    }
    let labels: BTreeMap<String, String> =
        state.state.annotations.iter().take(256).map(|(k, v)| (k.clone(), v.clone())).collect();
    Arc::new(Container {
        id: state.state.id.clone(),
        name: state.state.id.clone(),
        labels,
        ..Default::default()
    })
}

/// A prevention mechanism and whether this host has it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mechanism {
    pub name: &'static str,
    pub available: bool,
    pub detail: String,
}

/// What this kernel offers for prevention beyond the sensor's kill (for
/// `rampart status`).
pub fn mechanisms() -> Vec<Mechanism> {
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    let notify = actions.split_whitespace().any(|a| a == "user_notif");
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let bpf_lsm = lsm.trim().split(',').any(|l| l == "bpf");
    vec![
        Mechanism {
            name: "seccomp notify (deny)",
            available: notify,
            detail: if notify {
                "deny rules answered by rampart's agent in containers run with its notify profile (runc >= 1.1 passes listenerPath)".into()
            } else {
                format!("the kernel's seccomp actions lack user_notif ({:?})", actions.trim())
            },
        },
        Mechanism {
            name: "BPF-LSM (deny)",
            available: false,
            detail: if bpf_lsm {
                "bpf is an active LSM, but rampart has no BPF-LSM programs yet: deny goes through seccomp notify".into()
            } else if lsm.is_empty() {
                "/sys/kernel/security/lsm unreadable (securityfs not mounted): cannot tell; rampart has no BPF-LSM programs either".into()
            } else {
                format!(
                    "bpf is not among the active LSMs ({}); it needs CONFIG_BPF_LSM and lsm=...,bpf at boot",
                    lsm.trim()
                )
            },
        },
    ]
}

#[cfg(test)]
mod tests;

//! The seccomp profile: the syscalls the recording saw, plus what the container
//! runtime itself makes after installing the filter and before the workload
//! starts, grouped with a comment each; every other syscall fails with EPERM.

use crate::recording::Recording;
use crate::validate::{comment_text, yaml_quote};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// What runc makes between installing the filter and exec'ing the workload
/// (checked empirically: without any one of the first group a container does not
/// start), plus the Go runtime calls its threads make at any moment.
pub const RUNTIME_SYSCALLS: &[&str] = &[
    // measured: the container fails to start without each of these
    "arch_prctl",
    "capget",
    "capset",
    "chdir",
    "close",
    "execve",
    "fstat",
    "fstatfs",
    "futex",
    "getcwd",
    "getdents64",
    "getppid",
    "mprotect",
    "newfstatat",
    "openat",
    "prctl",
    "read",
    "setgid",
    "setgroups",
    "setuid",
    "write",
    // the Go runtime of runc's init, timing-dependent
    "clone",
    "epoll_pwait",
    "exit",
    "exit_group",
    "getpid",
    "gettid",
    "madvise",
    "mmap",
    "munmap",
    "nanosleep",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",
    "sigaltstack",
    "tgkill",
];

/// Groups of syscalls, for the comments: (group, why a workload makes them,
/// names or `prefix*`).
const GROUPS: &[(&str, &str, &[&str])] = &[
    (
        "files",
        "reads, writes and manages files and descriptors",
        &[
            "open",
            "openat",
            "openat2",
            "creat",
            "read",
            "write",
            "pread64",
            "pwrite64",
            "readv",
            "writev",
            "preadv*",
            "pwritev*",
            "close",
            "close_range",
            "lseek",
            "_llseek",
            "stat*",
            "fstat*",
            "lstat*",
            "newfstatat",
            "statx",
            "access",
            "faccessat*",
            "getdents*",
            "mkdir*",
            "rmdir",
            "unlink*",
            "rename*",
            "link*",
            "symlink*",
            "readlink*",
            "chmod",
            "fchmod*",
            "chown*",
            "fchown*",
            "lchown*",
            "truncate*",
            "ftruncate*",
            "fsync",
            "fdatasync",
            "sync*",
            "fcntl*",
            "dup*",
            "pipe*",
            "ioctl",
            "chdir",
            "fchdir",
            "getcwd",
            "umask",
            "utime*",
            "futimesat",
            "sendfile*",
            "splice",
            "tee",
            "copy_file_range",
            "fadvise64*",
            "fallocate",
            "flock",
            "statfs*",
            "fstatfs*",
            "inotify*",
            "fanotify*",
            "mknod*",
            "*xattr",
            "poll",
            "ppoll*",
            "select",
            "_newselect",
            "pselect6*",
            "epoll*",
            "eventfd*",
            "memfd_create",
            "name_to_handle_at",
            "chroot",
            "mount*",
            "umount*",
            "pivot_root",
            "io_*",
            "readahead",
            "vmsplice",
            "fsopen",
            "fsmount",
            "fsconfig",
            "fspick",
            "open_tree",
            "move_mount",
        ],
    ),
    (
        "memory",
        "manages its memory",
        &[
            "mmap*",
            "munmap",
            "mprotect",
            "brk",
            "madvise",
            "mremap",
            "msync",
            "mincore",
            "mlock*",
            "munlock*",
            "membarrier",
            "pkey_*",
            "set_mempolicy*",
            "get_mempolicy",
            "mbind",
            "process_madvise",
        ],
    ),
    (
        "processes",
        "starts, waits for and describes processes and threads",
        &[
            "clone*",
            "fork",
            "vfork",
            "execve*",
            "exit",
            "exit_group",
            "wait4",
            "waitid",
            "waitpid",
            "getpid",
            "getppid",
            "gettid",
            "set_tid_address",
            "*robust_list",
            "futex*",
            "arch_prctl",
            "prctl",
            "sched_*",
            "rseq",
            "setpgid",
            "getpgid",
            "getpgrp",
            "setsid",
            "getsid",
            "prlimit64",
            "getrlimit",
            "setrlimit",
            "ugetrlimit",
            "getrusage",
            "personality",
            "uname",
            "sysinfo",
            "times",
            "getpriority",
            "setpriority",
            "pidfd_*",
            "getcpu",
            "kcmp",
            "unshare",
            "setns",
            "ptrace",
            "process_vm_*",
            "ioprio_*",
        ],
    ),
    (
        "signals and timers",
        "handles signals, sleeps and keeps time",
        &[
            "rt_sig*",
            "sigaltstack",
            "signalfd*",
            "kill",
            "tkill",
            "tgkill",
            "pause",
            "alarm",
            "*itimer",
            "timer_*",
            "timerfd_*",
            "clock_*",
            "gettimeofday",
            "time",
            "nanosleep",
            "sigreturn",
            "sigaction",
            "sigprocmask",
            "sigsuspend",
            "restart_syscall",
        ],
    ),
    (
        "identity",
        "reads or changes its user, groups and capabilities",
        &[
            "getuid*",
            "geteuid*",
            "getgid*",
            "getegid*",
            "getres*id*",
            "setuid*",
            "setgid*",
            "setre*id*",
            "setres*id*",
            "setfsuid*",
            "setfsgid*",
            "setgroups*",
            "getgroups*",
            "capget",
            "capset",
        ],
    ),
    (
        "network",
        "uses sockets",
        &[
            "socket",
            "socketpair",
            "socketcall",
            "connect",
            "accept",
            "accept4",
            "bind",
            "listen",
            "send",
            "recv",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "getsockname",
            "getpeername",
            "setsockopt",
            "getsockopt",
        ],
    ),
    ("ipc", "uses System V or POSIX IPC", &["shm*", "sem*", "msg*", "mq_*", "ipc"]),
];

/// Glob match where `*` stands for any run of characters.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else { return false };
            // Let `*` take 0..=len characters and match the tail against the rest.
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && pattern_matches(tail, &rest[i..]))
        }
    }
}

/// The group a syscall belongs to, and why a workload makes such calls.
pub fn group_of(name: &str) -> (&'static str, &'static str) {
    for (group, why, patterns) in GROUPS {
        if patterns.iter().any(|p| pattern_matches(p, name)) {
            return (group, why);
        }
    }
    ("other", "other system facilities")
}

/// One allow entry: its comment and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallGroup {
    pub comment: String,
    pub names: Vec<String>,
}

/// The allowed syscalls, grouped, in output order: the workload's groups (by
/// group name), then what only the runtime needs.
pub fn allowed_groups(rec: &Recording) -> Vec<SyscallGroup> {
    let observed: BTreeSet<&str> =
        rec.syscalls.iter().chain(rec.compat_syscalls.iter()).map(String::as_str).collect();
    let mut groups: BTreeMap<&str, (&str, Vec<String>)> = BTreeMap::new();
    for name in &observed {
        let (group, why) = group_of(name);
        groups.entry(group).or_insert((why, Vec::new())).1.push(name.to_string());
    }
    let workload = workload_name(rec);
    let mut out: Vec<SyscallGroup> = groups
        .into_iter()
        .map(|(group, (why, names))| SyscallGroup {
            comment: format!("{group}: {workload} {why} (observed while recording)"),
            names,
        })
        .collect();
    let runtime: Vec<String> = RUNTIME_SYSCALLS
        .iter()
        .filter(|n| !observed.contains(*n))
        .map(|n| n.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !runtime.is_empty() {
        out.push(SyscallGroup {
            comment: "runtime: made by the container runtime (runc) after it installs this filter and before the workload starts".into(),
            names: runtime,
        });
    }
    out
}

fn workload_name(rec: &Recording) -> String {
    let names: Vec<&str> =
        rec.containers.iter().map(|c| c.name.trim_start_matches('/')).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        "the workload".into()
    } else {
        names.join(", ")
    }
}

/// The `SCMP_ARCH_*` names the profile covers: the recording's native
/// architecture, and its 32-bit one when compat syscalls were seen.
pub fn architectures(rec: &Recording) -> Vec<String> {
    let (native, compat) = match rec.arch.as_str() {
        "aarch64" => ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
        _ => ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"),
    };
    let mut arches = vec![native.to_string()];
    if !rec.compat_syscalls.is_empty() {
        arches.push(compat.to_string());
    }
    arches
}

/// EPERM: what a denied syscall returns (rather than killing the workload).
pub const DENY_ERRNO: u32 = 1;

/// The Docker/OCI seccomp profile (JSON, keys sorted, deterministic).
pub fn docker_profile(rec: &Recording) -> Value {
    let syscalls: Vec<Value> = allowed_groups(rec)
        .into_iter()
        .map(|g| json!({ "names": g.names, "action": "SCMP_ACT_ALLOW", "comment": g.comment }))
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": DENY_ERRNO,
        "architectures": architectures(rec),
        "syscalls": syscalls,
    })
}

/// The same profile as a Kubernetes `SeccompProfile` of the
/// security-profiles-operator (`security-profiles-operator.x-k8s.io/v1beta1`).
pub fn kubernetes_seccomp_profile(rec: &Recording, name: &str) -> String {
    let mut out = String::new();
    // Recorded names only in escaped comments and quoted scalars; syscall
    // names are known names (checked by `validate`).
    let _ = writeln!(
        out,
        "# SeccompProfile generated by rampart from a recording of {}.",
        comment_text(&workload_name(rec))
    );
    let _ = writeln!(out, "apiVersion: security-profiles-operator.x-k8s.io/v1beta1");
    let _ = writeln!(out, "kind: SeccompProfile");
    let _ = writeln!(out, "metadata:\n  name: {}", yaml_quote(name));
    let _ = writeln!(out, "spec:");
    let _ = writeln!(out, "  defaultAction: SCMP_ACT_ERRNO");
    let _ = writeln!(out, "  architectures: [{}]", architectures(rec).join(", "));
    let _ = writeln!(out, "  syscalls:");
    for g in allowed_groups(rec) {
        let _ = writeln!(out, "    # {}", comment_text(&g.comment));
        let _ = writeln!(out, "    - action: SCMP_ACT_ALLOW");
        let _ = writeln!(out, "      names: [{}]", g.names.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(names: &[&str]) -> Recording {
        Recording {
            arch: "x86_64".into(),
            syscalls: names.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn groups_are_sorted_and_runtime_fills_the_rest() {
        let r = rec(&["read", "socket", "accept4", "getuid", "mmap", "bpf", "wait4", "rt_sigaction"]);
        let groups = allowed_groups(&r);
        let comments: Vec<&str> = groups.iter().map(|g| g.comment.split(':').next().unwrap()).collect();
        assert_eq!(
            comments,
            vec![
                "files",
                "identity",
                "memory",
                "network",
                "other",
                "processes",
                "signals and timers",
                "runtime"
            ]
        );
        assert_eq!(groups[3].names, vec!["accept4", "socket"]);
        assert_eq!(groups[4].names, vec!["bpf"]);
        let runtime = &groups.last().unwrap().names;
        assert!(runtime.contains(&"execve".to_string()));
        assert!(!runtime.contains(&"read".to_string()), "observed names are not repeated");
        let mut sorted = runtime.clone();
        sorted.sort();
        assert_eq!(&sorted, runtime);
    }

    #[test]
    fn profile_shape_is_docker_compatible() {
        let p = docker_profile(&rec(&["read"]));
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        assert_eq!(p["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(p["syscalls"][0]["names"], json!(["read"]));
        assert_eq!(p["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
        // Deterministic: the same recording gives byte-identical output.
        assert_eq!(p.to_string(), docker_profile(&rec(&["read"])).to_string());
        let k8s = kubernetes_seccomp_profile(&rec(&["read"]), "web");
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&k8s).unwrap();
        assert_eq!(v["kind"], "SeccompProfile");
        assert_eq!(v["spec"]["syscalls"][0]["names"][0], "read");
    }

    #[test]
    fn generated_profile_compiles_and_denies_the_unrecorded() {
        use seccomp::{check, compile_source, Action, Arch, CompileOptions};
        let r = rec(&["read", "accept4", "getuid"]);
        let text = serde_json::to_string_pretty(&docker_profile(&r)).unwrap();
        let (_, policy) =
            compile_source(&text, "generated.json", &CompileOptions::new(Arch::X86_64)).expect("compiles");
        let program = policy.to_program().expect("bpf");
        let action = |name: &str| check(&policy, &program, Arch::X86_64, name, [0; 6]).unwrap().action;
        for allowed in ["read", "accept4", "getuid", "execve", "futex"] {
            assert_eq!(action(allowed), Action::Allow, "{allowed}");
        }
        for denied in ["setpriority", "reboot", "mount", "ptrace", "bpf"] {
            assert_eq!(action(denied), Action::Errno(DENY_ERRNO as u16), "{denied}");
        }
        // Every runtime name exists on x86_64 (a typo would make runc refuse it).
        for name in RUNTIME_SYSCALLS {
            assert!(seccomp::syscalls::number(Arch::X86_64, name).is_some(), "{name}");
        }
    }

    #[test]
    fn patterns() {
        assert_eq!(group_of("fstatfs").0, "files");
        assert_eq!(group_of("setresuid").0, "identity");
        assert_eq!(group_of("getxattr").0, "files");
        assert_eq!(group_of("get_robust_list").0, "processes");
        assert_eq!(group_of("setitimer").0, "signals and timers");
        assert_eq!(group_of("getresgid").0, "identity");
        assert_eq!(group_of("bpf").0, "other");
        assert!(pattern_matches("*xattr", "lgetxattr") && !pattern_matches("*xattr", "xattrs"));
    }
}

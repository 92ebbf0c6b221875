//! `rampart seccomp ...` end to end: the real binary, real profiles, and for
//! `exec` the real kernel (filters installed with seccomp(2)).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const RAMPART: &str = env!("CARGO_BIN_EXE_rampart");

fn docker_profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seccomp/tests/fixtures/docker-default.json")
}

/// A fresh scratch directory under the system temp dir.
fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rampart-seccomp-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_profile(dir: &Path, name: &str, json: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, json).unwrap();
    p
}

fn rampart(args: &[&str]) -> Output {
    Command::new(RAMPART).args(args).env("RAMPART_LOG", "warn").output().expect("running rampart")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn compile_prints_count_listing_and_raw_bytes() {
    let dir = scratch();
    let profile = docker_profile();
    let p = profile.to_str().unwrap();
    let out = rampart(&["seccomp", "compile", p, "--arch", "x86_64"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let count: usize = summary.split(": ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
    assert!(summary.contains("instructions for x86_64, x86, x32"), "{summary}");
    assert!((300..4096).contains(&count), "{summary}");

    let bin = dir.join("filter.bpf");
    let out = rampart(&["seccomp", "compile", p, "--disasm", "-o", bin.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert_eq!(listing.lines().count(), count);
    assert!(listing.lines().next().unwrap().contains("ld [4]"), "{listing}");
    assert!(listing.contains("; AUDIT_ARCH_X86_64") && listing.contains("ret ERRNO(1)"));
    assert_eq!(std::fs::metadata(&bin).unwrap().len() as usize, count * 8, "struct sock_filter is 8 bytes");
    // The bytes are the program the listing shows.
    let prog = seccomp::Program::from_bytes(&std::fs::read(&bin).unwrap()).unwrap();
    assert_eq!(seccomp::disassemble(&prog), listing);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn check_answers_with_the_rule_and_caps() {
    let profile = docker_profile();
    let p = profile.to_str().unwrap();
    let out = rampart(&["seccomp", "check", p, "--syscall", "clone", "--arg", "0=0x10000000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("clone(0x10000000, 0x0, 0x0, 0x0, 0x0, 0x0) on x86_64: ERRNO(1) EPERM"), "{s}");
    assert!(s.contains("ALLOW when arg0 & 0x7e020000 == 0x0, else ERRNO(1)"), "{s}");

    let out = rampart(&[
        "seccomp",
        "check",
        p,
        "--syscall",
        "clone",
        "--arg",
        "0=0x10000000",
        "--caps",
        "CAP_SYS_ADMIN",
    ]);
    let s = text(&out.stdout);
    assert!(s.contains("on x86_64: ALLOW"), "{s}");
    assert!(s.contains("rule: syscalls[15] at "), "{s}");

    let out = rampart(&["seccomp", "check", p, "--syscall", "personality", "--arg", "0=8", "--trace"]);
    let s = text(&out.stdout);
    assert!(s.contains("on x86_64: ALLOW") && s.contains("path through the filter"), "{s}");
    assert!(s.lines().last().unwrap().contains("ret ALLOW"), "{s}");

    let out = rampart(&["seccomp", "check", p, "--syscall", "read", "--arch", "mips"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unsupported architecture \"mips\""), "{}", text(&out.stderr));
    let out = rampart(&["seccomp", "check", p, "--syscall", "readd"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown syscall"), "{}", text(&out.stderr));
}

#[test]
fn diff_reports_argument_conditions_and_exit_status() {
    let dir = scratch();
    let a = write_profile(
        &dir,
        "a.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
            {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    let b = write_profile(
        &dir,
        "b.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
            {"names": ["read", "write", "exit_group", "clone"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    let out = rampart(&["seccomp", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("  clone\n    A: ALLOW when arg0 & 0x7e020000 == 0x0, else ERRNO(1)\n    B: ALLOW\n"),
        "{s}"
    );
    assert!(s.contains("A ERRNO(1), B ALLOW (one runs it, the other does not)"), "{s}");
    assert!(!s.contains("  read\n"), "{s}");

    let out = rampart(&["seccomp", "diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("no differences"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn malformed_profiles_say_where_and_what() {
    let dir = scratch();
    let cases = [
        (
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALOW\"}\n  ]\n}\n",
            ":4:",
            "unknown variant `SCMP_ACT_ALOW`",
        ),
        (
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\", \"getpidd\"], \"action\": \"SCMP_ACT_ALLOW\"}\n  ]\n}\n",
            ":4:24:",
            "unknown syscall \"getpidd\"",
        ),
        (
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1}\n  ]\n}\n",
            ":4:5:",
            "syscall \"read\": errnoRet is 1 but the action is SCMP_ACT_ALLOW",
        ),
        (
            "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n    {\"names\": [\"mmap\"], \"action\": \"SCMP_ACT_ALLOW\",\n     \"args\": [{\"index\": 7, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}\n  ]\n}\n",
            ":4:5:",
            "syscall \"mmap\": args[0].index is 7",
        ),
        ("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [\n", ":4:", "EOF while parsing"),
    ];
    for (i, (json, pos, want)) in cases.iter().enumerate() {
        let p = write_profile(&dir, &format!("bad{i}.json"), json);
        let out = rampart(&["seccomp", "compile", p.to_str().unwrap()]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        let prefix = format!("rampart: {}{pos}", p.display());
        assert!(err.starts_with(&prefix), "want {prefix:?} in {err}");
        assert!(err.contains(want), "want {want:?} in {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn exec_errno_makes_the_command_see_eperm() {
    let dir = scratch();
    let profile = write_profile(
        &dir,
        "deny-mkdir.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    let target = dir.join("made");
    let out = rampart(&[
        "seccomp",
        "exec",
        "--profile",
        profile.to_str().unwrap(),
        "--",
        "mkdir",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "mkdir's own exit status");
    assert!(text(&out.stderr).contains("Operation not permitted"), "{}", text(&out.stderr));
    assert!(!target.exists());
    // Without the filter the same command works (the EPERM came from seccomp).
    assert!(Command::new("mkdir").arg(&target).status().unwrap().success());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn exec_kill_process_is_reported_as_sigsys() {
    let dir = scratch();
    let profile = write_profile(
        &dir,
        "kill-mkdir.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let target = dir.join("made");
    let out = rampart(&[
        "seccomp",
        "exec",
        "--profile",
        profile.to_str().unwrap(),
        "--",
        "mkdir",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSYS), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("killed by SIGSYS (31)"), "{}", text(&out.stderr));
    assert!(!target.exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn exec_strict_mode_dies_by_sigkill() {
    let out = rampart(&["seccomp", "exec", "--strict", "--", "/bin/true"]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGKILL));
    assert!(text(&out.stderr).contains("killed by SIGKILL (9)"), "{}", text(&out.stderr));
}

#[test]
fn exec_allowed_commands_run_and_keep_their_status() {
    let profile = docker_profile();
    let p = profile.to_str().unwrap();
    let out = rampart(&["seccomp", "exec", "--profile", p, "--", "sh", "-c", "echo hello from $(uname -s)"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from Linux\n");
    let out = rampart(&["seccomp", "exec", "--profile", p, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    // Docker's profile refuses unshare without CAP_SYS_ADMIN...
    let out = rampart(&["seccomp", "exec", "--profile", p, "--", "unshare", "--user", "true"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("Operation not permitted"), "{}", text(&out.stderr));
    // ...and allows it with the capability.
    let out =
        rampart(&["seccomp", "exec", "--profile", p, "--caps", "ALL", "--", "unshare", "--user", "true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

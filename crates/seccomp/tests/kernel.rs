//! Real-kernel tests: filters compiled by rampart, installed with seccomp(2),
//! doing what the simulator says. Each test forks; the child installs the
//! filter (only async-signal-safe calls after fork) and reports through a
//! pipe and its exit status.

use seccomp::exec::{self, Mode, Prepared};
use seccomp::{compile, syscalls, Action, Arch, CompileOptions, Profile, Program, SeccompData};
use std::os::unix::process::ExitStatusExt;

/// What became of a forked child: its exit code or killing signal, and
/// what it wrote to the pipe.
#[derive(Debug)]
struct Outcome {
    exit: Option<i32>,
    signal: Option<i32>,
    report: Vec<i64>,
}

/// Forks; the child runs `body` with the write end of a pipe and exits
/// with its return value. `body` must stay async-signal-safe (no allocation):
/// the test harness has other threads.
fn fork_child(body: impl FnOnce(i32) -> i32) -> Outcome {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only calls async-signal-safe functions before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        let code = body(fds[1]);
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: closing the parent's write end so EOF arrives when the child dies.
    unsafe { libc::close(fds[1]) };
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n as usize]);
    }
    // SAFETY: closing our read end.
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    let st = std::process::ExitStatus::from_raw(status);
    let report = bytes.chunks_exact(8).map(|c| i64::from_ne_bytes(c.try_into().unwrap())).collect();
    Outcome { exit: st.code(), signal: st.signal(), report }
}

/// Writes one i64 to the pipe (async-signal-safe).
fn report(fd: i32, v: i64) {
    let b = v.to_ne_bytes();
    // SAFETY: writing a local buffer to our pipe.
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
}

/// `syscall(nr, args...)` as the kernel sees it: the result, or -errno.
fn raw_syscall(nr: i64, a: [u64; 6]) -> i64 {
    // SAFETY: the syscalls used here take integers (or get stopped by the
    // filter before running); no memory is handed to the kernel.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        // SAFETY: reading errno right after the failing call.
        -i64::from(unsafe { *libc::__errno_location() })
    } else {
        r
    }
}

fn prepare(json: &str) -> (Prepared, Program) {
    let p = Profile::from_json_str(json, "kernel-test.json").unwrap();
    let prog = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap();
    (Prepared::new(&prog, &[]).unwrap(), prog)
}

#[test]
fn errno_rule_fails_the_call_with_that_errno() {
    let (filter, _) = prepare(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    );
    let out = fork_child(|fd| {
        if filter.install().is_err() {
            return 90;
        }
        report(fd, raw_syscall(libc::SYS_getpid, [0; 6]));
        report(fd, raw_syscall(libc::SYS_getppid, [0; 6]));
        report(fd, raw_syscall(libc::SYS_gettid, [0; 6]));
        0
    });
    assert_eq!(out.exit, Some(0), "{out:?}");
    assert_eq!(out.report[0], -i64::from(libc::EPERM));
    assert_eq!(out.report[1], -i64::from(libc::EACCES));
    assert!(out.report[2] > 0, "gettid is allowed: {out:?}");
}

#[test]
fn kill_process_dies_by_sigsys() {
    let (filter, _) = prepare(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let out = fork_child(|fd| {
        if filter.install().is_err() {
            return 90;
        }
        report(fd, 1);
        raw_syscall(libc::SYS_getpid, [0; 6]);
        report(fd, 2);
        0
    });
    assert_eq!(out.signal, Some(libc::SIGSYS), "{out:?}");
    assert_eq!(out.report, [1], "the child ran until getpid and not after");
}

#[test]
fn strict_mode_allows_write_and_kills_on_anything_else() {
    let out = fork_child(|fd| {
        if exec::enter_strict_mode().is_err() {
            return 90;
        }
        report(fd, 7); // write(2) is allowed in strict mode
        raw_syscall(libc::SYS_getpid, [0; 6]);
        report(fd, 8);
        0
    });
    assert_eq!(out.signal, Some(libc::SIGKILL), "{out:?}");
    assert_eq!(out.report, [7]);
}

#[test]
fn kernel_agrees_with_the_simulator_on_argument_comparisons() {
    // Only ERRNO actions (nothing runs), one errno per rule, on a syscall with
    // integer arguments; the kernel's answers for values around every
    // boundary must be the simulator's.
    let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 100, "syscalls": [
        {"names": ["write", "exit", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 101, "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 102, "args": [{"index": 0, "value": 4294967296, "op": "SCMP_CMP_GT"}, {"index": 1, "value": 7, "op": "SCMP_CMP_LE"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 102, "args": [{"index": 2, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}, {"index": 3, "value": 18446744069414584320, "valueTwo": 8589934592, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 103, "args": [{"index": 4, "value": 18446744073709551615, "op": "SCMP_CMP_LT"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 104, "args": [{"index": 5, "value": 12, "op": "SCMP_CMP_NE"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 105, "args": [{"index": 5, "value": 12, "op": "SCMP_CMP_GE"}]}]}"#;
    let (filter, prog) = prepare(json);
    let values = [
        0u64,
        1,
        7,
        8,
        12,
        13,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x2_0000_0000,
        0x7e02_0000,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut cases: Vec<(i64, [u64; 6])> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let w = values[(i * 5 + 3) % values.len()];
        cases.push((libc::SYS_personality, [*v, w, 0, 0, 0, 0]));
        cases.push((libc::SYS_personality, [0, 0, *v, w, 0, 0]));
        cases.push((libc::SYS_personality, [0, 0, 0, 0, *v, 0]));
        cases.push((libc::SYS_getpid, [0, 0, 0, 0, 0, *v]));
    }
    let out = fork_child(|fd| {
        if filter.install().is_err() {
            return 90;
        }
        for (nr, args) in &cases {
            report(fd, raw_syscall(*nr, *args));
        }
        0
    });
    assert_eq!(out.exit, Some(0), "{out:?}");
    assert_eq!(out.report.len(), cases.len());
    for ((nr, args), got) in cases.iter().zip(&out.report) {
        let data = SeccompData {
            nr: *nr as u32,
            arch: Arch::X86_64.audit_arch(),
            instruction_pointer: 0,
            args: *args,
        };
        let Action::Errno(e) = Action::from_ret(prog.run(&data).unwrap()) else { panic!("only ERRNO rules") };
        assert_eq!(*got, -i64::from(e), "syscall {nr} args {args:x?}");
    }
}

#[test]
fn run_command_under_docker_default_and_a_deny_profile() {
    let docker = Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/docker-default.json"
    )))
    .unwrap();
    let prog = compile(&docker, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap();
    let mode = Mode::Filter { program: prog, flags: vec![] };
    let st = exec::run_command("/bin/sh".as_ref(), &["-c", "ls / >/dev/null && echo ok >/dev/null"], &mode)
        .unwrap();
    assert_eq!(st.code(), Some(0), "an ordinary command works under Docker's profile");

    let dir = std::env::temp_dir().join(format!("rampart-seccomp-kernel-{}", std::process::id()));
    let deny = Profile::from_json_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
        "deny.json",
    )
    .unwrap();
    let prog = compile(&deny, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap();
    let mode = Mode::Filter { program: prog, flags: vec![] };
    let st = exec::run_command("mkdir".as_ref(), &[dir.as_os_str()], &mode).unwrap();
    assert_eq!(st.code(), Some(1), "mkdir reports the EPERM");
    assert!(!dir.exists());
    // Strict mode: exec itself is not allowed, so the command never starts.
    let st = exec::run_command("/bin/true".as_ref(), &[] as &[&str], &Mode::Strict).unwrap();
    assert_eq!(st.signal(), Some(libc::SIGKILL));
    // A profile can name syscalls by the number the kernel sees.
    assert_eq!(syscalls::number(Arch::X86_64, "mkdir"), Some(libc::SYS_mkdir as u32));
}

#[test]
fn notify_profiles_are_refused_by_run_command() {
    let p = Profile::from_json_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        "n.json",
    )
    .unwrap();
    let prog = compile(&p, &CompileOptions::new(Arch::X86_64)).unwrap().to_program().unwrap();
    let e = exec::run_command(
        "/bin/true".as_ref(),
        &[] as &[&str],
        &Mode::Filter { program: prog, flags: vec![] },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
}

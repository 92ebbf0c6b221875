use super::*;
use model::{Event, EventKind, OpenFlags, ProcessCtx};

const SEC: u64 = 1_000_000_000;

/// A config whose procfs is empty, so lazy reads fail deterministically.
fn cfg() -> TableConfig {
    TableConfig { proc_root: PathBuf::from("/nonexistent-proc"), ..Default::default() }
}

fn ctx(pid: u32, ppid: u32, comm: &str) -> ProcessCtx {
    ProcessCtx { pid, tid: pid, ppid, comm: comm.into(), ..Default::default() }
}

fn ev(ts: u64, process: ProcessCtx, kind: EventKind) -> Event {
    Event { ts_ns: ts, process, container: None, ret: Some(0), syscall: None, kind }
}

fn fork(ts: u64, parent: u32, pparent: u32, child: u32) -> Event {
    ev(ts, ctx(parent, pparent, "p"), EventKind::Fork { child_pid: child, child_tid: child, thread: false })
}

fn exec(ts: u64, pid: u32, ppid: u32, exe: &str, argv: &[&str], cwd: &str) -> Event {
    let comm = exe.rsplit('/').next().unwrap_or(exe);
    ev(
        ts,
        ctx(pid, ppid, comm),
        EventKind::Exec {
            filename: exe.into(),
            exe: exe.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            cwd: cwd.into(),
            tty: None,
            cap_effective: 0,
            cap_permitted: 0,
            exe_from_memfd: false,
            exe_upper_layer: None,
            details: None,
        },
    )
}

fn exit(ts: u64, pid: u32, ppid: u32) -> Event {
    ev(ts, ctx(pid, ppid, "x"), EventKind::Exit { code: 0, signal: 0, core_dumped: false })
}

fn open(ts: u64, pid: u32) -> Event {
    ev(
        ts,
        ctx(pid, 1, "x"),
        EventKind::Open {
            path: "/etc/passwd".into(),
            flags: OpenFlags::from_raw(0),
            mode: 0,
            raw_path: None,
        },
    )
}

fn proc(pid: u32, ppid: u32, exe: &str) -> ProcInfo {
    ProcInfo {
        pid,
        ppid,
        comm: exe.rsplit('/').next().unwrap_or(exe).into(),
        exe: exe.into(),
        argv: vec![exe.to_string()].into(),
        cmdline: exe.into(),
        cwd: "/".into(),
        start_time_ns: 0,
        exited_at_ns: None,
        source: ProcSource::Proc,
        ..Default::default()
    }
}

#[test]
fn fork_inherits_then_exec_replaces() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(1, 0, "/sbin/init"));
    t.insert(ProcInfo {
        argv: vec!["bash".to_string(), "-l".to_string()].into(),
        cmdline: "bash -l".into(),
        cwd: "/root".into(),
        ..proc(100, 1, "/bin/bash")
    });
    t.apply(&fork(1, 100, 1, 200));
    let child = t.get(200).unwrap();
    assert_eq!(
        (child.ppid, &*child.exe, &*child.cmdline, &*child.cwd),
        (100, "/bin/bash", "bash -l", "/root")
    );
    assert_eq!(child.source, ProcSource::Event);
    assert_eq!(child.start_time_ns, 1);

    t.apply(&exec(2, 200, 100, "/usr/bin/curl", &["curl", "-s", "http://x"], "/tmp"));
    let child = t.get(200).unwrap();
    assert_eq!(&*child.exe, "/usr/bin/curl");
    assert_eq!(&child.argv[..], ["curl", "-s", "http://x"]);
    assert_eq!(&*child.cmdline, "curl -s http://x");
    assert_eq!(&*child.cwd, "/tmp");
    assert_eq!(child.comm, "curl");
    assert_eq!(child.start_time_ns, 1, "exec keeps the start time");
    // the parent is untouched
    assert_eq!(&*t.get(100).unwrap().exe, "/bin/bash");

    let mut e = open(3, 200);
    t.enrich(&mut e);
    assert_eq!((&*e.process.exe, &*e.process.cmdline), ("/usr/bin/curl", "curl -s http://x"));
    let s = t.stats();
    assert_eq!((s.forks, s.execs, s.lazy_reads), (1, 1, 0));
}

#[test]
fn threads_and_failed_syscalls_change_nothing() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(100, 1, "/bin/app"));
    t.apply(&ev(1, ctx(100, 1, "app"), EventKind::Fork { child_pid: 100, child_tid: 101, thread: true }));
    assert_eq!(t.len(), 1);
    let mut failed = exec(2, 100, 1, "/bin/nope", &["nope"], "/");
    failed.ret = Some(-2);
    t.apply(&failed);
    assert_eq!(&*t.get(100).unwrap().exe, "/bin/app");
    // a thread's exit does not end the process
    let mut thread_exit = exit(3, 100, 1);
    thread_exit.process.tid = 101;
    t.apply(&thread_exit);
    assert!(t.get(100).unwrap().is_alive());
    t.apply(&exit(4, 100, 1));
    assert!(!t.get(100).unwrap().is_alive());
}

#[test]
fn exec_without_resolved_exe_uses_filename_and_keeps_cwd() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(10, 1, "/bin/sh"));
    let mut e = exec(1, 10, 1, "", &["./run"], "");
    if let EventKind::Exec { filename, .. } = &mut e.kind {
        *filename = "./run".into();
    }
    t.apply(&e);
    let p = t.get(10).unwrap();
    assert_eq!(&*p.exe, "./run");
    assert_eq!(&*p.cwd, "/");
    // exec of a pid never seen creates it
    t.apply(&exec(2, 77, 10, "/bin/true", &["true"], "/srv"));
    assert_eq!(t.get(77).unwrap().ppid, 10);
}

#[test]
fn exited_processes_stay_for_the_grace_period() {
    let mut t = ProcessTable::new(TableConfig { exit_grace_ns: 5 * SEC, ..cfg() });
    t.insert(proc(1, 0, "/sbin/init"));
    t.apply(&fork(SEC, 1, 0, 50));
    t.apply(&exit(2 * SEC, 50, 1));
    // still there for late events and parent lookups
    assert!(t.get(50).is_some_and(|p| !p.is_alive()));
    assert_eq!(t.processes().count(), 1);
    t.apply(&open(6 * SEC, 1));
    assert!(t.get(50).is_some());
    t.apply(&open(7 * SEC, 1));
    assert!(t.get(50).is_none());
    assert_eq!(t.stats().removed_exited, 1);
}

#[test]
fn exited_processes_expire_on_the_clock_without_events() {
    let mut t = ProcessTable::new(TableConfig { exit_grace_ns: 5 * SEC, ..cfg() });
    t.insert(proc(1, 0, "/sbin/init"));
    t.apply(&fork(SEC, 1, 0, 50));
    t.apply(&exit(2 * SEC, 50, 1));
    t.expire(6 * SEC);
    assert!(t.get(50).is_some(), "within its grace period");
    t.expire(7 * SEC);
    assert!(t.get(50).is_none(), "expired with no event after the exit");
    // The clock never goes back: an older tick expires nothing more, and an
    // event older than the clock does not revive anything.
    t.apply(&fork(8 * SEC, 1, 0, 51));
    t.apply(&exit(8 * SEC, 51, 1));
    t.expire(3 * SEC);
    assert!(t.get(51).is_some());
    t.expire(13 * SEC);
    assert!(t.get(51).is_none());
}

#[test]
fn pid_reuse_after_exit() {
    let mut t = ProcessTable::new(TableConfig { exit_grace_ns: 5 * SEC, ..cfg() });
    t.insert(proc(1, 0, "/sbin/init"));
    t.insert(proc(2, 1, "/bin/sh"));
    t.apply(&fork(SEC, 1, 0, 50));
    t.apply(&exit(2 * SEC, 50, 1));
    // pid 50 reused by a child of 2 before the old entry expired
    t.apply(&fork(3 * SEC, 2, 1, 50));
    t.apply(&exec(3 * SEC, 50, 2, "/bin/new", &["new"], "/"));
    // the old exit record must not remove the new process
    t.apply(&open(20 * SEC, 1));
    let p = t.get(50).unwrap();
    assert!(p.is_alive());
    assert_eq!((p.ppid, &*p.exe), (2, "/bin/new"));
}

#[test]
fn fork_flood_is_bounded_exited_first() {
    let mut t = ProcessTable::new(TableConfig { max_entries: 64, exit_grace_ns: 1000 * SEC, ..cfg() });
    t.insert(proc(1, 0, "/sbin/init"));
    // fork+exit storms: exited entries are evicted before the grace period
    for i in 0..10_000u32 {
        let pid = 1000 + i;
        t.apply(&fork(i as u64, 1, 0, pid));
        t.apply(&exit(i as u64, pid, 1));
    }
    assert!(t.len() <= 64);
    assert!(t.get(1).is_some(), "live entries survive while exited ones can go");
    let s = t.stats();
    assert!(s.evicted_exited > 9000, "{s:?}");
    assert_eq!(s.evicted_live, 0);
    // a flood of live processes (missed exits) evicts the oldest live ones
    for i in 0..1000u32 {
        t.apply(&fork(20_000 + i as u64, 1, 0, 50_000 + i));
    }
    assert!(t.len() <= 64);
    assert!(t.stats().evicted_live > 0);
    assert!(t.get(50_999).is_some(), "newest kept");
    assert!(t.exited.len() <= 2 * 64);
}

#[test]
fn ancestors_in_order_bounded_and_loop_safe() {
    let mut t = ProcessTable::new(TableConfig { max_ancestors: 5, ..cfg() });
    t.insert(proc(1, 0, "/sbin/init"));
    t.insert(proc(10, 1, "/usr/bin/containerd-shim"));
    t.insert(proc(20, 10, "/bin/sh"));
    t.insert(proc(30, 20, "/usr/bin/python3"));
    let names: Vec<u32> = t.ancestors(30).iter().map(|p| p.pid).collect();
    assert_eq!(names, [20, 10, 1]);
    assert_eq!(t.parent(30).map(|p| p.pid), Some(20));
    assert_eq!(t.parent(1).map(|p| p.pid), None);
    assert!(t.ancestors(1).is_empty());
    assert!(t.ancestors(999).is_empty());
    // a loop (corrupted ppids) terminates
    t.insert(proc(100, 101, "/a"));
    t.insert(proc(101, 102, "/b"));
    t.insert(proc(102, 100, "/c"));
    let chain: Vec<u32> = t.ancestors(100).iter().map(|p| p.pid).collect();
    assert_eq!(chain, [101, 102]);
    // self-parent
    t.insert(proc(200, 200, "/self"));
    assert!(t.ancestors(200).is_empty());
    assert!(t.parent(200).is_none());
    // a long chain is bounded
    for pid in 1000..1100u32 {
        t.insert(proc(pid, pid - 1, "/x"));
    }
    assert_eq!(t.ancestors(1099).len(), 5);
    // a gap stops the chain
    t.insert(proc(300, 299, "/orphan"));
    assert!(t.ancestors(300).is_empty());
}

#[test]
fn reparenting_follows_events() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(1, 0, "/sbin/init"));
    t.insert(proc(10, 1, "/bin/sh"));
    t.insert(proc(20, 10, "/bin/sleep"));
    t.apply(&exit(1, 10, 1));
    // the kernel reparents 20 to init; its next event says so
    t.apply(&open(2, 20));
    assert_eq!(t.get(20).unwrap().ppid, 1);
}

#[test]
fn unknown_parent_fork_uses_event_context() {
    let mut t = ProcessTable::new(cfg());
    let mut e = fork(1, 4_000_000, 1, 4_000_001);
    e.process.exe = "/bin/busybox".into();
    e.process.cmdline = "sh -c x".into();
    t.apply(&e);
    let c = t.get(4_000_001).unwrap();
    assert_eq!((&*c.exe, &*c.cmdline, c.ppid), ("/bin/busybox", "sh -c x", 4_000_000));
    let s = t.stats();
    assert_eq!((s.unknown_parent_forks, s.lazy_reads, s.lazy_read_failures), (1, 1, 1));
}

#[test]
fn hostile_exec_args_are_bounded() {
    let mut t = ProcessTable::new(TableConfig { max_args: 4, max_arg_len: 8, max_cmdline_len: 20, ..cfg() });
    let long = "A".repeat(10_000);
    let argv: Vec<&str> = std::iter::repeat_n(long.as_str(), 1000).collect();
    t.apply(&exec(1, 5, 1, "/bin/x", &argv, "/"));
    let p = t.get(5).unwrap();
    assert_eq!(p.argv.len(), 4);
    assert!(p.argv.iter().all(|a| a.len() == 8));
    assert!(p.cmdline.len() <= 20);
}

#[test]
fn enrich_missing_pid_counts_and_remembers_failures() {
    let t = ProcessTable::new(cfg());
    for _ in 0..100 {
        let mut e = open(1, 12345);
        t.enrich(&mut e);
        assert!(e.process.exe.is_empty());
    }
    let s = t.stats();
    assert_eq!((s.lazy_reads, s.lazy_read_failures), (1, 1), "a failed read is not retried at once");
}

// ----- against this machine's real /proc -----

#[test]
fn scan_real_proc_finds_self() {
    let t = ProcessTable::scan(TableConfig::default()).expect("scan /proc");
    let me = std::process::id();
    let p = t.get(me).expect("own pid in the table");
    let exe = std::env::current_exe().unwrap();
    assert_eq!(&*p.exe, exe.to_str().unwrap());
    assert_eq!(p.ppid, std::os::unix::process::parent_id());
    assert!(!p.argv.is_empty());
    assert_eq!(&*p.cwd, std::env::current_dir().unwrap().to_str().unwrap());
    assert!(p.tty.is_some(), "the terminal (or 0) is read from /proc/<pid>/stat");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert!(p.start_time_ns > 0 && p.start_time_ns <= now + SEC, "{}", p.start_time_ns);
    assert!(now - p.start_time_ns < 3600 * SEC, "test process started within the hour");
    let s = t.stats();
    assert!(s.scanned > 1, "{s:?}");
    // pid 1 may be unreadable in parts (EPERM on links): tolerated, not fatal
    assert!(t.len() as u64 == s.scanned);
    // our parent chain resolves
    assert!(t.ancestors(me).first().is_some_and(|pp| pp.pid == std::os::unix::process::parent_id()));
}

#[test]
fn enrich_reads_proc_lazily_and_apply_merges() {
    let mut t = ProcessTable::new(TableConfig::default());
    let me = std::process::id();
    let mut e = open(1, me);
    t.enrich(&mut e);
    assert_eq!(&*e.process.exe, std::env::current_exe().unwrap().to_str().unwrap());
    assert!(!e.process.cmdline.is_empty());
    assert_eq!(t.stats().lazy_reads, 1);
    // answered from the side cache, then merged by apply
    let mut e2 = open(2, me);
    t.enrich(&mut e2);
    assert_eq!(t.stats().lazy_reads, 1);
    t.apply(&open(3, 1));
    assert!(t.get(me).is_some());
}

#[test]
fn scan_of_missing_procfs_is_an_error() {
    let err = ProcessTable::scan(cfg()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent-proc"), "{err}");
}

#[test]
fn events_only_table_never_reads_proc() {
    // pid 1 and our own pid exist here: a table fed from a capture must not
    // take them from this machine's /proc.
    let me = std::process::id();
    let mut t = ProcessTable::events_only();
    assert!(!t.config().read_proc);
    t.apply(&fork(1, me, 1, 4_000_001));
    t.apply(&fork(2, 1, 0, 4_000_002));
    assert!(t.get(me).is_none() && t.get(1).is_none());
    let mut e = open(3, me);
    t.enrich(&mut e);
    t.apply(&e);
    assert!(e.process.exe.is_empty() && e.process.cmdline.is_empty());
    assert!(t.read_proc(me).is_err());
    let s = t.stats();
    assert_eq!(s.lazy_reads, s.lazy_read_failures);
    assert!(s.proc_reads_refused >= 3, "{s:?}");
    assert_eq!(s.scanned, 0);
    // the children are known, from the events alone
    assert_eq!(t.get(4_000_001).unwrap().ppid, me);
    assert!(t.get(4_000_001).unwrap().exe.is_empty());
    // and a scan with reads off is empty
    let t = ProcessTable::scan(TableConfig { read_proc: false, ..TableConfig::default() }).unwrap();
    assert!(t.is_empty());
}

#[test]
fn session_caps_env_follow_fork_exec_capset() {
    let mut t = ProcessTable::new(cfg());
    t.insert(ProcInfo {
        sid: 100,
        pgid: 100,
        caps: Some(model::Caps { effective: 0xff, permitted: 0xff, inheritable: Some(0) }),
        env: Some(vec!["A=1".to_string()].into()),
        exe_ctime_ns: Some(5),
        ..proc(100, 1, "/bin/bash")
    });
    t.apply(&fork(1, 100, 1, 200));
    let c = t.get(200).unwrap();
    assert_eq!((c.sid, c.pgid, c.caps.unwrap().effective), (100, 100, 0xff));
    assert_eq!(c.env.as_deref(), Some(&["A=1".to_string()][..]));
    assert_eq!(c.exe_ctime_ns, Some(5));

    // exec: caps from the record, session/group/env/exe times from the details
    let mut e = exec(2, 200, 100, "/usr/bin/env", &["env"], "/");
    if let EventKind::Exec { cap_effective, cap_permitted, details, .. } = &mut e.kind {
        *cap_effective = 0x1;
        *cap_permitted = 0x3;
        **details.get_or_insert_with(Default::default) = model::ExecDetails {
            sid: Some(200),
            pgid: Some(200),
            cap_inheritable: Some(0x2),
            env: Some(vec!["B=2".into()]),
            exe_ctime_ns: Some(7),
            exe_mtime_ns: Some(6),
        };
    }
    t.apply(&e);
    let c = t.get(200).unwrap();
    assert_eq!((c.sid, c.pgid), (200, 200));
    assert_eq!(c.caps, Some(model::Caps { effective: 1, permitted: 3, inheritable: Some(2) }));
    assert_eq!(c.env.as_deref(), Some(&["B=2".to_string()][..]));
    assert_eq!((c.exe_ctime_ns, c.exe_mtime_ns), (Some(7), Some(6)));

    // an exec whose details were not read: ids kept, env unknown
    t.apply(&exec(3, 200, 100, "/bin/true", &["true"], "/"));
    let c = t.get(200).unwrap();
    assert_eq!((c.sid, c.pgid, c.env.is_none(), c.exe_ctime_ns), (200, 200, true, None));
    assert_eq!(c.caps.unwrap().inheritable, Some(2));

    // capset replaces the sets; a failed one does not
    let mut cs =
        ev(4, ctx(200, 100, "true"), EventKind::Capset { effective: 0, permitted: 1, inheritable: 0 });
    t.apply(&cs);
    assert_eq!(
        t.get(200).unwrap().caps,
        Some(model::Caps { effective: 0, permitted: 1, inheritable: Some(0) })
    );
    cs.kind = EventKind::Capset { effective: 9, permitted: 9, inheritable: 9 };
    cs.ret = Some(-1);
    t.apply(&cs);
    assert_eq!(t.get(200).unwrap().caps.unwrap().effective, 0);
}

#[test]
fn socket_protocols_by_fd() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(100, 1, "/bin/app"));
    let sock = |ts, ty, ret| Event {
        ret: Some(ret),
        ..ev(ts, ctx(100, 1, "app"), EventKind::Socket { domain: 2, sock_type: ty, protocol: 0 })
    };
    t.apply(&sock(1, 2 | 0o2000000, 3)); // SOCK_DGRAM|SOCK_CLOEXEC
    t.apply(&sock(2, 1, 4));
    t.apply(&sock(3, 1, -24)); // EMFILE: nothing
    let unix = Event {
        ret: Some(5),
        ..ev(4, ctx(100, 1, "app"), EventKind::Socket { domain: 1, sock_type: 1, protocol: 0 })
    };
    t.apply(&unix);
    let p = t.get(100).unwrap();
    assert_eq!((p.socket_proto(3), p.socket_proto(4), p.socket_proto(5)), (Some("udp"), Some("tcp"), None));
    // accept: the new fd is the listener's protocol
    let acc = Event {
        ret: Some(7),
        ..ev(5, ctx(100, 1, "app"), EventKind::Accept { fd: 4, local: None, remote: None })
    };
    t.apply(&acc);
    assert_eq!(t.get(100).unwrap().socket_proto(7), Some("tcp"));
    // fd 3 reused for a TCP socket
    t.apply(&sock(6, 1, 3));
    assert_eq!(t.get(100).unwrap().socket_proto(3), Some("tcp"));
    // a child inherits them
    t.apply(&fork(7, 100, 1, 101));
    assert_eq!(t.get(101).unwrap().socket_proto(3), Some("tcp"));
    // bounded
    for fd in 10..10 + 2 * model::MAX_SOCKET_FDS as i64 {
        t.apply(&sock(8, 2, fd));
    }
    let p = t.get(100).unwrap();
    assert_eq!(p.sockets.len(), model::MAX_SOCKET_FDS);
    assert_eq!(p.socket_proto(10), None);
    assert_eq!(p.socket_proto(9 + 2 * model::MAX_SOCKET_FDS as i64), Some("udp"));
}

#[test]
fn exec_details_read_from_proc_of_a_live_process() {
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
    let mut e = exec(1, me, 1, &exe, &["x"], "/");
    let mut t = ProcessTable::new(TableConfig { read_env: true, ..TableConfig::default() });
    t.read_exec_details(&mut e);
    let EventKind::Exec { details: Some(d), .. } = &e.kind else { panic!("no details") };
    assert!(d.sid.is_some() && d.pgid.is_some() && d.cap_inheritable.is_some());
    assert!(d.exe_ctime_ns.is_some() && d.exe_mtime_ns.is_some());
    assert!(d.env.is_some());
    t.apply(&e);
    assert!(t.get(me).unwrap().env.is_some());
    // without read_env, no environment; with /proc off, nothing at all
    let mut e = exec(2, me, 1, &exe, &["x"], "/");
    t.set_read_env(false);
    t.read_exec_details(&mut e);
    assert!(matches!(&e.kind, EventKind::Exec { details: Some(d), .. } if d.env.is_none()));
    let mut e = exec(3, me, 1, &exe, &["x"], "/");
    ProcessTable::events_only().read_exec_details(&mut e);
    assert!(matches!(&e.kind, EventKind::Exec { details: None, .. }));
    // a process that is gone: nothing
    let mut e = exec(4, 3_999_999, 1, "/bin/x", &["x"], "/");
    t.read_exec_details(&mut e);
    assert!(matches!(&e.kind, EventKind::Exec { details: None, .. }));
}

#[test]
fn exec_details_from_the_kernel_are_kept_and_proc_only_adds_the_environment() {
    let me = std::process::id();
    let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
    let from_kernel = model::ExecDetails {
        sid: Some(7),
        pgid: Some(8),
        cap_inheritable: Some(0),
        exe_ctime_ns: Some(11),
        exe_mtime_ns: Some(12),
        env: None,
    };
    let with_kernel_details = |seq| {
        let mut e = exec(seq, me, 1, &exe, &["x"], "/");
        if let EventKind::Exec { details, .. } = &mut e.kind {
            *details = Some(Box::new(from_kernel.clone()));
        }
        e
    };
    // the kernel's values win over /proc's (which would give this test's own ids)
    let mut t = ProcessTable::new(TableConfig::default());
    let mut e = with_kernel_details(1);
    t.read_exec_details(&mut e);
    assert!(matches!(&e.kind, EventKind::Exec { details: Some(d), .. } if **d == from_kernel));
    // with read_env, the environment is the one thing added
    t.set_read_env(true);
    let mut e = with_kernel_details(2);
    t.read_exec_details(&mut e);
    let EventKind::Exec { details: Some(d), .. } = &e.kind else { panic!("no details") };
    assert!(d.env.is_some());
    assert_eq!(model::ExecDetails { env: None, ..(**d).clone() }, from_kernel);
}

#[test]
fn terminal_comes_from_exec_and_is_inherited_on_fork() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(100, 1, "/bin/sh"));
    assert_eq!(t.get(100).unwrap().tty, None, "unknown until read or exec'd");
    let mut e = exec(1, 100, 1, "/bin/sh", &["sh"], "/");
    if let EventKind::Exec { tty, .. } = &mut e.kind {
        *tty = Some("pts/2".into());
    }
    t.apply(&e);
    assert_eq!(t.get(100).unwrap().tty, Some(model::tty_nr("pts/2")));
    t.apply(&fork(2, 100, 1, 200));
    assert_eq!(t.get(200).unwrap().tty, Some(model::tty_nr("pts/2")));
    t.apply(&exec(3, 200, 100, "/usr/bin/tar", &["tar"], "/"));
    assert_eq!(t.get(200).unwrap().tty, Some(0), "an exec without a terminal has none");
}

#[test]
fn drift_comes_from_exec_and_is_inherited_on_fork() {
    let mut t = ProcessTable::new(cfg());
    t.insert(proc(100, 1, "/bin/sh"));
    assert_eq!(t.get(100).unwrap().exe_upper_layer, None, "unknown until exec'd");
    let mut e = exec(1, 100, 1, "/tmp/miner", &["miner"], "/");
    if let EventKind::Exec { exe_upper_layer, .. } = &mut e.kind {
        *exe_upper_layer = Some(true);
    }
    t.apply(&e);
    assert_eq!(t.get(100).unwrap().exe_upper_layer, Some(true));
    t.apply(&fork(2, 100, 1, 200));
    assert_eq!(t.get(200).unwrap().exe_upper_layer, Some(true), "the child runs the same file");
    t.apply(&exec(3, 200, 100, "/usr/bin/tar", &["tar"], "/"));
    assert_eq!(t.get(200).unwrap().exe_upper_layer, None, "exec replaces it with the new file's");
}

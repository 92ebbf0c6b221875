//! `rampart events` against real containers: each test starts its own agent and
//! its own uniquely named containers of `rampart-test:latest` (tests/image) and
//! asserts on the JSON events. Needs root and dockerd (scripts/setup.sh); fails,
//! never skips, without them.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_SEIZE: i64 = 0x4206;
const CAP_CHOWN: u64 = 0;
const CAP_SYS_ADMIN: u64 = 21;
const ECONNREFUSED: i64 = 111;

fn marker(what: &str) -> String {
    unique(what).replace("rampart-it-", "mark-")
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn exec_in_container_carries_container_and_process() {
    preflight();
    let mut agent = Agent::start(&[]);
    let host_mark = marker("host");
    let mark = marker("exec");

    // A host process first: without --host it must not show up.
    host_run("/bin/true", &[&host_mark]);
    let c = Container::sh("exec", &[], &format!("{RTEST} nop {mark}"));
    let inspect_id = c.inspect_id();
    assert!(is_full_id(&inspect_id), "docker inspect id {inspect_id:?}");

    let ev = agent.expect(&format!("exec of `rtest nop {mark}` in {}", c.name), |e| is_exec_with(e, &mark));
    let ctr = container_of(&ev).unwrap_or_else(|| panic!("exec event has no container: {ev}"));
    assert_eq!(ctr["id"], inspect_id.as_str(), "container id must be the full docker id: {ev}");
    assert_eq!(container_name(&ev), c.name, "container name: {ev}");
    assert_eq!(ctr["image"], IMAGE, "container image: {ev}");
    assert_eq!(ctr["runtime"], "docker", "container runtime: {ev}");
    assert_eq!(argv(&ev), vec![RTEST.to_string(), "nop".into(), mark.clone()], "argv: {ev}");
    assert_eq!(arg_str(&ev, "exe"), RTEST, "exe: {ev}");
    assert_eq!(arg_str(&ev, "filename"), RTEST, "filename: {ev}");
    assert_eq!(ev["args"]["exe_from_memfd"], false, "exe_from_memfd: {ev}");
    assert_eq!(ev["process"]["comm"], "rtest", "comm: {ev}");
    assert!(ev["process"]["pid"].as_u64().unwrap_or(0) > 0, "pid: {ev}");
    assert!(ev["process"]["vpid"].as_u64().unwrap_or(0) > 0, "vpid: {ev}");
    assert_ne!(
        ev["process"]["pid"], ev["process"]["vpid"],
        "pid is the host view, vpid the container's: {ev}"
    );
    assert_eq!(ret(&ev).unwrap_or(0), 0, "exec ret: {ev}");
    c.wait_ok(WAIT);

    // Another container exec after the host run: once it is seen, the host
    // event (earlier) would have been seen too.
    let after = marker("after");
    let c2 = Container::sh("exec2", &[], &format!("{RTEST} nop {after}"));
    agent.expect(&format!("exec of `rtest nop {after}` in {}", c2.name), |e| is_exec_with(e, &after));
    agent.collect_for(Duration::from_millis(300));
    let leaked: Vec<String> = agent.events.iter().filter(|e| mentions(e, &host_mark)).map(brief).collect();
    assert!(leaked.is_empty(), "host process reported without --host: {leaked:#?}");
    let host_events = agent.events.iter().filter(|e| container_of(e).is_none()).count();
    assert_eq!(host_events, 0, "events without a container without --host:\n{}", agent.diagnosis());
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn host_processes_are_reported_with_host_flag() {
    preflight();
    let mut agent = Agent::start(&["--host"]);
    let mark = marker("hostflag");
    host_run("/bin/true", &[&mark]);
    let ev = agent.expect(&format!("exec of `/bin/true {mark}` on the host"), |e| is_exec_with(e, &mark));
    assert!(container_of(&ev).is_none(), "a host process has no container: {ev}");
    assert_eq!(argv(&ev), vec!["/bin/true".to_string(), mark.clone()], "argv: {ev}");
    assert!(arg_str(&ev, "exe").ends_with("/true"), "exe: {ev}");
    let summary = agent.stop();
    assert!(summary.seen > 0, "{summary:?}");
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn open_reports_container_absolute_paths() {
    preflight();
    let mut agent = Agent::start(&[]);
    let c = Container::sh(
        "open",
        &[],
        &format!(
            "{RTEST} open-write /tmp/rampart-abs && {RTEST} open-rel /tmp/reldir rel.txt && \
             {RTEST} open-dirfd /tmp/dirfd sub.txt"
        ),
    );
    let id = c.id.clone();
    let is_open_of =
        |e: &Value, path: &str| in_container(e, &id) && is_type(e, "open") && arg_str(e, "path") == path;

    for path in ["/tmp/rampart-abs", "/tmp/reldir/rel.txt", "/tmp/dirfd/sub.txt"] {
        let ev = agent.expect(&format!("open of {path} in {}", c.name), |e| is_open_of(e, path));
        let flags = &ev["args"]["flags"];
        assert_eq!(flags["write"], true, "write flag for {path}: {ev}");
        assert_eq!(flags["create"], true, "create flag for {path}: {ev}");
        assert_eq!(flags["truncate"], true, "truncate flag for {path}: {ev}");
        assert_eq!(flags["raw"].as_u64().unwrap_or(0) & 0o1, 0o1, "O_WRONLY in raw flags: {ev}");
        assert!(ret(&ev).is_some_and(|r| r >= 0), "successful open returns an fd: {ev}");
        assert_eq!(ev["process"]["comm"], "rtest", "comm: {ev}");
    }
    c.wait_ok(WAIT);
    agent.collect_for(Duration::from_millis(200));
    // No host (overlay) paths may leak into the container view of the test's
    // own processes. (runc's init legitimately opens host paths before it
    // pivots into the container's root, so it is not held to this.)
    let host_paths: Vec<String> = agent
        .events_of(&id)
        .iter()
        .filter(|e| is_type(e, "open") && matches!(e["process"]["comm"].as_str(), Some("rtest" | "sh")))
        .filter(|e| {
            let p = arg_str(e, "path");
            p.contains("/var/lib/docker") || p.contains("overlay2") || !p.starts_with('/')
        })
        .map(brief)
        .collect();
    assert!(host_paths.is_empty(), "open paths must be absolute in the container's view: {host_paths:#?}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn connect_reports_remote_address_and_result() {
    preflight();
    let mut agent = Agent::start(&[]);
    let c = Container::sh("connect", &[], &format!("{RTEST} connect-local && {RTEST} connect-refused"));
    let logs = c.wait_ok(WAIT);
    let port = kv_port(&logs, "connected");
    let refused = kv_port(&logs, "refused");
    let id = c.id.clone();
    let connect_to = |e: &Value, port: u16| {
        in_container(e, &id)
            && is_type(e, "connect")
            && e["args"]["remote"]["ip"] == "127.0.0.1"
            && e["args"]["remote"]["port"].as_u64() == Some(port as u64)
    };

    let ev = agent.expect(&format!("connect to 127.0.0.1:{port} in {}", c.name), |e| connect_to(e, port));
    assert_eq!(ev["args"]["remote"]["family"], "inet", "family: {ev}");
    assert_eq!(ret(&ev), Some(0), "connect to a listener succeeds: {ev}");
    // The socket's own end, read from the kernel's socket at exit.
    assert_eq!(ev["args"]["local"]["ip"], "127.0.0.1", "local address: {ev}");
    assert!(
        ev["args"]["local"]["port"].as_u64().is_some_and(|p| p != 0 && p != port as u64),
        "local port: {ev}"
    );

    let ev = agent
        .expect(&format!("refused connect to 127.0.0.1:{refused} in {}", c.name), |e| connect_to(e, refused));
    assert_eq!(ret(&ev), Some(-ECONNREFUSED), "connect to a closed port: {ev}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn chmod_setuid_is_reported() {
    preflight();
    let mut agent = Agent::start(&[]);
    let c = Container::run("chmod", &[], &[RTEST, "chmod-suid", "/tmp/rampart-suid"]);
    let id = c.id.clone();
    let ev = agent.expect(&format!("chmod of /tmp/rampart-suid in {}", c.name), |e| {
        in_container(e, &id) && is_type(e, "chmod") && arg_str(e, "path") == "/tmp/rampart-suid"
    });
    let mode = arg_u64(&ev, "mode").unwrap_or_else(|| panic!("no mode: {ev}"));
    assert_eq!(mode & 0o4000, 0o4000, "setuid bit in mode {mode:o}: {ev}");
    assert_eq!(mode & 0o777, 0o755, "permission bits in mode {mode:o}: {ev}");
    assert_eq!(ret(&ev).unwrap_or(0), 0, "ret: {ev}");
    c.wait_ok(WAIT);
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn ptrace_attach_and_seize_are_reported() {
    preflight();
    let mut agent = Agent::start(&["--type", "ptrace,fork,exec"]);
    let c = Container::sh("ptrace", &[], &format!("{RTEST} ptrace attach && {RTEST} ptrace seize"));
    let logs = c.wait_ok(WAIT);
    // rtest prints the target as its own (container) pid namespace sees it.
    let targets: Vec<u64> =
        logs.lines().filter_map(|l| kv(l, "target")).map(|t| t.parse().expect("target pid")).collect();
    assert_eq!(targets.len(), 2, "rtest output:\n{logs}");
    let id = c.id.clone();

    for (request, vpid) in [(PTRACE_ATTACH, targets[0]), (PTRACE_SEIZE, targets[1])] {
        let ev = agent.expect(&format!("ptrace request {request:#x} in {}", c.name), |e| {
            in_container(e, &id) && is_type(e, "ptrace") && e["args"]["request"].as_i64() == Some(request)
        });
        assert_eq!(ret(&ev).unwrap_or(0), 0, "ret: {ev}");
        // The target as given (container view) or translated to the host view,
        // in which case it is the child a fork event of this container reported.
        let target = ev["args"]["target_pid"].as_u64().unwrap_or_else(|| panic!("no target_pid: {ev}"));
        let forked_host_pid = agent
            .events_of(&id)
            .iter()
            .any(|f| is_type(f, "fork") && f["args"]["child_pid"].as_u64() == Some(target));
        assert!(
            target == vpid || forked_host_pid,
            "target_pid {target} is neither the container pid {vpid} nor a forked child's host pid: {ev}"
        );
    }
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn memfd_exec_is_reported_as_fileless() {
    preflight();
    let mut agent = Agent::start(&[]);
    let mark = marker("memfd");
    let c = Container::run("memfd", &[], &[RTEST, "memfd-exec", &mark]);
    let id = c.id.clone();

    let ev = agent.expect(&format!("memfd_create in {}", c.name), |e| {
        in_container(e, &id) && is_type(e, "memfd_create")
    });
    assert!(arg_str(&ev, "name").contains("rtest-memfd"), "memfd name: {ev}");
    assert!(ret(&ev).is_some_and(|r| r >= 0), "memfd_create returns an fd: {ev}");

    // The memfd runs as `rtest nop memfd-child MARK` (the container's first
    // exec, `rtest memfd-exec MARK`, carries the mark too).
    let ev = agent.expect(&format!("exec of the memfd in {}", c.name), |e| {
        in_container(e, &id) && is_exec_with(e, "memfd-child") && is_exec_with(e, &mark)
    });
    assert_eq!(ev["args"]["exe_from_memfd"], true, "exec of a memfd must be flagged: {ev}");
    assert_eq!(
        argv(&ev),
        vec!["rtest".to_string(), "nop".into(), "memfd-child".into(), mark.clone()],
        "argv: {ev}"
    );
    c.wait_ok(WAIT);
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn unshare_flags_are_reported() {
    preflight();
    let mut agent = Agent::start(&[]);
    // unshare needs CAP_SYS_ADMIN, and Docker's default seccomp profile blocks it
    // without; --privileged does not work on these machines (see DESIGN.md).
    let c = Container::run(
        "unshare",
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
        ],
        &[RTEST, "unshare", "both"],
    );
    let id = c.id.clone();
    let ev =
        agent.expect(&format!("unshare in {}", c.name), |e| in_container(e, &id) && is_type(e, "unshare"));
    let flags = arg_u64(&ev, "flags").unwrap_or_else(|| panic!("no flags: {ev}"));
    assert_eq!(flags & (CLONE_NEWNS | CLONE_NEWUTS), CLONE_NEWNS | CLONE_NEWUTS, "flags {flags:#x}: {ev}");
    assert_eq!(ret(&ev), Some(0), "unshare with CAP_SYS_ADMIN succeeds: {ev}");
    c.wait_ok(WAIT);
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn capability_checks_are_reported_with_result() {
    preflight();
    let mut agent = Agent::start(&["--type", "capable,exec"]);
    // sethostname needs CAP_SYS_ADMIN, which a default container lacks (EPERM);
    // chown to another uid needs CAP_CHOWN, which it has.
    let c = Container::sh(
        "capable",
        &[],
        &format!("{RTEST} sethostname rampart-denied; {RTEST} chown /tmp/rampart-owned 1234"),
    );
    let logs = c.wait_ok(WAIT);
    assert!(logs.contains("sethostname=rampart-denied ret=-1 errno=1"), "rtest output:\n{logs}");
    let id = c.id.clone();

    let ev = agent.expect(&format!("denied CAP_SYS_ADMIN check in {}", c.name), |e| {
        in_container(e, &id)
            && is_type(e, "capable")
            && arg_u64(e, "cap") == Some(CAP_SYS_ADMIN)
            && e["args"]["granted"] == false
    });
    assert!(arg_str(&ev, "cap_name").to_ascii_uppercase().contains("SYS_ADMIN"), "cap_name: {ev}");

    let ev = agent.expect(&format!("granted CAP_CHOWN check in {}", c.name), |e| {
        in_container(e, &id)
            && is_type(e, "capable")
            && arg_u64(e, "cap") == Some(CAP_CHOWN)
            && e["args"]["granted"] == true
    });
    assert!(arg_str(&ev, "cap_name").to_ascii_uppercase().contains("CHOWN"), "cap_name: {ev}");
    agent.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn container_filter_by_name_and_id_prefix() {
    preflight();
    let a = Container::run("filter-a", &[], &["sleep", "300"]);
    let b = Container::run("filter-b", &[], &["sleep", "300"]);
    let mut by_name = Agent::start(&["--container", &a.name]);
    let mut by_id = Agent::start(&["--container", &b.id[..12]]);

    let (mark_a, mark_b) = (marker("a"), marker("b"));
    b.exec(&[RTEST, "nop", &mark_b]);
    a.exec(&[RTEST, "nop", &mark_a]);

    let ev = by_name.expect(&format!("exec in {} (filter by name)", a.name), |e| is_exec_with(e, &mark_a));
    assert_eq!(container_id(&ev), a.id, "{ev}");
    let ev = by_id.expect(&format!("exec in {} (filter by id prefix)", b.name), |e| is_exec_with(e, &mark_b));
    assert_eq!(container_id(&ev), b.id, "{ev}");
    assert_eq!(container_name(&ev), b.name, "{ev}");

    by_name.collect_for(Duration::from_millis(500));
    by_id.poll();
    for (agent, want) in [(&by_name, &a), (&by_id, &b)] {
        let others: Vec<String> =
            agent.events.iter().filter(|e| container_id(e) != want.id).map(brief).collect();
        assert!(others.is_empty(), "--container {} let other events through: {others:#?}", want.name);
    }
    by_name.stop();
    by_id.stop();
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn type_filter_passes_only_those_types() {
    preflight();
    let mut agent = Agent::start(&["--type", "exec,connect"]);
    let mark = marker("types");
    let c = Container::sh(
        "types",
        &[],
        &format!("{RTEST} open-write /tmp/rampart-t && {RTEST} connect-local && {RTEST} nop {mark}"),
    );
    let id = c.id.clone();
    agent.expect(&format!("exec in {}", c.name), |e| in_container(e, &id) && is_exec_with(e, &mark));
    agent.expect(&format!("connect in {}", c.name), |e| in_container(e, &id) && is_type(e, "connect"));
    c.wait_ok(WAIT);
    agent.collect_for(Duration::from_millis(300));
    let wrong: Vec<String> =
        agent.events.iter().filter(|e| !matches!(ev_type(e), "exec" | "connect")).map(brief).collect();
    assert!(wrong.is_empty(), "--type exec,connect let other types through: {wrong:#?}");
    agent.stop();
}

#[test]
fn unknown_type_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["events", "--json", "--type", "exec,no-such-type"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rampart");
    assert!(!out.status.success(), "an unknown --type must be refused, not ignored");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-type"), "the error names the bad type: {err}");
}

#[test]
#[ignore = "privileged: needs root and BPF (scripts/test.sh runs it)"]
fn status_reports_kernel_features() {
    testkit::require_bpf();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["status", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rampart status");
    assert!(out.status.success(), "rampart status --json failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("status --json is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    });
    assert!(v.is_object(), "status --json is an object: {v}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("status")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rampart status");
    assert!(out.status.success(), "rampart status failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty(), "rampart status printed nothing");
}

//! containerd stops and starts while `rampart events` runs: the agent lives
//! on, a container that outlived the restart (its shim keeps it running) is
//! still attributed, and a container started after the restart, in a
//! namespace the agent has never seen, gets its name (rampart reconnected to
//! containerd's API and its events).
//!
//! A test binary of its own: stopping containerd stops every ctr and CRI
//! test beside it. scripts/containerd.sh is the same start/stop that
//! scripts/setup.sh uses; on any failure containerd is started again.

mod common;

use common::ctr::*;
use common::*;
use std::time::Duration;

#[test]
#[ignore = "privileged: needs root, BPF, dockerd and containerd (scripts/test.sh runs it)"]
fn names_come_back_across_containerd_restart() {
    preflight_containerd();
    let early = Namespace::new("ctrd-restart-a");
    let early_id = format!("survivor-{}", std::process::id());
    early.run(&early_id, &[]);
    let mut agent = Agent::start(&[]);

    let _back = StartsOnDrop("containerd.sh");
    daemon_script("containerd.sh", "stop");
    assert!(
        ctr("default", &["version"]).is_err(),
        "containerd still answers after scripts/containerd.sh stop"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(agent.is_running(), "rampart died when containerd stopped:\n{}", agent.diagnosis());
    daemon_script("containerd.sh", "start");
    assert!(agent.is_running(), "rampart died when containerd started:\n{}", agent.diagnosis());

    // The survivor: still running under its shim, still named.
    let mark = unique("survivor").replace("rampart-it-", "mark-");
    early.exec(&early_id, "after-restart", &[RTEST, "nop", &mark]);
    let ev = agent.expect(&format!("exec in {early_id} after the restart"), |e| is_exec_with(e, &mark));
    assert_eq!(container_id(&ev), early_id, "{ev}");
    assert_eq!(container_name(&ev), early_id, "{ev}");

    // A new namespace and container after the restart: learned through the
    // reconnected event stream (or the list that follows a reconnect). It
    // execs a marker every 250 ms for 10 s; one of them must carry its name.
    let late = Namespace::new("ctrd-restart-b");
    let late_id = format!("newcomer-{}", std::process::id());
    let late_name = format!("nice-{late_id}");
    let mark2 = unique("newcomer").replace("rampart-it-", "mark-");
    late.run_cmd(
        &late_id,
        &[&format!("nerdctl/name={late_name}")],
        &[
            "sh",
            "-c",
            &format!("i=0; while [ $i -lt 40 ]; do {RTEST} nop {mark2}; i=$((i+1)); sleep 0.25; done"),
        ],
    );
    let ev = agent.expect(&format!("exec in {late_name} with its name after the restart"), |e| {
        is_exec_with(e, &mark2) && container_name(e) == late_name
    });
    assert_eq!(container_id(&ev), late_id, "{ev}");
    assert_eq!(ev["container"]["image"], CTR_IMAGE, "{ev}");
    assert_eq!(ev["container"]["runtime_namespace"], late.name.as_str(), "{ev}");
    drop(late);
    drop(early);
    let summary = agent.stop();
    assert!(summary.seen > 0, "{summary:?}");
    // dockerd reconnects to the restarted containerd on its own schedule; the
    // next test binaries run containers through it (a `docker run` right
    // after this test once failed dialing containerd.sock).
    wait_until(
        "dockerd to run containers again after the containerd restart",
        Duration::from_secs(60),
        || docker(&["run", "--rm", IMAGE, "true"]).status.success(),
    );
}

//! dockerd stops and starts while `rampart events` runs: events keep flowing
//! and containers started after the restart get their metadata (name) again.
//!
//! A test binary of its own: stopping dockerd kills every container, so no
//! other test may run beside it. scripts/dockerd.sh is the same start/stop that
//! scripts/setup.sh uses; on any failure dockerd is started again.

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn events_keep_flowing_across_dockerd_restart() {
    preflight();
    let mut agent = Agent::start(&[]);

    let before = unique("before").replace("rampart-it-", "mark-");
    let c1 = Container::run("before", &[], &[RTEST, "nop", &before]);
    let ev = agent.expect(&format!("exec in {} before the restart", c1.name), |e| is_exec_with(e, &before));
    assert_eq!(container_id(&ev), c1.id, "{ev}");
    c1.wait_ok(Duration::from_secs(30));
    drop(c1);

    let _back = StartsOnDrop("dockerd.sh");
    daemon_script("dockerd.sh", "stop");
    assert!(!docker(&["info"]).status.success(), "dockerd still answers after scripts/dockerd.sh stop");
    std::thread::sleep(Duration::from_secs(2));
    assert!(agent.is_running(), "rampart died when dockerd stopped:\n{}", agent.diagnosis());
    daemon_script("dockerd.sh", "start");
    assert!(agent.is_running(), "rampart died when dockerd started:\n{}", agent.diagnosis());

    // A container started after the restart: its events flow, and its name
    // comes back once rampart has reconnected to the Docker API. The container
    // execs a marker every 250 ms for 10 s; one of them must carry the name.
    let after = unique("after").replace("rampart-it-", "mark-");
    let c2 = Container::sh(
        "after",
        &[],
        &format!("i=0; while [ $i -lt 40 ]; do {RTEST} nop {after}; i=$((i+1)); sleep 0.25; done"),
    );
    let id = c2.id.clone();
    let ev = agent.expect(&format!("exec in {} after the restart", c2.name), |e| {
        in_container(e, &id) && is_exec_with(e, &after)
    });
    assert_eq!(container_id(&ev), c2.id, "{ev}");
    let ev = agent.expect(&format!("exec in {} with its name after the restart", c2.name), |e| {
        in_container(e, &id) && is_exec_with(e, &after) && container_name(e) == c2.name
    });
    assert_eq!(ev["container"]["image"], IMAGE, "image after the restart: {ev}");
    drop(c2);
    let summary = agent.stop();
    assert!(summary.seen > 0, "{summary:?}");
}

//! A container flooding the agent: 1,000,000 open+close as fast as it can.
//! The agent must stay alive, bounded in memory, and account for every event:
//! what it did not deliver it must report as dropped.
//!
//! A test binary of its own, so that the flood does not overflow the agents of
//! other tests running at the same time.

mod common;

use common::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const OPS: u64 = 1_000_000;
const FLOOD_PATH: &str = "/tmp/rampart-flood";
const RSS_LIMIT_KIB: u64 = 200 * 1024;

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn flood_keeps_agent_alive_bounded_and_counted() {
    preflight();
    let mut agent = Agent::start_with(&[], StdoutMode::CountMatching(format!("\"{FLOOD_PATH}\"")));
    let started = Instant::now();
    let c = Container::run("flood", &[], &[RTEST, "flood", &OPS.to_string(), FLOOD_PATH]);

    // While the flood runs: the agent must stay up.
    let mut waiter = docker_cmd()
        .args(["wait", &c.name])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker wait");
    let deadline = started + Duration::from_secs(120);
    loop {
        if waiter.try_wait().expect("docker wait").is_some() {
            break;
        }
        assert!(agent.is_running(), "rampart died during the flood:\n{}", agent.diagnosis());
        assert!(Instant::now() < deadline, "flood container still runs after 120 s; logs:\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = c.logs();
    let flood_ns: u64 =
        kv(&logs, "ns").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("rtest output:\n{logs}"));

    // Let the agent drain what is queued: until the count stops moving for 1 s.
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    let mut last = agent.matching.load(Ordering::Relaxed);
    while Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = agent.matching.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    assert!(agent.is_running(), "rampart died after the flood:\n{}", agent.diagnosis());
    let hwm = agent.vm_hwm_kib().expect("VmHWM of the agent");
    let delivered = agent.matching.load(Ordering::Relaxed);
    let summary = agent.stop();
    eprintln!(
        "flood: {OPS} opens in {:.2} s in the container; agent delivered {delivered} of them; \
         summary: {}; peak RSS {} MiB",
        flood_ns as f64 / 1e9,
        summary.line,
        hwm / 1024
    );

    assert!(hwm < RSS_LIMIT_KIB, "agent peak RSS {} MiB >= 200 MiB", hwm / 1024);
    assert!(summary.seen > 0, "summary reports no events: {}", summary.line);
    assert!(delivered > 0, "no open of {FLOOD_PATH} was delivered; summary: {}", summary.line);
    assert!(delivered <= summary.seen, "delivered {delivered} > seen {}: {}", summary.seen, summary.line);
    // Every flood open was either seen or counted as dropped: none vanished.
    assert!(
        summary.seen + summary.dropped >= OPS,
        "seen {} + dropped {} < {OPS} opens: events were lost without being counted ({})",
        summary.seen,
        summary.dropped,
        summary.line
    );
}

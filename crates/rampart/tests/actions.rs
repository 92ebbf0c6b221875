//! Rule actions end to end (`actions:` on rules, under `rampart run`): a kill
//! that lands, a dry run that does nothing but says so, a freeze undone by
//! `rampart unfreeze`, and the protected list keeping host processes safe.

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rules_file(prefix: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("{}.yaml", unique(prefix)));
    std::fs::write(&p, text).expect("write rules");
    p
}

fn is_action(v: &Value, action: &str, outcome: &str) -> bool {
    alert_rule(v) == "Response action"
        && v["output_fields"]["action"] == action
        && v["output_fields"]["outcome"] == outcome
}

/// Kill shells of `rampart-it-kill*` containers that read /etc/shadow; and a
/// rule that matches a host process (by a marker in its command line).
const KILL_RULES: &str = r#"
- rule: Shadow read in test container
  desc: a process in a test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-kill
  output: "shadow read (proc=%proc.name container=%container.name)"
  priority: CRITICAL
  actions: [kill]
- rule: Shadow read on host by the test
  desc: a host process of this test opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and proc.cmdline contains rampart-host-marker
  output: "host shadow read (proc=%proc.name)"
  priority: CRITICAL
  actions: [kill]
"#;

const VICTIM: &str = "sleep 2; read x < /etc/shadow; sleep 6; echo survived";

#[test]
fn kill_action_kills_the_process_and_protects_host_processes() {
    let rules = rules_file("kill-rules", KILL_RULES);
    let mut agent = Agent::start_run(&["--no-default-rules", "--host", "--rules", rules.to_str().unwrap()]);

    let victim = Container::sh("kill", &[], VICTIM);
    // A host process doing the same: the rule matches it, the action must not.
    let host = Command::new("/bin/sh")
        .args(["-c", "sleep 2; read x < /etc/shadow; sleep 3; echo alive # rampart-host-marker"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn host shell");

    let action = agent.expect("kill action done", |v| is_action(v, "kill", "done"));
    assert_eq!(action["output_fields"]["rule"], "Shadow read in test container", "{action:#}");
    assert_eq!(action["container"]["name"], victim.name.as_str(), "{action:#}");
    let code = victim.wait(Duration::from_secs(30));
    assert_eq!(code, 137, "killed by SIGKILL; logs:\n{}", victim.logs());
    assert!(!victim.logs().contains("survived"));

    let refused = agent.expect("host action refused", |v| is_action(v, "kill", "refused"));
    assert!(
        refused["output_fields"]["detail"].as_str().unwrap_or("").contains("not in a container"),
        "{refused:#}"
    );
    let out = host.wait_with_output().expect("host shell");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("alive"),
        "the host process was harmed"
    );
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

#[test]
fn dry_run_reports_and_does_nothing() {
    let rules = rules_file("dry-rules", KILL_RULES);
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--dry-run", "--rules", rules.to_str().unwrap()]);
    let victim = Container::sh("kill", &[], VICTIM);
    let action = agent.expect("kill action in dry run", |v| is_action(v, "kill", "dry_run"));
    assert_eq!(action["container"]["name"], victim.name.as_str());
    assert!(victim.wait_ok(Duration::from_secs(30)).contains("survived"));
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

/// The value the container's counter file holds, read from the host through
/// /proc (a frozen container cannot run `docker exec`).
fn counter(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/count"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn freeze_action_stops_progress_until_unfreeze() {
    let rules = rules_file(
        "freeze-rules",
        r#"
- rule: Shadow read in freeze test container
  desc: a process in a test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-freeze
  output: "shadow read (container=%container.name)"
  priority: CRITICAL
  actions: [freeze]
"#,
    );
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    let c = Container::sh(
        "freeze",
        &[],
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; if [ $i = 10 ]; then read x < /etc/shadow; fi; sleep 0.2; done",
    );
    let action = agent
        .expect_within("freeze action done", Duration::from_secs(30), |v| is_action(v, "freeze", "done"));
    assert!(action["output_fields"]["detail"].as_str().unwrap_or("").starts_with("frozen"), "{action:#}");
    let pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &c.name]);
    let frozen_at = counter(&pid);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(counter(&pid), frozen_at, "the frozen container kept counting");
    assert!((10..14).contains(&frozen_at), "frozen right after the match, at {frozen_at}");

    let out = rampart_output(&["unfreeze", "--container", &c.name], Duration::from_secs(60));
    assert!(out.status.success(), "unfreeze: {}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter(&pid) <= frozen_at {
        assert!(Instant::now() < deadline, "the container did not resume after unfreeze");
        std::thread::sleep(Duration::from_millis(200));
    }
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

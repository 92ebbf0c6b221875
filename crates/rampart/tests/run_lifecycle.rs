//! `rampart run` over its lifetime: rules reloaded on SIGHUP (a broken file
//! keeps the running rules), and `capture` + `replay` (JSON lines and the
//! binary form) giving the same alert
//! offline. Real agent, real dockerd, real containers; fails without root.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

fn rule(name: &str, path_prefix: &str) -> String {
    format!(
        "- rule: {name}\n  desc: test rule\n  condition: evt.type in (open, openat, openat2) and fd.name startswith {path_prefix}\n  output: \"{name} file=%fd.name container=%container.name\"\n  priority: WARNING\n  tags: [test]\n"
    )
}

fn hup(agent: &Agent) {
    // SAFETY: kill with the pid of the agent this test spawned and still owns.
    let rc = unsafe { libc::kill(agent.pid as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "SIGHUP to rampart");
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn sighup_reloads_rules_and_a_broken_file_keeps_the_old_ones() {
    preflight();
    let dir = std::env::temp_dir().join(unique("reload"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    std::fs::write(&file, rule("reload_a", "/tmp/reload-a")).unwrap();
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--no-reload-on-change", "--rules", file.to_str().unwrap()]);

    let c1 = Container::sh("reload1", &[], "echo x > /tmp/reload-a-1");
    let a = agent.expect("alert reload_a", |v| is_alert_of(v, "reload_a", &c1.name));
    assert_eq!(alert_priority(&a), "Warning", "{a}");
    assert_eq!(a["output_fields"]["fd.name"], "/tmp/reload-a-1", "{a}");

    // Replace the rule: after SIGHUP only reload_b fires.
    std::fs::write(&file, rule("reload_b", "/tmp/reload-b")).unwrap();
    hup(&agent);
    wait_stderr(&agent, "rules reloaded", Duration::from_secs(10));
    let c2 = Container::sh("reload2", &[], "echo x > /tmp/reload-a-2; echo y > /tmp/reload-b-1");
    agent.expect("alert reload_b", |v| is_alert_of(v, "reload_b", &c2.name));
    c2.wait_ok(Duration::from_secs(30));
    agent.collect_for(Duration::from_millis(500));
    let stale: Vec<&Value> = agent.events.iter().filter(|v| is_alert_of(v, "reload_a", &c2.name)).collect();
    assert!(stale.is_empty(), "the replaced rule still fired: {stale:?}");

    // A broken file on reload is refused with its position; reload_b keeps working.
    std::fs::write(
        &file,
        "- rule: broken\n  desc: d\n  condition: proc.nam = sh\n  output: x\n  priority: WARNING\n",
    )
    .unwrap();
    hup(&agent);
    let expected = format!("{}:3:14", file.display());
    let text = wait_stderr(&agent, &expected, Duration::from_secs(10));
    assert!(text.contains("reload refused"), "{text}");
    assert!(text.contains("proc.nam"), "the refusal must name the field:\n{text}");
    let c3 = Container::sh("reload3", &[], "echo y > /tmp/reload-b-2");
    agent.expect("alert reload_b after a refused reload", |v| is_alert_of(v, "reload_b", &c3.name));
    assert!(agent.is_running(), "a broken rule file must not stop the agent");
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reload is all or nothing: rules whose conditions are valid but whose
/// `actions:` are not are refused whole, the old rules keep their actions (the
/// kill still happens), and the refusal is said on stderr and raised as an
/// internal alert through the outputs.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn reload_with_broken_actions_keeps_the_old_rules_and_actions() {
    preflight();
    let dir = std::env::temp_dir().join(unique("reload-actions"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yaml");
    let kill_rule = |actions: &str| {
        format!(
            "- rule: reload_kill\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name = /tmp/reload-kill and container.id != host\n  output: \"reload_kill file=%fd.name\"\n  priority: WARNING\n  actions: {actions}\n"
        )
    };
    std::fs::write(&file, kill_rule("[kill]")).unwrap();
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--no-reload-on-change", "--rules", file.to_str().unwrap()]);
    let c = Container::run("reloadkill", &[], &["sleep", "300"]);
    wait_kill_armed(&agent, &c, Duration::from_secs(20));
    let write = || docker(&["exec", &c.name, "sh", "-c", "echo x > /tmp/reload-kill; echo survived"]);
    let before = write();
    assert_eq!(before.status.code(), Some(137), "the kill rule must kill: {before:?}");

    // Same condition, a misspelled action: the whole reload is refused.
    std::fs::write(&file, kill_rule("[kil]")).unwrap();
    hup(&agent);
    let expected = format!("{}:6:", file.display());
    let text = wait_stderr(&agent, &expected, Duration::from_secs(10));
    assert!(text.contains("reload refused"), "{text}");
    assert!(text.contains("kil"), "the refusal must name the bad action:\n{text}");
    assert!(!text.contains("rules reloaded"), "nothing may be swapped in:\n{text}");
    let internal =
        agent.expect("the internal alert of the refused reload", |v| alert_rule(v) == "Rules reload refused");
    assert_eq!(internal["source"], "internal", "{internal}");
    assert_eq!(alert_priority(&internal), "Error", "{internal}");
    assert!(internal["output"].as_str().unwrap_or("").contains(&expected), "{internal}");

    // The old rule and its action are still in force.
    let after = write();
    assert_eq!(after.status.code(), Some(137), "the old kill action must still kill: {after:?}");
    assert!(!String::from_utf8_lossy(&after.stdout).contains("survived"), "{after:?}");
    agent.expect("the old rule still alerts", |v| {
        alert_rule(v) == "reload_kill" && container_name(v) == c.name
    });
    assert!(agent.is_running());
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn capture_then_replay_raises_the_same_alert_offline() {
    preflight();
    let dir = std::env::temp_dir().join(unique("replay"));
    std::fs::create_dir_all(&dir).unwrap();
    // The same activity captured twice at once: JSON lines and the binary form.
    let json = dir.join("capture.jsonl");
    let binary = dir.join("capture.bin");
    let agents = [
        Agent::spawn(vec!["capture".into(), "-o".into(), json.display().to_string()], StdoutMode::Parse),
        Agent::spawn(
            vec!["capture".into(), "--binary".into(), "-o".into(), binary.display().to_string()],
            StdoutMode::Parse,
        ),
    ];
    let c = Container::sh("capture", &[], "cat /etc/hostname >/dev/null; echo x > /tmp/replay-target");
    c.wait_ok(Duration::from_secs(30));
    // A capture is written batch by batch: wait until our open is in both
    // (the binary form keeps a path's bytes as they are).
    let deadline = Instant::now() + Duration::from_secs(20);
    let has_open = |f: &std::path::Path| {
        let bytes = std::fs::read(f).unwrap_or_default();
        bytes.windows(b"/tmp/replay-target".len()).any(|w| w == b"/tmp/replay-target")
    };
    while !(has_open(&json) && has_open(&binary)) {
        assert!(Instant::now() < deadline, "the open never reached both capture files");
        std::thread::sleep(Duration::from_millis(100));
    }
    for agent in agents {
        let summary = agent.stop();
        assert!(summary.seen > 0, "{}", summary.line);
    }
    let head = std::fs::read(&binary).unwrap();
    assert!(head.starts_with(b"rampart-capture\x02"), "format version 2: {:?}", &head[..head.len().min(16)]);

    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: replayed_open\n  desc: d\n  condition: evt.type in (open, openat) and fd.name = /tmp/replay-target and container.name = {}\n  output: \"replayed %fd.name by %proc.name in %container.name\"\n  priority: NOTICE\n",
            c.name
        ),
    )
    .unwrap();
    let mut outputs = vec![];
    for capture in [&json, &binary] {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["replay", capture.to_str().unwrap(), "--no-default-rules", "--json", "--rules"])
            .arg(&rules)
            .output()
            .expect("run rampart replay");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "replay of {} failed: {stderr}", capture.display());
        assert!(stderr.contains("replayed") && stderr.contains("(0 unreadable"), "replay summary: {stderr}");
        let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("non-JSON alert line {l:?}: {e}")))
            .collect();
        assert_eq!(alerts.len(), 1, "exactly the one open matches in {}: {alerts:#?}", capture.display());
        let a = &alerts[0];
        assert_eq!(alert_rule(a), "replayed_open");
        assert_eq!(alert_priority(a), "Notice");
        assert_eq!(container_name(a), c.name, "{a}");
        assert_eq!(a["output_fields"]["proc.name"], "sh", "{a}");
        assert!(a["output"].as_str().unwrap_or("").contains("replayed /tmp/replay-target by sh"), "{a}");
        outputs.push(a["output_fields"].clone());
    }
    // Fields alike (each agent turns kernel time into wall time on its own:
    // the alerts' times may differ by a few µs).
    assert_eq!(outputs[0], outputs[1], "the two forms replay to the same alert");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn config_file_routes_alerts_to_a_file_output() {
    preflight();
    let dir = std::env::temp_dir().join(unique("config"));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("config_file_rule", "/tmp/config-out")).unwrap();
    let alerts_file = dir.join("alerts.json");
    let config = dir.join("rampart.yaml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  default_rules: false\n  paths: [{}]\nalerts:\n  outputs:\n    stdout:\n      format: json\n    file:\n      enabled: true\n      path: {}\n",
            rules.display(),
            alerts_file.display()
        ),
    )
    .unwrap();
    // No --json and no --rules: both come from the config file.
    let mut agent =
        Agent::spawn(vec!["run".into(), "--config".into(), config.display().to_string()], StdoutMode::Parse);
    let c = Container::sh("config", &[], "echo x > /tmp/config-out");
    agent.expect("alert on stdout", |v| is_alert_of(v, "config_file_rule", &c.name));
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let text = std::fs::read_to_string(&alerts_file).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(&c.name)) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no alert for {} in {}", c.name, alerts_file.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    let a: Value = serde_json::from_str(&line).expect("the file output holds JSON alerts");
    assert_eq!(alert_rule(&a), "config_file_rule");
    assert_eq!(container_name(&a), c.name);
    assert_eq!(a["source"], "syscall");
    agent.stop();

    // A typo in the config is refused before the sensor starts.
    std::fs::write(&config, "alerts:\n  outputs:\n    stdot: {}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(with_free_metrics_port(vec!["run".into(), "--config".into(), config.display().to_string()]))
        .output()
        .expect("run rampart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad config must be refused: {stderr}");
    assert!(stderr.contains("stdot") && stderr.contains("rampart.yaml"), "{stderr}");
    assert!(!stderr.contains("sensor ready"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The in-kernel prefilter skips capability checks while no rule reads them
/// (an exec alone makes several); a rule on `capable` gets them.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn a_rule_on_capability_checks_gets_them_through_the_prefilter() {
    preflight();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(
        &file,
        "- rule: cap_denied\n  desc: d\n  condition: evt.type = capable and evt.arg.cap = CAP_SYS_ADMIN and evt.arg.granted = false and container.id != host\n  output: \"cap_denied %evt.arg.cap\"\n  priority: WARNING\n",
    )
    .unwrap();
    let mut agent =
        Agent::start_run(&["--no-default-rules", "--no-reload-on-change", "--rules", file.to_str().unwrap()]);
    // sethostname needs CAP_SYS_ADMIN, which a default container lacks.
    let c = Container::sh("capdenied", &[], &format!("{RTEST} sethostname rampart-denied; sleep 300"));
    agent.expect("the denied CAP_SYS_ADMIN check's alert", |v| {
        alert_rule(v) == "cap_denied" && container_name(v) == c.name
    });
    agent.stop();
}

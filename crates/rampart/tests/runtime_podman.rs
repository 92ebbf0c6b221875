//! The agent on a host running rootful podman (its API service on
//! /run/podman/podman.sock, found there without configuration): one container
//! running before the agent starts (found by the agent's first list), in a
//! podman pod, and one started after it (found through podman's events). An
//! exec inside each must carry the podman container's id, name, image, runtime
//! and labels (the pod's name as `io.podman.pod.name`).
//!
//! Needs root, dockerd (the test image is saved from Docker) and the podman
//! service (scripts/podman.sh start, run by scripts/setup.sh); fails, never
//! skips, without them.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};

const SOCKET: &str = "/run/podman/podman.sock";
/// The name `podman load` gives the image saved from Docker.
const PODMAN_IMAGE: &str = "localhost/rampart-test:latest";

fn podman(args: &[&str]) -> Result<String, String> {
    let out = Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running podman: {e} (apt-get install podman)"))?;
    if !out.status.success() {
        return Err(format!("podman {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn podman_ok(args: &[&str]) -> String {
    podman(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Root, dockerd, the test image in Docker, the podman service, and the image
/// loaded into podman.
fn podman_preflight() {
    preflight();
    let ping = Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket", SOCKET, "http://d/v4.0.0/libpod/_ping"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    match ping {
        Ok(s) if s == "OK" => {}
        other => panic!("podman's API service does not answer on {SOCKET} ({other:?}); start it with scripts/podman.sh start"),
    }
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {} save {IMAGE} | podman load -q >/dev/null", docker_bin()))
        .env("DOCKER_API_VERSION", "1.41")
        .status()
        .expect("running docker save | podman load");
    assert!(status.success(), "loading {IMAGE} into podman failed");
}

/// A podman container or pod, removed on drop.
struct Podman {
    kind: &'static str,
    name: String,
}

impl Podman {
    /// `podman run -d --name NAME ARGS rampart-test:latest sleep 300`; returns it and its id.
    fn run(prefix: &str, args: &[&str]) -> (Podman, String) {
        let name = unique(prefix);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        full.extend([IMAGE, "sleep", "300"]);
        let guard = Podman { kind: "container", name: name.clone() };
        let id = podman_ok(&full);
        assert!(is_full_id(&id), "podman run printed {id:?}");
        (guard, id)
    }

    fn pod(prefix: &str) -> Podman {
        let name = unique(prefix);
        // No infra container: it would need a pause image.
        podman_ok(&["pod", "create", "--infra=false", "--name", &name]);
        Podman { kind: "pod", name }
    }

    fn exec(&self, cmd: &[&str]) -> String {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(cmd);
        podman_ok(&args)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = match self.kind {
            "pod" => podman(&["pod", "rm", "-f", &self.name]),
            _ => podman(&["rm", "-f", "-t", "0", &self.name]),
        };
    }
}

fn assert_podman_container(v: &Value, id: &str, name: &str) {
    let c = container_of(v).unwrap_or_else(|| panic!("no container: {v}"));
    assert_eq!(c["id"], id, "container.id: {v}");
    assert_eq!(c["name"], name, "container.name: {v}");
    assert_eq!(c["image"], PODMAN_IMAGE, "container.image: {v}");
    assert_eq!(c["runtime"], "podman", "container.runtime: {v}");
}

#[test]
fn exec_in_podman_containers_names_them() {
    podman_preflight();
    // Before the agent, in a pod: found by the agent's first list.
    let pod = Podman::pod("podman-pod");
    let (early, early_id) = Podman::run("podman-early", &["--pod", &pod.name, "--label", "rampart.test=e2e"]);

    let mut agent = Agent::start(&[]);

    let mark = unique("podman-exec").replace("rampart-it-", "mark-");
    early.exec(&[RTEST, "nop", &mark]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark}` in podman container {}", early.name), |e| {
        is_exec_with(e, &mark)
    });
    assert_podman_container(&ev, &early_id, &early.name);
    let labels = &container_of(&ev).unwrap()["labels"];
    assert_eq!(labels["rampart.test"], "e2e", "labels: {ev}");
    assert_eq!(labels["io.podman.pod.name"], pod.name.as_str(), "pod label: {ev}");

    // After the agent: found through podman's events.
    let (late, late_id) = Podman::run("podman-late", &[]);
    let mark2 = unique("podman-exec2").replace("rampart-it-", "mark-");
    late.exec(&[RTEST, "nop", &mark2]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark2}` in podman container {}", late.name), |e| {
        is_exec_with(e, &mark2)
    });
    assert_podman_container(&ev, &late_id, &late.name);
    agent.stop();
}

/// `stop` on a container of a runtime other than Docker: rampart signals its
/// processes (SIGTERM, then cgroup.kill), and podman sees it exit.
#[test]
fn stop_action_stops_a_podman_container() {
    podman_preflight();
    let rules = std::env::temp_dir().join(format!("{}.yaml", unique("podman-stop-rules")));
    std::fs::write(
        &rules,
        r#"
- rule: Shadow read in podman stop test container
  desc: a process in a podman test container opened /etc/shadow
  condition: evt.type in (open, openat) and fd.name = /etc/shadow and container.name startswith rampart-it-podman-stop and container.type = podman
  output: "shadow read (container=%container.name)"
  priority: CRITICAL
  actions: [stop]
"#,
    )
    .expect("write rules");
    let mut agent = Agent::start_run(&["--no-default-rules", "--rules", rules.to_str().unwrap()]);
    // `sleep` ignores SIGTERM as PID 1 without a handler, so the grace period
    // runs out and cgroup.kill ends it: both phases of the stop are exercised.
    let (c, id) = Podman::run("podman-stop", &[]);
    // The stop may end this exec before podman reports it: its result is moot.
    let _ = podman(&["exec", &c.name, "sh", "-c", "read x < /etc/shadow"]);
    let action = agent.expect_within("stop action done", std::time::Duration::from_secs(60), |v| {
        alert_rule(v) == "Response action"
            && v["output_fields"]["action"] == "stop"
            && v["output_fields"]["outcome"] == "done"
    });
    assert_eq!(action["container"]["id"], id.as_str(), "{action:#}");
    let mut running = String::new();
    for _ in 0..50 {
        running = podman_ok(&["inspect", "-f", "{{.State.Running}}", &c.name]);
        if running == "false" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(running, "false", "podman still shows {} running", c.name);
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

/// `rampart caps` finds a podman container by name and decodes its sets.
#[test]
fn caps_shows_a_podman_containers_capabilities() {
    podman_preflight();
    let (c, id) = Podman::run("podman-caps", &["--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN"]);
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["caps", "--json", "--container", &c.name])
        .stdin(Stdio::null())
        .output()
        .expect("run rampart caps");
    assert!(out.status.success(), "rampart caps failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("caps --json is JSON");
    let entry = v.as_array().and_then(|a| a.first()).unwrap_or_else(|| panic!("no container in {v}"));
    assert_eq!(entry["id"], id.as_str(), "{entry}");
    assert_eq!(entry["name"], c.name.as_str(), "{entry}");
    let effective: Vec<&str> = entry["processes"][0]["effective"]
        .as_array()
        .unwrap_or_else(|| panic!("no processes in {entry}"))
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(effective.contains(&"CAP_SYS_ADMIN"), "{effective:?}");
    assert!(!effective.contains(&"CAP_CHOWN"), "{effective:?}");
}

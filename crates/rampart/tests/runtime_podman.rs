//! The agent on a host running rootful podman (its API service on
//! /run/podman/podman.sock, found there without configuration): one container
//! running before the agent starts (found by the agent's first list), in a
//! podman pod, and one started after it (found through podman's events). An
//! exec inside each must carry the podman container's id, name, image, runtime
//! and labels (the pod's name as `io.podman.pod.name`). The commands that act
//! on a container (the `stop` action, `freeze`, `netpolicy`, `isolate`,
//! `record`, `caps`) find podman containers by their podman name.
//!
//! Needs root, dockerd (the test image is saved from Docker) and the podman
//! service (scripts/podman.sh start, run by scripts/setup.sh); fails, never
//! skips, without them.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{podman, PODMAN_IMAGE};

fn podman_ok(args: &[&str]) -> String {
    podman(args).unwrap_or_else(|e| panic!("{e}"))
}

/// A podman container or pod, removed on drop.
struct Podman {
    kind: &'static str,
    name: String,
}

impl Podman {
    /// `podman run -d --name NAME ARGS rampart-test:latest sleep 300`; returns it and its id.
    fn run(prefix: &str, args: &[&str]) -> (Podman, String) {
        Podman::run_cmd(prefix, args, &["sleep", "300"])
    }

    /// `podman run -d --name NAME ARGS rampart-test:latest CMD...`; returns it and its id.
    fn run_cmd(prefix: &str, args: &[&str], cmd: &[&str]) -> (Podman, String) {
        let name = unique(prefix);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        full.push(IMAGE);
        full.extend_from_slice(cmd);
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

    /// `rtest ARGS` in the container: (succeeded, output).
    fn rtest(&self, args: &[&str]) -> (bool, String) {
        let mut exec = Command::new("podman");
        exec.args(["exec", self.name.as_str()]);
        rtest_through(exec, args)
    }

    fn inspect(&self, format: &str) -> String {
        podman_ok(&["inspect", "-f", format, &self.name])
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
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn exec_in_podman_containers_names_them() {
    preflight_podman();
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
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn stop_action_stops_a_podman_container() {
    preflight_podman();
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
    let action = agent.expect_within("stop action done", Duration::from_secs(60), |v| {
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
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(running, "false", "podman still shows {} running", c.name);
    agent.stop();
    let _ = std::fs::remove_file(rules);
}

/// `rampart caps` finds a podman container by name and decodes its sets.
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn caps_shows_a_podman_containers_capabilities() {
    preflight_podman();
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

/// The response commands find a podman container by its podman name and act
/// on its cgroup in the kernel: `freeze` stops its processes and `unfreeze`
/// resumes them; under `netpolicy apply` a connect to its own address on the
/// allowed port succeeds while another port and a forbidden bind fail with
/// EPERM, and the denial is an event naming the podman container; `isolate`
/// denies even the allowed port until released; `netpolicy remove` detaches.
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn response_commands_act_on_a_podman_container() {
    preflight_podman();
    let np = Np::new("podman-respond");
    let (c, id) = Podman::run_cmd(
        "podman-respond",
        &[],
        &["sh", "-c", "rtest tcp-echo 7000 & rtest tcp-echo 7001 & exec rtest count /tmp/counter"],
    );
    let pid: u32 = c.inspect("{{.State.Pid}}").parse().expect("pid");
    let ip = c.inspect("{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty(), "podman container {} has no address", c.name);
    wait_until("the counter and both echo servers", Duration::from_secs(10), || {
        counter(pid) > 0
            && c.rtest(&["tcp-connect", &ip, "7000"]).0
            && c.rtest(&["tcp-connect", &ip, "7001"]).0
    });

    let out = np.ok(&["freeze", "--container", &c.name]);
    assert!(out.contains("frozen with the cgroup v2 freezer"), "{out}");
    assert!(!progresses(pid), "the podman container's counter advanced while frozen");
    let out = np.ok(&["unfreeze", "--container", &c.name]);
    assert!(out.contains("thawed"), "{out}");
    assert!(progresses(pid), "the podman container's counter did not resume");

    let mut agent = np.events_agent(&["--container", &c.name]);
    let policy = np.write_policy(
        "podman",
        &format!(
            "egress:\n  default: deny\n  allow:\n    - {{cidr: {ip}/32, ports: [7000], protocol: tcp}}\ningress:\n  bind: {{default: deny, allow_ports: [8080]}}\n"
        ),
    );
    let out = np.ok(&["netpolicy", "apply", "--container", &c.name, "-f", policy.to_str().unwrap()]);
    assert!(out.contains("enforced on cgroup /libpod_parent/libpod-"), "{out}");
    assert_rtest_ok("connect to the allowed port", c.rtest(&["tcp-connect", &ip, "7000"]));
    assert_rtest_eperm("connect to another port", c.rtest(&["tcp-connect", &ip, "7001"]));
    assert_rtest_ok("bind of the allowed port", c.rtest(&["bind-port", "8080"]));
    assert_rtest_eperm("bind of another port", c.rtest(&["bind-port", "9090"]));
    let ev = agent.expect("netdeny of the connect to port 7001", |e| {
        is_type(e, "netdeny")
            && in_container(e, &id)
            && e["args"]["op"] == "connect"
            && e["args"]["addr"]["port"] == 7001
    });
    assert_podman_container(&ev, &id, &c.name);
    assert_eq!(ev["args"]["entry"], "egress.default", "{ev}");
    agent.expect("netdeny of the bind of port 9090", |e| {
        is_type(e, "netdeny")
            && in_container(e, &id)
            && e["args"]["op"] == "bind"
            && e["args"]["addr"]["port"] == 9090
    });

    np.ok(&["isolate", "--container", &c.name]);
    assert_rtest_eperm("connect to the allowed port while isolated", c.rtest(&["tcp-connect", &ip, "7000"]));
    np.ok(&["isolate", "--release", "--container", &c.name]);
    assert_rtest_ok("connect to the allowed port after release", c.rtest(&["tcp-connect", &ip, "7000"]));

    let out = np.ok(&["netpolicy", "remove", "--container", &c.name]);
    assert!(out.contains("detached"), "{out}");
    assert_rtest_ok("connect to any port after remove", c.rtest(&["tcp-connect", &ip, "7001"]));
    agent.stop();
}

/// `rampart record --container` attaches to a running podman container: the
/// recording names it and its runtime, and keeps podman's start configuration
/// (image, command), which `profile verify` replays with podman: the batch
/// exits 3 with and without the learned profiles, and a syscall outside them
/// is denied.
#[test]
#[ignore = "privileged: needs root, BPF, dockerd and podman (scripts/test.sh runs it)"]
fn record_and_verify_a_podman_container() {
    preflight_podman();
    // A batch of about 15 s: long enough for `record` to attach (the sensor
    // loads first) and to be replayed twice by verify.
    let batch =
        "i=0; while [ $i -lt 50 ]; do cat /etc/hostname > /dev/null; sleep 0.3; i=$((i+1)); done; exit 3";
    let (c, id) = Podman::run_cmd("podman-record", &[], &["sh", "-c", batch]);
    let dir = std::env::temp_dir().join(unique("podman-record"));
    let dir_arg = dir.to_str().unwrap();
    let rec = record_attached(&c.name, "3s", &dir);
    let recorded = &rec["containers"][0];
    assert_eq!(recorded["id"], id.as_str(), "{recorded}");
    assert_eq!(recorded["name"], c.name.as_str(), "{recorded}");
    assert_eq!(recorded["runtime"], "podman", "{recorded}");
    assert_eq!(rec["run"]["image"], PODMAN_IMAGE, "{:#}", rec["run"]);
    assert_eq!(rec["run"]["cmd"], serde_json::json!(["sh", "-c", batch]), "{:#}", rec["run"]);
    assert_eq!(rec["files"]["/etc/hostname"]["read"], true, "{:#}", rec["files"]);

    let out = rampart_output(&["profile", dir_arg], Duration::from_secs(60));
    assert!(out.status.success(), "rampart profile: {}", String::from_utf8_lossy(&out.stderr));
    let out = rampart_output(&["profile", "verify", dir_arg, "--timeout", "60s"], Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("verify.json")).expect("verify.json"))
            .unwrap();
    assert_eq!(report["baseline"]["exit_code"], 3, "{report:#}");
    assert_eq!(report["profiled"]["exit_code"], 3, "{report:#}");
    assert_eq!(report["denied_syscall"]["denied_with_eperm"], true, "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    let _ = std::fs::remove_dir_all(dir);
}

//! The agent on a host running plain containerd (`ctr`): containers in
//! non-default namespaces, one running before the agent starts (found by its
//! first list) and one started after it in a namespace created meanwhile (found
//! through containerd's events). An exec inside each must carry the container's
//! id, name, image, runtime and namespace.
//!
//! Needs root, dockerd (the test image is saved from Docker) and containerd on
//! /run/containerd/containerd.sock (scripts/setup.sh); fails, never skips,
//! without them.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const SOCKET: &str = "/run/containerd/containerd.sock";
/// The name `ctr images import` gives the image saved from Docker.
const CTR_IMAGE: &str = "docker.io/library/rampart-test:latest";

fn ctr(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ctr")
        .args(["--address", SOCKET, "-n", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ctr: {e} (apt-get install containerd)"))?;
    if !out.status.success() {
        return Err(format!(
            "ctr -n {ns} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn ctr_ok(ns: &str, args: &[&str]) -> String {
    ctr(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A containerd namespace with the test image, removed with all its
/// containers on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn new(prefix: &str) -> Namespace {
        preflight();
        if let Err(e) = ctr("default", &["version"]) {
            panic!("containerd does not answer on {SOCKET} ({e}); start it with scripts/containerd.sh start");
        }
        let name = unique(prefix);
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; {} save {IMAGE} | ctr --address {SOCKET} -n {name} images import - >/dev/null",
                docker_bin()
            ))
            .env("DOCKER_API_VERSION", "1.41")
            .status()
            .expect("running docker save | ctr images import");
        assert!(status.success(), "importing {IMAGE} into containerd namespace {name} failed");
        Namespace { name }
    }

    /// `ctr run -d LABELS IMAGE ID sleep 300`.
    fn run(&self, id: &str, labels: &[&str]) {
        let mut args = vec!["run", "-d"];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.extend([CTR_IMAGE, id, "sleep", "300"]);
        ctr_ok(&self.name, &args);
    }

    /// `ctr task exec` in container `id`; panics unless it exits 0.
    fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> String {
        let mut args = vec!["task", "exec", "--exec-id", exec_id, id];
        args.extend_from_slice(cmd);
        ctr_ok(&self.name, &args)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let ns = self.name.as_str();
        if let Ok(ids) = ctr(ns, &["containers", "ls", "-q"]) {
            for id in ids.lines() {
                let _ = ctr(ns, &["tasks", "kill", "-s", "SIGKILL", id]);
                let _ = ctr(ns, &["tasks", "rm", "-f", id]);
                let _ = ctr(ns, &["containers", "rm", id]);
            }
        }
        if let Ok(images) = ctr(ns, &["images", "ls", "-q"]) {
            for i in images.lines() {
                let _ = ctr(ns, &["images", "rm", "--sync", i]);
            }
        }
        // runc leaves the namespace's parent cgroup (`/<ns>`) behind in every
        // hierarchy; rmdir removes it once empty.
        if let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") {
            for m in mounts.flatten() {
                let _ = std::fs::remove_dir(m.path().join(ns));
            }
        }
        let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(ns));
        for _ in 0..20 {
            if ctr("default", &["namespaces", "rm", ns]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("warning: containerd namespace {ns} was not removed");
    }
}

fn assert_ctr_container(v: &Value, id: &str, name: &str, ns: &str) {
    let c = container_of(v).unwrap_or_else(|| panic!("no container: {v}"));
    assert_eq!(c["id"], id, "container.id: {v}");
    assert_eq!(c["name"], name, "container.name: {v}");
    assert_eq!(c["image"], CTR_IMAGE, "container.image: {v}");
    assert_eq!(c["runtime"], "containerd", "container.runtime: {v}");
    assert_eq!(c["runtime_namespace"], ns, "container.runtime_namespace: {v}");
}

#[test]
fn exec_in_ctr_containers_names_them() {
    // Before the agent: found by the agent's first list.
    let early = Namespace::new("ctrd-early");
    let early_id = format!("early-{}", std::process::id());
    let early_name = format!("nice-{early_id}");
    early.run(&early_id, &[&format!("nerdctl/name={early_name}"), "rampart.test=e2e"]);

    let mut agent = Agent::start(&[]);

    let mark = unique("ctrd-exec").replace("rampart-it-", "mark-");
    early.exec(&early_id, "e1", &[RTEST, "nop", &mark]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark}` in ctr container {early_id}"), |e| {
        is_exec_with(e, &mark)
    });
    assert_ctr_container(&ev, &early_id, &early_name, &early.name);
    assert_eq!(container_of(&ev).unwrap()["labels"]["rampart.test"], "e2e", "labels: {ev}");

    // After the agent, in a namespace it has never seen: found through events.
    let late = Namespace::new("ctrd-late");
    let late_id = format!("late-{}", std::process::id());
    late.run(&late_id, &[]);
    let mark2 = unique("ctrd-exec2").replace("rampart-it-", "mark-");
    late.exec(&late_id, "e2", &[RTEST, "nop", &mark2]);
    let ev = agent.expect(&format!("exec of `rtest nop {mark2}` in ctr container {late_id}"), |e| {
        is_exec_with(e, &mark2)
    });
    // Without a name label, containerd's id is the name.
    assert_ctr_container(&ev, &late_id, &late_id, &late.name);
    agent.stop();
}

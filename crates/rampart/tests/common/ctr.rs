//! containerd through `ctr`, for the tests of containerd and of the commands
//! on its containers: a namespace of the test's own with the test image
//! imported, containers run in it, execs, and cleanup.

use super::*;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const SOCKET: &str = "/run/containerd/containerd.sock";
/// The name `ctr images import` gives the image saved from Docker.
pub const CTR_IMAGE: &str = "docker.io/library/rampart-test:latest";

pub fn ctr(ns: &str, args: &[&str]) -> Result<String, String> {
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

pub fn ctr_ok(ns: &str, args: &[&str]) -> String {
    ctr(ns, args).unwrap_or_else(|e| panic!("{e}"))
}

/// A containerd namespace with the test image, removed with all its
/// containers on drop.
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    pub fn new(prefix: &str) -> Namespace {
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
    pub fn run(&self, id: &str, labels: &[&str]) {
        self.run_cmd(id, labels, &["sleep", "300"]);
    }

    /// `ctr run -d LABELS IMAGE ID CMD...`.
    pub fn run_cmd(&self, id: &str, labels: &[&str], cmd: &[&str]) {
        let mut args = vec!["run", "-d"];
        for l in labels {
            args.extend(["--label", l]);
        }
        args.extend([CTR_IMAGE, id]);
        args.extend_from_slice(cmd);
        ctr_ok(&self.name, &args);
    }

    /// The host pid of container `id`'s task, from `ctr tasks ls`.
    pub fn pid(&self, id: &str) -> u32 {
        let tasks = ctr_ok(&self.name, &["tasks", "ls"]);
        tasks
            .lines()
            .find_map(|l| {
                let mut cols = l.split_whitespace();
                (cols.next() == Some(id)).then(|| cols.next()?.parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no task {id} in:\n{tasks}"))
    }

    /// `rtest ARGS` in container `id` (a fresh exec id each call): (succeeded, output).
    pub fn rtest(&self, id: &str, args: &[&str]) -> (bool, String) {
        let mut exec = Command::new("ctr");
        exec.args(["--address", SOCKET, "-n", &self.name, "task", "exec", "--exec-id"]);
        exec.args([unique("x").as_str(), id]);
        rtest_through(exec, args)
    }

    /// `ctr task exec` in container `id`; panics unless it exits 0.
    pub fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> String {
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

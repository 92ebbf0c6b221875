//! containerd through `ctr`, for the tests of containerd and of the commands
//! on its containers: a namespace of the test's own with the test image
//! imported, containers run in it, execs, and cleanup.

use super::*;
use std::process::Command;

pub use testkit::{ctr, CONTAINERD_SOCKET as SOCKET, CTR_IMAGE};

/// A 64-hex container id derived from `seed` (four FNV-1a hashes): taken
/// for a container id in any containerd namespace (as nerdctl gives), so
/// the kernel marks its cgroup at creation.
pub fn hex_id(seed: &str) -> String {
    (0..4).map(|round| format!("{:016x}", model::fnv1a(format!("{seed}\0{round}").as_bytes()))).collect()
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
        preflight_containerd();
        let name = unique(prefix);
        testkit::import_into_containerd(&name);
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
        testkit::remove_containerd_namespace(&self.name);
    }
}

//! `rampart status` finds every runtime the machine runs and reports its health.
//! CI starts dockerd, a standalone containerd (with its CRI plugin) and podman's
//! API service (scripts/setup.sh), so all four clients must connect here.

mod common;

use common::{preflight_containerd, preflight_podman};
use serde_json::Value;

fn status(extra: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["status", "--json"])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rampart status");
    assert!(out.status.success(), "rampart status --json failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("status --json is not JSON ({e}):\n{}", String::from_utf8_lossy(&out.stdout))
    })
}

fn runtimes(v: &Value) -> Vec<(String, String, bool)> {
    v["runtimes"]["runtimes"]
        .as_array()
        .unwrap_or_else(|| panic!("no runtimes in status: {v}"))
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_string(),
                r["endpoint"].as_str().unwrap_or_default().to_string(),
                r["connected"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
#[ignore = "privileged: needs root, BPF, dockerd, containerd with its CRI plugin and podman (scripts/test.sh runs it)"]
fn status_lists_every_running_runtime_connected() {
    preflight_containerd();
    preflight_podman();
    let v = status(&[]);
    let found = runtimes(&v);
    let connected =
        |name: &str, endpoint: &str| found.iter().any(|(n, e, c)| n == name && e.ends_with(endpoint) && *c);
    assert!(connected("docker", "/docker.sock"), "docker not connected: {found:?}");
    assert!(
        connected("containerd", "/run/containerd/containerd.sock"),
        "containerd not connected: {found:?}"
    );
    assert!(
        connected("cri-containerd", "/run/containerd/containerd.sock"),
        "containerd's CRI plugin not connected: {found:?}"
    );
    assert!(connected("podman", "/run/podman/podman.sock"), "podman not connected: {found:?}");
}

#[test]
#[ignore = "privileged: needs root and BPF (scripts/test.sh runs it)"]
fn status_reports_an_unreachable_runtime_and_honours_off() {
    testkit::require_bpf();
    let dir = tempfile_dir();
    let missing = format!("{dir}/crio.sock");
    let v = status(&["--crio-socket", &missing, "--podman-socket", "off", "--containerd-socket", "off"]);
    let found = runtimes(&v);
    assert!(!found.iter().any(|(n, _, _)| n == "podman" || n == "containerd"), "off ignored: {found:?}");
    let crio = v["runtimes"]["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"].as_str() == Some(missing.as_str()))
        .unwrap_or_else(|| panic!("the configured CRI socket is not listed: {found:?}"));
    assert_eq!(crio["connected"], false, "{crio}");
    assert!(
        crio["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "no error for a missing socket: {crio}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> String {
    let dir = std::env::temp_dir().join(common::unique("rampart-rt"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The container runtime a container id was recognised from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Docker,
    Containerd,
    Crio,
    Podman,
    /// A Kubernetes pod cgroup whose container runtime could not be told.
    Kubernetes,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "crio",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
        }
    }
}

/// A mount of a container, as its runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub destination: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    /// The mode string the mount was requested with (Docker's `ro,rslave`, `z`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
}

/// A container, as far as rampart knows it.
///
/// `id` and `runtime` come from the cgroup path and are always present; the rest
/// comes from the runtime's API and is empty while that API is unreachable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Full container id (64 hex characters for Docker).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub name: String,
    /// Image reference as the container was created with (e.g. `nginx:1.25`).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub image: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub image_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub mounts: Vec<Mount>,
    /// The container shares the host's pid namespace (`--pid host`, `hostPID`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub host_pid: bool,
    /// The container shares the host's network namespace.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub host_network: bool,
    /// The container shares the host's IPC namespace.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub host_ipc: bool,
    /// The user the container's process runs as (`""` means the image default, root).
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod_uid: Option<String>,
    /// The pod's labels (from the CRI pod sandbox; empty outside Kubernetes).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub pod_labels: BTreeMap<String, String>,
    /// The runtime's own namespace the container lives in (containerd's
    /// namespace, e.g. `k8s.io`; none for Docker and podman).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub runtime_namespace: Option<String>,
    /// The cgroup v2 path (relative to the cgroup2 mount) the container lives in.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub cgroup_path: String,
    /// The overlay upper directory on the host, when the runtime tells it; used to
    /// decide whether an executable lives in the container's writable layer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub upper_dir: Option<String>,
    /// When the container was created, ns since the epoch (Docker's and
    /// podman's `Created`, containerd's and CRI's `created_at`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_ns: Option<u64>,
}

impl Container {
    /// The first 12 characters of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Whether `query` names this container: its name (with or without Docker's
    /// leading `/`) or a prefix of its id.
    pub fn matches(&self, query: &str) -> bool {
        let query = query.trim_start_matches('/');
        !query.is_empty() && (self.name.trim_start_matches('/') == query || self.id.starts_with(query))
    }

    /// Whether the runtime has filled in metadata (name at least).
    pub fn has_metadata(&self) -> bool {
        !self.name.is_empty()
    }
}

/// A container's resource use over the agent's last sampling window (about
/// one second), for the `container.cpu_share`-style rule fields. Each figure
/// is `None` where its source is off or not sampled twice yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerRates {
    /// CPU time over the window, in percent of one CPU (200: two CPUs busy).
    pub cpu_percent: Option<u64>,
    /// Syscalls entered per second.
    pub syscalls_per_s: Option<u64>,
    /// IP bytes received per second.
    pub net_rx_bytes_per_s: Option<u64>,
    /// IP bytes sent per second.
    pub net_tx_bytes_per_s: Option<u64>,
}

/// The container runtime API sockets whose exposure hands over the host.
const RUNTIME_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/run/cri-dockerd.sock",
    "/run/k3s/containerd/containerd.sock",
];

/// Whether a mount of host path `source` makes a runtime socket reachable: the
/// socket itself or a directory above it (`/var/run` is the usual link to
/// `/run`). Only absolute host paths count: tmpfs and named volumes have no
/// path source.
pub fn exposes_runtime_socket(source: &str) -> bool {
    if !source.starts_with('/') {
        return false;
    }
    let trimmed = source.trim_end_matches('/');
    let norm = match trimmed.strip_prefix("/var/run") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("/run{rest}"),
        _ => trimmed.to_string(),
    };
    RUNTIME_SOCKETS.iter().any(|s| *s == norm || norm.is_empty() || s.starts_with(&format!("{norm}/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_name_and_id_prefix() {
        let c = Container { id: "0123456789abcdef".into(), name: "web".into(), ..Default::default() };
        assert!(c.matches("web"));
        assert!(c.matches("/web"));
        assert!(c.matches("0123"));
        assert!(!c.matches("we"));
        assert!(!c.matches("123"));
        assert!(!c.matches(""));
        assert_eq!(c.short_id(), "0123456789ab");
    }
}

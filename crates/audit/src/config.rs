//! The normalised configuration a container runs with, whatever described it
//! (Docker inspect, an OCI runtime bundle, a Kubernetes pod spec). Checks read
//! only this type.

use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where a configuration came from; decides how remediations are phrased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A container of the Docker Engine (`docker inspect`).
    Docker,
    /// An OCI runtime bundle's `config.json` (runc, crun, containerd shims).
    Oci,
    /// A container of a Kubernetes pod or pod template.
    Kubernetes,
    /// A running container of containerd (its own API: `ctr`, nerdctl), or of
    /// containerd's CRI plugin (then [`Subject::pod`] is set), audited from the
    /// OCI spec the runtime wrote for it.
    Containerd,
    /// A running container of CRI-O, audited from its OCI spec.
    Crio,
    /// A running container of podman, audited from its OCI spec.
    Podman,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Docker => "docker",
            SourceKind::Oci => "oci",
            SourceKind::Kubernetes => "kubernetes",
            SourceKind::Containerd => "containerd",
            SourceKind::Crio => "crio",
            SourceKind::Podman => "podman",
        }
    }

    /// A running container (as opposed to a file describing one).
    pub fn is_running(self) -> bool {
        !matches!(self, SourceKind::Oci | SourceKind::Kubernetes)
    }
}

/// A file position (1-based), for SARIF locations and readable reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// One audited container: identity plus configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    pub kind: SourceKind,
    /// Docker: the container name; Kubernetes: `namespace/Kind/name/container`;
    /// OCI: the bundle's config file path; containerd, CRI-O, podman: the
    /// container's name (`namespace/pod/container` for a Kubernetes pod's).
    pub name: String,
    /// Docker and the other runtimes: the full container id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The Kubernetes pod (`namespace/name`) of a running container started
    /// through the CRI; remediations are then phrased for the pod spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// containerd's namespace of the container (`default`, `k8s.io`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_namespace: Option<String>,
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The container's root filesystem as this host can read it
    /// (`/proc/<pid>/root` of a running container, an OCI bundle's rootfs),
    /// for the image content checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    /// Kubernetes: which list the container is in (`containers`,
    /// `initContainers`, `ephemeralContainers`), for remediation text.
    #[serde(skip)]
    pub k8s_list: &'static str,
    pub config: ContainerConfig,
}

/// The user a container's process starts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum UserSpec {
    /// Nothing set here: the image's USER decides (Kubernetes without
    /// runAsUser). Docker reports the image's USER merged, so for Docker an
    /// empty user is root and is given as `Uid(0)`.
    ImageDefault,
    Uid(u32),
    /// A user name that could not be resolved to a uid (no rootfs to read
    /// `/etc/passwd` from).
    Name(String),
}

/// A Linux security module profile (AppArmor or SELinux).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum MacProfile {
    /// The runtime's default profile applies (`docker-default`, RuntimeDefault,
    /// or nothing set where the runtime applies its default).
    RuntimeDefault,
    /// A named profile or label.
    Named(String),
    /// Confinement explicitly turned off (`apparmor=unconfined`, `label=disable`,
    /// `Unconfined`).
    Disabled,
    /// No profile is applied (the host has no such LSM, or the config sets none).
    None,
}

/// The seccomp filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Seccomp {
    RuntimeDefault,
    /// A custom or localhost profile (described).
    Custom(String),
    /// No filter: explicitly unconfined, privileged, or an OCI config without one.
    Unconfined,
    /// Not set in a Kubernetes spec: the kubelet's default, which is Unconfined
    /// unless it runs with `--seccomp-default`.
    Unset,
}

/// Namespaces shared with the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HostNamespaces {
    pub pid: bool,
    pub ipc: bool,
    pub uts: bool,
    pub network: bool,
    /// Explicitly the host's user namespace (`--userns host`, `hostUsers: true`
    /// where the runtime would otherwise remap). Runtimes without user namespace
    /// remapping share it anyway; that default is not reported.
    pub user: bool,
    pub cgroup: bool,
}

/// A mount into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountSpec {
    /// Host path for bind mounts and hostPath volumes; volume name or
    /// filesystem type otherwise.
    pub source: String,
    pub destination: String,
    /// Whether `source` is a host path (bind mount, hostPath volume).
    pub host_path: bool,
    pub read_only: bool,
    /// `rshared`, `shared`, `rslave`, ... (empty when not set).
    pub propagation: String,
}

/// A host device made available in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: String,
    /// cgroup permissions (`rwm`).
    pub permissions: String,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Empty, `0.0.0.0` or `::` mean every interface.
    pub host_ip: String,
    /// 0 when the runtime picks one.
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl PortSpec {
    pub fn all_interfaces(&self) -> bool {
        matches!(self.host_ip.as_str(), "" | "0.0.0.0" | "::" | "[::]")
    }
}

/// Resource limits (`None` = unlimited; for settings a source cannot express,
/// see [`ContainerConfig::pids_applicable`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// A CPU limit or priority, described (`0.5 cpus`, `quota 50000/100000`,
    /// `shares 512`, `cpuset 0-1`).
    pub cpu: Option<String>,
    pub pids: Option<i64>,
}

/// The restart policy (Docker only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartPolicy {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    pub max_retries: i64,
}

/// Everything the checks look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerConfig {
    pub user: UserSpec,
    /// The raw user text, for evidence (`1000:1000`, `nginx`, `runAsUser: 0`).
    pub user_text: String,
    /// Kubernetes `runAsNonRoot: true` (the kubelet refuses to start as uid 0).
    pub run_as_non_root: bool,
    pub privileged: bool,
    /// `no-new-privileges` / `allowPrivilegeEscalation: false` /
    /// `noNewPrivileges: true`.
    pub no_new_privileges: bool,
    /// Capabilities the process can have (the bounding set), without the
    /// `CAP_` prefix, upper case.
    pub capabilities: BTreeSet<String>,
    /// As requested, for evidence and remediation.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: Seccomp,
    pub apparmor: MacProfile,
    pub selinux: MacProfile,
    /// Kubernetes seLinuxOptions that PSS baseline forbids (custom user or
    /// role, a type outside the container types), described.
    pub selinux_violation: Option<String>,
    pub host_namespaces: HostNamespaces,
    pub mounts: Vec<MountSpec>,
    pub devices: Vec<DeviceSpec>,
    /// Device cgroup rules that allow more than the runtime's defaults.
    pub device_rules: Vec<String>,
    pub read_only_rootfs: bool,
    /// /proc and /sys paths not masked (`systempaths=unconfined`,
    /// `procMount: Unmasked`, an OCI config without maskedPaths).
    pub unmasked_paths: bool,
    pub resources: Resources,
    /// Whether a PIDs limit can be set in this kind of config (not in a pod spec).
    pub pids_applicable: bool,
    pub ports: Vec<PortSpec>,
    /// Kubernetes hostPort entries (PSS baseline: Host Ports).
    pub host_ports_k8s: bool,
    pub restart: Option<RestartPolicy>,
    /// `Some(true)` health check (or probe) set, `Some(false)` none, `None`
    /// not applicable (OCI).
    pub health_check: Option<bool>,
    pub sysctls: Vec<(String, String)>,
    /// The `PATH` the container's process gets, for the image checks.
    pub path_env: Option<String>,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            user: UserSpec::ImageDefault,
            user_text: String::new(),
            run_as_non_root: false,
            privileged: false,
            no_new_privileges: false,
            capabilities: default_capabilities(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            seccomp: Seccomp::RuntimeDefault,
            apparmor: MacProfile::RuntimeDefault,
            selinux: MacProfile::None,
            selinux_violation: None,
            host_namespaces: HostNamespaces::default(),
            mounts: Vec::new(),
            devices: Vec::new(),
            device_rules: Vec::new(),
            read_only_rootfs: false,
            unmasked_paths: false,
            resources: Resources::default(),
            pids_applicable: true,
            ports: Vec::new(),
            host_ports_k8s: false,
            restart: None,
            health_check: None,
            sysctls: Vec::new(),
            path_env: None,
        }
    }
}

/// The capabilities Docker, containerd and CRI-O give a container by default
/// (moby's `oci/caps/defaults.go`; CRI-O has a shorter list, so this errs on
/// the side of not reporting).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Capabilities that give a container a way out or power over the host (each
/// is a known escape or host-control primitive).
pub const DANGEROUS_CAPABILITIES: &[&str] = &[
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "SYSLOG",
    "LINUX_IMMUTABLE",
    "SYS_RESOURCE",
];

pub fn default_capabilities() -> BTreeSet<String> {
    DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
}

/// Every capability the kernel knows, without the prefix.
pub fn all_capabilities() -> BTreeSet<String> {
    model::names::CAPABILITIES.iter().map(|c| c.trim_start_matches("CAP_").to_string()).collect()
}

/// `cap_sys_admin`, `CAP_SYS_ADMIN`, `sys_admin` -> `SYS_ADMIN`.
pub fn normalize_cap(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// The bounding set after adding and dropping from `base` (`ALL` handled as
/// the runtimes do: drops apply after adds, except that an explicit add wins
/// over `drop ALL`).
pub fn apply_caps(base: BTreeSet<String>, add: &[String], drop: &[String]) -> BTreeSet<String> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect();
    let mut caps = base;
    if add.iter().any(|c| c == "ALL") {
        caps = all_capabilities();
    } else {
        caps.extend(add.iter().cloned());
    }
    if drop.iter().any(|c| c == "ALL") {
        // Docker and the CRI keep what was explicitly added when ALL is dropped.
        caps = if add.iter().any(|c| c == "ALL") { BTreeSet::new() } else { add.iter().cloned().collect() };
    } else {
        for d in &drop {
            caps.remove(d);
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn caps_arithmetic() {
        let all = apply_caps(default_capabilities(), &v(&["ALL"]), &v(&["SYS_RESOURCE"]));
        assert!(all.contains("SYS_ADMIN") && !all.contains("SYS_RESOURCE"));
        assert_eq!(all.len(), all_capabilities().len() - 1);
        let none = apply_caps(default_capabilities(), &[], &v(&["ALL"]));
        assert!(none.is_empty());
        let nbs = apply_caps(default_capabilities(), &v(&["net_bind_service"]), &v(&["ALL"]));
        assert_eq!(nbs.into_iter().collect::<Vec<_>>(), v(&["NET_BIND_SERVICE"]));
        let admin = apply_caps(default_capabilities(), &v(&["CAP_SYS_ADMIN"]), &v(&["NET_RAW"]));
        assert!(admin.contains("SYS_ADMIN") && !admin.contains("NET_RAW") && admin.contains("CHOWN"));
        assert_eq!(normalize_cap(" cap_net_raw"), "NET_RAW");
    }
}

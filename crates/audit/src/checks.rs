//! The checks: a catalog (id, title, severity, references, help) and the
//! evaluation of one [`Subject`]'s configuration against it.
//!
//! CIS numbers are those of the CIS Docker Benchmark v1.6.0 (section 5
//! "Container Runtime Configuration", section 4 "Container Images and Build
//! File"); PSS names are the controls of the Kubernetes Pod Security
//! Standards (baseline and restricted profiles).

use crate::config::{
    ContainerConfig, MacProfile, Seccomp, SourceKind, Subject, UserSpec, DANGEROUS_CAPABILITIES,
    DEFAULT_CAPABILITIES,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How bad a finding is. Ordered: `Critical` is the greatest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// SARIF result level.
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Critical | Severity::High => "error",
            Severity::Medium => "warning",
            Severity::Low | Severity::Info => "note",
        }
    }

    /// The `security-severity` score code scanning tools sort by (0.0-10.0).
    pub fn score(self) -> &'static str {
        match self {
            Severity::Critical => "9.5",
            Severity::High => "8.0",
            Severity::Medium => "5.5",
            Severity::Low => "3.0",
            Severity::Info => "1.0",
        }
    }

    /// The severity of an alert priority (for runtime context).
    pub fn from_priority(p: model::Priority) -> Severity {
        use model::Priority as P;
        match p {
            P::Emergency | P::Alert | P::Critical => Severity::Critical,
            P::Error => Severity::High,
            P::Warning => Severity::Medium,
            P::Notice => Severity::Low,
            P::Informational | P::Debug => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown severity {s:?} (expected critical, high, medium, low or info)"))
    }
}

/// One check of the catalog.
#[derive(Debug)]
pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    /// The usual severity; some findings raise or lower it (a read-only mount,
    /// a dangerous capability).
    pub severity: Severity,
    /// CIS Docker Benchmark v1.6.0 recommendation numbers.
    pub cis: &'static [&'static str],
    /// Pod Security Standards controls (`baseline: Host Namespaces`).
    pub pss: &'static [&'static str],
    pub help: &'static str,
}

impl CheckDef {
    /// References as one line: `CIS 5.5; PSS baseline: Privileged Containers`.
    pub fn references(&self) -> String {
        let mut parts = Vec::new();
        if !self.cis.is_empty() {
            parts.push(format!("CIS Docker 1.6.0 {}", self.cis.join(", ")));
        }
        for p in self.pss {
            parts.push(format!("PSS {p}"));
        }
        parts.join("; ")
    }
}

macro_rules! check {
    ($id:literal, $sev:ident, $cis:expr, $pss:expr, $title:literal, $help:literal) => {
        CheckDef { id: $id, title: $title, severity: Severity::$sev, cis: $cis, pss: $pss, help: $help }
    };
}

/// Every check, in report order.
pub static CHECKS: &[CheckDef] = &[
    check!("privileged", Critical, &["5.5"], &["baseline: Privileged Containers"], "Container runs privileged",
        "A privileged container has every capability, every host device, no seccomp filter and no AppArmor profile: root in it is root on the host."),
    check!("runtime-socket-mount", Critical, &["5.32"], &["baseline: HostPath Volumes"], "Container runtime socket mounted",
        "Whoever can reach docker.sock (or containerd's, CRI-O's, podman's socket) can start a privileged container with the host's / mounted: it is root on the host."),
    check!("sensitive-mount", High, &["5.6"], &["baseline: HostPath Volumes"], "Sensitive host path mounted",
        "Host system directories (/, /etc, /proc, /sys, /boot, /dev, /usr, /lib, /var/lib/docker, ...) mounted into a container let it read secrets or change the host."),
    check!("host-pid", High, &["5.16"], &["baseline: Host Namespaces"], "Host PID namespace shared",
        "With the host's pid namespace the container sees every host process, can signal them and, with ptrace or /proc/<pid>/root, reach into them."),
    check!("host-network", High, &["5.10"], &["baseline: Host Namespaces"], "Host network namespace shared",
        "With the host's network the container can bind any host port, reach services listening on loopback and sniff with NET_RAW."),
    check!("host-ipc", Medium, &["5.17"], &["baseline: Host Namespaces"], "Host IPC namespace shared",
        "With the host's IPC namespace the container can read and write host shared memory segments and semaphores."),
    check!("host-uts", Low, &["5.21"], &[], "Host UTS namespace shared",
        "With the host's UTS namespace the container can change the host's hostname."),
    check!("host-userns", Medium, &["5.31"], &[], "Host user namespace explicitly shared",
        "The container was set to use the host's user namespace even though the daemon remaps users: uid 0 in it is uid 0 on the host."),
    check!("host-cgroupns", Info, &[], &[], "Host cgroup namespace shared",
        "With the host's cgroup namespace the container sees the host's cgroup tree and its own place in it (Docker's default on cgroup v1 hosts)."),
    check!("cap-added", High, &["5.4"], &["baseline: Capabilities", "restricted: Capabilities"], "Capabilities added",
        "Capabilities beyond the runtime's default set; SYS_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, NET_ADMIN and similar are known escape primitives."),
    check!("cap-not-dropped", Low, &["5.4"], &["restricted: Capabilities"], "Capabilities not dropped",
        "The container keeps the default capabilities. Drop ALL and add back only what it needs (at most NET_BIND_SERVICE for PSS restricted)."),
    check!("seccomp-unconfined", High, &["5.22"], &["baseline: Seccomp", "restricted: Seccomp"], "No seccomp filter",
        "Without a seccomp filter every system call reaches the kernel, including the ones container escapes use (keyctl, bpf, userfaultfd, unshare, mount, ...)."),
    check!("mac-disabled", Medium, &["5.2", "5.3"], &["baseline: AppArmor", "baseline: SELinux"], "AppArmor or SELinux confinement disabled",
        "AppArmor or SELinux confinement was turned off (or a custom SELinux user/role/type set) for this container."),
    check!("no-mac-profile", Low, &["5.2", "5.3"], &[], "No AppArmor profile or SELinux label",
        "Neither an AppArmor profile nor an SELinux label confines the container (the host may lack both LSMs)."),
    check!("no-new-privileges", Medium, &["5.26"], &["restricted: Privilege Escalation"], "Privilege escalation not blocked",
        "Without no-new-privileges a process can gain privileges through setuid/setgid binaries and file capabilities."),
    check!("run-as-root", Medium, &["4.1"], &["restricted: Running as Non-root", "restricted: Running as Non-root user"], "Runs as root",
        "The container's process runs as uid 0: any escape or writable host mount is root's."),
    check!("shared-propagation", Medium, &["5.20"], &[], "Mount propagation shared",
        "A shared (rshared) mount propagates mounts made in the container back to the host."),
    check!("host-device", High, &["5.18"], &[], "Host device exposed",
        "A host device node in the container gives direct access to hardware or kernel interfaces (disks, /dev/mem, /dev/kmsg, ...)."),
    check!("unmasked-proc", Medium, &[], &["baseline: /proc Mount Type"], "/proc and /sys paths not masked",
        "The runtime's masking of sensitive /proc and /sys paths (kcore, sysrq-trigger, ...) is off."),
    check!("writable-rootfs", Low, &["5.13"], &[], "Root filesystem writable",
        "A writable root filesystem lets an intruder change binaries and configuration of the running image."),
    check!("no-memory-limit", Medium, &["5.11"], &[], "No memory limit",
        "Without a memory limit one container can exhaust the host's memory."),
    check!("no-cpu-limit", Low, &["5.12"], &[], "No CPU limit or priority",
        "Without a CPU limit or shares one container can starve the others."),
    check!("no-pids-limit", Medium, &["5.29"], &[], "No PIDs limit",
        "Without a PIDs limit a fork bomb in the container exhausts the host's process table."),
    check!("port-all-interfaces", Medium, &["5.14"], &["baseline: Host Ports"], "Port published on all interfaces",
        "A port published without a host address listens on every interface of the host."),
    check!("privileged-port", Low, &["5.8"], &[], "Privileged host port mapped",
        "A host port below 1024 is mapped to the container."),
    check!("host-port", Low, &[], &["baseline: Host Ports"], "Host port used",
        "The pod binds a port on the node (hostPort)."),
    check!("restart-policy", Low, &["5.15"], &[], "Restart policy unbounded",
        "`always`, `unless-stopped` or `on-failure` without a small retry limit restart a crashing (or attacked) container forever."),
    check!("no-healthcheck", Low, &["5.27", "4.6"], &[], "No health check",
        "Without a health check (probe) a hung or hijacked service keeps running unnoticed."),
    check!("unsafe-sysctl", Medium, &[], &["baseline: Sysctls"], "Unsafe sysctl set",
        "Only a small set of namespaced sysctls is safe to set for a container."),
    check!("host-path-mount", Low, &[], &["baseline: HostPath Volumes"], "Host path mounted",
        "A hostPath volume ties the pod to a node's filesystem."),
    check!("image-shell", Low, &["4.3"], &[], "Shell in the image",
        "A shell in a production image is the first tool of an intruder; distroless images ship none."),
    check!("image-package-manager", Low, &["4.3"], &[], "Package manager in the image",
        "A package manager lets an intruder install tools at run time."),
    check!("image-setuid", Medium, &["4.8"], &[], "setuid/setgid binaries in the image",
        "setuid and setgid binaries are the classic way from an unprivileged user to root."),
    check!("image-world-writable-path", Medium, &[], &[], "World-writable directory in PATH",
        "Anyone in the container can plant a program in a world-writable directory that is searched for commands."),
    check!("runtime-alerts", Medium, &[], &[], "Container raised alerts at run time",
        "rampart's detection rules fired for this container; its configuration findings say what an intruder could reach from it."),
];

pub fn check_def(id: &str) -> Option<&'static CheckDef> {
    CHECKS.iter().find(|c| c.id == id)
}

/// One finding: a check that failed for a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    /// What was seen (the setting and its value).
    pub evidence: String,
    /// What distinguishes this finding among those of the same check and
    /// subject (a mount's source, a port, a capability list); part of the
    /// fingerprint.
    pub key: String,
    /// The exact change: a docker flag, an OCI config field, a pod spec snippet.
    pub remediation: String,
    /// Stable identity of the finding (check, subject, key), for baselines
    /// and SARIF `partialFingerprints`; set by the report.
    pub fingerprint: String,
    /// Accepted by the baseline: reported, but not counted by `--fail-on`.
    pub baselined: bool,
}

impl Finding {
    pub fn def(&self) -> &'static CheckDef {
        check_def(self.check).expect("findings use catalog ids")
    }
}

struct Out<'a> {
    subject: &'a Subject,
    findings: Vec<Finding>,
}

impl Out<'_> {
    fn add(
        &mut self,
        check: &'static str,
        severity: Option<Severity>,
        evidence: String,
        key: &str,
        fix: String,
    ) {
        let def = check_def(check).expect("catalog id");
        self.findings.push(Finding {
            check,
            severity: severity.unwrap_or(def.severity),
            evidence,
            key: key.to_string(),
            remediation: fix,
            fingerprint: String::new(),
            baselined: false,
        });
    }

    /// Remediation phrased for how the subject is configured: Docker flags,
    /// the same flags for podman (its CLI takes Docker's), the pod spec for a
    /// container of a Kubernetes pod whatever its runtime, OCI fields otherwise.
    fn fix(&self, docker: &str, oci: &str, k8s: &str) -> String {
        match self.subject.kind {
            _ if self.subject.pod.is_some() => k8s.to_string(),
            SourceKind::Kubernetes => k8s.to_string(),
            SourceKind::Docker => docker.to_string(),
            SourceKind::Podman => docker
                .replace(" (or set \"no-new-privileges\": true in daemon.json)", "")
                .replace("(Docker then applies docker-default)", "(podman then applies its default)")
                .replace("docker ", "podman "),
            SourceKind::Oci | SourceKind::Containerd | SourceKind::Crio => oci.to_string(),
        }
    }

    /// `spec.containers[name=web].securityContext` style path for YAML fixes.
    fn k8s_ctx(&self) -> String {
        let container = self.subject.name.rsplit('/').next().unwrap_or("");
        let list = if self.subject.k8s_list.is_empty() { "containers" } else { self.subject.k8s_list };
        format!("{list}[name={container}].securityContext")
    }
}

/// Whether a host path is one CIS 5.6 calls sensitive: a system directory
/// itself, anything below /proc, /sys, /dev or /boot, or a directory above one.
pub fn sensitive_host_path(source: &str) -> bool {
    const DIRS: &[&str] = &[
        "/",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib64",
        "/proc",
        "/sys",
        "/usr",
        "/bin",
        "/sbin",
        "/root",
        "/var/lib/docker",
        "/var/lib/containerd",
        "/var/lib/kubelet",
        "/etc/kubernetes",
        "/var/log",
        "/home",
    ];
    const BELOW: &[&str] =
        &["/proc/", "/sys/", "/dev/", "/boot/", "/etc/kubernetes/", "/root/.ssh", "/etc/ssh/"];
    const FILES: &[&str] = &["/etc/shadow", "/etc/passwd", "/etc/sudoers", "/etc/gshadow"];
    let p = source.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    if !source.starts_with('/') {
        return false;
    }
    // Anything whose subtree contains a sensitive directory counts (mounting
    // /var exposes /var/lib/docker).
    DIRS.contains(&p)
        || FILES.contains(&p)
        || BELOW.iter().any(|b| source.starts_with(b))
        || DIRS.iter().any(|d| *d != "/" && d.starts_with(&format!("{p}/")))
}

pub use model::exposes_runtime_socket;

/// Sysctls the Pod Security Standards (baseline) allow.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Runs every configuration check on a subject (image content checks live in
/// [`crate::image`], runtime context in [`crate::context`]).
pub fn check_config(subject: &Subject) -> Vec<Finding> {
    let mut out = Out { subject, findings: Vec::new() };
    let c = &subject.config;
    privileged(&mut out, c);
    mounts(&mut out, c);
    namespaces(&mut out, c);
    capabilities(&mut out, c);
    lsm(&mut out, c);
    escalation(&mut out, c);
    user(&mut out, c);
    devices(&mut out, c);
    filesystem(&mut out, c);
    limits(&mut out, c);
    ports(&mut out, c);
    lifecycle(&mut out, c);
    sysctls(&mut out, c);
    out.findings
}

fn privileged(out: &mut Out, c: &ContainerConfig) {
    if !c.privileged {
        return;
    }
    let k = out.k8s_ctx();
    let fix = out.fix(
        "remove --privileged; add only the capabilities it needs (--cap-add NAME) and the devices it needs (--device /dev/X)",
        "give the process only the capabilities it needs in process.capabilities (not all of them), keep linux.seccomp, linux.maskedPaths and process.apparmorProfile",
        &format!("set {k}.privileged: false (or remove it) and add only needed capabilities under {k}.capabilities.add"),
    );
    out.add(
        "privileged",
        None,
        "privileged: true (all capabilities, all host devices, no seccomp, no AppArmor)".into(),
        "",
        fix,
    );
}

fn mounts(out: &mut Out, c: &ContainerConfig) {
    for m in &c.mounts {
        let ro = if m.read_only { "read-only" } else { "read-write" };
        if m.host_path && exposes_runtime_socket(&m.source) {
            let fix = out.fix(
                &format!("remove -v {}:{} (or --mount source={}); if the container must manage containers, use a filtering API proxy", m.source, m.destination, m.source),
                &format!("remove the bind mount of {} from mounts", m.source),
                &format!("remove the hostPath volume {} and its volumeMount at {}", m.source, m.destination),
            );
            out.add(
                "runtime-socket-mount",
                None,
                format!(
                    "host {} mounted at {} ({ro}): exposes the container runtime API socket",
                    m.source, m.destination
                ),
                &m.source,
                fix,
            );
        }
        if m.host_path && sensitive_host_path(&m.source) {
            let sev = if m.source.trim_end_matches('/').is_empty() {
                Severity::Critical
            } else if m.read_only {
                Severity::Medium
            } else {
                Severity::High
            };
            let fix = out.fix(
                &format!("remove -v {}:{}; mount only the specific files needed, read-only (-v SRC:DST:ro)", m.source, m.destination),
                &format!("remove the bind mount of {} from mounts, or mount a narrower path with options [\"rbind\", \"ro\"]", m.source),
                &format!("remove the hostPath volume {} (mount at {}); use a configMap, secret or emptyDir, or at least readOnly: true", m.source, m.destination),
            );
            out.add(
                "sensitive-mount",
                Some(sev),
                format!("host {} mounted at {} ({ro})", m.source, m.destination),
                &m.source,
                fix,
            );
        } else if m.host_path
            && out.subject.kind == SourceKind::Kubernetes
            && !exposes_runtime_socket(&m.source)
        {
            let fix = format!(
                "replace the hostPath volume {} by a persistentVolumeClaim, configMap or emptyDir",
                m.source
            );
            out.add(
                "host-path-mount",
                None,
                format!("hostPath {} mounted at {} ({ro})", m.source, m.destination),
                &m.source,
                fix,
            );
        }
        if matches!(m.propagation.as_str(), "shared" | "rshared") {
            let fix = out.fix(
                &format!(
                    "mount {} with rprivate or rslave propagation (-v {}:{}:rslave) instead of {}",
                    m.destination, m.source, m.destination, m.propagation
                ),
                &format!(
                    "replace \"{}\" by \"rslave\" or \"rprivate\" in the options of the mount at {}",
                    m.propagation, m.destination
                ),
                &format!(
                    "set mountPropagation: HostToContainer (or None) on the volumeMount at {}",
                    m.destination
                ),
            );
            out.add(
                "shared-propagation",
                None,
                format!("{} mounted at {} with {} propagation", m.source, m.destination, m.propagation),
                &m.destination,
                fix,
            );
        }
    }
}

fn namespaces(out: &mut Out, c: &ContainerConfig) {
    let ns = &c.host_namespaces;
    let list: [(bool, &'static str, &str, &str, &str, &str); 6] = [
        (ns.pid, "host-pid", "pid", "--pid host", "a \"pid\" entry", "hostPID: true"),
        (ns.network, "host-network", "network", "--network host", "a \"network\" entry", "hostNetwork: true"),
        (ns.ipc, "host-ipc", "ipc", "--ipc host", "an \"ipc\" entry", "hostIPC: true"),
        (ns.uts, "host-uts", "uts", "--uts host", "a \"uts\" entry", "(hostname is not shared by pods)"),
        (
            ns.user,
            "host-userns",
            "user",
            "--userns host",
            "a \"user\" entry with uidMappings/gidMappings",
            "hostUsers: true",
        ),
        (ns.cgroup, "host-cgroupns", "cgroup", "--cgroupns host", "a \"cgroup\" entry", ""),
    ];
    for (shared, id, name, flag, oci, k8s) in list {
        if !shared {
            continue;
        }
        let fix = out.fix(
            &format!("remove {flag}{}", if name == "cgroup" { " (use --cgroupns private)" } else { "" }),
            &format!("add {oci} without a \"path\" to linux.namespaces"),
            &format!("remove {k8s} from the pod spec (or set it to false)"),
        );
        let evidence = match out.subject.kind {
            _ if out.subject.pod.is_some() && !k8s.is_empty() && name != "uts" => {
                format!("{k8s} (the node's {name} namespace)")
            }
            SourceKind::Docker if name == "cgroup" => {
                "cgroupns mode host (the host's cgroup namespace; Docker's default on cgroup v1 hosts)"
                    .to_string()
            }
            SourceKind::Docker => format!("{flag} (the host's {name} namespace)"),
            SourceKind::Oci | SourceKind::Containerd | SourceKind::Crio | SourceKind::Podman => {
                format!("linux.namespaces has no private {name} namespace")
            }
            SourceKind::Kubernetes => format!("{k8s} (the node's {name} namespace)"),
        };
        out.add(id, None, evidence, "", fix);
    }
}

fn capabilities(out: &mut Out, c: &ContainerConfig) {
    if c.privileged {
        return; // reported as privileged
    }
    let extra: Vec<&String> =
        c.capabilities.iter().filter(|cap| !DEFAULT_CAPABILITIES.contains(&cap.as_str())).collect();
    if !extra.is_empty() {
        let dangerous: Vec<&str> = extra
            .iter()
            .filter(|c| DANGEROUS_CAPABILITIES.contains(&c.as_str()))
            .map(|c| c.as_str())
            .collect();
        let sev = if dangerous.is_empty() { Severity::Medium } else { Severity::High };
        let shown = if extra.len() > 12 {
            format!("{} capabilities beyond the default set (all but {})", extra.len(), missing_from_all(c))
        } else {
            extra.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        };
        let danger = if dangerous.is_empty() {
            String::new()
        } else {
            format!("; dangerous: {}", dangerous.join(", "))
        };
        let names: Vec<&str> = extra.iter().map(|c| c.as_str()).collect();
        let k = out.k8s_ctx();
        let fix = out.fix(
            &format!(
                "remove --cap-add {}; add back only what the program needs, one capability at a time",
                names.join(" --cap-add ")
            ),
            &format!(
                "remove {} from process.capabilities (bounding, effective, permitted)",
                names.iter().map(|n| format!("CAP_{n}")).collect::<Vec<_>>().join(", ")
            ),
            &format!("remove {} from {k}.capabilities.add", names.join(", ")),
        );
        out.add("cap-added", Some(sev), format!("added: {shown}{danger}"), &names.join(","), fix);
    }
    let kept: Vec<&String> = c.capabilities.iter().filter(|cap| cap.as_str() != "NET_BIND_SERVICE").collect();
    if !kept.is_empty() {
        let k = out.k8s_ctx();
        let fix = out.fix(
            "run with --cap-drop ALL and --cap-add only what is needed",
            "empty process.capabilities (bounding, effective, permitted, inheritable, ambient) except what is needed",
            &format!("set {k}.capabilities.drop: [\"ALL\"] (add back at most NET_BIND_SERVICE)"),
        );
        let shown = kept.iter().take(16).map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
        let more = if kept.len() > 16 { format!(" and {} more", kept.len() - 16) } else { String::new() };
        out.add("cap-not-dropped", None, format!("capabilities kept: {shown}{more}"), "", fix);
    }
}

fn missing_from_all(c: &ContainerConfig) -> String {
    let all = crate::config::all_capabilities();
    let missing: Vec<String> = all.difference(&c.capabilities).cloned().collect();
    if missing.is_empty() {
        "none".into()
    } else {
        missing.join(", ")
    }
}

fn lsm(out: &mut Out, c: &ContainerConfig) {
    let k = out.k8s_ctx();
    match &c.seccomp {
        Seccomp::Unconfined if !c.privileged => {
            let fix = out.fix(
                "remove --security-opt seccomp=unconfined (Docker's default profile then applies) or give a custom profile: --security-opt seccomp=profile.json",
                "add a linux.seccomp section (e.g. the runtime's default profile, defaultAction SCMP_ACT_ERRNO)",
                &format!("set {k}.seccompProfile.type: RuntimeDefault"),
            );
            let evidence = match out.subject.kind {
                SourceKind::Docker => "seccomp=unconfined".to_string(),
                SourceKind::Oci | SourceKind::Containerd | SourceKind::Crio | SourceKind::Podman => {
                    "no effective linux.seccomp filter".to_string()
                }
                SourceKind::Kubernetes => "seccompProfile.type: Unconfined".to_string(),
            };
            out.add("seccomp-unconfined", None, evidence, "", fix);
        }
        Seccomp::Unset if !c.privileged => {
            out.add(
                "seccomp-unconfined",
                Some(Severity::Medium),
                "seccompProfile not set (the kubelet's default is Unconfined unless it runs with --seccomp-default)".into(),
                "unset",
                format!("set {k}.seccompProfile.type: RuntimeDefault (or in the pod's securityContext)"),
            );
        }
        _ => {}
    }
    if c.privileged {
        return;
    }
    let mut disabled = Vec::new();
    if c.apparmor == MacProfile::Disabled {
        disabled.push("AppArmor unconfined".to_string());
    }
    if c.selinux == MacProfile::Disabled {
        disabled.push("SELinux labelling disabled".to_string());
    }
    if let Some(v) = &c.selinux_violation {
        disabled.push(v.clone());
    }
    if !disabled.is_empty() {
        let fix = out.fix(
            "remove --security-opt apparmor=unconfined and --security-opt label=disable (or name a profile: --security-opt apparmor=PROFILE)",
            "set process.apparmorProfile to a profile (not \"unconfined\") and process.selinuxLabel to a container type",
            &format!("set {k}.appArmorProfile.type: RuntimeDefault and remove seLinuxOptions user/role (type only container_t, container_init_t, container_kvm_t, container_engine_t)"),
        );
        out.add("mac-disabled", None, disabled.join("; "), &disabled.join(";"), fix);
    } else if c.apparmor == MacProfile::None && c.selinux == MacProfile::None {
        let fix = out.fix(
            "run on a host with AppArmor or SELinux enabled (Docker then applies docker-default), or --security-opt apparmor=PROFILE",
            "set process.apparmorProfile or process.selinuxLabel",
            &format!("set {k}.appArmorProfile.type: RuntimeDefault on nodes with AppArmor"),
        );
        out.add("no-mac-profile", None, "no AppArmor profile and no SELinux label applied".into(), "", fix);
    }
}

fn escalation(out: &mut Out, c: &ContainerConfig) {
    if c.no_new_privileges {
        return;
    }
    let k = out.k8s_ctx();
    let fix = out.fix(
        "run with --security-opt no-new-privileges (or set \"no-new-privileges\": true in daemon.json)",
        "set process.noNewPrivileges: true",
        &format!("set {k}.allowPrivilegeEscalation: false"),
    );
    let evidence = match out.subject.kind {
        SourceKind::Docker => "no-new-privileges not set",
        SourceKind::Oci | SourceKind::Containerd | SourceKind::Crio | SourceKind::Podman => {
            "process.noNewPrivileges is not true"
        }
        SourceKind::Kubernetes if c.privileged => "privileged containers always allow privilege escalation",
        SourceKind::Kubernetes => "allowPrivilegeEscalation is not false (it defaults to true)",
    };
    out.add("no-new-privileges", None, evidence.into(), "", fix);
}

fn user(out: &mut Out, c: &ContainerConfig) {
    let k = out.k8s_ctx();
    let (sev, evidence) = match &c.user {
        UserSpec::Uid(0) => (
            Severity::Medium,
            format!(
                "runs as uid 0 ({})",
                if c.user_text.is_empty() { "image default" } else { c.user_text.as_str() }
            ),
        ),
        UserSpec::ImageDefault if !c.run_as_non_root => (
            Severity::Medium,
            "no runAsUser and no runAsNonRoot: the image's USER decides (root unless the image sets one)"
                .to_string(),
        ),
        UserSpec::Name(n) if n == "root" => (Severity::Medium, "runs as user root".to_string()),
        UserSpec::Name(n) if !c.run_as_non_root => (
            Severity::Low,
            format!("runs as user {n:?}, whose uid could not be checked (no /etc/passwd to read)"),
        ),
        _ => return,
    };
    let fix = out.fix(
        "run as an unprivileged user: --user 10001:10001 (and set USER in the image's Dockerfile)",
        "set process.user.uid and process.user.gid to a non-zero id",
        &format!("set {k}.runAsNonRoot: true and {k}.runAsUser: 10001 (or in the pod's securityContext)"),
    );
    out.add("run-as-root", Some(sev), evidence, "", fix);
}

fn devices(out: &mut Out, c: &ContainerConfig) {
    if c.privileged {
        return;
    }
    for d in &c.devices {
        let sev = if d.permissions.contains('w') || d.permissions.is_empty() {
            Severity::High
        } else {
            Severity::Medium
        };
        let fix = out.fix(
            &format!("remove --device {}", d.host_path),
            &format!(
                "remove {} from linux.devices and its allow rule from linux.resources.devices",
                d.container_path
            ),
            &format!("do not expose {} (use a device plugin)", d.host_path),
        );
        let perms = if d.permissions.is_empty() { "rwm".to_string() } else { d.permissions.clone() };
        out.add(
            "host-device",
            Some(sev),
            format!("host device {} at {} ({perms})", d.host_path, d.container_path),
            &d.host_path,
            fix,
        );
    }
    for r in &c.device_rules {
        let fix = out.fix(
            &format!("remove --device-cgroup-rule '{r}'"),
            &format!("remove the allow rule {r} from linux.resources.devices (keep the deny-all first rule)"),
            "remove the device access rule",
        );
        out.add("host-device", Some(Severity::High), format!("device cgroup rule allows {r}"), r, fix);
    }
}

fn filesystem(out: &mut Out, c: &ContainerConfig) {
    let k = out.k8s_ctx();
    if c.unmasked_paths && !c.privileged {
        let fix = out.fix(
            "remove --security-opt systempaths=unconfined",
            "restore linux.maskedPaths and linux.readonlyPaths (/proc/kcore, /proc/sysrq-trigger, /sys/firmware, ...)",
            &format!("remove {k}.procMount: Unmasked (use Default)"),
        );
        let evidence = match out.subject.kind {
            SourceKind::Docker => "systempaths=unconfined",
            SourceKind::Oci | SourceKind::Containerd | SourceKind::Crio | SourceKind::Podman => {
                "linux.maskedPaths is empty"
            }
            SourceKind::Kubernetes => "procMount: Unmasked",
        };
        out.add("unmasked-proc", None, evidence.into(), "", fix);
    }
    if !c.read_only_rootfs {
        let fix = out.fix(
            "run with --read-only (and --tmpfs /tmp or volumes where it writes)",
            "set root.readonly: true",
            &format!("set {k}.readOnlyRootFilesystem: true (emptyDir volumes where it writes)"),
        );
        out.add("writable-rootfs", None, "root filesystem is writable".into(), "", fix);
    }
}

fn limits(out: &mut Out, c: &ContainerConfig) {
    let r = &c.resources;
    let name = out.subject.name.rsplit('/').next().unwrap_or("").to_string();
    if r.memory_bytes.is_none() {
        let fix = out.fix(
            "set a limit: --memory 512m (docker update --memory 512m NAME for a running container)",
            "set linux.resources.memory.limit (bytes)",
            &format!("set resources.limits.memory (e.g. 512Mi) on container {name}"),
        );
        out.add("no-memory-limit", None, "no memory limit".into(), "", fix);
    }
    if r.cpu.is_none() {
        let fix = out.fix(
            "set --cpus 1 (or --cpu-shares 512)",
            "set linux.resources.cpu.quota and period (or shares)",
            &format!("set resources.limits.cpu (e.g. 500m) on container {name}"),
        );
        out.add("no-cpu-limit", None, "no CPU limit, quota, shares or cpuset".into(), "", fix);
    }
    if c.pids_applicable && r.pids.is_none() {
        let fix = out.fix(
            "set --pids-limit 256 (docker update --pids-limit 256 NAME for a running container)",
            "set linux.resources.pids.limit",
            "set the kubelet's podPidsLimit",
        );
        out.add("no-pids-limit", None, "no PIDs limit".into(), "", fix);
    }
}

fn ports(out: &mut Out, c: &ContainerConfig) {
    for p in &c.ports {
        let host_port = if p.host_port == 0 { "random".to_string() } else { p.host_port.to_string() };
        let key = format!("{}/{}", p.container_port, p.protocol);
        if p.all_interfaces() {
            let fix = out.fix(
                &format!(
                    "publish on one address: -p 127.0.0.1:{}:{}/{}",
                    if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
                    p.container_port,
                    p.protocol
                ),
                "",
                &format!("set hostIP on the port {} (or drop hostPort and use a Service)", p.container_port),
            );
            out.add(
                "port-all-interfaces",
                None,
                format!(
                    "container port {}/{} published on all interfaces (host port {host_port})",
                    p.container_port, p.protocol
                ),
                &key,
                fix,
            );
        } else if c.host_ports_k8s {
            out.add(
                "host-port",
                None,
                format!("hostPort {} on {} for container port {}", host_port, p.host_ip, p.container_port),
                &key,
                format!("remove hostPort {} and expose the pod through a Service", host_port),
            );
        }
        if p.host_port != 0 && p.host_port < 1024 {
            let fix = out.fix(
                &format!(
                    "publish on a port above 1023: -p {}:{}",
                    u32::from(p.host_port) + 8000,
                    p.container_port
                ),
                "",
                &format!("use a hostPort above 1023 (or a Service) for container port {}", p.container_port),
            );
            out.add(
                "privileged-port",
                None,
                format!(
                    "host port {} mapped to container port {}/{}",
                    p.host_port, p.container_port, p.protocol
                ),
                &key,
                fix,
            );
        }
    }
}

fn lifecycle(out: &mut Out, c: &ContainerConfig) {
    if let Some(r) = &c.restart {
        let bad = match r.name.as_str() {
            "always" | "unless-stopped" => Some(format!("restart policy {}", r.name)),
            "on-failure" if r.max_retries == 0 || r.max_retries > 5 => Some(format!(
                "restart policy on-failure with {} retries",
                if r.max_retries == 0 { "unlimited".to_string() } else { r.max_retries.to_string() }
            )),
            _ => None,
        };
        if let Some(evidence) = bad {
            out.add(
                "restart-policy",
                None,
                evidence,
                &r.name,
                "use --restart on-failure:5 (docker update --restart on-failure:5 NAME)".into(),
            );
        }
    }
    if c.health_check == Some(false) {
        let fix = out.fix(
            "add a HEALTHCHECK to the image or run with --health-cmd 'CMD' --health-interval 30s",
            "",
            "add a livenessProbe and a readinessProbe to the container",
        );
        let evidence = match out.subject.kind {
            SourceKind::Kubernetes => "no livenessProbe, readinessProbe or startupProbe",
            _ => "no health check configured (or HEALTHCHECK NONE)",
        };
        out.add("no-healthcheck", None, evidence.into(), "", fix);
    }
}

fn sysctls(out: &mut Out, c: &ContainerConfig) {
    for (k, v) in &c.sysctls {
        if SAFE_SYSCTLS.contains(&k.as_str()) {
            continue;
        }
        let fix = out.fix(
            &format!("remove --sysctl {k}={v}"),
            &format!("remove {k} from linux.sysctl"),
            &format!("remove {k} from securityContext.sysctls"),
        );
        out.add("unsafe-sysctl", None, format!("sysctl {k}={v}"), k, fix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len(), "duplicate check id");
        for c in CHECKS {
            assert!(c.id.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'), "{}", c.id);
            assert!(!c.title.is_empty() && !c.help.is_empty());
            for n in c.cis {
                let (sec, num) = n.split_once('.').unwrap();
                assert!(sec == "4" || sec == "5", "{n}");
                let num: u32 = num.parse().unwrap();
                assert!((1..=32).contains(&num), "{n}");
            }
            for p in c.pss {
                assert!(p.starts_with("baseline: ") || p.starts_with("restricted: "), "{p}");
            }
        }
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }

    #[test]
    fn sensitive_paths() {
        for p in [
            "/",
            "/etc",
            "/etc/",
            "/proc",
            "/proc/1",
            "/sys/fs/cgroup",
            "/dev/sda",
            "/var",
            "/var/lib",
            "/usr",
            "/etc/shadow",
            "/var/lib/kubelet",
        ] {
            assert!(sensitive_host_path(p), "{p}");
        }
        for p in ["/srv/data", "/etc/nginx", "/opt/app", "/var/lib/app", "data", "", "/home/user/code"] {
            assert!(!sensitive_host_path(p), "{p}");
        }
        for p in [
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/var/run",
            "/run",
            "/",
            "/run/containerd",
            "/var/run/crio/crio.sock",
        ] {
            assert!(exposes_runtime_socket(p), "{p}");
        }
        for p in ["/srv", "/var/run/app.sock", "tmpfs", "", "/run/docker.socket"] {
            assert!(!exposes_runtime_socket(p), "{p}");
        }
    }
}

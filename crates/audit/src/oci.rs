//! OCI runtime bundles: `config.json` (runtime-spec 1.x) to a [`Subject`].
//!
//! Sections that decide security (`process`, its `user` and `capabilities`,
//! `root`, `mounts`, `linux.namespaces`) refuse unknown fields: a misspelt
//! `noNewPrivilege` is ignored by runc too, and silently weaker.

use crate::config::{
    default_capabilities, normalize_cap, ContainerConfig, DeviceSpec, HostNamespaces, MacProfile, MountSpec,
    Resources, Seccomp, SourceKind, Subject, UserSpec,
};
use crate::Error;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[allow(dead_code)]
    oci_version: String,
    process: Option<Process>,
    root: Option<Root>,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    mounts: Vec<Mount>,
    linux: Option<Linux>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Process {
    terminal: Option<bool>,
    console_size: Option<IgnoredAny>,
    user: User,
    args: Option<Vec<String>>,
    command_line: Option<String>,
    env: Option<Vec<String>>,
    cwd: String,
    capabilities: Option<Capabilities>,
    rlimits: Option<IgnoredAny>,
    no_new_privileges: Option<bool>,
    apparmor_profile: Option<String>,
    oom_score_adj: Option<i64>,
    selinux_label: Option<String>,
    io_priority: Option<IgnoredAny>,
    scheduler: Option<IgnoredAny>,
    #[serde(rename = "execCPUAffinity")]
    exec_cpu_affinity: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct User {
    uid: u32,
    gid: u32,
    umask: Option<u32>,
    additional_gids: Option<Vec<u32>>,
    username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Capabilities {
    bounding: Option<Vec<String>>,
    effective: Option<Vec<String>>,
    inheritable: Option<Vec<String>>,
    permitted: Option<Vec<String>>,
    ambient: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Root {
    path: String,
    #[serde(default)]
    readonly: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct Mount {
    destination: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    options: Vec<String>,
    #[serde(default, rename = "type")]
    typ: String,
    uid_mappings: Option<IgnoredAny>,
    gid_mappings: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    namespaces: Option<Vec<Namespace>>,
    #[serde(default)]
    devices: Vec<Device>,
    resources: Option<LinuxResources>,
    #[serde(default)]
    sysctl: BTreeMap<String, String>,
    seccomp: Option<LinuxSeccomp>,
    masked_paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Namespace {
    #[serde(rename = "type")]
    typ: String,
    path: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Device {
    path: String,
}

#[derive(Debug, Default, Deserialize)]
struct LinuxResources {
    #[serde(default)]
    devices: Vec<DeviceRule>,
    memory: Option<Memory>,
    cpu: Option<Cpu>,
    pids: Option<Pids>,
}

#[derive(Debug, Deserialize)]
struct DeviceRule {
    allow: bool,
    #[serde(rename = "type")]
    typ: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    access: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Memory {
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Cpu {
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
    cpus: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Pids {
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinuxSeccomp {
    default_action: String,
    #[serde(default)]
    syscalls: Vec<IgnoredAny>,
}

/// The kernel's default cgroup v1 cpu.shares (what `ctr run` writes): no priority
/// was asked for.
const DEFAULT_CPU_SHARES: u64 = 1024;

/// Device nodes every container gets (runc creates them whatever the config).
const STANDARD_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
];

/// Parses a JSON document with the failing field's path and position in errors.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = (inner.line(), inner.column());
        let suffix = format!(" at line {line} column {column}");
        let msg = inner.to_string();
        let reason = msg.strip_suffix(&suffix).unwrap_or(&msg).to_string();
        Error::Parse {
            path: path.to_path_buf(),
            line: (line > 0).then_some(line),
            column: (line > 0).then_some(column),
            field,
            reason,
        }
    })?;
    de.end().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        column: Some(e.column()),
        field: String::new(),
        reason: "trailing characters after the JSON document".into(),
    })?;
    Ok(parsed)
}

/// Reads and checks the shape of a bundle's `config.json`.
pub fn load(path: &Path) -> Result<Subject, Error> {
    let text = model::input::read_text(path, model::input::limits::OCI_SPEC)?;
    parse(path, &text)
}

/// [`load`] from text; `path` names the file in errors and finds the rootfs
/// (`root.path` relative to the file's directory).
pub fn parse(path: &Path, text: &str) -> Result<Subject, Error> {
    let spec: Spec = parse_json(path, text)?;
    let Some(process) = spec.process else {
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            reason: "no process section: nothing to audit (process is required to start a container)".into(),
        });
    };
    let linux = spec.linux.unwrap_or_default();

    let caps = process.capabilities.unwrap_or_default();
    let set = caps.bounding.clone().or(caps.permitted.clone()).or(caps.effective.clone()).unwrap_or_default();
    let mut capabilities: BTreeSet<String> = set.iter().map(|c| normalize_cap(c)).collect();
    for c in caps.ambient.iter().chain(caps.inheritable.iter()).flatten() {
        capabilities.insert(normalize_cap(c));
    }
    let defaults = default_capabilities();
    let cap_add: Vec<String> = capabilities.difference(&defaults).cloned().collect();
    let cap_drop: Vec<String> = defaults.difference(&capabilities).cloned().collect();

    let seccomp = match &linux.seccomp {
        None => Seccomp::Unconfined,
        Some(s) if s.default_action == "SCMP_ACT_ALLOW" && s.syscalls.is_empty() => Seccomp::Unconfined,
        Some(s) => {
            Seccomp::Custom(format!("defaultAction {}, {} syscall rules", s.default_action, s.syscalls.len()))
        }
    };
    let lsm = |p: &Option<String>, off: &str| match p.as_deref() {
        None | Some("") => MacProfile::None,
        Some(v) if v == off => MacProfile::Disabled,
        Some(v) => MacProfile::Named(v.to_string()),
    };

    // A namespace type missing from the list is the runtime's own (the host's);
    // one joined by path is some other process's.
    let ns: Vec<&Namespace> = linux.namespaces.iter().flatten().collect();
    let shared = |t: &str| {
        !ns.iter().any(|n| n.typ == t)
            || ns
                .iter()
                .any(|n| n.typ == t && n.path.as_deref().is_some_and(|p| p.starts_with("/proc/1/ns/")))
    };
    let host_namespaces = HostNamespaces {
        pid: shared("pid"),
        ipc: shared("ipc"),
        uts: shared("uts"),
        network: shared("network"),
        user: false,
        cgroup: shared("cgroup"),
    };

    let mounts = spec
        .mounts
        .iter()
        .map(|m| {
            let bind = m.typ == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind");
            let propagation = m
                .options
                .iter()
                .find(|o| {
                    matches!(o.as_str(), "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate")
                })
                .cloned()
                .unwrap_or_default();
            MountSpec {
                source: if m.source.is_empty() { m.typ.clone() } else { m.source.clone() },
                destination: m.destination.clone(),
                host_path: bind,
                read_only: m.options.iter().any(|o| o == "ro"),
                propagation,
            }
        })
        .collect();

    let res = linux.resources.unwrap_or_default();
    let devices = linux
        .devices
        .iter()
        .filter(|d| !STANDARD_DEVICES.contains(&d.path.as_str()))
        .map(|d| DeviceSpec {
            host_path: d.path.clone(),
            container_path: d.path.clone(),
            permissions: String::new(),
        })
        .collect();
    // A rule allowing every device (no type or "a", no major): what runc's
    // default deny-all first rule would otherwise prevent.
    let device_rules = res
        .devices
        .iter()
        .filter(|r| r.allow && matches!(r.typ.as_deref(), None | Some("a")) && r.major.is_none())
        .map(|r| {
            format!(
                "a {}:{} {}",
                r.major.map_or("*".into(), |m| m.to_string()),
                r.minor.map_or("*".into(), |m| m.to_string()),
                r.access.as_deref().unwrap_or("rwm")
            )
        })
        .collect();

    let cpu = res.cpu.as_ref().and_then(|c| {
        if let Some(q) = c.quota.filter(|q| *q > 0) {
            Some(format!("quota {q}/{}", c.period.unwrap_or(100_000)))
        } else if let Some(s) = c.shares.filter(|s| *s > 0 && *s != DEFAULT_CPU_SHARES) {
            Some(format!("shares {s}"))
        } else {
            c.cpus.clone().filter(|s| !s.is_empty()).map(|s| format!("cpuset {s}"))
        }
    });
    let resources = Resources {
        memory_bytes: res.memory.as_ref().and_then(|m| m.limit).filter(|l| *l > 0).map(|l| l as u64),
        cpu,
        pids: res.pids.as_ref().and_then(|p| p.limit).filter(|l| *l > 0),
    };

    let root = spec.root.as_ref();
    let rootfs = root.map(|r| {
        let p = Path::new(&r.path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new(".")).join(p)
        }
    });
    let image = [
        "org.opencontainers.image.ref.name",
        "io.kubernetes.cri.image-name",
        "org.opencontainers.image.base.name",
    ]
    .iter()
    .find_map(|k| spec.annotations.get(*k).cloned())
    .unwrap_or_default();
    let path_env = process.env.iter().flatten().find_map(|e| e.strip_prefix("PATH=").map(str::to_string));
    let uid = process.user.uid;

    Ok(Subject {
        kind: SourceKind::Oci,
        name: if spec.hostname.is_empty() {
            path.display().to_string()
        } else {
            format!("{} ({})", path.display(), spec.hostname)
        },
        id: None,
        pod: None,
        runtime_namespace: None,
        image,
        location: Some(crate::config::Location { file: path.to_path_buf(), line: None }),
        rootfs: rootfs.filter(|p| p.is_dir()),
        k8s_list: "",
        config: ContainerConfig {
            user: UserSpec::Uid(uid),
            user_text: format!("process.user.uid {uid}"),
            run_as_non_root: false,
            privileged: false,
            no_new_privileges: process.no_new_privileges.unwrap_or(false),
            capabilities,
            cap_add,
            cap_drop,
            seccomp,
            apparmor: lsm(&process.apparmor_profile, "unconfined"),
            selinux: lsm(&process.selinux_label, ""),
            selinux_violation: None,
            host_namespaces,
            mounts,
            devices,
            device_rules,
            read_only_rootfs: root.is_some_and(|r| r.readonly),
            unmasked_paths: linux.masked_paths.as_ref().is_none_or(|m| m.is_empty()),
            resources,
            pids_applicable: true,
            ports: Vec::new(),
            host_ports_k8s: false,
            restart: None,
            health_check: None,
            sysctls: linux.sysctl.into_iter().collect(),
            path_env,
        },
    })
}

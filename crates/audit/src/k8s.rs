//! Kubernetes manifests: Pods and the pod templates of Deployments,
//! DaemonSets, StatefulSets, ReplicaSets, ReplicationControllers, Jobs and
//! CronJobs (multi-document YAML), one [`Subject`] per container (init and
//! ephemeral containers included), with the pod's securityContext merged into
//! each container's as the kubelet does (the container's setting wins).
//!
//! securityContext sections refuse unknown fields: a misspelt `runAsNonroot`
//! is a setting that does not apply.

use crate::config::{
    apply_caps, default_capabilities, ContainerConfig, HostNamespaces, Location, MacProfile, MountSpec,
    PortSpec, Resources, Seccomp, SourceKind, Subject, UserSpec,
};
use crate::Error;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Debug, Deserialize)]
struct Head {
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Object<S> {
    #[serde(default)]
    metadata: Meta,
    spec: Option<S>,
}

#[derive(Debug, Deserialize)]
struct Template {
    #[serde(default)]
    metadata: Meta,
    spec: Option<PodSpec>,
}

#[derive(Debug, Deserialize)]
struct WorkloadSpec {
    template: Option<Template>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    job_template: Option<JobTemplate>,
}

#[derive(Debug, Deserialize)]
struct JobTemplate {
    spec: Option<WorkloadSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    ephemeral_containers: Vec<Container>,
    #[serde(default, rename = "hostPID")]
    host_pid: bool,
    #[serde(default, rename = "hostIPC")]
    host_ipc: bool,
    #[serde(default)]
    host_network: bool,
    security_context: Option<PodSecurityContext>,
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    image: Option<String>,
    security_context: Option<SecurityContext>,
    resources: Option<ResourceRequirements>,
    #[serde(default)]
    ports: Vec<ContainerPort>,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
    liveness_probe: Option<IgnoredAny>,
    readiness_probe: Option<IgnoredAny>,
    startup_probe: Option<IgnoredAny>,
    #[serde(default)]
    env: Vec<EnvVar>,
}

#[derive(Debug, Deserialize)]
struct EnvVar {
    name: String,
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ResourceRequirements {
    #[serde(default)]
    limits: BTreeMap<String, Quantity>,
}

/// A resource quantity as written (`512Mi`, `0.5`, `2`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Quantity {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Int(n) => n.to_string(),
            Quantity::Float(f) => f.to_string(),
            Quantity::Text(s) => s.clone(),
        }
    }

    /// Bytes of a memory quantity (binary and decimal suffixes).
    fn bytes(&self) -> Option<u64> {
        let t = self.text();
        let t = t.trim();
        const SUFFIXES: &[(&str, f64)] = &[
            ("Ki", 1024.0),
            ("Mi", 1048576.0),
            ("Gi", 1073741824.0),
            ("Ti", 1099511627776.0),
            ("k", 1e3),
            ("K", 1e3),
            ("M", 1e6),
            ("G", 1e9),
            ("T", 1e12),
            ("m", 1e-3),
        ];
        for (s, mult) in SUFFIXES {
            if let Some(n) = t.strip_suffix(s) {
                return n.parse::<f64>().ok().map(|v| (v * mult) as u64);
            }
        }
        t.parse::<f64>().ok().map(|v| v as u64)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    container_port: u16,
    host_port: Option<u16>,
    #[serde(rename = "hostIP")]
    host_ip: Option<String>,
    protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
    #[serde(default)]
    read_only: bool,
    mount_propagation: Option<String>,
    sub_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    host_path: Option<HostPath>,
}

#[derive(Debug, Deserialize)]
struct HostPath {
    path: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct SecurityContext {
    allow_privilege_escalation: Option<bool>,
    app_armor_profile: Option<Profile>,
    capabilities: Option<Capabilities>,
    privileged: Option<bool>,
    proc_mount: Option<String>,
    read_only_root_filesystem: Option<bool>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    se_linux_options: Option<SeLinuxOptions>,
    seccomp_profile: Option<Profile>,
    windows_options: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct PodSecurityContext {
    app_armor_profile: Option<Profile>,
    fs_group: Option<i64>,
    fs_group_change_policy: Option<String>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    run_as_user: Option<i64>,
    se_linux_options: Option<SeLinuxOptions>,
    se_linux_change_policy: Option<String>,
    seccomp_profile: Option<Profile>,
    supplemental_groups: Option<Vec<i64>>,
    supplemental_groups_policy: Option<String>,
    #[serde(default)]
    sysctls: Vec<Sysctl>,
    windows_options: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Capabilities {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
}

/// seccompProfile and appArmorProfile.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Profile {
    #[serde(rename = "type")]
    typ: String,
    localhost_profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeLinuxOptions {
    user: Option<String>,
    role: Option<String>,
    #[serde(rename = "type")]
    typ: Option<String>,
    level: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sysctl {
    name: String,
    value: String,
}

const WORKLOADS: &[&str] =
    &["Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job"];

/// The kinds this module audits.
pub fn is_audited_kind(kind: &str) -> bool {
    kind == "Pod" || kind == "CronJob" || WORKLOADS.contains(&kind)
}

fn yaml_error(path: &Path, e: serde_yaml_ng::Error) -> Error {
    let loc = e.location();
    let msg = e.to_string();
    // The message says " at line L column C"; the position goes in front.
    let reason = match &loc {
        Some(l) => msg.replacen(&format!(" at line {} column {}", l.line(), l.column()), "", 1),
        None => msg,
    };
    // serde_yaml_ng prefixes the field path (`spec.containers[0].x: ...`).
    let (field, reason) = match reason.split_once(": ") {
        Some((f, r)) if !f.contains(' ') => (f.to_string(), r.to_string()),
        _ => (String::new(), reason),
    };
    Error::Parse {
        path: path.to_path_buf(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        field,
        reason,
    }
}

/// Reads a manifest file.
pub fn load(path: &Path) -> Result<Vec<Subject>, Error> {
    let text = model::input::read_text(path, model::input::limits::MANIFEST)?;
    parse(path, &text)
}

/// Every audited container of every document of a manifest. A manifest with
/// no audited object is an error (the wrong file was given).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Subject>, Error> {
    // Bound nesting and alias expansion before serde_yaml_ng builds anything.
    yamlguard::check_bounds(text, &yamlguard::Limits::default()).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line),
        column: Some(e.col),
        field: String::new(),
        reason: e.message,
    })?;
    // First pass: the kind of each document.
    let mut kinds = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let head: Option<Head> = Option::deserialize(doc).map_err(|e| yaml_error(path, e))?;
        kinds.push(head.and_then(|h| h.kind).unwrap_or_default());
    }
    // Line lookups work on the file's lines, split once (not per container).
    let lines: Vec<&str> = text.lines().collect();
    let segments = doc_segments(&lines);
    let mut out = Vec::new();
    let mut seg_from = 0;
    // Second pass: the audited documents, typed (errors keep their position).
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let kind = kinds.get(i).cloned().unwrap_or_default();
        let (meta, template_meta, pod) = match kind.as_str() {
            "Pod" => {
                let o: Object<PodSpec> = Object::deserialize(doc).map_err(|e| yaml_error(path, e))?;
                (o.metadata, None, o.spec)
            }
            "CronJob" => {
                let o: Object<CronJobSpec> = Object::deserialize(doc).map_err(|e| yaml_error(path, e))?;
                let t = o.spec.and_then(|s| s.job_template).and_then(|j| j.spec).and_then(|s| s.template);
                let (tm, spec) = t.map(|t| (Some(t.metadata), t.spec)).unwrap_or((None, None));
                (o.metadata, tm, spec)
            }
            k if WORKLOADS.contains(&k) => {
                let o: Object<WorkloadSpec> = Object::deserialize(doc).map_err(|e| yaml_error(path, e))?;
                let t = o.spec.and_then(|s| s.template);
                let (tm, spec) = t.map(|t| (Some(t.metadata), t.spec)).unwrap_or((None, None));
                (o.metadata, tm, spec)
            }
            _ => {
                IgnoredAny::deserialize(doc).map_err(|e| yaml_error(path, e))?;
                continue;
            }
        };
        let name = meta.name.clone().unwrap_or_else(|| "unnamed".into());
        let Some(pod) = pod else {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                reason: format!(
                    "{kind} {name:?} has no pod spec (spec{})",
                    if kind == "Pod" { "" } else { ".template.spec" }
                ),
            });
        };
        if pod.containers.is_empty() {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                reason: format!("{kind} {name:?} has no containers"),
            });
        }
        // Locate the document's text for line numbers (best effort).
        let seg = find_segment(&lines, &segments, seg_from, &kind, &name);
        if let Some(s) = seg {
            seg_from = s + 1;
        }
        // Annotations of the pod (template) carry legacy AppArmor/seccomp settings.
        let mut annotations = meta.annotations.clone();
        if let Some(tm) = &template_meta {
            annotations.extend(tm.annotations.clone());
        }
        let prefix = match &meta.namespace {
            Some(ns) => format!("{ns}/{kind}/{name}"),
            None => format!("{kind}/{name}"),
        };
        let container_lines = seg.map(|s| container_lines(&lines, &segments[s])).unwrap_or_default();
        for (list, containers) in [
            ("containers", &pod.containers),
            ("initContainers", &pod.init_containers),
            ("ephemeralContainers", &pod.ephemeral_containers),
        ] {
            for c in containers {
                let line = container_lines.get(&(list, c.name.as_str())).copied();
                out.push(subject(path, &prefix, list, &pod, c, &annotations, line));
            }
        }
    }
    if out.is_empty() {
        let seen: Vec<&str> = kinds.iter().map(String::as_str).filter(|k| !k.is_empty()).collect();
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            reason: format!(
                "no Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet, ReplicationController, Job or CronJob (kinds found: {})",
                if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
            ),
        });
    }
    Ok(out)
}

fn subject(
    path: &Path,
    prefix: &str,
    list: &'static str,
    pod: &PodSpec,
    c: &Container,
    annotations: &BTreeMap<String, String>,
    line: Option<usize>,
) -> Subject {
    let psc = pod.security_context.as_ref();
    let sc = c.security_context.clone().unwrap_or_default();
    let privileged = sc.privileged.unwrap_or(false);
    let run_as_user = sc.run_as_user.or(psc.and_then(|p| p.run_as_user));
    let run_as_non_root = sc.run_as_non_root.or(psc.and_then(|p| p.run_as_non_root)).unwrap_or(false);
    let (user, user_text) = match run_as_user {
        Some(u) => (UserSpec::Uid(u32::try_from(u).unwrap_or(0)), format!("runAsUser: {u}")),
        None => (UserSpec::ImageDefault, String::new()),
    };
    let caps = sc.capabilities.clone().unwrap_or_default();
    let capabilities = if privileged {
        crate::config::all_capabilities()
    } else {
        apply_caps(default_capabilities(), &caps.add, &caps.drop)
    };

    let legacy = |key: String| annotations.get(&key).cloned();
    let seccomp = match sc.seccomp_profile.as_ref().or(psc.and_then(|p| p.seccomp_profile.as_ref())) {
        Some(p) => match p.typ.as_str() {
            "RuntimeDefault" => Seccomp::RuntimeDefault,
            "Localhost" => {
                Seccomp::Custom(format!("Localhost {}", p.localhost_profile.as_deref().unwrap_or("?")))
            }
            _ => Seccomp::Unconfined,
        },
        None => match legacy(format!("container.seccomp.security.alpha.kubernetes.io/{}", c.name))
            .or_else(|| legacy("seccomp.security.alpha.kubernetes.io/pod".into()))
            .as_deref()
        {
            Some("runtime/default" | "docker/default") => Seccomp::RuntimeDefault,
            Some("unconfined") => Seccomp::Unconfined,
            Some(p) => Seccomp::Custom(p.to_string()),
            None => Seccomp::Unset,
        },
    };
    let apparmor = match sc.app_armor_profile.as_ref().or(psc.and_then(|p| p.app_armor_profile.as_ref())) {
        Some(p) => match p.typ.as_str() {
            "Unconfined" => MacProfile::Disabled,
            "Localhost" => MacProfile::Named(p.localhost_profile.clone().unwrap_or_default()),
            _ => MacProfile::RuntimeDefault,
        },
        None => match legacy(format!("container.apparmor.security.beta.kubernetes.io/{}", c.name)).as_deref()
        {
            Some("unconfined") => MacProfile::Disabled,
            Some(p) if p.starts_with("localhost/") => MacProfile::Named(p.to_string()),
            _ => MacProfile::RuntimeDefault,
        },
    };
    let se = sc.se_linux_options.clone().or(psc.and_then(|p| p.se_linux_options.clone()));
    let selinux_violation = se.as_ref().and_then(|o| {
        const TYPES: &[&str] = &["container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
        let mut bad = Vec::new();
        if let Some(u) = o.user.as_deref().filter(|u| !u.is_empty()) {
            bad.push(format!("seLinuxOptions.user {u}"));
        }
        if let Some(r) = o.role.as_deref().filter(|r| !r.is_empty()) {
            bad.push(format!("seLinuxOptions.role {r}"));
        }
        if let Some(t) = o.typ.as_deref().filter(|t| !t.is_empty() && !TYPES.contains(t)) {
            bad.push(format!("seLinuxOptions.type {t}"));
        }
        (!bad.is_empty()).then(|| bad.join(", "))
    });
    let selinux = match &se {
        Some(o) => MacProfile::Named(o.typ.clone().or(o.level.clone()).unwrap_or_else(|| "custom".into())),
        None => MacProfile::None,
    };

    let volumes: BTreeMap<&str, &Volume> = pod.volumes.iter().map(|v| (v.name.as_str(), v)).collect();
    let mounts = c
        .volume_mounts
        .iter()
        .map(|m| {
            let host = volumes.get(m.name.as_str()).and_then(|v| v.host_path.as_ref());
            let source = match (host, m.sub_path.as_deref().filter(|s| !s.is_empty())) {
                (Some(h), Some(sub)) => format!("{}/{}", h.path.trim_end_matches('/'), sub),
                (Some(h), None) => h.path.clone(),
                (None, _) => m.name.clone(),
            };
            MountSpec {
                source,
                destination: m.mount_path.clone(),
                host_path: host.is_some(),
                read_only: m.read_only,
                propagation: match m.mount_propagation.as_deref() {
                    Some("Bidirectional") => "rshared".into(),
                    Some("HostToContainer") => "rslave".into(),
                    _ => String::new(),
                },
            }
        })
        .collect();

    let limits = c.resources.as_ref().map(|r| &r.limits);
    let resources = Resources {
        memory_bytes: limits.and_then(|l| l.get("memory")).map(|q| q.bytes().unwrap_or(1)),
        cpu: limits.and_then(|l| l.get("cpu")).map(|q| format!("{} cpu", q.text())),
        pids: None,
    };
    let ports: Vec<PortSpec> = c
        .ports
        .iter()
        .filter_map(|p| {
            let hp = p.host_port.filter(|h| *h > 0)?;
            Some(PortSpec {
                host_ip: p.host_ip.clone().unwrap_or_default(),
                host_port: hp,
                container_port: p.container_port,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_ascii_lowercase(),
            })
        })
        .collect();
    let probes = c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some();

    Subject {
        kind: SourceKind::Kubernetes,
        name: format!("{prefix}/{}", c.name),
        id: None,
        pod: None,
        runtime_namespace: None,
        image: c.image.clone().unwrap_or_default(),
        location: Some(Location { file: path.to_path_buf(), line }),
        rootfs: None,
        k8s_list: list,
        config: ContainerConfig {
            user,
            user_text,
            run_as_non_root,
            privileged,
            no_new_privileges: sc.allow_privilege_escalation == Some(false) && !privileged,
            capabilities,
            cap_add: caps.add.clone(),
            cap_drop: caps.drop.clone(),
            seccomp,
            apparmor,
            selinux,
            selinux_violation,
            host_namespaces: HostNamespaces {
                pid: pod.host_pid,
                ipc: pod.host_ipc,
                uts: false,
                network: pod.host_network,
                user: false,
                cgroup: false,
            },
            mounts,
            devices: Vec::new(),
            device_rules: Vec::new(),
            read_only_rootfs: sc.read_only_root_filesystem == Some(true),
            unmasked_paths: sc.proc_mount.as_deref() == Some("Unmasked"),
            resources,
            pids_applicable: false,
            host_ports_k8s: !ports.is_empty(),
            ports,
            restart: None,
            // Init containers cannot have probes.
            health_check: (list == "containers").then_some(probes),
            sysctls: psc
                .map(|p| p.sysctls.iter().map(|s| (s.name.clone(), s.value.clone())).collect())
                .unwrap_or_default(),
            path_env: c.env.iter().find(|e| e.name == "PATH").and_then(|e| e.value.clone()),
        },
    }
}

/// A document's lines: [start, end) 0-based.
struct Segment {
    start: usize,
    end: usize,
}

fn doc_segments(lines: &[&str]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("---") {
            out.push(Segment { start, end: i });
            start = i + 1;
        }
    }
    out.push(Segment { start, end: lines.len() });
    out
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('"').trim_matches('\'')
}

/// The first segment from `from` whose top level says `kind: KIND` and that
/// names `name` somewhere.
fn find_segment(lines: &[&str], segments: &[Segment], from: usize, kind: &str, name: &str) -> Option<usize> {
    (from..segments.len()).find(|&i| {
        let seg = &lines[segments[i].start..segments[i].end];
        seg.iter().any(|l| l.strip_prefix("kind:").is_some_and(|k| unquote(k) == kind))
            && seg.iter().any(|l| l.trim().strip_prefix("name:").is_some_and(|n| unquote(n) == name))
    })
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// The 1-based line of each `- name: CONTAINER` under `LIST:` in a segment,
/// by (LIST, CONTAINER), in one pass: the first match after the `LIST:` line
/// wins, as a line-by-line search per container would find it.
fn container_lines<'a>(lines: &[&'a str], seg: &Segment) -> HashMap<(&'static str, &'a str), usize> {
    let mut out = HashMap::new();
    let mut in_list = [false; CONTAINER_LISTS.len()];
    for (i, l) in lines.iter().enumerate().take(seg.end).skip(seg.start) {
        let t = l.trim();
        if let Some(k) = CONTAINER_LISTS.iter().position(|list| t.strip_suffix(':') == Some(*list)) {
            in_list[k] = true;
            continue;
        }
        let item = t.strip_prefix("- ").unwrap_or(t);
        let Some(name) = item.strip_prefix("name:").map(unquote) else { continue };
        for (k, list) in CONTAINER_LISTS.iter().enumerate() {
            if in_list[k] {
                out.entry((*list, name)).or_insert(i + 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn container_lines_with_many_containers_and_documents() {
        const DOCS: usize = 200;
        // DOCS documents of 50 containers each: a per-container rescan of the
        // file was quadratic; this is one pass per document.
        let mut text = String::new();
        let mut line = 0;
        let mut push = |text: &mut String, l: &str| {
            text.push_str(l);
            text.push('\n');
            line += 1;
            line
        };
        let mut expected = Vec::new();
        for d in 0..DOCS {
            if d > 0 {
                push(&mut text, "---");
            }
            for l in ["apiVersion: v1", "kind: Pod", "metadata:", &format!("  name: pod-{d}"), "spec:"] {
                push(&mut text, l);
            }
            for l in ["  initContainers:", "    - name: init", "      image: busybox", "  containers:"] {
                push(&mut text, l);
            }
            for c in 0..50 {
                expected.push((format!("c{c}"), push(&mut text, &format!("    - name: \"c{c}\""))));
                push(&mut text, "      image: busybox");
            }
        }
        let start = std::time::Instant::now();
        let subjects = parse(Path::new("many.yaml"), &text).unwrap();
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
        let lines: Vec<(String, usize)> = subjects
            .iter()
            .filter(|s| !s.name.ends_with("init"))
            .map(|s| {
                (s.name.rsplit('/').next().unwrap().to_string(), s.location.as_ref().unwrap().line.unwrap())
            })
            .collect();
        assert_eq!(lines.len(), expected.len());
        for ((got_name, got), (name, want)) in lines.iter().zip(&expected) {
            assert!(got_name.ends_with(name.as_str()), "{got_name} {name}");
            assert_eq!(got, want, "{got_name}");
        }
        // The init container's line is under initContainers:, 8th line of doc 0.
        let init = subjects.iter().find(|s| s.name.ends_with("init")).unwrap();
        assert_eq!(init.location.as_ref().unwrap().line, Some(7));
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn hostile_yaml_is_refused_with_position() {
        let p = Path::new("m.yaml");
        let e = parse(p, &yamlguard::hostile::alias_bomb("kind", 5000)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("expands to more than") && msg.starts_with("m.yaml:"), "{msg}");
        let e = parse(p, &yamlguard::hostile::deep("spec", 10_000)).unwrap_err();
        assert!(e.to_string().contains("nesting deeper"), "{e}");
    }
}

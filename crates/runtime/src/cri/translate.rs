//! CRI statuses (container, sandbox, verbose info) -> rampart's [`Container`]
//! (the table in [`super`]).

use super::events::{life_of_container, life_of_sandbox};
use super::*;

/// What rampart uses of a status's verbose `info` (`info["info"]`, a JSON
/// document whose shape differs per runtime; unknown or malformed parts are
/// ignored, it is only a source of extra detail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerboseInfo {
    pub pid: Option<u32>,
    pub sandbox_id: Option<String>,
    pub privileged: Option<bool>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `uid:gid` of the container's process (from the OCI spec).
    pub user: Option<String>,
    /// The image as requested (containerd's `config.image`).
    pub config_image: Option<String>,
    pub config_user_specified_image: Option<String>,
    /// The sandbox image (containerd's sandbox `image`).
    pub image: Option<String>,
    /// Host namespaces the container's own config asks for (`NODE` mode).
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
}

/// `NamespaceMode::NODE`.
const NS_NODE: i64 = cri::NamespaceMode::Node as i64;

impl VerboseInfo {
    pub fn parse(info: &HashMap<String, String>) -> VerboseInfo {
        match info.get("info").map(|s| serde_json::from_str::<Value>(s)) {
            Some(Ok(v)) => Self::from_json(&v),
            Some(Err(e)) => {
                debug!(error = %e, "unparsable verbose info");
                VerboseInfo::default()
            }
            None => VerboseInfo::default(),
        }
    }

    pub fn from_json(v: &Value) -> VerboseInfo {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let strs = |p: &str| -> Vec<String> {
            v.pointer(p)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                .unwrap_or_default()
        };
        let sc = "/config/linux/security_context";
        let ns_node = |kind: &str| {
            v.pointer(&format!("{sc}/namespace_options/{kind}")).and_then(Value::as_i64) == Some(NS_NODE)
        };
        let user = match (
            v.pointer("/runtimeSpec/process/user/uid").and_then(Value::as_u64),
            v.pointer("/runtimeSpec/process/user/gid").and_then(Value::as_u64),
        ) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            _ => None,
        };
        VerboseInfo {
            pid: v
                .pointer("/pid")
                .and_then(Value::as_u64)
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok()),
            sandbox_id: s("/sandboxID"),
            // containerd keeps the CRI config; CRI-O says it directly.
            privileged: v
                .pointer(&format!("{sc}/privileged"))
                .and_then(Value::as_bool)
                .or_else(|| v.pointer("/privileged").and_then(Value::as_bool)),
            cap_add: strs(&format!("{sc}/capabilities/add_capabilities")),
            cap_drop: strs(&format!("{sc}/capabilities/drop_capabilities")),
            user,
            config_image: s("/config/image/image"),
            config_user_specified_image: s("/config/image/user_specified_image"),
            image: s("/image"),
            host_network: ns_node("network"),
            host_pid: ns_node("pid"),
            host_ipc: ns_node("ipc"),
        }
    }
}

/// An image *id* rather than a reference (`sha256:...` or bare 64 hex).
pub(super) fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn image_of(spec: Option<&cri::ImageSpec>) -> Option<&str> {
    spec.map(|i| i.image.as_str()).filter(|s| !s.is_empty())
}

fn user_specified(spec: Option<&cri::ImageSpec>) -> Option<&str> {
    spec.map(|i| i.user_specified_image.as_str()).filter(|s| !s.is_empty())
}

/// Labels, then annotations that fit and do not shadow a label.
pub(super) fn labels_and_annotations(
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in annotations {
        if v.len() <= MAX_ANNOTATION_LEN && !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

pub(super) fn propagation_name(p: i32) -> &'static str {
    match cri::MountPropagation::try_from(p) {
        Ok(cri::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(cri::MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    }
}

/// Host namespaces of a pod sandbox: (network, pid, ipc).
pub(super) fn sandbox_host_namespaces(s: &cri::PodSandboxStatus) -> (bool, bool, bool) {
    let o = s.linux.as_ref().and_then(|l| l.namespaces.as_ref()).and_then(|n| n.options.as_ref());
    let node = cri::NamespaceMode::Node as i32;
    match o {
        Some(o) => (o.network == node, o.pid == node, o.ipc == node),
        None => (false, false, false),
    }
}

/// The pod fields of a container: from its sandbox when known, else from the
/// kubelet's labels on the container.
fn fill_pod(c: &mut Container, sandbox: Option<&cri::PodSandboxStatus>) {
    let labels = &c.labels;
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let md = sandbox.and_then(|s| s.metadata.as_ref());
    let pod_name = md.and_then(|m| non_empty(&m.name)).or_else(|| label(LABEL_POD_NAME));
    let pod_namespace = md.and_then(|m| non_empty(&m.namespace)).or_else(|| label(LABEL_POD_NAMESPACE));
    let pod_uid = md.and_then(|m| non_empty(&m.uid)).or_else(|| label(LABEL_POD_UID));
    (c.pod_name, c.pod_namespace, c.pod_uid) = (pod_name, pod_namespace, pod_uid);
    if let Some(s) = sandbox {
        c.pod_labels = s
            .labels
            .iter()
            .filter(|(k, _)| ![LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (net, pid, ipc) = sandbox_host_namespaces(s);
        c.host_network |= net;
        c.host_pid |= pid;
        c.host_ipc |= ipc;
    }
}

/// Map a `ContainerStatus` (+ its verbose info and its sandbox's status) into
/// rampart's container (cgroup path left empty: the registry knows it from the
/// cgroup). `None` without an id.
pub fn discovered_from_container(
    status: &cri::ContainerStatus,
    info: &VerboseInfo,
    sandbox: Option<&cri::PodSandboxStatus>,
    runtime: Runtime,
) -> Option<Discovered> {
    if status.id.is_empty() {
        return None;
    }
    let labels = labels_and_annotations(&status.labels, &status.annotations);
    let spec = status.image.as_ref();
    // The kubelet asks for the image by id (the pod spec's name is in
    // user_specified_image on newer ones); containerd's status answers the
    // image's first tag, normalised (docker.io/library/...).
    let image = user_specified(spec)
        .map(String::from)
        .or_else(|| info.config_user_specified_image.clone())
        .or_else(|| info.config_image.clone().filter(|i| !is_image_id(i)))
        .or_else(|| image_of(spec).filter(|i| !is_image_id(i)).map(String::from))
        .or_else(|| image_of(spec).map(String::from))
        .or_else(|| info.config_image.clone())
        .unwrap_or_else(|| status.image_ref.clone());
    let image_id = non_empty(&status.image_id).unwrap_or_else(|| status.image_ref.clone());
    let name = status
        .metadata
        .as_ref()
        .and_then(|m| non_empty(&m.name))
        .or_else(|| labels.get(LABEL_CONTAINER_NAME).cloned())
        .unwrap_or_default();
    let user = status
        .user
        .as_ref()
        .and_then(|u| u.linux.as_ref())
        .map(|l| format!("{}:{}", l.uid, l.gid))
        .or_else(|| info.user.clone())
        .unwrap_or_default();
    let mounts = status
        .mounts
        .iter()
        .map(|m| Mount {
            source: m.host_path.clone(),
            destination: m.container_path.clone(),
            read_only: m.readonly,
            propagation: propagation_name(m.propagation).to_string(),
            mode: String::new(),
        })
        .collect();
    let mut c = Container {
        id: status.id.clone(),
        runtime: Some(runtime),
        name,
        image,
        image_id,
        labels,
        privileged: info.privileged.unwrap_or(false),
        cap_add: info.cap_add.clone(),
        cap_drop: info.cap_drop.clone(),
        mounts,
        host_pid: info.host_pid,
        host_network: info.host_network,
        host_ipc: info.host_ipc,
        user,
        runtime_namespace: (runtime == Runtime::Containerd).then(|| CONTAINERD_CRI_NAMESPACE.to_string()),
        created_ns: u64::try_from(status.created_at).ok().filter(|t| *t > 0),
        ..Default::default()
    };
    fill_pod(&mut c, sandbox);
    let running = life_of_container(status.state) == Life::Running;
    Some(Discovered { container: c, pid: info.pid.filter(|_| running) })
}

/// Map a pod sandbox (the pause container: it has a cgroup and a process like
/// any container). Its name is the pod's name, its labels the pod's labels and
/// annotations. `None` without an id.
pub fn discovered_from_sandbox(
    status: &cri::PodSandboxStatus,
    info: &VerboseInfo,
    runtime: Runtime,
) -> Option<Discovered> {
    if status.id.is_empty() {
        return None;
    }
    let md = status.metadata.as_ref();
    let (net, pid, ipc) = sandbox_host_namespaces(status);
    let mut c = Container {
        id: status.id.clone(),
        runtime: Some(runtime),
        name: md.map(|m| m.name.clone()).unwrap_or_default(),
        image: info.image.clone().unwrap_or_default(),
        labels: labels_and_annotations(&status.labels, &status.annotations),
        privileged: info.privileged.unwrap_or(false),
        host_network: net || info.host_network,
        host_pid: pid || info.host_pid,
        host_ipc: ipc || info.host_ipc,
        user: info.user.clone().unwrap_or_default(),
        runtime_namespace: (runtime == Runtime::Containerd).then(|| CONTAINERD_CRI_NAMESPACE.to_string()),
        created_ns: u64::try_from(status.created_at).ok().filter(|t| *t > 0),
        ..Default::default()
    };
    fill_pod(&mut c, Some(status));
    let ready = life_of_sandbox(status.state) == Life::Running;
    Some(Discovered { container: c, pid: info.pid.filter(|_| ready) })
}

/// What a `ListContainers` entry adds to a status (the image as requested,
/// where the status only had an id).
pub(super) fn fill_from_list_entry(c: &mut Container, entry: &cri::Container) {
    if let Some(u) = user_specified(entry.image.as_ref()) {
        c.image = u.to_string();
    } else if is_image_id(&c.image) {
        if let Some(i) = image_of(entry.image.as_ref()).filter(|i| !is_image_id(i)) {
            c.image = i.to_string();
        }
    }
    if c.image_id.is_empty() {
        c.image_id = non_empty(&entry.image_id).unwrap_or_else(|| entry.image_ref.clone());
    }
}

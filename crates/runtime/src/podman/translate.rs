//! libpod answers -> rampart's [`Container`] and lifecycle events (the
//! mapping decisions in [`super`]).

use super::*;

/// Map a podman event to a lifecycle event (`None` for events rampart ignores).
pub fn runtime_event_from_podman(ev: &PodmanEvent) -> Option<RuntimeEvent> {
    if !ev.typ.is_empty() && ev.typ != "container" {
        return None;
    }
    let id = if ev.actor.id.is_empty() { ev.id.clone() } else { ev.actor.id.clone() };
    if id.is_empty() {
        return None;
    }
    let action = if ev.action.is_empty() { ev.status.as_str() } else { ev.action.as_str() };
    Some(match action {
        "start" => RuntimeEvent::Started { id },
        "died" => RuntimeEvent::Died { id },
        "remove" => RuntimeEvent::Destroyed { id },
        "rename" | "update" => RuntimeEvent::Changed { id },
        _ => return None,
    })
}

/// Docker's capability spelling: `CAP_NET_ADMIN` -> `NET_ADMIN` (`ALL` stays).
pub(super) fn docker_cap(cap: &str) -> String {
    let up = cap.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// Map a libpod inspect answer (and its pod's, when it is in one) into
/// rampart's container.
pub fn container_from_inspect(resp: &PodmanInspect, pod: Option<&PodmanPod>) -> Option<Container> {
    if resp.id.is_empty() {
        return None;
    }
    let host = &resp.host_config;
    let mut labels = resp.config.labels.clone();
    let k8s_label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let (pod_name, pod_namespace, pod_uid) =
        (k8s_label(LABEL_POD_NAME), k8s_label(LABEL_POD_NAMESPACE), k8s_label(LABEL_POD_UID));
    if !resp.pod.is_empty() {
        labels.insert(LABEL_PODMAN_POD_ID.to_string(), resp.pod.clone());
        match pod.filter(|p| p.id.is_empty() || p.id == resp.pod) {
            Some(p) if !p.name.is_empty() => {
                labels.insert(LABEL_PODMAN_POD_NAME.to_string(), p.name.clone());
            }
            // Unknown pod name: no stale or user-given value either.
            _ => {
                labels.remove(LABEL_PODMAN_POD_NAME);
            }
        }
    }
    let mounts = resp
        .mounts
        .iter()
        .map(|m| Mount {
            source: m.source.clone(),
            destination: m.destination.clone(),
            read_only: !m.rw.unwrap_or(true),
            propagation: m.propagation.clone(),
            mode: if m.mode.is_empty() { m.options.join(",") } else { m.mode.clone() },
        })
        .collect();
    let image_id = match resp.image.as_str() {
        "" => String::new(),
        hex if crate::cgroup::is_hex64(hex) => format!("sha256:{hex}"),
        other => other.to_string(),
    };
    let cgroup_path = Some(resp.state.cgroup_path.as_str())
        .filter(|p| parse_cgroup_path(p).is_some_and(|c| c.id == resp.id))
        .unwrap_or("")
        .to_string();
    Some(Container {
        runtime: Some(Runtime::Podman),
        name: resp.name.trim_start_matches('/').to_string(),
        image: if resp.image_name.is_empty() { resp.config.image.clone() } else { resp.image_name.clone() },
        image_id,
        privileged: host.privileged,
        cap_add: host.cap_add.iter().map(|c| docker_cap(c)).collect(),
        cap_drop: host.cap_drop.iter().map(|c| docker_cap(c)).collect(),
        mounts,
        host_pid: host.pid_mode == "host",
        host_network: host.network_mode == "host",
        host_ipc: host.ipc_mode == "host",
        user: resp.config.user.clone(),
        pod_name,
        pod_namespace,
        pod_uid,
        pod_labels: BTreeMap::new(),
        runtime_namespace: None,
        cgroup_path,
        upper_dir: resp.graph_driver.data.get("UpperDir").filter(|u| !u.is_empty()).cloned(),
        created_ns: model::utc::parse_rfc3339(&resp.created),
        labels,
        id: resp.id.clone(),
    })
}

/// [`container_from_inspect`] plus the init pid of a running container.
pub fn discovered_from_inspect(resp: &PodmanInspect, pod: Option<&PodmanPod>) -> Option<Discovered> {
    let container = container_from_inspect(resp, pod)?;
    let pid =
        Some(resp.state.pid).filter(|p| resp.state.running && *p > 0).and_then(|p| u32::try_from(p).ok());
    Some(Discovered { container, pid })
}

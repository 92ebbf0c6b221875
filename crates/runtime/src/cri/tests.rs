use super::*;

/// Captured from containerd 1.6.20's CRI plugin (tests/cri_live.rs's pod: host
/// network, a mount, NET_ADMIN added, MKNOD dropped), serialised with the
/// k8s-cri types; the OCI spec inside the verbose info trimmed.
const CONTAINER_STATUS: &str = include_str!("testdata/containerd-1.6-container-status.json");
const SANDBOX_STATUS: &str = include_str!("testdata/containerd-1.6-sandbox-status.json");

const CID: &str = "fddc6b65af3e2529c169f9d662c667aea65aa9d049be8526d92d82e7badf24bb";
const UID: &str = "6b0b17ae-2c7d-4000-85a8-149f75a80000";

fn fixtures() -> (cri::ContainerStatusResponse, cri::PodSandboxStatusResponse) {
    (serde_json::from_str(CONTAINER_STATUS).unwrap(), serde_json::from_str(SANDBOX_STATUS).unwrap())
}

#[test]
fn maps_containerd_container_status() {
    let (cs, ps) = fixtures();
    let info = VerboseInfo::parse(&cs.info);
    assert_eq!(info.sandbox_id.as_deref(), ps.status.as_ref().map(|s| s.id.as_str()));
    let d = discovered_from_container(
        cs.status.as_ref().unwrap(),
        &info,
        ps.status.as_ref(),
        Runtime::Containerd,
    )
    .unwrap();
    assert!(d.pid.is_some_and(|p| p > 1), "{:?}", d.pid);
    let c = d.container;
    assert_eq!(c.id.len(), 64);
    assert_eq!(c.runtime, Some(Runtime::Containerd));
    assert_eq!(c.name, "sleeper", "the container's name within the pod");
    assert_eq!(c.created_ns, Some(1_795_889_070_468_278_356), "created_at, for container.start_ts");
    assert_eq!(c.image, "rampart-test:latest", "the image as the pod spec named it");
    assert!(is_image_id(&c.image_id), "{}", c.image_id);
    assert_eq!(c.pod_name.as_deref(), Some("scratch-pod"));
    assert_eq!(c.pod_namespace.as_deref(), Some("scratch-ns"));
    assert_eq!(c.pod_uid.as_deref(), Some(UID));
    assert_eq!(c.pod_labels, BTreeMap::from([("app".to_string(), "scratch".to_string())]));
    assert_eq!(c.labels.get("clabel").map(String::as_str), Some("v"));
    assert_eq!(c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str), Some("sleeper"));
    assert_eq!(c.runtime_namespace.as_deref(), Some("k8s.io"));
    assert!(c.host_network, "pod in the host's network namespace");
    assert!(!c.host_pid && !c.host_ipc);
    assert!(!c.privileged);
    assert_eq!(c.cap_add, vec!["NET_ADMIN"]);
    assert_eq!(c.cap_drop, vec!["MKNOD"]);
    assert_eq!(c.user, "0:0");
    assert_eq!(
        c.mounts,
        vec![Mount {
            source: "/tmp".into(),
            destination: "/host-tmp".into(),
            read_only: true,
            propagation: "rprivate".into(),
            mode: String::new(),
        }]
    );
    assert!(c.cgroup_path.is_empty(), "the registry fills the cgroup");
    assert!(c.has_metadata());
}

#[test]
fn maps_containerd_sandbox_as_pause_container() {
    let (_, ps) = fixtures();
    let info = VerboseInfo::parse(&ps.info);
    let status = ps.status.as_ref().unwrap();
    let d = discovered_from_sandbox(status, &info, Runtime::Containerd).unwrap();
    assert!(d.pid.is_some_and(|p| p > 1));
    let c = d.container;
    assert_eq!(c.id, status.id);
    assert_eq!(c.name, "scratch-pod", "the pause container is named like its pod");
    assert_eq!(c.image, "rampart.local/pause:latest");
    assert_eq!(c.pod_name.as_deref(), Some("scratch-pod"));
    assert_eq!(c.pod_namespace.as_deref(), Some("scratch-ns"));
    assert_eq!(c.pod_uid.as_deref(), Some(UID));
    assert_eq!(c.pod_labels.get("app").map(String::as_str), Some("scratch"));
    assert!(!c.pod_labels.contains_key(LABEL_POD_NAME), "kubelet identity labels are not pod labels");
    assert_eq!(c.labels.get("note").map(String::as_str), Some("hello"), "annotations");
    assert!(c.host_network && !c.host_pid && !c.host_ipc);
    assert_eq!(c.runtime_namespace.as_deref(), Some("k8s.io"));
    assert_eq!(c.user, "0:0");

    // Not ready: no pid to map a cgroup from.
    let mut stopped = status.clone();
    stopped.state = cri::PodSandboxState::SandboxNotready as i32;
    assert_eq!(discovered_from_sandbox(&stopped, &info, Runtime::Containerd).unwrap().pid, None);
}

#[test]
fn container_without_sandbox_takes_pod_from_kubelet_labels() {
    let (cs, _) = fixtures();
    let mut status = cs.status.unwrap();
    status.state = cri::ContainerState::ContainerExited as i32;
    let d = discovered_from_container(&status, &VerboseInfo::default(), None, Runtime::Crio).unwrap();
    assert_eq!(d.pid, None);
    let c = d.container;
    assert_eq!(c.runtime, Some(Runtime::Crio));
    assert_eq!(c.runtime_namespace, None, "only containerd has namespaces");
    assert_eq!(c.pod_name.as_deref(), Some("scratch-pod"));
    assert_eq!(c.pod_namespace.as_deref(), Some("scratch-ns"));
    assert_eq!(c.pod_uid.as_deref(), Some(UID));
    assert!(c.pod_labels.is_empty());
    assert!(!c.host_network, "unknown without the sandbox or the config");
    // Without the requested image, the status image (containerd: the first tag).
    assert_eq!(c.image, "docker.io/library/rampart-test:latest");
    assert_eq!(c.user, "", "no OCI spec, no user");
}

/// CRI-O's verbose info: `sandboxID`, `pid`, `privileged`, `runtimeSpec`, no CRI config.
#[test]
fn parses_crio_verbose_info() {
    let info = HashMap::from([(
        "info".to_string(),
        r#"{"sandboxID":"5f0b0c4d","pid":4242,"privileged":true,
            "runtimeSpec":{"ociVersion":"1.0.2-dev","process":{"user":{"uid":1000,"gid":3000},"args":["sleep","1"]}}}"#
            .to_string(),
    )]);
    let v = VerboseInfo::parse(&info);
    assert_eq!(v.sandbox_id.as_deref(), Some("5f0b0c4d"));
    assert_eq!(v.pid, Some(4242));
    assert_eq!(v.privileged, Some(true));
    assert_eq!(v.user.as_deref(), Some("1000:3000"));
    assert!(v.cap_add.is_empty() && v.config_image.is_none());

    let mut status = cri::ContainerStatus {
        id: "a".repeat(64),
        metadata: Some(cri::ContainerMetadata { name: "web".into(), attempt: 0 }),
        state: cri::ContainerState::ContainerRunning as i32,
        image: Some(cri::ImageSpec { image: "quay.io/org/web:1.2".into(), ..Default::default() }),
        image_ref: "quay.io/org/web@sha256:0123".into(),
        ..Default::default()
    };
    let c = discovered_from_container(&status, &v, None, Runtime::Crio).unwrap();
    assert_eq!(c.pid, Some(4242));
    assert!(c.container.privileged);
    assert_eq!(c.container.image, "quay.io/org/web:1.2");
    assert_eq!(c.container.image_id, "quay.io/org/web@sha256:0123", "image_ref when no image_id");
    status.image_id = "sha256:feed".into();
    let c = discovered_from_container(&status, &v, None, Runtime::Crio).unwrap();
    assert_eq!(c.container.image_id, "sha256:feed");
}

#[test]
fn image_is_what_the_pod_spec_named() {
    let id = format!("sha256:{}", "ab".repeat(32));
    let status = |image: &str, user: &str| cri::ContainerStatus {
        id: "b".repeat(64),
        image: Some(cri::ImageSpec {
            image: image.into(),
            user_specified_image: user.into(),
            ..Default::default()
        }),
        image_ref: id.clone(),
        ..Default::default()
    };
    // The kubelet asks by id; containerd answers its tag.
    let kubelet = VerboseInfo { config_image: Some(id.clone()), ..Default::default() };
    let c = |s: &cri::ContainerStatus, v: &VerboseInfo| {
        discovered_from_container(s, v, None, Runtime::Containerd).unwrap().container.image
    };
    assert_eq!(c(&status("docker.io/library/nginx:1.25", ""), &kubelet), "docker.io/library/nginx:1.25");
    // A newer kubelet also sends the pod spec's own words.
    assert_eq!(c(&status("docker.io/library/nginx:1.25", "nginx:1.25"), &kubelet), "nginx:1.25");
    let newer = VerboseInfo {
        config_image: Some(id.clone()),
        config_user_specified_image: Some("nginx:1.25".into()),
        ..Default::default()
    };
    assert_eq!(c(&status("docker.io/library/nginx:1.25", ""), &newer), "nginx:1.25");
    // Only ids anywhere: the id.
    assert_eq!(c(&status(&id, ""), &kubelet), id);
    assert_eq!(c(&status("", ""), &VerboseInfo::default()), id, "image_ref as the last resort");

    // A list entry names the image where the status had only an id.
    let mut cont = Container { image: id.clone(), ..Default::default() };
    let entry = cri::Container {
        image: Some(cri::ImageSpec { image: "registry.local/app:2".into(), ..Default::default() }),
        image_ref: id.clone(),
        ..Default::default()
    };
    fill_from_list_entry(&mut cont, &entry);
    assert_eq!(cont.image, "registry.local/app:2");
    assert_eq!(cont.image_id, id);
}

#[test]
fn annotations_are_bounded_and_never_shadow_labels() {
    let labels = HashMap::from([("team".to_string(), "a".to_string())]);
    let annotations = HashMap::from([
        ("team".to_string(), "b".to_string()),
        ("io.kubernetes.container.hash".to_string(), "1234".to_string()),
        ("kubectl.kubernetes.io/last-applied-configuration".to_string(), "x".repeat(MAX_ANNOTATION_LEN + 1)),
    ]);
    let m = labels_and_annotations(&labels, &annotations);
    assert_eq!(m.get("team").map(String::as_str), Some("a"));
    assert_eq!(m.get("io.kubernetes.container.hash").map(String::as_str), Some("1234"));
    assert!(!m.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
}

#[test]
fn sandbox_host_namespaces_from_namespace_option() {
    let node = cri::NamespaceMode::Node as i32;
    let s = cri::PodSandboxStatus {
        id: "c".repeat(64),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: node,
                    ipc: node,
                    ..Default::default()
                }),
            }),
        }),
        ..Default::default()
    };
    assert_eq!(sandbox_host_namespaces(&s), (false, true, true));
    let c = discovered_from_sandbox(&s, &VerboseInfo::default(), Runtime::Crio).unwrap().container;
    assert!(!c.host_network && c.host_pid && c.host_ipc);
    assert_eq!(sandbox_host_namespaces(&cri::PodSandboxStatus::default()), (false, false, false));
    assert!(discovered_from_sandbox(
        &cri::PodSandboxStatus::default(),
        &VerboseInfo::default(),
        Runtime::Crio
    )
    .is_none());
}

#[test]
fn malformed_verbose_info_is_ignored() {
    for raw in ["", "{", "[1,2]", "null", r#"{"pid":-1,"sandboxID":7,"privileged":"yes"}"#] {
        let v = VerboseInfo::parse(&HashMap::from([("info".to_string(), raw.to_string())]));
        assert_eq!(v, VerboseInfo::default(), "{raw}");
    }
    assert_eq!(VerboseInfo::parse(&HashMap::new()), VerboseInfo::default());
}

#[test]
fn propagation_names() {
    assert_eq!(propagation_name(cri::MountPropagation::PropagationPrivate as i32), "rprivate");
    assert_eq!(propagation_name(cri::MountPropagation::PropagationHostToContainer as i32), "rslave");
    assert_eq!(propagation_name(cri::MountPropagation::PropagationBidirectional as i32), "rshared");
    assert_eq!(propagation_name(99), "rprivate");
}

fn lives(v: &[(&str, Life)]) -> BTreeMap<String, Life> {
    v.iter().map(|(id, l)| (id.to_string(), *l)).collect()
}

#[test]
fn lifecycle_diff() {
    use Life::*;
    let started = |id: &str| RuntimeEvent::Started { id: id.into() };
    let died = |id: &str| RuntimeEvent::Died { id: id.into() };
    let destroyed = |id: &str| RuntimeEvent::Destroyed { id: id.into() };

    let prev = lives(&[("a", Running), ("b", Created), ("c", Running), ("d", Exited), ("e", Running)]);
    let cur = lives(&[
        ("a", Running), // unchanged
        ("b", Running), // created -> running
        ("c", Exited),  // died
        // d removed after exiting, e removed while running
        ("f", Running), // new
        ("g", Created), // new, not started yet
        ("h", Exited),  // new, already gone: still learned
    ]);
    assert_eq!(
        diff_lifecycles(&prev, &cur),
        vec![
            started("b"),
            died("c"),
            started("f"),
            started("h"),
            died("h"),
            destroyed("d"),
            died("e"),
            destroyed("e"),
        ]
    );
    assert!(diff_lifecycles(&cur, &cur).is_empty());
    assert!(diff_lifecycles(&BTreeMap::new(), &BTreeMap::new()).is_empty());
    // A sandbox that was not ready and is ready again (restarted).
    assert_eq!(diff_lifecycles(&lives(&[("s", Exited)]), &lives(&[("s", Running)])), vec![started("s")]);
    assert_eq!(
        diff_lifecycles(&lives(&[("s", Created)]), &lives(&[("s", Exited)])),
        vec![started("s"), died("s")]
    );
}

#[test]
fn lives_of_states() {
    assert_eq!(life_of_container(cri::ContainerState::ContainerCreated as i32), Life::Created);
    assert_eq!(life_of_container(cri::ContainerState::ContainerRunning as i32), Life::Running);
    assert_eq!(life_of_container(cri::ContainerState::ContainerExited as i32), Life::Exited);
    assert_eq!(life_of_container(cri::ContainerState::ContainerUnknown as i32), Life::Exited);
    assert_eq!(life_of_sandbox(cri::PodSandboxState::SandboxReady as i32), Life::Running);
    assert_eq!(life_of_sandbox(cri::PodSandboxState::SandboxNotready as i32), Life::Exited);
}

#[test]
fn maps_container_events() {
    let ev = |t: cri::ContainerEventType, id: &str| cri::ContainerEventResponse {
        container_id: id.into(),
        container_event_type: t as i32,
        ..Default::default()
    };
    use cri::ContainerEventType as T;
    assert_eq!(runtime_event_from_cri(&ev(T::ContainerCreatedEvent, CID)), None);
    assert_eq!(
        runtime_event_from_cri(&ev(T::ContainerStartedEvent, CID)),
        Some(RuntimeEvent::Started { id: CID.into() })
    );
    assert_eq!(
        runtime_event_from_cri(&ev(T::ContainerStoppedEvent, CID)),
        Some(RuntimeEvent::Died { id: CID.into() })
    );
    assert_eq!(
        runtime_event_from_cri(&ev(T::ContainerDeletedEvent, CID)),
        Some(RuntimeEvent::Destroyed { id: CID.into() })
    );
    assert_eq!(runtime_event_from_cri(&ev(T::ContainerStartedEvent, "")), None);
    let mut odd = ev(T::ContainerStartedEvent, CID);
    odd.container_event_type = 42;
    assert_eq!(runtime_event_from_cri(&odd), None);
}

#[test]
fn runtime_names_and_guesses() {
    assert_eq!(runtime_of_name("containerd"), Runtime::Containerd);
    assert_eq!(runtime_of_name("cri-o"), Runtime::Crio);
    assert_eq!(runtime_of_name("docker"), Runtime::Docker);
    assert_eq!(runtime_of_name("something"), Runtime::Kubernetes);
    let crio = CriClient::with_socket(DEFAULT_CRIO_SOCKET);
    assert_eq!((crio.runtime(), crio.name()), (Runtime::Crio, "cri-o"));
    assert!(
        crio.handles(Runtime::Crio) && crio.handles(Runtime::Kubernetes) && !crio.handles(Runtime::Docker)
    );
    let ctd = CriClient::with_socket(format!("unix://{DEFAULT_CRI_CONTAINERD_SOCKET}"));
    assert_eq!((ctd.runtime(), ctd.name()), (Runtime::Containerd, "cri-containerd"));
    assert_eq!(ctd.endpoint(), DEFAULT_CRI_CONTAINERD_SOCKET, "unix:// stripped");
    let forced = CriClient::new(CriConfig {
        socket: "/tmp/x.sock".into(),
        runtime: Some(Runtime::Crio),
        ..Default::default()
    });
    assert_eq!(forced.runtime(), Runtime::Crio);
}

#[test]
fn not_found_statuses() {
    assert!(is_not_found(&tonic::Status::not_found("an error occurred when try to find container")));
    assert!(is_not_found(&tonic::Status::unknown("container with ID starting with abc not found")));
    assert!(!is_not_found(&tonic::Status::unknown("boom")));
    assert!(!is_not_found(&tonic::Status::unavailable("not found")));
    assert!(is_transport(&tonic::Status::unavailable("connection refused")));
    assert!(!is_transport(&tonic::Status::not_found("x")));
}

#[tokio::test]
async fn absent_socket_is_a_connect_error() {
    let c = CriClient::with_socket("/nonexistent/rampart-cri.sock");
    let err = c.inspect_container(CID).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_unreachable());
    assert!(err.to_string().contains("/nonexistent/rampart-cri.sock"), "{err}");
    assert!(c.list_containers().await.unwrap_err().is_unreachable());
    assert!(c.event_stream().await.is_err());
}

use super::*;
use containerd_client::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, TaskDelete, TaskExit, TaskStart,
};
use containerd_client::services::v1::container::Runtime as CtrdRuntime;

/// `ctr -n rampart-probe1 run -d --label nerdctl/name=probe-nice --label app=probe
/// docker.io/library/rampart-test:latest myname sleep 300`, as `ctr c info` showed
/// its spec on containerd 1.6.20.
const SPEC_RUN: &str = include_str!("testdata/spec-ctr-run.json");
/// `ctr c create --privileged --net-host --mount type=bind,src=/etc,dst=/host/etc,options=rbind:ro`
/// on the same host (devices trimmed).
const SPEC_PRIVILEGED: &str = include_str!("testdata/spec-ctr-privileged-net-host.json");

const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn ctrd(id: &str, labels: &[(&str, &str)], spec: Option<&str>) -> CtrdContainer {
    CtrdContainer {
        id: id.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        image: "docker.io/library/rampart-test:latest".into(),
        runtime: Some(CtrdRuntime { name: "io.containerd.runc.v2".into(), options: None }),
        spec: spec.map(|s| Any { type_url: SPEC_TYPE_URL.into(), value: s.as_bytes().to_vec() }),
        snapshotter: "overlayfs".into(),
        snapshot_key: id.into(),
        ..Default::default()
    }
}

#[test]
fn maps_a_ctr_run_container() {
    let c = ctrd(
        "myname",
        &[
            ("app", "probe"),
            ("nerdctl/name", "probe-nice"),
            ("io.containerd.image.config.stop-signal", "SIGTERM"),
        ],
        Some(SPEC_RUN),
    );
    let m = container_from_containerd("rampart-probe1", &c).unwrap();
    assert_eq!(m.id, "myname");
    assert_eq!(m.runtime, Some(Runtime::Containerd));
    assert_eq!(m.name, "probe-nice", "nerdctl's name label wins over the id");
    assert_eq!(m.image, "docker.io/library/rampart-test:latest");
    assert_eq!(m.runtime_namespace.as_deref(), Some("rampart-probe1"));
    assert_eq!(m.labels.get("app").map(String::as_str), Some("probe"));
    assert_eq!(m.labels.len(), 3);
    assert_eq!(m.user, "0:0");
    // containerd's default set: nothing added or dropped
    assert!(m.cap_add.is_empty(), "{:?}", m.cap_add);
    assert!(m.cap_drop.is_empty(), "{:?}", m.cap_drop);
    assert!(!m.privileged);
    assert!(!m.host_pid && !m.host_network && !m.host_ipc);
    // /proc, /dev, /sys ... are not bind mounts
    assert!(m.mounts.is_empty(), "{:?}", m.mounts);
    assert_eq!(m.pod_name, None);
    assert!(m.has_metadata());
}

#[test]
fn maps_a_privileged_host_network_container() {
    let c = ctrd("privc", &[("io.kubernetes.container.name", "kname")], Some(SPEC_PRIVILEGED));
    let m = container_from_containerd("rampart-probe1", &c).unwrap();
    assert_eq!(m.name, "kname");
    assert!(m.privileged);
    assert!(m.host_network);
    assert!(!m.host_pid && !m.host_ipc);
    assert!(m.cap_add.contains(&"SYS_ADMIN".to_string()), "{:?}", m.cap_add);
    assert!(m.cap_add.contains(&"NET_ADMIN".to_string()));
    assert!(m.cap_add.iter().all(|c| !c.starts_with("CAP_")));
    assert!(m.cap_drop.is_empty());
    let etc = m.mounts.iter().find(|m| m.destination == "/host/etc").expect("the /etc bind mount");
    assert_eq!(etc.source, "/etc");
    assert!(etc.read_only);
    assert_eq!(etc.mode, "rbind,ro");
    // --net-host also binds the host's /etc/hosts and resolv.conf
    assert!(m.mounts.iter().any(|m| m.destination == "/etc/resolv.conf"));
}

#[test]
fn spec_edge_cases() {
    let spec = r#"{
      "process": {"user": {"uid": 1000, "gid": 100, "username": "app"},
                  "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_KILL"]},
                  "someFutureField": 1},
      "mounts": [{"destination": "/data", "type": "none", "source": "/srv/data",
                  "options": ["rbind", "rslave", "rw"]},
                 {"destination": "/run/containerd/containerd.sock", "type": "bind",
                  "source": "/run/containerd/containerd.sock"}],
      "linux": {"namespaces": [{"type": "mount"}, {"type": "network"},
                               {"type": "pid", "path": "/proc/1/ns/pid"},
                               {"type": "ipc", "path": "/proc/4242/ns/ipc"}]}
    }"#;
    let m = container_from_containerd("ns", &ctrd("x", &[], Some(spec))).unwrap();
    assert_eq!(m.name, "x", "without name labels the id is the name");
    assert_eq!(m.user, "app");
    assert_eq!(m.cap_add, vec!["NET_ADMIN"]);
    assert_eq!(m.cap_drop.len(), DEFAULT_CAPABILITIES.len() - 2);
    assert!(m.cap_drop.contains(&"NET_RAW".to_string()) && !m.cap_drop.contains(&"KILL".to_string()));
    assert!(!m.privileged, "no SYS_ADMIN");
    assert!(m.host_pid, "joined pid 1's namespace");
    assert!(!m.host_ipc, "joined another container's namespace");
    assert!(!m.host_network);
    assert_eq!(m.mounts.len(), 2);
    assert_eq!(m.mounts[0].propagation, "rslave");
    assert!(!m.mounts[0].read_only);
    assert_eq!(m.mounts[1].source, "/run/containerd/containerd.sock");

    // No capabilities section: the process has none.
    let m =
        container_from_containerd("ns", &ctrd("x", &[], Some(r#"{"process": {"user": {}}, "linux": {}}"#)))
            .unwrap();
    assert_eq!(m.cap_drop, vec!["ALL"]);
    assert!(
        m.host_pid && m.host_network && m.host_ipc,
        "a linux section without namespaces shares the host's"
    );

    // Undecodable or missing spec: metadata without spec-derived fields.
    for spec in [Some("not json"), None] {
        let m = container_from_containerd("ns", &ctrd("y", &[], spec)).unwrap();
        assert_eq!(m.name, "y");
        assert!(!m.privileged && !m.host_pid && !m.host_network && m.cap_drop.is_empty());
    }
    assert!(container_from_containerd("ns", &ctrd("", &[], None)).is_none());
}

#[test]
fn kubernetes_labels_fill_pod_fields() {
    let c = ctrd(
        "3f1c2b7e9a0d4c8b6e5f7a9c1d3e5f7091b2c4d6e8fa0b1c2d3e4f5a6b7c8d9e",
        &[
            ("io.kubernetes.container.name", "web"),
            ("io.kubernetes.pod.name", "web-7d4b9"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.pod.uid", "6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c"),
        ],
        None,
    );
    let m = container_from_containerd("k8s.io", &c).unwrap();
    assert_eq!(m.name, "web");
    assert_eq!(m.pod_name.as_deref(), Some("web-7d4b9"));
    assert_eq!(m.pod_namespace.as_deref(), Some("shop"));
    assert_eq!(m.pod_uid.as_deref(), Some("6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c"));
    assert_eq!(m.runtime_namespace.as_deref(), Some("k8s.io"));
}

fn any<T: Message + prost::Name>(m: &T) -> Any {
    containerd_client::to_any(m)
}

#[test]
fn maps_events() {
    let start = any(&TaskStart { container_id: "c1".into(), pid: 42 });
    assert_eq!(start.type_url, "containerd.events.TaskStart", "what containerd sends");
    assert_eq!(
        runtime_event_from_envelope("/tasks/start", Some(&start)),
        Some(RuntimeEvent::Started { id: "c1".into() })
    );
    let exit = |id: &str| {
        any(&TaskExit { container_id: "c1".into(), id: id.into(), pid: 42, exit_status: 0, exited_at: None })
    };
    assert_eq!(
        runtime_event_from_envelope("/tasks/exit", Some(&exit("c1"))),
        Some(RuntimeEvent::Died { id: "c1".into() })
    );
    // an exec'd process exiting is not the container dying
    assert_eq!(runtime_event_from_envelope("/tasks/exit", Some(&exit("exec-7"))), None);
    let delete = any(&TaskDelete {
        container_id: "c1".into(),
        pid: 42,
        exit_status: 0,
        exited_at: None,
        id: String::new(),
    });
    assert_eq!(
        runtime_event_from_envelope("/tasks/delete", Some(&delete)),
        Some(RuntimeEvent::Died { id: "c1".into() })
    );
    let create = any(&ContainerCreate { id: "c1".into(), image: "img".into(), runtime: None });
    assert_eq!(
        runtime_event_from_envelope("/containers/create", Some(&create)),
        Some(RuntimeEvent::Changed { id: "c1".into() })
    );
    let update = any(&ContainerUpdate { id: "c1".into(), ..Default::default() });
    assert_eq!(
        runtime_event_from_envelope("/containers/update", Some(&update)),
        Some(RuntimeEvent::Changed { id: "c1".into() })
    );
    let del = any(&ContainerDelete { id: "c1".into() });
    assert_eq!(
        runtime_event_from_envelope("/containers/delete", Some(&del)),
        Some(RuntimeEvent::Destroyed { id: "c1".into() })
    );
    // payload of another type, missing payload, empty id, other topics
    assert_eq!(runtime_event_from_envelope("/tasks/start", Some(&del)), None);
    assert_eq!(runtime_event_from_envelope("/tasks/start", None), None);
    assert_eq!(runtime_event_from_envelope("/tasks/start", Some(&any(&TaskStart::default()))), None);
    assert_eq!(runtime_event_from_envelope("/images/create", Some(&start)), None);
    // garbage bytes do not panic
    let junk = Any { type_url: "containerd.events.TaskStart".into(), value: vec![0xff; 7] };
    assert_eq!(runtime_event_from_envelope("/tasks/start", Some(&junk)), None);
}

#[test]
fn task_pids_and_upper_dirs() {
    let p = |status: TaskStatus, pid| Process {
        container_id: "c".into(),
        pid,
        status: status as i32,
        ..Default::default()
    };
    assert_eq!(live_pid(&p(TaskStatus::Running, 7)), Some(7));
    assert_eq!(live_pid(&p(TaskStatus::Paused, 7)), Some(7));
    assert_eq!(live_pid(&p(TaskStatus::Stopped, 7)), None);
    assert_eq!(live_pid(&p(TaskStatus::Created, 7)), None);
    assert_eq!(live_pid(&p(TaskStatus::Running, 0)), None);
    // Tasks.List on containerd 1.6 names the task, not the container
    let listed =
        Process { id: "myname".into(), pid: 9, status: TaskStatus::Running as i32, ..Default::default() };
    assert_eq!(task_container_id(&listed), "myname");
    assert_eq!(task_container_id(&p(TaskStatus::Running, 7)), "c");
    let opts: Vec<String> = [
        "index=off",
        "workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/work",
        "upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs",
        "lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        upper_dir_of(&opts).as_deref(),
        Some("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs")
    );
    assert_eq!(upper_dir_of(&["ro".to_string()]), None);
}

#[test]
fn skipped_namespaces() {
    let c = ContainerdConfig::default();
    assert!(c.skips("moby") && c.skips("k8s.io") && !c.skips("default"));
    let c = ContainerdConfig { skip_namespaces: vec![], ..Default::default() };
    assert!(c.skips("moby"), "dockerd's namespace is always the Docker client's");
    assert!(!c.skips("k8s.io"));
    let client = ContainerdClient::new(c);
    assert!(client.handles(Runtime::Kubernetes) && client.handles(Runtime::Containerd));
    assert!(!ContainerdClient::with_socket("/x").handles(Runtime::Kubernetes));
    assert!(!client.handles(Runtime::Docker));
}

#[tokio::test]
async fn absent_socket_is_a_connect_error() {
    let c = ContainerdClient::with_socket("unix:///nonexistent/rampart-containerd.sock");
    assert_eq!(c.endpoint(), "/nonexistent/rampart-containerd.sock");
    let err = c.inspect_container("myname").await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_unreachable());
    assert!(err.to_string().contains("/nonexistent/rampart-containerd.sock"), "{err}");
    let err = c.list_containers().await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(c.event_stream().await.is_err());
}

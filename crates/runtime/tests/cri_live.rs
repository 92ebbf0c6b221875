//! Against containerd's real CRI plugin, driven through the CRI API itself: a
//! pod sandbox (host network, no CNI; cgroup parent `/kubepods/besteffort/pod<uid>`
//! as the kubelet's cgroupfs driver names it) and a container of rampart-test in
//! it. Asserts what `CriClient` inspects, lists and streams, and that the
//! registry resolves the pod's cgroups to the pod's containers.
//!
//! Privileged (root, dockerd for the test image, containerd's CRI plugin):
//! ignored by a plain `cargo test`, run by `scripts/test.sh`
//! (`--include-ignored`); then it FAILS (never skips) when containerd does not
//! answer on /run/containerd/containerd.sock (start it with
//! `scripts/containerd.sh start`; the images come from tests/image/pause.sh
//! and tests/image/build.sh).

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use model::Runtime;
use runtime::cri::testing::{ensure_images, ContainerSpec, MountSpec, PodSpec, TestPod};
use runtime::{
    find_cgroup2_mount, CgroupTree, CgroupTreeConfig, ContainerRegistry, CriClient, Discovered,
    RegistryConfig, RuntimeClient, RuntimeEvent, DEFAULT_CRI_CONTAINERD_SOCKET,
};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{unique, IMAGE};

/// The cgroup v2 path (relative to the cgroup2 mount) of a process.
fn cgroup_of_pid(pid: u32) -> Result<String> {
    let text =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).with_context(|| format!("pid {pid}"))?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(String::from).context("no cgroup v2 line")
}

async fn next_event(
    events: &mut futures_util::stream::BoxStream<'static, Result<RuntimeEvent, runtime::Error>>,
    timeout: Duration,
    want: impl Fn(&RuntimeEvent) -> bool,
    seen: &mut Vec<RuntimeEvent>,
) -> Result<RuntimeEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.next()).await {
            Err(_) => bail!("no such event within {timeout:?}; saw {seen:?}"),
            Ok(None) => bail!("event stream ended; saw {seen:?}"),
            Ok(Some(Err(e))) => bail!("event stream failed: {e}"),
            Ok(Some(Ok(ev))) => {
                seen.push(ev.clone());
                if want(&ev) {
                    return Ok(ev);
                }
            }
        }
    }
}

fn registry(client: Arc<dyn RuntimeClient>) -> Result<ContainerRegistry> {
    let tree = Arc::new(CgroupTree::new(find_cgroup2_mount()?, CgroupTreeConfig::default()));
    Ok(ContainerRegistry::new(RegistryConfig::default(), Some(tree), vec![client]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and containerd's CRI plugin (scripts/test.sh runs it)"]
async fn cri_pod_inspect_list_events() -> Result<()> {
    testkit::require_containerd();
    testkit::test_image();
    let sock = Path::new(DEFAULT_CRI_CONTAINERD_SOCKET);
    let client = Arc::new(CriClient::with_socket(sock));
    let v = client.version().await.with_context(|| {
        format!(
            "containerd's CRI does not answer on {} as root (scripts/containerd.sh start)",
            sock.display()
        )
    })?;
    assert_eq!((v.runtime, v.runtime_name.as_str()), (Runtime::Containerd, "containerd"));
    assert_eq!(client.runtime(), Runtime::Containerd);
    assert_eq!(client.name(), "cri-containerd");
    ensure_images(sock, IMAGE).await?;

    // Subscribe before the pod exists, as the registry does.
    let mut events = client.events(0).await?;

    let pod_name = unique("rt-cri-pod");
    let mut spec = PodSpec::new(&pod_name, "rampart-test-ns");
    spec.labels.insert("app".into(), "rampart-cri".into());
    spec.labels.insert("tier".into(), "test".into());
    spec.annotations.insert("rampart.test/note".into(), "hello".into());
    let uid = spec.uid.clone();
    let mut pod = TestPod::run(sock, spec).await?;
    let sandbox_id = pod.sandbox_id.clone();
    let mut c = ContainerSpec::new("sleeper", IMAGE, &["sleep", "300"]);
    c.labels.insert("rampart.test".into(), "1".into());
    c.mounts.push(MountSpec { host_path: "/tmp".into(), container_path: "/host-tmp".into(), readonly: true });
    let id = pod.start_container(&c).await?;

    // Inspect the container.
    let Discovered { container: got, pid } = client.inspect(&id).await?;
    let pid = pid.context("a running container has a pid")?;
    assert_eq!(got.id, id);
    assert_eq!(got.runtime, Some(Runtime::Containerd));
    assert_eq!(got.name, "sleeper");
    assert_eq!(got.image, IMAGE);
    assert!(got.image_id.starts_with("sha256:"), "{}", got.image_id);
    assert_eq!(got.pod_name.as_deref(), Some(pod_name.as_str()));
    assert_eq!(got.pod_namespace.as_deref(), Some("rampart-test-ns"));
    assert_eq!(got.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(got.pod_labels.get("app").map(String::as_str), Some("rampart-cri"));
    assert_eq!(got.pod_labels.get("tier").map(String::as_str), Some("test"));
    assert_eq!(got.pod_labels.len(), 2, "{:?}", got.pod_labels);
    assert_eq!(got.labels.get("rampart.test").map(String::as_str), Some("1"));
    assert_eq!(got.runtime_namespace.as_deref(), Some("k8s.io"));
    assert!(got.host_network && !got.host_pid);
    assert_eq!(got.mounts.len(), 1);
    assert_eq!((got.mounts[0].source.as_str(), got.mounts[0].destination.as_str()), ("/tmp", "/host-tmp"));
    assert!(got.mounts[0].read_only);
    let cg = cgroup_of_pid(pid)?;
    eprintln!("container {id} pid {pid} cgroup {cg}");
    assert_eq!(cg, format!("/kubepods/besteffort/pod{uid}/{id}"));

    // Inspect the sandbox (pause container).
    let Discovered { container: pause, pid: pause_pid } = client.inspect(&sandbox_id).await?;
    let pause_pid = pause_pid.context("a ready sandbox has a pid")?;
    assert_eq!(pause.name, pod_name);
    assert_eq!(pause.image, "rampart.local/pause:latest");
    assert_eq!(pause.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(pause.pod_namespace.as_deref(), Some("rampart-test-ns"));
    assert_eq!(pause.labels.get("rampart.test/note").map(String::as_str), Some("hello"));
    assert_eq!(std::fs::read_to_string(format!("/proc/{pause_pid}/comm"))?.trim(), "pause");
    let pause_cg = cgroup_of_pid(pause_pid)?;
    eprintln!("sandbox {sandbox_id} pid {pause_pid} cgroup {pause_cg}");
    assert_eq!(pause_cg, format!("/kubepods/besteffort/pod{uid}/{sandbox_id}"));

    // List: both, with the same metadata as inspect.
    let list = client.list().await?;
    let listed = list.iter().find(|d| d.container.id == id).context("container not listed")?;
    assert_eq!(listed.container, got);
    assert_eq!(listed.pid, Some(pid));
    let listed = list.iter().find(|d| d.container.id == sandbox_id).context("sandbox not listed")?;
    assert_eq!(listed.container, pause);

    // Events: the sandbox and the container started.
    let mut seen = Vec::new();
    let mut started = HashSet::new();
    while !(started.contains(&id) && started.contains(&sandbox_id)) {
        let ev = next_event(
            &mut events,
            Duration::from_secs(10),
            |e| matches!(e, RuntimeEvent::Started { .. }),
            &mut seen,
        )
        .await?;
        started.insert(ev.id().to_string());
    }

    // The registry maps the pod's cgroups to the pod's containers.
    let reg = registry(client.clone())?;
    let root = find_cgroup2_mount()?;
    let ino = |p: &str| std::fs::metadata(root.join(p.trim_start_matches('/'))).map(|m| m.ino());
    let resolved = reg.resolve(ino(&cg)?).await.context("container cgroup not resolved")?;
    assert_eq!(resolved.id, id);
    assert_eq!(resolved.name, "sleeper");
    assert_eq!(resolved.pod_name.as_deref(), Some(pod_name.as_str()));
    assert_eq!(resolved.pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(resolved.cgroup_path, cg);
    let resolved =
        reg.resolve_for_pid(ino(&pause_cg)?, pause_pid).await.context("sandbox cgroup not resolved")?;
    assert_eq!(resolved.id, sandbox_id);
    assert_eq!(resolved.name, pod_name);

    // Stop the container: Died; remove the pod: Destroyed for both.
    pod.stop_container(&id, Duration::from_secs(2)).await?;
    next_event(
        &mut events,
        Duration::from_secs(10),
        |e| *e == RuntimeEvent::Died { id: id.clone() },
        &mut seen,
    )
    .await?;
    let stopped = client.inspect(&id).await?;
    assert_eq!(stopped.pid, None, "an exited container has no pid");
    assert_eq!(stopped.container.pod_name.as_deref(), Some(pod_name.as_str()));
    pod.remove().await?;
    let mut destroyed = HashSet::new();
    while !(destroyed.contains(&id) && destroyed.contains(&sandbox_id)) {
        let ev = next_event(
            &mut events,
            Duration::from_secs(10),
            |e| matches!(e, RuntimeEvent::Destroyed { .. }),
            &mut seen,
        )
        .await?;
        destroyed.insert(ev.id().to_string());
    }
    let err = client.inspect(&id).await.unwrap_err();
    assert!(matches!(err, runtime::Error::NotFound { .. }), "{err}");
    let err = client.inspect(&sandbox_id).await.unwrap_err();
    assert!(matches!(err, runtime::Error::NotFound { .. }), "{err}");
    Ok(())
}

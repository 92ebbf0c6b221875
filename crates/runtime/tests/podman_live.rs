//! Against the real podman API service (scripts/podman.sh start): a uniquely
//! named `podman run` container is listed, inspected, followed through its
//! events (start, rename, died, remove) and resolved from its cgroup by the
//! registry; a container in a podman pod carries the pod's name as a label.
//!
//! Privileged (root, dockerd for the test image, podman): ignored by a plain
//! `cargo test`, run by `scripts/test.sh` (`--include-ignored`); then it FAILS
//! (never skips) when not root or when the service does not answer on
//! /run/podman/podman.sock. The test image `rampart-test:latest` is built in
//! Docker and loaded into podman (testkit).

use anyhow::{bail, ensure, Context, Result};
use futures_util::StreamExt;
use model::Runtime;
use runtime::podman::{LABEL_PODMAN_POD_ID, LABEL_PODMAN_POD_NAME};
use runtime::{
    find_cgroup2_mount, parse_cgroup_path, CgroupTree, CgroupTreeConfig, ContainerRegistry, Error,
    PodmanClient, RegistryConfig, Resolution, RuntimeClient, RuntimeEvent, DEFAULT_PODMAN_SOCKET,
};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use testkit::{unique, IMAGE as DOCKER_IMAGE, PODMAN_IMAGE as IMAGE};

fn podman(args: &[&str]) -> Result<String> {
    testkit::podman(args).map_err(anyhow::Error::msg)
}

/// Removes the container (or pod) even when the test panics.
struct Guard(&'static str, String);

impl Drop for Guard {
    fn drop(&mut self) {
        let args: Vec<&str> = match self.0 {
            "pod" => vec!["pod", "rm", "-f", &self.1],
            _ => vec!["rm", "-f", "-t", "0", &self.1],
        };
        let _ = podman(&args);
    }
}

/// Root, the service answering and the test image loaded into podman (panics
/// otherwise); a client of the service.
async fn preflight() -> Result<PodmanClient> {
    testkit::require_podman();
    testkit::load_into_podman();
    let client = PodmanClient::with_socket(DEFAULT_PODMAN_SOCKET);
    if let Err(e) = client.running_ids().await {
        bail!("podman's API service is unreachable ({e}); start it with scripts/podman.sh start");
    }
    Ok(client)
}

async fn next_for(
    stream: &mut (impl futures_util::Stream<Item = Result<RuntimeEvent, Error>> + Unpin),
    id: &str,
    want: fn(&RuntimeEvent) -> bool,
    what: &str,
) -> Result<RuntimeEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let item = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| format!("no {what} event for {id} within 20 s"))?
            .with_context(|| format!("event stream ended before {what}"))??;
        if item.id() == id && want(&item) {
            return Ok(item);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and podman (scripts/test.sh runs it)"]
async fn podman_container_list_inspect_events_and_cgroup() -> Result<()> {
    let client = preflight().await?;
    let since = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64 - 1;
    let mut events = client.event_stream(since).await?;

    let name = unique("rt-podman");
    let _guard = Guard("container", name.clone());
    let id = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "rampart.test=podman-live",
        "--cap-add",
        "SYS_PTRACE",
        "--user",
        "65534:65534",
        "-v",
        "/etc/hostname:/host-hostname:ro",
        DOCKER_IMAGE,
        "sleep",
        "120",
    ])?;
    ensure!(id.len() == 64, "podman run printed {id:?}, not an id");
    let pid: u32 = podman(&["inspect", "-f", "{{.State.Pid}}", &id])?.parse()?;
    let image_id = podman(&["inspect", "-f", "{{.Image}}", &id])?;

    next_for(&mut events, &id, |e| matches!(e, RuntimeEvent::Started { .. }), "start").await?;

    // inspect
    let d = client.inspect_container(&id).await?;
    let c = &d.container;
    assert_eq!(d.pid, Some(pid));
    assert_eq!(c.id, id);
    assert_eq!(c.runtime, Some(Runtime::Podman));
    assert_eq!(c.name, name);
    assert_eq!(c.image, IMAGE);
    assert_eq!(c.image_id, format!("sha256:{image_id}"));
    assert_eq!(c.labels.get("rampart.test").map(String::as_str), Some("podman-live"));
    assert_eq!(c.user, "65534:65534");
    assert!(c.cap_add.iter().any(|x| x == "SYS_PTRACE"), "{:?}", c.cap_add);
    assert!(!c.privileged && !c.host_pid && !c.host_network && !c.host_ipc);
    let m = c.mounts.iter().find(|m| m.destination == "/host-hostname").context("bind mount missing")?;
    assert_eq!(m.source, "/etc/hostname");
    assert!(m.read_only);
    assert!(c.upper_dir.as_deref().is_some_and(|u| std::path::Path::new(u).is_dir()), "{:?}", c.upper_dir);

    // the cgroup podman reports is the one the init process lives in, and
    // rampart's cgroup parser recognises it
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::")).context("no cgroup v2 line")?.to_string();
    assert_eq!(c.cgroup_path, v2, "podman's CgroupPath vs /proc/{pid}/cgroup");
    let parsed = parse_cgroup_path(&v2).with_context(|| format!("{v2} not recognised"))?;
    assert_eq!((parsed.runtime, parsed.id.as_str()), (Runtime::Podman, id.as_str()));
    eprintln!("podman container cgroup: {v2}");

    // list
    let list = client.list_containers().await?;
    let listed = list.iter().find(|d| d.container.id == id).context("running container not listed")?;
    assert_eq!(listed.container.name, name);
    assert_eq!(listed.pid, Some(pid));

    // the registry resolves the container's cgroup id through the podman client
    let root = find_cgroup2_mount()?;
    let cg = std::fs::metadata(root.join(v2.trim_start_matches('/')))?.ino();
    let tree = Arc::new(CgroupTree::new(root, CgroupTreeConfig::default()));
    let reg = ContainerRegistry::new(
        RegistryConfig::default(),
        Some(tree),
        vec![Arc::new(PodmanClient::with_socket(DEFAULT_PODMAN_SOCKET)) as Arc<dyn RuntimeClient>],
    );
    assert_eq!(reg.resolve_cached(cg), Resolution::Unknown);
    let r = reg.resolve(cg).await.context("registry did not resolve the podman container")?;
    assert_eq!((r.id.as_str(), r.name.as_str(), r.image.as_str()), (id.as_str(), name.as_str(), IMAGE));

    // rename -> changed, stop -> died, rm -> remove
    let renamed = format!("{name}-renamed");
    podman(&["rename", &id, &renamed])?;
    next_for(&mut events, &id, |e| matches!(e, RuntimeEvent::Changed { .. }), "rename").await?;
    assert_eq!(client.inspect_container(&id).await?.container.name, renamed);
    podman(&["stop", "-t", "0", &id])?;
    next_for(&mut events, &id, |e| matches!(e, RuntimeEvent::Died { .. }), "died").await?;
    let stopped = client.inspect_container(&id).await?;
    assert_eq!(stopped.pid, None, "a stopped container has no pid");
    assert!(!client.running_ids().await?.contains(&id), "stopped container still listed");
    podman(&["rm", &id])?;
    next_for(&mut events, &id, |e| matches!(e, RuntimeEvent::Destroyed { .. }), "remove").await?;
    match client.inspect_container(&id).await {
        Err(Error::NotFound { id: gone, .. }) => assert_eq!(gone, id),
        other => bail!("inspect of a removed container: {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and podman (scripts/test.sh runs it)"]
async fn podman_pod_name_is_a_label() -> Result<()> {
    let client = preflight().await?;
    let pod = unique("rt-podman-pod");
    let _pod_guard = Guard("pod", pod.clone());
    // No infra container: it would need a pause image.
    let pod_id = podman(&["pod", "create", "--infra=false", "--name", &pod, "--label", "tier=web"])?;
    let name = unique("rt-podman-inpod");
    let _guard = Guard("container", name.clone());
    let id = podman(&["run", "-d", "--pod", &pod, "--name", &name, DOCKER_IMAGE, "sleep", "120"])?;

    let c = client.inspect_container(&id).await?.container;
    assert_eq!(c.name, name);
    assert_eq!(c.labels.get(LABEL_PODMAN_POD_ID), Some(&pod_id));
    assert_eq!(c.labels.get(LABEL_PODMAN_POD_NAME), Some(&pod));
    assert_eq!(c.pod_name, None, "a podman pod is not a Kubernetes pod");
    let p = client.inspect_pod(&pod_id).await?;
    assert_eq!(p.labels.get("tier").map(String::as_str), Some("web"));
    Ok(())
}

#[tokio::test]
#[ignore = "privileged: needs root, dockerd and podman (scripts/test.sh runs it)"]
async fn unknown_container_is_not_found() -> Result<()> {
    let client = preflight().await?;
    let id = "0".repeat(64);
    match client.inspect_container(&id).await {
        Err(Error::NotFound { id: got, .. }) => assert_eq!(got, id),
        other => bail!("inspect of an unknown id: {other:?}"),
    }
    Ok(())
}

fn open_fds() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// The registry drops and reopens event streams on every reconnect: a dropped
/// stream must close its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and podman (scripts/test.sh runs it)"]
async fn dropped_event_streams_close_their_connections() -> Result<()> {
    let client = preflight().await?;
    // Warm up (runtime threads, lazily opened files).
    drop(client.event_stream(0).await?);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = open_fds()?;
    for _ in 0..50 {
        let s = client.event_stream(0).await?;
        drop(s);
        let _ = client.running_ids().await?;
    }
    // Closing is asynchronous (the connection task notices the dropped body).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = open_fds()?;
        // Slack for the other tests of this binary, which run in parallel.
        if now <= before + 10 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} descriptors open after 50 dropped event streams, {before} before", now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// podman 4.3 reports `IpcMode: "shareable"` for `--ipc host`; the client
/// still tells host namespaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and podman (scripts/test.sh runs it)"]
async fn host_namespaces() -> Result<()> {
    let client = preflight().await?;
    let name = unique("rt-podman-hostns");
    let _guard = Guard("container", name.clone());
    let id = podman(&[
        "run",
        "-d",
        "--name",
        &name,
        "--ipc",
        "host",
        "--pid",
        "host",
        "--network",
        "host",
        DOCKER_IMAGE,
        "sleep",
        "120",
    ])?;
    let c = client.inspect_container(&id).await?.container;
    assert!(c.host_ipc && c.host_pid && c.host_network, "{c:?}");
    let private = unique("rt-podman-privns");
    let _guard2 = Guard("container", private.clone());
    let id = podman(&["run", "-d", "--name", &private, "--ipc", "private", DOCKER_IMAGE, "sleep", "120"])?;
    let c = client.inspect_container(&id).await?.container;
    assert!(!c.host_ipc && !c.host_pid && !c.host_network, "{c:?}");
    Ok(())
}

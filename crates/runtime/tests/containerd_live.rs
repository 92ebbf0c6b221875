//! Against the real containerd (scripts/containerd.sh start): a `ctr run`
//! container in a fresh, non-default namespace is listed, inspected, followed
//! through its events and resolved from its cgroup by the registry.
//!
//! Privileged (root, dockerd for the test image, containerd): ignored by a
//! plain `cargo test`, run by `scripts/test.sh` (`--include-ignored`); then it
//! FAILS (never skips) when not root or when containerd does not answer on its
//! usual socket. The test image is `rampart-test:latest`, saved from Docker.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use model::Runtime;
use runtime::{
    find_cgroup2_mount, CgroupTree, CgroupTreeConfig, ContainerRegistry, ContainerdClient, ContainerdConfig,
    Error, RegistryConfig, Resolution, RuntimeClient, RuntimeEvent, DEFAULT_CONTAINERD_SOCKET,
};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use testkit::CTR_IMAGE as IMAGE;

fn ctr(ns: &str, args: &[&str]) -> Result<String> {
    testkit::ctr(ns, args).map_err(anyhow::Error::msg)
}

/// A namespace of its own with the test image, removed with everything in it
/// at the end.
struct Namespace(String);

impl Namespace {
    fn new(prefix: &str) -> Self {
        let ns = Namespace(testkit::unique(prefix));
        testkit::import_into_containerd(&ns.0);
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        testkit::remove_containerd_namespace(&self.0);
    }
}

fn task_pid(ns: &str, id: &str) -> Result<u32> {
    let out = ctr(ns, &["tasks", "ls"])?;
    out.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| f.get(1).and_then(|p| p.parse().ok())).flatten()
        })
        .with_context(|| format!("no task {id} in `ctr -n {ns} tasks ls`:\n{out}"))
}

/// The next event about `id` matching `want`, within `timeout`.
async fn next_event<S>(
    stream: &mut S,
    id: &str,
    want: fn(&RuntimeEvent) -> bool,
    timeout: Duration,
) -> Result<RuntimeEvent>
where
    S: futures_util::Stream<Item = Result<RuntimeEvent, Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => bail!("no matching event for {id} within {timeout:?}"),
            Ok(None) => bail!("event stream ended"),
            Ok(Some(Err(e))) => bail!("event stream failed: {e}"),
            Ok(Some(Ok(ev))) if ev.id() == id && want(&ev) => return Ok(ev),
            Ok(Some(Ok(_))) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "privileged: needs root, dockerd and containerd (scripts/test.sh runs it)"]
async fn follows_a_ctr_container_in_its_own_namespace() -> Result<()> {
    testkit::require_containerd();
    testkit::test_image();
    let client = ContainerdClient::with_socket(DEFAULT_CONTAINERD_SOCKET);
    if let Err(e) = client.namespaces().await {
        bail!("containerd does not answer on {DEFAULT_CONTAINERD_SOCKET} ({e}); start it with scripts/containerd.sh start");
    }
    let ns = Namespace::new("rampart-lt");
    let ns = ns.0.as_str();

    let mut events = client.event_stream().await?;
    // A named (non-hex) id: containerd's own naming, found by the cgroup path
    // `/<namespace>/<id>` only once the namespace is known.
    let id = format!("rt-ctrd-{}", std::process::id());
    let nice = format!("nice-{id}");
    ctr(
        ns,
        &[
            "run",
            "-d",
            "--label",
            "rampart.test=live",
            "--label",
            &format!("nerdctl/name={nice}"),
            IMAGE,
            &id,
            "sleep",
            "300",
        ],
    )?;
    next_event(&mut events, &id, |e| matches!(e, RuntimeEvent::Started { .. }), Duration::from_secs(10))
        .await?;
    let pid = task_pid(ns, &id)?;

    // inspect
    let d = client.inspect(&id).await?;
    let c = &d.container;
    assert_eq!(d.pid, Some(pid));
    assert_eq!(c.id, id);
    assert_eq!(c.runtime, Some(Runtime::Containerd));
    assert_eq!(c.name, nice);
    assert_eq!(c.image, IMAGE);
    assert!(c.image_id.starts_with("sha256:"), "image digest: {:?}", c.image_id);
    assert_eq!(c.labels.get("rampart.test").map(String::as_str), Some("live"));
    assert_eq!(c.runtime_namespace.as_deref(), Some(ns));
    assert_eq!(c.user, "0:0");
    assert!(!c.privileged && !c.host_pid && !c.host_network && !c.host_ipc);
    let upper = c.upper_dir.as_deref().context("no upper dir from the overlayfs snapshot")?;
    assert!(std::path::Path::new(upper).is_dir(), "upper dir {upper} is not a directory");

    // list
    let listed = client.list().await?;
    let l = listed.iter().find(|d| d.container.id == id).context("ctr container missing from list")?;
    assert_eq!(l.pid, Some(pid));
    assert_eq!(l.container, d.container);

    // A client told to leave this namespace to others does not know it.
    let skipping = ContainerdClient::new(ContainerdConfig {
        skip_namespaces: vec![ns.to_string()],
        ..Default::default()
    });
    assert!(matches!(skipping.inspect(&id).await, Err(Error::NotFound { .. })));
    assert!(!skipping.list().await?.iter().any(|d| d.container.id == id));
    assert!(!skipping.namespaces().await?.iter().any(|n| n == ns));

    // The registry maps the container's cgroup (`/<ns>/<id>`) to it.
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).context("no cgroup v2 line")?.to_string();
    assert_eq!(path, format!("/{ns}/{id}"), "ctr's cgroup v2 path");
    let root = find_cgroup2_mount()?;
    let cg = std::fs::metadata(root.join(path.trim_start_matches('/')))?.ino();
    let tree = Arc::new(CgroupTree::new(root, CgroupTreeConfig::default()));
    let reg = ContainerRegistry::new(
        RegistryConfig::default(),
        Some(tree),
        vec![Arc::new(ContainerdClient::with_socket(DEFAULT_CONTAINERD_SOCKET)) as Arc<dyn RuntimeClient>],
    );
    reg.refresh().await?;
    match reg.resolve_cached(cg) {
        Resolution::Container(rc) => {
            assert_eq!(rc.id, id);
            assert_eq!(rc.name, nice);
            assert_eq!(rc.cgroup_path, path);
        }
        other => bail!("cgroup {path} (id {cg}) not attributed after a list: {other:?}"),
    }
    let rc = reg.resolve_for_pid(cg, pid).await.context("resolve_for_pid")?;
    assert_eq!(rc.name, nice);

    // Died, then Destroyed.
    ctr(ns, &["tasks", "kill", "-s", "SIGKILL", &id])?;
    next_event(&mut events, &id, |e| matches!(e, RuntimeEvent::Died { .. }), Duration::from_secs(10)).await?;
    // A stopped container is still known to inspect, without a pid.
    let stopped = client.inspect(&id).await?;
    assert_eq!(stopped.pid, None);
    assert_eq!(stopped.container.name, nice);
    ctr(ns, &["tasks", "rm", &id])?;
    ctr(ns, &["containers", "rm", &id])?;
    next_event(&mut events, &id, |e| matches!(e, RuntimeEvent::Destroyed { .. }), Duration::from_secs(10))
        .await?;
    assert!(matches!(client.inspect(&id).await, Err(Error::NotFound { .. })));
    Ok(())
}

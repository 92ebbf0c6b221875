//! Against the real containerd (scripts/containerd.sh start): a `ctr run`
//! container in a fresh, non-default namespace is listed, inspected, followed
//! through its events and resolved from its cgroup by the registry.
//!
//! FAILS (does not skip) when not root, when containerd does not answer on its
//! usual socket, or when the test image is missing (tests/image/build.sh).

use anyhow::{bail, ensure, Context, Result};
use futures_util::StreamExt;
use model::Runtime;
use runtime::{
    find_cgroup2_mount, CgroupTree, CgroupTreeConfig, ContainerRegistry, ContainerdClient, ContainerdConfig,
    Error, RegistryConfig, Resolution, RuntimeClient, RuntimeEvent, DEFAULT_CONTAINERD_SOCKET,
};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DOCKER_IMAGE: &str = "rampart-test:latest";
/// The name `ctr images import` gives the image saved from Docker.
const IMAGE: &str = "docker.io/library/rampart-test:latest";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn ctr(ns: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("ctr")
        .args(["--address", DEFAULT_CONTAINERD_SOCKET, "-n", ns])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ctr (apt-get install containerd)")?;
    if !out.status.success() {
        bail!("ctr -n {ns} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker save rampart-test:latest | ctr -n NS images import -`.
fn import_image(ns: &str) -> Result<()> {
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; DOCKER_API_VERSION=1.41 docker save {DOCKER_IMAGE} | \
             ctr --address {DEFAULT_CONTAINERD_SOCKET} -n {ns} images import - >/dev/null"
        ))
        .status()
        .context("running docker save | ctr images import")?;
    ensure!(
        status.success(),
        "importing {DOCKER_IMAGE} into containerd namespace {ns} failed (is it built? tests/image/build.sh)"
    );
    Ok(())
}

/// A namespace of its own, removed with everything in it at the end.
struct Namespace(String);

impl Namespace {
    fn new(prefix: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        Namespace(format!("{prefix}-{}-{nanos:x}", std::process::id()))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let ns = &self.0;
        if let Ok(ids) = ctr(ns, &["containers", "ls", "-q"]) {
            for id in ids.lines() {
                let _ = ctr(ns, &["tasks", "kill", "-s", "SIGKILL", id]);
                let _ = ctr(ns, &["tasks", "rm", "-f", id]);
                let _ = ctr(ns, &["containers", "rm", id]);
            }
        }
        if let Ok(images) = ctr(ns, &["images", "ls", "-q"]) {
            for i in images.lines() {
                let _ = ctr(ns, &["images", "rm", "--sync", i]);
            }
        }
        // Content is collected asynchronously: the namespace empties shortly after.
        // runc leaves the namespace's parent cgroup (`/<ns>`) behind in every
        // hierarchy; rmdir removes it once empty.
        if let Ok(mounts) = std::fs::read_dir("/sys/fs/cgroup") {
            for m in mounts.flatten() {
                let _ = std::fs::remove_dir(m.path().join(ns));
            }
        }
        let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup").join(ns));
        for _ in 0..20 {
            if ctr("default", &["namespaces", "rm", ns]).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("warning: containerd namespace {ns} was not removed");
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
async fn follows_a_ctr_container_in_its_own_namespace() -> Result<()> {
    ensure!(is_root(), "the containerd live test needs root (ctr and containerd's socket)");
    let client = ContainerdClient::with_socket(DEFAULT_CONTAINERD_SOCKET);
    if let Err(e) = client.namespaces().await {
        bail!("containerd does not answer on {DEFAULT_CONTAINERD_SOCKET} ({e}); start it with scripts/containerd.sh start");
    }
    let ns = Namespace::new("rampart-lt");
    let ns = ns.0.as_str();
    import_image(ns)?;

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

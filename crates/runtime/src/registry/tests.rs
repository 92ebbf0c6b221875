use super::*;
use crate::cgroupfs::CgroupTreeConfig;
use futures_util::stream::{self, BoxStream};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::AtomicBool;
use tokio::sync::broadcast;

const ID: &str = "3f1c2b7e9a0d4c8b6e5f7a9c1d3e5f7091b2c4d6e8fa0b1c2d3e4f5a6b7c8d9e";
const ID2: &str = "aa11bb22cc33dd44ee55ff6600112233445566778899aabbccddeeff00112233";

/// An in-memory runtime: containers by id, reachable or not, optionally hanging.
struct FakeRuntime {
    containers: Mutex<HashMap<String, Container>>,
    reachable: AtomicBool,
    hang: AtomicBool,
    inspects: AtomicU64,
    events: broadcast::Sender<RuntimeEvent>,
}

impl FakeRuntime {
    fn new() -> Arc<Self> {
        Arc::new(FakeRuntime {
            containers: Mutex::new(HashMap::new()),
            reachable: AtomicBool::new(true),
            hang: AtomicBool::new(false),
            inspects: AtomicU64::new(0),
            events: broadcast::channel(64).0,
        })
    }

    fn add(&self, id: &str, name: &str) {
        let c = Container {
            id: id.into(),
            runtime: Some(Runtime::Docker),
            name: name.into(),
            image: "busybox:latest".into(),
            ..Default::default()
        };
        lock(&self.containers).insert(id.into(), c);
    }

    fn check(&self) -> Result<(), Error> {
        if self.reachable.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::Connect { runtime: "fake", endpoint: "/fake.sock".into(), source: "refused".into() })
        }
    }
}

impl RuntimeClient for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn runtime(&self) -> Runtime {
        Runtime::Docker
    }
    fn endpoint(&self) -> String {
        "/fake.sock".into()
    }
    fn handles(&self, runtime: Runtime) -> bool {
        matches!(runtime, Runtime::Docker | Runtime::Kubernetes | Runtime::Containerd)
    }
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        Box::pin(async move {
            self.inspects.fetch_add(1, Ordering::SeqCst);
            if self.hang.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.check()?;
            let c = lock(&self.containers).get(id).cloned();
            c.map(|container| Discovered { container, pid: None })
                .ok_or_else(|| Error::NotFound { runtime: "fake", id: id.into() })
        })
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Discovered>, Error>> {
        Box::pin(async move {
            self.check()?;
            Ok(lock(&self.containers)
                .values()
                .map(|c| Discovered { container: c.clone(), pid: None })
                .collect())
        })
    }
    fn events(
        &self,
        _since: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error>> {
        Box::pin(async move {
            self.check()?;
            let rx = self.events.subscribe();
            let s = stream::unfold(rx, |mut rx| async move {
                match rx.recv().await {
                    Ok(ev) => Some((Ok(ev), rx)),
                    Err(_) => Some((Err(Error::StreamEnded { runtime: "fake" }), rx)),
                }
            });
            Ok(s.boxed())
        })
    }
}

/// A fake cgroup2 hierarchy in a temp dir; cgroup ids are the dirs' inodes.
struct FakeTree {
    root: PathBuf,
}

impl FakeTree {
    fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rampart-reg-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("system.slice/ssh.service")).unwrap();
        FakeTree { root }
    }
    fn mkdir(&self, rel: &str) -> u64 {
        let p = self.root.join(rel.trim_start_matches('/'));
        fs::create_dir_all(&p).unwrap();
        fs::metadata(&p).unwrap().ino()
    }
    fn tree(&self) -> Arc<CgroupTree> {
        let cfg = CgroupTreeConfig {
            min_walk_interval: Duration::ZERO,
            miss_ttl: Duration::ZERO,
            ..Default::default()
        };
        Arc::new(CgroupTree::new(&self.root, cfg))
    }
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn fast_config() -> RegistryConfig {
    RegistryConfig {
        inspect_timeout: Duration::from_millis(300),
        metadata_retry: Duration::from_millis(50),
        removal_grace: Duration::from_millis(100),
        sweep_interval: Duration::from_millis(50),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..Default::default()
    }
}

fn registry(tree: &FakeTree, rt: &Arc<FakeRuntime>) -> ContainerRegistry {
    ContainerRegistry::new(fast_config(), Some(tree.tree()), vec![rt.clone() as Arc<dyn RuntimeClient>])
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn resolves_unknown_cgroup_and_caches() {
    let t = FakeTree::new("resolve");
    let cg = t.mkdir(&format!("/docker/{ID}"));
    let rt = FakeRuntime::new();
    rt.add(ID, "web");
    let reg = registry(&t, &rt);
    assert_eq!(reg.resolve_cached(cg), Resolution::Unknown);
    let c = reg.resolve(cg).await.unwrap();
    assert_eq!(c.id, ID);
    assert_eq!(c.name, "web");
    assert_eq!(c.runtime, Some(Runtime::Docker));
    assert_eq!(c.cgroup_path, format!("/docker/{ID}"));
    match reg.resolve_cached(cg) {
        Resolution::Container(c) => assert_eq!(c.name, "web"),
        other => panic!("{other:?}"),
    }
    // a sub-cgroup of the container maps to the same container
    let sub = t.mkdir(&format!("/docker/{ID}/init.scope"));
    let c2 = reg.resolve(sub).await.unwrap();
    assert_eq!(c2.name, "web");
    assert_eq!(c2.cgroup_path, format!("/docker/{ID}"), "keeps the container's own cgroup");
    assert_eq!(rt.inspects.load(Ordering::SeqCst), 1);
    assert_eq!(reg.find("web").unwrap().id, ID);
    assert_eq!(reg.find(&ID[..6]).unwrap().name, "web");
    let st = reg.status();
    assert_eq!((st.containers, st.containers_with_metadata), (1, 1));
}

#[tokio::test]
async fn host_cgroups_are_host() {
    let t = FakeTree::new("host");
    let cg = t.mkdir("/system.slice/ssh.service");
    let root = fs::metadata(&t.root).unwrap().ino();
    let rt = FakeRuntime::new();
    let reg = registry(&t, &rt);
    assert_eq!(reg.resolve(cg).await, None);
    assert_eq!(reg.resolve_cached(cg), Resolution::Host);
    assert_eq!(reg.resolve(root).await, None);
    assert_eq!(reg.resolve_cached(root), Resolution::Host);
    // an id that exists nowhere stays unknown (it may be a cgroup created later)
    assert_eq!(reg.resolve(u64::MAX - 3).await, None);
    assert_eq!(reg.resolve_cached(u64::MAX - 3), Resolution::Unknown);
    assert_eq!(rt.inspects.load(Ordering::SeqCst), 0);
    assert_eq!(reg.status().host_cgroups, 2);
}

#[tokio::test]
async fn unreachable_runtime_gives_id_only_then_names_on_reconnect() {
    let t = FakeTree::new("unreach");
    let cg = t.mkdir(&format!("/system.slice/docker-{ID}.scope"));
    let rt = FakeRuntime::new();
    rt.add(ID, "db");
    rt.reachable.store(false, Ordering::SeqCst);
    let reg = registry(&t, &rt);
    let tasks = reg.spawn();
    eventually("watcher to notice the runtime is down", || {
        reg.status().runtimes[0].last_error.is_some() && !reg.status().runtimes[0].connected
    })
    .await;
    let started = Instant::now();
    let c = reg.resolve(cg).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(250), "must not wait for a down runtime");
    assert_eq!(c.id, ID);
    assert_eq!(c.runtime, Some(Runtime::Docker));
    assert!(!c.has_metadata());
    assert!(reg.status().resolved_without_metadata >= 1);
    // the runtime comes back: the watcher relists and the name appears
    rt.reachable.store(true, Ordering::SeqCst);
    eventually("name after reconnect", || match reg.resolve_cached(cg) {
        Resolution::Container(c) => c.name == "db",
        _ => false,
    })
    .await;
    let st = reg.status();
    assert!(st.runtimes[0].connected);
    assert_eq!(st.runtimes[0].connects, 1);
    assert_eq!(st.runtimes[0].containers, 1);
    tasks.abort();
}

#[tokio::test]
async fn hanging_runtime_is_bounded_by_the_inspect_timeout() {
    let t = FakeTree::new("hang");
    let cg = t.mkdir(&format!("/docker/{ID}"));
    let rt = FakeRuntime::new();
    rt.add(ID, "slow");
    rt.hang.store(true, Ordering::SeqCst);
    let reg = registry(&t, &rt);
    let started = Instant::now();
    let c = reg.resolve(cg).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(2000), "{took:?}");
    assert_eq!(c.id, ID);
    assert!(!c.has_metadata());
    // the next event is answered from memory at once, not after another timeout
    let started = Instant::now();
    let _ = reg.resolve(cg).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn concurrent_resolves_inspect_once() {
    let t = FakeTree::new("dedupe");
    let cg = t.mkdir(&format!("/docker/{ID}"));
    let rt = FakeRuntime::new();
    rt.add(ID, "api");
    let reg = registry(&t, &rt);
    let mut handles = Vec::new();
    for _ in 0..20 {
        let r = reg.clone();
        handles.push(tokio::spawn(async move { r.resolve(cg).await }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap().name, "api");
    }
    assert_eq!(rt.inspects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn events_fill_and_remove() {
    let t = FakeTree::new("events");
    let cg = t.mkdir(&format!("/docker/{ID2}"));
    let rt = FakeRuntime::new();
    let reg = registry(&t, &rt);
    let tasks = reg.spawn();
    eventually("connected", || reg.status().runtimes[0].connected).await;
    rt.add(ID2, "worker");
    rt.events.send(RuntimeEvent::Started { id: ID2.into() }).unwrap();
    eventually("started container known", || reg.find("worker").is_some()).await;
    // a container learnt from the runtime gets its cgroup when the first event
    // resolves it, and keeps its name
    let c = reg.resolve(cg).await.unwrap();
    assert_eq!(c.name, "worker");
    assert_eq!(c.cgroup_path, format!("/docker/{ID2}"));
    rt.events.send(RuntimeEvent::Died { id: ID2.into() }).unwrap();
    rt.events.send(RuntimeEvent::Destroyed { id: ID2.into() }).unwrap();
    // still there during the grace period, gone after it
    eventually("removed from find", || reg.find("worker").is_none()).await;
    eventually("forgotten after grace", || reg.resolve_cached(cg) == Resolution::Unknown).await;
    tasks.abort();
}

#[tokio::test]
async fn subscribers_get_lifecycle_events_after_the_registry_learnt() {
    let t = FakeTree::new("subscribe");
    let rt = FakeRuntime::new();
    let reg = registry(&t, &rt);
    let mut rx = reg.subscribe();
    let tasks = reg.spawn();
    eventually("connected", || reg.status().runtimes[0].connected).await;
    rt.add(ID2, "worker");
    rt.events.send(RuntimeEvent::Started { id: ID2.into() }).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(ev, RuntimeEvent::Started { id: ID2.into() });
    // the registry knew the container, with its name, before telling
    assert_eq!(reg.get(ID2).unwrap().name, "worker");
    rt.events.send(RuntimeEvent::Died { id: ID2.into() }).unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    assert_eq!(ev, RuntimeEvent::Died { id: ID2.into() });
    tasks.abort();
}

#[tokio::test]
async fn vanished_cgroup_is_forgotten_without_destroy_event() {
    let t = FakeTree::new("vanish");
    let cg = t.mkdir(&format!("/docker/{ID}"));
    let rt = FakeRuntime::new();
    let reg = registry(&t, &rt);
    let c = reg.resolve(cg).await.unwrap();
    assert!(!c.has_metadata(), "runtime does not know it");
    fs::remove_dir(t.root.join(format!("docker/{ID}"))).unwrap();
    reg.sweep().await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    reg.sweep().await;
    assert_eq!(reg.resolve_cached(cg), Resolution::Unknown);
    assert!(reg.containers().is_empty());
}

#[tokio::test]
async fn kubernetes_pod_cgroup_keeps_pod_uid() {
    let t = FakeTree::new("kube");
    let uid = "6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c";
    let cg = t.mkdir(&format!("/kubepods/besteffort/pod{uid}/{ID}"));
    let rt = FakeRuntime::new();
    rt.add(ID, "k8s_app_p1_ns1");
    let reg = registry(&t, &rt);
    let c = reg.resolve(cg).await.unwrap();
    // Docker's answer wins over the bare Kubernetes guess; the uid from the path stays
    assert_eq!(c.runtime, Some(Runtime::Docker));
    assert_eq!(c.name, "k8s_app_p1_ns1");
    assert_eq!(c.pod_uid.as_deref(), Some(uid));
}

#[tokio::test]
async fn find_handles_ambiguity_and_names() {
    let rt = FakeRuntime::new();
    let reg = ContainerRegistry::new(fast_config(), None, vec![rt.clone() as Arc<dyn RuntimeClient>]);
    let mk = |id: &str, name: &str| Discovered {
        container: Container { id: id.into(), name: name.into(), ..Default::default() },
        pid: None,
    };
    reg.upsert(mk("abc111", "one"));
    reg.upsert(mk("abc222", "two"));
    assert_eq!(reg.find("abc1").unwrap().name, "one");
    assert_eq!(reg.find("/two").unwrap().id, "abc222");
    assert_eq!(reg.find("abc"), None, "ambiguous prefix");
    assert_eq!(reg.find("abc222").unwrap().name, "two");
    assert_eq!(reg.find(""), None);
    assert_eq!(reg.containers().len(), 2);
    // without a cgroup tree nothing resolves from ids
    assert_eq!(reg.resolve(1).await, None);
}

#[tokio::test]
async fn not_found_everywhere_retries_slowly() {
    let t = FakeTree::new("notfound");
    let cg = t.mkdir(&format!("/k8s.io/{ID}"));
    let rt = FakeRuntime::new();
    let reg = registry(&t, &rt);
    let c = reg.resolve(cg).await.unwrap();
    assert_eq!(c.runtime, Some(Runtime::Containerd));
    assert_eq!(rt.inspects.load(Ordering::SeqCst), 1, "docker is asked about containerd ids too");
    // metadata_retry is 50 ms here, not_found_retry the default 60 s
    tokio::time::sleep(Duration::from_millis(80)).await;
    reg.resolve(cg).await.unwrap();
    reg.sweep().await;
    assert_eq!(rt.inspects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn host_cgroup_flood_is_bounded() {
    let t = FakeTree::new("flood");
    let rt = FakeRuntime::new();
    let cfg = RegistryConfig { max_host_cgroups: 16, ..fast_config() };
    let reg = ContainerRegistry::new(cfg, Some(t.tree()), vec![rt as Arc<dyn RuntimeClient>]);
    let cg = t.mkdir(&format!("/docker/{ID}"));
    reg.resolve(cg).await;
    for i in 0..100 {
        let id = t.mkdir(&format!("/system.slice/s{i}.service"));
        reg.resolve(id).await;
    }
    let st = reg.status();
    assert!(st.host_cgroups <= 16, "{}", st.host_cgroups);
    assert!(matches!(reg.resolve_cached(cg), Resolution::Container(_)), "containers survive the host purge");
}

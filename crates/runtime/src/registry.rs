//! The container metadata cache the rest of rampart uses without knowing the
//! runtime.
//!
//! * [`ContainerRegistry::resolve_cached`] answers from memory, for every event.
//! * [`ContainerRegistry::resolve`] learns an unknown cgroup id: id -> path
//!   (cgroup2 tree) -> container id (path naming) -> metadata (runtime inspect,
//!   bounded by a short timeout; an event never waits long for a name).
//! * [`ContainerRegistry::spawn`] follows each runtime's lifecycle events so most
//!   containers are known, with names, before their first event, and keeps
//!   retrying (with backoff) while a runtime is unreachable.

use crate::cgroup::{parse_cgroup_path_with, CgroupContainer};
use crate::cgroupfs::{cgroup_path_of_pid, CgroupTree, CgroupTreeStats};
use crate::client::{Discovered, RuntimeClient, RuntimeEvent};
use crate::endpoints::RuntimeEndpoints;
use crate::Error;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::StreamExt;
use model::{Container, Runtime};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// What is known about a cgroup id, from memory only.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A host cgroup: not a container's.
    Host,
    /// A container's cgroup; metadata may still be missing (id and runtime are
    /// always there, see [`Container::has_metadata`]).
    Container(Arc<Container>),
    /// Not seen yet: call [`ContainerRegistry::resolve`].
    Unknown,
}

/// Tunables of [`ContainerRegistry`].
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// How long `resolve` waits for a runtime's answer before returning the
    /// container with id and runtime only.
    pub inspect_timeout: Duration,
    /// A container without metadata is asked about again at most this often.
    pub metadata_retry: Duration,
    /// ... and this often when every runtime said it does not know it.
    pub not_found_retry: Duration,
    /// A destroyed container stays known this long (late events still get names).
    pub removal_grace: Duration,
    /// Period of the sweep (removals, vanished cgroups, metadata retries).
    pub sweep_interval: Duration,
    /// Reconnect backoff bounds.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Bound on remembered host cgroups (forgotten all at once when reached).
    pub max_host_cgroups: usize,
    /// Bound on cgroups remembered per container (sub-cgroups).
    pub max_cgroups_per_container: usize,
    /// At most this many metadata retries per sweep.
    pub max_retries_per_sweep: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            inspect_timeout: Duration::from_millis(500),
            metadata_retry: Duration::from_secs(5),
            not_found_retry: Duration::from_secs(60),
            removal_grace: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(5),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            max_host_cgroups: 65_536,
            max_cgroups_per_container: 1024,
            max_retries_per_sweep: 32,
        }
    }
}

/// Health of one runtime client, for `rampart status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub name: &'static str,
    pub endpoint: String,
    /// The event stream is live (the last list succeeded and the stream has not
    /// failed since).
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Successful (re)connections.
    pub connects: u64,
    /// Containers learnt from this runtime that are currently known.
    pub containers: usize,
}

/// Health of the registry, for `rampart status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RegistryStatus {
    pub runtimes: Vec<RuntimeStatus>,
    /// Containers known (with or without metadata).
    pub containers: usize,
    /// Of those, how many have runtime metadata (a name).
    pub containers_with_metadata: usize,
    pub host_cgroups: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_root: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_tree: Option<CgroupTreeStats>,
    pub inspects: u64,
    pub inspect_failures: u64,
    /// `resolve` calls that returned without metadata because the runtime did not
    /// answer in time or was unreachable.
    pub resolved_without_metadata: u64,
}

#[derive(Clone)]
enum Slot {
    Host,
    Container(Arc<Container>),
}

struct Record {
    container: Arc<Container>,
    cgroup_ids: Vec<u64>,
    /// Index of the client that supplied the metadata.
    source: Option<usize>,
    /// When metadata may be asked for again (None: now).
    next_attempt: Option<Instant>,
    removed_at: Option<Instant>,
}

#[derive(Default)]
struct Cache {
    by_cgroup: HashMap<u64, Slot>,
    by_id: HashMap<String, Record>,
    host_cgroups: usize,
}

#[derive(Default)]
struct ClientState {
    connected: bool,
    last_error: Option<String>,
    connects: u64,
    /// The watcher has tried at least once (before that, `connected == false`
    /// means "don't know" rather than "down").
    tried: bool,
}

type InflightFuture = Shared<BoxFuture<'static, Option<Arc<Container>>>>;

/// A metadata fetch in progress, and when callers stop waiting for it.
struct Inflight {
    deadline: Instant,
    future: InflightFuture,
}

struct Inner {
    config: RegistryConfig,
    tree: Option<Arc<CgroupTree>>,
    clients: Vec<Arc<dyn RuntimeClient>>,
    client_states: Vec<Mutex<ClientState>>,
    cache: RwLock<Cache>,
    inflight: Mutex<HashMap<String, Inflight>>,
    inspects: AtomicU64,
    inspect_failures: AtomicU64,
    without_metadata: AtomicU64,
    /// Lifecycle events, after the registry handled them (see `subscribe`).
    lifecycle: tokio::sync::broadcast::Sender<RuntimeEvent>,
    /// containerd namespaces runtimes reported containers in: their named
    /// (non-hex) container ids are recognised in cgroup paths.
    containerd_namespaces: RwLock<HashSet<String>>,
    /// The cgroup tree watcher runs (started once, by `spawn`).
    watching_cgroups: std::sync::atomic::AtomicBool,
}

/// Lifecycle events buffered per subscriber; a slower one sees `Lagged`.
const LIFECYCLE_BUFFER: usize = 256;

/// The container metadata cache: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct ContainerRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContainerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerRegistry").field("status", &self.status()).finish()
    }
}

/// Handles of the background tasks started by [`ContainerRegistry::spawn`].
#[must_use = "dropping the handle leaves the tasks running; keep it to abort them"]
#[derive(Debug)]
pub struct RegistryTasks {
    handles: Vec<JoinHandle<()>>,
}

impl RegistryTasks {
    /// Stop the background tasks.
    pub fn abort(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The protected maps stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl ContainerRegistry {
    /// A registry over `tree` (None: no cgroup2 mount, nothing resolves from
    /// cgroup ids) and the given runtime clients.
    pub fn new(
        config: RegistryConfig,
        tree: Option<Arc<CgroupTree>>,
        clients: Vec<Arc<dyn RuntimeClient>>,
    ) -> Self {
        let client_states = clients.iter().map(|_| Mutex::new(ClientState::default())).collect();
        ContainerRegistry {
            inner: Arc::new(Inner {
                config,
                tree,
                clients,
                client_states,
                cache: RwLock::new(Cache::default()),
                inflight: Mutex::new(HashMap::new()),
                inspects: AtomicU64::new(0),
                inspect_failures: AtomicU64::new(0),
                without_metadata: AtomicU64::new(0),
                lifecycle: tokio::sync::broadcast::channel(LIFECYCLE_BUFFER).0,
                containerd_namespaces: RwLock::new(HashSet::new()),
                watching_cgroups: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// This machine's cgroup2 tree and a Docker client at `docker_socket`, default
    /// tunables. Without a cgroup2 mount the registry still answers `find`.
    pub fn with_docker(docker_socket: impl Into<PathBuf>) -> Self {
        Self::with_endpoints(&RuntimeEndpoints::docker_only(docker_socket))
    }

    /// This machine's cgroup2 tree and a client for every runtime endpoint that
    /// resolves ([`RuntimeEndpoints::resolve`]), default tunables.
    pub fn with_endpoints(endpoints: &RuntimeEndpoints) -> Self {
        let tree = match CgroupTree::discover() {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                warn!(error = %e, "no cgroup2 hierarchy: containers cannot be resolved from cgroup ids");
                None
            }
        };
        Self::new(RegistryConfig::default(), tree, endpoints.clients())
    }

    pub fn cgroup_tree(&self) -> Option<&Arc<CgroupTree>> {
        self.inner.tree.as_ref()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.inner.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.inner.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// What memory says about a cgroup id: one hash lookup under a read lock.
    pub fn resolve_cached(&self, cgroup_id: u64) -> Resolution {
        match self.read().by_cgroup.get(&cgroup_id) {
            Some(Slot::Host) => Resolution::Host,
            Some(Slot::Container(c)) => Resolution::Container(c.clone()),
            None => Resolution::Unknown,
        }
    }

    /// The container a cgroup id belongs to (`None` for host cgroups and ids whose
    /// cgroup cannot be found). Fetches metadata when missing, waiting at most
    /// `inspect_timeout`; without an answer the container comes back with id and
    /// runtime only and its names are filled in later.
    ///
    /// `None` also means "not found yet" (the cgroup is not in the tree and the
    /// walk was rate limited): the id then stays [`Resolution::Unknown`] and a
    /// later event asks again. Prefer [`ContainerRegistry::resolve_for_pid`] when
    /// the event's pid is known.
    pub async fn resolve(&self, cgroup_id: u64) -> Option<Arc<Container>> {
        self.resolve_inner(cgroup_id, 0).await
    }

    /// [`ContainerRegistry::resolve`] with the pid of the process the event came
    /// from: its `/proc/<pid>/cgroup` names the cgroup without walking the tree.
    pub async fn resolve_for_pid(&self, cgroup_id: u64, pid: u32) -> Option<Arc<Container>> {
        self.resolve_inner(cgroup_id, pid).await
    }

    async fn resolve_inner(&self, cgroup_id: u64, pid: u32) -> Option<Arc<Container>> {
        match self.resolve_cached(cgroup_id) {
            Resolution::Host => return None,
            Resolution::Container(c) if c.has_metadata() => return Some(c),
            Resolution::Container(c) => return Some(self.fill_metadata(c).await),
            Resolution::Unknown => {}
        }
        let tree = self.inner.tree.clone()?;
        let path = match tokio::task::spawn_blocking(move || tree.path_of_pid_hint(cgroup_id, pid)).await {
            Ok(Some(p)) => p,
            // Not found (yet): leave it unknown, a later event asks again.
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, cgroup_id, "cgroup lookup task failed");
                return None;
            }
        };
        match self.parse_path(&path) {
            None => {
                self.learn_host(cgroup_id);
                None
            }
            Some(parsed) => {
                let c = self.learn_cgroup(cgroup_id, &path, &parsed);
                if c.has_metadata() {
                    Some(c)
                } else {
                    Some(self.fill_metadata(c).await)
                }
            }
        }
    }

    /// A container by name or id prefix ([`Container::matches`]): an exact id or
    /// name first, then a unique id prefix.
    pub fn find(&self, query: &str) -> Option<Arc<Container>> {
        let cache = self.read();
        let live = || cache.by_id.values().filter(|r| r.removed_at.is_none());
        let q = query.trim_start_matches('/');
        if q.is_empty() {
            return None;
        }
        if let Some(r) = cache.by_id.get(q) {
            return Some(r.container.clone());
        }
        if let Some(r) = live().find(|r| r.container.name.trim_start_matches('/') == q) {
            return Some(r.container.clone());
        }
        let mut matches = live().filter(|r| r.container.matches(q));
        let first = matches.next()?;
        if matches.next().is_some() {
            return None; // ambiguous prefix
        }
        Some(first.container.clone())
    }

    /// The runtimes' lifecycle events (started, died, destroyed, changed), each
    /// delivered after the registry has learnt from it (a `Started` container
    /// is known, with its metadata, by then). For responders that act on
    /// container starts, e.g. re-applying a network policy to a restarted
    /// container's new cgroup.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RuntimeEvent> {
        self.inner.lifecycle.subscribe()
    }

    /// The registry's runtime clients as a [`Runtimes`] set (sharing their
    /// connections), for finding containers by name or id.
    pub fn runtimes(&self) -> crate::Runtimes {
        crate::Runtimes::new(self.inner.clients.clone())
    }

    /// A container by full id.
    pub fn get(&self, id: &str) -> Option<Arc<Container>> {
        self.read().by_id.get(id).map(|r| r.container.clone())
    }

    /// All known containers (not yet removed).
    pub fn containers(&self) -> Vec<Arc<Container>> {
        let cache = self.read();
        let mut v: Vec<_> =
            cache.by_id.values().filter(|r| r.removed_at.is_none()).map(|r| r.container.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        v
    }

    pub fn status(&self) -> RegistryStatus {
        let (containers, with_md, host, per_client) = {
            let cache = self.read();
            let mut per_client = vec![0usize; self.inner.clients.len()];
            let live: Vec<&Record> = cache.by_id.values().filter(|r| r.removed_at.is_none()).collect();
            for r in &live {
                if let Some(i) = r.source {
                    if let Some(n) = per_client.get_mut(i) {
                        *n += 1;
                    }
                }
            }
            let with_md = live.iter().filter(|r| r.container.has_metadata()).count();
            (live.len(), with_md, cache.host_cgroups, per_client)
        };
        let runtimes = self
            .inner
            .clients
            .iter()
            .zip(&self.inner.client_states)
            .zip(per_client)
            .map(|((c, st), n)| {
                let st = lock(st);
                RuntimeStatus {
                    name: c.name(),
                    endpoint: c.endpoint(),
                    connected: st.connected,
                    last_error: st.last_error.clone(),
                    connects: st.connects,
                    containers: n,
                }
            })
            .collect();
        RegistryStatus {
            runtimes,
            containers,
            containers_with_metadata: with_md,
            host_cgroups: host,
            cgroup_root: self.inner.tree.as_ref().map(|t| t.root().to_path_buf()),
            cgroup_tree: self.inner.tree.as_ref().map(|t| t.stats()),
            inspects: self.inner.inspects.load(Ordering::Relaxed),
            inspect_failures: self.inner.inspect_failures.load(Ordering::Relaxed),
            resolved_without_metadata: self.inner.without_metadata.load(Ordering::Relaxed),
        }
    }

    /// Start the background tasks on the current tokio runtime: one watcher per
    /// runtime client (list at start and on every reconnect, then follow the
    /// event stream) and a sweeper. Must be called from within a tokio runtime.
    pub fn spawn(&self) -> RegistryTasks {
        if let Some(tree) = &self.inner.tree {
            if !self.inner.watching_cgroups.swap(true, Ordering::SeqCst) {
                if let Err(e) = crate::cgroupwatch::spawn_cgroup_watcher(tree.clone()) {
                    warn!(error = %e, "cannot watch the cgroup tree: short-lived containers may go unattributed");
                }
            }
        }
        let mut handles = Vec::new();
        for idx in 0..self.inner.clients.len() {
            let this = self.clone();
            handles.push(tokio::spawn(async move { this.watch(idx).await }));
        }
        let this = self.clone();
        handles.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.inner.config.sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.sweep().await;
            }
        }));
        RegistryTasks { handles }
    }

    /// List every runtime's containers now and learn them (for one-shot CLI use;
    /// the watcher does this on its own). Returns the first error, after trying
    /// all runtimes.
    pub async fn refresh(&self) -> Result<usize, Error> {
        let mut n = 0;
        let mut first_err = None;
        for idx in 0..self.inner.clients.len() {
            match self.inner.clients[idx].list().await {
                Ok(list) => {
                    n += list.len();
                    for d in list {
                        self.upsert_from(Some(idx), d);
                    }
                }
                Err(e) => {
                    self.set_state(idx, false, Some(e.to_string()));
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n),
        }
    }

    /// Learn (or update) a container from a runtime's answer.
    pub fn upsert(&self, d: Discovered) -> Arc<Container> {
        self.upsert_from(None, d)
    }

    /// Forget removed containers after the grace period, notice containers whose
    /// cgroup vanished without a destroy event, and retry missing metadata.
    pub async fn sweep(&self) {
        let now = Instant::now();
        let grace = self.inner.config.removal_grace;
        // Containers whose cgroup directory is gone count as removed.
        if let Some(tree) = &self.inner.tree {
            let paths: Vec<(String, PathBuf)> = self
                .read()
                .by_id
                .iter()
                .filter(|(_, r)| r.removed_at.is_none() && !r.container.cgroup_path.is_empty())
                .map(|(id, r)| {
                    (id.clone(), tree.root().join(r.container.cgroup_path.trim_start_matches('/')))
                })
                .collect();
            let gone: Vec<String> =
                paths.into_iter().filter(|(_, p)| !p.exists()).map(|(id, _)| id).collect();
            if !gone.is_empty() {
                let mut cache = self.write();
                for id in gone {
                    if let Some(r) = cache.by_id.get_mut(&id) {
                        r.removed_at.get_or_insert(now);
                    }
                }
            }
        }
        let mut forgotten = Vec::new();
        {
            let mut cache = self.write();
            let expired: Vec<String> = cache
                .by_id
                .iter()
                .filter(|(_, r)| r.removed_at.is_some_and(|t| now.duration_since(t) >= grace))
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                if let Some(r) = cache.by_id.remove(&id) {
                    for cg in &r.cgroup_ids {
                        cache.by_cgroup.remove(cg);
                    }
                    forgotten.extend(r.cgroup_ids);
                    debug!(%id, name = %r.container.name, "forgot removed container");
                }
            }
        }
        if let Some(tree) = &self.inner.tree {
            for cg in forgotten {
                tree.forget(cg);
            }
        }
        // Retry metadata for containers that have none yet.
        let due: Vec<Arc<Container>> = {
            let cache = self.read();
            cache
                .by_id
                .values()
                .filter(|r| r.removed_at.is_none() && !r.container.has_metadata() && self.attempt_due(r, now))
                .take(self.inner.config.max_retries_per_sweep)
                .map(|r| r.container.clone())
                .collect()
        };
        for c in due {
            self.fill_metadata(c).await;
        }
    }

    /// The containerd namespaces runtimes reported containers in.
    pub fn containerd_namespaces(&self) -> Vec<String> {
        let namespaces = self.inner.containerd_namespaces.read().unwrap_or_else(|e| e.into_inner());
        namespaces.iter().cloned().collect()
    }

    // ----- internals -----

    /// Which container a cgroup path names, knowing the containerd namespaces
    /// seen so far.
    fn parse_path(&self, path: &str) -> Option<CgroupContainer> {
        let namespaces = self.inner.containerd_namespaces.read().unwrap_or_else(|e| e.into_inner());
        parse_cgroup_path_with(path, &|ns| namespaces.contains(ns))
    }

    fn attempt_due(&self, r: &Record, now: Instant) -> bool {
        r.next_attempt.is_none_or(|t| now >= t)
    }

    fn delay_attempts(&self, id: &str, by: Duration) {
        if let Some(r) = self.write().by_id.get_mut(id) {
            if !r.container.has_metadata() {
                r.next_attempt = Some(Instant::now() + by);
            }
        }
    }

    fn learn_host(&self, cgroup_id: u64) {
        let mut cache = self.write();
        if cache.host_cgroups >= self.inner.config.max_host_cgroups {
            cache.by_cgroup.retain(|_, s| !matches!(s, Slot::Host));
            cache.host_cgroups = 0;
        }
        if cache.by_cgroup.insert(cgroup_id, Slot::Host).is_none() {
            cache.host_cgroups += 1;
        }
    }

    /// Map a container cgroup to its record, creating a stub (id, runtime, pod
    /// uid, cgroup path) when the container is new.
    fn learn_cgroup(&self, cgroup_id: u64, path: &str, parsed: &CgroupContainer) -> Arc<Container> {
        let mut cache = self.write();
        let max = self.inner.config.max_cgroups_per_container;
        let c = match cache.by_id.get_mut(&parsed.id) {
            Some(r) => {
                let shorter =
                    r.container.cgroup_path.is_empty() || path.len() < r.container.cgroup_path.len();
                if shorter || (r.container.pod_uid.is_none() && parsed.pod_uid.is_some()) {
                    let mut c = (*r.container).clone();
                    if shorter {
                        c.cgroup_path = path.to_string();
                    }
                    c.pod_uid = c.pod_uid.or_else(|| parsed.pod_uid.clone());
                    r.container = Arc::new(c);
                }
                if !r.cgroup_ids.contains(&cgroup_id) && r.cgroup_ids.len() < max {
                    r.cgroup_ids.push(cgroup_id);
                }
                let c = r.container.clone();
                let ids = r.cgroup_ids.clone();
                for id in ids {
                    cache.by_cgroup.insert(id, Slot::Container(c.clone()));
                }
                c
            }
            None => {
                let c = Arc::new(Container {
                    id: parsed.id.clone(),
                    runtime: Some(parsed.runtime),
                    pod_uid: parsed.pod_uid.clone(),
                    cgroup_path: path.to_string(),
                    ..Default::default()
                });
                debug!(id = %c.id, runtime = parsed.runtime.as_str(), cgroup_id, path, "new container cgroup");
                cache.by_id.insert(
                    parsed.id.clone(),
                    Record {
                        container: c.clone(),
                        cgroup_ids: vec![cgroup_id],
                        source: None,
                        next_attempt: None,
                        removed_at: None,
                    },
                );
                c
            }
        };
        if let Some(Slot::Host) = cache.by_cgroup.insert(cgroup_id, Slot::Container(c.clone())) {
            cache.host_cgroups = cache.host_cgroups.saturating_sub(1);
        }
        c
    }

    /// The cgroup (path, id) of a running container, from its init pid.
    fn cgroup_of_pid(&self, id: &str, pid: u32) -> Option<(String, u64)> {
        let tree = self.inner.tree.as_ref()?;
        let path = match cgroup_path_of_pid(pid) {
            Ok(p) => p,
            Err(e) => {
                debug!(%id, pid, error = %e, "cannot read the container's cgroup");
                return None;
            }
        };
        // The pid may have been reused by another process: the path must name
        // this container.
        if self.parse_path(&path).map(|p| p.id).as_deref() != Some(id) {
            debug!(%id, pid, path, "init pid's cgroup does not name the container");
            return None;
        }
        match tree.id_of(&path) {
            Ok(cg) => Some((path, cg)),
            Err(e) => {
                debug!(%id, error = %e, "cannot stat the container's cgroup");
                None
            }
        }
    }

    fn upsert_from(&self, source: Option<usize>, d: Discovered) -> Arc<Container> {
        let Discovered { mut container, pid } = d;
        let id = container.id.clone();
        if let (Some(Runtime::Containerd), Some(ns)) = (container.runtime, &container.runtime_namespace) {
            let mut namespaces = self.inner.containerd_namespaces.write().unwrap_or_else(|e| e.into_inner());
            if !namespaces.contains(ns) {
                namespaces.insert(ns.clone());
            }
        }
        let known_cgroup = {
            let cache = self.read();
            cache
                .by_id
                .get(&id)
                .is_some_and(|r| !r.cgroup_ids.is_empty() && !r.container.cgroup_path.is_empty())
        };
        let cg = if known_cgroup { None } else { pid.and_then(|p| self.cgroup_of_pid(&id, p)) };
        let mut cache = self.write();
        let record = cache.by_id.entry(id.clone()).or_insert_with(|| Record {
            container: Arc::new(Container { id: id.clone(), ..Default::default() }),
            cgroup_ids: Vec::new(),
            source,
            next_attempt: None,
            removed_at: None,
        });
        if container.cgroup_path.is_empty() {
            container.cgroup_path = record.container.cgroup_path.clone();
        }
        if container.pod_uid.is_none() {
            container.pod_uid = record.container.pod_uid.clone();
        }
        if let Some((path, cg)) = &cg {
            if container.cgroup_path.is_empty() {
                container.cgroup_path = path.clone();
            }
            if !record.cgroup_ids.contains(cg) {
                record.cgroup_ids.push(*cg);
            }
        }
        let c = Arc::new(container);
        record.container = c.clone();
        record.source = source.or(record.source);
        record.next_attempt = None;
        record.removed_at = None;
        let ids = record.cgroup_ids.clone();
        for cg in ids {
            if let Some(Slot::Host) = cache.by_cgroup.insert(cg, Slot::Container(c.clone())) {
                cache.host_cgroups = cache.host_cgroups.saturating_sub(1);
            }
        }
        c
    }

    fn mark_removed(&self, id: &str) {
        if let Some(r) = self.write().by_id.get_mut(id) {
            r.removed_at.get_or_insert(Instant::now());
        }
    }

    /// Clients to ask about a container of `runtime`: its own runtime's first.
    fn clients_for(&self, runtime: Option<Runtime>) -> Vec<usize> {
        let mut own = Vec::new();
        let mut others = Vec::new();
        for (i, c) in self.inner.clients.iter().enumerate() {
            let down = {
                let st = lock(&self.inner.client_states[i]);
                st.tried && !st.connected
            };
            if down {
                continue;
            }
            match runtime {
                Some(rt) if c.runtime() == rt => own.push(i),
                Some(rt) if c.handles(rt) => others.push(i),
                None => others.push(i),
                _ => {}
            }
        }
        own.extend(others);
        own
    }

    /// Fetch metadata for a container (deduplicated, in a task of its own), and
    /// wait for it at most `inspect_timeout` after the fetch started (a caller
    /// joining a slow fetch waits only for what is left of that).
    async fn fill_metadata(&self, stub: Arc<Container>) -> Arc<Container> {
        let now = Instant::now();
        // Fast path under the read lock: metadata arrived meanwhile, or no attempt
        // is due (then only join a fetch already in flight).
        let due = match self.read().by_id.get(&stub.id) {
            Some(r) if r.container.has_metadata() => return r.container.clone(),
            Some(r) => self.attempt_due(r, now),
            None => false,
        };
        let (deadline, fut) = {
            let mut inflight = lock(&self.inner.inflight);
            match inflight.get(&stub.id) {
                Some(f) => (f.deadline, f.future.clone()),
                None if !due => {
                    self.inner.without_metadata.fetch_add(1, Ordering::Relaxed);
                    return stub;
                }
                None => {
                    // Re-check and claim the attempt under the write lock.
                    let claimed = {
                        let mut cache = self.write();
                        match cache.by_id.get_mut(&stub.id) {
                            Some(r) if r.container.has_metadata() => return r.container.clone(),
                            Some(r) if self.attempt_due(r, now) => {
                                r.next_attempt = Some(now + self.inner.config.metadata_retry);
                                true
                            }
                            _ => false,
                        }
                    };
                    let clients = self.clients_for(stub.runtime);
                    if !claimed || clients.is_empty() {
                        self.inner.without_metadata.fetch_add(1, Ordering::Relaxed);
                        return stub;
                    }
                    let this = self.clone();
                    let id = stub.id.clone();
                    let task = tokio::spawn(async move {
                        let r = this.fetch(&id, &clients).await;
                        lock(&this.inner.inflight).remove(&id);
                        r
                    });
                    let f: InflightFuture = async move { task.await.ok().flatten() }.boxed().shared();
                    let deadline = now + self.inner.config.inspect_timeout;
                    inflight.insert(stub.id.clone(), Inflight { deadline, future: f.clone() });
                    (deadline, f)
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), fut).await {
            Ok(Some(c)) => c,
            _ => {
                self.inner.without_metadata.fetch_add(1, Ordering::Relaxed);
                self.get(&stub.id).unwrap_or(stub)
            }
        }
    }

    async fn fetch(&self, id: &str, clients: &[usize]) -> Option<Arc<Container>> {
        let mut all_not_found = true;
        for &idx in clients {
            let client = &self.inner.clients[idx];
            self.inner.inspects.fetch_add(1, Ordering::Relaxed);
            match client.inspect(id).await {
                Ok(d) => return Some(self.upsert_from(Some(idx), d)),
                Err(Error::NotFound { .. }) => {
                    self.inner.inspect_failures.fetch_add(1, Ordering::Relaxed);
                    debug!(%id, runtime = client.name(), "container unknown to runtime");
                }
                Err(e) => {
                    all_not_found = false;
                    self.inner.inspect_failures.fetch_add(1, Ordering::Relaxed);
                    debug!(%id, runtime = client.name(), error = %e, "inspect failed");
                    lock(&self.inner.client_states[idx]).last_error = Some(e.to_string());
                }
            }
        }
        if all_not_found {
            self.delay_attempts(id, self.inner.config.not_found_retry);
        }
        None
    }

    fn set_state(&self, idx: usize, connected: bool, error: Option<String>) {
        let mut st = lock(&self.inner.client_states[idx]);
        if connected && !st.connected {
            st.connects += 1;
        }
        st.tried = true;
        st.connected = connected;
        if error.is_some() {
            st.last_error = error;
        }
    }

    async fn handle_event(&self, idx: usize, ev: RuntimeEvent) {
        let client = &self.inner.clients[idx];
        let notify = ev.clone();
        match ev {
            RuntimeEvent::Started { id } | RuntimeEvent::Changed { id } => {
                self.inner.inspects.fetch_add(1, Ordering::Relaxed);
                match client.inspect(&id).await {
                    Ok(d) => {
                        let c = self.upsert_from(Some(idx), d);
                        debug!(id = %c.short_id(), name = %c.name, "container started or changed");
                    }
                    Err(e) => {
                        self.inner.inspect_failures.fetch_add(1, Ordering::Relaxed);
                        debug!(%id, error = %e, "inspect after event failed");
                    }
                }
            }
            RuntimeEvent::Died { id } => debug!(%id, "container died"),
            RuntimeEvent::Destroyed { id } => {
                debug!(%id, "container destroyed");
                self.mark_removed(&id);
            }
        }
        // An error only means nobody subscribed.
        let _ = self.inner.lifecycle.send(notify);
    }

    /// One runtime's watcher: list, follow events, reconnect with backoff.
    async fn watch(&self, idx: usize) {
        let client = self.inner.clients[idx].clone();
        let cfg = &self.inner.config;
        let mut backoff = cfg.backoff_min;
        loop {
            let since = unix_now() - 1;
            let result: Result<(), Error> = async {
                // Subscribe from before the list so nothing in between is missed.
                let mut stream = client.events(since).await?;
                let list = client.list().await?;
                let n = list.len();
                for d in list {
                    self.upsert_from(Some(idx), d);
                }
                self.set_state(idx, true, None);
                info!(runtime = client.name(), endpoint = %client.endpoint(), containers = n, "following runtime events");
                backoff = cfg.backoff_min;
                while let Some(item) = stream.next().await {
                    self.handle_event(idx, item?).await;
                }
                Err(Error::StreamEnded { runtime: client.name() })
            }
            .await;
            if let Err(e) = result {
                let was = lock(&self.inner.client_states[idx]).connected;
                if was {
                    warn!(runtime = client.name(), error = %e, "lost runtime connection; retrying");
                } else {
                    debug!(runtime = client.name(), error = %e, retry_in_ms = backoff.as_millis() as u64, "runtime unreachable");
                }
                self.set_state(idx, false, Some(e.to_string()));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(cfg.backoff_max);
        }
    }
}

#[cfg(test)]
mod tests;

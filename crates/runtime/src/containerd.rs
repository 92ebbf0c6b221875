//! containerd client: its own gRPC API (namespaces, containers, tasks, images,
//! snapshots, events) over the unix socket, through `containerd-client` (tonic).
//!
//! containerd has no container names and keeps containers in namespaces: every
//! request carries the `containerd-namespace` header, and a container's id is
//! unique only within its namespace. The [`RuntimeClient`] interface knows
//! containers by id alone (the id in the cgroup path `/<namespace>/<id>`), so the
//! client remembers which namespace each id was seen in and otherwise asks every
//! namespace. `moby` (dockerd's containers when dockerd uses this containerd; the
//! Docker client owns those) is never reported, nor are the namespaces in
//! [`ContainerdConfig::skip_namespaces`] (by default `k8s.io`, which the CRI
//! client describes better: pods, Kubernetes names).

use crate::client::{Discovered, RuntimeClient, RuntimeEvent};
use crate::Error;
use containerd_client::services::v1::{
    containers_client::ContainersClient, events_client::EventsClient, images_client::ImagesClient,
    namespaces_client::NamespacesClient, snapshots::snapshots_client::SnapshotsClient,
    snapshots::MountsRequest, tasks_client::TasksClient, Container as CtrdContainer, GetContainerRequest,
    GetImageRequest, GetRequest, ListContainersRequest, ListNamespacesRequest, ListTasksRequest,
    SubscribeRequest,
};
use containerd_client::tonic::metadata::MetadataValue;
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request, Status};
use containerd_client::types::v1::{Process, Status as TaskStatus};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use model::{Container, Mount, Runtime};
use prost::Message;
use prost_types::Any;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// dockerd's namespace in a containerd it shares.
pub const MOBY_NAMESPACE: &str = "moby";
/// The namespace of Kubernetes' containers (containerd's CRI plugin).
pub const K8S_NAMESPACE: &str = "k8s.io";

/// The name nerdctl gives a container.
pub const LABEL_NERDCTL_NAME: &str = "nerdctl/name";
/// The container's name within its pod (containerd's CRI plugin).
pub const LABEL_K8S_CONTAINER_NAME: &str = "io.kubernetes.container.name";
use crate::docker::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};

/// The gRPC header that selects the namespace of a request.
const NAMESPACE_HEADER: &str = "containerd-namespace";

const NAME: &str = "containerd";

/// Event topics the client follows.
const TOPICS: &[&str] = &[
    "/tasks/start",
    "/tasks/exit",
    "/tasks/delete",
    "/containers/create",
    "/containers/update",
    "/containers/delete",
];

/// Bound on remembered id -> namespace entries (forgotten all at once when reached).
const MAX_REMEMBERED_IDS: usize = 65_536;

/// The capabilities containerd gives a container by default (its
/// `oci.defaultUnixCaps`, the same set as Docker's): `cap_add`/`cap_drop` are
/// relative to them.
pub const DEFAULT_CAPABILITIES: [&str; 14] = model::names::DOCKER_DEFAULT_CAPABILITIES;

/// How to reach containerd.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// Unix socket path (`unix://` prefix accepted).
    pub socket: PathBuf,
    /// Timeout of one API request (connect, list, inspect); not of the event stream.
    pub request_timeout: Duration,
    /// Namespaces whose containers this client does not report (`moby` never is).
    /// The default leaves `k8s.io` to the CRI client.
    pub skip_namespaces: Vec<String>,
    /// How many containers are described at once while listing.
    pub list_concurrency: usize,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        ContainerdConfig {
            socket: PathBuf::from(DEFAULT_CONTAINERD_SOCKET),
            request_timeout: Duration::from_secs(5),
            skip_namespaces: vec![K8S_NAMESPACE.to_string()],
            list_concurrency: 8,
        }
    }
}

impl ContainerdConfig {
    /// Whether containers of namespace `ns` are left to another client.
    pub fn skips(&self, ns: &str) -> bool {
        ns == MOBY_NAMESPACE || self.skip_namespaces.iter().any(|s| s == ns)
    }
}

/// A containerd API client that reconnects after containerd went away.
pub struct ContainerdClient {
    config: Arc<ContainerdConfig>,
    conn: Arc<Mutex<Option<Channel>>>,
    /// container id -> the namespace it was last seen in.
    namespaces_of: Arc<Mutex<HashMap<String, String>>>,
}

impl std::fmt::Debug for ContainerdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerdClient")
            .field("socket", &self.config.socket)
            .field("skip_namespaces", &self.config.skip_namespaces)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A map of hints: still usable if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn remember(map: &Mutex<HashMap<String, String>>, id: &str, ns: &str) {
    let mut m = lock(map);
    if m.get(id).map(String::as_str) == Some(ns) {
        return;
    }
    if m.len() >= MAX_REMEMBERED_IDS {
        m.clear();
    }
    m.insert(id.to_string(), ns.to_string());
}

/// A request in namespace `ns` (`None`: no namespace, as Namespaces and Events
/// need).
fn request<T>(ns: Option<&str>, msg: T) -> Result<Request<T>, Error> {
    let mut req = Request::new(msg);
    if let Some(ns) = ns {
        let value = MetadataValue::try_from(ns).map_err(|e| Error::Request {
            runtime: NAME,
            request: format!("namespace header {ns:?}"),
            source: Box::new(e),
        })?;
        req.metadata_mut().insert(NAMESPACE_HEADER, value);
    }
    Ok(req)
}

impl ContainerdClient {
    pub fn new(config: ContainerdConfig) -> Self {
        ContainerdClient {
            config: Arc::new(config),
            conn: Arc::new(Mutex::new(None)),
            namespaces_of: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A client of the containerd at `socket`, other settings default.
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Self::new(ContainerdConfig { socket: socket.into(), ..Default::default() })
    }

    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    fn socket_path(&self) -> PathBuf {
        let s = self.config.socket.to_string_lossy();
        PathBuf::from(s.strip_prefix("unix://").unwrap_or(&s))
    }

    fn endpoint_str(&self) -> String {
        self.socket_path().display().to_string()
    }

    fn cached(&self) -> Option<Channel> {
        lock(&self.conn).clone()
    }

    /// The connection slot, for the event stream to drop a failed connection.
    fn reset_handle(&self) -> Arc<Mutex<Option<Channel>>> {
        self.conn.clone()
    }

    /// Drop the connection so the next call reconnects.
    fn reset(&self) {
        *lock(&self.conn) = None;
    }

    async fn connect(&self) -> Result<Channel, Error> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let path = self.socket_path();
        let channel = containerd_client::connect(&path).await.map_err(|e| Error::Connect {
            runtime: NAME,
            endpoint: self.endpoint_str(),
            source: Box::new(e),
        })?;
        info!(socket = %path.display(), "connected to containerd");
        *lock(&self.conn) = Some(channel.clone());
        Ok(channel)
    }

    /// Map a gRPC status; the connection is dropped unless containerd answered.
    /// (Callers turn `NotFound` into `None` or [`Error::NotFound`] themselves.)
    fn status_error(&self, request: &str, s: Status) -> Error {
        if matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled) {
            self.reset();
        }
        Error::Request { runtime: NAME, request: request.to_string(), source: Box::new(s) }
    }

    async fn with_timeout<T>(
        &self,
        request: &str,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.config.request_timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                self.reset();
                Err(Error::Timeout {
                    runtime: NAME,
                    request: request.to_string(),
                    timeout: self.config.request_timeout,
                })
            }
        }
    }

    /// The namespaces whose containers this client reports.
    pub async fn namespaces(&self) -> Result<Vec<String>, Error> {
        self.with_timeout("namespaces", async {
            let ch = self.connect().await?;
            let resp = NamespacesClient::new(ch)
                .list(request(None, ListNamespacesRequest { filter: String::new() })?)
                .await
                .map_err(|s| self.status_error("namespaces", s))?;
            let mut names: Vec<String> = resp
                .into_inner()
                .namespaces
                .into_iter()
                .map(|n| n.name)
                .filter(|n| !n.is_empty() && !self.config.skips(n))
                .collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    /// One container of namespace `ns` (`None` when it has no such container).
    async fn get_container(&self, ch: &Channel, ns: &str, id: &str) -> Result<Option<CtrdContainer>, Error> {
        let what = format!("get container {ns}/{id}");
        match ContainersClient::new(ch.clone())
            .get(request(Some(ns), GetContainerRequest { id: id.into() })?)
            .await
        {
            Ok(r) => Ok(r.into_inner().container),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.status_error(&what, s)),
        }
    }

    /// The container's init process (`None`: no task).
    async fn get_task(&self, ch: &Channel, ns: &str, id: &str) -> Result<Option<Process>, Error> {
        let what = format!("get task {ns}/{id}");
        let req = GetRequest { container_id: id.into(), exec_id: String::new() };
        match TasksClient::new(ch.clone()).get(request(Some(ns), req)?).await {
            Ok(r) => Ok(r.into_inner().process),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(self.status_error(&what, s)),
        }
    }

    /// The image's manifest digest, when containerd still has the image.
    async fn image_digest(&self, ch: &Channel, ns: &str, image: &str) -> Option<String> {
        if image.is_empty() {
            return None;
        }
        let req = request(Some(ns), GetImageRequest { name: image.into() }).ok()?;
        match ImagesClient::new(ch.clone()).get(req).await {
            Ok(r) => r.into_inner().image.and_then(|i| i.target).map(|t| t.digest).filter(|d| !d.is_empty()),
            Err(s) => {
                debug!(ns, image, error = %s, "no image digest");
                None
            }
        }
    }

    /// The overlay upper directory of the container's root filesystem snapshot.
    async fn upper_dir(&self, ch: &Channel, ns: &str, c: &CtrdContainer) -> Option<String> {
        if c.snapshotter.is_empty() || c.snapshot_key.is_empty() {
            return None;
        }
        let req = MountsRequest { snapshotter: c.snapshotter.clone(), key: c.snapshot_key.clone() };
        match SnapshotsClient::new(ch.clone()).mounts(request(Some(ns), req).ok()?).await {
            Ok(r) => r.into_inner().mounts.iter().find_map(|m| upper_dir_of(&m.options)),
            Err(s) => {
                debug!(ns, id = %c.id, error = %s, "no snapshot mounts");
                None
            }
        }
    }

    /// Everything rampart wants to know about one container.
    async fn describe(
        &self,
        ch: &Channel,
        ns: &str,
        c: &CtrdContainer,
        task: Option<&Process>,
    ) -> Option<Discovered> {
        let mut container = container_from_containerd(ns, c)?;
        let (image_id, upper) = tokio::join!(self.image_digest(ch, ns, &c.image), self.upper_dir(ch, ns, c));
        container.image_id = image_id.unwrap_or_default();
        container.upper_dir = upper;
        remember(&self.namespaces_of, &c.id, ns);
        Some(Discovered { container, pid: task.and_then(live_pid) })
    }

    pub async fn inspect_container(&self, id: &str) -> Result<Discovered, Error> {
        self.find_container(id, true).await
    }

    /// A container whose task is being created: its record only (asking for
    /// the task would wait on the shim, busy creating it).
    pub async fn starting_container(&self, id: &str) -> Result<Discovered, Error> {
        self.find_container(id, false).await
    }

    async fn find_container(&self, id: &str, with_task: bool) -> Result<Discovered, Error> {
        let request_name = format!("inspect {id}");
        self.with_timeout(&request_name, async {
            let ch = self.connect().await?;
            // The namespace it was seen in first, then every namespace.
            let hint = lock(&self.namespaces_of).get(id).cloned().filter(|ns| !self.config.skips(ns));
            let mut order: Vec<String> = hint.iter().cloned().collect();
            let mut listed = false;
            let mut fallback: Option<(String, CtrdContainer)> = None;
            let mut i = 0;
            loop {
                if i == order.len() {
                    if listed {
                        break;
                    }
                    listed = true;
                    for ns in self.namespaces().await? {
                        if !order.contains(&ns) {
                            order.push(ns);
                        }
                    }
                    if i == order.len() {
                        break;
                    }
                }
                let ns = order[i].clone();
                i += 1;
                let Some(c) = self.get_container(&ch, &ns, id).await? else { continue };
                if !with_task {
                    return self
                        .describe(&ch, &ns, &c, None)
                        .await
                        .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() });
                }
                // Ids are unique per namespace only: prefer the one that runs.
                let task = self.get_task(&ch, &ns, id).await?;
                if task.as_ref().and_then(live_pid).is_some() {
                    return self
                        .describe(&ch, &ns, &c, task.as_ref())
                        .await
                        .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() });
                }
                fallback.get_or_insert((ns, c));
            }
            match fallback {
                Some((ns, c)) => self
                    .describe(&ch, &ns, &c, None)
                    .await
                    .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() }),
                None => Err(Error::NotFound { runtime: NAME, id: id.to_string() }),
            }
        })
        .await
    }

    /// The containers of one namespace that have a live task, with their tasks.
    async fn running_in(&self, ch: &Channel, ns: &str) -> Result<Vec<(CtrdContainer, Process)>, Error> {
        let tasks = TasksClient::new(ch.clone())
            .list(request(Some(ns), ListTasksRequest { filter: String::new() })?)
            .await
            .map_err(|s| self.status_error(&format!("list tasks {ns}"), s))?
            .into_inner()
            .tasks;
        let mut live: HashMap<String, Process> = tasks
            .into_iter()
            .filter(|t| live_pid(t).is_some())
            .map(|t| (task_container_id(&t).to_string(), t))
            .collect();
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let containers = ContainersClient::new(ch.clone())
            .list(request(Some(ns), ListContainersRequest { filters: Vec::new() })?)
            .await
            .map_err(|s| self.status_error(&format!("list containers {ns}"), s))?
            .into_inner()
            .containers;
        Ok(containers.into_iter().filter_map(|c| live.remove(&c.id).map(|t| (c, t))).collect())
    }

    /// Every running container of every reported namespace.
    pub async fn list_containers(&self) -> Result<Vec<Discovered>, Error> {
        let (ch, running) = self
            .with_timeout("list", async {
                let ch = self.connect().await?;
                let mut running = Vec::new();
                for ns in self.namespaces().await? {
                    for (c, t) in self.running_in(&ch, &ns).await? {
                        running.push((ns.clone(), c, t));
                    }
                }
                Ok((ch, running))
            })
            .await?;
        let ch = &ch;
        let out: Vec<Option<Discovered>> = self
            .with_timeout("list", async {
                Ok(stream::iter(running)
                    .map(|(ns, c, t)| async move { self.describe(ch, &ns, &c, Some(&t)).await })
                    .buffer_unordered(self.config.list_concurrency.max(1))
                    .collect()
                    .await)
            })
            .await?;
        Ok(out.into_iter().flatten().collect())
    }

    /// containerd's events from now on (containerd keeps no history: `since_unix`
    /// is not used; the registry lists after subscribing, which covers the gap).
    pub async fn event_stream(&self) -> Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error> {
        let ch = self.with_timeout("events", self.connect()).await?;
        let filters = TOPICS.iter().map(|t| format!("topic==\"{t}\"")).collect();
        let req = request(None, SubscribeRequest { filters })?;
        // containerd sends the response headers with the first event only, so the
        // call cannot be awaited here; it is sent now, from a task of its own, so
        // that the subscription exists before the caller lists.
        let call = tokio::spawn(async move { EventsClient::new(ch).subscribe(req).await });
        let conn = self.reset_handle();
        let stream = stream::once(async move {
            match call.await {
                Ok(Ok(resp)) => resp.into_inner().boxed(),
                Ok(Err(s)) => stream::once(std::future::ready(Err(s))).boxed(),
                Err(e) => {
                    stream::once(std::future::ready(Err(Status::internal(format!("subscribe task: {e}")))))
                        .boxed()
                }
            }
        })
        .flatten();
        let config = self.config.clone();
        let ids = self.namespaces_of.clone();
        let s = stream.filter_map(move |item| {
            let out = match item {
                Ok(env) => {
                    if config.skips(&env.namespace) {
                        None
                    } else {
                        let ev = runtime_event_from_envelope(&env.topic, env.event.as_ref());
                        match &ev {
                            Some(RuntimeEvent::Destroyed { id }) => {
                                lock(&ids).remove(id);
                            }
                            Some(e) if !env.namespace.is_empty() => remember(&ids, e.id(), &env.namespace),
                            _ => {}
                        }
                        ev.map(Ok)
                    }
                }
                Err(s) => {
                    // The registry reconnects: make that a new connection.
                    *lock(&conn) = None;
                    debug!(error = %s, "containerd event stream failed");
                    Some(Err(Error::Request { runtime: NAME, request: "events".into(), source: Box::new(s) }))
                }
            };
            std::future::ready(out)
        });
        Ok(s.boxed())
    }
}

impl RuntimeClient for ContainerdClient {
    fn name(&self) -> &'static str {
        NAME
    }

    fn runtime(&self) -> Runtime {
        Runtime::Containerd
    }

    fn endpoint(&self) -> String {
        self.endpoint_str()
    }

    fn handles(&self, runtime: Runtime) -> bool {
        match runtime {
            Runtime::Containerd => true,
            // Bare ids under pod cgroups: CRI containers, ours only when k8s.io is.
            Runtime::Kubernetes => !self.config.skips(K8S_NAMESPACE),
            _ => false,
        }
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        Box::pin(self.inspect_container(id))
    }

    fn starting<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        Box::pin(self.starting_container(id))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Discovered>, Error>> {
        Box::pin(self.list_containers())
    }

    fn events(
        &self,
        _since_unix: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error>> {
        Box::pin(self.event_stream())
    }
}

/// The host pid of a task's process while it lives.
fn live_pid(p: &Process) -> Option<u32> {
    let live = matches!(
        TaskStatus::try_from(p.status),
        Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing)
    );
    (live && p.pid > 0).then_some(p.pid)
}

/// The container a listed task belongs to: containerd fills `id` (the task id,
/// which is the container id) and leaves `container_id` empty in `Tasks.List`.
fn task_container_id(p: &Process) -> &str {
    if p.container_id.is_empty() {
        &p.id
    } else {
        &p.container_id
    }
}

/// `upperdir=` of an overlay mount's options.
fn upper_dir_of(options: &[String]) -> Option<String> {
    options.iter().find_map(|o| o.strip_prefix("upperdir=")).filter(|u| !u.is_empty()).map(str::to_string)
}

/// Decode an event of `topic` when its payload is the expected message.
fn decode_event<T: Message + Default>(any: Option<&Any>, name: &str) -> Option<T> {
    let any = any?;
    // "containerd.events.TaskStart" (sometimes with a "types.containerd.io/" prefix).
    if any.type_url.rsplit(['.', '/']).next() != Some(name) {
        return None;
    }
    T::decode(any.value.as_slice()).ok()
}

/// Map a containerd event (topic and payload) to a lifecycle event (`None` for
/// events rampart ignores, such as an exec'd process exiting).
pub fn runtime_event_from_envelope(topic: &str, event: Option<&Any>) -> Option<RuntimeEvent> {
    use containerd_client::events::{
        ContainerCreate, ContainerDelete, ContainerUpdate, TaskDelete, TaskExit, TaskStart,
    };
    let nonempty = |id: String| (!id.is_empty()).then_some(id);
    // An exec's exit or delete names the exec id; only the init process's counts.
    let init = |container_id: &str, exec_id: &str| exec_id.is_empty() || exec_id == container_id;
    match topic {
        "/tasks/start" => decode_event::<TaskStart>(event, "TaskStart")
            .and_then(|e| nonempty(e.container_id))
            .map(|id| RuntimeEvent::Started { id }),
        "/tasks/exit" => decode_event::<TaskExit>(event, "TaskExit")
            .filter(|e| init(&e.container_id, &e.id))
            .and_then(|e| nonempty(e.container_id))
            .map(|id| RuntimeEvent::Died { id }),
        "/tasks/delete" => decode_event::<TaskDelete>(event, "TaskDelete")
            .filter(|e| init(&e.container_id, &e.id))
            .and_then(|e| nonempty(e.container_id))
            .map(|id| RuntimeEvent::Died { id }),
        "/containers/create" => decode_event::<ContainerCreate>(event, "ContainerCreate")
            .and_then(|e| nonempty(e.id))
            .map(|id| RuntimeEvent::Changed { id }),
        "/containers/update" => decode_event::<ContainerUpdate>(event, "ContainerUpdate")
            .and_then(|e| nonempty(e.id))
            .map(|id| RuntimeEvent::Changed { id }),
        "/containers/delete" => decode_event::<ContainerDelete>(event, "ContainerDelete")
            .and_then(|e| nonempty(e.id))
            .map(|id| RuntimeEvent::Destroyed { id }),
        _ => None,
    }
}

// ----- the OCI runtime spec, as far as rampart reads it -----
//
// Not `deny_unknown_fields`: the spec is the runtime's output, not our input,
// and grows with every runtime-spec release.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciSpec {
    process: Option<OciProcess>,
    mounts: Vec<OciMount>,
    linux: Option<OciLinux>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciProcess {
    user: OciUser,
    capabilities: Option<OciCapabilities>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciUser {
    uid: u32,
    gid: u32,
    username: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciCapabilities {
    bounding: Vec<String>,
    effective: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciMount {
    destination: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OciLinux {
    namespaces: Vec<OciNamespace>,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OciNamespace {
    #[serde(rename = "type")]
    kind: String,
    path: String,
}

const PROPAGATIONS: &[&str] =
    &["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"];

/// [`apply_spec`] from a runtime-spec `config.json` (an OCI bundle's).
pub fn apply_spec_json(c: &mut Container, json: &[u8]) -> Result<(), String> {
    let spec: OciSpec = serde_json::from_slice(json).map_err(|e| format!("not an OCI spec: {e}"))?;
    apply_spec(c, &spec);
    Ok(())
}

/// What the OCI spec says about privileges, namespaces, user and mounts.
fn apply_spec(c: &mut Container, spec: &OciSpec) {
    if let Some(p) = &spec.process {
        c.user = if p.user.username.is_empty() {
            format!("{}:{}", p.user.uid, p.user.gid)
        } else {
            p.user.username.clone()
        };
        let caps =
            p.capabilities.as_ref().map(|c| if c.bounding.is_empty() { &c.effective } else { &c.bounding });
        let has = |cap: &str| caps.is_some_and(|cs| cs.iter().any(|c| c.eq_ignore_ascii_case(cap)));
        let short = |cap: &str| cap.strip_prefix("CAP_").unwrap_or(cap).to_string();
        if let Some(cs) = caps {
            let mut add: Vec<String> = cs
                .iter()
                .filter(|c| !DEFAULT_CAPABILITIES.iter().any(|d| d.eq_ignore_ascii_case(c)))
                .map(|c| short(&c.to_ascii_uppercase()))
                .collect();
            add.sort();
            add.dedup();
            c.cap_add = add;
            c.cap_drop = DEFAULT_CAPABILITIES.iter().filter(|d| !has(d)).map(|d| short(d)).collect();
        } else {
            // No capabilities section: the process gets none.
            c.cap_drop = vec!["ALL".to_string()];
        }
        // `ctr run --privileged` (and Docker's): every capability the caller had,
        // nothing masked or read-only in /proc and /sys.
        c.privileged = has("CAP_SYS_ADMIN")
            && spec.linux.as_ref().is_some_and(|l| l.masked_paths.is_empty() && l.readonly_paths.is_empty());
    }
    if let Some(linux) = &spec.linux {
        // A namespace the spec does not list is the host's; one joined by path is
        // the host's when the path is pid 1's.
        let host = |kind: &str| match linux.namespaces.iter().find(|n| n.kind == kind) {
            None => true,
            Some(n) => n.path.starts_with("/proc/1/ns/"),
        };
        c.host_pid = host("pid");
        c.host_network = host("network");
        c.host_ipc = host("ipc");
    }
    c.mounts = spec
        .mounts
        .iter()
        .filter(|m| m.kind == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind"))
        .map(|m| Mount {
            source: m.source.clone(),
            destination: m.destination.clone(),
            read_only: m.options.iter().any(|o| o == "ro"),
            propagation: m
                .options
                .iter()
                .find(|o| PROPAGATIONS.contains(&o.as_str()))
                .cloned()
                .unwrap_or_default(),
            mode: m.options.join(","),
        })
        .collect();
}

/// Map a container of the Containers service into rampart's container (image
/// digest, upper dir and cgroup path are filled in by the caller/registry).
pub fn container_from_containerd(namespace: &str, c: &CtrdContainer) -> Option<Container> {
    if c.id.is_empty() {
        return None;
    }
    let labels: BTreeMap<String, String> = c.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let name =
        label(LABEL_NERDCTL_NAME).or_else(|| label(LABEL_K8S_CONTAINER_NAME)).unwrap_or_else(|| c.id.clone());
    let mut container = Container {
        id: c.id.clone(),
        runtime: Some(Runtime::Containerd),
        name,
        image: c.image.clone(),
        pod_name: label(LABEL_POD_NAME),
        pod_namespace: label(LABEL_POD_NAMESPACE),
        pod_uid: label(LABEL_POD_UID),
        runtime_namespace: Some(namespace.to_string()),
        created_ns: c.created_at.as_ref().and_then(|t| {
            u64::try_from(t.seconds)
                .ok()?
                .checked_mul(1_000_000_000)?
                .checked_add(u64::try_from(t.nanos).ok()?)
        }),
        ..Default::default()
    };
    container.labels = labels;
    if let Some(any) = &c.spec {
        match serde_json::from_slice::<OciSpec>(&any.value) {
            Ok(spec) => apply_spec(&mut container, &spec),
            Err(e) => {
                warn!(ns = namespace, id = %c.id, type_url = %any.type_url, error = %e, "cannot decode the container's OCI spec")
            }
        }
    }
    Some(container)
}

#[cfg(test)]
mod tests;

//! Kubernetes CRI client: `runtime.v1.RuntimeService` over a unix socket, as
//! served by CRI-O (`/run/crio/crio.sock`) and by containerd's CRI plugin
//! (`/run/containerd/containerd.sock`). Stubs come from the `k8s-cri` crate
//! (tonic).
//!
//! What the CRI tells and where it goes in [`Container`]:
//!
//! | `Container` | CRI source |
//! |---|---|
//! | `name` | container metadata name (the name within the pod); for a pod sandbox (the pause container) the pod's name, as Falco does |
//! | `image` | the image the pod spec named: `ImageSpec.user_specified_image` where the runtime keeps it, else the requested image (containerd's verbose `config.image`) unless it is a bare id (as the kubelet sends it), else the status image (containerd: its first tag) |
//! | `image_id` | `ContainerStatus.image_id`, else `image_ref` |
//! | `labels` | container labels, then annotations (bounded, labels win) |
//! | `pod_name`, `pod_namespace`, `pod_uid` | the sandbox's metadata, else the kubelet's `io.kubernetes.pod.*` labels |
//! | `pod_labels` | the sandbox's labels less the kubelet's `io.kubernetes.pod.*` |
//! | `host_network`, `host_pid`, `host_ipc` | the sandbox's `NamespaceOption` (`NODE`), or the container's own config |
//! | `privileged`, `cap_add`, `cap_drop`, `user` | the verbose info (containerd: `config.linux.security_context`; CRI-O: `privileged`; both: `runtimeSpec.process.user`) |
//! | `mounts` | `ContainerStatus.mounts` |
//! | `runtime_namespace` | `k8s.io` for containerd (the namespace its CRI plugin uses) |
//! | pid | the verbose info's `pid` |
//!
//! Events: `GetContainerEvents` (a stream) where the runtime implements it
//! (containerd >= 1.7, CRI-O with pod events on); otherwise (containerd 1.6, which
//! answers `Unimplemented`) `ListContainers` + `ListPodSandbox` are polled every
//! [`CriConfig::poll_interval`] (1 s) and Started/Died/Destroyed synthesized
//! from the difference, so a lifecycle change is seen up to one interval (plus
//! the two list calls) late, and a container that started and exited within one
//! interval yields Started then Died. The CRI has no event history: `since` is
//! ignored and the registry's list after subscribing covers what came before.

use crate::client::{Discovered, RuntimeClient, RuntimeEvent};
use crate::Error;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use model::{Container, Mount, Runtime};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;
use tracing::{debug, info};

pub use cri::runtime_service_client::RuntimeServiceClient;

/// CRI-O's socket.
pub const DEFAULT_CRIO_SOCKET: &str = "/run/crio/crio.sock";
/// containerd's socket; its CRI plugin serves the CRI on it.
pub const DEFAULT_CRI_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// The sockets a CRI runtime usually listens on, CRI-O first.
pub const DEFAULT_CRI_SOCKETS: &[&str] = &[DEFAULT_CRIO_SOCKET, DEFAULT_CRI_CONTAINERD_SOCKET];
/// The containerd namespace of containerd's CRI plugin.
pub const CONTAINERD_CRI_NAMESPACE: &str = "k8s.io";

/// Labels the kubelet puts on every sandbox and container.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// Annotations longer than this are left out of `Container::labels` (pods carry
/// whole manifests in `kubectl.kubernetes.io/last-applied-configuration`).
pub const MAX_ANNOTATION_LEN: usize = 1024;

/// gRPC messages up to this size are accepted (verbose statuses carry the whole
/// OCI spec; a busy node's list is large).
const MAX_MESSAGE: usize = 64 << 20;

/// How to reach a CRI runtime.
#[derive(Debug, Clone)]
pub struct CriConfig {
    /// Unix socket path (`unix://` prefix accepted).
    pub socket: PathBuf,
    /// The runtime behind the socket; `None`: from the `Version` answer's
    /// `runtime_name` (and from the socket path until the first answer).
    pub runtime: Option<Runtime>,
    /// Timeout of one request (connect + version, a status, a list); not of the
    /// event stream.
    pub request_timeout: Duration,
    /// How often containers are listed when the runtime has no event stream.
    pub poll_interval: Duration,
    /// Whether to try `GetContainerEvents` before falling back to polling.
    pub stream_events: bool,
    /// How many status requests run at once while listing.
    pub list_concurrency: usize,
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig {
            socket: PathBuf::from(DEFAULT_CRI_CONTAINERD_SOCKET),
            runtime: None,
            request_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            stream_events: true,
            list_concurrency: 8,
        }
    }
}

/// What the runtime's `Version` call said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriVersion {
    pub runtime: Runtime,
    /// `runtime_name` (`containerd`, `cri-o`).
    pub runtime_name: String,
    pub runtime_version: String,
    /// The CRI version the runtime speaks (`v1`).
    pub runtime_api_version: String,
}

impl From<cri::VersionResponse> for CriVersion {
    fn from(v: cri::VersionResponse) -> Self {
        CriVersion {
            runtime: runtime_of_name(&v.runtime_name),
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            runtime_api_version: v.runtime_api_version,
        }
    }
}

/// The rampart runtime of a CRI `runtime_name`.
pub fn runtime_of_name(runtime_name: &str) -> Runtime {
    match runtime_name.to_ascii_lowercase().as_str() {
        "containerd" => Runtime::Containerd,
        "cri-o" | "crio" => Runtime::Crio,
        // cri-dockerd
        "docker" => Runtime::Docker,
        "podman" => Runtime::Podman,
        _ => Runtime::Kubernetes,
    }
}

/// The runtime a socket path suggests before the runtime answered.
fn runtime_of_socket(socket: &Path) -> Runtime {
    if socket.to_string_lossy().contains("crio") {
        Runtime::Crio
    } else {
        Runtime::Containerd
    }
}

/// A CRI client that reconnects after the runtime went away.
pub struct CriClient {
    config: CriConfig,
    conn: Mutex<Option<RuntimeServiceClient<Channel>>>,
    version: Mutex<Option<CriVersion>>,
    /// Set when `GetContainerEvents` ended cleanly without a single event (a
    /// runtime that accepts the call but has pod events off): poll from then on.
    events_unsupported: Arc<AtomicBool>,
}

impl std::fmt::Debug for CriClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CriClient")
            .field("socket", &self.config.socket)
            .field("runtime", &self.runtime_now())
            .finish_non_exhaustive()
    }
}

impl CriClient {
    pub fn new(mut config: CriConfig) -> Self {
        if let Some(p) = config.socket.to_str().and_then(|s| s.strip_prefix("unix://")) {
            config.socket = PathBuf::from(p);
        }
        CriClient {
            config,
            conn: Mutex::new(None),
            version: Mutex::new(None),
            events_unsupported: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A client of the runtime at `socket`, other settings default.
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Self::new(CriConfig { socket: socket.into(), ..Default::default() })
    }

    pub fn config(&self) -> &CriConfig {
        &self.config
    }

    fn endpoint_str(&self) -> String {
        self.config.socket.display().to_string()
    }

    /// The runtime behind the socket as far as known now.
    fn runtime_now(&self) -> Runtime {
        if let Some(rt) = self.config.runtime {
            return rt;
        }
        if let Some(v) = self.version.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return v.runtime;
        }
        runtime_of_socket(&self.config.socket)
    }

    /// The last `Version` answer (none before the first connect).
    pub fn last_version(&self) -> Option<CriVersion> {
        self.version.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn name_str(&self) -> &'static str {
        match self.runtime_now() {
            Runtime::Crio => "cri-o",
            Runtime::Containerd => "cri-containerd",
            Runtime::Docker => "cri-docker",
            Runtime::Podman => "cri-podman",
            Runtime::Kubernetes => "cri",
        }
    }

    fn cached(&self) -> Option<RuntimeServiceClient<Channel>> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drop the connection so the next call reconnects.
    fn reset(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn connect(&self) -> Result<RuntimeServiceClient<Channel>, Error> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let endpoint = self.endpoint_str();
        let mut client = connect_socket(&self.config.socket, self.config.request_timeout).await?;
        let v = client
            .version(cri::VersionRequest { version: "v1".into() })
            .await
            .map_err(|s| Error::Connect {
                runtime: self.name_str(),
                endpoint: endpoint.clone(),
                source: Box::new(s),
            })?
            .into_inner();
        let version = CriVersion::from(v);
        info!(socket = %endpoint, runtime = %version.runtime_name, version = %version.runtime_version,
              api = %version.runtime_api_version, "connected to cri runtime");
        *self.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
        Ok(client)
    }

    /// Ask the runtime's `Version` now (a health check; connects if needed).
    pub async fn version(&self) -> Result<CriVersion, Error> {
        self.with_timeout("version", async {
            let mut client = self.connect().await?;
            let v = client
                .version(cri::VersionRequest { version: "v1".into() })
                .await
                .map_err(|s| self.request_error("version", None, s))?
                .into_inner();
            let v = CriVersion::from(v);
            *self.version.lock().unwrap_or_else(|e| e.into_inner()) = Some(v.clone());
            Ok(v)
        })
        .await
    }

    /// Map a gRPC status, resetting the connection unless the runtime answered.
    fn request_error(&self, request: &str, id: Option<&str>, s: tonic::Status) -> Error {
        if let (true, Some(id)) = (is_not_found(&s), id) {
            return Error::NotFound { runtime: self.name_str(), id: id.to_string() };
        }
        if is_transport(&s) {
            self.reset();
        }
        Error::Request { runtime: self.name_str(), request: request.to_string(), source: Box::new(s) }
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
                    runtime: self.name_str(),
                    request: request.to_string(),
                    timeout: self.config.request_timeout,
                })
            }
        }
    }

    async fn sandbox_status(
        &self,
        client: &mut RuntimeServiceClient<Channel>,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse, Error> {
        client
            .pod_sandbox_status(cri::PodSandboxStatusRequest { pod_sandbox_id: id.to_string(), verbose })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.request_error(&format!("pod sandbox status {id}"), Some(id), s))
    }

    /// The sandbox a container belongs to, when the verbose info did not say.
    async fn sandbox_of(
        &self,
        client: &mut RuntimeServiceClient<Channel>,
        id: &str,
    ) -> Result<String, Error> {
        let filter = cri::ContainerFilter { id: id.to_string(), ..Default::default() };
        let list = client
            .list_containers(cri::ListContainersRequest { filter: Some(filter) })
            .await
            .map_err(|s| self.request_error(&format!("list containers id={id}"), None, s))?
            .into_inner();
        Ok(list.containers.into_iter().find(|c| c.id == id).map(|c| c.pod_sandbox_id).unwrap_or_default())
    }

    /// Full metadata of a container or pod sandbox (the pause container).
    pub async fn inspect_container(&self, id: &str) -> Result<Discovered, Error> {
        let request = format!("container status {id}");
        self.with_timeout(&request, async {
            let mut client = self.connect().await?;
            let status = client
                .container_status(cri::ContainerStatusRequest { container_id: id.to_string(), verbose: true })
                .await;
            match status {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    let status = resp
                        .status
                        .as_ref()
                        .ok_or_else(|| Error::NotFound { runtime: self.name_str(), id: id.to_string() })?;
                    let info = VerboseInfo::parse(&resp.info);
                    let sandbox_id = match &info.sandbox_id {
                        Some(s) => s.clone(),
                        None => self.sandbox_of(&mut client, &status.id).await?,
                    };
                    let sandbox = if sandbox_id.is_empty() {
                        None
                    } else {
                        match self.sandbox_status(&mut client, &sandbox_id, false).await {
                            Ok(s) => s.status,
                            // Removed meanwhile: the container's own labels still name the pod.
                            Err(Error::NotFound { .. }) => None,
                            Err(e) => return Err(e),
                        }
                    };
                    discovered_from_container(status, &info, sandbox.as_ref(), self.runtime_now())
                        .ok_or_else(|| Error::NotFound { runtime: self.name_str(), id: id.to_string() })
                }
                Err(s) if is_not_found(&s) => {
                    let resp = self.sandbox_status(&mut client, id, true).await?;
                    let status = resp
                        .status
                        .as_ref()
                        .ok_or_else(|| Error::NotFound { runtime: self.name_str(), id: id.to_string() })?;
                    let info = VerboseInfo::parse(&resp.info);
                    discovered_from_sandbox(status, &info, self.runtime_now())
                        .ok_or_else(|| Error::NotFound { runtime: self.name_str(), id: id.to_string() })
                }
                Err(s) => Err(self.request_error(&request, Some(id), s)),
            }
        })
        .await
    }

    /// All running containers and ready pod sandboxes, with full metadata.
    pub async fn list_containers(&self) -> Result<Vec<Discovered>, Error> {
        let (containers, sandboxes) = self
            .with_timeout("list", async {
                let mut client = self.connect().await?;
                let running = cri::ContainerFilter {
                    state: Some(cri::ContainerStateValue {
                        state: cri::ContainerState::ContainerRunning as i32,
                    }),
                    ..Default::default()
                };
                let containers = client
                    .list_containers(cri::ListContainersRequest { filter: Some(running) })
                    .await
                    .map_err(|s| self.request_error("list containers", None, s))?
                    .into_inner()
                    .containers;
                let ready = cri::PodSandboxFilter {
                    state: Some(cri::PodSandboxStateValue {
                        state: cri::PodSandboxState::SandboxReady as i32,
                    }),
                    ..Default::default()
                };
                let sandboxes = client
                    .list_pod_sandbox(cri::ListPodSandboxRequest { filter: Some(ready) })
                    .await
                    .map_err(|s| self.request_error("list pod sandboxes", None, s))?
                    .into_inner()
                    .items;
                Ok((containers, sandboxes))
            })
            .await?;
        let conc = self.config.list_concurrency.max(1);
        let runtime = self.runtime_now();

        // Each sandbox once, verbose: it is listed itself and its status serves its containers.
        let sandbox_results: Vec<Result<(String, cri::PodSandboxStatusResponse), Error>> =
            stream::iter(sandboxes.into_iter().map(|s| s.id))
                .map(|id| async move {
                    let request = format!("pod sandbox status {id}");
                    self.with_timeout(&request, async {
                        let mut client = self.connect().await?;
                        Ok((id.clone(), self.sandbox_status(&mut client, &id, true).await?))
                    })
                    .await
                })
                .buffer_unordered(conc)
                .collect()
                .await;
        let mut out = Vec::new();
        let mut pods: HashMap<String, cri::PodSandboxStatus> = HashMap::new();
        for r in sandbox_results {
            match r {
                Ok((id, resp)) => {
                    let Some(status) = resp.status else { continue };
                    let info = VerboseInfo::parse(&resp.info);
                    if let Some(d) = discovered_from_sandbox(&status, &info, runtime) {
                        out.push(d);
                    }
                    pods.insert(id, status);
                }
                Err(Error::NotFound { id, .. }) => debug!(%id, "pod sandbox vanished while listing"),
                Err(e) => return Err(e),
            }
        }

        let pods = &pods;
        let container_results: Vec<Result<Option<Discovered>, Error>> = stream::iter(containers)
            .map(|c| async move {
                let request = format!("container status {}", c.id);
                self.with_timeout(&request, async {
                    let mut client = self.connect().await?;
                    let resp = client
                        .container_status(cri::ContainerStatusRequest {
                            container_id: c.id.clone(),
                            verbose: true,
                        })
                        .await
                        .map_err(|s| self.request_error(&request, Some(&c.id), s))?
                        .into_inner();
                    let Some(status) = resp.status else { return Ok(None) };
                    let info = VerboseInfo::parse(&resp.info);
                    let sandbox = match pods.get(&c.pod_sandbox_id) {
                        Some(s) => Some(s.clone()),
                        // A sandbox that was not ready when listed.
                        None if !c.pod_sandbox_id.is_empty() => {
                            match self.sandbox_status(&mut client, &c.pod_sandbox_id, false).await {
                                Ok(r) => r.status,
                                Err(Error::NotFound { .. }) => None,
                                Err(e) => return Err(e),
                            }
                        }
                        None => None,
                    };
                    let mut d = discovered_from_container(&status, &info, sandbox.as_ref(), runtime);
                    if let Some(d) = d.as_mut() {
                        fill_from_list_entry(&mut d.container, &c);
                    }
                    Ok(d)
                })
                .await
            })
            .buffer_unordered(conc)
            .collect()
            .await;
        for r in container_results {
            match r {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(Error::NotFound { id, .. }) => debug!(%id, "container vanished while listing"),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Lifecycle events: the runtime's own stream, or polling (see the module doc).
    pub async fn event_stream(&self) -> Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error> {
        let client = self.with_timeout("events", self.connect()).await?;
        let name = self.name_str();
        if self.config.stream_events && !self.events_unsupported.load(Ordering::Relaxed) {
            let mut c = client.clone();
            let attempt = tokio::time::timeout(
                self.config.request_timeout,
                c.get_container_events(cri::GetEventsRequest {}),
            )
            .await;
            match attempt {
                Ok(Ok(resp)) => {
                    debug!(runtime = name, "following GetContainerEvents");
                    let unsupported = self.events_unsupported.clone();
                    let got_any = Arc::new(AtomicBool::new(false));
                    let seen = got_any.clone();
                    let events = resp.into_inner().filter_map(move |item| {
                        seen.store(true, Ordering::Relaxed);
                        async move {
                            match item {
                                Ok(ev) => runtime_event_from_cri(&ev).map(Ok),
                                Err(s) => Some(Err(Error::Request {
                                    runtime: name,
                                    request: "get container events".into(),
                                    source: Box::new(s),
                                })),
                            }
                        }
                    });
                    // A clean end before any event: the runtime only pretends to
                    // stream; the registry reconnects and this client polls.
                    let end = stream::once(async move {
                        if !got_any.load(Ordering::Relaxed) {
                            unsupported.store(true, Ordering::Relaxed);
                            info!(runtime = name, "GetContainerEvents ended at once; polling instead");
                        }
                        Err(Error::StreamEnded { runtime: name })
                    });
                    return Ok(events.chain(end).boxed());
                }
                Ok(Err(s)) if is_transport(&s) => {
                    return Err(self.request_error("get container events", None, s))
                }
                // Unimplemented (containerd 1.6) or refused (CRI-O without pod events).
                Ok(Err(s)) => {
                    debug!(runtime = name, code = ?s.code(), message = s.message(), "no GetContainerEvents; polling")
                }
                Err(_) => {
                    self.reset();
                    return Err(Error::Timeout {
                        runtime: name,
                        request: "get container events".into(),
                        timeout: self.config.request_timeout,
                    });
                }
            }
        }
        let timeout = self.config.request_timeout;
        let first = snapshot(&mut client.clone(), name, timeout).await;
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                self.reset();
                return Err(e);
            }
        };
        let poller = Poller {
            client,
            name,
            timeout,
            prev: first,
            pending: VecDeque::new(),
            tick: {
                let mut t = tokio::time::interval(self.config.poll_interval.max(Duration::from_millis(50)));
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            },
        };
        Ok(stream::unfold(Some(poller), |state| async move {
            let mut p = state?;
            loop {
                if let Some(ev) = p.pending.pop_front() {
                    return Some((Ok(ev), Some(p)));
                }
                p.tick.tick().await;
                match snapshot(&mut p.client, p.name, p.timeout).await {
                    Ok(cur) => {
                        p.pending.extend(diff_lifecycles(&p.prev, &cur));
                        p.prev = cur;
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        })
        .boxed())
    }
}

impl RuntimeClient for CriClient {
    fn name(&self) -> &'static str {
        self.name_str()
    }

    fn runtime(&self) -> Runtime {
        self.runtime_now()
    }

    fn endpoint(&self) -> String {
        self.endpoint_str()
    }

    fn handles(&self, runtime: Runtime) -> bool {
        runtime == self.runtime_now() || runtime == Runtime::Kubernetes
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        Box::pin(self.inspect_container(id))
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

/// A `RuntimeService` client on a unix socket (connected now, so a missing
/// socket fails here and not at the first request).
pub async fn connect_socket(
    socket: &Path,
    timeout: Duration,
) -> Result<RuntimeServiceClient<Channel>, Error> {
    Ok(RuntimeServiceClient::new(connect_channel(socket, timeout).await?)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// A gRPC channel to a unix socket, connected now.
pub async fn connect_channel(socket: &Path, timeout: Duration) -> Result<Channel, Error> {
    let socket_str = socket.display().to_string();
    let connect_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
        runtime: "cri",
        endpoint: socket_str.clone(),
        source,
    };
    let path = socket.to_path_buf();
    // The URI is required by tonic but unused: the connector dials the socket.
    // No per-request timeout on the channel: it would cut the event stream.
    let endpoint = Endpoint::from_static("http://cri.local").connect_timeout(timeout);
    let channel = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
    }));
    match tokio::time::timeout(timeout, channel).await {
        Ok(r) => r.map_err(|e| connect_err(Box::new(e))),
        Err(_) => Err(connect_err(format!("no connection within {timeout:?}").into())),
    }
}

/// Whether a status says the container or sandbox does not exist. Runtimes
/// differ: containerd answers NotFound, some CRI-O versions Unknown with a
/// "not found" message.
fn is_not_found(s: &tonic::Status) -> bool {
    match s.code() {
        Code::NotFound => true,
        Code::Unknown => {
            let m = s.message().to_ascii_lowercase();
            m.contains("not found") || m.contains("does not exist")
        }
        _ => false,
    }
}

/// Whether a status means the connection (not the request) failed.
fn is_transport(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded)
        || (s.code() == Code::Unknown && std::error::Error::source(s).is_some())
}

/// One container's or sandbox's place in its life, as far as polling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Created,
    Running,
    Exited,
}

fn life_of_container(state: i32) -> Life {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => Life::Created,
        Ok(cri::ContainerState::ContainerRunning) => Life::Running,
        // Exited, and Unknown (its shim is gone): not running.
        _ => Life::Exited,
    }
}

fn life_of_sandbox(state: i32) -> Life {
    match cri::PodSandboxState::try_from(state) {
        Ok(cri::PodSandboxState::SandboxReady) => Life::Running,
        _ => Life::Exited,
    }
}

/// The events that take `prev` to `cur` (ids in order; a container seen for
/// the first time already exited yields Started then Died so its metadata is
/// still fetched).
pub fn diff_lifecycles(prev: &BTreeMap<String, Life>, cur: &BTreeMap<String, Life>) -> Vec<RuntimeEvent> {
    let mut out = Vec::new();
    for (id, &now) in cur {
        let before = prev.get(id).copied();
        let started = now != Life::Created && matches!(before, None | Some(Life::Created))
            || now == Life::Running && before == Some(Life::Exited);
        if started {
            out.push(RuntimeEvent::Started { id: id.clone() });
        }
        if now == Life::Exited && before != Some(Life::Exited) {
            out.push(RuntimeEvent::Died { id: id.clone() });
        }
    }
    for (id, &before) in prev {
        if !cur.contains_key(id) {
            if before == Life::Running {
                out.push(RuntimeEvent::Died { id: id.clone() });
            }
            out.push(RuntimeEvent::Destroyed { id: id.clone() });
        }
    }
    out
}

/// Every container and sandbox the runtime knows, with where it is in its life.
async fn snapshot(
    client: &mut RuntimeServiceClient<Channel>,
    name: &'static str,
    timeout: Duration,
) -> Result<BTreeMap<String, Life>, Error> {
    let req_err = |request: &str, s: tonic::Status| Error::Request {
        runtime: name,
        request: request.to_string(),
        source: Box::new(s),
    };
    let fut = async {
        let containers = client
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .map_err(|s| req_err("list containers", s))?
            .into_inner()
            .containers;
        let sandboxes = client
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(|s| req_err("list pod sandboxes", s))?
            .into_inner()
            .items;
        let mut m: BTreeMap<String, Life> =
            containers.into_iter().map(|c| (c.id, life_of_container(c.state))).collect();
        m.extend(sandboxes.into_iter().map(|s| (s.id, life_of_sandbox(s.state))));
        Ok(m)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(Error::Timeout { runtime: name, request: "list".into(), timeout }))
}

struct Poller {
    client: RuntimeServiceClient<Channel>,
    name: &'static str,
    timeout: Duration,
    prev: BTreeMap<String, Life>,
    pending: VecDeque<RuntimeEvent>,
    tick: tokio::time::Interval,
}

/// Map a `GetContainerEvents` item (`None` for creation, which has no process yet).
pub fn runtime_event_from_cri(ev: &cri::ContainerEventResponse) -> Option<RuntimeEvent> {
    if ev.container_id.is_empty() {
        return None;
    }
    let id = ev.container_id.clone();
    match cri::ContainerEventType::try_from(ev.container_event_type).ok()? {
        cri::ContainerEventType::ContainerCreatedEvent => None,
        cri::ContainerEventType::ContainerStartedEvent => Some(RuntimeEvent::Started { id }),
        cri::ContainerEventType::ContainerStoppedEvent => Some(RuntimeEvent::Died { id }),
        cri::ContainerEventType::ContainerDeletedEvent => Some(RuntimeEvent::Destroyed { id }),
    }
}

/// What rampart uses of a status's verbose `info` (`info["info"]`, a JSON
/// document whose shape differs per runtime; unknown or malformed parts are
/// ignored, it is only a source of extra detail).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerboseInfo {
    pub pid: Option<u32>,
    pub sandbox_id: Option<String>,
    pub privileged: Option<bool>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `uid:gid` of the container's process (from the OCI spec).
    pub user: Option<String>,
    /// The image as requested (containerd's `config.image`).
    pub config_image: Option<String>,
    pub config_user_specified_image: Option<String>,
    /// The sandbox image (containerd's sandbox `image`).
    pub image: Option<String>,
    /// Host namespaces the container's own config asks for (`NODE` mode).
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
}

/// `NamespaceMode::NODE`.
const NS_NODE: i64 = cri::NamespaceMode::Node as i64;

impl VerboseInfo {
    pub fn parse(info: &HashMap<String, String>) -> VerboseInfo {
        match info.get("info").map(|s| serde_json::from_str::<Value>(s)) {
            Some(Ok(v)) => Self::from_json(&v),
            Some(Err(e)) => {
                debug!(error = %e, "unparsable verbose info");
                VerboseInfo::default()
            }
            None => VerboseInfo::default(),
        }
    }

    pub fn from_json(v: &Value) -> VerboseInfo {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let strs = |p: &str| -> Vec<String> {
            v.pointer(p)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                .unwrap_or_default()
        };
        let sc = "/config/linux/security_context";
        let ns_node = |kind: &str| {
            v.pointer(&format!("{sc}/namespace_options/{kind}")).and_then(Value::as_i64) == Some(NS_NODE)
        };
        let user = match (
            v.pointer("/runtimeSpec/process/user/uid").and_then(Value::as_u64),
            v.pointer("/runtimeSpec/process/user/gid").and_then(Value::as_u64),
        ) {
            (Some(u), Some(g)) => Some(format!("{u}:{g}")),
            (Some(u), None) => Some(u.to_string()),
            _ => None,
        };
        VerboseInfo {
            pid: v
                .pointer("/pid")
                .and_then(Value::as_u64)
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok()),
            sandbox_id: s("/sandboxID"),
            // containerd keeps the CRI config; CRI-O says it directly.
            privileged: v
                .pointer(&format!("{sc}/privileged"))
                .and_then(Value::as_bool)
                .or_else(|| v.pointer("/privileged").and_then(Value::as_bool)),
            cap_add: strs(&format!("{sc}/capabilities/add_capabilities")),
            cap_drop: strs(&format!("{sc}/capabilities/drop_capabilities")),
            user,
            config_image: s("/config/image/image"),
            config_user_specified_image: s("/config/image/user_specified_image"),
            image: s("/image"),
            host_network: ns_node("network"),
            host_pid: ns_node("pid"),
            host_ipc: ns_node("ipc"),
        }
    }
}

/// An image *id* rather than a reference (`sha256:...` or bare 64 hex).
fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn image_of(spec: Option<&cri::ImageSpec>) -> Option<&str> {
    spec.map(|i| i.image.as_str()).filter(|s| !s.is_empty())
}

fn user_specified(spec: Option<&cri::ImageSpec>) -> Option<&str> {
    spec.map(|i| i.user_specified_image.as_str()).filter(|s| !s.is_empty())
}

/// Labels, then annotations that fit and do not shadow a label.
fn labels_and_annotations(
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in annotations {
        if v.len() <= MAX_ANNOTATION_LEN && !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn propagation_name(p: i32) -> &'static str {
    match cri::MountPropagation::try_from(p) {
        Ok(cri::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(cri::MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    }
}

/// Host namespaces of a pod sandbox: (network, pid, ipc).
fn sandbox_host_namespaces(s: &cri::PodSandboxStatus) -> (bool, bool, bool) {
    let o = s.linux.as_ref().and_then(|l| l.namespaces.as_ref()).and_then(|n| n.options.as_ref());
    let node = cri::NamespaceMode::Node as i32;
    match o {
        Some(o) => (o.network == node, o.pid == node, o.ipc == node),
        None => (false, false, false),
    }
}

/// The pod fields of a container: from its sandbox when known, else from the
/// kubelet's labels on the container.
fn fill_pod(c: &mut Container, sandbox: Option<&cri::PodSandboxStatus>) {
    let labels = &c.labels;
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let md = sandbox.and_then(|s| s.metadata.as_ref());
    let pod_name = md.and_then(|m| non_empty(&m.name)).or_else(|| label(LABEL_POD_NAME));
    let pod_namespace = md.and_then(|m| non_empty(&m.namespace)).or_else(|| label(LABEL_POD_NAMESPACE));
    let pod_uid = md.and_then(|m| non_empty(&m.uid)).or_else(|| label(LABEL_POD_UID));
    (c.pod_name, c.pod_namespace, c.pod_uid) = (pod_name, pod_namespace, pod_uid);
    if let Some(s) = sandbox {
        c.pod_labels = s
            .labels
            .iter()
            .filter(|(k, _)| ![LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (net, pid, ipc) = sandbox_host_namespaces(s);
        c.host_network |= net;
        c.host_pid |= pid;
        c.host_ipc |= ipc;
    }
}

/// Map a `ContainerStatus` (+ its verbose info and its sandbox's status) into
/// rampart's container (cgroup path left empty: the registry knows it from the
/// cgroup). `None` without an id.
pub fn discovered_from_container(
    status: &cri::ContainerStatus,
    info: &VerboseInfo,
    sandbox: Option<&cri::PodSandboxStatus>,
    runtime: Runtime,
) -> Option<Discovered> {
    if status.id.is_empty() {
        return None;
    }
    let labels = labels_and_annotations(&status.labels, &status.annotations);
    let spec = status.image.as_ref();
    // The kubelet asks for the image by id (the pod spec's name is in
    // user_specified_image on newer ones); containerd's status answers the
    // image's first tag, normalised (docker.io/library/...).
    let image = user_specified(spec)
        .map(String::from)
        .or_else(|| info.config_user_specified_image.clone())
        .or_else(|| info.config_image.clone().filter(|i| !is_image_id(i)))
        .or_else(|| image_of(spec).filter(|i| !is_image_id(i)).map(String::from))
        .or_else(|| image_of(spec).map(String::from))
        .or_else(|| info.config_image.clone())
        .unwrap_or_else(|| status.image_ref.clone());
    let image_id = non_empty(&status.image_id).unwrap_or_else(|| status.image_ref.clone());
    let name = status
        .metadata
        .as_ref()
        .and_then(|m| non_empty(&m.name))
        .or_else(|| labels.get(LABEL_CONTAINER_NAME).cloned())
        .unwrap_or_default();
    let user = status
        .user
        .as_ref()
        .and_then(|u| u.linux.as_ref())
        .map(|l| format!("{}:{}", l.uid, l.gid))
        .or_else(|| info.user.clone())
        .unwrap_or_default();
    let mounts = status
        .mounts
        .iter()
        .map(|m| Mount {
            source: m.host_path.clone(),
            destination: m.container_path.clone(),
            read_only: m.readonly,
            propagation: propagation_name(m.propagation).to_string(),
            mode: String::new(),
        })
        .collect();
    let mut c = Container {
        id: status.id.clone(),
        runtime: Some(runtime),
        name,
        image,
        image_id,
        labels,
        privileged: info.privileged.unwrap_or(false),
        cap_add: info.cap_add.clone(),
        cap_drop: info.cap_drop.clone(),
        mounts,
        host_pid: info.host_pid,
        host_network: info.host_network,
        host_ipc: info.host_ipc,
        user,
        runtime_namespace: (runtime == Runtime::Containerd).then(|| CONTAINERD_CRI_NAMESPACE.to_string()),
        ..Default::default()
    };
    fill_pod(&mut c, sandbox);
    let running = life_of_container(status.state) == Life::Running;
    Some(Discovered { container: c, pid: info.pid.filter(|_| running) })
}

/// Map a pod sandbox (the pause container: it has a cgroup and a process like
/// any container). Its name is the pod's name, its labels the pod's labels and
/// annotations. `None` without an id.
pub fn discovered_from_sandbox(
    status: &cri::PodSandboxStatus,
    info: &VerboseInfo,
    runtime: Runtime,
) -> Option<Discovered> {
    if status.id.is_empty() {
        return None;
    }
    let md = status.metadata.as_ref();
    let (net, pid, ipc) = sandbox_host_namespaces(status);
    let mut c = Container {
        id: status.id.clone(),
        runtime: Some(runtime),
        name: md.map(|m| m.name.clone()).unwrap_or_default(),
        image: info.image.clone().unwrap_or_default(),
        labels: labels_and_annotations(&status.labels, &status.annotations),
        privileged: info.privileged.unwrap_or(false),
        host_network: net || info.host_network,
        host_pid: pid || info.host_pid,
        host_ipc: ipc || info.host_ipc,
        user: info.user.clone().unwrap_or_default(),
        runtime_namespace: (runtime == Runtime::Containerd).then(|| CONTAINERD_CRI_NAMESPACE.to_string()),
        ..Default::default()
    };
    fill_pod(&mut c, Some(status));
    let ready = life_of_sandbox(status.state) == Life::Running;
    Some(Discovered { container: c, pid: info.pid.filter(|_| ready) })
}

/// What a `ListContainers` entry adds to a status (the image as requested,
/// where the status only had an id).
fn fill_from_list_entry(c: &mut Container, entry: &cri::Container) {
    if let Some(u) = user_specified(entry.image.as_ref()) {
        c.image = u.to_string();
    } else if is_image_id(&c.image) {
        if let Some(i) = image_of(entry.image.as_ref()).filter(|i| !is_image_id(i)) {
            c.image = i.to_string();
        }
    }
    if c.image_id.is_empty() {
        c.image_id = non_empty(&entry.image_id).unwrap_or_else(|| entry.image_ref.clone());
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

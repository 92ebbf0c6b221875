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

mod events;
mod translate;

pub use events::{diff_lifecycles, runtime_event_from_cri, Life};
use translate::fill_from_list_entry;
pub use translate::{discovered_from_container, discovered_from_sandbox, VerboseInfo};
// The unit tests (cri/tests.rs) reach these through `super::*`.
#[cfg(test)]
use {
    events::{life_of_container, life_of_sandbox},
    translate::{is_image_id, labels_and_annotations, propagation_name, sandbox_host_namespaces},
};

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

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod tests;

//! Docker Engine API client (bollard over the unix socket).
//!
//! The API version is negotiated on every (re)connect: dockerd 20.10 speaks 1.41
//! and refuses bollard's newer default.

use crate::client::{inspect_listed, Discovered, RuntimeClient, RuntimeEvent};
use crate::Error;
use bollard::container::{InspectContainerOptions, ListContainersOptions, StopContainerOptions};
use bollard::models::{ContainerInspectResponse, EventMessage, EventMessageTypeEnum};
use bollard::system::EventsOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use model::{Container, Mount, Runtime};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tracing::info;

pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Kubernetes labels the kubelet (dockershim, cri-dockerd) puts on containers.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";

const NAME: &str = "docker";

/// How to reach dockerd.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Unix socket path (`unix://` prefix accepted).
    pub socket: PathBuf,
    /// Timeout of one API request (connect + version negotiation, list, inspect);
    /// not of the event stream.
    pub request_timeout: Duration,
    /// How many inspects run at once while listing.
    pub list_concurrency: usize,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: PathBuf::from(DEFAULT_DOCKER_SOCKET),
            request_timeout: Duration::from_secs(5),
            list_concurrency: 8,
        }
    }
}

/// A Docker Engine API client that reconnects (and renegotiates the API version)
/// after the daemon went away.
pub struct DockerClient {
    config: DockerConfig,
    conn: Mutex<Option<Docker>>,
}

impl std::fmt::Debug for DockerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerClient").field("socket", &self.config.socket).finish_non_exhaustive()
    }
}

impl DockerClient {
    pub fn new(config: DockerConfig) -> Self {
        DockerClient { config, conn: Mutex::new(None) }
    }

    /// A client of the daemon at `socket`, other settings default.
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Self::new(DockerConfig { socket: socket.into(), ..Default::default() })
    }

    fn endpoint_str(&self) -> String {
        self.config.socket.display().to_string()
    }

    fn cached(&self) -> Option<Docker> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drop the connection so the next call reconnects and renegotiates.
    fn reset(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn connect(&self) -> Result<Docker, Error> {
        if let Some(d) = self.cached() {
            return Ok(d);
        }
        let endpoint = self.endpoint_str();
        let connect_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            runtime: NAME,
            endpoint: endpoint.clone(),
            source,
        };
        let secs = self.config.request_timeout.as_secs().max(1);
        let docker = Docker::connect_with_unix(&endpoint, secs, API_DEFAULT_VERSION)
            .map_err(|e| connect_err(Box::new(e)))?;
        let docker = tokio::time::timeout(self.config.request_timeout, docker.negotiate_version())
            .await
            .map_err(|_| Error::Timeout {
                runtime: NAME,
                request: "version".into(),
                timeout: self.config.request_timeout,
            })?
            .map_err(|e| connect_err(Box::new(e)))?;
        let v = docker.client_version();
        info!(socket = %endpoint, api = %format!("{}.{}", v.major_version, v.minor_version), "connected to docker");
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(docker.clone());
        Ok(docker)
    }

    /// Map a bollard error, resetting the connection unless the daemon answered.
    fn request_error(&self, request: String, id: Option<&str>, e: bollard::errors::Error) -> Error {
        use bollard::errors::Error as B;
        match (&e, id) {
            (B::DockerResponseServerError { status_code: 404, .. }, Some(id)) => {
                Error::NotFound { runtime: NAME, id: id.to_string() }
            }
            (B::DockerResponseServerError { .. }, _) => {
                Error::Request { runtime: NAME, request, source: Box::new(e) }
            }
            _ => {
                self.reset();
                Error::Request { runtime: NAME, request, source: Box::new(e) }
            }
        }
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

    pub async fn inspect_container(&self, id: &str) -> Result<Discovered, Error> {
        let request = format!("inspect {id}");
        self.with_timeout(&request, async {
            let docker = self.connect().await?;
            let resp = docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
                .map_err(|e| self.request_error(request.clone(), Some(id), e))?;
            discovered_from_inspect(&resp)
                .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() })
        })
        .await
    }

    /// The daemon's whole inspect answer (what `rampart audit` checks).
    pub async fn inspect_raw(&self, id: &str) -> Result<ContainerInspectResponse, Error> {
        let request = format!("inspect {id}");
        self.with_timeout(&request, async {
            let docker = self.connect().await?;
            docker
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
                .map_err(|e| self.request_error(request.clone(), Some(id), e))
        })
        .await
    }

    /// Connect now (and negotiate the API version), so that an absent daemon
    /// shows here rather than at the first request.
    pub async fn connect_now(&self) -> Result<(), Error> {
        self.with_timeout("version", self.connect()).await.map(drop)
    }

    /// One action on container `id`, with the client's timeout and error mapping.
    async fn act<T, F, Fut>(&self, what: &str, id: &str, call: F) -> Result<T, Error>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: std::future::Future<Output = Result<T, bollard::errors::Error>>,
    {
        let request = format!("{what} {id}");
        self.with_timeout(&request, async {
            let docker = self.connect().await?;
            call(docker).await.map_err(|e| self.request_error(request.clone(), Some(id), e))
        })
        .await
    }

    /// `docker stop -t SECS`: SIGTERM, then SIGKILL after `grace` (the request
    /// timeout must outlast it).
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), Error> {
        let t = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        self.act("stop", id, |d| async move { d.stop_container(id, Some(StopContainerOptions { t })).await })
            .await
    }

    /// `docker pause`.
    pub async fn pause(&self, id: &str) -> Result<(), Error> {
        self.act("pause", id, |d| async move { d.pause_container(id).await }).await
    }

    /// `docker unpause`.
    pub async fn unpause(&self, id: &str) -> Result<(), Error> {
        self.act("unpause", id, |d| async move { d.unpause_container(id).await }).await
    }

    /// Whether Docker has the container paused (its own state, `docker pause`).
    pub async fn is_paused(&self, id: &str) -> Result<bool, Error> {
        let r = self.inspect_raw(id).await?;
        Ok(r.state.and_then(|s| s.paused).unwrap_or(false))
    }

    /// Ids of the running containers.
    pub async fn running_ids(&self) -> Result<Vec<String>, Error> {
        let summaries = self
            .with_timeout("list", async {
                let docker = self.connect().await?;
                docker
                    .list_containers(Some(ListContainersOptions::<String> {
                        all: false,
                        ..Default::default()
                    }))
                    .await
                    .map_err(|e| self.request_error("list".into(), None, e))
            })
            .await?;
        Ok(summaries.into_iter().filter_map(|s| s.id).collect())
    }

    /// A container being started: the daemon's container list (a snapshot
    /// that does not take the container's lock, unlike inspect, which waits
    /// for the start to end): name, image and labels. The rest of what a
    /// rule may test comes from the OCI spec ([`crate::containerd::apply_spec_json`]).
    pub async fn starting_container(&self, id: &str) -> Result<Discovered, Error> {
        let request = format!("list --filter id={id}");
        let mut filters = HashMap::new();
        filters.insert("id".to_string(), vec![id.to_string()]);
        let summaries = self
            .with_timeout(&request, async {
                let docker = self.connect().await?;
                docker
                    .list_containers(Some(ListContainersOptions::<String> {
                        all: true,
                        filters,
                        ..Default::default()
                    }))
                    .await
                    .map_err(|e| self.request_error(request.clone(), Some(id), e))
            })
            .await?;
        // The filter matches id prefixes: keep the exact one.
        let s = summaries
            .into_iter()
            .find(|s| s.id.as_deref() == Some(id))
            .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() })?;
        let labels: BTreeMap<String, String> = s.labels.unwrap_or_default().into_iter().collect();
        let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        let container = Container {
            runtime: Some(Runtime::Docker),
            id: id.to_string(),
            name: s
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            image: s.image.unwrap_or_default(),
            image_id: s.image_id.unwrap_or_default(),
            pod_name: label(LABEL_POD_NAME),
            pod_namespace: label(LABEL_POD_NAMESPACE),
            pod_uid: label(LABEL_POD_UID),
            created_ns: s
                .created
                .and_then(|t| u64::try_from(t).ok())
                .and_then(|t| t.checked_mul(1_000_000_000)),
            labels,
            ..Default::default()
        };
        Ok(Discovered { container, pid: None })
    }

    pub async fn list_containers(&self) -> Result<Vec<Discovered>, Error> {
        let ids = self.running_ids().await?;
        inspect_listed(ids, self.config.list_concurrency, |id: String| async move {
            self.inspect_container(&id).await
        })
        .await
    }

    pub async fn event_stream(
        &self,
        since_unix: i64,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error> {
        let docker = self.with_timeout("events", self.connect()).await?;
        let mut filters = HashMap::new();
        filters.insert("type".to_string(), vec!["container".to_string()]);
        filters.insert(
            "event".to_string(),
            ["start", "die", "destroy", "rename", "update"].iter().map(|s| s.to_string()).collect(),
        );
        let opts = EventsOptions::<String> { since: Some(since_unix.to_string()), until: None, filters };
        let s = docker.events(Some(opts)).filter_map(|item| async move {
            match item {
                Ok(msg) => runtime_event_from_docker(&msg).map(Ok),
                Err(e) => {
                    Some(Err(Error::Request { runtime: NAME, request: "events".into(), source: Box::new(e) }))
                }
            }
        });
        Ok(s.boxed())
    }
}

impl RuntimeClient for DockerClient {
    fn name(&self) -> &'static str {
        NAME
    }

    fn runtime(&self) -> Runtime {
        Runtime::Docker
    }

    fn endpoint(&self) -> String {
        self.endpoint_str()
    }

    fn handles(&self, runtime: Runtime) -> bool {
        matches!(runtime, Runtime::Docker | Runtime::Kubernetes | Runtime::Containerd)
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
        since_unix: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error>> {
        Box::pin(self.event_stream(since_unix))
    }
}

/// Map a Docker event to a lifecycle event (`None` for events rampart ignores).
pub fn runtime_event_from_docker(msg: &EventMessage) -> Option<RuntimeEvent> {
    if msg.typ.is_some_and(|t| t != EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let id = msg.actor.as_ref()?.id.clone().filter(|id| !id.is_empty())?;
    // Older daemons send `exec_start: sh -c ...`: keep the verb only.
    let action = msg.action.as_deref()?.split(':').next().unwrap_or("");
    Some(match action {
        "start" => RuntimeEvent::Started { id },
        "die" => RuntimeEvent::Died { id },
        "destroy" => RuntimeEvent::Destroyed { id },
        "rename" | "update" => RuntimeEvent::Changed { id },
        _ => return None,
    })
}

/// Map `GET /containers/{id}/json` into rampart's container (cgroup path left
/// empty: the registry knows it from the cgroup, not from Docker).
pub fn container_from_inspect(resp: &ContainerInspectResponse) -> Option<Container> {
    let id = resp.id.clone().filter(|id| !id.is_empty())?;
    let config = resp.config.as_ref();
    let host = resp.host_config.as_ref();
    let labels: BTreeMap<String, String> = config
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
    let mounts = resp
        .mounts
        .as_ref()
        .map(|ms| {
            ms.iter()
                .map(|m| Mount {
                    source: m.source.clone().unwrap_or_default(),
                    destination: m.destination.clone().unwrap_or_default(),
                    read_only: !m.rw.unwrap_or(true),
                    propagation: m.propagation.clone().unwrap_or_default(),
                    mode: m.mode.clone().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Container {
        runtime: Some(Runtime::Docker),
        name: resp.name.as_deref().unwrap_or("").trim_start_matches('/').to_string(),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        image_id: resp.image.clone().unwrap_or_default(),
        privileged: host.and_then(|h| h.privileged).unwrap_or(false),
        cap_add: host.and_then(|h| h.cap_add.clone()).unwrap_or_default(),
        cap_drop: host.and_then(|h| h.cap_drop.clone()).unwrap_or_default(),
        mounts,
        host_pid: host.and_then(|h| h.pid_mode.as_deref()) == Some("host"),
        host_network: host.and_then(|h| h.network_mode.as_deref()) == Some("host"),
        host_ipc: host.and_then(|h| h.ipc_mode.as_deref()) == Some("host"),
        user: config.and_then(|c| c.user.clone()).unwrap_or_default(),
        pod_name: label(LABEL_POD_NAME),
        pod_namespace: label(LABEL_POD_NAMESPACE),
        pod_uid: label(LABEL_POD_UID),
        pod_labels: BTreeMap::new(),
        runtime_namespace: None,
        cgroup_path: String::new(),
        upper_dir: resp
            .graph_driver
            .as_ref()
            .and_then(|g| g.data.get("UpperDir"))
            .filter(|u| !u.is_empty())
            .cloned(),
        created_ns: resp.created.as_deref().and_then(model::utc::parse_rfc3339),
        labels,
        id,
    })
}

/// [`container_from_inspect`] plus the init pid of a running container.
pub fn discovered_from_inspect(resp: &ContainerInspectResponse) -> Option<Discovered> {
    let container = container_from_inspect(resp)?;
    let state = resp.state.as_ref();
    let running = state.and_then(|s| s.running).unwrap_or(false);
    let pid = state.and_then(|s| s.pid).filter(|p| running && *p > 0).and_then(|p| u32::try_from(p).ok());
    Some(Discovered { container, pid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, ContainerState, DriverData, EventActor, HostConfig, MountPoint};

    const ID: &str = "3f1c2b7e9a0d4c8b6e5f7a9c1d3e5f7091b2c4d6e8fa0b1c2d3e4f5a6b7c8d9e";

    #[test]
    fn maps_hand_built_inspect() {
        let resp = ContainerInspectResponse {
            id: Some(ID.into()),
            name: Some("/web".into()),
            image: Some("sha256:abcd".into()),
            config: Some(ContainerConfig {
                image: Some("nginx:1.25".into()),
                user: Some("101:101".into()),
                labels: Some(HashMap::from([
                    (LABEL_POD_NAME.to_string(), "p1".to_string()),
                    (LABEL_POD_NAMESPACE.to_string(), "ns1".to_string()),
                    (LABEL_POD_UID.to_string(), "".to_string()),
                    ("app".to_string(), "web".to_string()),
                ])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                privileged: Some(true),
                cap_add: Some(vec!["NET_ADMIN".into()]),
                cap_drop: Some(vec!["ALL".into()]),
                pid_mode: Some("host".into()),
                network_mode: Some("host".into()),
                ipc_mode: Some("private".into()),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    source: Some("/var/run/docker.sock".into()),
                    destination: Some("/var/run/docker.sock".into()),
                    rw: Some(true),
                    propagation: Some("rprivate".into()),
                    ..Default::default()
                },
                MountPoint {
                    source: Some("/etc".into()),
                    destination: Some("/host/etc".into()),
                    rw: Some(false),
                    ..Default::default()
                },
            ]),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: HashMap::from([(
                    "UpperDir".to_string(),
                    "/var/lib/docker/overlay2/x/diff".to_string(),
                )]),
            }),
            state: Some(ContainerState { running: Some(true), pid: Some(4242), ..Default::default() }),
            ..Default::default()
        };
        let d = discovered_from_inspect(&resp).unwrap();
        assert_eq!(d.pid, Some(4242));
        let c = d.container;
        assert_eq!(c.id, ID);
        assert_eq!(c.runtime, Some(Runtime::Docker));
        assert_eq!(c.name, "web");
        assert_eq!(c.image, "nginx:1.25");
        assert_eq!(c.image_id, "sha256:abcd");
        assert_eq!(c.user, "101:101");
        assert!(c.privileged);
        assert_eq!(c.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(c.cap_drop, vec!["ALL"]);
        assert_eq!(c.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(c.pod_name.as_deref(), Some("p1"));
        assert_eq!(c.pod_namespace.as_deref(), Some("ns1"));
        assert_eq!(c.pod_uid, None, "empty label is no pod uid");
        assert_eq!(c.mounts.len(), 2);
        assert_eq!(
            c.mounts[0],
            Mount {
                source: "/var/run/docker.sock".into(),
                destination: "/var/run/docker.sock".into(),
                read_only: false,
                propagation: "rprivate".into(),
                mode: String::new(),
            }
        );
        assert!(c.mounts[1].read_only);
        assert!(c.host_pid && c.host_network && !c.host_ipc);
        assert_eq!(c.upper_dir.as_deref(), Some("/var/lib/docker/overlay2/x/diff"));
        assert!(c.has_metadata());
    }

    #[test]
    fn minimal_and_stopped_inspect() {
        let resp = ContainerInspectResponse {
            id: Some(ID.into()),
            state: Some(ContainerState { running: Some(false), pid: Some(0), ..Default::default() }),
            ..Default::default()
        };
        let d = discovered_from_inspect(&resp).unwrap();
        assert_eq!(d.pid, None);
        assert_eq!(d.container.id, ID);
        assert!(!d.container.privileged);
        assert!(d.container.mounts.is_empty());
        assert!(container_from_inspect(&ContainerInspectResponse::default()).is_none());
        assert!(container_from_inspect(&ContainerInspectResponse {
            id: Some(String::new()),
            ..Default::default()
        })
        .is_none());
    }

    /// The shape dockerd 20.10 (API 1.41) returns, trimmed.
    const INSPECT_JSON: &str = r#"{
      "Id": "3f1c2b7e9a0d4c8b6e5f7a9c1d3e5f7091b2c4d6e8fa0b1c2d3e4f5a6b7c8d9e",
      "Created": "2024-05-01T10:00:00.000000000Z",
      "Path": "sleep", "Args": ["60"],
      "State": {"Status": "running", "Running": true, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 31337, "ExitCode": 0, "Error": "",
                "StartedAt": "2024-05-01T10:00:01Z", "FinishedAt": "0001-01-01T00:00:00Z"},
      "Image": "sha256:9c7a54a9a43cca047013b82af109fe963fde787f63f9e016fdc3384500c2823d",
      "Name": "/rt-test",
      "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
      "HostConfig": {"Binds": ["/srv:/srv:ro,rslave"], "NetworkMode": "default", "Privileged": false,
                     "CapAdd": ["SYS_PTRACE"], "CapDrop": null, "CgroupnsMode": "private"},
      "GraphDriver": {"Data": {"LowerDir": "/var/lib/docker/overlay2/l/diff",
                               "MergedDir": "/var/lib/docker/overlay2/u/merged",
                               "UpperDir": "/var/lib/docker/overlay2/u/diff",
                               "WorkDir": "/var/lib/docker/overlay2/u/work"},
                      "Name": "overlay2"},
      "Mounts": [{"Type": "bind", "Source": "/srv", "Destination": "/srv", "Mode": "ro,rslave",
                  "RW": false, "Propagation": "rslave"}],
      "Config": {"Hostname": "3f1c2b7e9a0d", "User": "", "Env": ["PATH=/bin"], "Cmd": ["sleep", "60"],
                 "Image": "rampart-dev:latest", "Labels": {"io.kubernetes.pod.name": "p1",
                 "io.kubernetes.pod.namespace": "ns1"}}
    }"#;

    #[test]
    fn maps_real_inspect_json() {
        let resp: ContainerInspectResponse = serde_json::from_str(INSPECT_JSON).unwrap();
        let d = discovered_from_inspect(&resp).unwrap();
        assert_eq!(d.pid, Some(31337));
        let c = d.container;
        assert_eq!(c.name, "rt-test");
        assert_eq!(c.image, "rampart-dev:latest");
        assert!(c.image_id.starts_with("sha256:9c7a"));
        assert_eq!(c.cap_add, vec!["SYS_PTRACE"]);
        assert!(c.cap_drop.is_empty());
        assert_eq!(c.user, "");
        assert_eq!(c.pod_name.as_deref(), Some("p1"));
        assert_eq!(c.pod_namespace.as_deref(), Some("ns1"));
        assert_eq!(c.mounts[0].propagation, "rslave");
        assert_eq!(c.mounts[0].mode, "ro,rslave");
        assert!(!c.host_pid && !c.host_network && !c.host_ipc);
        assert!(c.mounts[0].read_only);
        assert_eq!(c.upper_dir.as_deref(), Some("/var/lib/docker/overlay2/u/diff"));
        assert_eq!(c.created_ns, Some(1_714_557_600_000_000_000), "Created, for container.start_ts");
    }

    #[test]
    fn maps_events() {
        let ev = |typ, action: &str, id: Option<&str>| EventMessage {
            typ,
            action: Some(action.into()),
            actor: Some(EventActor { id: id.map(String::from), attributes: None }),
            ..Default::default()
        };
        let c = Some(EventMessageTypeEnum::CONTAINER);
        assert_eq!(
            runtime_event_from_docker(&ev(c, "start", Some(ID))),
            Some(RuntimeEvent::Started { id: ID.into() })
        );
        assert_eq!(
            runtime_event_from_docker(&ev(c, "die", Some(ID))),
            Some(RuntimeEvent::Died { id: ID.into() })
        );
        assert_eq!(
            runtime_event_from_docker(&ev(c, "destroy", Some(ID))),
            Some(RuntimeEvent::Destroyed { id: ID.into() })
        );
        assert_eq!(
            runtime_event_from_docker(&ev(c, "rename", Some(ID))),
            Some(RuntimeEvent::Changed { id: ID.into() })
        );
        assert_eq!(runtime_event_from_docker(&ev(c, "exec_start: sh -c id", Some(ID))), None);
        assert_eq!(runtime_event_from_docker(&ev(c, "start", None)), None);
        assert_eq!(
            runtime_event_from_docker(&ev(Some(EventMessageTypeEnum::IMAGE), "start", Some(ID))),
            None
        );
    }

    #[tokio::test]
    async fn absent_socket_is_a_connect_error() {
        let c = DockerClient::with_socket("/nonexistent/rampart-docker.sock");
        let err = c.inspect_container(ID).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(err.is_unreachable());
        assert!(err.to_string().contains("/nonexistent/rampart-docker.sock"));
    }
}

//! podman client: libpod's own REST API (`/v4.0.0/libpod/...`) over the unix
//! socket of `podman system service` (rootful: `/run/podman/podman.sock`).
//!
//! libpod's endpoints rather than the Docker-compatible ones: they report the
//! pod a container belongs to and podman's own event names (`died`, `remove`).
//! Each request opens its own connection (hyper's HTTP/1 client over a
//! `UnixStream`), so there is no connection state to lose when the service
//! restarts.
//!
//! Mapping decisions:
//! * **image**: podman keeps the name it resolved the user's reference to
//!   (`rampart-test:latest` becomes `localhost/rampart-test:latest`); the raw
//!   reference survives only in the CLI's `CreateCommand`, so the resolved name
//!   is what rampart reports (it is also what `podman ps` shows).
//! * **image id**: podman reports a bare digest; it gets Docker's `sha256:`
//!   prefix so that the same image has the same id whatever the runtime.
//! * **capabilities**: podman's `CAP_NET_ADMIN` becomes Docker's `NET_ADMIN`.
//!   podman's default set is smaller than Docker's, so its `CapDrop` lists
//!   `AUDIT_WRITE`, `MKNOD` and `NET_RAW` even when the user dropped nothing.
//! * **pods**: podman pods are not Kubernetes pods (no namespace, no uid), so
//!   the `k8s.*` fields stay empty unless the container carries the kubelet's
//!   `io.kubernetes.pod.*` labels (as with Docker). The podman pod is reported as
//!   two labels, [`LABEL_PODMAN_POD_ID`] and [`LABEL_PODMAN_POD_NAME`], which
//!   podman's answer sets (a user label of the same key is overwritten).
//! * **host IPC**: podman 4.3 reports `IpcMode: "shareable"` for `--ipc host`
//!   too, so a running container whose IPC namespace is rampart's own counts as
//!   sharing the host's.
//! * **cgroup path**: podman's `State.CgroupPath` when it names this container
//!   (`/libpod_parent/libpod-<id>` with the cgroupfs manager; it is the same path
//!   in the cgroup2 tree on hybrid hosts).

use crate::cgroup::parse_cgroup_path;
use crate::client::{inspect_listed, Discovered, RuntimeClient, RuntimeEvent};
use crate::docker::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};
use crate::Error;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use model::{Container, Mount, Runtime};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UnixStream;
use tracing::{debug, warn};

mod api;
mod storage;
mod translate;

use api::ListEntry;
pub use api::{
    EventActor, GraphDriver, InspectConfig, InspectHostConfig, InspectMount, InspectState, PodmanEvent,
    PodmanInspect, PodmanPod,
};
pub use storage::{is_podman_spec, starting_from_store};
pub use translate::{container_from_inspect, discovered_from_inspect, runtime_event_from_podman};
// The unit tests below reach it through `super::*`.
#[cfg(test)]
use translate::docker_cap;

/// Rootful podman's API socket.
pub const DEFAULT_PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Label carrying the id of the podman pod a container belongs to.
pub const LABEL_PODMAN_POD_ID: &str = "io.podman.pod.id";
/// Label carrying the name of the podman pod a container belongs to.
pub const LABEL_PODMAN_POD_NAME: &str = "io.podman.pod.name";

const NAME: &str = "podman";
/// libpod API prefix; 4.0.0 is the oldest version podman 4 serves.
const API: &str = "/v4.0.0/libpod";
/// Largest answer read for one request (an inspect is a few KiB).
const MAX_BODY: usize = 16 << 20;
/// Longest event line kept; longer ones (huge labels) are skipped, not fatal.
const MAX_EVENT_LINE: usize = 1 << 20;
/// The lifecycle events rampart follows, in podman's names.
const EVENTS: &[&str] = &["start", "died", "remove", "rename", "update"];

/// How to reach podman's API service.
#[derive(Debug, Clone)]
pub struct PodmanConfig {
    /// Unix socket path (`unix://` prefix accepted).
    pub socket: PathBuf,
    /// Timeout of one API request (connect, list, inspect; the event stream's
    /// response headers, not the stream itself).
    pub request_timeout: Duration,
    /// How many inspects run at once while listing.
    pub list_concurrency: usize,
}

impl Default for PodmanConfig {
    fn default() -> Self {
        PodmanConfig {
            socket: PathBuf::from(DEFAULT_PODMAN_SOCKET),
            request_timeout: Duration::from_secs(5),
            list_concurrency: 8,
        }
    }
}

/// A client of podman's libpod REST API.
#[derive(Debug)]
pub struct PodmanClient {
    config: PodmanConfig,
    socket: PathBuf,
}

impl PodmanClient {
    pub fn new(config: PodmanConfig) -> Self {
        let s = config.socket.to_string_lossy();
        let socket = PathBuf::from(s.strip_prefix("unix://").unwrap_or(&s));
        PodmanClient { config, socket }
    }

    /// A client of the service at `socket`, other settings default.
    pub fn with_socket(socket: impl Into<PathBuf>) -> Self {
        Self::new(PodmanConfig { socket: socket.into(), ..Default::default() })
    }

    fn endpoint_str(&self) -> String {
        self.socket.display().to_string()
    }

    /// Send `GET <API><path>` on a new connection; the response body is read by
    /// the caller while the connection task runs.
    async fn get(&self, path: &str) -> Result<Response<Incoming>, Error> {
        let endpoint = self.endpoint_str();
        let connect_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            runtime: NAME,
            endpoint: endpoint.clone(),
            source,
        };
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| connect_err(Box::new(e)))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_err(Box::new(e)))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "podman connection closed");
            }
        });
        let uri = format!("{API}{path}");
        let req = Request::get(&uri)
            // Any host: the socket is the address.
            .header(hyper::header::HOST, "podman")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::Request { runtime: NAME, request: uri.clone(), source: Box::new(e) })?;
        sender.send_request(req).await.map_err(|e| Error::Request {
            runtime: NAME,
            request: uri,
            source: Box::new(e),
        })
    }

    /// `GET` and decode a JSON answer. A 404 is [`Error::NotFound`] for `id`.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        request: &str,
        path: &str,
        id: Option<&str>,
    ) -> Result<T, Error> {
        let fut = async {
            let resp = self.get(path).await?;
            let status = resp.status();
            let body = read_body(request, resp.into_body()).await?;
            if status == StatusCode::NOT_FOUND {
                if let Some(id) = id {
                    return Err(Error::NotFound { runtime: NAME, id: id.to_string() });
                }
            }
            if !status.is_success() {
                return Err(status_error(request, status, &body));
            }
            serde_json::from_slice(&body).map_err(|e| Error::Request {
                runtime: NAME,
                request: request.to_string(),
                source: format!("bad JSON answer: {e}").into(),
            })
        };
        tokio::time::timeout(self.config.request_timeout, fut).await.unwrap_or_else(|_| {
            Err(Error::Timeout {
                runtime: NAME,
                request: request.to_string(),
                timeout: self.config.request_timeout,
            })
        })
    }

    /// The whole libpod inspect answer (what an audit would check).
    pub async fn inspect_raw(&self, id: &str) -> Result<PodmanInspect, Error> {
        let request = format!("inspect {id}");
        let path = format!("/containers/{}/json", path_segment(id));
        self.get_json(&request, &path, Some(id)).await
    }

    /// A pod's name and labels.
    pub async fn inspect_pod(&self, pod_id: &str) -> Result<PodmanPod, Error> {
        let request = format!("inspect pod {pod_id}");
        let path = format!("/pods/{}/json", path_segment(pod_id));
        self.get_json(&request, &path, Some(pod_id)).await
    }

    pub async fn inspect_container(&self, id: &str) -> Result<Discovered, Error> {
        let resp = self.inspect_raw(id).await?;
        let pod = if resp.pod.is_empty() {
            None
        } else {
            match self.inspect_pod(&resp.pod).await {
                Ok(p) => Some(p),
                // Removed since; the pod id label is still set.
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            }
        };
        let mut d = discovered_from_inspect(&resp, pod.as_ref())
            .ok_or_else(|| Error::NotFound { runtime: NAME, id: id.to_string() })?;
        if !d.container.host_ipc {
            if let Some(pid) = d.pid {
                d.container.host_ipc = shares_own_namespace(pid, "ipc");
            }
        }
        Ok(d)
    }

    /// Ids of the running containers.
    pub async fn running_ids(&self) -> Result<Vec<String>, Error> {
        let list: Vec<ListEntry> = self.get_json("list", "/containers/json", None).await?;
        Ok(list.into_iter().map(|e| e.id).filter(|id| !id.is_empty()).collect())
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
        let filters = format!(
            r#"{{"type":["container"],"event":[{}]}}"#,
            EVENTS.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(",")
        );
        let path = format!("/events?stream=true&since={since_unix}&filters={}", query_escape(&filters));
        let resp =
            tokio::time::timeout(self.config.request_timeout, self.get(&path)).await.map_err(|_| {
                Error::Timeout {
                    runtime: NAME,
                    request: "events".into(),
                    timeout: self.config.request_timeout,
                }
            })??;
        let status = resp.status();
        if !status.is_success() {
            let body = read_body("events", resp.into_body()).await.unwrap_or_default();
            return Err(status_error("events", status, &body));
        }
        let frames = resp.into_body().into_data_stream();
        let lines = EventLines::default();
        let s = stream::unfold((frames, lines, false), |(mut frames, mut lines, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(line) = lines.next_line() {
                    match parse_event_line(&line) {
                        Some(ev) => return Some((Ok(ev), (frames, lines, false))),
                        None => continue,
                    }
                }
                match frames.next().await {
                    Some(Ok(chunk)) => lines.push(&chunk),
                    Some(Err(e)) => {
                        let err =
                            Error::Request { runtime: NAME, request: "events".into(), source: Box::new(e) };
                        return Some((Err(err), (frames, lines, true)));
                    }
                    None => return None,
                }
            }
        });
        Ok(s.boxed())
    }
}

impl RuntimeClient for PodmanClient {
    fn name(&self) -> &'static str {
        NAME
    }

    fn runtime(&self) -> Runtime {
        Runtime::Podman
    }

    fn endpoint(&self) -> String {
        self.endpoint_str()
    }

    fn handles(&self, runtime: Runtime) -> bool {
        runtime == Runtime::Podman
    }

    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        Box::pin(self.inspect_container(id))
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

async fn read_body(request: &str, body: Incoming) -> Result<Bytes, Error> {
    Limited::new(body, MAX_BODY).collect().await.map(|c| c.to_bytes()).map_err(|e| Error::Request {
        runtime: NAME,
        request: request.to_string(),
        source: format!("reading the answer: {e}").into(),
    })
}

/// A non-2xx answer: libpod's JSON error carries a `message`.
fn status_error(request: &str, status: StatusCode, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct ApiError {
        #[serde(default)]
        message: String,
    }
    let message = serde_json::from_slice::<ApiError>(body)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    Error::Request {
        runtime: NAME,
        request: request.to_string(),
        source: format!("status {status}: {}", message.trim()).into(),
    }
}

/// Percent-encode one URL path segment (container ids and names are
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, but the id may come from a cgroup path).
fn path_segment(s: &str) -> String {
    query_escape(s)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `/proc/<pid>/ns/<ns>` is the namespace this process is in; false
/// when either cannot be read.
fn shares_own_namespace(pid: u32, ns: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{ns}"));
    let ours = std::fs::metadata(format!("/proc/self/ns/{ns}"));
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Newline-delimited JSON from the event stream, bounded per line.
#[derive(Default)]
struct EventLines {
    buf: Vec<u8>,
    /// Inside a line that grew past [`MAX_EVENT_LINE`]: drop up to its end.
    skipping: bool,
    skipped: u64,
}

impl EventLines {
    fn push(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        if self.skipping {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.skipping = false;
                    rest = &rest[i + 1..];
                }
                None => return,
            }
        }
        self.buf.extend_from_slice(rest);
        // A line without its end yet that is already too long.
        let tail = self.buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if self.buf.len() - tail > MAX_EVENT_LINE {
            self.buf.truncate(tail);
            self.skipping = true;
            self.skip_one();
        }
    }

    fn next_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let i = self.buf.iter().position(|&b| b == b'\n')?;
            let mut line: Vec<u8> = self.buf.drain(..=i).collect();
            line.pop();
            // Completed within one chunk but still too long.
            if line.len() > MAX_EVENT_LINE {
                self.skip_one();
                continue;
            }
            return Some(line);
        }
    }

    fn skip_one(&mut self) {
        self.skipped += 1;
        warn!(skipped = self.skipped, limit = MAX_EVENT_LINE, "podman event longer than the limit skipped");
    }
}

/// Map one event line (`None` for blank lines, undecodable lines and events
/// rampart ignores).
fn parse_event_line(line: &[u8]) -> Option<RuntimeEvent> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<PodmanEvent>(line) {
        Ok(ev) => runtime_event_from_podman(&ev),
        Err(e) => {
            debug!(error = %e, "undecodable podman event skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1c4c47c0ade0ce6642903cc9ecff5ea5ca5aef562e4402f71d395ff8d9192a03";
    const POD: &str = "015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752";

    /// podman 4.3.1's answer for `podman run -d --name pm-probe --label a=b
    /// --cap-add NET_ADMIN --cap-drop CHOWN -v /etc:/host/etc:ro --user 1000:1000
    /// rampart-test:latest sleep 600`, trimmed (fields kept verbatim).
    const INSPECT_JSON: &str = r#"{
      "Id": "1c4c47c0ade0ce6642903cc9ecff5ea5ca5aef562e4402f71d395ff8d9192a03",
      "Created": "2026-11-28T17:55:25.444411719Z",
      "Path": "sleep", "Args": ["600"],
      "State": {"OciVersion": "1.0.2-dev", "Status": "running", "Running": true, "Paused": false,
                "Restarting": false, "OOMKilled": false, "Dead": false, "Pid": 22078, "ConmonPid": 22068,
                "ExitCode": 0, "Error": "", "StartedAt": "2026-11-28T17:55:25.681089137Z",
                "FinishedAt": "0001-01-01T00:00:00Z", "Health": {"Status": "", "FailingStreak": 0, "Log": null},
                "CgroupPath": "/libpod_parent/libpod-1c4c47c0ade0ce6642903cc9ecff5ea5ca5aef562e4402f71d395ff8d9192a03",
                "CheckpointedAt": "0001-01-01T00:00:00Z", "RestoredAt": "0001-01-01T00:00:00Z"},
      "Image": "ccb06ffa04d982f663c1a5b75317f02736508fc00f4009e2eac6fc37aa9bf257",
      "ImageDigest": "sha256:3ca79aa2768adea2b8b75f9d8b95265b2d0d3e056d521d045d80d1307b4c5a87",
      "ImageName": "localhost/rampart-test:latest",
      "Rootfs": "", "Pod": "",
      "Name": "pm-probe", "RestartCount": 0, "Driver": "overlay", "OCIRuntime": "runc",
      "EffectiveCaps": ["CAP_NET_ADMIN"],
      "BoundingCaps": ["CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_ADMIN",
                       "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                       "CAP_SYS_CHROOT"],
      "ExecIDs": [],
      "GraphDriver": {"Name": "overlay", "Data": {
          "LowerDir": "/var/lib/containers/storage/overlay/77d3ab1a0a821b5fbc083d5dc8ff49cafa012b17957053fab9fc33e1884448dd/diff",
          "MergedDir": "/var/lib/containers/storage/overlay/00d8ba87904b52b302e36a388f2b25d46c5428f1922e4f5f5e86c49bd842142f/merged",
          "UpperDir": "/var/lib/containers/storage/overlay/00d8ba87904b52b302e36a388f2b25d46c5428f1922e4f5f5e86c49bd842142f/diff",
          "WorkDir": "/var/lib/containers/storage/overlay/00d8ba87904b52b302e36a388f2b25d46c5428f1922e4f5f5e86c49bd842142f/work"}},
      "Mounts": [{"Type": "bind", "Source": "/etc", "Destination": "/host/etc", "Driver": "", "Mode": "",
                  "Options": ["rbind"], "RW": false, "Propagation": "rprivate"}],
      "Dependencies": [],
      "Namespace": "", "IsInfra": false, "IsService": false,
      "Config": {"Hostname": "1c4c47c0ade0", "Domainname": "", "User": "1000:1000",
                 "Env": ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=podman"],
                 "Cmd": ["sleep", "600"], "Image": "localhost/rampart-test:latest", "Volumes": null,
                 "WorkingDir": "/", "Entrypoint": "", "OnBuild": null,
                 "Labels": {"a": "b", "rampart.test.hash": "2c0ce15ce420b807"},
                 "Annotations": {"io.container.manager": "libpod", "io.podman.annotations.privileged": "FALSE"},
                 "StopSignal": 15},
      "HostConfig": {"Binds": ["/etc:/host/etc:ro,rprivate,rbind"], "CgroupManager": "cgroupfs",
                     "CgroupMode": "host", "NetworkMode": "bridge",
                     "CapAdd": ["CAP_NET_ADMIN"], "CapDrop": ["CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_MKNOD", "CAP_NET_RAW"],
                     "Dns": [], "IpcMode": "shareable", "Cgroup": "", "Cgroups": "default", "Links": null,
                     "PidMode": "private", "Privileged": false, "UTSMode": "private", "UsernsMode": "",
                     "CgroupParent": "", "PidsLimit": 2048,
                     "Ulimits": [{"Name": "RLIMIT_NOFILE", "Soft": 20000, "Hard": 20000}]}
    }"#;

    /// A container in a pod with an infra container (`podman pod create --name
    /// pm-pod2 --label tier=db --infra-image rampart.local/pause:latest; podman run
    /// --pod pm-pod2 ...`), trimmed.
    const IN_POD_JSON: &str = r#"{"Id": "3ab63f6cd4f55d906831b1ca96fff5fbe7507abefcb27bc27360212c0cf2aedd",
      "Name": "pm-inpod2", "Image": "ccb06ffa04d982f663c1a5b75317f02736508fc00f4009e2eac6fc37aa9bf257",
      "ImageName": "localhost/rampart-test:latest",
      "Pod": "015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752", "Mounts": [],
      "State": {"Status": "running", "Running": true, "Pid": 30980, "ConmonPid": 30965,
                "CgroupPath": "/libpod_parent/015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752/libpod-3ab63f6cd4f55d906831b1ca96fff5fbe7507abefcb27bc27360212c0cf2aedd"},
      "Config": {"User": "", "Image": "localhost/rampart-test:latest", "Labels": {"rampart.test.hash": "2c0ce15ce420b807",
                 "io.podman.pod.name": "spoofed"}},
      "HostConfig": {"CapAdd": [], "CapDrop": ["CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"], "Privileged": false,
                     "PidMode": "private",
                     "NetworkMode": "container:acef073940b4ec9f93b96abc800ca22621a1ffe823b5bffb980ff2ad07a4b983",
                     "IpcMode": "container:acef073940b4ec9f93b96abc800ca22621a1ffe823b5bffb980ff2ad07a4b983",
                     "CgroupParent": "/libpod_parent/015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752"}}"#;

    const POD_JSON: &str = r#"{"Id": "015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752",
      "Name": "pm-pod2", "Created": "2026-11-28T18:01:02.1Z", "ExitPolicy": "continue", "State": "Running",
      "Labels": {"tier": "db"}, "CreateCgroup": true, "CgroupParent": "/libpod_parent",
      "CgroupPath": "/libpod_parent/015450beb2cb8bc9a1a480dec909a7675c08883aa1f1f7ed0abaab53ef619752",
      "CreateInfra": true, "NumContainers": 2, "Containers": null}"#;

    #[test]
    fn entrypoint_is_read_from_podman_4_strings_and_podman_5_lists() {
        let v4: InspectConfig =
            serde_json::from_str(r#"{"Entrypoint": "/bin/sh -c", "Cmd": ["sleep 5"], "WorkingDir": "/tmp"}"#)
                .unwrap();
        assert_eq!(v4.entrypoint, ["/bin/sh", "-c"]);
        assert_eq!(v4.cmd, ["sleep 5"]);
        assert_eq!(v4.working_dir, "/tmp");
        let v5: InspectConfig =
            serde_json::from_str(r#"{"Entrypoint": ["/bin/sh", "-c"], "Cmd": null}"#).unwrap();
        assert_eq!(v5.entrypoint, ["/bin/sh", "-c"]);
        assert!(v5.cmd.is_empty());
        let none: InspectConfig = serde_json::from_str(r#"{"Entrypoint": null}"#).unwrap();
        assert!(none.entrypoint.is_empty());
        let real: PodmanInspect = serde_json::from_str(INSPECT_JSON).unwrap();
        assert!(real.config.entrypoint.is_empty());
        assert_eq!(real.config.cmd, ["sleep", "600"]);
    }

    #[test]
    fn maps_real_inspect_json() {
        let resp: PodmanInspect = serde_json::from_str(INSPECT_JSON).unwrap();
        let d = discovered_from_inspect(&resp, None).unwrap();
        assert_eq!(d.pid, Some(22078));
        let c = d.container;
        assert_eq!(c.id, ID);
        assert_eq!(c.runtime, Some(Runtime::Podman));
        assert_eq!(c.name, "pm-probe");
        assert_eq!(c.image, "localhost/rampart-test:latest");
        assert_eq!(c.image_id, "sha256:ccb06ffa04d982f663c1a5b75317f02736508fc00f4009e2eac6fc37aa9bf257");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.labels.get("a").map(String::as_str), Some("b"));
        assert!(!c.labels.contains_key(LABEL_PODMAN_POD_ID));
        assert!(!c.privileged);
        assert_eq!(c.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(c.cap_drop, vec!["AUDIT_WRITE", "CHOWN", "MKNOD", "NET_RAW"]);
        assert_eq!(
            c.mounts,
            vec![Mount {
                source: "/etc".into(),
                destination: "/host/etc".into(),
                read_only: true,
                propagation: "rprivate".into(),
                mode: "rbind".into(),
            }]
        );
        assert!(!c.host_pid && !c.host_network && !c.host_ipc);
        assert_eq!(c.cgroup_path, format!("/libpod_parent/libpod-{ID}"));
        assert!(c.upper_dir.as_deref().is_some_and(|u| u.ends_with("842142f/diff")));
        assert_eq!((c.pod_name, c.pod_namespace, c.pod_uid), (None, None, None));
        assert!(c.pod_labels.is_empty());
    }

    #[test]
    fn pod_goes_to_labels_not_k8s_fields() {
        let resp: PodmanInspect = serde_json::from_str(IN_POD_JSON).unwrap();
        let pod: PodmanPod = serde_json::from_str(POD_JSON).unwrap();
        let c = container_from_inspect(&resp, Some(&pod)).unwrap();
        assert_eq!(c.labels.get(LABEL_PODMAN_POD_ID).map(String::as_str), Some(POD));
        assert_eq!(c.labels.get(LABEL_PODMAN_POD_NAME).map(String::as_str), Some("pm-pod2"), "podman wins");
        assert_eq!(c.pod_name, None);
        assert!(c.pod_labels.is_empty());
        assert!(c.cgroup_path.starts_with(&format!("/libpod_parent/{POD}/libpod-")));
        // network/ipc joined from the infra container: not the host's
        assert!(!c.host_network && !c.host_ipc);
        // pod gone (404): the id stays, the (user-given) name goes
        let c = container_from_inspect(&resp, None).unwrap();
        assert_eq!(c.labels.get(LABEL_PODMAN_POD_ID).map(String::as_str), Some(POD));
        assert!(!c.labels.contains_key(LABEL_PODMAN_POD_NAME));
        // another pod's answer is not used
        let other = PodmanPod { id: "ff".repeat(32), name: "other".into(), ..Default::default() };
        let c = container_from_inspect(&resp, Some(&other)).unwrap();
        assert!(!c.labels.contains_key(LABEL_PODMAN_POD_NAME));
    }

    #[test]
    fn privileged_host_namespaces_and_k8s_labels() {
        let json = format!(
            r#"{{"Id": "{ID}", "Name": "pm-priv", "ImageName": "", "Image": "notahexid",
              "State": {{"Running": false, "Pid": 0, "CgroupPath": "/libpod_parent/libpod-{POD}"}},
              "Config": {{"Image": "docker.io/library/busybox:latest", "Labels": {{
                  "io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod",
                  "io.kubernetes.pod.uid": ""}}}},
              "HostConfig": {{"Privileged": true, "CapAdd": null, "CapDrop": ["CAP_SYS_RESOURCE"],
                  "PidMode": "host", "NetworkMode": "host", "IpcMode": "host"}},
              "Mounts": null, "GraphDriver": null}}"#
        );
        let resp: PodmanInspect = serde_json::from_str(&json).unwrap();
        let d = discovered_from_inspect(&resp, None).unwrap();
        assert_eq!(d.pid, None, "not running");
        let c = d.container;
        assert!(c.privileged);
        assert!(c.cap_add.is_empty());
        assert_eq!(c.cap_drop, vec!["SYS_RESOURCE"]);
        assert!(c.host_pid && c.host_network && c.host_ipc);
        assert_eq!(c.image, "docker.io/library/busybox:latest", "Config.Image when ImageName is empty");
        assert_eq!(c.image_id, "notahexid");
        assert_eq!(c.pod_name.as_deref(), Some("web-0"));
        assert_eq!(c.pod_namespace.as_deref(), Some("prod"));
        assert_eq!(c.pod_uid, None, "empty label is no uid");
        assert_eq!(c.cgroup_path, "", "a cgroup path naming another container is not kept");
        assert!(c.mounts.is_empty() && c.upper_dir.is_none());
    }

    #[test]
    fn no_id_is_no_container() {
        assert!(container_from_inspect(&PodmanInspect::default(), None).is_none());
        let resp: PodmanInspect = serde_json::from_str(r#"{"Id": null, "Name": "x"}"#).unwrap();
        assert!(container_from_inspect(&resp, None).is_none());
    }

    /// Lines as podman 4.3.1 streams them (labels trimmed).
    const EVENTS_NDJSON: &str = concat!(
        r#"{"status":"pull","Type":"image","Action":"pull","Actor":{"ID":"","Attributes":{"name":"rampart-test:latest"}},"scope":"local","time":1795888549,"timeNano":1795888549573268787}"#,
        "\n",
        r#"{"status":"create","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","from":"localhost/rampart-test:latest","Type":"container","Action":"create","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{"containerExitCode":"0","image":"localhost/rampart-test:latest","name":"pm-ev","podId":"","x":"y"}},"scope":"local","time":1795888549,"timeNano":1795888549683511065}"#,
        "\n",
        r#"{"status":"start","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","from":"localhost/rampart-test:latest","Type":"container","Action":"start","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{"name":"pm-ev","podId":""}},"scope":"local","time":1795888549,"timeNano":1795888549915992004}"#,
        "\n",
        r#"{"status":"rename","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","from":"localhost/rampart-test:latest","Type":"container","Action":"rename","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{"name":"pm-ev2"}},"scope":"local","time":1795888549,"timeNano":1795888549968156537}"#,
        "\n",
        r#"{"status":"exec_died","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Type":"container","Action":"exec_died","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{}},"time":1795888550}"#,
        "\n",
        r#"{"status":"died","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Type":"container","Action":"died","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{"containerExitCode":"137"}},"time":1795888551}"#,
        "\n",
        r#"{"status":"cleanup","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Type":"container","Action":"cleanup","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{}},"time":1795888551}"#,
        "\n",
        r#"{"status":"remove","id":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Type":"container","Action":"remove","Actor":{"ID":"39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe","Attributes":{}},"time":1795888551}"#,
        "\n",
    );

    fn events_of(chunks: &[&[u8]]) -> Vec<RuntimeEvent> {
        let mut lines = EventLines::default();
        let mut out = Vec::new();
        for c in chunks {
            lines.push(c);
            while let Some(l) = lines.next_line() {
                out.extend(parse_event_line(&l));
            }
        }
        out
    }

    #[test]
    fn maps_event_stream() {
        let id = "39f0744a91c8a7e464b058e5590749ad829f52d7bda4b6eed1a1feb1987e26fe".to_string();
        let want = vec![
            RuntimeEvent::Started { id: id.clone() },
            RuntimeEvent::Changed { id: id.clone() },
            RuntimeEvent::Died { id: id.clone() },
            RuntimeEvent::Destroyed { id: id.clone() },
        ];
        assert_eq!(events_of(&[EVENTS_NDJSON.as_bytes()]), want);
        // split at every possible place, including inside lines
        let bytes = EVENTS_NDJSON.as_bytes();
        for at in [1, 7, 100, 333, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(events_of(&[&bytes[..at], &bytes[at..]]), want, "split at {at}");
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(events_of(&one_by_one), want);
    }

    #[test]
    fn event_fallbacks_and_junk() {
        let ev: PodmanEvent = serde_json::from_str(r#"{"status":"died","id":"abc"}"#).unwrap();
        assert_eq!(runtime_event_from_podman(&ev), Some(RuntimeEvent::Died { id: "abc".into() }));
        let ev: PodmanEvent =
            serde_json::from_str(r#"{"Type":"pod","Action":"start","Actor":{"ID":"p"}}"#).unwrap();
        assert_eq!(runtime_event_from_podman(&ev), None);
        let ev: PodmanEvent =
            serde_json::from_str(r#"{"Type":"container","Action":"start","Actor":null}"#).unwrap();
        assert_eq!(runtime_event_from_podman(&ev), None, "no id");
        // undecodable and blank lines are skipped, later lines still count
        let got = events_of(&[
            b"not json\n\n  \n{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"x\"}}\n",
        ]);
        assert_eq!(got, vec![RuntimeEvent::Started { id: "x".into() }]);
    }

    #[test]
    fn overlong_event_line_is_skipped_not_fatal() {
        let huge = format!(
            "{{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{{\"ID\":\"big\",\"Attributes\":{{\"l\":\"{}\"}}}}}}\n",
            "x".repeat(MAX_EVENT_LINE + 10)
        );
        let after = b"{\"Type\":\"container\",\"Action\":\"died\",\"Actor\":{\"ID\":\"small\"}}\n";
        let mut lines = EventLines::default();
        let mut out = Vec::new();
        for chunk in huge.as_bytes().chunks(64 * 1024).chain(std::iter::once(&after[..])) {
            lines.push(chunk);
            while let Some(l) = lines.next_line() {
                out.extend(parse_event_line(&l));
            }
            assert!(lines.buf.len() <= MAX_EVENT_LINE + 64 * 1024, "buffer bounded");
        }
        assert_eq!(out, vec![RuntimeEvent::Died { id: "small".into() }]);
        assert_eq!(lines.skipped, 1);
        // the same line arriving whole
        let mut whole = huge.into_bytes();
        whole.extend_from_slice(after);
        assert_eq!(events_of(&[&whole]), vec![RuntimeEvent::Died { id: "small".into() }]);
    }

    #[test]
    fn escapes() {
        assert_eq!(query_escape(r#"{"type":["container"]}"#), "%7B%22type%22%3A%5B%22container%22%5D%7D");
        assert_eq!(path_segment("a/../b c"), "a%2F..%2Fb%20c");
        assert_eq!(path_segment(ID), ID);
        assert_eq!(docker_cap("CAP_SYS_ADMIN"), "SYS_ADMIN");
        assert_eq!(docker_cap("all"), "ALL");
        assert_eq!(docker_cap("net_raw"), "NET_RAW");
    }

    #[tokio::test]
    async fn absent_socket_is_a_connect_error() {
        let c = PodmanClient::with_socket("unix:///nonexistent/rampart-podman.sock");
        assert_eq!(c.endpoint(), "/nonexistent/rampart-podman.sock");
        let err = c.inspect_container(ID).await.unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(err.is_unreachable());
        assert!(err.to_string().contains("/nonexistent/rampart-podman.sock"), "{err}");
        assert!(c.event_stream(0).await.is_err());
    }

    #[test]
    fn own_namespace_check() {
        assert!(shares_own_namespace(std::process::id(), "ipc"));
        assert!(!shares_own_namespace(u32::MAX, "ipc"));
    }
}

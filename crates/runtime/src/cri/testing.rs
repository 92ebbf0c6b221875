//! Drive a CRI runtime from tests the way the kubelet does: a pod sandbox, then
//! containers in it, then teardown. Used by rampart's own live and end-to-end
//! tests (feature `testing`); speaks the CRI through the same stubs as
//! [`CriClient`](super::CriClient).

use super::{connect_channel, cri, RuntimeServiceClient, CONTAINERD_CRI_NAMESPACE, MAX_MESSAGE};
use crate::Error;
use cri::image_service_client::ImageServiceClient;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tonic::transport::Channel;

const NAME: &str = "cri-testing";
const TIMEOUT: Duration = Duration::from_secs(60);

/// The pod sandbox image scripts/containerd.sh configures.
pub const PAUSE_IMAGE: &str = "rampart.local/pause:latest";

fn req_err(request: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Request { runtime: NAME, request: request.into(), source: source.into() }
}

/// A fresh pod uid (UUID form, unique per process and call).
pub fn new_pod_uid() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        t.as_secs() as u32,
        std::process::id() & 0xffff,
        n & 0xfff,
        t.subsec_nanos() & 0xfff,
        (u64::from(t.subsec_nanos()) << 16) ^ u64::from(n)
    )
}

/// A pod as the kubelet would ask for it.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The pod's labels (the kubelet's `io.kubernetes.pod.*` are added).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `/kubepods/besteffort/pod<uid>` by default, as the kubelet's cgroupfs driver names it.
    pub cgroup_parent: String,
    /// Share the host's network namespace (no CNI needed).
    pub host_network: bool,
    /// Share the host's PID namespace (`hostPID: true`).
    pub host_pid: bool,
    /// Where the runtime writes the containers' logs (`<dir>/<name>.log`, CRI
    /// log format); none when unset.
    pub log_directory: Option<PathBuf>,
}

impl PodSpec {
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> PodSpec {
        let uid = new_pod_uid();
        PodSpec {
            name: name.into(),
            namespace: namespace.into(),
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            uid,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            host_network: true,
            host_pid: false,
            log_directory: None,
        }
    }

    fn kubelet_labels(&self) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = self.labels.clone().into_iter().collect();
        l.insert(super::LABEL_POD_NAME.into(), self.name.clone());
        l.insert(super::LABEL_POD_NAMESPACE.into(), self.namespace.clone());
        l.insert(super::LABEL_POD_UID.into(), self.uid.clone());
        l
    }

    fn namespace_options(&self) -> cri::NamespaceOption {
        cri::NamespaceOption {
            network: if self.host_network { cri::NamespaceMode::Node } else { cri::NamespaceMode::Pod }
                as i32,
            pid: if self.host_pid { cri::NamespaceMode::Node } else { cri::NamespaceMode::Container } as i32,
            ipc: cri::NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }

    fn config(&self) -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            // runc refuses a hostname in the host's UTS namespace (host network).
            hostname: if self.host_network { String::new() } else { self.name.clone() },
            labels: self.kubelet_labels(),
            annotations: self.annotations.clone().into_iter().collect(),
            log_directory: self.log_directory.as_ref().map(|d| d.display().to_string()).unwrap_or_default(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(self.namespace_options()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// A container of a pod.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The name within the pod.
    pub name: String,
    /// The image as a pod spec names it (`rampart-test:latest`).
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub mounts: Vec<MountSpec>,
    /// Capabilities to add and drop (`NET_ADMIN`, `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `readOnlyRootFilesystem`.
    pub readonly_rootfs: bool,
    /// `allowPrivilegeEscalation: false`.
    pub no_new_privs: bool,
    /// `runAsUser`, `runAsGroup`.
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
}

/// A host path mounted into a container.
#[derive(Debug, Clone)]
pub struct MountSpec {
    pub host_path: String,
    pub container_path: String,
    pub readonly: bool,
}

impl ContainerSpec {
    pub fn new(name: impl Into<String>, image: impl Into<String>, command: &[&str]) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            mounts: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            env: Vec::new(),
            readonly_rootfs: false,
            no_new_privs: false,
            run_as_user: None,
            run_as_group: None,
        }
    }
}

/// A running pod sandbox; removed (with its containers) by [`TestPod::remove`],
/// or on drop as a last resort.
pub struct TestPod {
    socket: PathBuf,
    client: RuntimeServiceClient<Channel>,
    pub spec: PodSpec,
    pub sandbox_id: String,
    config: cri::PodSandboxConfig,
    removed: bool,
}

impl std::fmt::Debug for TestPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPod")
            .field("name", &self.spec.name)
            .field("sandbox_id", &self.sandbox_id)
            .finish()
    }
}

async fn client(socket: &Path) -> Result<RuntimeServiceClient<Channel>, Error> {
    Ok(RuntimeServiceClient::new(connect_channel(socket, TIMEOUT).await?)
        .max_decoding_message_size(MAX_MESSAGE))
}

impl TestPod {
    /// `RunPodSandbox` (the runtime starts the pause container).
    pub async fn run(socket: &Path, spec: PodSpec) -> Result<TestPod, Error> {
        let mut client = client(socket).await?;
        let config = spec.config();
        let sandbox_id = client
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(|s| req_err(format!("run pod sandbox {}", spec.name), s))?
            .into_inner()
            .pod_sandbox_id;
        Ok(TestPod { socket: socket.to_path_buf(), client, spec, sandbox_id, config, removed: false })
    }

    /// `CreateContainer` + `StartContainer`; returns the container id.
    pub async fn start_container(&mut self, c: &ContainerSpec) -> Result<String, Error> {
        // The kubelet's labels on a container: the pod's identity, not its labels.
        let mut labels: HashMap<String, String> = c.labels.clone().into_iter().collect();
        labels.insert(super::LABEL_POD_NAME.into(), self.spec.name.clone());
        labels.insert(super::LABEL_POD_NAMESPACE.into(), self.spec.namespace.clone());
        labels.insert(super::LABEL_POD_UID.into(), self.spec.uid.clone());
        labels.insert(super::LABEL_CONTAINER_NAME.into(), c.name.clone());
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata { name: c.name.clone(), attempt: 0 }),
            image: Some(cri::ImageSpec {
                image: c.image.clone(),
                user_specified_image: c.image.clone(),
                ..Default::default()
            }),
            command: c.command.clone(),
            args: c.args.clone(),
            envs: c.env.iter().map(|(k, v)| cri::KeyValue { key: k.clone(), value: v.clone() }).collect(),
            log_path: if self.spec.log_directory.is_some() {
                format!("{}.log", c.name)
            } else {
                String::new()
            },
            labels,
            annotations: c.annotations.clone().into_iter().collect(),
            mounts: c
                .mounts
                .iter()
                .map(|m| cri::Mount {
                    host_path: m.host_path.clone(),
                    container_path: m.container_path.clone(),
                    readonly: m.readonly,
                    ..Default::default()
                })
                .collect(),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(self.spec.namespace_options()),
                    capabilities: (!c.cap_add.is_empty() || !c.cap_drop.is_empty()).then(|| {
                        cri::Capability {
                            add_capabilities: c.cap_add.clone(),
                            drop_capabilities: c.cap_drop.clone(),
                            ..Default::default()
                        }
                    }),
                    readonly_rootfs: c.readonly_rootfs,
                    no_new_privs: c.no_new_privs,
                    run_as_user: c.run_as_user.map(|value| cri::Int64Value { value }),
                    run_as_group: c.run_as_group.map(|value| cri::Int64Value { value }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .client
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: self.sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .map_err(|s| req_err(format!("create container {} in {}", c.name, self.spec.name), s))?
            .into_inner()
            .container_id;
        self.client
            .start_container(cri::StartContainerRequest { container_id: id.clone() })
            .await
            .map_err(|s| req_err(format!("start container {id}"), s))?;
        Ok(id)
    }

    /// `ExecSync`: run `cmd` in the container and wait for it.
    pub async fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<cri::ExecSyncResponse, Error> {
        Ok(self
            .client
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.to_string(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: timeout.as_secs().max(1) as i64,
            })
            .await
            .map_err(|s| req_err(format!("exec sync {cmd:?} in {id}"), s))?
            .into_inner())
    }

    /// `StopContainer` (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_container(&mut self, id: &str, grace: Duration) -> Result<(), Error> {
        self.client
            .stop_container(cri::StopContainerRequest {
                container_id: id.to_string(),
                timeout: grace.as_secs() as i64,
            })
            .await
            .map_err(|s| req_err(format!("stop container {id}"), s))?;
        Ok(())
    }

    /// The container's exit code once it has exited, `None` while it runs.
    pub async fn exit_code(&mut self, id: &str) -> Result<Option<i32>, Error> {
        let status = self
            .client
            .container_status(cri::ContainerStatusRequest { container_id: id.to_string(), verbose: false })
            .await
            .map_err(|s| req_err(format!("container status {id}"), s))?
            .into_inner()
            .status
            .ok_or_else(|| req_err(format!("container status {id}"), "no status"))?;
        let exited = status.state == cri::ContainerState::ContainerExited as i32;
        Ok(exited.then_some(status.exit_code))
    }

    pub async fn remove_container(&mut self, id: &str) -> Result<(), Error> {
        self.client
            .remove_container(cri::RemoveContainerRequest { container_id: id.to_string() })
            .await
            .map_err(|s| req_err(format!("remove container {id}"), s))?;
        Ok(())
    }

    /// `StopPodSandbox` + `RemovePodSandbox` (which removes its containers).
    pub async fn remove(mut self) -> Result<(), Error> {
        self.removed = true;
        remove_sandbox(&mut self.client, &self.sandbox_id).await
    }
}

async fn remove_sandbox(client: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), Error> {
    client
        .stop_pod_sandbox(cri::StopPodSandboxRequest { pod_sandbox_id: id.to_string() })
        .await
        .map_err(|s| req_err(format!("stop pod sandbox {id}"), s))?;
    client
        .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id.to_string() })
        .await
        .map_err(|s| req_err(format!("remove pod sandbox {id}"), s))?;
    Ok(())
}

impl Drop for TestPod {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // A test failed before teardown: remove the pod from a thread with its own
        // runtime (drop may run inside an async context, which must not block).
        let socket = self.socket.clone();
        let id = self.sandbox_id.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut c = client(&socket).await.ok()?;
                if let Err(e) = remove_sandbox(&mut c, &id).await {
                    eprintln!("cri testing: could not remove pod sandbox {id}: {e}");
                }
                Some(())
            })
        })
        .join();
    }
}

/// The id of `image` in the runtime's image store (`None` when absent).
pub async fn image_id(socket: &Path, image: &str) -> Result<Option<String>, Error> {
    let mut images = ImageServiceClient::new(connect_channel(socket, TIMEOUT).await?);
    let resp = images
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec { image: image.to_string(), ..Default::default() }),
            verbose: false,
        })
        .await
        .map_err(|s| req_err(format!("image status {image}"), s))?
        .into_inner();
    Ok(resp.image.map(|i| i.id).filter(|i| !i.is_empty()))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, Error> {
    let out = cmd.output().map_err(|e| req_err(what, e))?;
    if !out.status.success() {
        return Err(req_err(
            what,
            format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Make the CRI runtime at `socket` (containerd) hold the sandbox image
/// (tests/image/pause.sh) and the Docker image `docker_image` (imported into
/// containerd's `k8s.io` namespace when missing or older than Docker's).
pub async fn ensure_images(socket: &Path, docker_image: &str) -> Result<(), Error> {
    // Tests of one binary run concurrently: one import at a time.
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE.lock().await;
    let script = repo_root().join("tests/image/pause.sh");
    run(
        Command::new(&script).env("RAMPART_CONTAINERD_SOCK", socket).stdout(Stdio::null()),
        &script.display().to_string(),
    )?;
    let want = run(
        Command::new(docker_bin()).env("DOCKER_API_VERSION", "1.41").args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            docker_image,
        ]),
        &format!("docker image inspect {docker_image} (tests/image/build.sh builds it)"),
    )?;
    if image_id(socket, docker_image).await?.as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let what = format!("docker save {docker_image} | ctr -n {CONTAINERD_CRI_NAMESPACE} images import -");
    let sh = format!(
        "set -o pipefail; DOCKER_API_VERSION=1.41 {} save {docker_image} | ctr --address {} -n {CONTAINERD_CRI_NAMESPACE} images import -",
        docker_bin(),
        socket.display()
    );
    run(Command::new("bash").args(["-c", &sh]), &what)?;
    match image_id(socket, docker_image).await? {
        Some(id) if id == want => Ok(()),
        got => Err(req_err(what, format!("imported, but the runtime has {got:?}, not {want}"))),
    }
}

//! The runtime actions rampart takes through the Docker Engine API: stop,
//! pause, unpause, through the runtime crate's [`runtime::DockerClient`] (one
//! bollard client for the whole agent; it negotiates the API version, dockerd
//! 20.10 speaks 1.41).

use crate::Error;
use runtime::{DockerClient, DockerConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A connection to dockerd for actions.
#[derive(Debug, Clone)]
pub struct DockerActions {
    docker: Arc<DockerClient>,
}

/// The runtime client's error as this crate's `Docker` error; a failed request
/// keeps the daemon's own message.
fn docker_err(request: &'static str, id: &str, e: runtime::Error) -> Error {
    let message = match e {
        runtime::Error::Request { source, .. } => source.to_string(),
        e => e.to_string(),
    };
    Error::Docker { request, id: id.to_string(), message }
}

impl DockerActions {
    /// Connect to the daemon at `socket`; requests time out after `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<DockerActions, Error> {
        let docker = DockerClient::new(DockerConfig {
            socket: socket.to_path_buf(),
            request_timeout: timeout,
            ..Default::default()
        });
        docker.connect_now().await.map_err(|e| {
            let request = if matches!(e, runtime::Error::Connect { .. }) { "connect" } else { "version" };
            docker_err(request, &socket.display().to_string(), e)
        })?;
        Ok(DockerActions { docker: Arc::new(docker) })
    }

    /// `docker stop -t SECS`: SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), Error> {
        self.docker.stop(id, grace).await.map_err(|e| docker_err("stop", id, e))
    }

    pub async fn pause(&self, id: &str) -> Result<(), Error> {
        self.docker.pause(id).await.map_err(|e| docker_err("pause", id, e))
    }

    pub async fn unpause(&self, id: &str) -> Result<(), Error> {
        self.docker.unpause(id).await.map_err(|e| docker_err("unpause", id, e))
    }

    /// Whether Docker has the container paused (its own state, `docker pause`).
    pub async fn is_paused(&self, id: &str) -> Result<bool, Error> {
        self.docker.is_paused(id).await.map_err(|e| docker_err("inspect", id, e))
    }
}

//! The runtime actions rampart takes through the Docker Engine API: stop,
//! pause, unpause (bollard over the unix socket; the API version is
//! negotiated, dockerd 20.10 speaks 1.41).

use crate::Error;
use bollard::container::{InspectContainerOptions, StopContainerOptions};
use bollard::{Docker, API_DEFAULT_VERSION};
use std::path::Path;
use std::time::Duration;

/// A connection to dockerd for actions.
#[derive(Debug, Clone)]
pub struct DockerActions {
    docker: Docker,
}

fn docker_err(request: &'static str, id: &str, e: impl std::fmt::Display) -> Error {
    Error::Docker { request, id: id.to_string(), message: e.to_string() }
}

impl DockerActions {
    /// Connect to the daemon at `socket`; requests time out after `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<DockerActions, Error> {
        let endpoint = socket.display().to_string();
        let d = Docker::connect_with_unix(&endpoint, timeout.as_secs().max(1), API_DEFAULT_VERSION)
            .map_err(|e| docker_err("connect", &endpoint, e))?;
        let d = tokio::time::timeout(timeout, d.negotiate_version())
            .await
            .map_err(|_| docker_err("version", &endpoint, "timed out"))?
            .map_err(|e| docker_err("version", &endpoint, e))?;
        Ok(DockerActions { docker: d })
    }

    /// `docker stop -t SECS`: SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), Error> {
        let t = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        self.docker
            .stop_container(id, Some(StopContainerOptions { t }))
            .await
            .map_err(|e| docker_err("stop", id, e))
    }

    pub async fn pause(&self, id: &str) -> Result<(), Error> {
        self.docker.pause_container(id).await.map_err(|e| docker_err("pause", id, e))
    }

    pub async fn unpause(&self, id: &str) -> Result<(), Error> {
        self.docker.unpause_container(id).await.map_err(|e| docker_err("unpause", id, e))
    }

    /// Whether Docker has the container paused (its own state, `docker pause`).
    pub async fn is_paused(&self, id: &str) -> Result<bool, Error> {
        let r = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| docker_err("inspect", id, e))?;
        Ok(r.state.and_then(|s| s.paused).unwrap_or(false))
    }
}

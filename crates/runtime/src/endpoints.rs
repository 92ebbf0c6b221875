//! Which runtimes rampart talks to, and where their API sockets are.
//!
//! Each runtime's endpoint is `auto` (its usual socket, used when it exists when
//! rampart starts), `off`, or a socket path (always used: rampart reports it
//! unreachable and keeps retrying until the runtime answers). Docker's `auto`
//! is always used, so an agent started before dockerd still follows it.

use crate::client::RuntimeClient;
use crate::containerd::{ContainerdClient, ContainerdConfig, DEFAULT_CONTAINERD_SOCKET};
use crate::cri::{CriClient, CriConfig, DEFAULT_CRIO_SOCKET};
use crate::docker::{DockerClient, DockerConfig, DEFAULT_DOCKER_SOCKET};
use crate::podman::{PodmanClient, PodmanConfig, DEFAULT_PODMAN_SOCKET};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// Where one runtime's API is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Endpoint {
    /// The runtime's usual socket paths, when one exists.
    #[default]
    Auto,
    /// Do not talk to this runtime.
    Off,
    /// This socket, whether or not it exists yet.
    Socket(PathBuf),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err("empty runtime endpoint: give auto, off or a socket path".into()),
            "auto" => Ok(Endpoint::Auto),
            "off" => Ok(Endpoint::Off),
            path => {
                let path = path.strip_prefix("unix://").unwrap_or(path);
                if !path.starts_with('/') {
                    return Err(format!(
                        "runtime endpoint {path:?}: give auto, off or an absolute socket path"
                    ));
                }
                Ok(Endpoint::Socket(PathBuf::from(path)))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// containerd's socket; it also serves the CRI API when its CRI plugin is on.
pub const CONTAINERD_SOCKETS: &[&str] = &[DEFAULT_CONTAINERD_SOCKET, "/run/k3s/containerd/containerd.sock"];
/// CRI-O's socket.
pub const CRIO_SOCKETS: &[&str] = &[DEFAULT_CRIO_SOCKET];
/// Rootful podman's API socket (`podman system service`, or podman.socket).
pub const PODMAN_SOCKETS: &[&str] = &[DEFAULT_PODMAN_SOCKET];

/// The runtime endpoints rampart uses (config section `runtimes:`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeEndpoints {
    /// Set from the config's `docker_socket` (not a key of this section).
    #[serde(skip)]
    pub docker: Endpoint,
    pub containerd: Endpoint,
    pub crio: Endpoint,
    pub podman: Endpoint,
}

impl Default for RuntimeEndpoints {
    fn default() -> Self {
        RuntimeEndpoints {
            docker: Endpoint::Auto,
            containerd: Endpoint::Auto,
            crio: Endpoint::Auto,
            podman: Endpoint::Auto,
        }
    }
}

/// Which API a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Docker,
    Containerd,
    /// The Kubernetes CRI, served by containerd's CRI plugin or CRI-O.
    Cri,
    Podman,
}

impl RuntimeEndpoints {
    /// Only Docker, at `socket` (what the commands that predate the other
    /// runtimes were given).
    pub fn docker_only(socket: impl Into<PathBuf>) -> Self {
        RuntimeEndpoints {
            docker: Endpoint::Socket(socket.into()),
            containerd: Endpoint::Off,
            crio: Endpoint::Off,
            podman: Endpoint::Off,
        }
    }

    /// The (API, socket) pairs to connect to, in the order the registry asks
    /// them: on a containerd socket the CRI client comes first, because it knows
    /// the pod of the containers in containerd's `k8s.io` namespace.
    pub fn resolve(&self, exists: &dyn Fn(&Path) -> bool) -> Vec<(Api, PathBuf)> {
        let pick = |ep: &Endpoint, usual: &[&str], always: bool| -> Option<PathBuf> {
            match ep {
                Endpoint::Off => None,
                Endpoint::Socket(p) => Some(p.clone()),
                Endpoint::Auto => usual
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| exists(p))
                    .or_else(|| always.then(|| PathBuf::from(usual[0]))),
            }
        };
        let mut out = Vec::new();
        if let Some(p) = pick(&self.docker, &[DEFAULT_DOCKER_SOCKET], true) {
            out.push((Api::Docker, p));
        }
        if let Some(p) = pick(&self.containerd, CONTAINERD_SOCKETS, false) {
            out.push((Api::Cri, p.clone()));
            out.push((Api::Containerd, p));
        }
        if let Some(p) = pick(&self.crio, CRIO_SOCKETS, false) {
            out.push((Api::Cri, p));
        }
        if let Some(p) = pick(&self.podman, PODMAN_SOCKETS, false) {
            out.push((Api::Podman, p));
        }
        out
    }
}

impl RuntimeEndpoints {
    /// One client per resolved endpoint, on this machine's filesystem.
    pub fn clients(&self) -> Vec<Arc<dyn RuntimeClient>> {
        self.resolve(&|p| p.exists())
            .into_iter()
            .map(|(api, socket)| -> Arc<dyn RuntimeClient> {
                match api {
                    Api::Docker => Arc::new(DockerClient::new(DockerConfig { socket, ..Default::default() })),
                    Api::Containerd => {
                        Arc::new(ContainerdClient::new(ContainerdConfig { socket, ..Default::default() }))
                    }
                    Api::Cri => Arc::new(CriClient::new(CriConfig { socket, ..Default::default() })),
                    Api::Podman => Arc::new(PodmanClient::new(PodmanConfig { socket, ..Default::default() })),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apis(eps: &RuntimeEndpoints, present: &[&str]) -> Vec<(Api, String)> {
        eps.resolve(&|p| present.iter().any(|q| Path::new(q) == p))
            .into_iter()
            .map(|(a, p)| (a, p.display().to_string()))
            .collect()
    }

    #[test]
    fn auto_uses_the_sockets_that_exist_and_always_docker() {
        let eps = RuntimeEndpoints::default();
        assert_eq!(apis(&eps, &[]), vec![(Api::Docker, DEFAULT_DOCKER_SOCKET.to_string())]);
        let all = apis(
            &eps,
            &["/run/containerd/containerd.sock", "/run/crio/crio.sock", "/run/podman/podman.sock"],
        );
        let kinds: Vec<Api> = all.iter().map(|(a, _)| *a).collect();
        assert_eq!(kinds, vec![Api::Docker, Api::Cri, Api::Containerd, Api::Cri, Api::Podman]);
        assert_eq!(all[1].1, "/run/containerd/containerd.sock");
        assert_eq!(all[3].1, "/run/crio/crio.sock");
        // k3s' containerd when the usual one is absent
        let k3s = apis(&eps, &["/run/k3s/containerd/containerd.sock"]);
        assert_eq!(k3s[2], (Api::Containerd, "/run/k3s/containerd/containerd.sock".to_string()));
    }

    #[test]
    fn explicit_sockets_and_off() {
        let eps = RuntimeEndpoints {
            docker: Endpoint::Off,
            containerd: "unix:///custom/ctrd.sock".parse().unwrap(),
            crio: Endpoint::Off,
            podman: Endpoint::Off,
        };
        // used even though it does not exist (yet)
        assert_eq!(
            apis(&eps, &[]),
            vec![
                (Api::Cri, "/custom/ctrd.sock".to_string()),
                (Api::Containerd, "/custom/ctrd.sock".to_string())
            ]
        );
        assert_eq!(apis(&RuntimeEndpoints::docker_only("/d.sock"), &["/run/crio/crio.sock"]).len(), 1);
    }

    #[test]
    fn endpoint_parsing_and_errors() {
        assert_eq!("auto".parse::<Endpoint>(), Ok(Endpoint::Auto));
        assert_eq!(" off ".parse::<Endpoint>(), Ok(Endpoint::Off));
        assert_eq!("/a.sock".parse::<Endpoint>(), Ok(Endpoint::Socket("/a.sock".into())));
        assert!("relative.sock".parse::<Endpoint>().unwrap_err().contains("absolute socket path"));
        assert!("".parse::<Endpoint>().is_err());
        let eps: RuntimeEndpoints = serde_yaml_ng::from_str("containerd: off\npodman: /p.sock\n").unwrap();
        assert_eq!(eps.containerd, Endpoint::Off);
        assert_eq!(eps.podman, Endpoint::Socket("/p.sock".into()));
        assert_eq!(eps.docker, Endpoint::Auto);
        assert!(serde_yaml_ng::from_str::<RuntimeEndpoints>("cri-o: off\n").is_err());
        assert!(serde_yaml_ng::from_str::<RuntimeEndpoints>("docker: off\n").is_err());
    }
}

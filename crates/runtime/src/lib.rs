//! Container runtimes for rampart: which container a cgroup belongs to, and what
//! its runtime says about it.
//!
//! * [`cgroup`]: recognise a container (runtime, id, pod uid) from a cgroup v2
//!   path, for every runtime's naming (pure).
//! * [`cgroupfs`]: cgroup id (what `bpf_get_current_cgroup_id()` returns) ->
//!   cgroup path, from the cgroup2 mount.
//! * [`client`]: the [`RuntimeClient`] trait every runtime client implements;
//!   [`docker`] is the Docker Engine API client.
//! * [`podman`]: podman's libpod REST API client.
//! * [`registry`]: [`ContainerRegistry`], the metadata cache the rest of rampart
//!   uses: a fast synchronous lookup per event, an async resolve for unknown
//!   cgroups, and a background task following the runtimes' events.
//! * [`runtimes`]: [`Runtimes`], every configured client asked together: the
//!   container a user names (name, id, id prefix), whatever runtime runs it.

pub mod cgroup;
pub mod cgroupfs;
mod cgroupwatch;
pub mod client;
pub mod containerd;
pub mod cri;
pub mod docker;
pub mod endpoints;
mod error;
pub mod podman;
pub mod registry;
pub mod runtimes;

pub use cgroup::{parse_cgroup_path, CgroupContainer};
pub use cgroupfs::{find_cgroup2_mount, CgroupTree, CgroupTreeConfig, CgroupTreeStats};
pub use client::{Discovered, RuntimeClient, RuntimeEvent};
pub use containerd::{ContainerdClient, ContainerdConfig, DEFAULT_CONTAINERD_SOCKET};
pub use cri::{CriClient, CriConfig, DEFAULT_CRIO_SOCKET, DEFAULT_CRI_CONTAINERD_SOCKET};
pub use docker::{DockerClient, DockerConfig, DEFAULT_DOCKER_SOCKET};
pub use endpoints::{Endpoint, RuntimeEndpoints};
pub use error::Error;
pub use podman::{PodmanClient, PodmanConfig, DEFAULT_PODMAN_SOCKET};
pub use registry::{
    ContainerRegistry, RegistryConfig, RegistryStatus, RegistryTasks, Resolution, RuntimeStatus,
};
pub use runtimes::{FindError, Runtimes};

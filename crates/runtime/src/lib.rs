//! Container runtimes for rampart: which container a cgroup belongs to, and what
//! its runtime says about it.
//!
//! * [`cgroup`]: recognise a container (runtime, id, pod uid) from a cgroup v2
//!   path, for every runtime's naming (pure).
//! * [`cgroupfs`]: cgroup id (what `bpf_get_current_cgroup_id()` returns) ->
//!   cgroup path, from the cgroup2 mount.
//! * [`client`]: the [`RuntimeClient`] trait every runtime client implements;
//!   [`docker`] is the Docker Engine API client.
//! * [`registry`]: [`ContainerRegistry`], the metadata cache the rest of rampart
//!   uses: a fast synchronous lookup per event, an async resolve for unknown
//!   cgroups, and a background task following the runtimes' events.

pub mod cgroup;
pub mod cgroupfs;
pub mod client;
pub mod docker;
mod error;
pub mod registry;

pub use cgroup::{parse_cgroup_path, CgroupContainer};
pub use cgroupfs::{find_cgroup2_mount, CgroupTree, CgroupTreeConfig, CgroupTreeStats};
pub use client::{Discovered, RuntimeClient, RuntimeEvent};
pub use docker::{DockerClient, DockerConfig, DEFAULT_DOCKER_SOCKET};
pub use error::Error;
pub use registry::{
    ContainerRegistry, RegistryConfig, RegistryStatus, RegistryTasks, Resolution, RuntimeStatus,
};

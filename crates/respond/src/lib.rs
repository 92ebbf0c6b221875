//! rampart's responses to what it detects: act on a container, in the kernel
//! where possible.
//!
//! * [`policy`]: THE network policy format ([`NetPolicy`], YAML) and its
//!   compilation to kernel rule tables: the pure `policy` crate, re-exported.
//! * [`store`]: [`NetPolicyStore`], the policies and isolation of containers,
//!   stored per container id and enforced by cgroup BPF programs on the
//!   container's current cgroup ([`NetPolicyStore::reconcile`] follows
//!   restarts).
//! * [`kernel`]: load/pin/attach of bpf/netpolicy.bpf.c and its maps.
//! * [`deny`]: denial records from the kernel as `netdeny` events, and the
//!   feed that streams them and keeps stored policies enforced.
//! * [`actions`]: the response engine: rule `actions:` parsed into plans,
//!   guards, the responder, and the in-kernel kill compiler.
//! * [`freezer`]: freeze/thaw (cgroup v2, cgroup v1, runtime pause) and stop.
//! * [`target`]: the container acted on: cgroup, init pid, network namespace.
//!
//! What each mechanism can and cannot prevent is in docs/ARCHITECTURE.md.

pub mod abi;
pub mod actions;
pub mod deny;
mod docker;
mod error;
pub mod freezer;
pub mod kernel;
pub mod notify;
pub mod ocihook;
pub mod store;
pub mod target;

/// The network policy as data lives in its own pure crate; re-exported so
/// `respond::policy::Entry` reads as before.
pub use ::policy;
pub use ::policy::{NetPolicy, PolicyError};
pub use docker::DockerActions;
pub use error::Error;
pub use freezer::{FreezeOptions, FreezerState, Mechanism};
pub use store::{Enforced, NetPolicyStore, ReconcileReport, Record, Status, StoreConfig};
pub use target::{CgroupRef, Target};

use model::Container;

/// Freeze a container as the rules engine knows it (by its cgroup path);
/// returns the mechanism used.
pub async fn freeze(c: &Container, opts: &FreezeOptions) -> Result<Mechanism, Error> {
    freezer::freeze(&Target::from_container(c)?, opts).await
}

/// Thaw a container frozen by any mechanism; returns those that thawed it.
pub async fn thaw(c: &Container, opts: &FreezeOptions) -> Result<Vec<Mechanism>, Error> {
    freezer::thaw(&Target::from_container(c)?, opts).await
}

/// Stop a container: Docker's through its API (`docker stop -t GRACE`), the
/// other runtimes' by signalling its processes (see [`freezer::stop_by_signals`]).
pub async fn stop(
    c: &Container,
    grace: std::time::Duration,
    docker_socket: &std::path::Path,
) -> Result<(), Error> {
    match c.runtime {
        Some(model::Runtime::Docker) | None => {
            let t = Target {
                id: c.id.clone(),
                name: c.name.clone(),
                runtime: c.runtime,
                pid: None,
                cgroup: None,
                private_netns: None,
            };
            freezer::stop(&t, grace, docker_socket).await
        }
        Some(_) => freezer::stop_by_signals(&Target::from_container(c)?, grace).await,
    }
}

/// Cut a container off the network, in the kernel, with the default store
/// (`RAMPART_NETPOLICY_DIR`, `RAMPART_NETPOLICY_PIN`); the isolation is stored
/// and follows the container across restarts until released.
pub fn isolate(c: &Container) -> Result<Enforced, Error> {
    NetPolicyStore::new(StoreConfig::default()).isolate_container(c, true)
}

/// Undo [`isolate`].
pub fn release(c: &Container) -> Result<Enforced, Error> {
    NetPolicyStore::new(StoreConfig::default()).isolate_container(c, false)
}

/// Reads and validates a policy file (the `policy` crate parses text only);
/// errors carry `file:line:column`.
pub fn load_policy(path: &std::path::Path) -> Result<NetPolicy, PolicyError> {
    let name = path.display().to_string();
    use model::input::InputError;
    let text = model::input::read_text(path, model::input::limits::NETPOLICY).map_err(|e| {
        let (location, message) = match e {
            InputError::Nul { line, column, .. } => {
                (Some((line as usize, column as usize)), "NUL byte".into())
            }
            InputError::Utf8 { line, column, .. } => {
                (Some((line as usize, column as usize)), "invalid UTF-8".into())
            }
            e => (None, format!("cannot read: {e}")),
        };
        PolicyError { source_name: name.clone(), location, message }
    })?;
    NetPolicy::from_yaml(&text, &name)
}

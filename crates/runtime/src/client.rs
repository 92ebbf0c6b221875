//! The interface every container runtime client implements.
//!
//! The registry talks to runtimes only through [`RuntimeClient`], so containerd,
//! CRI and podman clients plug in next to Docker without the registry changing.

use crate::Error;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use model::{Container, Runtime};

/// A container as a runtime reports it, plus what the registry needs to map it
/// to a cgroup before the first event arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub container: Container,
    /// Host pid of the container's init process, when it runs.
    pub pid: Option<u32>,
}

/// A lifecycle change reported by a runtime's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// The container started (its metadata should be fetched now).
    Started { id: String },
    /// Its init process died; the cgroup may still emit events for a moment.
    Died { id: String },
    /// The container was removed; drop it after a grace period.
    Destroyed { id: String },
    /// The container was renamed (or otherwise changed): fetch again.
    Changed { id: String },
}

impl RuntimeEvent {
    pub fn id(&self) -> &str {
        match self {
            RuntimeEvent::Started { id }
            | RuntimeEvent::Died { id }
            | RuntimeEvent::Destroyed { id }
            | RuntimeEvent::Changed { id } => id,
        }
    }
}

/// A client of one container runtime's API.
///
/// Methods return boxed futures so that clients of different runtimes can sit
/// behind `Arc<dyn RuntimeClient>` in one registry. Implementations reconnect by
/// themselves: every call may be the first after the runtime restarted.
pub trait RuntimeClient: Send + Sync + 'static {
    /// Short name for logs and status (`"docker"`).
    fn name(&self) -> &'static str;

    /// The runtime whose containers this client owns; it is asked first about
    /// containers recognised as this runtime.
    fn runtime(&self) -> Runtime;

    /// Where the client connects (socket path), for status.
    fn endpoint(&self) -> String;

    /// Whether containers recognised from cgroup paths as `runtime` may belong to
    /// this client (Docker also claims bare Kubernetes pod ids and `/<parent>/<id>`
    /// paths, which a custom `--cgroup-parent` produces).
    fn handles(&self, runtime: Runtime) -> bool;

    /// Full metadata of one container.
    fn inspect<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>>;

    /// A container whose runtime is starting it right now (from an OCI hook,
    /// before its first process runs): what the runtime can say without
    /// waiting for the start to finish. Docker holds the container's lock for
    /// the whole start, so its inspect would wait for the hook; containerd's
    /// record is there from `create`.
    fn starting<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Discovered, Error>> {
        self.inspect(id)
    }

    /// All running containers, with full metadata.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Discovered>, Error>>;

    /// Lifecycle events since `since_unix` (seconds); the stream ends or yields an
    /// error when the connection is lost.
    fn events(
        &self,
        since_unix: i64,
    ) -> BoxFuture<'_, Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error>>;
}

/// Inspects every listed id, at most `concurrency` at once; a container removed
/// between the list and its inspect is skipped, any other error fails the list.
pub(crate) async fn inspect_listed<F, Fut>(
    ids: Vec<String>,
    concurrency: usize,
    inspect: F,
) -> Result<Vec<Discovered>, Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Discovered, Error>>,
{
    use futures_util::stream::{self, StreamExt};
    let results: Vec<Result<Discovered, Error>> =
        stream::iter(ids).map(inspect).buffer_unordered(concurrency.max(1)).collect().await;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(d) => out.push(d),
            Err(Error::NotFound { id, .. }) => tracing::debug!(%id, "container vanished while listing"),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

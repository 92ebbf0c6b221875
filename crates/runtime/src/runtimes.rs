//! Every configured runtime client, asked together: how the commands that take a
//! container by name or id (`netpolicy`, `isolate`, `freeze`, `record`) and the
//! policy reconciler find it, whatever runtime runs it.
//!
//! The registry answers "whose is this cgroup"; this answers "which container
//! does the user mean", which needs the runtimes themselves (a container that
//! has not run anything yet is in no event).

use crate::client::{Discovered, RuntimeClient};
use crate::endpoints::RuntimeEndpoints;
use crate::Error;
use futures_util::future::join_all;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The runtime clients of one configuration.
#[derive(Clone)]
pub struct Runtimes {
    clients: Vec<Arc<dyn RuntimeClient>>,
}

impl std::fmt::Debug for Runtimes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> =
            self.clients.iter().map(|c| format!("{}@{}", c.name(), c.endpoint())).collect();
        f.debug_struct("Runtimes").field("clients", &names).finish()
    }
}

/// Why a query found no single container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindError {
    /// No runtime knows it; `unreachable` lists the runtimes that could not be
    /// asked (`docker at /var/run/docker.sock: ...`), which may have it.
    NotFound { query: String, unreachable: Vec<String> },
    /// The name or id prefix names several containers (`runtime id name` each).
    Ambiguous { query: String, candidates: Vec<String> },
}

impl std::fmt::Display for FindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FindError::NotFound { query, unreachable } if unreachable.is_empty() => {
                write!(f, "no container {query:?} (by name or id prefix) in any runtime")
            }
            FindError::NotFound { query, unreachable } => write!(
                f,
                "no container {query:?} (by name or id prefix) in the runtimes that answered; not asked: {}",
                unreachable.join("; ")
            ),
            FindError::Ambiguous { query, candidates } => write!(
                f,
                "{query:?} names {} containers: {}; give a longer id",
                candidates.len(),
                candidates.join(", ")
            ),
        }
    }
}

impl std::error::Error for FindError {}

fn describe(d: &Discovered) -> String {
    let runtime = d.container.runtime.map(|r| r.as_str()).unwrap_or("?");
    format!("{runtime} {} {}", d.container.short_id(), d.container.name.trim_start_matches('/'))
}

/// One container per id (two clients may report the same one, e.g. CRI and
/// containerd on one socket if a namespace is not skipped), in client order.
fn dedup(found: Vec<Discovered>) -> Vec<Discovered> {
    let mut seen = BTreeSet::new();
    found.into_iter().filter(|d| seen.insert(d.container.id.clone())).collect()
}

/// Picks the container `query` names among `candidates` (every running
/// container): an exact id, then an exact name, then a unique id prefix.
pub fn pick(query: &str, candidates: Vec<Discovered>) -> Result<Discovered, FindError> {
    let q = query.trim().trim_start_matches('/');
    let candidates = dedup(candidates);
    let tiers: [&dyn Fn(&Discovered) -> bool; 3] =
        [&|d| d.container.id == q, &|d| d.container.name.trim_start_matches('/') == q, &|d| {
            d.container.id.starts_with(q)
        }];
    if q.is_empty() {
        return Err(FindError::NotFound { query: query.to_string(), unreachable: Vec::new() });
    }
    for tier in tiers {
        let mut hits: Vec<Discovered> = candidates.iter().filter(|d| tier(d)).cloned().collect();
        match hits.len() {
            0 => continue,
            1 => return Ok(hits.remove(0)),
            _ => {
                return Err(FindError::Ambiguous {
                    query: query.to_string(),
                    candidates: hits.iter().map(describe).collect(),
                })
            }
        }
    }
    Err(FindError::NotFound { query: query.to_string(), unreachable: Vec::new() })
}

/// The answer about exactly `id`; NotFound only when every runtime said so.
fn exact_answer(answers: Vec<Result<Discovered, Error>>, id: &str) -> Result<Discovered, Error> {
    let mut failure = None;
    for a in answers {
        match a {
            Ok(d) if d.container.id == id => return Ok(d),
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    Err(failure.unwrap_or(Error::NotFound { runtime: "any runtime", id: id.to_string() }))
}

impl Runtimes {
    pub fn new(clients: Vec<Arc<dyn RuntimeClient>>) -> Self {
        Runtimes { clients }
    }

    /// One client per endpoint of `endpoints` found on this machine.
    pub fn from_endpoints(endpoints: &RuntimeEndpoints) -> Self {
        Runtimes::new(endpoints.clients())
    }

    pub fn clients(&self) -> &[Arc<dyn RuntimeClient>] {
        &self.clients
    }

    fn unreachable(client: &dyn RuntimeClient, e: &Error) -> String {
        format!("{} at {}: {e}", client.name(), client.endpoint())
    }

    /// The container with exactly this id, from whichever runtime has it.
    /// [`Error::NotFound`] only when every runtime answered that it does not
    /// know it; when one could not be asked, its error (the container may be
    /// its), so callers never take "unreachable" for "gone".
    pub async fn inspect(&self, id: &str) -> Result<Discovered, Error> {
        let answers = join_all(self.clients.iter().map(|c| c.inspect(id))).await;
        exact_answer(answers, id)
    }

    /// A container some runtime is starting now ([`RuntimeClient::starting`]),
    /// with [`Runtimes::inspect`]'s answers.
    /// The first runtime to know it answers (a runtime slow to say "not
    /// mine" does not hold a container's start).
    pub async fn starting(&self, id: &str) -> Result<Discovered, Error> {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let mut pending: FuturesUnordered<_> = self.clients.iter().map(|c| c.starting(id)).collect();
        let mut answers = Vec::new();
        while let Some(a) = pending.next().await {
            match a {
                Ok(d) if d.container.id == id => return Ok(d),
                other => answers.push(other),
            }
        }
        exact_answer(answers, id)
    }

    /// Every running container of the runtimes that answer, and a line per
    /// runtime that did not.
    pub async fn list(&self) -> (Vec<Discovered>, Vec<String>) {
        let answers = join_all(self.clients.iter().map(|c| c.list())).await;
        let mut all = Vec::new();
        let mut unreachable = Vec::new();
        for (client, a) in self.clients.iter().zip(answers) {
            match a {
                Ok(found) => all.extend(found),
                Err(e) => unreachable.push(Runtimes::unreachable(client.as_ref(), &e)),
            }
        }
        (dedup(all), unreachable)
    }

    /// The container `query` names, by name, id or unique id prefix, across
    /// every runtime. Each runtime is first asked directly (Docker and podman
    /// resolve names and prefixes themselves, and know stopped containers);
    /// when none knows it, the running containers of all of them are searched
    /// (containerd and CRI know ids only).
    pub async fn find(&self, query: &str) -> Result<Discovered, FindError> {
        let q = query.trim().trim_start_matches('/');
        if q.is_empty() {
            return Err(FindError::NotFound { query: query.to_string(), unreachable: Vec::new() });
        }
        let answers = join_all(self.clients.iter().map(|c| c.inspect(q))).await;
        let direct: Vec<Discovered> = answers.into_iter().flatten().collect();
        // What a runtime resolved itself is trusted (Docker resolves a prefix
        // only when unique); several runtimes answering is ambiguous.
        let direct = dedup(direct);
        match direct.len() {
            1 => return Ok(direct.into_iter().next().expect("one")),
            0 => {}
            _ => {
                return Err(FindError::Ambiguous {
                    query: query.to_string(),
                    candidates: direct.iter().map(describe).collect(),
                })
            }
        }
        let (running, unreachable) = self.list().await;
        match pick(q, running) {
            Err(FindError::NotFound { query, .. }) => Err(FindError::NotFound { query, unreachable }),
            other => other,
        }
    }

    /// Ids of every running container of the runtimes that answer.
    pub async fn running_ids(&self) -> Result<Vec<String>, Error> {
        let answers = join_all(self.clients.iter().map(|c| c.list())).await;
        let mut ids = Vec::new();
        for a in answers {
            ids.extend(a?.into_iter().map(|d| d.container.id));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Container, Runtime};

    fn d(runtime: Runtime, id: &str, name: &str) -> Discovered {
        Discovered {
            container: Container {
                id: id.into(),
                name: name.into(),
                runtime: Some(runtime),
                ..Default::default()
            },
            pid: Some(1),
        }
    }

    fn all() -> Vec<Discovered> {
        vec![
            d(Runtime::Docker, "aaaa1111", "/web"),
            d(Runtime::Podman, "aaaa2222", "db"),
            d(Runtime::Containerd, "job-1", "job-1"),
            d(Runtime::Containerd, "web", "nice-web"),
        ]
    }

    #[test]
    fn exact_id_beats_a_name_which_beats_a_prefix() {
        assert_eq!(pick("web", all()).unwrap().container.id, "web", "the id `web` before the name `/web`");
        assert_eq!(pick("/db", all()).unwrap().container.id, "aaaa2222");
        assert_eq!(pick("nice-web", all()).unwrap().container.id, "web");
        assert_eq!(pick("aaaa1", all()).unwrap().container.id, "aaaa1111");
        assert_eq!(pick("job", all()).unwrap().container.id, "job-1");
    }

    #[test]
    fn an_ambiguous_prefix_names_every_candidate() {
        let e = pick("aaaa", all()).unwrap_err();
        let FindError::Ambiguous { candidates, .. } = &e else { panic!("{e}") };
        assert_eq!(candidates, &["docker aaaa1111 web".to_string(), "podman aaaa2222 db".to_string()]);
        assert!(e.to_string().contains("names 2 containers"), "{e}");
    }

    #[test]
    fn nothing_or_blank_is_not_found() {
        assert!(matches!(pick("zzz", all()), Err(FindError::NotFound { .. })));
        assert!(matches!(pick(" / ", all()), Err(FindError::NotFound { .. })));
        assert!(matches!(pick("", all()), Err(FindError::NotFound { .. })));
        let e = FindError::NotFound { query: "x".into(), unreachable: vec!["podman at /p: refused".into()] };
        assert!(e.to_string().contains("not asked: podman at /p: refused"), "{e}");
    }

    #[test]
    fn the_same_container_from_two_clients_counts_once() {
        let twice = vec![d(Runtime::Containerd, "c1", "c1"), d(Runtime::Containerd, "c1", "c1")];
        assert_eq!(pick("c", twice).unwrap().container.id, "c1");
    }

    #[tokio::test]
    async fn no_clients_find_nothing_and_inspect_says_not_found() {
        let r = Runtimes::new(Vec::new());
        assert!(matches!(r.find("web").await, Err(FindError::NotFound { .. })));
        assert!(matches!(r.inspect("abc").await, Err(Error::NotFound { .. })));
        assert!(r.running_ids().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreachable_runtime_is_an_error_not_a_missing_container() {
        let docker: Arc<dyn RuntimeClient> =
            Arc::new(crate::DockerClient::with_socket("/nonexistent/rampart-docker.sock"));
        let r = Runtimes::new(vec![docker]);
        let e = r.inspect("abc").await.unwrap_err();
        assert!(e.is_unreachable(), "{e}");
        let FindError::NotFound { unreachable, .. } = r.find("web").await.unwrap_err() else { panic!() };
        assert_eq!(unreachable.len(), 1, "{unreachable:?}");
        assert!(unreachable[0].starts_with("docker at /nonexistent/rampart-docker.sock"), "{unreachable:?}");
    }
}

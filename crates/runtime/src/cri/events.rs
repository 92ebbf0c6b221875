//! Lifecycle events: `GetContainerEvents` where the runtime streams them,
//! else `ListContainers` + `ListPodSandbox` polled and diffed (see [`super`]).

use super::*;

impl CriClient {
    /// Lifecycle events: the runtime's own stream, or polling (see the module doc).
    pub async fn event_stream(&self) -> Result<BoxStream<'static, Result<RuntimeEvent, Error>>, Error> {
        let client = self.with_timeout("events", self.connect()).await?;
        let name = self.name_str();
        if self.config.stream_events && !self.events_unsupported.load(Ordering::Relaxed) {
            let mut c = client.clone();
            let attempt = tokio::time::timeout(
                self.config.request_timeout,
                c.get_container_events(cri::GetEventsRequest {}),
            )
            .await;
            match attempt {
                Ok(Ok(resp)) => {
                    debug!(runtime = name, "following GetContainerEvents");
                    let unsupported = self.events_unsupported.clone();
                    let got_any = Arc::new(AtomicBool::new(false));
                    let seen = got_any.clone();
                    let events = resp.into_inner().filter_map(move |item| {
                        seen.store(true, Ordering::Relaxed);
                        async move {
                            match item {
                                Ok(ev) => runtime_event_from_cri(&ev).map(Ok),
                                Err(s) => Some(Err(Error::Request {
                                    runtime: name,
                                    request: "get container events".into(),
                                    source: Box::new(s),
                                })),
                            }
                        }
                    });
                    // A clean end before any event: the runtime only pretends to
                    // stream; the registry reconnects and this client polls.
                    let end = stream::once(async move {
                        if !got_any.load(Ordering::Relaxed) {
                            unsupported.store(true, Ordering::Relaxed);
                            info!(runtime = name, "GetContainerEvents ended at once; polling instead");
                        }
                        Err(Error::StreamEnded { runtime: name })
                    });
                    return Ok(events.chain(end).boxed());
                }
                Ok(Err(s)) if is_transport(&s) => {
                    return Err(self.request_error("get container events", None, s))
                }
                // Unimplemented (containerd 1.6) or refused (CRI-O without pod events).
                Ok(Err(s)) => {
                    debug!(runtime = name, code = ?s.code(), message = s.message(), "no GetContainerEvents; polling")
                }
                Err(_) => {
                    self.reset();
                    return Err(Error::Timeout {
                        runtime: name,
                        request: "get container events".into(),
                        timeout: self.config.request_timeout,
                    });
                }
            }
        }
        let timeout = self.config.request_timeout;
        let first = snapshot(&mut client.clone(), name, timeout).await;
        let first = match first {
            Ok(f) => f,
            Err(e) => {
                self.reset();
                return Err(e);
            }
        };
        let poller = Poller {
            client,
            name,
            timeout,
            prev: first,
            pending: VecDeque::new(),
            tick: {
                let mut t = tokio::time::interval(self.config.poll_interval.max(Duration::from_millis(50)));
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            },
        };
        Ok(stream::unfold(Some(poller), |state| async move {
            let mut p = state?;
            loop {
                if let Some(ev) = p.pending.pop_front() {
                    return Some((Ok(ev), Some(p)));
                }
                p.tick.tick().await;
                match snapshot(&mut p.client, p.name, p.timeout).await {
                    Ok(cur) => {
                        p.pending.extend(diff_lifecycles(&p.prev, &cur));
                        p.prev = cur;
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        })
        .boxed())
    }
}

/// One container's or sandbox's place in its life, as far as polling sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Life {
    Created,
    Running,
    Exited,
}

pub(super) fn life_of_container(state: i32) -> Life {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => Life::Created,
        Ok(cri::ContainerState::ContainerRunning) => Life::Running,
        // Exited, and Unknown (its shim is gone): not running.
        _ => Life::Exited,
    }
}

pub(super) fn life_of_sandbox(state: i32) -> Life {
    match cri::PodSandboxState::try_from(state) {
        Ok(cri::PodSandboxState::SandboxReady) => Life::Running,
        _ => Life::Exited,
    }
}

/// The events that take `prev` to `cur` (ids in order; a container seen for
/// the first time already exited yields Started then Died so its metadata is
/// still fetched).
pub fn diff_lifecycles(prev: &BTreeMap<String, Life>, cur: &BTreeMap<String, Life>) -> Vec<RuntimeEvent> {
    let mut out = Vec::new();
    for (id, &now) in cur {
        let before = prev.get(id).copied();
        let started = now != Life::Created && matches!(before, None | Some(Life::Created))
            || now == Life::Running && before == Some(Life::Exited);
        if started {
            out.push(RuntimeEvent::Started { id: id.clone() });
        }
        if now == Life::Exited && before != Some(Life::Exited) {
            out.push(RuntimeEvent::Died { id: id.clone() });
        }
    }
    for (id, &before) in prev {
        if !cur.contains_key(id) {
            if before == Life::Running {
                out.push(RuntimeEvent::Died { id: id.clone() });
            }
            out.push(RuntimeEvent::Destroyed { id: id.clone() });
        }
    }
    out
}

/// Every container and sandbox the runtime knows, with where it is in its life.
async fn snapshot(
    client: &mut RuntimeServiceClient<Channel>,
    name: &'static str,
    timeout: Duration,
) -> Result<BTreeMap<String, Life>, Error> {
    let req_err = |request: &str, s: tonic::Status| Error::Request {
        runtime: name,
        request: request.to_string(),
        source: Box::new(s),
    };
    let fut = async {
        let containers = client
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .map_err(|s| req_err("list containers", s))?
            .into_inner()
            .containers;
        let sandboxes = client
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(|s| req_err("list pod sandboxes", s))?
            .into_inner()
            .items;
        let mut m: BTreeMap<String, Life> =
            containers.into_iter().map(|c| (c.id, life_of_container(c.state))).collect();
        m.extend(sandboxes.into_iter().map(|s| (s.id, life_of_sandbox(s.state))));
        Ok(m)
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(Error::Timeout { runtime: name, request: "list".into(), timeout }))
}

struct Poller {
    client: RuntimeServiceClient<Channel>,
    name: &'static str,
    timeout: Duration,
    prev: BTreeMap<String, Life>,
    pending: VecDeque<RuntimeEvent>,
    tick: tokio::time::Interval,
}

/// Map a `GetContainerEvents` item (`None` for creation, which has no process yet).
pub fn runtime_event_from_cri(ev: &cri::ContainerEventResponse) -> Option<RuntimeEvent> {
    if ev.container_id.is_empty() {
        return None;
    }
    let id = ev.container_id.clone();
    match cri::ContainerEventType::try_from(ev.container_event_type).ok()? {
        cri::ContainerEventType::ContainerCreatedEvent => None,
        cri::ContainerEventType::ContainerStartedEvent => Some(RuntimeEvent::Started { id }),
        cri::ContainerEventType::ContainerStoppedEvent => Some(RuntimeEvent::Died { id }),
        cri::ContainerEventType::ContainerDeletedEvent => Some(RuntimeEvent::Destroyed { id }),
    }
}

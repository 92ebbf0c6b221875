//! The network policy's side of a streaming command: a second event source next to the
//! sensor (denial records from the pinned ring buffer, as `netdeny` events),
//! and the reconciler that keeps stored policies enforced on the containers'
//! current cgroups (at start, when a container starts, every minute).
//!
//! One process per host does this (the ring buffer has one consumer): the
//! first streaming rampart (`run`, `events`, ...) to take the reader lock in
//! the policy store. Others run without it and say so.

use super::{to_event, Clock, DenyReader};
use crate::{NetPolicyStore, Record, StoreConfig};
use model::Event;
use runtime::{ContainerRegistry, RuntimeEvent};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the ring buffer is drained (denials are rare; latency matters
/// more than batching here).
const DRAIN_PERIOD: Duration = Duration::from_millis(50);
/// How often a missing or replaced ring buffer pin is looked for.
const REOPEN_PERIOD: Duration = Duration::from_secs(1);
/// Full reconcile period (container starts trigger one for that container).
const RECONCILE_PERIOD: Duration = Duration::from_secs(60);

/// The running source; dropping it stops the reader and the reconciler.
pub struct NetDenyFeed {
    batches: mpsc::Receiver<Vec<Event>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    reconciler: tokio::task::JoinHandle<()>,
    _lock: File,
}

impl NetDenyFeed {
    /// Start the reader and reconciler unless another process has them.
    pub fn start(containers: &ContainerRegistry) -> Option<NetDenyFeed> {
        let cfg = StoreConfig::default();
        let lock = match reader_lock(&cfg) {
            Ok(Some(f)) => f,
            Ok(None) => {
                eprintln!(
                    "rampart: network policy denials are read by another rampart process (store {})",
                    cfg.dir.display()
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "network policy store unusable: no netdeny events, no reconcile");
                return None;
            }
        };
        let (tx, batches) = mpsc::channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (cfg, stop) = (cfg.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rampart-netdeny".into())
                .spawn(move || reader_loop(cfg, tx, stop))
                .map_err(|e| tracing::warn!(error = %e, "cannot start the netdeny reader"))
                .ok()?
        };
        let reconciler = tokio::spawn(reconcile_loop(
            // The registry's clients: the runtimes the agent was configured with.
            NetPolicyStore::with_runtimes(cfg, containers.runtimes()),
            containers.subscribe(),
        ));
        Some(NetDenyFeed { batches, stop, thread: Some(thread), reconciler, _lock: lock })
    }

    /// The next batch of denial events.
    pub async fn next_batch(&mut self) -> Option<Vec<Event>> {
        self.batches.recv().await
    }

    /// Stop after a final drain; returns what was still queued.
    pub async fn stop(&mut self) -> Vec<Vec<Event>> {
        self.stop.store(true, Ordering::SeqCst);
        self.reconciler.abort();
        let mut rest = Vec::new();
        while let Some(b) = self.batches.recv().await {
            rest.push(b);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        rest
    }
}

impl Drop for NetDenyFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.reconciler.abort();
    }
}

/// The next batch of an optional feed: pending forever without one (for
/// `select!`).
pub async fn next(feed: &mut Option<NetDenyFeed>) -> Option<Vec<Event>> {
    match feed {
        Some(f) => f.next_batch().await,
        None => std::future::pending().await,
    }
}

/// An exclusive, non-blocking `flock` on `<store>/.reader.lock`; `None` when
/// another process holds it.
fn reader_lock(cfg: &StoreConfig) -> std::io::Result<Option<File>> {
    std::fs::create_dir_all(&cfg.dir)?;
    let f = File::options().create(true).truncate(false).write(true).open(cfg.dir.join(".reader.lock"))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(None) } else { Err(e) };
    }
    Ok(Some(f))
}

fn reader_loop(cfg: StoreConfig, tx: mpsc::Sender<Vec<Event>>, stop: Arc<AtomicBool>) {
    // Reads records and kernel state only: no runtime clients.
    let store = NetPolicyStore::with_runtimes(cfg.clone(), runtime::Runtimes::new(Vec::new()));
    let clock = Clock::now();
    let mut reader: Option<DenyReader> = None;
    let mut checked = Instant::now() - REOPEN_PERIOD;
    let mut policies: HashMap<u64, Record> = HashMap::new();
    let mut policies_at = Instant::now() - REOPEN_PERIOD;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if checked.elapsed() >= REOPEN_PERIOD {
            checked = Instant::now();
            if reader.as_ref().is_none_or(|r| !r.is_current()) {
                // Drain what the old ring still holds before switching.
                let old = reader.take();
                if let Some(mut r) = old {
                    send(&tx, &mut r, &clock, &store, &mut policies, &mut policies_at);
                }
                match DenyReader::open(&cfg.pin_dir) {
                    Ok(r) => reader = r,
                    Err(e) => tracing::warn!(error = %e, "cannot open the netpolicy ring buffer"),
                }
            }
        }
        if let Some(r) = reader.as_mut() {
            if !send(&tx, r, &clock, &store, &mut policies, &mut policies_at) {
                return; // the consumer is gone
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(DRAIN_PERIOD);
    }
}

/// Drain the ring and send the events; false once the receiver is gone.
fn send(
    tx: &mpsc::Sender<Vec<Event>>,
    r: &mut DenyReader,
    clock: &Clock,
    store: &NetPolicyStore,
    policies: &mut HashMap<u64, Record>,
    policies_at: &mut Instant,
) -> bool {
    let raws = match r.drain() {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "draining the netpolicy ring buffer");
            return true;
        }
    };
    if raws.is_empty() {
        return true;
    }
    // Name the policy entries from the store; refresh it when a cgroup is new
    // (a container restarted, or a policy was just applied).
    if raws.iter().any(|r| !policies.contains_key(&r.cgroup_id)) && policies_at.elapsed() >= REOPEN_PERIOD {
        *policies = store.policies_by_cgroup();
        *policies_at = Instant::now();
    }
    let events: Vec<Event> = raws
        .iter()
        .map(|raw| to_event(raw, clock, policies.get(&raw.cgroup_id).and_then(|rec| rec.policy.as_ref())))
        .collect();
    tx.blocking_send(events).is_ok()
}

async fn reconcile_loop(store: NetPolicyStore, mut starts: tokio::sync::broadcast::Receiver<RuntimeEvent>) {
    reconcile_all(&store, true).await;
    let mut tick = tokio::time::interval(RECONCILE_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: done above
    loop {
        tokio::select! {
            ev = starts.recv() => match ev {
                Ok(RuntimeEvent::Started { id }) => match store.reconcile_container(&id).await {
                    Ok(Some(e)) => {
                        let cg = e.cgroup.as_ref().map(|c| c.id).unwrap_or(0);
                        eprintln!("rampart: network policy enforced on started container {} (cgroup {cg})", label(&e.container_name, &e.container_id));
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(container = %id, error = %e, "enforcing the network policy of a started container"),
                },
                Ok(_) => {}
                // Missed some: do them all.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => reconcile_all(&store, false).await,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => reconcile_all(&store, false).await,
        }
    }
}

/// `web (1958f123c5fa)`, or the short id alone.
pub fn label(name: &str, id: &str) -> String {
    let short = &id[..id.len().min(12)];
    if name.is_empty() {
        short.to_string()
    } else {
        format!("{name} ({short})")
    }
}

async fn reconcile_all(store: &NetPolicyStore, at_start: bool) {
    match store.reconcile().await {
        Ok(r) => {
            if at_start && !r.enforced.is_empty() {
                let names: Vec<String> =
                    r.enforced.iter().map(|e| label(&e.container_name, &e.container_id)).collect();
                eprintln!(
                    "rampart: network policy enforced on {} container(s): {}",
                    names.len(),
                    names.join(", ")
                );
            }
            for f in &r.forgotten {
                eprintln!("rampart: container {f} is gone: its network policy was dropped");
            }
            for e in &r.errors {
                tracing::warn!(error = %e, "network policy reconcile");
            }
        }
        Err(e) => tracing::warn!(error = %e, "network policy reconcile failed"),
    }
}

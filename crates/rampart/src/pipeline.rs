//! The event pipeline: sensor thread -> process table -> container attribution ->
//! filter -> sink.
//!
//! The sensor owns libbpf objects and lives on its own thread, draining the ring
//! buffer in batches; batches cross a bounded channel so a slow consumer pushes
//! back into the kernel ring, where overflow is counted as drops rather than
//! growing our memory.

use crate::filter::EventFilter;
use anyhow::{Context, Result};
use model::Event;
use runtime::{ContainerRegistry, Resolution};
use sensor::{Sensor, SensorConfig, SensorStats, SensorStatus};
use state::ProcessTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Events per batch handed to the consumer, and batches in flight: together they
/// bound the decoded events held in memory (~16k).
const MAX_BATCH: usize = 1024;
const CHANNEL_BATCHES: usize = 16;

/// A running sensor on its own thread.
pub struct SensorThread {
    pub status: SensorStatus,
    batches: mpsc::Receiver<Vec<Event>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SensorStats>>,
    thread: Option<JoinHandle<()>>,
}

impl SensorThread {
    /// Loads and attaches the BPF programs; returns once hooks are attached.
    pub async fn start(config: SensorConfig) -> Result<SensorThread> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (batch_tx, batches) = mpsc::channel(CHANNEL_BATCHES);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(SensorStats::default()));
        let thread = {
            let stop = stop.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("rampart-sensor".into())
                .spawn(move || sensor_loop(config, ready_tx, batch_tx, stop, stats))
                .context("spawning the sensor thread")?
        };
        let status = ready_rx.await.context("sensor thread ended before it was ready")??;
        Ok(SensorThread { status, batches, stop, stats, thread: Some(thread) })
    }

    pub async fn next_batch(&mut self) -> Option<Vec<Event>> {
        self.batches.recv().await
    }

    pub fn stats(&self) -> SensorStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the sensor after a final drain; returns the batches still queued.
    pub async fn stop(&mut self) -> Vec<Vec<Event>> {
        self.stop.store(true, Ordering::SeqCst);
        let mut rest = Vec::new();
        // The thread ends after its final drain and drops its sender, which ends
        // this loop.
        while let Some(batch) = self.batches.recv().await {
            rest.push(batch);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        rest
    }
}

impl Drop for SensorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn sensor_loop(
    config: SensorConfig,
    ready: oneshot::Sender<Result<SensorStatus>>,
    batches: mpsc::Sender<Vec<Event>>,
    stop: Arc<AtomicBool>,
    shared_stats: Arc<Mutex<SensorStats>>,
) {
    let mut sensor = match Sensor::start(config) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow::Error::new(e).context("starting the eBPF sensor")));
            return;
        }
    };
    let _ = ready.send(Ok(sensor.status()));
    let mut consumer_gone = false;
    loop {
        // Read the flag before draining so the last drain happens after stop.
        let stopping = stop.load(Ordering::SeqCst);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut sent_any = false;
        // A full ring holds far more than we want in memory at once: hand over
        // bounded batches while draining, so the channel bound is a memory bound.
        let drained = sensor.poll(&mut |ev| {
            batch.push(ev);
            if batch.len() >= MAX_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                consumer_gone |= batches.blocking_send(full).is_err();
                sent_any = true;
            }
        });
        if let Err(e) = drained {
            tracing::warn!(error = %e, "ring buffer drain failed");
        }
        if let Ok(mut s) = shared_stats.lock() {
            *s = sensor.stats();
        }
        // Drain on a timer (the kernel never wakes us); skip the sleep only when
        // a full batch suggests the ring holds more.
        let pause = !sent_any;
        if !batch.is_empty() {
            consumer_gone |= batches.blocking_send(batch).is_err();
        }
        if consumer_gone || stopping {
            return;
        }
        if pause {
            std::thread::sleep(sensor::POLL_PERIOD);
        }
    }
}

/// Process table and container attribution for events off the sensor.
pub struct Enricher {
    pub processes: ProcessTable,
    pub containers: ContainerRegistry,
}

impl Enricher {
    /// Applies the event to the process table and fills in process and container
    /// details. Waits (briefly, bounded by the registry) only for a container
    /// seen for the first time.
    pub async fn enrich(&mut self, ev: &mut Event) {
        self.processes.apply(ev);
        self.processes.enrich(ev);
        ev.container = match self.containers.resolve_cached(ev.process.cgroup_id) {
            Resolution::Host => None,
            Resolution::Container(c) => Some(c),
            Resolution::Unknown => {
                self.containers.resolve_for_pid(ev.process.cgroup_id, ev.process.pid).await
            }
        };
    }
}

/// Counts for the end-of-run summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub seen: u64,
    pub shown: u64,
}

/// Runs batches through enrichment and the filter, handing accepted events to
/// `sink`.
pub async fn process_batch(
    enricher: &mut Enricher,
    filter: &EventFilter,
    batch: Vec<Event>,
    counts: &mut Counts,
    sink: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for mut ev in batch {
        counts.seen += 1;
        enricher.enrich(&mut ev).await;
        if filter.accepts(&ev) {
            counts.shown += 1;
            sink(&ev)?;
        }
    }
    Ok(())
}

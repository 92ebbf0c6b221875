//! The event pipeline: sensor thread -> process table -> container attribution ->
//! filter -> sink.
//!
//! The sensor owns libbpf objects and lives on its own thread, draining the ring
//! buffer in batches; batches cross a bounded channel so a slow consumer pushes
//! back into the kernel ring, where overflow is counted as drops rather than
//! growing our memory.

use super::filter::EventFilter;
use anyhow::{Context, Result};
use model::Event;
use respond::deny::feed::NetDenyFeed;
use runtime::{ContainerRegistry, Resolution};
use sensor::{Sensor, SensorConfig, SensorStats, SensorStatus, SyscallSet};
use state::ProcessTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Events per batch handed to the consumer, and batches in flight: together they
/// bound the decoded events held in memory (~16k).
const MAX_BATCH: usize = 1024;
const CHANNEL_BATCHES: usize = 16;
/// Emptied batches kept for reuse: enough for a steady flow, few enough that
/// a burst's batches (~400 KiB each, filled) do not stay in memory after it.
const SPARE_BATCHES: usize = 4;

/// A running sensor on its own thread.
pub struct SensorThread {
    pub status: SensorStatus,
    /// The in-kernel kill maps (`None` if they could not be opened).
    pub kill_maps: Option<Arc<sensor::KillMaps>>,
    /// Events whose process the kernel killed.
    pub kernel_kills: sensor::KernelKills,
    /// Run-queue latency per cgroup (`None` if the maps could not be opened).
    pub runq: Option<Arc<sensor::RunQueueMaps>>,
    /// Syscall counts per cgroup (`None` unless `syscall_counts` is on).
    pub syscall_counts: Option<Arc<sensor::SyscallCountMaps>>,
    /// The in-kernel prefilter (`None` if its map could not be opened).
    pub prefilter: Option<Arc<sensor::Prefilter>>,
    /// Syscall latency per cgroup (`None` unless `syscall_latency` is on).
    pub syscall_latency: Option<Arc<sensor::SyscallLatencyMaps>>,
    /// The per-flow table's switch, offered with the prefilter while
    /// `sensor.flows.records` is `auto` (`None`: the table stays on).
    pub flow_records: Option<Arc<sensor::FlowRecords>>,
    /// Network traffic per cgroup from the flow programs' per-container
    /// counters (empty without them).
    pub traffic: Traffic,
    batches: mpsc::Receiver<Vec<Event>>,
    spare: Spare,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SensorStats>>,
    /// The recorder's per-cgroup syscall sets, read after the final drain.
    syscall_sets: Arc<Mutex<Vec<(u64, SyscallSet)>>>,
    thread: Option<JoinHandle<()>>,
}

impl SensorThread {
    /// Loads and attaches the BPF programs; returns once hooks are attached.
    pub async fn start(config: SensorConfig) -> Result<SensorThread> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (batch_tx, batches) = mpsc::channel(CHANNEL_BATCHES);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(SensorStats::default()));
        let syscall_sets = Arc::new(Mutex::new(Vec::new()));
        let traffic = Traffic::default();
        let spare = Spare::default();
        let thread = {
            let shared = Shared {
                spare: spare.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
                syscall_sets: syscall_sets.clone(),
                traffic: traffic.clone(),
            };
            std::thread::Builder::new()
                .name("rampart-sensor".into())
                .spawn(move || sensor_loop(config, ready_tx, batch_tx, shared))
                .context("spawning the sensor thread")?
        };
        let Ready {
            status,
            kill_maps,
            kernel_kills,
            runq,
            syscall_counts,
            prefilter,
            syscall_latency,
            flow_records,
        } = ready_rx.await.context("sensor thread ended before it was ready")??;
        Ok(SensorThread {
            status,
            kill_maps,
            kernel_kills,
            runq,
            syscall_counts,
            prefilter,
            syscall_latency,
            flow_records,
            traffic,
            batches,
            spare,
            stop,
            stats,
            syscall_sets,
            thread: Some(thread),
        })
    }

    pub async fn next_batch(&mut self) -> Option<Vec<Event>> {
        self.batches.recv().await
    }

    /// Hand a batch back, its events done with, for the sensor thread to fill
    /// again: a batch is ~400 KiB, which malloc would otherwise map and unmap
    /// each time.
    pub fn recycle(&self, batch: Vec<Event>) {
        recycle(&self.spare, batch);
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

    /// The recorder's syscall sets per cgroup id; filled once [`Self::stop`]
    /// has returned (empty unless the config turned recording on).
    pub fn syscall_sets(&self) -> Vec<(u64, SyscallSet)> {
        self.syscall_sets.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for SensorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What the sensor thread shares with its owner.
struct Shared {
    spare: Spare,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SensorStats>>,
    syscall_sets: Arc<Mutex<Vec<(u64, SyscallSet)>>>,
    traffic: Traffic,
}

/// Emptied batches for the sensor thread to reuse (at most SPARE_BATCHES).
type Spare = Arc<Mutex<Vec<Vec<Event>>>>;

fn recycle(spare: &Spare, mut batch: Vec<Event>) {
    batch.clear();
    if let Ok(mut spare) = spare.lock() {
        if spare.len() < SPARE_BATCHES {
            spare.push(batch);
        }
    }
}

fn new_batch(spare: &Spare) -> Vec<Event> {
    spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_else(|| Vec::with_capacity(MAX_BATCH))
}

/// Network traffic per cgroup id, as of the flow table's last drain.
pub type Traffic = Arc<Mutex<std::collections::HashMap<u64, sensor::CgroupTraffic>>>;

/// What the sensor thread hands over once the hooks are attached.
struct Ready {
    status: SensorStatus,
    kill_maps: Option<Arc<sensor::KillMaps>>,
    kernel_kills: sensor::KernelKills,
    runq: Option<Arc<sensor::RunQueueMaps>>,
    syscall_counts: Option<Arc<sensor::SyscallCountMaps>>,
    prefilter: Option<Arc<sensor::Prefilter>>,
    syscall_latency: Option<Arc<sensor::SyscallLatencyMaps>>,
    flow_records: Option<Arc<sensor::FlowRecords>>,
}

fn sensor_loop(
    config: SensorConfig,
    ready: oneshot::Sender<Result<Ready>>,
    batches: mpsc::Sender<Vec<Event>>,
    shared: Shared,
) {
    let recording = config.record_syscalls;
    let counting = config.syscall_counts;
    let offer_prefilter = config.prefilter;
    let timing = config.syscall_latency;
    let (flow_config, include_host) = (config.flows.clone(), config.include_host);
    let mut sensor = match Sensor::start(config) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow::Error::new(e).context("starting the eBPF sensor")));
            return;
        }
    };
    let kill_maps = match sensor.kill_maps() {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            tracing::warn!(error = %e, "in-kernel kill maps unavailable");
            None
        }
    };
    let mut flows = flow_config
        .as_ref()
        .filter(|f| f.enabled)
        .and_then(|f| Flows::start(f, include_host, shared.traffic.clone()));
    let runq = match sensor.runq_maps() {
        Ok(m) => Some(Arc::new(m)),
        Err(e) => {
            tracing::warn!(error = %e, "run-queue latency maps unavailable");
            None
        }
    };
    let syscall_counts = match sensor.syscall_count_maps() {
        Ok(m) if counting => Some(Arc::new(m)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "syscall count maps unavailable");
            None
        }
    };
    let prefilter = match sensor.prefilter() {
        Ok(_) if !offer_prefilter => None,
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::warn!(error = %e, "in-kernel prefilter unavailable: every event type is reported");
            None
        }
    };
    let syscall_latency = match sensor.syscall_latency_maps() {
        Ok(m) if timing => Some(Arc::new(m)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "syscall latency maps unavailable");
            None
        }
    };
    // The table's switch goes with the prefilter: whoever narrows one to what
    // the rules use decides the other.
    let auto = flow_config.as_ref().is_some_and(|f| f.records == sensor::FlowRecordsMode::Auto);
    let flow_records = match (&flows, &prefilter) {
        (Some(f), Some(_)) if auto => match f.table.records() {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                tracing::warn!(error = %e, "flow table switch unavailable: the table stays on");
                None
            }
        },
        _ => None,
    };
    let _ = ready.send(Ok(Ready {
        status: sensor.status(),
        kill_maps,
        kernel_kills: sensor.kernel_kills(),
        runq,
        syscall_counts,
        prefilter,
        syscall_latency,
        flow_records,
    }));
    let mut consumer_gone = false;
    loop {
        // Read the flag before draining so the last drain happens after stop.
        let stopping = shared.stop.load(Ordering::SeqCst);
        let mut batch = new_batch(&shared.spare);
        let mut sent_any = false;
        // A full ring holds far more than we want in memory at once: hand over
        // bounded batches while draining, so the channel bound is a memory bound.
        loop {
            let room = MAX_BATCH - batch.len();
            match sensor.poll_into(&mut batch, room) {
                Ok(taken) => {
                    if batch.len() >= MAX_BATCH {
                        let full = std::mem::replace(&mut batch, new_batch(&shared.spare));
                        consumer_gone |= batches.blocking_send(full).is_err();
                        sent_any = true;
                    }
                    if taken < room || consumer_gone {
                        break; // the ring is empty (or no one reads)
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "ring buffer drain failed");
                    break;
                }
            }
        }
        // DNS records come on their own ring: drained after the sensor's and
        // merged by time, so that an answer reaches the process table (and
        // its names cache) before a connect that followed it.
        if let Some(f) = flows.as_mut() {
            if f.drain_dns(&mut batch) {
                batch.sort_by_key(|ev| ev.ts_ns);
            }
        }
        if let Some(f) = flows.as_mut() {
            let events = if stopping { f.finish() } else { f.drain_if_due() };
            for chunk in events.chunks(MAX_BATCH) {
                consumer_gone |= batches.blocking_send(chunk.to_vec()).is_err();
            }
        }
        if let Ok(mut s) = shared.stats.lock() {
            *s = sensor.stats();
            s.flow_table = flows.as_ref().map(|f| f.stats);
        }
        // Drain on a timer (the kernel never wakes us); skip the sleep only when
        // a full batch suggests the ring holds more.
        let pause = !sent_any;
        if !batch.is_empty() {
            consumer_gone |= batches.blocking_send(batch).is_err();
        } else {
            recycle(&shared.spare, batch); // an idle drain allocates nothing
        }
        if consumer_gone || stopping {
            if recording {
                if let Ok(mut sets) = shared.syscall_sets.lock() {
                    *sets = sensor.syscall_sets();
                }
            }
            return;
        }
        if pause {
            std::thread::sleep(sensor::POLL_PERIOD);
        }
    }
}

/// Flow accounting on the sensor thread: the kernel table, drained on its
/// own period into `flow` events (attributed to containers downstream, by
/// cgroup id, like every event).
struct Flows {
    table: sensor::FlowTable,
    tracker: sensor::FlowTracker,
    period: std::time::Duration,
    next: std::time::Instant,
    boot_to_wall_ns: i128,
    stats: sensor::FlowTableStats,
    dns: Option<sensor::dns::DnsReader>,
    /// Scan and flood detection over the kernel's per-container counters.
    netstat: Option<sensor::NetstatTracker>,
    /// Each cgroup's traffic, added up from the same counters.
    totals: sensor::TrafficTotals,
    /// Where each drain leaves the per-cgroup traffic totals (for /metrics).
    traffic: Traffic,
}

impl Flows {
    /// Loads and attaches the flow programs; on failure the agent runs on
    /// without flows (said in the log).
    fn start(cfg: &sensor::FlowConfig, include_host: bool, traffic: Traffic) -> Option<Flows> {
        let started = runtime::find_cgroup2_mount()
            .map_err(anyhow::Error::new)
            .and_then(|root| Ok(sensor::FlowTable::start(cfg, &root, include_host)?));
        let mut table = match started {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "flow accounting not started");
                return None;
            }
        };
        if !cfg.private {
            if let Err(e) = table.pin(std::path::Path::new(sensor::flows::PIN_DIR)) {
                tracing::warn!(error = %e, "flow table not pinned: `rampart flows` will use its own");
            }
        }
        let wall = wall_clock_ns() as i128;
        let boot_to_wall_ns = wall - sensor::flows::boot_now_ns() as i128;
        let dns = if cfg.dns {
            sensor::dns::DnsReader::new(&table.dns_ring, boot_to_wall_ns)
                .map_err(|e| tracing::warn!(error = %e, "DNS capture not started"))
                .ok()
        } else {
            None
        };
        Some(Flows {
            dns,
            stats: table.stats(),
            table,
            tracker: sensor::FlowTracker::new(cfg),
            netstat: cfg.detect.enabled.then(|| sensor::NetstatTracker::new(&cfg.detect)),
            totals: sensor::TrafficTotals::default(),
            period: cfg.drain_interval(),
            next: std::time::Instant::now() + cfg.drain_interval(),
            boot_to_wall_ns,
            traffic,
        })
    }

    /// Appends the `dns` events the ring holds; true if there were any.
    fn drain_dns(&mut self, out: &mut Vec<Event>) -> bool {
        let Some(dns) = self.dns.as_mut() else { return false };
        let before = out.len();
        dns.drain(out);
        out.len() > before
    }

    /// The flows the kernel ended since the last poll; the whole table too
    /// when its period is due.
    fn drain_if_due(&mut self) -> Vec<Event> {
        let now = sensor::flows::boot_now_ns();
        if std::time::Instant::now() < self.next {
            let reports = self.tracker.drain_ended(&mut self.table);
            return reports.iter().map(|r| r.to_event(now, self.boot_to_wall_ns)).collect();
        }
        self.next = std::time::Instant::now() + self.period;
        let reports = self.tracker.drain(&mut self.table, now);
        self.update_stats();
        let mut events: Vec<Event> = reports.iter().map(|r| r.to_event(now, self.boot_to_wall_ns)).collect();
        let samples = self.table.netstat();
        let mut idle = self.totals.observe(now, &samples);
        if let Some(t) = self.netstat.as_mut() {
            let (windows, quiet) = t.observe(now, self.period.as_nanos() as u64, samples);
            idle.extend(quiet);
            let wall = (now as i128 + self.boot_to_wall_ns).max(0) as u64;
            events.extend(windows.into_iter().map(|(cgid, w)| sensor::netstat::to_event(cgid, w, wall)));
        }
        idle.sort_unstable();
        idle.dedup();
        for cgid in idle {
            self.table.forget_netstat(cgid);
            self.totals.forget(cgid);
        }
        self.publish_traffic();
        events
    }

    /// At stop: every flow still open ends (reason `stopped`).
    fn finish(&mut self) -> Vec<Event> {
        let now = sensor::flows::boot_now_ns();
        let mut reports = self.tracker.drain(&mut self.table, now);
        reports.extend(self.tracker.finish(&mut self.table));
        self.update_stats();
        self.totals.observe(now, &self.table.netstat());
        self.publish_traffic();
        reports.iter().map(|r| r.to_event(now, self.boot_to_wall_ns)).collect()
    }

    fn publish_traffic(&self) {
        if let Ok(mut t) = self.traffic.lock() {
            t.clone_from(self.totals.totals());
        }
    }

    fn update_stats(&mut self) {
        let st = self.table.stats();
        if st.failed_inserts > self.stats.failed_inserts {
            tracing::warn!(
                failed_inserts = st.failed_inserts,
                lost_packets = st.lost_packets,
                max_entries = st.max_entries,
                "flow table full: packets of new flows counted only in the table's overflow counters \
                 (raise sensor.flows.max_entries)"
            );
        }
        if st.dns_lost > self.stats.dns_lost {
            tracing::warn!(lost = st.dns_lost, "DNS ring full: DNS messages not reported");
        }
        self.stats = st;
    }
}

/// Process table, container attribution and user names for events off the
/// sensor.
pub struct Enricher {
    pub processes: ProcessTable,
    pub containers: ContainerRegistry,
    /// passwd/group of each container, for user and group names.
    pub users: state::users::UserDbs,
}

impl Enricher {
    pub fn new(processes: ProcessTable, containers: ContainerRegistry) -> Self {
        let users = state::users::UserDbs::new(processes.config().proc_root.clone());
        Enricher { processes, containers, users }
    }

    /// Applies the event to the process table and fills in process and container
    /// details (what an exec record lacks was read before, by [`feed`]). Waits
    /// (briefly, bounded by the registry) only for a container seen for the
    /// first time.
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
        // Names from the container's own passwd and group (cached per container).
        if ev.process.pid != 0 {
            ev.process.users = self.users.names(ev);
        }
    }
}

/// The stream's figures, handed to the consumer on each tick and at the end.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub events_seen: u64,
    pub events_accepted: u64,
    pub sensor: SensorStats,
    pub processes: state::TableStats,
}

/// Counts for the end-of-run summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Events that came off the sensor.
    pub seen: u64,
    /// Events that passed the filter and reached the consumer.
    pub accepted: u64,
}

/// What a command does with each enriched event that passed the filter.
pub trait Consumer {
    /// `processes` is the process table after this event was applied (for
    /// lineage such as a rule's `proc.aname[2]`).
    fn event(&mut self, ev: &Event, processes: &ProcessTable) -> std::io::Result<()>;
    /// Called after each batch.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// SIGHUP or a file change: reload configuration (rules). Must keep
    /// working on failure.
    fn reload(&mut self) {}
    /// Asked on each tick: whether watched files changed and a reload is due.
    fn reload_due(&mut self) -> bool {
        false
    }
    /// Called once the hooks are attached, before the first event, with what
    /// the running sensor offers besides events.
    fn started(&mut self, _sensor: &SensorHandles) {}
    /// Asked after each batch and on a short tick: true ends the stream (e.g. a
    /// recording whose containers have all exited).
    fn finished(&mut self) -> bool {
        false
    }
    /// Called on a short tick while the stream runs, with the stream's figures
    /// (for work that waits on time, metrics and drop alerts).
    fn tick(&mut self, _progress: &Progress) {}
    /// Called once after the last event, with the final figures: emit whatever
    /// is still held back.
    fn end(&mut self, _progress: &Progress) {}
    /// Whether events need the process environment (a loaded rule reads
    /// `proc.env`): asked at start and after each reload.
    fn reads_env(&self) -> bool {
        false
    }
}

/// The running sensor's kernel maps and the registry, for consumers that act
/// in the kernel (the agent's in-kernel kill).
pub struct SensorHandles {
    /// The in-kernel kill maps (`None` if they could not be opened).
    pub kill_maps: Option<Arc<sensor::KillMaps>>,
    /// Events whose process the kernel killed.
    pub kernel_kills: sensor::KernelKills,
    pub containers: ContainerRegistry,
    /// Run-queue latency per cgroup.
    pub runq: Option<Arc<sensor::RunQueueMaps>>,
    /// Syscall counts per cgroup, when counted.
    pub syscall_counts: Option<Arc<sensor::SyscallCountMaps>>,
    /// The in-kernel prefilter (`None` if its map could not be opened): a
    /// consumer that needs only some event types says which.
    pub prefilter: Option<Arc<sensor::Prefilter>>,
    /// Syscall latency per cgroup, when timed.
    pub syscall_latency: Option<Arc<sensor::SyscallLatencyMaps>>,
    /// The per-flow table's switch (see [`SensorThread::flow_records`]).
    pub flow_records: Option<Arc<sensor::FlowRecords>>,
    /// Network traffic per cgroup (empty without the flow programs).
    pub traffic: Traffic,
}

/// The end-of-stream figures.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub counts: Counts,
    pub sensor: SensorStats,
    /// Per cgroup id, when the sensor config turned recording on.
    pub syscall_sets: Vec<(u64, SyscallSet)>,
    /// The process table and the container registry at the end (their bounds
    /// are what a soak checks).
    pub processes: state::TableStats,
    pub containers: usize,
}

impl StreamSummary {
    /// Everything that was lost: ring buffer overflows and undecodable records.
    pub fn dropped(&self) -> u64 {
        self.sensor.lost_total() + self.sensor.decode_errors
    }

    /// The state line: what the agent holds in memory at the end.
    pub fn state_line(&self) -> String {
        format!(
            "process table {} entries ({} live, {} exited), {} containers known",
            self.processes.entries, self.processes.live, self.processes.exited, self.containers
        )
    }

    /// The summary line every streaming command prints on stderr.
    pub fn line(&self) -> String {
        format!(
            "{} events seen, {} dropped (lost in kernel per cpu {:?}; {} undecodable)",
            self.counts.seen,
            self.dropped(),
            self.sensor.lost,
            self.sensor.decode_errors
        )
    }
}

/// Runs the sensor and feeds the consumer until SIGINT/SIGTERM (or until the
/// consumer's output is closed). Prints `rampart: sensor ready` on stderr once
/// the hooks are attached.
pub async fn stream(
    config: SensorConfig,
    containers: ContainerRegistry,
    filter: &EventFilter,
    consumer: &mut dyn Consumer,
) -> Result<StreamSummary> {
    let table = state::TableConfig { read_env: consumer.reads_env(), ..Default::default() };
    let processes = ProcessTable::scan(table).context("scanning /proc")?;
    let mut sensor = SensorThread::start(config).await?;
    for hook in &sensor.status.hooks {
        if let sensor::HookState::Failed { reason } = &hook.state {
            tracing::warn!(hook = %hook.hook, %reason, "hook not attached");
        }
    }
    // Network policy denials: a second source (and the policy reconciler).
    let mut netdeny = NetDenyFeed::start(&containers);
    // Handlers first: a SIGHUP right after "ready" must reload, not kill.
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    eprintln!("rampart: sensor ready");
    consumer.started(&SensorHandles {
        kill_maps: sensor.kill_maps.clone(),
        kernel_kills: sensor.kernel_kills.clone(),
        containers: containers.clone(),
        runq: sensor.runq.clone(),
        syscall_counts: sensor.syscall_counts.clone(),
        prefilter: sensor.prefilter.clone(),
        syscall_latency: sensor.syscall_latency.clone(),
        flow_records: sensor.flow_records.clone(),
        traffic: sensor.traffic.clone(),
    });

    let mut enricher = Enricher::new(processes, containers);
    let mut counts = Counts::default();
    let mut output_open = true;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut heap_trim = HeapTrim::default();
    loop {
        tokio::select! {
            batch = sensor.next_batch() => {
                let Some(mut batch) = batch else { break };
                output_open = feed(&mut enricher, filter, &mut batch, &mut counts, consumer).await;
                sensor.recycle(batch);
                if !output_open {
                    break; // stdout closed: stop like any filter in a pipe would
                }
                if consumer.finished() {
                    break;
                }
            }
            Some(mut batch) = respond::deny::feed::next(&mut netdeny) => {
                output_open = feed(&mut enricher, filter, &mut batch, &mut counts, consumer).await;
                if !output_open {
                    break;
                }
            }
            _ = tick.tick() => {
                enricher.processes.expire(wall_clock_ns());
                heap_trim.maybe_trim();
                consumer.tick(&progress(&counts, &sensor, &enricher));
                if consumer.finished() {
                    break;
                }
                if consumer.reload_due() {
                    consumer.reload();
                    enricher.processes.set_read_env(consumer.reads_env());
                    netdeny = netdeny.or_else(|| NetDenyFeed::start(&enricher.containers));
                }
            }
            _ = sighup.recv() => {
                consumer.reload();
                enricher.processes.set_read_env(consumer.reads_env());
                // A policy store unusable at start may be there now.
                netdeny = netdeny.or_else(|| NetDenyFeed::start(&enricher.containers));
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    let mut rest = sensor.stop().await;
    if let Some(mut nd) = netdeny.take() {
        rest.extend(nd.stop().await);
    }
    for mut batch in rest {
        if output_open {
            output_open = feed(&mut enricher, filter, &mut batch, &mut counts, consumer).await;
        } else {
            counts.seen += batch.len() as u64;
        }
    }
    consumer.end(&progress(&counts, &sensor, &enricher));
    Ok(StreamSummary {
        counts,
        sensor: sensor.stats(),
        syscall_sets: sensor.syscall_sets(),
        processes: enricher.processes.stats(),
        containers: enricher.containers.containers().len(),
    })
}

/// Gives the heap's free pages back to the kernel now and then. After a burst
/// (a storm of short-lived processes, thousands of alerts) the tables shrink
/// back, but glibc keeps the freed memory in its arenas: without a trim the
/// agent's RSS stays at its high-water mark.
struct HeapTrim {
    last: std::time::Instant,
}

impl Default for HeapTrim {
    fn default() -> Self {
        HeapTrim { last: std::time::Instant::now() }
    }
}

impl HeapTrim {
    const PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

    fn maybe_trim(&mut self) {
        if self.last.elapsed() < Self::PERIOD {
            return;
        }
        self.last = std::time::Instant::now();
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only walks and releases the allocator's own free
        // memory; it takes the arenas' locks itself.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// The wall clock in ns since the epoch (the clock of events' `ts_ns`).
fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn progress(counts: &Counts, sensor: &SensorThread, enricher: &Enricher) -> Progress {
    Progress {
        events_seen: counts.seen,
        events_accepted: counts.accepted,
        sensor: sensor.stats(),
        processes: enricher.processes.stats(),
    }
}

/// Enriches, filters and consumes one batch; false once the output is closed.
async fn feed(
    enricher: &mut Enricher,
    filter: &EventFilter,
    batch: &mut [Event],
    counts: &mut Counts,
    consumer: &mut dyn Consumer,
) -> bool {
    let mut result = Ok(());
    // What exec records lack is read from /proc for the whole batch first:
    // enriching an earlier event may wait on a runtime (a new container), and
    // a short-lived process read after that wait is gone.
    for ev in batch.iter_mut() {
        enricher.processes.read_exec_details(ev);
    }
    // Events are worked on in place: an event moved out of the batch is a
    // ~400-byte copy.
    for ev in batch.iter_mut() {
        counts.seen += 1;
        if result.is_err() {
            continue;
        }
        enricher.enrich(ev).await;
        if filter.accepts(ev) {
            counts.accepted += 1;
            result = consumer.event(ev, &enricher.processes);
        }
    }
    match result.and_then(|()| consumer.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => {
            tracing::error!(error = %e, "writing output");
            false
        }
    }
}

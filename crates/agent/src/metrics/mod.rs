//! What `rampart run` says about itself: the figures behind `/metrics` and
//! the answers of `/healthz` and `/readyz` (served by [`server`]).
//!
//! Hot paths only bump plain counters or hand over a snapshot on the
//! pipeline's tick; everything else (outputs, runtimes, the agent's own CPU
//! and memory) is read when a scraper asks.

pub mod exposition;
pub mod server;

use super::pipeline::Progress;
use alerts::Dispatcher;
use exposition::{Exposition, Format};
use model::Priority;
use respond::actions::ActionCounts;
use runtime::ContainerRegistry;
use sensor::runq::RunQueueHistogram;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Containers given per-container series (by id order); the rest are left
/// out and counted in `rampart_containers_without_series`.
pub const MAX_CONTAINER_SERIES: usize = 500;

/// Cgroups in the kernel's run-queue table past which the ones that are no
/// known container are dropped (its size is 4096).
const RUNQ_PRUNE_AT: usize = 3072;

/// Syscalls per container in `rampart_container_syscalls_total`: its most
/// frequent ones, so that the series stay bounded (512 numbers x containers).
pub const SYSCALL_SERIES_PER_CONTAINER: usize = 20;

/// Cgroups in the kernel's syscall count table past which the ones that are
/// no known container are dropped (its size is 1024).
const SYSCALL_COUNTS_PRUNE_AT: usize = 768;

/// The kernel's syscall latency histograms, per container id and syscall
/// number; the syscalls not timed (table full); one in `sample` timed.
struct LatencyPerContainer {
    per: HashMap<String, BTreeMap<u32, RunQueueHistogram>>,
    uncounted: u64,
    sample: u32,
}

/// Syscalls per container in `rampart_container_syscall_latency_seconds`:
/// its most frequently timed ones (a histogram is ~20 series).
pub const SYSCALL_LATENCY_SERIES_PER_CONTAINER: usize = 5;

/// (cgroup, syscall) histograms in the kernel's latency table past which the
/// cgroups that are no known container are dropped (its size is 16384).
const SYSCALL_LATENCY_PRUNE_AT: usize = 12288;

/// Distinct rule names kept in the per-rule counters. Rules come and go with
/// reloads; past this, new names are counted under `rule="(other)"`.
pub const MAX_RULE_SERIES: usize = 2048;

#[derive(Debug, Default)]
struct RuleCounts {
    /// Per rule: its priority and the matches so far.
    matches: BTreeMap<String, (Priority, u64)>,
    loaded: usize,
}

/// Shared between the pipeline, the detector and the HTTP server.
pub struct AgentMetrics {
    /// Weak: a scrape connection still open at exit must not keep the
    /// dispatcher from its shutdown (which flushes the queued alerts).
    dispatcher: std::sync::Weak<Dispatcher>,
    registry: ContainerRegistry,
    actions: Option<Arc<ActionCounts>>,
    progress: Mutex<Progress>,
    rules: Mutex<RuleCounts>,
    sensor_attached: AtomicBool,
    rules_loaded: AtomicBool,
    evaluations: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_refused: AtomicU64,
    drop_alerts: AtomicU64,
    alerts_held: AtomicU64,
    /// Events evaluated per cgroup id (containers only), as of the last tick.
    events_per_cgroup: Mutex<HashMap<u64, CgroupCounts>>,
    /// Optional features and whether the agent's privileges allow them
    /// (name, enabled, why not).
    features: Mutex<Vec<(&'static str, bool, String)>>,
    /// The kernel's run-queue latency histograms, once the sensor runs.
    runq: Mutex<Option<Arc<sensor::RunQueueMaps>>>,
    /// The kernel's per-container syscall counters (`sensor.syscall_counts`).
    syscalls: Mutex<Option<Arc<sensor::SyscallCountMaps>>>,
    /// The kernel's per-container syscall latency (`sensor.syscall_latency`).
    syscall_latency: Mutex<Option<Arc<sensor::SyscallLatencyMaps>>>,
    /// Network traffic per cgroup from the flow programs' per-container counters.
    traffic: Mutex<Option<super::pipeline::Traffic>>,
}

/// What the detector counts per container cgroup.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CgroupCounts {
    pub events: u64,
    pub execs: u64,
}

/// Readiness, and what is still missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub sensor: bool,
    pub rules: bool,
    /// Every runtime rampart found a socket for has answered at least once.
    pub runtimes: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.sensor && self.rules && self.runtimes
    }
}

impl AgentMetrics {
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        registry: ContainerRegistry,
        actions: Option<Arc<ActionCounts>>,
    ) -> Self {
        AgentMetrics {
            dispatcher: Arc::downgrade(&dispatcher),
            registry,
            actions,
            progress: Mutex::default(),
            rules: Mutex::default(),
            sensor_attached: AtomicBool::new(false),
            rules_loaded: AtomicBool::new(false),
            evaluations: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_refused: AtomicU64::new(0),
            drop_alerts: AtomicU64::new(0),
            alerts_held: AtomicU64::new(0),
            events_per_cgroup: Mutex::default(),
            features: Mutex::default(),
            runq: Mutex::default(),
            syscalls: Mutex::default(),
            syscall_latency: Mutex::default(),
            traffic: Mutex::default(),
        }
    }

    /// Records which optional features the privilege check left on.
    pub fn set_features(&self, features: Vec<(&'static str, bool, String)>) {
        *self.features.lock().unwrap_or_else(|e| e.into_inner()) = features;
    }

    pub fn registry(&self) -> &ContainerRegistry {
        &self.registry
    }

    pub fn sensor_attached(&self, runq: Option<Arc<sensor::RunQueueMaps>>) {
        *lock(&self.runq) = runq;
        self.sensor_attached.store(true, Ordering::Relaxed);
    }

    /// Turns on the per-container network series (from the flow programs' per-container counters).
    pub fn traffic_attached(&self, traffic: super::pipeline::Traffic) {
        *lock(&self.traffic) = Some(traffic);
    }

    /// Network traffic per known container id (cgroups merged).
    fn traffic_per_container(&self) -> HashMap<String, sensor::CgroupTraffic> {
        let Some(traffic) = lock(&self.traffic).clone() else { return HashMap::new() };
        traffic_per_container(&self.registry, &traffic)
    }

    /// Turns on `rampart_container_syscall_latency_seconds` (the sensor times).
    pub fn syscall_latency_attached(&self, maps: Arc<sensor::SyscallLatencyMaps>) {
        *lock(&self.syscall_latency) = Some(maps);
    }

    /// Syscall latency per known container id and syscall number (cgroups
    /// merged), pruning the kernel's table of cgroups that are no container
    /// any more when it fills; and the syscalls not timed (table full).
    fn syscall_latency_per_container(&self) -> Option<LatencyPerContainer> {
        let maps = lock(&self.syscall_latency).clone()?;
        let all = maps.read();
        let mut per: HashMap<String, BTreeMap<u32, RunQueueHistogram>> = HashMap::new();
        let mut stale = 0;
        for (cgroup, nr, h) in &all {
            match self.registry.resolve_cached(*cgroup) {
                runtime::Resolution::Container(c) => {
                    per.entry(c.id.clone()).or_default().entry(*nr).or_default().merge(h)
                }
                _ => stale += 1,
            }
        }
        if stale > 0 && all.len() >= SYSCALL_LATENCY_PRUNE_AT {
            maps.retain(|cg| matches!(self.registry.resolve_cached(cg), runtime::Resolution::Container(_)));
        }
        Some(LatencyPerContainer { per, uncounted: maps.uncounted(), sample: maps.sample() })
    }

    /// Turns on `rampart_container_syscalls_total` (the sensor counts).
    pub fn syscall_counts_attached(&self, maps: Arc<sensor::SyscallCountMaps>) {
        *lock(&self.syscalls) = Some(maps);
    }

    /// Syscall counts per known container id (cgroups merged, number ->
    /// count), pruning the kernel's table of cgroups that are no container
    /// any more when it fills; and the syscalls not counted (table full).
    fn syscalls_per_container(&self) -> Option<(HashMap<String, BTreeMap<u32, u64>>, u64)> {
        let maps = lock(&self.syscalls).clone()?;
        let all = maps.read();
        let mut per: HashMap<String, BTreeMap<u32, u64>> = HashMap::new();
        let mut stale = 0;
        for (cgroup, counts) in &all {
            match self.registry.resolve_cached(*cgroup) {
                runtime::Resolution::Container(c) => {
                    let m = per.entry(c.id.clone()).or_default();
                    for (nr, n) in counts {
                        *m.entry(*nr).or_default() += n;
                    }
                }
                _ => stale += 1,
            }
        }
        if stale > 0 && all.len() >= SYSCALL_COUNTS_PRUNE_AT {
            maps.retain(|cg| matches!(self.registry.resolve_cached(cg), runtime::Resolution::Container(_)));
        }
        Some((per, maps.uncounted()))
    }

    /// Run-queue latency per known container id (cgroups merged), pruning the
    /// kernel's table of cgroups that are no container any more when it fills.
    pub fn runq_per_container(&self) -> (HashMap<String, RunQueueHistogram>, u64) {
        let Some(maps) = lock(&self.runq).clone() else { return (HashMap::new(), 0) };
        let all = maps.read();
        let mut per: HashMap<String, RunQueueHistogram> = HashMap::new();
        let mut stale = 0;
        for (cgroup, h) in &all {
            match self.registry.resolve_cached(*cgroup) {
                runtime::Resolution::Container(c) => per.entry(c.id.clone()).or_default().merge(h),
                _ => stale += 1,
            }
        }
        if stale > 0 && all.len() >= RUNQ_PRUNE_AT {
            maps.retain(|cg| matches!(self.registry.resolve_cached(cg), runtime::Resolution::Container(_)));
        }
        (per, maps.uncounted())
    }

    /// A rule set is in force (at start, and after each reload).
    pub fn rules_loaded(&self, count: usize) {
        lock(&self.rules).loaded = count;
        self.rules_loaded.store(true, Ordering::Relaxed);
    }

    pub fn reload(&self, ok: bool) {
        let c = if ok { &self.reloads_ok } else { &self.reloads_refused };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rule_matched(&self, rule: &str, priority: Priority) {
        let mut r = lock(&self.rules);
        let key =
            if r.matches.contains_key(rule) || r.matches.len() < MAX_RULE_SERIES { rule } else { "(other)" };
        match r.matches.get_mut(key) {
            Some(e) => e.1 += 1,
            None => {
                r.matches.insert(key.to_string(), (priority, 1));
            }
        }
    }

    /// The detector's figures and the pipeline's, on its tick.
    pub fn tick(
        &self,
        progress: Progress,
        evaluations: u64,
        held: usize,
        per_cgroup: &HashMap<u64, CgroupCounts>,
    ) {
        *lock(&self.progress) = progress;
        lock(&self.events_per_cgroup).clone_from(per_cgroup);
        self.evaluations.store(evaluations, Ordering::Relaxed);
        self.alerts_held.store(held as u64, Ordering::Relaxed);
    }

    pub fn drop_alert_raised(&self) {
        self.drop_alerts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn readiness(&self) -> Readiness {
        let runtimes = self.registry.status().runtimes.iter().all(|r| r.connects > 0);
        Readiness {
            sensor: self.sensor_attached.load(Ordering::Relaxed),
            rules: self.rules_loaded.load(Ordering::Relaxed),
            runtimes,
        }
    }

    /// The exposition a scraper gets.
    pub fn render(&self, format: Format) -> String {
        let mut e = Exposition::new(format);
        let no: &[(&str, &str)] = &[];
        e.gauge(
            "rampart_build_info",
            "rampart's version (value 1).",
            [(&[("version", env!("CARGO_PKG_VERSION"))][..], 1.0)],
        );

        let ready = self.readiness();
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        e.gauge(
            "rampart_ready",
            "1 when the sensor is attached, rules are loaded and every runtime answered once.",
            [(no, b(ready.ready()))],
        );
        e.gauge(
            "rampart_component_ready",
            "Readiness per component.",
            [
                (&[("component", "sensor")][..], b(ready.sensor)),
                (&[("component", "rules")][..], b(ready.rules)),
                (&[("component", "runtimes")][..], b(ready.runtimes)),
            ],
        );

        let p = lock(&self.progress).clone();
        e.counter("rampart_events_seen", "Events that came off the sensor.", [(no, p.events_seen)]);
        e.counter(
            "rampart_events_accepted",
            "Events that passed the agent's filter and were evaluated.",
            [(no, p.events_accepted)],
        );
        let cpus: Vec<String> = (0..p.sensor.lost.len()).map(|i| i.to_string()).collect();
        e.counter(
            "rampart_events_lost",
            "Events the kernel could not hand over (ring buffer full), per CPU.",
            cpus.iter()
                .zip(&p.sensor.lost)
                .map(|(cpu, n)| (vec![("cpu", cpu.as_str())], *n))
                .collect::<Vec<_>>()
                .iter()
                .map(|(l, n)| (&l[..], *n)),
        );
        e.counter(
            "rampart_events_lost_by_type",
            "The same losses by event type (evt.type names; unknown: lost before the type was known), updated at most once a second.",
            p.sensor.lost_by_type.iter().map(|(t, n)| ([("type", *t)], *n)).collect::<Vec<_>>().iter().map(|(l, n)| (&l[..], *n)),
        );
        if let (Some(pending), Some(peak)) = (p.sensor.ring_pending_bytes, p.sensor.ring_peak_bytes) {
            let size = p.sensor.ring_bytes.max(1) as f64;
            e.gauge(
                "rampart_ring_buffer_size_bytes",
                "Size of the kernel's event ring buffer.",
                [(no, size)],
            );
            e.gauge(
                "rampart_ring_buffer_pending_bytes",
                "Bytes waiting in the event ring buffer when the agent last began draining it.",
                [(no, pending as f64)],
            );
            e.gauge(
                "rampart_ring_buffer_fill_ratio",
                "Fill of the event ring buffer (0 to 1): when the last drain began, and the most since start.",
                [(&[("at", "last_drain")][..], pending as f64 / size), (&[("at", "peak")][..], peak as f64 / size)],
            );
        }
        e.counter(
            "rampart_events_undecodable",
            "Kernel records that could not be decoded.",
            [(no, p.sensor.decode_errors)],
        );
        e.counter(
            "rampart_events_truncated",
            "Events with a path or argument cut to fit.",
            [(no, p.sensor.truncated)],
        );
        if let Some(ft) = &p.sensor.flow_table {
            e.gauge(
                "rampart_flow_table_entries",
                "Flows in the kernel flow table.",
                [(no, ft.entries as f64)],
            );
            e.gauge(
                "rampart_flow_table_max_entries",
                "Size of the kernel flow table (sensor.flows.max_entries).",
                [(no, f64::from(ft.max_entries))],
            );
            e.counter(
                "rampart_flow_table_failed_inserts",
                "Packets of new flows that found the kernel flow table full (counted apart, not in a flow).",
                [(no, ft.failed_inserts)],
            );
            e.counter(
                "rampart_flow_table_overflow_bytes",
                "IP bytes of the packets that found the flow table full.",
                [(no, ft.lost_bytes)],
            );
            e.counter(
                "rampart_dns_records_lost",
                "DNS payloads the kernel could not queue for the agent (its DNS ring was full).",
                [(no, ft.dns_lost)],
            );
        }
        e.gauge(
            "rampart_process_table_entries",
            "Processes the agent tracks.",
            [
                (&[("state", "live")][..], p.processes.live as f64),
                (&[("state", "exited")][..], p.processes.exited as f64),
            ],
        );

        let reg = self.registry.status();
        e.gauge("rampart_containers_known", "Containers the agent knows of.", [(no, reg.containers as f64)]);
        e.gauge(
            "rampart_containers_with_metadata",
            "Known containers with their runtime's metadata.",
            [(no, reg.containers_with_metadata as f64)],
        );
        {
            let features = self.features.lock().unwrap_or_else(|e| e.into_inner());
            e.gauge(
                "rampart_feature_enabled",
                "1 when the agent's privileges allow the feature; reason says what is missing.",
                features
                    .iter()
                    .map(|(f, on, why)| (vec![("feature", *f), ("reason", why.as_str())], b(*on)))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|(l, v)| (&l[..], *v)),
            );
        }
        e.gauge(
            "rampart_runtime_up",
            "1 while the runtime's event stream is connected.",
            reg.runtimes
                .iter()
                .map(|r| (vec![("runtime", r.name)], b(r.connected)))
                .collect::<Vec<_>>()
                .iter()
                .map(|(l, v)| (&l[..], *v)),
        );
        e.counter(
            "rampart_runtime_connects",
            "Successful (re)connections to the runtime.",
            reg.runtimes
                .iter()
                .map(|r| (vec![("runtime", r.name)], r.connects))
                .collect::<Vec<_>>()
                .iter()
                .map(|(l, v)| (&l[..], *v)),
        );
        e.counter(
            "rampart_runtime_inspects",
            "Container inspect requests to the runtimes.",
            [(no, reg.inspects)],
        );
        e.counter(
            "rampart_runtime_inspect_failures",
            "Inspect requests that failed.",
            [(no, reg.inspect_failures)],
        );

        let (loaded, matches) = {
            let r = lock(&self.rules);
            (
                r.loaded,
                r.matches
                    .iter()
                    .map(|(k, (p, n))| (k.clone(), p.as_str().to_string(), *n))
                    .collect::<Vec<_>>(),
            )
        };
        e.gauge("rampart_rules_loaded", "Rules in force.", [(no, loaded as f64)]);
        e.counter(
            "rampart_rule_evaluations",
            "Events evaluated against the rules.",
            [(no, self.evaluations.load(Ordering::Relaxed))],
        );
        let labels: Vec<[(&str, &str); 2]> =
            matches.iter().map(|(r, p, _)| [("rule", r.as_str()), ("priority", p.as_str())]).collect();
        e.counter(
            "rampart_rule_matches",
            "Matches per rule (each raises an alert).",
            labels.iter().zip(&matches).map(|(l, m)| (&l[..], m.2)),
        );
        e.counter(
            "rampart_rules_reloads",
            "Rules reloads (SIGHUP or a changed config or rule file), by result.",
            [
                (&[("result", "ok")][..], self.reloads_ok.load(Ordering::Relaxed)),
                (&[("result", "refused")][..], self.reloads_refused.load(Ordering::Relaxed)),
            ],
        );

        let st = self.dispatcher.upgrade().map(|d| d.stats()).unwrap_or_default();
        e.counter(
            "rampart_alerts_received",
            "Alerts handed to the outputs' dispatcher.",
            [(no, st.received)],
        );
        e.counter(
            "rampart_alerts_suppressed",
            "Alerts not sent, by reason.",
            [
                (&[("reason", "rate_limit")][..], st.rate_limited),
                (&[("reason", "duplicate")][..], st.deduplicated),
                (&[("reason", "below_min_priority")][..], st.below_min_priority),
            ],
        );
        e.gauge(
            "rampart_alerts_held",
            "Alerts waiting for their container's metadata.",
            [(no, self.alerts_held.load(Ordering::Relaxed) as f64)],
        );
        e.counter(
            "rampart_drop_alerts",
            "Alerts raised because the kernel dropped events.",
            [(no, self.drop_alerts.load(Ordering::Relaxed))],
        );
        let mut out_labels = Vec::new();
        for (name, o) in &st.outputs {
            for (result, n) in [("sent", o.sent), ("failed", o.failed), ("dropped", o.dropped)] {
                out_labels.push(([("output", name.as_str()), ("result", result)], n));
            }
        }
        e.counter(
            "rampart_output_alerts",
            "Alerts per output and result (failed: not delivered after retries; dropped: queue full).",
            out_labels.iter().map(|(l, n)| (&l[..], *n)),
        );
        let retries: Vec<([(&str, &str); 1], u64)> =
            st.outputs.iter().map(|(n, o)| ([("output", n.as_str())], o.retries)).collect();
        e.counter(
            "rampart_output_retries",
            "Repeated delivery attempts per output.",
            retries.iter().map(|(l, n)| (&l[..], *n)),
        );
        let pending: Vec<([(&str, &str); 1], f64)> =
            st.outputs.iter().map(|(n, o)| ([("output", n.as_str())], o.pending as f64)).collect();
        e.gauge(
            "rampart_output_queue_depth",
            "Alerts waiting in each output's queue, and the one being delivered.",
            pending.iter().map(|(l, n)| (&l[..], *n)),
        );

        let actions = self.actions.as_ref().map(|a| a.snapshot()).unwrap_or_default();
        let action_labels: Vec<[(&str, &str); 2]> =
            actions.iter().map(|((a, o), _)| [("action", *a), ("outcome", *o)]).collect();
        e.counter(
            "rampart_response_actions",
            "Rule actions by action and outcome.",
            action_labels.iter().zip(&actions).map(|(l, (_, n))| (&l[..], *n)),
        );

        self.render_containers(&mut e, reg.cgroup_root.as_deref());

        let own = own_usage();
        e.counter_f64(
            "process_cpu_seconds",
            "CPU time the agent used (user and system).",
            [(no, own.cpu_seconds)],
        );
        e.gauge(
            "process_resident_memory_bytes",
            "The agent's resident memory.",
            [(no, own.rss_bytes as f64)],
        );
        e.gauge(
            "process_start_time_seconds",
            "When the agent started, seconds since the epoch.",
            [(no, own.start_time)],
        );
        e.finish()
    }
}

impl AgentMetrics {
    /// Per-container series: the kernel's own cgroup accounting (CPU, memory,
    /// I/O, processes, OOM kills) and the events rampart saw from each.
    fn render_containers(&self, e: &mut Exposition, cgroup_root: Option<&Path>) {
        let mut containers = self.registry.containers();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        let left_out = containers.len().saturating_sub(MAX_CONTAINER_SERIES);
        containers.truncate(MAX_CONTAINER_SERIES);
        let mut events: HashMap<&str, CgroupCounts> = HashMap::new();
        let per_cgroup = lock(&self.events_per_cgroup).clone();
        let resolved: Vec<(Arc<model::Container>, CgroupCounts)> = per_cgroup
            .iter()
            .filter_map(|(cg, n)| match self.registry.resolve_cached(*cg) {
                runtime::Resolution::Container(c) => Some((c, *n)),
                _ => None,
            })
            .collect();
        for (c, n) in &resolved {
            let e = events.entry(c.id.as_str()).or_default();
            e.events += n.events;
            e.execs += n.execs;
        }
        let labels: Vec<[(&str, &str); 5]> = containers
            .iter()
            .map(|c| {
                [
                    ("id", c.short_id()),
                    ("name", c.name.trim_start_matches('/')),
                    ("image", c.image.as_str()),
                    ("pod", c.pod_name.as_deref().unwrap_or("")),
                    ("namespace", c.pod_namespace.as_deref().unwrap_or("")),
                ]
            })
            .collect();
        let v1 = Path::new(CGROUP_V1_ROOT);
        let usage: Vec<CgroupUsage> =
            containers.iter().map(|c| CgroupUsage::for_container(cgroup_root, &c.cgroup_path, v1)).collect();
        let counter = |e: &mut Exposition, name: &str, help: &str, f: &dyn Fn(usize) -> Option<u64>| {
            let samples: Vec<(&[(&str, &str)], u64)> =
                (0..containers.len()).filter_map(|i| f(i).map(|v| (&labels[i][..], v))).collect();
            e.counter(name, help, samples);
        };
        counter(e, "rampart_container_events", "Events rampart evaluated from the container.", &|i| {
            Some(events.get(containers[i].id.as_str()).map_or(0, |c| c.events))
        });
        counter(
            e,
            "rampart_container_process_starts",
            "Programs the container executed (exec events).",
            &|i| Some(events.get(containers[i].id.as_str()).map_or(0, |c| c.execs)),
        );
        let cpu: Vec<(&[(&str, &str)], f64)> = (0..containers.len())
            .filter_map(|i| usage[i].cpu_usec.map(|u| (&labels[i][..], u as f64 / 1e6)))
            .collect();
        e.counter_f64(
            "rampart_container_cpu_seconds",
            "CPU time of the container's cgroup (cpu.stat usage).",
            cpu,
        );
        counter(
            e,
            "rampart_container_cpu_throttled_periods",
            "Periods the container's CPU quota throttled it.",
            &|i| usage[i].throttled,
        );
        counter(
            e,
            "rampart_container_io_read_bytes",
            "Bytes the container read from block devices (io.stat).",
            &|i| usage[i].io_read,
        );
        counter(
            e,
            "rampart_container_io_written_bytes",
            "Bytes the container wrote to block devices (io.stat).",
            &|i| usage[i].io_written,
        );
        counter(
            e,
            "rampart_container_oom_kills",
            "Processes of the container the OOM killer killed.",
            &|i| usage[i].oom_kills,
        );
        let gauge = |e: &mut Exposition, name: &str, help: &str, f: &dyn Fn(usize) -> Option<u64>| {
            let samples: Vec<(&[(&str, &str)], f64)> =
                (0..containers.len()).filter_map(|i| f(i).map(|v| (&labels[i][..], v as f64))).collect();
            e.gauge(name, help, samples);
        };
        gauge(e, "rampart_container_memory_bytes", "Memory charged to the container's cgroup.", &|i| {
            usage[i].memory
        });
        gauge(e, "rampart_container_processes", "Tasks in the container's cgroup (pids.current).", &|i| {
            usage[i].pids
        });
        let traffic = self.traffic_per_container();
        let mut bytes: Vec<(Vec<(&str, &str)>, u64)> = Vec::new();
        let mut packets: Vec<(Vec<(&str, &str)>, u64)> = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let Some(t) = traffic.get(c.id.as_str()) else { continue };
            for (dir, b, p) in [("rx", t.bytes_in, t.packets_in), ("tx", t.bytes_out, t.packets_out)] {
                let mut l = labels[i].to_vec();
                l.push(("direction", dir));
                bytes.push((l.clone(), b));
                packets.push((l, p));
            }
        }
        e.counter(
            "rampart_container_network_bytes",
            "IP bytes on the wire (headers once per segment) the container's sockets received (rx) and sent (tx), from the kernel's per-container counters (sensor.flows).",
            bytes.iter().map(|(l, n)| (&l[..], *n)),
        );
        e.counter(
            "rampart_container_network_packets",
            "IP packets (segments on the wire) the container's sockets received (rx) and sent (tx), from the kernel's per-container counters (sensor.flows).",
            packets.iter().map(|(l, n)| (&l[..], *n)),
        );
        let (runq, uncounted) = self.runq_per_container();
        let hists: Vec<(&[(&str, &str)], &RunQueueHistogram)> = (0..containers.len())
            .filter_map(|i| runq.get(containers[i].id.as_str()).map(|h| (&labels[i][..], h)))
            .collect();
        e.histogram(
            "rampart_container_runqueue_latency_seconds",
            "Time the container's runnable tasks waited for a CPU (woken or preempted until run), from the kernel's scheduler hooks.",
            hists.iter().map(|(l, h)| (*l, h.cumulative(), h.count, h.sum_ns as f64 / 1e9)),
        );
        if let Some((syscalls, uncounted)) = self.syscalls_per_container() {
            let mut samples: Vec<(Vec<(&str, &str)>, u64)> = Vec::new();
            for (i, c) in containers.iter().enumerate() {
                let Some(counts) = syscalls.get(c.id.as_str()) else { continue };
                for (nr, n) in top_syscalls(counts, SYSCALL_SERIES_PER_CONTAINER) {
                    let mut l = labels[i].to_vec();
                    l.push(("syscall", syscall_name(nr)));
                    samples.push((l, n));
                }
            }
            e.counter(
                "rampart_container_syscalls",
                "Syscalls the container's tasks entered, by name, from the kernel (sensor.syscall_counts); the container's most frequent ones only.",
                samples.iter().map(|(l, n)| (&l[..], *n)),
            );
            e.counter(
                "rampart_container_syscalls_uncounted",
                "Syscalls not counted because the kernel's per-cgroup table was full.",
                [(&[][..], uncounted)],
            );
        }
        if let Some(LatencyPerContainer { per: latency, uncounted, sample }) =
            self.syscall_latency_per_container()
        {
            let mut samples: Vec<(Vec<(&str, &str)>, &RunQueueHistogram)> = Vec::new();
            for (i, c) in containers.iter().enumerate() {
                let Some(per_nr) = latency.get(c.id.as_str()) else { continue };
                let counts: BTreeMap<u32, u64> = per_nr.iter().map(|(nr, h)| (*nr, h.count)).collect();
                for (nr, _) in top_syscalls(&counts, SYSCALL_LATENCY_SERIES_PER_CONTAINER) {
                    let mut l = labels[i].to_vec();
                    l.push(("syscall", syscall_name(nr)));
                    samples.push((l, &per_nr[&nr]));
                }
            }
            e.histogram(
                "rampart_container_syscall_latency_seconds",
                "Time the container's syscalls took, entry to exit, from the kernel (sensor.syscall_latency); the container's most frequent ones only.",
                samples.iter().map(|(l, h)| (&l[..], h.cumulative(), h.count, h.sum_ns as f64 / 1e9)),
            );
            e.counter(
                "rampart_container_syscall_latency_uncounted",
                "Syscalls not timed because the kernel's (cgroup, syscall) table was full.",
                [(&[][..], uncounted)],
            );
            e.gauge(
                "rampart_syscall_latency_sample",
                "One syscall in this many of each task is timed, chosen at random (sensor.syscall_latency_sample); the latency histograms count the timed ones.",
                [(&[][..], sample as f64)],
            );
        }
        e.counter(
            "rampart_runqueue_waits_uncounted",
            "Run-queue waits not counted because the kernel's per-cgroup table was full.",
            [(&[][..], uncounted)],
        );
        e.gauge(
            "rampart_containers_without_series",
            "Known containers left out of the per-container series (over the cap).",
            [(&[][..], left_out as f64)],
        );
    }
}

/// Network traffic per known container id: the flow programs' totals per
/// cgroup, merged.
pub fn traffic_per_container(
    registry: &ContainerRegistry,
    traffic: &super::pipeline::Traffic,
) -> HashMap<String, sensor::CgroupTraffic> {
    let all = lock(traffic).clone();
    let mut per: HashMap<String, sensor::CgroupTraffic> = HashMap::new();
    for (cgroup, t) in &all {
        if let runtime::Resolution::Container(c) = registry.resolve_cached(*cgroup) {
            let m = per.entry(c.id.clone()).or_default();
            m.bytes_in += t.bytes_in;
            m.bytes_out += t.bytes_out;
            m.packets_in += t.packets_in;
            m.packets_out += t.packets_out;
        }
    }
    per
}

/// What the kernel accounts for one cgroup v2 directory; `None` where a
/// controller is not enabled there.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CgroupUsage {
    pub cpu_usec: Option<u64>,
    pub throttled: Option<u64>,
    pub memory: Option<u64>,
    pub oom_kills: Option<u64>,
    pub io_read: Option<u64>,
    pub io_written: Option<u64>,
    pub pids: Option<u64>,
}

/// Where the cgroup v1 hierarchies are mounted on a hybrid host (controllers
/// on v1, an empty v2 tree beside them).
pub const CGROUP_V1_ROOT: &str = "/sys/fs/cgroup";

impl CgroupUsage {
    /// A container's figures: from its cgroup v2 directory, and for what the
    /// v2 tree lacks (a hybrid host, where memory, I/O and pids are v1
    /// controllers), from the same path under each v1 controller.
    pub fn for_container(v2_root: Option<&Path>, cgroup_path: &str, v1_root: &Path) -> CgroupUsage {
        let rel = cgroup_path.trim_start_matches('/');
        let mut u = v2_root.map(|r| CgroupUsage::read(&r.join(rel))).unwrap_or_default();
        if u.memory.is_none() || u.pids.is_none() || u.io_read.is_none() || u.throttled.is_none() {
            u.fill_from_v1(v1_root, rel);
        }
        u
    }

    /// CPU time of a container's cgroup v2 directory (`cpu.stat`'s
    /// `usage_usec`, there whatever controllers are enabled): the one file
    /// read, for the per-second rate sampling.
    pub fn cpu_usec(v2_root: &Path, cgroup_path: &str) -> Option<u64> {
        let dir = v2_root.join(cgroup_path.trim_start_matches('/'));
        stat_key(&std::fs::read_to_string(dir.join("cpu.stat")).ok(), "usage_usec")
    }

    /// The cgroup v2 files of one directory.
    pub fn read(dir: &Path) -> CgroupUsage {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        let key = stat_key;
        let cpu = read("cpu.stat");
        let events = read("memory.events");
        let io = read("io.stat").map(|t| {
            // One line per device: `8:0 rbytes=N wbytes=N rios=N ...`.
            let mut sum = (0u64, 0u64);
            for field in t.split_whitespace() {
                if let Some(v) = field.strip_prefix("rbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    sum.0 += v;
                } else if let Some(v) = field.strip_prefix("wbytes=").and_then(|v| v.parse::<u64>().ok()) {
                    sum.1 += v;
                }
            }
            sum
        });
        let single = |f: &str| read(f).and_then(|t| t.trim().parse().ok());
        CgroupUsage {
            cpu_usec: key(&cpu, "usage_usec"),
            throttled: key(&cpu, "nr_throttled"),
            memory: single("memory.current"),
            oom_kills: key(&events, "oom_kill"),
            io_read: io.map(|s| s.0),
            io_written: io.map(|s| s.1),
            pids: single("pids.current"),
        }
    }

    fn fill_from_v1(&mut self, root: &Path, rel: &str) {
        let read = |controller: &str, file: &str| {
            std::fs::read_to_string(root.join(controller).join(rel).join(file)).ok()
        };
        let key = stat_key;
        if self.memory.is_none() {
            self.memory = read("memory", "memory.usage_in_bytes").and_then(|t| t.trim().parse().ok());
            self.oom_kills =
                self.oom_kills.or_else(|| key(&read("memory", "memory.oom_control"), "oom_kill"));
        }
        if self.pids.is_none() {
            self.pids = read("pids", "pids.current").and_then(|t| t.trim().parse().ok());
        }
        if self.throttled.is_none() {
            self.throttled = key(&read("cpu", "cpu.stat"), "nr_throttled");
        }
        if self.io_read.is_none() {
            // `8:0 Read N` / `8:0 Write N` per device, then `Total N`.
            if let Some(t) = read("blkio", "blkio.throttle.io_service_bytes") {
                let (mut r, mut w) = (0u64, 0u64);
                for l in t.lines() {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if let [_, op, n] = f[..] {
                        let n: u64 = n.parse().unwrap_or(0);
                        match op {
                            "Read" => r += n,
                            "Write" => w += n,
                            _ => {}
                        }
                    }
                }
                self.io_read = Some(r);
                self.io_written = Some(w);
            }
        }
    }
}

/// The value of `key` in a cgroup file of `key value` lines (`cpu.stat`,
/// `memory.events`).
fn stat_key(text: &Option<String>, key: &str) -> Option<u64> {
    text.as_ref().and_then(|t| {
        t.lines().find_map(|l| {
            l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
        })
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct OwnUsage {
    cpu_seconds: f64,
    rss_bytes: u64,
    start_time: f64,
}

/// The agent's CPU time, RSS and start time from /proc/self/stat.
fn own_usage() -> OwnUsage {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return OwnUsage::default() };
    // Fields after the command name (which may hold spaces and parentheses).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return OwnUsage::default() };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    // `rest` starts at field 3 (state): utime is field 14, stime 15,
    // starttime 22, rss 24 (proc(5)), i.e. indexes 11, 12, 19, 21 here.
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))
        })
        .unwrap_or(0.0);
    OwnUsage {
        cpu_seconds: (num(11) + num(12)) as f64 / ticks,
        rss_bytes: num(21) * page,
        start_time: boot + num(19) as f64 / ticks,
    }
}

/// The `n` most frequent syscalls (number, count), most frequent first; ties
/// by number.
fn top_syscalls(counts: &BTreeMap<u32, u64>, n: usize) -> Vec<(u32, u64)> {
    let mut v: Vec<(u32, u64)> = counts.iter().map(|(nr, c)| (*nr, *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The x86_64 name of a syscall number (the sensor counts native numbers);
/// one the table lacks is named by its number.
pub fn syscall_name(nr: u32) -> &'static str {
    seccomp::syscalls::name(seccomp::Arch::X86_64, nr).unwrap_or_else(|| {
        // 512 possible numbers: leaked once each at most
        static UNKNOWN: Mutex<BTreeMap<u32, &'static str>> = Mutex::new(BTreeMap::new());
        *lock(&UNKNOWN).entry(nr).or_insert_with(|| Box::leak(format!("syscall_{nr}").into_boxed_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> AgentMetrics {
        let dispatcher = Arc::new(Dispatcher::new(&alerts::AlertsConfig::default()).unwrap());
        let registry = ContainerRegistry::new(runtime::RegistryConfig::default(), None, Vec::new());
        AgentMetrics::new(dispatcher, registry, None)
    }

    fn value(text: &str, sample: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok())
        })
    }

    #[tokio::test]
    async fn figures_reach_the_exposition() {
        let m = metrics();
        let text = m.render(Format::Prometheus);
        assert_eq!(
            value(&text, "rampart_ready"),
            Some(0.0),
            "not ready before the sensor is attached:\n{text}"
        );
        m.sensor_attached(None);
        m.rules_loaded(3);
        m.rule_matched("Shell in container", Priority::Notice);
        m.rule_matched("Shell in container", Priority::Notice);
        m.reload(false);
        let mut p = Progress { events_seen: 10, events_accepted: 8, ..Default::default() };
        p.sensor.lost = vec![0, 5];
        p.sensor.flow_table = Some(sensor::FlowTableStats {
            entries: 3,
            max_entries: 4,
            failed_inserts: 9,
            lost_bytes: 900,
            lost_packets: 9,
            dns_lost: 2,
        });
        m.tick(p, 8, 1, &HashMap::new());
        let text = m.render(Format::Prometheus);
        assert_eq!(value(&text, "rampart_ready"), Some(1.0), "no runtime configured: ready\n{text}");
        assert_eq!(value(&text, "rampart_events_seen_total"), Some(10.0));
        assert_eq!(value(&text, "rampart_events_lost_total{cpu=\"1\"}"), Some(5.0));
        assert_eq!(value(&text, "rampart_flow_table_entries"), Some(3.0));
        assert_eq!(value(&text, "rampart_flow_table_failed_inserts_total"), Some(9.0));
        assert_eq!(value(&text, "rampart_dns_records_lost_total"), Some(2.0));
        assert_eq!(
            value(&text, "rampart_rule_matches_total{rule=\"Shell in container\",priority=\"Notice\"}"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(value(&text, "rampart_rules_reloads_total{result=\"refused\"}"), Some(1.0));
        assert_eq!(value(&text, "rampart_rules_loaded"), Some(3.0));
        assert_eq!(value(&text, "rampart_alerts_held"), Some(1.0));
        assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6, "{text}");
        assert!(value(&text, "process_start_time_seconds").unwrap() > 1.6e9);
        // Every sample line belongs to a declared family.
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(families.contains(&name), "sample {name} has no TYPE line");
        }
    }

    #[test]
    fn top_syscalls_keeps_the_most_frequent_and_names_them() {
        let counts: BTreeMap<u32, u64> = [(0, 5), (1, 9), (257, 9), (3, 1)].into_iter().collect();
        assert_eq!(top_syscalls(&counts, 3), vec![(1, 9), (257, 9), (0, 5)]);
        assert_eq!(top_syscalls(&counts, 10).len(), 4);
        assert_eq!(syscall_name(257), "openat");
        assert_eq!(syscall_name(511), "syscall_511");
        assert_eq!(syscall_name(511), "syscall_511");
    }

    #[test]
    fn cgroup_files_are_read_as_the_kernel_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(dir.path().join(f), t).unwrap();
        w("cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 3\nthrottled_usec 0\n");
        w("memory.current", "1048576\n");
        w("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n");
        w("io.stat", "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n");
        let u = CgroupUsage::read(dir.path());
        assert_eq!(
            u,
            CgroupUsage {
                cpu_usec: Some(2_500_000),
                throttled: Some(3),
                memory: Some(1 << 20),
                oom_kills: Some(1),
                io_read: Some(105),
                io_written: Some(21),
                pids: None,
            }
        );
        assert_eq!(CgroupUsage::read(&dir.path().join("gone")), CgroupUsage::default());
    }

    #[test]
    fn a_hybrid_host_fills_the_rest_from_cgroup_v1() {
        let v2 = tempfile::tempdir().unwrap();
        let v1 = tempfile::tempdir().unwrap();
        let w = |root: &Path, dir: &str, f: &str, t: &str| {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(f), t).unwrap();
        };
        w(v2.path(), "docker/c1", "cpu.stat", "usage_usec 1000000\nuser_usec 1\nsystem_usec 1\n");
        w(v1.path(), "memory/docker/c1", "memory.usage_in_bytes", "4096\n");
        w(
            v1.path(),
            "memory/docker/c1",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        w(v1.path(), "pids/docker/c1", "pids.current", "3\n");
        w(v1.path(), "cpu/docker/c1", "cpu.stat", "nr_periods 0\nnr_throttled 4\nthrottled_time 0\n");
        w(
            v1.path(),
            "blkio/docker/c1",
            "blkio.throttle.io_service_bytes",
            "8:0 Read 10\n8:0 Write 3\n8:0 Sync 13\n8:0 Total 13\nTotal 13\n",
        );
        let u = CgroupUsage::for_container(Some(v2.path()), "/docker/c1", v1.path());
        assert_eq!(
            u,
            CgroupUsage {
                cpu_usec: Some(1_000_000),
                throttled: Some(4),
                memory: Some(4096),
                oom_kills: Some(2),
                io_read: Some(10),
                io_written: Some(3),
                pids: Some(3),
            }
        );
    }

    #[tokio::test]
    async fn rule_series_are_bounded() {
        let m = metrics();
        for i in 0..MAX_RULE_SERIES + 10 {
            m.rule_matched(&format!("r{i}"), Priority::Warning);
        }
        let text = m.render(Format::Prometheus);
        assert_eq!(
            text.lines().filter(|l| l.starts_with("rampart_rule_matches_total{")).count(),
            MAX_RULE_SERIES + 1
        );
        assert_eq!(
            value(&text, "rampart_rule_matches_total{rule=\"(other)\",priority=\"Warning\"}"),
            Some(10.0)
        );
    }
}

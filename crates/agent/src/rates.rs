//! Per-container rates for the rule fields `container.cpu_share`,
//! `container.syscall_rate`, `container.net_rx_rate` and
//! `container.net_tx_rate`.
//!
//! A thread of its own samples every known container once a second (its
//! cgroup's `cpu.stat`, the kernel's syscall counters when they count, the
//! flow programs' per-container totals) and publishes each container's rates over the
//! last [`WINDOW`]. The detector takes the latest table on its tick, so an
//! event pays one hash lookup per rate field a rule reads, and nothing is
//! sampled while no loaded rule reads one.

use crate::metrics::{traffic_per_container, CgroupUsage};
use crate::pipeline::{SensorHandles, Traffic};
use model::{ContainerRates, ProcInfo, ProcessLookup};
use runtime::ContainerRegistry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often every container is sampled.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// The span the rates cover: long enough that the flow accounting's drains
/// (once a second) do not make the network rates jump, short enough that a
/// container that starts burning CPU shows it within seconds.
pub const WINDOW: Duration = Duration::from_secs(5);

/// Containers sampled at most (the registry keeps at most this many live).
const MAX_CONTAINERS: usize = 4096;

/// Samples kept per container, whatever the clock does.
const MAX_SAMPLES: usize = 16;

/// Rates by full container id, as of the last sample.
pub type RatesTable = Arc<HashMap<String, ContainerRates>>;

/// Cumulative counters of one container at one moment; `None` where the
/// source is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub cpu_usec: Option<u64>,
    pub syscalls: Option<u64>,
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
}

/// Each container's samples over the last window.
#[derive(Debug, Default)]
pub struct Windows {
    samples: HashMap<String, VecDeque<(Instant, Totals)>>,
}

impl Windows {
    /// Adds one sample of every container (those missing are forgotten) and
    /// returns each one's rates between its oldest and newest sample.
    pub fn observe(
        &mut self,
        now: Instant,
        totals: HashMap<String, Totals>,
    ) -> HashMap<String, ContainerRates> {
        self.samples.retain(|id, _| totals.contains_key(id));
        let mut out = HashMap::with_capacity(totals.len());
        for (id, t) in totals {
            let q = self.samples.entry(id.clone()).or_default();
            q.push_back((now, t));
            // Half a period of slack: samples a second apart keep a 5 s span.
            while q.len() > MAX_SAMPLES
                || (q.len() > 2 && now.duration_since(q[0].0) > WINDOW + SAMPLE_PERIOD / 2)
            {
                q.pop_front();
            }
            out.insert(id, rates_of(q));
        }
        out
    }
}

/// Rates between the oldest and the newest sample; none under half a
/// second apart (the first sample of a container).
fn rates_of(q: &VecDeque<(Instant, Totals)>) -> ContainerRates {
    let (Some((t0, first)), Some((t1, last))) = (q.front(), q.back()) else {
        return ContainerRates::default();
    };
    let secs = t1.duration_since(*t0).as_secs_f64();
    if secs < 0.5 {
        return ContainerRates::default();
    }
    // A counter that went back (a cgroup's counters restarted) reads as 0.
    let per_s = |a: Option<u64>, b: Option<u64>, scale: f64| {
        Some((b?.saturating_sub(a?) as f64 * scale / secs).round() as u64)
    };
    ContainerRates {
        // usec per second / 10,000 = percent of one CPU
        cpu_percent: per_s(first.cpu_usec, last.cpu_usec, 1e-4),
        syscalls_per_s: per_s(first.syscalls, last.syscalls, 1.0),
        net_rx_bytes_per_s: per_s(first.rx_bytes, last.rx_bytes, 1.0),
        net_tx_bytes_per_s: per_s(first.tx_bytes, last.tx_bytes, 1.0),
    }
}

/// What the sampling thread shares with the detector.
#[derive(Debug, Default)]
struct Shared {
    latest: Mutex<RatesTable>,
    /// A loaded rule reads a rate field.
    wanted: AtomicBool,
    /// The flow accounting runs (a container without traffic has 0 B/s).
    flows: AtomicBool,
    stop: AtomicBool,
}

/// The sampling thread; it ends within a period of this being dropped.
#[derive(Debug)]
pub struct RateSampler {
    shared: Arc<Shared>,
}

/// Where the thread reads the totals.
struct Sources {
    registry: ContainerRegistry,
    syscall_counts: Option<Arc<sensor::SyscallCountMaps>>,
    traffic: Traffic,
}

impl RateSampler {
    /// Starts sampling the running sensor's containers (idle until
    /// [`Self::set_wanted`]).
    pub fn start(sensor: &SensorHandles) -> std::io::Result<RateSampler> {
        let shared = Arc::new(Shared::default());
        let sources = Sources {
            registry: sensor.containers.clone(),
            syscall_counts: sensor.syscall_counts.clone(),
            traffic: sensor.traffic.clone(),
        };
        let s = shared.clone();
        std::thread::Builder::new().name("rampart-rates".into()).spawn(move || sample_loop(&s, &sources))?;
        Ok(RateSampler { shared })
    }

    /// The rates as of the last sample.
    pub fn latest(&self) -> RatesTable {
        self.shared.latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Samples only while a loaded rule reads a rate field.
    pub fn set_wanted(&self, on: bool) {
        self.shared.wanted.store(on, Ordering::Relaxed);
    }

    /// Whether the flow accounting runs: with it, a container without
    /// traffic sends and receives 0 B/s; without it, the rates have no value.
    pub fn set_flows(&self, on: bool) {
        self.shared.flows.store(on, Ordering::Relaxed);
    }
}

impl Drop for RateSampler {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn sample_loop(shared: &Shared, sources: &Sources) {
    let mut windows = Windows::default();
    loop {
        std::thread::sleep(SAMPLE_PERIOD);
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let rates = if shared.wanted.load(Ordering::Relaxed) {
            let now = Instant::now();
            windows.observe(now, totals(sources, shared.flows.load(Ordering::Relaxed)))
        } else {
            windows = Windows::default();
            HashMap::new()
        };
        *shared.latest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(rates);
    }
}

/// Every known container's totals now.
fn totals(sources: &Sources, flows: bool) -> HashMap<String, Totals> {
    let registry = &sources.registry;
    let root = registry.status().cgroup_root;
    let mut syscalls: Option<HashMap<String, u64>> = None;
    if let Some(maps) = &sources.syscall_counts {
        let per = syscalls.insert(HashMap::new());
        for (cgroup, counts) in maps.read() {
            if let runtime::Resolution::Container(c) = registry.resolve_cached(cgroup) {
                *per.entry(c.id.clone()).or_default() += counts.iter().map(|(_, n)| n).sum::<u64>();
            }
        }
    }
    let traffic = if flows { traffic_per_container(registry, &sources.traffic) } else { HashMap::new() };
    let mut out = HashMap::new();
    for c in registry.containers().into_iter().take(MAX_CONTAINERS) {
        // No cgroup path: its cpu.stat would be the root's, the whole host's.
        let cpu_usec = root
            .as_deref()
            .filter(|_| !c.cgroup_path.trim_start_matches('/').is_empty())
            .and_then(|r| CgroupUsage::cpu_usec(r, &c.cgroup_path));
        let net = traffic.get(&c.id);
        let t = Totals {
            cpu_usec,
            syscalls: syscalls.as_ref().map(|s| s.get(&c.id).copied().unwrap_or(0)),
            rx_bytes: flows.then(|| net.map_or(0, |n| n.bytes_in)),
            tx_bytes: flows.then(|| net.map_or(0, |n| n.bytes_out)),
        };
        out.insert(c.id.clone(), t);
    }
    out
}

/// The process table with the rates beside it: what the rules read.
#[derive(Debug)]
pub struct WithRates<'a> {
    pub procs: &'a dyn ProcessLookup,
    pub rates: &'a HashMap<String, ContainerRates>,
}

impl ProcessLookup for WithRates<'_> {
    fn process(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.process(pid)
    }

    fn dns_name(&self, cgroup_id: u64, ip: std::net::IpAddr, at_ns: u64) -> Option<&str> {
        self.procs.dns_name(cgroup_id, ip, at_ns)
    }

    fn container_rates(&self, container_id: &str) -> Option<ContainerRates> {
        self.rates.get(container_id).copied()
    }
}

/// Whether an enabled rule reads one of the rate fields.
pub fn rules_read_rates(ruleset: &rules::Ruleset) -> bool {
    rules::CONTAINER_RATE_FIELDS.iter().any(|f| ruleset.uses_field(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(cpu: u64, syscalls: Option<u64>, rx: u64) -> HashMap<String, Totals> {
        let t = Totals { cpu_usec: Some(cpu), syscalls, rx_bytes: Some(rx), tx_bytes: None };
        [("c1".to_string(), t)].into_iter().collect()
    }

    #[test]
    fn rates_over_the_window() {
        let mut w = Windows::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let first = w.observe(at(0), totals(1_000_000, None, 0));
        assert_eq!(first["c1"], ContainerRates::default(), "one sample: no rate yet");
        // 1.5 CPUs busy and 1000 B/s, sampled each second.
        let mut r = ContainerRates::default();
        for s in 1..=8 {
            r = w.observe(at(s), totals(1_000_000 + s * 1_500_000, None, s * 1000))["c1"];
        }
        assert_eq!(r.cpu_percent, Some(150));
        assert_eq!(r.net_rx_bytes_per_s, Some(1000));
        assert_eq!(r.syscalls_per_s, None, "syscall counts off");
        assert_eq!(r.net_tx_bytes_per_s, None);
        assert_eq!(w.samples["c1"].len(), 6, "a 5 s window: 6 samples a second apart");
        // The container went idle: the window forgets the busy seconds.
        let busy_end = 1_000_000 + 8 * 1_500_000;
        for s in 9..=14 {
            r = w.observe(at(s), totals(busy_end, Some(s * 10), 8000))["c1"];
        }
        assert_eq!(r.cpu_percent, Some(0));
        assert_eq!(r.syscalls_per_s, Some(10), "counted since it came on");
        // Gone from the registry: forgotten.
        assert!(w.observe(at(15), HashMap::new()).is_empty());
        assert!(w.samples.is_empty());
    }

    #[test]
    fn a_counter_going_back_reads_as_zero_and_samples_stay_bounded() {
        let mut w = Windows::default();
        let t0 = Instant::now();
        w.observe(t0, totals(5_000_000, None, 0));
        let r = w.observe(t0 + Duration::from_secs(1), totals(1_000, None, 0))["c1"];
        assert_eq!(r.cpu_percent, Some(0));
        // Sampled far more often than once a second: still bounded.
        for i in 0..100 {
            w.observe(t0 + Duration::from_secs(1) + Duration::from_millis(i), totals(1_000, None, 0));
        }
        assert!(w.samples["c1"].len() <= MAX_SAMPLES);
    }
}

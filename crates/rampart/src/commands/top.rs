//! `rampart top`: containers by CPU, events, memory, I/O or network,
//! refreshed live.
//!
//! Two sources: a running agent's `/metrics` (`--agent ADDR`), or, by default,
//! a sensor of its own plus the kernel's cgroup accounting and flow table.
//! Keys: `c` CPU, `e` events, `m` memory, `i` I/O, `n` network; `j`/`k` (or
//! the arrow keys) move the selection, `d` (or Enter) shows the selected
//! container's details: its top system calls and their latency where the
//! kernel times them; `q` quits.

use super::RuntimeArgs;
use agent::filter::EventFilter;
use agent::metrics::exposition;
use agent::metrics::{CgroupUsage, CGROUP_V1_ROOT};
use agent::pipeline::{self, Consumer};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use model::Event;
use runtime::ContainerRegistry;
use sensor::SensorConfig;
use state::ProcessTable;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct TopArgs {
    /// Read a running agent's metrics at ADDR (host:port) instead of starting
    /// a sensor of its own.
    #[arg(long, value_name = "ADDR")]
    agent: Option<String>,
    /// What to sort by at start.
    #[arg(long, value_enum, default_value = "cpu")]
    sort: SortKey,
    /// Refresh period.
    #[arg(long, value_parser = super::record::parse_duration, default_value = "1s")]
    interval: Duration,
    /// Print this many refreshes as plain text and exit (no keys, no screen
    /// control): for scripts.
    #[arg(long, value_name = "N")]
    iterations: Option<u32>,
    /// Containers shown.
    #[arg(long, default_value_t = 20)]
    rows: usize,
    /// Time each container's system calls in the kernel (own sensor only;
    /// an agent times them with `sensor.syscall_latency: true`), for the
    /// details view.
    #[arg(long)]
    syscall_latency: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Cpu,
    Events,
    Memory,
    Io,
    Net,
}

impl SortKey {
    fn label(self) -> &'static str {
        match self {
            SortKey::Cpu => "CPU",
            SortKey::Events => "events",
            SortKey::Memory => "memory",
            SortKey::Io => "I/O",
            SortKey::Net => "network",
        }
    }
}

/// Cumulative figures of one container at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
struct Row {
    name: String,
    image: String,
    cpu_seconds: Option<f64>,
    memory: Option<f64>,
    io_bytes: Option<f64>,
    /// IP bytes received and sent (the flow accounting).
    net_bytes: Option<f64>,
    events: f64,
    tasks: Option<f64>,
    /// Run-queue waits so far: cumulative count per upper bound (seconds),
    /// increasing, the last bound +Inf.
    runq: Vec<(f64, f64)>,
}

/// One system call's latency so far: cumulative (upper bound in seconds,
/// count) pairs ending with +Inf, the count and the sum in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
struct Latency {
    buckets: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

/// Per short container id, then per system call name.
type PerSyscall<T> = HashMap<String, HashMap<String, T>>;

#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// By short container id.
    rows: HashMap<String, Row>,
    /// System calls seen as events, since start (own sensor only).
    syscalls: PerSyscall<u64>,
    /// System calls the kernel counted (an agent with syscall counts on);
    /// `None`: not counted.
    counts: Option<PerSyscall<f64>>,
    /// System call latency the kernel measured; `None`: not timed.
    latency: Option<PerSyscall<Latency>>,
    /// One syscall in this many timed (`sensor.syscall_latency_sample`):
    /// the latency counts times this estimate the calls.
    latency_sample: Option<f64>,
}

/// What a refresh shows of one container: rates over the last interval.
#[derive(Debug, Clone, PartialEq)]
struct View {
    id: String,
    row: Row,
    cpu_percent: Option<f64>,
    events_per_s: f64,
    io_per_s: Option<f64>,
    net_per_s: Option<f64>,
    /// 99th percentile of the run-queue waits of the interval (a bucket bound).
    runq_p99: Option<f64>,
}

/// The 99th percentile of the waits between two cumulative histograms.
fn runq_p99(now: &[(f64, f64)], then: &[(f64, f64)]) -> Option<f64> {
    let count_then = |le: f64| then.iter().find(|(b, _)| *b >= le).map_or(0.0, |(_, n)| *n);
    let delta: Vec<(f64, f64)> = now.iter().map(|(le, n)| (*le, (n - count_then(*le)).max(0.0))).collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    delta.iter().find(|(_, n)| *n >= 0.99 * total).map(|(le, _)| *le)
}

/// Cumulative (upper bound, count) pairs ending with +Inf.
fn cumulative_with_inf(h: &sensor::runq::RunQueueHistogram) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = h.cumulative().into_iter().map(|(le, n)| (le, n as f64)).collect();
    v.push((f64::INFINITY, h.slots.iter().sum::<u64>() as f64));
    v
}

fn views(prev: &Snapshot, cur: &Snapshot, secs: f64) -> Vec<View> {
    let secs = secs.max(1e-3);
    cur.rows
        .iter()
        .map(|(id, row)| {
            let before = prev.rows.get(id);
            let delta = |now: Option<f64>, then: Option<f64>| match (now, then) {
                (Some(n), Some(t)) => Some((n - t).max(0.0) / secs),
                _ => None,
            };
            View {
                id: id.clone(),
                cpu_percent: delta(row.cpu_seconds, before.and_then(|b| b.cpu_seconds)).map(|v| v * 100.0),
                events_per_s: before.map_or(0.0, |b| (row.events - b.events).max(0.0) / secs),
                io_per_s: delta(row.io_bytes, before.and_then(|b| b.io_bytes)),
                net_per_s: delta(row.net_bytes, before.and_then(|b| b.net_bytes)),
                runq_p99: runq_p99(&row.runq, before.map_or(&[][..], |b| &b.runq[..])),
                row: row.clone(),
            }
        })
        .collect()
}

fn sort(views: &mut [View], key: SortKey) {
    let k = |v: &View| match key {
        SortKey::Cpu => v.cpu_percent.unwrap_or(-1.0),
        SortKey::Events => v.events_per_s,
        SortKey::Memory => v.row.memory.unwrap_or(-1.0),
        SortKey::Io => v.io_per_s.unwrap_or(-1.0),
        SortKey::Net => v.net_per_s.unwrap_or(-1.0),
    };
    views.sort_by(|a, b| k(b).total_cmp(&k(a)).then_with(|| a.id.cmp(&b.id)));
}

/// Names and images come from containers and their owners: printed with
/// control characters replaced, so they cannot move the cursor or clear
/// the screen.
fn clean(s: &str, width: usize) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > width {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('~');
        t
    } else {
        s
    }
}

fn human_bytes(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(b) if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1}G", b / (1024.0 * 1024.0 * 1024.0)),
        Some(b) if b >= 1024.0 * 1024.0 => format!("{:.1}M", b / (1024.0 * 1024.0)),
        Some(b) if b >= 1024.0 => format!("{:.1}K", b / 1024.0),
        Some(b) => format!("{b:.0}"),
    }
}

fn human_seconds(s: f64) -> String {
    match s {
        s if s.is_infinite() => ">4000s".into(),
        s if s >= 1.0 => format!("{s:.1}s"),
        s if s >= 1e-3 => format!("{:.1}ms", s * 1e3),
        s if s >= 1e-6 => format!("{:.0}us", s * 1e6),
        s => format!("{:.0}ns", s * 1e9),
    }
}

fn render(
    views: &[View],
    key: SortKey,
    rows: usize,
    selected: Option<&str>,
    detail: Option<&str>,
    source: &str,
) -> String {
    let mut out = format!(
        "rampart top: {} containers, sorted by {} ({source}); keys: c cpu, e events, m memory, i io, n network, \
         j/k select, d details, q quit\n",
        views.len(),
        key.label()
    );
    out.push_str(&format!(
        "  {:<12} {:<24} {:<24} {:>7} {:>9} {:>8} {:>9} {:>9} {:>6} {:>9}\n",
        "ID", "NAME", "IMAGE", "CPU%", "EVENTS/s", "MEM", "IO/s", "NET/s", "TASKS", "RUNQ p99"
    ));
    for v in views.iter().take(rows) {
        out.push_str(&format!(
            "{} {:<12} {:<24} {:<24} {:>7} {:>9.0} {:>8} {:>9} {:>9} {:>6} {:>9}\n",
            if selected == Some(v.id.as_str()) { '>' } else { ' ' },
            clean(&v.id, 12),
            clean(&v.row.name, 24),
            clean(&v.row.image, 24),
            v.cpu_percent.map_or("-".into(), |c| format!("{c:.1}")),
            v.events_per_s,
            human_bytes(v.row.memory),
            human_bytes(v.io_per_s),
            human_bytes(v.net_per_s),
            v.row.tasks.map_or("-".into(), |t| format!("{t:.0}")),
            v.runq_p99.map_or("-".into(), human_seconds),
        ));
    }
    if let Some(d) = detail {
        out.push('\n');
        out.push_str(d);
    }
    out
}

/// How the user turns syscall latency on, for each source.
fn latency_hint(agent: bool) -> &'static str {
    if agent {
        "syscall latency is off in the agent: set `sensor.syscall_latency: true` in its config"
    } else {
        "syscall latency is off: start `rampart top --syscall-latency` to time system calls"
    }
}

/// Details lines shown at most.
const DETAIL_LINES: usize = 10;

/// The details of one container: its most frequent system calls over the
/// interval with their latency (mean and 99th percentile) when the kernel
/// times them; else the kernel's counts, else the calls seen as events, with
/// how to turn latency on.
fn detail_text(prev: &Snapshot, cur: &Snapshot, id: &str, secs: f64, agent: bool) -> String {
    let secs = secs.max(1e-3);
    let name = cur.rows.get(id).map_or("", |r| r.name.as_str());
    let mut out = format!("details of {} {}:\n", clean(id, 12), clean(name, 24));
    if let Some(latency) = &cur.latency {
        let now = latency.get(id);
        let then = prev.latency.as_ref().and_then(|l| l.get(id));
        let mut lines: Vec<(String, f64, f64, Option<f64>)> = now
            .into_iter()
            .flatten()
            .filter_map(|(sc, l)| {
                let before = then.and_then(|t| t.get(sc)).cloned().unwrap_or_default();
                let n = l.count - before.count;
                (n > 0.0).then(|| {
                    let calls_per_s = n * cur.latency_sample.unwrap_or(1.0) / secs;
                    (sc.clone(), calls_per_s, (l.sum - before.sum) / n, runq_p99(&l.buckets, &before.buckets))
                })
            })
            .collect();
        lines.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.push_str(&format!("  {:<20} {:>10} {:>10} {:>10}\n", "SYSCALL", "CALLS/s", "MEAN", "p99"));
        if lines.is_empty() {
            out.push_str("  (no system call timed in the interval)\n");
        }
        for (sc, per_s, mean, p99) in lines.iter().take(DETAIL_LINES) {
            out.push_str(&format!(
                "  {:<20} {:>10.0} {:>10} {:>10}\n",
                clean(sc, 20),
                per_s,
                human_seconds(*mean),
                p99.map_or("-".into(), human_seconds)
            ));
        }
        return out;
    }
    let counted = cur.counts.as_ref().and_then(|c| c.get(id));
    let mut lines: Vec<(String, String)> = match counted {
        Some(now) => {
            let then = prev.counts.as_ref().and_then(|c| c.get(id));
            let mut v: Vec<(String, f64)> = now
                .iter()
                .map(|(sc, n)| {
                    (sc.clone(), (n - then.and_then(|t| t.get(sc)).copied().unwrap_or(0.0)).max(0.0) / secs)
                })
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            out.push_str("  system calls per second (the kernel's counts):\n");
            v.into_iter().map(|(sc, r)| (sc, format!("{r:.0}/s"))).collect()
        }
        None => {
            let mut v: Vec<(&String, &u64)> = cur.syscalls.get(id).into_iter().flatten().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            out.push_str("  system calls rampart saw (since start):\n");
            v.into_iter().map(|(sc, n)| (sc.clone(), n.to_string())).collect()
        }
    };
    if lines.is_empty() {
        out.push_str(if agent {
            "  (none: the agent's sensor.syscall_counts is off)\n"
        } else {
            "  (none yet)\n"
        });
    }
    lines.truncate(DETAIL_LINES);
    for (sc, n) in lines {
        out.push_str(&format!("  {:<20} {n}\n", clean(&sc, 20)));
    }
    out.push_str(&format!("  {}\n", latency_hint(agent)));
    out
}

// ---------------------------------------------------------------------------
// Sources

/// A running agent's `/metrics`, read over HTTP (bounded).
fn scrape_agent(addr: &str) -> Result<Snapshot> {
    use std::net::TcpStream;
    const MAX_BYTES: u64 = 32 << 20;
    let mut s = TcpStream::connect(addr).with_context(|| format!("no agent answers on {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    // One write: a request split over several writes can meet a server that
    // answered (and closed) after the first.
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    s.take(MAX_BYTES).read_to_string(&mut text)?;
    let Some((head, body)) = text.split_once("\r\n\r\n") else { bail!("{addr} did not answer HTTP") };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("{addr}: {}", head.lines().next().unwrap_or(""));
    }
    let mut snap = Snapshot::default();
    for sample in exposition::parse(body) {
        // Present whenever the agent counts or times syscalls.
        match sample.name.as_str() {
            "rampart_container_syscalls_uncounted_total" => {
                snap.counts.get_or_insert_with(HashMap::new);
            }
            "rampart_container_syscall_latency_uncounted_total" => {
                snap.latency.get_or_insert_with(HashMap::new);
            }
            "rampart_syscall_latency_sample" => snap.latency_sample = Some(sample.value),
            _ => {}
        }
        let Some(id) = sample.label("id") else { continue };
        let row = snap.rows.entry(id.to_string()).or_default();
        if row.name.is_empty() {
            row.name = sample.label("name").unwrap_or("").to_string();
            row.image = sample.label("image").unwrap_or("").to_string();
        }
        match sample.name.as_str() {
            "rampart_container_cpu_seconds_total" => row.cpu_seconds = Some(sample.value),
            "rampart_container_memory_bytes" => row.memory = Some(sample.value),
            "rampart_container_io_read_bytes_total" | "rampart_container_io_written_bytes_total" => {
                row.io_bytes = Some(row.io_bytes.unwrap_or(0.0) + sample.value)
            }
            "rampart_container_network_bytes_total" => {
                row.net_bytes = Some(row.net_bytes.unwrap_or(0.0) + sample.value)
            }
            "rampart_container_events_total" => row.events = sample.value,
            "rampart_container_processes" => row.tasks = Some(sample.value),
            "rampart_container_runqueue_latency_seconds_bucket" => {
                if let Some(le) = bucket_bound(&sample).filter(|_| row.runq.len() < 64) {
                    row.runq.push((le, sample.value));
                }
            }
            _ => {}
        }
        let Some(syscall) = sample.label("syscall") else { continue };
        // Bounded as the agent bounds them: 20 counted and 5 timed syscalls
        // per container; more from a hostile endpoint are ignored.
        match sample.name.as_str() {
            "rampart_container_syscalls_total" => {
                let per = snap.counts.get_or_insert_with(HashMap::new).entry(id.to_string()).or_default();
                if per.len() < 64 || per.contains_key(syscall) {
                    per.insert(syscall.to_string(), sample.value);
                }
            }
            name if name.starts_with("rampart_container_syscall_latency_seconds_") => {
                let per = snap.latency.get_or_insert_with(HashMap::new).entry(id.to_string()).or_default();
                if per.len() >= 64 && !per.contains_key(syscall) {
                    continue;
                }
                let l = per.entry(syscall.to_string()).or_default();
                match &name["rampart_container_syscall_latency_seconds_".len()..] {
                    "bucket" => {
                        if let Some(le) = bucket_bound(&sample).filter(|_| l.buckets.len() < 64) {
                            l.buckets.push((le, sample.value));
                        }
                    }
                    "count" => l.count = sample.value,
                    "sum" => l.sum = sample.value,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(snap)
}

/// A histogram bucket's upper bound (`le`), +Inf included.
fn bucket_bound(sample: &exposition::Sample) -> Option<f64> {
    match sample.label("le")? {
        "+Inf" => Some(f64::INFINITY),
        le => le.parse().ok().filter(|v: &f64| !v.is_nan()),
    }
}

/// Events per container cgroup, and per system call, from the own sensor.
#[derive(Debug, Default)]
struct Seen {
    per_cgroup: HashMap<u64, (u64, HashMap<String, u64>)>,
    /// The kernel's run-queue histograms, once the sensor runs.
    runq: Option<Arc<sensor::RunQueueMaps>>,
    /// The kernel's syscall latency histograms (`--syscall-latency`).
    latency: Option<Arc<sensor::SyscallLatencyMaps>>,
    /// Network bytes per cgroup from the flow programs' per-container counters.
    traffic: Option<pipeline::Traffic>,
}

/// Cgroups and distinct system calls per cgroup kept (bounded memory).
const MAX_CGROUPS: usize = 4096;
const MAX_SYSCALLS: usize = 512;

struct Counter {
    seen: Arc<Mutex<Seen>>,
    quit: Arc<AtomicBool>,
    attached: Arc<AtomicBool>,
}

impl Consumer for Counter {
    fn event(&mut self, ev: &Event, _processes: &ProcessTable) -> std::io::Result<()> {
        // Flows are the network column's, not events a process caused.
        if ev.container.is_none() || matches!(ev.kind, model::EventKind::Flow(_)) {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.per_cgroup.len() >= MAX_CGROUPS && !seen.per_cgroup.contains_key(&ev.process.cgroup_id) {
            return Ok(());
        }
        let entry = seen.per_cgroup.entry(ev.process.cgroup_id).or_default();
        entry.0 += 1;
        if let Some(sc) = &ev.syscall {
            if let Some(n) = entry.1.get_mut(sc.as_ref()) {
                *n += 1;
            } else if entry.1.len() < MAX_SYSCALLS {
                entry.1.insert(sc.to_string(), 1);
            }
        }
        Ok(())
    }

    fn finished(&mut self) -> bool {
        self.quit.load(Ordering::Relaxed)
    }

    fn started(&mut self, sensor: &pipeline::SensorHandles) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.runq = sensor.runq.clone();
        seen.latency = sensor.syscall_latency.clone();
        seen.traffic = Some(sensor.traffic.clone());
        self.attached.store(true, Ordering::Relaxed);
    }
}

fn local_snapshot(registry: &ContainerRegistry, seen: &Mutex<Seen>) -> Snapshot {
    let root = registry.status().cgroup_root;
    let mut snap = Snapshot::default();
    let mut by_id: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
    let mut runq: HashMap<String, sensor::runq::RunQueueHistogram> = HashMap::new();
    let mut traffic = None;
    {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = &seen.traffic {
            traffic = Some(agent::metrics::traffic_per_container(registry, t));
        }
        if let Some(maps) = &seen.latency {
            let mut per: PerSyscall<sensor::runq::RunQueueHistogram> = HashMap::new();
            for (cg, nr, h) in maps.read() {
                if let runtime::Resolution::Container(c) = registry.resolve_cached(cg) {
                    let name = agent::metrics::syscall_name(nr).to_string();
                    per.entry(c.short_id().to_string()).or_default().entry(name).or_default().merge(&h);
                }
            }
            let latency = per
                .into_iter()
                .map(|(id, calls)| {
                    let calls = calls
                        .into_iter()
                        .map(|(sc, h)| {
                            let l = Latency {
                                buckets: cumulative_with_inf(&h),
                                count: h.count as f64,
                                sum: h.sum_ns as f64 / 1e9,
                            };
                            (sc, l)
                        })
                        .collect();
                    (id, calls)
                })
                .collect();
            snap.latency = Some(latency);
            snap.latency_sample = Some(f64::from(maps.sample()));
        }
        for (cg, h) in seen.runq.as_ref().map(|m| m.read()).unwrap_or_default() {
            if let runtime::Resolution::Container(c) = registry.resolve_cached(cg) {
                runq.entry(c.short_id().to_string()).or_default().merge(&h);
            }
        }
        for (cg, (n, calls)) in &seen.per_cgroup {
            if let runtime::Resolution::Container(c) = registry.resolve_cached(*cg) {
                let e = by_id.entry(c.short_id().to_string()).or_default();
                e.0 += n;
                for (k, v) in calls {
                    *e.1.entry(k.clone()).or_default() += v;
                }
            }
        }
    }
    for c in registry.containers() {
        let usage =
            CgroupUsage::for_container(root.as_deref(), &c.cgroup_path, std::path::Path::new(CGROUP_V1_ROOT));
        let (events, calls) = by_id.remove(c.short_id()).unwrap_or_default();
        let io = match (usage.io_read, usage.io_written) {
            (None, None) => None,
            (r, w) => Some((r.unwrap_or(0) + w.unwrap_or(0)) as f64),
        };
        snap.rows.insert(
            c.short_id().to_string(),
            Row {
                name: c.name.trim_start_matches('/').to_string(),
                image: c.image.clone(),
                cpu_seconds: usage.cpu_usec.map(|u| u as f64 / 1e6),
                memory: usage.memory.map(|m| m as f64),
                io_bytes: io,
                net_bytes: traffic
                    .as_ref()
                    .map(|t| t.get(&c.id).map_or(0.0, |t| (t.bytes_in + t.bytes_out) as f64)),
                events: events as f64,
                tasks: usage.pids.map(|p| p as f64),
                runq: runq.get(c.short_id()).map(cumulative_with_inf).unwrap_or_default(),
            },
        );
        snap.syscalls.insert(c.short_id().to_string(), calls);
    }
    snap
}

// ---------------------------------------------------------------------------
// Terminal

/// Raw keys from a terminal stdin, restored on drop.
struct RawTerminal {
    saved: Option<libc::termios>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a valid termios
        // out-pointer; no other preconditions.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawTerminal { saved: None };
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawTerminal { saved: None };
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawTerminal { saved: Some(saved) }
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes read in `enter` on the same fd.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

pub async fn top(args: TopArgs) -> Result<()> {
    let quit = Arc::new(AtomicBool::new(false));
    let interactive = args.iterations.is_none();
    let (keys_tx, keys_rx) = std::sync::mpsc::channel::<u8>();
    let _raw = interactive.then(RawTerminal::enter);
    if interactive {
        // A thread of its own: stdin reads block. It ends with the process.
        std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while let Ok(n @ 1..) = std::io::stdin().read(&mut buf) {
                if keys(&buf[..n]).into_iter().any(|k| keys_tx.send(k).is_err()) {
                    break;
                }
            }
        });
    }
    let ui = Ui {
        key: args.sort,
        rows: args.rows,
        interval: args.interval,
        iterations: args.iterations,
        interactive,
    };

    if let Some(addr) = &args.agent {
        // Checked once before the screen is taken: a wrong address is an error.
        let first = scrape_agent(addr)?;
        let addr = addr.clone();
        let source = format!("agent {addr}");
        return tokio::task::spawn_blocking(move || {
            ui.run(first, || scrape_agent(&addr), keys_rx, &source, true)
        })
        .await
        .context("top")?;
    }

    let (registry, _tasks) = args.runtime.registry();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let attached = Arc::new(AtomicBool::new(false));
    let mut counter = Counter { seen: seen.clone(), quit: quit.clone(), attached: attached.clone() };
    let ui_task = {
        let (registry, seen, quit) = (registry.clone(), seen.clone(), quit.clone());
        tokio::task::spawn_blocking(move || {
            // The first figures once the sensor sees events (or it failed).
            let deadline = Instant::now() + Duration::from_secs(60);
            while !attached.load(Ordering::Relaxed)
                && !quit.load(Ordering::Relaxed)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let r = ui.run(
                local_snapshot(&registry, &seen),
                || Ok(local_snapshot(&registry, &seen)),
                keys_rx,
                "own sensor",
                false,
            );
            quit.store(true, Ordering::Relaxed);
            r
        })
    };
    let filter = EventFilter::default();
    // Flows for the network column only: no DNS, no scan and flood windows;
    // not pinned, so that `rampart flows` keeps reading the agent's table.
    let flows = sensor::FlowConfig {
        dns: false,
        detect: sensor::NetstatConfig { enabled: false, ..Default::default() },
        private: true,
        ..Default::default()
    };
    let config =
        SensorConfig { flows: Some(flows), syscall_latency: args.syscall_latency, ..SensorConfig::default() };
    pipeline::stream(config, registry, &filter, &mut counter).await?;
    quit.store(true, Ordering::Relaxed);
    ui_task.await.context("top")?
}

struct Ui {
    key: SortKey,
    rows: usize,
    interval: Duration,
    iterations: Option<u32>,
    interactive: bool,
}

impl Ui {
    fn run(
        mut self,
        first: Snapshot,
        mut next: impl FnMut() -> Result<Snapshot>,
        keys: std::sync::mpsc::Receiver<u8>,
        source: &str,
        agent: bool,
    ) -> Result<()> {
        let mut detail = false;
        // The container the user moved to; none: the top row.
        let mut selected: Option<String> = None;
        // Ids in the order shown last, for moving the selection.
        let mut order: Vec<String> = Vec::new();
        // The last snapshot and the one before it, with the seconds between:
        // a key redraws from them at once.
        let mut prev = first.clone();
        let mut before = first;
        let mut secs = 0.0;
        let mut at = Instant::now();
        let mut done = 0u32;
        let mut stdout = std::io::stdout();
        loop {
            // Wait one interval, answering keys as they come.
            let deadline = Instant::now() + self.interval;
            let mut redraw_now = false;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match keys.recv_timeout(left) {
                    Ok(b'q') => return Ok(()),
                    Ok(b'c') => self.key = SortKey::Cpu,
                    Ok(b'e') => self.key = SortKey::Events,
                    Ok(b'm') => self.key = SortKey::Memory,
                    Ok(b'i') => self.key = SortKey::Io,
                    Ok(b'n') => self.key = SortKey::Net,
                    Ok(b'd') => detail = !detail,
                    Ok(b'j') => selected = step(&order, selected.as_deref(), 1),
                    Ok(b'k') => selected = step(&order, selected.as_deref(), -1),
                    Ok(_) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(left);
                        break;
                    }
                }
                redraw_now = true;
                break;
            }
            if !redraw_now {
                let cur = next()?;
                let now = Instant::now();
                secs = now.duration_since(at).as_secs_f64();
                before = std::mem::replace(&mut prev, cur);
                at = now;
                done += 1;
            }
            let mut vs = views(&before, &prev, secs);
            sort(&mut vs, self.key);
            order = vs.iter().take(self.rows).map(|v| v.id.clone()).collect();
            let shown = selected
                .as_deref()
                .filter(|id| order.iter().any(|o| o == id))
                .or(order.first().map(|s| s.as_str()));
            let detail_text = shown.filter(|_| detail).map(|id| detail_text(&before, &prev, id, secs, agent));
            let text = render(&vs, self.key, self.rows, shown, detail_text.as_deref(), source);
            if self.interactive {
                // Home, clear, then the table (raw mode: \r\n line ends).
                let _ = write!(stdout, "\x1b[H\x1b[2J{}", text.replace('\n', "\r\n"));
            } else {
                let _ = writeln!(stdout, "{text}");
            }
            let _ = stdout.flush();
            if self.iterations.is_some_and(|n| done >= n) {
                return Ok(());
            }
        }
    }
}

/// The selection after moving `by` rows from `selected` (none: the top row)
/// in the order shown, kept within the rows.
fn step(order: &[String], selected: Option<&str>, by: isize) -> Option<String> {
    let at = selected.and_then(|id| order.iter().position(|o| o == id)).unwrap_or(0);
    let to = at.saturating_add_signed(by).min(order.len().saturating_sub(1));
    order.get(to).cloned()
}

/// Keys from what one read of the terminal gave: the arrow keys' escape
/// sequences become `k` (up) and `j` (down), Enter `d`.
fn keys(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&b, tail)) = rest.split_first() {
        match (b, tail) {
            (0x1b, [b'[' | b'O', b'A', more @ ..]) => {
                out.push(b'k');
                rest = more;
                continue;
            }
            (0x1b, [b'[' | b'O', b'B', more @ ..]) => {
                out.push(b'j');
                rest = more;
                continue;
            }
            (b'\r' | b'\n', _) => out.push(b'd'),
            _ => out.push(b),
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cpu: f64, events: f64, mem: f64) -> Row {
        Row {
            name: "n".into(),
            image: "i".into(),
            cpu_seconds: Some(cpu),
            memory: Some(mem),
            io_bytes: Some(0.0),
            net_bytes: Some(0.0),
            events,
            tasks: Some(1.0),
            runq: Vec::new(),
        }
    }

    fn snap(rows: &[(&str, Row)]) -> Snapshot {
        Snapshot {
            rows: rows.iter().map(|(id, r)| (id.to_string(), r.clone())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rates_and_sorting() {
        let prev = snap(&[("busy", row(10.0, 100.0, 1e6)), ("idle", row(1.0, 10.0, 9e6))]);
        let cur = snap(&[
            ("busy", row(12.0, 1100.0, 1e6)),
            ("idle", row(1.02, 12.0, 9e6)),
            ("new", row(0.5, 5.0, 1.0)),
        ]);
        let mut vs = views(&prev, &cur, 2.0);
        sort(&mut vs, SortKey::Cpu);
        assert_eq!(vs.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["busy", "idle", "new"]);
        assert_eq!(vs[0].cpu_percent, Some(100.0));
        assert_eq!(vs[0].events_per_s, 500.0);
        assert_eq!(vs[2].cpu_percent, None, "no rate before a second sample");
        sort(&mut vs, SortKey::Memory);
        assert_eq!(vs[0].id, "idle");
        // Network: bytes both ways per second.
        let mut cur = cur;
        cur.rows.get_mut("idle").unwrap().net_bytes = Some(4000.0);
        let mut vs = views(&prev, &cur, 2.0);
        sort(&mut vs, SortKey::Net);
        assert_eq!((vs[0].id.as_str(), vs[0].net_per_s), ("idle", Some(2000.0)));
        assert_eq!(vs[2].net_per_s, None, "no rate before a second sample");
    }

    /// Cumulative buckets of `n` waits of about 4 µs and `slow` of up to 8 ms.
    fn latency(n: f64, slow: f64) -> Latency {
        Latency {
            buckets: vec![(0.000004, n), (0.008, n + slow), (f64::INFINITY, n + slow)],
            count: n + slow,
            sum: n * 0.000003 + slow * 0.006,
        }
    }

    fn with_latency(calls: &[(&str, Latency)]) -> Snapshot {
        let mut s = snap(&[("busy", row(1.0, 1.0, 1.0))]);
        let per: HashMap<String, Latency> = calls.iter().map(|(n, l)| (n.to_string(), l.clone())).collect();
        s.latency = Some([("busy".to_string(), per)].into_iter().collect());
        s
    }

    /// Sampled latency: the timed calls times the sample estimate all of
    /// them; mean and p99 need no scaling.
    #[test]
    fn details_scale_sampled_calls_by_the_sample() {
        let prev = with_latency(&[("openat", latency(100.0, 0.0))]);
        let mut cur = with_latency(&[("openat", latency(2100.0, 0.0))]);
        cur.latency_sample = Some(16.0);
        let text = detail_text(&prev, &cur, "busy", 2.0, false);
        let line = text.lines().find(|l| l.trim_start().starts_with("openat")).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols, ["openat", "16000", "3us", "4us"], "{text}");
    }

    #[test]
    fn details_show_the_intervals_syscalls_and_their_latency() {
        let prev = with_latency(&[("openat", latency(100.0, 0.0)), ("wait4", latency(0.0, 10.0))]);
        let cur = with_latency(&[("openat", latency(2100.0, 0.0)), ("wait4", latency(0.0, 12.0))]);
        let text = detail_text(&prev, &cur, "busy", 2.0, false);
        eprintln!("{text}");
        let line = |sc: &str| text.lines().find(|l| l.trim_start().starts_with(sc)).unwrap().to_string();
        // openat: 2000 calls in 2 s, 3 us each, all under 4 us.
        let openat: Vec<String> = line("openat").split_whitespace().map(str::to_string).collect();
        assert_eq!(openat, ["openat", "1000", "3us", "4us"], "{text}");
        let wait4: Vec<String> = line("wait4").split_whitespace().map(str::to_string).collect();
        assert_eq!(wait4, ["wait4", "1", "6.0ms", "8.0ms"], "{text}");
        assert!(text.find("openat").unwrap() < text.find("wait4").unwrap(), "most frequent first");
        assert!(!text.contains("latency is off"), "{text}");
    }

    #[test]
    fn details_without_latency_say_how_to_turn_it_on() {
        let mut s = snap(&[("busy", row(1.0, 1.0, 1.0))]);
        s.syscalls.insert("busy".into(), [("openat".to_string(), 7u64)].into_iter().collect());
        let own = detail_text(&s, &s, "busy", 1.0, false);
        assert!(own.contains("openat") && own.contains("rampart top --syscall-latency"), "{own}");
        // An agent that counts but does not time: per second from its counts.
        let (mut a, mut b) = (s.clone(), s.clone());
        a.counts = Some([("busy".to_string(), [("sync".to_string(), 10.0)].into_iter().collect())].into());
        b.counts = Some([("busy".to_string(), [("sync".to_string(), 30.0)].into_iter().collect())].into());
        let agent = detail_text(&a, &b, "busy", 2.0, true);
        assert!(agent.contains("10/s") && agent.contains("sensor.syscall_latency: true"), "{agent}");
    }

    #[test]
    fn selection_moves_within_the_rows_and_arrow_keys_map_to_it() {
        let order: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(step(&order, None, 1).as_deref(), Some("b"), "from the top row");
        assert_eq!(step(&order, Some("c"), 1).as_deref(), Some("c"));
        assert_eq!(step(&order, Some("b"), -1).as_deref(), Some("a"));
        assert_eq!(step(&order, Some("a"), -1).as_deref(), Some("a"));
        assert_eq!(step(&order, Some("gone"), 1).as_deref(), Some("b"));
        assert_eq!(step(&[], None, 1), None);
        assert_eq!(keys(b"\x1b[B\x1b[Aq"), b"jkq");
        assert_eq!(keys(b"\x1bOB\r"), b"jd");
        assert_eq!(keys(b"\x1b"), b"\x1b");
    }

    #[test]
    fn run_queue_percentile_of_the_interval() {
        let then = vec![(0.000002, 100.0), (0.001, 100.0), (0.008, 100.0), (f64::INFINITY, 100.0)];
        // 100 new waits: 98 short, 2 of up to 8 ms
        let now = vec![(0.000002, 198.0), (0.001, 198.0), (0.008, 200.0), (f64::INFINITY, 200.0)];
        assert_eq!(runq_p99(&now, &then), Some(0.008));
        assert_eq!(runq_p99(&then, &then), None, "no waits in the interval");
        assert_eq!(runq_p99(&now, &[]), Some(0.000002), "first sample: since start, 198 of 200 short");
        assert_eq!(human_seconds(0.008), "8.0ms");
        assert_eq!(human_seconds(0.000004), "4us");
        assert_eq!(human_seconds(0.00000035), "350ns");
    }

    #[test]
    fn hostile_names_cannot_drive_the_terminal() {
        let mut r = row(1.0, 1.0, 1.0);
        r.name = "\x1b[2Jevil\nname".into();
        let v = View {
            id: "abc".into(),
            row: r,
            cpu_percent: Some(1.0),
            events_per_s: 1.0,
            io_per_s: None,
            net_per_s: None,
            runq_p99: None,
        };
        let text = render(&[v], SortKey::Cpu, 10, None, None, "test");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn agent_metrics_become_rows() {
        let mut e = exposition::Exposition::new(exposition::Format::Prometheus);
        let labels = [("id", "abc"), ("name", "web"), ("image", "nginx"), ("pod", ""), ("namespace", "")];
        e.counter_f64("rampart_container_cpu_seconds", "h", [(&labels[..], 2.5)]);
        e.counter("rampart_container_events", "h", [(&labels[..], 7)]);
        e.counter("rampart_container_io_read_bytes", "h", [(&labels[..], 10)]);
        e.counter("rampart_container_io_written_bytes", "h", [(&labels[..], 5)]);
        let dirs: Vec<Vec<(&str, &str)>> = ["rx", "tx"]
            .iter()
            .map(|d| {
                let mut l = labels.to_vec();
                l.push(("direction", d));
                l
            })
            .collect();
        e.counter("rampart_container_network_bytes", "h", [(&dirs[0][..], 100), (&dirs[1][..], 20)]);
        let mut sync = labels.to_vec();
        sync.push(("syscall", "sync"));
        e.counter("rampart_container_syscalls", "h", [(&sync[..], 9)]);
        e.histogram(
            "rampart_container_syscall_latency_seconds",
            "h",
            [(&sync[..], vec![(0.000002, 5), (0.000004, 9)], 9, 0.5)],
        );
        e.counter("rampart_container_syscall_latency_uncounted", "h", [(&[][..], 0)]);
        e.gauge("rampart_syscall_latency_sample", "h", [(&[][..], 16.0)]);
        e.histogram(
            "rampart_container_runqueue_latency_seconds",
            "h",
            [(&labels[..], vec![(0.000002, 1), (0.000004, 3)], 4, 0.0)],
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let body = e.finish();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        });
        let snap = scrape_agent(&addr).unwrap();
        let r = &snap.rows["abc"];
        assert_eq!((r.name.as_str(), r.image.as_str()), ("web", "nginx"));
        assert_eq!((r.cpu_seconds, r.events, r.io_bytes), (Some(2.5), 7.0, Some(15.0)));
        assert_eq!(r.runq, vec![(0.000002, 1.0), (0.000004, 3.0), (f64::INFINITY, 4.0)]);
        assert_eq!(r.net_bytes, Some(120.0));
        assert_eq!(snap.counts.as_ref().unwrap()["abc"]["sync"], 9.0);
        let l = &snap.latency.as_ref().unwrap()["abc"]["sync"];
        assert_eq!((l.count, l.sum), (9.0, 0.5));
        assert_eq!(l.buckets, vec![(0.000002, 5.0), (0.000004, 9.0), (f64::INFINITY, 9.0)]);
        assert_eq!(snap.latency_sample, Some(16.0));
        assert!(scrape_agent("127.0.0.1:1").is_err());
    }
}

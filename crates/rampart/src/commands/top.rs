//! `rampart top`: containers by CPU, events, memory or I/O, refreshed live.
//!
//! Two sources: a running agent's `/metrics` (`--agent ADDR`), or, by default,
//! a sensor of its own plus the kernel's cgroup accounting. Keys: `c` CPU, `e`
//! events, `m` memory, `i` I/O, `d` details of the top container (the system
//! calls rampart saw from it; own sensor only), `q` quits.

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
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Cpu,
    Events,
    Memory,
    Io,
}

impl SortKey {
    fn label(self) -> &'static str {
        match self {
            SortKey::Cpu => "CPU",
            SortKey::Events => "events",
            SortKey::Memory => "memory",
            SortKey::Io => "I/O",
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
    events: f64,
    tasks: Option<f64>,
    /// Run-queue waits so far: cumulative count per upper bound (seconds),
    /// increasing, the last bound +Inf.
    runq: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// By short container id.
    rows: HashMap<String, Row>,
    /// System calls seen, by short container id (own sensor only).
    syscalls: HashMap<String, HashMap<String, u64>>,
}

/// What a refresh shows of one container: rates over the last interval.
#[derive(Debug, Clone, PartialEq)]
struct View {
    id: String,
    row: Row,
    cpu_percent: Option<f64>,
    events_per_s: f64,
    io_per_s: Option<f64>,
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
        s => format!("{:.0}us", s * 1e6),
    }
}

fn render(
    views: &[View],
    key: SortKey,
    rows: usize,
    detail: Option<(&str, &HashMap<String, u64>)>,
    source: &str,
) -> String {
    let mut out = format!(
        "rampart top: {} containers, sorted by {} ({source}); keys: c cpu, e events, m memory, i io, d details, q quit\n",
        views.len(),
        key.label()
    );
    out.push_str(&format!(
        "{:<12} {:<24} {:<24} {:>7} {:>9} {:>8} {:>9} {:>6} {:>9}\n",
        "ID", "NAME", "IMAGE", "CPU%", "EVENTS/s", "MEM", "IO/s", "TASKS", "RUNQ p99"
    ));
    for v in views.iter().take(rows) {
        out.push_str(&format!(
            "{:<12} {:<24} {:<24} {:>7} {:>9.0} {:>8} {:>9} {:>6} {:>9}\n",
            clean(&v.id, 12),
            clean(&v.row.name, 24),
            clean(&v.row.image, 24),
            v.cpu_percent.map_or("-".into(), |c| format!("{c:.1}")),
            v.events_per_s,
            human_bytes(v.row.memory),
            human_bytes(v.io_per_s),
            v.row.tasks.map_or("-".into(), |t| format!("{t:.0}")),
            v.runq_p99.map_or("-".into(), human_seconds),
        ));
    }
    if let Some((id, calls)) = detail {
        let mut calls: Vec<(&String, &u64)> = calls.iter().collect();
        calls.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        out.push_str(&format!("\nsystem calls rampart saw from {} (since start):\n", clean(id, 12)));
        if calls.is_empty() {
            out.push_str("  (none yet; with --agent, details need the own sensor)\n");
        }
        for (name, n) in calls.iter().take(10) {
            out.push_str(&format!("  {:<20} {n}\n", clean(name, 20)));
        }
    }
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
            "rampart_container_events_total" => row.events = sample.value,
            "rampart_container_processes" => row.tasks = Some(sample.value),
            "rampart_container_runqueue_latency_seconds_bucket" => {
                let le = match sample.label("le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::NAN),
                    None => f64::NAN,
                };
                if !le.is_nan() && row.runq.len() < 64 {
                    row.runq.push((le, sample.value));
                }
            }
            _ => {}
        }
    }
    Ok(snap)
}

/// Events per container cgroup, and per system call, from the own sensor.
#[derive(Debug, Default)]
struct Seen {
    per_cgroup: HashMap<u64, (u64, HashMap<String, u64>)>,
    /// The kernel's run-queue histograms, once the sensor runs.
    runq: Option<Arc<sensor::RunQueueMaps>>,
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
        if ev.container.is_none() {
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
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).runq = sensor.runq.clone();
        self.attached.store(true, Ordering::Relaxed);
    }
}

fn local_snapshot(registry: &ContainerRegistry, seen: &Mutex<Seen>) -> Snapshot {
    let root = registry.status().cgroup_root;
    let mut snap = Snapshot::default();
    let mut by_id: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
    let mut runq: HashMap<String, sensor::runq::RunQueueHistogram> = HashMap::new();
    {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
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
            let mut byte = [0u8; 1];
            while std::io::stdin().read(&mut byte).map(|n| n == 1).unwrap_or(false) {
                if keys_tx.send(byte[0]).is_err() {
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
        return tokio::task::spawn_blocking(move || ui.run(first, || scrape_agent(&addr), keys_rx, &source))
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
            );
            quit.store(true, Ordering::Relaxed);
            r
        })
    };
    let filter = EventFilter::default();
    pipeline::stream(SensorConfig::default(), registry, &filter, &mut counter).await?;
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
        mut prev: Snapshot,
        mut next: impl FnMut() -> Result<Snapshot>,
        keys: std::sync::mpsc::Receiver<u8>,
        source: &str,
    ) -> Result<()> {
        let mut detail = false;
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
                    Ok(b'd') => detail = !detail,
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
            let cur = if redraw_now { prev.clone() } else { next()? };
            let now = Instant::now();
            let mut vs = views(&prev, &cur, now.duration_since(at).as_secs_f64());
            sort(&mut vs, self.key);
            let top_id = vs.first().map(|v| v.id.clone());
            let calls = top_id.as_ref().and_then(|id| cur.syscalls.get(id).map(|c| (id.as_str(), c)));
            let empty = HashMap::new();
            let detail_of =
                if detail { Some(calls.unwrap_or((top_id.as_deref().unwrap_or("-"), &empty))) } else { None };
            let text = render(&vs, self.key, self.rows, detail_of, source);
            if self.interactive {
                // Home, clear, then the table (raw mode: \r\n line ends).
                let _ = write!(stdout, "\x1b[H\x1b[2J{}", text.replace('\n', "\r\n"));
            } else {
                let _ = writeln!(stdout, "{text}");
            }
            let _ = stdout.flush();
            if !redraw_now {
                prev = cur;
                at = now;
                done += 1;
            }
            if self.iterations.is_some_and(|n| done >= n) {
                return Ok(());
            }
        }
    }
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
            runq_p99: None,
        };
        let text = render(&[v], SortKey::Cpu, 10, None, "test");
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
        assert!(scrape_agent("127.0.0.1:1").is_err());
    }
}

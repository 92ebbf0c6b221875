//! `rampart flows`: the live flow table, per container (bytes and packets
//! each way, counted in the kernel).
//!
//! Two sources: a running agent's table (pinned under
//! `/sys/fs/bpf/rampart/flows`), or, when no agent runs, a flow table of its
//! own attached for `--duration` (it sees only what flows in that time).

use super::RuntimeArgs;
use anyhow::{Context, Result};
use clap::Args;
use model::Container;
use sensor::flows::{tcp_state_name, FlowCounters, FlowKey, FlowTableStats, PinnedFlows, PIN_DIR};
use sensor::{FlowConfig, FlowTable};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct FlowsArgs {
    /// Only this container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Print JSON (one object: the flows and the table's counters).
    #[arg(long)]
    json: bool,
    /// Also show flows of processes that are not in a container (host
    /// processes in a network namespace of their own; with no agent running,
    /// also the host's own network namespace).
    #[arg(long)]
    host: bool,
    /// With no agent's table: how long the own table counts before it is shown.
    #[arg(long, value_parser = super::record::parse_duration, default_value = "2s")]
    duration: Duration,
    /// Read only the table a running agent pinned; fail if there is none (an
    /// agent keeps one while a loaded rule reads flow events, or always with
    /// sensor.flows.records: always).
    #[arg(long)]
    agent: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct FlowRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<ContainerRef>,
    cgroup_id: u64,
    proto: String,
    local: String,
    remote: String,
    bytes_in: u64,
    bytes_out: u64,
    payload_in: u64,
    payload_out: u64,
    packets_in: u64,
    packets_out: u64,
    /// From the first to the latest packet, ns.
    duration_ns: u64,
    /// Since the latest packet, ns.
    idle_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_state: Option<&'static str>,
    retransmits: u32,
    closed: bool,
}

#[derive(Debug, Serialize)]
struct ContainerRef {
    id: String,
    name: String,
    image: String,
}

#[derive(Debug, Serialize)]
struct Output {
    /// `agent` (a running agent's table) or `own` (this command's, counting
    /// since it started).
    source: &'static str,
    table: FlowTableStats,
    flows: Vec<FlowRow>,
}

fn endpoint((ip, port): (std::net::IpAddr, u16)) -> String {
    match ip {
        std::net::IpAddr::V4(_) => format!("{ip}:{port}"),
        std::net::IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

fn row(key: &FlowKey, c: &FlowCounters, container: Option<&Arc<Container>>, now_ns: u64) -> FlowRow {
    FlowRow {
        container: container.map(|c| ContainerRef {
            id: c.short_id().to_string(),
            name: c.name.trim_start_matches('/').to_string(),
            image: c.image.clone(),
        }),
        cgroup_id: key.cgroup_id,
        proto: sensor::flows::proto_name(key.proto),
        local: endpoint(key.local),
        remote: endpoint(key.remote),
        bytes_in: c.bytes_in,
        bytes_out: c.bytes_out,
        payload_in: c.payload_in,
        payload_out: c.payload_out,
        packets_in: c.packets_in,
        packets_out: c.packets_out,
        duration_ns: c.last_ns.saturating_sub(c.first_ns),
        idle_ns: now_ns.saturating_sub(c.last_ns),
        tcp_state: if key.proto == 6 { tcp_state_name(c.tcp_state) } else { None },
        retransmits: c.retransmits,
        closed: c.closed_ns != 0,
    }
}

pub async fn flows(args: FlowsArgs) -> Result<()> {
    let (containers, _watchers) = args.runtime.registry();
    // An agent whose rules read no flow events keeps no per-flow table
    // (sensor.flows.records: auto): count with our own then.
    let pinned = PinnedFlows::open(Path::new(PIN_DIR));
    let kept = pinned.as_ref().is_none_or(PinnedFlows::records_kept);
    if !kept {
        eprintln!(
            "rampart: the running agent keeps no per-flow table (no loaded rule reads flow events; \
             sensor.flows.records: always keeps one)"
        );
    }
    let (source, entries, table) = match pinned.filter(|_| kept) {
        Some(p) => ("agent", p.entries(), p.stats()),
        None if args.agent => anyhow::bail!("no running agent's flow table at {PIN_DIR}"),
        None => {
            use sensor::flows::FlowSource;
            let root = runtime::find_cgroup2_mount().context("finding the cgroup v2 hierarchy")?;
            // Flows only: nobody reads DNS records here.
            let cfg = FlowConfig { dns: false, ..FlowConfig::default() };
            let mut own = FlowTable::start(&cfg, &root, args.host).context("starting flow accounting")?;
            eprintln!("rampart: no agent's flow table; counting flows for {:?}", args.duration);
            tokio::time::sleep(args.duration).await;
            let entries = own.entries();
            ("own", entries, own.stats())
        }
    };
    let now = sensor::flows::boot_now_ns();
    let mut rows = Vec::new();
    for (key, counters) in &entries {
        let container = containers.resolve(key.cgroup_id).await;
        let shown = match (&container, &args.container) {
            (Some(c), Some(q)) => c.matches(q),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => args.host,
        };
        if shown {
            rows.push(row(key, counters, container.as_ref(), now));
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.bytes_in.saturating_add(r.bytes_out)));
    let out = Output { source, table, flows: rows };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<5} {:<24} {:<24} {:>12} {:>12} {:>9} {:>9} {:<12} {:>8}",
        "CONTAINER",
        "PROTO",
        "LOCAL",
        "REMOTE",
        "BYTES IN",
        "BYTES OUT",
        "PKTS IN",
        "PKTS OUT",
        "STATE",
        "AGE"
    );
    for r in &out.flows {
        let name = r.container.as_ref().map_or("host", |c| c.name.as_str());
        println!(
            "{:<16} {:<5} {:<24} {:<24} {:>12} {:>12} {:>9} {:>9} {:<12} {:>7.1}s",
            truncate(name, 16),
            r.proto,
            r.local,
            r.remote,
            r.bytes_in,
            r.bytes_out,
            r.packets_in,
            r.packets_out,
            r.tcp_state.unwrap_or(if r.closed { "closed" } else { "-" }),
            r.duration_ns as f64 / 1e9
        );
    }
    let t = &out.table;
    eprintln!(
        "rampart: {} flows shown; table {} of {} entries ({}), {} packets of new flows found it full",
        out.flows.len(),
        t.entries,
        t.max_entries,
        source,
        t.lost_packets
    );
    Ok(())
}

/// At most `n` characters (container names are the container's own text).
fn truncate(s: &str, n: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(n).collect()
}

//! Per-container flow accounting (bpf/flows.bpf.c): the kernel counts bytes
//! and packets of every flow in a hash map keyed by (cgroup id, protocol,
//! local and remote address and port), while its switch ([`FlowRecords`]) is
//! on; this module reads that table and turns it into `flow` events.
//!
//! Layout: [`FlowKey`]/[`FlowCounters`] decode the kernel's records and
//! [`FlowTracker`] decides start/update/end (pure, unit-tested through the
//! [`FlowSource`] trait); [`FlowTable`] is the kernel side (load, attach to the
//! cgroup v2 root, read, take, pin).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle};
use model::{Event, EventKind, FlowPhase, FlowRecord, ProcessCtx, SockAddr};
use serde::{Deserialize, Serialize};

use crate::maps::RecordRing;

use crate::SensorError;

#[allow(clippy::all, clippy::undocumented_unsafe_blocks, warnings, unsafe_op_in_unsafe_fn, missing_docs)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/flows.skel.rs"));
}

const OBJECT: &str = "flows.bpf.o";
pub(crate) const KEY_LEN: usize = 48;
const VAL_LEN: usize = 88;
const _: () = assert!(std::mem::size_of::<skel::types::fl_key>() == KEY_LEN);
const _: () = assert!(std::mem::size_of::<skel::types::fl_val>() == VAL_LEN);
const _: () = assert!(std::mem::size_of::<skel::types::fl_end>() == KEY_LEN + VAL_LEN);
/// Ended flows consumed from the kernel's fl_ended ring per call (it holds
/// ~7,000).
const ENDED_BATCH: usize = 16384;
const _: () = assert!(std::mem::size_of::<skel::types::dns_rec>() == crate::dns::REC_LEN);
const _: () = assert!(std::mem::size_of::<skel::types::ns_val>() == crate::netstat::VAL_LEN);

/// Where a running agent pins its flow table (in a directory named by its
/// pid), for `rampart flows`.
pub const PIN_DIR: &str = "/sys/fs/bpf/rampart/flows";
/// Largest table the config accepts (each entry costs ~200 bytes of kernel
/// memory, preallocated).
pub const MAX_TABLE_ENTRIES: u32 = 1 << 20;

/// Flow accounting settings (`sensor.flows` in the agent's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Count flows in the kernel and report `flow` events.
    pub enabled: bool,
    /// Entries of the kernel table (one per live flow). Packets of a new flow
    /// that finds the table full are counted in the table's overflow counters.
    pub max_entries: u32,
    /// How often the agent reads the table, ms.
    pub drain_interval_ms: u64,
    /// An `update` event per flow at most this often (only when it carried
    /// traffic since the last one), s.
    pub update_interval_s: u64,
    /// A flow without packets for this long ends (`end`, reason idle), s.
    pub idle_timeout_s: u64,
    /// Copy DNS payloads (port 53) of container sockets and report `dns`
    /// events (bpf/dns.h).
    pub dns: bool,
    /// Scan and flood detection over per-container counters (read on the
    /// same drain).
    pub detect: crate::netstat::NetstatConfig,
    /// When the per-flow table is kept: `auto`, while something reads flow
    /// records (a loaded rule that can match `flow` events; `rampart events`
    /// and `rampart top` always do); `always`, also for `rampart flows`
    /// against the agent. The per-container counters (scan and flood
    /// detection, network metrics, DNS) are kept either way.
    pub records: FlowRecordsMode,
    /// The table is its process's own: not pinned for `rampart flows`, which
    /// reads the agent's (`rampart top` with its own sensor). Not a config key.
    #[serde(skip)]
    pub private: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            enabled: true,
            max_entries: 32768,
            drain_interval_ms: 1000,
            update_interval_s: 10,
            idle_timeout_s: 60,
            dns: true,
            detect: crate::netstat::NetstatConfig::default(),
            records: FlowRecordsMode::Auto,
            private: false,
        }
    }
}

impl FlowConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_TABLE_ENTRIES).contains(&self.max_entries) {
            return Err(format!(
                "flows.max_entries is {}: it must be 1 to {MAX_TABLE_ENTRIES}",
                self.max_entries
            ));
        }
        if !(10..=60_000).contains(&self.drain_interval_ms) {
            return Err(format!(
                "flows.drain_interval_ms is {}: it must be 10 to 60000",
                self.drain_interval_ms
            ));
        }
        if self.idle_timeout_s == 0 || self.update_interval_s == 0 {
            return Err("flows.idle_timeout_s and flows.update_interval_s must be at least 1".into());
        }
        self.detect.validate()?;
        Ok(())
    }

    pub fn drain_interval(&self) -> Duration {
        Duration::from_millis(self.drain_interval_ms)
    }
}

/// `sensor.flows.records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowRecordsMode {
    /// Kept while a consumer wants flow records (the agent decides from its
    /// loaded rules).
    #[default]
    Auto,
    /// Always kept.
    Always,
}

/// The kernel's switch for the per-flow table (bpf/flows.bpf.c `fl_records`):
/// on, every packet of a counted socket updates its flow's entry; off, only
/// the per-container counters. Flows open when it goes on get their entry
/// from their next packet (their counts start there). `Send + Sync`.
#[derive(Debug)]
pub struct FlowRecords {
    map: MapHandle,
}

impl FlowRecords {
    pub fn set(&self, on: bool) -> Result<(), SensorError> {
        self.map
            .update(&0u32.to_ne_bytes(), &[u8::from(on)], MapFlags::ANY)
            .map_err(|source| SensorError::Map { map: "fl_records".into(), source })
    }

    /// Whether the table is kept (read back from the kernel; a map that
    /// cannot be read says on, as the loader leaves it).
    pub fn is_on(&self) -> bool {
        records_on(&self.map)
    }
}

fn records_on(map: &MapHandle) -> bool {
    !matches!(map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY), Ok(Some(v)) if v.first() == Some(&0))
}

/// Which flow: the container's (cgroup's) end is `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    pub cgroup_id: u64,
    /// IP protocol number.
    pub proto: u8,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
}

/// What the kernel counted for one flow (times are boot-clock ns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCounters {
    pub first_ns: u64,
    pub last_ns: u64,
    /// When a TCP socket reached CLOSE; 0 while open.
    pub closed_ns: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub payload_in: u64,
    pub payload_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub retransmits: u32,
    /// Linux TCP state number (1 established ... 12); 0 before any change.
    pub tcp_state: u8,
    pub state_changes: u8,
}

impl FlowKey {
    /// Decodes a `struct fl_key` (bpf/flows.h).
    pub fn decode(b: &[u8]) -> Option<FlowKey> {
        if b.len() != KEY_LEN {
            return None;
        }
        let family = b[45];
        let addr = |a: &[u8]| -> Option<IpAddr> {
            match family {
                4 => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
                6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).ok()?))),
                _ => None,
            }
        };
        let port = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(FlowKey {
            cgroup_id: u64::from_ne_bytes(b[0..8].try_into().ok()?),
            local: (addr(&b[8..24])?, port(40)),
            remote: (addr(&b[24..40])?, port(42)),
            proto: b[44],
        })
    }

    /// Encodes it back (to take the entry out of the table).
    pub fn encode(&self) -> [u8; KEY_LEN] {
        let mut b = [0u8; KEY_LEN];
        b[0..8].copy_from_slice(&self.cgroup_id.to_ne_bytes());
        let put = |dst: &mut [u8], ip: IpAddr| match ip {
            IpAddr::V4(v4) => dst[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => dst.copy_from_slice(&v6.octets()),
        };
        put(&mut b[8..24], self.local.0);
        put(&mut b[24..40], self.remote.0);
        b[40..42].copy_from_slice(&self.local.1.to_ne_bytes());
        b[42..44].copy_from_slice(&self.remote.1.to_ne_bytes());
        b[44] = self.proto;
        b[45] = if self.local.0.is_ipv4() { 4 } else { 6 };
        b
    }
}

impl FlowCounters {
    /// Decodes a `struct fl_val` (bpf/flows.h).
    pub fn decode(b: &[u8]) -> Option<FlowCounters> {
        if b.len() != VAL_LEN {
            return None;
        }
        let u = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Some(FlowCounters {
            first_ns: u(0),
            last_ns: u(1),
            closed_ns: u(2),
            bytes_in: u(3),
            bytes_out: u(4),
            payload_in: u(5),
            payload_out: u(6),
            packets_in: u(7),
            packets_out: u(8),
            retransmits: u32::from_ne_bytes(b[72..76].try_into().ok()?),
            tcp_state: b[76],
            state_changes: b[77],
        })
    }

    fn traffic(&self) -> u64 {
        self.packets_in + self.packets_out
    }
}

/// Linux's TCP state names (include/net/tcp_states.h).
pub fn tcp_state_name(state: u8) -> Option<&'static str> {
    const NAMES: [&str; 12] = [
        "established",
        "syn_sent",
        "syn_recv",
        "fin_wait1",
        "fin_wait2",
        "time_wait",
        "close",
        "close_wait",
        "last_ack",
        "listen",
        "closing",
        "new_syn_recv",
    ];
    NAMES.get(usize::from(state).checked_sub(1)?).copied()
}

/// An IP protocol's name (`tcp`, `udp`, `icmp`, ...) or its number.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => n.to_string(),
    }
}

/// The table's overflow counters: packets of flows that found no room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlowTableStats {
    /// Entries in the table now.
    pub entries: u64,
    pub max_entries: u32,
    /// Packets that could not get an entry (table full); their bytes and
    /// packets are the two counters after.
    pub failed_inserts: u64,
    pub lost_bytes: u64,
    pub lost_packets: u64,
    /// DNS records the kernel could not queue (its ring was full).
    pub dns_lost: u64,
}

/// What the tracker reads: the kernel table, or a fake in tests.
pub trait FlowSource {
    fn entries(&mut self) -> Vec<(FlowKey, FlowCounters)>;
    /// Flows whose socket closed and that the kernel took out of the table
    /// itself, with their final counters (a struct fl_end each).
    fn ended(&mut self) -> Vec<(FlowKey, FlowCounters)> {
        Vec::new()
    }
    /// Removes the entry and returns its final counters (atomically: packets
    /// after this start a new entry, none are lost between read and delete).
    fn take(&mut self, key: &FlowKey) -> Option<FlowCounters>;
}

/// One flow report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowReport {
    pub phase: FlowPhase,
    pub key: FlowKey,
    pub counters: FlowCounters,
    /// For `end`: closed or idle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<&'static str>,
}

struct Known {
    reported: FlowCounters,
    reported_at_ns: u64,
}

/// Decides, drain after drain, which flows started, changed or ended.
pub struct FlowTracker {
    update_ns: u64,
    idle_ns: u64,
    known: HashMap<FlowKey, Known>,
}

impl FlowTracker {
    pub fn new(cfg: &FlowConfig) -> Self {
        FlowTracker {
            update_ns: cfg.update_interval_s.saturating_mul(1_000_000_000),
            idle_ns: cfg.idle_timeout_s.saturating_mul(1_000_000_000),
            known: HashMap::new(),
        }
    }

    /// Reads the source at boot-clock time `now_ns`. A flow is reported
    /// `start` the first time it is seen, `update` at most every update
    /// interval while it carries traffic, and `end` once its socket closed or
    /// it idled out (its entry is then taken out of the table). A flow that
    /// starts and ends between two drains gets only its `end`.
    pub fn drain(&mut self, source: &mut dyn FlowSource, now_ns: u64) -> Vec<FlowReport> {
        let mut out = self.drain_ended(source);
        let entries = source.entries();
        let mut present = std::collections::HashSet::with_capacity(entries.len());
        for (key, c) in entries {
            present.insert(key);
            let closed = c.closed_ns != 0;
            let idle = now_ns.saturating_sub(c.last_ns) >= self.idle_ns;
            if closed || idle {
                let last = source.take(&key).unwrap_or(c);
                self.known.remove(&key);
                let reason = if last.closed_ns != 0 { "closed" } else { "idle" };
                out.push(FlowReport { phase: FlowPhase::End, key, counters: last, end_reason: Some(reason) });
                continue;
            }
            match self.known.get_mut(&key) {
                None => {
                    self.known.insert(key, Known { reported: c, reported_at_ns: now_ns });
                    out.push(FlowReport { phase: FlowPhase::Start, key, counters: c, end_reason: None });
                }
                Some(k) => {
                    if c.traffic() != k.reported.traffic()
                        && now_ns.saturating_sub(k.reported_at_ns) >= self.update_ns
                    {
                        k.reported = c;
                        k.reported_at_ns = now_ns;
                        out.push(FlowReport { phase: FlowPhase::Update, key, counters: c, end_reason: None });
                    }
                }
            }
        }
        // Entries someone else took out (or a table that was replaced): end
        // them with what was last seen.
        let gone: Vec<FlowKey> = self.known.keys().filter(|k| !present.contains(k)).copied().collect();
        for key in gone {
            if let Some(k) = self.known.remove(&key) {
                out.push(FlowReport {
                    phase: FlowPhase::End,
                    key,
                    counters: k.reported,
                    end_reason: Some("gone"),
                });
            }
        }
        out
    }

    /// Reports the flows the kernel ended on its own (their socket closed):
    /// cheap, so called far more often than [`Self::drain`], which keeps the
    /// kernel's ring of ended flows from filling.
    pub fn drain_ended(&mut self, source: &mut dyn FlowSource) -> Vec<FlowReport> {
        let ended = source.ended();
        let mut out = Vec::with_capacity(ended.len());
        for (key, last) in ended {
            self.known.remove(&key);
            out.push(FlowReport { phase: FlowPhase::End, key, counters: last, end_reason: Some("closed") });
        }
        out
    }

    /// Ends every flow still open (at shutdown): the entries stay in the
    /// kernel table, which goes away with the agent.
    pub fn finish(&mut self, source: &mut dyn FlowSource) -> Vec<FlowReport> {
        let entries = source.entries();
        self.known.clear();
        entries
            .into_iter()
            .map(|(key, counters)| FlowReport {
                phase: FlowPhase::End,
                key,
                counters,
                end_reason: Some(if counters.closed_ns != 0 { "closed" } else { "stopped" }),
            })
            .collect()
    }
}

fn sock_addr((ip, port): (IpAddr, u16)) -> SockAddr {
    match ip {
        IpAddr::V4(_) => SockAddr::Inet { ip, port },
        IpAddr::V6(_) => SockAddr::Inet6 { ip, port },
    }
}

impl FlowReport {
    /// The report as an event of the flow's cgroup (no process: pid 0), with
    /// boot-clock times turned into wall-clock by `boot_to_wall_ns`.
    pub fn to_event(&self, now_boot_ns: u64, boot_to_wall_ns: i128) -> Event {
        let wall = |b: u64| (b as i128 + boot_to_wall_ns).clamp(0, u64::MAX as i128) as u64;
        let c = &self.counters;
        let tcp = self.key.proto == 6;
        Event {
            ts_ns: wall(now_boot_ns),
            process: ProcessCtx { cgroup_id: self.key.cgroup_id, ..Default::default() },
            container: None,
            ret: None,
            syscall: Some("flow".into()),
            kind: EventKind::Flow(FlowRecord {
                phase: self.phase,
                proto: proto_name(self.key.proto),
                local: sock_addr(self.key.local),
                remote: sock_addr(self.key.remote),
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
                payload_in: c.payload_in,
                payload_out: c.payload_out,
                packets_in: c.packets_in,
                packets_out: c.packets_out,
                first_ns: wall(c.first_ns),
                duration_ns: c.last_ns.saturating_sub(c.first_ns),
                tcp_state: if tcp { tcp_state_name(c.tcp_state).map(String::from) } else { None },
                retransmits: c.retransmits,
                end_reason: self.end_reason.map(String::from),
            }),
        }
    }
}

/// The kernel's flow table: programs attached to the cgroup v2 root for as
/// long as this lives.
pub struct FlowTable {
    // Links before maps: detach first.
    _links: Vec<Link>,
    flows: MapHandle,
    stats: MapHandle,
    /// The DNS records' ring (read by [`crate::dns::DnsReader`]).
    pub dns_ring: MapHandle,
    ended: RecordRing<(FlowKey, FlowCounters)>,
    /// The boot clock's lead over the monotonic one, for the packets' coarse
    /// times (bpf/flows.bpf.c, coarse_boot_ns).
    clock: MapHandle,
    netstat: MapHandle,
    records: FlowRecords,
    max_entries: u32,
    pinned: Option<PathBuf>,
}

impl std::fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable").field("max_entries", &self.max_entries).finish_non_exhaustive()
    }
}

fn own_ns_inode(kind: &str) -> Result<u32, SensorError> {
    let path = PathBuf::from(format!("/proc/self/ns/{kind}"));
    let link = std::fs::read_link(&path).map_err(|source| SensorError::Io { path: path.clone(), source })?;
    let s = link.to_string_lossy();
    s.split_once(":[").and_then(|(_, r)| r.strip_suffix(']')).and_then(|n| n.parse().ok()).ok_or_else(|| {
        SensorError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected link {s:?}")),
        }
    })
}

impl FlowTable {
    /// Loads bpf/flows.bpf.c and attaches it: the cgroup_skb programs to the
    /// cgroup v2 root `cgroup_root` (every socket below counts; the link
    /// attaches alongside other programs, like the network policy's, without
    /// replacing them), the TCP tracepoints to the kernel. Counts only sockets
    /// outside the host's network namespace unless `include_host`.
    pub fn start(cfg: &FlowConfig, cgroup_root: &Path, include_host: bool) -> Result<FlowTable, SensorError> {
        cfg.validate().map_err(SensorError::Config)?;
        let host_net_ns = own_ns_inode("net")?;
        let mut storage = MaybeUninit::uninit();
        let mut open = skel::FlowsSkelBuilder::default()
            .open(&mut storage)
            .map_err(|source| SensorError::Open { object: OBJECT.into(), source })?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| SensorError::Config("flows object has no mmapable .rodata".into()))?;
        ro.include_host = include_host;
        ro.host_net_ns = host_net_ns;
        ro.dns_capture = cfg.dns;
        open.maps
            .fl_flows
            .set_max_entries(cfg.max_entries)
            .map_err(|source| SensorError::Map { map: "fl_flows".into(), source })?;
        let skel = open.load().map_err(|source| SensorError::Load {
            object: OBJECT.into(),
            program: "flows".into(),
            source,
        })?;
        // The table is kept from the first packet; the agent may turn it off.
        let records = FlowRecords {
            map: MapHandle::try_from(&skel.maps.fl_records)
                .map_err(|source| SensorError::Map { map: "fl_records".into(), source })?,
        };
        records.set(true)?;
        let root = std::fs::File::open(cgroup_root)
            .map_err(|source| SensorError::Io { path: cgroup_root.into(), source })?;
        let attach_err =
            |what: &str, source| SensorError::Load { object: OBJECT.into(), program: what.into(), source };
        let p = &skel.progs;
        let links = vec![
            p.fl_ingress.attach_cgroup(root.as_raw_fd()).map_err(|e| attach_err("fl_ingress", e))?,
            p.fl_egress.attach_cgroup(root.as_raw_fd()).map_err(|e| attach_err("fl_egress", e))?,
            p.fl_tcp_state.attach().map_err(|e| attach_err("fl_tcp_state", e))?,
            p.fl_tcp_retransmit.attach().map_err(|e| attach_err("fl_tcp_retransmit", e))?,
        ];
        let handle = |m: &libbpf_rs::Map, name: &str| {
            MapHandle::try_from(m).map_err(|source| SensorError::Map { map: name.into(), source })
        };
        let flows = handle(&skel.maps.fl_flows, "fl_flows")?;
        let stats = handle(&skel.maps.fl_stats, "fl_stats")?;
        let dns_ring = handle(&skel.maps.dns_ring, "dns_ring")?;
        // The links and map handles keep programs and maps alive; the
        // skeleton (and its object) can go.
        let netstat = handle(&skel.maps.fl_netstat, "fl_netstat")?;
        let ended = RecordRing::new(&handle(&skel.maps.fl_ended, "fl_ended")?, "fl_ended", decode_end)?;
        let clock = handle(&skel.maps.fl_clock, "fl_clock")?;
        sync_clock(&clock);
        Ok(FlowTable {
            _links: links,
            flows,
            stats,
            dns_ring,
            ended,
            clock,
            netstat,
            records,
            max_entries: cfg.max_entries,
            pinned: None,
        })
    }

    /// Pins the table under `base/<pid>-<start time>` so that `rampart
    /// flows` can read it while this process runs (bpffs holds no regular
    /// files: the owner's pid and start time in the name are how a reader
    /// tells a live agent's table from what a killed one left, even once the
    /// pid is reused); unpinned on drop. Leftovers of owners that are gone
    /// are removed here.
    pub fn pin(&mut self, base: &Path) -> Result<(), SensorError> {
        remove_dead_pins(base);
        let owner = PinOwner::current()
            .ok_or_else(|| SensorError::Config("cannot read this process's start time in /proc".into()))?;
        let dir = base.join(owner.dir_name());
        std::fs::create_dir_all(&dir).map_err(|source| SensorError::Io { path: dir.clone(), source })?;
        for (name, map) in [
            ("fl_flows", &mut self.flows),
            ("fl_stats", &mut self.stats),
            ("fl_records", &mut self.records.map),
        ] {
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            map.pin(&path).map_err(|source| SensorError::Map { map: name.into(), source })?;
        }
        self.pinned = Some(dir);
        Ok(())
    }

    pub fn stats(&self) -> FlowTableStats {
        read_stats(&self.flows, &self.stats, self.max_entries)
    }

    /// A handle on the switch of the per-flow table, for whoever decides
    /// whether flow records are wanted.
    pub fn records(&self) -> Result<FlowRecords, SensorError> {
        let map = MapHandle::try_from(&self.records.map)
            .map_err(|source| SensorError::Map { map: "fl_records".into(), source })?;
        Ok(FlowRecords { map })
    }

    /// Every container's traffic counters (bpf/netstat.h), summed over CPUs.
    pub fn netstat(&self) -> Vec<(u64, crate::netstat::NetSample)> {
        self.netstat
            .keys()
            .filter_map(|k| {
                let id = u64::from_ne_bytes(k.as_slice().try_into().ok()?);
                let cpus = self.netstat.lookup_percpu(&k, MapFlags::ANY).ok()??;
                Some((id, crate::netstat::NetSample::decode_percpu(&cpus)?))
            })
            .collect()
    }

    /// Takes an idle container's counters out (a later packet starts them
    /// again from zero).
    pub fn forget_netstat(&self, cgroup_id: u64) {
        let _ = self.netstat.delete(&cgroup_id.to_ne_bytes());
    }
}

impl Drop for FlowTable {
    fn drop(&mut self) {
        if let Some(dir) = self.pinned.take() {
            unpin(&dir);
        }
    }
}

/// The process that pinned a table: its pid and start time (clock ticks
/// since boot, /proc/<pid>/stat field 22), which together never repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PinOwner {
    pid: u32,
    start_ticks: u64,
}

impl PinOwner {
    fn current() -> Option<PinOwner> {
        let pid = std::process::id();
        Some(PinOwner { pid, start_ticks: start_ticks(pid)? })
    }

    fn dir_name(&self) -> String {
        format!("{}-{}", self.pid, self.start_ticks)
    }

    fn parse(name: &str) -> Option<PinOwner> {
        let (pid, start) = name.split_once('-')?;
        Some(PinOwner { pid: pid.parse().ok()?, start_ticks: start.parse().ok()? })
    }

    fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// A process's start time from /proc/<pid>/stat (after the command name,
/// which may hold spaces and parentheses: the last `)` ends it).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_ticks(&stat)
}

fn parse_start_ticks(stat: &str) -> Option<u64> {
    // fields after "pid (comm)": state is field 3, starttime field 22
    stat.get(stat.rfind(')')? + 1..)?.split_whitespace().nth(19)?.parse().ok()
}

fn pin_owners(base: &Path) -> impl Iterator<Item = PinOwner> {
    std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .filter_map(|e| PinOwner::parse(e.ok()?.file_name().to_str()?))
}

/// Removes the pins of owners that are gone, and directories in the form
/// of older versions (`<pid>` alone) whose owner is gone.
fn remove_dead_pins(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let dead = match PinOwner::parse(name) {
            Some(o) => !o.is_alive(),
            None => name.parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        };
        if dead {
            unpin(&e.path());
        }
    }
}

fn unpin(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("fl_flows"));
    let _ = std::fs::remove_file(dir.join("fl_stats"));
    let _ = std::fs::remove_file(dir.join("fl_records"));
    let _ = std::fs::remove_dir(dir);
}

fn read_entries(flows: &MapHandle) -> Vec<(FlowKey, FlowCounters)> {
    let decode = |(k, v): (Vec<u8>, Vec<u8>)| Some((FlowKey::decode(&k)?, FlowCounters::decode(&v)?));
    match flows.lookup_batch(256, MapFlags::ANY, MapFlags::ANY) {
        Ok(batch) => batch.filter_map(decode).collect(),
        Err(_) => flows
            .keys()
            .filter_map(|k| flows.lookup(&k, MapFlags::ANY).ok().flatten().map(|v| (k, v)))
            .filter_map(decode)
            .collect(),
    }
}

fn read_stats(flows: &MapHandle, stats: &MapHandle, max_entries: u32) -> FlowTableStats {
    let sum = |idx: u32| crate::maps::percpu_sum(stats, idx);
    FlowTableStats {
        entries: flows.keys().count() as u64,
        max_entries,
        failed_inserts: sum(0),
        lost_bytes: sum(1),
        lost_packets: sum(2),
        dns_lost: sum(3),
    }
}

/// Decodes a `struct fl_end` (bpf/flows.h).
fn decode_end(b: &[u8]) -> Option<(FlowKey, FlowCounters)> {
    if b.len() < KEY_LEN + VAL_LEN {
        return None;
    }
    Some((FlowKey::decode(&b[..KEY_LEN])?, FlowCounters::decode(&b[KEY_LEN..KEY_LEN + VAL_LEN])?))
}

/// Gives the kernel the boot clock's lead over the monotonic clock (it moves
/// when the machine resumes: kept current at every drain).
fn sync_clock(clock: &MapHandle) {
    let lead = boot_now_ns().saturating_sub(clock_ns(libc::CLOCK_MONOTONIC));
    let _ = clock.update(&0u32.to_ne_bytes(), &lead.to_ne_bytes(), MapFlags::ANY);
}

impl FlowSource for FlowTable {
    fn entries(&mut self) -> Vec<(FlowKey, FlowCounters)> {
        sync_clock(&self.clock);
        read_entries(&self.flows)
    }

    fn ended(&mut self) -> Vec<(FlowKey, FlowCounters)> {
        self.ended.take(ENDED_BATCH)
    }

    fn take(&mut self, key: &FlowKey) -> Option<FlowCounters> {
        let v = self.flows.lookup_and_delete(&key.encode()).ok().flatten()?;
        FlowCounters::decode(&v)
    }
}

/// A running agent's pinned table, read only (`rampart flows`).
pub struct PinnedFlows {
    flows: MapHandle,
    stats: MapHandle,
    /// The table's switch (absent in a table pinned before it existed).
    records: Option<MapHandle>,
}

impl PinnedFlows {
    /// Opens the table a running process pinned under `base` (the newest
    /// live owner's); `None` when there is none (pins of a process that is
    /// gone are skipped: its programs went with it).
    pub fn open(base: &Path) -> Option<PinnedFlows> {
        let mut owners: Vec<PinOwner> = pin_owners(base).filter(PinOwner::is_alive).collect();
        owners.sort_unstable_by_key(|o| o.start_ticks);
        owners.into_iter().rev().find_map(|o| {
            let dir = base.join(o.dir_name());
            let flows = MapHandle::from_pinned_path(dir.join("fl_flows")).ok()?;
            let stats = MapHandle::from_pinned_path(dir.join("fl_stats")).ok()?;
            let records = MapHandle::from_pinned_path(dir.join("fl_records")).ok();
            Some(PinnedFlows { flows, stats, records })
        })
    }

    pub fn entries(&self) -> Vec<(FlowKey, FlowCounters)> {
        read_entries(&self.flows)
    }

    /// Whether the agent keeps its per-flow table now (see [`FlowRecords`]).
    pub fn records_kept(&self) -> bool {
        self.records.as_ref().is_none_or(records_on)
    }

    pub fn stats(&self) -> FlowTableStats {
        let max = self.flows.info().map(|i| i.info.max_entries).unwrap_or(0);
        read_stats(&self.flows, &self.stats, max)
    }
}

/// The boot clock now, ns (what `bpf_ktime_get_boot_ns` returns).
pub fn boot_now_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_read_after_a_hostile_command_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn a_pin_owner_is_alive_only_with_its_own_start_time() {
        let me = PinOwner::current().expect("own /proc/self/stat");
        assert!(me.is_alive());
        assert_eq!(PinOwner::parse(&me.dir_name()), Some(me));
        assert!(
            !PinOwner { start_ticks: me.start_ticks + 1, ..me }.is_alive(),
            "a reused pid is not the owner"
        );
        assert_eq!(PinOwner::parse("1234"), None);
        assert_eq!(PinOwner::parse("12-x"), None);
    }

    #[test]
    fn dead_pins_are_removed_and_live_ones_kept() {
        let base = std::env::temp_dir().join(format!("rampart-pins-{}", std::process::id()));
        let me = PinOwner::current().unwrap();
        let dead = PinOwner { start_ticks: me.start_ticks + 1, ..me };
        for d in [me.dir_name(), dead.dir_name(), "999999999".to_string()] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        remove_dead_pins(&base);
        let mut left: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec![me.dir_name()]);
        let _ = std::fs::remove_dir_all(&base);
    }
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Fake(BTreeMap<FlowKey, FlowCounters>, Vec<(FlowKey, FlowCounters)>);

    impl FlowSource for Fake {
        fn entries(&mut self) -> Vec<(FlowKey, FlowCounters)> {
            self.0.iter().map(|(k, v)| (*k, *v)).collect()
        }
        fn ended(&mut self) -> Vec<(FlowKey, FlowCounters)> {
            std::mem::take(&mut self.1)
        }
        fn take(&mut self, key: &FlowKey) -> Option<FlowCounters> {
            self.0.remove(key)
        }
    }

    fn key(port: u16) -> FlowKey {
        FlowKey {
            cgroup_id: 42,
            proto: 6,
            local: ("172.18.0.2".parse().unwrap(), port),
            remote: ("172.18.0.3".parse().unwrap(), 5201),
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn key_round_trips_v4_and_v6() {
        let k4 = key(40000);
        assert_eq!(FlowKey::decode(&k4.encode()), Some(k4));
        let k6 = FlowKey {
            cgroup_id: 7,
            proto: 17,
            local: ("fd00::1".parse().unwrap(), 53),
            remote: ("fd00::2".parse().unwrap(), 3333),
        };
        assert_eq!(FlowKey::decode(&k6.encode()), Some(k6));
        let mut bad = k4.encode();
        bad[45] = 9;
        assert_eq!(FlowKey::decode(&bad), None);
        assert_eq!(FlowKey::decode(&[0; 10]), None);
    }

    #[test]
    fn counters_decode_fields_in_order() {
        let mut b = [0u8; VAL_LEN];
        for i in 0..9u64 {
            b[i as usize * 8..i as usize * 8 + 8].copy_from_slice(&(i + 1).to_ne_bytes());
        }
        b[72..76].copy_from_slice(&5u32.to_ne_bytes());
        b[76] = 1;
        b[77] = 3;
        let c = FlowCounters::decode(&b).unwrap();
        assert_eq!((c.first_ns, c.last_ns, c.closed_ns), (1, 2, 3));
        assert_eq!((c.bytes_in, c.bytes_out, c.payload_in, c.payload_out), (4, 5, 6, 7));
        assert_eq!((c.packets_in, c.packets_out, c.retransmits), (8, 9, 5));
        assert_eq!((c.tcp_state, c.state_changes), (1, 3));
        assert_eq!(tcp_state_name(1), Some("established"));
        assert_eq!(tcp_state_name(7), Some("close"));
        assert_eq!(tcp_state_name(0), None);
    }

    #[test]
    fn start_update_end_closed_and_idle() {
        let cfg = FlowConfig { update_interval_s: 10, idle_timeout_s: 60, ..Default::default() };
        let mut t = FlowTracker::new(&cfg);
        let mut src = Fake::default();
        let c = |pk: u64, last: u64| FlowCounters {
            first_ns: S,
            last_ns: last,
            packets_out: pk,
            ..Default::default()
        };
        src.0.insert(key(1), c(1, S));
        src.0.insert(key(2), c(1, S));
        let r = t.drain(&mut src, 2 * S);
        assert_eq!(r.iter().filter(|r| r.phase == FlowPhase::Start).count(), 2);
        // traffic, but before the update interval: nothing
        src.0.insert(key(1), c(5, 3 * S));
        assert!(t.drain(&mut src, 3 * S).is_empty());
        // after it: one update, for the flow that moved only
        let r = t.drain(&mut src, 13 * S);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].phase, r[0].key, r[0].counters.packets_out), (FlowPhase::Update, key(1), 5));
        // closed: end with the final counters, taken out of the table
        src.0.insert(key(1), FlowCounters { closed_ns: 14 * S, ..c(9, 14 * S) });
        let r = t.drain(&mut src, 14 * S);
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].phase, r[0].end_reason, r[0].counters.packets_out),
            (FlowPhase::End, Some("closed"), 9)
        );
        assert!(!src.0.contains_key(&key(1)));
        // idle: key(2) last saw a packet at 1 s
        let r = t.drain(&mut src, 61 * S);
        assert_eq!((r[0].phase, r[0].end_reason), (FlowPhase::End, Some("idle")));
        assert!(src.0.is_empty());
        assert!(t.drain(&mut src, 62 * S).is_empty());
    }

    #[test]
    fn flows_the_kernel_ended_end_once_and_count_once() {
        let mut t = FlowTracker::new(&FlowConfig::default());
        let mut src = Fake::default();
        let c = |pk: u64| FlowCounters {
            first_ns: S,
            last_ns: S,
            packets_out: pk,
            bytes_out: pk,
            ..Default::default()
        };
        src.0.insert(key(1), c(2));
        assert_eq!(t.drain(&mut src, 2 * S)[0].phase, FlowPhase::Start);
        // the socket closed: the kernel moved the flow from its table to the ring
        src.0.remove(&key(1));
        src.1.push((key(1), FlowCounters { closed_ns: 3 * S, ..c(7) }));
        // one that started and ended between two polls: its end only
        src.1.push((key(2), FlowCounters { closed_ns: 3 * S, ..c(1) }));
        let r = t.drain_ended(&mut src);
        let ends: Vec<_> = r.iter().map(|r| (r.phase, r.key, r.end_reason, r.counters.packets_out)).collect();
        assert_eq!(
            ends,
            [(FlowPhase::End, key(1), Some("closed"), 7), (FlowPhase::End, key(2), Some("closed"), 1)]
        );
        // no "gone" end for it at the next drain
        assert!(t.drain(&mut src, 4 * S).is_empty());
    }

    #[test]
    fn a_flow_taken_by_someone_else_ends_as_gone() {
        let mut t = FlowTracker::new(&FlowConfig::default());
        let mut src = Fake::default();
        src.0.insert(key(1), FlowCounters { first_ns: S, last_ns: S, packets_in: 2, ..Default::default() });
        assert_eq!(t.drain(&mut src, S).len(), 1);
        src.0.clear();
        let r = t.drain(&mut src, 2 * S);
        assert_eq!(
            (r[0].phase, r[0].end_reason, r[0].counters.packets_in),
            (FlowPhase::End, Some("gone"), 2)
        );
    }

    #[test]
    fn event_carries_cgroup_and_both_ends() {
        let rep = FlowReport {
            phase: FlowPhase::Start,
            key: key(40000),
            counters: FlowCounters {
                first_ns: S,
                last_ns: 3 * S,
                bytes_out: 100,
                tcp_state: 1,
                ..Default::default()
            },
            end_reason: None,
        };
        let ev = rep.to_event(4 * S, 1_000 * S as i128);
        assert_eq!(ev.process.cgroup_id, 42);
        assert_eq!(ev.event_type().as_str(), "flow");
        let EventKind::Flow(f) = &ev.kind else { panic!("not a flow") };
        assert_eq!(f.local.port(), Some(40000));
        assert_eq!(f.remote.port(), Some(5201));
        assert_eq!((f.duration_ns, f.first_ns, f.bytes_out), (2 * S, 1_001 * S, 100));
        assert_eq!(f.tcp_state.as_deref(), Some("established"));
        assert_eq!(ev.ts_ns, 1_004 * S);
    }
}

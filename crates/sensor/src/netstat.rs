//! Scan and flood detection: per-container traffic counters kept in the
//! kernel (bpf/netstat.h, counted by the flow programs for every packet of a
//! container, raw sockets included) are read once a second and turned into
//! rates over a sliding window; a `netstat` event reports a container's
//! window when it crosses one of the configured thresholds, and the rules
//! (rules/85-network_detection.yaml) alert on it.
//!
//! Why in the kernel: a flood is millions of packets; counting them costs a
//! per-CPU map update each, while sending each to userspace would cost a ring
//! buffer record each, and a full ring would hide the very flood it reports.
//!
//! Layout: [`NetSample`] decodes the kernel's per-CPU values, [`NetstatTracker`]
//! (pure, unit-tested) keeps the window per container and decides what to
//! report, [`TrafficTotals`] adds up each container's bytes and packets (the
//! network metrics); `FlowTable::netstat` reads the map.

use std::collections::{BTreeMap, HashMap, VecDeque};

use model::{Event, EventKind, NetWindow, ProcessCtx};
use serde::{Deserialize, Serialize};

/// Bits of each distinct-destination bitmap (`NS_BM_BITS`).
pub const BM_BITS: usize = 1024;
const BM_BYTES: usize = BM_BITS / 8;
/// `sizeof(struct ns_val)`.
pub const VAL_LEN: usize = DNS_OFF + 16;
/// Offset of `dns_queries` (after the bitmaps).
const DNS_OFF: usize = 152 + 4 * BM_BYTES;
/// `NS_EPOCH_SHIFT`: an epoch of the bitmaps is 2^30 ns (~1.07 s).
pub const EPOCH_SHIFT: u32 = 30;

/// Detection settings (`sensor.flows.detect`). Rates are averages over the
/// window; counts are totals over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetstatConfig {
    /// Count per-container traffic and report windows over a threshold.
    pub enabled: bool,
    /// The sliding window, s (1 to 60).
    pub window_s: u64,
    pub thresholds: Thresholds,
}

/// The levels at which a window is reported (0 turns a detection off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// port_scan: distinct destinations (address, port) of connection
    /// attempts from the container in the window.
    pub port_scan_dsts: u64,
    /// host_sweep: distinct remote hosts of connection attempts in the window.
    pub host_sweep_hosts: u64,
    /// connect_failures: connects of the container that failed in the window.
    pub connect_failures: u64,
    /// syn_flood_in: SYNs received minus handshakes completed in the window.
    pub syn_flood_half_open: u64,
    /// syn_flood_out: SYNs sent per second.
    pub syn_flood_out_ps: u64,
    /// conn_flood: connections accepted per second (handshakes completed).
    pub conn_flood_ps: u64,
    /// udp_flood_in / udp_flood_out: UDP packets per second.
    pub udp_flood_pps: u64,
    /// icmp_flood_in / icmp_flood_out: ICMP packets per second.
    pub icmp_flood_pps: u64,
    /// egress_volume: IP bytes sent per second.
    pub egress_bytes_ps: u64,
    /// dns_query_flood: DNS queries (UDP) sent per second.
    pub dns_query_ps: u64,
    /// nxdomain: NXDOMAIN answers received in the window (lookups of names
    /// that do not exist: a DGA's guesses, a typo in a loop).
    pub nxdomain: u64,
}

impl Default for NetstatConfig {
    fn default() -> Self {
        NetstatConfig { enabled: true, window_s: 5, thresholds: Thresholds::default() }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        // Chosen above what busy ordinary services do here (an HTTP server
        // under a load loop: a few hundred connections/s, all completed; a
        // DNS-heavy client: one or two destinations) and below what the
        // attack tools do at their defaults (nmap: 1000 ports in seconds;
        // hping3 --faster: tens of thousands of SYNs/s).
        Thresholds {
            port_scan_dsts: 100,
            host_sweep_hosts: 50,
            connect_failures: 200,
            syn_flood_half_open: 1000,
            syn_flood_out_ps: 2000,
            conn_flood_ps: 2000,
            udp_flood_pps: 20_000,
            icmp_flood_pps: 1000,
            egress_bytes_ps: 100_000_000,
            // A DNS-heavy client (a shell loop of busybox nslookup, no
            // cache) sent ~500 queries/s here, all answered; a DGA tries
            // hundreds of names that do not exist. Kubernetes' search-domain
            // expansion (ndots) makes NXDOMAINs of ordinary lookups: raise
            // nxdomain there.
            dns_query_ps: 1000,
            nxdomain: 100,
        }
    }
}

impl NetstatConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=60).contains(&self.window_s) {
            return Err(format!("flows.detect.window_s is {}: it must be 1 to 60", self.window_s));
        }
        Ok(())
    }
}

/// Counters of one container, summed over CPUs (`struct ns_val`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// [in, out][tcp, udp, icmp, other]
    pub packets: [[u64; 4]; 2],
    pub bytes: [u64; 2],
    pub syn: [u64; 2],
    pub rst: [u64; 2],
    /// [accepted, connected]
    pub established: [u64; 2],
    pub failed_connects: u64,
    pub dns_queries: u64,
    pub dns_nxdomain: u64,
}

impl NetCounters {
    fn add(&mut self, o: &NetCounters) {
        for d in 0..2 {
            for p in 0..4 {
                self.packets[d][p] += o.packets[d][p];
            }
            self.bytes[d] += o.bytes[d];
            self.syn[d] += o.syn[d];
            self.rst[d] += o.rst[d];
            self.established[d] += o.established[d];
        }
        self.failed_connects += o.failed_connects;
        self.dns_queries += o.dns_queries;
        self.dns_nxdomain += o.dns_nxdomain;
    }
}

type Bitmap = [u8; BM_BYTES];

/// One container's counters and its per-epoch bitmaps, read from every CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSample {
    pub counters: NetCounters,
    /// (epoch, destinations, hosts), one per CPU and slot.
    pub bitmaps: Vec<(u64, Bitmap, Bitmap)>,
}

impl NetSample {
    /// Sums per-CPU `struct ns_val` values (`None` when one has the wrong size).
    pub fn decode_percpu(cpus: &[Vec<u8>]) -> Option<NetSample> {
        let mut s = NetSample::default();
        for b in cpus {
            let b = b.get(..VAL_LEN)?;
            let u = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            let mut c = NetCounters::default();
            for d in 0..2 {
                for p in 0..4 {
                    c.packets[d][p] = u(d * 4 + p);
                }
                c.bytes[d] = u(8 + d);
                c.syn[d] = u(10 + d);
                c.rst[d] = u(12 + d);
                c.established[d] = u(14 + d);
            }
            c.failed_connects = u(16);
            c.dns_queries = u(DNS_OFF / 8);
            c.dns_nxdomain = u(DNS_OFF / 8 + 1);
            s.counters.add(&c);
            for slot in 0..2 {
                let epoch = u(17 + slot);
                if epoch == 0 {
                    continue;
                }
                let dst = 152 + slot * BM_BYTES;
                let host = 152 + 2 * BM_BYTES + slot * BM_BYTES;
                s.bitmaps.push((
                    epoch,
                    b[dst..dst + BM_BYTES].try_into().ok()?,
                    b[host..host + BM_BYTES].try_into().ok()?,
                ));
            }
        }
        Some(s)
    }
}

/// Distinct values set in a bitmap, by linear counting (m ln(m / zeros)); a
/// full bitmap reports m ln m, the most it can tell.
pub fn distinct(bm: &Bitmap) -> u64 {
    let m = BM_BITS as f64;
    let zeros = bm.iter().map(|b| b.count_zeros()).sum::<u32>() as f64;
    let zeros = zeros.max(1.0);
    (m * (m / zeros).ln()).round() as u64
}

struct Container {
    /// (boot ns, counters), oldest first, reaching back one window.
    history: VecDeque<(u64, NetCounters)>,
    /// epoch -> bitmaps OR'd over CPUs and reads.
    bitmaps: BTreeMap<u64, (Bitmap, Bitmap)>,
    last_change_ns: u64,
    last_report_ns: Option<u64>,
}

/// Keeps each container's window and decides which windows to report.
pub struct NetstatTracker {
    window_ns: u64,
    window_s: u64,
    th: Thresholds,
    containers: HashMap<u64, Container>,
}

/// A container without traffic for this long is forgotten, and its kernel
/// entry taken out.
const IDLE_NS: u64 = 60_000_000_000;

impl NetstatTracker {
    pub fn new(cfg: &NetstatConfig) -> Self {
        NetstatTracker {
            window_ns: cfg.window_s * 1_000_000_000,
            window_s: cfg.window_s,
            th: cfg.thresholds.clone(),
            containers: HashMap::new(),
        }
    }

    /// Folds one read of the kernel's counters (every container's) taken at
    /// boot-clock `now_ns`, `period_ns` after the previous one. Returns the
    /// windows to report (cgroup id, window) and the cgroups idle long enough
    /// for their kernel entry to go.
    pub fn observe(
        &mut self,
        now_ns: u64,
        period_ns: u64,
        samples: Vec<(u64, NetSample)>,
    ) -> (Vec<(u64, NetWindow)>, Vec<u64>) {
        let mut reports = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(samples.len());
        let first_epoch = now_ns.saturating_sub(self.window_ns) >> EPOCH_SHIFT;
        for (cgid, sample) in samples {
            seen.insert(cgid);
            let c = self.containers.entry(cgid).or_insert_with(|| Container {
                // The kernel entry was made by this container's first packet
                // since the agent started (or since it was last taken out).
                history: VecDeque::from([(now_ns.saturating_sub(period_ns), NetCounters::default())]),
                bitmaps: BTreeMap::new(),
                last_change_ns: now_ns,
                last_report_ns: None,
            });
            if c.history.back().map(|(_, h)| *h) != Some(sample.counters) {
                c.last_change_ns = now_ns;
            }
            c.history.push_back((now_ns, sample.counters));
            // Keep the newest sample at least a window old as the base.
            while c.history.len() > 2 && c.history[1].0 <= now_ns.saturating_sub(self.window_ns) {
                c.history.pop_front();
            }
            for (epoch, dst, host) in &sample.bitmaps {
                if *epoch < first_epoch {
                    continue;
                }
                let e = c.bitmaps.entry(*epoch).or_insert(([0; BM_BYTES], [0; BM_BYTES]));
                for i in 0..BM_BYTES {
                    e.0[i] |= dst[i];
                    e.1[i] |= host[i];
                }
            }
            c.bitmaps.retain(|e, _| *e >= first_epoch);
            let w = window(c, self.window_s);
            let over = over(&w, &self.th);
            if over.is_empty() {
                // Below every threshold: the next crossing reports at once.
                c.last_report_ns = None;
                continue;
            }
            // Over: report now, then once a window while it stays over.
            if c.last_report_ns.is_some_and(|t| now_ns.saturating_sub(t) < self.window_ns) {
                continue;
            }
            c.last_report_ns = Some(now_ns);
            reports.push((cgid, NetWindow { over, ..w }));
        }
        let mut idle = Vec::new();
        self.containers.retain(|cgid, c| {
            let keep = seen.contains(cgid) && now_ns.saturating_sub(c.last_change_ns) < IDLE_NS;
            if !keep && seen.contains(cgid) {
                idle.push(*cgid);
            }
            keep
        });
        (reports, idle)
    }
}

fn window(c: &Container, window_s: u64) -> NetWindow {
    let (t0, base) = c.history.front().copied().unwrap_or_default();
    let (t1, cur) = c.history.back().copied().unwrap_or_default();
    let dt = t1.saturating_sub(t0).max(1) as u128;
    let rate = |now: u64, then: u64| (u128::from(now.saturating_sub(then)) * 1_000_000_000 / dt) as u64;
    let d = |f: fn(&NetCounters) -> u64| cur_minus(f(&cur), f(&base));
    let pps = |dir: usize, p: Option<usize>| {
        let sum = |c: &NetCounters| match p {
            Some(p) => c.packets[dir][p],
            None => c.packets[dir].iter().sum(),
        };
        rate(sum(&cur), sum(&base))
    };
    let mut dst = [0u8; BM_BYTES];
    let mut host = [0u8; BM_BYTES];
    for (d, h) in c.bitmaps.values() {
        for i in 0..BM_BYTES {
            dst[i] |= d[i];
            host[i] |= h[i];
        }
    }
    NetWindow {
        window_s,
        over: Vec::new(),
        pps_in: pps(0, None),
        pps_out: pps(1, None),
        tcp_pps_in: pps(0, Some(0)),
        tcp_pps_out: pps(1, Some(0)),
        udp_pps_in: pps(0, Some(1)),
        udp_pps_out: pps(1, Some(1)),
        icmp_pps_in: pps(0, Some(2)),
        icmp_pps_out: pps(1, Some(2)),
        bytes_ps_in: rate(cur.bytes[0], base.bytes[0]),
        bytes_ps_out: rate(cur.bytes[1], base.bytes[1]),
        syn_ps_in: rate(cur.syn[0], base.syn[0]),
        syn_ps_out: rate(cur.syn[1], base.syn[1]),
        rst_ps_out: rate(cur.rst[1], base.rst[1]),
        accepted_ps: rate(cur.established[0], base.established[0]),
        half_open: d(|c| c.syn[0]).saturating_sub(d(|c| c.established[0])),
        failed_connects: d(|c| c.failed_connects),
        dsts: if dst.iter().all(|b| *b == 0) { 0 } else { distinct(&dst) },
        hosts: if host.iter().all(|b| *b == 0) { 0 } else { distinct(&host) },
        dns_qps: rate(cur.dns_queries, base.dns_queries),
        nxdomain: d(|c| c.dns_nxdomain),
    }
}

fn cur_minus(now: u64, then: u64) -> u64 {
    now.saturating_sub(then)
}

/// The detections whose thresholds the window reaches.
fn over(w: &NetWindow, th: &Thresholds) -> Vec<String> {
    let checks: [(&str, u64, u64); 13] = [
        ("port_scan", w.dsts, th.port_scan_dsts),
        ("host_sweep", w.hosts, th.host_sweep_hosts),
        ("connect_failures", w.failed_connects, th.connect_failures),
        ("syn_flood_in", w.half_open, th.syn_flood_half_open),
        ("syn_flood_out", w.syn_ps_out, th.syn_flood_out_ps),
        ("conn_flood", w.accepted_ps, th.conn_flood_ps),
        ("udp_flood_in", w.udp_pps_in, th.udp_flood_pps),
        ("udp_flood_out", w.udp_pps_out, th.udp_flood_pps),
        ("icmp_flood_in", w.icmp_pps_in, th.icmp_flood_pps),
        ("icmp_flood_out", w.icmp_pps_out, th.icmp_flood_pps),
        ("egress_volume", w.bytes_ps_out, th.egress_bytes_ps),
        ("dns_query_flood", w.dns_qps, th.dns_query_ps),
        ("nxdomain", w.nxdomain, th.nxdomain),
    ];
    checks.iter().filter(|(_, v, t)| *t > 0 && v >= t).map(|(n, _, _)| (*n).to_string()).collect()
}

/// A reported window as an event of the container's cgroup (no process).
pub fn to_event(cgroup_id: u64, w: NetWindow, wall_ns: u64) -> Event {
    Event {
        ts_ns: wall_ns,
        process: ProcessCtx { cgroup_id, ..Default::default() },
        container: None,
        ret: None,
        syscall: Some("netstat".into()),
        kind: EventKind::Netstat(w),
    }
}

/// One cgroup's traffic since the agent started (the per-container network
/// metrics and rate fields), from the kernel's per-container counters: every
/// packet of the cgroup's sockets, raw ones included, whether or not the
/// per-flow table is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CgroupTraffic {
    /// IP bytes on the wire (headers once per segment).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Segments on the wire.
    pub packets_in: u64,
    pub packets_out: u64,
    /// Boot-clock ns of the read that last saw traffic.
    pub last_ns: u64,
}

/// Cgroups whose traffic totals are kept. Past this, the ones the kernel no
/// longer counts that were quiet longest are forgotten (containers gone).
pub const MAX_TRAFFIC_CGROUPS: usize = 4096;

/// Adds up each cgroup's counters read after read. A cgroup's kernel entry
/// starts from zero again once taken out ([`TrafficTotals::forget`] says
/// when); a counter below the last read (a table replaced) counts whole.
#[derive(Debug, Default)]
pub struct TrafficTotals {
    /// The last read per cgroup: bytes in, out, packets in, out.
    last: HashMap<u64, [u64; 4]>,
    totals: HashMap<u64, CgroupTraffic>,
}

impl TrafficTotals {
    /// Folds one read of every cgroup's counters taken at boot-clock
    /// `now_ns`; returns the cgroups without traffic for a minute, whose
    /// kernel entries can go (the caller takes them out, then calls
    /// [`Self::forget`]).
    pub fn observe(&mut self, now_ns: u64, samples: &[(u64, NetSample)]) -> Vec<u64> {
        let mut idle = Vec::new();
        for (cg, s) in samples {
            let c = &s.counters;
            let now = [c.bytes[0], c.bytes[1], c.packets[0].iter().sum(), c.packets[1].iter().sum()];
            let before = self.last.insert(*cg, now).unwrap_or_default();
            let delta: [u64; 4] =
                std::array::from_fn(|i| if now[i] >= before[i] { now[i] - before[i] } else { now[i] });
            let t = self.totals.entry(*cg).or_insert(CgroupTraffic { last_ns: now_ns, ..Default::default() });
            t.bytes_in = t.bytes_in.saturating_add(delta[0]);
            t.bytes_out = t.bytes_out.saturating_add(delta[1]);
            t.packets_in = t.packets_in.saturating_add(delta[2]);
            t.packets_out = t.packets_out.saturating_add(delta[3]);
            if delta != [0; 4] {
                t.last_ns = now_ns;
            } else if now_ns.saturating_sub(t.last_ns) >= IDLE_NS {
                idle.push(*cg);
            }
        }
        self.bound();
        idle
    }

    /// The cgroup's kernel entry was taken out: its next counts start from
    /// zero. Its totals stay.
    pub fn forget(&mut self, cgroup_id: u64) {
        self.last.remove(&cgroup_id);
    }

    /// Traffic per cgroup id, as of the last read.
    pub fn totals(&self) -> &HashMap<u64, CgroupTraffic> {
        &self.totals
    }

    fn bound(&mut self) {
        if self.totals.len() <= MAX_TRAFFIC_CGROUPS {
            return;
        }
        let mut gone: Vec<(u64, u64)> = self
            .totals
            .iter()
            .filter(|(cg, _)| !self.last.contains_key(cg))
            .map(|(cg, t)| (t.last_ns, *cg))
            .collect();
        gone.sort_unstable();
        let excess = self.totals.len() - MAX_TRAFFIC_CGROUPS;
        for (_, cg) in gone.into_iter().take(excess) {
            self.totals.remove(&cg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn cfg() -> NetstatConfig {
        NetstatConfig::default()
    }

    fn sample(f: impl Fn(&mut NetCounters)) -> NetSample {
        let mut c = NetCounters::default();
        f(&mut c);
        NetSample { counters: c, bitmaps: Vec::new() }
    }

    fn traffic(bytes: [u64; 2], packets: [u64; 2]) -> NetSample {
        sample(|c| {
            c.bytes = bytes;
            c.packets[0][0] = packets[0];
            c.packets[1][1] = packets[1];
        })
    }

    #[test]
    fn traffic_totals_add_deltas_across_forgotten_and_replaced_entries() {
        let mut t = TrafficTotals::default();
        assert!(t.observe(S, &[(42, traffic([100, 10], [2, 1])), (43, traffic([5, 0], [1, 0]))]).is_empty());
        t.observe(2 * S, &[(42, traffic([300, 30], [5, 2]))]);
        let mine = t.totals()[&42];
        assert_eq!((mine.bytes_in, mine.bytes_out, mine.packets_in, mine.packets_out), (300, 30, 5, 2));
        assert_eq!(mine.last_ns, 2 * S);
        // a minute without traffic: idle, its entry taken out and forgotten
        let idle = t.observe(63 * S, &[(42, traffic([300, 30], [5, 2]))]);
        assert_eq!(idle, [42]);
        t.forget(42);
        // the kernel counts it from zero again: everything it shows is new
        t.observe(64 * S, &[(42, traffic([50, 0], [3, 0]))]);
        assert_eq!((t.totals()[&42].bytes_in, t.totals()[&42].packets_in), (350, 8));
        // counters below the last read (a table replaced) count whole
        t.observe(65 * S, &[(42, traffic([20, 0], [1, 0]))]);
        assert_eq!((t.totals()[&42].bytes_in, t.totals()[&42].packets_in), (370, 9));
        assert_eq!(t.totals()[&43].bytes_in, 5, "another cgroup counted apart");
    }

    #[test]
    fn traffic_totals_forget_the_quietest_gone_cgroups_past_the_cap() {
        let mut t = TrafficTotals::default();
        for cg in 0..=MAX_TRAFFIC_CGROUPS as u64 {
            t.observe(S + cg, &[(cg, traffic([1, 0], [1, 0]))]);
            t.forget(cg); // its kernel entry went
        }
        assert_eq!(t.totals().len(), MAX_TRAFFIC_CGROUPS);
        assert!(!t.totals().contains_key(&0), "the quietest longest goes first");
        assert!(t.totals().contains_key(&(MAX_TRAFFIC_CGROUPS as u64)));
    }

    fn bits(n: usize) -> Bitmap {
        let mut bm = [0u8; BM_BYTES];
        for i in 0..n {
            bm[i / 8] |= 1 << (i % 8);
        }
        bm
    }

    #[test]
    fn decodes_and_sums_cpus() {
        let mut cpu = vec![0u8; VAL_LEN];
        let put = |b: &mut Vec<u8>, i: usize, v: u64| b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        put(&mut cpu, 1, 7); // packets in udp
        put(&mut cpu, 4, 3); // packets out tcp
        put(&mut cpu, 10, 5); // syn in
        put(&mut cpu, 14, 2); // accepted
        put(&mut cpu, 16, 9); // failed connects
        put(&mut cpu, 18, 77); // slot 1 epoch
        put(&mut cpu, DNS_OFF / 8, 4); // dns queries
        put(&mut cpu, DNS_OFF / 8 + 1, 3); // nxdomain
        cpu[152 + BM_BYTES] = 0xff; // slot 1 dst bitmap
        let s = NetSample::decode_percpu(&[cpu.clone(), cpu]).unwrap();
        assert_eq!(s.counters.packets[0][1], 14);
        assert_eq!(s.counters.packets[1][0], 6);
        assert_eq!((s.counters.syn[0], s.counters.established[0], s.counters.failed_connects), (10, 4, 18));
        assert_eq!((s.counters.dns_queries, s.counters.dns_nxdomain), (8, 6));
        assert_eq!(s.bitmaps.len(), 2, "slot 0 (epoch 0) is empty");
        assert_eq!((s.bitmaps[0].0, s.bitmaps[0].1[0]), (77, 0xff));
        assert!(NetSample::decode_percpu(&[vec![0; 10]]).is_none());
    }

    #[test]
    fn linear_counting_estimates() {
        assert_eq!(distinct(&bits(0)), 0);
        let est = |n: usize| distinct(&bits(n)) as f64;
        // n distinct values set about m(1 - e^(-n/m)) bits: check the inverse
        for n in [10usize, 100, 500, 1000, 2000] {
            let set = (BM_BITS as f64 * (1.0 - (-(n as f64) / BM_BITS as f64).exp())).round() as usize;
            let e = est(set);
            assert!((e - n as f64).abs() <= n as f64 * 0.03 + 1.0, "{n}: {e}");
        }
        assert_eq!(distinct(&[0xff; BM_BYTES]), 7098);
    }

    #[test]
    fn syn_flood_reported_once_per_window_and_ordinary_load_is_not() {
        let mut t = NetstatTracker::new(&cfg());
        // An HTTP server under load: 600 SYNs/s, every one completed.
        let (r, _) = t.observe(
            S,
            S,
            vec![(
                1,
                sample(|c| {
                    c.syn[0] = 600;
                    c.established[0] = 600;
                    c.packets[0][0] = 6000;
                }),
            )],
        );
        assert!(r.is_empty(), "{r:?}");
        // A flood into cgroup 2: 20000 SYNs, 10 completed.
        let flood = |c: &mut NetCounters| {
            c.syn[0] = 20_000;
            c.established[0] = 10;
        };
        let (r, _) = t.observe(S, S, vec![(2, sample(flood))]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[0].1.over, vec!["syn_flood_in"]);
        assert_eq!((r[0].1.half_open, r[0].1.syn_ps_in), (19_990, 20_000));
        // still over a second later: not again within the window
        let (r, _) = t.observe(2 * S, S, vec![(2, sample(flood))]);
        assert!(r.is_empty());
        // still inside the window, already reported: nothing
        let (r, _) = t.observe(5 * S, S, vec![(2, sample(flood))]);
        assert!(r.is_empty());
        // once the flood left the window: nothing
        let (r, _) = t.observe(8 * S, S, vec![(2, sample(flood))]);
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn rates_are_averaged_over_the_window() {
        let mut t = NetstatTracker::new(&cfg());
        let udp = |n: u64| sample(move |c| c.packets[1][1] = n);
        t.observe(S, S, vec![(3, udp(0))]);
        // 30000 pps for 5 s
        for s in 2..=6u64 {
            let (r, _) = t.observe(s * S, S, vec![(3, udp(30_000 * (s - 1)))]);
            if s == 6 {
                assert_eq!(r.len(), 0, "reported earlier, not again within the window");
            }
        }
        let mut t = NetstatTracker::new(&cfg());
        t.observe(S, S, vec![(3, udp(0))]);
        let (r, _) = t.observe(6 * S, S, vec![(3, udp(150_000))]);
        assert_eq!(r[0].1.udp_pps_out, 30_000);
        assert_eq!(r[0].1.over, vec!["udp_flood_out"]);
    }

    #[test]
    fn scans_count_distinct_destinations_in_the_window_only() {
        let mut t = NetstatTracker::new(&cfg());
        let now = 100 * S;
        let epoch = now >> EPOCH_SHIFT;
        let scan = NetSample { counters: NetCounters::default(), bitmaps: vec![(epoch, bits(300), bits(1))] };
        let (r, _) = t.observe(now, S, vec![(4, scan)]);
        assert_eq!(r[0].1.over, vec!["port_scan"]);
        assert!(r[0].1.dsts > 300 && r[0].1.hosts == 1, "{:?}", r[0].1);
        // the scan's epoch falls out of the window
        let old = NetSample { counters: NetCounters::default(), bitmaps: vec![(epoch, bits(300), bits(1))] };
        let (r, _) = t.observe(now + 10 * S, S, vec![(4, old)]);
        assert!(r.is_empty());
    }

    #[test]
    fn dns_query_rate_and_nxdomain_count_over_the_window() {
        let mut t = NetstatTracker::new(&cfg());
        let dns = |q: u64, nx: u64| {
            sample(move |c| {
                c.dns_queries = q;
                c.dns_nxdomain = nx;
            })
        };
        t.observe(S, S, vec![(6, dns(0, 0)), (7, dns(0, 0))]);
        // Since the first sample (at 0: the entry's creation), 3 s: cgroup
        // 6, a busy client, 200 lookups all answered; cgroup 7, a DGA, 400
        // names that do not exist.
        let (r, _) = t.observe(3 * S, 2 * S, vec![(6, dns(200, 0)), (7, dns(400, 400))]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].0, &r[0].1.over), (7, &vec!["nxdomain".to_string()]));
        assert_eq!((r[0].1.nxdomain, r[0].1.dns_qps), (400, 133));
        // a query flood: 10000 in the next second, 2550/s over the 4 s seen
        let (r, _) = t.observe(4 * S, S, vec![(6, dns(10_200, 0))]);
        assert_eq!(r[0].1.over, vec!["dns_query_flood"]);
        assert_eq!(r[0].1.dns_qps, 2550);
    }

    #[test]
    fn idle_containers_are_forgotten() {
        let mut t = NetstatTracker::new(&cfg());
        let s = || sample(|c| c.packets[0][0] = 1);
        t.observe(S, S, vec![(5, s())]);
        let (_, idle) = t.observe(30 * S, S, vec![(5, s())]);
        assert!(idle.is_empty());
        let (_, idle) = t.observe(62 * S, S, vec![(5, s())]);
        assert_eq!(idle, vec![5]);
    }
}

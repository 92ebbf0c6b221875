//! rampart's kernel side: loads the eBPF programs (bpf/*.bpf.c, via a
//! libbpf-cargo skeleton), probes kernel features, attaches each hook
//! independently, drains the ring buffer in batches and decodes raw records into
//! the owned [`model::Event`].
//!
//! ```no_run
//! let mut sensor = sensor::Sensor::start(sensor::SensorConfig::default())?;
//! loop {
//!     sensor.poll(&mut |event| println!("{event:?}"))?;
//!     std::thread::sleep(sensor::POLL_PERIOD);
//! }
//! # Ok::<(), sensor::SensorError>(())
//! ```
//!
//! Layout: [`decode`] and [`paths`] are pure (unit-tested without root); the
//! kernel-touching code is in the private `kernel` module.

mod abi;
pub mod decode;
pub mod dns;
pub mod flows;
mod handoff;
mod kernel;
pub mod kill;
pub mod maps;
pub mod netstat;
pub mod paths;
pub mod pcap;
pub mod prefilter;
pub mod ring;
pub mod runq;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use decode::{DecodeError, Decoder};
pub use flows::{FlowConfig, FlowRecords, FlowRecordsMode, FlowTable, FlowTableStats, FlowTracker};
pub use kernel::{
    ContainerChildren, KillMaps, RunQueueMaps, Sensor, SyscallCountMaps, SyscallLatencyMaps,
    KILL_PARENT_NAME_MAX,
};
pub use kill::{KernelKills, KillPoint, KillTrigger};
pub use netstat::{CgroupTraffic, NetstatConfig, NetstatTracker, TrafficTotals};
pub use paths::{join_path, normalize};
pub use prefilter::Prefilter;

/// Whether this is the benchmark's floor build (feature `floor`,
/// bpf/floor.h): the programs attach and return at once, so nothing is seen
/// and nothing is enforced in the kernel.
pub const FLOOR_BUILD: bool = cfg!(feature = "floor");

/// A drain period that keeps a 16 MiB ring far from full at 200k events/s
/// (~0.25 MiB arrives per period at that rate).
pub const POLL_PERIOD: Duration = Duration::from_millis(3);

/// Default ring buffer size: 16 MiB. Its pages count twice in the agent's
/// VmRSS from the start (the data area is mapped twice, so that a record can
/// wrap around its end): 32 of the 63 MiB an agent with 100 idle containers
/// showed. 8 MiB would meet the 48 MiB goal but dropped events at saturation
/// once (docs/ARCHITECTURE.md, "The agent's memory").
pub const DEFAULT_RING_BUFFER_BYTES: usize = 16 << 20;
/// [`SensorConfig::syscall_latency_sample`] by default: one container
/// syscall in 16 timed (measured in docs/ARCHITECTURE.md).
pub const DEFAULT_SYSCALL_LATENCY_SAMPLE: u32 = 16;
/// The largest [`SensorConfig::syscall_latency_sample`].
pub const MAX_SYSCALL_LATENCY_SAMPLE: u32 = 1 << 16;

/// How the sensor is started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorConfig {
    /// Report host processes too, not only tasks in a mount namespace other than
    /// the host's (containers).
    pub include_host: bool,
    /// Ring buffer size in bytes; rounded up to a power of two (at least one
    /// page, at most 1 GiB).
    pub ring_buffer_bytes: usize,
    /// BPF program names (e.g. `on_cap_capable`, `enter_syscalls`) not to load.
    pub disabled_programs: Vec<String>,
    /// Turn the recorder on: a per-cgroup bitmap of every syscall entered (read
    /// with [`Sensor::syscall_sets`]), set by the sys_enter program for every
    /// syscall of a reported task, so only `rampart record` turns it on.
    pub record_syscalls: bool,
    /// How the reported syscalls are hooked (see [`SyscallHooks`]).
    pub syscall_hooks: SyscallHooks,
    /// Count each container's syscalls by number in the kernel (read with
    /// [`Sensor::syscall_count_maps`]): a hash lookup and an atomic add on
    /// every syscall of a reported task.
    pub syscall_counts: bool,
    /// Time each container's syscalls in the kernel (bpf/syscall_latency.h;
    /// read with [`Sensor::syscall_latency_maps`]): stamped by `enter_syscalls`
    /// (loaded for it), timed by `exit_syscalls` with the raw dispatch or by
    /// `sc_latency_exit` with the tracepoints.
    pub syscall_latency: bool,
    /// With `syscall_latency`: time one container syscall in this many,
    /// chosen at random (1: every one; at most
    /// [`MAX_SYSCALL_LATENCY_SAMPLE`]). The others cost a per-CPU countdown
    /// at entry and a compare at exit.
    pub syscall_latency_sample: u32,
    /// Flow accounting (`flows`), run by the sensor's owner next to the
    /// sensor; `None`: off.
    pub flows: Option<FlowConfig>,
    /// Let the sensor's owner narrow the reported syscall event types to
    /// those its consumer uses ([`Sensor::prefilter`]); off, every type is
    /// reported whatever the consumer.
    pub prefilter: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            include_host: false,
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            disabled_programs: Vec::new(),
            record_syscalls: false,
            syscall_counts: false,
            syscall_latency: false,
            syscall_latency_sample: DEFAULT_SYSCALL_LATENCY_SAMPLE,
            syscall_hooks: SyscallHooks::default(),
            flows: None,
            prefilter: true,
        }
    }
}

/// How the sensor hooks the syscalls it reports (bpf/syscalls.h). Both
/// report the same events and fields; they differ in cost (measured in
/// docs/ARCHITECTURE.md, "Kernel side").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallHooks {
    /// One perf-event tracepoint per reported syscall: only those syscalls
    /// pay. Releasing them takes seconds on a busy host, which a process of
    /// their own does after the sensor is dropped (the owner does not wait).
    #[default]
    Tracepoints,
    /// Two raw tracepoints (`sys_enter`, `sys_exit`) dispatching on a
    /// syscall table (x86_64 only): every syscall of every task runs both
    /// programs.
    Raw,
}

/// The syscall numbers one cgroup's tasks entered, from the recorder's bitmap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallSet {
    /// Numbers of the kernel's native ABI (x86_64 here), ascending.
    pub native: Vec<u32>,
    /// Numbers entered by 32-bit (i386 compat) tasks, ascending.
    pub compat: Vec<u32>,
}

impl SyscallSet {
    /// Decodes the kernel's `struct syscall_set` (bpf/events.h): two bitmaps of
    /// 512 bits, native then compat, as native-endian u64 words.
    pub fn from_bitmap(bytes: &[u8]) -> SyscallSet {
        let bits = |half: &[u8]| -> Vec<u32> {
            let mut nrs = Vec::new();
            for (w, chunk) in half.chunks_exact(8).enumerate() {
                let word = u64::from_ne_bytes(chunk.try_into().expect("8-byte chunk"));
                for b in 0..64 {
                    if word & (1 << b) != 0 {
                        nrs.push((w * 64 + b) as u32);
                    }
                }
            }
            nrs
        };
        let half = bytes.len() / 2;
        SyscallSet { native: bits(&bytes[..half]), compat: bits(&bytes[half..]) }
    }

    /// Adds another set's numbers (e.g. a container's restarted cgroup).
    pub fn merge(&mut self, other: &SyscallSet) {
        for (mine, theirs) in [(&mut self.native, &other.native), (&mut self.compat, &other.compat)] {
            mine.extend_from_slice(theirs);
            mine.sort_unstable();
            mine.dedup();
        }
    }
}

/// The non-zero counters of a kernel `struct syscall_counts` (bpf/events.h:
/// native-endian u64 per syscall number), as (number, count).
pub fn syscall_counts_from_bytes(bytes: &[u8]) -> Vec<(u32, u64)> {
    bytes
        .chunks_exact(8)
        .enumerate()
        .filter_map(|(nr, c)| {
            let n = u64::from_ne_bytes(c.try_into().expect("8-byte chunk"));
            (n != 0).then_some((nr as u32, n))
        })
        .collect()
}

/// The counts of the slots of the kernel's `syscall_counts` array (bpf/events.h:
/// the owner cgroup, then the counters), by cgroup: free slots (owner 0) left
/// out, the two slots a cgroup may own added up. Ascending by cgroup, then by
/// syscall number.
pub fn syscall_counts_by_cgroup<'a>(
    slots: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<(u64, Vec<(u32, u64)>)> {
    let mut by_cgroup: std::collections::BTreeMap<u64, std::collections::BTreeMap<u32, u64>> =
        Default::default();
    for slot in slots {
        let Some(owner) = maps::cgroup_key(slot).filter(|&cg| cg != 0) else {
            continue;
        };
        let counts = by_cgroup.entry(owner).or_default();
        for (nr, n) in syscall_counts_from_bytes(&slot[8..]) {
            let c = counts.entry(nr).or_default();
            *c = c.saturating_add(n);
        }
    }
    by_cgroup.into_iter().map(|(cg, counts)| (cg, counts.into_iter().collect())).collect()
}

/// Counters; drops are never hidden.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SensorStats {
    /// Records decoded into events.
    pub events: u64,
    /// Records the kernel could not output (ring buffer full, or the per-CPU
    /// scratch buffer busy), per CPU.
    pub lost: Vec<u64>,
    /// The same losses by event type (names as in `evt.type`; `unknown`: lost
    /// before the type was known), as of the last second with losses.
    pub lost_by_type: Vec<(&'static str, u64)>,
    /// Bytes written to the ring buffer and not yet consumed (records and
    /// their headers) when the last drain began, and the most since start;
    /// `None` when the ring's pages could not be mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_pending_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_peak_bytes: Option<u64>,
    /// The ring buffer's size.
    pub ring_bytes: u64,
    /// Records that could not be decoded.
    pub decode_errors: u64,
    /// Records whose string area ran out of room (some path or argument cut).
    pub truncated: u64,
    /// The kernel flow table, when flow accounting runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_table: Option<FlowTableStats>,
}

impl SensorStats {
    pub fn lost_total(&self) -> u64 {
        self.lost.iter().sum()
    }
}

/// A kernel feature the sensor probed at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    pub name: String,
    pub available: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// One BPF program and where it hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookStatus {
    /// BPF program name, e.g. `exit_syscalls`.
    pub program: String,
    /// ELF section naming the hook, e.g. `tp_btf/sys_exit`.
    pub hook: String,
    #[serde(flatten)]
    pub state: HookState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HookState {
    Attached,
    /// Loading or attaching failed.
    Failed {
        reason: String,
    },
    /// Not loaded: the hook does not exist on this kernel, or disabled by config.
    Skipped {
        reason: String,
    },
}

/// What the sensor found and attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SensorStatus {
    pub features: Vec<Feature>,
    pub hooks: Vec<HookStatus>,
    pub include_host: bool,
    /// The host mount namespace inode that tells host tasks from containers.
    pub host_mnt_ns: u32,
    pub ring_buffer_bytes: usize,
    /// The recorder's syscall sets are being filled (see
    /// [`SensorConfig::record_syscalls`]).
    pub record_syscalls: bool,
}

impl SensorStatus {
    pub fn attached(&self) -> impl Iterator<Item = &HookStatus> {
        self.hooks.iter().filter(|h| h.state == HookState::Attached)
    }

    pub fn hook(&self, program: &str) -> Option<&HookStatus> {
        self.hooks.iter().find(|h| h.program == program)
    }

    pub fn is_attached(&self, program: &str) -> bool {
        self.hook(program).is_some_and(|h| h.state == HookState::Attached)
    }
}

/// Errors of the sensor.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("invalid sensor config: {0}")]
    Config(String),
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("mounting tracefs at {path}: {source}")]
    MountTracefs { path: PathBuf, source: std::io::Error },
    #[error("kernel feature {feature} missing: {detail}")]
    MissingFeature { feature: String, detail: String },
    #[error("opening bpf object {object}: {source}")]
    Open { object: String, source: libbpf_rs::Error },
    #[error("configuring bpf map {map}: {source}")]
    Map { map: String, source: libbpf_rs::Error },
    #[error("loading bpf object {object} (failing program: {program}): {source}")]
    Load { object: String, program: String, source: libbpf_rs::Error },
    #[error("no bpf program attached: {reasons}")]
    NothingAttached { reasons: String },
    #[error("ring buffer {map}: {source}")]
    RingBuffer { map: String, source: ring::RingError },
}

#[cfg(test)]
mod tests {
    use super::SyscallSet;

    #[test]
    fn syscall_bitmap_decodes_native_and_compat_halves() {
        let mut bytes = vec![0u8; 128];
        bytes[0] = 0b1000_0001; // native 0 and 7
        bytes[8 * 7 + 7] = 0x80; // native 511
        bytes[64] = 0b10; // compat 1
        let set = SyscallSet::from_bitmap(&bytes);
        assert_eq!(set.native, vec![0, 7, 511]);
        assert_eq!(set.compat, vec![1]);
        let mut counts = vec![0u8; 4096];
        counts[8 * 257..8 * 258].copy_from_slice(&5u64.to_ne_bytes());
        counts[0..8].copy_from_slice(&1u64.to_ne_bytes());
        assert_eq!(super::syscall_counts_from_bytes(&counts), vec![(0, 1), (257, 5)]);
        // slots: owner 7 twice (added up), a free slot with stale counters
        // (left out), owner 3
        let slot = |owner: u64, counts: &[(usize, u64)]| {
            let mut b = vec![0u8; 8 + 4096];
            b[..8].copy_from_slice(&owner.to_ne_bytes());
            for &(nr, n) in counts {
                b[8 + 8 * nr..16 + 8 * nr].copy_from_slice(&n.to_ne_bytes());
            }
            b
        };
        let slots =
            [slot(7, &[(0, 2), (511, 1)]), slot(0, &[(1, 9)]), slot(3, &[(59, 4)]), slot(7, &[(0, 3)])];
        assert_eq!(
            super::syscall_counts_by_cgroup(slots.iter().map(Vec::as_slice)),
            vec![(3, vec![(59, 4)]), (7, vec![(0, 5), (511, 1)])]
        );
        let mut merged = set.clone();
        merged.merge(&SyscallSet { native: vec![3, 7], compat: vec![] });
        assert_eq!(merged.native, vec![0, 3, 7, 511]);
    }
}

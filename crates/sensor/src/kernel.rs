//! The kernel-touching part: feature probing, load, attach, ring buffer.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, MapType, OpenObject, PrintLevel, ProgramType};
use model::Event;

use crate::abi::skel::{SensorSkel, SensorSkelBuilder};
use crate::decode::{record_killed, record_truncated, Decoder};
use crate::kill::{key_bytes, walk_form, KernelKills, KillTrigger};
use crate::ring::RingReader;
use crate::{
    Feature, HookState, HookStatus, SensorConfig, SensorError, SensorStats, SensorStatus, SyscallHooks,
    SyscallSet, MAX_SYSCALL_LATENCY_SAMPLE,
};

const OBJECT: &str = "sensor.bpf.o";
const TRACEFS: &str = "/sys/kernel/tracing";
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Records consumed per ring-buffer pass before handing events to the caller.
const BATCH: usize = 8192;
const MAX_LOAD_ATTEMPTS: usize = 8;

/// Last lines libbpf printed (verifier logs), to name a failing program.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn libbpf_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end().to_string();
    match level {
        PrintLevel::Warn => tracing::debug!(target: "libbpf", "{msg}"),
        _ => tracing::trace!(target: "libbpf", "{msg}"),
    }
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        if log.len() >= 256 {
            log.drain(..128);
        }
        log.push(msg);
    }
}

fn take_log() -> Vec<String> {
    LIBBPF_LOG.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default()
}

/// Name of the program libbpf reported as failing to load, and a short reason.
fn failing_program(log: &[String]) -> Option<(String, String)> {
    let line = log.iter().rev().find(|l| l.contains("failed to load") && l.contains("prog '"))?;
    let start = line.find("prog '")? + 6;
    let end = start + line[start..].find('\'')?;
    let name = line[start..end].to_string();
    // the verifier's last words before its summary usually say why
    let reason = log
        .iter()
        .rev()
        .filter(|l| {
            !l.starts_with("libbpf:")
                && !l.starts_with("processed")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
                && !l.starts_with("--")
        })
        .take(2)
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" / ");
    Some((name, if reason.is_empty() { line.clone() } else { reason }))
}

/// The drain's figures: written by `poll`, read by `stats` (through `&self`).
#[derive(Default)]
struct Shared {
    queue: Vec<Event>,
    events: u64,
    decode_errors: u64,
    truncated: u64,
    /// Losses per event type, as of `lost_read_at` (read again only when the
    /// total moved, at most once a second: 127 map lookups).
    lost_by_type: Vec<(&'static str, u64)>,
    lost_total_at_read: u64,
    lost_read_at: Option<std::time::Instant>,
    /// Ring bytes waiting when the last drain began, and the most since start.
    ring_pending: u64,
    ring_peak: u64,
}

/// The loaded skeleton plus the storage its object lives in.
struct Loaded {
    skel: ManuallyDrop<SensorSkel<'static>>,
    storage: *mut MaybeUninit<OpenObject>,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: `skel` is dropped exactly once, here, before `storage` (which
        // it borrows) is freed.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // SAFETY: `storage` came from Box::into_raw in `open_and_load` and is
        // freed only here; the skeleton that referenced it was dropped above.
        drop(unsafe { Box::from_raw(self.storage) });
    }
}

/// The running sensor. Owned by one thread: call [`Sensor::poll`] in a loop
/// with a short sleep ([`crate::POLL_PERIOD`]).
pub struct Sensor {
    // Field order is drop order: ring buffer and links before the object.
    ring: RingReader,
    links: Vec<Link>,
    loaded: Loaded,
    shared: RefCell<Shared>,
    decoder: Decoder,
    status: SensorStatus,
    kernel_kills: KernelKills,
}

impl Drop for Sensor {
    /// Quiet first (no more syscall records, no more kills), then the links
    /// are released by a process of their own (see [`crate::handoff`]).
    fn drop(&mut self) {
        let quiet = self.loaded.skel.maps.quiet.update(&0u32.to_ne_bytes(), &[1], MapFlags::ANY);
        if let Err(e) = &quiet {
            tracing::warn!(error = %e, "the sensor could not go quiet: releasing its hooks here");
        }
        let fds = self.links.iter().map(|l| l.as_fd().as_raw_fd()).collect();
        let started = std::time::Instant::now();
        let holder = quiet.is_ok().then(|| crate::handoff::release_in_background(fds)).flatten();
        let handed = holder.is_some();
        self.links.clear();
        drop(holder); // now the holder's copies are the last
        tracing::debug!(handed, elapsed = ?started.elapsed(), "sensor hooks released");
    }
}

impl std::fmt::Debug for Sensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensor").field("status", &self.status).finish_non_exhaustive()
    }
}

fn ensure_tracefs() -> Result<(), SensorError> {
    if Path::new(TRACEFS).join("events").is_dir() || Path::new("/sys/kernel/debug/tracing/events").is_dir() {
        return Ok(());
    }
    let c = |s: &str| CString::new(s).expect("no NUL in constant");
    let (src, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the
    // call; data may be NULL for tracefs.
    let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        return Err(SensorError::MountTracefs {
            path: TRACEFS.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    tracing::info!(path = TRACEFS, "mounted tracefs");
    Ok(())
}

/// Raise RLIMIT_MEMLOCK to infinity (kernels before 5.11 charge BPF maps to
/// it). Without CAP_SYS_RESOURCE only the soft limit can go up to the hard
/// one; newer kernels charge the memory cgroup instead, so that is not fatal.
fn raise_memlock() {
    let inf = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: `inf` is a valid rlimit that setrlimit only reads.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) } == 0 {
        return;
    }
    let err = std::io::Error::last_os_error();
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `cur` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) } == 0 {
        cur.rlim_cur = cur.rlim_max;
        // SAFETY: `cur` is a valid rlimit that setrlimit only reads.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &cur) };
    }
    tracing::debug!(error = %err, hard_limit = cur.rlim_max, "RLIMIT_MEMLOCK not raised to infinity");
}

/// The inode number of this process's mount namespace (`mnt:[N]`).
fn own_mnt_ns() -> Result<u32, SensorError> {
    let path = PathBuf::from("/proc/self/ns/mnt");
    let link = std::fs::read_link(&path).map_err(|source| SensorError::Io { path: path.clone(), source })?;
    let s = link.to_string_lossy();
    s.strip_prefix("mnt:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok()).ok_or_else(|| {
        SensorError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected link {s:?}")),
        }
    })
}

struct Probe {
    features: Vec<Feature>,
    tracefs_events: PathBuf,
    btf: Option<libbpf_rs::Btf<'static>>,
    tp_btf: bool,
}

impl Probe {
    fn run() -> Probe {
        let mut features = Vec::new();
        let mut add = |name: &str, available: bool, detail: String| {
            features.push(Feature { name: name.into(), available, detail });
        };
        let btf = libbpf_rs::Btf::from_vmlinux().ok();
        add("btf", btf.is_some(), VMLINUX_BTF.into());
        let ringbuf = MapType::RingBuf.is_supported();
        add(
            "ring_buffer",
            matches!(ringbuf, Ok(true)),
            ringbuf.err().map(|e| e.to_string()).unwrap_or_default(),
        );
        let tp = ProgramType::Tracepoint.is_supported();
        add("tracepoint", matches!(tp, Ok(true)), tp.err().map(|e| e.to_string()).unwrap_or_default());
        // libbpf cannot probe BPF_PROG_TYPE_TRACING without a target; tp_btf needs
        // kernel BTF and raw tracepoint support (a missing tp is caught per hook).
        let tp_btf = matches!(ProgramType::RawTracepoint.is_supported(), Ok(true)) && btf.is_some();
        add("tp_btf", tp_btf, String::new());
        let tracefs_events =
            [Path::new(TRACEFS).join("events"), PathBuf::from("/sys/kernel/debug/tracing/events")]
                .into_iter()
                .find(|p| p.is_dir())
                .unwrap_or_else(|| Path::new(TRACEFS).join("events"));
        add("tracefs", tracefs_events.is_dir(), tracefs_events.display().to_string());
        let syscalls = tracefs_events.join("syscalls").is_dir();
        add("syscall_tracepoints", syscalls, String::new());
        Probe { features, tracefs_events, btf, tp_btf }
    }

    fn has(&self, name: &str) -> bool {
        self.features.iter().any(|f| f.name == name && f.available)
    }

    /// Why the hook of a program section cannot be used here, if it cannot.
    fn missing(&self, section: &str) -> Option<String> {
        if let Some(tp) = section.strip_prefix("tracepoint/") {
            if !self.has("tracepoint") {
                return Some("tracepoint programs not supported".into());
            }
            if !self.tracefs_events.join(tp).is_dir() {
                return Some(format!("tracepoint {tp} not present"));
            }
            None
        } else if let Some(name) = section.strip_prefix("tp_btf/") {
            if !self.tp_btf {
                return Some("tp_btf not supported".into());
            }
            let found = self
                .btf
                .as_ref()
                .and_then(|b| {
                    b.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>(&format!("btf_trace_{name}"))
                })
                .is_some();
            (!found).then(|| format!("raw tracepoint {name} not in kernel BTF"))
        } else {
            None
        }
    }
}

/// The partner of a syscall program (enter_X <-> exit_X): both or neither.
fn partner(program: &str) -> Option<String> {
    if let Some(s) = program.strip_prefix("enter_") {
        Some(format!("exit_{s}"))
    } else {
        program.strip_prefix("exit_").map(|s| format!("enter_{s}"))
    }
}

fn round_ring_size(bytes: usize) -> Result<u32, SensorError> {
    let page = 4096usize;
    if bytes > 1 << 30 {
        return Err(SensorError::Config(format!("ring_buffer_bytes {bytes} is over 1 GiB")));
    }
    Ok(bytes.max(page).next_power_of_two() as u32)
}

fn open_and_load(
    cfg: &SensorConfig,
    host_mnt_ns: u32,
    ring_bytes: u32,
    skip: &BTreeMap<String, String>,
) -> Result<Loaded, (Option<(String, String)>, SensorError)> {
    let storage: *mut MaybeUninit<OpenObject> = Box::into_raw(Box::new(MaybeUninit::uninit()));
    let free = move || {
        // SAFETY: `storage` came from Box::into_raw above and no skeleton
        // referencing it is alive any more when this runs.
        drop(unsafe { Box::from_raw(storage) })
    };
    // SAFETY: `storage` is a valid, uniquely owned allocation; the skeleton that
    // borrows it is dropped (in `Loaded::drop`, or on the error paths below)
    // before the allocation is freed, so 'static never outlives it.
    let obj_ref: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *storage };
    let mut open = match SensorSkelBuilder::default().open(obj_ref) {
        Ok(o) => o,
        Err(source) => {
            free();
            return Err((None, SensorError::Open { object: OBJECT.into(), source }));
        }
    };
    let setup = (|| {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| SensorError::Config("bpf object has no mmapable .rodata".into()))?;
        ro.include_host = cfg.include_host;
        ro.self_tgid = std::process::id();
        ro.host_mnt_ns = host_mnt_ns;
        ro.record_syscalls = cfg.record_syscalls;
        ro.count_syscalls = cfg.syscall_counts;
        ro.time_syscalls = cfg.syscall_latency;
        ro.latency_sample = cfg.syscall_latency_sample.clamp(1, MAX_SYSCALL_LATENCY_SAMPLE);
        ro.raw_dispatch = cfg.syscall_hooks == SyscallHooks::Raw;
        if !cfg.syscall_counts {
            // 4 KiB per slot: no room taken while off
            ro.count_slots = 1;
            open.maps
                .syscall_counts
                .set_max_entries(1)
                .map_err(|source| SensorError::Map { map: "syscall_counts".into(), source })?;
        }
        if !cfg.syscall_latency {
            // 272 bytes per entry, preallocated: no room taken while off
            open.maps
                .syscall_latency
                .set_max_entries(1)
                .map_err(|source| SensorError::Map { map: "syscall_latency".into(), source })?;
        }
        open.maps
            .events
            .set_max_entries(ring_bytes)
            .map_err(|source| SensorError::Map { map: "events".into(), source })?;
        for mut prog in open.open_object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if skip.contains_key(&name) {
                prog.set_autoload(false);
            }
        }
        Ok::<(), SensorError>(())
    })();
    if let Err(e) = setup {
        drop(open);
        free();
        return Err((None, e));
    }
    take_log();
    match open.load() {
        Ok(skel) => Ok(Loaded { skel: ManuallyDrop::new(skel), storage }),
        Err(source) => {
            free();
            let failing = failing_program(&take_log());
            let program = failing.as_ref().map(|f| f.0.clone()).unwrap_or_else(|| "unknown".into());
            Err((failing, SensorError::Load { object: OBJECT.into(), program, source }))
        }
    }
}

impl Sensor {
    /// Probe, load, attach. Hooks that do not exist or fail are recorded in
    /// [`Sensor::status`] and the rest keep working; fails only when nothing
    /// can run (no BTF, no ring buffer, nothing attached).
    pub fn start(mut cfg: SensorConfig) -> Result<Sensor, SensorError> {
        let ring_bytes = round_ring_size(cfg.ring_buffer_bytes)?;
        libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));
        raise_memlock();
        ensure_tracefs()?;
        let host_mnt_ns = own_mnt_ns()?;
        let probe = Probe::run();
        for f in ["btf", "ring_buffer"] {
            if !probe.has(f) {
                return Err(SensorError::MissingFeature { feature: f.into(), detail: "required".into() });
            }
        }

        // Which programs to leave out before loading.
        let mut skip: BTreeMap<String, String> = BTreeMap::new();
        let mut sections: BTreeMap<String, String> = BTreeMap::new();
        {
            // The object is only opened (not loaded) to list its programs.
            let mut storage: Box<MaybeUninit<OpenObject>> = Box::new(MaybeUninit::uninit());
            let open = SensorSkelBuilder::default()
                .open(&mut storage)
                .map_err(|source| SensorError::Open { object: OBJECT.into(), source })?;
            for prog in open.open_object().progs() {
                let name = prog.name().to_string_lossy().into_owned();
                let section = prog.section().to_string_lossy().into_owned();
                if cfg.disabled_programs.contains(&name) {
                    skip.insert(name.clone(), "disabled by config".into());
                } else if let Some(why) = probe.missing(&section) {
                    skip.insert(name.clone(), why);
                }
                sections.insert(name, section);
            }
        }
        let names: Vec<String> = sections.keys().cloned().collect();
        for name in &names {
            if let Some(p) = partner(name) {
                if let (Some(why), false) = (skip.get(&p).cloned(), skip.contains_key(name)) {
                    if sections.contains_key(&p) {
                        skip.insert(name.clone(), format!("partner {p} skipped: {why}"));
                    }
                }
            }
        }

        // Raw hooks that cannot run here (no BTF tracepoint, or disabled):
        // the tracepoints report the same events.
        if cfg.syscall_hooks == SyscallHooks::Raw {
            if let Some(why) = ["enter_syscalls", "exit_syscalls"].iter().find_map(|p| skip.get(*p)) {
                tracing::warn!(reason = %why, "raw syscall hooks unavailable; using the syscall tracepoints");
                cfg.syscall_hooks = SyscallHooks::Tracepoints;
                if cfg.record_syscalls || cfg.syscall_counts || cfg.syscall_latency {
                    tracing::warn!("without raw sys_enter, syscalls are neither recorded, counted nor timed");
                }
            }
        }

        // The syscall hooks not chosen (after the partner rule: these pairs
        // are left out on purpose, each half for its own reason).
        for (name, section) in &sections {
            let per_syscall = section.starts_with("tracepoint/syscalls/");
            let why = match (cfg.syscall_hooks, name.as_str()) {
                (SyscallHooks::Raw, _) if per_syscall => "syscall_hooks: raw",
                (SyscallHooks::Tracepoints, "exit_syscalls") => "syscall_hooks: tracepoints",
                (SyscallHooks::Tracepoints, "enter_syscalls")
                    if !cfg.record_syscalls && !cfg.syscall_counts && !cfg.syscall_latency =>
                {
                    "syscall_hooks: tracepoints (loaded only to record, count or time syscalls)"
                }
                (_, "sc_latency_exit") if !cfg.syscall_latency => "syscall_latency: off",
                (SyscallHooks::Raw, "sc_latency_exit") => "syscall_hooks: raw (exit_syscalls times syscalls)",
                _ => continue,
            };
            skip.entry(name.clone()).or_insert_with(|| why.into());
        }

        // The context switch carries a timed syscall's stamp to the CPU its
        // task wakes on (syscall_latency.h); without it only those are lost.
        if let (true, Some(why)) = (cfg.syscall_latency, skip.get("on_sched_switch")) {
            tracing::warn!(reason = %why, "without on_sched_switch, syscalls that wake on another CPU are not timed");
        }

        // Load; a program the verifier rejects is left out and the load retried.
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        let mut attempts = 0;
        let loaded = loop {
            attempts += 1;
            let mut all_skip = skip.clone();
            all_skip.extend(failed.clone());
            match open_and_load(&cfg, host_mnt_ns, ring_bytes, &all_skip) {
                Ok(l) => break l,
                Err((Some((prog, reason)), err))
                    if attempts < MAX_LOAD_ATTEMPTS
                        && sections.contains_key(&prog)
                        && !failed.contains_key(&prog) =>
                {
                    tracing::warn!(program = %prog, %reason, error = %err, "bpf program rejected; loading without it");
                    if let Some(p) = partner(&prog).filter(|p| sections.contains_key(p)) {
                        failed.insert(p, format!("partner {prog} failed to load"));
                    }
                    failed.insert(prog, format!("load failed: {reason}"));
                }
                Err((_, err)) => return Err(err),
            }
        };

        // Attach each program independently.
        let mut hooks = Vec::new();
        let mut links = Vec::new();
        for prog in loaded.skel.object().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            let hook = sections.get(&name).cloned().unwrap_or_default();
            let state = if let Some(why) = skip.get(&name) {
                HookState::Skipped { reason: why.clone() }
            } else if let Some(why) = failed.get(&name) {
                HookState::Failed { reason: why.clone() }
            } else {
                match prog.attach() {
                    Ok(link) => {
                        links.push(link);
                        HookState::Attached
                    }
                    Err(e) => {
                        tracing::warn!(program = %name, %hook, error = %e, "attach failed");
                        HookState::Failed { reason: format!("attach failed: {e}") }
                    }
                }
            };
            hooks.push(HookStatus { program: name, hook, state });
        }
        if links.is_empty() {
            let reasons =
                hooks.iter().map(|h| format!("{}: {:?}", h.program, h.state)).collect::<Vec<_>>().join("; ");
            return Err(SensorError::NothingAttached { reasons });
        }

        let shared = RefCell::new(Shared::default());
        let decoder = Decoder::from_clocks();
        let kernel_kills = KernelKills::default();
        let events = &loaded.skel.maps.events;
        let ring = RingReader::new(events.as_fd(), events.max_entries())
            .map_err(|source| SensorError::RingBuffer { map: "events".into(), source })?;

        let attached = hooks.iter().filter(|h| h.state == HookState::Attached).count();
        tracing::info!(
            attached,
            total = hooks.len(),
            include_host = cfg.include_host,
            host_mnt_ns,
            "sensor started"
        );
        let recording = cfg.record_syscalls
            && hooks.iter().any(|h| h.program == "enter_syscalls" && h.state == HookState::Attached);
        let status = SensorStatus {
            features: probe.features,
            hooks,
            include_host: cfg.include_host,
            host_mnt_ns,
            ring_buffer_bytes: ring_bytes as usize,
            record_syscalls: recording,
        };
        Ok(Sensor { ring, links, loaded, shared, decoder, status, kernel_kills })
    }

    /// Drain everything in the ring buffer now (batched; no blocking), handing
    /// each decoded event to `f`. Returns the number of events handed over.
    pub fn poll(&mut self, f: &mut dyn FnMut(Event)) -> Result<usize, SensorError> {
        let mut total = 0usize;
        loop {
            let mut batch = std::mem::take(&mut self.shared.borrow_mut().queue);
            let n = self.poll_into(&mut batch, BATCH)?;
            total += batch.len();
            for ev in batch.drain(..) {
                f(ev);
            }
            // keep the allocation for the next batch
            self.shared.borrow_mut().queue = batch;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// Take at most `max` records off the ring buffer (no blocking), their
    /// events appended to `out`: each event is moved once, from the decoder
    /// into `out` (an event is ~400 bytes; moving it through a callback and
    /// two batches was ~10% of the live pipeline's time). Returns the number of
    /// records taken: fewer than `max` means the ring is empty.
    pub fn poll_into(&mut self, out: &mut Vec<Event>, max: usize) -> Result<usize, SensorError> {
        let mut sh = self.shared.borrow_mut();
        let pending = self.ring.pending();
        sh.ring_pending = pending;
        sh.ring_peak = sh.ring_peak.max(pending);
        let (decoder, kills) = (&self.decoder, &self.kernel_kills);
        self.ring
            .consume(max, &mut |rec: &[u8]| {
                if record_truncated(rec) {
                    sh.truncated += 1;
                }
                match decoder.decode(rec) {
                    Ok(ev) => {
                        if let Some(trigger) = record_killed(rec) {
                            kills.record(ev.process.tid, ev.ts_ns, trigger);
                        }
                        sh.events += 1;
                        out.push(ev);
                    }
                    Err(e) => {
                        sh.decode_errors += 1;
                        tracing::debug!(error = %e, "undecodable record");
                    }
                }
            })
            .map_err(|source| SensorError::RingBuffer { map: "events".into(), source })
    }

    pub fn stats(&self) -> SensorStats {
        let lost = match self.loaded.skel.maps.lost.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY) {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes).unwrap_or(0))
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(error = %e, map = "lost", "reading lost counters");
                Vec::new()
            }
        };
        let total: u64 = lost.iter().sum();
        self.refresh_lost_by_type(total);
        let sh = self.shared.borrow();
        SensorStats {
            events: sh.events,
            lost,
            lost_by_type: sh.lost_by_type.clone(),
            ring_pending_bytes: Some(sh.ring_pending),
            ring_peak_bytes: Some(sh.ring_peak),
            ring_bytes: self.status.ring_buffer_bytes as u64,
            decode_errors: sh.decode_errors,
            truncated: sh.truncated,
            flow_table: None,
        }
    }

    /// Re-reads the per-type loss counters when the total moved (at most once
    /// a second); what no type claims is the scratch buffer's (`unknown`).
    fn refresh_lost_by_type(&self, total: u64) {
        let mut sh = self.shared.borrow_mut();
        let recent = sh.lost_read_at.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1));
        if total == sh.lost_total_at_read || recent {
            return;
        }
        let map = &self.loaded.skel.maps.lost;
        let mut by_type = Vec::new();
        for t in 1..crate::abi::EV_TYPE_MAX {
            let n: u64 = match map.lookup_percpu(&t.to_ne_bytes(), MapFlags::ANY) {
                Ok(Some(per_cpu)) => per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes))
                    .sum(),
                _ => 0,
            };
            if n > 0 {
                by_type.push((crate::decode::event_type_name(t), n));
            }
        }
        let typed: u64 = by_type.iter().map(|(_, n)| n).sum();
        if total > typed {
            by_type.push(("unknown", total - typed));
        }
        sh.lost_by_type = by_type;
        sh.lost_total_at_read = total;
        sh.lost_read_at = Some(std::time::Instant::now());
    }

    /// Records so far that wrapped past the end of the event ring (read
    /// whole all the same: see [`crate::ring`]).
    pub fn ring_records_wrapped(&self) -> u64 {
        self.ring.wrapped_records()
    }

    pub fn status(&self) -> SensorStatus {
        self.status.clone()
    }

    /// The syscalls each cgroup entered since the sensor started, from the
    /// recorder's in-kernel bitmaps (empty unless [`SensorConfig::record_syscalls`]).
    pub fn syscall_sets(&self) -> Vec<(u64, SyscallSet)> {
        let map = &self.loaded.skel.maps.syscall_sets;
        let mut sets = Vec::new();
        for key in map.keys() {
            let Some(cgroup_id) = crate::maps::cgroup_key(&key) else {
                continue;
            };
            match map.lookup(&key, MapFlags::ANY) {
                Ok(Some(value)) => sets.push((cgroup_id, SyscallSet::from_bitmap(&value))),
                Ok(None) => {} // the entry went away between keys() and lookup()
                Err(e) => tracing::warn!(error = %e, cgroup_id, "reading a syscall set"),
            }
        }
        sets
    }

    /// Events whose process the kernel killed (in-kernel kill triggers).
    pub fn kernel_kills(&self) -> KernelKills {
        self.kernel_kills.clone()
    }

    /// Handles on the in-kernel kill maps, usable from any thread.
    pub fn kill_maps(&self) -> Result<KillMaps, SensorError> {
        let maps = &self.loaded.skel.maps;
        Ok(KillMaps {
            cgroups: map_handle("kill_cgroups", &maps.kill_cgroups)?,
            triggers: map_handle("kill_triggers", &maps.kill_triggers)?,
            protected: map_handle("kill_protected", &maps.kill_protected)?,
            count: map_handle("kill_count", &maps.kill_count)?,
            containers: map_handle("kill_containers", &maps.kill_containers)?,
            parent_names: map_handle("kill_parent_names", &maps.kill_parent_names)?,
            any: map_handle("kill_any", &maps.kill_any)?,
            armed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Handle on the in-kernel prefilter (event types and fields skipped in the kernel),
    /// usable from any thread.
    pub fn prefilter(&self) -> Result<crate::Prefilter, SensorError> {
        let maps = &self.loaded.skel.maps;
        Ok(crate::Prefilter::new(
            map_handle("skip_types", &maps.skip_types)?,
            map_handle("skip_fields", &maps.skip_fields)?,
        ))
    }

    /// Handles on the run-queue latency maps, usable from any thread.
    pub fn runq_maps(&self) -> Result<RunQueueMaps, SensorError> {
        let maps = &self.loaded.skel.maps;
        Ok(RunQueueMaps {
            latency: map_handle("runq_latency", &maps.runq_latency)?,
            full: map_handle("runq_full", &maps.runq_full)?,
        })
    }

    /// Handles on the per-container syscall counters (empty unless
    /// [`SensorConfig::syscall_counts`]), usable from any thread.
    pub fn syscall_count_maps(&self) -> Result<SyscallCountMaps, SensorError> {
        let maps = &self.loaded.skel.maps;
        Ok(SyscallCountMaps {
            counts: map_handle("syscall_counts", &maps.syscall_counts)?,
            full: map_handle("syscall_counts_full", &maps.syscall_counts_full)?,
        })
    }

    /// Handles on the per-container syscall latency histograms (empty unless
    /// [`SensorConfig::syscall_latency`]), usable from any thread.
    pub fn syscall_latency_maps(&self) -> Result<SyscallLatencyMaps, SensorError> {
        let maps = &self.loaded.skel.maps;
        Ok(SyscallLatencyMaps {
            latency: map_handle("syscall_latency", &maps.syscall_latency)?,
            full: map_handle("syscall_latency_full", &maps.syscall_latency_full)?,
            sample: maps.rodata_data.as_deref().map_or(1, |ro| ro.latency_sample),
        })
    }

    /// Number of attached hooks.
    pub fn attached_hooks(&self) -> usize {
        self.links.len()
    }
}

/// The cgroup id under which triggers for every container are armed
/// (`KILL_ANY_CONTAINER`; no cgroup has id 0).
const ANY_CONTAINER: u64 = 0;

/// The in-kernel kill maps (bpf/kill.h): which cgroups are armed with which
/// triggers, and the process names never killed. `Send + Sync`; the maps stay
/// valid while the sensor runs (and are emptied with it).
#[derive(Debug)]
pub struct KillMaps {
    cgroups: MapHandle,
    triggers: MapHandle,
    protected: MapHandle,
    count: MapHandle,
    /// Cgroups known to be containers' (for triggers armed for every container).
    containers: MapHandle,
    /// Top-level cgroup names whose children are containers.
    parent_names: MapHandle,
    /// How many triggers are armed for every container.
    any: MapHandle,
    /// What this handle put in the kernel: cgroup id -> trigger keys.
    armed: Mutex<BTreeMap<u64, Vec<Vec<u8>>>>,
}

/// Children of a top-level cgroup that the kernel takes for containers as
/// their cgroup is created (`KILL_PARENT_*` of bpf/kill.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerChildren {
    /// Named by 64 hex characters (`/docker/<id>`).
    Hex64,
    /// Named by a containerd id (`/<namespace>/<id>`).
    Named,
}

/// Longest top-level cgroup name the kernel compares (`KILL_NAME_KEY` - 2).
pub const KILL_PARENT_NAME_MAX: usize = 62;

impl KillMaps {
    fn map_err(name: &str) -> impl Fn(libbpf_rs::Error) -> SensorError + '_ {
        move |source| SensorError::Map { map: name.into(), source }
    }

    /// Makes `triggers` the set of one cgroup (an empty set disarms it).
    /// Triggers whose path cannot be reported exactly (see
    /// [`crate::kill::walk_form`]) are refused, naming the path.
    pub fn arm(&self, cgroup_id: u64, triggers: &[KillTrigger]) -> Result<(), SensorError> {
        let mut keys = Vec::with_capacity(triggers.len());
        for t in triggers {
            let walk = walk_form(&t.path).map_err(SensorError::Config)?;
            keys.push((key_bytes(cgroup_id, t.point, &walk), t.id));
        }
        if keys.is_empty() {
            self.disarm(cgroup_id);
            return Ok(());
        }
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        // New keys first, then the cgroup: the kernel never sees a half set
        // as armed for the first time.
        for (k, id) in &keys {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&id.to_ne_bytes());
            self.triggers.update(k, &v, MapFlags::ANY).map_err(Self::map_err("kill_triggers"))?;
        }
        self.cgroups
            .update(&cgroup_id.to_ne_bytes(), &(keys.len() as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(Self::map_err("kill_cgroups"))?;
        let new: Vec<Vec<u8>> = keys.into_iter().map(|(k, _)| k).collect();
        let old = armed.insert(cgroup_id, new.clone());
        self.publish(&armed)?;
        for k in old.iter().flatten().filter(|k| !new.contains(k)) {
            let _ = self.triggers.delete(k);
        }
        Ok(())
    }

    /// Removes every trigger of a cgroup.
    pub fn disarm(&self, cgroup_id: u64) {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        let old = armed.remove(&cgroup_id);
        if let Err(e) = self.publish(&armed) {
            tracing::warn!(error = %e, "updating the in-kernel kill summary");
        }
        let _ = self.cgroups.delete(&cgroup_id.to_ne_bytes());
        for k in old.unwrap_or_default() {
            let _ = self.triggers.delete(&k);
        }
    }

    /// Makes `triggers` the set armed for every container cgroup (those the
    /// kernel marked at creation and those [`KillMaps::mark_container`] marked);
    /// an empty set turns the container lookup off.
    pub fn arm_any_container(&self, triggers: &[KillTrigger]) -> Result<(), SensorError> {
        if triggers.is_empty() {
            self.disarm(ANY_CONTAINER);
            return Ok(());
        }
        let mut keys = Vec::with_capacity(triggers.len());
        for t in triggers {
            let walk = walk_form(&t.path).map_err(SensorError::Config)?;
            keys.push((key_bytes(ANY_CONTAINER, t.point, &walk), t.id));
        }
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        for (k, id) in &keys {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&id.to_ne_bytes());
            self.triggers.update(k, &v, MapFlags::ANY).map_err(Self::map_err("kill_triggers"))?;
        }
        let new: Vec<Vec<u8>> = keys.into_iter().map(|(k, _)| k).collect();
        let old = armed.insert(ANY_CONTAINER, new.clone());
        self.publish(&armed)?;
        for k in old.iter().flatten().filter(|k| !new.contains(k)) {
            let _ = self.triggers.delete(k);
        }
        Ok(())
    }

    /// Tells the kernel what is armed (`struct kill_armed`): how many
    /// triggers for every container and how many cgroups one by one. While
    /// both are 0 the open and exec programs skip the kill check at once.
    fn publish(&self, armed: &BTreeMap<u64, Vec<Vec<u8>>>) -> Result<(), SensorError> {
        let any = armed.get(&ANY_CONTAINER).map_or(0, Vec::len) as u32;
        let cgroups = armed.keys().filter(|&&c| c != ANY_CONTAINER).count() as u32;
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&any.to_ne_bytes());
        v[4..].copy_from_slice(&cgroups.to_ne_bytes());
        self.any.update(&0u32.to_ne_bytes(), &v, MapFlags::ANY).map_err(Self::map_err("kill_any"))
    }

    /// Marks a cgroup as a container's (the kernel marks most as they are
    /// created; this covers containers that existed before the sensor and
    /// names the kernel does not know).
    pub fn mark_container(&self, cgroup_id: u64) -> Result<(), SensorError> {
        self.containers
            .update(&cgroup_id.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(Self::map_err("kill_containers"))
    }

    pub fn unmark_container(&self, cgroup_id: u64) {
        let _ = self.containers.delete(&cgroup_id.to_ne_bytes());
    }

    /// Whether the kernel takes the cgroup for a container's.
    pub fn is_container(&self, cgroup_id: u64) -> bool {
        matches!(self.containers.lookup(&cgroup_id.to_ne_bytes(), MapFlags::ANY), Ok(Some(_)))
    }

    /// Adds top-level cgroup names whose children the kernel takes for
    /// containers when they are created. Longer names than
    /// [`KILL_PARENT_NAME_MAX`] are refused.
    pub fn add_container_parent(&self, name: &str, children: ContainerChildren) -> Result<(), SensorError> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > KILL_PARENT_NAME_MAX || b.contains(&0) || b.contains(&b'/') {
            return Err(SensorError::Config(format!("cgroup name {name:?} cannot be a container parent")));
        }
        let mut key = [0u8; KILL_PARENT_NAME_MAX + 2];
        key[..b.len()].copy_from_slice(b);
        let kind: u8 = match children {
            ContainerChildren::Hex64 => 1,
            ContainerChildren::Named => 2,
        };
        self.parent_names.update(&key, &[kind], MapFlags::ANY).map_err(Self::map_err("kill_parent_names"))
    }

    /// The armed cgroup ids.
    pub fn armed(&self) -> Vec<u64> {
        let armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        armed.keys().copied().filter(|&cg| cg != ANY_CONTAINER).collect()
    }

    /// Process names (comm, at most 15 bytes: longer names are cut as the
    /// kernel cuts comm) the kernel never kills.
    pub fn protect<S: AsRef<str>>(&self, names: &[S]) -> Result<(), SensorError> {
        for n in names {
            let mut key = [0u8; 16];
            let b = n.as_ref().as_bytes();
            let len = b.len().min(15);
            key[..len].copy_from_slice(&b[..len]);
            self.protected.update(&key, &[1], MapFlags::ANY).map_err(Self::map_err("kill_protected"))?;
        }
        Ok(())
    }

    /// SIGKILLs the kernel sent so far.
    pub fn kills_sent(&self) -> u64 {
        crate::maps::percpu_sum(&self.count, 0)
    }
}

/// The per-container syscall counters (bpf/syscalls.h). `Send + Sync`.
#[derive(Debug)]
pub struct SyscallCountMaps {
    counts: MapHandle,
    full: MapHandle,
}

impl SyscallCountMaps {
    /// Every cgroup's counts (cgroup v2 id, (x86_64 syscall number, count)
    /// for the numbers entered, ascending), by cgroup. Bounded by the map's
    /// size (1,024 slots of 4 KiB, read 64 at a time).
    pub fn read(&self) -> Vec<(u64, Vec<(u32, u64)>)> {
        match self.counts.lookup_batch(64, MapFlags::ANY, MapFlags::ANY) {
            Ok(slots) => {
                let values: Vec<Vec<u8>> = slots
                    .map(|(_, v)| v)
                    .filter(|v| crate::maps::cgroup_key(v).is_some_and(|cg| cg != 0))
                    .collect();
                crate::syscall_counts_by_cgroup(values.iter().map(Vec::as_slice))
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the syscall counts");
                Vec::new()
            }
        }
    }

    /// Free the slots of cgroups no longer wanted (gone containers), so that
    /// the kernel has room for new ones: counters and owner zeroed at once.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        let Ok(slots) = self.counts.lookup_batch(64, MapFlags::ANY, MapFlags::ANY) else {
            return;
        };
        let gone: Vec<Vec<u8>> = slots
            .filter(|(_, v)| crate::maps::cgroup_key(v).is_some_and(|cg| cg != 0 && !keep(cg)))
            .map(|(k, _)| k)
            .collect();
        let free = vec![0u8; self.counts.value_size() as usize];
        for key in gone {
            let _ = self.counts.update(&key, &free, MapFlags::ANY);
        }
    }

    /// Cgroups whose syscalls went uncounted because the table was full
    /// (one per syscall not counted).
    pub fn uncounted(&self) -> u64 {
        crate::maps::percpu_sum(&self.full, 0)
    }
}

/// The kernel's syscall latency histograms per (cgroup, syscall)
/// (bpf/syscall_latency.h).
#[derive(Debug)]
pub struct SyscallLatencyMaps {
    latency: MapHandle,
    full: MapHandle,
    sample: u32,
}

impl SyscallLatencyMaps {
    /// One syscall in this many of each task is timed
    /// ([`SensorConfig::syscall_latency_sample`]): the histograms count the
    /// timed ones.
    pub fn sample(&self) -> u32 {
        self.sample
    }

    /// Every (cgroup v2 id, native syscall number, histogram). Bounded by the
    /// map's size.
    pub fn read(&self) -> Vec<(u64, u32, crate::runq::RunQueueHistogram)> {
        let mut out = Vec::new();
        for key in self.latency.keys() {
            let (Some(cgroup), Some(nr)) = (
                crate::maps::cgroup_key(&key),
                key.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes),
            ) else {
                continue;
            };
            if let Ok(Some(v)) = self.latency.lookup(&key, MapFlags::ANY) {
                if let Some(raw) = crate::abi::read::<crate::abi::runq_hist>(&v) {
                    out.push((cgroup, nr, crate::runq::RunQueueHistogram::from_raw(&raw)));
                }
            }
        }
        out
    }

    /// Drop the histograms of cgroups no longer wanted (gone containers).
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        for (cgroup, nr, _) in self.read() {
            if !keep(cgroup) {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&cgroup.to_ne_bytes());
                key[8..12].copy_from_slice(&nr.to_ne_bytes());
                let _ = self.latency.delete(&key);
            }
        }
    }

    /// Syscalls not timed because the table was full.
    pub fn uncounted(&self) -> u64 {
        crate::maps::percpu_sum(&self.full, 0)
    }
}

/// The run-queue latency maps (bpf/sched.h). `Send + Sync`.
#[derive(Debug)]
pub struct RunQueueMaps {
    latency: MapHandle,
    full: MapHandle,
}

impl RunQueueMaps {
    /// Every cgroup's histogram (cgroup v2 id, waits). Bounded by the map's size.
    pub fn read(&self) -> Vec<(u64, crate::runq::RunQueueHistogram)> {
        let mut out = Vec::new();
        for key in self.latency.keys() {
            let Some(cgroup) = crate::maps::cgroup_key(&key) else {
                continue;
            };
            if let Ok(Some(v)) = self.latency.lookup(&key, MapFlags::ANY) {
                if let Some(raw) = crate::abi::read::<crate::abi::runq_hist>(&v) {
                    out.push((cgroup, crate::runq::RunQueueHistogram::from_raw(&raw)));
                }
            }
        }
        out
    }

    /// Drop the histograms of cgroups no longer wanted (gone containers), so
    /// that the kernel's table has room for new ones.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        for (cgroup, _) in self.read() {
            if !keep(cgroup) {
                let _ = self.latency.delete(&cgroup.to_ne_bytes());
            }
        }
    }

    /// Waits not counted because the table was full.
    pub fn uncounted(&self) -> u64 {
        crate::maps::percpu_sum(&self.full, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_program_is_found_in_log() {
        let log: Vec<String> = [
            "libbpf: prog 'exit_open': BPF program load failed: Permission denied",
            "0: R1=ctx() R10=fp0",
            "invalid access to map value, value_size=20552 off=20611 size=64",
            "R1 max value is outside of the allowed memory range",
            "processed 547 insns (limit 1000000)",
            "-- END PROG LOAD LOG --",
            "libbpf: prog 'exit_open': failed to load: -13",
            "libbpf: failed to load object 'sensor_bpf'",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (name, reason) = failing_program(&log).unwrap();
        assert_eq!(name, "exit_open");
        assert!(reason.contains("outside of the allowed memory range"), "{reason}");
        assert!(failing_program(&["nothing".into()]).is_none());
    }

    /// The sensor's syscall table (bpf/syscalls.h) against the x86_64 numbers
    /// generated from the kernel headers, and every syscall event type of
    /// bpf/events.h present in it (a type missing would never be reported).
    #[test]
    fn syscall_table_numbers_match_x86_64() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
        let table = std::fs::read_to_string(dir.join("syscalls.h")).unwrap();
        let events = std::fs::read_to_string(dir.join("events.h")).unwrap();
        let mut types = Vec::new();
        for line in table.lines().map(|l| l.trim().trim_end_matches('\\').trim_end()) {
            let Some(args) = line.strip_prefix("X(").and_then(|l| l.strip_suffix(')')) else { continue };
            let parts: Vec<&str> = args.split(',').map(str::trim).collect();
            let [nr, _tracepoint, name, ty, nargs] = parts[..] else { panic!("bad table line {line:?}") };
            let nr: u32 = nr.parse().unwrap();
            assert_eq!(seccomp::syscalls::number(seccomp::Arch::X86_64, name), Some(nr), "{line}");
            assert_eq!(ty, format!("EV_{}", name.to_uppercase()), "{line}");
            assert!(nargs.parse::<u32>().unwrap() <= 6, "{line}");
            types.push(ty.to_string());
        }
        // syscall event types: 10..=85 in enum ev_type
        let mut expected = Vec::new();
        for line in events.lines().map(str::trim) {
            let Some((name, value)) = line.trim_end_matches(',').split_once(" = ") else { continue };
            if let (true, Ok(v)) = (name.starts_with("EV_"), value.parse::<u32>()) {
                if (10..=85).contains(&v) {
                    expected.push(name.to_string());
                }
            }
        }
        types.sort();
        expected.sort();
        assert!(expected.len() > 40, "{expected:?}");
        assert_eq!(types, expected);
    }

    #[test]
    fn partners_and_ring_size() {
        assert_eq!(partner("enter_syscalls").as_deref(), Some("exit_syscalls"));
        assert_eq!(partner("exit_syscalls").as_deref(), Some("enter_syscalls"));
        assert_eq!(partner("on_exec"), None);
        assert_eq!(round_ring_size(0).unwrap(), 4096);
        assert_eq!(round_ring_size(5 << 20).unwrap(), 8 << 20);
        assert!(round_ring_size(2 << 30).is_err());
    }
}

/// A handle on one of the sensor's maps, usable from any thread.
fn map_handle(name: &str, m: &libbpf_rs::Map<'_>) -> Result<MapHandle, SensorError> {
    MapHandle::try_from(m).map_err(|source| SensorError::Map { map: name.into(), source })
}

//! The process table: who runs what, kept from a `/proc` scan at start and then
//! from fork/exec/exit events. Synchronous and pure (no async runtime).
//!
//! Use: [`ProcessTable::scan`] once, then for every event call
//! [`ProcessTable::apply`] (updates the table from fork/exec/exit) and
//! [`ProcessTable::enrich`] (fills `process.exe` and `process.cmdline`). Rules
//! look up parents with [`ProcessTable::ancestors`].
//!
//! Memory is bounded: exited processes are kept for a grace period (late events
//! and parent lookups still find them), and when the table is full exited
//! entries go first, then the oldest live ones. All of it is counted in
//! [`TableStats`].

pub mod dns;
pub mod procfs;
pub mod users;

use model::hash::FxBuild;
use model::{Event, EventKind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use tracing::{debug, warn};

/// Errors of the state crate; each carries the path that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed stat line")]
    BadStat { path: PathBuf },
    /// The table is fed from events only (`TableConfig::read_proc` is false,
    /// e.g. `rampart replay`): the local /proc describes another machine's
    /// processes, not the capture's.
    #[error("pid {pid}: not read from /proc (table fed from events only)")]
    ProcDisabled { pid: u32 },
}

pub use model::{ProcInfo, ProcSource};

/// Tunables and bounds of [`ProcessTable`].
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// procfs mount (tests point it elsewhere).
    pub proc_root: PathBuf,
    /// Most entries kept (live + exited).
    pub max_entries: usize,
    /// An exited process stays this long (event time) before it is removed.
    pub exit_grace_ns: u64,
    pub max_args: usize,
    pub max_arg_len: usize,
    /// Bound on the joined command line.
    pub max_cmdline_len: usize,
    /// Bytes read from `/proc/<pid>/cmdline`.
    pub max_cmdline_read: usize,
    /// Bound on [`ProcessTable::ancestors`].
    pub max_ancestors: usize,
    /// Bound on processes read lazily by `enrich` and not yet merged.
    pub max_lazy: usize,
    /// Whether the table may read `proc_root` at all (scan, lazy reads of
    /// unknown pids). False for a table rebuilt from a capture (`replay`): the
    /// local /proc is another machine's, and a pid in the capture that exists
    /// here would name a process that has nothing to do with it.
    pub read_proc: bool,
    /// Whether reads of /proc include the environment (`/proc/<pid>/environ`,
    /// bounded by `max_env_read`): set when a loaded rule uses `proc.env`.
    pub read_env: bool,
    /// Bytes read from `/proc/<pid>/environ`.
    pub max_env_read: usize,
    /// Most environment variables kept per process.
    pub max_env_vars: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            proc_root: PathBuf::from("/proc"),
            max_entries: 65_536,
            exit_grace_ns: 10_000_000_000,
            max_args: 256,
            max_arg_len: 4096,
            max_cmdline_len: 4096,
            max_cmdline_read: 16 * 1024,
            max_ancestors: 64,
            max_lazy: 4096,
            read_proc: true,
            read_env: false,
            max_env_read: procfs::MAX_ENV_READ,
            max_env_vars: procfs::MAX_ENV_VARS,
        }
    }
}

/// Counters of [`ProcessTable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableStats {
    pub entries: usize,
    pub live: usize,
    pub exited: usize,
    /// Processes read by the start-up scan.
    pub scanned: u64,
    /// Processes the scan could not read (vanished, EPERM).
    pub scan_skipped: u64,
    pub forks: u64,
    pub execs: u64,
    pub exits: u64,
    /// Forks whose parent was not in the table (and could not be read).
    pub unknown_parent_forks: u64,
    /// `/proc/<pid>` reads for pids missing from the table.
    pub lazy_reads: u64,
    /// Of those, how many failed (process gone or unreadable, or /proc
    /// reads turned off).
    pub lazy_read_failures: u64,
    /// Reads of /proc that were refused because the table is fed from events
    /// only (`read_proc` false); what a replay test checks stays 0 reads.
    pub proc_reads_refused: u64,
    /// Exited entries removed after their grace period.
    pub removed_exited: u64,
    /// Exited entries removed before their grace period because the table was full.
    pub evicted_exited: u64,
    /// Live entries evicted because the table was full of live processes.
    pub evicted_live: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    info: ProcInfo,
    /// Insertion order, for eviction and for telling a reused pid from its
    /// predecessor in the exited queue.
    seq: u64,
}

#[derive(Default)]
struct Lazy {
    found: HashMap<u32, ProcInfo>,
    /// pids whose read failed, with the table time of the failure.
    failed: HashMap<u32, u64>,
}

/// How long a failed lazy read is remembered (table time).
const LAZY_FAILURE_TTL_NS: u64 = 1_000_000_000;

/// The process table. `Send + Sync`; mutation needs `&mut`.
pub struct ProcessTable {
    config: TableConfig,
    /// By pid. FxHash: looked up several times per event, and the keys are
    /// pids the kernel hands out (a container cannot choose them), in a
    /// table of bounded size.
    procs: HashMap<u32, Entry, FxBuild>,
    /// (pid, seq) in exit order.
    exited: VecDeque<(u32, u64)>,
    next_seq: u64,
    /// Latest event time seen: the table's clock.
    now_ns: u64,
    stats: TableStats,
    lazy: Mutex<Lazy>,
    lazy_reads: AtomicU64,
    lazy_failures: AtomicU64,
    proc_refused: AtomicU64,
    boot: OnceLock<(u64, u64)>,
    /// What each container resolved (fd.sip.name and friends).
    dns: dns::DnsNames,
}

impl std::fmt::Debug for ProcessTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTable").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Default for ProcessTable {
    fn default() -> Self {
        Self::new(TableConfig::default())
    }
}

impl ProcessTable {
    /// An empty table.
    pub fn new(config: TableConfig) -> Self {
        ProcessTable {
            config,
            procs: HashMap::default(),
            exited: VecDeque::new(),
            next_seq: 0,
            now_ns: 0,
            stats: TableStats::default(),
            lazy: Mutex::new(Lazy::default()),
            lazy_reads: AtomicU64::new(0),
            lazy_failures: AtomicU64::new(0),
            proc_refused: AtomicU64::new(0),
            boot: OnceLock::new(),
            dns: dns::DnsNames::default(),
        }
    }

    /// An empty table fed only from events, never from /proc: what `replay`
    /// rebuilds lineage with from a capture.
    pub fn events_only() -> Self {
        Self::new(TableConfig { read_proc: false, ..TableConfig::default() })
    }

    /// A table filled from a scan of `config.proc_root`. Processes that vanish or
    /// cannot be read are skipped and counted; only an unreadable procfs fails.
    /// With `read_proc` off, the table stays empty.
    pub fn scan(config: TableConfig) -> Result<Self, Error> {
        let mut t = Self::new(config);
        if !t.config.read_proc {
            return Ok(t);
        }
        let pids = procfs::list_pids(&t.config.proc_root)?;
        let (boot, ticks) = t.boot();
        for pid in pids {
            match procfs::read_process(&t.config.proc_root, pid, &t.config, boot, ticks) {
                Ok(info) => {
                    t.insert(info);
                    t.stats.scanned += 1;
                }
                Err(e) => {
                    t.stats.scan_skipped += 1;
                    debug!(pid, error = %e, "skipping process in /proc scan");
                }
            }
        }
        debug!(scanned = t.stats.scanned, skipped = t.stats.scan_skipped, "process table scanned");
        Ok(t)
    }

    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    fn boot(&self) -> (u64, u64) {
        *self.boot.get_or_init(|| {
            (procfs::boot_time_ns(&self.config.proc_root).unwrap_or(0), procfs::clock_ticks_per_sec())
        })
    }

    /// Read one process from procfs now (refused when `read_proc` is off).
    pub fn read_proc(&self, pid: u32) -> Result<ProcInfo, Error> {
        if !self.config.read_proc {
            self.proc_refused.fetch_add(1, Ordering::Relaxed);
            return Err(Error::ProcDisabled { pid });
        }
        let (boot, ticks) = self.boot();
        procfs::read_process(&self.config.proc_root, pid, &self.config, boot, ticks)
    }

    /// Insert or replace a process.
    pub fn insert(&mut self, info: ProcInfo) {
        if !self.procs.contains_key(&info.pid) && self.procs.len() >= self.config.max_entries {
            self.make_room();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if info.exited_at_ns.is_some() {
            self.exited.push_back((info.pid, seq));
        }
        self.procs.insert(info.pid, Entry { info, seq });
    }

    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid).map(|e| &e.info)
    }

    pub fn parent(&self, pid: u32) -> Option<&ProcInfo> {
        let ppid = self.get(pid)?.ppid;
        if ppid == 0 || ppid == pid {
            return None;
        }
        self.get(ppid)
    }

    /// The parent chain of `pid`, nearest first (`[parent, grandparent, ...]`),
    /// stopping at pid 0, at a process not in the table, at a loop, or after
    /// `max_ancestors`.
    pub fn ancestors(&self, pid: u32) -> Vec<&ProcInfo> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        seen.insert(pid);
        let mut cur = pid;
        while out.len() < self.config.max_ancestors {
            let Some(ppid) = self.get(cur).map(|p| p.ppid) else { break };
            if ppid == 0 || !seen.insert(ppid) {
                break;
            }
            let Some(parent) = self.get(ppid) else { break };
            out.push(parent);
            cur = ppid;
        }
        out
    }

    /// Live processes.
    pub fn processes(&self) -> impl Iterator<Item = &ProcInfo> {
        self.procs.values().map(|e| &e.info).filter(|p| p.is_alive())
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn stats(&self) -> TableStats {
        let exited = self.procs.values().filter(|e| !e.info.is_alive()).count();
        TableStats {
            entries: self.procs.len(),
            live: self.procs.len() - exited,
            exited,
            lazy_reads: self.lazy_reads.load(Ordering::Relaxed),
            lazy_read_failures: self.lazy_failures.load(Ordering::Relaxed),
            proc_reads_refused: self.proc_refused.load(Ordering::Relaxed),
            ..self.stats.clone()
        }
    }

    /// The syscall event types (`evt.type` names) [`Self::apply`] reads
    /// beyond fork, exec and exit: an in-kernel prefilter keeps them whatever
    /// the rules use.
    pub const EVENT_TYPES_READ: &'static [&'static str] = &["socket", "accept", "accept4", "capset"];

    /// Update the table from an event: fork adds the child (inheriting the
    /// parent's exe, argv and cwd), exec replaces them, exit marks the process
    /// exited (removed after the grace period). Any event also refreshes the
    /// parent pid (reparenting). Failed syscalls change nothing.
    pub fn apply(&mut self, ev: &Event) {
        self.now_ns = self.now_ns.max(ev.ts_ns);
        self.merge_lazy();
        let p = &ev.process;
        if p.ppid != 0 && p.ppid != p.pid {
            if let Some(e) = self.procs.get_mut(&p.pid) {
                if e.info.is_alive() {
                    e.info.ppid = p.ppid;
                }
            }
        }
        match &ev.kind {
            EventKind::Dns { .. } => self.dns.observe(ev),
            EventKind::Fork { child_pid, thread, .. } if !*thread && !ev.failed() && *child_pid != 0 => {
                self.stats.forks += 1;
                self.on_fork(ev, *child_pid);
            }
            EventKind::Exec { .. } if !ev.failed() => {
                self.stats.execs += 1;
                self.on_exec(ev);
            }
            // Which fds are sockets of which protocol (fd.l4proto on connect and bind).
            EventKind::Socket { domain, sock_type, .. } => {
                if let (Some(proto), Some(fd)) =
                    (model::l4proto(*domain, *sock_type), ev.ret.and_then(|r| i32::try_from(r).ok()))
                {
                    if fd >= 0 {
                        if let Some(e) = self.procs.get_mut(&p.pid) {
                            e.info.set_socket(fd, proto);
                        }
                    }
                }
            }
            // An accepted connection has its listening socket's protocol.
            EventKind::Accept { fd, .. } => {
                if let Some(new_fd) = ev.ret.and_then(|r| i32::try_from(r).ok()).filter(|r| *r >= 0) {
                    if let Some(e) = self.procs.get_mut(&p.pid) {
                        let proto = e.info.socket_proto(i64::from(*fd)).unwrap_or("tcp");
                        e.info.set_socket(new_fd, proto);
                    }
                }
            }
            // capset changes the calling thread's sets; the table keeps them
            // per process (the last one wins).
            EventKind::Capset { effective, permitted, inheritable } if !ev.failed() => {
                if let Some(e) = self.procs.get_mut(&p.pid) {
                    e.info.caps = Some(model::Caps {
                        effective: *effective,
                        permitted: *permitted,
                        inheritable: Some(*inheritable),
                    });
                }
            }
            // A thread's exit (tid != pid) is not the process's.
            EventKind::Exit { .. } if p.tid == 0 || p.tid == p.pid => {
                self.stats.exits += 1;
                if let Some(e) = self.procs.get_mut(&p.pid) {
                    if e.info.exited_at_ns.is_none() {
                        e.info.exited_at_ns = Some(ev.ts_ns);
                        self.exited.push_back((p.pid, e.seq));
                    }
                }
            }
            _ => {}
        }
        self.remove_expired();
    }

    fn on_fork(&mut self, ev: &Event, child: u32) {
        let p = &ev.process;
        if !self.procs.contains_key(&p.pid) {
            self.lazy_reads.fetch_add(1, Ordering::Relaxed);
            match self.read_proc(p.pid) {
                Ok(info) => self.insert(info),
                Err(e) => {
                    self.lazy_failures.fetch_add(1, Ordering::Relaxed);
                    debug!(pid = p.pid, error = %e, "fork from a parent not in the table");
                }
            }
        }
        let info = match self.get(p.pid) {
            Some(parent) => ProcInfo {
                pid: child,
                ppid: p.pid,
                comm: parent.comm.clone(),
                exe: parent.exe.clone(),
                argv: parent.argv.clone(),
                cmdline: parent.cmdline.clone(),
                cwd: parent.cwd.clone(),
                start_time_ns: ev.ts_ns,
                exited_at_ns: None,
                source: ProcSource::Event,
                // fork copies the session, process group, capability sets and
                // environment; the executable is the same file.
                sid: parent.sid,
                pgid: parent.pgid,
                caps: parent.caps,
                env: parent.env.clone(),
                exe_ctime_ns: parent.exe_ctime_ns,
                exe_mtime_ns: parent.exe_mtime_ns,
                // the child gets copies of the parent's fds
                sockets: parent.sockets.clone(),
                tty: parent.tty,
                exe_upper_layer: parent.exe_upper_layer,
            },
            None => {
                self.stats.unknown_parent_forks += 1;
                ProcInfo {
                    pid: child,
                    ppid: p.pid,
                    comm: p.comm.clone(),
                    exe: p.exe.clone(),
                    argv: Vec::new().into(),
                    cmdline: p.cmdline.clone(),
                    cwd: procfs::empty_arc_str(),
                    start_time_ns: ev.ts_ns,
                    exited_at_ns: None,
                    source: ProcSource::Event,
                    ..ProcInfo::default()
                }
            }
        };
        self.insert(info);
    }

    fn on_exec(&mut self, ev: &Event) {
        let EventKind::Exec {
            filename,
            exe,
            argv,
            cwd,
            cap_effective,
            cap_permitted,
            details,
            tty,
            exe_upper_layer,
            ..
        } = &ev.kind
        else {
            return;
        };
        let details = details.as_deref();
        let p = &ev.process;
        let cfg = &self.config;
        let argv: Vec<String> =
            argv.iter().take(cfg.max_args).map(|a| procfs::truncate(a.clone(), cfg.max_arg_len)).collect();
        let cmdline = procfs::join_cmdline(&argv, cfg.max_cmdline_len);
        let exe: &str = if exe.is_empty() { filename } else { exe };
        let (ppid, start, old_cwd) = match self.get(p.pid) {
            Some(old) => (if p.ppid != 0 { p.ppid } else { old.ppid }, old.start_time_ns, old.cwd.clone()),
            None => (p.ppid, ev.ts_ns, procfs::empty_arc_str()),
        };
        let old = self.get(p.pid);
        let sid = details.and_then(|d| d.sid).or(old.map(|o| o.sid)).unwrap_or(0);
        let pgid = details.and_then(|d| d.pgid).or(old.map(|o| o.pgid)).unwrap_or(0);
        let inheritable =
            details.and_then(|d| d.cap_inheritable).or(old.and_then(|o| o.caps).and_then(|c| c.inheritable));
        let caps = model::Caps { effective: *cap_effective, permitted: *cap_permitted, inheritable };
        // exec replaces the environment: known only if the agent read it now.
        let env = details
            .and_then(|d| d.env.as_ref())
            .map(|e| e.iter().take(cfg.max_env_vars).cloned().collect::<Vec<_>>().into());
        let info = ProcInfo {
            pid: p.pid,
            ppid,
            comm: p.comm.clone(),
            exe: exe.into(),
            argv: argv.into(),
            cmdline: cmdline.into(),
            cwd: if cwd.is_empty() { old_cwd } else { (&**cwd).into() },
            start_time_ns: start,
            exited_at_ns: None,
            source: ProcSource::Event,
            sid,
            pgid,
            caps: Some(caps),
            env,
            exe_ctime_ns: details.and_then(|d| d.exe_ctime_ns),
            exe_mtime_ns: details.and_then(|d| d.exe_mtime_ns),
            // fds survive exec (close-on-exec ones excepted, which we cannot tell)
            sockets: old.map(|o| o.sockets.clone()).unwrap_or_default(),
            tty: Some(tty.as_deref().map(model::tty_nr).unwrap_or(0)),
            exe_upper_layer: *exe_upper_layer,
        };
        self.insert(info);
    }

    /// Turn reading the environment on or off (a loaded rule uses `proc.env`).
    pub fn set_read_env(&mut self, on: bool) {
        self.config.read_env = on;
    }

    /// On an exec that succeeded, read what the record lacks from /proc while
    /// the process still runs, into the event's `details`, where `apply` takes
    /// them for the table (and a capture keeps them for `replay`): the
    /// environment when `read_env` is on (a rule uses `proc.env`), and, only
    /// for a record without them (the sensor fills them in the kernel), the
    /// session and group ids, inheritable capabilities and the executable's
    /// inode times. Nothing is read with `read_proc` off. A process already
    /// gone leaves what was missing empty.
    pub fn read_exec_details(&self, ev: &mut Event) {
        if !self.config.read_proc || ev.failed() {
            return;
        }
        let pid = ev.process.pid;
        let root = &self.config.proc_root;
        let EventKind::Exec { exe, filename, details, .. } = &mut ev.kind else { return };
        let mut d = details.take().map(|d| *d).unwrap_or_default();
        if d.cap_inheritable.is_none() {
            let (stat, caps) = procfs::read_ids_and_caps(root, pid);
            d.sid = d.sid.or(stat.as_ref().map(|s| s.session));
            d.pgid = d.pgid.or(stat.as_ref().map(|s| s.pgrp));
            d.cap_inheritable = caps.and_then(|c| c.inheritable);
            let exe: &str = if exe.is_empty() { filename } else { exe };
            if let Some((ctime, mtime)) = procfs::exe_times(root, pid, exe) {
                d.exe_ctime_ns = Some(ctime);
                d.exe_mtime_ns = Some(mtime);
            }
        }
        if self.config.read_env && d.env.is_none() {
            d.env = procfs::read_environ(root, pid, self.config.max_env_read, self.config.max_env_vars);
        }
        if d != model::ExecDetails::default() {
            *details = Some(Box::new(d));
        }
    }

    /// Fill `ev.process.exe` and `ev.process.cmdline` from the table. A pid not in
    /// the table is read from `/proc` (counted in `lazy_reads`), kept aside and
    /// merged into the table by the next `apply`.
    pub fn enrich(&self, ev: &mut Event) {
        let pid = ev.process.pid;
        if let Some(info) = self.get(pid) {
            fill(ev, info);
            return;
        }
        let mut lazy = self.lazy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(info) = lazy.found.get(&pid) {
            fill(ev, info);
            return;
        }
        let now = self.now_ns.max(ev.ts_ns);
        if lazy.failed.get(&pid).is_some_and(|at| now.saturating_sub(*at) < LAZY_FAILURE_TTL_NS) {
            return;
        }
        self.lazy_reads.fetch_add(1, Ordering::Relaxed);
        match self.read_proc(pid) {
            Ok(info) => {
                fill(ev, &info);
                if lazy.found.len() >= self.config.max_lazy {
                    warn!(max = self.config.max_lazy, "lazily read processes not merged; dropping them");
                    lazy.found.clear();
                }
                lazy.found.insert(pid, info);
            }
            Err(_) => {
                self.lazy_failures.fetch_add(1, Ordering::Relaxed);
                if lazy.failed.len() >= self.config.max_lazy {
                    lazy.failed.clear();
                }
                lazy.failed.insert(pid, now);
            }
        }
    }

    fn merge_lazy(&mut self) {
        let lazy = self.lazy.get_mut().unwrap_or_else(|e| e.into_inner());
        if lazy.found.is_empty() && lazy.failed.is_empty() {
            return;
        }
        let found: Vec<ProcInfo> = lazy.found.drain().map(|(_, v)| v).collect();
        let now = self.now_ns;
        lazy.failed.retain(|_, at| now.saturating_sub(*at) < LAZY_FAILURE_TTL_NS);
        for info in found {
            if !self.procs.contains_key(&info.pid) {
                self.insert(info);
            }
        }
    }

    /// Advance the table's clock to `now_ns` (wall clock, as events' `ts_ns`)
    /// and remove exited entries past their grace period. The live pipeline
    /// calls it on its tick: without events (a quiet host after a burst of
    /// short-lived processes) event time stands still and nothing would expire.
    pub fn expire(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        self.remove_expired();
        // A burst grew the tables; give the room back once it is mostly empty.
        if self.procs.capacity() > 1024 && self.procs.len() < self.procs.capacity() / 4 {
            self.procs.shrink_to(self.procs.len() * 2);
        }
        if self.exited.capacity() > 1024 && self.exited.len() < self.exited.capacity() / 4 {
            self.exited.shrink_to(self.exited.len() * 2);
        }
    }

    /// Remove exited entries whose grace period is over.
    fn remove_expired(&mut self) {
        let grace = self.config.exit_grace_ns;
        while let Some(&(pid, seq)) = self.exited.front() {
            match self.procs.get(&pid) {
                Some(e) if e.seq == seq => match e.info.exited_at_ns {
                    Some(at) if self.now_ns.saturating_sub(at) >= grace => {
                        self.procs.remove(&pid);
                        self.stats.removed_exited += 1;
                        self.exited.pop_front();
                    }
                    Some(_) => break,
                    None => {
                        self.exited.pop_front();
                    }
                },
                // Stale: the pid was removed or reused since.
                _ => {
                    self.exited.pop_front();
                }
            }
        }
        // Stale records can pile up behind a young one; keep the queue bounded.
        if self.exited.len() > 2 * self.config.max_entries.max(16) {
            let procs = &self.procs;
            self.exited
                .retain(|(pid, seq)| procs.get(pid).is_some_and(|e| e.seq == *seq && !e.info.is_alive()));
        }
    }

    /// Make room for one more entry: expired exited ones, then any exited ones
    /// (oldest exit first), then the oldest live ones (a batch, to amortise).
    fn make_room(&mut self) {
        self.remove_expired();
        let max = self.config.max_entries;
        while self.procs.len() >= max {
            let Some((pid, seq)) = self.exited.pop_front() else { break };
            if self.procs.get(&pid).is_some_and(|e| e.seq == seq && !e.info.is_alive()) {
                self.procs.remove(&pid);
                self.stats.evicted_exited += 1;
            }
        }
        if self.procs.len() >= max {
            let batch = (max / 16).max(1);
            let mut seqs: Vec<(u64, u32)> = self.procs.values().map(|e| (e.seq, e.info.pid)).collect();
            let n = batch.min(seqs.len());
            if n > 0 && n < seqs.len() {
                seqs.select_nth_unstable(n - 1);
            }
            for &(_, pid) in seqs.iter().take(n) {
                self.procs.remove(&pid);
            }
            self.stats.evicted_live += n as u64;
            warn!(evicted = n, max, "process table full of live processes; evicted the oldest");
        }
    }
}

fn fill(ev: &mut Event, info: &ProcInfo) {
    if !info.exe.is_empty() {
        ev.process.exe = info.exe.clone();
    }
    if !info.cmdline.is_empty() {
        ev.process.cmdline = info.cmdline.clone();
    }
}

#[cfg(test)]
mod tests;

impl model::ProcessLookup for ProcessTable {
    fn process(&self, pid: u32) -> Option<&ProcInfo> {
        self.get(pid)
    }

    fn dns_name(&self, cgroup_id: u64, ip: std::net::IpAddr, at_ns: u64) -> Option<&str> {
        self.dns.lookup(cgroup_id, ip, at_ns)
    }
}

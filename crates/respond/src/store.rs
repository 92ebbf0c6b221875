//! The source of truth of network policies and isolation: one JSON file per
//! container id in a store directory (default /var/lib/rampart/netpolicy),
//! applied to the kernel (see [`crate::kernel`]) on the container's current
//! cgroup.
//!
//! A container's cgroup, and so its cgroup id, changes when it restarts: the
//! kernel state is keyed by cgroup id, the store by container id, and
//! [`NetPolicyStore::reconcile`] maps one to the other again (the agent calls it
//! at start, when a container starts, and periodically). Every mutation holds
//! an exclusive lock on `<store>/.lock`, so the CLI and the agent never write
//! the maps at the same time.

use crate::abi;
use crate::kernel::{self, NetKernel};
use crate::policy::NetPolicy;
use crate::target::{private_netns, CgroupRef, Target};
use crate::Error;
use model::{Container, Runtime};
use runtime::cgroupfs::find_cgroup2_mount;
use runtime::{Discovered, FindError, RuntimeEndpoints, Runtimes};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const DEFAULT_STORE_DIR: &str = "/var/lib/rampart/netpolicy";
/// Environment variable overriding [`DEFAULT_STORE_DIR`] (tests use their own).
pub const STORE_DIR_ENV: &str = "RAMPART_NETPOLICY_DIR";

/// Where the store, the pins and the runtimes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub pin_dir: PathBuf,
    /// The runtimes containers are looked up in (every runtime's, so a policy
    /// follows a containerd or podman container as it does a Docker one).
    pub endpoints: RuntimeEndpoints,
}

impl Default for StoreConfig {
    /// The directories from the environment (`RAMPART_NETPOLICY_DIR`,
    /// `RAMPART_NETPOLICY_PIN`) or their defaults, every runtime at its usual
    /// socket.
    fn default() -> Self {
        StoreConfig {
            dir: std::env::var_os(STORE_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| DEFAULT_STORE_DIR.into()),
            pin_dir: kernel::pin_dir(),
            endpoints: RuntimeEndpoints::default(),
        }
    }
}

/// What is stored for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub container_id: String,
    #[serde(default)]
    pub container_name: String,
    /// The runtime that runs it: a record is only dropped as gone when that
    /// runtime says so, never because it is not configured here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<NetPolicy>,
    #[serde(default)]
    pub isolated: bool,
    /// The container's cgroup v2 path when last enforced: used to find its
    /// cgroup when the runtime does not answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_path: String,
    #[serde(default)]
    pub updated_unix: u64,
}

impl Record {
    fn new(t: &Target) -> Record {
        Record {
            container_id: t.id.clone(),
            container_name: t.name.clone(),
            runtime: t.runtime,
            policy: None,
            isolated: false,
            cgroup_path: String::new(),
            updated_unix: 0,
        }
    }

    /// Whether anything is to be enforced.
    pub fn active(&self) -> bool {
        self.policy.is_some() || self.isolated
    }

    pub fn label(&self) -> String {
        let short = &self.container_id[..self.container_id.len().min(12)];
        if self.container_name.is_empty() {
            short.to_string()
        } else {
            format!("{} ({short})", self.container_name)
        }
    }

    /// Whether `query` names this record's container (name, or id prefix).
    pub fn matches(&self, query: &str) -> bool {
        let q = query.trim_start_matches('/');
        !q.is_empty() && (self.container_name == q || self.container_id.starts_with(q))
    }
}

/// The outcome of enforcing one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enforced {
    pub container_id: String,
    pub container_name: String,
    /// The cgroup the programs are attached to; `None` when the container does
    /// not run (the policy is stored and enforced when it starts).
    pub cgroup: Option<CgroupRef>,
    pub isolated: bool,
    pub has_policy: bool,
}

/// What [`NetPolicyStore::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// The pins were (re)created (first use, or another build's state).
    pub recreated: bool,
    pub enforced: Vec<Enforced>,
    /// Stored containers that do not run now.
    pub not_running: Vec<String>,
    /// Records dropped because their container no longer exists.
    pub forgotten: Vec<String>,
    /// Cgroups detached because no stored container lives there any more.
    pub detached: Vec<u64>,
    /// Per-container failures (the others were still enforced).
    pub errors: Vec<String>,
}

/// A stored container as `rampart netpolicy show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub record: Record,
    /// The cgroup id of the stored cgroup path, when that cgroup exists.
    pub cgroup_id: Option<u64>,
    /// Hooks attached to that cgroup (8 when fully enforced).
    pub attached_hooks: usize,
    /// Policy generation and flags in the kernel map.
    pub kernel_flags: Option<u32>,
    pub denied: BTreeMap<&'static str, u64>,
}

/// The kernel ops, in `np_op` order.
pub const OPS: [&str; abi::OP_MAX] = ["connect", "sendmsg", "bind", "ingress", "egress"];

/// The stored policies and the kernel state that enforces them.
pub struct NetPolicyStore {
    cfg: StoreConfig,
    runtimes: Runtimes,
}

impl std::fmt::Debug for NetPolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPolicyStore").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// An exclusive `flock` on the store, released on drop.
struct StoreLock(File);

impl Drop for StoreLock {
    fn drop(&mut self) {
        // SAFETY: flock on an fd we own; unlocking cannot break anything.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl NetPolicyStore {
    pub fn new(cfg: StoreConfig) -> Self {
        let runtimes = Runtimes::from_endpoints(&cfg.endpoints);
        NetPolicyStore { cfg, runtimes }
    }

    /// A store that looks containers up in `runtimes` (the agent's registry
    /// clients) instead of clients of its own for `cfg.endpoints`.
    pub fn with_runtimes(cfg: StoreConfig, runtimes: Runtimes) -> Self {
        NetPolicyStore { cfg, runtimes }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    fn store_err(&self, path: &Path, message: impl Into<String>) -> Error {
        Error::Store { path: path.to_path_buf(), message: message.into() }
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.cfg.dir).map_err(|source| Error::Io {
            what: "creating store",
            path: self.cfg.dir.clone(),
            source,
        })
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        self.ensure_dir()?;
        let path = self.cfg.dir.join(".lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { what: "opening lock", path: path.clone(), source })?;
        // SAFETY: flock on an fd we own; blocks until the other holder is done.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::Io { what: "locking", path, source: std::io::Error::last_os_error() });
        }
        Ok(StoreLock(f))
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.cfg.dir.join(format!("{id}.json"))
    }

    /// The record of a container id, if stored.
    pub fn load(&self, id: &str) -> Result<Option<Record>, Error> {
        if !valid_id(id) {
            return Ok(None);
        }
        let path = self.record_path(id);
        let text = match model::input::read_text(&path, model::input::limits::NETPOLICY) {
            Ok(t) => t,
            Err(model::input::InputError::Open { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        let rec: Record = serde_json::from_str(&text)
            .map_err(|e| self.store_err(&path, format!("{}:{}: {e}", e.line(), e.column())))?;
        if rec.container_id != id {
            return Err(self.store_err(&path, format!("holds container {}", rec.container_id)));
        }
        Ok(Some(rec))
    }

    /// Every stored record, by container id. A file that cannot be read is
    /// reported, not skipped silently.
    pub fn records(&self) -> Result<Vec<Record>, Error> {
        let rd = match std::fs::read_dir(&self.cfg.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Io { what: "listing", path: self.cfg.dir.clone(), source }),
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .filter(|id| valid_id(id))
            .collect();
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.load(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn save(&self, rec: &Record) -> Result<(), Error> {
        if !valid_id(&rec.container_id) {
            return Err(self.store_err(&self.cfg.dir, format!("invalid container id {:?}", rec.container_id)));
        }
        self.ensure_dir()?;
        let path = self.record_path(&rec.container_id);
        let tmp = path.with_extension("json.tmp");
        let mut rec = rec.clone();
        rec.updated_unix = now_unix();
        let text = serde_json::to_string_pretty(&rec).map_err(|e| self.store_err(&path, e.to_string()))?;
        std::fs::write(&tmp, text + "\n").map_err(|source| Error::Io {
            what: "writing",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io { what: "renaming", path, source })
    }

    fn delete(&self, id: &str) -> Result<(), Error> {
        let path = self.record_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { what: "removing", path, source }),
        }
    }

    /// A stored record by container name or id prefix (unique).
    pub fn find_record(&self, query: &str) -> Result<Option<Record>, Error> {
        let recs = self.records()?;
        let q = query.trim_start_matches('/');
        if let Some(r) = recs.iter().find(|r| r.container_id == q || r.container_name == q) {
            return Ok(Some(r.clone()));
        }
        let mut m = recs.into_iter().filter(|r| r.matches(q));
        let first = m.next();
        Ok(if m.next().is_some() { None } else { first })
    }

    /// The running container named by `query`, through the runtimes.
    pub async fn resolve(&self, query: &str) -> Result<Target, Error> {
        Target::resolve(&self.runtimes, query).await
    }

    /// The runtimes' answer about a stored container. A record whose runtime
    /// has no client here counts as unreachable, never as gone.
    async fn inspect_record(&self, rec: &Record) -> Result<Discovered, runtime::Error> {
        if let Some(r) = rec.runtime {
            if !self.runtimes.clients().iter().any(|c| c.runtime() == r || c.handles(r)) {
                return Err(runtime::Error::NoClient { id: rec.container_id.clone() });
            }
        }
        self.runtimes.inspect(&rec.container_id).await
    }

    /// Open the kernel state (creating it if needed); when it was recreated,
    /// enforce every stored record again from its stored cgroup path.
    fn kernel_locked(&self, skip: Option<&str>) -> Result<NetKernel, Error> {
        let k = NetKernel::open_or_create(&self.cfg.pin_dir)?;
        if k.created {
            tracing::info!(dir = %self.cfg.pin_dir.display(), "netpolicy pins created: enforcing every stored policy");
            let root = find_cgroup2_mount().ok();
            for mut rec in self.records()? {
                if Some(rec.container_id.as_str()) == skip || !rec.active() || rec.cgroup_path.is_empty() {
                    continue;
                }
                let Some(cg) = root.as_deref().and_then(|r| CgroupRef::at(r, &rec.cgroup_path).ok()) else {
                    continue;
                };
                let private = cg.any_pid().and_then(private_netns);
                if let Err(e) = enforce_record(&k, &mut rec, &cg, private) {
                    tracing::warn!(container = %rec.label(), error = %e, "re-enforcing stored policy failed");
                }
            }
        }
        Ok(k)
    }

    /// Store `rec` (changed by `change`) for target `t` and enforce it on the
    /// target's cgroup when it runs.
    fn update_locked(&self, t: &Target, change: impl FnOnce(&mut Record)) -> Result<Enforced, Error> {
        let mut rec = self.load(&t.id)?.unwrap_or_else(|| Record::new(t));
        if !t.name.is_empty() {
            rec.container_name = t.name.clone();
        }
        if t.runtime.is_some() {
            rec.runtime = t.runtime;
        }
        change(&mut rec);
        let mut cgroup = None;
        if let Some(cg) = &t.cgroup {
            let k = self.kernel_locked(Some(&t.id))?;
            for dead in k.prune_defunct()? {
                tracing::debug!(cgroup = dead, "detached the links of a cgroup that is gone");
            }
            if rec.active() {
                enforce_record(&k, &mut rec, cg, t.private_netns)?;
            } else {
                k.detach(cg.id)?;
                k.remove_policy(cg.id)?;
            }
            cgroup = Some(cg.clone());
        }
        if rec.active() {
            self.save(&rec)?;
        } else {
            self.delete(&rec.container_id)?;
        }
        Ok(Enforced {
            container_id: rec.container_id.clone(),
            container_name: rec.container_name.clone(),
            cgroup: cgroup.filter(|_| rec.active()),
            isolated: rec.isolated,
            has_policy: rec.policy.is_some(),
        })
    }

    /// Store and enforce `policy` for the container named by `query`. A
    /// container that does not run gets it when it starts (reconcile).
    pub async fn apply(&self, query: &str, policy: NetPolicy) -> Result<Enforced, Error> {
        policy.compile().map_err(|message| crate::policy::PolicyError {
            source_name: "<policy>".into(),
            location: None,
            message,
        })?;
        let t = self.resolve(query).await?;
        self.apply_to(&t, policy)
    }

    /// [`NetPolicyStore::apply`] on a resolved target.
    pub fn apply_to(&self, t: &Target, policy: NetPolicy) -> Result<Enforced, Error> {
        let _l = self.lock()?;
        self.update_locked(t, |r| r.policy = Some(policy))
    }

    /// Drop the policy of a container (isolation, if any, stays).
    pub async fn remove(&self, query: &str) -> Result<Enforced, Error> {
        let t = self.resolve_or_stored(query).await?;
        let _l = self.lock()?;
        if self.load(&t.id)?.is_none_or(|r| r.policy.is_none()) {
            return Err(Error::NotManaged { id: t.id.clone() });
        }
        self.update_locked(&t, |r| r.policy = None)
    }

    /// Cut the container off the network (or, with `on = false`, release it).
    pub async fn isolate(&self, query: &str, on: bool) -> Result<Enforced, Error> {
        let t = if on { self.resolve(query).await? } else { self.resolve_or_stored(query).await? };
        self.isolate_target(&t, on)
    }

    /// [`NetPolicyStore::isolate`] on a resolved target.
    pub fn isolate_target(&self, t: &Target, on: bool) -> Result<Enforced, Error> {
        let _l = self.lock()?;
        self.update_locked(t, |r| r.isolated = on)
    }

    /// Isolate (or release) a container as the rules engine knows it: by its
    /// cgroup path, without asking the runtime.
    pub fn isolate_container(&self, c: &Container, on: bool) -> Result<Enforced, Error> {
        let t = Target::from_container(c)?;
        self.isolate_target(&t, on)
    }

    /// Add a deny entry to a container's policy (creating an allow-by-default
    /// policy if it has none) and enforce it: the `deny` action of network
    /// rules, so the next attempt is refused in the kernel. An entry already
    /// there is not added twice.
    pub fn add_deny_to(&self, t: &Target, entry: crate::policy::Entry) -> Result<Enforced, Error> {
        let _l = self.lock()?;
        let current = self.load(&t.id)?.and_then(|r| r.policy).unwrap_or_default();
        let mut policy = current.clone();
        if !policy
            .egress
            .deny
            .iter()
            .any(|e| e.cidr == entry.cidr && e.ports == entry.ports && e.protocol == entry.protocol)
        {
            policy.egress.deny.push(entry);
        }
        policy.compile().map_err(|message| crate::policy::PolicyError {
            source_name: format!("policy of {}", t.label()),
            location: None,
            message,
        })?;
        self.update_locked(t, |r| r.policy = Some(policy))
    }

    /// Set (or with `Rate::default()`, lift) the rate limits of a
    /// container's policy, creating an allow-by-default policy if it has none;
    /// the rest of the policy is kept.
    pub fn set_rate_to(&self, t: &Target, rate: crate::policy::Rate) -> Result<Enforced, Error> {
        let _l = self.lock()?;
        let mut policy = self.load(&t.id)?.and_then(|r| r.policy).unwrap_or_default();
        policy.rate = rate;
        policy.compile().map_err(|message| crate::policy::PolicyError {
            source_name: format!("policy of {}", t.label()),
            location: None,
            message,
        })?;
        self.update_locked(t, |r| r.policy = Some(policy))
    }

    /// [`NetPolicyStore::set_rate_to`] for the container named by `query`.
    pub async fn set_rate(&self, query: &str, rate: crate::policy::Rate) -> Result<Enforced, Error> {
        let t =
            if rate.is_none() { self.resolve_or_stored(query).await? } else { self.resolve(query).await? };
        self.set_rate_to(&t, rate)
    }

    /// Add rate limits to a container's policy as the rules engine knows it
    /// (the `ratelimit` action): the limits given replace the same ones of
    /// the policy, the others stay.
    pub fn limit_rate_of(&self, c: &Container, rate: crate::policy::Rate) -> Result<Enforced, Error> {
        let t = Target::from_container(c)?;
        let current = self.load(&t.id)?.and_then(|r| r.policy).unwrap_or_default();
        self.set_rate_to(&t, rate.over(&current.rate))
    }

    /// [`NetPolicyStore::add_deny_to`] for a container as the rules engine
    /// knows it.
    pub fn add_deny(&self, c: &Container, entry: crate::policy::Entry) -> Result<Enforced, Error> {
        self.add_deny_to(&Target::from_container(c)?, entry)
    }

    /// The container through the runtime; when the runtime does not know it
    /// (removed) or cannot answer, the stored record it names.
    async fn resolve_or_stored(&self, query: &str) -> Result<Target, Error> {
        match self.resolve(query).await {
            Ok(t) => Ok(t),
            Err(e @ (Error::NoSuchContainer(FindError::NotFound { .. }) | Error::Runtime(_))) => {
                let Some(rec) = self.find_record(query)? else { return Err(e) };
                Ok(self.stored_target(&rec))
            }
            Err(e) => Err(e),
        }
    }

    /// A target from a record alone (its stored cgroup path, if it still exists).
    fn stored_target(&self, rec: &Record) -> Target {
        let cg = if rec.cgroup_path.is_empty() {
            None
        } else {
            find_cgroup2_mount().ok().and_then(|root| CgroupRef::at(&root, &rec.cgroup_path).ok())
        };
        let pid = cg.as_ref().and_then(CgroupRef::any_pid);
        Target {
            id: rec.container_id.clone(),
            name: rec.container_name.clone(),
            runtime: rec.runtime,
            pid,
            private_netns: pid.and_then(private_netns),
            cgroup: cg,
        }
    }

    /// Enforce the stored record of one container on its current cgroup (for
    /// a container that just started).
    pub async fn reconcile_container(&self, id: &str) -> Result<Option<Enforced>, Error> {
        let Some(rec) = self.load(id)? else {
            return Ok(None);
        };
        let t = match self.inspect_record(&rec).await {
            Ok(d) => Target::from_discovered(&d)?,
            Err(runtime::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !t.running() {
            return Ok(None);
        }
        let _l = self.lock()?;
        self.update_locked(&t, |_| {}).map(Some)
    }

    /// Make the kernel match the store: every stored container that runs is
    /// enforced on its current cgroup (a restart gives it a new one), links of
    /// cgroups no stored container lives in are detached, records of
    /// containers the runtime no longer has are dropped. Without the runtime,
    /// containers are found by their stored cgroup path.
    pub async fn reconcile(&self) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        let records = self.records()?;
        let pins_exist = self.cfg.pin_dir.join("np_meta").exists();
        if records.is_empty() && !pins_exist {
            return Ok(report);
        }
        // Ask the runtime before taking the lock.
        let mut plan: Vec<(String, Option<Target>)> = Vec::new();
        for rec in &records {
            match self.inspect_record(rec).await {
                Ok(d) => match Target::from_discovered(&d) {
                    Ok(t) => plan.push((rec.container_id.clone(), Some(t))),
                    Err(e) => {
                        report.errors.push(format!("{}: {e}", rec.label()));
                        plan.push((rec.container_id.clone(), Some(self.stored_target(rec))));
                    }
                },
                Err(runtime::Error::NotFound { .. }) => plan.push((rec.container_id.clone(), None)),
                Err(e) => {
                    tracing::debug!(container = %rec.label(), error = %e, "runtime unreachable; using the stored cgroup path");
                    plan.push((rec.container_id.clone(), Some(self.stored_target(rec))));
                }
            }
        }
        let _l = self.lock()?;
        let k = NetKernel::open_or_create(&self.cfg.pin_dir)?;
        report.recreated = k.created;
        let mut desired: BTreeSet<u64> = BTreeSet::new();
        for (id, target) in plan {
            // Reload: the CLI may have changed it while we asked the runtime.
            let Some(mut rec) = self.load(&id)? else { continue };
            let Some(t) = target else {
                tracing::info!(container = %rec.label(), "container is gone: dropping its network policy");
                self.delete(&id)?;
                report.forgotten.push(rec.label());
                continue;
            };
            let Some(cg) = &t.cgroup else {
                report.not_running.push(rec.label());
                continue;
            };
            if !rec.active() {
                continue;
            }
            if !t.name.is_empty() {
                rec.container_name = t.name.clone();
            }
            let before = rec.clone();
            match enforce_record(&k, &mut rec, cg, t.private_netns) {
                Ok(()) => {
                    desired.insert(cg.id);
                    report.enforced.push(Enforced {
                        container_id: rec.container_id.clone(),
                        container_name: rec.container_name.clone(),
                        cgroup: Some(cg.clone()),
                        isolated: rec.isolated,
                        has_policy: rec.policy.is_some(),
                    });
                }
                Err(e) => report.errors.push(format!("{}: {e}", rec.label())),
            }
            if rec != before {
                self.save(&rec)?;
            }
        }
        for (cg, _) in k.linked()? {
            if !desired.contains(&cg) {
                k.detach(cg)?;
                k.remove_policy(cg)?;
                report.detached.push(cg);
            }
        }
        for cg in k.policy_cgroups() {
            if !desired.contains(&cg) {
                k.remove_policy(cg)?;
            }
        }
        Ok(report)
    }

    /// Stored containers (all, or the one `query` names) with their kernel
    /// state; never changes anything.
    pub fn show(&self, query: Option<&str>) -> Result<Vec<Status>, Error> {
        let mut recs = self.records()?;
        if let Some(q) = query {
            let exact: Vec<Record> =
                recs.iter().filter(|r| r.container_id == q || r.container_name == q).cloned().collect();
            recs = if exact.is_empty() { recs.into_iter().filter(|r| r.matches(q)).collect() } else { exact };
        }
        let k = NetKernel::open_existing(&self.cfg.pin_dir).ok().flatten();
        let linked = k.as_ref().and_then(|k| k.linked().ok()).unwrap_or_default();
        let root = find_cgroup2_mount().ok();
        let mut out = Vec::new();
        for rec in recs {
            let cg = if rec.cgroup_path.is_empty() {
                None
            } else {
                root.as_deref().and_then(|r| CgroupRef::at(r, &rec.cgroup_path).ok())
            };
            let cgroup_id = cg.map(|c| c.id);
            let attached_hooks = cgroup_id.and_then(|id| linked.get(&id)).map_or(0, |l| l.hooks.len());
            let kernel_flags = match (&k, cgroup_id) {
                (Some(k), Some(id)) => k.policy_head(id).ok().flatten().map(|(f, _)| f),
                _ => None,
            };
            let mut denied = BTreeMap::new();
            if let (Some(k), Some(id)) = (&k, cgroup_id) {
                if let Ok(Some(s)) = k.stats(id) {
                    for (i, op) in OPS.iter().enumerate() {
                        denied.insert(*op, s.denied[i]);
                    }
                }
            }
            out.push(Status { record: rec, cgroup_id, attached_hooks, kernel_flags, denied });
        }
        Ok(out)
    }

    /// Records lost from the ring buffer (all containers), when the pins exist.
    pub fn lost(&self) -> Option<u64> {
        NetKernel::open_existing(&self.cfg.pin_dir).ok().flatten().map(|k| k.lost())
    }

    /// Stored policies by the cgroup id their container lives in now (from
    /// the stored cgroup path), for naming the entries of denial records.
    pub fn policies_by_cgroup(&self) -> HashMap<u64, Record> {
        let root = find_cgroup2_mount().ok();
        let mut out = HashMap::new();
        for rec in self.records().unwrap_or_default() {
            if rec.cgroup_path.is_empty() {
                continue;
            }
            if let Some(cg) = root.as_deref().and_then(|r| CgroupRef::at(r, &rec.cgroup_path).ok()) {
                out.insert(cg.id, rec);
            }
        }
        out
    }
}

/// Write a record's policy for cgroup `cg` and attach the programs there.
fn enforce_record(
    k: &NetKernel,
    rec: &mut Record,
    cg: &CgroupRef,
    private: Option<bool>,
) -> Result<(), Error> {
    let compiled = rec.policy.as_ref().unwrap_or(&NetPolicy::default()).compile().map_err(|message| {
        crate::policy::PolicyError {
            source_name: format!("stored policy of {}", rec.label()),
            location: None,
            message,
        }
    })?;
    let flags = kernel_flags(compiled.flags, rec.isolated, private);
    k.set_policy(cg.id, &compiled, flags)?;
    k.attach(cg.id, &cg.dir)?;
    rec.cgroup_path = cg.path.clone();
    tracing::info!(container = %rec.label(), cgroup = cg.id, isolated = rec.isolated, "network policy enforced");
    Ok(())
}

/// The kernel flags: the policy's, isolation, and loopback by namespace. The
/// container's loopback is its own only in a network namespace of its own;
/// with the host's network (or when unknown) it goes through the rules and is
/// cut by isolation.
pub fn kernel_flags(policy_flags: u32, isolated: bool, private_netns: Option<bool>) -> u32 {
    let mut f = policy_flags;
    if private_netns == Some(true) {
        f |= abi::flags::LOOPBACK_PRIVATE;
    } else {
        f &= !abi::flags::LOOPBACK_ALLOW;
    }
    if isolated {
        f |= abi::flags::ISOLATED;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::flags;

    fn store(tag: &str) -> NetPolicyStore {
        let dir = std::env::temp_dir().join(format!("rampart-np-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        NetPolicyStore::new(StoreConfig {
            dir,
            pin_dir: "/nonexistent/pins".into(),
            endpoints: RuntimeEndpoints::docker_only("/nonexistent/docker.sock"),
        })
    }

    fn rec(id: &str, name: &str) -> Record {
        Record {
            container_id: id.into(),
            container_name: name.into(),
            runtime: None,
            policy: Some(NetPolicy::from_yaml("egress: {default: deny}", "t").unwrap()),
            isolated: false,
            cgroup_path: "/docker/x".into(),
            updated_unix: 0,
        }
    }

    #[test]
    fn records_round_trip_and_match() {
        let s = store("rt");
        assert!(s.records().unwrap().is_empty());
        s.save(&rec("aaaa1111", "web")).unwrap();
        s.save(&rec("aaaa2222", "db")).unwrap();
        let all = s.records().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].updated_unix > 0);
        assert_eq!(s.load("aaaa1111").unwrap().unwrap().container_name, "web");
        assert_eq!(s.find_record("db").unwrap().unwrap().container_id, "aaaa2222");
        assert_eq!(s.find_record("aaaa1").unwrap().unwrap().container_name, "web");
        assert!(s.find_record("aaaa").unwrap().is_none(), "ambiguous prefix");
        assert!(s.load("../etc/passwd").unwrap().is_none(), "ids are not paths");
        assert!(s.save(&rec("../x", "evil")).is_err());
        // a corrupt file is an error naming it, not a silently missing policy
        std::fs::write(s.cfg.dir.join("bbbb.json"), "{\"container_id\": \"bbbb\", \"polcy\": 1}").unwrap();
        let e = s.records().unwrap_err().to_string();
        assert!(e.contains("bbbb.json") && e.contains("polcy"), "{e}");
        std::fs::remove_file(s.cfg.dir.join("bbbb.json")).unwrap();
        s.delete("aaaa1111").unwrap();
        s.delete("aaaa1111").unwrap();
        assert_eq!(s.records().unwrap().len(), 1);
        let status = s.show(Some("db")).unwrap();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].attached_hooks, 0);
        std::fs::remove_dir_all(&s.cfg.dir).unwrap();
    }

    #[test]
    fn flags_follow_isolation_and_namespace() {
        let base = flags::EGRESS_DENY | flags::LOOPBACK_ALLOW;
        let f = kernel_flags(base, false, Some(true));
        assert_eq!(f, base | flags::LOOPBACK_PRIVATE);
        let f = kernel_flags(base, true, Some(false));
        assert_eq!(f, flags::EGRESS_DENY | flags::ISOLATED, "host netns: loopback is the host's");
        let f = kernel_flags(base, false, None);
        assert_eq!(f & flags::LOOPBACK_ALLOW, 0);
    }

    #[test]
    fn deny_entries_accumulate_once_for_a_stopped_container() {
        use crate::policy::{Cidr, Entry, PortRange, Protocol};
        let s = store("deny");
        let t = Target {
            id: "cccc3333".into(),
            name: "web".into(),
            runtime: None,
            pid: None,
            cgroup: None,
            private_netns: None,
        };
        let entry = |port| Entry {
            cidr: "192.0.2.7".parse::<Cidr>().unwrap(),
            ports: vec![PortRange::single(port)],
            protocol: Protocol::Tcp,
            comment: Some("denied by rule".into()),
        };
        let e = s.add_deny_to(&t, entry(4444)).unwrap();
        assert!(e.has_policy && e.cgroup.is_none(), "{e:?}");
        s.add_deny_to(&t, entry(4444)).unwrap();
        s.add_deny_to(&t, entry(5555)).unwrap();
        let p = s.load("cccc3333").unwrap().unwrap().policy.unwrap();
        assert_eq!(p.egress.deny.len(), 2, "{p:?}");
        assert_eq!(p.egress.default, crate::policy::Action::Allow);
        let c = p.compile().unwrap();
        assert!(c.egress_verdict("192.0.2.7".parse().unwrap(), 4444, 6).is_err());
        assert!(c.egress_verdict("192.0.2.7".parse().unwrap(), 4445, 6).is_ok());
        std::fs::remove_dir_all(&s.cfg.dir).unwrap();
    }

    #[tokio::test]
    async fn a_record_of_a_runtime_not_configured_here_is_unreachable_not_gone() {
        let off = RuntimeEndpoints {
            docker: runtime::Endpoint::Off,
            containerd: runtime::Endpoint::Off,
            crio: runtime::Endpoint::Off,
            podman: runtime::Endpoint::Off,
        };
        let s = NetPolicyStore::new(StoreConfig {
            dir: std::env::temp_dir().join("rampart-np-store-noclient"),
            pin_dir: "/nonexistent/pins".into(),
            endpoints: off,
        });
        let mut r = rec("dddd4444", "db");
        // No runtime recorded and none configured: nobody has it.
        assert!(matches!(s.inspect_record(&r).await, Err(runtime::Error::NotFound { .. })));
        // A podman container's record while podman is not configured: kept.
        r.runtime = Some(Runtime::Podman);
        let e = s.inspect_record(&r).await.unwrap_err();
        assert!(matches!(e, runtime::Error::NoClient { .. }), "{e}");
        assert!(!matches!(e, runtime::Error::NotFound { .. }));
        // Older records (no `runtime` key) still load.
        let old: Record = serde_json::from_str(r#"{"container_id": "eeee", "isolated": true}"#).unwrap();
        assert_eq!(old.runtime, None);
    }

    #[tokio::test]
    async fn reconcile_without_records_or_pins_does_nothing() {
        let s = store("empty");
        let r = s.reconcile().await.unwrap();
        assert_eq!(r, ReconcileReport::default());
        assert!(!s.cfg.dir.exists(), "nothing created");
    }
}

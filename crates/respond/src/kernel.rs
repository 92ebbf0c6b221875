//! The kernel side of the network policy: load bpf/netpolicy.bpf.c once, pin
//! its maps and programs under a bpffs directory, attach the programs to
//! container cgroups through pinned BPF links, and write the policy maps.
//!
//! Everything lives in the pin directory, so enforcement outlives the process
//! that set it up (the CLI exits, the agent restarts). Layout:
//!
//! ```text
//! <dir>/np_policy np_rules np_stats np_events np_lost np_meta np_bucket   maps
//! <dir>/prog_<hook>                                             programs
//! <dir>/links/<cgroup id>_<hook>                                links (one per hook and cgroup)
//! ```
//!
//! `np_meta[0]` holds a hash of the object that created the pins: state made
//! by another build is removed and recreated (callers then re-apply every
//! stored policy, see [`crate::store`]).

use crate::abi::{self, skel};
use crate::policy::Compiled;
use crate::Error;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, OpenObject};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Default pin directory.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/rampart/netpolicy";
/// Environment variable overriding [`DEFAULT_PIN_DIR`] (tests use their own).
pub const PIN_DIR_ENV: &str = "RAMPART_NETPOLICY_PIN";
const BPFFS_ROOT: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Hash of the BPF object this binary carries (see build.rs).
pub const OBJECT_HASH: &str = env!("NETPOLICY_OBJECT_HASH");

/// The pin directory in force: `$RAMPART_NETPOLICY_PIN` or the default.
pub fn pin_dir() -> PathBuf {
    std::env::var_os(PIN_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PIN_DIR.into())
}

fn object_hash() -> u64 {
    u64::from_str_radix(OBJECT_HASH, 16).unwrap_or(0)
}

/// The cgroup hooks, in attach order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    Connect4,
    Connect6,
    Sendmsg4,
    Sendmsg6,
    Bind4,
    Bind6,
    Ingress,
    Egress,
}

impl Hook {
    pub const ALL: [Hook; 8] = [
        Hook::Connect4,
        Hook::Connect6,
        Hook::Sendmsg4,
        Hook::Sendmsg6,
        Hook::Bind4,
        Hook::Bind6,
        Hook::Ingress,
        Hook::Egress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::Connect4 => "connect4",
            Hook::Connect6 => "connect6",
            Hook::Sendmsg4 => "sendmsg4",
            Hook::Sendmsg6 => "sendmsg6",
            Hook::Bind4 => "bind4",
            Hook::Bind6 => "bind6",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }

    fn from_name(s: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == s)
    }

    /// The program's name in netpolicy.bpf.c.
    fn program(self) -> String {
        format!("np_{}", self.name())
    }

    fn attach_type(self) -> libbpf_sys::bpf_attach_type {
        match self {
            Hook::Connect4 => libbpf_sys::BPF_CGROUP_INET4_CONNECT,
            Hook::Connect6 => libbpf_sys::BPF_CGROUP_INET6_CONNECT,
            Hook::Sendmsg4 => libbpf_sys::BPF_CGROUP_UDP4_SENDMSG,
            Hook::Sendmsg6 => libbpf_sys::BPF_CGROUP_UDP6_SENDMSG,
            Hook::Bind4 => libbpf_sys::BPF_CGROUP_INET4_BIND,
            Hook::Bind6 => libbpf_sys::BPF_CGROUP_INET6_BIND,
            Hook::Ingress => libbpf_sys::BPF_CGROUP_INET_INGRESS,
            Hook::Egress => libbpf_sys::BPF_CGROUP_INET_EGRESS,
        }
    }
}

/// The map names (pinned under the same name).
const MAPS: [&str; 7] = ["np_policy", "np_rules", "np_stats", "np_events", "np_lost", "np_meta", "np_bucket"];

fn bpf_err(op: impl Into<String>, target: impl std::fmt::Display, source: std::io::Error) -> Error {
    Error::Bpf { op: op.into(), target: target.to_string(), message: source.to_string() }
}

fn lib_err(op: impl Into<String>, target: impl std::fmt::Display, e: libbpf_rs::Error) -> Error {
    Error::Bpf { op: op.into(), target: target.to_string(), message: format!("{e:#}") }
}

fn cpath(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Io {
        what: "path",
        path: p.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL byte in path"),
    })
}

/// `bpf_obj_get` as an owned fd.
fn obj_get(path: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let fd = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: bpf_obj_get returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn statfs_type(path: &Path) -> std::io::Result<i64> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a valid path and `st` points to writable memory of the right type.
    let r = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statfs succeeded and filled the struct.
    let st = unsafe { st.assume_init() };
    // f_type's integer type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

/// Make sure a BPF filesystem is mounted at /sys/fs/bpf and `dir` (created if
/// needed) is on one.
pub fn ensure_bpffs(dir: &Path) -> Result<(), Error> {
    let root = Path::new(BPFFS_ROOT);
    if statfs_type(root).ok() != Some(BPF_FS_MAGIC) && dir.starts_with(root) {
        std::fs::create_dir_all(root).map_err(|source| Error::Io {
            what: "creating",
            path: root.into(),
            source,
        })?;
        let c = cpath(root)?;
        // SAFETY: all pointers are valid NUL-terminated strings (or null data).
        let r = unsafe { libc::mount(c"bpf".as_ptr(), c.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
        if r != 0 {
            return Err(Error::Io {
                what: "mounting bpffs on",
                path: root.into(),
                source: std::io::Error::last_os_error(),
            });
        }
        tracing::info!(path = BPFFS_ROOT, "mounted the BPF filesystem");
    }
    std::fs::create_dir_all(dir.join("links")).map_err(|source| Error::Io {
        what: "creating pin directory",
        path: dir.into(),
        source,
    })?;
    match statfs_type(dir) {
        Ok(BPF_FS_MAGIC) => Ok(()),
        Ok(_) => Err(Error::Io {
            what: "pin directory",
            path: dir.into(),
            source: std::io::Error::other("not on a BPF filesystem (bpffs)"),
        }),
        Err(source) => Err(Error::Io { what: "statfs", path: dir.into(), source }),
    }
}

fn raise_memlock() {
    let lim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a valid struct; failure is harmless (memcg accounting).
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) };
}

/// What links exist for one cgroup, from the pin directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLinks {
    pub hooks: BTreeSet<Hook>,
    /// The kernel says the cgroup is gone (the link is defunct).
    pub defunct: bool,
}

/// Handles on the pinned network policy state.
pub struct NetKernel {
    dir: PathBuf,
    policy: MapHandle,
    rules: MapHandle,
    stats: MapHandle,
    lost: MapHandle,
    buckets: MapHandle,
    progs: BTreeMap<Hook, OwnedFd>,
    /// Whether the pins were (re)created by this open: every stored policy has
    /// to be applied again.
    pub created: bool,
}

impl std::fmt::Debug for NetKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetKernel").field("dir", &self.dir).field("created", &self.created).finish()
    }
}

impl NetKernel {
    /// Open the pinned state at `dir`, creating (loading and pinning) it when
    /// it is missing, incomplete or made by another build. The caller holds the
    /// store lock, so two processes never create at once.
    pub fn open_or_create(dir: &Path) -> Result<NetKernel, Error> {
        ensure_bpffs(dir)?;
        match Self::open_existing(dir) {
            Ok(Some(k)) => return Ok(k),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "pinned netpolicy state unusable; recreating")
            }
        }
        wipe(dir)?;
        create(dir)?;
        let mut k = Self::open_existing(dir)?.ok_or_else(|| {
            bpf_err("opening", dir.display(), std::io::Error::other("pins missing right after creation"))
        })?;
        k.created = true;
        Ok(k)
    }

    /// Open pinned state made by this build; `None` when there is none (or
    /// it is another build's).
    pub fn open_existing(dir: &Path) -> Result<Option<NetKernel>, Error> {
        let meta_path = dir.join("np_meta");
        if !meta_path.exists() {
            return Ok(None);
        }
        let meta = MapHandle::from_pinned_path(&meta_path)
            .map_err(|e| lib_err("opening", meta_path.display(), e))?;
        let v =
            meta.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).map_err(|e| lib_err("reading", "np_meta", e))?;
        let hash = v.and_then(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default())));
        if hash != Some(object_hash()) {
            tracing::info!(dir = %dir.display(), "pinned netpolicy state is another build's");
            return Ok(None);
        }
        let map = |name: &str| -> Result<MapHandle, Error> {
            let p = dir.join(name);
            MapHandle::from_pinned_path(&p).map_err(|e| lib_err("opening", p.display(), e))
        };
        let mut progs = BTreeMap::new();
        for h in Hook::ALL {
            let p = dir.join(format!("prog_{}", h.name()));
            let fd = obj_get(&p).map_err(|e| bpf_err("opening", p.display(), e))?;
            progs.insert(h, fd);
        }
        Ok(Some(NetKernel {
            dir: dir.to_path_buf(),
            policy: map("np_policy")?,
            rules: map("np_rules")?,
            stats: map("np_stats")?,
            lost: map("np_lost")?,
            buckets: map("np_bucket")?,
            progs,
            created: false,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn link_path(&self, cgroup_id: u64, hook: Hook) -> PathBuf {
        self.dir.join("links").join(format!("{cgroup_id}_{}", hook.name()))
    }

    /// Attach every hook to the cgroup at `cgroup_dir` (whose id is
    /// `cgroup_id`), pinning each link; hooks already linked are kept.
    pub fn attach(&self, cgroup_id: u64, cgroup_dir: &Path) -> Result<(), Error> {
        let dir = std::fs::File::open(cgroup_dir).map_err(|source| Error::Io {
            what: "opening cgroup",
            path: cgroup_dir.into(),
            source,
        })?;
        for h in Hook::ALL {
            let pin = self.link_path(cgroup_id, h);
            if pin.exists() {
                continue;
            }
            let prog = &self.progs[&h];
            // SAFETY: both fds are open for the duration of the call; null opts
            // are allowed.
            let fd = unsafe {
                libbpf_sys::bpf_link_create(
                    prog.as_raw_fd(),
                    dir.as_raw_fd(),
                    h.attach_type(),
                    std::ptr::null(),
                )
            };
            if fd < 0 {
                return Err(bpf_err(
                    format!("attaching {}", h.name()),
                    cgroup_dir.display(),
                    std::io::Error::from_raw_os_error(-fd),
                ));
            }
            // SAFETY: bpf_link_create returned a new fd that nothing else owns.
            let link = unsafe { OwnedFd::from_raw_fd(fd) };
            let c = cpath(&pin)?;
            // SAFETY: valid fd and NUL-terminated path.
            let r = unsafe { libbpf_sys::bpf_obj_pin(link.as_raw_fd(), c.as_ptr()) };
            if r < 0 {
                // SAFETY: valid link fd; detaching an unpinned link we own.
                unsafe { libbpf_sys::bpf_link_detach(link.as_raw_fd()) };
                return Err(bpf_err("pinning link", pin.display(), std::io::Error::from_raw_os_error(-r)));
            }
        }
        Ok(())
    }

    /// Detach and unpin every link of a cgroup. Returns how many there were.
    pub fn detach(&self, cgroup_id: u64) -> Result<usize, Error> {
        let mut n = 0;
        for h in Hook::ALL {
            let pin = self.link_path(cgroup_id, h);
            if !pin.exists() {
                continue;
            }
            if let Ok(fd) = obj_get(&pin) {
                // SAFETY: a link fd we own; detaching a defunct link is a no-op.
                unsafe { libbpf_sys::bpf_link_detach(fd.as_raw_fd()) };
            }
            std::fs::remove_file(&pin).map_err(|source| Error::Io {
                what: "unpinning link",
                path: pin.clone(),
                source,
            })?;
            n += 1;
        }
        Ok(n)
    }

    /// The cgroups with pinned links, and which hooks.
    pub fn linked(&self) -> Result<BTreeMap<u64, CgroupLinks>, Error> {
        let dir = self.dir.join("links");
        let rd = std::fs::read_dir(&dir).map_err(|source| Error::Io {
            what: "listing",
            path: dir.clone(),
            source,
        })?;
        let mut out: BTreeMap<u64, CgroupLinks> = BTreeMap::new();
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some((id, hook)) = name.split_once('_') else { continue };
            let (Ok(id), Some(hook)) = (id.parse::<u64>(), Hook::from_name(hook)) else { continue };
            let entry = out.entry(id).or_default();
            entry.hooks.insert(hook);
            if link_cgroup_id(&ent.path()) == Some(0) {
                entry.defunct = true;
            }
        }
        Ok(out)
    }

    /// Detach the links of cgroups that no longer exist (a container that
    /// restarted or was removed) and drop their map entries. Returns their ids.
    pub fn prune_defunct(&self) -> Result<Vec<u64>, Error> {
        let mut pruned = Vec::new();
        for (cg, links) in self.linked()? {
            if links.defunct {
                self.detach(cg)?;
                self.remove_policy(cg)?;
                pruned.push(cg);
            }
        }
        Ok(pruned)
    }

    /// Write a cgroup's policy: the new generation's rule table, then the
    /// policy entry that switches to it (one map update: the kernel sees the
    /// old rules or the new ones, never a mix), then drop the old generation.
    pub fn set_policy(&self, cgroup_id: u64, compiled: &Compiled, flags: u32) -> Result<(), Error> {
        let key = cgroup_id.to_ne_bytes();
        let old_gen = self
            .policy
            .lookup(&key, MapFlags::ANY)
            .map_err(|e| lib_err("reading", "np_policy", e))?
            .and_then(|v| abi::decode_policy_head(&v))
            .map(|(_, g)| g);
        let gen = old_gen.map_or(1, |g| g.wrapping_add(1).max(1));
        let mut written: Vec<[u8; abi::KEY_LEN]> = Vec::with_capacity(compiled.prefixes.len());
        for (cidr, rules) in &compiled.prefixes {
            let k = abi::encode_key(cgroup_id, gen, cidr.addr, cidr.len);
            if let Err(e) = self.rules.update(&k, &abi::encode_rules(rules), MapFlags::ANY) {
                for k in &written {
                    let _ = self.rules.delete(k);
                }
                return Err(lib_err("writing rule for", cidr, e));
            }
            written.push(k);
        }
        if self.stats.lookup(&key, MapFlags::ANY).ok().flatten().is_none() {
            self.stats
                .update(&key, &[0u8; abi::STATS_LEN], MapFlags::NO_EXIST)
                .map_err(|e| lib_err("creating counters for cgroup", cgroup_id, e))?;
        }
        self.policy
            .update(&key, &abi::encode_policy(flags, gen, &compiled.bind, compiled.rate), MapFlags::ANY)
            .map_err(|e| lib_err("writing policy for cgroup", cgroup_id, e))?;
        self.delete_rules(cgroup_id, Some(gen))
    }

    /// Flags and generation in force for a cgroup.
    pub fn policy_head(&self, cgroup_id: u64) -> Result<Option<(u32, u32)>, Error> {
        Ok(self
            .policy
            .lookup(&cgroup_id.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| lib_err("reading", "np_policy", e))?
            .and_then(|v| abi::decode_policy_head(&v)))
    }

    /// Delete rule entries of a cgroup (all, or all but generation `keep`).
    fn delete_rules(&self, cgroup_id: u64, keep: Option<u32>) -> Result<(), Error> {
        let stale: Vec<Vec<u8>> = self
            .rules
            .keys()
            .filter(|k| abi::decode_key_owner(k).is_some_and(|(cg, g)| cg == cgroup_id && Some(g) != keep))
            .collect();
        for k in stale {
            self.rules.delete(&k).map_err(|e| lib_err("deleting rule of cgroup", cgroup_id, e))?;
        }
        Ok(())
    }

    /// Remove a cgroup's policy, rules and counters from the maps.
    pub fn remove_policy(&self, cgroup_id: u64) -> Result<(), Error> {
        let key = cgroup_id.to_ne_bytes();
        let _ = self.policy.delete(&key);
        self.delete_rules(cgroup_id, None)?;
        let _ = self.stats.delete(&key);
        let _ = self.buckets.delete(&key);
        Ok(())
    }

    /// Cgroups that have a policy entry.
    pub fn policy_cgroups(&self) -> Vec<u64> {
        self.policy
            .keys()
            .filter_map(|k| k.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default())))
            .collect()
    }

    /// Denial counters of a cgroup.
    pub fn stats(&self, cgroup_id: u64) -> Result<Option<abi::Stats>, Error> {
        Ok(self
            .stats
            .lookup(&cgroup_id.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| lib_err("reading", "np_stats", e))?
            .and_then(|v| abi::decode_stats(&v)))
    }

    /// Denial records that did not fit in the ring buffer, all CPUs.
    pub fn lost(&self) -> u64 {
        sensor::maps::percpu_sum(&self.lost, 0)
    }
}

/// The cgroup id a pinned cgroup link is attached to (0 once the cgroup died).
fn link_cgroup_id(pin: &Path) -> Option<u64> {
    let fd = obj_get(pin).ok()?;
    link_info_cgroup(fd.as_raw_fd())
}

fn link_info_cgroup(fd: RawFd) -> Option<u64> {
    let mut info = libbpf_sys::bpf_link_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_link_info>() as u32;
    // SAFETY: `info` and `len` are valid for writes of the sizes given.
    let r = unsafe { libbpf_sys::bpf_link_get_info_by_fd(fd, &mut info, &mut len) };
    if r != 0 {
        return None;
    }
    // SAFETY: a cgroup link's info fills the `cgroup` member of the union.
    Some(unsafe { info.__bindgen_anon_1.cgroup.cgroup_id })
}

/// Remove every pin under `dir` (links detached first).
fn wipe(dir: &Path) -> Result<(), Error> {
    let links = dir.join("links");
    if let Ok(rd) = std::fs::read_dir(&links) {
        for ent in rd.flatten() {
            if let Ok(fd) = obj_get(&ent.path()) {
                // SAFETY: a link fd we own.
                unsafe { libbpf_sys::bpf_link_detach(fd.as_raw_fd()) };
            }
            let _ = std::fs::remove_file(ent.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for ent in rd.flatten() {
            if ent.file_type().is_ok_and(|t| !t.is_dir()) {
                std::fs::remove_file(ent.path()).map_err(|source| Error::Io {
                    what: "unpinning",
                    path: ent.path(),
                    source,
                })?;
            }
        }
    }
    std::fs::create_dir_all(&links).map_err(|source| Error::Io { what: "creating", path: links, source })
}

/// Load the object and pin its maps and programs (then drop our handles: the
/// pins keep everything alive).
fn create(dir: &Path) -> Result<(), Error> {
    raise_memlock();
    let mut storage: Box<MaybeUninit<OpenObject>> = Box::new(MaybeUninit::uninit());
    let open = skel::NetpolicySkelBuilder::default()
        .open(&mut storage)
        .map_err(|e| lib_err("opening", "netpolicy.bpf.o", e))?;
    let mut loaded = open.load().map_err(|e| lib_err("loading", "netpolicy.bpf.o", e))?;
    for name in MAPS {
        let p = dir.join(name);
        let mut m = loaded
            .object_mut()
            .maps_mut()
            .find(|m| m.name() == name)
            .ok_or_else(|| bpf_err("finding map", name, std::io::Error::other("not in the object")))?;
        m.pin(&p).map_err(|e| lib_err("pinning", p.display(), e))?;
    }
    for h in Hook::ALL {
        let p = dir.join(format!("prog_{}", h.name()));
        let want = h.program();
        let mut prog =
            loaded.object_mut().progs_mut().find(|pr| pr.name().as_bytes() == want.as_bytes()).ok_or_else(
                || bpf_err("finding program", &want, std::io::Error::other("not in the object")),
            )?;
        prog.pin(&p).map_err(|e| lib_err("pinning", p.display(), e))?;
    }
    let meta =
        MapHandle::from_pinned_path(dir.join("np_meta")).map_err(|e| lib_err("opening", "np_meta", e))?;
    meta.update(&0u32.to_ne_bytes(), &object_hash().to_ne_bytes(), MapFlags::ANY)
        .map_err(|e| lib_err("writing", "np_meta", e))?;
    tracing::info!(dir = %dir.display(), hash = OBJECT_HASH, "loaded and pinned the netpolicy programs");
    drop(loaded);
    drop(storage);
    Ok(())
}

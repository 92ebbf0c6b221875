//! cgroup id -> cgroup path, from the cgroup2 filesystem.
//!
//! In cgroup v2 a cgroup's id (what `bpf_get_current_cgroup_id()` returns) is the
//! inode number of its directory in the cgroup2 mount. [`CgroupTree`] keeps a map
//! id -> path and walks the tree again on a miss, at most once per
//! `min_walk_interval`, remembering unknown ids for `miss_ttl` so a flood of
//! unknown ids cannot make it walk constantly.

use crate::Error;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// Where the cgroup2 filesystem is mounted, from `/proc/self/mountinfo`.
pub fn find_cgroup2_mount() -> Result<PathBuf, Error> {
    let path = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
    cgroup2_mount_from_mountinfo(&text).ok_or_else(|| Error::NoCgroup2 { path: path.into() })
}

/// The cgroup2 mount point in a mountinfo text. When there are several, the one
/// mounted at the root of the hierarchy is preferred, then the shortest path
/// (`/sys/fs/cgroup` over `/sys/fs/cgroup/unified`).
pub fn cgroup2_mount_from_mountinfo(text: &str) -> Option<PathBuf> {
    let mut best: Option<(bool, String)> = None;
    for line in text.lines() {
        // id parent major:minor root mountpoint options [optional fields...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else { continue };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (Some(root), Some(mnt)) = (fields.get(3), fields.get(4)) else { continue };
        let mnt = unescape_mountinfo(mnt);
        let at_root = *root == "/";
        let better = match &best {
            None => true,
            Some((best_root, best_mnt)) => {
                (at_root && !best_root) || (at_root == *best_root && mnt.len() < best_mnt.len())
            }
        };
        if better {
            best = Some((at_root, mnt));
        }
    }
    best.map(|(_, m)| PathBuf::from(m))
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v2 path of a process, from `/proc/<pid>/cgroup` (the `0::` line).
pub fn cgroup_path_of_pid(pid: u32) -> Result<String, Error> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    cgroup_v2_path_from_proc(&text).map(str::to_string).ok_or(Error::NoCgroup2 { path })
}

/// The `0::<path>` line of a `/proc/<pid>/cgroup` text.
pub fn cgroup_v2_path_from_proc(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Tunables of [`CgroupTree`].
#[derive(Debug, Clone)]
pub struct CgroupTreeConfig {
    /// Never walk the tree more often than this.
    pub min_walk_interval: Duration,
    /// How long an id that was not found stays "not found" without a new walk.
    pub miss_ttl: Duration,
    /// Bound on remembered misses (oldest forgotten first when full).
    pub max_misses: usize,
    /// Bound on the directories visited by one walk, and on the map's size.
    pub max_entries: usize,
    /// Bound on the depth of a walk.
    pub max_depth: usize,
}

impl Default for CgroupTreeConfig {
    fn default() -> Self {
        CgroupTreeConfig {
            min_walk_interval: Duration::from_millis(500),
            miss_ttl: Duration::from_secs(2),
            max_misses: 4096,
            max_entries: 200_000,
            max_depth: 32,
        }
    }
}

/// Counters of [`CgroupTree`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgroupTreeStats {
    pub walks: u64,
    pub hits: u64,
    pub misses: u64,
    /// Lookups answered "unknown" without walking because of the rate limit or a
    /// remembered miss.
    pub rate_limited: u64,
    pub known: usize,
}

#[derive(Default)]
struct TreeState {
    by_id: HashMap<u64, String>,
    misses: HashMap<u64, Instant>,
    last_walk: Option<Instant>,
}

/// A cached view of the cgroup2 hierarchy, keyed by cgroup id.
pub struct CgroupTree {
    root: PathBuf,
    config: CgroupTreeConfig,
    state: Mutex<TreeState>,
    walks: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    rate_limited: AtomicU64,
}

impl std::fmt::Debug for CgroupTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CgroupTree").field("root", &self.root).finish_non_exhaustive()
    }
}

impl CgroupTree {
    /// A tree over the cgroup2 mount at `root` (e.g. `/sys/fs/cgroup`).
    pub fn new(root: impl Into<PathBuf>, config: CgroupTreeConfig) -> Self {
        CgroupTree {
            root: root.into(),
            config,
            state: Mutex::new(TreeState::default()),
            walks: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// A tree over this machine's cgroup2 mount.
    pub fn discover() -> Result<Self, Error> {
        Ok(Self::new(find_cgroup2_mount()?, CgroupTreeConfig::default()))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path (relative to the mount, starting with `/`) of the cgroup with this
    /// id; walks the hierarchy on a miss (rate limited). Blocking file system I/O.
    pub fn path_of(&self, id: u64) -> Option<String> {
        let mut st = self.lock();
        if let Some(p) = st.by_id.get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(p.clone());
        }
        let now = Instant::now();
        if let Some(at) = st.misses.get(&id) {
            if now.duration_since(*at) < self.config.miss_ttl {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        if st.last_walk.is_some_and(|t| now.duration_since(t) < self.config.min_walk_interval) {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.walk_locked(&mut st);
        if let Some(p) = st.by_id.get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(p.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        if st.misses.len() >= self.config.max_misses {
            let ttl = self.config.miss_ttl;
            st.misses.retain(|_, at| now.duration_since(*at) < ttl);
            if st.misses.len() >= self.config.max_misses {
                st.misses.clear();
            }
        }
        st.misses.insert(id, now);
        None
    }

    /// Like [`CgroupTree::path_of`], but first tries the cgroup of `pid` (from
    /// `/proc/<pid>/cgroup`, checked against `id`): no walk is needed for a
    /// process that is still alive, which is what the first events of a new
    /// container need.
    pub fn path_of_pid_hint(&self, id: u64, pid: u32) -> Option<String> {
        if let Some(p) = self.lock().by_id.get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(p.clone());
        }
        if pid != 0 {
            if let Ok(path) = cgroup_path_of_pid(pid) {
                if self.id_of(&path).ok() == Some(id) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Some(normalize(&path));
                }
            }
        }
        self.path_of(id)
    }

    /// The id of the cgroup at `rel_path` (relative to the mount); remembers it.
    pub fn id_of(&self, rel_path: &str) -> Result<u64, Error> {
        let full = self.full_path(rel_path);
        let md = fs::metadata(&full).map_err(|source| Error::Io { path: full.clone(), source })?;
        if !md.is_dir() {
            return Err(Error::Io { path: full, source: io::Error::other("not a cgroup directory") });
        }
        let id = md.ino();
        let mut st = self.lock();
        st.misses.remove(&id);
        if st.by_id.len() < self.config.max_entries {
            st.by_id.insert(id, normalize(rel_path));
        }
        Ok(id)
    }

    /// Forget a cgroup (after its container was destroyed).
    pub fn forget(&self, id: u64) {
        self.lock().by_id.remove(&id);
    }

    /// Forget the cgroup at `rel_path` (its directory was removed).
    pub fn forget_path(&self, rel_path: &str) {
        let path = normalize(rel_path);
        self.lock().by_id.retain(|_, p| *p != path);
    }

    /// Walk the hierarchy now (ignores the rate limit).
    pub fn refresh(&self) {
        let mut st = self.lock();
        self.walk_locked(&mut st);
    }

    pub fn stats(&self) -> CgroupTreeStats {
        CgroupTreeStats {
            walks: self.walks.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            known: self.lock().by_id.len(),
        }
    }

    fn full_path(&self, rel_path: &str) -> PathBuf {
        let rel = rel_path.trim_start_matches('/');
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TreeState> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn walk_locked(&self, st: &mut TreeState) {
        let started = Instant::now();
        let mut map = HashMap::new();
        let mut stack: Vec<(PathBuf, String, usize)> = vec![(self.root.clone(), "/".to_string(), 0)];
        let mut truncated = false;
        while let Some((dir, rel, depth)) = stack.pop() {
            let md = match fs::symlink_metadata(&dir) {
                Ok(md) if md.is_dir() => md,
                // Removed meanwhile, or not a directory: skip.
                _ => continue,
            };
            if map.len() >= self.config.max_entries {
                truncated = true;
                break;
            }
            map.insert(md.ino(), rel.clone());
            if depth >= self.config.max_depth {
                continue;
            }
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for ent in rd.flatten() {
                let Ok(ft) = ent.file_type() else { continue };
                if !ft.is_dir() {
                    continue;
                }
                let name = ent.file_name().to_string_lossy().into_owned();
                let child_rel = if rel == "/" { format!("/{name}") } else { format!("{rel}/{name}") };
                stack.push((ent.path(), child_rel, depth + 1));
            }
        }
        if truncated {
            warn!(root = %self.root.display(), max = self.config.max_entries, "cgroup walk truncated");
        }
        debug!(root = %self.root.display(), cgroups = map.len(), took_us = started.elapsed().as_micros() as u64, "walked cgroup tree");
        st.by_id = map;
        st.last_walk = Some(Instant::now());
        st.misses.retain(|id, _| !st.by_id.contains_key(id));
        self.walks.fetch_add(1, Ordering::Relaxed);
    }
}

fn normalize(rel: &str) -> String {
    let trimmed = rel.trim_matches('/');
    format!("/{trimmed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_hybrid_and_unified() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_mount_from_mountinfo(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
99 30 0:26 / /tmp/with\\040space rw - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_mount_from_mountinfo(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        // a bind mount of a sub-cgroup loses to the root mount
        let bind = "50 23 0:26 /docker /mnt/cg rw - cgroup2 cgroup2 rw
51 23 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_mount_from_mountinfo(bind), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount_from_mountinfo("garbage\n\n - \n"), None);
        assert_eq!(unescape_mountinfo("/a\\040b\\011c\\"), "/a b\tc\\");
    }

    #[test]
    fn proc_cgroup_line() {
        let text = "9:name=systemd:/\n4:memory:/x\n0::/docker/abc\n";
        assert_eq!(cgroup_v2_path_from_proc(text), Some("/docker/abc"));
        assert_eq!(cgroup_v2_path_from_proc("1:cpu:/\n"), None);
    }

    fn tmp_tree(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("rampart-cgtree-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("docker/abc/sub")).unwrap();
        fs::create_dir_all(root.join("system.slice/x.service")).unwrap();
        fs::write(root.join("cgroup.procs"), "").unwrap();
        root
    }

    #[test]
    fn tree_resolves_by_inode_and_rate_limits() {
        let root = tmp_tree("a");
        let cfg = CgroupTreeConfig { min_walk_interval: Duration::from_secs(3600), ..Default::default() };
        let tree = CgroupTree::new(&root, cfg);
        let ino = fs::metadata(root.join("docker/abc")).unwrap().ino();
        assert_eq!(tree.path_of(ino).as_deref(), Some("/docker/abc"));
        let root_ino = fs::metadata(&root).unwrap().ino();
        assert_eq!(tree.path_of(root_ino).as_deref(), Some("/"));
        assert_eq!(tree.stats().walks, 1);
        // a new directory is not found until the rate limit allows a walk...
        fs::create_dir_all(root.join("docker/def")).unwrap();
        let new_ino = fs::metadata(root.join("docker/def")).unwrap().ino();
        assert_eq!(tree.path_of(new_ino), None);
        assert_eq!(tree.path_of(u64::MAX), None);
        assert_eq!(tree.stats().walks, 1);
        assert!(tree.stats().rate_limited >= 2);
        // ...but id_of learns it directly
        assert_eq!(tree.id_of("/docker/def/").unwrap(), new_ino);
        assert_eq!(tree.path_of(new_ino).as_deref(), Some("/docker/def"));
        assert!(tree.id_of("/docker/nope").is_err());
        assert!(tree.id_of("/cgroup.procs").is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn tree_remembers_misses() {
        let root = tmp_tree("b");
        let cfg = CgroupTreeConfig { min_walk_interval: Duration::ZERO, ..Default::default() };
        let tree = CgroupTree::new(&root, cfg);
        for _ in 0..100 {
            assert_eq!(tree.path_of(u64::MAX - 1), None);
        }
        // one walk for the first miss; the rest answered from the miss cache
        assert_eq!(tree.stats().walks, 1);
        assert_eq!(tree.stats().misses, 1);
        // a different unknown id walks again (no interval), and a flood of distinct
        // ids stays bounded in memory
        let cfg = CgroupTreeConfig { min_walk_interval: Duration::ZERO, max_misses: 8, ..Default::default() };
        let tree = CgroupTree::new(&root, cfg);
        for id in 0..50u64 {
            tree.path_of(u64::MAX - 100 - id);
        }
        assert!(tree.lock().misses.len() <= 8);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn real_cgroup2_mount_resolves_own_cgroup() {
        let Ok(root) = find_cgroup2_mount() else { return };
        let Ok(path) = cgroup_path_of_pid(std::process::id()) else { return };
        let tree = CgroupTree::new(root, CgroupTreeConfig::default());
        let Ok(id) = tree.id_of(&path) else { return };
        let tree2 = CgroupTree::new(tree.root(), CgroupTreeConfig::default());
        assert_eq!(tree2.path_of(id).as_deref(), Some(normalize(&path).as_str()));
    }
}

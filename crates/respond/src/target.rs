//! Which container a response acts on, and where it lives in the kernel: its
//! cgroup v2 directory and id (the key of every network policy map), its init
//! process, whether it has a network namespace of its own.

use crate::Error;
use model::{Container, Runtime};
use runtime::cgroupfs::{cgroup_path_of_pid, find_cgroup2_mount};
use runtime::{parse_cgroup_path, Discovered, Runtimes};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A container's cgroup v2: path relative to the cgroup2 mount, full
/// directory, and id (the directory's inode, what `bpf_get_current_cgroup_id`
/// returns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupRef {
    pub path: String,
    pub dir: PathBuf,
    pub id: u64,
}

impl CgroupRef {
    /// The cgroup at `path` (relative to the cgroup2 mount `root`).
    pub fn at(root: &Path, path: &str) -> Result<CgroupRef, std::io::Error> {
        let rel = path.trim_matches('/');
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
        let md = std::fs::metadata(&dir)?;
        if !md.is_dir() {
            return Err(std::io::Error::other("not a cgroup directory"));
        }
        Ok(CgroupRef { path: format!("/{rel}"), dir, id: md.ino() })
    }

    /// A process of the cgroup (the first in `cgroup.procs`), if any.
    pub fn any_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("cgroup.procs")).ok()?;
        text.lines().find_map(|l| l.trim().parse().ok())
    }
}

/// A container to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub id: String,
    pub name: String,
    /// The runtime that runs it (`None`: not known, e.g. a stored record).
    pub runtime: Option<Runtime>,
    /// Host pid of a process of the container (its init when known); `None`
    /// when it does not run.
    pub pid: Option<u32>,
    /// Its cgroup v2, when it runs.
    pub cgroup: Option<CgroupRef>,
    /// Whether it has a network namespace of its own (`None`: unknown).
    pub private_netns: Option<bool>,
}

impl Target {
    pub fn running(&self) -> bool {
        self.cgroup.is_some()
    }

    /// `name (short id)` for messages.
    pub fn label(&self) -> String {
        let short = &self.id[..self.id.len().min(12)];
        if self.name.is_empty() {
            short.to_string()
        } else {
            format!("{} ({short})", self.name)
        }
    }

    /// The running container's cgroup, or why there is none.
    pub fn require_cgroup(&self) -> Result<&CgroupRef, Error> {
        self.cgroup.as_ref().ok_or_else(|| Error::NotRunning { id: self.id.clone(), name: self.name.clone() })
    }

    /// From a runtime's answer: the cgroup comes from the init pid's
    /// `/proc/<pid>/cgroup`, checked to name this container (a pid can be reused).
    pub fn from_discovered(d: &Discovered) -> Result<Target, Error> {
        let mut t = Target {
            id: d.container.id.clone(),
            name: d.container.name.trim_start_matches('/').to_string(),
            runtime: d.container.runtime,
            pid: d.pid,
            cgroup: None,
            private_netns: None,
        };
        let Some(pid) = d.pid else { return Ok(t) };
        let no_cgroup = |reason: String| Error::NoCgroup { id: t.id.clone(), reason };
        let path = cgroup_path_of_pid(pid).map_err(|e| no_cgroup(e.to_string()))?;
        if !cgroup_names_container(&path, &t.id) {
            return Err(no_cgroup(format!(
                "pid {pid} is in cgroup {path}, which does not name the container"
            )));
        }
        let root = find_cgroup2_mount().map_err(|e| no_cgroup(e.to_string()))?;
        let cg =
            CgroupRef::at(&root, &path).map_err(|e| no_cgroup(format!("{}{path}: {e}", root.display())))?;
        t.private_netns = private_netns(pid);
        t.cgroup = Some(cg);
        Ok(t)
    }

    /// From rampart's container model (what the rules engine and the lead's
    /// actions hold): needs its `cgroup_path`; no runtime call.
    pub fn from_container(c: &Container) -> Result<Target, Error> {
        let mut t = Target {
            id: c.id.clone(),
            name: c.name.trim_start_matches('/').to_string(),
            runtime: c.runtime,
            pid: None,
            cgroup: None,
            private_netns: None,
        };
        if c.cgroup_path.is_empty() {
            return Err(Error::NoCgroup {
                id: c.id.clone(),
                reason: "its cgroup path is not known yet".into(),
            });
        }
        let root =
            find_cgroup2_mount().map_err(|e| Error::NoCgroup { id: c.id.clone(), reason: e.to_string() })?;
        let cg = CgroupRef::at(&root, &c.cgroup_path).map_err(|e| Error::NoCgroup {
            id: c.id.clone(),
            reason: format!("{}{}: {e}", root.display(), c.cgroup_path),
        })?;
        t.pid = cg.any_pid();
        t.private_netns = t.pid.and_then(private_netns);
        t.cgroup = Some(cg);
        Ok(t)
    }

    /// The container `query` names (name, id or unique id prefix), asked of
    /// every runtime in `runtimes`.
    pub async fn resolve(runtimes: &Runtimes, query: &str) -> Result<Target, Error> {
        let d = runtimes.find(query).await?;
        Target::from_discovered(&d)
    }
}

/// Whether the cgroup path of a container's init names that container (its
/// pid may have been reused): as the runtimes' naming says, or, for ids users
/// choose (`ctr run img myname` lives in `/<namespace>/myname`), as the last
/// path component, bare or as a runtime's `<prefix>-<id>[.scope]`.
pub fn cgroup_names_container(path: &str, id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    if parse_cgroup_path(path).map(|p| p.id).as_deref() == Some(id) {
        return true;
    }
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let prefixed = last.strip_suffix(id).and_then(|p| p.strip_suffix('-'));
    last == id || prefixed.is_some_and(|p| RUNTIME_PREFIXES.contains(&p))
}

/// How the runtimes prefix a container id in a cgroup's name.
const RUNTIME_PREFIXES: [&str; 4] = ["docker", "cri-containerd", "crio", "libpod"];

/// Whether `pid` is in a network namespace other than ours (rampart runs in
/// the host's).
pub fn private_netns(pid: u32) -> Option<bool> {
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
    let ours = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    Some(theirs != ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_ref_reads_inode_and_procs() {
        let root = std::env::temp_dir().join(format!("rampart-respond-cg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("docker/abc")).unwrap();
        std::fs::write(root.join("docker/abc/cgroup.procs"), "\n42\n43\n").unwrap();
        let cg = CgroupRef::at(&root, "/docker/abc/").unwrap();
        assert_eq!(cg.path, "/docker/abc");
        assert_eq!(cg.id, std::fs::metadata(root.join("docker/abc")).unwrap().ino());
        assert_eq!(cg.any_pid(), Some(42));
        assert!(CgroupRef::at(&root, "/docker/nope").is_err());
        assert!(CgroupRef::at(&root, "/docker/abc/cgroup.procs").is_err());
        let t = Target {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            runtime: None,
            pid: None,
            cgroup: None,
            private_netns: None,
        };
        assert_eq!(t.label(), "web (0123456789ab)");
        assert!(matches!(t.require_cgroup(), Err(Error::NotRunning { .. })));
        let c = Container { id: "x".into(), ..Default::default() };
        assert!(matches!(Target::from_container(&c), Err(Error::NoCgroup { .. })));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cgroup_paths_name_their_containers() {
        let docker = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(cgroup_names_container(&format!("/docker/{docker}"), docker));
        assert!(cgroup_names_container(&format!("/system.slice/docker-{docker}.scope"), docker));
        assert!(cgroup_names_container(&format!("/libpod_parent/libpod-{docker}"), docker));
        assert!(cgroup_names_container("/trytest/ctr-try", "ctr-try"), "a ctr id users chose");
        assert!(!cgroup_names_container("/trytest/ctr-try", "try"), "a suffix is not the id");
        assert!(!cgroup_names_container("/trytest/other", "ctr-try"));
        assert!(!cgroup_names_container("/user.slice", ""));
        assert!(!cgroup_names_container(&format!("/docker/{docker}"), "abc"));
    }

    #[test]
    fn own_netns_is_not_private() {
        assert_eq!(private_netns(std::process::id()), Some(false));
        assert_eq!(private_netns(u32::MAX), None);
    }
}

//! User and group names as a process's own root sees them: `/etc/passwd` and
//! `/etc/group` read through `/proc/<pid>/root` (the container's files, not
//! the host's), cached per container (per mount namespace for host
//! processes).
//!
//! The container wrote those files, so they are hostile input: opened with
//! `openat2(RESOLVE_IN_ROOT)` under the process's root (an absolute symlink
//! such as `/etc/passwd -> /etc/shadow` resolves inside the container, never
//! to the host's file), non-blocking and regular files only (a FIFO or a
//! device is refused), at most [`MAX_FILE_BYTES`] read, malformed lines
//! skipped, fields bounded. Names stay untrusted text: outputs escape them.

use model::UserNames;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes read of each file (a real one is a few KiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Entries kept per file.
pub const MAX_ENTRIES: usize = 65_536;
/// Bytes kept of a name, a home directory or a shell.
pub const MAX_FIELD: usize = 256;
/// Containers (and host mount namespaces) whose files are cached.
pub const MAX_ROOTS: usize = 1024;
/// How long (event time) files stay cached before they are read again
/// (`useradd` in a running container).
pub const TTL_NS: u64 = 60_000_000_000;
/// How long a root whose files could not be read waits before a retry.
pub const FAILED_TTL_NS: u64 = 5_000_000_000;
/// A failed read is retried sooner through another process of the same root
/// (the first may have exited before the agent got to it), at most this often.
pub const RETRY_OTHER_PID_NS: u64 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub home: String,
    pub shell: String,
}

/// One root's passwd and group files, parsed.
#[derive(Debug, Default, Clone)]
pub struct Db {
    pub users: HashMap<u32, User>,
    pub groups: HashMap<u32, String>,
}

fn field(s: &str) -> Option<String> {
    if s.len() > MAX_FIELD {
        return None;
    }
    Some(s.to_string())
}

/// `name:passwd:uid:gid:gecos:home:shell` lines; the first entry of a uid
/// wins (as getpwuid does); malformed lines are skipped.
pub fn parse_passwd(text: &str) -> HashMap<u32, User> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if out.len() >= MAX_ENTRIES {
            break;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 7 || f[0].is_empty() || line.starts_with('#') {
            continue;
        }
        let Ok(uid) = f[2].parse::<u32>() else { continue };
        let (Some(name), Some(home), Some(shell)) = (field(f[0]), field(f[5]), field(f[6])) else { continue };
        out.entry(uid).or_insert(User { name, home, shell });
    }
    out
}

/// `name:passwd:gid:members` lines.
pub fn parse_group(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if out.len() >= MAX_ENTRIES {
            break;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 4 || f[0].is_empty() || line.starts_with('#') {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else { continue };
        let Some(name) = field(f[0]) else { continue };
        out.entry(gid).or_insert(name);
    }
    out
}

/// Open `rel` (relative, e.g. `etc/passwd`) under the directory `root` as if
/// `root` were `/`: symlinks and `..` cannot leave it.
fn open_in_root(root: &Path, rel: &str) -> std::io::Result<File> {
    let c = |p: &str| CString::new(p).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput));
    let root_c = c(&root.to_string_lossy())?;
    // SAFETY: a valid NUL-terminated path; the fd returned is owned below.
    let dir = unsafe { libc::open(root_c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if dir < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `dir` is a file descriptor we just opened and own.
    let dir = unsafe { OwnedFd::from_raw_fd(dir) };
    let rel_c = c(rel)?;
    // struct open_how (linux/openat2.h); libc's is non-exhaustive.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dirfd, a NUL-terminated path and a
    // properly sized open_how; the fd returned is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel_c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a new file descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd as i32) };
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// At most [`MAX_FILE_BYTES`] of the file, whole lines only, lossy UTF-8.
fn read_text(root: &Path, rel: &str) -> Option<String> {
    let mut buf = Vec::new();
    open_in_root(root, rel).ok()?.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut buf).ok()?;
    if buf.len() > MAX_FILE_BYTES {
        buf.truncate(MAX_FILE_BYTES);
        // drop the line the bound cut
        let end = buf.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        buf.truncate(end);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The passwd and group files under `root` (a directory standing for `/`);
/// `None` when neither can be read.
pub fn read_db(root: &Path) -> Option<Db> {
    let passwd = read_text(root, "etc/passwd");
    let group = read_text(root, "etc/group");
    if passwd.is_none() && group.is_none() {
        return None;
    }
    Some(Db {
        users: passwd.as_deref().map(parse_passwd).unwrap_or_default(),
        groups: group.as_deref().map(parse_group).unwrap_or_default(),
    })
}

/// Sets of names kept per root; the cache starts over when full.
pub const MAX_NAME_SETS: usize = 256;

struct Cached {
    db: Option<Db>,
    /// Names already built from `db`, by (euid, egid, auid): events share them.
    names: HashMap<(u32, u32, u32), Option<Arc<UserNames>>>,
    loaded_ns: u64,
    /// The pid the (failed) read went through.
    pid: u32,
}

/// Which files a process sees: its container's (by cgroup: one per
/// container), or its mount namespace's (host processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootKey {
    Cgroup(u64),
    MntNs(u32),
}

/// The cache of parsed files per root. Reads happen on a miss or when the
/// entry is older than [`TTL_NS`]; at most [`MAX_ROOTS`] roots are kept (the
/// oldest read goes first).
pub struct UserDbs {
    proc_root: PathBuf,
    roots: HashMap<RootKey, Cached>,
    /// The last answer of [`Self::names`] from a loaded file, with the time
    /// its root was read: consecutive events mostly come from one process,
    /// and this spares them the three map lookups.
    last: Option<LastNames>,
    /// Reads of passwd/group files done (for tests and stats).
    pub reads: u64,
}

struct LastNames {
    key: RootKey,
    ids: (u32, u32, u32),
    loaded_ns: u64,
    names: Option<Arc<UserNames>>,
}

impl UserDbs {
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        UserDbs { proc_root: proc_root.into(), roots: HashMap::new(), last: None, reads: 0 }
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The db of `key`, read through `/proc/<pid>/root` when missing or stale.
    pub fn db(&mut self, key: &RootKey, pid: u32, now_ns: u64) -> Option<&Db> {
        let fresh = self.roots.get(key).is_some_and(|c| {
            let age = now_ns.saturating_sub(c.loaded_ns);
            match &c.db {
                Some(_) => age < TTL_NS,
                None if c.pid != pid => age < RETRY_OTHER_PID_NS,
                None => age < FAILED_TTL_NS,
            }
        });
        if !fresh {
            self.reads += 1;
            let db = read_db(&self.proc_root.join(pid.to_string()).join("root"));
            if !self.roots.contains_key(key) && self.roots.len() >= MAX_ROOTS {
                if let Some(oldest) = self.roots.iter().min_by_key(|(_, c)| c.loaded_ns).map(|(k, _)| *k) {
                    self.roots.remove(&oldest);
                }
            }
            self.roots.insert(*key, Cached { db, names: HashMap::new(), loaded_ns: now_ns, pid });
        }
        self.roots.get(key).and_then(|c| c.db.as_ref())
    }

    /// The names of the event's effective uid and gid and login uid, built
    /// once per root and ids and then shared.
    pub fn names(&mut self, ev: &model::Event) -> Option<Arc<UserNames>> {
        let p = &ev.process;
        if p.pid == 0 {
            return None;
        }
        let key = match &ev.container {
            Some(_) => RootKey::Cgroup(p.cgroup_id),
            None => RootKey::MntNs(p.mnt_ns),
        };
        let ids = (p.euid, p.egid, p.auid);
        if let Some(l) = &self.last {
            // still what the maps would give: same root and ids, its file not due for a re-read
            if l.key == key && l.ids == ids && ev.ts_ns.saturating_sub(l.loaded_ns) < TTL_NS {
                return l.names.clone();
            }
        }
        self.db(&key, p.pid, ev.ts_ns)?;
        let cached = self.roots.get_mut(&key)?;
        if let Some(names) = cached.names.get(&ids) {
            let names = names.clone();
            self.last = Some(LastNames { key, ids, loaded_ns: cached.loaded_ns, names: names.clone() });
            return names;
        }
        let db = cached.db.as_ref()?;
        let user = db.users.get(&p.euid);
        let names = UserNames {
            name: user.map(|u| u.name.clone()),
            homedir: user.map(|u| u.home.clone()),
            shell: user.map(|u| u.shell.clone()),
            group: db.groups.get(&p.egid).cloned(),
            loginname: db.users.get(&p.auid).map(|u| u.name.clone()),
        };
        let names = (names != UserNames::default()).then(|| Arc::new(names));
        if cached.names.len() >= MAX_NAME_SETS {
            cached.names.clear();
        }
        cached.names.insert(ids, names.clone());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_parsed_and_bad_ones_skipped() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    # comment:x:1:1:a:b:c\n\
                    www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                    short:x:5\n\
                    baduid:x:-1:0::/:/bin/sh\n\
                    big:x:99999999999:0::/:/bin/sh\n\
                    :x:7:7::/:/bin/sh\n\
                    dup:x:33:33::/dup:/bin/sh\n\
                    esc\u{1b}[31m:x:1000:1000::/home/e:/bin/sh\n";
        let u = parse_passwd(text);
        assert_eq!(u.len(), 3);
        assert_eq!(u[&0], User { name: "root".into(), home: "/root".into(), shell: "/bin/bash".into() });
        assert_eq!(u[&33].name, "www-data", "the first entry of a uid wins");
        // control characters are kept as text: outputs escape them
        assert_eq!(u[&1000].name, "esc\u{1b}[31m");
        let long = format!("{}:x:1:1::/:/bin/sh\n", "a".repeat(MAX_FIELD + 1));
        assert!(parse_passwd(&long).is_empty());
        let g = parse_group("root:x:0:\nwheel:x:10:alice,bob\nbad:x:zz:\nnope\n");
        assert_eq!((g.len(), g[&10].as_str()), (2, "wheel"));
    }

    fn rootfs(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rampart-users-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        dir
    }

    #[test]
    fn files_are_read_inside_the_root_only() {
        let root = rootfs("symlink");
        // an absolute symlink resolves inside the root, not to the host's file
        std::os::unix::fs::symlink("/etc/shadow-of-root", root.join("etc/passwd")).unwrap();
        std::fs::write(root.join("etc/shadow-of-root"), "inside:x:5:5::/in:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/hostname", root.join("etc/group")).unwrap();
        let db = read_db(&root).unwrap();
        assert_eq!(db.users[&5].name, "inside");
        assert!(db.groups.is_empty(), "'..' cannot climb out of the root");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn fifos_devices_and_huge_files_are_bounded() {
        let root = rootfs("fifo");
        let fifo = CString::new(root.join("etc/passwd").to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/group")).unwrap();
        let t = std::time::Instant::now();
        assert!(read_db(&root).is_none(), "a FIFO and a device are refused without blocking");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        std::fs::remove_dir_all(&root).unwrap();

        let root = rootfs("huge");
        let mut text = "root:x:0:0:root:/root:/bin/sh\n".to_string();
        while text.len() < MAX_FILE_BYTES + 100 {
            text.push_str("filler:x:1:1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:/:/bin/sh\n");
        }
        std::fs::write(root.join("etc/passwd"), &text).unwrap();
        let db = read_db(&root).unwrap();
        assert_eq!(db.users[&0].name, "root");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn cache_per_root_with_ttl_and_bound() {
        // a fake procfs: <proc>/<pid>/root/etc/passwd
        let proc = rootfs("proc");
        for pid in [10, 11] {
            let etc = proc.join(format!("{pid}/root/etc"));
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(etc.join("passwd"), format!("user{pid}:x:1000:1000::/home/u{pid}:/bin/sh\n"))
                .unwrap();
            std::fs::write(etc.join("group"), format!("grp{pid}:x:1000:\n")).unwrap();
        }
        let mut dbs = UserDbs::new(&proc);
        let mut ev = model::Event {
            ts_ns: 1,
            process: model::ProcessCtx {
                pid: 10,
                euid: 1000,
                egid: 1000,
                auid: u32::MAX,
                ..Default::default()
            },
            container: Some(std::sync::Arc::new(model::Container { id: "c1".into(), ..Default::default() })),
            ret: None,
            syscall: None,
            kind: model::EventKind::Bpf { cmd: 0 },
        };
        let n = dbs.names(&ev).unwrap();
        assert_eq!(
            (n.name.as_deref(), n.homedir.as_deref(), n.group.as_deref(), n.loginname.as_deref()),
            (Some("user10"), Some("/home/u10"), Some("grp10"), None)
        );
        // same container, another pid: cached, and the same set shared
        ev.process.pid = 11;
        assert!(Arc::ptr_eq(&dbs.names(&ev).unwrap(), &n));
        assert_eq!(dbs.reads, 1);
        // other ids of the same container: another set, from the same read
        ev.process.euid = 0;
        assert_eq!(dbs.names(&ev).unwrap().name, None);
        assert_eq!(dbs.reads, 1);
        ev.process.euid = 1000;
        // after the TTL it is read again (through that event's pid)
        ev.ts_ns += TTL_NS;
        assert_eq!(dbs.names(&ev).unwrap().name.as_deref(), Some("user11"));
        assert_eq!(dbs.reads, 2);
        // host processes: per mount namespace; a gone process: no names
        ev.container = None;
        ev.process.pid = 12;
        assert!(dbs.names(&ev).is_none());
        assert_eq!(dbs.reads, 3);
        // the failure is remembered for that pid; another pid of the same
        // root retries after a short while
        assert!(dbs.names(&ev).is_none());
        assert_eq!(dbs.reads, 3);
        ev.process.pid = 10;
        assert!(dbs.names(&ev).is_none(), "not retried at once");
        ev.ts_ns += RETRY_OTHER_PID_NS;
        assert_eq!(dbs.names(&ev).unwrap().name.as_deref(), Some("user10"));
        assert_eq!(dbs.reads, 4);
        // bounded
        for i in 0..MAX_ROOTS as u32 + 10 {
            dbs.db(&RootKey::MntNs(i), 10, ev.ts_ns + u64::from(i));
        }
        assert_eq!(dbs.len(), MAX_ROOTS);
        std::fs::remove_dir_all(&proc).unwrap();
    }
}

//! Learning new cgroups the moment they are created (inotify on the cgroup2
//! tree), so a container that lives only a few milliseconds still resolves:
//! its directory may be gone by the time its first event is processed, and an
//! id whose directory is gone cannot be found by walking the tree.

use crate::cgroup::parse_cgroup_path;
use crate::cgroupfs::CgroupTree;
use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use tracing::{debug, warn};

/// Directories watched at most (each costs one inotify watch, a kernel object
/// counted against `fs.inotify.max_user_watches`).
const MAX_WATCHES: usize = 4096;
/// Deeper cgroups are not watched (containers sit within the first few levels).
const MAX_DEPTH: usize = 8;

/// Watches `tree`'s hierarchy on a thread of its own for the life of the
/// process; every directory created is stat'ed at once and remembered.
pub fn spawn_cgroup_watcher(tree: Arc<CgroupTree>) -> io::Result<()> {
    // SAFETY: inotify_init1 takes flags only and returns a new fd or -1.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut watcher = Watcher { fd, tree, dirs: HashMap::new() };
    watcher.add_tree("/", 0);
    std::thread::Builder::new().name("rampart-cgroups".into()).spawn(move || watcher.run())?;
    Ok(())
}

struct Watcher {
    fd: i32,
    tree: Arc<CgroupTree>,
    /// watch descriptor -> (path relative to the mount, depth)
    dirs: HashMap<i32, (String, usize)>,
}

impl Watcher {
    /// Watch `rel` and, recursively, its existing subdirectories.
    fn add_tree(&mut self, rel: &str, depth: usize) {
        if depth > MAX_DEPTH || self.dirs.len() >= MAX_WATCHES {
            return;
        }
        let full = self.tree.root().join(rel.trim_start_matches('/'));
        let Ok(c) = CString::new(full.as_os_str().as_encoded_bytes()) else { return };
        let mask = libc::IN_CREATE | libc::IN_DELETE | libc::IN_ONLYDIR;
        // SAFETY: a valid fd and a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), mask) };
        if wd < 0 {
            return; // removed meanwhile, or out of watches
        }
        self.dirs.insert(wd, (rel.to_string(), depth));
        if let Ok(entries) = std::fs::read_dir(&full) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let child = join(rel, &e.file_name().to_string_lossy());
                    let _ = self.tree.id_of(&child);
                    self.add_tree(&child, depth + 1);
                }
            }
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, of the length we pass.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!(error = %e, "cgroup watcher stopped: short-lived containers may go unattributed");
                return;
            }
            let n = n as usize;
            let mut off = 0;
            let header = std::mem::size_of::<libc::inotify_event>();
            while off + header <= n {
                // SAFETY: the kernel wrote whole records; read_unaligned copes with
                // the byte buffer's alignment.
                let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                let name_bytes = &buf[off + header..(off + header + ev.len as usize).min(n)];
                let name = String::from_utf8_lossy(name_bytes.split(|b| *b == 0).next().unwrap_or_default());
                off += header + ev.len as usize;
                self.handle(ev.wd, ev.mask, &name);
            }
        }
    }

    fn handle(&mut self, wd: i32, mask: u32, name: &str) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            debug!("cgroup watcher queue overflowed; walking the tree");
            self.tree.refresh();
            return;
        }
        if mask & libc::IN_IGNORED != 0 {
            self.dirs.remove(&wd);
            return;
        }
        if mask & libc::IN_ISDIR == 0 || name.is_empty() {
            return;
        }
        let Some((parent, depth)) = self.dirs.get(&wd).cloned() else { return };
        let rel = join(&parent, name);
        if mask & libc::IN_CREATE != 0 {
            // Remember the id now: the directory may live only milliseconds.
            let _ = self.tree.id_of(&rel);
            self.add_tree(&rel, depth + 1);
        } else if mask & libc::IN_DELETE != 0 && parse_cgroup_path(&rel).is_none() {
            // Host cgroups come and go (transient units): don't let them pile up.
            // Containers' stay until the registry forgets the container, so late
            // events still resolve.
            self.tree.forget_path(&rel);
        }
    }
}

fn join(parent: &str, name: &str) -> String {
    let p = Path::new(parent).join(name);
    p.to_string_lossy().into_owned()
}

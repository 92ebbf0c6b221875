//! Reload on file change: notices edits of the config file and of the rule
//! files and directories, and says when a reload is due.
//!
//! Why a 1 s poll and not inotify: what must be noticed is "the file this
//! path names now is another one or was written". Kubernetes ConfigMap mounts
//! make each file a symlink through `..data`, a symlink swapped atomically to a
//! new directory; editors write a temporary file and rename it over the old
//! one. inotify watches inodes, so both would need watches on every parent
//! directory along the symlink chain, re-armed after each swap, and it misses
//! changes on network filesystems. Resolving each path and comparing (target,
//! dev, inode, mtime, size) once a second sees all of these with a handful of
//! `stat` calls (bounded by [`MAX_WATCHED_FILES`]), and no extra dependency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the paths are looked at.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Files (config, rule files, directory entries) looked at per poll; past
/// this, the rest of a huge directory is not watched (said once at start).
pub const MAX_WATCHED_FILES: usize = 1024;

/// What a path resolved to at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Found {
        target: PathBuf,
        dev: u64,
        ino: u64,
        mtime_ns: i128,
        size: u64,
    },
    /// Missing or unreadable (the error kind): a change too when it appears.
    Absent(std::io::ErrorKind),
}

type Snapshot = Vec<(PathBuf, Seen)>;

fn look(path: &Path) -> Seen {
    use std::os::unix::fs::MetadataExt;
    let target = match std::fs::canonicalize(path) {
        Ok(t) => t,
        Err(e) => return Seen::Absent(e.kind()),
    };
    match std::fs::metadata(&target) {
        Ok(m) => Seen::Found {
            target,
            dev: m.dev(),
            ino: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            size: m.size(),
        },
        Err(e) => Seen::Absent(e.kind()),
    }
}

/// Watches a set of roots (files or directories; a directory's rule files are
/// watched too, and the directory itself for files added or removed).
pub struct FileWatch {
    pub(super) roots: Vec<PathBuf>,
    last: Snapshot,
    /// A change seen at the last poll, waiting for the files to settle.
    pending: Option<Snapshot>,
    next_poll: Instant,
    /// Whether the bound was hit (said once per set of roots).
    truncated: bool,
}

impl FileWatch {
    pub fn new(roots: Vec<PathBuf>, now: Instant) -> FileWatch {
        let mut w = FileWatch {
            roots: Vec::new(),
            last: Vec::new(),
            pending: None,
            next_poll: now,
            truncated: false,
        };
        w.rearm(roots, now);
        w
    }

    /// Watches `roots` from now on, taking the current state as the baseline
    /// (called on every reload, whatever triggered it).
    pub fn rearm(&mut self, roots: Vec<PathBuf>, now: Instant) {
        self.roots = roots;
        let (snap, truncated) = self.snapshot();
        if truncated && !self.truncated {
            eprintln!(
                "rampart: warning: more than {MAX_WATCHED_FILES} rule files; changes past the first {MAX_WATCHED_FILES} are not noticed (send SIGHUP)"
            );
        }
        self.truncated = truncated;
        self.last = snap;
        self.pending = None;
        self.next_poll = now + POLL_INTERVAL;
    }

    fn snapshot(&self) -> (Snapshot, bool) {
        let mut snap = Vec::new();
        for root in &self.roots {
            if snap.len() >= MAX_WATCHED_FILES {
                return (snap, true);
            }
            snap.push((root.clone(), look(root)));
            if root.is_dir() {
                let Ok(files) = super::detect::rule_files(root) else { continue };
                for f in files {
                    if snap.len() >= MAX_WATCHED_FILES {
                        return (snap, true);
                    }
                    let seen = look(&f);
                    snap.push((f, seen));
                }
            }
        }
        (snap, false)
    }

    /// Looks at the files when a poll is due; true once a change has settled
    /// (the same state at two polls in a row), so that a burst of writes or a
    /// half-copied directory gives one reload, with the final content.
    pub fn poll(&mut self, now: Instant) -> bool {
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + POLL_INTERVAL;
        let (snap, _) = self.snapshot();
        if snap == self.last {
            self.pending = None;
            return false;
        }
        if self.pending.as_ref() == Some(&snap) {
            return true;
        }
        self.pending = Some(snap);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls as if time went by (each poll when due), until the watch says a
    /// reload is due: at which poll, or `None` within `polls`.
    fn due_within(w: &mut FileWatch, polls: u32) -> Option<u32> {
        (1..=polls).find(|_| {
            let due = w.next_poll;
            w.poll(due)
        })
    }

    #[test]
    fn an_edit_is_due_once_it_settles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.yaml");
        std::fs::write(&file, "a").unwrap();
        let t0 = Instant::now();
        let mut w = FileWatch::new(vec![file.clone()], t0);
        assert_eq!(due_within(&mut w, 3), None, "nothing changed");
        assert!(!w.poll(Instant::now()), "not before the poll is due");
        std::fs::write(&file, "bb").unwrap();
        // The first poll sees the change, the second sees it settled.
        assert_eq!(due_within(&mut w, 3), Some(2));
        w.rearm(vec![file], t0);
        assert_eq!(due_within(&mut w, 3), None, "rearmed on the new state");
    }

    #[test]
    fn rename_over_and_new_files_in_a_directory_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "x").unwrap();
        let t0 = Instant::now();
        let mut w = FileWatch::new(vec![dir.path().to_path_buf()], t0);
        // An editor's save: same size, new inode.
        std::fs::write(dir.path().join(".a.yaml.tmp"), "y").unwrap();
        std::fs::rename(dir.path().join(".a.yaml.tmp"), dir.path().join("a.yaml")).unwrap();
        assert!(due_within(&mut w, 3).is_some());
        w.rearm(vec![dir.path().to_path_buf()], t0);
        std::fs::write(dir.path().join("b.yml"), "z").unwrap();
        assert!(due_within(&mut w, 3).is_some());
    }

    #[test]
    fn a_configmap_style_symlink_swap_is_seen() {
        // dir/rules.yaml -> ..data/rules.yaml, ..data -> ..v1, then ..v2.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for v in ["..v1", "..v2"] {
            std::fs::create_dir(d.join(v)).unwrap();
            std::fs::write(d.join(v).join("rules.yaml"), "same").unwrap();
        }
        std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/rules.yaml", d.join("rules.yaml")).unwrap();
        let t0 = Instant::now();
        let mut w = FileWatch::new(vec![d.to_path_buf()], t0);
        assert_eq!(due_within(&mut w, 2), None);
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert!(due_within(&mut w, 3).is_some(), "same content, new target");
    }

    #[test]
    fn what_is_watched_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_WATCHED_FILES + 10 {
            std::fs::write(dir.path().join(format!("{i:05}.yaml")), "").unwrap();
        }
        let w = FileWatch::new(vec![dir.path().to_path_buf()], Instant::now());
        assert!(w.truncated);
        assert_eq!(w.last.len(), MAX_WATCHED_FILES);
    }
}

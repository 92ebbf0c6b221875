//! Image content checks, through a container's root filesystem as the host
//! sees it (`/proc/<pid>/root` of a running container, an OCI bundle's
//! rootfs): shells, package managers, setuid/setgid files, world-writable
//! directories in PATH.
//!
//! The rootfs belongs to the container and may be hostile: symlinks are
//! resolved by hand inside it (never by the host's resolver, which would
//! follow an absolute link out to the host's /), the walk stays on the root
//! filesystem's device (no volumes, no host bind mounts) and is bounded in
//! entries and depth.

use crate::checks::{Finding, Severity};
use crate::config::{SourceKind, Subject};
use std::collections::VecDeque;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bounds of one rootfs walk.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_depth: usize,
    /// How many files one finding lists.
    pub max_listed: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_entries: 250_000, max_depth: 32, max_listed: 12 }
    }
}

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub shells: Vec<String>,
    pub package_managers: Vec<String>,
    /// `path (mode, uid)` of setuid/setgid regular files.
    pub setuid: Vec<String>,
    pub world_writable_path: Vec<String>,
    pub entries: usize,
    /// The walk stopped at a bound.
    pub truncated: bool,
    /// Entries that could not be read.
    pub unreadable: usize,
}

const SHELLS: &[&str] =
    &["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"];
const PACKAGE_MANAGERS: &[&str] = &[
    "apt", "apt-get", "dpkg", "rpm", "yum", "dnf", "microdnf", "tdnf", "apk", "zypper", "pacman", "opkg",
    "emerge",
];
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Top-level directories that are not image content.
const SKIP_TOP: &[&str] = &["proc", "sys", "dev"];

fn components(p: &str) -> VecDeque<String> {
    p.split('/').filter(|c| !c.is_empty() && *c != ".").map(str::to_string).collect()
}

/// `path` inside `root`, with every symlink resolved inside `root` (absolute
/// targets restart at `root`, `..` stops at it). `None` when it does not exist
/// or links loop.
pub fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut todo = components(path);
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        cur.push(c);
        let full = root.join(cur.join("/"));
        let md = std::fs::symlink_metadata(&full).ok()?;
        if md.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&full).ok()?;
            let target = target.to_string_lossy().into_owned();
            cur.pop();
            if target.starts_with('/') {
                cur.clear();
            }
            let mut next = components(&target);
            next.extend(todo);
            todo = next;
        }
    }
    Some(root.join(cur.join("/")))
}

/// The uid of a user name from the rootfs's /etc/passwd.
pub fn lookup_user(root: &Path, name: &str) -> Option<u32> {
    let passwd = resolve(root, "/etc/passwd")?;
    // The image chose this file: a FIFO, a device or a huge file is no user.
    let text = model::input::read_text(&passwd, model::input::limits::IMAGE_FILE).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Walks a rootfs.
pub fn scan(root: &Path, path_env: Option<&str>, limits: Limits) -> std::io::Result<Scan> {
    let root_md = std::fs::metadata(root)?;
    if !root_md.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"));
    }
    let dev = root_md.dev();
    let mut out = Scan::default();
    let path = path_env.filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PATH);
    let mut dirs: Vec<String> = path.split(':').filter(|d| d.starts_with('/')).map(str::to_string).collect();
    for d in ["/bin", "/sbin", "/usr/bin", "/usr/sbin"] {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    }
    for (names, found) in [(SHELLS, &mut out.shells), (PACKAGE_MANAGERS, &mut out.package_managers)] {
        for name in names {
            if let Some(d) =
                dirs.iter().find(|d| resolve(root, &format!("{d}/{name}")).is_some_and(|p| p.is_file()))
            {
                found.push(format!("{}/{name}", d.trim_end_matches('/')));
            }
        }
    }
    for d in path.split(':').filter(|d| d.starts_with('/')) {
        let Some(p) = resolve(root, d) else { continue };
        let Ok(md) = std::fs::metadata(&p) else { continue };
        let mode = md.permissions().mode();
        if md.is_dir()
            && mode & 0o002 != 0
            && !out.world_writable_path.iter().any(|w| w.starts_with(&format!("{d} ")))
        {
            out.world_writable_path.push(format!(
                "{d} (mode {:o}{})",
                mode & 0o7777,
                if mode & 0o1000 != 0 { ", sticky" } else { "" }
            ));
        }
    }

    // Depth-first walk on the root's device, bounded.
    let mut stack: Vec<(PathBuf, usize)> = vec![(PathBuf::new(), 0)];
    while let Some((rel, depth)) = stack.pop() {
        let dir = root.join(&rel);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            out.unreadable += 1;
            continue;
        };
        for entry in rd {
            let Ok(entry) = entry else {
                out.unreadable += 1;
                continue;
            };
            out.entries += 1;
            if out.entries > limits.max_entries {
                out.truncated = true;
                return Ok(out);
            }
            let name = entry.file_name();
            if depth == 0 && SKIP_TOP.iter().any(|s| name == *s) {
                continue;
            }
            let Ok(md) = entry.metadata() else {
                out.unreadable += 1;
                continue;
            };
            let child = rel.join(&name);
            let ft = md.file_type();
            if ft.is_dir() {
                if md.dev() != dev {
                    continue; // a volume or bind mount, not the image
                }
                if depth + 1 >= limits.max_depth {
                    out.truncated = true;
                    continue;
                }
                stack.push((child, depth + 1));
            } else if ft.is_file() && md.mode() & 0o6000 != 0 {
                let mode = md.mode();
                let kind = match (mode & 0o4000 != 0, mode & 0o2000 != 0) {
                    (true, true) => "setuid+setgid",
                    (true, false) => "setuid",
                    _ => "setgid",
                };
                out.setuid.push(format!(
                    "/{} ({kind}, mode {:o}, owner {})",
                    child.display(),
                    mode & 0o7777,
                    md.uid()
                ));
            }
        }
    }
    out.setuid.sort();
    Ok(out)
}

fn listed(items: &[String], max: usize) -> String {
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

/// The findings of a scan.
pub fn findings(subject: &Subject, scan: &Scan, limits: Limits) -> Vec<Finding> {
    let mut out = Vec::new();
    let docker = matches!(subject.kind, SourceKind::Docker | SourceKind::Podman);
    let mut add = |check: &'static str, severity: Severity, evidence: String, remediation: &str| {
        out.push(Finding {
            check,
            severity,
            evidence,
            key: String::new(),
            remediation: remediation.to_string(),
            fingerprint: String::new(),
            baselined: false,
        });
    };
    if !scan.shells.is_empty() {
        add(
            "image-shell",
            Severity::Low,
            format!("shells: {}", listed(&scan.shells, limits.max_listed)),
            "build the image FROM a distroless or scratch base (multi-stage build), or remove the shells in the final stage",
        );
    }
    if !scan.package_managers.is_empty() {
        add(
            "image-package-manager",
            Severity::Low,
            format!("package managers: {}", listed(&scan.package_managers, limits.max_listed)),
            "remove the package manager in the final image stage (or use a distroless base)",
        );
    }
    if !scan.setuid.is_empty() {
        // no-new-privileges makes the bits inert.
        let sev = if subject.config.no_new_privileges { Severity::Low } else { Severity::Medium };
        add(
            "image-setuid",
            sev,
            format!("{} setuid/setgid files: {}", scan.setuid.len(), listed(&scan.setuid, limits.max_listed)),
            if docker {
                "remove the bits in the Dockerfile (RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +) and run with --security-opt no-new-privileges"
            } else {
                "remove the bits in the image build (find / -xdev -perm /6000 -type f -exec chmod a-s {} +) and block privilege escalation"
            },
        );
    }
    if !scan.world_writable_path.is_empty() {
        add(
            "image-world-writable-path",
            Severity::Medium,
            format!("world-writable PATH directories: {}", scan.world_writable_path.join(", ")),
            "chmod o-w the directory in the image, or take it out of PATH",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn touch(p: &Path, mode: u32) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn resolves_inside_root_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("bin/busybox"), 0o755);
        symlink("/bin/busybox", r.join("bin/sh")).unwrap();
        symlink("../../bin/busybox", r.join("bin/rel")).unwrap();
        // An absolute link to the host's /etc must stay in the root.
        symlink("/etc", r.join("hostetc")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        assert_eq!(resolve(r, "/bin/sh"), Some(r.join("bin/busybox")));
        assert_eq!(resolve(r, "bin/rel"), Some(r.join("bin/busybox")));
        assert_eq!(resolve(r, "/hostetc/passwd"), None, "resolved out of the root");
        assert_eq!(resolve(r, "/loop1"), None);
        assert_eq!(resolve(r, "/../../bin/busybox"), Some(r.join("bin/busybox")));
    }

    #[test]
    fn scans_a_rootfs() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("bin/busybox"), 0o755);
        symlink("busybox", r.join("bin/sh")).unwrap();
        touch(&r.join("usr/bin/apt-get"), 0o755);
        touch(&r.join("usr/bin/passwd"), 0o4755);
        touch(&r.join("usr/bin/wall"), 0o2755);
        touch(&r.join("opt/app/run"), 0o755);
        std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
        std::fs::set_permissions(r.join("usr/local/bin"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::create_dir_all(r.join("proc/1")).unwrap();
        touch(&r.join("proc/1/suid"), 0o4755);
        touch(&r.join("etc/passwd"), 0o644);
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:10001:10001::/app:/bin/false\n",
        )
        .unwrap();

        let s = scan(r, Some("/usr/local/bin:/usr/bin:/bin"), Limits::default()).unwrap();
        assert_eq!(s.shells, vec!["/bin/sh", "/bin/busybox"]);
        assert_eq!(s.package_managers, vec!["/usr/bin/apt-get"]);
        assert_eq!(s.setuid.len(), 2, "{:?}", s.setuid);
        assert!(s.setuid[0].starts_with("/usr/bin/passwd (setuid, mode 4755"), "{:?}", s.setuid);
        assert!(s.setuid[1].starts_with("/usr/bin/wall (setgid"), "{:?}", s.setuid);
        assert_eq!(s.world_writable_path, vec!["/usr/local/bin (mode 777)"]);
        assert!(!s.truncated);
        assert_eq!(lookup_user(r, "app"), Some(10001));
        assert_eq!(lookup_user(r, "nobody"), None);

        let small = scan(r, None, Limits { max_entries: 3, ..Default::default() }).unwrap();
        assert!(small.truncated);
        let shallow = scan(r, None, Limits { max_depth: 1, ..Default::default() }).unwrap();
        assert!(shallow.setuid.is_empty() && shallow.truncated);

        let clean = tempfile::tempdir().unwrap();
        touch(&clean.path().join("app"), 0o755);
        let s = scan(clean.path(), None, Limits::default()).unwrap();
        assert!(s.shells.is_empty() && s.package_managers.is_empty() && s.setuid.is_empty());
        assert!(s.world_writable_path.is_empty());
    }
}

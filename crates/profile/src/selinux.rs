//! An SELinux policy module (CIL) for one container, in the style of udica: a
//! process domain of its own, allowed what the recording saw and nothing else.
//!
//! Debian's reference policy has no container types, so the module declares its
//! own: `<name>_t` for the processes and `<name>_file_t` for the container's
//! files. Ports use the type the installed policy gives them ([`PortLabels`],
//! read from the policy store by the caller), as `semanage port -l` would show.

use crate::recording::{Endpoint, Protocol, Recording};
use crate::validate::comment_text;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Port labelling of the installed policy: `(portcon tcp 80 (... http_port_t ...))`.
#[derive(Debug, Clone, Default)]
pub struct PortLabels {
    /// (protocol, first port, last port, type).
    ranges: Vec<(String, u16, u16, String)>,
}

impl PortLabels {
    /// Reads the `portcon` statements of a CIL policy text (e.g. the store's
    /// decompressed `active/modules/100/base/cil`).
    pub fn from_cil(text: &str) -> PortLabels {
        let mut ranges = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("(portcon ") else { continue };
            let mut parts = rest.splitn(2, ' ');
            let (Some(proto), Some(rest)) = (parts.next(), parts.next()) else { continue };
            let (lo, hi, rest) = if let Some(r) = rest.strip_prefix('(') {
                let Some((range, rest)) = r.split_once(')') else { continue };
                let mut nums = range.split_whitespace().filter_map(|n| n.parse::<u16>().ok());
                let (Some(lo), Some(hi)) = (nums.next(), nums.next()) else { continue };
                (lo, hi, rest)
            } else {
                let Some((port, rest)) = rest.split_once(' ') else { continue };
                let Ok(p) = port.parse::<u16>() else { continue };
                (p, p, rest)
            };
            // rest: " (system_u object_r http_port_t ((s0) (s0))))"
            let Some(ty) = rest.split_whitespace().nth(2) else { continue };
            ranges.push((proto.to_string(), lo, hi, ty.to_string()));
        }
        PortLabels { ranges }
    }

    /// The type of a port: the narrowest matching range, as the kernel picks.
    pub fn lookup(&self, proto: &str, port: u16) -> Option<&str> {
        self.ranges
            .iter()
            .filter(|(p, lo, hi, _)| p == proto && (*lo..=*hi).contains(&port))
            .min_by_key(|(_, lo, hi, _)| hi - lo)
            .map(|(_, _, _, t)| t.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Longest container-derived part of a module name: the module is also a
/// file name (`<module>.cil`), and a 4 KiB container name must not make it
/// unwritable.
const MAX_MODULE_PART: usize = 64;

/// A CIL identifier from a container name: lowercase letters, digits, `_`
/// (so it is also a safe file name). Long names are cut and keep a hash of
/// the whole, so two long names stay distinct.
pub fn module_name(container: &str) -> String {
    let mut s: String = container
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if s.is_empty() {
        s.push_str("container");
    }
    if s.len() > MAX_MODULE_PART {
        let hash = model::fnv1a(container.as_bytes()) as u32;
        s.truncate(MAX_MODULE_PART - 9);
        let _ = write!(s, "_{hash:08x}");
    }
    format!("rampart_{s}")
}

/// The object classes and permissions one kind of file access needs.
fn file_perms(
    dir: bool,
    read: bool,
    write: bool,
    create: bool,
    exec: bool,
    delete: bool,
    setattr: bool,
) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut file: BTreeSet<&str> = BTreeSet::new();
    let mut dirp: BTreeSet<&str> = ["getattr", "search", "open"].into_iter().collect();
    if dir {
        if read {
            dirp.extend(["read", "ioctl", "lock"]);
        }
        if create {
            dirp.extend(["create", "add_name", "write"]);
        }
        if delete {
            dirp.extend(["rmdir", "remove_name", "write"]);
        }
        if setattr {
            dirp.insert("setattr");
        }
        return vec![("dir", dirp.into_iter().collect())];
    }
    file.extend(["getattr", "open"]);
    if read {
        file.extend(["read", "ioctl", "lock", "map"]);
    }
    if write {
        file.extend(["write", "append", "ioctl", "lock"]);
    }
    if create {
        file.insert("create");
        dirp.extend(["add_name", "write"]);
    }
    if delete {
        file.extend(["unlink", "rename"]);
        dirp.extend(["remove_name", "write"]);
    }
    if exec {
        file.extend(["read", "map", "execute", "execute_no_trans", "entrypoint"]);
    }
    if setattr {
        file.insert("setattr");
    }
    vec![("dir", dirp.into_iter().collect()), ("file", file.into_iter().collect())]
}

/// Where a path's label comes from inside a container.
fn path_type<'a>(path: &str, domain: &'a str, files: &'a str) -> &'a str {
    if path.starts_with("/proc/[pid]") || path == "/proc/self" || path.starts_with("/proc/self/") {
        domain // a process's /proc entries carry its own domain
    } else if path == "/proc" || path.starts_with("/proc/") {
        "proc_t"
    } else if path == "/sys" || path.starts_with("/sys/") {
        "sysfs_t"
    } else {
        files
    }
}

/// Generates the CIL module for a recording. `name` is the container name the
/// module is for (see [`module_name`]).
pub fn generate_cil(rec: &Recording, name: &str, ports: &PortLabels) -> String {
    let module = module_name(name);
    let domain = format!("{module}_t");
    let files = format!("{module}_file_t");
    let mut out = String::new();
    // Every recorded value below goes into a `;` comment only, escaped onto
    // one line: CIL quoted strings have no escapes, so a path never goes into
    // a statement, and a comment is the one place a hostile value is inert.
    let images: BTreeSet<String> =
        rec.containers.iter().filter(|c| !c.image.is_empty()).map(|c| comment_text(&c.image)).collect();
    let _ = writeln!(out, "; SELinux policy module {module} (CIL), generated by rampart from a recording");
    let _ = writeln!(
        out,
        "; of container {} (image {}), {} to {}.",
        comment_text(name),
        join(&images),
        comment_text(&rec.started),
        comment_text(&rec.ended)
    );
    let _ = writeln!(out, "; Install: semodule -i {module}.cil");
    let _ = writeln!(
        out,
        "; Run: docker run --security-opt label=type:{domain} ... (its files labelled {files})"
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "; The container's process domain and file type.");
    let _ = writeln!(out, "(type {domain})");
    let _ = writeln!(out, "(roletype system_r {domain})");
    let _ = writeln!(out, "(typeattributeset domain ({domain}))");
    let _ = writeln!(out, "(type {files})");
    let _ = writeln!(out, "(roletype object_r {files})");
    let _ = writeln!(out, "(typeattributeset file_type ({files}))");
    let _ = writeln!(out);
    let _ = writeln!(out, "; Process basics every workload needs: its own signals, fds, pipes and /proc.");
    let _ = writeln!(
        out,
        "(allow {domain} self (process (fork sigchld sigkill sigstop signull signal getsched setsched getpgid setpgid getcap getattr getrlimit setrlimit)))"
    );
    let _ = writeln!(out, "(allow {domain} self (fd (use)))");
    let _ = writeln!(out, "(allow {domain} self (fifo_file (getattr open read write append ioctl lock)))");
    let _ = writeln!(out, "(allow {domain} self (unix_stream_socket (create connect getattr getopt setopt read write shutdown)))");
    let _ = writeln!(out);

    // Files: group paths by (type, permission set) so each allow rule lists,
    // in a comment, the paths that made it necessary.
    let mut groups: BTreeMap<(String, String, Vec<&str>), Vec<&str>> = BTreeMap::new();
    for (path, a) in &rec.files {
        let ty = path_type(path, &domain, &files);
        let ty = if ty == domain { "self".to_string() } else { ty.to_string() };
        for (class, perms) in file_perms(a.dir, a.read, a.write, a.create, a.exec, a.delete, a.setattr) {
            groups.entry((ty.clone(), class.to_string(), perms)).or_default().push(path);
        }
    }
    if !groups.is_empty() {
        let _ = writeln!(out, "; Files and directories, by the access the recording saw.");
    }
    for ((ty, class, perms), paths) in &groups {
        let shown: Vec<String> = paths.iter().take(8).map(|p| comment_text(p)).collect();
        let more = if paths.len() > shown.len() {
            format!(" (+{} more)", paths.len() - shown.len())
        } else {
            String::new()
        };
        let _ = writeln!(out, "; {}{more}", shown.join(" "));
        let _ = writeln!(out, "(allow {domain} {ty} ({class} ({})))", perms.join(" "));
        if class == "file" && perms.contains(&"read") {
            let _ = writeln!(out, "(allow {domain} {ty} (lnk_file (getattr read)))");
        }
    }
    if !groups.is_empty() {
        let _ = writeln!(out);
    }

    let caps = rec.needed_capabilities();
    // Only names of the kernel's table become permissions ([`crate::validate`]
    // refuses a recording with any other before this runs).
    let (cap1, cap2): (Vec<(u32, String)>, Vec<(u32, String)>) = caps
        .iter()
        .filter_map(|c| Some((model::names::cap_number(c)?, c.trim_start_matches("CAP_").to_lowercase())))
        .partition(|(n, _)| *n < 32);
    let (cap1, cap2): (Vec<String>, Vec<String>) =
        (cap1.into_iter().map(|c| c.1).collect(), cap2.into_iter().map(|c| c.1).collect());
    if !cap1.is_empty() || !cap2.is_empty() {
        let _ = writeln!(out, "; Capabilities checked and granted while recorded.");
    }
    if !cap1.is_empty() {
        let _ = writeln!(out, "(allow {domain} self (capability ({})))", cap1.join(" "));
    }
    if !cap2.is_empty() {
        let _ = writeln!(out, "(allow {domain} self (capability2 ({})))", cap2.join(" "));
    }
    if !cap1.is_empty() || !cap2.is_empty() {
        let _ = writeln!(out);
    }

    network(&mut out, rec, &domain, ports);
    out
}

fn network(out: &mut String, rec: &Recording, domain: &str, ports: &PortLabels) {
    let net = &rec.network;
    let uses_tcp = net.sockets.iter().any(|s| s.starts_with("inet") && s.ends_with("/stream"))
        || net.listen.iter().chain(&net.connect).chain(&net.bind).any(|e| e.protocol == Protocol::Tcp);
    let uses_udp = net.sockets.iter().any(|s| s.starts_with("inet") && s.ends_with("/dgram"))
        || net.connect.iter().chain(&net.bind).any(|e| e.protocol == Protocol::Udp);
    if !(uses_tcp || uses_udp || !net.unix.is_empty()) {
        return;
    }
    let _ = writeln!(out, "; Network, as the recording saw it.");
    let base = "create getattr setattr getopt setopt read write shutdown ioctl append bind connect";
    if uses_tcp {
        let listen = if net.listen.is_empty() { "" } else { " listen accept" };
        let _ = writeln!(out, "(allow {domain} self (tcp_socket ({base}{listen})))");
    }
    if uses_udp {
        let _ = writeln!(out, "(allow {domain} self (udp_socket ({base})))");
    }
    let mut rules: BTreeSet<String> = BTreeSet::new();
    let mut port_rule = |e: &Endpoint, perm: &str, why: &str| {
        let classes: &[&str] = match e.protocol {
            Protocol::Tcp => &["tcp"],
            Protocol::Udp => &["udp"],
            Protocol::Any => &["tcp", "udp"],
        };
        for proto in classes {
            if e.port == 0 {
                continue;
            }
            let ty = ports.lookup(proto, e.port).unwrap_or("port_t");
            rules.insert(format!(
                "; {why} {proto}/{} ({})\n(allow {domain} {ty} ({proto}_socket ({perm})))",
                e.port,
                comment_text(&e.address)
            ));
            if perm == "name_bind" {
                rules.insert(format!("(allow {domain} node_t ({proto}_socket (node_bind)))"));
            }
        }
    };
    for e in net.bind.iter().chain(&net.listen) {
        port_rule(e, "name_bind", "binds");
    }
    for e in net.connect.iter().filter(|e| e.protocol != Protocol::Udp) {
        // name_connect exists for TCP only; UDP needs no port permission.
        let tcp = Endpoint { protocol: Protocol::Tcp, ..e.clone() };
        port_rule(&tcp, "name_connect", "connects to");
    }
    for r in rules {
        let _ = writeln!(out, "{r}");
    }
    if !net.unix.is_empty() {
        let paths: Vec<String> = net.unix.iter().map(|p| comment_text(p)).collect();
        let _ = writeln!(out, "; unix sockets: {}", paths.join(" "));
        let _ = writeln!(out, "(allow {domain} self (unix_dgram_socket (create connect getattr getopt setopt read write sendto)))");
    }
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "unknown".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{CapabilityUse, FileAccess};

    const CIL: &str = "(portcon tcp 80 (system_u object_r http_port_t ((s0) (s0))))\n\
        (portcon tcp (1024 65535) (system_u object_r unreserved_port_t ((s0) (s0))))\n\
        (portcon tcp 8080 (system_u object_r http_cache_port_t ((s0) (s0))))\n";

    #[test]
    fn port_labels_pick_the_narrowest_range() {
        let p = PortLabels::from_cil(CIL);
        assert_eq!(p.lookup("tcp", 80), Some("http_port_t"));
        assert_eq!(p.lookup("tcp", 8080), Some("http_cache_port_t"));
        assert_eq!(p.lookup("tcp", 9999), Some("unreserved_port_t"));
        assert_eq!(p.lookup("udp", 80), None);
    }

    #[test]
    fn module_allows_what_was_seen() {
        let mut rec = Recording::default();
        rec.files.insert("/etc/passwd".into(), FileAccess { read: true, ..Default::default() });
        rec.files.insert("/bin/busybox".into(), FileAccess { exec: true, read: true, ..Default::default() });
        rec.files.insert("/proc/[pid]/stat".into(), FileAccess { read: true, ..Default::default() });
        rec.capabilities
            .insert("CAP_NET_BIND_SERVICE".into(), CapabilityUse { granted: 1, ..Default::default() });
        rec.capabilities.insert("CAP_SYS_ADMIN".into(), CapabilityUse { denied: 1, ..Default::default() });
        rec.network.listen.insert(Endpoint { protocol: Protocol::Tcp, address: "0.0.0.0".into(), port: 80 });
        rec.network.sockets.insert("inet/stream".into());
        let cil = generate_cil(&rec, "web-1", &PortLabels::from_cil(CIL));
        assert!(cil.contains("(type rampart_web_1_t)"));
        assert!(cil.contains("(allow rampart_web_1_t self (capability (net_bind_service)))"), "{cil}");
        assert!(!cil.contains("sys_admin"));
        assert!(cil.contains("(allow rampart_web_1_t http_port_t (tcp_socket (name_bind)))"), "{cil}");
        assert!(cil.contains("execute_no_trans"));
        assert!(
            cil.contains("(allow rampart_web_1_t self (file (getattr ioctl lock map open read)))"),
            "{cil}"
        );
        // Balanced parentheses: a malformed module would not load.
        let depth =
            cil.lines().filter(|l| !l.starts_with(';')).flat_map(|l| l.chars()).fold(0i32, |d, c| match c {
                '(' => d + 1,
                ')' => d - 1,
                _ => d,
            });
        assert_eq!(depth, 0);
    }
}

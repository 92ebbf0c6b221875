//! A recording is read back from a file anyone may have edited, and was made
//! inside a possibly compromised container: every string in it is hostile.
//! Values that become policy (capability and syscall names, addresses, the
//! architecture) are checked against rampart's own tables and refused when
//! unknown; values that only document a rule (paths, names, images in
//! comments) are escaped into one inert line. Each generated artifact is then
//! read back by rampart's own parser before it is written ([`generate`]).

use crate::recording::{Endpoint, Recording};
use crate::{caps::CapabilityProfile, network, seccomp_profile, selinux};
use seccomp::Arch;
use std::fmt::Write;
use std::net::IpAddr;

/// Why profiles cannot be generated from a recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("recording: unknown capability {0:?} (not one of the kernel's capability names)")]
    UnknownCapability(String),
    #[error("recording: unknown syscall {name:?} (not a syscall of {arch})")]
    UnknownSyscall { name: String, arch: &'static str },
    #[error("recording: unsupported architecture {0:?} (profiles are made for x86_64 and aarch64)")]
    UnknownArch(String),
    #[error("recording: network.{field} address {value:?} is not an IP address")]
    BadAddress { field: &'static str, value: String },
    #[error("generated {file} was rejected by rampart's own parser: {message}")]
    Rejected { file: String, message: String },
}

/// The native and 32-bit compat ABIs of a recording's `arch` (`uname -m`).
pub fn arches(rec: &Recording) -> Result<(Arch, Arch), ProfileError> {
    match rec.arch.as_str() {
        "x86_64" => Ok((Arch::X86_64, Arch::X86)),
        "aarch64" => Ok((Arch::Aarch64, Arch::Arm)),
        other => Err(ProfileError::UnknownArch(other.to_string())),
    }
}

/// Refuses every value of the recording that would become policy and is not
/// one rampart knows: capability names (the kernel's table), syscall names
/// (the recording's architecture), IP addresses, the architecture.
pub fn check_recording(rec: &Recording) -> Result<(), ProfileError> {
    // Exact names only: `CAP_<n>` (a capability newer than the table) or a
    // lowercase spelling cannot be passed on to `--cap-add` or CIL as is.
    if let Some(c) = rec.capabilities.keys().find(|c| !model::names::CAPABILITIES.contains(&c.as_str())) {
        return Err(ProfileError::UnknownCapability(c.clone()));
    }
    let (native, compat) = arches(rec)?;
    for (set, arch) in [(&rec.syscalls, native), (&rec.compat_syscalls, compat)] {
        if let Some(n) = set.iter().find(|n| seccomp::syscalls::number(arch, n).is_none()) {
            return Err(ProfileError::UnknownSyscall { name: n.clone(), arch: arch.name() });
        }
    }
    let net = &rec.network;
    for (field, set) in [("connect", &net.connect), ("bind", &net.bind), ("listen", &net.listen)] {
        if let Some(e) = set.iter().find(|e: &&Endpoint| e.address.parse::<IpAddr>().is_err()) {
            return Err(ProfileError::BadAddress { field, value: e.address.clone() });
        }
    }
    Ok(())
}

/// One line of comment text (CIL `;`, YAML `#`): everything but printable
/// ASCII escaped, so a value cannot end the comment (newline, CR), hide
/// itself (ESC sequences, bidi overrides) or truncate the file (NUL); `\`
/// itself is escaped so the escapes are unambiguous. Comments are
/// documentation only: escaping never changes the policy.
pub fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

/// A YAML double-quoted scalar that reads back as exactly `s`: `"` and `\`
/// escaped, everything outside printable ASCII as `\x`/`\u`/`\U` escapes
/// (YAML forbids raw control characters, DEL and C1 even in quotes).
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// A DNS-1123 label from a container name: lowercase letters, digits and
/// `-`, at most 63 characters, never empty.
pub fn k8s_name(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let s: String = s.trim_matches('-').chars().take(63).collect();
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "workload".into()
    } else {
        s.to_string()
    }
}

/// One generated file: its name in the output directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub file: String,
    pub text: String,
    /// Carries recorded data (paths, names, addresses): written owner-only.
    pub recorded_data: bool,
}

/// File name of the Docker seccomp profile.
pub const SECCOMP_JSON: &str = "seccomp.json";
/// File name of rampart's network policy.
pub const NETPOLICY_YAML: &str = "netpolicy.yaml";

fn rejected(file: &str, message: impl ToString) -> ProfileError {
    ProfileError::Rejected { file: file.to_string(), message: message.to_string() }
}

/// Every profile of a recording, checked: the recording's values first
/// ([`check_recording`]), then each artifact read back by rampart's own
/// parsers (seccomp.json compiled, netpolicy.yaml loaded and compared, the
/// Kubernetes objects parsed as YAML). `seccomp_path` is where seccomp.json
/// will be, for `docker-flags.txt`.
pub fn generate(
    rec: &Recording,
    name: &str,
    ports: &selinux::PortLabels,
    seccomp_path: &str,
) -> Result<Vec<Artifact>, ProfileError> {
    check_recording(rec)?;
    let (native, _) = arches(rec)?;
    let mut out = Vec::new();
    let mut push = |file: &str, text: String| {
        out.push(Artifact { file: file.to_string(), text, recorded_data: true });
    };

    let seccomp = seccomp_profile::docker_profile(rec);
    let text = serde_json::to_string_pretty(&seccomp).map_err(|e| rejected(SECCOMP_JSON, e))? + "\n";
    seccomp::compile_source(&text, SECCOMP_JSON, &seccomp::CompileOptions::new(native))
        .map_err(|e| rejected(SECCOMP_JSON, e))?;
    push(SECCOMP_JSON, text);
    let file = "seccomp-profile.yaml";
    let text = seccomp_profile::kubernetes_seccomp_profile(rec, &k8s_name(name));
    check_yaml(file, &text)?;
    push(file, text);

    let caps = CapabilityProfile::from_recording(rec);
    for c in caps.needed.iter().chain(&caps.denied_only) {
        if model::names::cap_number(c).is_none() {
            return Err(ProfileError::UnknownCapability(c.clone()));
        }
    }
    push("capabilities.txt", caps.summary());
    let file = "k8s-security-context.yaml";
    let text = caps.kubernetes_yaml();
    check_yaml(file, &text)?;
    push(file, text);

    let module = selinux::module_name(name);
    push(&format!("{module}.cil"), selinux::generate_cil(rec, name, ports));

    let text = network::rampart_net_policy_yaml(rec, name).map_err(|e| rejected(NETPOLICY_YAML, e))?;
    let parsed =
        policy::NetPolicy::from_yaml(&text, NETPOLICY_YAML).map_err(|e| rejected(NETPOLICY_YAML, e))?;
    if parsed != network::rampart_net_policy(rec) {
        return Err(rejected(NETPOLICY_YAML, "it reads back as a different policy"));
    }
    push(NETPOLICY_YAML, text);
    let file = "k8s-networkpolicy.yaml";
    let text = network::kubernetes_network_policy(rec, name);
    check_yaml(file, &text)?;
    push(file, text);

    let mut flags = vec!["--security-opt".to_string(), format!("seccomp={seccomp_path}")];
    flags.extend(caps.docker_args());
    out.push(Artifact {
        file: "docker-flags.txt".into(),
        text: flags.join(" ") + "\n",
        recorded_data: false,
    });
    Ok(out)
}

/// A Kubernetes object is one YAML document of a mapping.
fn check_yaml(file: &str, text: &str) -> Result<(), ProfileError> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| rejected(file, e))?;
    if !v.is_mapping() {
        return Err(rejected(file, "not a YAML mapping"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::{CapabilityUse, FileAccess, Protocol, RecordedContainer};

    const INJECTED: &str = "(allow rampart_web_t self (capability (sys_admin)))";

    fn base() -> Recording {
        let mut rec = Recording { version: 1, arch: "x86_64".into(), ..Default::default() };
        rec.syscalls.extend(["read".to_string(), "write".into(), "accept4".into()]);
        rec.capabilities
            .insert("CAP_NET_BIND_SERVICE".into(), CapabilityUse { granted: 1, ..Default::default() });
        rec.files.insert("/etc/passwd".into(), FileAccess { read: true, ..Default::default() });
        rec.network.listen.insert(Endpoint { protocol: Protocol::Tcp, address: "0.0.0.0".into(), port: 80 });
        rec.network.sockets.insert("inet/stream".into());
        rec
    }

    /// Statements (non-comment lines) of a CIL module, and their paren depth.
    fn statements(cil: &str) -> (Vec<&str>, i32) {
        let lines: Vec<&str> = cil.lines().filter(|l| !l.trim_start().starts_with(';')).collect();
        let depth = lines.iter().flat_map(|l| l.chars()).fold(0i32, |d, c| match c {
            '(' => d + 1,
            ')' => d - 1,
            _ => d,
        });
        (lines, depth)
    }

    #[test]
    fn newline_paths_stay_in_their_comment() {
        let mut rec = base();
        let hostile = [
            format!("/tmp/x\n{INJECTED}"),
            format!("/tmp/y\r{INJECTED}"),
            format!("/tmp/z\u{0}\u{1b}[2K\u{202e}\n;;* lms 1 evil.te\n{INJECTED}"),
            format!("/tmp/{}", "a".repeat(4096)),
            "/tmp/quote\"(paren)';semi".into(),
        ];
        for p in &hostile {
            rec.files.insert(p.clone(), FileAccess { read: true, write: true, ..Default::default() });
            rec.network.unix.insert(p.clone());
        }
        rec.containers.push(RecordedContainer {
            id: "abc".into(),
            name: format!("web\n{INJECTED}"),
            image: format!("img\n{INJECTED}"),
            ..Default::default()
        });
        rec.started = format!("2026\n{INJECTED}");
        let name = format!("web\n{INJECTED}");
        let cil = selinux::generate_cil(&rec, &name, &selinux::PortLabels::default());
        let (stmts, depth) = statements(&cil);
        assert_eq!(depth, 0, "{cil}");
        assert!(stmts.iter().all(|l| !l.contains("(capability (sys_admin")), "{cil}");
        // Every line is a comment, a statement we write, or blank.
        assert!(stmts.iter().all(|l| l.is_empty() || l.starts_with('(')), "{cil}");
        assert!(cil.is_ascii() && !cil.contains('\r') && !cil.contains('\u{0}'));
        // No line but ours starts an HLL line mark.
        assert!(!cil.lines().any(|l| l.starts_with(";;*")));
        assert!(cil.contains("/tmp/x\\n(allow rampart_web_t"), "the path is shown, escaped");
        assert!(selinux::module_name(&name).chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        // And every artifact survives it (paths only document rules).
        let all = generate(&rec, &name, &selinux::PortLabels::default(), "/p/seccomp.json").unwrap();
        for a in all.iter().filter(|a| a.file != SECCOMP_JSON) {
            let live = |l: &&str| !l.trim_start().starts_with([';', '#']);
            assert!(!a.text.lines().filter(live).any(|l| l.contains("(sys_admin")), "{}", a.file);
        }
    }

    #[test]
    fn unknown_capabilities_are_refused_by_name() {
        for bad in ["", "CAP_", "CAP_41", "cap_chown", "CHOWN", "CAP_CHOWN\n--privileged", "CAP_SYS_ADMIN)))"]
        {
            let mut rec = base();
            rec.capabilities.insert(bad.into(), CapabilityUse { granted: 1, ..Default::default() });
            let err = generate(&rec, "web", &Default::default(), "s.json").unwrap_err();
            assert_eq!(err, ProfileError::UnknownCapability(bad.into()));
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        // Only ever denied: still refused (it would be printed in capabilities.txt).
        let mut rec = base();
        rec.capabilities.insert("CAP_BOGUS".into(), CapabilityUse { denied: 1, ..Default::default() });
        assert!(check_recording(&rec).is_err());
    }

    #[test]
    fn unknown_syscalls_arches_and_addresses_are_refused() {
        let mut rec = base();
        rec.syscalls.insert("read]\n  - action: SCMP_ACT_ALLOW\n    names: [mount".into());
        assert!(matches!(check_recording(&rec), Err(ProfileError::UnknownSyscall { arch: "x86_64", .. })));
        let mut rec = base();
        rec.syscalls.insert("notasyscall".into());
        let e = check_recording(&rec).unwrap_err().to_string();
        assert!(e.contains("\"notasyscall\"") && e.contains("x86_64"), "{e}");
        // An aarch64-only name in an x86_64 recording, an x86_64 name as i386.
        let mut rec = base();
        rec.syscalls.insert("renameat2".into());
        rec.compat_syscalls.insert("arch_prctl".into());
        assert!(check_recording(&rec).is_ok(), "i386 has arch_prctl too");
        rec.compat_syscalls.insert("newfstatat".into());
        assert!(matches!(check_recording(&rec), Err(ProfileError::UnknownSyscall { arch: "x86", .. })));
        for arch in ["", "mips", "x86_64\n"] {
            let rec = Recording { arch: arch.into(), ..base() };
            assert_eq!(check_recording(&rec), Err(ProfileError::UnknownArch(arch.into())));
        }
        for addr in ["example.com", "10.0.0.1/8", "1.2.3.4\n    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]", ""] {
            let mut rec = base();
            rec.network.connect.insert(Endpoint { protocol: Protocol::Tcp, address: addr.into(), port: 443 });
            assert_eq!(
                check_recording(&rec),
                Err(ProfileError::BadAddress { field: "connect", value: addr.into() })
            );
        }
    }

    #[test]
    fn generated_artifacts_pass_rampart_parsers() {
        let mut rec = base();
        rec.compat_syscalls.insert("socketcall".into());
        rec.network.connect.insert(Endpoint {
            protocol: Protocol::Udp,
            address: "10.0.0.2".into(),
            port: 53,
        });
        rec.network.connect.insert(Endpoint { protocol: Protocol::Tcp, address: "::1".into(), port: 5432 });
        let all = generate(&rec, "web", &Default::default(), "/out/seccomp.json").unwrap();
        let files: Vec<&str> = all.iter().map(|a| a.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "seccomp.json",
                "seccomp-profile.yaml",
                "capabilities.txt",
                "k8s-security-context.yaml",
                "rampart_web.cil",
                "netpolicy.yaml",
                "k8s-networkpolicy.yaml",
                "docker-flags.txt"
            ]
        );
        let seccomp = &all[0].text;
        let (_, policy) =
            seccomp::compile_source(seccomp, "seccomp.json", &seccomp::CompileOptions::new(Arch::X86_64))
                .unwrap();
        policy.to_program().unwrap();
        assert!(policy::NetPolicy::from_yaml(&all[5].text, "netpolicy.yaml").is_ok());
        assert_eq!(
            all[7].text,
            "--security-opt seccomp=/out/seccomp.json --cap-drop ALL --cap-add NET_BIND_SERVICE\n"
        );
        assert!(!all[7].recorded_data && all[0].recorded_data);
    }

    #[test]
    fn hostile_labels_and_names_read_back_exactly_in_yaml() {
        let mut rec = base();
        let key = "app\n  evil: \"x\"".to_string();
        let value = "v\u{0}\u{1b}[31m\u{7f}\u{85}\u{202e}é😀\"\\".to_string();
        rec.containers.push(RecordedContainer {
            id: "id".into(),
            name: "web\n# x\nkind: Secret".into(),
            labels: [(key.clone(), value.clone())].into(),
            ..Default::default()
        });
        let all = generate(&rec, "web\nkind: Secret", &Default::default(), "s.json").unwrap();
        for a in all.iter().filter(|a| a.file.ends_with(".yaml")) {
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&a.text).unwrap();
            assert_ne!(v["kind"], "Secret", "{}", a.file);
            assert!(v.get("evil").is_none());
        }
        let np = &all.iter().find(|a| a.file == "k8s-networkpolicy.yaml").unwrap().text;
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(np).unwrap();
        let labels = v["spec"]["podSelector"]["matchLabels"].as_mapping().unwrap();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels.get(key.as_str()).and_then(|v| v.as_str()), Some(value.as_str()));
        assert_eq!(v["metadata"]["name"], "web-kind--secret-rampart");
    }

    #[test]
    fn names_for_files_and_objects_are_bounded() {
        assert_eq!(k8s_name("--"), "workload");
        assert_eq!(k8s_name("Web_1"), "web-1");
        let long = "x".repeat(4096);
        assert_eq!(k8s_name(&long).len(), 63);
        let m = selinux::module_name(&long);
        assert!(m.len() <= 8 + MAX_MODULE_PART_FOR_TEST, "{m}");
        assert_ne!(m, selinux::module_name(&format!("{long}y")), "long names stay distinct");
        assert_eq!(comment_text("a\\b\n\u{1b}\u{e9}"), "a\\\\b\\n\\x1b\\u{e9}");
    }

    const MAX_MODULE_PART_FOR_TEST: usize = 64;
}

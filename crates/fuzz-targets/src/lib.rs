//! One entry point per untrusted input rampart parses, fed arbitrary bytes.
//!
//! The AFL++ binaries under `fuzz/` (a separate workspace, built with
//! `cargo afl`) call [`run`]; `tests/replay.rs` runs every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same
//! functions in an ordinary `cargo test`, so a crash found once stays fixed.
//!
//! Each function only has to return: errors are the expected answer to bad
//! input; a panic, an abort (huge allocation), a stack overflow or a hang is
//! a bug. Where the API takes text, non-UTF-8 input is skipped.

use std::path::Path;

/// The targets, by the name used for `fuzz/corpus/<name>/`, the binary
/// `fuzz_<name>` and `scripts/fuzz.sh <name>`.
pub const TARGETS: &[&str] = &[
    "rules",
    "config",
    "policy",
    "seccomp",
    "oci",
    "k8s",
    "recording",
    "capture",
    "capture_bin",
    "sensor",
    "dns",
];

/// Runs `data` through `target`; `false` for an unknown target name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "rules" => rules(data),
        "config" => config(data),
        "policy" => policy(data),
        "seccomp" => seccomp(data),
        "oci" => oci(data),
        "k8s" => k8s(data),
        "recording" => recording(data),
        "capture" => capture(data),
        "capture_bin" => capture_bin(data),
        "sensor" => sensor(data),
        "dns" => dns(data),
        _ => return false,
    }
    true
}

/// The rules loader and condition parser: a whole rules file (lists,
/// macros, rules, exceptions), loaded and compiled.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut builder = rules::RulesetBuilder::new();
    builder.add_file("fuzz.yaml", text);
    let _ = builder.build();
}

/// The agent config's `alerts:` section (the rest of the agent config lives
/// in the binary crate), parsed as the agent does (`AgentConfig::parse`:
/// the YAML guard, then serde) and validated.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if yamlguard::check_bounds(text, &yamlguard::Limits::default()).is_err() {
        return;
    }
    if let Ok(cfg) = serde_yaml_ng::from_str::<alerts::AlertsConfig>(text) {
        let _ = cfg.validate();
    }
}

/// A network policy file: parsed, compiled to the kernel maps' form,
/// written back.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(p) = policy::NetPolicy::from_yaml(text, "fuzz") {
        let _ = p.compile();
        let _ = p.to_yaml();
    }
}

/// A seccomp profile (Docker/OCI JSON): parsed, validated, compiled to BPF,
/// the BPF checked and disassembled.
pub fn seccomp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = seccomp::CompileOptions::default();
    if let Ok((profile, _policy)) = seccomp::compile_source(text, "fuzz.json", &opts) {
        if let Ok(prog) = seccomp::compile_bpf(&profile, &opts) {
            let _ = prog.validate();
            let _ = seccomp::disassemble(&prog);
        }
        let _ = profile.to_json_pretty();
    }
}

fn audit_options() -> audit::Options {
    // No rootfs reads: the path below does not exist, and image checks are
    // the filesystem walker's business, not the parser's.
    audit::Options { image_checks: false, ..audit::Options::default() }
}

/// An OCI runtime `config.json`: parsed and audited.
pub fn oci(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(subject) = audit::oci::parse(Path::new("/nonexistent/rampart-fuzz/config.json"), text) {
        let _ = audit::audit(subject, &audit_options(), None);
    }
}

/// A Kubernetes manifest (multi-document YAML): parsed and every workload
/// audited.
pub fn k8s(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(subjects) = audit::k8s::parse(Path::new("/nonexistent/rampart-fuzz/manifest.yaml"), text) {
        for subject in subjects {
            let _ = audit::audit(subject, &audit_options(), None);
        }
    }
}

/// A saved recording (`rampart record` JSON): read, then every profile
/// generator run on it.
pub fn recording(data: &[u8]) {
    let Ok(rec) = serde_json::from_slice::<profile::Recording>(data) else { return };
    let _ = profile::seccomp_profile::docker_profile(&rec);
    let _ = profile::seccomp_profile::kubernetes_seccomp_profile(&rec, "fuzz");
    let _ = profile::seccomp_profile::allowed_groups(&rec);
    let caps = profile::CapabilityProfile::from_recording(&rec);
    let _ = caps.docker_args();
    let _ = caps.kubernetes_yaml();
    let _ = caps.summary();
    let _ = profile::selinux::generate_cil(&rec, "fuzz", &profile::selinux::PortLabels::default());
    let _ = profile::network::kubernetes_network_policy(&rec, "fuzz");
    let _ = profile::network::rampart_net_policy_yaml(&rec, "fuzz");
    let _ = profile::network::rampart_net_policy(&rec).compile();
    let _ = profile::verify::default_name(&rec);
}

/// One capture line (`rampart capture` JSON lines, replayed by tests and
/// `rampart replay`): read as an [`model::Event`], then fed to the recorder.
pub fn capture(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<model::Event>(data) else { return };
    let mut recorder = profile::Recorder::new("x86_64");
    recorder.observe(&event);
    let _ = recorder.finish();
}

/// A binary capture (`rampart capture --binary`, replayed by `rampart
/// replay`), after its magic: every record read, tables and all, as format
/// version 1 and as the current one.
pub fn capture_bin(data: &[u8]) {
    for version in [1, model::capture::VERSION] {
        for item in model::capture::Reader::new(data, version, model::input::limits::CAPTURE_LINE) {
            if let model::capture::Item::Event(event) = item {
                let _ = model::Event::clone(&event);
            }
        }
    }
}

/// The DNS parser: a message as a container sends or receives it (UDP
/// payload), and the same bytes as a TCP segment (length first).
pub fn dns(data: &[u8]) {
    let _ = sensor::dns::parse(data);
    let _ = sensor::dns::parse(data.get(2..).unwrap_or(&[]));
}

/// The sensor's raw ring-buffer record decoder.
pub fn sensor(data: &[u8]) {
    let decoder = sensor::decode::Decoder::new(0);
    let _ = decoder.decode(data);
    let _ = sensor::decode::record_truncated(data);
    let _ = sensor::decode::record_killed(data);
}

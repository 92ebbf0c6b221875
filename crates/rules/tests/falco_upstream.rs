//! Falco's own rule files (vendored unchanged in `tests/falco-upstream/`) load
//! through the same builder as rampart's, in Falco's order.
//!
//! Of the 93 rules (25 stable, 31 incubating, 37 sandbox), 76 compile today
//! (19 + 26 + 31); the 17 others are skipped, with a warning, only because
//! they use fields rampart does not provide yet (listed in `PENDING` below,
//! being added to the field table):
//!
//! | rule | file | missing fields |
//! | --- | --- | --- |
//! | Directory traversal monitored file read | stable | fd.nameraw |
//! | Read sensitive file trusted after startup | stable | proc.duration |
//! | Contact K8S API Server From Container | stable | fd.sip.name |
//! | Drop and execute new binary in container | stable | proc.sname, proc.exe_ino.ctime, proc.exe_ino.mtime, proc.exe_ino.ctime_duration_proc_start, container.start_ts |
//! | Disallowed SSH Connection Non Standard Port | stable | fd.connected, fd.name_changed |
//! | Fileless execution via memfd_create | stable | container.start_ts, proc.sname |
//! | Program run with disallowed http proxy env | incubating | proc.env |
//! | Contact EC2 Instance Metadata Service From Container | incubating | fd.connected, fd.name_changed |
//! | Contact cloud metadata service from container | incubating | fd.connected, fd.name_changed |
//! | Network Connection outside Local Subnet | incubating | fd.rip.name, fd.lip.name, fd.cip.name, fd.sip.name |
//! | Potential Local Privilege Escalation via Environment Variables Misuse | incubating | proc.env |
//! | Unexpected inbound connection source | sandbox | fd.connected, fd.name_changed, fd.cip.name |
//! | Interpreted procs inbound network activity | sandbox | fd.connected, fd.name_changed |
//! | Interpreted procs outbound network activity | sandbox | fd.connected, fd.name_changed |
//! | Detect outbound connections to common miner pool ports | sandbox | fd.sip.name |
//! | Java Process Class File Download | sandbox | evt.buffer |
//! | Basic Interactive Reconnaissance | sandbox | proc.is_vpgid_leader |
//!
//! The counts below follow the field table: once a pending field exists, the
//! rules that only lacked it must compile (all 93 once every one exists).

use rules::RulesetBuilder;
use std::path::{Path, PathBuf};

/// Falco's load order.
const FILES: [&str; 3] = ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"];

/// Rules per file, as written.
const RULES_PER_FILE: [usize; 3] = [25, 31, 37];

/// Fields the upstream rules use that rampart's field table lacks today.
const PENDING: &[&str] = &[
    "proc.duration",
    "fd.nameraw",
    "fd.sip.name",
    "fd.cip.name",
    "fd.rip.name",
    "fd.lip.name",
    "proc.sname",
    "proc.exe_ino.ctime",
    "proc.exe_ino.mtime",
    "proc.exe_ino.ctime_duration_proc_start",
    "container.start_ts",
    "fd.connected",
    "fd.name_changed",
    "proc.env",
    "evt.buffer",
    "proc.is_vpgid_leader",
];

fn vendored() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/falco-upstream")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(vendored().join(name)).unwrap()
}

fn load(names: &[&str]) -> rules::Ruleset {
    let mut b = RulesetBuilder::new().skip_unknown_fields(true);
    for n in names {
        b.add_file(n, &read(n));
    }
    match b.build() {
        Ok(rs) => rs,
        Err(e) => panic!("{names:?} refused ({} errors):\n{e}", e.errors.len()),
    }
}

fn known(field: &str) -> bool {
    rules::FIELDS.iter().any(|f| f.name == field)
}

/// Every skipped rule is skipped for pending fields only, and names each.
fn check_skips(rs: &rules::Ruleset) {
    for s in rs.skipped() {
        let fields: Vec<&str> = s.reason.split('"').skip(1).step_by(2).collect();
        assert!(!fields.is_empty(), "{s:?}");
        for f in fields {
            assert!(PENDING.contains(&f) && !known(f), "rule {:?} skipped for {f:?}: {}", s.name, s.reason);
        }
    }
}

#[test]
fn falco_rule_files_load_in_falco_order() {
    let all_known = PENDING.iter().all(|f| known(f));
    let none_known = !PENDING.iter().any(|f| known(f));
    let mut compiled_per_file = Vec::new();
    for (i, f) in FILES.iter().enumerate() {
        let rs = load(&[f]);
        check_skips(&rs);
        assert_eq!(rs.len() + rs.skipped().len(), RULES_PER_FILE[i], "{f}");
        compiled_per_file.push(rs.len());
    }
    let rs = load(&FILES);
    check_skips(&rs);
    assert_eq!(rs.len() + rs.skipped().len(), 93);
    assert_eq!(rs.len(), compiled_per_file.iter().sum::<usize>());
    if none_known {
        assert_eq!(compiled_per_file, [19, 26, 31]);
        assert_eq!(rs.len(), 76);
    }
    if all_known {
        assert_eq!(rs.len(), 93);
    }
    // Nothing else is warned (no YAML, engine version, list or macro trouble)
    // but the lists and macros that a later file defines differently from an
    // earlier one (Falco replaces them silently).
    for w in rs.warnings() {
        assert!(
            w.message.contains("rampart does not provide") || w.message.contains(" redefines the one from "),
            "unexpected warning: {w}"
        );
    }
    // Quoted list items are strings: the RFC 1918 list is usable as networks.
    let mut b = RulesetBuilder::new();
    b.add_file(FILES[0], &read(FILES[0]));
    b.add_file(
        "local.yaml",
        "- rule: private\n  desc: d\n  condition: evt.type = connect and fd.rnet in (rfc_1918_addresses)\n  output: o\n  priority: info\n",
    );
    let e = b.build().err().map(|e| e.errors).unwrap_or_default();
    assert!(!e.iter().any(|d| d.file == "local.yaml"), "{e:?}");
}

/// The copies here are Falco's files as they are in the project's shared
/// folder, when that folder is present (it is not in every checkout).
#[test]
fn vendored_copies_match_shared() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates =
        [PathBuf::from("/work/shared/falco-rules"), manifest.join("../../../shared/falco-rules")];
    let Some(shared) = candidates.iter().find(|p| p.is_dir()) else {
        eprintln!("no shared/falco-rules here: nothing to compare");
        return;
    };
    for f in FILES.iter().chain(&["LICENSE"]) {
        let ours = std::fs::read(vendored().join(f)).unwrap();
        let theirs = std::fs::read(shared.join(f)).unwrap();
        assert!(ours == theirs, "{f} differs from {}", shared.join(f).display());
    }
}

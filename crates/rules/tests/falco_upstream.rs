//! Falco's own rule files (vendored unchanged in `tests/falco-upstream/`) load
//! through the same builder as rampart's, in Falco's order.

use rules::RulesetBuilder;
use std::path::{Path, PathBuf};

const FILES: [&str; 3] = ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"];

fn vendored() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/falco-upstream")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(vendored().join(name)).unwrap()
}

fn load(names: &[&str]) -> Result<rules::Ruleset, rules::LoadError> {
    let mut b = RulesetBuilder::new().skip_unknown_fields(true);
    for n in names {
        b.add_file(n, &read(n));
    }
    b.build()
}

#[test]
fn dump() {
    for set in [&FILES[..1], &FILES[1..2], &FILES[2..], &FILES[..]] {
        match load(set) {
            Ok(rs) => {
                eprintln!("{set:?}: {} rules", rs.len());
                for w in rs.warnings() {
                    eprintln!("  W {w}");
                }
            }
            Err(e) => {
                eprintln!("{set:?}: {} errors", e.errors.len());
                for w in &e.errors {
                    eprintln!("  E {w}");
                }
            }
        }
    }
}

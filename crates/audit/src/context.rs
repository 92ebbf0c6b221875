//! Runtime context: what rampart saw containers do, from the alerts file that
//! `rampart run` writes (the file output: one Falco-shaped alert per line).
//!
//! A container with alerts is marked in every output (per rule: count, highest
//! priority, last time) and gets one `runtime-alerts` finding per rule whose
//! severity follows the alert priority (Critical and above -> critical, Error
//! -> high, Warning -> medium, Notice -> low, below -> info). They count for
//! `--fail-on` and are baselined like any finding (key: the rule name).
//! Alerts are matched to Docker containers by id (full or 12-character), or
//! by name when the alert has no id.

use crate::checks::{Finding, Severity};
use crate::config::Subject;
use crate::Error;
use model::Priority;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Alerts of one rule for one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertSummary {
    pub rule: String,
    pub priority: Priority,
    pub count: u64,
    /// Time of the last alert, as the file gives it.
    pub last: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    rule: String,
    priority: Priority,
    #[serde(default)]
    time: String,
    container: Option<LineContainer>,
    #[serde(default)]
    output_fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct LineContainer {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug)]
struct Seen {
    id: String,
    name: String,
    rule: String,
    priority: Priority,
    time: String,
}

/// The alerts of a file, indexed for matching.
#[derive(Debug, Default)]
pub struct Alerts {
    seen: Vec<Seen>,
    /// Lines that were not alerts (reported, not fatal: the file may be
    /// rotated or still being written).
    pub unreadable: u64,
    /// The first unreadable lines (at most [`Alerts::REPORTED`]): line
    /// number and why.
    pub skipped: Vec<(u64, String)>,
    pub total: u64,
}

impl Alerts {
    /// Unreadable lines kept with their number and reason; the others are
    /// only counted.
    pub const REPORTED: usize = 5;

    /// Reads an alerts file. A line that is too long, not UTF-8 or not an
    /// alert is skipped and counted, and the rest is read.
    pub fn load(path: &Path) -> Result<Alerts, Error> {
        use model::input::{limits, open_stream};
        let mut out = Alerts::default();
        for line in open_stream(path, limits::ALERTS, limits::ALERTS_LINE)? {
            let line = line?;
            let why = match &line.text {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => match out.add(text) {
                    Ok(()) => continue,
                    Err(e) => format!("not an alert: {e}"),
                },
                Err(bad) => bad.to_string(),
            };
            out.unreadable += 1;
            if out.skipped.len() < Self::REPORTED {
                out.skipped.push((line.number, why));
            }
        }
        Ok(out)
    }

    /// Adds one JSON line (an alert); counts it as unreadable otherwise.
    pub fn add_line(&mut self, line: &str) {
        if self.add(line).is_err() {
            self.unreadable += 1;
        }
    }

    fn add(&mut self, line: &str) -> Result<(), serde_json::Error> {
        let a = serde_json::from_str::<Line>(line)?;
        let field = |k: &str| a.output_fields.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let (mut id, mut name) = a.container.map(|c| (c.id, c.name)).unwrap_or_default();
        if id.is_empty() {
            id = field("container.full_id");
        }
        if id.is_empty() {
            id = field("container.id");
        }
        if name.is_empty() {
            name = field("container.name");
        }
        if id == "host" || (id.is_empty() && (name.is_empty() || name == "host")) {
            return Ok(());
        }
        self.total += 1;
        self.seen.push(Seen {
            id,
            name: name.trim_start_matches('/').to_string(),
            rule: a.rule,
            priority: a.priority,
            time: a.time,
        });
        Ok(())
    }

    /// The alerts of a subject, per rule, highest priority first.
    pub fn for_subject(&self, s: &Subject) -> Vec<AlertSummary> {
        if !s.kind.is_running() {
            return Vec::new();
        }
        let id = s.id.as_deref().unwrap_or("");
        let matches = |a: &Seen| {
            if !a.id.is_empty() {
                // containerd ids are any string: exact; Docker short ids: a prefix.
                !id.is_empty() && (a.id == id || (a.id.len() >= 12 && id.starts_with(&a.id)))
            } else {
                !s.name.is_empty() && a.name == s.name
            }
        };
        let mut by_rule: BTreeMap<&str, AlertSummary> = BTreeMap::new();
        for a in self.seen.iter().filter(|a| matches(a)) {
            let e = by_rule.entry(&a.rule).or_insert_with(|| AlertSummary {
                rule: a.rule.clone(),
                priority: a.priority,
                count: 0,
                last: String::new(),
            });
            e.count += 1;
            e.priority = e.priority.max(a.priority);
            if a.time > e.last {
                e.last = a.time.clone();
            }
        }
        let mut out: Vec<AlertSummary> = by_rule.into_values().collect();
        out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.rule.cmp(&b.rule)));
        out
    }
}

/// One `runtime-alerts` finding per rule.
pub fn findings(alerts: &[AlertSummary]) -> Vec<Finding> {
    alerts
        .iter()
        .map(|a| Finding {
            check: "runtime-alerts",
            severity: Severity::from_priority(a.priority),
            evidence: format!(
                "{} alert{} of rule {:?} (priority {}, last {})",
                a.count,
                if a.count == 1 { "" } else { "s" },
                a.rule,
                a.priority,
                if a.last.is_empty() { "unknown" } else { &a.last }
            ),
            key: a.rule.clone(),
            remediation: "investigate the alerts (rampart run file output); fix the findings above that widen what an intruder in this container can reach".into(),
            fingerprint: String::new(),
            baselined: false,
        })
        .collect()
}

#[cfg(test)]
mod load_tests {
    use super::*;

    #[test]
    fn bad_lines_are_skipped_with_their_number_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("alerts.json");
        let alert = |rule: &str| {
            format!(
                r#"{{"time":"t","rule":"{rule}","priority":"Warning","output":"x","output_fields":{{"container.id":"abcdefabcdef"}}}}"#
            )
        };
        let mut bytes = alert("one").into_bytes();
        bytes.extend_from_slice(b"\n{\"rule\":\"x\xff\"}\n\nnot json\n");
        bytes.extend_from_slice(&vec![b'x'; 2 << 20]);
        bytes.extend_from_slice(format!("\n{}\n", alert("two")).as_bytes());
        std::fs::write(&p, bytes).unwrap();
        let a = Alerts::load(&p).unwrap();
        assert_eq!((a.total, a.unreadable), (2, 3));
        assert_eq!(a.skipped[0], (2, "invalid UTF-8 at column 11".to_string()));
        assert_eq!(a.skipped[1].0, 4);
        assert!(a.skipped[1].1.starts_with("not an alert: "), "{:?}", a.skipped);
        assert_eq!(
            a.skipped[2],
            (5, "line longer than 1048576 bytes (limit for alerts file lines; --input-limit alerts-line=SIZE changes it)".to_string())
        );
    }

    #[test]
    fn a_device_is_refused() {
        let e = Alerts::load(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero is a character device, not a regular file");
    }
}

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
use std::io::BufRead;
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
    pub total: u64,
}

impl Alerts {
    pub fn load(path: &Path) -> Result<Alerts, Error> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut out = Alerts::default();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            out.add_line(&line);
        }
        Ok(out)
    }

    /// Adds one JSON line (an alert); counts it as unreadable otherwise.
    pub fn add_line(&mut self, line: &str) {
        let Ok(a) = serde_json::from_str::<Line>(line) else {
            self.unreadable += 1;
            return;
        };
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
            return;
        }
        self.total += 1;
        self.seen.push(Seen {
            id,
            name: name.trim_start_matches('/').to_string(),
            rule: a.rule,
            priority: a.priority,
            time: a.time,
        });
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

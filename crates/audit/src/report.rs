//! Findings per subject, fingerprints and baselines, and the three renderings:
//! a table grouped by container, JSON, and SARIF 2.1.0.

use crate::checks::{Finding, Severity, CHECKS};
use crate::config::{SourceKind, Subject};
use crate::context::AlertSummary;
use crate::Error;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// The findings of one subject.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    pub subject: Subject,
    pub findings: Vec<Finding>,
    /// Alerts rampart raised for the container (runtime context).
    pub alerts: Vec<AlertSummary>,
    /// What could not be checked, and why.
    pub notes: Vec<String>,
}

/// The image without tag or digest: a new image version keeps fingerprints.
pub fn image_repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => &image[..slash + i],
        None => image,
    }
}

/// What identifies a subject across runs: kind, name and image repository.
pub fn subject_key(s: &Subject) -> String {
    format!("{}:{}|{}", s.kind.as_str(), s.name, image_repository(&s.image))
}

/// The fingerprint of a finding: check id, subject key and evidence key.
pub fn fingerprint(check: &str, subject_key: &str, key: &str) -> String {
    format!("{:016x}", model::fnv1a(format!("{check}\0{subject_key}\0{key}").as_bytes()))
}

impl SubjectReport {
    pub fn new(
        subject: Subject,
        mut findings: Vec<Finding>,
        alerts: Vec<AlertSummary>,
        notes: Vec<String>,
    ) -> Self {
        let skey = subject_key(&subject);
        for f in &mut findings {
            f.fingerprint = fingerprint(f.check, &skey, &f.key);
        }
        let order = |id: &str| CHECKS.iter().position(|c| c.id == id).unwrap_or(usize::MAX);
        findings.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then(order(a.check).cmp(&order(b.check))).then(a.key.cmp(&b.key))
        });
        // Two findings with one fingerprint would be one to a baseline or a CI system.
        let mut seen = BTreeSet::new();
        findings.retain(|f| seen.insert(f.fingerprint.clone()));
        SubjectReport { subject, findings, alerts, notes }
    }

    pub fn has(&self, check: &str) -> bool {
        self.findings.iter().any(|f| f.check == check)
    }
}

/// The whole audit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub subjects: Vec<SubjectReport>,
    /// Inputs that could not be audited (a container that vanished, ...).
    pub errors: Vec<String>,
    /// Whether a baseline was applied (SARIF then sets baselineState).
    #[serde(skip)]
    pub baseline_applied: bool,
}

/// Accepted findings, by fingerprint (the file `--write-baseline` writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    pub version: u32,
    #[serde(default)]
    pub generated_by: String,
    pub findings: Vec<BaselineEntry>,
}

/// One accepted finding; everything but the fingerprint is for the reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineEntry {
    pub fingerprint: String,
    #[serde(default)]
    pub check: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub evidence: String,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = model::input::read_text(path, model::input::limits::BASELINE)?;
        let b: Baseline = crate::oci::parse_json(path, &text)?;
        if b.version != 1 {
            return Err(Error::Baseline {
                path: path.to_path_buf(),
                reason: format!("version {} is not supported (expected 1)", b.version),
            });
        }
        if let Some(e) = b
            .findings
            .iter()
            .find(|e| e.fingerprint.len() != 16 || !e.fingerprint.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(Error::Baseline {
                path: path.to_path_buf(),
                reason: format!("fingerprint {:?} is not 16 hex digits", e.fingerprint),
            });
        }
        Ok(b)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

impl Report {
    pub fn findings(&self) -> impl Iterator<Item = (&SubjectReport, &Finding)> {
        self.subjects.iter().flat_map(|s| s.findings.iter().map(move |f| (s, f)))
    }

    /// Marks findings whose fingerprint the baseline accepts; returns how many.
    pub fn apply_baseline(&mut self, b: &Baseline) -> usize {
        let accepted: BTreeSet<&str> = b.findings.iter().map(|e| e.fingerprint.as_str()).collect();
        let mut n = 0;
        for f in self.subjects.iter_mut().flat_map(|s| s.findings.iter_mut()) {
            f.baselined = accepted.contains(f.fingerprint.as_str());
            n += usize::from(f.baselined);
        }
        self.baseline_applied = true;
        n
    }

    /// A baseline accepting every current finding.
    pub fn to_baseline(&self) -> Baseline {
        Baseline {
            version: 1,
            generated_by: "rampart audit".into(),
            findings: self
                .findings()
                .map(|(s, f)| BaselineEntry {
                    fingerprint: f.fingerprint.clone(),
                    check: f.check.to_string(),
                    subject: s.subject.name.clone(),
                    evidence: f.evidence.clone(),
                })
                .collect(),
        }
    }

    /// Findings not accepted by the baseline at or above `threshold`.
    pub fn failing(&self, threshold: Severity) -> usize {
        self.findings().filter(|(_, f)| !f.baselined && f.severity >= threshold).count()
    }

    fn counts(&self) -> (Vec<(Severity, usize)>, usize) {
        let counts = Severity::ALL
            .iter()
            .map(|s| (*s, self.findings().filter(|(_, f)| !f.baselined && f.severity == *s).count()))
            .collect();
        (counts, self.findings().filter(|(_, f)| f.baselined).count())
    }

    pub fn summary(&self) -> String {
        let (counts, accepted) = self.counts();
        let total: usize = counts.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> =
            counts.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {s}")).collect();
        let mut out = format!(
            "{} container{} audited, {total} finding{}",
            self.subjects.len(),
            if self.subjects.len() == 1 { "" } else { "s" },
            if total == 1 { "" } else { "s" }
        );
        if !parts.is_empty() {
            let _ = write!(out, " ({})", parts.join(", "));
        }
        if accepted > 0 {
            let _ = write!(out, "; {accepted} accepted by the baseline");
        }
        let alerted = self.subjects.iter().filter(|s| !s.alerts.is_empty()).count();
        if alerted > 0 {
            let _ = write!(out, "; {alerted} with runtime alerts");
        }
        out
    }

    /// The readable report: one block per container, findings by severity.
    /// Findings accepted by a baseline are counted, not shown.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for s in &self.subjects {
            let sub = &s.subject;
            let mut head = format!("{} [{}]", sub.name, sub.kind.as_str());
            if let Some(id) = &sub.id {
                let _ = write!(head, " id {}", &id[..id.len().min(12)]);
            }
            if !sub.image.is_empty() {
                let _ = write!(head, " image {}", sub.image);
            }
            if let Some(ns) = &sub.runtime_namespace {
                let _ = write!(head, " namespace {ns}");
            }
            if let Some(loc) = &sub.location {
                if sub.kind == SourceKind::Kubernetes {
                    let _ = write!(head, " at {}", loc.file.display());
                    if let Some(l) = loc.line {
                        let _ = write!(head, ":{l}");
                    }
                }
            }
            let _ = writeln!(out, "{head}");
            if !s.alerts.is_empty() {
                let total: u64 = s.alerts.iter().map(|a| a.count).sum();
                let rules: Vec<String> =
                    s.alerts.iter().map(|a| format!("{:?} x{} ({})", a.rule, a.count, a.priority)).collect();
                let _ = writeln!(
                    out,
                    "  !! runtime: {total} alert{} seen: {}",
                    if total == 1 { "" } else { "s" },
                    rules.join(", ")
                );
            }
            let shown: Vec<&Finding> = s.findings.iter().filter(|f| !f.baselined).collect();
            if shown.is_empty() {
                let _ = writeln!(out, "  no findings");
            }
            for f in &shown {
                let def = f.def();
                let cis = if def.cis.is_empty() { "-".to_string() } else { def.cis.join(",") };
                let _ = writeln!(
                    out,
                    "  {:<8}  {:<26} {:<9} {}",
                    f.severity.as_str().to_uppercase(),
                    f.check,
                    cis,
                    def.title
                );
                let _ = writeln!(out, "  {:<8}  {}", "", f.evidence);
                let _ = writeln!(out, "  {:<8}  fix: {}", "", f.remediation);
            }
            let accepted = s.findings.len() - shown.len();
            if accepted > 0 {
                let _ = writeln!(
                    out,
                    "  ({accepted} finding{} accepted by the baseline)",
                    if accepted == 1 { "" } else { "s" }
                );
            }
            for n in &s.notes {
                let _ = writeln!(out, "  note: {n}");
            }
            out.push('\n');
        }
        for e in &self.errors {
            let _ = writeln!(out, "error: {e}");
        }
        let _ = writeln!(out, "{}", self.summary());
        out.push_str("CIS numbers: CIS Docker Benchmark v1.6.0; PSS: Kubernetes Pod Security Standards\n");
        out
    }

    pub fn to_json(&self) -> Value {
        let (counts, accepted) = self.counts();
        let mut by_sev = serde_json::Map::new();
        for (s, n) in counts {
            by_sev.insert(s.as_str().into(), n.into());
        }
        let subjects: Vec<Value> = self
            .subjects
            .iter()
            .map(|s| {
                let sub = &s.subject;
                let findings: Vec<Value> = s
                    .findings
                    .iter()
                    .map(|f| {
                        let def = f.def();
                        json!({
                            "check": f.check,
                            "title": def.title,
                            "severity": f.severity,
                            "cis": def.cis,
                            "pss": def.pss,
                            "evidence": f.evidence,
                            "key": f.key,
                            "remediation": f.remediation,
                            "fingerprint": f.fingerprint,
                            "baselined": f.baselined,
                        })
                    })
                    .collect();
                json!({
                    "name": sub.name,
                    "kind": sub.kind,
                    "id": sub.id,
                    "image": sub.image,
                    "pod": sub.pod,
                    "runtime_namespace": sub.runtime_namespace,
                    "location": sub.location,
                    "alerts": s.alerts,
                    "notes": s.notes,
                    "config": sub.config,
                    "findings": findings,
                })
            })
            .collect();
        json!({
            "version": 1,
            "tool": "rampart audit",
            "benchmark": "CIS Docker Benchmark v1.6.0; Kubernetes Pod Security Standards",
            "summary": { "containers": self.subjects.len(), "findings": by_sev, "baselined": accepted },
            "errors": self.errors,
            "containers": subjects,
        })
    }

    /// SARIF 2.1.0: one run, every catalog check as a rule, one result per
    /// finding with `partialFingerprints` (and `baselineState`/`suppressions`
    /// when a baseline was applied).
    pub fn to_sarif(&self, tool_version: &str) -> Value {
        let rules: Vec<Value> = CHECKS
            .iter()
            .map(|c| {
                let mut tags = vec!["security".to_string(), "container".to_string()];
                tags.extend(c.cis.iter().map(|n| format!("CIS-Docker-1.6.0-{n}")));
                tags.extend(c.pss.iter().map(|p| format!("PSS-{}", p.replace(": ", "-").replace(' ', "-"))));
                let refs = c.references();
                json!({
                    "id": c.id,
                    "name": pascal(c.id),
                    "shortDescription": { "text": c.title },
                    "fullDescription": { "text": c.help },
                    "help": {
                        "text": format!("{}{}", c.help, if refs.is_empty() { String::new() } else { format!(" References: {refs}.") }),
                        "markdown": format!("{}{}", c.help, if refs.is_empty() { String::new() } else { format!("\n\n**References:** {refs}") }),
                    },
                    "defaultConfiguration": { "level": c.severity.sarif_level() },
                    "properties": {
                        "tags": tags,
                        "security-severity": c.severity.score(),
                        "cis-docker-1.6.0": c.cis,
                        "pod-security-standards": c.pss,
                    },
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings()
            .map(|(s, f)| {
                let def = f.def();
                let index = CHECKS.iter().position(|c| c.id == f.check).unwrap_or(0);
                let sub = &s.subject;
                let logical = json!([{
                    "name": sub.name,
                    "fullyQualifiedName": format!("{}://{}", sub.kind.as_str(), sub.name),
                    "kind": "resource",
                }]);
                let location = match &sub.location {
                    Some(loc) => {
                        let mut phys = json!({ "artifactLocation": { "uri": file_uri(&loc.file) } });
                        if let Some(l) = loc.line {
                            phys["region"] = json!({ "startLine": l });
                        }
                        json!({ "physicalLocation": phys, "logicalLocations": logical })
                    }
                    None => json!({ "logicalLocations": logical }),
                };
                let mut r = json!({
                    "ruleId": f.check,
                    "ruleIndex": index,
                    "level": f.severity.sarif_level(),
                    "message": { "text": format!("{} in {}: {}. Fix: {}", def.title, sub.name, f.evidence, f.remediation) },
                    "locations": [location],
                    "partialFingerprints": { "rampartFinding/v1": f.fingerprint },
                    "properties": {
                        "severity": f.severity,
                        "security-severity": f.severity.score(),
                        "container": sub.name,
                        "image": sub.image,
                        "source": sub.kind,
                        "remediation": f.remediation,
                    },
                });
                if self.baseline_applied {
                    r["baselineState"] = json!(if f.baselined { "unchanged" } else { "new" });
                }
                if f.baselined {
                    r["suppressions"] = json!([{ "kind": "external", "justification": "accepted in the rampart audit baseline" }]);
                }
                r
            })
            .collect();
        json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": {
                    "name": "rampart",
                    "fullName": "rampart audit (container configuration and image posture)",
                    "version": tool_version,
                    "semanticVersion": tool_version,
                    "rules": rules,
                } },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }],
        })
    }
}

fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// A file as a SARIF artifact URI: relative paths stay relative references;
/// absolute ones become file:// URIs. Characters outside the unreserved set
/// and `/` are percent-encoded.
fn file_uri(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut enc = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            enc.push(b as char);
        } else {
            let _ = write!(enc, "%{b:02X}");
        }
    }
    if s.starts_with('/') {
        format!("file://{enc}")
    } else {
        enc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable() {
        // Pinned: a change breaks every baseline and CI history.
        assert_eq!(
            fingerprint("privileged", "docker:web|nginx", ""),
            format!("{:016x}", model::fnv1a(b"privileged\0docker:web|nginx\0"))
        );
        assert_eq!(model::fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(model::fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_ne!(fingerprint("a", "b", "c"), fingerprint("a", "b", "d"));
        assert_eq!(image_repository("registry:5000/team/nginx:1.25"), "registry:5000/team/nginx");
        assert_eq!(image_repository("nginx@sha256:abc"), "nginx");
        assert_eq!(image_repository("busybox"), "busybox");
        assert_eq!(file_uri(Path::new("deploy/my app.yaml")), "deploy/my%20app.yaml");
        assert_eq!(file_uri(Path::new("/tmp/x.json")), "file:///tmp/x.json");
        assert_eq!(pascal("run-as-root"), "RunAsRoot");
    }
}

//! Configuration and image posture checks of containers.
//!
//! * [`config`]: the normalised configuration a container runs with;
//!   [`docker`], [`oci`] and [`k8s`] build it from Docker inspect, an OCI
//!   bundle's `config.json` and Kubernetes manifests; [`running`] finds and
//!   reads the OCI spec of running containerd, CRI-O and podman containers.
//! * [`checks`]: the catalog (ids mapped to the CIS Docker Benchmark v1.6.0
//!   and the Pod Security Standards) and the configuration checks; [`image`]
//!   the image content checks through a container's root filesystem;
//!   [`context`] the alerts rampart raised for a container.
//! * [`report`]: findings per container with fingerprints, baselines, and
//!   the table, JSON and SARIF 2.1.0 renderings.
//!
//! Everything but [`image`] (which reads a rootfs) and the file loaders is
//! pure: tests build a [`config::Subject`] and look at its findings.

pub mod checks;
pub mod config;
pub mod context;
pub mod docker;
mod error;
pub mod image;
pub mod k8s;
pub mod oci;
pub mod report;
pub mod running;
#[cfg(test)]
mod tests;

pub use checks::{check_def, CheckDef, Finding, Severity, CHECKS};
pub use config::{ContainerConfig, SourceKind, Subject};
pub use error::Error;
pub use report::{Baseline, Report, SubjectReport};

/// Options of one audit run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Look into root filesystems (shells, package managers, setuid files).
    pub image_checks: bool,
    pub image_limits: image::Limits,
}

impl Default for Options {
    fn default() -> Self {
        Options { image_checks: true, image_limits: image::Limits::default() }
    }
}

/// Audits one subject: configuration checks, image checks when its rootfs is
/// readable, runtime context from `alerts`.
pub fn audit(mut subject: Subject, opts: &Options, alerts: Option<&context::Alerts>) -> SubjectReport {
    let mut notes = Vec::new();
    // A user given by name is resolved through the image's /etc/passwd.
    if let (config::UserSpec::Name(n), Some(root)) = (subject.config.user.clone(), &subject.rootfs) {
        if let Some(uid) = image::lookup_user(root, &n) {
            subject.config.user = config::UserSpec::Uid(uid);
            subject.config.user_text = format!("{n} (uid {uid})");
        }
    }
    let mut findings = checks::check_config(&subject);
    if opts.image_checks {
        match &subject.rootfs {
            Some(root) => match image::scan(root, subject.config.path_env.as_deref(), opts.image_limits) {
                Ok(scan) => {
                    if scan.truncated {
                        notes.push(format!(
                            "image walk stopped at its bound ({} entries, depth {}): image findings may be incomplete",
                            opts.image_limits.max_entries, opts.image_limits.max_depth
                        ));
                    }
                    findings.extend(image::findings(&subject, &scan, opts.image_limits));
                }
                Err(e) => notes.push(format!("image checks skipped: cannot read {}: {e}", root.display())),
            },
            None if subject.kind.is_running() => {
                notes.push("image checks skipped: the container is not running".into())
            }
            None if subject.kind == SourceKind::Oci => {
                notes.push("image checks skipped: the bundle's root.path is not a directory here".into())
            }
            None => {}
        }
    }
    let alert_summary = alerts.map(|a| a.for_subject(&subject)).unwrap_or_default();
    findings.extend(context::findings(&alert_summary));
    SubjectReport::new(subject, findings, alert_summary, notes)
}

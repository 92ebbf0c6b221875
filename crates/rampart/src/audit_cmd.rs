//! `rampart audit`: configuration and image posture of running containers
//! (Docker), OCI bundles and Kubernetes manifests.
//!
//! Exit status: 0 when the audit ran (and no finding reaches `--fail-on`),
//! 1 on errors (unreadable or malformed input, dockerd unreachable), 2 on
//! usage errors (clap), [`EXIT_FINDINGS`] (3) when findings at or above
//! `--fail-on` remain after the baseline.

use anyhow::{bail, Context, Result};
use audit::{Baseline, Options, Report, Severity};
use runtime::DockerClient;
use std::io::Write;
use std::path::PathBuf;

/// The exit status when findings at or above `--fail-on` remain.
pub const EXIT_FINDINGS: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// Readable, grouped by container.
    Table,
    Json,
    /// SARIF 2.1.0, for code scanning in CI.
    Sarif,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Audit this running container (name or id prefix; repeatable). Without
    /// it, and without --oci/--k8s, every running container is audited.
    #[arg(long = "container", value_name = "NAME|ID")]
    containers: Vec<String>,
    /// An OCI runtime bundle's config.json (repeatable); its rootfs is scanned
    /// when root.path is readable.
    #[arg(long = "oci", value_name = "FILE")]
    oci: Vec<PathBuf>,
    /// A Kubernetes manifest (repeatable, multi-document YAML): Pods and the pod
    /// templates of Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs, CronJobs.
    #[arg(long = "k8s", value_name = "FILE")]
    k8s: Vec<PathBuf>,
    /// Also audit the running containers when --oci or --k8s is given.
    #[arg(long)]
    running: bool,
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    format: AuditFormat,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit with status 3 when findings at or above SEVERITY (critical, high,
    /// medium, low, info) remain after the baseline.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Accept the findings of this baseline file (by fingerprint): they are
    /// reported as accepted and do not count for --fail-on.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write a baseline accepting every current finding to FILE.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Alerts file written by `rampart run` (file output, JSON lines): containers
    /// with alerts are marked and get runtime-alerts findings.
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Do not look into container root filesystems (shells, package managers,
    /// setuid files, world-writable PATH directories).
    #[arg(long)]
    no_image_checks: bool,
    /// Docker Engine API socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Findings at or above `--fail-on` remain: `main` exits with [`EXIT_FINDINGS`].
#[derive(Debug)]
pub struct FindingsAtOrAbove {
    pub count: usize,
    pub threshold: Severity,
}

impl std::fmt::Display for FindingsAtOrAbove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} finding{} at or above {} (--fail-on)",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.threshold
        )
    }
}

impl std::error::Error for FindingsAtOrAbove {}

impl FindingsAtOrAbove {
    pub fn exit_code(&self) -> std::process::ExitCode {
        std::process::ExitCode::from(EXIT_FINDINGS)
    }
}

pub async fn run(args: AuditArgs) -> Result<()> {
    let opts = Options { image_checks: !args.no_image_checks, ..Default::default() };
    let alerts = match &args.alerts {
        Some(path) => {
            let a = audit::context::Alerts::load(path)?;
            if a.unreadable > 0 {
                eprintln!("rampart: {}: {} lines are not alerts, skipped", path.display(), a.unreadable);
            }
            Some(a)
        }
        None => None,
    };
    let mut report = Report::default();
    let mut subjects = Vec::new();
    for path in &args.oci {
        subjects.push(audit::oci::load(path)?);
    }
    for path in &args.k8s {
        subjects.extend(audit::k8s::load(path)?);
    }
    let files = !args.oci.is_empty() || !args.k8s.is_empty();
    if !files || args.running || !args.containers.is_empty() {
        let docker = DockerClient::with_socket(&args.docker_socket);
        let (ids, named) = if args.containers.is_empty() {
            let ids = docker
                .running_ids()
                .await
                .with_context(|| format!("listing containers at {}", args.docker_socket.display()))?;
            (ids, false)
        } else {
            (args.containers.clone(), true)
        };
        for id in ids {
            match docker.inspect_raw(&id).await {
                Ok(resp) => subjects.push(audit::docker::subject_from_inspect(&resp)),
                Err(runtime::Error::NotFound { .. }) if !named => {
                    report.errors.push(format!("container {id} went away before it was inspected"))
                }
                Err(runtime::Error::NotFound { .. }) => bail!("no container {id:?}"),
                Err(e) => return Err(e).with_context(|| format!("inspecting container {id}")),
            }
        }
    }
    // File order for manifests; by name for containers.
    subjects.sort_by(|a, b| {
        (a.kind, a.location.as_ref().map(|l| l.file.clone()))
            .cmp(&(b.kind, b.location.as_ref().map(|l| l.file.clone())))
            .then_with(|| {
                if a.kind == audit::SourceKind::Docker {
                    a.name.cmp(&b.name)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
    });
    // Image walks read the disk: off the async workers.
    report.subjects = tokio::task::spawn_blocking(move || {
        subjects.into_iter().map(|s| audit::audit(s, &opts, alerts.as_ref())).collect::<Vec<_>>()
    })
    .await
    .context("audit task")?;

    if let Some(path) = &args.baseline {
        let b = Baseline::load(path)?;
        report.apply_baseline(&b);
    }
    if let Some(path) = &args.write_baseline {
        std::fs::write(path, report.to_baseline().to_json())
            .with_context(|| format!("writing baseline {}", path.display()))?;
    }
    let text = match args.format {
        AuditFormat::Table => report.to_table(),
        AuditFormat::Json => serde_json::to_string_pretty(&report.to_json())? + "\n",
        AuditFormat::Sarif => {
            serde_json::to_string_pretty(&report.to_sarif(env!("CARGO_PKG_VERSION")))? + "\n"
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush()).context("writing the report")?;
        }
    }
    if args.format != AuditFormat::Table || args.output.is_some() {
        eprintln!("rampart: {}", report.summary());
    }
    if let Some(threshold) = args.fail_on {
        let count = report.failing(threshold);
        if count > 0 {
            return Err(FindingsAtOrAbove { count, threshold }.into());
        }
    }
    Ok(())
}

//! `rampart audit`: configuration and image posture of running containers
//! (Docker from its inspect answer; containerd, CRI-O and podman from the OCI
//! spec they wrote for the container), OCI bundles and Kubernetes manifests.
//!
//! Exit status: 0 when the audit ran (and no finding reaches `--fail-on`),
//! 1 on errors (unreadable or malformed input, a runtime given by its socket
//! that is unreachable, a `--container` found nowhere), 2 on
//! usage errors (clap), [`EXIT_FINDINGS`] (3) when findings at or above
//! `--fail-on` remain after the baseline.

use anyhow::{bail, Context, Result};
use audit::{Baseline, Options, Report, Severity};
use runtime::{DockerClient, Endpoint, RuntimeEndpoints};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// Docker Engine API socket [default: /var/run/docker.sock]; when given,
    /// dockerd not answering is an error, otherwise it is reported and the
    /// other runtimes are audited.
    #[arg(long, value_name = "PATH")]
    docker_socket: Option<PathBuf>,
    #[command(flatten)]
    runtimes: super::OtherRuntimeArgs,
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
            for (line, why) in &a.skipped {
                eprintln!("rampart: {}:{line}: skipped: {why}", path.display());
            }
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
        subjects.extend(running_subjects(&args, &mut report.errors).await?);
    }
    // File order for manifests (a stable sort keeps documents in order); by
    // name for running containers.
    subjects.sort_by(|a, b| {
        a.kind.cmp(&b.kind).then_with(|| {
            if a.kind.is_running() {
                a.name.cmp(&b.name)
            } else {
                a.location.as_ref().map(|l| &l.file).cmp(&b.location.as_ref().map(|l| &l.file))
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

/// Whether `c` is what `query` names: name, id prefix, or for a container of
/// a Kubernetes pod `namespace/pod/container`.
fn names(c: &model::Container, query: &str) -> bool {
    c.matches(query) || audit::running::subject_name(c) == query
}

/// The running containers of every runtime (or those `--container` names),
/// as audit subjects. A runtime found at its usual socket that does not
/// answer is reported in `errors`; one given by its socket is an error.
async fn running_subjects(args: &AuditArgs, errors: &mut Vec<String>) -> Result<Vec<audit::Subject>> {
    let mut subjects = Vec::new();
    let named = !args.containers.is_empty();
    let mut wanted: Vec<&str> = args.containers.iter().map(String::as_str).collect();

    // Docker: its inspect answer says more than the spec (ports, restart
    // policy, health check).
    let docker_socket = args.docker_socket.clone().unwrap_or_else(|| runtime::DEFAULT_DOCKER_SOCKET.into());
    let docker_explicit = args.docker_socket.is_some();
    let docker = DockerClient::with_socket(&docker_socket);
    let unreachable = |errors: &mut Vec<String>, e: runtime::Error| -> Result<()> {
        if docker_explicit {
            return Err(e).with_context(|| format!("listing containers at {}", docker_socket.display()));
        }
        errors.push(format!("docker at {}: {e}", docker_socket.display()));
        Ok(())
    };
    if !named {
        match docker.running_ids().await {
            Ok(ids) => {
                for id in ids {
                    match docker.inspect_raw(&id).await {
                        Ok(resp) => subjects.push(audit::docker::subject_from_inspect(&resp)),
                        Err(runtime::Error::NotFound { .. }) => {
                            errors.push(format!("container {id} went away before it was inspected"))
                        }
                        Err(e) => return Err(e).with_context(|| format!("inspecting container {id}")),
                    }
                }
            }
            Err(e) => unreachable(errors, e)?,
        }
    } else if docker_explicit || Path::new(&docker_socket).exists() {
        let mut docker_down = false;
        for q in std::mem::take(&mut wanted) {
            if docker_down {
                wanted.push(q);
                continue;
            }
            match docker.inspect_raw(q).await {
                Ok(resp) => subjects.push(audit::docker::subject_from_inspect(&resp)),
                Err(runtime::Error::NotFound { .. }) => wanted.push(q),
                Err(e) => {
                    unreachable(errors, e)?;
                    docker_down = true;
                    wanted.push(q);
                }
            }
        }
    }
    if named && wanted.is_empty() {
        return Ok(subjects);
    }

    // containerd (its API and its CRI plugin), CRI-O, podman: listed through
    // their APIs, audited from their specs.
    let mut eps = RuntimeEndpoints { docker: Endpoint::Off, ..Default::default() };
    args.runtimes.apply(&mut eps);
    let explicit: BTreeSet<String> = [&eps.containerd, &eps.crio, &eps.podman]
        .into_iter()
        .filter_map(|e| match e {
            Endpoint::Socket(p) => Some(p.display().to_string()),
            _ => None,
        })
        .collect();
    let roots = audit::running::SpecRoots::default();
    let mut seen: BTreeSet<String> = subjects.iter().filter_map(|s| s.id.clone()).collect();
    let mut found: BTreeSet<&str> = BTreeSet::new();
    for client in eps.clients() {
        let listed = match client.list().await {
            Ok(l) => l,
            Err(e) if explicit.contains(&client.endpoint()) => {
                return Err(e).with_context(|| {
                    format!("listing {} containers at {}", client.name(), client.endpoint())
                })
            }
            Err(e) => {
                errors.push(format!("{} at {}: {e}", client.name(), client.endpoint()));
                continue;
            }
        };
        for d in listed {
            let c = &d.container;
            if audit::running::kind_of(c.runtime).is_none()
                || audit::running::is_pod_sandbox(c)
                || seen.contains(&c.id)
            {
                continue;
            }
            if named {
                let Some(q) = wanted.iter().find(|q| names(c, q)) else { continue };
                found.insert(q);
            }
            seen.insert(c.id.clone());
            match audit::running::load(c, d.pid, &roots) {
                Ok(s) => subjects.push(s),
                Err(e) if named => return Err(e).context(format!("auditing container {}", c.id)),
                Err(e) => errors.push(format!(
                    "{} container {} ({}): {e}",
                    c.runtime.map_or("unknown", |r| r.as_str()),
                    audit::running::subject_name(c),
                    c.short_id()
                )),
            }
        }
    }
    if let Some(q) = wanted.iter().find(|q| !found.contains(*q)) {
        match errors.is_empty() {
            true => bail!("no container {q:?}"),
            false => bail!("no container {q:?} ({})", errors.join("; ")),
        }
    }
    Ok(subjects)
}

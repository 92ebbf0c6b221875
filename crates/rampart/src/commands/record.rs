//! `rampart record`: watch one workload and write what it did to
//! `recording.json`, the input of `rampart profile`.
//!
//! Files, executables, network and capability checks come from the event
//! stream; the syscall set comes from the sensor's in-kernel per-cgroup bitmap
//! (no event per syscall). The workload is a running container (`--container`),
//! every container of an image or label (merged), or the containers a command
//! starts (`rampart record -o DIR -- docker run ...`), recorded from their
//! first instruction.

use agent::filter::EventFilter;
use agent::pipeline::{self, Consumer};
use anyhow::{bail, Context, Result};
use clap::Args;
use model::{Container, Event, EventKind};
use profile::recording::{Recorder, Recording, RunSpec};
use profile::select::{command_container_name, Selection};
use runtime::{ContainerRegistry, Discovered, DockerClient, PodmanClient, Runtimes};
use sensor::{SensorConfig, SyscallSet};
use state::ProcessTable;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Args)]
pub struct RecordArgs {
    /// A running container to record (name or id prefix; repeatable: merged).
    #[arg(long = "container", value_name = "NAME|ID")]
    containers: Vec<String>,
    /// Record every container of this image (repeatable).
    #[arg(long = "image", value_name = "IMAGE")]
    images: Vec<String>,
    /// Record every container with this label (`key=value`, repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Stop after this long (e.g. `90s`, `5m`); otherwise until the recorded
    /// containers exit, or Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Directory to write `recording.json` to (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    #[command(flatten)]
    runtime: super::RuntimeArgs,
    /// Start the workload with this command (e.g. `docker run ...`) once the
    /// recorder is running; the containers it creates are recorded.
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `90s`, `5m`, `1h`, `250ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (e.g. 90s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration must be positive: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

struct RecordConsumer {
    selection: Selection,
    recorder: Recorder,
    /// Containers recorded so far, and those whose init (pid 1 in the
    /// container) has exited, with its code.
    seen: BTreeSet<String>,
    exited: BTreeMap<String, i32>,
    /// How long to record, and until when (set once the sensor is ready).
    duration: Option<Duration>,
    deadline: Option<Instant>,
    command: Vec<String>,
    child: Option<Child>,
    child_exit: Option<(Instant, i32)>,
    spawn_error: Option<anyhow::Error>,
}

impl Consumer for RecordConsumer {
    fn event(&mut self, ev: &Event, _: &ProcessTable) -> std::io::Result<()> {
        let Some(c) = ev.container.as_deref() else { return Ok(()) };
        if !self.selection.matches(c) {
            return Ok(());
        }
        if self.seen.insert(c.id.clone()) {
            eprintln!("rampart: recording container {} ({})", display_name(c), c.image);
        }
        self.recorder.observe(ev);
        if let EventKind::Exit { code, signal, .. } = ev.kind {
            if ev.process.vpid == 1 {
                let status = if signal != 0 { 128 + signal } else { code };
                self.exited.insert(c.id.clone(), status);
            }
        }
        Ok(())
    }

    fn started(&mut self, _: &pipeline::SensorHandles) {
        self.deadline = self.duration.map(|d| Instant::now() + d);
        if self.command.is_empty() {
            return;
        }
        eprintln!("rampart: starting: {}", self.command.join(" "));
        match Command::new(&self.command[0]).args(&self.command[1..]).spawn() {
            Ok(child) => self.child = Some(child),
            Err(e) => self.spawn_error = Some(anyhow::anyhow!("starting {:?}: {e}", self.command[0])),
        }
    }

    fn finished(&mut self) -> bool {
        if self.spawn_error.is_some() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        let all_exited = !self.seen.is_empty() && self.seen.iter().all(|id| self.exited.contains_key(id));
        if let Some(child) = self.child.as_mut() {
            if self.child_exit.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child_exit = Some((Instant::now(), exit_status_code(status)));
                }
            }
            // The command is done: stop once its containers have exited too
            // (a `docker run -d` returns while its container runs on). The grace
            // lets the container's last events arrive.
            return self.child_exit.is_some_and(|(at, _)| {
                at.elapsed() > Duration::from_secs(1) && (self.seen.is_empty() || all_exited)
            });
        }
        // Attached to named containers: done when they have all exited.
        !self.selection.ids.is_empty() && self.selection.ids.iter().all(|id| self.exited.contains_key(id))
    }
}

fn exit_status_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn display_name(c: &Container) -> String {
    if c.name.is_empty() {
        c.id.chars().take(12).collect()
    } else {
        c.name.trim_start_matches('/').to_string()
    }
}

fn now_rfc3339() -> String {
    let ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    alerts::rfc3339_nanos(ns)
}

/// How a running container was started, for `profile verify` (which starts it
/// again with docker or podman): from Docker's or podman's inspect. Containers
/// of containerd and CRI runtimes were not started from a docker or podman
/// image, so they have none; verifying those needs the recorded command.
async fn run_spec(
    runtimes: &Runtimes,
    docker_socket: &std::path::Path,
    d: &Discovered,
) -> Result<Option<RunSpec>> {
    let id = d.container.id.as_str();
    match d.container.runtime {
        Some(model::Runtime::Docker) => {
            let raw = DockerClient::with_socket(docker_socket)
                .inspect_raw(id)
                .await
                .with_context(|| format!("inspecting container {id}"))?;
            let config = raw.config.unwrap_or_default();
            Ok(Some(RunSpec {
                image: config.image.unwrap_or_default(),
                entrypoint: config.entrypoint.unwrap_or_default(),
                cmd: config.cmd.unwrap_or_default(),
                env: config.env.unwrap_or_default(),
                user: config.user.unwrap_or_default(),
                workdir: config.working_dir.unwrap_or_default(),
            }))
        }
        Some(model::Runtime::Podman) => {
            let Some(client) = runtimes.clients().iter().find(|c| c.runtime() == model::Runtime::Podman)
            else {
                return Ok(None);
            };
            let raw = PodmanClient::with_socket(client.endpoint())
                .inspect_raw(id)
                .await
                .with_context(|| format!("inspecting podman container {id}"))?;
            let c = raw.config;
            Ok(Some(RunSpec {
                image: if raw.image_name.is_empty() { c.image } else { raw.image_name },
                entrypoint: c.entrypoint,
                cmd: c.cmd,
                // The hostname podman set is the old container's.
                env: c.env.into_iter().filter(|e| !e.starts_with("HOSTNAME=")).collect(),
                user: c.user,
                workdir: c.working_dir,
            }))
        }
        _ => Ok(None),
    }
}

pub async fn record(args: RecordArgs) -> Result<()> {
    if args.containers.is_empty()
        && args.images.is_empty()
        && args.labels.is_empty()
        && args.command.is_empty()
    {
        bail!("nothing to record: give --container, --image, --label, or a command after `--`");
    }
    let mut labels = Vec::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').with_context(|| format!("--label {l:?}: expected key=value"))?;
        labels.push((k.to_string(), v.to_string()));
    }
    // The recording holds the container's environment (often secrets).
    super::files::create_private_dir(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;

    let registry = ContainerRegistry::with_endpoints(&args.runtime.endpoints());
    registry.refresh().await.context("listing containers through the runtimes' APIs")?;
    let runtimes = registry.runtimes();
    let mut ids = BTreeSet::new();
    let mut run = None;
    for q in &args.containers {
        let d = runtimes.find(q).await?;
        if d.pid.is_none() {
            bail!(
                "container {} ({}) is not running",
                d.container.name.trim_start_matches('/'),
                d.container.short_id()
            );
        }
        if args.containers.len() == 1 {
            run = run_spec(&runtimes, &args.runtime.docker_socket, &d).await?;
            if run.is_none() {
                eprintln!(
                    "rampart: {} containers have no docker/podman start configuration: `profile verify` will need a recorded command",
                    d.container.runtime.map(|r| r.as_str()).unwrap_or("these")
                );
            }
        }
        registry.upsert(d.clone());
        ids.insert(d.container.id);
    }
    let preexisting = if args.command.is_empty() {
        None
    } else {
        let (running, unreachable) = runtimes.list().await;
        for u in unreachable {
            eprintln!("rampart: warning: cannot list containers of {u}");
        }
        Some(running.into_iter().map(|d| d.container.id).collect())
    };
    let selection = Selection {
        ids,
        images: args.images.clone(),
        labels,
        name: command_container_name(&args.command),
        preexisting,
    };

    let _watchers = registry.spawn();
    let mut consumer = RecordConsumer {
        selection,
        recorder: Recorder::new(std::env::consts::ARCH),
        seen: BTreeSet::new(),
        exited: BTreeMap::new(),
        duration: args.duration,
        deadline: None,
        command: args.command.clone(),
        child: None,
        child_exit: None,
        spawn_error: None,
    };
    let started = now_rfc3339();
    let config = SensorConfig { record_syscalls: true, ..Default::default() };
    let filter = EventFilter::default();
    let summary = pipeline::stream(config, registry, &filter, &mut consumer).await?;
    if let Some(e) = consumer.spawn_error.take() {
        return Err(e);
    }
    if let Some(mut child) = consumer.child.take() {
        if consumer.child_exit.is_none() {
            // Stopped by Ctrl-C or the deadline: the command keeps running.
            eprintln!("rampart: the command (pid {}) is still running; not waiting for it", child.id());
            let _ = child.try_wait();
        }
    }
    if consumer.seen.is_empty() {
        bail!("no matching container was seen while recording: nothing written");
    }

    let cgroups = consumer.recorder.cgroups().clone();
    let mut recording: Recording = consumer.recorder.finish();
    recording.started = started;
    recording.ended = now_rfc3339();
    recording.command = args.command.clone();
    recording.run = run;
    recording.events_lost = summary.dropped();
    let mut set = SyscallSet::default();
    for (cgroup, s) in &summary.syscall_sets {
        if cgroups.contains_key(cgroup) {
            set.merge(s);
        }
    }
    profile::select::name_syscalls(&mut recording, &set.native, &set.compat);
    recording.exit_code = match (consumer.exited.len(), consumer.child_exit) {
        (1, _) => consumer.exited.values().next().copied(),
        (_, Some((_, code))) => Some(code),
        _ => None,
    };

    let path = args.output.join("recording.json");
    let text = serde_json::to_string_pretty(&recording)?;
    super::files::write_private(&path, (text + "\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "rampart: recorded {} container(s): {} syscalls, {} capabilities needed, {} files, {} executables, {} connects, {} listening ports{}",
        recording.containers.len(),
        recording.syscalls.len() + recording.compat_syscalls.len(),
        recording.needed_capabilities().len(),
        recording.files.len(),
        recording.executables.len(),
        recording.network.connect.len(),
        recording.network.listen.len(),
        match recording.exit_code {
            Some(c) => format!(", exit code {c}"),
            None => String::new(),
        }
    );
    if recording.events_lost > 0 {
        eprintln!(
            "rampart: warning: {} events were lost while recording; the profiles may miss behaviour",
            recording.events_lost
        );
    }
    eprintln!("rampart: wrote {}; next: rampart profile {}", path.display(), args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}

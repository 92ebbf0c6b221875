//! rampart: container runtime security agent.

mod filter;
mod output;
mod pipeline;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use filter::EventFilter;
use output::Format;
use pipeline::{Counts, Enricher, SensorThread};
use runtime::{ContainerRegistry, RegistryTasks};
use sensor::{HookState, SensorConfig};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Parser)]
#[command(name = "rampart", version, about = "Container runtime security agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream, live, what processes in containers do (one event per line).
    Events(EventsArgs),
    /// Load the sensor and report kernel features, hooks and runtimes.
    Status(StatusArgs),
}

#[derive(Args)]
struct RuntimeArgs {
    /// Docker Engine API socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
}

#[derive(Args)]
struct EventsArgs {
    /// Print JSON lines instead of readable text.
    #[arg(long)]
    json: bool,
    /// Only this container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Only these event types, comma-separated (e.g. exec,open,connect).
    #[arg(long = "type", value_name = "TYPES")]
    types: Option<String>,
    /// Also report processes that are not in a container.
    #[arg(long)]
    host: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Events(args) => events(args).await,
            Command::Status(args) => status(args).await,
        }
    })
}

/// The container registry with its background runtime watchers running.
fn registry(args: &RuntimeArgs) -> (ContainerRegistry, RegistryTasks) {
    let registry = ContainerRegistry::with_docker(&args.docker_socket);
    let tasks = registry.spawn();
    (registry, tasks)
}

async fn events(args: EventsArgs) -> Result<()> {
    let types = match &args.types {
        Some(list) => EventFilter::parse_types(list)?,
        None => Default::default(),
    };
    let filter = EventFilter { container: args.container.clone(), types, include_host: args.host };
    let format = if args.json { Format::Json } else { Format::Human };

    let (containers, _watchers) = registry(&args.runtime);
    let processes = state::ProcessTable::scan(Default::default()).context("scanning /proc")?;
    let mut sensor =
        SensorThread::start(SensorConfig { include_host: args.host, ..Default::default() }).await?;
    for hook in &sensor.status.hooks {
        if let HookState::Failed { reason } = &hook.state {
            tracing::warn!(hook = %hook.hook, %reason, "hook not attached");
        }
    }
    eprintln!("rampart: sensor ready");

    let mut enricher = Enricher { processes, containers };
    let mut counts = Counts::default();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut write_result = Ok(());
    loop {
        tokio::select! {
            batch = sensor.next_batch() => {
                let Some(batch) = batch else { break };
                let mut sink = |ev: &model::Event| output::write_event(&mut out, ev, format);
                write_result =
                    pipeline::process_batch(&mut enricher, &filter, batch, &mut counts, &mut sink).await;
                write_result = write_result.and_then(|()| out.flush());
                if write_result.is_err() {
                    break; // stdout closed: stop like any filter in a pipe would
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    for batch in sensor.stop().await {
        if write_result.is_err() {
            counts.seen += batch.len() as u64;
            continue;
        }
        let mut sink = |ev: &model::Event| output::write_event(&mut out, ev, format);
        write_result = pipeline::process_batch(&mut enricher, &filter, batch, &mut counts, &mut sink).await;
    }
    let _ = out.flush();
    let stats = sensor.stats();
    let lost: u64 = stats.lost.iter().sum();
    eprintln!(
        "rampart: {} events seen, {} dropped ({} shown; lost in kernel per cpu {:?}; {} undecodable)",
        counts.seen,
        lost + stats.decode_errors,
        counts.shown,
        stats.lost,
        stats.decode_errors
    );
    Ok(())
}

async fn status(args: StatusArgs) -> Result<()> {
    let (containers, _watchers) = registry(&args.runtime);
    let mut sensor = SensorThread::start(SensorConfig::default()).await?;
    // Give the runtime client a moment to connect before reporting its health.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let runtimes = containers.status();
    sensor.stop().await;
    if args.json {
        let v = serde_json::json!({ "sensor": sensor.status, "runtimes": runtimes });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("kernel features:");
    for f in &sensor.status.features {
        println!("  {:<28} {:<4} {}", f.name, if f.available { "yes" } else { "no" }, f.detail);
    }
    let attached = sensor.status.hooks.iter().filter(|h| matches!(h.state, HookState::Attached)).count();
    println!("hooks: {attached}/{} attached", sensor.status.hooks.len());
    for h in &sensor.status.hooks {
        match &h.state {
            HookState::Attached => println!("  {:<52} attached", h.hook),
            HookState::Failed { reason } => println!("  {:<52} FAILED: {reason}", h.hook),
            HookState::Skipped { reason } => println!("  {:<52} skipped: {reason}", h.hook),
        }
    }
    println!("runtimes:");
    for r in &runtimes.runtimes {
        let health = if r.connected { "connected".to_string() } else { "unreachable".to_string() };
        let detail = r.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
        println!("  {:<10} {:<12} {} {} containers{detail}", r.name, health, r.endpoint, r.containers);
    }
    Ok(())
}

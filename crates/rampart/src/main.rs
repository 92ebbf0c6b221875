//! rampart: container runtime security agent.

mod filter;
mod output;
mod pipeline;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use filter::EventFilter;
use output::{EventPrinter, Format};
use pipeline::Consumer;
use runtime::{ContainerRegistry, RegistryTasks};
use sensor::{HookState, SensorConfig};
use std::path::PathBuf;

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
    /// Record the enriched event stream to a file (JSON lines) for `replay`.
    Capture(CaptureArgs),
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
struct SelectArgs {
    /// Only this container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Only these event types, comma-separated (e.g. exec,open,connect).
    #[arg(long = "type", value_name = "TYPES")]
    types: Option<String>,
    /// Also report processes that are not in a container.
    #[arg(long)]
    host: bool,
}

impl SelectArgs {
    fn filter(&self) -> Result<EventFilter> {
        let types = match &self.types {
            Some(list) => EventFilter::parse_types(list)?,
            None => Default::default(),
        };
        Ok(EventFilter { container: self.container.clone(), types, include_host: self.host })
    }
}

#[derive(Args)]
struct EventsArgs {
    /// Print JSON lines instead of readable text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Args)]
struct CaptureArgs {
    /// File to write (JSON lines, one enriched event each).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    select: SelectArgs,
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
            Command::Capture(args) => capture(args).await,
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

/// Streams the selected events into `consumer` and prints the summary.
async fn stream_to(select: &SelectArgs, runtime: &RuntimeArgs, consumer: &mut dyn Consumer) -> Result<()> {
    let filter = select.filter()?;
    let (containers, _watchers) = registry(runtime);
    let config = SensorConfig { include_host: select.host, ..Default::default() };
    let summary = pipeline::stream(config, containers, &filter, consumer).await?;
    eprintln!("rampart: {}, {} shown", summary.line(), summary.counts.accepted);
    Ok(())
}

async fn events(args: EventsArgs) -> Result<()> {
    let format = if args.json { Format::Json } else { Format::Human };
    let mut printer = EventPrinter::new(std::io::stdout().lock(), format);
    stream_to(&args.select, &args.runtime, &mut printer).await
}

async fn capture(args: CaptureArgs) -> Result<()> {
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating capture file {}", args.output.display()))?;
    let mut printer = EventPrinter::new(file, Format::Json);
    stream_to(&args.select, &args.runtime, &mut printer).await
}

async fn status(args: StatusArgs) -> Result<()> {
    let (containers, _watchers) = registry(&args.runtime);
    let mut sensor = pipeline::SensorThread::start(SensorConfig::default()).await?;
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
        let health = if r.connected { "connected" } else { "unreachable" };
        let detail = r.last_error.as_deref().map(|e| format!(" (last error: {e})")).unwrap_or_default();
        println!("  {:<10} {:<12} {} {} containers{detail}", r.name, health, r.endpoint, r.containers);
    }
    Ok(())
}

//! rampart: container runtime security agent.

mod actions;
mod audit_cmd;
mod caps_cmd;
mod config;
mod detect;
mod filter;
mod harden;
mod kernel_kill;
mod netdeny;
mod netpolicy_cmd;
mod output;
mod pipeline;
mod record;
mod replay;
mod seccomp_cmd;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use filter::EventFilter;
use output::{EventPrinter, Format};
use pipeline::Consumer;
use runtime::{ContainerRegistry, Endpoint, RegistryTasks, RuntimeEndpoints};
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
    /// The agent: watch every container, evaluate the rules, raise alerts.
    Run(RunArgs),
    /// Check rule files, or list the fields rules can use.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run rules over a capture file offline (no root needed).
    Replay(ReplayArgs),
    /// Stream, live, what processes in containers do (one event per line).
    Events(EventsArgs),
    /// Record the enriched event stream to a file (JSON lines) for `replay`.
    Capture(CaptureArgs),
    /// Load the sensor and report kernel features, hooks and runtimes.
    Status(StatusArgs),
    /// Record what a container does (syscalls, capabilities, files, network)
    /// for `rampart profile`.
    Record(record::RecordArgs),
    /// Generate least-privilege profiles from a recording (seccomp, capabilities,
    /// SELinux, network), or `verify` them by running the workload again.
    Profile(harden::ProfileArgs),
    /// Show container processes' capability sets, flag dangerous ones, and
    /// compare with what a recording says is needed.
    Caps(caps_cmd::CapsArgs),
    /// Per-container network policy enforced in the kernel (cgroup eBPF):
    /// apply, check, show, remove, reconcile.
    #[command(subcommand)]
    Netpolicy(netpolicy_cmd::NetpolicyCommand),
    /// Cut a container off the network in the kernel (existing connections
    /// too), keeping it running; `--release` undoes it.
    Isolate(netpolicy_cmd::IsolateArgs),
    /// Freeze every process of a container (cgroup freezer or runtime pause).
    Freeze(netpolicy_cmd::FreezeArgs),
    /// Thaw a frozen container, whichever way it was frozen.
    Unfreeze(netpolicy_cmd::FreezeArgs),
    /// Check container configuration and image posture (CIS Docker Benchmark,
    /// Pod Security Standards): running containers, OCI bundles, Kubernetes manifests.
    Audit(audit_cmd::AuditArgs),
    /// Seccomp toolkit: compile a Docker/OCI profile to BPF (and disassemble
    /// it), check what a syscall gets, diff two profiles, run a command under one.
    #[command(subcommand)]
    Seccomp(seccomp_cmd::SeccompCommand),
}

#[derive(Args, Clone)]
struct RuntimeArgs {
    /// Docker Engine API socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    #[command(flatten)]
    others: OtherRuntimeArgs,
}

impl RuntimeArgs {
    fn endpoints(&self) -> RuntimeEndpoints {
        let mut eps =
            RuntimeEndpoints { docker: Endpoint::Socket(self.docker_socket.clone()), ..Default::default() };
        self.others.apply(&mut eps);
        eps
    }
}

/// The runtimes besides Docker; each is `auto` (its usual socket, when it
/// exists), `off`, or a socket path.
#[derive(Args, Clone)]
struct OtherRuntimeArgs {
    /// containerd's socket, for its own API and its CRI plugin [default: auto,
    /// /run/containerd/containerd.sock].
    #[arg(long, value_name = "auto|off|PATH")]
    containerd_socket: Option<Endpoint>,
    /// CRI-O's socket [default: auto, /run/crio/crio.sock].
    #[arg(long, value_name = "auto|off|PATH")]
    crio_socket: Option<Endpoint>,
    /// podman's API socket [default: auto, /run/podman/podman.sock].
    #[arg(long, value_name = "auto|off|PATH")]
    podman_socket: Option<Endpoint>,
}

impl OtherRuntimeArgs {
    /// Overrides the endpoints given on the command line.
    fn apply(&self, eps: &mut RuntimeEndpoints) {
        let set = |slot: &mut Endpoint, arg: &Option<Endpoint>| {
            if let Some(ep) = arg {
                *slot = ep.clone();
            }
        };
        set(&mut eps.containerd, &self.containerd_socket);
        set(&mut eps.crio, &self.crio_socket);
        set(&mut eps.podman, &self.podman_socket);
    }
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
struct RuleSourceArgs {
    /// Agent configuration file (YAML); command-line flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A rule file or directory, loaded after the defaults (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not load the rule set built into rampart.
    #[arg(long)]
    no_default_rules: bool,
    /// Skip (and report) rules using fields rampart cannot provide.
    #[arg(long)]
    skip_unsupported_fields: bool,
    /// Alerts on stdout as JSON lines (Falco's alert shape).
    #[arg(long)]
    json: bool,
}

impl RuleSourceArgs {
    /// The config file (or defaults) with the command line applied on top.
    fn config(&self) -> Result<config::AgentConfig> {
        let mut cfg = match &self.config {
            Some(path) => config::AgentConfig::load(path)?,
            None => config::AgentConfig::default(),
        };
        cfg.rules.paths.extend(self.rules.iter().cloned());
        if self.no_default_rules {
            cfg.rules.default_rules = false;
        }
        if self.skip_unsupported_fields {
            cfg.rules.skip_unsupported_fields = true;
        }
        if self.json {
            cfg.alerts.outputs.stdout.format = alerts::Format::Json;
        }
        Ok(cfg)
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    source: RuleSourceArgs,
    /// Also watch processes that are not in a container.
    #[arg(long)]
    host: bool,
    /// Docker Engine API socket (default: the config's, /var/run/docker.sock).
    #[arg(long)]
    docker_socket: Option<PathBuf>,
    #[command(flatten)]
    other_runtimes: OtherRuntimeArgs,
    /// Report what rule actions would do, do nothing (response.dry_run).
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate rule files (after the defaults unless --no-default-rules);
    /// prints every error as file:line:col.
    Check {
        files: Vec<PathBuf>,
        #[arg(long)]
        no_default_rules: bool,
    },
    /// Print the fields rule conditions and outputs can use (Markdown).
    Fields,
}

#[derive(Args)]
struct ReplayArgs {
    /// A file written by `rampart capture`.
    file: PathBuf,
    #[command(flatten)]
    source: RuleSourceArgs,
}

#[derive(Args)]
struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `audit --fail-on`: findings, not a failure of rampart; own exit status.
            if let Some(f) = e.downcast_ref::<audit_cmd::FindingsAtOrAbove>() {
                eprintln!("rampart: {f}");
                return f.exit_code();
            }
            // The cause chain, without a backtrace: a refused rule file or config
            // is the user's input, not a crash.
            eprintln!("rampart: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
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
            Command::Run(args) => run(args).await,
            Command::Rules(cmd) => rules_command(cmd),
            Command::Replay(args) => replay::replay(&args.file, &args.source.config()?).await,
            Command::Events(args) => events(args).await,
            Command::Capture(args) => capture(args).await,
            Command::Status(args) => status(args).await,
            Command::Record(args) => record::record(args).await,
            Command::Profile(args) => harden::run(args).await,
            Command::Caps(args) => caps_cmd::caps(args).await,
            Command::Netpolicy(cmd) => netpolicy_cmd::netpolicy(cmd).await,
            Command::Isolate(args) => netpolicy_cmd::isolate(args).await,
            Command::Freeze(args) => netpolicy_cmd::freeze(args).await,
            Command::Unfreeze(args) => netpolicy_cmd::unfreeze(args).await,
            Command::Audit(args) => audit_cmd::run(args).await,
            Command::Seccomp(cmd) => seccomp_cmd::run(cmd),
        }
    })
}

/// The container registry with its background runtime watchers running.
fn registry(args: &RuntimeArgs) -> (ContainerRegistry, RegistryTasks) {
    let registry = ContainerRegistry::with_endpoints(&args.endpoints());
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

/// Loads the rules or explains, every error on its own line, why not.
fn load_rules(cfg: &config::RulesConfig) -> Result<rules::Ruleset> {
    let (ruleset, warnings) = detect::load_rules(cfg)?;
    for w in &warnings {
        eprintln!("rampart: warning: {w}");
    }
    Ok(ruleset)
}

async fn run(args: RunArgs) -> Result<()> {
    let mut cfg = args.source.config()?;
    cfg.host |= args.host;
    cfg.response.dry_run |= args.dry_run;
    if let Some(socket) = args.docker_socket {
        cfg.docker_socket = socket;
    }
    args.other_runtimes.apply(&mut cfg.runtimes);
    let ruleset = load_rules(&cfg.rules)?;
    eprintln!("rampart: {} rules loaded", ruleset.len());
    let dispatcher = std::sync::Arc::new(alerts::Dispatcher::new(&cfg.alerts)?);
    let plans = actions::plans(&ruleset).map_err(detect::RulesRefused)?;
    if !plans.is_empty() {
        let mode = if cfg.response.dry_run { " (dry run)" } else { "" };
        eprintln!("rampart: {} rules with actions{mode}", plans.len());
    }
    let responder =
        actions::Responder::new(cfg.response.clone(), plans, dispatcher.clone(), cfg.docker_socket.clone());
    let mut detector =
        detect::Detector::new(ruleset, cfg.rules.clone(), dispatcher.clone()).with_responder(responder);

    let filter = EventFilter { include_host: cfg.host, ..Default::default() };
    let containers = ContainerRegistry::with_endpoints(&cfg.runtime_endpoints());
    let _watchers = containers.spawn();
    let sensor_config = SensorConfig { include_host: cfg.host, ..Default::default() };
    let summary = pipeline::stream(sensor_config, containers, &filter, &mut detector).await?;
    let alerts_sent = detector.alerts;
    drop(detector);
    let stats = match std::sync::Arc::try_unwrap(dispatcher) {
        Ok(d) => d.shutdown(std::time::Duration::from_secs(5)).await,
        Err(d) => d.stats(),
    };
    eprintln!(
        "rampart: {}, {alerts_sent} alerts ({} suppressed, {} dropped by outputs)",
        summary.line(),
        stats.suppressed,
        stats.dropped()
    );
    Ok(())
}

fn rules_command(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Fields => {
            print!("{}", rules::fields_markdown());
            Ok(())
        }
        RulesCommand::Check { files, no_default_rules } => {
            let cfg = config::RulesConfig {
                default_rules: !no_default_rules,
                paths: files,
                skip_unsupported_fields: false,
            };
            match detect::load_rules(&cfg) {
                Ok((ruleset, warnings)) => {
                    for w in &warnings {
                        println!("warning: {w}");
                    }
                    let enabled = ruleset.rules().iter().filter(|r| r.enabled).count();
                    let count = ruleset.len();
                    // Where each kill rule acts (no dry run: what `run` would arm).
                    let plans = actions::plans(&ruleset).map_err(detect::RulesRefused)?;
                    let kernel = kernel_kill::KernelPlan::new(ruleset.into(), &plans, &Default::default());
                    kernel.describe().iter().for_each(|l| println!("{l}"));
                    println!("ok: {count} rules ({enabled} enabled)");
                    Ok(())
                }
                Err(refused) => {
                    for e in &refused.0 {
                        println!("{e}");
                    }
                    anyhow::bail!("{} error(s)", refused.0.len())
                }
            }
        }
    }
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
    // Give the runtime clients up to 3 s to connect before reporting their health.
    for _ in 0..30 {
        if containers.status().runtimes.iter().all(|r| r.connected) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
        println!("  {:<15} {:<12} {:<36} {} containers{detail}", r.name, health, r.endpoint, r.containers);
    }
    Ok(())
}

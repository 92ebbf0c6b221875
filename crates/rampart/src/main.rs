//! rampart: container runtime security agent. This file only parses the
//! command line and dispatches: each subcommand lives in `commands/`, the
//! agent's pipeline in the `agent` crate, and the work itself in the library
//! crates.

mod commands;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use commands::*;

#[derive(Parser)]
#[command(name = "rampart", version, about = "Container runtime security agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Change a cap on the size of an input, KIND=SIZE (repeatable; also
    /// RAMPART_INPUT_LIMITS, comma-separated, which the flag overrides).
    /// Kinds: rules, config, netpolicy, manifest, oci-spec, recording,
    /// seccomp-profile, baseline, ca-bundle, image-file, capture,
    /// capture-line, alerts, alerts-line, podman-store. Sizes: 65536, 64KiB,
    /// 16MiB, 1GiB.
    #[arg(long = "input-limit", value_name = "KIND=SIZE", global = true)]
    input_limits: Vec<String>,
}

/// Sets the input size limits from RAMPART_INPUT_LIMITS, then the command line.
fn set_input_limits(flags: &[String]) -> Result<()> {
    let env = std::env::var("RAMPART_INPUT_LIMITS").unwrap_or_default();
    let from_env = env.split(',').map(str::trim).filter(|s| !s.is_empty());
    for setting in from_env.chain(flags.iter().map(String::as_str)) {
        model::input::set_limit_from(setting).map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// The agent: watch every container, evaluate the rules, raise alerts.
    Run(run::RunArgs),
    /// Check rule files, or list the fields rules can use.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Run rules over a capture file offline (no root needed).
    Replay(replay::ReplayArgs),
    /// Stream, live, what processes in containers do (one event per line).
    Events(events::EventsArgs),
    /// Record the enriched event stream to a file (JSON lines) for `replay`.
    Capture(capture::CaptureArgs),
    /// Load the sensor and report kernel features, hooks and runtimes.
    Status(status::StatusArgs),
    /// Containers by CPU, events, memory or I/O, refreshed live (own sensor,
    /// or a running agent's metrics with --agent).
    Top(top::TopArgs),
    /// The live flow table per container: bytes and packets each way, counted
    /// in the kernel (a running agent's table, or its own for --duration).
    Flows(flows::FlowsArgs),
    /// Write a container's packets (both directions) to a pcapng or pcap file
    /// for tcpdump, tshark or Wireshark.
    Pcap(pcap::PcapArgs),
    /// Record what a container does (syscalls, capabilities, files, network)
    /// for `rampart profile`.
    Record(record::RecordArgs),
    /// Generate least-privilege profiles from a recording (seccomp, capabilities,
    /// SELinux, network), or `verify` them by running the workload again.
    Profile(profile::ProfileArgs),
    /// Show container processes' capability sets, flag dangerous ones, and
    /// compare with what a recording says is needed.
    Caps(caps::CapsArgs),
    /// Per-container network policy enforced in the kernel (cgroup eBPF):
    /// apply, check, show, remove, reconcile.
    #[command(subcommand)]
    Netpolicy(netpolicy::NetpolicyCommand),
    /// Cut a container off the network in the kernel (existing connections
    /// too), keeping it running; `--release` undoes it.
    Isolate(isolate::IsolateArgs),
    /// Freeze every process of a container (cgroup freezer or runtime pause).
    Freeze(freeze::FreezeArgs),
    /// Thaw a frozen container, whichever way it was frozen.
    Unfreeze(freeze::FreezeArgs),
    /// Check container configuration and image posture (CIS Docker Benchmark,
    /// Pod Security Standards): running containers, OCI bundles, Kubernetes manifests.
    Audit(audit::AuditArgs),
    /// Seccomp toolkit: compile a Docker/OCI profile to BPF (and disassemble
    /// it), check what a syscall gets, diff two profiles, run a command under one.
    #[command(subcommand)]
    Seccomp(seccomp::SeccompCommand),
    /// runc's createRuntime hook (added by the `rampart-runc` wrapper): has
    /// the agent arm a starting container's kill rules before its entrypoint.
    OciHook(ocihook::OciHookArgs),
}

fn main() -> std::process::ExitCode {
    // Installed under the wrapper's name, the binary is an OCI runtime.
    let mut argv = std::env::args();
    let invoked = argv.next().unwrap_or_default();
    if std::path::Path::new(&invoked).file_name().is_some_and(|n| n == respond::ocihook::WRAPPER_NAME) {
        return ocihook::runtime_main(argv.collect());
    }
    if sensor::FLOOR_BUILD {
        eprintln!(
            "rampart: benchmark floor build: the BPF programs return at once (no events, no protection)"
        );
    }
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `audit --fail-on`: findings, not a failure of rampart; own exit status.
            if let Some(f) = e.downcast_ref::<audit::FindingsAtOrAbove>() {
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
    set_input_limits(&cli.input_limits)?;
    let command = match cli.command {
        // Run by runc for every container start: no async runtime needed.
        Command::OciHook(args) => return ocihook::hook(args),
        command => command,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match command {
            Command::Run(args) => run::run(args).await,
            Command::Rules(cmd) => rules::rules(cmd),
            Command::Replay(args) => replay::replay(args).await,
            Command::Events(args) => events::events(args).await,
            Command::Capture(args) => capture::capture(args).await,
            Command::Status(args) => status::status(args).await,
            Command::Top(args) => top::top(args).await,
            Command::Flows(args) => flows::flows(args).await,
            Command::Pcap(args) => pcap::pcap(args).await,
            Command::Record(args) => record::record(args).await,
            Command::Profile(args) => profile::run(args).await,
            Command::Caps(args) => caps::caps(args).await,
            Command::Netpolicy(cmd) => netpolicy::netpolicy(cmd).await,
            Command::Isolate(args) => isolate::isolate(args).await,
            Command::Freeze(args) => freeze::freeze(args).await,
            Command::Unfreeze(args) => freeze::unfreeze(args).await,
            Command::Audit(args) => audit::run(args).await,
            Command::Seccomp(cmd) => seccomp::run(cmd),
            Command::OciHook(args) => ocihook::hook(args),
        }
    })
}

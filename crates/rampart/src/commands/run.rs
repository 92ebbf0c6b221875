//! `rampart run`: the agent. Watch every container, evaluate the rules, raise
//! alerts, act on rules with `actions:`.

use super::{OtherRuntimeArgs, RuleSourceArgs};
use agent::detect::{self, Detector, RulesSource};
use agent::filter::EventFilter;
use agent::metrics::server::{self, MetricsServer};
use agent::metrics::AgentMetrics;
use agent::pipeline;
use agent::privileges::{self, Privileges};
use anyhow::Result;
use clap::Args;
use respond::actions::Responder;
use runtime::ContainerRegistry;
use sensor::SensorConfig;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct RunArgs {
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
    /// Serve /metrics, /healthz and /readyz on ADDR (host:port; port 0 picks a
    /// free one), or `off` (default: the config's metrics.address, 127.0.0.1:9376).
    #[arg(long, value_name = "ADDR")]
    metrics_address: Option<String>,
    /// Do not watch the config and rule files; reload on SIGHUP only
    /// (rules.reload_on_change: false).
    #[arg(long)]
    no_reload_on_change: bool,
    /// Serve the seccomp agent socket here (the notify profile's
    /// listenerPath); served when rules have `{deny: {errno: ...}}`.
    #[arg(long, value_name = "PATH", default_value = respond::notify::DEFAULT_SOCKET)]
    notify_socket: PathBuf,
    /// Serve the OCI hook socket here (`rampart oci-hook`, added by the
    /// `rampart-runc` wrapper): metadata-scoped kill rules armed before a
    /// container's entrypoint.
    #[arg(long, value_name = "PATH", default_value = respond::ocihook::DEFAULT_SOCKET)]
    oci_hook_socket: PathBuf,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let mut cfg = args.source.config()?;
    cfg.host |= args.host;
    cfg.response.dry_run |= args.dry_run;
    if let Some(socket) = args.docker_socket {
        cfg.docker_socket = socket;
    }
    args.other_runtimes.apply(&mut cfg.runtimes);
    match args.metrics_address.as_deref() {
        Some("off") => cfg.metrics.enabled = false,
        Some(a) => {
            cfg.metrics.enabled = true;
            cfg.metrics.address = a.to_string();
        }
        None => {}
    }
    // What this process may do: a core need missing stops here, naming it; an
    // optional feature without its privilege starts off and says why.
    let privileges = Privileges::probe();
    if let Some(e) = privileges.core_error() {
        anyhow::bail!(e);
    }
    let disabled = privileges.disabled();
    for d in &disabled {
        eprintln!("rampart: warning: {} is off: {}", d.feature.name(), d.reason());
    }
    cfg.response.unavailable.extend(privileges::unavailable_actions(&disabled));
    // A bad or busy address is a startup error, before anything else starts.
    let metrics_server = if cfg.metrics.enabled {
        Some(MetricsServer::bind(server::parse_address(&cfg.metrics.address)?).await?)
    } else {
        None
    };
    let loaded = detect::load_rules(&cfg.rules)?;
    loaded.print_warnings();
    eprintln!("rampart: {} rules loaded", loaded.ruleset.len());
    if !loaded.plans.is_empty() {
        let mode = if cfg.response.dry_run { " (dry run)" } else { "" };
        eprintln!("rampart: {} rules with actions{mode}", loaded.plans.len());
    }
    let dispatcher = Arc::new(alerts::Dispatcher::new(&cfg.alerts)?);
    let responder = Responder::new(cfg.response.clone(), dispatcher.clone(), cfg.docker_socket.clone());
    let containers = ContainerRegistry::with_endpoints(&cfg.runtime_endpoints());
    // The seccomp agent's deny rules: its own copy (the detector owns its).
    let mut notify = super::notify::NotifyServer::new(&cfg, &args.notify_socket, &dispatcher, &containers);
    let own = detect::load_rules(&cfg.rules)?;
    notify.apply(&Arc::new(own.ruleset), &own.plans)?;
    let action_counts = responder.counts();
    let filter = EventFilter { include_host: cfg.host, ..Default::default() };
    let _watchers = containers.spawn();
    let metrics = Arc::new(AgentMetrics::new(dispatcher.clone(), containers.clone(), Some(action_counts)));
    metrics.set_features(privileges::feature_states(&disabled));
    let _server = metrics_server.map(|s| {
        eprintln!("rampart: metrics on http://{}/metrics (health: /healthz, /readyz)", s.address);
        AbortOnDrop(s.spawn(metrics.clone()))
    });
    // Starting containers' kill rules, armed while runc waits in the hook.
    let mut scope = filter.kernel_scope();
    let arm_now = respond::actions::ArmNow::default();
    scope.arm_now = Some(arm_now.clone());
    let _hook_server = match respond::ocihook::HookServer::start(
        &args.oci_hook_socket,
        containers.clone(),
        arm_now,
    ) {
        Ok(s) => {
            eprintln!("rampart: OCI hook socket on {}", args.oci_hook_socket.display());
            Some(s)
        }
        Err(e) => {
            eprintln!(
                    "rampart: warning: OCI hook socket {}: {e}; metadata-scoped kill rules hold only once the runtime reports a container",
                    args.oci_hook_socket.display()
                );
            None
        }
    };
    let mut detector =
        Detector::with_responder(loaded, cfg.rules.clone(), dispatcher.clone(), responder, scope)
            .with_metrics(metrics.clone())
            .with_rules_hook(Box::new(move |ruleset, plans| {
                notify.apply(ruleset, plans).map_err(|e| format!("{e:#}"))
            }));
    // A reload (SIGHUP or a file change) reads the config's `rules:` section
    // again, with the same command line on top, then the rule files.
    let watch = cfg.rules.reload_on_change && !args.no_reload_on_change;
    let source_args = args.source.clone();
    let source = RulesSource {
        config_file: args.source.config_file(),
        read: Box::new(move || Ok(source_args.config()?.rules)),
    };
    detector = detector.with_source(source, watch).with_feature_recheck(disabled, Privileges::probe);
    if watch {
        eprintln!("rampart: watching the config and rule files, reloading on change");
    }

    let sensor_config = SensorConfig {
        include_host: cfg.host,
        ring_buffer_bytes: cfg.sensor.ring_buffer_kib as usize * 1024,
        flows: Some(cfg.sensor.flows.clone()),
        syscall_counts: cfg.sensor.syscall_counts,
        syscall_latency: cfg.sensor.syscall_latency,
        syscall_latency_sample: cfg.sensor.syscall_latency_sample,
        syscall_hooks: cfg.sensor.syscall_hooks,
        prefilter: cfg.sensor.prefilter,
        ..Default::default()
    };
    let summary = pipeline::stream(sensor_config, containers, &filter, &mut detector).await?;
    eprintln!("rampart: {}", summary.state_line());
    let alerts_sent = detector.alerts;
    drop(detector);
    drop(_server);
    drop(metrics);
    // The aborted metrics task (and anything else holding the dispatcher)
    // lets go asynchronously: wait for it, briefly, so that the outputs are
    // flushed rather than the alerts still queued (a last drop alert, for one)
    // dying with the process.
    let mut dispatcher = dispatcher;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let stats = loop {
        match Arc::try_unwrap(dispatcher) {
            Ok(d) => break d.shutdown(std::time::Duration::from_secs(5)).await,
            Err(d) if std::time::Instant::now() < deadline => {
                dispatcher = d;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(d) => {
                tracing::warn!("alert outputs still shared at exit: alerts still queued are not flushed");
                break d.stats();
            }
        }
    };
    eprintln!(
        "rampart: {}, {alerts_sent} alerts ({} suppressed, {} dropped by outputs, {} failed in outputs)",
        summary.line(),
        stats.suppressed,
        stats.dropped(),
        stats.failed()
    );
    Ok(())
}

/// Stops the metrics server when `run` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

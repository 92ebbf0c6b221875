//! One module per subcommand; this file holds the options several share
//! (runtime sockets, event selection, rule sources).

pub mod audit;
pub mod caps;
pub mod capture;
pub mod events;
pub mod files;
pub mod flows;
pub mod freeze;
pub mod isolate;
pub mod netpolicy;
pub mod notify;
pub mod ocihook;
pub mod pcap;
pub mod profile;
pub mod record;
pub mod replay;
pub mod rules;
pub mod run;
pub mod seccomp;
pub mod status;
pub mod top;

use agent::config;
use agent::filter::EventFilter;
use agent::pipeline::{self, Consumer};
use anyhow::Result;
use clap::Args;
use runtime::{ContainerRegistry, Endpoint, RegistryTasks, RuntimeEndpoints};
use sensor::SensorConfig;
use std::path::PathBuf;

#[derive(Args, Clone)]
pub struct RuntimeArgs {
    /// Docker Engine API socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub docker_socket: PathBuf,
    #[command(flatten)]
    pub others: OtherRuntimeArgs,
}

impl RuntimeArgs {
    pub fn endpoints(&self) -> RuntimeEndpoints {
        let mut eps =
            RuntimeEndpoints { docker: Endpoint::Socket(self.docker_socket.clone()), ..Default::default() };
        self.others.apply(&mut eps);
        eps
    }

    /// The container registry with its background runtime watchers running.
    pub fn registry(&self) -> (ContainerRegistry, RegistryTasks) {
        let registry = ContainerRegistry::with_endpoints(&self.endpoints());
        let tasks = registry.spawn();
        (registry, tasks)
    }
}

/// The runtimes besides Docker; each is `auto` (its usual socket, when it
/// exists), `off`, or a socket path.
#[derive(Args, Clone)]
pub struct OtherRuntimeArgs {
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
    pub fn apply(&self, eps: &mut RuntimeEndpoints) {
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

/// Which events a streaming command shows.
#[derive(Args)]
pub struct SelectArgs {
    /// Only this container (name or id prefix).
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Only these event types, comma-separated (e.g. exec,open,connect).
    #[arg(long = "type", value_name = "TYPES")]
    types: Option<String>,
    /// Also report processes that are not in a container.
    #[arg(long)]
    pub host: bool,
    /// Also report network flows and DNS messages (`flow` events: bytes and
    /// packets each way, counted in the kernel; `dns` events: queries and
    /// answers; the agent, `rampart run`, has them on by default).
    #[arg(long)]
    pub flows: bool,
}

impl SelectArgs {
    pub fn filter(&self) -> Result<EventFilter> {
        let types = match &self.types {
            Some(list) => EventFilter::parse_types(list)?,
            None => Default::default(),
        };
        Ok(EventFilter { container: self.container.clone(), types, include_host: self.host })
    }
}

/// Where rules and alert settings come from (`run`, `replay`).
#[derive(Args, Clone)]
pub struct RuleSourceArgs {
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
    /// The `--config` file, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.config.clone()
    }

    /// The config file (or defaults) with the command line applied on top.
    pub fn config(&self) -> Result<config::AgentConfig> {
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

/// Streams the selected events into `consumer` and prints the summary.
pub async fn stream_selected(
    select: &SelectArgs,
    runtime: &RuntimeArgs,
    consumer: &mut dyn Consumer,
) -> Result<()> {
    let filter = select.filter()?;
    let (containers, _watchers) = runtime.registry();
    let config = SensorConfig {
        include_host: select.host,
        flows: select.flows.then(sensor::FlowConfig::default),
        ..Default::default()
    };
    let summary = pipeline::stream(config, containers, &filter, consumer).await?;
    eprintln!("rampart: {}, {} shown", summary.line(), summary.counts.accepted);
    Ok(())
}

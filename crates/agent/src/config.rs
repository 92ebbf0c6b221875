//! The agent's configuration file (`rampart run --config FILE`), YAML.
//!
//! Every section refuses unknown keys: a typo in a security setting must be an
//! error, not a silently ignored line.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Also watch processes that are not in a container.
    pub host: bool,
    /// Docker Engine API socket.
    pub docker_socket: PathBuf,
    /// The other runtimes' sockets (containerd, crio, podman): auto, off or a path.
    pub runtimes: runtime::RuntimeEndpoints,
    pub rules: RulesConfig,
    pub alerts: alerts::AlertsConfig,
    /// Rule actions (`actions:` on rules): dry run, rate limit, protections.
    pub response: respond::actions::ResponseConfig,
    /// The agent's `/metrics`, `/healthz` and `/readyz` endpoint.
    pub metrics: MetricsConfig,
    pub sensor: SensorSettings,
}

/// Kernel-side settings of the sensor.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SensorSettings {
    /// Ring buffer between the kernel and the agent, in KiB (a power of two
    /// from 4 to 1,048,576). Larger absorbs longer bursts; events that do not
    /// fit are dropped in the kernel, counted and alerted on.
    pub ring_buffer_kib: u64,
    /// Per-container flow accounting in the kernel and `flow` events.
    pub flows: sensor::FlowConfig,
    /// Count each container's syscalls in the kernel, exported as
    /// `rampart_container_syscalls_total` (its most frequent ones). Off by
    /// default: it adds a hash lookup to every syscall of a container.
    pub syscall_counts: bool,
    /// Time each container's syscalls in the kernel, exported as the
    /// histogram `rampart_container_syscall_latency_seconds` (its most
    /// frequent syscalls). Off by default (see docs/ARCHITECTURE.md for the
    /// measured cost).
    pub syscall_latency: bool,
    /// One container syscall in this many is timed, at random (1: all of
    /// them); the histograms count the timed ones.
    pub syscall_latency_sample: u32,
    /// How syscalls are hooked: `tracepoints` (one per reported syscall) or
    /// `raw` (two raw tracepoints on every syscall, x86_64; see
    /// docs/ARCHITECTURE.md).
    pub syscall_hooks: sensor::SyscallHooks,
    /// Drop in the kernel, at syscall entry, the syscall event types no
    /// loaded rule can match (widened again by a reload that needs more).
    /// `false` reports every type (to measure it, or to rule it out).
    pub prefilter: bool,
}

impl Default for SensorSettings {
    fn default() -> Self {
        SensorSettings {
            ring_buffer_kib: (sensor::DEFAULT_RING_BUFFER_BYTES / 1024) as u64,
            flows: sensor::FlowConfig::default(),
            syscall_counts: false,
            syscall_latency: false,
            syscall_latency_sample: sensor::DEFAULT_SYSCALL_LATENCY_SAMPLE,
            syscall_hooks: sensor::SyscallHooks::default(),
            prefilter: true,
        }
    }
}

impl SensorSettings {
    fn validate(&self) -> Result<()> {
        let k = self.ring_buffer_kib;
        if !(4..=1 << 20).contains(&k) || !k.is_power_of_two() {
            anyhow::bail!("ring_buffer_kib is {k}: it must be a power of two from 4 to 1048576");
        }
        let n = self.syscall_latency_sample;
        if !(1..=sensor::MAX_SYSCALL_LATENCY_SAMPLE).contains(&n) {
            anyhow::bail!(
                "syscall_latency_sample is {n}: it must be from 1 (every syscall timed) to {}",
                sensor::MAX_SYSCALL_LATENCY_SAMPLE
            );
        }
        self.flows.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }
}

/// Where `rampart run` serves its metrics and health endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// `host:port`; localhost by default (the figures name rules and
    /// containers: expose them further on purpose only). Port 0: any free port.
    pub address: String,
}

/// The default metrics address.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9376";

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, address: DEFAULT_METRICS_ADDRESS.into() }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            host: false,
            docker_socket: PathBuf::from(runtime::DEFAULT_DOCKER_SOCKET),
            runtimes: runtime::RuntimeEndpoints::default(),
            rules: RulesConfig::default(),
            alerts: alerts::AlertsConfig::default(),
            response: respond::actions::ResponseConfig::default(),
            metrics: MetricsConfig::default(),
            sensor: SensorSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Load the rule set shipped inside the binary (rules/*.yaml).
    pub default_rules: bool,
    /// Rule files or directories (their `*.yaml`/`*.yml`, by name), loaded after
    /// the defaults, in order; they may append to or override default items.
    pub paths: Vec<PathBuf>,
    /// Skip (and report) rules that use a field rampart cannot provide, instead
    /// of refusing the file.
    pub skip_unsupported_fields: bool,
    /// Largest rule file read, in bytes; a larger one is refused.
    pub max_file_bytes: u64,
    /// `rampart run`: reload (like SIGHUP) when the config file or a rule
    /// file or directory changes. Read at start only.
    pub reload_on_change: bool,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            default_rules: true,
            paths: Vec::new(),
            skip_unsupported_fields: false,
            max_file_bytes: model::input::limits::RULES.bytes,
            reload_on_change: true,
        }
    }
}

impl AgentConfig {
    /// Every runtime endpoint, Docker's from `docker_socket`.
    pub fn runtime_endpoints(&self) -> runtime::RuntimeEndpoints {
        runtime::RuntimeEndpoints {
            docker: runtime::Endpoint::Socket(self.docker_socket.clone()),
            ..self.runtimes.clone()
        }
    }

    /// Reads and validates a config file; errors name the file and, for YAML
    /// and unknown keys, the line and column.
    pub fn load(path: &Path) -> Result<AgentConfig> {
        let text = model::input::read_text(path, model::input::limits::CONFIG).context("reading config")?;
        Self::parse(&text).with_context(|| format!("config {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<AgentConfig> {
        if text.trim().is_empty() {
            return Ok(AgentConfig::default());
        }
        // Bound nesting and alias expansion before serde_yaml_ng builds anything.
        yamlguard::check_bounds(text, &yamlguard::Limits::default())
            .map_err(|e| anyhow::anyhow!("{}:{}: {}", e.line, e.col, e.message))?;
        let cfg: AgentConfig = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
            Some(l) => anyhow::anyhow!("{}:{}: {e}", l.line(), l.column()),
            None => anyhow::anyhow!("{e}"),
        })?;
        cfg.alerts.validate().context("alerts")?;
        cfg.sensor.validate().context("sensor")?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        let cfg = AgentConfig::parse("").unwrap();
        assert!(cfg.rules.default_rules);
        assert!(!cfg.host);
        assert_eq!(cfg.docker_socket, PathBuf::from("/var/run/docker.sock"));
    }

    #[test]
    fn full_config_parses() {
        let cfg = AgentConfig::parse(
            "host: true\nrules:\n  default_rules: false\n  paths: [/etc/rampart/rules.d]\nalerts:\n  min_priority: warning\n",
        )
        .unwrap();
        assert!(cfg.host);
        assert!(!cfg.rules.default_rules);
        assert_eq!(cfg.rules.paths, vec![PathBuf::from("/etc/rampart/rules.d")]);
    }

    #[test]
    fn flows_switch_off_and_bad_values_are_refused() {
        let cfg = AgentConfig::parse("sensor:\n  flows:\n    enabled: false\n").unwrap();
        assert!(!cfg.sensor.flows.enabled);
        assert!(AgentConfig::default().sensor.flows.enabled, "flows are on by default");
        let err = AgentConfig::parse("sensor:\n  flows:\n    max_entries: 0\n").unwrap_err();
        assert!(format!("{err:#}").contains("max_entries"), "{err:#}");
        let err = AgentConfig::parse("sensor:\n  flows:\n    enabeld: false\n").unwrap_err();
        assert!(format!("{err:#}").contains("enabeld"), "{err:#}");
    }

    #[test]
    fn flow_records_default_to_auto_and_a_bad_mode_is_refused_with_position() {
        assert_eq!(AgentConfig::default().sensor.flows.records, sensor::FlowRecordsMode::Auto);
        let cfg = AgentConfig::parse("sensor:\n  flows:\n    records: always\n").unwrap();
        assert_eq!(cfg.sensor.flows.records, sensor::FlowRecordsMode::Always);
        let err = AgentConfig::parse("sensor:\n  flows:\n    records: sometimes\n").unwrap_err().to_string();
        assert!(err.starts_with("3:") && err.contains("sometimes") && err.contains("always"), "{err}");
    }

    #[test]
    fn documented_example_parses() {
        let text = include_str!("../../../docs/config.example.yaml");
        AgentConfig::parse(text).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_with_position() {
        let err = AgentConfig::parse("rules:\n  default_rule: false\n").unwrap_err().to_string();
        assert!(err.contains("default_rule"), "{err}");
        assert!(err.starts_with("2:"), "{err}");
        let err = AgentConfig::parse("alerts:\n  outputs:\n    stdot: {}\n").unwrap_err().to_string();
        assert!(err.contains("stdot"), "{err}");
        let err = AgentConfig::parse("runtimes:\n  podman: relative.sock\n").unwrap_err().to_string();
        assert!(err.starts_with("2:") && err.contains("absolute socket path"), "{err}");
    }

    #[test]
    fn ring_buffer_size_is_checked() {
        assert_eq!(AgentConfig::parse("sensor: {ring_buffer_kib: 4}\n").unwrap().sensor.ring_buffer_kib, 4);
        for bad in ["0", "3", "1000", "2097152"] {
            let e = AgentConfig::parse(&format!("sensor: {{ring_buffer_kib: {bad}}}\n")).unwrap_err();
            assert!(format!("{e:#}").contains("power of two"), "{bad}: {e:#}");
        }
        let default = AgentConfig::parse("").unwrap().sensor.ring_buffer_kib;
        assert_eq!(default as usize * 1024, sensor::DEFAULT_RING_BUFFER_BYTES);
    }

    #[test]
    fn syscall_latency_sample_is_checked() {
        let parse = |v: &str| AgentConfig::parse(&format!("sensor: {{syscall_latency_sample: {v}}}\n"));
        assert_eq!(parse("1").unwrap().sensor.syscall_latency_sample, 1);
        assert_eq!(parse("65536").unwrap().sensor.syscall_latency_sample, 65536);
        for bad in ["0", "65537"] {
            let e = parse(bad).unwrap_err();
            assert!(format!("{e:#}").contains("syscall_latency_sample is"), "{bad}: {e:#}");
        }
        assert!(parse("-1").is_err());
        let default = AgentConfig::parse("").unwrap().sensor.syscall_latency_sample;
        assert_eq!(default, sensor::DEFAULT_SYSCALL_LATENCY_SAMPLE);
    }

    #[test]
    fn metrics_settings_parse() {
        let cfg = AgentConfig::parse("metrics: {enabled: false, address: \"[::1]:9000\"}\n").unwrap();
        assert!(!cfg.metrics.enabled);
        assert_eq!(cfg.metrics.address, "[::1]:9000");
        assert_eq!(AgentConfig::parse("").unwrap().metrics.address, DEFAULT_METRICS_ADDRESS);
        assert!(AgentConfig::parse("metrics: {adress: x}\n").is_err());
    }

    #[test]
    fn runtime_endpoints_take_docker_from_docker_socket() {
        let cfg = AgentConfig::parse("docker_socket: /d.sock\nruntimes:\n  crio: off\n").unwrap();
        let eps = cfg.runtime_endpoints();
        assert_eq!(eps.docker, runtime::Endpoint::Socket("/d.sock".into()));
        assert_eq!(eps.crio, runtime::Endpoint::Off);
        assert_eq!(eps.containerd, runtime::Endpoint::Auto);
    }

    #[test]
    fn hostile_yaml_is_refused_with_position() {
        let e = AgentConfig::parse(&yamlguard::hostile::alias_bomb("x", 5000)).unwrap_err();
        assert!(format!("{e:#}").contains("expands to more than"), "{e:#}");
        let e = AgentConfig::parse(&yamlguard::hostile::deep("rules", 10_000)).unwrap_err();
        assert!(format!("{e:#}").starts_with("1:"), "{e:#}");
    }
}

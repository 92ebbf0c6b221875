//! Detection: rule loading (embedded defaults + user files, with their
//! actions), evaluation of each event against the compiled rule set, alerts
//! handed to the dispatcher, and matches handed to the responder.

use super::config::RulesConfig;
use super::drops::{DropReport, DropWatch, DROP_RULE};
use super::held::HeldAlerts;
use super::metrics::{AgentMetrics, CgroupCounts};
use super::pipeline::{Consumer, Progress, SensorHandles};
use super::privileges::{self, Disabled, Feature, Privileges};
use super::rates::{self, RateSampler, RatesTable, WithRates};
use super::watch::FileWatch;
use alerts::{Alert, Dispatcher};
use model::{Event, Priority, ProcessLookup};
use respond::actions::{self, KernelHandles, KernelScope, Plans, Responder};
use rules::{CompiledRule, Diagnostic, EvalCtx, Ruleset, RulesetBuilder};
use state::ProcessTable;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

include!(concat!(env!("OUT_DIR"), "/default_rules.rs"));

/// The rule name a refused reload is reported under (an internal alert).
pub const RELOAD_REFUSED_RULE: &str = "Rules reload refused";

/// Why rules could not be loaded: every problem, each `file:line:col: reason`
/// (or the file and its I/O error).
#[derive(Debug)]
pub struct RulesRefused(pub Vec<String>);

impl std::fmt::Display for RulesRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rules refused:\n{}", self.0.join("\n"))
    }
}

impl std::error::Error for RulesRefused {}

/// A rule set with its action plans: loaded, checked and swapped as one.
pub struct Loaded {
    pub ruleset: Ruleset,
    pub plans: Plans,
    pub warnings: Vec<Diagnostic>,
}

impl Loaded {
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            eprintln!("rampart: warning: {w}");
        }
    }
}

/// The `*.yaml`/`*.yml` files of a path: the file itself, or a directory's
/// files sorted by name.
pub fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Not only regular files: a FIFO or device named *.yaml is refused
        // when read, not skipped silently.
        .filter(|p| !p.is_dir() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads the configured rules: the embedded defaults (when enabled), then each
/// path in order, and their `actions:` (rampart's extension, checked as
/// strictly as the rest). All errors are collected, not just the first.
pub fn load_rules(cfg: &RulesConfig) -> Result<Loaded, RulesRefused> {
    let mut builder = RulesetBuilder::new().skip_unknown_fields(cfg.skip_unsupported_fields);
    if cfg.default_rules {
        for (name, text) in DEFAULT_RULES {
            builder.add_file(name, text);
        }
    }
    let mut io_errors = Vec::new();
    for path in &cfg.paths {
        match rule_files(path) {
            Ok(files) => {
                for file in files {
                    let limit = model::input::limits::RULES.with_bytes(cfg.max_file_bytes);
                    match model::input::read_text(&file, limit) {
                        Ok(text) => {
                            builder.add_file(&file.display().to_string(), &text);
                        }
                        // The error names the file (and line:column for bad bytes).
                        Err(e) => io_errors.push(e.to_string()),
                    }
                }
            }
            Err(e) => io_errors.push(format!("{}: {e}", path.display())),
        }
    }
    match builder.build() {
        Ok(ruleset) if io_errors.is_empty() => {
            let plans = actions::plans(&ruleset).map_err(RulesRefused)?;
            let warnings = ruleset.warnings().to_vec();
            Ok(Loaded { ruleset, plans, warnings })
        }
        Ok(_) => Err(RulesRefused(io_errors)),
        Err(e) => {
            io_errors.extend(e.errors.iter().map(ToString::to_string));
            Err(RulesRefused(io_errors))
        }
    }
}

/// The consumer of `rampart run` and `rampart replay`: rules over events,
/// alerts to the dispatcher, matches to the responder.
pub struct Detector {
    ruleset: Arc<Ruleset>,
    config: RulesConfig,
    dispatcher: Arc<Dispatcher>,
    hostname: String,
    /// Events evaluated so far (`evt.num`, which Falco counts from 1).
    events: u64,
    pub alerts: u64,
    /// Rule actions and where the kernel may act; `None` offline (replay
    /// never acts).
    responder: Option<(Responder, KernelScope)>,
    /// Alerts waiting for their container's metadata (live runs only).
    held: Option<HeldAlerts>,
    /// Figures for `/metrics` (the agent only).
    metrics: Option<Arc<AgentMetrics>>,
    drops: DropWatch,
    /// Events per container cgroup, for the metrics (bounded, see `count`).
    per_cgroup: HashMap<u64, CgroupCounts>,
    /// Where a reload reads the rules settings again (the agent's config file
    /// with the command line on top); `None`: the settings given at start.
    source: Option<RulesSource>,
    /// The config and rule files watched for changes (reload on change).
    watch: Option<FileWatch>,
    /// Told each newly loaded rule set before it is swapped in.
    on_rules: Option<RulesHook>,
    /// The kernel's prefilter, narrowed to the event types the rules use
    /// (live runs only).
    prefilter: Option<Arc<sensor::Prefilter>>,
    /// The kernel's per-flow table switch, kept on only while a loaded rule
    /// can match `flow` events (`None`: always on).
    flow_records: Option<Arc<sensor::FlowRecords>>,
    /// Optional features checked again on each reload (a mount, a directory
    /// or a capability that appeared or went away since the last check).
    features: Option<FeatureRecheck>,
    /// Per-container rates for `container.cpu_share` and friends (live runs
    /// only), and the table as of the last tick.
    rates: Option<RateSampler>,
    rates_now: RatesTable,
    /// The kernel counts syscalls per container (`sensor.syscall_counts`).
    syscalls_counted: bool,
}

struct FeatureRecheck {
    probe: fn() -> Privileges,
    disabled: Vec<Disabled>,
}

/// Hands a newly loaded rule set to a part of the agent that keeps its own
/// view of the rules (the seccomp agent's deny rules). It swaps its part in
/// or returns why it cannot, and then the whole reload is refused (nothing
/// changed anywhere).
pub type RulesHook = Box<dyn FnMut(&Arc<Ruleset>, &Plans) -> Result<(), String> + Send>;

/// The agent's rules settings, read again on each reload.
pub struct RulesSource {
    /// The config file, watched with the rule paths.
    pub config_file: Option<PathBuf>,
    /// The config's `rules:` section with the command line applied.
    pub read: Box<dyn Fn() -> anyhow::Result<RulesConfig>>,
}

/// Cgroups counted in [`Detector::per_cgroup`] before the ones no longer
/// known to the registry are forgotten.
const MAX_COUNTED_CGROUPS: usize = 4096;

impl Detector {
    /// A detector without actions (replay); see [`Detector::with_responder`].
    pub fn new(loaded: Loaded, config: RulesConfig, dispatcher: Arc<Dispatcher>) -> Self {
        Self::build(loaded, config, dispatcher, None)
    }

    /// Acts on matches of rules with `actions:`; the kernel only in `scope`.
    pub fn with_responder(
        loaded: Loaded,
        config: RulesConfig,
        dispatcher: Arc<Dispatcher>,
        responder: Responder,
        scope: KernelScope,
    ) -> Self {
        Self::build(loaded, config, dispatcher, Some((responder, scope)))
    }

    fn build(
        loaded: Loaded,
        config: RulesConfig,
        dispatcher: Arc<Dispatcher>,
        mut responder: Option<(Responder, KernelScope)>,
    ) -> Self {
        let hostname = dispatcher.hostname().to_string();
        let ruleset = Arc::new(loaded.ruleset);
        if let Some((r, _)) = responder.as_mut() {
            r.set_rules(ruleset.clone(), loaded.plans);
        }
        Detector {
            ruleset,
            config,
            dispatcher,
            hostname,
            events: 0,
            alerts: 0,
            responder,
            held: None,
            metrics: None,
            drops: DropWatch::default(),
            per_cgroup: HashMap::new(),
            source: None,
            watch: None,
            on_rules: None,
            prefilter: None,
            flow_records: None,
            features: None,
            rates: None,
            rates_now: RatesTable::default(),
            syscalls_counted: false,
        }
    }

    /// Each reloaded rule set also goes to `hook`, first (see [`RulesHook`]).
    pub fn with_rules_hook(mut self, hook: RulesHook) -> Self {
        self.on_rules = Some(hook);
        self
    }

    /// Reloads read the settings from `source`; with `watch`, a change of the
    /// config file or of a rule file or directory reloads too.
    pub fn with_source(mut self, source: RulesSource, watch: bool) -> Self {
        if watch {
            self.watch = Some(FileWatch::new(watch_roots(&source, &self.config), Instant::now()));
        }
        self.source = Some(source);
        self
    }

    /// Each reload also runs `probe` and turns optional features on or off
    /// as their needs appeared or went (`disabled`: those off now).
    pub fn with_feature_recheck(mut self, disabled: Vec<Disabled>, probe: fn() -> Privileges) -> Self {
        self.features = Some(FeatureRecheck { probe, disabled });
        self
    }

    /// Checks the optional features' needs again; says which changed, and
    /// updates the actions allowed and `/metrics`.
    fn recheck_features(&mut self) {
        let Some(fr) = self.features.as_mut() else { return };
        let now = (fr.probe)().disabled();
        if now == fr.disabled {
            return;
        }
        for f in Feature::ALL.iter().filter(|f| !f.is_core()) {
            let was_off = fr.disabled.iter().any(|d| d.feature == *f);
            match now.iter().find(|d| d.feature == *f) {
                None if was_off => eprintln!("rampart: {} is on now: what it needs is there", f.name()),
                Some(d) if !was_off => eprintln!("rampart: warning: {} is off: {}", f.name(), d.reason()),
                _ => {}
            }
        }
        if let Some((r, _)) = self.responder.as_mut() {
            r.set_unavailable(privileges::unavailable_actions(&now));
        }
        if let Some(m) = &self.metrics {
            m.set_features(privileges::feature_states(&now));
        }
        fr.disabled = now;
    }

    /// Reports rule matches, reloads and drop alerts to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<AgentMetrics>) -> Self {
        metrics.rules_loaded(self.ruleset.len());
        self.metrics = Some(metrics);
        self
    }

    /// Evaluates one event and emits an alert per matching rule; returns how
    /// many rules matched.
    pub fn detect(&mut self, ev: &Event, processes: Option<&dyn ProcessLookup>) -> usize {
        self.events += 1;
        let rates = &*self.rates_now;
        let with_rates = processes.filter(|_| !rates.is_empty()).map(|procs| WithRates { procs, rates });
        let processes = match &with_rates {
            Some(w) => Some(w as &dyn ProcessLookup),
            None => processes,
        };
        let ctx = EvalCtx { procs: processes, hostname: Some(&self.hostname), event_num: self.events };
        let mut matched = 0;
        for rule in self.ruleset.evaluate(ev, &ctx) {
            match self.held.as_mut() {
                Some(held) if held.must_hold(ev) => {
                    held.hold(self.ruleset.clone(), rule, ev, self.events, processes)
                }
                _ => emit(&self.dispatcher, rule, ev, &ctx),
            }
            if let Some((r, _)) = self.responder.as_mut() {
                r.respond(rule, ev);
            }
            if let Some(m) = &self.metrics {
                m.rule_matched(&rule.name, rule.priority);
            }
            matched += 1;
        }
        self.alerts += matched as u64;
        matched
    }

    /// Raises the internal alert for events the kernel dropped.
    fn drop_alert(&mut self, r: &DropReport) {
        let per_cpu: Vec<String> = r
            .per_cpu
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(cpu, n)| format!("cpu{cpu}={n}"))
            .collect();
        let text = format!(
            "the kernel dropped {} events since the last report ({} since start; {}): rampart did not see them",
            r.lost,
            r.lost_total,
            per_cpu.join(" ")
        );
        let mut alert = Alert::new(now_ns(), DROP_RULE, Priority::Error, &text)
            .with_field("dropped", r.lost)
            .with_field("dropped_total", r.lost_total)
            .with_field("dropped_per_cpu", r.per_cpu.clone())
            .with_field("undecodable_total", r.undecodable_total)
            .with_tags(["rampart".to_string()])
            .with_hostname(self.hostname.clone());
        alert.source = "internal".into();
        self.dispatcher.emit(alert);
        if let Some(m) = &self.metrics {
            m.drop_alert_raised();
        }
    }

    /// Emits the held alerts whose container is now known or whose time is
    /// up (every one of them when `all`).
    fn release_held(&mut self, all: bool) {
        let Some(held) = self.held.as_mut().filter(|h| !h.is_empty()) else { return };
        for h in held.release(Instant::now(), all) {
            let Some(rule) = h.rule() else { continue };
            let ctx =
                EvalCtx { procs: Some(&h.ancestry), hostname: Some(&self.hostname), event_num: h.event_num };
            emit(&self.dispatcher, rule, &h.event, &ctx);
        }
    }

    /// Loads the rules again and swaps rules and actions together; on any
    /// error nothing changes, and the refusal is said on stderr and raised as
    /// an internal alert through every output.
    pub fn reload(&mut self) -> Result<usize, RulesRefused> {
        let rules = self.reload_rules();
        self.recheck_features();
        rules
    }

    fn reload_rules(&mut self) -> Result<usize, RulesRefused> {
        let config = match &self.source {
            None => Ok(self.config.clone()),
            Some(source) => (source.read)().map_err(|e| RulesRefused(vec![format!("{e:#}")])),
        };
        // The baseline for the next change: what is on disk now, before it is read.
        if let (Some(w), Some(source)) = (self.watch.as_mut(), &self.source) {
            let settings = config.as_ref().unwrap_or(&self.config);
            w.rearm(watch_roots(source, settings), Instant::now());
        }
        let loaded =
            config.and_then(|c| load_rules(&c).map(|l| (Arc::new(l.ruleset), l.plans, l.warnings, c)));
        // The hook goes first: the only step of the swap that can fail.
        let loaded = loaded.and_then(|(ruleset, plans, warnings, c)| match self.on_rules.as_mut() {
            Some(hook) => match hook(&ruleset, &plans) {
                Ok(()) => Ok((ruleset, plans, warnings, c)),
                Err(e) => Err(RulesRefused(vec![e])),
            },
            None => Ok((ruleset, plans, warnings, c)),
        });
        match loaded {
            Ok((ruleset, plans, warnings, config)) => {
                self.config = config;
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                let count = ruleset.len();
                if let Some((r, _)) = self.responder.as_mut() {
                    r.set_rules(ruleset.clone(), plans);
                }
                self.ruleset = ruleset;
                self.narrow_prefilter();
                self.sample_rates_if_read();
                if let Some(m) = &self.metrics {
                    m.reload(true);
                    m.rules_loaded(count);
                }
                tracing::info!(rules = count, "rules reloaded");
                eprintln!("rampart: rules reloaded ({count} rules)");
                Ok(count)
            }
            Err(refused) => {
                let kept = self.ruleset.len();
                // One write: the refusal spans lines, and other threads
                // print too (a reader must never see half of it).
                let said = format!(
                    "rampart: reload refused, keeping the {kept} loaded rules and their actions; {refused}\n"
                );
                eprint!("{said}");
                let text = format!(
                    "rules reload refused, keeping the {kept} loaded rules and their actions: {}",
                    refused.0.join("; ")
                );
                let mut alert = Alert::new(now_ns(), RELOAD_REFUSED_RULE, Priority::Error, &text)
                    .with_field("errors", refused.0.clone())
                    .with_field("rules_kept", kept)
                    .with_tags(["rampart".to_string()])
                    .with_hostname(self.hostname.clone());
                alert.source = "internal".into();
                self.dispatcher.emit(alert);
                if let Some(m) = &self.metrics {
                    m.reload(false);
                }
                Err(refused)
            }
        }
    }
}

impl Detector {
    /// The syscall event types the kernel must report: those some loaded
    /// rule can match, plus those the process table reads; `None`: all.
    pub fn event_types_wanted(&self) -> Option<std::collections::BTreeSet<String>> {
        let mut types = self.ruleset.event_types_used()?;
        types.extend(ProcessTable::EVENT_TYPES_READ.iter().map(|t| t.to_string()));
        Some(types)
    }

    /// Whether opens must carry the path as passed: only a rule reading
    /// `fd.nameraw` needs it, and its copy costs every open.
    pub fn raw_paths_wanted(&self) -> bool {
        self.ruleset.uses_field("fd.nameraw")
    }

    /// Samples the per-container rates only while a loaded rule reads them
    /// (after the start and each reload); warns when one reads a rate whose
    /// source is off.
    fn sample_rates_if_read(&self) {
        let Some(r) = &self.rates else { return };
        r.set_wanted(rates::rules_read_rates(&self.ruleset));
        if !self.syscalls_counted && self.ruleset.uses_field("container.syscall_rate") {
            eprintln!(
                "rampart: warning: a rule reads container.syscall_rate, which has no value unless \
                 sensor.syscall_counts is on"
            );
        }
    }

    /// Lets the kernel report only [`Self::event_types_wanted`], and opens'
    /// paths as passed only while a rule reads `fd.nameraw` (after the start
    /// and each reload). On failure every type and field is reported.
    fn narrow_prefilter(&self) {
        let Some(p) = &self.prefilter else { return };
        let mut wanted = self.event_types_wanted();
        match p.keep_only(wanted.as_ref()) {
            Ok(skipped) => tracing::info!(
                skipped = skipped.len(),
                types = %skipped.join(","),
                "in-kernel prefilter: syscall event types no rule uses are dropped in the kernel"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "in-kernel prefilter not set: every event type is reported");
                let _ = p.keep_only(None);
                wanted = None;
            }
        }
        if let Some(r) = &self.flow_records {
            let on = flow_records_wanted(wanted.as_ref());
            match r.set(on) {
                Ok(()) => tracing::info!(
                    on,
                    "per-flow table: kept while a loaded rule can match flow events (sensor.flows.records: auto)"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "per-flow table switch not set: the table stays on");
                    let _ = r.set(true);
                }
            }
        }
        if let Err(e) = p.keep_raw_paths(self.raw_paths_wanted()) {
            tracing::warn!(error = %e, "in-kernel prefilter: the path as passed stays on every open");
            let _ = p.keep_raw_paths(true);
        }
    }
}

/// Whether the kernel must keep its per-flow table for the event types the
/// rules want (`None`: every type, `flow` included).
fn flow_records_wanted(wanted: Option<&std::collections::BTreeSet<String>>) -> bool {
    wanted.is_none_or(|w| w.contains("flow"))
}

/// What a reload reads: the config file and every rule path.
fn watch_roots(source: &RulesSource, settings: &RulesConfig) -> Vec<PathBuf> {
    source.config_file.iter().chain(&settings.paths).cloned().collect()
}

/// Renders a matched rule's output and hands the alert to the outputs.
fn emit(dispatcher: &Dispatcher, rule: &CompiledRule, ev: &Event, ctx: &EvalCtx<'_>) {
    let (text, fields) = rule.render_output(ev, ctx);
    let alert = Alert::for_event(ev, &rule.name, rule.priority, &text)
        .with_output_fields(fields)
        .with_tags(rule.tags.iter().cloned());
    dispatcher.emit(alert);
}

impl Consumer for Detector {
    fn started(&mut self, sensor: &SensorHandles) {
        self.held = Some(HeldAlerts::new(sensor.containers.clone()));
        self.prefilter = sensor.prefilter.clone();
        self.flow_records = sensor.flow_records.clone();
        self.narrow_prefilter();
        self.syscalls_counted = sensor.syscall_counts.is_some();
        self.rates = RateSampler::start(sensor)
            .map_err(
                |e| tracing::warn!(error = %e, "container rates not sampled: the rate fields have no value"),
            )
            .ok();
        self.sample_rates_if_read();
        if let Some(m) = &self.metrics {
            m.sensor_attached(sensor.runq.clone());
            m.traffic_attached(sensor.traffic.clone());
            if let Some(counts) = &sensor.syscall_counts {
                m.syscall_counts_attached(counts.clone());
            }
            if let Some(latency) = &sensor.syscall_latency {
                m.syscall_latency_attached(latency.clone());
            }
        }
        if let Some((r, scope)) = self.responder.as_mut() {
            r.attach_kernel(KernelHandles {
                maps: sensor.kill_maps.clone(),
                kills: sensor.kernel_kills.clone(),
                containers: sensor.containers.clone(),
                scope: scope.clone(),
            });
        }
    }

    fn event(&mut self, ev: &Event, processes: &ProcessTable) -> std::io::Result<()> {
        if self.metrics.is_some() && ev.container.is_some() {
            let c = self.per_cgroup.entry(ev.process.cgroup_id).or_default();
            c.events += 1;
            c.execs += u64::from(matches!(ev.kind, model::EventKind::Exec { .. }));
        }
        self.detect(ev, Some(processes));
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.release_held(false);
        Ok(())
    }

    fn tick(&mut self, progress: &Progress) {
        self.release_held(false);
        if let Some(r) = &self.rates {
            r.set_flows(progress.sensor.flow_table.is_some());
            self.rates_now = r.latest();
        }
        if let Some(r) = self.drops.check(&progress.sensor, Some(Instant::now())) {
            self.drop_alert(&r);
        }
        if let Some(m) = &self.metrics {
            if self.per_cgroup.len() > MAX_COUNTED_CGROUPS {
                let registry = m.registry();
                self.per_cgroup.retain(|cg, _| {
                    matches!(registry.resolve_cached(*cg), runtime::Resolution::Container(_))
                });
                // Still over (a storm of containers): start again; Prometheus
                // reads it as a counter reset.
                if self.per_cgroup.len() > MAX_COUNTED_CGROUPS {
                    self.per_cgroup.clear();
                }
            }
            m.tick(
                progress.clone(),
                self.events,
                self.held.as_ref().map_or(0, |h| h.len()),
                &self.per_cgroup,
            );
        }
    }

    fn end(&mut self, progress: &Progress) {
        self.release_held(true);
        if let Some(r) = self.drops.check(&progress.sensor, None) {
            self.drop_alert(&r);
        }
    }

    /// SIGHUP or a file change: all or nothing; a refused reload keeps the
    /// running rules.
    fn reload(&mut self) {
        let _ = Detector::reload(self);
    }

    fn reload_due(&mut self) -> bool {
        let due = self.watch.as_mut().is_some_and(|w| w.poll(Instant::now()));
        if due {
            eprintln!("rampart: config or rule files changed, reloading");
        }
        due
    }

    fn reads_env(&self) -> bool {
        self.ruleset.uses_field("proc.env")
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AgentConfig;

    fn rule(name: &str) -> String {
        format!(
            "- rule: {name}\n  desc: d\n  condition: evt.type = execve\n  output: x\n  priority: WARNING\n"
        )
    }

    /// A detector whose reloads read `config` again, as `rampart run`'s does.
    fn detector(config: &Path) -> Detector {
        let mut alerts = alerts::AlertsConfig::default();
        alerts.outputs.stdout.enabled = false;
        let dispatcher = Arc::new(Dispatcher::new(&alerts).unwrap());
        let settings = AgentConfig::load(config).unwrap().rules;
        let loaded = load_rules(&settings).unwrap();
        let path = config.to_path_buf();
        let source = RulesSource {
            config_file: Some(path.clone()),
            read: Box::new(move || Ok(AgentConfig::load(&path)?.rules)),
        };
        Detector::new(loaded, settings, dispatcher).with_source(source, true)
    }

    fn rule_names(d: &Detector) -> Vec<String> {
        d.ruleset.rules().iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn a_reload_reads_the_configs_rules_section_again() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, rule("rule_a")).unwrap();
        std::fs::write(&b, rule("rule_b")).unwrap();
        let config = dir.path().join("config.yaml");
        let write_config = |path: &Path| {
            let text = format!("rules:\n  default_rules: false\n  paths: [{}]\n", path.display());
            std::fs::write(&config, text).unwrap();
        };
        write_config(&a);
        let mut d = detector(&config);
        assert_eq!(rule_names(&d), ["rule_a"]);
        assert_eq!(d.watch.as_ref().unwrap().roots, [config.clone(), a.clone()]);

        // The config now names another file: the reload loads it, and the
        // watch follows.
        write_config(&b);
        assert_eq!(d.reload().unwrap(), 1);
        assert_eq!(rule_names(&d), ["rule_b"]);
        assert_eq!(d.watch.as_ref().unwrap().roots, [config.clone(), b.clone()]);

        // A config with a typo refuses the reload with its position; rules stay.
        std::fs::write(&config, "rules:\n  default_rule: false\n").unwrap();
        let refused = d.reload().unwrap_err().0.join("\n");
        assert!(refused.contains("config.yaml: 2:3") && refused.contains("default_rule"), "{refused}");
        assert_eq!(rule_names(&d), ["rule_b"]);
        assert_eq!(d.watch.as_ref().unwrap().roots, [config, b], "still watching what is loaded");
    }

    /// The kernel prefilter's set with the default rules: the types they use
    /// plus those the process table reads; some types left out.
    #[test]
    fn default_rules_want_some_syscall_types_not_all() {
        let mut alerts = alerts::AlertsConfig::default();
        alerts.outputs.stdout.enabled = false;
        let dispatcher = Arc::new(Dispatcher::new(&alerts).unwrap());
        let loaded = load_rules(&RulesConfig::default()).expect("default rules load");
        let d = Detector::new(loaded, RulesConfig::default(), dispatcher);
        let wanted = d.event_types_wanted().expect("no default rule applies to every type");
        for t in ["open", "openat", "openat2", "connect", "execve", "socket", "accept4", "capset", "ptrace"] {
            assert!(wanted.contains(t), "{t} is not wanted: {wanted:?}");
        }
        let skipped = sensor::prefilter::skipped_types(Some(&wanted));
        eprintln!("skipped with the default rules: {skipped:?}");
        assert!(!skipped.is_empty(), "every syscall type is used by some default rule");
        assert!(!d.raw_paths_wanted(), "a default rule reads fd.nameraw: every open copies it");
    }

    /// A rule reading `fd.nameraw` only in its output still gets it; a reload
    /// without that rule lets the kernel leave it out again.
    #[test]
    fn raw_paths_are_wanted_while_a_rule_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.yaml");
        let raw = "- rule: raw\n  desc: d\n  condition: evt.type = openat\n  output: \"%fd.nameraw\"\n  priority: WARNING\n";
        std::fs::write(&rules, format!("{}{raw}", rule("exec"))).unwrap();
        let config = dir.path().join("config.yaml");
        let text = format!("rules:\n  default_rules: false\n  paths: [{}]\n", rules.display());
        std::fs::write(&config, text).unwrap();
        let mut d = detector(&config);
        assert!(d.raw_paths_wanted());
        std::fs::write(&rules, rule("exec")).unwrap();
        d.reload().unwrap();
        assert!(!d.raw_paths_wanted());
    }

    /// `flow` events are many (one per flow and drain) and carry no process:
    /// no default rule may apply to every event type, or it would meet them.
    /// So with the default rules the kernel keeps no per-flow table; a rule
    /// on flow events (or on every type) turns it on.
    #[test]
    fn no_default_rule_meets_flow_events() {
        let loaded = load_rules(&RulesConfig::default()).expect("default rules load");
        assert_eq!(loaded.ruleset.candidates_for_type("flow"), 0);
        let mut alerts = alerts::AlertsConfig::default();
        alerts.outputs.stdout.enabled = false;
        let dispatcher = Arc::new(Dispatcher::new(&alerts).unwrap());
        let d = Detector::new(loaded, RulesConfig::default(), dispatcher);
        assert!(!flow_records_wanted(d.event_types_wanted().as_ref()));
        let with_flow: std::collections::BTreeSet<String> = ["execve", "flow"].map(String::from).into();
        assert!(flow_records_wanted(Some(&with_flow)));
        assert!(flow_records_wanted(None));
    }
}

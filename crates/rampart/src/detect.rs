//! Detection: rule loading (embedded defaults + user files), evaluation of each
//! event against the compiled rule set, and alerts handed to the dispatcher.

use crate::actions::{self, Responder};
use crate::config::RulesConfig;
use crate::pipeline::Consumer;
use alerts::{Alert, Dispatcher};
use model::Event;
use rules::{Diagnostic, EvalCtx, Ruleset, RulesetBuilder};
use state::ProcessTable;
use std::path::{Path, PathBuf};
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/default_rules.rs"));

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

/// The `*.yaml`/`*.yml` files of a path: the file itself, or a directory's
/// files sorted by name.
fn rule_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads the configured rules: the embedded defaults (when enabled), then each
/// path in order. All errors are collected, not just the first.
pub fn load_rules(cfg: &RulesConfig) -> Result<(Ruleset, Vec<Diagnostic>), RulesRefused> {
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
                    match std::fs::read_to_string(&file) {
                        Ok(text) => {
                            builder.add_file(&file.display().to_string(), &text);
                        }
                        Err(e) => io_errors.push(format!("{}: {e}", file.display())),
                    }
                }
            }
            Err(e) => io_errors.push(format!("{}: {e}", path.display())),
        }
    }
    match builder.build() {
        Ok(ruleset) if io_errors.is_empty() => {
            // `actions:` is rampart's extension: check it as strictly as the rest.
            actions::plans(&ruleset).map_err(RulesRefused)?;
            let warnings = ruleset.warnings().to_vec();
            Ok((ruleset, warnings))
        }
        Ok(_) => Err(RulesRefused(io_errors)),
        Err(e) => {
            io_errors.extend(e.errors.iter().map(ToString::to_string));
            Err(RulesRefused(io_errors))
        }
    }
}

/// The consumer of `rampart run` and `rampart replay`: rules over events,
/// alerts to the dispatcher.
pub struct Detector {
    ruleset: Arc<Ruleset>,
    config: RulesConfig,
    dispatcher: Arc<Dispatcher>,
    hostname: String,
    /// Events evaluated so far (`evt.num`, which Falco counts from 1).
    events: u64,
    pub alerts: u64,
    /// Rule actions; `None` offline (replay never acts).
    responder: Option<Responder>,
}

impl Detector {
    pub fn new(ruleset: Ruleset, config: RulesConfig, dispatcher: Arc<Dispatcher>) -> Self {
        let hostname = dispatcher.hostname().to_string();
        Detector {
            ruleset: Arc::new(ruleset),
            config,
            dispatcher,
            hostname,
            events: 0,
            alerts: 0,
            responder: None,
        }
    }

    /// Acts on matches of rules with `actions:`.
    pub fn with_responder(mut self, responder: Responder) -> Self {
        self.responder = Some(responder);
        self
    }

    /// Evaluates one event and emits an alert per matching rule; returns how
    /// many rules matched.
    pub fn detect(&mut self, ev: &Event, processes: Option<&ProcessTable>) -> usize {
        self.events += 1;
        let ctx = EvalCtx { procs: processes, hostname: Some(&self.hostname), event_num: self.events };
        let mut matched = 0;
        for rule in self.ruleset.evaluate(ev, &ctx) {
            let (text, fields) = rule.render_output(ev, &ctx);
            let alert = Alert::for_event(ev, &rule.name, rule.priority, &text)
                .with_output_fields(fields)
                .with_tags(rule.tags.iter().cloned());
            self.dispatcher.emit(alert);
            if let Some(r) = self.responder.as_mut() {
                r.respond(rule, ev);
            }
            matched += 1;
        }
        self.alerts += matched as u64;
        matched
    }
}

impl Consumer for Detector {
    fn attach_kernel(&mut self, handles: crate::kernel_kill::KernelHandles) {
        if let Some(r) = self.responder.as_mut() {
            r.attach_kernel(handles, self.ruleset.clone());
        }
    }

    fn event(&mut self, ev: &Event, processes: &ProcessTable) -> std::io::Result<()> {
        self.detect(ev, Some(processes));
        Ok(())
    }

    /// SIGHUP: load the rules again; a broken file keeps the running rules.
    fn reload(&mut self) {
        match load_rules(&self.config) {
            Ok((ruleset, warnings)) => {
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!(rules = ruleset.len(), "rules reloaded");
                eprintln!("rampart: rules reloaded ({} rules)", ruleset.len());
                let ruleset = Arc::new(ruleset);
                if let (Some(r), Ok(plans)) = (self.responder.as_mut(), actions::plans(&ruleset)) {
                    r.set_plans(plans, ruleset.clone());
                }
                self.ruleset = ruleset;
            }
            Err(e) => {
                eprintln!("rampart: reload refused, keeping the {} loaded rules; {e}", self.ruleset.len());
            }
        }
    }
}

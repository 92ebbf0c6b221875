//! `rampart rules`: check rule files (every error as file:line:col, and where
//! each kill and deny rule runs), or list the fields conditions can use.

use agent::config::RulesConfig;
use agent::detect;
use anyhow::Result;
use clap::Subcommand;
use respond::actions::KernelPlan;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate rule files (after the defaults unless --no-default-rules);
    /// prints every error as file:line:col.
    Check {
        files: Vec<PathBuf>,
        #[arg(long)]
        no_default_rules: bool,
        /// Skip (and report) rules using fields rampart cannot provide.
        #[arg(long)]
        skip_unsupported_fields: bool,
    },
    /// Print the fields rule conditions and outputs can use (Markdown).
    Fields,
}

pub fn rules(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Fields => {
            print!("{}", rules::fields_markdown());
            Ok(())
        }
        RulesCommand::Check { files, no_default_rules, skip_unsupported_fields } => {
            let cfg = RulesConfig {
                default_rules: !no_default_rules,
                paths: files,
                skip_unsupported_fields,
                ..RulesConfig::default()
            };
            match detect::load_rules(&cfg) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        println!("warning: {w}");
                    }
                    summary(&loaded.ruleset).iter().for_each(|l| println!("{l}"));
                    reach(&loaded.ruleset).iter().for_each(|l| println!("{l}"));
                    let count = loaded.ruleset.len();
                    let disabled = loaded.ruleset.rules().iter().filter(|r| !r.enabled).count();
                    let skipped = loaded.ruleset.skipped().len();
                    // Where each kill and deny rule acts (no dry run: what
                    // `run` would arm).
                    let ruleset = Arc::new(loaded.ruleset);
                    let deny = respond::notify::DenyRules::new(ruleset.clone(), &loaded.plans, false);
                    deny.describe().iter().for_each(|l| println!("{l}"));
                    let kernel = KernelPlan::new(ruleset, &loaded.plans, &Default::default());
                    kernel.describe().iter().for_each(|l| println!("{l}"));
                    println!("ok: {count} rules loaded ({disabled} disabled), {skipped} skipped");
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

/// One line per rule, in definition order: loaded, disabled, or skipped and
/// why.
fn summary(rs: &rules::Ruleset) -> Vec<String> {
    let mut lines: Vec<(String, usize, String)> = rs
        .rules()
        .iter()
        .map(|r| {
            let state = if r.enabled { "loaded" } else { "disabled" };
            (r.file.clone(), r.line, format!("{state}: rule {:?} ({}:{})", r.name, r.file, r.line))
        })
        .collect();
    lines.extend(rs.skipped().iter().map(|s| {
        (s.file.clone(), s.line, format!("skipped: rule {:?} ({}:{}): {}", s.name, s.file, s.line, s.reason))
    }));
    // Files in load order (as the rules come), then by line.
    let mut order: Vec<String> = Vec::new();
    for (f, _, _) in &lines {
        if !order.contains(f) {
            order.push(f.clone());
        }
    }
    lines.sort_by_key(|(f, l, _)| (order.iter().position(|x| x == f), *l));
    lines.into_iter().map(|(_, _, s)| s).collect()
}

/// What keeps enabled rules from firing in rampart: event types its sensor
/// does not capture, and fields it never fills. A rule whose every event type
/// is uncaptured can never fire (a warning); otherwise it is a note on the
/// part of the rule that cannot hold.
fn reach(rs: &rules::Ruleset) -> Vec<String> {
    let mut out = Vec::new();
    for r in rs.rules().iter().filter(|r| r.enabled) {
        let at = format!("rule {:?} ({}:{})", r.name, r.file, r.line);
        if let Some(types) = &r.evt_types {
            // A type reported under another name the rule also lists
            // (execveat as execve) is not missing.
            let reported_as = |why: &str| {
                why.strip_prefix("reported as ")
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|alias| types.iter().any(|t| t == alias))
            };
            let missing: Vec<(&str, &str)> = types
                .iter()
                .filter_map(|t| rules::uncaptured_event_type(t).map(|why| (t.as_str(), why)))
                .filter(|(_, why)| !reported_as(why))
                .collect();
            let names = missing.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
            if !missing.is_empty() && missing.len() == types.len() {
                out.push(format!("warning: {at} can never fire: {names}: {}", missing[0].1));
            } else if !missing.is_empty() {
                out.push(format!(
                    "note: {at} matches only its other event types: rampart does not capture {names}"
                ));
            }
        }
        let mut fields: Vec<&str> = r.conjuncts().iter().flat_map(|c| c.fields()).collect();
        fields.sort_unstable();
        fields.dedup();
        for f in fields {
            if let Some(why) = rules::without_value(f) {
                out.push(format!(
                    "note: {at} reads {f}, which rampart never fills ({why}): tests on it never hold"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_cannot_fire_are_named() {
        let mut b = rules::RulesetBuilder::new();
        b.add_file(
            "r.yaml",
            "- rule: dups\n  desc: d\n  condition: evt.type in (dup, dup2)\n  output: o\n  priority: WARNING\n\
             - rule: some\n  desc: d\n  condition: evt.type in (dup, openat)\n  output: o\n  priority: WARNING\n\
             - rule: buf\n  desc: d\n  condition: evt.type = connect and evt.buffer = x\n  output: o\n  priority: WARNING\n\
             - rule: fine\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: WARNING\n\
             - rule: exec\n  desc: d\n  condition: evt.type in (execve, execveat)\n  output: o\n  priority: WARNING\n",
        );
        let rs = b.build().expect("rules load");
        let lines = reach(&rs);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0].starts_with("warning: rule \"dups\" (r.yaml:1) can never fire: dup, dup2: not captured"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("note: rule \"some\""), "{lines:#?}");
        assert!(lines[2].contains("reads evt.buffer, which rampart never fills"), "{lines:#?}");
    }

    #[test]
    fn summary_lists_every_rule_in_file_order() {
        let mut b = rules::RulesetBuilder::new().skip_unknown_fields(true);
        b.add_file(
            "a.yaml",
            "- rule: k\n  desc: d\n  condition: ka.verb = x\n  output: o\n  priority: info\n  source: k8s_audit\n- rule: on\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: info\n- rule: nope\n  desc: d\n  condition: proc.nope = 1\n  output: o\n  priority: info\n",
        );
        b.add_file(
            "b.yaml",
            "- rule: off\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: info\n  enabled: false\n",
        );
        let rs = b.build().unwrap();
        assert_eq!(
            summary(&rs),
            vec![
                "skipped: rule \"k\" (a.yaml:1): source \"k8s_audit\" is not supported (only syscall)",
                "loaded: rule \"on\" (a.yaml:7)",
                "skipped: rule \"nope\" (a.yaml:12): it uses field(s) \"proc.nope\" that rampart does not provide",
                "disabled: rule \"off\" (b.yaml:1)",
            ]
        );
    }
}

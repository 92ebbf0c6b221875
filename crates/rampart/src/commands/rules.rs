//! `rampart rules`: check rule files (every error as file:line:col, and where
//! each kill rule runs), or list the fields conditions can use.

use crate::agent::config::RulesConfig;
use crate::agent::detect;
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
                    let count = loaded.ruleset.len();
                    let disabled = loaded.ruleset.rules().iter().filter(|r| !r.enabled).count();
                    let skipped = loaded.ruleset.skipped().len();
                    // Where each kill rule acts (no dry run: what `run` would arm).
                    let kernel =
                        KernelPlan::new(Arc::new(loaded.ruleset), &loaded.plans, &Default::default());
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

#[cfg(test)]
mod tests {
    use super::*;

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

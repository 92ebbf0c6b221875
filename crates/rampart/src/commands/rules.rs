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
        RulesCommand::Check { files, no_default_rules } => {
            let cfg =
                RulesConfig { default_rules: !no_default_rules, paths: files, ..RulesConfig::default() };
            match detect::load_rules(&cfg) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        println!("warning: {w}");
                    }
                    let enabled = loaded.ruleset.rules().iter().filter(|r| r.enabled).count();
                    let count = loaded.ruleset.len();
                    // Where each kill rule acts (no dry run: what `run` would arm).
                    let kernel =
                        KernelPlan::new(Arc::new(loaded.ruleset), &loaded.plans, &Default::default());
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

//! `rampart replay`: rules over a capture file, offline, with a timing
//! breakdown (parse, process table, rule evaluation) for the benchmark.

use super::RuleSourceArgs;
use crate::agent::detect::{self, Detector};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use model::Event;
use state::ProcessTable;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Unreadable lines reported individually before we only count them.
const REPORTED_BAD_LINES: u64 = 5;

#[derive(Args)]
pub struct ReplayArgs {
    /// A file written by `rampart capture`.
    file: PathBuf,
    #[command(flatten)]
    source: RuleSourceArgs,
}

pub async fn replay(args: ReplayArgs) -> Result<()> {
    let cfg = args.source.config()?;
    let file: &Path = &args.file;
    let loaded = detect::load_rules(&cfg.rules)?;
    loaded.print_warnings();
    let dispatcher = Arc::new(alerts::Dispatcher::new(&cfg.alerts)?);
    let mut detector = Detector::new(loaded, cfg.rules.clone(), dispatcher.clone());
    // Lineage comes from the capture itself: the process table is rebuilt from
    // its fork/exec/exit events (processes older than the capture have none).
    let mut table = ProcessTable::new(Default::default());

    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening capture {}", file.display()))?,
    );
    let (mut parse, mut apply, mut evaluate) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut events, mut bad) = (0u64, 0u64);
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let t0 = Instant::now();
        let ev: Event = match serde_json::from_str(&line) {
            Ok(ev) => ev,
            Err(e) => {
                bad += 1;
                if bad <= REPORTED_BAD_LINES {
                    eprintln!("rampart: {}:{}: skipped: {e}", file.display(), i + 1);
                }
                continue;
            }
        };
        let t1 = Instant::now();
        table.apply(&ev);
        let t2 = Instant::now();
        detector.detect(&ev, Some(&table));
        let t3 = Instant::now();
        parse += t1 - t0;
        apply += t2 - t1;
        evaluate += t3 - t2;
        events += 1;
    }
    let alerts_sent = detector.alerts;
    drop(detector);
    let stats = match Arc::try_unwrap(dispatcher) {
        Ok(d) => d.shutdown(Duration::from_secs(5)).await,
        Err(d) => d.stats(),
    };
    let per = |d: Duration| if events == 0 { 0.0 } else { d.as_nanos() as f64 / events as f64 };
    let rate = if evaluate.is_zero() { 0.0 } else { events as f64 / evaluate.as_secs_f64() };
    eprintln!(
        "rampart: replayed {events} events ({bad} unreadable lines): parse {:.0} ns/event, process table {:.0} ns/event, \
         rules {:.0} ns/event ({rate:.0} events/s evaluated); {alerts_sent} alerts ({} suppressed)",
        per(parse),
        per(apply),
        per(evaluate),
        stats.suppressed
    );
    Ok(())
}

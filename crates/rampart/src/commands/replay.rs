//! `rampart replay`: rules over a capture file, offline, with a timing
//! breakdown (parse, process table, rule evaluation) for the benchmark.

use super::RuleSourceArgs;
use agent::detect::{self, Detector};
use anyhow::{Context, Result};
use clap::Args;
use model::Event;
use state::ProcessTable;
use std::path::Path;
use std::path::PathBuf;
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
    // Never from the local /proc: its pids are this machine's processes.
    let mut table = ProcessTable::events_only();

    let lines = open_capture(file)?;
    let (mut parse, mut apply, mut evaluate) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut events = 0u64;
    let mut bad = BadLines::default();
    for item in lines {
        let t0 = Instant::now();
        let Some(ev) = parse_line(file, item, &mut bad)? else { continue };
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
        "rampart: replayed {events} events ({} unreadable lines): parse {:.0} ns/event, process table {:.0} ns/event, \
         rules {:.0} ns/event ({rate:.0} events/s evaluated); {alerts_sent} alerts ({} suppressed)",
        bad.count,
        per(parse),
        per(apply),
        per(evaluate),
        stats.suppressed
    );
    Ok(())
}

/// The lines of a capture: a regular file, each line at most
/// `limits::CAPTURE_LINE` bytes (an event is far smaller).
fn open_capture(file: &Path) -> Result<model::input::Lines<std::io::BufReader<std::fs::File>>> {
    use model::input::limits;
    model::input::open_stream(file, limits::CAPTURE, limits::CAPTURE_LINE).context("opening capture")
}

/// Lines skipped: counted, the first few reported with `file:line`.
#[derive(Default)]
struct BadLines {
    count: u64,
}

impl BadLines {
    fn skip(&mut self, file: &Path, line: u64, why: &dyn std::fmt::Display) {
        self.count += 1;
        if self.count <= REPORTED_BAD_LINES {
            eprintln!("rampart: {}:{line}: skipped: {why}", file.display());
        }
    }
}

/// The event of one capture line; `None` for a blank line and for a line that
/// is too long, not UTF-8 or not an event (skipped and counted: the rest of
/// the capture is still replayed). Errors only when the file cannot be read.
fn parse_line(
    file: &Path,
    item: Result<model::input::StreamLine, model::input::InputError>,
    bad: &mut BadLines,
) -> Result<Option<Event>> {
    let line = item?;
    let text = match &line.text {
        Ok(text) if text.trim().is_empty() => return Ok(None),
        Ok(text) => text,
        Err(why) => {
            bad.skip(file, line.number, why);
            return Ok(None);
        }
    };
    match serde_json::from_str(text) {
        Ok(ev) => Ok(Some(ev)),
        Err(e) => {
            bad.skip(file, line.number, &e);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{EventKind, OpenFlags, ProcessCtx};

    fn event(path: &str) -> Event {
        Event {
            ts_ns: 1,
            process: ProcessCtx { pid: 7, comm: "sh".into(), ..Default::default() },
            container: None,
            ret: Some(3),
            syscall: Some("openat".into()),
            kind: EventKind::Open {
                path: path.into(),
                flags: OpenFlags::from_raw(0),
                mode: 0,
                raw_path: None,
            },
        }
    }

    fn replayed(bytes: &[u8]) -> (Vec<Event>, u64) {
        let dir = std::env::temp_dir().join(format!("rampart-replay-{}-{}", std::process::id(), bytes.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("capture.jsonl");
        std::fs::write(&file, bytes).unwrap();
        let mut bad = BadLines::default();
        let mut events = Vec::new();
        for item in open_capture(&file).unwrap() {
            if let Some(ev) = parse_line(&file, item, &mut bad).unwrap() {
                events.push(ev);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        (events, bad.count)
    }

    #[test]
    fn an_invalid_byte_skips_its_line_only() {
        let (one, three) = (event("/one"), event("/three"));
        let mut bytes = serde_json::to_vec(&one).unwrap();
        bytes.extend_from_slice(b"\n{\"ts_ns\":\xff}\n");
        bytes.extend_from_slice(&serde_json::to_vec(&three).unwrap());
        bytes.push(b'\n');
        assert_eq!(replayed(&bytes), (vec![one, three], 1));
    }

    #[test]
    fn over_long_and_unparsable_lines_are_skipped_and_counted() {
        let last = event("/last");
        let mut bytes = b"not json\n\n".to_vec();
        bytes.extend_from_slice(&vec![b'{'; 2 << 20]);
        bytes.push(b'\n');
        bytes.extend_from_slice(&serde_json::to_vec(&last).unwrap());
        assert_eq!(replayed(&bytes), (vec![last], 2));
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let e = open_capture(Path::new("/dev/zero")).err().unwrap();
        assert_eq!(format!("{e:#}"), "opening capture: /dev/zero is a character device, not a regular file");
    }
}

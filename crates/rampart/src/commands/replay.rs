//! `rampart replay`: rules over a capture file, offline, with a timing
//! breakdown (parse, process table, rule evaluation) for the benchmark.

use super::RuleSourceArgs;
use agent::detect::{self, Detector};
use anyhow::{Context, Result};
use clap::Args;
use model::Event;
use state::ProcessTable;
use std::fs::File;
use std::io::{BufReader, Read};
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

    let mut capture = open_capture(file)?;
    // The breakdown is timed on one event in SAMPLE (four clock reads per
    // event would cost ~10% of the replay); the rate on all of them.
    const SAMPLE: u64 = 16;
    let (mut parse, mut apply, mut evaluate) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut events, mut timed) = (0u64, 0u64);
    let mut bad = BadLines::default();
    let started = Instant::now();
    loop {
        if events % SAMPLE != 0 {
            let Some(next) = capture.next_event(file, &mut bad) else { break };
            let Some(ev) = next? else { continue };
            table.apply(&ev);
            detector.detect(&ev, Some(&table));
            events += 1;
            continue;
        }
        let t0 = Instant::now();
        let Some(next) = capture.next_event(file, &mut bad) else { break };
        let Some(ev) = next? else { continue };
        let t1 = Instant::now();
        table.apply(&ev);
        let t2 = Instant::now();
        detector.detect(&ev, Some(&table));
        let t3 = Instant::now();
        parse += t1 - t0;
        apply += t2 - t1;
        evaluate += t3 - t2;
        events += 1;
        timed += 1;
    }
    let elapsed = started.elapsed();
    let alerts_sent = detector.alerts;
    drop(detector);
    let stats = match Arc::try_unwrap(dispatcher) {
        Ok(d) => d.shutdown(Duration::from_secs(5)).await,
        Err(d) => d.stats(),
    };
    let per = |d: Duration| if timed == 0 { 0.0 } else { d.as_nanos() as f64 / timed as f64 };
    let rate = |d: Duration, n: u64| if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() };
    eprintln!(
        "rampart: replayed {events} events ({} unreadable {}) in {:.2} s: {:.0} events/s replayed; parse {:.0} ns/event, \
         process table {:.0} ns/event, rules {:.0} ns/event ({:.0} events/s evaluated); {alerts_sent} alerts \
         ({} suppressed)",
        bad.count,
        capture.unit(),
        elapsed.as_secs_f64(),
        rate(elapsed, events),
        per(parse),
        per(apply),
        per(evaluate),
        rate(evaluate, timed),
        stats.suppressed
    );
    Ok(())
}

/// A capture being read: JSON lines, or the binary form (`capture
/// --binary`, told by its magic).
enum Capture {
    Json(model::input::Lines<BufReader<File>>),
    Binary(model::capture::Reader<BufReader<File>>),
}

/// Opens a capture: a regular file of at most `limits::CAPTURE` bytes, each
/// line or record at most `limits::CAPTURE_LINE` bytes (an event is far
/// smaller).
fn open_capture(file: &Path) -> Result<Capture> {
    use model::input::{limits, open_stream};
    let (total, record) = (limits::CAPTURE.configured(), limits::CAPTURE_LINE.configured());
    let mut f = model::input::open_regular(file).context("opening capture")?;
    let size = f.metadata().with_context(|| format!("reading {}", file.display()))?.len();
    let mut head = [0u8; model::capture::MAGIC.len()];
    let got = f.read(&mut head).with_context(|| format!("reading {}", file.display()))?;
    let Some(version) = model::capture::version(&head[..got]) else {
        return Ok(Capture::Json(open_stream(file, total, record).context("opening capture")?));
    };
    if version > model::capture::VERSION {
        anyhow::bail!(
            "opening capture: {} is a binary capture of format version {version}, written by a newer rampart; \
             this one reads versions 1 to {}",
            file.display(),
            model::capture::VERSION
        );
    }
    if size > total.bytes {
        anyhow::bail!(
            "opening capture: {}",
            model::input::InputError::TooLarge { path: file.into(), limit: total }
        );
    }
    let input = BufReader::with_capacity(1 << 16, f);
    Ok(Capture::Binary(model::capture::Reader::new(input, version, record)))
}

impl Capture {
    /// What a skipped item is called in the summary.
    fn unit(&self) -> &'static str {
        match self {
            Capture::Json(_) => "lines",
            Capture::Binary(_) => "records",
        }
    }

    /// The next event: `None` at the end, `Some(Ok(None))` for an item
    /// skipped (counted in `bad`), an error only when the file cannot be read.
    fn next_event(&mut self, file: &Path, bad: &mut BadLines) -> Option<Result<Option<Box<Event>>>> {
        use model::capture::Item;
        match self {
            Capture::Json(lines) => {
                lines.next().map(|item| parse_line(file, item, bad).map(|ev| ev.map(Box::new)))
            }
            Capture::Binary(records) => Some(Ok(match records.next()? {
                Item::Event(ev) => Some(ev),
                Item::Skipped { offset, why } => {
                    bad.skip(file, &format_args!("byte {offset}"), &why);
                    None
                }
                Item::Broken { offset, why } => {
                    bad.skip(
                        file,
                        &format_args!("byte {offset}"),
                        &format_args!("{why}; the rest is not read"),
                    );
                    None
                }
            })),
        }
    }
}

/// Lines (records) skipped: counted, the first few reported with
/// `file:line` (`file:byte N`).
#[derive(Default)]
struct BadLines {
    count: u64,
}

impl BadLines {
    fn skip(&mut self, file: &Path, at: &dyn std::fmt::Display, why: &dyn std::fmt::Display) {
        self.count += 1;
        if self.count <= REPORTED_BAD_LINES {
            eprintln!("rampart: {}:{at}: skipped: {why}", file.display());
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
            bad.skip(file, &line.number, why);
            return Ok(None);
        }
    };
    match serde_json::from_str(text) {
        Ok(ev) => Ok(Some(ev)),
        Err(e) => {
            bad.skip(file, &line.number, &e);
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
        let mut capture = open_capture(&file).unwrap();
        while let Some(next) = capture.next_event(&file, &mut bad) {
            if let Some(ev) = next.unwrap() {
                events.push(*ev);
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
    fn a_binary_capture_replays_the_same_events_and_skips_a_bad_record() {
        let evs: Vec<Event> = (0..4).map(|n| event(&format!("/f{n}"))).collect();
        let mut w = model::capture::Writer::new(Vec::new()).unwrap();
        for e in &evs {
            w.write(e).unwrap();
        }
        w.flush().unwrap();
        let mut bytes = w.into_inner();
        assert_eq!(replayed(&bytes), (evs.clone(), 0));
        // An unknown record between the events: skipped, the rest read.
        let at = bytes.len();
        bytes.extend_from_slice(&[b'Z', 4, 0, 0, 0, 0, 0, 0, 0]);
        let mut w = model::capture::Writer::new(Vec::new()).unwrap();
        w.write(&evs[0]).unwrap();
        bytes.extend_from_slice(&w.into_inner()[model::capture::MAGIC.len()..]);
        let (got, bad) = replayed(&bytes);
        assert_eq!((got.len(), bad), (5, 1), "skipped record at byte {at}");
    }

    #[test]
    fn a_capture_of_a_newer_format_is_refused_by_name() {
        let file = std::env::temp_dir().join(format!("rampart-replay-v3-{}", std::process::id()));
        std::fs::write(&file, b"rampart-capture\x03rest").unwrap();
        let e = open_capture(&file).err().unwrap();
        std::fs::remove_file(&file).unwrap();
        assert!(format!("{e:#}")
            .contains("format version 3, written by a newer rampart; this one reads versions 1 to 2"));
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let e = open_capture(Path::new("/dev/zero")).err().unwrap();
        assert_eq!(format!("{e:#}"), "opening capture: /dev/zero is a character device, not a regular file");
    }
}

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

    let capture = open_capture(file)?;
    let unit = capture.unit();
    let started = Instant::now();
    let (batches, reader) = decode_in_background(capture, file.to_path_buf());
    // The breakdown of this thread's work is timed on one event in SAMPLE
    // (three clock reads per event would cost several % of the replay).
    const SAMPLE: u64 = 16;
    let (mut apply, mut evaluate) = (Duration::ZERO, Duration::ZERO);
    let (mut events, mut timed) = (0u64, 0u64);
    for batch in batches {
        for ev in batch? {
            events += 1;
            if events % SAMPLE != 0 {
                table.apply(&ev);
                detector.detect(&ev, Some(&table));
                continue;
            }
            let t0 = Instant::now();
            table.apply(&ev);
            let t1 = Instant::now();
            detector.detect(&ev, Some(&table));
            let t2 = Instant::now();
            apply += t1 - t0;
            evaluate += t2 - t1;
            timed += 1;
        }
    }
    let decoding = reader.join().map_err(|_| anyhow::anyhow!("the capture reader panicked"))?;
    let elapsed = started.elapsed();
    let alerts_sent = detector.alerts;
    drop(detector);
    let stats = match Arc::try_unwrap(dispatcher) {
        Ok(d) => d.shutdown(Duration::from_secs(5)).await,
        Err(d) => d.stats(),
    };
    let per = |d: Duration| if timed == 0 { 0.0 } else { d.as_nanos() as f64 / timed as f64 };
    let rate = |d: Duration, n: u64| if d.is_zero() { 0.0 } else { n as f64 / d.as_secs_f64() };
    let parse = if events == 0 { 0.0 } else { decoding.cpu.as_nanos() as f64 / events as f64 };
    eprintln!(
        "rampart: replayed {events} events ({} unreadable {unit}) in {:.2} s: {:.0} events/s replayed; parse {parse:.0} \
         ns/event, process table {:.0} ns/event, rules {:.0} ns/event ({:.0} events/s evaluated); {alerts_sent} alerts \
         ({} suppressed)",
        decoding.bad,
        elapsed.as_secs_f64(),
        rate(elapsed, events),
        per(apply),
        per(evaluate),
        rate(evaluate, timed),
        stats.suppressed
    );
    Ok(())
}

/// Events per batch from the reader thread to the rules.
const BATCH: usize = 256;
/// Batches decoded ahead of the rules: what bounds the memory in between.
const BATCHES_AHEAD: usize = 8;

/// The reader thread's account, at the end.
struct Decoding {
    /// Items skipped (reported as they were met).
    bad: u64,
    /// The thread's CPU time: decoding, and reading the file.
    cpu: Duration,
}

/// Decodes the capture on a thread of its own, in order, a batch at a time,
/// while the caller runs the rules: parsing is about half of a replay's work,
/// so with a second core the two halves overlap. The channel is bounded, so a
/// slow consumer stops the reader. An error (the file cannot be read) is the
/// last item.
fn decode_in_background(
    mut capture: Capture,
    file: PathBuf,
) -> (std::sync::mpsc::Receiver<Result<Vec<Box<Event>>>>, std::thread::JoinHandle<Decoding>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES_AHEAD);
    let reader = std::thread::spawn(move || {
        let mut bad = BadLines::default();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match capture.next_event(&file, &mut bad) {
                Some(Ok(Some(ev))) => {
                    batch.push(ev);
                    if batch.len() < BATCH {
                        continue;
                    }
                }
                Some(Ok(None)) => continue,
                Some(Err(e)) => {
                    let _ = tx.send(Ok(std::mem::take(&mut batch)));
                    let _ = tx.send(Err(e));
                    break;
                }
                None => {
                    let _ = tx.send(Ok(std::mem::take(&mut batch)));
                    break;
                }
            }
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(Ok(full)).is_err() {
                break; // the consumer is gone
            }
        }
        Decoding { bad: bad.count, cpu: thread_cpu_time() }
    });
    (rx, reader)
}

/// The calling thread's CPU time so far (not its wall time: on one core the
/// reader and the rules take turns).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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
    if !model::capture::is_binary(&head[..got]) {
        return Ok(Capture::Json(open_stream(file, total, record).context("opening capture")?));
    }
    if size > total.bytes {
        anyhow::bail!(
            "opening capture: {}",
            model::input::InputError::TooLarge { path: file.into(), limit: total }
        );
    }
    let input = BufReader::with_capacity(1 << 16, f);
    Ok(Capture::Binary(model::capture::Reader::new(input, record)))
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
        let (batches, reader) = decode_in_background(open_capture(&file).unwrap(), file.clone());
        let events = batches.into_iter().flat_map(|b| b.unwrap()).map(|ev| *ev).collect();
        let bad = reader.join().unwrap().bad;
        std::fs::remove_dir_all(&dir).unwrap();
        (events, bad)
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
    fn events_of_many_batches_come_in_order() {
        let evs: Vec<Event> = (0..BATCH * 3 + 7).map(|n| event(&format!("/f{n}"))).collect();
        let mut bytes = Vec::new();
        for e in &evs {
            bytes.extend_from_slice(&serde_json::to_vec(e).unwrap());
            bytes.push(b'\n');
        }
        assert_eq!(replayed(&bytes), (evs, 0));
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        let e = open_capture(Path::new("/dev/zero")).err().unwrap();
        assert_eq!(format!("{e:#}"), "opening capture: /dev/zero is a character device, not a regular file");
    }
}

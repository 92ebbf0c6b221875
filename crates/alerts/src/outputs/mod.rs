//! The outputs: each runs on its own thread, fed by a bounded channel, so a
//! slow or dead output never blocks the caller of `Dispatcher::emit`.

pub(crate) mod file;
pub(crate) mod remote_syslog;
pub(crate) mod stdout;
pub(crate) mod syslog;
pub(crate) mod webhook;

use crate::{Alert, Error};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes alerts somewhere. Runs on the output's own thread.
pub(crate) trait Sink: Send {
    fn write(&mut self, alert: &Alert, ctl: &Control) -> Result<(), Error>;

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// Counters of one output.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub enqueued: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
    /// Taken from the queue but not sent because shutdown ran out of time.
    pub abandoned: AtomicU64,
}

/// Delivery counts of one output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputStats {
    /// Alerts written or delivered.
    pub sent: u64,
    /// Alerts the output failed to write or deliver (after retries).
    pub failed: u64,
    /// Alerts dropped because the output's queue was full, or left unsent when
    /// shutdown's deadline passed.
    pub dropped: u64,
    /// Repeated delivery attempts (webhook).
    pub retries: u64,
    /// Alerts waiting in the queue.
    pub pending: u64,
}

impl Counters {
    pub fn stats(&self) -> OutputStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let abandoned = get(&self.abandoned);
        OutputStats {
            sent: get(&self.sent),
            failed: get(&self.failed),
            dropped: get(&self.dropped) + abandoned,
            retries: get(&self.retries),
            pending: get(&self.enqueued).saturating_sub(get(&self.sent) + get(&self.failed) + abandoned),
        }
    }
}

/// What a sink may consult while it works: whether to give up, and counters.
pub(crate) struct Control {
    pub abort: Arc<AtomicBool>,
    pub counters: Arc<Counters>,
}

impl Control {
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Sleeps for `d`, waking early on abort; returns false when aborted.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.aborted() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> Control {
        Control { abort: Arc::default(), counters: Arc::default() }
    }
}

/// A bounded queue that allocates as it fills, not up front: std's
/// `sync_channel(n)` reserves all `n` slots at once, so a large configured
/// `queue_size` cost its full memory (or panicked) before any alert.
pub(crate) fn queue(cap: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::channel();
    let len = Arc::new(AtomicUsize::new(0));
    (QueueTx { tx, len: len.clone(), cap }, QueueRx { rx, len })
}

pub(crate) struct QueueTx {
    tx: Sender<Arc<Alert>>,
    len: Arc<AtomicUsize>,
    cap: usize,
}

impl QueueTx {
    /// Queues `alert` unless `cap` alerts are waiting or the output is gone.
    pub fn try_send(&self, alert: Arc<Alert>) -> Result<(), Arc<Alert>> {
        if self.len.fetch_add(1, Ordering::AcqRel) >= self.cap {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(alert);
        }
        self.tx.send(alert).map_err(|e| {
            self.len.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }
}

pub(crate) struct QueueRx {
    rx: Receiver<Arc<Alert>>,
    len: Arc<AtomicUsize>,
}

impl QueueRx {
    /// The next alert; `None` once every sender is gone and the queue empty.
    pub fn recv(&self) -> Option<Arc<Alert>> {
        let alert = self.rx.recv().ok()?;
        self.len.fetch_sub(1, Ordering::AcqRel);
        Some(alert)
    }
}

/// Whether a count is worth a log line: 1, 10, 100, ...
pub(crate) fn log_worthy(n: u64) -> bool {
    n > 0 && 10u64.pow(n.ilog10()) == n
}

/// The loop of an output's thread: writes queued alerts until the queue is
/// closed, then flushes.
pub(crate) fn run(name: &'static str, mut sink: Box<dyn Sink>, rx: QueueRx, ctl: Control) {
    let mut failures: u64 = 0;
    while let Some(alert) = rx.recv() {
        if ctl.aborted() {
            ctl.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match sink.write(&alert, &ctl) {
            Ok(()) => {
                ctl.counters.sent.fetch_add(1, Ordering::Relaxed);
                if failures > 0 {
                    tracing::info!(output = name, failures, "alert output recovered");
                    failures = 0;
                }
            }
            Err(e) => {
                ctl.counters.failed.fetch_add(1, Ordering::Relaxed);
                failures += 1;
                if log_worthy(failures) {
                    tracing::warn!(output = name, failures, error = %e, rule = %alert.rule, "alert output failed");
                }
            }
        }
    }
    if let Err(e) = sink.flush() {
        tracing::warn!(output = name, error = %e, "alert output flush failed");
    }
}

/// Test helpers: an alert whose every string is hostile, and what each
/// output must make of it.
#[cfg(test)]
pub(crate) mod hostile {
    use crate::{Alert, Priority};
    use std::sync::Arc;

    /// Strings a process in a container controls: newlines that would start
    /// a forged record, CR, ESC sequences, NUL, DEL, C1, a Unicode line
    /// separator, invalid UTF-8 (replaced as the sensor reads it) and a 4 KiB path.
    pub fn alert() -> Alert {
        let lossy = String::from_utf8_lossy(b"/tmp/\xff\xfe\x80bad").into_owned();
        let path = format!("/tmp/{}", "p".repeat(4096));
        let forged = "x\n12:00:00.000000000: Critical forged record\r\u{1b}[2K\u{0}\u{7f}\u{9b}\u{2028}y";
        Alert::new(0, format!("rule\n{forged}"), Priority::Warning, &format!("{forged} {lossy} {path}"))
            .with_field("proc.cmdline", forged)
            .with_field("fd.name", path)
            .with_field(format!("evil\nkey{forged}"), lossy)
            .with_tags([forged])
    }

    /// A line of text output carries no raw control or line separator.
    pub fn assert_one_text_line(line: &str) {
        let body = line.strip_suffix('\n').unwrap_or(line);
        assert!(!body.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'), "{body:?}");
        assert!(
            body.contains("\\n12:00:00") && body.contains("\\x1b[2K") && body.contains("\\x00"),
            "{body}"
        );
    }

    /// A JSON record is one line, parses, and gives the hostile values back.
    pub fn assert_one_json_record(line: &str) {
        let body = line.strip_suffix('\n').unwrap_or(line);
        assert!(!body.contains('\n') && !body.contains('\r') && !body.contains('\u{0}'), "{body:?}");
        let v: serde_json::Value = serde_json::from_str(body).expect("one JSON object");
        let a = alert();
        assert_eq!(v["rule"], a.rule.as_str());
        assert_eq!(v["output_fields"]["proc.cmdline"], a.output_fields["proc.cmdline"]);
    }

    pub fn control() -> super::Control {
        super::Control { abort: Arc::default(), counters: Arc::default() }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queue_is_bounded_and_frees_slots_as_it_drains() {
        let (tx, rx) = super::queue(2);
        let a = std::sync::Arc::new(crate::Alert::new(0, "r", crate::Priority::Debug, "t"));
        assert!(tx.try_send(a.clone()).is_ok());
        assert!(tx.try_send(a.clone()).is_ok());
        assert!(tx.try_send(a.clone()).is_err(), "full");
        assert!(rx.recv().is_some());
        assert!(tx.try_send(a.clone()).is_ok(), "a slot freed");
        drop(rx);
        assert!(tx.try_send(a).is_err(), "gone");
        // A huge bound costs nothing until alerts arrive.
        let _ = super::queue(crate::config::MAX_QUEUE_SIZE);
    }

    #[test]
    fn log_worthy_powers_of_ten() {
        let v: Vec<u64> = (0..2000).filter(|n| super::log_worthy(*n)).collect();
        assert_eq!(v, [1, 10, 100, 1000]);
    }
}

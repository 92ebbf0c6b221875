//! The dispatcher: filters, rate limits and fans alerts out to the outputs.

use crate::config::AlertsConfig;
use crate::outputs::{
    self, file::FileSink, remote_syslog::RemoteSyslogSink, stdout::StdoutSink, syslog::SyslogSink,
    webhook::WebhookSink,
};
use crate::outputs::{Control, Counters, OutputStats, Sink};
use crate::ratelimit::{Decision, RateLimiter, SuppressedStat};
use crate::{Alert, Error, Priority};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `emit` did with an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitted {
    /// Queued to the outputs that take its priority (`dropped` of them had a
    /// full queue).
    Queued { outputs: usize, dropped: usize },
    /// Below the global minimum priority, or below every output's.
    BelowMinPriority,
    /// Same text of the same rule and container within the dedup window.
    Duplicate,
    /// The (rule, container) bucket was empty.
    RateLimited,
}

/// Counters for the summary and metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Alerts passed to `emit`.
    pub received: u64,
    pub below_min_priority: u64,
    /// `rate_limited + deduplicated`.
    pub suppressed: u64,
    pub rate_limited: u64,
    pub deduplicated: u64,
    /// (rule, container) pairs tracked by the rate limiter now.
    pub rate_limit_keys: usize,
    pub rate_limit_evictions: u64,
    /// The pairs with the most suppressed alerts (at most 20).
    pub top_suppressed: Vec<SuppressedStat>,
    /// Per output, by name (`stdout`, `file`, `webhook`, `syslog`, `remote_syslog`).
    pub outputs: BTreeMap<String, OutputStats>,
}

impl Stats {
    /// Alerts dropped by all outputs together.
    pub fn dropped(&self) -> u64 {
        self.outputs.values().map(|o| o.dropped).sum()
    }

    /// Alerts that outputs failed to deliver.
    pub fn failed(&self) -> u64 {
        self.outputs.values().map(|o| o.failed).sum()
    }
}

struct Output {
    name: &'static str,
    min_priority: Priority,
    tx: outputs::QueueTx,
    counters: Arc<Counters>,
    abort: Arc<AtomicBool>,
}

/// Sends alerts to the configured outputs without ever blocking the caller.
///
/// Each output runs on its own thread behind a bounded queue; when a queue is
/// full the alert is dropped for that output and counted. `Dispatcher` is
/// `Send + Sync`: share it behind an `Arc`.
pub struct Dispatcher {
    global_min: Priority,
    /// The lowest priority any output takes (and at least `global_min`).
    effective_min: Priority,
    include_event: bool,
    hostname: String,
    limiter: Option<Mutex<RateLimiter>>,
    outputs: Vec<Output>,
    received: AtomicU64,
    below_min: AtomicU64,
    done_rx: Mutex<Receiver<&'static str>>,
}

/// Reports an output thread's end, also when it panics.
struct DoneGuard(Sender<&'static str>, &'static str);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

/// How long shutdown waits for output threads after its deadline, once told
/// to give up.
const ABORT_GRACE: Duration = Duration::from_millis(100);

impl Dispatcher {
    /// Validates `cfg`, opens the outputs (a file that cannot be created or a
    /// syslog socket that is not there is an error here) and starts their
    /// threads.
    pub fn new(cfg: &AlertsConfig) -> Result<Self, Error> {
        Self::build(cfg, None)
    }

    /// Like [`Dispatcher::new`], with the `stdout` output writing to `out`.
    pub fn with_stdout_writer(cfg: &AlertsConfig, out: Box<dyn Write + Send>) -> Result<Self, Error> {
        Self::build(cfg, Some(out))
    }

    fn build(cfg: &AlertsConfig, stdout: Option<Box<dyn Write + Send>>) -> Result<Self, Error> {
        cfg.validate()?;
        let hostname = match &cfg.hostname {
            Some(h) => h.clone(),
            None => system_hostname(),
        };
        let o = &cfg.outputs;
        // Open every sink before starting any thread, so an error leaves nothing behind.
        let mut sinks: Vec<(&'static str, Priority, usize, Box<dyn Sink>)> = Vec::new();
        if o.stdout.enabled {
            let out = stdout.unwrap_or_else(|| Box::new(std::io::stdout()));
            sinks.push((
                "stdout",
                o.stdout.min_priority,
                o.stdout.queue_size,
                Box::new(StdoutSink::new(out, o.stdout.format)),
            ));
        }
        if o.file.enabled {
            sinks.push(("file", o.file.min_priority, o.file.queue_size, Box::new(FileSink::new(&o.file)?)));
        }
        if o.webhook.enabled {
            sinks.push((
                "webhook",
                o.webhook.min_priority,
                o.webhook.queue_size,
                Box::new(WebhookSink::new(&o.webhook)?),
            ));
        }
        if o.syslog.enabled {
            sinks.push((
                "syslog",
                o.syslog.min_priority,
                o.syslog.queue_size,
                Box::new(SyslogSink::new(&o.syslog, &hostname)?),
            ));
        }
        if o.remote_syslog.enabled {
            sinks.push((
                "remote_syslog",
                o.remote_syslog.min_priority,
                o.remote_syslog.queue_size,
                Box::new(RemoteSyslogSink::new(&o.remote_syslog, &hostname)?),
            ));
        }
        if sinks.is_empty() {
            tracing::warn!("no alert output is enabled: alerts are counted but go nowhere");
        }

        let (done_tx, done_rx) = mpsc::channel();
        let mut outputs = Vec::new();
        for (name, min_priority, queue_size, sink) in sinks {
            let (tx, rx) = outputs::queue(queue_size);
            let counters = Arc::new(Counters::default());
            let abort = Arc::new(AtomicBool::new(false));
            let ctl = Control { abort: abort.clone(), counters: counters.clone() };
            let guard = DoneGuard(done_tx.clone(), name);
            std::thread::Builder::new()
                .name(format!("alerts-{name}"))
                .spawn(move || {
                    let _guard = guard;
                    outputs::run(name, sink, rx, ctl);
                })
                .map_err(|source| Error::Spawn { output: name, source })?;
            outputs.push(Output { name, min_priority, tx, counters, abort });
        }
        let effective_min =
            outputs.iter().map(|o| o.min_priority).min().unwrap_or(Priority::Debug).max(cfg.min_priority);
        tracing::info!(
            outputs = ?outputs.iter().map(|o| o.name).collect::<Vec<_>>(),
            min_priority = %cfg.min_priority,
            rate_limit = cfg.rate_limit.enabled,
            "alert outputs started"
        );
        Ok(Dispatcher {
            global_min: cfg.min_priority,
            effective_min,
            include_event: cfg.include_event,
            hostname,
            limiter: cfg.rate_limit.enabled.then(|| Mutex::new(RateLimiter::new(&cfg.rate_limit))),
            outputs,
            received: AtomicU64::new(0),
            below_min: AtomicU64::new(0),
            done_rx: Mutex::new(done_rx),
        })
    }

    /// The hostname put in alerts that have none.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Filters, rate limits and queues `alert` to each output that takes its
    /// priority. Never blocks: a full output queue drops the alert for that
    /// output and counts it.
    pub fn emit(&self, mut alert: Alert) -> Emitted {
        self.received.fetch_add(1, Ordering::Relaxed);
        if alert.priority < self.effective_min {
            self.below_min.fetch_add(1, Ordering::Relaxed);
            return Emitted::BelowMinPriority;
        }
        if let Some(limiter) = &self.limiter {
            let container = alert.container_id().unwrap_or("");
            let decision = limiter.lock().unwrap_or_else(|e| e.into_inner()).check(
                &alert.rule,
                container,
                alert.text(),
                Instant::now(),
            );
            match decision {
                Decision::Allow { suppressed } => alert.suppressed = (suppressed > 0).then_some(suppressed),
                Decision::Duplicate => return Emitted::Duplicate,
                Decision::RateLimited => return Emitted::RateLimited,
            }
        }
        if alert.hostname.is_empty() {
            alert.hostname.clone_from(&self.hostname);
        }
        if !self.include_event {
            alert.event = None;
        }
        let alert = Arc::new(alert);
        let (mut queued, mut dropped) = (0, 0);
        for out in &self.outputs {
            if alert.priority < out.min_priority {
                continue;
            }
            queued += 1;
            match out.tx.try_send(alert.clone()) {
                Ok(()) => {
                    out.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                }
                Err(_full_or_gone) => {
                    dropped += 1;
                    let n = out.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if outputs::log_worthy(n) {
                        tracing::warn!(
                            output = out.name,
                            dropped = n,
                            "alert output queue full, alerts dropped"
                        );
                    }
                }
            }
        }
        Emitted::Queued { outputs: queued, dropped }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            received: self.received.load(Ordering::Relaxed),
            below_min_priority: self.below_min.load(Ordering::Relaxed),
            outputs: self.outputs.iter().map(|o| (o.name.to_string(), o.counters.stats())).collect(),
            ..Stats::default()
        };
        if let Some(limiter) = &self.limiter {
            let l = limiter.lock().unwrap_or_else(|e| e.into_inner());
            s.rate_limited = l.rate_limited();
            s.deduplicated = l.duplicates();
            s.suppressed = s.rate_limited + s.deduplicated;
            s.rate_limit_keys = l.tracked_keys();
            s.rate_limit_evictions = l.evictions();
            s.top_suppressed = l.top_suppressed(20);
        }
        s
    }

    /// The global minimum priority.
    pub fn min_priority(&self) -> Priority {
        self.global_min
    }

    /// Closes the queues and waits up to `timeout` for the outputs to write
    /// what is queued; after that, outputs stop retrying, what is left is
    /// counted as dropped, and shutdown returns. Returns the final counters.
    pub async fn shutdown(self, timeout: Duration) -> Stats {
        match tokio::task::spawn_blocking(move || self.shutdown_blocking(timeout)).await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::error!(error = %e, "alert shutdown failed");
                Stats::default()
            }
        }
    }

    /// [`Dispatcher::shutdown`] for synchronous callers.
    pub fn shutdown_blocking(mut self, timeout: Duration) -> Stats {
        let deadline = Instant::now() + timeout;
        let mut remaining = self.outputs.len();
        let outputs = std::mem::take(&mut self.outputs);
        let mut handles = Vec::new();
        for o in outputs {
            // Dropping the sender closes the queue: the thread drains it and ends.
            drop(o.tx);
            handles.push((o.name, o.counters, o.abort));
        }
        let done_rx = self.done_rx.lock().unwrap_or_else(|e| e.into_inner());
        let mut aborted = false;
        while remaining > 0 {
            let now = Instant::now();
            let wait = if aborted { ABORT_GRACE } else { deadline.saturating_duration_since(now) };
            match done_rx.recv_timeout(wait) {
                Ok(_) => remaining -= 1,
                Err(RecvTimeoutError::Timeout) if !aborted => {
                    aborted = true;
                    for (_, _, abort) in &handles {
                        abort.store(true, Ordering::Relaxed);
                    }
                }
                Err(_) => break,
            }
        }
        drop(done_rx);
        let mut stats = self.stats();
        // Include the outputs just closed (self.outputs is empty now).
        stats.outputs = handles.iter().map(|(n, c, _)| (n.to_string(), c.stats())).collect();
        for (name, s) in &stats.outputs {
            if s.pending > 0 || (aborted && s.dropped > 0) {
                tracing::warn!(output = %name, pending = s.pending, dropped = s.dropped, "alert output did not finish before shutdown deadline");
            }
        }
        stats
    }
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

//! Alerts and their outputs.
//!
//! An [`Alert`] is what a rule match produces, in the JSON shape Falco emits
//! (`time`, `rule`, `priority`, `output`, `output_fields`, `tags`, `source`,
//! `hostname`) plus rampart's `container`, `event` and `suppressed`. The
//! [`Dispatcher`] filters alerts by priority, rate limits and de-duplicates
//! them per (rule, container), and hands them to the outputs configured in
//! [`AlertsConfig`] (stdout, file with rotation, HTTP webhook, syslog), each on
//! its own thread behind a bounded queue so that event processing never waits
//! for an output. See [`EXAMPLE_CONFIG`] for the configuration.

mod alert;
mod config;
mod dispatcher;
mod outputs;
mod ratelimit;

pub use alert::{clock_time, rfc3339_nanos, Alert, SOURCE_SYSCALL};
pub use config::{
    AlertsConfig, Facility, FileConfig, Format, OutputsConfig, RateLimitConfig, StdoutConfig, SyslogConfig,
    SyslogFormat, WebhookConfig, EXAMPLE_CONFIG,
};
pub use dispatcher::{Dispatcher, Emitted, Stats};
pub use model::{Priority, UnknownPriority};
pub use outputs::OutputStats;
pub use ratelimit::{Decision, RateLimiter, SuppressedStat};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid alerts config in {section}: {reason}")]
    Config { section: &'static str, reason: String },
    #[error("invalid webhook url `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid webhook header `{name}`: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("cannot use ca file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot open alert file {path}: {source}")]
    OpenFile { path: PathBuf, source: std::io::Error },
    #[error("cannot write alert file {path}: {source}")]
    WriteFile { path: PathBuf, source: std::io::Error },
    #[error("cannot rotate alert file {path}: {source}")]
    Rotate { path: PathBuf, source: std::io::Error },
    #[error("cannot write alerts to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("cannot send to syslog socket {path}: {source}")]
    Syslog { path: PathBuf, source: std::io::Error },
    #[error("syslog collector {address}: {reason}")]
    RemoteSyslog { address: String, reason: String },
    #[error("webhook {url} answered status {status}")]
    WebhookStatus { url: String, status: u16 },
    #[error("webhook {url} failed: {reason}")]
    Webhook { url: String, reason: String },
    #[error("cannot start the {output} alert output: {source}")]
    Spawn { output: &'static str, source: std::io::Error },
}

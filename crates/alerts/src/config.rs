//! Configuration of alerts and outputs, nested in the agent's config file as
//! `alerts:`. Every struct refuses unknown keys so that a typo is an error, not a
//! silently disabled output.

use crate::{Error, Priority};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// A documented example of the `alerts:` section, with every key at its default
/// except where a comment says otherwise. Parsed and validated by the tests.
pub const EXAMPLE_CONFIG: &str = r#"# Alerts: Falco-shaped JSON records, rate limited, sent to outputs.
alerts:
  # Alerts below this priority are dropped before any output sees them:
  # emergency, alert, critical, error, warning, notice, informational (info), debug.
  min_priority: debug
  # Hostname put in each alert; default: the machine's hostname.
  # hostname: node-1
  # Attach the matching event (process, container, arguments) to JSON alerts.
  include_event: true
  # Per (rule, container) token bucket and de-duplication, so that a storm of
  # alerts cannot flood outputs. Suppressed alerts are counted; the next alert
  # of the pair that goes out carries `suppressed: N`.
  rate_limit:
    enabled: true
    rate: 1.0               # tokens per second, per (rule, container)
    burst: 10               # bucket size: alerts allowed at once
    dedup_window_secs: 60   # identical output text within this window is suppressed; 0 = off
    max_keys: 10000         # (rule, container) pairs tracked; least recently seen evicted
  outputs:
    stdout:
      enabled: true
      format: text          # text (Falco's line) or json (one alert per line)
      min_priority: debug
      queue_size: 1024      # alerts waiting for this output; beyond it they are dropped and counted
    file:
      enabled: false        # true to turn on
      path: /var/log/rampart/alerts.json
      format: json
      min_priority: debug
      max_size_mb: 100      # rotate when the file would exceed this; 0 = never rotate
      max_files: 5          # rotated files kept: alerts.json.1 .. alerts.json.5
      queue_size: 1024
    webhook:
      enabled: false        # true to turn on
      url: https://siem.example.com/rampart   # http:// or https://
      headers:              # added to every POST (Content-Type is application/json)
        Authorization: Bearer CHANGE-ME
      # PEM bundle of trusted CAs for https; default: the bundled Mozilla roots.
      # ca_file: /etc/ssl/certs/ca-certificates.crt
      timeout_ms: 5000      # per attempt: connect, send and response
      retries: 3            # further attempts after a failure (5xx, 408, 429, network)
      backoff_initial_ms: 200  # doubled after each failed attempt
      backoff_max_ms: 5000
      min_priority: debug
      queue_size: 1000      # POSTs never block event processing: a full queue drops and counts
    syslog:
      enabled: false        # true to turn on
      path: /dev/log        # unix datagram socket
      format: rfc5424       # rfc5424 or rfc3164
      facility: user        # kern user mail daemon auth syslog lpr news uucp cron authpriv ftp local0..local7
      message: text         # text (Falco's line) or json
      app_name: rampart
      max_message_bytes: 8192
      min_priority: debug
      queue_size: 1024
"#;

/// The `alerts:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub min_priority: Priority,
    /// Overrides the machine's hostname in alerts.
    pub hostname: Option<String>,
    pub include_event: bool,
    pub rate_limit: RateLimitConfig,
    pub outputs: OutputsConfig,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            min_priority: Priority::Debug,
            hostname: None,
            include_event: true,
            rate_limit: RateLimitConfig::default(),
            outputs: OutputsConfig::default(),
        }
    }
}

impl AlertsConfig {
    /// Checks what serde cannot: required keys of enabled outputs, URLs,
    /// header names, numeric ranges.
    pub fn validate(&self) -> Result<(), Error> {
        self.rate_limit.validate()?;
        self.outputs.validate()
    }
}

/// Largest `rate_limit.max_keys`: (rule, container) pairs tracked, a few
/// hundred bytes each, so the table stays in the hundreds of megabytes at most.
pub const MAX_RATE_LIMIT_KEYS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Tokens added per second to each (rule, container) bucket.
    pub rate: f64,
    /// Bucket size.
    pub burst: u32,
    /// Identical output text of the same (rule, container) within this many
    /// seconds is suppressed; 0 turns de-duplication off.
    pub dedup_window_secs: u64,
    /// Number of (rule, container) pairs tracked at most.
    pub max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { enabled: true, rate: 1.0, burst: 10, dedup_window_secs: 60, max_keys: 10_000 }
    }
}

impl RateLimitConfig {
    fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let bad = |reason: String| Err(Error::Config { section: "rate_limit", reason });
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return bad(format!("rate must be a positive number of alerts per second, got {}", self.rate));
        }
        if self.burst == 0 {
            return bad("burst must be at least 1".into());
        }
        if self.max_keys == 0 {
            return bad("max_keys must be at least 1".into());
        }
        if self.max_keys > MAX_RATE_LIMIT_KEYS {
            return bad(format!("max_keys {} is above the maximum {MAX_RATE_LIMIT_KEYS}", self.max_keys));
        }
        Ok(())
    }

    pub fn dedup_window(&self) -> Duration {
        Duration::from_secs(self.dedup_window_secs)
    }
}

/// Text (Falco's line) or JSON (one alert per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    pub stdout: StdoutConfig,
    pub file: FileConfig,
    pub webhook: WebhookConfig,
    pub syslog: SyslogConfig,
    pub remote_syslog: RemoteSyslogConfig,
}

impl OutputsConfig {
    pub fn validate(&self) -> Result<(), Error> {
        self.stdout.validate()?;
        self.file.validate()?;
        self.webhook.validate()?;
        self.syslog.validate()?;
        self.remote_syslog.validate()
    }
}

/// Largest `queue_size` of an output: alerts waiting for one output (each
/// queued alert is shared by the outputs, and queues grow only as they fill).
/// A million alerts is minutes of a flood at any sane rate; beyond that a
/// stuck output should drop and count, not hold gigabytes.
pub const MAX_QUEUE_SIZE: usize = 1_000_000;

fn check_queue(section: &'static str, queue_size: usize) -> Result<(), Error> {
    if queue_size == 0 {
        return Err(Error::Config { section, reason: "queue_size must be at least 1".into() });
    }
    if queue_size > MAX_QUEUE_SIZE {
        return Err(Error::Config {
            section,
            reason: format!("queue_size {queue_size} is above the maximum {MAX_QUEUE_SIZE}"),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutConfig {
    pub enabled: bool,
    pub format: Format,
    pub min_priority: Priority,
    pub queue_size: usize,
}

impl Default for StdoutConfig {
    fn default() -> Self {
        StdoutConfig { enabled: true, format: Format::Text, min_priority: Priority::Debug, queue_size: 1024 }
    }
}

impl StdoutConfig {
    fn validate(&self) -> Result<(), Error> {
        if self.enabled {
            check_queue("outputs.stdout", self.queue_size)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub enabled: bool,
    pub path: Option<PathBuf>,
    pub format: Format,
    pub min_priority: Priority,
    /// Rotate when a write would take the file past this size; 0 = never.
    pub max_size_mb: u64,
    /// Rotated files kept (`path.1` newest .. `path.N` oldest); 0 = the file is
    /// truncated instead of rotated.
    pub max_files: u32,
    pub queue_size: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            enabled: false,
            path: None,
            format: Format::Json,
            min_priority: Priority::Debug,
            max_size_mb: 100,
            max_files: 5,
            queue_size: 1024,
        }
    }
}

impl FileConfig {
    fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let section = "outputs.file";
        match &self.path {
            None => return Err(Error::Config { section, reason: "path is required when enabled".into() }),
            Some(p) if p.as_os_str().is_empty() => {
                return Err(Error::Config { section, reason: "path is empty".into() })
            }
            Some(_) => {}
        }
        if self.max_files > 1000 {
            return Err(Error::Config {
                section,
                reason: format!("max_files {} is above 1000", self.max_files),
            });
        }
        check_queue(section, self.queue_size)
    }

    /// The rotation size in bytes (0 = never rotate).
    pub fn max_size_bytes(&self) -> u64 {
        self.max_size_mb.saturating_mul(1024 * 1024)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub enabled: bool,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    /// PEM file of CAs to trust for https instead of the bundled roots.
    pub ca_file: Option<PathBuf>,
    pub timeout_ms: u64,
    pub retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub min_priority: Priority,
    pub queue_size: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: false,
            url: String::new(),
            headers: BTreeMap::new(),
            ca_file: None,
            timeout_ms: 5000,
            retries: 3,
            backoff_initial_ms: 200,
            backoff_max_ms: 5000,
            min_priority: Priority::Debug,
            queue_size: 1000,
        }
    }
}

impl WebhookConfig {
    fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let section = "outputs.webhook";
        crate::outputs::webhook::check_url(&self.url)?;
        for (name, value) in &self.headers {
            crate::outputs::webhook::check_header(name, value)?;
        }
        if self.timeout_ms == 0 {
            return Err(Error::Config { section, reason: "timeout_ms must be at least 1".into() });
        }
        if self.retries > 100 {
            return Err(Error::Config { section, reason: format!("retries {} is above 100", self.retries) });
        }
        check_queue(section, self.queue_size)
    }
}

/// The syslog message header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// `<PRI>1 TIMESTAMP HOST APP PID - - MSG`
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss APP[PID]: MSG` (as glibc's syslog(3) sends to /dev/log)
    Rfc3164,
}

/// Syslog facility (RFC 5424 section 6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    pub enabled: bool,
    pub path: PathBuf,
    pub format: SyslogFormat,
    pub facility: Facility,
    /// The message body: Falco's text line or the JSON alert.
    pub message: Format,
    pub app_name: String,
    /// Longer messages are cut (at a character boundary).
    pub max_message_bytes: usize,
    pub min_priority: Priority,
    pub queue_size: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            enabled: false,
            path: PathBuf::from("/dev/log"),
            format: SyslogFormat::Rfc5424,
            facility: Facility::User,
            message: Format::Text,
            app_name: "rampart".into(),
            max_message_bytes: 8192,
            min_priority: Priority::Debug,
            queue_size: 1024,
        }
    }
}

impl SyslogConfig {
    fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let section = "outputs.syslog";
        if self.path.as_os_str().is_empty() {
            return Err(Error::Config { section, reason: "path is empty".into() });
        }
        let app_ok = !self.app_name.is_empty()
            && self.app_name.len() <= 48
            && self.app_name.bytes().all(|b| b.is_ascii_graphic() && b != b'[' && b != b']' && b != b':');
        if !app_ok {
            return Err(Error::Config {
                section,
                reason: format!(
                    "app_name `{}` must be 1-48 printable ascii characters without []:",
                    self.app_name
                ),
            });
        }
        if self.max_message_bytes < 64 {
            return Err(Error::Config { section, reason: "max_message_bytes must be at least 64".into() });
        }
        check_queue(section, self.queue_size)
    }
}

/// Syslog to a collector over TCP: TLS by default (RFC 5425), or plain TCP
/// (RFC 6587); messages framed by octet counting either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteSyslogConfig {
    pub enabled: bool,
    /// `host:port` of the collector (6514 is syslog over TLS).
    pub address: String,
    pub tls: bool,
    /// PEM bundle of trusted CAs; default: the bundled Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the host of
    /// `address`.
    pub server_name: Option<String>,
    /// Client certificate and key (PEM) for collectors that require them.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub format: SyslogFormat,
    pub facility: Facility,
    pub message: Format,
    pub app_name: String,
    pub max_message_bytes: usize,
    pub min_priority: Priority,
    pub queue_size: usize,
    /// Per attempt: connect, handshake and write.
    pub timeout_ms: u64,
    /// Further attempts for one alert after a failure (each on a new
    /// connection); then the alert is counted as failed.
    pub retries: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for RemoteSyslogConfig {
    fn default() -> Self {
        RemoteSyslogConfig {
            enabled: false,
            address: String::new(),
            tls: true,
            ca_file: None,
            server_name: None,
            client_cert_file: None,
            client_key_file: None,
            format: SyslogFormat::Rfc5424,
            facility: Facility::User,
            message: Format::Json,
            app_name: "rampart".into(),
            max_message_bytes: 65536,
            min_priority: Priority::Debug,
            queue_size: 10_000,
            timeout_ms: 5000,
            retries: 3,
            backoff_initial_ms: 200,
            backoff_max_ms: 5000,
        }
    }
}

impl RemoteSyslogConfig {
    /// The header and body settings, shared with the local syslog output.
    pub fn message_config(&self) -> SyslogConfig {
        SyslogConfig {
            format: self.format,
            facility: self.facility,
            message: self.message,
            app_name: self.app_name.clone(),
            max_message_bytes: self.max_message_bytes,
            ..SyslogConfig::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if !self.enabled {
            return Ok(());
        }
        let section = "outputs.remote_syslog";
        let fail = |reason: String| Err(Error::Config { section, reason });
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => return fail(format!("address `{}` must be host:port", self.address)),
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return fail("client_cert_file and client_key_file go together".into());
        }
        if !self.tls && (self.ca_file.is_some() || self.client_cert_file.is_some()) {
            return fail("ca_file and client certificates need tls: true".into());
        }
        if self.timeout_ms == 0 {
            return fail("timeout_ms must be at least 1".into());
        }
        let mut local = self.message_config();
        local.enabled = true;
        local.validate().map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config { section, reason },
            e => e,
        })?;
        check_queue(section, self.queue_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        alerts: AlertsConfig,
    }

    fn parse(yaml: &str) -> Result<AlertsConfig, String> {
        serde_yaml_ng::from_str::<AlertsConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn example_parses_and_validates() {
        let top: Top = serde_yaml_ng::from_str(EXAMPLE_CONFIG).unwrap();
        let c = top.alerts;
        c.validate().unwrap();
        // The example shows the defaults, plus sample values for the outputs that
        // are off by default.
        let mut d = c.clone();
        assert_eq!(d.outputs.file.path.take(), Some(PathBuf::from("/var/log/rampart/alerts.json")));
        assert_eq!(std::mem::take(&mut d.outputs.webhook.url), "https://siem.example.com/rampart");
        assert_eq!(d.outputs.webhook.headers.remove("Authorization").as_deref(), Some("Bearer CHANGE-ME"));
        assert_eq!(d, AlertsConfig::default());
        // Turned on, the sample values are valid.
        let mut on = c;
        on.outputs.file.enabled = true;
        on.outputs.webhook.enabled = true;
        on.outputs.syslog.enabled = true;
        on.validate().unwrap();
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(parse("{}").unwrap(), AlertsConfig::default());
        let d = AlertsConfig::default();
        assert!(d.outputs.stdout.enabled && !d.outputs.file.enabled);
        assert_eq!(d.outputs.stdout.format, Format::Text);
        assert_eq!(d.outputs.file.format, Format::Json);
        assert_eq!(d.outputs.syslog.path, PathBuf::from("/dev/log"));
        d.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (yaml, key) in [
            ("min_priorty: warning", "min_priorty"),
            ("rate_limit: {rate: 2, brust: 5}", "brust"),
            ("outputs: {stdout: {enabled: true, fromat: json}}", "fromat"),
            ("outputs: {file: {path: /x, max_size: 10}}", "max_size"),
            ("outputs: {webhook: {url: 'http://x', header: {}}}", "header"),
            ("outputs: {syslog: {facilty: local0}}", "facilty"),
            ("outputs: {kafka: {}}", "kafka"),
        ] {
            let err = parse(yaml).unwrap_err();
            assert!(err.contains(&format!("unknown field `{key}`")), "{yaml}: {err}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        let err = parse("min_priority: loud").unwrap_err();
        assert!(err.contains("unknown priority `loud`"), "{err}");
        let err = parse("outputs: {stdout: {format: xml}}").unwrap_err();
        assert!(err.contains("xml"), "{err}");
        let err = parse("outputs: {syslog: {facility: local9}}").unwrap_err();
        assert!(err.contains("local9"), "{err}");
        assert_eq!(parse("min_priority: WARN").unwrap().min_priority, Priority::Warning);
    }

    #[test]
    fn validation_errors_name_the_problem() {
        let check = |yaml: &str| parse(yaml).unwrap().validate().map_err(|e| e.to_string());
        let e = check("outputs: {file: {enabled: true}}").unwrap_err();
        assert_eq!(e, "invalid alerts config in outputs.file: path is required when enabled");
        let e = check("outputs: {webhook: {enabled: true, url: 'ftp://x/y'}}").unwrap_err();
        assert!(e.contains("`ftp://x/y`") && e.contains("scheme"), "{e}");
        let e = check("outputs: {webhook: {enabled: true, url: 'not a url'}}").unwrap_err();
        assert!(e.starts_with("invalid webhook url `not a url`"), "{e}");
        let e = check("outputs: {webhook: {enabled: true, url: 'http://'}}").unwrap_err();
        assert!(e.starts_with("invalid webhook url `http://`"), "{e}");
        let e = check("outputs: {webhook: {enabled: true, url: 'http://h', headers: {'Bad Header': x}}}")
            .unwrap_err();
        assert!(e.contains("`Bad Header`"), "{e}");
        let e = check("rate_limit: {rate: 0}").unwrap_err();
        assert!(e.contains("rate must be a positive number"), "{e}");
        check("rate_limit: {enabled: false, rate: 0}").unwrap();
        check("outputs: {webhook: {enabled: true, url: 'https://siem.example.com:8443/a?b=c'}}").unwrap();
    }

    #[test]
    fn sizes_are_bounded_with_a_clear_error() {
        let check = |yaml: &str| parse(yaml).unwrap().validate().map_err(|e| e.to_string());
        for (section, yaml) in [
            ("stdout", "outputs: {stdout: {queue_size: 1000000000}}"),
            ("file", "outputs: {file: {enabled: true, path: /x, queue_size: 1000000000}}"),
            ("webhook", "outputs: {webhook: {enabled: true, url: 'http://h', queue_size: 1000000000}}"),
            ("syslog", "outputs: {syslog: {enabled: true, queue_size: 18446744073709551615}}"),
        ] {
            let e = check(yaml).unwrap_err();
            assert!(e.contains(&format!("outputs.{section}")), "{e}");
            assert!(e.contains("is above the maximum 1000000"), "{e}");
        }
        check("outputs: {stdout: {queue_size: 1000000}}").unwrap();
        let e = check("rate_limit: {max_keys: 1000000000}").unwrap_err();
        assert!(e.contains("max_keys 1000000000 is above the maximum"), "{e}");
        // Too large for usize is a parse error, not a wrap-around.
        assert!(parse("outputs: {stdout: {queue_size: 1e9}}").is_err());
        assert!(parse("outputs: {stdout: {queue_size: 99999999999999999999999}}").is_err());
    }
}

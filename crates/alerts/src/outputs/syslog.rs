use super::{Control, Sink};
use crate::alert::{bsd_time, escape_control, rfc3339_micros};
use crate::config::{Format, SyslogConfig, SyslogFormat};
use crate::{Alert, Error};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Sends each alert as one datagram to a local syslog socket (/dev/log).
pub(crate) struct SyslogSink {
    cfg: SyslogConfig,
    hostname: String,
    pid: u32,
    sock: Option<UnixDatagram>,
}

const SEND_TIMEOUT: Duration = Duration::from_secs(1);

fn connect(path: &PathBuf) -> Result<UnixDatagram, Error> {
    let err = |source| Error::Syslog { path: path.clone(), source };
    let sock = UnixDatagram::unbound().map_err(err)?;
    sock.connect(path).map_err(err)?;
    sock.set_write_timeout(Some(SEND_TIMEOUT)).map_err(err)?;
    Ok(sock)
}

impl SyslogSink {
    /// Connects to the socket, so that a missing syslog daemon is an error at
    /// startup; later failures reconnect.
    pub fn new(cfg: &SyslogConfig, hostname: &str) -> Result<Self, Error> {
        let sock = connect(&cfg.path)?;
        Ok(SyslogSink {
            cfg: cfg.clone(),
            hostname: hostname.to_string(),
            pid: std::process::id(),
            sock: Some(sock),
        })
    }
}

/// The syslog PRI value: facility * 8 + severity.
pub(crate) fn pri(cfg: &SyslogConfig, alert: &Alert) -> u8 {
    cfg.facility.code() * 8 + alert.priority.syslog_severity()
}

/// One syslog message for `alert`, cut to `max_message_bytes`.
pub(crate) fn format_message(cfg: &SyslogConfig, hostname: &str, pid: u32, alert: &Alert) -> String {
    let body = match cfg.message {
        Format::Text => alert.to_text(),
        Format::Json => alert.to_json(),
    };
    let pri = pri(cfg, alert);
    let mut msg = match cfg.format {
        SyslogFormat::Rfc5424 => {
            // HOSTNAME is printable ASCII without spaces, at most 255 characters.
            let host: String = hostname.chars().filter(char::is_ascii_graphic).take(255).collect();
            let host = if host.is_empty() { "-".to_string() } else { host };
            format!(
                "<{pri}>1 {} {host} {} {pid} - {} {body}",
                rfc3339_micros(alert.time_ns),
                cfg.app_name,
                structured_data(alert)
            )
        }
        SyslogFormat::Rfc3164 => {
            format!("<{pri}>{} {}[{pid}]: {}", bsd_time(alert.time_ns), cfg.app_name, escape_control(&body))
        }
    };
    if msg.len() > cfg.max_message_bytes {
        let mut end = cfg.max_message_bytes;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
    }
    msg
}

/// RFC 5424 structured data naming the alert, so a collector can route on it
/// without parsing the message. 32473 is the enterprise number RFC 5612
/// reserves for documentation and examples: rampart has none of its own.
pub(crate) fn structured_data(alert: &Alert) -> String {
    format!(
        "[rampart@32473 rule=\"{}\" priority=\"{}\" source=\"{}\"]",
        sd_escape(&alert.rule),
        alert.priority.as_str(),
        sd_escape(&alert.source)
    )
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped as RFC 5424 says; control
/// characters (and the Unicode line separators) replaced, for daemons that
/// write a message per line.
fn sd_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

impl Sink for SyslogSink {
    fn write(&mut self, alert: &Alert, _ctl: &Control) -> Result<(), Error> {
        let msg = format_message(&self.cfg, &self.hostname, self.pid, alert);
        // Try the open socket, then once more on a fresh one (the syslog daemon
        // may have restarted and recreated its socket).
        let mut last = None;
        for _ in 0..2 {
            let sock = match self.sock.take() {
                Some(s) => s,
                None => connect(&self.cfg.path)?,
            };
            match sock.send(msg.as_bytes()) {
                Ok(_) => {
                    self.sock = Some(sock);
                    return Ok(());
                }
                Err(source) => last = Some(source),
            }
        }
        Err(Error::Syslog {
            path: self.cfg.path.clone(),
            source: last.unwrap_or_else(|| std::io::Error::other("send failed")),
        })
    }
}

#[cfg(test)]
mod hostile_tests {
    use super::*;
    use crate::outputs::hostile;

    /// The MSG of an RFC 5424 message: what follows its one SD-ELEMENT,
    /// read with the escapes honoured.
    pub(crate) fn after_structured_data(msg: &str) -> &str {
        let start = msg.find(" - [").expect("structured data") + 3;
        let mut escaped = false;
        for (i, c) in msg[start..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                ']' => return &msg[start + i + 2..],
                _ => {}
            }
        }
        panic!("structured data never closes: {msg}")
    }

    #[test]
    fn structured_data_names_the_rule_and_stays_one_element() {
        let mut a = hostile::alert();
        a.rule = "r\"] [forged@1 x=\"y\"\\".into();
        let sd = structured_data(&a);
        assert!(
            sd.starts_with("[rampart@32473 rule=\"r\\\"\\] [forged@1 x=\\\"y\\\"\\\\\" priority="),
            "{sd}"
        );
        let cfg = SyslogConfig { message: Format::Json, max_message_bytes: 1 << 20, ..Default::default() };
        let msg = format_message(&cfg, "h", 1, &hostile::alert());
        hostile::assert_one_json_record(after_structured_data(&msg));
    }

    #[test]
    fn hostile_fields_cannot_forge_a_message_or_line() {
        for format in [SyslogFormat::Rfc5424, SyslogFormat::Rfc3164] {
            for message in [Format::Text, Format::Json] {
                let cfg = SyslogConfig { format, message, max_message_bytes: 1 << 20, ..Default::default() };
                let msg = format_message(&cfg, "host\nforged", 1, &hostile::alert());
                // A datagram is one message; still, no line breaks for daemons
                // that log it line by line, and no raw controls for terminals.
                assert!(
                    !msg.chars().any(|c| c.is_control() || c == '\u{2028}'),
                    "{format:?} {message:?}: {msg:?}"
                );
                if format == SyslogFormat::Rfc5424 {
                    assert!(msg.contains(" hostforged "), "the hostname keeps its printable part: {msg}");
                }
                if message == Format::Json && format == SyslogFormat::Rfc5424 {
                    hostile::assert_one_json_record(after_structured_data(&msg));
                }
            }
        }
        // Cut to the limit without splitting a character.
        let cfg = SyslogConfig { max_message_bytes: 100, ..Default::default() };
        assert!(format_message(&cfg, "h", 1, &hostile::alert()).len() <= 100);
    }
}

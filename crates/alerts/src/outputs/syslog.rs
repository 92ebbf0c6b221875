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
            format!("<{pri}>1 {} {host} {} {pid} - - {body}", rfc3339_micros(alert.time_ns), cfg.app_name)
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
                    hostile::assert_one_json_record(msg.split_once(" - - ").unwrap().1);
                }
            }
        }
        // Cut to the limit without splitting a character.
        let cfg = SyslogConfig { max_message_bytes: 100, ..Default::default() };
        assert!(format_message(&cfg, "h", 1, &hostile::alert()).len() <= 100);
    }
}

//! The alert record, in the JSON shape Falco emits.

use crate::Priority;
use model::{Container, Event};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Falco's `source` for syscall rules.
pub const SOURCE_SYSCALL: &str = "syscall";

/// One alert: a rule matched an event.
///
/// Serializes to Falco's JSON alert shape (`time`, `rule`, `priority`, `output`,
/// `output_fields`, `tags`, `source`, `hostname`), so tools that consume Falco's
/// JSON (falcosidekick, SIEM parsers) read it unchanged; rampart adds
/// `suppressed` (how many alerts of the same rule and container the rate limiter
/// held back since the previous one that went out), `container` and `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Event time, nanoseconds since the Unix epoch; in JSON an RFC 3339 UTC
    /// timestamp with nanoseconds (`2026-11-28T12:00:00.123456789Z`).
    #[serde(rename = "time", with = "time_serde")]
    pub time_ns: u64,
    pub rule: String,
    pub priority: Priority,
    /// Rendered text, prefixed like Falco's: `12:00:00.123456789: Warning <text>`
    /// (the clock time is UTC).
    pub output: String,
    /// The fields the output text refers to, by Falco field name.
    #[serde(default)]
    pub output_fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "default_source")]
    pub source: String,
    /// Filled in by the dispatcher when left empty.
    #[serde(default)]
    pub hostname: String,
    /// Alerts of the same rule and container suppressed by rate limiting or
    /// de-duplication since the previous alert of that pair was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Arc<Container>>,
    /// The event that matched; removed by the dispatcher unless
    /// `include_event` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<Event>>,
}

fn default_source() -> String {
    SOURCE_SYSCALL.to_string()
}

impl Alert {
    /// An alert with `text` (the rule's rendered output) prefixed as Falco does.
    pub fn new(time_ns: u64, rule: impl Into<String>, priority: Priority, text: &str) -> Alert {
        Alert {
            time_ns,
            rule: rule.into(),
            priority,
            output: format!("{}: {} {}", clock_time(time_ns), priority, text),
            output_fields: BTreeMap::new(),
            tags: Vec::new(),
            source: default_source(),
            hostname: String::new(),
            suppressed: None,
            container: None,
            event: None,
        }
    }

    /// An alert about `event`: its time and container, and a copy of the event.
    pub fn for_event(event: &Event, rule: impl Into<String>, priority: Priority, text: &str) -> Alert {
        let mut a = Alert::new(event.ts_ns, rule, priority, text);
        a.container = event.container.clone();
        a.event = Some(Box::new(event.clone()));
        a
    }

    pub fn with_output_fields(mut self, fields: BTreeMap<String, Value>) -> Self {
        self.output_fields = fields;
        self
    }

    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.output_fields.insert(name.into(), value.into());
        self
    }

    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_container(mut self, container: Option<Arc<Container>>) -> Self {
        self.container = container;
        self
    }

    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = hostname.into();
        self
    }

    /// The rule's text without the time and priority prefix.
    pub fn text(&self) -> &str {
        // The prefix is "<clock>: <Priority> "; fall back to the whole output for
        // alerts built by hand or read from elsewhere.
        let Some((_, rest)) = self.output.split_once(": ") else { return &self.output };
        rest.strip_prefix(self.priority.as_str()).and_then(|r| r.strip_prefix(' ')).unwrap_or(&self.output)
    }

    /// The id of the container the alert is about: the `container` field, else
    /// the event's container, else `container.id` in the output fields.
    pub fn container_id(&self) -> Option<&str> {
        if let Some(c) = &self.container {
            return Some(&c.id);
        }
        if let Some(c) = self.event.as_ref().and_then(|e| e.container.as_ref()) {
            return Some(&c.id);
        }
        match self.output_fields.get("container.id") {
            Some(Value::String(id)) if id != "host" => Some(id),
            _ => None,
        }
    }

    /// One line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail; keep a fallback
        // that is still valid JSON rather than panicking.
        let json = serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({ "rule": self.rule, "error": format!("cannot serialize alert: {e}") })
                .to_string()
        });
        escape_json_extra(json)
    }

    /// The text form, as Falco prints it: the prefixed output, with control
    /// characters escaped so hostile names cannot forge lines, and a note of
    /// the suppressed count.
    pub fn to_text(&self) -> String {
        let mut s = escape_control(&self.output);
        if let Some(n) = self.suppressed.filter(|n| *n > 0) {
            let _ = write!(s, " (suppressed {n} similar alerts)");
        }
        s
    }
}

/// Characters that end or hide a line besides the controls: Unicode line
/// and paragraph separators (some log viewers break lines at them).
fn breaks_line(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// serde_json escapes C0 controls only: DEL, C1 (0x9b is a terminal's CSI)
/// and the Unicode line separators go out raw. They can only occur inside
/// JSON strings, where `\uXXXX` is the same character.
fn escape_json_extra(json: String) -> String {
    if !json.chars().any(breaks_line) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if breaks_line(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` with control characters written as escapes (`\n`, `\t`, `\x1b`, ...).
pub(crate) fn escape_control(s: &str) -> String {
    if !s.chars().any(breaks_line) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if breaks_line(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

pub use model::utc::rfc3339_nanos;

/// RFC 3339 UTC with microseconds, as RFC 5424 allows at most 6 fraction digits.
pub(crate) fn rfc3339_micros(ts_ns: u64) -> String {
    // The nanosecond form is fixed-width: drop its last three digits.
    let nanos = rfc3339_nanos(ts_ns);
    format!("{}Z", &nanos[..nanos.len() - 4])
}

/// RFC 3164 timestamp: `Nov  8 12:00:00` (UTC).
pub(crate) fn bsd_time(ts_ns: u64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = model::utc::utc(ts_ns);
    let month = MONTHS[usize::from(u8::from(t.month())).saturating_sub(1).min(11)];
    format!("{} {:>2} {:02}:{:02}:{:02}", month, t.day(), t.hour(), t.minute(), t.second())
}

/// Falco's output prefix clock: `12:00:00.123456789` (UTC).
pub fn clock_time(ts_ns: u64) -> String {
    model::utc::utc_parts(ts_ns).1
}

mod time_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ts_ns: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_nanos(*ts_ns))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        use serde::de::Error;
        let s = String::deserialize(d)?;
        let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| D::Error::custom(format!("invalid time `{s}`: {e}")))?;
        u64::try_from(t.unix_timestamp_nanos())
            .map_err(|_| D::Error::custom(format!("time `{s}` is before 1970")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28T12:00:00.123456789Z
    const TS: u64 = 1_795_867_200_123_456_789;

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339_nanos(TS), "2026-11-28T12:00:00.123456789Z");
        assert_eq!(rfc3339_micros(TS), "2026-11-28T12:00:00.123456Z");
        assert_eq!(clock_time(TS), "12:00:00.123456789");
        assert_eq!(bsd_time(TS), "Nov 28 12:00:00");
        assert_eq!(bsd_time(TS - 20 * 86_400 * 1_000_000_000), "Nov  8 12:00:00");
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn falco_json_shape() {
        let c = Arc::new(Container { id: "abc123".into(), name: "web".into(), ..Default::default() });
        let a = Alert::new(
            TS,
            "Terminal shell in container",
            Priority::Notice,
            "A shell was spawned (user=root)",
        )
        .with_field("container.id", "abc123")
        .with_field("proc.pid", 42)
        .with_field("user.name", Value::Null)
        .with_tags(["container", "shell", "mitre_execution"])
        .with_container(Some(c))
        .with_hostname("node-1");
        let v: Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["time"], "2026-11-28T12:00:00.123456789Z");
        assert_eq!(v["rule"], "Terminal shell in container");
        assert_eq!(v["priority"], "Notice");
        assert_eq!(v["output"], "12:00:00.123456789: Notice A shell was spawned (user=root)");
        assert_eq!(v["output_fields"]["container.id"], "abc123");
        assert_eq!(v["output_fields"]["proc.pid"], 42);
        assert_eq!(v["output_fields"]["user.name"], Value::Null);
        assert_eq!(v["tags"], serde_json::json!(["container", "shell", "mitre_execution"]));
        assert_eq!(v["source"], "syscall");
        assert_eq!(v["hostname"], "node-1");
        assert_eq!(v["container"]["name"], "web");
        assert!(v.get("event").is_none());
        assert!(v.get("suppressed").is_none());
        // Round trip.
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.text(), "A shell was spawned (user=root)");
        assert_eq!(back.container_id(), Some("abc123"));
    }

    #[test]
    fn reads_a_falco_alert() {
        let falco = r#"{"hostname":"h","output":"16:31:56.746609046: Warning Sensitive file opened (file=/etc/shadow)","output_fields":{"evt.time":1618590716746609046,"fd.name":"/etc/shadow"},"priority":"Warning","rule":"Read sensitive file untrusted","source":"syscall","tags":["filesystem"],"time":"2021-04-16T16:31:56.746609046Z"}"#;
        let a: Alert = serde_json::from_str(falco).unwrap();
        assert_eq!(a.priority, Priority::Warning);
        assert_eq!(a.time_ns, 1_618_590_716_746_609_046);
        assert_eq!(a.text(), "Sensitive file opened (file=/etc/shadow)");
        assert_eq!(clock_time(a.time_ns), "16:31:56.746609046");
    }

    #[test]
    fn text_escapes_control_characters_and_reports_suppressed() {
        let mut a = Alert::new(TS, "r", Priority::Warning, "file=/tmp/x\nfake line\x1b[0m");
        a.suppressed = Some(7);
        assert_eq!(
            a.to_text(),
            "12:00:00.123456789: Warning file=/tmp/x\\nfake line\\x1b[0m (suppressed 7 similar alerts)"
        );
        let v: Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v["suppressed"], 7);
    }
}

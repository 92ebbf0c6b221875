//! Rule and alert priority, with Falco's names and order (one type for the
//! rules engine, alerts and outputs).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// How urgent an alert is. Ordered so that `Emergency` is the greatest:
/// `alert.priority >= min_priority` keeps alerts at or above a threshold.
///
/// Displayed and serialized with Falco's capitalisation (`Warning`,
/// `Informational`, ...); parsed case-insensitively, also accepting Falco's and
/// syslog's short forms (`info`, `warn`, `err`, `crit`, `emerg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    #[default]
    Debug,
    Informational,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Priority {
    /// All priorities, from the most urgent down.
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// Falco's name for the priority, as it appears in alert JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// The syslog severity (RFC 5424 section 6.2.1): 0 emergency .. 7 debug.
    pub fn syslog_severity(self) -> u8 {
        match self {
            Priority::Emergency => 0,
            Priority::Alert => 1,
            Priority::Critical => 2,
            Priority::Error => 3,
            Priority::Warning => 4,
            Priority::Notice => 5,
            Priority::Informational => 6,
            Priority::Debug => 7,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A priority name that is not one of Falco's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}`, expected one of emergency, alert, critical, error, warning, notice, informational (info), debug")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let p = match s.trim().to_ascii_lowercase().as_str() {
            "emergency" | "emerg" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" | "crit" => Priority::Critical,
            "error" | "err" => Priority::Error,
            "warning" | "warn" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return Err(UnknownPriority(s.to_string())),
        };
        Ok(p)
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Priority;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a priority name such as `warning`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Priority, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_parse_display() {
        assert!(Priority::Emergency > Priority::Alert);
        assert!(Priority::Warning > Priority::Notice);
        assert!(Priority::Informational > Priority::Debug);
        let mut sorted = Priority::ALL;
        sorted.sort();
        sorted.reverse();
        assert_eq!(sorted, Priority::ALL);
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(p));
            assert_eq!(p.as_str().to_uppercase().parse::<Priority>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
            assert_eq!(usize::from(p.syslog_severity()), Priority::ALL.iter().position(|q| *q == p).unwrap());
        }
        assert_eq!("INFO".parse::<Priority>(), Ok(Priority::Informational));
        assert_eq!("warn".parse::<Priority>(), Ok(Priority::Warning));
        let err = "loud".parse::<Priority>().unwrap_err();
        assert!(err.to_string().contains("`loud`"), "{err}");
        assert_eq!(serde_json::to_string(&Priority::Warning).unwrap(), "\"Warning\"");
        assert_eq!(serde_json::from_str::<Priority>("\"CRITICAL\"").unwrap(), Priority::Critical);
    }
}

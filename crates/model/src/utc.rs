//! Event times (nanoseconds since the Unix epoch) as UTC text, the one place
//! rampart turns a timestamp into a date (with the `time` crate).

fn datetime(ts_ns: u64) -> time::OffsetDateTime {
    // u64 nanoseconds end in 2554, well inside time's range.
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `(date "YYYY-MM-DD", time "HH:MM:SS.nnnnnnnnn")` in UTC.
pub fn utc_parts(ts_ns: u64) -> (String, String) {
    let t = datetime(ts_ns);
    (
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        format!("{:02}:{:02}:{:02}.{:09}", t.hour(), t.minute(), t.second(), t.nanosecond()),
    )
}

/// RFC 3339 UTC with nanoseconds: `2026-11-28T12:00:00.123456789Z`.
pub fn rfc3339_nanos(ts_ns: u64) -> String {
    let (date, time) = utc_parts(ts_ns);
    format!("{date}T{time}Z")
}

/// The broken-down UTC time, for other formats (syslog's RFC 3164 stamp).
pub fn utc(ts_ns: u64) -> time::OffsetDateTime {
    datetime(ts_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc_parts(0), ("1970-01-01".to_string(), "00:00:00.000000000".to_string()));
        assert_eq!(utc_parts(1_700_000_000_123_456_789).0, "2023-11-14");
        assert_eq!(utc_parts(1_700_000_000_123_456_789).1, "22:13:20.123456789");
        assert_eq!(rfc3339_nanos(1_795_867_200_123_456_789), "2026-11-28T12:00:00.123456789Z");
        // Leap day, and the last representable instant.
        assert_eq!(rfc3339_nanos(951_782_400_000_000_001), "2000-02-29T00:00:00.000000001Z");
        assert_eq!(rfc3339_nanos(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }
}

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

/// Parses an RFC 3339 time (`2024-05-01T10:00:00.123456789Z`, or with an
/// offset `+02:00`) as runtimes report them, to ns since the epoch; `None` for
/// anything else and for times before the epoch (Docker's zero time
/// `0001-01-01T00:00:00Z`).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset_s: i64 = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let oh = i64::from(num(i + 1..i + 3)?);
            let om = i64::from(num(i + 4..i + 6)?);
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    let dt = date
        .with_hms_nano(u8::try_from(h).ok()?, u8::try_from(mi).ok()?, u8::try_from(sec).ok()?, nanos)
        .ok()?
        .assume_utc();
    let ns = dt.unix_timestamp_nanos() - i128::from(offset_s) * 1_000_000_000;
    u64::try_from(ns).ok()
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

    #[test]
    fn parses_runtime_times() {
        assert_eq!(parse_rfc3339("2026-11-28T12:00:00.123456789Z"), Some(1_795_867_200_123_456_789));
        assert_eq!(parse_rfc3339("2026-11-28T12:00:00Z"), Some(1_795_867_200_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-28T14:00:00.5+02:00"), Some(1_795_867_200_500_000_000));
        // more than 9 fraction digits: cut
        assert_eq!(parse_rfc3339("2026-11-28T12:00:00.1234567891Z"), Some(1_795_867_200_123_456_789));
        for bad in [
            "",
            "0001-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-28T12:00:00",
            "2026-11-28T12:00:00.Z",
            "x026-11-28T12:00:00Z",
            "2026-11-28T12:00:00+0200",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}

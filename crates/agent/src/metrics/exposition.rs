//! The Prometheus text format (0.0.4) and OpenMetrics 1.0 text, written by
//! hand: every value here is a snapshot taken at scrape time, and label
//! values (rule names, container names, runtime errors) come from other
//! people's files and from containers, so they are escaped here, in one place.
//! (prometheus-client 0.24 writes label values as given.)

use std::fmt::Write;

/// Which text format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// From the request's `Accept` header: OpenMetrics only when asked for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Label pairs of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// One exposition being written.
pub struct Exposition {
    out: String,
    format: Format,
}

impl Exposition {
    pub fn new(format: Format) -> Self {
        Exposition { out: String::with_capacity(16 * 1024), format }
    }

    /// A counter family; `name` without the `_total` suffix.
    pub fn counter<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, u64)>,
    ) {
        let sample = self.counter_header(name, help);
        for (labels, v) in samples {
            self.sample(&sample, labels, &v.to_string());
        }
    }

    /// A counter of a real quantity (e.g. CPU seconds).
    pub fn counter_f64<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        let sample = self.counter_header(name, help);
        for (labels, v) in samples {
            self.sample(&sample, labels, &fmt_f64(v));
        }
    }

    pub fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        self.header(name, help, "gauge");
        for (labels, v) in samples {
            self.sample(name, labels, &fmt_f64(v));
        }
    }

    /// A histogram family: per label set, cumulative (upper bound, count)
    /// pairs in increasing order, the total count and the sum. `+Inf` is
    /// written from the total.
    pub fn histogram<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, Vec<(f64, u64)>, u64, f64)>,
    ) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (labels, buckets, count, sum) in samples {
            let bounds: Vec<String> = buckets.iter().map(|(le, _)| fmt_f64(*le)).collect();
            for ((_, n), le) in buckets.iter().zip(&bounds) {
                let mut with_le: Vec<(&str, &str)> = labels.to_vec();
                with_le.push(("le", le));
                self.sample(&bucket, &with_le, &n.to_string());
            }
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", "+Inf"));
            self.sample(&bucket, &with_le, &count.to_string());
            self.sample(&format!("{name}_count"), labels, &count.to_string());
            self.sample(&format!("{name}_sum"), labels, &fmt_f64(sum));
        }
    }

    /// Writes a counter's HELP and TYPE; returns its samples' name.
    fn counter_header(&mut self, name: &str, help: &str) -> String {
        // OpenMetrics names the family without `_total`; Prometheus 0.0.4
        // names it as its samples are named.
        let sample = format!("{name}_total");
        let family = match self.format {
            Format::OpenMetrics => name,
            Format::Prometheus => &sample,
        };
        self.header(&family.to_string(), help, "counter");
        sample
    }

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    fn header(&mut self, family: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {family} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: Labels<'_>, value: &str) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_into(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }
}

/// Backslash, double quote and newline escaped (both formats); other control
/// characters are kept out too, as `\n` would be, so that a hostile name
/// cannot end a line or forge a sample.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// One sample read back from an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The samples of a text exposition (either format), for `rampart top`
/// reading a running agent. Comments, and lines it cannot read, are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let split = line.find(['{', ' '])?;
    let (name, mut rest) = (&line[..split], &line[split..]);
    let mut labels = Vec::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            r = r.trim_start_matches(',');
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=')?;
            let key = r[..eq].to_string();
            r = r[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let close = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key, value));
            r = &r[close + 1..];
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name: name.to_string(), labels, value })
}

fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_samples() {
        let mut e = Exposition::new(Format::Prometheus);
        e.counter("rampart_events", "Events.", [(&[][..], 7)]);
        e.gauge("rampart_up", "Up.", [(&[("component", "sensor")][..], 1.0)]);
        assert_eq!(
            e.finish(),
            "# HELP rampart_events_total Events.\n# TYPE rampart_events_total counter\nrampart_events_total 7\n\
             # HELP rampart_up Up.\n# TYPE rampart_up gauge\nrampart_up{component=\"sensor\"} 1\n"
        );
    }

    #[test]
    fn openmetrics_names_families_without_total_and_ends_with_eof() {
        let mut e = Exposition::new(Format::OpenMetrics);
        e.counter("rampart_events", "Events.", [(&[][..], 7)]);
        let text = e.finish();
        assert!(text.starts_with(
            "# HELP rampart_events Events.\n# TYPE rampart_events counter\nrampart_events_total 7\n"
        ));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn histograms_have_cumulative_buckets_inf_count_and_sum() {
        let mut e = Exposition::new(Format::Prometheus);
        let labels = [("name", "web")];
        e.histogram(
            "rampart_wait_seconds",
            "Waits.",
            [(&labels[..], vec![(0.000002, 3), (0.000004, 5)], 6, 0.25)],
        );
        assert_eq!(
            e.finish(),
            "# HELP rampart_wait_seconds Waits.\n# TYPE rampart_wait_seconds histogram\n\
             rampart_wait_seconds_bucket{name=\"web\",le=\"0.000002\"} 3\n\
             rampart_wait_seconds_bucket{name=\"web\",le=\"0.000004\"} 5\n\
             rampart_wait_seconds_bucket{name=\"web\",le=\"+Inf\"} 6\n\
             rampart_wait_seconds_count{name=\"web\"} 6\nrampart_wait_seconds_sum{name=\"web\"} 0.25\n"
        );
    }

    #[test]
    fn hostile_label_values_stay_inside_their_quotes() {
        let mut e = Exposition::new(Format::Prometheus);
        let name = "x\"} 1\nrampart_forged 99\n\\\u{7}";
        e.counter("rampart_rule_matches", "Matches.", [(&[("rule", name)][..], 1)]);
        let text = e.finish();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains(r#"rule="x\"} 1\nrampart_forged 99\n\\?"} 1"#), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("rampart_forged")));
    }

    #[test]
    fn what_is_written_reads_back() {
        let hostile = "a\"b\\c\nd,e=f}";
        let mut e = Exposition::new(Format::OpenMetrics);
        e.counter("rampart_x", "X.", [(&[("rule", hostile), ("priority", "Error")][..], 3)]);
        e.gauge("rampart_y", "Y.", [(&[][..], 0.5)]);
        let samples = parse(&e.finish());
        assert_eq!(
            samples,
            vec![
                Sample {
                    name: "rampart_x_total".into(),
                    labels: vec![("rule".into(), hostile.into()), ("priority".into(), "Error".into())],
                    value: 3.0
                },
                Sample { name: "rampart_y".into(), labels: vec![], value: 0.5 },
            ]
        );
        assert_eq!(samples[0].label("priority"), Some("Error"));
        assert!(parse("broken{a=\"x 1\nok 2\n").iter().all(|s| s.name == "ok"));
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain;version=0.0.4")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")),
            Format::OpenMetrics
        );
    }

    #[test]
    fn floats_are_written_as_prometheus_reads_them() {
        assert_eq!(fmt_f64(3.0), "3");
        assert_eq!(fmt_f64(0.25), "0.25");
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
        assert_eq!(fmt_f64(f64::NAN), "NaN");
    }
}

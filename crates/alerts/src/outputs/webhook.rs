use super::{Control, Sink};
use crate::config::WebhookConfig;
use crate::{Alert, Error};
use std::sync::atomic::Ordering;
use std::time::Duration;
use ureq::http::{HeaderName, HeaderValue, Uri};

/// Checks that `url` is an absolute http or https URL with a host.
pub(crate) fn check_url(url: &str) -> Result<Uri, Error> {
    let bad = |reason: String| Error::InvalidUrl { url: url.to_string(), reason };
    let uri: Uri = url.parse().map_err(|e: ureq::http::uri::InvalidUri| bad(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(bad(format!("scheme `{other}` is not http or https"))),
        None => return Err(bad("no scheme: it must start with http:// or https://".into())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    Ok(uri)
}

/// Checks a header name and value; the value is not echoed (it may be a secret).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let bad = |reason: &str| Error::InvalidHeader { name: name.to_string(), reason: reason.to_string() };
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("not a valid header name"))?;
    HeaderValue::from_str(value).map_err(|_| bad("value has characters not allowed in a header"))?;
    Ok(())
}

/// `scheme://host:port` of a URL, for logs: paths and queries of webhooks often
/// carry secrets.
fn redacted(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    match uri.port_u16() {
        Some(p) => format!("{scheme}://{}:{p}", uri.host().unwrap_or("")),
        None => format!("{scheme}://{}", uri.host().unwrap_or("")),
    }
}

/// POSTs each alert as JSON, retrying failures with exponential backoff.
pub(crate) struct WebhookSink {
    agent: ureq::Agent,
    url: String,
    target: String,
    headers: Vec<(String, String)>,
    retries: u32,
    backoff_initial: Duration,
    backoff_max: Duration,
}

/// The part of a response body read (and discarded) so the connection can be reused.
const RESPONSE_LIMIT: u64 = 64 * 1024;

impl WebhookSink {
    pub fn new(cfg: &WebhookConfig) -> Result<Self, Error> {
        let uri = check_url(&cfg.url)?;
        for (name, value) in &cfg.headers {
            check_header(name, value)?;
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &cfg.ca_file {
            let ca_err = |reason: String| Error::CaFile { path: path.clone(), reason };
            let pem = model::input::read_bytes(path, model::input::limits::CA_BUNDLE)
                .map_err(|e| ca_err(e.to_string()))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| ca_err(e.to_string()))? {
                    certs.push(c);
                }
            }
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in it".into()));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(cfg.timeout_ms)))
            .http_status_as_error(false)
            // A redirect of a POST is a misconfiguration: report its status.
            .max_redirects(0)
            .user_agent(format!("rampart/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(WebhookSink {
            agent: config.into(),
            url: cfg.url.clone(),
            target: redacted(&uri),
            headers: cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            retries: cfg.retries,
            backoff_initial: Duration::from_millis(cfg.backoff_initial_ms),
            backoff_max: Duration::from_millis(cfg.backoff_max_ms.max(cfg.backoff_initial_ms)),
        })
    }

    /// One POST. `Err((error, retryable))` on failure.
    fn post(&self, body: &str) -> Result<(), (Error, bool)> {
        let mut req = self.agent.post(&self.url).header("content-type", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let _ = resp.body_mut().with_config().limit(RESPONSE_LIMIT).read_to_vec();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                // Retry what may pass later: server errors, timeouts, throttling.
                let retryable = status >= 500 || status == 408 || status == 425 || status == 429;
                Err((Error::WebhookStatus { url: self.target.clone(), status }, retryable))
            }
            Err(e) => Err((Error::Webhook { url: self.target.clone(), reason: e.to_string() }, true)),
        }
    }
}

impl Sink for WebhookSink {
    fn write(&mut self, alert: &Alert, ctl: &Control) -> Result<(), Error> {
        let body = alert.to_json();
        let mut backoff = self.backoff_initial;
        let mut attempt = 0;
        loop {
            let (err, retryable) = match self.post(&body) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !retryable || attempt >= self.retries || ctl.aborted() {
                return Err(err);
            }
            tracing::debug!(url = %self.target, attempt, error = %err, "webhook attempt failed, retrying");
            if !ctl.sleep(backoff) {
                return Err(err);
            }
            backoff = (backoff * 2).min(self.backoff_max);
            attempt += 1;
            ctl.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("https://siem.example.com/hook?token=1").is_ok());
        for bad in ["", "127.0.0.1:80", "ftp://h/x", "http://", "http:///x", "https://exa mple.com/"] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid webhook url `{bad}`: ")), "{e}");
        }
        let uri = check_url("https://user:secret@h.example:8443/path/secret?k=v").unwrap();
        assert_eq!(redacted(&uri), "https://h.example:8443");
    }

    #[test]
    fn hostile_fields_stay_inside_one_json_body() {
        // The body posted is the alert's JSON: one object, escapes intact.
        crate::outputs::hostile::assert_one_json_record(&crate::outputs::hostile::alert().to_json());
    }

    /// Falco's `json_output` alert, as falcosidekick and other Falco alert
    /// pipelines read it (falcosidekick's `types.FalcoPayload`): each field
    /// and the JSON type it must have. falcosidekick adds its own `uuid`.
    const FALCO_ALERT_FIELDS: [(&str, &str); 8] = [
        ("output", "string"),
        ("priority", "string"),
        ("rule", "string"),
        ("time", "string"),
        ("output_fields", "object"),
        ("source", "string"),
        ("tags", "array"),
        ("hostname", "string"),
    ];

    fn json_type(v: &serde_json::Value) -> &'static str {
        match v {
            serde_json::Value::String(_) => "string",
            serde_json::Value::Object(_) => "object",
            serde_json::Value::Array(_) => "array",
            _ => "other",
        }
    }

    /// Accepts one HTTP request on `listener`, answers 200, returns its body.
    fn capture_one_post(listener: std::net::TcpListener) -> std::thread::JoinHandle<String> {
        use std::io::{BufRead, BufReader, Read, Write};
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut r = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            r.read_exact(&mut body).unwrap();
            r.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            String::from_utf8(body).unwrap()
        })
    }

    #[test]
    fn the_posted_body_is_a_falco_json_alert() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = capture_one_post(listener);
        let cfg = WebhookConfig { url, ..Default::default() };
        let alert = Alert::new(
            1_764_936_000_123_456_789,
            "Terminal shell in container",
            model::Priority::Notice,
            "shell",
        )
        .with_field("proc.cmdline", "sh -i")
        .with_tags(["container".to_string(), "shell".to_string()])
        .with_hostname("node-1".to_string());
        WebhookSink::new(&cfg).unwrap().write(&alert, &Control::for_tests()).unwrap();
        let body: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
        for (field, ty) in FALCO_ALERT_FIELDS {
            assert_eq!(json_type(&body[field]), ty, "`{field}` in {body}");
        }
        // The values as Falco writes them: capitalised priority, RFC 3339 UTC
        // time with nanoseconds, the text prefixed with the clock time.
        assert_eq!(body["priority"], "Notice");
        assert_eq!(body["time"], "2025-12-05T12:00:00.123456789Z");
        assert_eq!(body["output"], "12:00:00.123456789: Notice shell");
        assert_eq!(body["rule"], "Terminal shell in container");
        assert_eq!(body["source"], "syscall");
        assert_eq!(body["hostname"], "node-1");
        assert_eq!(body["tags"], serde_json::json!(["container", "shell"]));
        assert_eq!(body["output_fields"]["proc.cmdline"], "sh -i");
    }
}

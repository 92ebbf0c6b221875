//! The outputs for real: files in a temp dir, HTTP servers and a syslog socket
//! on loopback / a temp path.

use alerts::{Alert, AlertsConfig, Dispatcher, Emitted, Facility, Format, Priority, SyslogFormat};
use model::Container;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// 2026-11-28T12:00:00.123456789Z
const TS: u64 = 1_795_867_200_123_456_789;

fn alert(rule: &str, text: &str) -> Alert {
    let c =
        Arc::new(Container { id: "c0ffee".repeat(10) + "abcd", name: "web".into(), ..Default::default() });
    Alert::new(TS, rule, Priority::Warning, text)
        .with_field("container.id", c.short_id())
        .with_field("proc.name", "sh")
        .with_tags(["container", "mitre_execution"])
        .with_container(Some(c))
}

/// Outputs all off, rate limiting off: tests turn on what they test.
fn quiet_config() -> AlertsConfig {
    let mut cfg = AlertsConfig::default();
    cfg.outputs.stdout.enabled = false;
    cfg.rate_limit.enabled = false;
    cfg.hostname = Some("test-host".into());
    cfg
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(String::from).collect()
    }
}

#[test]
fn stdout_json_has_falcos_shape() {
    let mut cfg = quiet_config();
    cfg.outputs.stdout.enabled = true;
    cfg.outputs.stdout.format = Format::Json;
    let buf = Buf::default();
    let d = Dispatcher::with_stdout_writer(&cfg, Box::new(buf.clone())).unwrap();
    assert_eq!(
        d.emit(alert("Shell in container", "shell spawned (proc=sh)")),
        Emitted::Queued { outputs: 1, dropped: 0 }
    );
    let stats = d.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(stats.outputs["stdout"].sent, 1);
    let lines = buf.lines();
    assert_eq!(lines.len(), 1);
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in
        ["time", "rule", "priority", "output", "output_fields", "tags", "source", "hostname", "container"]
    {
        assert!(keys.contains(&k), "missing {k} in {keys:?}");
    }
    assert_eq!(v["time"], "2026-11-28T12:00:00.123456789Z");
    assert_eq!(v["priority"], "Warning");
    assert_eq!(v["output"], "12:00:00.123456789: Warning shell spawned (proc=sh)");
    assert_eq!(v["output_fields"]["proc.name"], "sh");
    assert_eq!(v["output_fields"]["container.id"], "c0ffeec0ffee");
    assert_eq!(v["source"], "syscall");
    assert_eq!(v["hostname"], "test-host");
    assert_eq!(v["tags"][1], "mitre_execution");
}

#[test]
fn stdout_text_is_falcos_line() {
    let mut cfg = quiet_config();
    cfg.outputs.stdout.enabled = true;
    let buf = Buf::default();
    let d = Dispatcher::with_stdout_writer(&cfg, Box::new(buf.clone())).unwrap();
    d.emit(alert("r", "shell spawned (proc=sh)"));
    // Below the output's minimum: not written.
    let mut cfg2 = cfg.clone();
    cfg2.outputs.stdout.min_priority = Priority::Error;
    let buf2 = Buf::default();
    let d2 = Dispatcher::with_stdout_writer(&cfg2, Box::new(buf2.clone())).unwrap();
    assert_eq!(d2.emit(alert("r", "x")), Emitted::BelowMinPriority);
    d.shutdown_blocking(Duration::from_secs(5));
    let s2 = d2.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(buf.lines(), ["12:00:00.123456789: Warning shell spawned (proc=sh)"]);
    assert!(buf2.lines().is_empty());
    assert_eq!(s2.below_min_priority, 1);
}

#[test]
fn file_appends_and_rotates_keeping_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    let mut cfg = quiet_config();
    cfg.outputs.file.enabled = true;
    cfg.outputs.file.path = Some(path.clone());
    cfg.outputs.file.max_size_mb = 1;
    cfg.outputs.file.max_files = 2;
    cfg.outputs.file.queue_size = 10_000;

    // Appends to what is there.
    let d = Dispatcher::new(&cfg).unwrap();
    d.emit(alert("r", "first"));
    d.shutdown_blocking(Duration::from_secs(5));
    let content = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], "{\"earlier\":true}");
    let v: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(v["rule"], "r");

    // ~1.5 KiB alerts: 4000 of them are ~6 MiB, so the file rotates several times.
    let d = Dispatcher::new(&cfg).unwrap();
    let pad = "x".repeat(1000);
    for i in 0..4000 {
        d.emit(alert("r", &format!("alert {i} {pad}")));
    }
    let stats = d.shutdown_blocking(Duration::from_secs(20));
    assert_eq!(stats.outputs["file"].sent, 4000);
    assert_eq!(stats.outputs["file"].dropped, 0);
    let limit = 1024 * 1024;
    let mut total = 0;
    for p in [path.clone(), dir.path().join("alerts.json.1"), dir.path().join("alerts.json.2")] {
        let meta = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(meta.len() <= limit, "{} is {} bytes", p.display(), meta.len());
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap(); // whole lines only
        }
        total += text.lines().count();
    }
    assert!(!dir.path().join("alerts.json.3").exists());
    // The newest alerts are in the current file, the last one last.
    let current = std::fs::read_to_string(&path).unwrap();
    assert!(current.lines().last().unwrap().contains("alert 3999 "));
    let older = std::fs::read_to_string(dir.path().join("alerts.json.1")).unwrap();
    let first_current: Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    let last_older: Value = serde_json::from_str(older.lines().last().unwrap()).unwrap();
    let n =
        |v: &Value| -> usize { v["output"].as_str().unwrap().split(' ').nth(3).unwrap().parse().unwrap() };
    assert_eq!(n(&last_older) + 1, n(&first_current));
    // Three files of at most 1 MiB hold the newest alerts, the rest are gone.
    assert!(total > 1000 && total < 4000, "{total}");
}

#[test]
fn file_that_cannot_be_created_is_an_error_at_start() {
    let mut cfg = quiet_config();
    cfg.outputs.file.enabled = true;
    cfg.outputs.file.path = Some("/nonexistent-dir/alerts.json".into());
    let e = Dispatcher::new(&cfg).err().unwrap().to_string();
    assert!(e.starts_with("cannot open alert file /nonexistent-dir/alerts.json: "), "{e}");
}

/// One request as the test server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A tiny HTTP/1.1 server on 127.0.0.1: answers each request with the next
/// status from `statuses` (200 when empty), keeps connections alive.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

fn read_request(r: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body: String::from_utf8(body).ok()? })
}

fn server(statuses: Vec<u16>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let reqs = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (reqs, statuses) = (reqs.clone(), statuses.clone());
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                while let Some(req) = read_request(&mut r) {
                    reqs.lock().unwrap().push(req);
                    let status = statuses.lock().unwrap().pop_front().unwrap_or(200);
                    let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\nok");
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server { url, requests }
}

fn webhook_config(url: &str) -> AlertsConfig {
    let mut cfg = quiet_config();
    cfg.outputs.webhook.enabled = true;
    cfg.outputs.webhook.url = url.to_string();
    cfg.outputs.webhook.backoff_initial_ms = 10;
    cfg.outputs.webhook.backoff_max_ms = 40;
    cfg
}

#[test]
fn webhook_posts_json_with_headers() {
    let srv = server(vec![]);
    let mut cfg = webhook_config(&srv.url);
    cfg.outputs.webhook.headers.insert("Authorization".into(), "Bearer s3cret".into());
    cfg.outputs.webhook.headers.insert("X-Source".into(), "rampart-test".into());
    let d = Dispatcher::new(&cfg).unwrap();
    d.emit(alert("r1", "one"));
    d.emit(alert("r2", "two"));
    let stats = d.shutdown_blocking(Duration::from_secs(10));
    assert_eq!(stats.outputs["webhook"].sent, 2, "{stats:?}");
    let reqs = srv.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2);
    for (req, rule) in reqs.iter().zip(["r1", "r2"]) {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/hook");
        assert_eq!(req.headers["content-type"], "application/json");
        assert_eq!(req.headers["authorization"], "Bearer s3cret");
        assert_eq!(req.headers["x-source"], "rampart-test");
        assert!(req.headers["user-agent"].starts_with("rampart/"));
        let a: Alert = serde_json::from_str(&req.body).unwrap();
        assert_eq!(a.rule, rule);
        assert_eq!(a.hostname, "test-host");
        assert_eq!(a.priority, Priority::Warning);
    }
}

#[test]
fn webhook_retries_server_errors_with_backoff() {
    let srv = server(vec![500, 503, 200, 400]);
    let d = Dispatcher::new(&webhook_config(&srv.url)).unwrap();
    let t0 = Instant::now();
    d.emit(alert("r", "retried"));
    // The second alert gets a 400: not retried, counted as failed.
    d.emit(alert("r", "refused"));
    let stats = d.shutdown_blocking(Duration::from_secs(10));
    let w = &stats.outputs["webhook"];
    assert_eq!((w.sent, w.failed, w.retries, w.dropped), (1, 1, 2, 0), "{w:?}");
    // Backoff 10 ms then 20 ms.
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let reqs = srv.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 4);
    assert!(reqs[..3].iter().all(|r| r.body.contains("retried")));
    assert!(reqs[3].body.contains("refused"));
}

#[test]
fn webhook_gives_up_after_retries() {
    let srv = server(vec![500; 10]);
    let mut cfg = webhook_config(&srv.url);
    cfg.outputs.webhook.retries = 2;
    let d = Dispatcher::new(&cfg).unwrap();
    d.emit(alert("r", "x"));
    let stats = d.shutdown_blocking(Duration::from_secs(10));
    let w = &stats.outputs["webhook"];
    assert_eq!((w.sent, w.failed, w.retries), (0, 1, 2), "{w:?}");
    assert_eq!(srv.requests.lock().unwrap().len(), 3);
}

/// Emits 10,000 alerts and checks it took well under a second.
fn emit_storm(d: &Dispatcher) -> Duration {
    let t0 = Instant::now();
    for i in 0..10_000 {
        d.emit(alert("storm", &format!("alert {i}")));
    }
    let took = t0.elapsed();
    eprintln!("10,000 emits took {took:?}");
    assert!(took < Duration::from_millis(500), "emit took {took:?}");
    took
}

#[test]
fn dead_webhook_never_blocks_emit() {
    // A port where nothing listens.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = webhook_config(&format!("http://127.0.0.1:{port}/hook"));
    cfg.outputs.webhook.queue_size = 10;
    cfg.outputs.webhook.retries = 100;
    cfg.outputs.webhook.backoff_max_ms = 1000;
    let d = Dispatcher::new(&cfg).unwrap();
    emit_storm(&d);
    let live = d.stats();
    assert!(live.outputs["webhook"].dropped >= 9_980, "{live:?}");
    let t0 = Instant::now();
    let stats = d.shutdown_blocking(Duration::from_millis(300));
    assert!(t0.elapsed() < Duration::from_secs(2), "shutdown took {:?}", t0.elapsed());
    let w = &stats.outputs["webhook"];
    assert_eq!(w.sent, 0);
    // Every alert is accounted for: dropped, failed, or still pending.
    assert_eq!(w.dropped + w.failed + w.pending, 10_000, "{w:?}");
    assert_eq!(stats.dropped(), w.dropped);
}

#[test]
fn silent_webhook_never_blocks_emit() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let mut cfg = webhook_config(&url);
    cfg.outputs.webhook.queue_size = 100;
    cfg.outputs.webhook.timeout_ms = 200;
    let d = Dispatcher::new(&cfg).unwrap();
    emit_storm(&d);
    let t0 = Instant::now();
    let stats = d.shutdown_blocking(Duration::from_millis(300));
    // The deadline, plus at most one request's timeout in flight is not waited for.
    assert!(t0.elapsed() < Duration::from_secs(1), "shutdown took {:?}", t0.elapsed());
    let w = &stats.outputs["webhook"];
    assert_eq!(w.sent, 0);
    // At most the queue (100) plus the one request in flight were taken in;
    // everything else was dropped at once, and all of it is accounted for.
    assert!(w.dropped >= 10_000 - 100 - 1, "{w:?}");
    assert_eq!(w.dropped + w.failed + w.pending, 10_000, "{w:?}");
    assert!(!held.lock().unwrap().is_empty());
}

#[tokio::test]
async fn async_shutdown_flushes() {
    let srv = server(vec![]);
    let d = Dispatcher::new(&webhook_config(&srv.url)).unwrap();
    for i in 0..20 {
        d.emit(alert("r", &format!("{i}")));
    }
    let stats = d.shutdown(Duration::from_secs(10)).await;
    assert_eq!(stats.outputs["webhook"].sent, 20);
    assert_eq!(stats.outputs["webhook"].pending, 0);
    assert_eq!(srv.requests.lock().unwrap().len(), 20);
}

fn syslog_roundtrip(format: SyslogFormat) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut cfg = quiet_config();
    cfg.outputs.syslog.enabled = true;
    cfg.outputs.syslog.path = path;
    cfg.outputs.syslog.format = format;
    cfg.outputs.syslog.facility = Facility::Local0;
    let d = Dispatcher::new(&cfg).unwrap();
    d.emit(alert("r", "shell spawned"));
    let mut buf = vec![0; 65536];
    let n = sock.recv(&mut buf).unwrap();
    let stats = d.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(stats.outputs["syslog"].sent, 1);
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn syslog_rfc5424() {
    let msg = syslog_roundtrip(SyslogFormat::Rfc5424);
    // local0 (16) * 8 + warning (4) = 132
    let pid = std::process::id();
    assert_eq!(
        msg,
        format!(
            "<132>1 2026-11-28T12:00:00.123456Z test-host rampart {pid} - [rampart@32473 rule=\"r\" priority=\"Warning\" source=\"syscall\"] 12:00:00.123456789: Warning shell spawned"
        )
    );
}

#[test]
fn syslog_rfc3164() {
    let msg = syslog_roundtrip(SyslogFormat::Rfc3164);
    let pid = std::process::id();
    assert_eq!(
        msg,
        format!("<132>Nov 28 12:00:00 rampart[{pid}]: 12:00:00.123456789: Warning shell spawned")
    );
}

#[test]
fn syslog_without_socket_is_an_error_at_start() {
    let mut cfg = quiet_config();
    cfg.outputs.syslog.enabled = true;
    cfg.outputs.syslog.path = "/nonexistent/log.sock".into();
    let e = Dispatcher::new(&cfg).err().unwrap().to_string();
    assert!(e.starts_with("cannot send to syslog socket /nonexistent/log.sock: "), "{e}");
}

#[test]
fn rate_limit_storm_is_suppressed_and_reported() {
    let mut cfg = quiet_config();
    cfg.outputs.stdout.enabled = true;
    cfg.outputs.stdout.format = Format::Json;
    cfg.rate_limit.enabled = true;
    cfg.rate_limit.rate = 2.0;
    cfg.rate_limit.burst = 10;
    let buf = Buf::default();
    let d = Dispatcher::with_stdout_writer(&cfg, Box::new(buf.clone())).unwrap();
    // 1000 alerts of one rule in one container, each with its own text.
    let mut outcomes = BTreeMap::new();
    for i in 0..1000 {
        *outcomes.entry(format!("{:?}", d.emit(alert("noisy", &format!("n={i}"))))).or_insert(0) += 1;
    }
    // Emitting 1000 alerts takes far less than the 500 ms that refill a token.
    assert_eq!(outcomes["Queued { outputs: 1, dropped: 0 }"], 10, "{outcomes:?}");
    assert_eq!(outcomes["RateLimited"], 990);
    // Another rule in the same container is not limited.
    assert!(matches!(d.emit(alert("other", "x")), Emitted::Queued { .. }));
    // A token comes back: the next alert reports what was suppressed.
    std::thread::sleep(Duration::from_millis(600));
    assert!(matches!(d.emit(alert("noisy", "after")), Emitted::Queued { .. }));
    let stats = d.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(stats.rate_limited, 990);
    assert_eq!(stats.suppressed, 990);
    assert_eq!(stats.top_suppressed[0].rule, "noisy");
    assert_eq!(stats.top_suppressed[0].suppressed, 990);
    assert_eq!(stats.top_suppressed[0].pending, 0);
    let lines = buf.lines();
    assert_eq!(lines.len(), 12);
    let last: Value = serde_json::from_str(&lines[11]).unwrap();
    assert_eq!(last["output_fields"]["proc.name"], "sh");
    assert!(last["output"].as_str().unwrap().ends_with("after"));
    assert_eq!(last["suppressed"], 990);
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(first.get("suppressed").is_none());
}

#[test]
fn identical_alerts_are_deduplicated() {
    let mut cfg = quiet_config();
    cfg.outputs.stdout.enabled = true;
    cfg.rate_limit.enabled = true;
    let buf = Buf::default();
    let d = Dispatcher::with_stdout_writer(&cfg, Box::new(buf.clone())).unwrap();
    let mut dup = 0;
    for _ in 0..1000 {
        if d.emit(alert("noisy", "same text")) == Emitted::Duplicate {
            dup += 1;
        }
    }
    assert_eq!(dup, 999);
    // A new text goes out and carries the count.
    d.emit(alert("noisy", "new text"));
    let stats = d.shutdown_blocking(Duration::from_secs(5));
    assert_eq!(stats.deduplicated, 999);
    assert_eq!(
        buf.lines(),
        [
            "12:00:00.123456789: Warning same text",
            "12:00:00.123456789: Warning new text (suppressed 999 similar alerts)"
        ]
    );
}

#[test]
fn config_errors_are_clear() {
    let yaml = "outputs:\n  webhook:\n    enabled: true\n    url: http://127.0.0.1:1/x\n    retires: 3\n";
    let e = serde_yaml_ng::from_str::<AlertsConfig>(yaml).unwrap_err().to_string();
    assert!(e.contains("unknown field `retires`"), "{e}");
    assert!(e.contains("line 5"), "{e}");

    let mut cfg = quiet_config();
    cfg.outputs.webhook.enabled = true;
    cfg.outputs.webhook.url = "htp:/oops".into();
    let e = Dispatcher::new(&cfg).err().unwrap().to_string();
    assert!(e.starts_with("invalid webhook url `htp:/oops`: "), "{e}");
}

/// https through rustls against a real TLS server (`openssl s_server` relaying
/// the decrypted request to us) trusting its self-signed certificate through
/// `ca_file`. Needs the openssl tool (scripts/setup.sh installs it); under CI a
/// missing tool fails the test rather than skipping it.
#[test]
fn webhook_https_with_ca_file() {
    use std::process::{Command, Stdio};
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "openssl is not installed (scripts/setup.sh installs it)");
        eprintln!("openssl not installed: skipping the https test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("openssl")
        .args(["s_server", "-quiet", "-naccept", "1", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut cfg = webhook_config(&format!("https://localhost:{port}/tls"));
    cfg.outputs.webhook.ca_file = Some(cert.clone());
    cfg.outputs.webhook.retries = 50; // while s_server starts
    cfg.outputs.webhook.backoff_max_ms = 50;
    let d = Dispatcher::new(&cfg).unwrap();
    d.emit(alert("r", "over tls"));
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let req = read_request(&mut r).expect("a request through TLS");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    let stats = d.shutdown_blocking(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(req.path, "/tls");
    assert!(req.body.contains("over tls"));
    assert_eq!(stats.outputs["webhook"].sent, 1, "{stats:?}");
}

#[test]
fn bad_ca_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let mut cfg = webhook_config("https://localhost/x");
    cfg.outputs.webhook.ca_file = Some(empty.clone());
    let e = Dispatcher::new(&cfg).err().unwrap().to_string();
    assert_eq!(e, format!("cannot use ca file {}: no PEM certificate in it", empty.display()));
    // The system bundle loads.
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        cfg.outputs.webhook.ca_file = Some("/etc/ssl/certs/ca-certificates.crt".into());
        Dispatcher::new(&cfg).unwrap().shutdown_blocking(Duration::from_secs(1));
    }
}

fn exec_event() -> model::Event {
    let c = Arc::new(Container { id: "ab".repeat(32), name: "db".into(), ..Default::default() });
    model::Event {
        ts_ns: TS,
        process: model::ProcessCtx { pid: 7, comm: "bash".into(), ..Default::default() },
        container: Some(c),
        ret: Some(0),
        syscall: Some("execve".into()),
        kind: model::EventKind::Exec {
            filename: "/bin/bash".into(),
            exe: "/bin/bash".into(),
            argv: vec!["bash".into(), "-i".into()],
            argv_truncated: false,
            cwd: "/".into(),
            tty: Some("pts0".into()),
            cap_effective: 0,
            cap_permitted: 0,
            exe_from_memfd: false,
            exe_upper_layer: Some(false),
            details: None,
        },
    }
}

#[test]
fn event_is_attached_unless_turned_off() {
    let ev = exec_event();
    for include in [true, false] {
        let mut cfg = quiet_config();
        cfg.outputs.stdout.enabled = true;
        cfg.outputs.stdout.format = Format::Json;
        cfg.include_event = include;
        let buf = Buf::default();
        let d = Dispatcher::with_stdout_writer(&cfg, Box::new(buf.clone())).unwrap();
        d.emit(
            Alert::for_event(&ev, "Shell", Priority::Notice, "shell (tty=pts0)")
                .with_field("proc.tty", "pts0"),
        );
        let stats = d.shutdown_blocking(Duration::from_secs(5));
        let v: Value = serde_json::from_str(&buf.lines()[0]).unwrap();
        assert_eq!(v["container"]["name"], "db");
        assert_eq!(v["time"], "2026-11-28T12:00:00.123456789Z");
        if include {
            assert_eq!(v["event"]["type"], "exec");
            assert_eq!(v["event"]["args"]["argv"][1], "-i");
            let back: Alert = serde_json::from_value(v).unwrap();
            assert_eq!(back.event.as_deref(), Some(&ev));
        } else {
            assert!(v.get("event").is_none());
        }
        // The summary serializes.
        let s = serde_json::to_value(&stats).unwrap();
        assert_eq!(s["outputs"]["stdout"]["sent"], 1);
        assert_eq!(s["received"], 1);
    }
}

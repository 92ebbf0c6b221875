//! Alerts to a fleet's collector: Debian's rsyslog with a TLS listener
//! (gtls, a CA made by the test with openssl) receives the agent's alerts
//! over RFC 5425, structured data parsed by rsyslog itself; stopped and
//! restarted mid-stream, it gets alerts again and the agent counts what it
//! could not deliver: retries, failures and queue drops per output on
//! /metrics, with the queue and the agent's memory bounded.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sh(dir: &Path, cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).current_dir(dir).output().expect("sh");
    assert!(out.status.success(), "{cmd}:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn make_pki(dir: &Path) {
    sh(dir, "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=rampart test CA' 2>/dev/null");
    sh(dir, "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj '/CN=localhost' 2>/dev/null");
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    sh(dir, "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null");
}

struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    /// rsyslogd in the foreground, TLS on `port`, every message written as
    /// `STRUCTURED-DATA|MSG` to `out.log`.
    fn start(dir: &Path, port: u16) -> Rsyslog {
        let d = dir.display();
        let conf = format!(
            "global(workDirectory=\"{d}\" defaultNetstreamDriver=\"gtls\"\n\
             \tdefaultNetstreamDriverCAFile=\"{d}/ca.pem\" defaultNetstreamDriverCertFile=\"{d}/server.pem\"\n\
             \tdefaultNetstreamDriverKeyFile=\"{d}/server.key\")\n\
             module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n\
             input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
             template(name=\"sdmsg\" type=\"string\" string=\"%structured-data%|%msg%\\n\")\n\
             if $app-name == \"rampart\" then action(type=\"omfile\" file=\"{d}/out.log\" template=\"sdmsg\")\n"
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("rsyslog.err")).unwrap()))
            .spawn()
            .expect("rsyslogd (Debian packages rsyslog and rsyslog-gnutls, installed by scripts/setup.sh)");
        let r = Rsyslog { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd does not listen on {port}: {}",
                std::fs::read_to_string(dir.join("rsyslog.err")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }
}

impl Drop for Rsyslog {
    /// SIGTERM, as a service manager stops it: rsyslog writes out what it
    /// has received before it exits.
    fn drop(&mut self) {
        // SAFETY: kill with a pid we spawned and have not waited for.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines rsyslog wrote for rampart: (structured data, alert JSON).
fn received(out: &PathBuf) -> Vec<(String, Value)> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(sd, msg)| serde_json::from_str(msg.trim()).ok().map(|v| (sd.to_string(), v)))
        .collect()
}

/// `/metrics` of the agent at `addr`.
fn scrape(addr: &str) -> String {
    http_get(addr, "/metrics").1
}

/// The value of the sample `series` (name with its labels, exactly as exposed).
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no `{series}` in /metrics:\n{metrics}")) as u64
}

fn output_alerts(metrics: &str, result: &str) -> u64 {
    sample(metrics, &format!("rampart_output_alerts_total{{output=\"remote_syslog\",result=\"{result}\"}}"))
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn rsyslog_over_tls_receives_alerts_and_a_restart_loses_no_more_than_counted() {
    preflight();
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rsyslog = Rsyslog::start(dir.path(), port);
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: collector_rule\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name startswith /tmp/collector-\n  output: \"collector file=%fd.name\"\n  priority: WARNING\n",
    )
    .unwrap();
    let config = dir.path().join("rampart.yaml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  default_rules: false\n  paths: [{}]\nalerts:\n  rate_limit: {{enabled: false}}\n  outputs:\n    stdout: {{format: json}}\n    remote_syslog:\n      enabled: true\n      address: 127.0.0.1:{port}\n      ca_file: {}\n      timeout_ms: 1000\n      retries: 2\n      backoff_initial_ms: 100\n      backoff_max_ms: 400\n      queue_size: 64\n",
            rules.display(),
            dir.path().join("ca.pem").display()
        ),
    )
    .unwrap();
    let mut agent =
        Agent::spawn(vec!["run".into(), "--config".into(), config.display().to_string()], StdoutMode::Parse);
    // About 20 alerts a second for as long as the test runs.
    let c = Container::sh(
        "collector",
        &[],
        "i=0; while true; do echo x > /tmp/collector-$i; i=$((i+1)); usleep 50000; done",
    );
    let out = dir.path().join("out.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while received(&out).is_empty() {
        assert!(Instant::now() < deadline, "rsyslog received nothing; agent:\n{}", agent.stderr_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let (sd, alert) = received(&out).remove(0);
    assert_eq!(sd, "[rampart@32473 rule=\"collector_rule\" priority=\"Warning\" source=\"syscall\"]");
    assert_eq!(alert["rule"], "collector_rule");
    assert_eq!(alert["container"]["name"], c.name.as_str(), "{alert}");

    // The collector stops for 6 s, then comes back on the same port. About
    // 120 alerts meet no collector: the output retries each, fails some, and
    // its queue (64) fills and drops the rest, counting all of it.
    let metrics_at = agent.metrics_address();
    drop(rsyslog);
    let before = received(&out).len();
    let down = Instant::now();
    let mut deepest = 0;
    while down.elapsed() < Duration::from_secs(6) {
        agent.collect_for(Duration::from_millis(500));
        let m = scrape(&metrics_at);
        deepest = deepest.max(sample(&m, "rampart_output_queue_depth{output=\"remote_syslog\"}"));
    }
    // The depth counts the queue and the alert being delivered.
    assert!(
        deepest <= 64 + 1,
        "the queue holds at most queue_size alerts (+1 in delivery), it held {deepest}"
    );
    let back = Instant::now();
    let _rsyslog = Rsyslog::start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while received(&out).len() <= before + 5 {
        assert!(
            Instant::now() < deadline,
            "no alerts after rsyslog came back; agent:\n{}",
            agent.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered = back.elapsed();
    let received_before_scrape = received(&out).len() as u64;
    let m = scrape(&metrics_at);
    let (sent_m, failed_m, dropped_m) =
        (output_alerts(&m, "sent"), output_alerts(&m, "failed"), output_alerts(&m, "dropped"));
    let retries_m = sample(&m, "rampart_output_retries_total{output=\"remote_syslog\"}");
    eprintln!("metrics after the restart: {sent_m} sent, {retries_m} retries, {failed_m} failed, {dropped_m} dropped; queue depth peak {deepest}");
    assert!(retries_m > 0, "attempts against a stopped collector are retried and counted");
    assert!(
        failed_m > 0 && dropped_m > 0,
        "6 s without a collector fail and drop alerts, counted: {failed_m} failed, {dropped_m} dropped"
    );
    assert!(
        sent_m >= received_before_scrape,
        "{sent_m} sent but rsyslog already had {received_before_scrape}"
    );
    let hwm = agent.vm_hwm_kib().unwrap_or(0);
    drop(c);
    let (summary, events) = agent.stop_with_events();
    drop(_rsyslog);
    let raised = events.iter().filter(|v| alert_rule(v) == "collector_rule").count() as u64;
    let got = received(&out).len() as u64;
    let line = summary.line.clone();
    // `..., N alerts (S suppressed, D dropped by outputs, F failed in outputs)`
    let count_before = |what: &str| -> u64 {
        let at = line.find(what).unwrap_or_else(|| panic!("no `{what}` in the summary: {line}"));
        line[..at].trim_end().rsplit([' ', '(']).next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    let (failed, dropped) = (count_before("failed in outputs"), count_before("dropped by outputs"));
    eprintln!(
        "figures: {raised} alerts raised, {got} received by rsyslog, {failed} failed and {dropped} dropped in outputs; \
         delivery again {recovered:?} after the restart; peak RSS {hwm} KiB; {line}"
    );
    assert!(hwm > 0 && hwm < 200 * 1024, "peak RSS {hwm} KiB");
    assert!(failed >= failed_m && dropped >= dropped_m, "the summary counts what /metrics counted: {line}");
    // Every alert is received or counted; a message in flight when the
    // collector went down is the only one TCP syslog can lose unnoticed.
    assert!(
        got + failed + dropped + 1 >= raised,
        "{raised} raised, {got} received, {failed} failed, {dropped} dropped"
    );
    assert!(got <= raised, "{got} received of {raised} raised");
}

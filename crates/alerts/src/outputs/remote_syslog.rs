//! Syslog to a fleet's collector over TCP: TLS (RFC 5425) by default, plain
//! TCP (RFC 6587) if asked; each message framed by octet counting
//! (`LEN SP MSG`), so a message may hold any byte.
//!
//! The connection is opened at start (a wrong address or certificate is a
//! startup error) and again after any failure, with backoff. Before each
//! write the socket is checked for a close by the peer: syslog over TCP has
//! no acknowledgement, so this is what keeps a restarting collector from
//! silently swallowing the next message.

use super::syslog::format_message;
use super::{Control, Sink};
use crate::config::RemoteSyslogConfig;
use crate::{Alert, Error};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => {
                s.write_all(frame)?;
                s.flush()
            }
            Conn::Tls(s) => {
                s.write_all(frame)?;
                s.flush()
            }
        }
    }

    /// Whether the collector closed its end (or reset it): a non-blocking
    /// peek that finds end-of-stream or an error. Data it sends is ignored.
    fn closed_by_peer(&self) -> bool {
        let tcp = self.tcp();
        if tcp.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let closed = match tcp.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        };
        closed || tcp.set_nonblocking(false).is_err()
    }
}

pub(crate) struct RemoteSyslogSink {
    cfg: RemoteSyslogConfig,
    hostname: String,
    pid: u32,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
}

impl RemoteSyslogSink {
    pub fn new(cfg: &RemoteSyslogConfig, hostname: &str) -> Result<Self, Error> {
        let tls = if cfg.tls { Some(tls_config(cfg)?) } else { None };
        let mut sink = RemoteSyslogSink {
            cfg: cfg.clone(),
            hostname: hostname.to_string(),
            pid: std::process::id(),
            tls,
            conn: None,
        };
        sink.conn = Some(sink.connect()?);
        Ok(sink)
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::RemoteSyslog { address: self.cfg.address.clone(), reason: reason.to_string() }
    }

    fn connect(&self) -> Result<Conn, Error> {
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let addr = self
            .cfg
            .address
            .to_socket_addrs()
            .map_err(|e| self.err(e))?
            .next()
            .ok_or_else(|| self.err("the name resolves to no address"))?;
        let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| self.err(e))?;
        tcp.set_write_timeout(Some(timeout)).map_err(|e| self.err(e))?;
        tcp.set_read_timeout(Some(timeout)).map_err(|e| self.err(e))?;
        let _ = tcp.set_nodelay(true);
        let Some((config, name)) = &self.tls else { return Ok(Conn::Plain(tcp)) };
        let conn = rustls::ClientConnection::new(config.clone(), name.clone()).map_err(|e| self.err(e))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // The handshake now, so that a certificate problem shows here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| self.err(format!("TLS handshake: {e}")))?;
        }
        Ok(Conn::Tls(Box::new(stream)))
    }
}

fn tls_config(cfg: &RemoteSyslogConfig) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), Error> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = &cfg.ca_file {
        let ca_err = |reason: String| Error::CaFile { path: path.clone(), reason };
        let pem = model::input::read_bytes(path, model::input::limits::CA_BUNDLE)
            .map_err(|e| ca_err(e.to_string()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(|e| ca_err(e.to_string()))?).map_err(|e| ca_err(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(ca_err("no PEM certificate in it".into()));
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let err = |reason: String| Error::RemoteSyslog { address: cfg.address.clone(), reason };
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err(e.to_string()))?
            .with_root_certificates(roots);
    let config = match (&cfg.client_cert_file, &cfg.client_key_file) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::PathBuf| {
                model::input::read_bytes(p, model::input::limits::CA_BUNDLE)
                    .map_err(|e| err(format!("{}: {e}", p.display())))
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(cert)?)
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?)
                .map_err(|e| err(format!("{}: {e}", key.display())))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| err(e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    let host = cfg.server_name.clone().unwrap_or_else(|| {
        let host = cfg.address.rsplit_once(':').map_or(cfg.address.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']').to_string()
    });
    let name = ServerName::try_from(host.clone()).map_err(|e| err(format!("server name `{host}`: {e}")))?;
    Ok((Arc::new(config), name))
}

/// `LEN SP MSG` (RFC 5425 section 4.3, RFC 6587 section 3.4.1).
pub(crate) fn frame(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

impl Sink for RemoteSyslogSink {
    fn write(&mut self, alert: &Alert, ctl: &Control) -> Result<(), Error> {
        let msg = format_message(&self.cfg.message_config(), &self.hostname, self.pid, alert);
        let frame = frame(&msg);
        let mut backoff = Duration::from_millis(self.cfg.backoff_initial_ms);
        let max_backoff = Duration::from_millis(self.cfg.backoff_max_ms.max(self.cfg.backoff_initial_ms));
        let mut attempt = 0;
        loop {
            let result = match self.conn.take().filter(|c| !c.closed_by_peer()) {
                Some(c) => Ok(c),
                None => self.connect(),
            }
            .and_then(|mut c| match c.send(&frame) {
                Ok(()) => {
                    self.conn = Some(c);
                    Ok(())
                }
                Err(e) => Err(self.err(e)),
            });
            match result {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.cfg.retries || ctl.aborted() => return Err(e),
                Err(_) => {
                    attempt += 1;
                    ctl.counters.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !ctl.sleep(backoff) {
                        return Err(self.err("stopped while retrying"));
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Format, RemoteSyslogConfig};
    use crate::outputs::hostile;
    use std::io::{BufRead, Read};
    use std::net::TcpListener;

    /// Reads octet-counted frames from a plain TCP connection.
    fn read_frames(conn: TcpStream, n: usize) -> Vec<String> {
        let mut r = std::io::BufReader::new(conn);
        let mut out = Vec::new();
        while out.len() < n {
            let mut len = Vec::new();
            if r.read_until(b' ', &mut len).unwrap() == 0 {
                break;
            }
            let len: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
            let mut msg = vec![0u8; len];
            r.read_exact(&mut msg).unwrap();
            out.push(String::from_utf8(msg).unwrap());
        }
        out
    }

    fn plain(address: String) -> RemoteSyslogConfig {
        RemoteSyslogConfig {
            enabled: true,
            address,
            tls: false,
            message: Format::Json,
            retries: 20,
            backoff_initial_ms: 10,
            backoff_max_ms: 50,
            ..Default::default()
        }
    }

    #[test]
    fn frames_count_octets_not_characters() {
        assert_eq!(frame("é x"), b"4 \xc3\xa9 x".to_vec());
    }

    #[test]
    fn messages_arrive_framed_and_survive_a_collector_restart() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ctl = Control::for_tests();
        let mut sink = RemoteSyslogSink::new(&plain(addr.to_string()), "node-1").unwrap();
        let (first, _) = listener.accept().unwrap();
        let a = hostile::alert();
        sink.write(&a, &ctl).unwrap();
        sink.write(&a, &ctl).unwrap();
        let got = read_frames(first.try_clone().unwrap(), 2);
        assert_eq!(got.len(), 2);
        for m in &got {
            assert!(m.starts_with('<') && m.contains(" node-1 rampart "), "{m}");
            assert!(!m.contains('\n'), "one frame, one line: {m:?}");
        }
        // The collector goes away and comes back on the same port: the next
        // message notices the close, reconnects and arrives.
        drop(first);
        drop(listener);
        let listener = TcpListener::bind(addr).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let writer = std::thread::spawn(move || {
            sink.write(&hostile::alert(), &ctl)
                .map(|_| ctl.counters.retries.load(std::sync::atomic::Ordering::Relaxed))
        });
        let (second, _) = listener.accept().unwrap();
        assert_eq!(read_frames(second, 1).len(), 1, "delivered on the new connection");
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn a_collector_that_is_not_there_is_an_error_at_start_and_failures_are_bounded() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = RemoteSyslogSink::new(&plain(format!("127.0.0.1:{port}")), "h").err().unwrap().to_string();
        assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
        // TLS against a plain listener: the handshake fails, at start.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let _ = c.write_all(b"not tls\n");
        });
        let mut cfg = plain(addr.to_string());
        cfg.tls = true;
        cfg.server_name = Some("localhost".into());
        let e = RemoteSyslogSink::new(&cfg, "h").err().unwrap().to_string();
        assert!(e.contains("TLS handshake"), "{e}");
    }
}

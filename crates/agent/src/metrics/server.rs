//! The agent's HTTP endpoint: `GET /metrics` (Prometheus text, OpenMetrics
//! when asked), `GET /healthz` (the agent answers), `GET /readyz` (sensor
//! attached, rules loaded, every runtime answered once).
//!
//! It listens on localhost by default and reads nothing but the request
//! line and headers: bodies are ignored, headers must arrive within a few
//! seconds, and connections are capped, so a scraper (or anything else that
//! can reach the port) cannot hold the agent's memory or tasks.

use super::exposition::Format;
use super::AgentMetrics;
use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection is kept, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// The address the endpoint listens on, from the config or the command line:
/// `host:port` (`127.0.0.1:9376`, `[::1]:9376`, port 0 for any free port).
pub fn parse_address(text: &str) -> Result<SocketAddr> {
    text.trim().parse::<SocketAddr>().with_context(|| {
        format!(
            "metrics address {text:?} is not an address:port (e.g. 127.0.0.1:9376; port 0 picks a free port)"
        )
    })
}

/// A bound endpoint, ready to serve.
pub struct MetricsServer {
    listener: TcpListener,
    pub address: SocketAddr,
}

impl MetricsServer {
    /// Binds now, so that an address in use is a startup error.
    pub async fn bind(address: SocketAddr) -> Result<MetricsServer> {
        let listener = TcpListener::bind(address).await.with_context(|| {
            format!("cannot serve metrics on {address} (set metrics.address or --metrics-address; `off` disables it)")
        })?;
        let address = listener.local_addr()?;
        Ok(MetricsServer { listener, address })
    }

    /// Serves until the task is dropped or aborted.
    pub fn spawn(self, metrics: Arc<AgentMetrics>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let stream = match self.listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "metrics accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .max_buf_size(16 * 1024)
                        .serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
                    drop(permit);
                });
            }
        })
    }
}

fn answer(metrics: &AgentMetrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(hyper::header::ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::from_accept(accept);
            reply(StatusCode::OK, format.content_type(), metrics.render(format))
        }
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => {
            let r = metrics.readiness();
            let status = if r.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            let body = format!(
                "{}\nsensor: {}\nrules: {}\nruntimes: {}\n",
                if r.ready() { "ready" } else { "not ready" },
                state_word(r.sensor, "attached", "not attached"),
                state_word(r.rules, "loaded", "not loaded"),
                state_word(r.runtimes, "answered", "not all answered yet"),
            );
            reply(status, "text/plain", body)
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: /metrics, /healthz, /readyz\n".into()),
    }
}

fn state_word(ok: bool, yes: &'static str, no: &'static str) -> &'static str {
    if ok {
        yes
    } else {
        no
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(parse_address("127.0.0.1:9376").unwrap().port(), 9376);
        assert!(parse_address("[::1]:0").is_ok());
        for bad in ["localhost", "127.0.0.1", "127.0.0.1:99999", "", ":80"] {
            let e = parse_address(bad).unwrap_err().to_string();
            assert!(e.contains("not an address:port"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn an_address_in_use_is_an_error() {
        let first = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let e = MetricsServer::bind(first.address).await.err().expect("second bind fails").to_string();
        assert!(e.contains("cannot serve metrics on") && e.contains(&first.address.to_string()), "{e}");
    }
}

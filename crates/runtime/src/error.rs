use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of the runtime crate; each carries the input that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no cgroup2 mount or line found in {path}")]
    NoCgroup2 { path: PathBuf },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot connect to {runtime} at {endpoint}: {source}")]
    Connect {
        runtime: &'static str,
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{runtime} request {request} failed: {source}")]
    Request {
        runtime: &'static str,
        request: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("container {id} not found by {runtime}")]
    NotFound { runtime: &'static str, id: String },

    #[error("{runtime} request {request} timed out after {timeout:?}")]
    Timeout { runtime: &'static str, request: String, timeout: Duration },

    #[error("{runtime} event stream ended")]
    StreamEnded { runtime: &'static str },

    #[error("no runtime client handles container {id}")]
    NoClient { id: String },
}

impl Error {
    /// Whether the error says the runtime itself is unreachable (as opposed to
    /// a container it does not know).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. } | Error::Timeout { .. } | Error::StreamEnded { .. } | Error::Request { .. }
        )
    }
}

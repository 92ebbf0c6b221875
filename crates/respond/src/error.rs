use crate::policy::PolicyError;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of the respond crate; each names what failed and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Policy(#[from] PolicyError),

    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file refused before parsing (not a regular file, too large, not
    /// text); the error names the file.
    #[error(transparent)]
    Input(#[from] model::input::InputError),

    #[error("bpf: {op} {target}: {message}")]
    Bpf { op: String, target: String, message: String },

    /// No single container has that name or id (none, or several).
    #[error(transparent)]
    NoSuchContainer(#[from] runtime::FindError),

    #[error("container {name} ({id}) is not running")]
    NotRunning { id: String, name: String },

    #[error("cannot find the cgroup of container {id}: {reason}")]
    NoCgroup { id: String, reason: String },

    #[error(transparent)]
    Runtime(#[from] runtime::Error),

    #[error("docker {request} {id}: {message}")]
    Docker { request: &'static str, id: String, message: String },

    #[error(
        "freezing {id} with {mechanism} did not complete within {timeout:?} (state: {state}); thawed again"
    )]
    FreezeTimeout { id: String, mechanism: &'static str, timeout: Duration, state: String },

    #[error("cannot freeze container {id}: {reasons}")]
    NoFreezer { id: String, reasons: String },

    #[error("cannot thaw container {id}: {reasons}")]
    Thaw { id: String, reasons: String },

    #[error("store {path}: {message}")]
    Store { path: PathBuf, message: String },

    #[error("no network policy or isolation stored for container {id}")]
    NotManaged { id: String },
}

use std::path::PathBuf;

/// Errors of the audit crate; each names the input that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration file that does not parse: `file:line:column: field: reason`
    /// (line and column when the parser knows them, the field path when there is one).
    #[error("{path}{}: {}{reason}", location(*line, *column), field_prefix(field))]
    Parse { path: PathBuf, line: Option<usize>, column: Option<usize>, field: String, reason: String },

    /// A file that parses but is not what was asked for (no container in a
    /// Kubernetes manifest, a config.json without `process`, ...).
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Baseline { path: PathBuf, reason: String },

    /// A file refused before parsing (not a regular file, too large, not
    /// text); the error names the file.
    #[error(transparent)]
    Input(#[from] model::input::InputError),
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() || field == "." {
        String::new()
    } else {
        format!("{field}: ")
    }
}

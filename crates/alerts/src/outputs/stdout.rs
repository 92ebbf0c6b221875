use super::{Control, Sink};
use crate::config::Format;
use crate::{Alert, Error};
use std::io::Write;

/// Writes one alert per line to stdout (or another writer, for tests and for
/// callers that redirect it).
pub(crate) struct StdoutSink {
    out: Box<dyn Write + Send>,
    format: Format,
}

impl StdoutSink {
    pub fn new(out: Box<dyn Write + Send>, format: Format) -> Self {
        StdoutSink { out, format }
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, alert: &Alert, _ctl: &Control) -> Result<(), Error> {
        let mut line = match self.format {
            Format::Text => alert.to_text(),
            Format::Json => alert.to_json(),
        };
        line.push('\n');
        self.out.write_all(line.as_bytes()).and_then(|()| self.out.flush()).map_err(Error::Stdout)
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(Error::Stdout)
    }
}

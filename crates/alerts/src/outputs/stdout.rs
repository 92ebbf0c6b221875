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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::hostile;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn hostile_fields_cannot_forge_a_line() {
        for format in [Format::Text, Format::Json] {
            let buf = Shared::default();
            let mut sink = StdoutSink::new(Box::new(buf.clone()), format);
            sink.write(&hostile::alert(), &hostile::control()).unwrap();
            let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
            assert_eq!(out.matches('\n').count(), 1, "{out:?}");
            match format {
                Format::Text => hostile::assert_one_text_line(&out),
                Format::Json => hostile::assert_one_json_record(&out),
            }
        }
    }
}

use super::{Control, Sink};
use crate::config::{FileConfig, Format};
use crate::{Alert, Error};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Appends one alert per line to a file, rotating it by size: `path` is moved
/// to `path.1`, `path.1` to `path.2`, ... and `path.N` (N = `max_files`) is
/// removed.
pub(crate) struct FileSink {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
    max_files: u32,
    format: Format,
}

/// Alerts can carry sensitive details (command lines, paths): owner and group only.
const FILE_MODE: u32 = 0o640;

fn open(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).mode(FILE_MODE).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// `path` with `.n` appended.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl FileSink {
    /// Opens (creating) the file, so that a bad path is an error at startup.
    pub fn new(cfg: &FileConfig) -> Result<Self, Error> {
        let path = cfg.path.clone().ok_or_else(|| Error::Config {
            section: "outputs.file",
            reason: "path is required when enabled".into(),
        })?;
        let (file, size) = open(&path).map_err(|source| Error::OpenFile { path: path.clone(), source })?;
        Ok(FileSink {
            path,
            file: Some(file),
            size,
            max_size: cfg.max_size_bytes(),
            max_files: cfg.max_files,
            format: cfg.format,
        })
    }

    fn rotate(&mut self) -> Result<(), Error> {
        self.file = None;
        let err = |path: &Path, source| Error::Rotate { path: path.to_path_buf(), source };
        if self.max_files == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing).map_err(|e| err(&self.path, e))?;
        } else {
            let oldest = numbered(&self.path, self.max_files);
            std::fs::remove_file(&oldest).or_else(ignore_missing).map_err(|e| err(&oldest, e))?;
            for n in (1..self.max_files).rev() {
                let from = numbered(&self.path, n);
                std::fs::rename(&from, numbered(&self.path, n + 1))
                    .or_else(ignore_missing)
                    .map_err(|e| err(&from, e))?;
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))
                .or_else(ignore_missing)
                .map_err(|e| err(&self.path, e))?;
        }
        tracing::debug!(path = %self.path.display(), "alert file rotated");
        Ok(())
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl Sink for FileSink {
    fn write(&mut self, alert: &Alert, _ctl: &Control) -> Result<(), Error> {
        let mut line = match self.format {
            Format::Text => alert.to_text(),
            Format::Json => alert.to_json(),
        };
        line.push('\n');
        let len = line.len() as u64;
        if self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let (f, size) =
                    open(&self.path).map_err(|source| Error::OpenFile { path: self.path.clone(), source })?;
                self.size = size;
                self.file.insert(f)
            }
        };
        // One write per line: with O_APPEND each alert lands whole.
        match file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(source) => {
                // Reopen on the next alert (the file may have been removed or
                // the disk filled up).
                self.file = None;
                Err(Error::WriteFile { path: self.path.clone(), source })
            }
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        match &mut self.file {
            Some(f) => f.sync_data().map_err(|source| Error::WriteFile { path: self.path.clone(), source }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::hostile;

    #[test]
    fn hostile_fields_cannot_forge_a_record() {
        let dir = tempfile::tempdir().unwrap();
        for (format, name) in [(Format::Text, "alerts.log"), (Format::Json, "alerts.json")] {
            let path = dir.path().join(name);
            let cfg = FileConfig { enabled: true, path: Some(path.clone()), format, ..Default::default() };
            let mut sink = FileSink::new(&cfg).unwrap();
            for _ in 0..2 {
                sink.write(&hostile::alert(), &hostile::control()).unwrap();
            }
            sink.flush().unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 2, "{text:?}");
            for l in lines {
                match format {
                    Format::Text => hostile::assert_one_text_line(l),
                    Format::Json => hostile::assert_one_json_record(l),
                }
            }
        }
    }
}

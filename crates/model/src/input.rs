//! Bounded reading of the files rampart is given: rule files, the config,
//! policies, manifests, OCI specs, recordings, profiles, baselines, captures
//! and alerts files.
//!
//! Every file input goes through here so that hostile input ends the same
//! way everywhere: only regular files are read (a FIFO or `/dev/zero` would
//! block or never end), at most a limit of bytes is read, and text is refused
//! with its position when it is not UTF-8 or holds a NUL. Streams (captures,
//! alerts files) are read line by line with a per-line cap; a bad line is
//! reported to the caller, which skips and counts it, and the rest is read.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// How many bytes an input may have, and which inputs the limit is for: `key`
/// names it on the command line (`--input-limit KEY=SIZE`), `what` in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: u64,
    pub key: &'static str,
    pub what: &'static str,
}

impl Limit {
    pub const fn new(bytes: u64, key: &'static str, what: &'static str) -> Limit {
        Limit { bytes, key, what }
    }

    /// The same inputs with another byte count (a configured limit).
    pub const fn with_bytes(self, bytes: u64) -> Limit {
        Limit { bytes, ..self }
    }

    /// This limit as the process runs with it: the byte count set for its
    /// key by [`set_limit`] (the command line), else its own.
    pub fn configured(self) -> Limit {
        let set = OVERRIDES.read().unwrap_or_else(|e| e.into_inner());
        match set.iter().find(|(k, _)| *k == self.key) {
            Some(&(_, bytes)) => self.with_bytes(bytes),
            None => self,
        }
    }
}

/// Default limits per kind of input. Whole-file text inputs are parsed in
/// memory, so 16 MiB (far above any real one) bounds what a hostile file costs.
pub mod limits {
    use super::{Limit, GIB, MIB};

    pub const RULES: Limit = Limit::new(16 * MIB, "rules", "rule files");
    pub const CONFIG: Limit = Limit::new(16 * MIB, "config", "config files");
    pub const NETPOLICY: Limit = Limit::new(16 * MIB, "netpolicy", "network policies");
    pub const MANIFEST: Limit = Limit::new(16 * MIB, "manifest", "kubernetes manifests");
    pub const OCI_SPEC: Limit = Limit::new(16 * MIB, "oci-spec", "oci config.json files");
    pub const RECORDING: Limit = Limit::new(16 * MIB, "recording", "recordings");
    pub const SECCOMP_PROFILE: Limit = Limit::new(16 * MIB, "seccomp-profile", "seccomp profiles");
    pub const BASELINE: Limit = Limit::new(16 * MIB, "baseline", "baselines");
    pub const CA_BUNDLE: Limit = Limit::new(16 * MIB, "ca-bundle", "ca bundles");
    /// Files of a container's image (e.g. /etc/passwd): the container
    /// chose their content, a real one is a few KiB.
    pub const IMAGE_FILE: Limit = Limit::new(4 * MIB, "image-file", "image files");
    /// Captures are streamed: memory is bounded by the line limit, the total
    /// only bounds time.
    pub const CAPTURE: Limit = Limit::new(64 * GIB, "capture", "capture files");
    pub const CAPTURE_LINE: Limit = Limit::new(MIB, "capture-line", "capture lines");
    pub const ALERTS: Limit = Limit::new(16 * GIB, "alerts", "alerts files");
    pub const ALERTS_LINE: Limit = Limit::new(MIB, "alerts-line", "alerts file lines");
    /// podman's containers.json (about 500 bytes a container), read by the
    /// OCI hook's agent side.
    pub const PODMAN_STORE: Limit = Limit::new(64 * MIB, "podman-store", "podman container stores");

    /// Every limit, for `--input-limit`.
    pub const ALL: [Limit; 15] = [
        RULES,
        CONFIG,
        NETPOLICY,
        MANIFEST,
        OCI_SPEC,
        RECORDING,
        SECCOMP_PROFILE,
        BASELINE,
        CA_BUNDLE,
        IMAGE_FILE,
        CAPTURE,
        CAPTURE_LINE,
        ALERTS,
        ALERTS_LINE,
        PODMAN_STORE,
    ];
}

/// Byte counts set for limit keys (the command line's `--input-limit`).
static OVERRIDES: std::sync::RwLock<Vec<(&'static str, u64)>> = std::sync::RwLock::new(Vec::new());

/// Sets the limit named `key` for the rest of the process (every later read
/// of that kind of input). Refuses an unknown key and a zero size.
pub fn set_limit(key: &str, bytes: u64) -> Result<(), String> {
    let Some(limit) = limits::ALL.iter().find(|l| l.key == key) else {
        let known: Vec<&str> = limits::ALL.iter().map(|l| l.key).collect();
        return Err(format!("unknown input limit '{key}' (known: {})", known.join(", ")));
    };
    if bytes == 0 {
        return Err(format!("input limit '{key}' must be at least 1 byte"));
    }
    let mut set = OVERRIDES.write().unwrap_or_else(|e| e.into_inner());
    set.retain(|(k, _)| *k != limit.key);
    set.push((limit.key, bytes));
    Ok(())
}

/// Parses `KEY=SIZE` (`rules=64MiB`, `capture-line=4M`, `config=65536`) and
/// sets that limit.
pub fn set_limit_from(setting: &str) -> Result<(), String> {
    let (key, size) = setting
        .split_once('=')
        .ok_or_else(|| format!("input limit '{setting}': expected KEY=SIZE (e.g. rules=64MiB)"))?;
    let bytes = parse_size(size.trim()).map_err(|e| format!("input limit '{setting}': {e}"))?;
    set_limit(key.trim(), bytes)
}

/// A byte count: digits, then optionally a unit, B, K/KiB, M/MiB or G/GiB
/// (powers of 1024; KB/MB/GB are read the same), case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let number: u64 =
        number.parse().map_err(|_| format!("'{text}' is not a size (e.g. 65536, 64KiB, 16MiB, 1GiB)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => return Err(format!("unknown size unit '{other}' (B, KiB, MiB, GiB)")),
    };
    number.checked_mul(scale).ok_or_else(|| format!("'{text}' is too large"))
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("opening {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is a {kind}, not a regular file", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{} is larger than {} bytes (limit for {}; --input-limit {}=SIZE changes it)",
        path.display(), limit.bytes, limit.what, limit.key
    )]
    TooLarge { path: PathBuf, limit: Limit },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("NUL byte at {}:{line}:{column}", path.display())]
    Nul { path: PathBuf, line: u64, column: u64 },
    #[error("invalid UTF-8 at {}:{line}:{column}", path.display())]
    Utf8 { path: PathBuf, line: u64, column: u64 },
}

impl InputError {
    pub fn path(&self) -> &Path {
        match self {
            InputError::Open { path, .. }
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. }
            | InputError::Read { path, .. }
            | InputError::Nul { path, .. }
            | InputError::Utf8 { path, .. } => path,
        }
    }
}

/// Opens `path` if it is a regular file (after symlinks).
///
/// The open is non-blocking, so a FIFO without a writer does not hang it;
/// the check is on the opened fd (`fstat`), so the file cannot be swapped
/// between check and read. O_NONBLOCK stays set: it has no effect on regular
/// files.
pub fn open_regular(path: &Path) -> Result<File, InputError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| InputError::Open { path: path.to_path_buf(), source })?;
    let ft =
        file.metadata().map_err(|source| InputError::Read { path: path.to_path_buf(), source })?.file_type();
    if ft.is_file() {
        return Ok(file);
    }
    let kind = if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_dir() {
        "directory"
    } else {
        "special file"
    };
    Err(InputError::NotRegular { path: path.to_path_buf(), kind })
}

/// The bytes of a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: Limit) -> Result<Vec<u8>, InputError> {
    let limit = limit.configured();
    let file = open_regular(path)?;
    let too_large = || InputError::TooLarge { path: path.to_path_buf(), limit };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit.bytes {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(len as usize);
    // Reads one byte past the limit: the file may grow after the fstat.
    file.take(limit.bytes.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| InputError::Read { path: path.to_path_buf(), source })?;
    if buf.len() as u64 > limit.bytes {
        return Err(too_large());
    }
    Ok(buf)
}

/// The text of a regular file of at most `limit` bytes: UTF-8 without NUL, a
/// leading byte order mark skipped.
pub fn read_text(path: &Path, limit: Limit) -> Result<String, InputError> {
    let bytes = read_bytes(path, limit)?;
    decode_text(path, bytes)
}

/// `bytes` as text, or the position of the first invalid UTF-8 or NUL byte.
pub fn decode_text(path: &Path, mut bytes: Vec<u8>) -> Result<String, InputError> {
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            // The prefix is valid: positions count characters.
            let (line, column) = position(std::str::from_utf8(&bytes[..at]).unwrap_or(""));
            return Err(InputError::Utf8 { path: path.to_path_buf(), line, column });
        }
    };
    if let Some(at) = text.find('\0') {
        let (line, column) = position(&text[..at]);
        return Err(InputError::Nul { path: path.to_path_buf(), line, column });
    }
    Ok(text)
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// 1-based line and column (in characters) of the character after `prefix`.
fn position(prefix: &str) -> (u64, u64) {
    let line = prefix.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    let last = prefix.rfind('\n').map_or(prefix, |i| &prefix[i + 1..]);
    (line, last.chars().count() as u64 + 1)
}

/// A line of a stream that is not usable text; the caller skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadLine {
    TooLong { limit: Limit },
    Utf8 { column: u64 },
    Nul { column: u64 },
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadLine::TooLong { limit } => {
                write!(
                    f,
                    "line longer than {} bytes (limit for {}; --input-limit {}=SIZE changes it)",
                    limit.bytes, limit.what, limit.key
                )
            }
            BadLine::Utf8 { column } => write!(f, "invalid UTF-8 at column {column}"),
            BadLine::Nul { column } => write!(f, "NUL byte at column {column}"),
        }
    }
}

/// One line of a stream: its 1-based number and its text (without the line
/// ending) or why it is unusable.
#[derive(Debug)]
pub struct StreamLine {
    pub number: u64,
    pub text: Result<String, BadLine>,
}

/// Lines of a regular file, each at most `line` bytes, at most `total` bytes
/// in all (past it the iterator yields [`InputError::TooLarge`] and ends).
pub fn open_stream(path: &Path, total: Limit, line: Limit) -> Result<Lines<BufReader<File>>, InputError> {
    let file = open_regular(path)?;
    let (total, line) = (total.configured(), line.configured());
    Ok(Lines::new(path, BufReader::with_capacity(64 * KIB as usize, file), total, line))
}

/// Line reader with a per-line and a total cap; see [`open_stream`].
pub struct Lines<R> {
    inner: R,
    path: PathBuf,
    total: Limit,
    line: Limit,
    read: u64,
    number: u64,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(path: &Path, inner: R, total: Limit, line: Limit) -> Lines<R> {
        Lines { inner, path: path.to_path_buf(), total, line, read: 0, number: 0, done: false }
    }

    /// Bytes of the next line (without its ending), `None` for its content
    /// when it is longer than the line limit (it is read past, not kept).
    fn next_raw(&mut self) -> Result<Option<Option<Vec<u8>>>, InputError> {
        let mut buf = Vec::new();
        let (mut any, mut long) = (false, false);
        loop {
            let avail = self
                .inner
                .fill_buf()
                .map_err(|source| InputError::Read { path: self.path.clone(), source })?;
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, used, end) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !long {
                if (buf.len() + chunk.len()) as u64 > self.line.bytes {
                    long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            self.inner.consume(used);
            self.read += used as u64;
            if self.read > self.total.bytes {
                return Err(InputError::TooLarge { path: self.path.clone(), limit: self.total });
            }
            if end {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if long {
            return Ok(Some(None));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(Some(buf)))
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<StreamLine, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let raw = match self.next_raw() {
            Ok(Some(raw)) => raw,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        self.number += 1;
        let text = match raw {
            None => Err(BadLine::TooLong { limit: self.line }),
            Some(mut bytes) => {
                if self.number == 1 && bytes.starts_with(BOM) {
                    bytes.drain(..BOM.len());
                }
                match decode_text(&self.path, bytes) {
                    Ok(text) => Ok(text),
                    Err(InputError::Utf8 { column, .. }) => Err(BadLine::Utf8 { column }),
                    Err(InputError::Nul { column, .. }) => Err(BadLine::Nul { column }),
                    Err(_) => unreachable!("decode_text fails only on UTF-8 or NUL"),
                }
            }
        };
        Some(Ok(StreamLine { number: self.number, text }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};

    const L: Limit = Limit::new(64, "test", "test inputs");

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rampart-input-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(name: &str, bytes: &[u8]) -> PathBuf {
        let p = temp(name).join("f");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let p = temp("fifo").join("pipe");
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = Instant::now();
        let e = read_text(&p, L).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(e.to_string(), format!("{} is a fifo, not a regular file", p.display()));
        assert!(matches!(open_stream(&p, L, L), Err(InputError::NotRegular { kind: "fifo", .. })));
    }

    #[test]
    fn dev_zero_and_directories_are_refused() {
        let e = read_text(Path::new("/dev/zero"), L).unwrap_err();
        assert_eq!(e.to_string(), "/dev/zero is a character device, not a regular file");
        assert!(open_stream(Path::new("/dev/zero"), L, L).is_err());
        let e = read_text(&temp("dir"), L).unwrap_err();
        assert!(e.to_string().ends_with("is a directory, not a regular file"), "{e}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = read_text(Path::new("/nonexistent/x.yaml"), L).unwrap_err();
        assert!(e.to_string().starts_with("opening /nonexistent/x.yaml: "), "{e}");
    }

    #[test]
    fn over_the_limit_is_refused() {
        let p = write("big", &[b'a'; 65]);
        let e = read_text(&p, L).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{} is larger than 64 bytes (limit for test inputs; --input-limit test=SIZE changes it)",
                p.display()
            )
        );
        let p = write("exact", &[b'a'; 64]);
        assert_eq!(read_text(&p, L).unwrap().len(), 64);
    }

    #[test]
    fn nul_is_refused_with_its_position() {
        let p = write("nul", b"a: 1\nbb\0c\n");
        let e = read_text(&p, L).unwrap_err();
        assert_eq!(e.to_string(), format!("NUL byte at {}:2:3", p.display()));
    }

    #[test]
    fn bom_is_skipped() {
        let p = write("bom", b"\xEF\xBB\xBFa: 1\n");
        assert_eq!(read_text(&p, L).unwrap(), "a: 1\n");
    }

    #[test]
    fn invalid_utf8_is_located() {
        // Columns count characters: "é" is one.
        let p = write(
            "utf8",
            "x\n\u{e9}b".as_bytes().iter().copied().chain([0xff, b'\n']).collect::<Vec<_>>().as_slice(),
        );
        let e = read_text(&p, L).unwrap_err();
        assert_eq!(e.to_string(), format!("invalid UTF-8 at {}:2:3", p.display()));
    }

    fn lines(bytes: &[u8], total: u64, line: u64) -> Vec<Result<(u64, Result<String, BadLine>), String>> {
        Lines::new(Path::new("cap"), bytes, Limit::new(total, "t", "t"), Limit::new(line, "l", "l"))
            .map(|r| r.map(|l| (l.number, l.text)).map_err(|e| e.to_string()))
            .collect()
    }

    #[test]
    fn stream_skips_bad_lines_and_reads_the_rest() {
        let got = lines(b"\xEF\xBB\xBFone\r\ntw\xffo\nthree\nfour-is-long\n\0\nlast", 1000, 8);
        assert_eq!(
            got,
            vec![
                Ok((1, Ok("one".into()))),
                Ok((2, Err(BadLine::Utf8 { column: 3 }))),
                Ok((3, Ok("three".into()))),
                Ok((4, Err(BadLine::TooLong { limit: Limit::new(8, "l", "l") }))),
                Ok((5, Err(BadLine::Nul { column: 1 }))),
                Ok((6, Ok("last".into()))),
            ]
        );
        assert!(lines(b"", 10, 10).is_empty());
        assert_eq!(lines(b"\n", 10, 10), vec![Ok((1, Ok(String::new())))]);
    }

    #[test]
    fn stream_stops_at_the_total_limit() {
        let got = lines(b"aaaa\nbbbb\ncccc\n", 8, 8);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok((1, Ok("aaaa".into()))));
        assert_eq!(
            got[1],
            Err("cap is larger than 8 bytes (limit for t; --input-limit t=SIZE changes it)".into())
        );
    }

    #[test]
    fn stream_line_limit_bounds_memory_on_a_line_without_end() {
        // 8 MiB without a newline, with a 1 KiB line limit: one bad line.
        let big = vec![b'x'; 8 << 20];
        let got = lines(&big, u64::MAX, 1024);
        assert_eq!(got, vec![Ok((1, Err(BadLine::TooLong { limit: Limit::new(1024, "l", "l") })))]);
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 * KIB));
        assert_eq!(parse_size("16m"), Ok(16 * MIB));
        assert_eq!(parse_size("2 GiB"), Ok(2 * GIB));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12 parsecs").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("99999999999999999999G").is_err());
        assert!(parse_size("18446744073709551615G").unwrap_err().contains("too large"));
    }

    #[test]
    fn a_set_limit_applies_to_its_kind_of_input_only() {
        // BASELINE is set by this test only (the overrides are process-wide).
        let path = temp("baseline-limit").join("baseline.json");
        std::fs::write(&path, vec![b'x'; 100]).unwrap();
        assert!(read_bytes(&path, limits::BASELINE).is_ok());
        set_limit_from("baseline=50").unwrap();
        assert_eq!(limits::BASELINE.configured().bytes, 50);
        let err = read_bytes(&path, limits::BASELINE).unwrap_err().to_string();
        assert!(
            err.contains("larger than 50 bytes (limit for baselines; --input-limit baseline=SIZE"),
            "{err}"
        );
        assert!(read_bytes(&path, limits::RECORDING).is_ok(), "another kind keeps its limit");
        set_limit_from("baseline = 1KiB").unwrap();
        assert!(read_bytes(&path, limits::BASELINE).is_ok());
        assert!(set_limit_from("baseline=0").unwrap_err().contains("at least 1 byte"));
        assert!(set_limit_from("baselines=1").unwrap_err().contains("unknown input limit 'baselines'"));
        assert!(set_limit_from("baseline").unwrap_err().contains("expected KEY=SIZE"));
    }

    #[test]
    fn every_limit_has_its_own_key() {
        let mut keys: Vec<&str> = limits::ALL.iter().map(|l| l.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), limits::ALL.len());
    }
}

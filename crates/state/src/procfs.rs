//! Reading one process from procfs, tolerant of processes that vanish or that we
//! may not look at.

use crate::{Error, ProcInfo, ProcSource, TableConfig};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Fields of `/proc/<pid>/stat` rampart uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub ppid: u32,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Parse a `/proc/<pid>/stat` line. `comm` may itself contain spaces and `)`, so
/// the fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
    let ppid = rest.get(1)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(Stat { comm, ppid, start_ticks })
}

/// Boot time in nanoseconds since the epoch, from the `btime` line of `/proc/stat`.
pub fn boot_time_ns(proc_root: &Path) -> Option<u64> {
    let text = fs::read_to_string(proc_root.join("stat")).ok()?;
    let secs: u64 = text.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    secs.checked_mul(1_000_000_000)
}

/// Clock ticks per second (`_SC_CLK_TCK`), 100 when unknown.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety
    // preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Split a NUL-separated `cmdline` into at most `max_args` arguments, each cut to
/// `max_arg_len` bytes (on a character boundary).
pub fn split_cmdline(raw: &[u8], max_args: usize, max_arg_len: usize) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .take(max_args)
        .map(|a| truncate(String::from_utf8_lossy(a).into_owned(), max_arg_len))
        .collect()
}

/// Cut a string to at most `max` bytes on a character boundary.
pub fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// argv joined by spaces, bounded to `max` bytes.
pub fn join_cmdline(argv: &[String], max: usize) -> String {
    let mut out = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(a);
        if out.len() >= max {
            break;
        }
    }
    truncate(out, max)
}

fn read_bounded(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(path)?.take(max as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn readlink(path: &Path) -> String {
    fs::read_link(path).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Read one process. Fails only when its `stat` cannot be read (gone, or not
/// ours to read); `exe`, `cwd` and `cmdline` that cannot be read (EPERM, kernel
/// threads) are left empty.
pub fn read_process(
    proc_root: &Path,
    pid: u32,
    cfg: &TableConfig,
    boot_ns: u64,
    ticks: u64,
) -> Result<ProcInfo, Error> {
    let dir = proc_root.join(pid.to_string());
    let stat_path = dir.join("stat");
    let text =
        fs::read_to_string(&stat_path).map_err(|source| Error::Io { path: stat_path.clone(), source })?;
    let stat = parse_stat(&text).ok_or_else(|| Error::BadStat { path: stat_path.clone() })?;
    let argv = read_bounded(&dir.join("cmdline"), cfg.max_cmdline_read)
        .map(|raw| split_cmdline(&raw, cfg.max_args, cfg.max_arg_len))
        .unwrap_or_default();
    let cmdline = join_cmdline(&argv, cfg.max_cmdline_len);
    let start_time_ns = if boot_ns > 0 {
        boot_ns.saturating_add(stat.start_ticks.saturating_mul(1_000_000_000) / ticks.max(1))
    } else {
        0
    };
    Ok(ProcInfo {
        pid,
        ppid: stat.ppid,
        comm: stat.comm,
        exe: readlink(&dir.join("exe")).into(),
        argv: argv.into(),
        cmdline: cmdline.into(),
        cwd: readlink(&dir.join("cwd")).into(),
        start_time_ns,
        exited_at_ns: None,
        source: ProcSource::Proc,
    })
}

/// The numeric entries of `proc_root`.
pub fn list_pids(proc_root: &Path) -> Result<Vec<u32>, Error> {
    let rd = fs::read_dir(proc_root).map_err(|source| Error::Io { path: proc_root.to_path_buf(), source })?;
    Ok(rd.flatten().filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())).collect())
}

pub(crate) fn empty_arc_str() -> Arc<str> {
    Arc::from("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = "1234 (a) b (c)) S 99 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5555 1000 100 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.ppid, 99);
        assert_eq!(s.start_ticks, 5555);
        assert!(parse_stat("1 (x) S").is_none());
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat(")(").is_none());
    }

    #[test]
    fn cmdline_bounds() {
        assert_eq!(split_cmdline(b"sleep\x0060\x00", 10, 100), vec!["sleep", "60"]);
        assert_eq!(split_cmdline(b"", 10, 100), Vec::<String>::new());
        assert_eq!(split_cmdline(b"a\x00b\x00c\x00d", 2, 100), vec!["a", "b"]);
        assert_eq!(split_cmdline(b"abcdef", 2, 3), vec!["abc"]);
        // a process that rewrote its argv as one string with spaces
        assert_eq!(split_cmdline(b"nginx: worker process", 8, 100), vec!["nginx: worker process"]);
        assert_eq!(split_cmdline(b"\xff\xfe", 8, 100), vec!["\u{FFFD}\u{FFFD}"]);
        assert_eq!(truncate("h\u{e9}llo".into(), 2), "h");
        assert_eq!(join_cmdline(&["a".into(), "bb".into(), "ccc".into()], 100), "a bb ccc");
        assert_eq!(join_cmdline(&["a".into(), "bb".into(), "ccc".into()], 5), "a bb ");
    }
}

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
    /// Field 5: process group id (the reader's pid namespace: host view).
    pub pgrp: u32,
    /// Field 6: session id (host view).
    pub session: u32,
    /// Field 7: controlling terminal's device number (0: none).
    pub tty_nr: u64,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Bytes of `/proc/<pid>/environ` read (Falco's scap reads 4 KiB; Kubernetes
/// service variables often make environments larger than that).
pub const MAX_ENV_READ: usize = 16 * 1024;
/// Environment variables kept per process.
pub const MAX_ENV_VARS: usize = 512;

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
    let pgrp = rest.get(2)?.parse().ok()?;
    let session = rest.get(3)?.parse().ok()?;
    let tty_nr = rest.get(4)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(Stat { comm, ppid, pgrp, session, tty_nr, start_ticks })
}

/// The capability sets of a `/proc/<pid>/status` text (CapInh, CapPrm, CapEff).
pub fn parse_status_caps(text: &str) -> Option<model::Caps> {
    let hex = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    Some(model::Caps {
        effective: hex("CapEff:")?,
        permitted: hex("CapPrm:")?,
        inheritable: Some(hex("CapInh:")?),
    })
}

/// Split a NUL-separated `environ` into at most `max_vars` variables, each cut
/// to `max_len` bytes; a last variable cut by the read bound is dropped.
pub fn split_environ(raw: &[u8], truncated: bool, max_vars: usize, max_len: usize) -> Vec<String> {
    let mut parts: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    // The text after the last NUL is empty, or a variable the bound cut.
    if truncated || raw.last() != Some(&0) {
        parts.pop();
    }
    parts
        .into_iter()
        .filter(|v| !v.is_empty())
        .take(max_vars)
        .map(|v| truncate(String::from_utf8_lossy(v).into_owned(), max_len))
        .collect()
}

/// The environment of a process, bounded (`None` when it cannot be read).
pub fn read_environ(proc_root: &Path, pid: u32, max_read: usize, max_vars: usize) -> Option<Vec<String>> {
    let raw = read_bounded(&proc_root.join(pid.to_string()).join("environ"), max_read + 1).ok()?;
    let truncated = raw.len() > max_read;
    let raw = &raw[..raw.len().min(max_read)];
    Some(split_environ(raw, truncated, max_vars, max_read))
}

/// Session id, process group id and capability sets of a live process.
pub fn read_ids_and_caps(proc_root: &Path, pid: u32) -> (Option<Stat>, Option<model::Caps>) {
    let dir = proc_root.join(pid.to_string());
    let stat = fs::read_to_string(dir.join("stat")).ok().and_then(|t| parse_stat(&t));
    let caps = fs::read_to_string(dir.join("status")).ok().and_then(|t| parse_status_caps(&t));
    (stat, caps)
}

/// ctime and mtime (ns since the epoch) of the executable `/proc/<pid>/exe`
/// points to, if its path still is `exe` (the process may have exec'd again or
/// exited since the event).
pub fn exe_times(proc_root: &Path, pid: u32, exe: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let link = proc_root.join(pid.to_string()).join("exe");
    let now = fs::read_link(&link).ok()?;
    let now = now.to_string_lossy();
    let now = now.strip_suffix(" (deleted)").unwrap_or(&now);
    if !exe.is_empty() && now.rsplit('/').next() != exe.rsplit('/').next() {
        return None;
    }
    let md = fs::metadata(&link).ok()?;
    let ns = |s: i64, n: i64| {
        u64::try_from(s).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(n).ok()?)
    };
    Some((ns(md.ctime(), md.ctime_nsec())?, ns(md.mtime(), md.mtime_nsec())?))
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
    let caps = fs::read_to_string(dir.join("status")).ok().and_then(|t| parse_status_caps(&t));
    let env = if cfg.read_env {
        read_environ(proc_root, pid, cfg.max_env_read, cfg.max_env_vars).map(Into::into)
    } else {
        None
    };
    let exe = readlink(&dir.join("exe"));
    let exe_times = if exe.is_empty() { None } else { exe_times(proc_root, pid, "") };
    let start_time_ns = if boot_ns > 0 {
        boot_ns.saturating_add(stat.start_ticks.saturating_mul(1_000_000_000) / ticks.max(1))
    } else {
        0
    };
    Ok(ProcInfo {
        pid,
        ppid: stat.ppid,
        comm: stat.comm.into(),
        exe: exe.into(),
        argv: argv.into(),
        cmdline: cmdline.into(),
        cwd: readlink(&dir.join("cwd")).into(),
        start_time_ns,
        exited_at_ns: None,
        source: ProcSource::Proc,
        sid: stat.session,
        pgid: stat.pgrp,
        caps,
        env,
        exe_ctime_ns: exe_times.map(|t| t.0),
        exe_mtime_ns: exe_times.map(|t| t.1),
        sockets: Vec::new(),
        tty: Some(stat.tty_nr),
        // /proc does not tell which overlay layer the executable is in
        exe_upper_layer: None,
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
        let line =
            "1234 (a) b (c)) S 99 1234 1234 34816 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5555 1000 100 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.ppid, 99);
        assert_eq!((s.pgrp, s.session, s.tty_nr), (1234, 1234, 34816));
        assert_eq!(s.start_ticks, 5555);
        assert!(parse_stat("1 (x) S").is_none());
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat(")(").is_none());
    }

    #[test]
    fn status_caps() {
        let text = "Name:\tsh\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n";
        let c = parse_status_caps(text).unwrap();
        assert_eq!((c.effective, c.permitted, c.inheritable), (0xa80425fb, 0xa80425fb, Some(0)));
        assert!(parse_status_caps("CapEff:\tzz\n").is_none());
        assert!(parse_status_caps("").is_none());
    }

    #[test]
    fn environ_bounds() {
        assert_eq!(split_environ(b"A=1\0B=2\0", false, 10, 100), vec!["A=1", "B=2"]);
        // the read bound cut the last variable: dropped, not half-kept
        assert_eq!(split_environ(b"A=1\0B=2\0LONG=abc", true, 10, 100), vec!["A=1", "B=2"]);
        assert_eq!(split_environ(b"A=1\0B=2\0C=3\0", false, 2, 100), vec!["A=1", "B=2"]);
        assert_eq!(split_environ(b"A=12345\0", false, 2, 3), vec!["A=1"]);
        assert_eq!(split_environ(b"", false, 2, 3), Vec::<String>::new());
        assert_eq!(split_environ(b"\0\0X=\xff\0", false, 9, 99), vec!["X=\u{FFFD}"]);
    }

    #[test]
    fn own_process_reads() {
        let me = std::process::id();
        let root = Path::new("/proc");
        let (stat, caps) = read_ids_and_caps(root, me);
        let stat = stat.unwrap();
        // Both read 0 when the leader lives outside our pid namespace (as under
        // CI's runner), so compare with what the kernel tells this process.
        // SAFETY: getsid and getpgid with 0 only query the calling process.
        let (sid, pgid) = unsafe { (libc::getsid(0), libc::getpgid(0)) };
        assert_eq!((stat.session as i32, stat.pgrp as i32), (sid, pgid));
        assert!(caps.is_some());
        let env = read_environ(root, me, MAX_ENV_READ, MAX_ENV_VARS).unwrap();
        assert!(env.len() <= MAX_ENV_VARS);
        let exe = std::env::current_exe().unwrap();
        let (ctime, mtime) = exe_times(root, me, &exe.to_string_lossy()).unwrap();
        assert!(ctime > 1_000_000_000 * 1_000_000_000 && mtime > 0);
        assert!(exe_times(root, me, "/not/this/one").is_none());
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

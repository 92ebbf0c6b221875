//! Rendering events as lines: JSON (the `model::Event` serde shape) or a compact
//! human-readable form.

use model::{Event, EventKind};
use std::fmt::Write as _;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Prints events as lines: `rampart events` to stdout, `rampart capture` to a
/// file (JSON lines, the format `rampart replay` reads).
pub struct EventPrinter<W: Write> {
    out: io::BufWriter<W>,
    format: Format,
}

impl<W: Write> EventPrinter<W> {
    pub fn new(out: W, format: Format) -> Self {
        EventPrinter { out: io::BufWriter::with_capacity(1 << 16, out), format }
    }
}

impl<W: Write> super::pipeline::Consumer for EventPrinter<W> {
    fn event(&mut self, ev: &Event, _: &state::ProcessTable) -> io::Result<()> {
        write_event(&mut self.out, ev, self.format)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes one event as one line.
pub fn write_event(out: &mut impl Write, ev: &Event, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut *out, ev)?;
            out.write_all(b"\n")
        }
        Format::Human => {
            let mut line = human_line(ev);
            line.push('\n');
            out.write_all(line.as_bytes())
        }
    }
}

pub fn human_line(ev: &Event) -> String {
    let mut s = alerts::rfc3339_nanos(ev.ts_ns);
    match &ev.container {
        Some(c) if c.has_metadata() => {
            let _ = write!(s, " {}({})", c.name, c.short_id());
        }
        Some(c) => {
            let _ = write!(s, " {}", c.short_id());
        }
        None => s.push_str(" host"),
    }
    let p = &ev.process;
    let _ = write!(s, " {}[{}", p.comm, p.pid);
    if p.tid != p.pid {
        let _ = write!(s, "/{}", p.tid);
    }
    let _ = write!(s, "] uid={} {}", p.euid, ev.event_type());
    append_args(&mut s, &ev.kind);
    if let Some(ret) = ev.ret {
        let _ = write!(s, " = {ret}");
        if ret < 0 {
            let _ = write!(s, " ({})", model::names::errno_name(-ret).unwrap_or("errno"));
        }
    }
    s
}

fn append_args(s: &mut String, kind: &EventKind) {
    // Debug formatting of strings quotes and escapes odd bytes from containers.
    let _ = match kind {
        EventKind::Exec { exe, argv, argv_truncated, cwd, tty, exe_from_memfd, exe_upper_layer, .. } => {
            let mut r = write!(s, " {exe:?} argv={argv:?} cwd={cwd:?}");
            if *argv_truncated {
                r = r.and(write!(s, " (argv truncated)"));
            }
            if let Some(tty) = tty {
                r = r.and(write!(s, " tty={tty}"));
            }
            if *exe_from_memfd {
                r = r.and(write!(s, " memfd"));
            }
            if *exe_upper_layer == Some(true) {
                r = r.and(write!(s, " upper-layer"));
            }
            r
        }
        EventKind::Fork { child_pid, child_tid, thread } => {
            if *thread {
                write!(s, " thread={child_tid}")
            } else {
                write!(s, " child={child_pid}")
            }
        }
        EventKind::Exit { code, signal, core_dumped } => {
            write!(s, " code={code} signal={signal}{}", if *core_dumped { " core" } else { "" })
        }
        EventKind::Open { path, flags, mode, .. } => {
            let access = match (flags.read, flags.write) {
                (true, true) => "rw",
                (false, true) => "w",
                _ => "r",
            };
            let mut r = write!(s, " {path:?} {access}");
            if flags.create {
                r = r.and(write!(s, " create mode={mode:o}"));
            }
            if flags.truncate {
                r = r.and(write!(s, " trunc"));
            }
            r
        }
        EventKind::Unlink { path, dir } => write!(s, " {path:?}{}", if *dir { " dir" } else { "" }),
        EventKind::Rename { old_path, new_path } | EventKind::Link { old_path, new_path } => {
            write!(s, " {old_path:?} -> {new_path:?}")
        }
        EventKind::Symlink { target, link_path } => write!(s, " {link_path:?} -> {target:?}"),
        EventKind::Mkdir { path, mode } | EventKind::Chmod { path, mode } => {
            write!(s, " {path:?} mode={mode:o}")
        }
        EventKind::Chown { path, uid, gid } => write!(s, " {path:?} uid={} gid={}", *uid as i32, *gid as i32),
        EventKind::Mount { source, target, fstype, flags } => {
            write!(s, " {source:?} on {target:?} type={fstype} flags={flags:#x}")
        }
        EventKind::Umount { target, flags } => write!(s, " {target:?} flags={flags:#x}"),
        EventKind::Socket { domain, sock_type, protocol } => {
            write!(s, " domain={domain} type={sock_type} proto={protocol}")
        }
        EventKind::Connect { fd, local, remote } => {
            let remote = remote.as_ref().map_or_else(|| "?".to_string(), ToString::to_string);
            match local {
                Some(l) => write!(s, " fd={fd} {l} -> {remote}"),
                None => write!(s, " fd={fd} -> {remote}"),
            }
        }
        EventKind::Accept { fd, local, remote } => {
            let mut r = write!(s, " fd={fd}");
            if let Some(remote) = remote {
                r = r.and(write!(s, " from {remote}"));
            }
            if let Some(local) = local {
                r = r.and(write!(s, " on {local}"));
            }
            r
        }
        EventKind::Bind { fd, addr } => match addr {
            Some(a) => write!(s, " fd={fd} {a}"),
            None => write!(s, " fd={fd} ?"),
        },
        EventKind::Listen { fd, backlog, local } => match local {
            Some(l) => write!(s, " fd={fd} {l} backlog={backlog}"),
            None => write!(s, " fd={fd} backlog={backlog}"),
        },
        EventKind::Setuid { syscall, ids } | EventKind::Setgid { syscall, ids } => {
            let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i as i32)).collect();
            write!(s, " {syscall}{ids:?}")
        }
        EventKind::Capset { effective, permitted, inheritable } => {
            write!(s, " eff={effective:#x} prm={permitted:#x} inh={inheritable:#x}")
        }
        EventKind::Ptrace { request, target_pid } => write!(s, " request={request} target={target_pid}"),
        EventKind::ModuleLoad { syscall, path } => match path {
            Some(p) => write!(s, " {syscall} {p:?}"),
            None => write!(s, " {syscall}"),
        },
        EventKind::Setns { fd, ns_path, nstype } => {
            write!(s, " fd={fd} ns={} nstype={nstype:#x}", ns_path.as_deref().unwrap_or("?"))
        }
        EventKind::Unshare { flags } => write!(s, " flags={flags:#x}"),
        EventKind::MemfdCreate { name, flags } => write!(s, " {name:?} flags={flags:#x}"),
        EventKind::Bpf { cmd } => write!(s, " cmd={cmd}"),
        EventKind::Capable { cap_name, granted, .. } => {
            write!(s, " {cap_name} {}", if *granted { "granted" } else { "denied" })
        }
        EventKind::NetDeny { op, proto, addr, entry, entry_detail, count } => {
            let addr = addr.as_ref().map_or_else(|| "?".to_string(), ToString::to_string);
            let mut r = write!(s, " {op} {proto} {addr} by {entry}");
            if let Some(d) = entry_detail {
                r = r.and(write!(s, " ({d})"));
            }
            if *count > 1 {
                r = r.and(write!(s, " x{count}"));
            }
            r
        }
        EventKind::Flow(f) => {
            let mut r = write!(
                s,
                " {} {} {} <-> {} in {} B/{} pkts out {} B/{} pkts",
                f.phase.as_str(),
                f.proto,
                f.local,
                f.remote,
                f.bytes_in,
                f.packets_in,
                f.bytes_out,
                f.packets_out
            );
            if let Some(why) = &f.end_reason {
                r = r.and(write!(s, " ({why})"));
            }
            r
        }
        EventKind::Dns { proto, direction, remote, response, name, qtype, rcode, answers, .. } => {
            // name and answers are escaped by the parser: printable ASCII only
            let what = if *response { "answer" } else { "query" };
            let mut r = write!(s, " {what} {direction} {proto} {remote} {name} {qtype}");
            if let Some(rc) = rcode {
                r = r.and(write!(s, " {rc}"));
            }
            for a in answers {
                r = r.and(write!(s, " {}={}", a.rtype, a.data));
            }
            r
        }
        EventKind::Netstat(w) => write!(
            s,
            " over={} window={}s pps in/out {}/{} B/s in/out {}/{} syn/s in/out {}/{} half_open={} dsts={} hosts={}",
            w.over.join(","),
            w.window_s,
            w.pps_in,
            w.pps_out,
            w.bytes_ps_in,
            w.bytes_ps_out,
            w.syn_ps_in,
            w.syn_ps_out,
            w.half_open,
            w.dsts,
            w.hosts
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Container, OpenFlags, ProcessCtx, SockAddr};
    use std::sync::Arc;

    fn ev(kind: EventKind, ret: Option<i64>) -> Event {
        Event {
            ts_ns: 1_700_000_000_123_456_789,
            process: ProcessCtx { pid: 42, tid: 42, comm: "sh".into(), ..Default::default() },
            container: Some(Arc::new(Container {
                id: "abcdef0123456789".into(),
                name: "web".into(),
                ..Default::default()
            })),
            ret,
            syscall: None,
            kind,
        }
    }

    #[test]
    fn human_open_line() {
        let line = human_line(&ev(
            EventKind::Open {
                path: "/tmp/x".into(),
                flags: OpenFlags::from_raw(0o1101),
                mode: 0o644,
                raw_path: None,
            },
            Some(3),
        ));
        assert_eq!(line, "2023-11-14T22:13:20.123456789Z web(abcdef012345) sh[42] uid=0 open \"/tmp/x\" w create mode=644 trunc = 3");
    }

    #[test]
    fn human_failed_connect_names_errno() {
        let remote = SockAddr::Inet { ip: "127.0.0.1".parse().unwrap(), port: 9 };
        let line =
            human_line(&ev(EventKind::Connect { fd: 3, local: None, remote: Some(remote) }, Some(-111)));
        assert!(line.ends_with("connect fd=3 -> 127.0.0.1:9 = -111 (ECONNREFUSED)"), "{line}");
    }

    #[test]
    fn odd_bytes_are_escaped() {
        let line = human_line(&ev(EventKind::Unlink { path: "/tmp/a\nb".into(), dir: false }, Some(0)));
        assert!(line.contains("\"/tmp/a\\nb\""), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn json_line_is_one_line() {
        let mut out = Vec::new();
        write_event(&mut out, &ev(EventKind::Unshare { flags: 0x20000 }, Some(0)), Format::Json).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "unshare");
        assert_eq!(v["container"]["name"], "web");
    }
}

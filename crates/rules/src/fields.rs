//! The field registry: every field a condition or an output can use, with its
//! type, documentation and extractor over [`model::Event`].

use crate::names;
use model::{Container, Event, EventKind, SockAddr};
use model::{ProcInfo, ProcessLookup};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// What evaluation may use besides the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvalCtx<'a> {
    /// Processes by pid, for parent and ancestor fields (`proc.pname`,
    /// `proc.aname[N]`, ...). Without it those fields have no value.
    pub procs: Option<&'a dyn ProcessLookup>,
    /// The host name, for `evt.hostname`.
    pub hostname: Option<&'a str>,
    /// The event's sequence number, for `evt.num` (numbers start at 1; 0 = not
    /// numbered, and `evt.num` is then 1).
    pub event_num: u64,
}

/// The type of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    U64,
    I64,
    Bool,
    IpAddr,
    IpNet,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::U64 => "u64",
            FieldType::I64 => "i64",
            FieldType::Bool => "bool",
            FieldType::IpAddr => "ipaddr",
            FieldType::IpNet => "ipnet",
        }
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::U64 | FieldType::I64)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The argument a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgSpec {
    /// No argument.
    None,
    /// Optional ancestor index `[N]` (0 = the process itself); without it the
    /// field is a list over all ancestors (parent first).
    Ancestor,
    /// A required key, as `[KEY]` or `.KEY`.
    Key,
    /// An optional key, as `[KEY]` (`proc.env`, `proc.env[HOME]`).
    OptKey,
    /// An event argument, by name (`.name`, `[name]`) or by position (`[N]`).
    EventArg,
}

/// A field's argument as written in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    None,
    Index(usize),
    Key(Box<str>),
}

/// One extracted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// The field has no value on this event.
    None,
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    Bool(bool),
    Ip(IpAddr),
    /// Several values (ancestor lists): a comparison holds when it holds for any.
    List(Vec<Val<'a>>),
}

impl Val<'_> {
    pub fn is_none(&self) -> bool {
        matches!(self, Val::None)
    }

    /// As Falco prints it; `<NA>` when missing.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Val::None => out.push_str("<NA>"),
            Val::Str(s) => out.push_str(s),
            Val::U64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::I64(n) => {
                let _ = write!(out, "{n}");
            }
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Ip(ip) => {
                let _ = write!(out, "{ip}");
            }
            Val::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Val::None => Value::Null,
            Val::Str(s) => Value::String(s.to_string()),
            Val::U64(n) => Value::from(*n),
            Val::I64(n) => Value::from(*n),
            Val::Bool(b) => Value::Bool(*b),
            Val::Ip(ip) => Value::String(ip.to_string()),
            Val::List(items) => Value::Array(items.iter().map(Val::to_json).collect()),
        }
    }
}

pub type Extract = for<'a> fn(&'a Event, &EvalCtx<'a>, &'a Arg) -> Val<'a>;

/// One field of the registry.
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    pub arg: ArgSpec,
    pub doc: &'static str,
    pub(crate) extract: Extract,
}

impl fmt::Debug for FieldDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldDef").field("name", &self.name).field("ty", &self.ty).finish_non_exhaustive()
    }
}

impl FieldDef {
    /// Whether a use with this argument yields a list.
    pub fn is_list(&self, arg: &Arg) -> bool {
        self.arg == ArgSpec::Ancestor && *arg == Arg::None
    }
}

// ---------------------------------------------------------------------------
// helpers

fn s(x: &str) -> Val<'_> {
    if x.is_empty() {
        Val::None
    } else {
        Val::Str(Cow::Borrowed(x))
    }
}

fn owned<'a>(x: String) -> Val<'a> {
    if x.is_empty() {
        Val::None
    } else {
        Val::Str(Cow::Owned(x))
    }
}

fn opt<'a>(x: Option<Val<'a>>) -> Val<'a> {
    x.unwrap_or(Val::None)
}

struct ExecRef<'a> {
    filename: &'a str,
    exe: &'a str,
    argv: &'a [String],
    cwd: &'a str,
    tty: Option<&'a str>,
    memfd: bool,
    upper: Option<bool>,
}

fn exec(ev: &Event) -> Option<ExecRef<'_>> {
    match &ev.kind {
        EventKind::Exec { filename, exe, argv, cwd, tty, exe_from_memfd, exe_upper_layer, .. } => {
            Some(ExecRef {
                filename,
                exe,
                argv,
                cwd,
                tty: tty.as_deref(),
                memfd: *exe_from_memfd,
                upper: *exe_upper_layer,
            })
        }
        _ => None,
    }
}

/// A process as fields see it: the event's own process or an ancestor.
struct PView<'a> {
    pid: u32,
    comm: &'a str,
    exepath: &'a str,
    argv: Option<&'a [String]>,
    cmdline: &'a str,
}

impl<'a> PView<'a> {
    fn from_info(p: &'a ProcInfo) -> Self {
        PView {
            pid: p.pid,
            comm: &p.comm,
            exepath: &p.exe,
            argv: if p.argv.is_empty() { None } else { Some(&p.argv) },
            cmdline: &p.cmdline,
        }
    }

    fn of_event(ev: &'a Event, ctx: &EvalCtx<'a>) -> Self {
        let info = ctx.procs.and_then(|t| t.process(ev.process.pid));
        if let Some(x) = exec(ev) {
            let exepath = if x.exe.is_empty() { x.filename } else { x.exe };
            return PView {
                pid: ev.process.pid,
                comm: &ev.process.comm,
                exepath,
                argv: Some(x.argv),
                cmdline: &ev.process.cmdline,
            };
        }
        let exepath: &str =
            if !ev.process.exe.is_empty() { &ev.process.exe } else { info.map(|i| &*i.exe).unwrap_or("") };
        let argv = info.and_then(|i| if i.argv.is_empty() { None } else { Some(&*i.argv) });
        let cmdline: &str = if !ev.process.cmdline.is_empty() {
            &ev.process.cmdline
        } else {
            info.map(|i| &*i.cmdline).unwrap_or("")
        };
        PView { pid: ev.process.pid, comm: &ev.process.comm, exepath, argv, cmdline }
    }

    /// argv[0] (Falco's `proc.exe`).
    fn arg0(&self) -> Val<'a> {
        if let Some(a) = self.argv.and_then(|a| a.first()) {
            return s(a);
        }
        s(self.cmdline.split(' ').next().unwrap_or(""))
    }

    /// The arguments without argv[0], joined by spaces (Falco's `proc.args`).
    fn args(&self) -> Cow<'a, str> {
        if let Some(a) = self.argv {
            if a.len() <= 1 {
                return Cow::Borrowed("");
            }
            if a.len() == 2 {
                return Cow::Borrowed(&a[1]);
            }
            return Cow::Owned(a[1..].join(" "));
        }
        Cow::Borrowed(self.cmdline.split_once(' ').map(|(_, r)| r).unwrap_or(""))
    }

    /// `name args` (Falco's `proc.cmdline`).
    fn cmdline(&self) -> Val<'a> {
        let name =
            if self.comm.is_empty() { self.exepath.rsplit('/').next().unwrap_or("") } else { self.comm };
        // Already in Falco's format when argv[0] is the name.
        if let Some(a) = self.argv {
            if a.len() <= 1 && a.first().is_none_or(|a0| a0 == name) {
                return s(name);
            }
        } else if let Some(rest) = self.cmdline.strip_prefix(name) {
            if rest.is_empty() || rest.starts_with(' ') {
                return s(self.cmdline);
            }
        }
        let args = self.args();
        if args.is_empty() {
            return s(name);
        }
        let mut out = String::with_capacity(name.len() + 1 + args.len());
        out.push_str(name);
        out.push(' ');
        out.push_str(&args);
        owned(out)
    }
}

const MAX_ANCESTORS: usize = 64;

fn parent_pid(ev: &Event, ctx: &EvalCtx<'_>) -> u32 {
    if ev.process.ppid != 0 {
        return ev.process.ppid;
    }
    ctx.procs.and_then(|t| t.process(ev.process.pid)).map(|p| p.ppid).unwrap_or(0)
}

/// Ancestor `n` (1 = parent) from the process table.
fn ancestor<'a>(ev: &'a Event, ctx: &EvalCtx<'a>, n: usize) -> Option<&'a ProcInfo> {
    let table = ctx.procs?;
    if n == 0 || n > MAX_ANCESTORS {
        return None;
    }
    let mut pid = parent_pid(ev, ctx);
    let mut prev = ev.process.pid;
    for i in 1..=n {
        if pid == 0 || pid == prev {
            return None;
        }
        let p = table.process(pid)?;
        if i == n {
            return Some(p);
        }
        prev = pid;
        pid = p.ppid;
    }
    None
}

fn ancestors<'a>(ev: &'a Event, ctx: &EvalCtx<'a>) -> Vec<&'a ProcInfo> {
    let mut out = Vec::new();
    let Some(table) = ctx.procs else { return out };
    let mut pid = parent_pid(ev, ctx);
    let mut seen = vec![ev.process.pid];
    while out.len() < MAX_ANCESTORS && pid != 0 && !seen.contains(&pid) {
        let Some(p) = table.process(pid) else { break };
        out.push(p);
        seen.push(pid);
        pid = p.ppid;
    }
    out
}

/// An ancestor-indexed field: `[0]` is the process itself, `[1]` the parent;
/// without index, the list of all ancestors.
fn anc<'a>(ev: &'a Event, ctx: &EvalCtx<'a>, arg: &'a Arg, f: fn(&PView<'a>) -> Val<'a>) -> Val<'a> {
    match arg {
        Arg::Index(0) => f(&PView::of_event(ev, ctx)),
        Arg::Index(n) => opt(ancestor(ev, ctx, *n).map(|p| f(&PView::from_info(p)))),
        _ => {
            let list: Vec<Val<'a>> = ancestors(ev, ctx)
                .into_iter()
                .map(|p| f(&PView::from_info(p)))
                .filter(|v| !v.is_none())
                .collect();
            if list.is_empty() {
                Val::None
            } else {
                Val::List(list)
            }
        }
    }
}

fn parent<'a>(ev: &'a Event, ctx: &EvalCtx<'a>, f: fn(&PView<'a>) -> Val<'a>) -> Val<'a> {
    opt(ancestor(ev, ctx, 1).map(|p| f(&PView::from_info(p))))
}

fn container(ev: &Event) -> Option<&Container> {
    ev.container.as_deref()
}

// --- container mounts (Falco's container.mount* fields)

/// One mount as Falco prints it: `source:dest:mode:rdrw:propagation`.
fn mount_info(m: &model::Mount) -> String {
    format!("{}:{}:{}:{}:{}", m.source, m.destination, m.mode, !m.read_only, m.propagation)
}

/// Whether `path` matches a mount argument: exact, or a glob when it has `*?[`.
fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern.contains(['*', '?', '[']) {
        use crate::matchers::Glob;
        use std::collections::HashMap;
        // Patterns come from rule field arguments (few); compiling a glob
        // costs far more than matching it, so each is compiled once.
        thread_local!(static GLOBS: std::cell::RefCell<HashMap<String, Option<Glob>>> = Default::default());
        GLOBS.with(|globs| {
            let mut globs = globs.borrow_mut();
            if globs.len() >= 1024 && !globs.contains_key(pattern) {
                globs.clear();
            }
            if !globs.contains_key(pattern) {
                globs.insert(pattern.to_string(), Glob::new(pattern, false).ok());
            }
            globs[pattern].as_ref().is_some_and(|g| g.matches(path))
        })
    } else {
        pattern == path
    }
}

/// The mount an argument selects: `[N]` by position, else the first whose
/// `by_dest` (destination) or source matches the argument as a path or glob.
fn select_mount<'a>(ev: &'a Event, arg: &Arg, by_dest: bool) -> Option<&'a model::Mount> {
    let c = container(ev)?;
    let Arg::Key(k) = arg else { return None };
    if let Ok(i) = k.trim().parse::<usize>() {
        return c.mounts.get(i);
    }
    c.mounts.iter().find(|m| path_matches(k, if by_dest { &m.destination } else { &m.source }))
}

fn split_image(image: &str) -> (&str, Option<&str>) {
    let image = image.split('@').next().unwrap_or(image);
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], Some(&image[slash + i + 1..])),
        None => (image, None),
    }
}

fn k8s<'a>(ev: &'a Event, pick: fn(&'a Container) -> Option<&'a str>, label: &str) -> Val<'a> {
    let Some(c) = container(ev) else { return Val::None };
    if let Some(v) = pick(c) {
        return s(v);
    }
    opt(c.labels.get(label).map(|v| s(v)))
}

// --- network

struct Net<'a> {
    local: Option<&'a SockAddr>,
    remote: Option<&'a SockAddr>,
    /// The local end is the server (accept, bind, listen).
    local_is_server: bool,
}

fn net(ev: &Event) -> Option<Net<'_>> {
    match &ev.kind {
        EventKind::Connect { local, remote, .. } => {
            Some(Net { local: local.as_ref(), remote: remote.as_ref(), local_is_server: false })
        }
        EventKind::Accept { local, remote, .. } => {
            Some(Net { local: local.as_ref(), remote: remote.as_ref(), local_is_server: true })
        }
        EventKind::Bind { addr, .. } => {
            Some(Net { local: addr.as_ref(), remote: None, local_is_server: true })
        }
        EventKind::Listen { local, .. } => {
            Some(Net { local: local.as_ref(), remote: None, local_is_server: true })
        }
        // A denied bind is the local (server) end; anything else names the peer.
        EventKind::NetDeny { op, addr, .. } if op == "bind" => {
            Some(Net { local: addr.as_ref(), remote: None, local_is_server: true })
        }
        EventKind::NetDeny { op, addr, .. } => {
            Some(Net { local: None, remote: addr.as_ref(), local_is_server: op == "ingress" })
        }
        // The kernel does not say which end listened: the end with the lower
        // port is taken as the server (clients use high ephemeral ports).
        EventKind::Flow(f) => Some(Net {
            local: Some(&f.local),
            remote: Some(&f.remote),
            local_is_server: f.local.port() < f.remote.port(),
        }),
        // The DNS server's end (port 53) is the server.
        EventKind::Dns { local, remote, .. } => {
            Some(Net { local: Some(local), remote: Some(remote), local_is_server: local.port() == Some(53) })
        }
        _ => None,
    }
}

impl<'a> Net<'a> {
    fn server(&self) -> Option<&'a SockAddr> {
        if self.local_is_server {
            self.local
        } else {
            self.remote
        }
    }
    fn client(&self) -> Option<&'a SockAddr> {
        if self.local_is_server {
            self.remote
        } else {
            self.local
        }
    }
    fn any(&self) -> Option<&'a SockAddr> {
        self.remote.or(self.local)
    }
}

fn ip_of(a: Option<&SockAddr>) -> Val<'static> {
    opt(a.and_then(SockAddr::ip).map(Val::Ip))
}

fn port_of(a: Option<&SockAddr>) -> Val<'static> {
    opt(a.and_then(SockAddr::port).map(|p| Val::U64(u64::from(p))))
}

fn sock_ip(ev: &Event, f: for<'b> fn(&Net<'b>) -> Option<&'b SockAddr>) -> Val<'static> {
    opt(net(ev).map(|n| ip_of(f(&n))))
}

/// fd.sip.name and friends: the name the event's container itself resolved
/// to that end's address (its own DNS answers, kept by the process table).
fn ip_name<'a>(ev: &Event, ctx: &EvalCtx<'a>, f: for<'b> fn(&Net<'b>) -> Option<&'b SockAddr>) -> Val<'a> {
    let ip = net(ev).and_then(|n| f(&n)).and_then(SockAddr::ip);
    opt(ip.and_then(|ip| ctx.procs?.dns_name(ev.process.cgroup_id, ip, ev.ts_ns)).map(s))
}

fn sock_port(ev: &Event, f: for<'b> fn(&Net<'b>) -> Option<&'b SockAddr>) -> Val<'static> {
    opt(net(ev).map(|n| port_of(f(&n))))
}

fn both_ips(ev: &Event) -> Val<'static> {
    let Some(n) = net(ev) else { return Val::None };
    let v: Vec<Val<'static>> =
        [n.local, n.remote].iter().filter_map(|a| a.and_then(SockAddr::ip)).map(Val::Ip).collect();
    if v.is_empty() {
        Val::None
    } else {
        Val::List(v)
    }
}

fn both_ports(ev: &Event) -> Val<'static> {
    let Some(n) = net(ev) else { return Val::None };
    let v: Vec<Val<'static>> = [n.local, n.remote]
        .iter()
        .filter_map(|a| a.and_then(SockAddr::port))
        .map(|p| Val::U64(u64::from(p)))
        .collect();
    if v.is_empty() {
        Val::None
    } else {
        Val::List(v)
    }
}

fn family_char(a: &SockAddr) -> &'static str {
    match a {
        SockAddr::Inet { .. } => "4",
        SockAddr::Inet6 { .. } => "6",
        SockAddr::Unix { .. } => "u",
        SockAddr::Other { .. } => "o",
    }
}

/// The path of a file descriptor event (open, finit_module).
fn fd_path(ev: &Event) -> Option<&str> {
    match &ev.kind {
        EventKind::Open { path, .. } => Some(path),
        EventKind::ModuleLoad { path: Some(p), .. } => Some(p),
        _ => None,
    }
}

fn fd_name(ev: &Event) -> Val<'_> {
    if let Some(p) = fd_path(ev) {
        return s(p);
    }
    match &ev.kind {
        EventKind::MemfdCreate { name, .. } => owned(format!("memfd:{name}")),
        EventKind::Setns { ns_path: Some(p), .. } => s(p),
        _ => {
            let Some(n) = net(ev) else { return Val::None };
            if let Some(SockAddr::Unix { path }) = n.remote.or(n.local) {
                return s(path);
            }
            match (n.client(), n.server()) {
                (Some(c), Some(sv)) => owned(format!("{c}->{sv}")),
                (None, Some(sv)) if n.local_is_server => owned(sv.to_string()),
                (None, Some(sv)) => owned(format!("->{sv}")),
                (Some(c), None) => owned(format!("{c}->")),
                (None, None) => Val::None,
            }
        }
    }
}

fn dirname(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => "",
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The filesystem paths of an event: `(name, source, target)` as Falco's
/// `fs.path.*` fields.
fn fs_paths(ev: &Event) -> (Option<&str>, Option<&str>, Option<&str>) {
    match &ev.kind {
        EventKind::Open { path, .. }
        | EventKind::Unlink { path, .. }
        | EventKind::Mkdir { path, .. }
        | EventKind::Chmod { path, .. }
        | EventKind::Chown { path, .. } => (Some(path), None, None),
        EventKind::ModuleLoad { path: Some(path), .. } => (Some(path), None, None),
        EventKind::Rename { old_path, new_path } | EventKind::Link { old_path, new_path } => {
            (None, Some(old_path), Some(new_path))
        }
        EventKind::Symlink { target, link_path } => (None, Some(target), Some(link_path)),
        EventKind::Mount { source, target, .. } => (Some(target), Some(source), Some(target)),
        EventKind::Umount { target, .. } => (Some(target), None, None),
        _ => (None, None, None),
    }
}

// --- event arguments

/// One event argument: name, rendered text, raw number (when numeric).
pub(crate) struct EvArg<'a> {
    pub name: &'static str,
    pub text: Cow<'a, str>,
    pub raw: Option<i64>,
}

fn a_s<'a>(name: &'static str, v: &'a str) -> EvArg<'a> {
    EvArg { name, text: Cow::Borrowed(v), raw: None }
}
fn a_n(name: &'static str, v: i64) -> EvArg<'static> {
    EvArg { name, text: Cow::Owned(v.to_string()), raw: Some(v) }
}
fn a_r(name: &'static str, text: String, raw: i64) -> EvArg<'static> {
    EvArg { name, text: Cow::Owned(text), raw: Some(raw) }
}
fn a_o(name: &'static str, text: String) -> EvArg<'static> {
    EvArg { name, text: Cow::Owned(text), raw: None }
}
fn id(v: u32) -> i64 {
    if v == u32::MAX {
        -1
    } else {
        i64::from(v)
    }
}

/// Every argument name some event has (for compile-time checks of `evt.arg.X`).
pub(crate) const ARG_NAMES: &[&str] = &[
    "res",
    "filename",
    "exe",
    "args",
    "cwd",
    "tty",
    "pid",
    "ptid",
    "comm",
    "trusted_exepath",
    "cap_effective",
    "cap_permitted",
    "cap_inheritable",
    "child_pid",
    "child_tid",
    "flags",
    "status",
    "ret",
    "sig",
    "core",
    "fd",
    "name",
    "path",
    "mode",
    "oldpath",
    "newpath",
    "target",
    "linkpath",
    "uid",
    "gid",
    "dev",
    "dir",
    "type",
    "domain",
    "proto",
    "addr",
    "tuple",
    "backlog",
    "ruid",
    "euid",
    "suid",
    "rgid",
    "egid",
    "sgid",
    "request",
    "nstype",
    "ns",
    "cmd",
    "cap",
    "granted",
    "op",
    "entry",
    "count",
    "phase",
    "local",
    "remote",
    "bytes_in",
    "bytes_out",
    "payload_in",
    "payload_out",
    "packets_in",
    "packets_out",
    "duration",
    "tcp_state",
    "retransmits",
    "reason",
    "id",
    "rcode",
    "answers",
];

pub(crate) fn event_args(ev: &Event) -> Vec<EvArg<'_>> {
    let mut v = Vec::new();
    if let Some(r) = ev.ret {
        if !matches!(ev.kind, EventKind::Exit { .. }) {
            v.push(a_n("res", r));
        }
    }
    match &ev.kind {
        EventKind::Exec { filename, exe, argv, cwd, tty, cap_effective, cap_permitted, .. } => {
            v.push(a_s("filename", filename));
            v.push(a_s("exe", argv.first().map(String::as_str).unwrap_or(filename.as_str())));
            v.push(a_o("args", argv.get(1..).map(|a| a.join(" ")).unwrap_or_default()));
            v.push(a_s("cwd", cwd));
            v.push(a_n("tty", tty.as_deref().map(model::tty_nr).unwrap_or(0) as i64));
            v.push(a_n("pid", i64::from(ev.process.pid)));
            v.push(a_n("ptid", i64::from(ev.process.ppid)));
            v.push(a_s("comm", &ev.process.comm));
            v.push(a_s("trusted_exepath", if exe.is_empty() { filename } else { exe }));
            v.push(a_r("cap_effective", names::cap_set(*cap_effective), *cap_effective as i64));
            v.push(a_r("cap_permitted", names::cap_set(*cap_permitted), *cap_permitted as i64));
        }
        EventKind::Fork { child_pid, child_tid, thread } => {
            v.push(a_n("child_pid", i64::from(*child_pid)));
            v.push(a_n("child_tid", i64::from(*child_tid)));
            v.push(a_o("flags", if *thread { "CLONE_THREAD".into() } else { "0".into() }));
        }
        EventKind::Exit { code, signal, core_dumped } => {
            v.push(a_n("status", i64::from(*code)));
            v.push(a_n("ret", i64::from(*code)));
            v.push(a_n("sig", i64::from(*signal)));
            v.push(a_n("core", i64::from(*core_dumped)));
        }
        EventKind::Open { path, flags, mode, .. } => {
            if let Some(r) = ev.ret {
                v.push(a_n("fd", r));
            }
            v.push(a_s("name", path));
            v.push(a_r("flags", names::open_flags(flags.raw), i64::from(flags.raw)));
            v.push(a_r("mode", format!("{mode:04o}"), i64::from(*mode)));
        }
        EventKind::Unlink { path, dir } => {
            v.push(a_s("name", path));
            v.push(a_s("path", path));
            v.push(a_r(
                "flags",
                if *dir { "AT_REMOVEDIR".into() } else { "0".into() },
                if *dir { 0x200 } else { 0 },
            ));
        }
        EventKind::Rename { old_path, new_path } | EventKind::Link { old_path, new_path } => {
            v.push(a_s("oldpath", old_path));
            v.push(a_s("newpath", new_path));
        }
        EventKind::Symlink { target, link_path } => {
            v.push(a_s("target", target));
            v.push(a_s("linkpath", link_path));
        }
        EventKind::Mkdir { path, mode } => {
            v.push(a_s("path", path));
            v.push(a_r("mode", format!("{mode:04o}"), i64::from(*mode)));
        }
        EventKind::Chmod { path, mode } => {
            v.push(a_s("filename", path));
            v.push(a_s("path", path));
            v.push(a_r("mode", names::mode_names(*mode), i64::from(*mode)));
        }
        EventKind::Chown { path, uid, gid } => {
            v.push(a_s("path", path));
            v.push(a_n("uid", id(*uid)));
            v.push(a_n("gid", id(*gid)));
        }
        EventKind::Mount { source, target, fstype, flags } => {
            v.push(a_s("dev", source));
            v.push(a_s("dir", target));
            v.push(a_s("type", fstype));
            v.push(a_r("flags", names::mount_flags(*flags), *flags as i64));
        }
        EventKind::Umount { target, flags } => {
            v.push(a_s("name", target));
            v.push(a_n("flags", i64::from(*flags)));
        }
        EventKind::Socket { domain, sock_type, protocol } => {
            v.push(a_r("domain", names::socket_family(*domain), i64::from(*domain)));
            v.push(a_n("type", i64::from(*sock_type)));
            v.push(a_n("proto", i64::from(*protocol)));
        }
        EventKind::Connect { fd, local, remote } => {
            v.push(a_n("fd", i64::from(*fd)));
            if let Some(r) = remote {
                v.push(a_o("addr", r.to_string()));
            }
            if let Val::Str(t) = fd_name(ev) {
                v.push(EvArg { name: "tuple", text: t, raw: None });
            }
            let _ = local;
        }
        EventKind::Accept { fd, .. } => {
            v.push(a_n("fd", ev.ret.unwrap_or(i64::from(*fd))));
            if let Val::Str(t) = fd_name(ev) {
                v.push(EvArg { name: "tuple", text: t, raw: None });
            }
        }
        EventKind::Bind { fd, addr } => {
            v.push(a_n("fd", i64::from(*fd)));
            if let Some(a) = addr {
                v.push(a_o("addr", a.to_string()));
            }
        }
        EventKind::Listen { fd, backlog, .. } => {
            v.push(a_n("fd", i64::from(*fd)));
            v.push(a_n("backlog", i64::from(*backlog)));
        }
        EventKind::Setuid { syscall, ids } | EventKind::Setgid { syscall, ids } => {
            let is_uid = matches!(ev.kind, EventKind::Setuid { .. });
            let names: &[&'static str] = match (syscall.as_str(), is_uid) {
                ("setreuid", true) => &["ruid", "euid"],
                ("setresuid", true) => &["ruid", "euid", "suid"],
                (_, true) => &["uid"],
                ("setregid", false) => &["rgid", "egid"],
                ("setresgid", false) => &["rgid", "egid", "sgid"],
                (_, false) => &["gid"],
            };
            for (n, i) in names.iter().zip(ids.iter()) {
                v.push(a_n(n, id(*i)));
            }
        }
        EventKind::Capset { effective, permitted, inheritable } => {
            v.push(a_r("cap_inheritable", names::cap_set(*inheritable), *inheritable as i64));
            v.push(a_r("cap_permitted", names::cap_set(*permitted), *permitted as i64));
            v.push(a_r("cap_effective", names::cap_set(*effective), *effective as i64));
        }
        EventKind::Ptrace { request, target_pid } => {
            v.push(a_r("request", names::ptrace_request(*request), *request));
            v.push(a_n("pid", i64::from(*target_pid)));
        }
        EventKind::ModuleLoad { path, .. } => {
            if let Some(p) = path {
                v.push(a_s("path", p));
                v.push(a_s("name", p));
            }
        }
        EventKind::Setns { fd, ns_path, nstype } => {
            v.push(a_n("fd", i64::from(*fd)));
            v.push(a_r("nstype", names::clone_flags(u64::from(*nstype)), i64::from(*nstype)));
            if let Some(p) = ns_path {
                v.push(a_s("ns", p));
            }
        }
        EventKind::Unshare { flags } => v.push(a_r("flags", names::clone_flags(*flags), *flags as i64)),
        EventKind::MemfdCreate { name, flags } => {
            v.push(a_s("name", name));
            v.push(a_r("flags", names::memfd_flags(*flags), i64::from(*flags)));
        }
        EventKind::Bpf { cmd } => v.push(a_r("cmd", names::bpf_cmd(*cmd), i64::from(*cmd))),
        EventKind::Capable { cap, cap_name, granted, .. } => {
            let text = if cap_name.is_empty() { names::cap_name(*cap) } else { cap_name.clone() };
            v.push(a_r("cap", text, i64::from(*cap)));
            v.push(a_r("granted", granted.to_string(), i64::from(*granted)));
        }
        EventKind::NetDeny { op, proto, addr, entry, entry_detail, count } => {
            v.push(a_s("op", op));
            if let Some(a) = addr {
                v.push(a_o("addr", a.to_string()));
            }
            v.push(a_s("proto", proto));
            let entry = match entry_detail {
                Some(d) => a_o("entry", format!("{entry} ({d})")),
                None => a_s("entry", entry),
            };
            v.push(entry);
            v.push(a_n("count", i64::try_from(*count).unwrap_or(i64::MAX)));
        }
        EventKind::Flow(f) => {
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            v.push(a_s("phase", f.phase.as_str()));
            v.push(a_s("proto", &f.proto));
            v.push(a_o("local", f.local.to_string()));
            v.push(a_o("remote", f.remote.to_string()));
            v.push(a_n("bytes_in", n(f.bytes_in)));
            v.push(a_n("bytes_out", n(f.bytes_out)));
            v.push(a_n("payload_in", n(f.payload_in)));
            v.push(a_n("payload_out", n(f.payload_out)));
            v.push(a_n("packets_in", n(f.packets_in)));
            v.push(a_n("packets_out", n(f.packets_out)));
            v.push(a_n("duration", n(f.duration_ns)));
            if let Some(st) = &f.tcp_state {
                v.push(a_s("tcp_state", st));
            }
            v.push(a_n("retransmits", i64::from(f.retransmits)));
            if let Some(r) = &f.end_reason {
                v.push(a_s("reason", r));
            }
        }
        EventKind::Dns { proto, local, remote, id, name, qtype, rcode, answers, .. } => {
            v.push(a_s("proto", proto));
            v.push(a_o("local", local.to_string()));
            v.push(a_o("remote", remote.to_string()));
            v.push(a_n("id", i64::from(*id)));
            v.push(a_s("name", name));
            v.push(a_s("type", qtype));
            if let Some(rc) = rcode {
                v.push(a_s("rcode", rc));
            }
            if !answers.is_empty() {
                let list: Vec<String> = answers.iter().map(|a| format!("{}={}", a.rtype, a.data)).collect();
                v.push(a_o("answers", list.join(",")));
            }
        }
        // Its numbers are the netstat.* fields.
        EventKind::Netstat(_) => {}
    }
    v
}

fn evt_arg<'a>(ev: &'a Event, _c: &EvalCtx<'a>, arg: &'a Arg) -> Val<'a> {
    let args = event_args(ev);
    let found = match arg {
        Arg::Index(i) => args.into_iter().nth(*i),
        Arg::Key(k) => args.into_iter().find(|a| a.name == &**k),
        Arg::None => None,
    };
    opt(found.map(|a| Val::Str(a.text)))
}

fn evt_rawarg<'a>(ev: &'a Event, _c: &EvalCtx<'a>, arg: &'a Arg) -> Val<'a> {
    let Arg::Key(k) = arg else { return Val::None };
    opt(event_args(ev).into_iter().find(|a| a.name == &**k).and_then(|a| a.raw).map(Val::I64))
}

fn evt_args<'a>(ev: &'a Event, _c: &EvalCtx<'a>, _a: &'a Arg) -> Val<'a> {
    let mut out = String::new();
    for a in event_args(ev) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(a.name);
        out.push('=');
        out.push_str(&a.text);
    }
    owned(out)
}

fn open_flags(ev: &Event) -> Option<(model::OpenFlags, u32)> {
    match &ev.kind {
        EventKind::Open { flags, mode, .. } => Some((*flags, *mode)),
        _ => None,
    }
}

// --- what the process table keeps about the event's own process

/// The event's own process in the table (after the event was applied).
fn own<'a>(ev: &'a Event, ctx: &EvalCtx<'a>) -> Option<&'a ProcInfo> {
    ctx.procs.and_then(|t| t.process(ev.process.pid))
}

fn exec_details(ev: &Event) -> Option<&model::ExecDetails> {
    match &ev.kind {
        EventKind::Exec { details, .. } => details.as_deref(),
        _ => None,
    }
}

/// The capability sets: the event's own (exec, capset), else the last ones
/// the table knows for the process.
fn caps(ev: &Event, ctx: &EvalCtx<'_>) -> Option<model::Caps> {
    let known = || own(ev, ctx).and_then(|p| p.caps);
    match &ev.kind {
        EventKind::Exec { cap_effective, cap_permitted, details, .. } if !ev.failed() => Some(model::Caps {
            effective: *cap_effective,
            permitted: *cap_permitted,
            inheritable: details
                .as_deref()
                .and_then(|d| d.cap_inheritable)
                .or_else(|| known().and_then(|c| c.inheritable)),
        }),
        EventKind::Capset { effective, permitted, inheritable } if !ev.failed() => Some(model::Caps {
            effective: *effective,
            permitted: *permitted,
            inheritable: Some(*inheritable),
        }),
        _ => known(),
    }
}

fn cap_field(ev: &Event, ctx: &EvalCtx<'_>, pick: fn(&model::Caps) -> Option<u64>) -> Val<'static> {
    opt(caps(ev, ctx).as_ref().and_then(pick).map(|v| Val::Str(Cow::Owned(names::cap_set(v)))))
}

/// (session id, process group id), host view, when known.
fn session_ids(ev: &Event, ctx: &EvalCtx<'_>) -> (Option<u32>, Option<u32>) {
    let d = exec_details(ev);
    let p = own(ev, ctx);
    let sid = d.and_then(|d| d.sid).or(p.map(|p| p.sid)).filter(|s| *s != 0);
    let pgid = d.and_then(|d| d.pgid).or(p.map(|p| p.pgid)).filter(|s| *s != 0);
    (sid, pgid)
}

/// Falco's proc.sname: the name of the session leader, the process whose pid
/// is the session id, or else the eldest ancestor in the same session.
fn session_name<'a>(ev: &'a Event, ctx: &EvalCtx<'a>) -> Val<'a> {
    let Some(sid) = session_ids(ev, ctx).0 else { return Val::None };
    if sid == ev.process.pid {
        return s(&ev.process.comm);
    }
    if let Some(leader) = ctx.procs.and_then(|t| t.process(sid)).filter(|p| p.sid == sid || p.sid == 0) {
        return s(&leader.comm);
    }
    opt(ancestors(ev, ctx).into_iter().take_while(|p| p.sid == sid).last().map(|p| s(&p.comm)))
}

/// Falco's proc.vpgid.*: the process group leader, the process whose pid is
/// the group id, else the eldest ancestor in the same group.
fn group_leader<'a>(ev: &'a Event, ctx: &EvalCtx<'a>, f: fn(&PView<'a>) -> Val<'a>) -> Val<'a> {
    let Some(pgid) = session_ids(ev, ctx).1 else { return Val::None };
    if pgid == ev.process.pid {
        return f(&PView::of_event(ev, ctx));
    }
    if let Some(leader) = ctx.procs.and_then(|t| t.process(pgid)).filter(|p| p.pgid == pgid || p.pgid == 0) {
        return f(&PView::from_info(leader));
    }
    opt(ancestors(ev, ctx).into_iter().take_while(|p| p.pgid == pgid).last().map(|p| f(&PView::from_info(p))))
}

fn env<'a>(ev: &'a Event, ctx: &EvalCtx<'a>) -> Option<&'a [String]> {
    match exec_details(ev).and_then(|d| d.env.as_deref()) {
        Some(e) => Some(e),
        None => own(ev, ctx).and_then(|p| p.env.as_deref()),
    }
}

fn env_field<'a>(ev: &'a Event, ctx: &EvalCtx<'a>, arg: &'a Arg) -> Val<'a> {
    let Some(vars) = env(ev, ctx) else { return Val::None };
    match arg {
        Arg::Key(k) => opt(vars.iter().find_map(|v| v.strip_prefix(&**k)?.strip_prefix('=')).map(s)),
        _ => owned(vars.join(" ")),
    }
}

/// (ctime, mtime) of the executable, ns since the epoch.
fn exe_times(ev: &Event, ctx: &EvalCtx<'_>) -> (Option<u64>, Option<u64>) {
    match exec_details(ev) {
        Some(d) if d.exe_ctime_ns.is_some() => (d.exe_ctime_ns, d.exe_mtime_ns),
        _ => own(ev, ctx).map(|p| (p.exe_ctime_ns, p.exe_mtime_ns)).unwrap_or((None, None)),
    }
}

fn start_ns(ev: &Event, ctx: &EvalCtx<'_>) -> Option<u64> {
    own(ev, ctx).map(|p| p.start_time_ns).filter(|t| *t != 0)
}

const EINPROGRESS: i64 = 115;

/// fd.connected: true after a connect that succeeded (or is in progress) and
/// on an accepted connection; false on other socket events.
fn connected(ev: &Event) -> Val<'static> {
    match &ev.kind {
        EventKind::Connect { .. } => Val::Bool(matches!(ev.ret, Some(r) if r >= 0 || r == -EINPROGRESS)),
        EventKind::Accept { .. } if ev.failed() => Val::None,
        EventKind::Accept { .. } => Val::Bool(true),
        EventKind::Bind { .. } | EventKind::Listen { .. } | EventKind::Socket { .. } => Val::Bool(false),
        _ => Val::None,
    }
}

/// fd.name_changed: a connect that succeeded names its fd with the tuple;
/// the other fd events rampart sees leave the name as it was. (Falco's true
/// case of interest, an unconnected UDP socket whose sendto/recvfrom peer
/// changes, needs sendto/recvfrom, which rampart does not capture.)
fn name_changed(ev: &Event) -> Val<'static> {
    match &ev.kind {
        EventKind::Connect { .. } => Val::Bool(matches!(ev.ret, Some(r) if r >= 0 || r == -EINPROGRESS)),
        EventKind::Open { .. }
        | EventKind::Accept { .. }
        | EventKind::Bind { .. }
        | EventKind::Listen { .. }
        | EventKind::Socket { .. }
        | EventKind::MemfdCreate { .. } => Val::Bool(false),
        _ => Val::None,
    }
}

/// A flow event's record, for the flow.* fields.
fn flow<'a>(ev: &'a Event, pick: impl Fn(&'a model::FlowRecord) -> Val<'a>) -> Val<'a> {
    match &ev.kind {
        EventKind::Flow(f) => pick(f),
        _ => Val::None,
    }
}

/// What the dns.* fields read of a `dns` event.
struct DnsView<'a> {
    direction: &'a str,
    id: u16,
    response: bool,
    name: &'a str,
    qtype: &'a str,
    rcode: Option<&'a str>,
    answers: &'a [model::DnsAnswer],
    incomplete: bool,
}

fn dns<'a>(ev: &'a Event, pick: impl Fn(&DnsView<'a>) -> Val<'a>) -> Val<'a> {
    match &ev.kind {
        EventKind::Dns { direction, id, response, name, qtype, rcode, answers, incomplete, .. } => {
            pick(&DnsView {
                direction,
                id: *id,
                response: *response,
                name,
                qtype,
                rcode: rcode.as_deref(),
                answers,
                incomplete: *incomplete,
            })
        }
        _ => Val::None,
    }
}

/// The fields read from the agent's per-container rates: a loaded rule using
/// one of them makes the agent sample every container once a second.
pub const CONTAINER_RATE_FIELDS: &[&str] =
    &["container.cpu_share", "container.syscall_rate", "container.net_rx_rate", "container.net_tx_rate"];

/// One of the event's container's rates (see [`model::ContainerRates`]).
fn rate<'a>(ev: &Event, ctx: &EvalCtx<'a>, pick: impl Fn(&model::ContainerRates) -> Option<u64>) -> Val<'a> {
    let rates = container(ev).and_then(|c| ctx.procs?.container_rates(&c.id));
    opt(rates.as_ref().and_then(pick).map(Val::U64))
}

/// A netstat event's window, for the netstat.* fields.
fn netstat<'a>(ev: &'a Event, pick: impl Fn(&'a model::NetWindow) -> u64) -> Val<'a> {
    match &ev.kind {
        EventKind::Netstat(w) => Val::U64(pick(w)),
        _ => Val::None,
    }
}

/// Answer values of the given types, as a list (no value when none).
fn dns_answers<'a>(d: &DnsView<'a>, types: &[&str], ip: bool) -> Val<'a> {
    let v: Vec<Val<'a>> = d
        .answers
        .iter()
        .filter(|a| types.contains(&a.rtype.as_str()))
        .filter_map(|a| if ip { a.data.parse().ok().map(Val::Ip) } else { Some(s(&a.data)) })
        .collect();
    if v.is_empty() {
        Val::None
    } else {
        Val::List(v)
    }
}

/// The labels of a name in presentation form (an escaped `\.` stays in its
/// label); the root `.` has none.
fn dns_labels(name: &str) -> Vec<&str> {
    let (mut out, mut start, mut escaped) = (Vec::new(), 0, false);
    for (i, c) in name.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '.') => {
                out.push(&name[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&name[start..]);
    out.retain(|l| !l.is_empty());
    out
}

/// Shannon entropy of the name's characters (dots between labels left out),
/// in hundredths of a bit per character. It grows with length and alphabet
/// (a readable name of 60 characters reaches ~450, a hex data label ~390,
/// base32 ~480): a test against repetitive padding, not a detector alone.
pub(crate) fn dns_entropy(name: &str) -> u64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for l in dns_labels(name) {
        for b in l.bytes() {
            counts[usize::from(b)] += 1;
            n += 1;
        }
    }
    if n == 0 {
        return 0;
    }
    let total = f64::from(n);
    let h: f64 =
        counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / total).map(|p| -p * p.log2()).sum();
    (h * 100.0).round() as u64
}

/// fd.l4proto: tcp/udp/raw from the socket's own event, or from the process
/// table's record of the fd (connect, bind, listen, accept).
fn l4proto<'a>(ev: &'a Event, ctx: &EvalCtx<'a>) -> Val<'a> {
    let inet = || net(ev).and_then(|n| n.any()).and_then(|a| a.ip()).is_some();
    let by_fd = |fd: i64| own(ev, ctx).and_then(|p| p.socket_proto(fd));
    match &ev.kind {
        EventKind::Socket { domain, sock_type, .. } => opt(model::l4proto(*domain, *sock_type).map(s)),
        EventKind::NetDeny { proto, .. }
        | EventKind::Flow(model::FlowRecord { proto, .. })
        | EventKind::Dns { proto, .. } => s(proto),
        EventKind::Connect { fd, .. } | EventKind::Bind { fd, .. } => {
            opt(by_fd(i64::from(*fd)).filter(|_| inet()).map(s))
        }
        EventKind::Listen { fd, .. } => opt(inet().then(|| by_fd(i64::from(*fd)).unwrap_or("tcp")).map(s)),
        EventKind::Accept { fd, .. } => {
            let proto = ev.ret.and_then(by_fd).or_else(|| by_fd(i64::from(*fd))).unwrap_or("tcp");
            opt(inet().then(|| s(proto)))
        }
        _ => Val::None,
    }
}

/// A name the agent resolved from the process's own passwd/group files.
fn resolved<'a>(ev: &'a Event, pick: fn(&'a model::UserNames) -> Option<&'a String>) -> Option<&'a str> {
    ev.process.users.as_deref().and_then(pick).map(String::as_str)
}

/// user.name and friends: the name from the container's passwd, else 'root'
/// for 0 and the id as text.
fn id_name<'a>(ev: &'a Event, id: u32, pick: fn(&'a model::UserNames) -> Option<&'a String>) -> Val<'a> {
    match resolved(ev, pick) {
        Some(n) if !n.is_empty() => s(n),
        _ => user_name(id),
    }
}

/// Fields rampart registers (Falco's rules use them) but never fills, and why:
/// a condition on one of them can never hold (`rules check` warns).
const WITHOUT_VALUE: &[(&str, &str)] =
    &[("evt.buffer", "rampart does not capture I/O buffers (read, write, send, recv)")];

/// Why a field never has a value in rampart, if it never has one (`None` for
/// fields that do, on some events).
pub fn without_value(name: &str) -> Option<&'static str> {
    WITHOUT_VALUE.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// Every field that never has a value, with the reason.
pub fn fields_without_value() -> &'static [(&'static str, &'static str)] {
    WITHOUT_VALUE
}

/// Syscalls Falco's rules name in `evt.type` that rampart's sensor does not
/// capture, with the reason: a rule that needs one of them never fires.
const UNCAPTURED_EVENT_TYPES: &[(&str, &str)] = &[
    ("dup", "not captured (fd duplication is not hooked)"),
    ("dup2", "not captured (fd duplication is not hooked)"),
    ("dup3", "not captured (fd duplication is not hooked)"),
    ("userfaultfd", "not captured"),
    ("sendto", "not captured (no per-packet send/receive events)"),
    ("sendmsg", "not captured (no per-packet send/receive events; netdeny reports denied ones)"),
    ("recvfrom", "not captured (no per-packet send/receive events)"),
    ("recvmsg", "not captured (no per-packet send/receive events)"),
    ("read", "not captured (no I/O events)"),
    ("write", "not captured (no I/O events)"),
    ("switch", "not captured (no scheduler context switch events)"),
    ("execveat", "reported as execve (one exec hook serves both)"),
];

/// Event types (`evt.type` values) rampart never produces, with the reason.
pub fn uncaptured_event_types() -> &'static [(&'static str, &'static str)] {
    UNCAPTURED_EVENT_TYPES
}

/// Why rampart never produces events of type `name`, if it does not.
pub fn uncaptured_event_type(name: &str) -> Option<&'static str> {
    UNCAPTURED_EVENT_TYPES.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

fn user_name(uid: u32) -> Val<'static> {
    if uid == 0 {
        Val::Str(Cow::Borrowed("root"))
    } else if uid == u32::MAX {
        Val::None
    } else {
        Val::Str(Cow::Owned(uid.to_string()))
    }
}

const O_DIRECTORY: u32 = 0o200000;

macro_rules! field {
    ($name:literal, $ty:ident, $arg:ident, $doc:literal, $ex:expr) => {
        FieldDef { name: $name, ty: FieldType::$ty, arg: ArgSpec::$arg, doc: $doc, extract: $ex }
    };
}

/// The registry. Order is the order of the generated documentation.
pub static FIELDS: &[FieldDef] = &[
    // ---- evt
    field!("evt.type", String, None, "Event type: the syscall name as Falco names it (openat, execve, connect, clone for fork, procexit for exit, ...); capable for rampart's capability checks; netdeny for rampart's network policy denials; flow for network flows; dns for DNS messages.", |ev, _, _| opt(ev.syscall.as_deref().map(s))),
    field!("evt.time", String, None, "Event time as a UTC time of day with nanoseconds (HH:MM:SS.nnnnnnnnn), as Falco prints it.", |ev, _, _| owned(names::utc_parts(ev.ts_ns).1)),
    field!("evt.datetime", String, None, "Event date and time, UTC (YYYY-MM-DD HH:MM:SS.nnnnnnnnn).", |ev, _, _| { let (d, t) = names::utc_parts(ev.ts_ns); owned(format!("{d} {t}")) }),
    field!("evt.time.iso8601", String, None, "Event time in ISO 8601 (YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ).", |ev, _, _| { let (d, t) = names::utc_parts(ev.ts_ns); owned(format!("{d}T{t}Z")) }),
    field!("evt.num", U64, None, "Event sequence number as the agent numbers events (from 1; never 0, so Falco's never_true macro (evt.num=0) stays false).", |_, c, _| Val::U64(c.event_num.max(1))),
    field!("evt.rawtime", U64, None, "Event time in nanoseconds since the Unix epoch.", |ev, _, _| Val::U64(ev.ts_ns)),
    field!("evt.time.s", U64, None, "Event time in whole seconds since the Unix epoch.", |ev, _, _| Val::U64(ev.ts_ns / 1_000_000_000)),
    field!("evt.res", String, None, "Syscall result: SUCCESS, or the errno name (ENOENT, EPERM, ...) when it failed.", |ev, _, _| match ev.ret { Some(r) if r < 0 => owned(names::errno_name(-r)), Some(_) => s("SUCCESS"), None => Val::None }),
    field!("evt.rawres", I64, None, "Syscall return value as a number (negative errno on failure).", |ev, _, _| opt(ev.ret.map(Val::I64))),
    field!("evt.failed", Bool, None, "Whether the syscall failed (returned a negative errno).", |ev, _, _| Val::Bool(ev.failed())),
    field!("evt.dir", String, None, "Event direction: always '<' (rampart emits syscall exit events only).", |_, _, _| s("<")),
    field!("evt.source", String, None, "Event source: always 'syscall'.", |_, _, _| s("syscall")),
    field!("evt.hostname", String, None, "Host name of the machine (given by the agent in the evaluation context).", |_, c, _| opt(c.hostname.map(s))),
    field!("evt.arg", String, EventArg, "An event argument as text, by name (evt.arg.name, evt.arg[name]) or position (evt.arg[0]). Flags and modes are rendered as Falco does (O_WRONLY|O_CREAT, S_ISUID|..., CLONE_NEWNS|...). See the argument table below.", evt_arg),
    field!("evt.rawarg", I64, Key, "A numeric event argument as a number, by name (evt.rawarg.flags, evt.rawarg.mode, evt.rawarg.request, ...).", evt_rawarg),
    field!("evt.args", String, None, "All event arguments as text (name=value name=value ...).", evt_args),
    field!("evt.buffer", String, None, "The data buffer of an I/O event (read, write, send, recv).", |_, _, _| Val::None),
    field!("evt.is_open_read", Bool, None, "For open events, whether the file was opened for reading; false for other events.", |ev, _, _| Val::Bool(open_flags(ev).is_some_and(|(f, _)| f.read))),
    field!("evt.is_open_write", Bool, None, "For open events, whether the file was opened for writing; false for other events.", |ev, _, _| Val::Bool(open_flags(ev).is_some_and(|(f, _)| f.write))),
    field!("evt.is_open_create", Bool, None, "For open events, whether the open may create the file (O_CREAT, O_TMPFILE); false for other events.", |ev, _, _| Val::Bool(open_flags(ev).is_some_and(|(f, _)| f.create))),
    field!("evt.is_open_exec", Bool, None, "For open events, whether a file is created with an execute bit in its mode; false for other events.", |ev, _, _| Val::Bool(open_flags(ev).is_some_and(|(f, m)| f.create && m & 0o111 != 0))),
    // ---- proc
    field!("proc.pid", U64, None, "Process id (thread group id), host view.", |ev, _, _| Val::U64(u64::from(ev.process.pid))),
    field!("proc.vpid", U64, None, "Process id as seen inside its own pid namespace (container view).", |ev, _, _| Val::U64(u64::from(ev.process.vpid))),
    field!("proc.ppid", U64, None, "Parent process id, host view.", |ev, c, _| { let p = parent_pid(ev, c); if p == 0 { Val::None } else { Val::U64(u64::from(p)) } }),
    field!("proc.name", String, None, "Process name (the kernel's comm, at most 15 characters).", |ev, _, _| s(&ev.process.comm)),
    field!("proc.exe", String, None, "First command line argument (argv[0]), usually the executable name or path as invoked.", |ev, c, _| PView::of_event(ev, c).arg0()),
    field!("proc.exepath", String, None, "Full path of the executable, resolved.", |ev, c, _| s(PView::of_event(ev, c).exepath)),
    field!("proc.args", String, None, "Command line arguments without argv[0], joined by spaces; an empty string when the process has none (as Falco: `proc.args = ''`), no value when the command line is unknown.", |ev, c, _| { let p = PView::of_event(ev, c); let known = p.argv.is_some() || !p.cmdline.is_empty(); let a = p.args(); if a.is_empty() && !known { Val::None } else { Val::Str(a) } }),
    field!("proc.cmdline", String, None, "Process name followed by its arguments (Falco format: 'name arg1 arg2').", |ev, c, _| PView::of_event(ev, c).cmdline()),
    field!("proc.cwd", String, None, "Current working directory (from exec events, else the process table).", |ev, c, _| match exec(ev) { Some(x) if !x.cwd.is_empty() => s(x.cwd), _ => opt(c.procs.and_then(|t| t.process(ev.process.pid)).map(|p| s(&p.cwd))) }),
    field!("proc.tty", U64, None, "Controlling terminal device number, 0 when none: the exec event's own, else the process table's (from the exec, /proc at start, inherited on fork); no value for a process the table does not know.", |ev, c, _| match exec(ev) {
        Some(x) => Val::U64(x.tty.map(model::tty_nr).unwrap_or(0)),
        None => opt(own(ev, c).and_then(|p| p.tty).map(Val::U64)),
    }),
    field!("proc.pname", String, None, "Parent process name (needs the process table).", |ev, c, _| parent(ev, c, |p| s(p.comm))),
    field!("proc.pexe", String, None, "Parent's argv[0] (needs the process table).", |ev, c, _| parent(ev, c, |p| p.arg0())),
    field!("proc.pexepath", String, None, "Parent's full executable path (needs the process table).", |ev, c, _| parent(ev, c, |p| s(p.exepath))),
    field!("proc.pcmdline", String, None, "Parent's command line, Falco format (needs the process table).", |ev, c, _| parent(ev, c, |p| p.cmdline())),
    field!("proc.aname", String, Ancestor, "Name of an ancestor: proc.aname[1] is the parent, [2] the grandparent, [0] the process itself; without index, any ancestor (a list: '=' and 'in' hold when any ancestor matches).", |ev, c, a| anc(ev, c, a, |p| s(p.comm))),
    field!("proc.apid", U64, Ancestor, "Pid of an ancestor, indexed like proc.aname.", |ev, c, a| anc(ev, c, a, |p| Val::U64(u64::from(p.pid)))),
    field!("proc.aexe", String, Ancestor, "argv[0] of an ancestor, indexed like proc.aname.", |ev, c, a| anc(ev, c, a, |p| p.arg0())),
    field!("proc.aexepath", String, Ancestor, "Executable path of an ancestor, indexed like proc.aname.", |ev, c, a| anc(ev, c, a, |p| s(p.exepath))),
    field!("proc.acmdline", String, Ancestor, "Command line of an ancestor (Falco format), indexed like proc.aname.", |ev, c, a| anc(ev, c, a, |p| p.cmdline())),
    field!("proc.duration", U64, None, "Nanoseconds since the process started: event time minus the start time the process table has (fork event time, or /proc's start time for processes older than the agent); no value when the start is unknown.", |ev, c, _| opt(start_ns(ev, c).filter(|t| ev.ts_ns >= *t).map(|t| Val::U64(ev.ts_ns - t)))),
    field!("proc.ppid.duration", U64, None, "Nanoseconds since the parent process started (like proc.duration, for the parent).", |ev, c, _| opt(ancestor(ev, c, 1).map(|p| p.start_time_ns).filter(|t| *t != 0 && ev.ts_ns >= *t).map(|t| Val::U64(ev.ts_ns - t)))),
    field!("proc.vpgid.name", String, None, "Name of the process group leader: the process whose pid is the group id, else the eldest ancestor in the same group (known like proc.is_vpgid_leader).", |ev, c, _| group_leader(ev, c, |p| s(p.comm))),
    field!("proc.vpgid.exe", String, None, "argv[0] of the process group leader (see proc.vpgid.name).", |ev, c, _| group_leader(ev, c, |p| p.arg0())),
    field!("proc.sname", String, None, "Name of the process's session leader: the process whose pid is the session id, else the eldest ancestor in the same session. The session id comes with each exec (the sensor reads it in the kernel; /proc at start) and is inherited on fork; a setsid() without exec is not seen.", |ev, c, _| session_name(ev, c)),
    field!("proc.is_vpgid_leader", Bool, None, "Whether the process leads its process group (pgid = pid; the host view, equal to Falco's vpgid = vpid). Known like proc.sname; no value when the group is unknown.", |ev, c, _| opt(session_ids(ev, c).1.map(|g| Val::Bool(g == ev.process.pid)))),
    field!("proc.env", String, OptKey, "The process's environment as 'NAME=value NAME=value', or one variable's value with proc.env[NAME]. Read from /proc/<pid>/environ (at most 16 KiB and 512 variables) at each exec and at start, only when a loaded rule uses this field; no value otherwise, or when the process was gone before the agent read it.", env_field),
    field!("proc.exe_ino.ctime", U64, None, "Last status change time (ctime) of the executable's inode, ns since the epoch: read in the kernel at exec from the file executed (a stat of /proc/<pid>/exe for processes found at start).", |ev, c, _| opt(exe_times(ev, c).0.map(Val::U64))),
    field!("proc.exe_ino.mtime", U64, None, "Last modification time (mtime) of the executable's inode, ns since the epoch; known like proc.exe_ino.ctime.", |ev, c, _| opt(exe_times(ev, c).1.map(Val::U64))),
    field!("proc.exe_ino.ctime_duration_proc_start", U64, None, "Nanoseconds between the executable's ctime and the process's start (start minus ctime): small for a binary written just before it ran. No value when either is unknown or the ctime is later than the start.", |ev, c, _| match (exe_times(ev, c).0, start_ns(ev, c)) { (Some(ct), Some(st)) if st >= ct => Val::U64(st - ct), _ => Val::None }),
    field!("proc.is_exe_upper_layer", Bool, None, "Whether the executable lives in the container's writable overlay layer (drift): the exec event's own, else the process table's (from the exec, inherited on fork, as Falco keeps it per thread); no value when the filesystem cannot tell or the process was running before rampart started.", |ev, c, _| match exec(ev) {
        Some(x) => opt(x.upper.map(Val::Bool)),
        None => opt(own(ev, c).and_then(|p| p.exe_upper_layer).map(Val::Bool)),
    }),
    field!("proc.is_exe_from_memfd", Bool, None, "Whether the executable is a memfd (fileless execution). Exec events only.", |ev, _, _| opt(exec(ev).map(|x| Val::Bool(x.memfd)))),
    field!("proc.is_container_healthcheck", Bool, None, "Always false: rampart does not tell health checks apart yet.", |_, _, _| Val::Bool(false)),
    field!("proc.is_container_liveness_probe", Bool, None, "Always false: rampart does not tell probes apart yet.", |_, _, _| Val::Bool(false)),
    field!("proc.is_container_readiness_probe", Bool, None, "Always false: rampart does not tell probes apart yet.", |_, _, _| Val::Bool(false)),
    field!("thread.tid", U64, None, "Thread id, host view.", |ev, _, _| Val::U64(u64::from(ev.process.tid))),
    field!("thread.cap_effective", String, None, "Effective capabilities (CAP_A|CAP_B...): the event's own on exec and capset, else the last sets the process table knows for the process (from /proc at start, exec and capset events; kept per process, not per thread).", |ev, c, _| cap_field(ev, c, |k| Some(k.effective))),
    field!("thread.cap_permitted", String, None, "Permitted capabilities (CAP_A|CAP_B...), known like thread.cap_effective.", |ev, c, _| cap_field(ev, c, |k| Some(k.permitted))),
    field!("thread.cap_inheritable", String, None, "Inheritable capabilities (CAP_A|CAP_B...): from exec (read in the kernel) and capset events, /proc at start; no value when unknown.", |ev, c, _| cap_field(ev, c, |k| k.inheritable)),
    // ---- user / group
    field!("user.uid", U64, None, "Effective user id.", |ev, _, _| Val::U64(u64::from(ev.process.euid))),
    field!("user.name", String, None, "Name of the effective uid from the process's own /etc/passwd (the container's, read through /proc/<pid>/root, bounded, cached per container; untrusted text); else 'root' for uid 0 and the uid as text.", |ev, _, _| id_name(ev, ev.process.euid, |u| u.name.as_ref())),
    field!("user.homedir", String, None, "Home directory of the effective uid from the process's own /etc/passwd; no value when it has no entry.", |ev, _, _| opt(resolved(ev, |u| u.homedir.as_ref()).map(s))),
    field!("user.shell", String, None, "Login shell of the effective uid from the process's own /etc/passwd; no value when it has no entry.", |ev, _, _| opt(resolved(ev, |u| u.shell.as_ref()).map(s))),
    field!("user.ruid", U64, None, "Real user id (rampart extension).", |ev, _, _| Val::U64(u64::from(ev.process.uid))),
    field!("user.loginuid", I64, None, "Login user id (audit uid); -1 when unset.", |ev, _, _| Val::I64(id(ev.process.auid))),
    field!("user.loginname", String, None, "Login user name from the process's own /etc/passwd, else 'root' for 0 and the login uid as text; no value when unset.", |ev, _, _| if ev.process.auid == u32::MAX { Val::None } else { id_name(ev, ev.process.auid, |u| u.loginname.as_ref()) }),
    field!("group.gid", U64, None, "Effective group id.", |ev, _, _| Val::U64(u64::from(ev.process.egid))),
    field!("group.name", String, None, "Name of the effective gid from the process's own /etc/group (like user.name); else 'root' for gid 0 and the gid as text.", |ev, _, _| id_name(ev, ev.process.egid, |u| u.group.as_ref())),
    // ---- fd
    field!("fd.num", I64, None, "File descriptor number of the event (opened, connected, accepted...); -1 when the open, accept or memfd_create failed (as Falco; the errno is in evt.res).", |ev, _, _| match &ev.kind { EventKind::Open { .. } | EventKind::Accept { .. } | EventKind::MemfdCreate { .. } => opt(ev.ret.map(|r| Val::I64(if r < 0 { -1 } else { r }))), EventKind::Connect { fd, .. } | EventKind::Bind { fd, .. } | EventKind::Listen { fd, .. } | EventKind::Setns { fd, .. } => Val::I64(i64::from(*fd)), _ => Val::None }),
    field!("fd.name", String, None, "File descriptor name: the file path for opens (and finit_module), 'client->server' (ip:port->ip:port) for inet sockets, the path for unix sockets, memfd:NAME for memfd_create, the namespace file for setns. No value on events without an fd (exec, ...).", |ev, _, _| fd_name(ev)),
    field!("fd.nameraw", String, None, "The path of an open as the process passed it (relative, with '..' and '.'), without normalisation: the sensor copies it on every open while a loaded rule reads this field, and always for `events`, `capture` and `record` (at most 4 KiB; dropped first when the record is full, so fd.name is never cut for it); when it equals fd.name, and for finit_module, it is fd.name. File fds only.", |ev, _, _| match &ev.kind { EventKind::Open { raw_path: Some(r), .. } => s(r), _ => opt(fd_path(ev).map(s)) }),
    field!("fd.connected", Bool, None, "Whether the socket is connected: true on a connect that succeeded (or is in progress, EINPROGRESS) and on an accepted connection, false on a failed connect and on socket, bind and listen; no value on other events.", |ev, _, _| connected(ev)),
    field!("fd.name_changed", Bool, None, "Whether this event changed the fd's name: true on a connect that succeeded (it names the fd with its tuple), false on other fd events. Falco's case of interest, an unconnected UDP socket whose peer changes on sendto/recvfrom, is not seen (rampart does not capture sendto/recvfrom).", |ev, _, _| name_changed(ev)),
    field!("fd.directory", String, None, "Directory of the file of an fd (dirname of fd.name), file fds only.", |ev, _, _| opt(fd_path(ev).map(|p| s(dirname(p))))),
    field!("fd.filename", String, None, "File name of an fd without its directory (basename of fd.name), file fds only.", |ev, _, _| opt(fd_path(ev).map(|p| s(basename(p))))),
    field!("fd.typechar", String, None, "Type of the fd as one character: 'f' file, 'd' directory, '4' IPv4 socket, '6' IPv6 socket, 'u' unix socket, 'o' other socket.", |ev, _, _| match &ev.kind { EventKind::Open { flags, .. } => s(if flags.raw & O_DIRECTORY != 0 { "d" } else { "f" }), EventKind::ModuleLoad { path: Some(_), .. } => s("f"), _ => opt(net(ev).and_then(|n| n.any()).map(|a| s(family_char(a)))) }),
    field!("fd.type", String, None, "Type of the fd: file, directory, ipv4, ipv6, unix, memfd.", |ev, _, _| match &ev.kind { EventKind::Open { flags, .. } => s(if flags.raw & O_DIRECTORY != 0 { "directory" } else { "file" }), EventKind::ModuleLoad { path: Some(_), .. } => s("file"), EventKind::MemfdCreate { .. } => s("memfd"), _ => opt(net(ev).and_then(|n| n.any()).map(|a| s(match a { SockAddr::Inet { .. } => "ipv4", SockAddr::Inet6 { .. } => "ipv6", SockAddr::Unix { .. } => "unix", SockAddr::Other { .. } => "other" }))) }),
    field!("fd.sockfamily", String, None, "Socket family: 'ip' or 'unix'.", |ev, _, _| opt(net(ev).and_then(|n| n.any()).and_then(|a| match a { SockAddr::Inet { .. } | SockAddr::Inet6 { .. } => Some(s("ip")), SockAddr::Unix { .. } => Some(s("unix")), _ => None }))),
    field!("fd.l4proto", String, None, "Layer 4 protocol: tcp, udp or raw, from the socket type: on socket events their own; on connect, bind, listen and accept the type of the fd as the process table recorded it from the socket (or accept) event that created it (per process, inherited on fork; no value when that event was not seen, e.g. a socket created before rampart started); listen and accept default to tcp; the denied protocol for netdeny events.", |ev, c, _| l4proto(ev, c)),
    field!("fd.sip", IpAddr, None, "Server IP address (the remote end of a connect, the local end of accept/bind/listen).", |ev, _, _| sock_ip(ev, |n| n.server())),
    field!("fd.sport", U64, None, "Server port.", |ev, _, _| sock_port(ev, |n| n.server())),
    field!("fd.cip", IpAddr, None, "Client IP address.", |ev, _, _| sock_ip(ev, |n| n.client())),
    field!("fd.cport", U64, None, "Client port.", |ev, _, _| sock_port(ev, |n| n.client())),
    field!("fd.lip", IpAddr, None, "Local IP address.", |ev, _, _| sock_ip(ev, |n| n.local)),
    field!("fd.lport", U64, None, "Local port.", |ev, _, _| sock_port(ev, |n| n.local)),
    field!("fd.rip", IpAddr, None, "Remote IP address.", |ev, _, _| sock_ip(ev, |n| n.remote)),
    field!("fd.rport", U64, None, "Remote port.", |ev, _, _| sock_port(ev, |n| n.remote)),
    field!("fd.dip", IpAddr, None, "Destination IP address: same as fd.sip (rampart alias).", |ev, _, _| sock_ip(ev, |n| n.server())),
    field!("fd.dport", U64, None, "Destination port: same as fd.sport (rampart alias).", |ev, _, _| sock_port(ev, |n| n.server())),
    field!("fd.ip", IpAddr, None, "Either end's IP address (holds when the client or the server address matches).", |ev, _, _| both_ips(ev)),
    field!("fd.port", U64, None, "Either end's port (holds when the client or the server port matches).", |ev, _, _| both_ports(ev)),
    field!("fd.net", IpNet, None, "Either end's IP, for network (CIDR) matching: fd.net = 10.0.0.0/8.", |ev, _, _| both_ips(ev)),
    field!("fd.snet", IpNet, None, "Server IP, for CIDR matching.", |ev, _, _| sock_ip(ev, |n| n.server())),
    field!("fd.cnet", IpNet, None, "Client IP, for CIDR matching.", |ev, _, _| sock_ip(ev, |n| n.client())),
    field!("fd.lnet", IpNet, None, "Local IP, for CIDR matching.", |ev, _, _| sock_ip(ev, |n| n.local)),
    field!("fd.rnet", IpNet, None, "Remote IP, for CIDR matching.", |ev, _, _| sock_ip(ev, |n| n.remote)),
    field!("fd.sip.name", String, None, "Domain name of the server IP: the name the event's own container last resolved to that address (the question of a DNS answer it received, while the answer's TTL runs, at most 1 h; sensor.flows.dns), else no value. Another container's lookups never name it.", |ev, c, _| ip_name(ev, c, |n| n.server())),
    field!("fd.cip.name", String, None, "Domain name of the client IP (as fd.sip.name).", |ev, c, _| ip_name(ev, c, |n| n.client())),
    field!("fd.rip.name", String, None, "Domain name of the remote IP (as fd.sip.name).", |ev, c, _| ip_name(ev, c, |n| n.remote)),
    field!("fd.lip.name", String, None, "Domain name of the local IP (as fd.sip.name).", |ev, c, _| ip_name(ev, c, |n| n.local)),
    // ---- flow
    field!("flow.phase", String, None, "Where a flow event stands: start (first seen), update (periodic, while the flow carries traffic) or end (the TCP socket closed, or no packet for sensor.flows.idle_timeout_s) (rampart extension; flow events only, as all flow.* fields).", |ev, _, _| flow(ev, |f| s(f.phase.as_str()))),
    field!("flow.proto", String, None, "IP protocol of the flow: tcp, udp, icmp, icmpv6, ... or its number.", |ev, _, _| flow(ev, |f| s(&f.proto))),
    field!("flow.bytes_in", U64, None, "IP bytes the container received on this flow (IP and transport headers included, per segment on the wire).", |ev, _, _| flow(ev, |f| Val::U64(f.bytes_in))),
    field!("flow.bytes_out", U64, None, "IP bytes the container sent on this flow (headers included; TCP retransmissions included).", |ev, _, _| flow(ev, |f| Val::U64(f.bytes_out))),
    field!("flow.bytes", U64, None, "flow.bytes_in + flow.bytes_out.", |ev, _, _| flow(ev, |f| Val::U64(f.bytes_in.saturating_add(f.bytes_out)))),
    field!("flow.payload_in", U64, None, "Payload bytes received: what the applications exchanged (TCP: new data only, retransmissions not counted; UDP: datagram payload).", |ev, _, _| flow(ev, |f| Val::U64(f.payload_in))),
    field!("flow.payload_out", U64, None, "Payload bytes sent (as flow.payload_in).", |ev, _, _| flow(ev, |f| Val::U64(f.payload_out))),
    field!("flow.packets_in", U64, None, "Packets received (segments on the wire: a GRO packet counts as the segments it merged).", |ev, _, _| flow(ev, |f| Val::U64(f.packets_in))),
    field!("flow.packets_out", U64, None, "Packets sent (segments on the wire: a GSO packet counts as the segments it will be cut into).", |ev, _, _| flow(ev, |f| Val::U64(f.packets_out))),
    field!("flow.packets", U64, None, "flow.packets_in + flow.packets_out.", |ev, _, _| flow(ev, |f| Val::U64(f.packets_in.saturating_add(f.packets_out)))),
    field!("flow.duration", U64, None, "Time from the flow's first to its latest packet, ns.", |ev, _, _| flow(ev, |f| Val::U64(f.duration_ns))),
    field!("flow.tcp_state", String, None, "TCP: the socket's latest state (established, fin_wait1, close_wait, close, ...), as the kernel's inet_sock_set_state tracepoint reported it; no value for other protocols or before the first change.", |ev, _, _| flow(ev, |f| opt(f.tcp_state.as_deref().map(s)))),
    field!("flow.retransmits", U64, None, "TCP segments the container retransmitted on this flow.", |ev, _, _| flow(ev, |f| Val::U64(u64::from(f.retransmits)))),
    field!("flow.end_reason", String, None, "Why a flow ended: closed (TCP reached CLOSE), idle, stopped (the agent stopped), gone (its table entry disappeared); no value before the end.", |ev, _, _| flow(ev, |f| opt(f.end_reason.as_deref().map(s)))),
    // ---- dns
    field!("dns.name", String, None, "The question's name of a DNS message a container sent or received (rampart extension; dns events only, as all dns.* fields): presentation form, as the message wrote it (case kept), bytes outside printable ASCII escaped as \\DDD; untrusted text from the container.", |ev, _, _| dns(ev, |d| s(d.name))),
    field!("dns.type", String, None, "The question's type: A, AAAA, CNAME, MX, TXT, PTR, SRV, HTTPS, ANY, ... or TYPEn.", |ev, _, _| dns(ev, |d| s(d.qtype))),
    field!("dns.rcode", String, None, "Response code of an answer: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP or RCODEn; no value on queries.", |ev, _, _| dns(ev, |d| opt(d.rcode.map(s)))),
    field!("dns.response", Bool, None, "Whether the message is a response (QR set) rather than a query.", |ev, _, _| dns(ev, |d| Val::Bool(d.response))),
    field!("dns.direction", String, None, "out: the container sent the message; in: it received it.", |ev, _, _| dns(ev, |d| s(d.direction))),
    field!("dns.id", U64, None, "The message id.", |ev, _, _| dns(ev, |d| Val::U64(u64::from(d.id)))),
    field!("dns.answers", String, None, "Every A, AAAA, CNAME and PTR answer's value (addresses and target names), as a list: dns.answers contains 10.0.0.1, dns.answers in (...).", |ev, _, _| dns(ev, |d| dns_answers(d, &["A", "AAAA", "CNAME", "PTR"], false))),
    field!("dns.ips", IpAddr, None, "The addresses of the A and AAAA answers, as a list.", |ev, _, _| dns(ev, |d| dns_answers(d, &["A", "AAAA"], true))),
    field!("dns.cnames", String, None, "The targets of the CNAME answers, as a list.", |ev, _, _| dns(ev, |d| dns_answers(d, &["CNAME"], false))),
    field!("dns.incomplete", Bool, None, "Not every record was read: the capture was cut at 512 bytes, the server set TC, or there were more than 32 answers.", |ev, _, _| dns(ev, |d| Val::Bool(d.incomplete))),
    field!("dns.name.len", U64, None, "Length of dns.name in characters (as printed, escapes included).", |ev, _, _| dns(ev, |d| Val::U64(d.name.len() as u64))),
    field!("dns.name.labels", U64, None, "Number of labels of dns.name (www.example.com: 3).", |ev, _, _| dns(ev, |d| Val::U64(dns_labels(d.name).len() as u64))),
    field!("dns.label.maxlen", U64, None, "Length of the longest label of dns.name (tunnels fill labels towards the 63-byte limit).", |ev, _, _| dns(ev, |d| Val::U64(dns_labels(d.name).iter().map(|l| l.len()).max().unwrap_or(0) as u64))),
    field!("dns.name.entropy", U64, None, "Shannon entropy of the characters of dns.name (dots between labels left out), in hundredths of a bit per character (0 for 'aaaa', 100 for 'ab'). It grows with length and alphabet: www.example.com ~330, a readable name of 60 characters ~450, a hex data label ~390, base32 ~480; use it with the length fields.", |ev, _, _| dns(ev, |d| Val::U64(dns_entropy(d.name)))),
    // ---- netstat (scan and flood detection)
    field!("netstat.over", String, None, "The detections whose thresholds (sensor.flows.detect.thresholds) this window crossed, space-separated: port_scan, host_sweep, connect_failures, syn_flood_in, syn_flood_out, conn_flood, udp_flood_in, udp_flood_out, icmp_flood_in, icmp_flood_out, egress_volume, dns_query_flood, nxdomain (rampart extension; netstat events only, as all netstat.* fields: one per container when its window crosses a threshold, then at most once a window while it stays over).", |ev, _, _| match &ev.kind { EventKind::Netstat(w) => owned(w.over.join(" ")), _ => Val::None }),
    field!("netstat.window", U64, None, "The detection window the rates and counts cover, s (sensor.flows.detect.window_s).", |ev, _, _| netstat(ev, |w| w.window_s)),
    field!("netstat.pps_in", U64, None, "Packets per second the container received (all protocols), averaged over the window.", |ev, _, _| netstat(ev, |w| w.pps_in)),
    field!("netstat.pps_out", U64, None, "Packets per second the container sent (all protocols).", |ev, _, _| netstat(ev, |w| w.pps_out)),
    field!("netstat.tcp_pps_in", U64, None, "TCP packets per second received.", |ev, _, _| netstat(ev, |w| w.tcp_pps_in)),
    field!("netstat.tcp_pps_out", U64, None, "TCP packets per second sent.", |ev, _, _| netstat(ev, |w| w.tcp_pps_out)),
    field!("netstat.udp_pps_in", U64, None, "UDP packets per second received.", |ev, _, _| netstat(ev, |w| w.udp_pps_in)),
    field!("netstat.udp_pps_out", U64, None, "UDP packets per second sent.", |ev, _, _| netstat(ev, |w| w.udp_pps_out)),
    field!("netstat.icmp_pps_in", U64, None, "ICMP and ICMPv6 packets per second received.", |ev, _, _| netstat(ev, |w| w.icmp_pps_in)),
    field!("netstat.icmp_pps_out", U64, None, "ICMP and ICMPv6 packets per second sent.", |ev, _, _| netstat(ev, |w| w.icmp_pps_out)),
    field!("netstat.bytes_ps_in", U64, None, "IP bytes per second received.", |ev, _, _| netstat(ev, |w| w.bytes_ps_in)),
    field!("netstat.bytes_ps_out", U64, None, "IP bytes per second sent.", |ev, _, _| netstat(ev, |w| w.bytes_ps_out)),
    field!("netstat.syn_ps_in", U64, None, "TCP SYNs (without ACK: connection attempts) per second received.", |ev, _, _| netstat(ev, |w| w.syn_ps_in)),
    field!("netstat.syn_ps_out", U64, None, "TCP SYNs per second sent (raw-socket SYNs included).", |ev, _, _| netstat(ev, |w| w.syn_ps_out)),
    field!("netstat.rst_ps_out", U64, None, "TCP resets per second sent (what probes of closed ports get back).", |ev, _, _| netstat(ev, |w| w.rst_ps_out)),
    field!("netstat.accepted_ps", U64, None, "Connections per second the container accepted (handshakes completed).", |ev, _, _| netstat(ev, |w| w.accepted_ps)),
    field!("netstat.half_open", U64, None, "SYNs received in the window minus handshakes completed: connections their initiator left half-open or reset (a SYN flood's mark).", |ev, _, _| netstat(ev, |w| w.half_open)),
    field!("netstat.failed_connects", U64, None, "Connects of the container that failed in the window (refused, reset or timed out in SYN_SENT).", |ev, _, _| netstat(ev, |w| w.failed_connects)),
    field!("netstat.dsts", U64, None, "Distinct destinations (remote address, port, protocol) of the container's connection attempts (TCP SYN, UDP, ICMP echo) in the window; an estimate (linear counting over 1024 bits, within a few % below ~2000, saturates at 7098).", |ev, _, _| netstat(ev, |w| w.dsts)),
    field!("netstat.hosts", U64, None, "Distinct remote hosts of the container's connection attempts in the window (estimate, as netstat.dsts).", |ev, _, _| netstat(ev, |w| w.hosts)),
    field!("netstat.dns_qps", U64, None, "DNS queries (UDP, to a port-53 server) per second the container sent, averaged over the window (a query flood's mark).", |ev, _, _| netstat(ev, |w| w.dns_qps)),
    field!("netstat.nxdomain", U64, None, "NXDOMAIN answers (the name does not exist) the container received over UDP in the window: many are a domain-generation algorithm's guesses.", |ev, _, _| netstat(ev, |w| w.nxdomain)),
    // ---- fs
    field!("fs.path.name", String, None, "Path a filesystem syscall operates on (open, unlink, mkdir, chmod, chown, finit_module, mount target, umount).", |ev, _, _| opt(fs_paths(ev).0.map(s))),
    field!("fs.path.source", String, None, "Source path of rename and link (old path), symlink (target) and mount (device or source).", |ev, _, _| opt(fs_paths(ev).1.map(s))),
    field!("fs.path.target", String, None, "Target path of rename and link (new path), symlink (link path) and mount (mount point).", |ev, _, _| opt(fs_paths(ev).2.map(s))),
    // ---- container
    field!("container.id", String, None, "Container id, 12 characters; 'host' for host processes.", |ev, _, _| match container(ev) { Some(c) => s(c.short_id()), None => s("host") }),
    field!("container.full_id", String, None, "Full container id; 'host' for host processes.", |ev, _, _| match container(ev) { Some(c) => s(&c.id), None => s("host") }),
    field!("container.name", String, None, "Container name (without Docker's leading '/'); 'host' for host processes; no value while the runtime has not answered.", |ev, _, _| match container(ev) { Some(c) => s(c.name.trim_start_matches('/')), None => s("host") }),
    field!("container.image", String, None, "Container image as the container was created with (e.g. nginx:1.25).", |ev, _, _| opt(container(ev).map(|c| s(&c.image)))),
    field!("container.image.repository", String, None, "Image repository: the image without tag or digest.", |ev, _, _| opt(container(ev).map(|c| s(split_image(&c.image).0)))),
    field!("container.image.tag", String, None, "Image tag ('latest' when the image names none).", |ev, _, _| opt(container(ev).filter(|c| !c.image.is_empty()).map(|c| if c.image.contains('@') && split_image(&c.image).1.is_none() { Val::None } else { s(split_image(&c.image).1.unwrap_or("latest")) }))),
    field!("container.image.id", String, None, "Image id (without the sha256: prefix).", |ev, _, _| opt(container(ev).map(|c| s(c.image_id.trim_start_matches("sha256:"))))),
    field!("container.type", String, None, "Container runtime: docker, containerd, crio, podman, kubernetes; 'host' for host processes.", |ev, _, _| match container(ev) { Some(c) => opt(c.runtime.map(|r| s(r.as_str()))), None => s("host") }),
    field!("container.privileged", Bool, None, "Whether the container runs privileged; no value for host processes.", |ev, _, _| opt(container(ev).map(|c| Val::Bool(c.privileged)))),
    field!("container.mounts", String, None, "All mounts, space-separated, each as source:dest:mode:rdrw:propagation (Falco's format).", |ev, _, _| opt(container(ev).map(|c| owned(c.mounts.iter().map(mount_info).collect::<Vec<_>>().join(" "))))),
    field!("container.mount", String, Key, "One mount as source:dest:mode:rdrw:propagation, by position (container.mount[0]) or host source path or glob (container.mount[/var/run/*]); 'none' when no mount matches.", |ev, _, a| opt(container(ev).map(|_| owned(select_mount(ev, a, false).map(mount_info).unwrap_or_else(|| "none".into()))))),
    field!("container.mount.source", String, Key, "Host source of a mount, by position or by destination path or glob (container.mount.source[/host/etc]).", |ev, _, a| opt(select_mount(ev, a, true).map(|m| s(&m.source)))),
    field!("container.mount.dest", String, Key, "Destination of a mount in the container, by position or by host source path or glob (container.mount.dest[/var/run/docker.sock]).", |ev, _, a| opt(select_mount(ev, a, false).map(|m| s(&m.destination)))),
    field!("container.mount.mode", String, Key, "Mode string of a mount (ro, rslave, z, ...), by position or host source path or glob.", |ev, _, a| opt(select_mount(ev, a, false).map(|m| s(&m.mode)))),
    field!("container.mount.rdwr", String, Key, "Whether a mount is writable ('true'/'false'), by position or host source path or glob.", |ev, _, a| opt(select_mount(ev, a, false).map(|m| s(if m.read_only { "false" } else { "true" })))),
    field!("container.mount.propagation", String, Key, "Propagation of a mount (rprivate, rslave, rshared, ...), by position or host source path or glob.", |ev, _, a| opt(select_mount(ev, a, false).map(|m| s(&m.propagation)))),
    field!("container.host_pid", Bool, None, "Whether the container shares the host's pid namespace; no value for host processes.", |ev, _, _| opt(container(ev).map(|c| Val::Bool(c.host_pid)))),
    field!("container.host_network", Bool, None, "Whether the container shares the host's network namespace; no value for host processes.", |ev, _, _| opt(container(ev).map(|c| Val::Bool(c.host_network)))),
    field!("container.host_ipc", Bool, None, "Whether the container shares the host's IPC namespace; no value for host processes.", |ev, _, _| opt(container(ev).map(|c| Val::Bool(c.host_ipc)))),
    field!("container.runtime_socket_mounted", Bool, None, "Whether a container runtime API socket (docker.sock, containerd.sock, crio.sock, podman.sock) or a host directory above one is mounted into the container: whoever reaches it controls the host (rampart extension).", |ev, _, _| opt(container(ev).map(|c| Val::Bool(c.mounts.iter().any(|m| model::exposes_runtime_socket(&m.source)))))),
    field!("container.label", String, Key, "A container label: container.label[KEY] or container.label.KEY.", |ev, _, a| match (container(ev), a) { (Some(c), Arg::Key(k)) => opt(c.labels.get(&**k).map(|v| s(v))), _ => Val::None }),
    field!("container.labels", String, None, "All container labels as 'k:v, k:v'.", |ev, _, _| opt(container(ev).map(|c| owned(c.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(", "))))),
    field!("container.user", String, None, "User the container's process runs as, as configured (rampart extension).", |ev, _, _| opt(container(ev).map(|c| s(&c.user)))),
    field!("container.start_ts", U64, None, "When the container was created, ns since the epoch, from the runtime's metadata (Docker/podman Created, containerd and CRI created_at); no value for host processes or while the runtime has not answered.", |ev, _, _| opt(container(ev).and_then(|c| c.created_ns).map(Val::U64))),
    field!("container.cpu_share", U64, None, "CPU time the container used over the last 5 seconds, in percent of one CPU: 100 is one CPU busy, 250 two and a half (rampart extension). From the kernel's accounting (the cgroup's cpu.stat usage), sampled by the agent once a second while a loaded rule uses a container rate field (container.cpu_share, container.syscall_rate, container.net_rx_rate, container.net_tx_rate); on every event of the container. No value for host processes, in replay, or before the container's second sample (the window is shorter until 5 seconds of samples exist).", |ev, c, _| rate(ev, c, |r| r.cpu_percent)),
    field!("container.syscall_rate", U64, None, "Syscalls per second the container's tasks entered over the last 5 seconds, from the kernel's per-container counters (rampart extension; sampled as container.cpu_share). Needs sensor.syscall_counts: true; no value without it.", |ev, c, _| rate(ev, c, |r| r.syscalls_per_s)),
    field!("container.net_rx_rate", U64, None, "IP bytes per second the container's sockets received over the last 5 seconds, from the flow programs' per-container counters (rampart extension; sampled as container.cpu_share; no value with sensor.flows off).", |ev, c, _| rate(ev, c, |r| r.net_rx_bytes_per_s)),
    field!("container.net_tx_rate", U64, None, "IP bytes per second the container's sockets sent over the last 5 seconds, from the flow programs' per-container counters (as container.net_rx_rate).", |ev, c, _| rate(ev, c, |r| r.net_tx_bytes_per_s)),
    field!("container.info", String, None, "Summary of the container for outputs (id, name, image).", |ev, _, _| match container(ev) { Some(c) => owned(format!("container_id={} container_name={} image={}", c.short_id(), c.name.trim_start_matches('/'), c.image)), None => s("host") }),
    // ---- k8s
    field!("k8s.pod.name", String, None, "Kubernetes pod name (from the runtime, or the io.kubernetes.pod.name label).", |ev, _, _| k8s(ev, |c| c.pod_name.as_deref(), "io.kubernetes.pod.name")),
    field!("k8s.ns.name", String, None, "Kubernetes namespace (from the runtime, or the io.kubernetes.pod.namespace label).", |ev, _, _| k8s(ev, |c| c.pod_namespace.as_deref(), "io.kubernetes.pod.namespace")),
    field!("k8s.pod.uid", String, None, "Kubernetes pod uid (from the runtime, or the io.kubernetes.pod.uid label).", |ev, _, _| k8s(ev, |c| c.pod_uid.as_deref(), "io.kubernetes.pod.uid")),
    field!("k8s.pod.id", String, None, "Kubernetes pod uid (Falco's older name for k8s.pod.uid).", |ev, _, _| k8s(ev, |c| c.pod_uid.as_deref(), "io.kubernetes.pod.uid")),
    field!("k8s.pod.label", String, Key, "A label of the pod: k8s.pod.label[KEY] or k8s.pod.label.KEY (from the CRI pod sandbox).", |ev, _, a| match (container(ev), a) { (Some(c), Arg::Key(k)) => opt(c.pod_labels.get(&**k).map(|v| s(v))), _ => Val::None }),
    field!("k8s.pod.labels", String, None, "All labels of the pod as 'k:v, k:v'.", |ev, _, _| opt(container(ev).filter(|c| c.pod_name.is_some() || !c.pod_labels.is_empty()).map(|c| owned(c.pod_labels.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(", "))))),
    field!("k8s.container.name", String, None, "Name of the container within its pod (from the runtime, or the io.kubernetes.container.name label; rampart extension: Falco shows it as container.name).", |ev, _, _| match container(ev) { Some(c) if c.pod_name.is_some() && !c.name.is_empty() => s(c.name.trim_start_matches('/')), Some(c) => opt(c.labels.get("io.kubernetes.container.name").map(|v| s(v))), None => Val::None }),
    field!("container.runtime_namespace", String, None, "The runtime's namespace of the container (containerd's, e.g. k8s.io; rampart extension).", |ev, _, _| opt(container(ev).and_then(|c| c.runtime_namespace.as_deref()).map(s))),
];

/// Find a field by name as written (`evt.arg.flags`, `proc.aname`, `container.label.app`)
/// and its bracket argument (`proc.aname[2]` gives `Some("2")`).
pub fn lookup(name: &str, bracket: Option<&str>) -> Result<(&'static FieldDef, Arg), String> {
    let (def, dotted) = match FIELDS.iter().find(|f| f.name == name) {
        Some(d) => (d, None),
        None => {
            let found = FIELDS.iter().find(|f| {
                matches!(f.arg, ArgSpec::Key | ArgSpec::EventArg)
                    && name.len() > f.name.len() + 1
                    && name.starts_with(f.name)
                    && name.as_bytes()[f.name.len()] == b'.'
            });
            match found {
                Some(d) => (d, Some(&name[d.name.len() + 1..])),
                None => return Err(format!("unknown field {name:?}")),
            }
        }
    };
    if dotted.is_some() && bracket.is_some() {
        return Err(format!("field {name:?} takes one argument, not two"));
    }
    let raw = dotted.or(bracket);
    let arg = match (def.arg, raw) {
        (ArgSpec::None, None) => Arg::None,
        (ArgSpec::None, Some(_)) => return Err(format!("field {:?} takes no argument", def.name)),
        (ArgSpec::Ancestor, None) => Arg::None,
        (ArgSpec::OptKey, None) => Arg::None,
        (ArgSpec::OptKey, Some(a)) => Arg::Key(a.into()),
        (ArgSpec::Ancestor, Some(a)) => match a.trim().parse::<usize>() {
            Ok(n) if n <= MAX_ANCESTORS => Arg::Index(n),
            _ => {
                return Err(format!(
                    "field {:?} needs an ancestor index 0..={MAX_ANCESTORS}, not {a:?}",
                    def.name
                ))
            }
        },
        (ArgSpec::Key | ArgSpec::EventArg, None) => {
            return Err(format!(
                "field {:?} needs an argument ({}.NAME or {}[NAME])",
                def.name, def.name, def.name
            ))
        }
        (ArgSpec::Key, Some(a)) => {
            if def.name == "evt.rawarg" && !ARG_NAMES.contains(&a) {
                return Err(format!("unknown event argument {a:?} in {name:?}"));
            }
            Arg::Key(a.into())
        }
        (ArgSpec::EventArg, Some(a)) => match a.parse::<usize>() {
            Ok(n) => Arg::Index(n),
            Err(_) if ARG_NAMES.contains(&a) => Arg::Key(a.into()),
            Err(_) => return Err(format!("unknown event argument {a:?} in {name:?}")),
        },
    };
    Ok((def, arg))
}

/// The Markdown reference of every supported field (docs/fields.md).
pub fn fields_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Rule fields\n\n");
    out.push_str(
        "<!-- Generated by `cargo test -p rules` from crates/rules/src/fields.rs \
                  (UPDATE_FIELDS_DOC=1 rewrites it). Do not edit by hand. -->\n\n",
    );
    out.push_str(
        "Fields usable in rule conditions and in `%field` output placeholders. Names and meanings follow \
         Falco's where rampart has the data, so existing Falco rules work unchanged. A field with no value \
         on an event (for example `fd.name` on an exec) makes every comparison on it false, `exists` \
         included, and prints as `<NA>` in outputs.\n\n",
    );
    out.push_str("| Field | Type | Description |\n|---|---|---|\n");
    for f in FIELDS {
        let name = match f.arg {
            ArgSpec::None => format!("`{}`", f.name),
            ArgSpec::Ancestor => format!("`{}`, `{}[N]`", f.name, f.name),
            ArgSpec::Key => format!("`{}[KEY]`, `{}.KEY`", f.name, f.name),
            ArgSpec::OptKey => format!("`{}`, `{}[KEY]`", f.name, f.name),
            ArgSpec::EventArg => format!("`{}.NAME`, `{}[NAME]`, `{}[N]`", f.name, f.name, f.name),
        };
        let ty = if f.arg == ArgSpec::Ancestor {
            format!("{} (list without index)", f.ty)
        } else {
            f.ty.to_string()
        };
        let doc = match without_value(f.name) {
            Some(why) => format!("{} **Never has a value in rampart**: {why}.", f.doc),
            None => f.doc.to_string(),
        };
        out.push_str(&format!("| {name} | {ty} | {} |\n", doc.replace('|', "\\|")));
    }
    out.push_str(
        "\n## Operators by type\n\n\
         | Type | Operators |\n|---|---|\n\
         | string | `=` `==` `!=` `<` `<=` `>` `>=` (byte order), `contains`, `icontains` (ASCII case-insensitive), \
         `bcontains`/`bstartswith` (hex bytes), `startswith`, `endswith`, `glob`/`iglob` (`*` also matches `/`), \
         `pmatch (paths)` (path or below), `regex` (RE2 syntax, whole value), `in (...)`, `intersects (...)`, `exists` |\n\
         | u64, i64 | `=` `!=` `<` `<=` `>` `>=`, `in (...)`, `intersects (...)`, `exists`; decimal or 0x hex values |\n\
         | bool | `=` `!=` (true, false), `in (...)`, `exists` |\n\
         | ipaddr, ipnet | `=` `!=` `in (...)` `intersects (...)` `exists`; values are addresses or CIDR networks |\n\n\
         On a list-valued field (`proc.aname` without index, `fd.ip`, `fd.port`, `fd.net`) a comparison holds \
         when it holds for any element, and `!=` when no element equals the value.\n",
    );
    out.push_str("\n## Event arguments (`evt.arg.NAME`, `evt.rawarg.NAME`)\n\n");
    out.push_str("| Event (`evt.type`) | Arguments |\n|---|---|\n");
    for (ev, args) in ARG_DOC {
        out.push_str(&format!("| {ev} | {args} |\n"));
    }
    out.push_str(
        "\n`res` (the return value) is present on every syscall event except procexit. \
         `evt.arg[N]` counts in the order listed, `res` first.\n",
    );
    out
}

const ARG_DOC: &[(&str, &str)] = &[
    ("execve, execveat", "filename, exe (argv[0]), args, cwd, tty, pid, ptid, comm, trusted_exepath, cap_effective, cap_permitted"),
    ("clone, fork, vfork, clone3", "child_pid, child_tid, flags"),
    ("procexit", "status, ret, sig, core"),
    ("open, openat, openat2, creat", "fd, name, flags (O_RDONLY\\|O_CREAT...), mode (octal)"),
    ("unlink, unlinkat, rmdir", "name, path, flags (AT_REMOVEDIR)"),
    ("rename, renameat, renameat2, link, linkat", "oldpath, newpath"),
    ("symlink, symlinkat", "target, linkpath"),
    ("mkdir, mkdirat", "path, mode (octal)"),
    ("chmod, fchmod, fchmodat", "filename, path, mode (S_ISUID\\|S_IRUSR...)"),
    ("chown, fchownat, lchown, ...", "path, uid, gid (-1 = unchanged)"),
    ("mount", "dev, dir, type, flags (MS_BIND\\|...)"),
    ("umount, umount2", "name, flags"),
    ("socket", "domain (AF_INET...), type, proto"),
    ("connect", "fd, addr, tuple"),
    ("accept, accept4", "fd, tuple"),
    ("bind", "fd, addr"),
    ("listen", "fd, backlog"),
    ("setuid, setreuid, setresuid, setfsuid", "uid / ruid, euid, suid"),
    ("setgid, setregid, setresgid, setfsgid", "gid / rgid, egid, sgid"),
    ("capset", "cap_inheritable, cap_permitted, cap_effective (CAP_...\\|CAP_...)"),
    ("ptrace", "request (PTRACE_ATTACH...), pid"),
    ("init_module, finit_module", "path, name (the module file, finit_module only)"),
    ("setns", "fd, nstype (CLONE_NEW...), ns (namespace file)"),
    ("unshare", "flags (CLONE_NEWNS\\|CLONE_NEWUSER...)"),
    ("memfd_create", "name, flags (MFD_CLOEXEC...)"),
    ("bpf", "cmd (BPF_PROG_LOAD...)"),
    ("capable (rampart: capability checks)", "cap (CAP_SYS_ADMIN...), granted"),
    (
        "flow (rampart: network flows counted in the kernel)",
        "phase (start, update, end), proto, local, remote (ip:port), bytes_in, bytes_out, payload_in, payload_out, packets_in, packets_out, duration (ns), tcp_state, retransmits, reason (of an end)",
    ),
    (
        "netdeny (rampart: network policy denials)",
        "op (connect, sendmsg, bind, ingress, egress), addr (destination, bind address, or ingress source), proto (tcp, udp, icmp...), entry (the policy entry that decided, e.g. `egress.deny[0] (10.0.0.0/8)`, `egress.default`, `isolated`), count",
    ),
];

#[cfg(test)]
#[path = "fields_tests.rs"]
mod values_tests;

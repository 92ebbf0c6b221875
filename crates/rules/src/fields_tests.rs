//! Values of the fields that come from the process table, the agent's reads
//! at exec and the runtime, and the fields rampart never fills.

use super::*;
use crate::tests::{base, connect, exec, open};
use model::{Caps, ExecDetails, ProcInfo, UserNames};
use std::collections::HashMap;

fn val<'a>(name: &str, ev: &'a Event, ctx: &EvalCtx<'a>) -> String {
    let (field, bracket) = match name.split_once('[') {
        Some((f, rest)) => (f, Some(rest.trim_end_matches(']'))),
        None => (name, None),
    };
    let (def, arg) = lookup(field, bracket).unwrap();
    // The argument must outlive the value: leak it (tests only).
    let arg: &'a Arg = Box::leak(Box::new(arg));
    let mut out = String::new();
    (def.extract)(ev, ctx, arg).render(&mut out);
    out
}

fn ctx(t: &HashMap<u32, ProcInfo>) -> EvalCtx<'_> {
    EvalCtx { procs: Some(t), hostname: None, event_num: 1 }
}

fn info(pid: u32, ppid: u32, comm: &str) -> ProcInfo {
    ProcInfo { pid, ppid, comm: comm.into(), ..Default::default() }
}

/// bash (100) in session 20 led by sshd (20), under init (1) in session 1.
fn table() -> HashMap<u32, ProcInfo> {
    let mut t = HashMap::new();
    for p in [
        ProcInfo { sid: 1, pgid: 1, ..info(1, 0, "init") },
        ProcInfo { sid: 20, pgid: 20, ..info(20, 1, "sshd") },
        ProcInfo { sid: 20, pgid: 20, ..info(50, 20, "nginx") },
        ProcInfo {
            sid: 20,
            pgid: 100,
            start_time_ns: base("x", EventKind::Bpf { cmd: 0 }).ts_ns - 5_000,
            caps: Some(Caps { effective: 1 << 21, permitted: 1 << 21 | 1, inheritable: None }),
            env: Some(vec!["HOME=/root".to_string(), "GLIBC_TUNABLES=x=y".to_string()].into()),
            exe_ctime_ns: Some(base("x", EventKind::Bpf { cmd: 0 }).ts_ns - 10_000),
            exe_mtime_ns: Some(7),
            sockets: vec![(4, "udp"), (5, "tcp")],
            ..info(100, 50, "bash")
        },
    ] {
        t.insert(p.pid, p);
    }
    t
}

#[test]
fn duration_session_group_from_the_table() {
    let t = table();
    let c = ctx(&t);
    let ev = open("/etc/passwd", 0);
    assert_eq!(val("proc.duration", &ev, &c), "5000");
    assert_eq!(val("proc.sname", &ev, &c), "sshd");
    assert_eq!(val("proc.is_vpgid_leader", &ev, &c), "true");
    let mut nginx = ev.clone();
    nginx.process.pid = 50;
    nginx.process.ppid = 20;
    assert_eq!(val("proc.is_vpgid_leader", &nginx, &c), "false");
    assert_eq!(val("proc.vpgid.name", &nginx, &c), "sshd");
    assert_eq!(val("proc.vpgid.name", &ev, &c), "bash");
    // the parent (nginx) has no start time here; give it one
    let mut t3 = table();
    t3.get_mut(&50).unwrap().start_time_ns = ev.ts_ns - 9;
    assert_eq!(val("proc.ppid.duration", &ev, &ctx(&t3)), "9");
    assert_eq!(val("proc.ppid.duration", &ev, &c), "<NA>");
    // the leader is not in the table: the eldest ancestor in the session
    let mut t2 = table();
    t2.remove(&20);
    t2.get_mut(&50).unwrap().ppid = 1;
    assert_eq!(val("proc.sname", &ev, &ctx(&t2)), "nginx");
    // the process leads its own session
    t2.get_mut(&100).unwrap().sid = 100;
    assert_eq!(val("proc.sname", &ev, &ctx(&t2)), "bash");
    // unknown: no value; and no table, no value
    t2.get_mut(&100).unwrap().sid = 0;
    t2.get_mut(&100).unwrap().pgid = 0;
    t2.get_mut(&100).unwrap().start_time_ns = 0;
    for f in ["proc.sname", "proc.is_vpgid_leader", "proc.duration"] {
        assert_eq!(val(f, &ev, &ctx(&t2)), "<NA>", "{f}");
        assert_eq!(val(f, &ev, &EvalCtx::default()), "<NA>", "{f}");
    }
    // an exec's own details win over the table
    let mut e = exec("sh", &["sh"]);
    if let EventKind::Exec { details, .. } = &mut e.kind {
        *details = Some(Box::new(ExecDetails { sid: Some(100), pgid: Some(7), ..Default::default() }));
    }
    assert_eq!(val("proc.sname", &e, &c), "sh");
    assert_eq!(val("proc.is_vpgid_leader", &e, &c), "false");
}

#[test]
fn caps_on_every_event() {
    let t = table();
    let c = ctx(&t);
    let ev = open("/etc/passwd", 0);
    assert_eq!(val("thread.cap_effective", &ev, &c), "CAP_SYS_ADMIN");
    assert_eq!(val("thread.cap_permitted", &ev, &c), "CAP_CHOWN|CAP_SYS_ADMIN");
    assert_eq!(val("thread.cap_inheritable", &ev, &c), "<NA>");
    assert_eq!(val("thread.cap_effective", &ev, &EvalCtx::default()), "<NA>");
    // exec and capset carry their own
    let e = exec("sh", &["sh"]);
    assert_eq!(val("thread.cap_effective", &e, &EvalCtx::default()), "CAP_SYS_ADMIN");
    let cs = base("capset", EventKind::Capset { effective: 0, permitted: 1, inheritable: 2 });
    assert_eq!(val("thread.cap_effective", &cs, &c), "");
    assert_eq!(val("thread.cap_permitted", &cs, &c), "CAP_CHOWN");
    assert_eq!(val("thread.cap_inheritable", &cs, &c), "CAP_DAC_OVERRIDE");
    let holds = |cond: &str, ev: &Event| {
        let mut b = crate::RulesetBuilder::new();
        b.add_file(
            "r.yaml",
            &format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n"),
        );
        b.build().unwrap().evaluate(ev, &c).next().is_some()
    };
    assert!(holds("thread.cap_permitted contains CAP_SYS_ADMIN", &ev));
    assert!(!holds("thread.cap_effective contains CAP_CHOWN", &ev));
}

#[test]
fn environment() {
    let t = table();
    let c = ctx(&t);
    let ev = open("/etc/passwd", 0);
    assert_eq!(val("proc.env", &ev, &c), "HOME=/root GLIBC_TUNABLES=x=y");
    assert_eq!(val("proc.env[GLIBC_TUNABLES]", &ev, &c), "x=y");
    assert_eq!(val("proc.env[HOM]", &ev, &c), "<NA>");
    assert_eq!(val("proc.env", &ev, &EvalCtx::default()), "<NA>");
    let mut e = exec("curl", &["curl"]);
    if let EventKind::Exec { details, .. } = &mut e.kind {
        *details = Some(Box::new(ExecDetails {
            env: Some(vec!["HTTP_PROXY=http://x:3128".into()]),
            ..Default::default()
        }));
    }
    assert_eq!(val("proc.env[HTTP_PROXY]", &e, &c), "http://x:3128");
    assert!(lookup("proc.env", None).is_ok() && lookup("proc.env", Some("PATH")).is_ok());
}

#[test]
fn executable_inode_times() {
    let t = table();
    let c = ctx(&t);
    let ev = open("/etc/passwd", 0);
    let ts = ev.ts_ns;
    assert_eq!(val("proc.exe_ino.ctime", &ev, &c), (ts - 10_000).to_string());
    assert_eq!(val("proc.exe_ino.mtime", &ev, &c), "7");
    assert_eq!(val("proc.exe_ino.ctime_duration_proc_start", &ev, &c), "5000");
    // a ctime after the start: no value
    let mut t2 = table();
    t2.get_mut(&100).unwrap().exe_ctime_ns = Some(ts);
    assert_eq!(val("proc.exe_ino.ctime_duration_proc_start", &ev, &ctx(&t2)), "<NA>");
    t2.get_mut(&100).unwrap().exe_ctime_ns = None;
    assert_eq!(val("proc.exe_ino.ctime", &ev, &ctx(&t2)), "<NA>");
}

#[test]
fn container_start() {
    let mut ev = open("/x", 0);
    assert_eq!(val("container.start_ts", &ev, &EvalCtx::default()), "<NA>");
    let mut c = (*ev.container.clone().unwrap()).clone();
    c.created_ns = Some(1_714_557_600_000_000_000);
    ev.container = Some(std::sync::Arc::new(c));
    assert_eq!(val("container.start_ts", &ev, &EvalCtx::default()), "1714557600000000000");
    ev.container = None;
    assert_eq!(val("container.start_ts", &ev, &EvalCtx::default()), "<NA>");
}

#[test]
fn raw_name_and_failed_open_fd() {
    let c = EvalCtx::default();
    let ev = open("/etc/shadow", 0);
    assert_eq!(val("fd.nameraw", &ev, &c), "/etc/shadow");
    let mut failed = open("/var/etc/shadow", 0);
    failed.ret = Some(-2);
    if let EventKind::Open { raw_path, .. } = &mut failed.kind {
        *raw_path = Some("../etc/./shadow".into());
    }
    assert_eq!(val("fd.nameraw", &failed, &c), "../etc/./shadow");
    assert_eq!(val("fd.name", &failed, &c), "/var/etc/shadow");
    // Falco's failed-open macro: fd.num=-1 and evt.res startswith E
    assert_eq!(val("fd.num", &failed, &c), "-1");
    assert_eq!(val("evt.res", &failed, &c), "ENOENT");
    assert_eq!(val("fd.num", &ev, &c), "3");
    assert_eq!(val("fd.nameraw", &connect("1.2.3.4", 80), &c), "<NA>");
}

#[test]
fn socket_state_and_protocol() {
    let t = table();
    let c = ctx(&t);
    // fd 4 was created as a UDP socket (the table saw its socket event)
    let mut ev = connect("1.2.3.4", 53);
    assert_eq!(val("fd.l4proto", &ev, &c), "udp");
    assert_eq!(val("fd.connected", &ev, &c), "true");
    assert_eq!(val("fd.name_changed", &ev, &c), "true");
    ev.ret = Some(-115); // EINPROGRESS
    assert_eq!(val("fd.connected", &ev, &c), "true");
    ev.ret = Some(-111); // ECONNREFUSED
    assert_eq!(
        (val("fd.connected", &ev, &c), val("fd.name_changed", &ev, &c)),
        ("false".into(), "false".into())
    );
    // without the socket event: no protocol
    assert_eq!(val("fd.l4proto", &ev, &EvalCtx::default()), "<NA>");
    let bind = base(
        "bind",
        EventKind::Bind { fd: 5, addr: Some(SockAddr::Inet { ip: "0.0.0.0".parse().unwrap(), port: 80 }) },
    );
    assert_eq!(val("fd.l4proto", &bind, &c), "tcp");
    assert_eq!(val("fd.connected", &bind, &c), "false");
    let mut acc = base("accept4", EventKind::Accept { fd: 4, local: None, remote: None });
    acc.ret = Some(9);
    if let EventKind::Accept { local, remote, .. } = &mut acc.kind {
        *local = Some(SockAddr::Inet { ip: "10.0.0.1".parse().unwrap(), port: 80 });
        *remote = Some(SockAddr::Inet { ip: "10.0.0.2".parse().unwrap(), port: 5555 });
    }
    assert_eq!(val("fd.l4proto", &acc, &EvalCtx::default()), "tcp");
    assert_eq!(
        (val("fd.connected", &acc, &c), val("fd.name_changed", &acc, &c)),
        ("true".into(), "false".into())
    );
    let sock = base("socket", EventKind::Socket { domain: 10, sock_type: 2, protocol: 0 });
    assert_eq!(val("fd.l4proto", &sock, &c), "udp");
    assert_eq!(val("fd.connected", &sock, &c), "false");
    assert_eq!(val("fd.connected", &open("/x", 0), &c), "<NA>");
    assert_eq!(val("fd.name_changed", &open("/x", 0), &c), "false");
}

#[test]
fn names_from_the_container_passwd() {
    let c = EvalCtx::default();
    let mut ev = open("/x", 0);
    ev.process.euid = 1000;
    ev.process.egid = 1000;
    ev.process.auid = 1001;
    assert_eq!(val("user.name", &ev, &c), "1000");
    assert_eq!(val("user.homedir", &ev, &c), "<NA>");
    assert_eq!(val("group.name", &ev, &c), "1000");
    assert_eq!(val("user.loginname", &ev, &c), "1001");
    ev.process.users = Some(std::sync::Arc::new(UserNames {
        name: Some("www-data".into()),
        homedir: Some("/var/www".into()),
        shell: Some("/usr/sbin/nologin".into()),
        group: Some("www".into()),
        loginname: Some("alice".into()),
    }));
    assert_eq!(val("user.name", &ev, &c), "www-data");
    assert_eq!(val("user.homedir", &ev, &c), "/var/www");
    assert_eq!(val("user.shell", &ev, &c), "/usr/sbin/nologin");
    assert_eq!(val("group.name", &ev, &c), "www");
    assert_eq!(val("user.loginname", &ev, &c), "alice");
    ev.process.auid = u32::MAX;
    assert_eq!(val("user.loginname", &ev, &c), "<NA>");
    ev.process.users = None;
    ev.process.euid = 0;
    assert_eq!(val("user.name", &ev, &c), "root");
}

#[test]
fn never_valued_fields_and_uncaptured_types_are_listed() {
    let t = table();
    let c = ctx(&t);
    for (name, why) in fields_without_value() {
        assert!(FIELDS.iter().any(|f| f.name == *name), "{name} is a field");
        assert_eq!(without_value(name), Some(*why));
        for ev in [open("/x", 0), connect("1.2.3.4", 443), exec("sh", &["sh"])] {
            assert_eq!(val(name, &ev, &c), "<NA>", "{name}");
        }
    }
    assert!(without_value("evt.buffer").is_some());
    assert_eq!(without_value("fd.name"), None);
    assert_eq!(without_value("fd.sip.name"), None, "filled from the container's DNS answers");
    assert_eq!(without_value("proc.env"), None);
    for ty in ["dup", "dup2", "dup3", "userfaultfd"] {
        assert!(uncaptured_event_type(ty).is_some(), "{ty}");
    }
    // every type the sensor does produce is absent from the list
    for ty in ["execve", "openat", "connect", "clone", "procexit", "netdeny", "capset"] {
        assert!(uncaptured_event_type(ty).is_none(), "{ty}");
    }
    assert!(uncaptured_event_types().len() >= 4);
}

#[test]
fn falco_fields_used_by_falco_rules_exist() {
    for f in [
        "proc.duration",
        "fd.nameraw",
        "proc.sname",
        "proc.is_vpgid_leader",
        "proc.env",
        "proc.exe_ino.ctime",
        "proc.exe_ino.mtime",
        "proc.exe_ino.ctime_duration_proc_start",
        "container.start_ts",
        "fd.connected",
        "fd.name_changed",
        "fd.sip.name",
        "fd.cip.name",
        "fd.rip.name",
        "fd.lip.name",
        "evt.buffer",
        "user.homedir",
        "thread.cap_inheritable",
    ] {
        assert!(lookup(f, None).is_ok(), "{f}");
    }
}

#[test]
fn ruleset_tells_which_fields_its_rules_use() {
    let mut b = crate::RulesetBuilder::new();
    b.add_file(
        "r.yaml",
        "- rule: a\n  desc: d\n  condition: proc.name = curl\n  output: env=%proc.env[HTTP_PROXY]\n  priority: INFO\n\
         - rule: b\n  desc: d\n  condition: fd.sip.name = x\n  output: o\n  priority: INFO\n  enabled: false\n",
    );
    let rs = b.build().unwrap();
    assert!(rs.uses_field("proc.env") && rs.uses_field("proc.name"));
    assert!(!rs.uses_field("fd.sip.name"), "disabled rules do not count");
    assert_eq!(rs.get("a").unwrap().fields_used(), vec!["proc.env", "proc.name"]);
}

/// A lookup that knows one name: what container 42 resolved 10.1.2.3 to.
#[derive(Debug)]
struct Resolved;

impl model::ProcessLookup for Resolved {
    fn process(&self, _pid: u32) -> Option<&ProcInfo> {
        None
    }
    fn dns_name(&self, cgroup_id: u64, ip: std::net::IpAddr, _at_ns: u64) -> Option<&str> {
        (cgroup_id == 42 && ip == "10.1.2.3".parse::<std::net::IpAddr>().unwrap())
            .then_some("www.example.test")
    }
}

fn dns_event(name: &str, response: bool, answers: &[(&str, &str)]) -> Event {
    let a = |ip: &str, port| SockAddr::Inet { ip: ip.parse().unwrap(), port };
    base(
        "dns",
        EventKind::Dns {
            proto: "udp".into(),
            direction: if response { "in" } else { "out" }.into(),
            local: a("172.18.0.3", 40000),
            remote: a("172.18.0.2", 53),
            id: 7,
            response,
            name: name.into(),
            qtype: "A".into(),
            rcode: response.then(|| "NOERROR".into()),
            answers: answers
                .iter()
                .map(|(t, d)| model::DnsAnswer {
                    name: name.into(),
                    rtype: (*t).into(),
                    ttl: 60,
                    data: (*d).into(),
                })
                .collect(),
            incomplete: false,
        },
    )
}

#[test]
fn dns_fields_and_names_of_resolved_addresses() {
    let r = Resolved;
    let c = EvalCtx { procs: Some(&r), hostname: None, event_num: 1 };
    let ev = dns_event(
        "www.example.test",
        true,
        &[("CNAME", "cdn.example.test"), ("A", "10.1.2.3"), ("AAAA", "fd00::1")],
    );
    assert_eq!(val("evt.type", &ev, &c), "dns");
    assert_eq!(val("dns.name", &ev, &c), "www.example.test");
    assert_eq!(val("dns.type", &ev, &c), "A");
    assert_eq!(val("dns.rcode", &ev, &c), "NOERROR");
    assert_eq!(val("dns.response", &ev, &c), "true");
    assert_eq!(val("dns.direction", &ev, &c), "in");
    assert_eq!(val("dns.answers", &ev, &c), "cdn.example.test,10.1.2.3,fd00::1");
    assert_eq!(val("dns.ips", &ev, &c), "10.1.2.3,fd00::1");
    assert_eq!(val("dns.cnames", &ev, &c), "cdn.example.test");
    assert_eq!(val("dns.name.len", &ev, &c), "16");
    assert_eq!(val("dns.name.labels", &ev, &c), "3");
    assert_eq!(val("dns.label.maxlen", &ev, &c), "7");
    assert_eq!(val("fd.sip", &ev, &c), "172.18.0.2");
    assert_eq!(val("fd.sport", &ev, &c), "53");
    assert_eq!(val("fd.l4proto", &ev, &c), "udp");
    assert_eq!(val("evt.arg.rcode", &ev, &c), "NOERROR");
    // A query: no rcode, no answers.
    let q = dns_event("a.test", false, &[]);
    assert_eq!((val("dns.rcode", &q, &c), val("dns.answers", &q, &c)), ("<NA>".into(), "<NA>".into()));
    // dns.* on other events: no value.
    let conn = connect("10.1.2.3", 443);
    assert_eq!(val("dns.name", &conn, &c), "<NA>");

    // fd.sip.name: what the connecting container itself resolved.
    let mut conn = connect("10.1.2.3", 443);
    conn.process.cgroup_id = 42;
    assert_eq!(val("fd.sip.name", &conn, &c), "www.example.test");
    assert_eq!(val("fd.rip.name", &conn, &c), "www.example.test");
    assert_eq!(val("fd.cip.name", &conn, &c), "<NA>");
    conn.process.cgroup_id = 43;
    assert_eq!(val("fd.sip.name", &conn, &c), "<NA>", "another container's lookup");
    // Without a lookup (held alerts' ancestry snapshot): no value.
    let t = table();
    let mut conn = connect("10.1.2.3", 443);
    conn.process.cgroup_id = 42;
    assert_eq!(val("fd.sip.name", &conn, &ctx(&t)), "<NA>");
}

#[test]
fn dns_labels_escapes_and_entropy() {
    assert_eq!(dns_labels("a\\.b.c"), ["a\\.b", "c"]);
    assert_eq!(dns_labels("."), Vec::<&str>::new());
    // The default tunnelling rule wants a label of 50+ or a name of 150+
    // characters: ordinary names, long readable ones included, have neither.
    for n in [
        "www.example.com",
        "kubernetes.default.svc.cluster.local",
        "internal-my-service-prod-1234567890.us-east-1.elb.amazonaws.com",
        "this-is-a-rather-long-but-readable-service-name.example.com",
    ] {
        assert!(dns_labels(n).iter().all(|l| l.len() < 50) && n.len() < 150, "{n}");
    }
    // Entropy grows with length and alphabet: a base32 or hex data label is
    // above the rule's 350, a padded (repetitive) one below.
    for n in [
        "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpjqwe3dsmrsgc5dfnfwgk3tfo5yxgzlnmvxhi2lpnzzxi.t.example.com",
        "4a6f686e20536d697468206c6976657320617420313233204d61696e205374726565742c20416e79746f776e.t.example.com",
    ] {
        assert!(dns_entropy(n) >= 350, "{n}: {}", dns_entropy(n));
    }
    assert!(dns_entropy(&format!("{}.example.com", "a".repeat(60))) < 350);
    assert_eq!(dns_entropy("aaaa"), 0);
    assert_eq!(dns_entropy("ab"), 100);
}

#[test]
fn tty_on_every_event_from_the_table() {
    let mut t = table();
    let ev = open("/srv/data", 0);
    // unknown to the table: no value (not "no terminal")
    assert_eq!(val("proc.tty", &ev, &ctx(&t)), "<NA>");
    t.get_mut(&100).unwrap().tty = Some(0);
    assert_eq!(val("proc.tty", &ev, &ctx(&t)), "0");
    t.get_mut(&100).unwrap().tty = Some(model::tty_nr("pts/3"));
    assert_eq!(val("proc.tty", &ev, &ctx(&t)), "34819");
}

#[test]
fn drift_on_every_event_from_the_table() {
    let mut t = table();
    let ev = open("/proc/cpuinfo", 0);
    assert_eq!(val("proc.is_exe_upper_layer", &ev, &ctx(&t)), "<NA>", "not known: no value");
    t.get_mut(&100).unwrap().exe_upper_layer = Some(true);
    assert_eq!(val("proc.is_exe_upper_layer", &ev, &ctx(&t)), "true");
    // An exec says it for itself, whatever the table held before it.
    let mut x = exec("/bin/ls", &["ls"]);
    if let EventKind::Exec { exe_upper_layer, .. } = &mut x.kind {
        *exe_upper_layer = Some(false);
    }
    assert_eq!(val("proc.is_exe_upper_layer", &x, &ctx(&t)), "false");
}

/// A lookup that knows the rates of one container: the one `base` events
/// come from.
#[derive(Debug)]
struct Sampled(model::ContainerRates);

impl model::ProcessLookup for Sampled {
    fn process(&self, _pid: u32) -> Option<&ProcInfo> {
        None
    }
    fn container_rates(&self, container_id: &str) -> Option<model::ContainerRates> {
        (container_id == "0123456789abcdef0123").then_some(self.0)
    }
}

#[test]
fn container_rates_come_from_the_lookup() {
    let ev = open("/etc/hosts", 0);
    let known = Sampled(model::ContainerRates {
        cpu_percent: Some(187),
        syscalls_per_s: None,
        net_rx_bytes_per_s: Some(0),
        net_tx_bytes_per_s: Some(4096),
    });
    let c = EvalCtx { procs: Some(&known), hostname: None, event_num: 1 };
    assert_eq!(val("container.cpu_share", &ev, &c), "187");
    assert_eq!(val("container.syscall_rate", &ev, &c), "<NA>", "syscall counts off");
    assert_eq!(val("container.net_rx_rate", &ev, &c), "0");
    assert_eq!(val("container.net_tx_rate", &ev, &c), "4096");
    // A host process, or a lookup that samples nothing: no value.
    let mut host = ev.clone();
    host.container = None;
    assert_eq!(val("container.cpu_share", &host, &c), "<NA>");
    let t = table();
    assert_eq!(val("container.cpu_share", &ev, &ctx(&t)), "<NA>");
    for f in CONTAINER_RATE_FIELDS {
        assert!(lookup(f, None).is_ok(), "{f} is a field");
    }
}

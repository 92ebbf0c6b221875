//! `rampart seccomp ...`: compile, check, diff and run under Docker/OCI
//! seccomp profiles with rampart's own compiler (crates/seccomp).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use seccomp::exec::Mode;
use seccomp::{action::describe, Action, Arch, CompileOptions, KernelVersion, Policy, Profile};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SeccompCommand {
    /// Compile a profile to seccomp BPF: print the instruction count, a
    /// listing (--disasm) or write raw `struct sock_filter` bytes (-o).
    Compile(CompileArgs),
    /// What a syscall gets under a profile, and which rule decides.
    Check(CheckArgs),
    /// Per-syscall differences between two profiles (exit status 1 when
    /// they differ).
    Diff(DiffArgs),
    /// Run a command under a profile (or strict mode); exits with the
    /// command's status and reports death by signal.
    Exec(ExecArgs),
    /// A profile sending only the syscalls the loaded deny rules need
    /// (`{deny: {errno: ...}}`) to rampart's seccomp agent (listenerPath),
    /// allowing the rest, or layered on --base.
    NotifyProfile(NotifyProfileArgs),
}

#[derive(Args)]
pub struct NotifyProfileArgs {
    /// A rule file or directory, loaded after the defaults (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Do not load the rule set built into rampart.
    #[arg(long)]
    no_default_rules: bool,
    /// A profile to add the notify entries to (e.g. Docker's default).
    #[arg(long, value_name = "FILE")]
    base: Option<PathBuf>,
    /// The agent's socket (`rampart run --notify-socket`).
    #[arg(long, value_name = "PATH", default_value = respond::notify::DEFAULT_SOCKET)]
    listener: String,
    /// Write the profile here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn notify_profile(a: NotifyProfileArgs) -> Result<()> {
    let rules = agent::config::RulesConfig {
        default_rules: !a.no_default_rules,
        paths: a.rules,
        ..Default::default()
    };
    let json = super::notify::profile(&rules, a.base.as_deref(), &a.listener)?;
    match a.output {
        Some(path) => {
            std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))
        }
        None => {
            println!("{json}");
            Ok(())
        }
    }
}

/// Who the filter is for: architecture, capabilities, kernel.
#[derive(Args)]
pub struct TargetArgs {
    /// Native architecture of the filter: x86_64, x86, x32, aarch64, arm.
    #[arg(long, default_value_t = Arch::native().name().to_string())]
    arch: String,
    /// The container's capabilities for includes/excludes (comma-separated,
    /// `CAP_` optional, `ALL` for every one; default: Docker's default set).
    #[arg(long, value_delimiter = ',', value_name = "CAP,...")]
    caps: Option<Vec<String>>,
    /// Kernel version for `minKernel` (e.g. 5.8; default: the running kernel).
    #[arg(long, value_name = "X.Y")]
    kernel: Option<String>,
}

impl TargetArgs {
    fn options(&self) -> Result<CompileOptions> {
        let arch = Arch::parse(&self.arch)?;
        let mut opts = CompileOptions::new(arch);
        if let Some(caps) = &self.caps {
            opts = opts.with_caps(caps)?;
        }
        opts.kernel = match &self.kernel {
            Some(k) => Some(KernelVersion::parse(k).with_context(|| format!("--kernel {k}: expected X.Y"))?),
            None => KernelVersion::running(),
        };
        Ok(opts)
    }
}

#[derive(Args)]
pub struct CompileArgs {
    /// Docker or OCI seccomp profile (JSON).
    profile: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Print the disassembled program.
    #[arg(long)]
    disasm: bool,
    /// Write the program as raw `struct sock_filter` bytes to this file.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct CheckArgs {
    /// Docker or OCI seccomp profile (JSON).
    profile: PathBuf,
    /// Syscall name (or number).
    #[arg(long)]
    syscall: String,
    /// An argument value, `INDEX=VALUE` (decimal or 0x hex; repeatable);
    /// arguments not given are 0.
    #[arg(long = "arg", value_name = "I=V")]
    args: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
    /// Print the BPF instructions the check went through.
    #[arg(long)]
    trace: bool,
}

#[derive(Args)]
pub struct DiffArgs {
    /// Profile A.
    a: PathBuf,
    /// Profile B.
    b: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
}

#[derive(Args)]
pub struct ExecArgs {
    /// Profile to install (required unless --strict).
    #[arg(long, required_unless_present = "strict")]
    profile: Option<PathBuf>,
    /// Strict mode (read, write, _exit, sigreturn only). execve is not among
    /// them: the command is killed by its own exec; for programs that must
    /// prove it.
    #[arg(long, conflicts_with = "profile")]
    strict: bool,
    /// Capabilities for includes/excludes (default: Docker's default set).
    #[arg(long, value_delimiter = ',', value_name = "CAP,...")]
    caps: Option<Vec<String>>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

pub fn run(cmd: SeccompCommand) -> Result<()> {
    match cmd {
        SeccompCommand::Compile(a) => compile(a),
        SeccompCommand::Check(a) => check(a),
        SeccompCommand::Diff(a) => diff(a),
        SeccompCommand::Exec(a) => exec(a),
        SeccompCommand::NotifyProfile(a) => notify_profile(a),
    }
}

/// Reads and compiles a profile; errors carry file:line:column.
fn load(path: &Path, opts: &CompileOptions) -> Result<(String, Profile, Policy)> {
    let text = model::input::read_text(path, model::input::limits::SECCOMP_PROFILE)
        .context("reading seccomp profile")?;
    let (profile, policy) = seccomp::compile_source(&text, &path.display().to_string(), opts)?;
    for note in &policy.notes {
        eprintln!("rampart: note: {}: {note}", path.display());
    }
    Ok((text, profile, policy))
}

fn arch_names(policy: &Policy) -> String {
    policy.arch_list().iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

fn compile(a: CompileArgs) -> Result<()> {
    let opts = a.target.options()?;
    let (_, _, policy) = load(&a.profile, &opts)?;
    let program = policy.to_program()?;
    let summary = format!(
        "{}: {} instructions for {} (default {}, foreign architectures {})",
        a.profile.display(),
        program.len(),
        arch_names(&policy),
        policy.default_action,
        policy.bad_arch_action
    );
    if let Some(out) = &a.output {
        std::fs::write(out, program.to_bytes()).with_context(|| format!("writing {}", out.display()))?;
    }
    if a.disasm {
        print!("{}", seccomp::disassemble(&program));
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if let Some(out) = &a.output {
        eprintln!("wrote {} bytes of struct sock_filter to {}", program.len() * 8, out.display());
    }
    Ok(())
}

fn parse_value(s: &str) -> Result<u64> {
    let s = s.trim();
    let v = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(&hex.replace('_', ""), 16)
    } else if let Some(neg) = s.strip_prefix('-') {
        // -1 as the 64-bit two's complement, as a C caller would pass it.
        neg.parse::<u64>().map(|v| v.wrapping_neg())
    } else {
        s.replace('_', "").parse::<u64>()
    };
    v.with_context(|| format!("{s:?} is not a number"))
}

fn parse_args(list: &[String]) -> Result<[u64; 6]> {
    let mut args = [0u64; 6];
    for item in list {
        let (i, v) = item.split_once('=').with_context(|| format!("--arg {item}: expected INDEX=VALUE"))?;
        let i: usize = i.trim().parse().with_context(|| format!("--arg {item}: bad index"))?;
        if i > 5 {
            bail!("--arg {item}: syscalls have arguments 0 to 5");
        }
        args[i] = parse_value(v).with_context(|| format!("--arg {item}"))?;
    }
    Ok(args)
}

fn check(a: CheckArgs) -> Result<()> {
    let opts = a.target.options()?;
    let args = parse_args(&a.args)?;
    let (text, profile, policy) = load(&a.profile, &opts)?;
    let program = policy.to_program()?;
    let arch = opts.arch;
    let result = match a.syscall.parse::<u32>() {
        Ok(nr) => seccomp::check::check_number(&policy, &program, arch, nr, args)?,
        Err(_) => seccomp::check(&policy, &program, arch, &a.syscall, args)?,
    };
    let shown: Vec<String> = args.iter().map(|v| format!("{v:#x}")).collect();
    println!("{}({}) on {}: {}", result.name, shown.join(", "), arch, describe(result.action));
    match result.entry {
        Some(i) => {
            let at = seccomp::profile::syscall_entry_offsets(&text)
                .get(i)
                .map(|o| {
                    let (l, c) = seccomp::profile::line_col(&text, *o);
                    format!(" at {}:{l}:{c}", a.profile.display())
                })
                .unwrap_or_default();
            let comment =
                profile.syscalls[i].comment.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            println!("  rule: syscalls[{i}]{at}{comment}");
        }
        None if result.arch_covered => println!("  rule: none, the default action"),
        None => println!(
            "  rule: none, {arch} is not one of the filter's architectures ({})",
            arch_names(&policy)
        ),
    }
    println!("  {}: {}", result.name, result.decision);
    if a.trace {
        let data =
            seccomp::SeccompData { nr: result.nr, arch: arch.audit_arch(), instruction_pointer: 0, args };
        let (_, path) = program.run_traced(&data)?;
        let listing = seccomp::disassemble(&program);
        let lines: Vec<&str> = listing.lines().collect();
        println!("  path through the filter ({} instructions):", path.len());
        for pc in path {
            println!("    {}", lines[pc]);
        }
    }
    Ok(())
}

fn diff(a: DiffArgs) -> Result<()> {
    let opts = a.target.options()?;
    let (_, _, pa) = load(&a.a, &opts)?;
    let (_, _, pb) = load(&a.b, &opts)?;
    let d = seccomp::diff(&pa, &pb);
    let mut out = std::io::stdout().lock();
    let (na, nb) = (a.a.display(), a.b.display());
    writeln!(out, "A = {na}\nB = {nb}")?;
    if d.is_empty() {
        writeln!(out, "no differences for {} (caps and kernel as given)", arch_names(&pa))?;
        return Ok(());
    }
    if let Some((x, y)) = d.default {
        writeln!(out, "default action: A {x}, B {y}")?;
    }
    if let Some((x, y)) = d.bad_arch {
        writeln!(out, "foreign architectures: A {x}, B {y}")?;
    }
    for arch in &d.only_a {
        writeln!(
            out,
            "architecture {arch}: only A covers it (B gives its processes {})",
            pb.bad_arch_action
        )?;
    }
    for arch in &d.only_b {
        writeln!(
            out,
            "architecture {arch}: only B covers it (A gives its processes {})",
            pa.bad_arch_action
        )?;
    }
    let mut current = None;
    let mut by_default: Vec<&str> = Vec::new();
    for s in &d.syscalls {
        if current != Some(s.arch) {
            flush_defaults(&mut out, &mut by_default, &d)?;
            writeln!(out, "{}:", s.arch)?;
            current = Some(s.arch);
        }
        if s.via_default {
            by_default.push(s.name);
            continue;
        }
        writeln!(out, "  {}", s.name)?;
        writeln!(out, "    A: {}", s.a)?;
        writeln!(out, "    B: {}", s.b)?;
        match s.witness {
            Some((args, x, y)) => {
                let conds: Vec<String> = args
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0)
                    .map(|(i, v)| format!("arg{i}={v:#x}"))
                    .collect();
                let at = if conds.is_empty() { "all arguments 0".to_string() } else { conds.join(", ") };
                let runs = if x.runs_syscall() != y.runs_syscall() {
                    " (one runs it, the other does not)"
                } else {
                    ""
                };
                writeln!(out, "    e.g. {at}: A {x}, B {y}{runs}")?;
            }
            None => writeln!(
                out,
                "    (written differently; no argument values found where they decide differently)"
            )?,
        }
    }
    flush_defaults(&mut out, &mut by_default, &d)?;
    let real = d.syscalls.iter().filter(|s| s.witness.is_some()).count();
    writeln!(out, "{real} syscall(s) decided differently")?;
    out.flush()?;
    drop(out);
    if real > 0 || d.default.is_some() || d.bad_arch.is_some() || !d.only_a.is_empty() || !d.only_b.is_empty()
    {
        std::process::exit(1);
    }
    Ok(())
}

fn flush_defaults(out: &mut impl Write, names: &mut Vec<&str>, d: &seccomp::PolicyDiff) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let (x, y) = d.default.unwrap_or((Action::Allow, Action::Allow));
    writeln!(out, "  {} syscalls neither profile lists (A {x}, B {y}): {}", names.len(), names.join(" "))?;
    names.clear();
    Ok(())
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSYS => "SIGSYS",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGHUP => "SIGHUP",
        _ => return format!("signal {sig}"),
    };
    format!("{name} ({sig})")
}

fn exec(a: ExecArgs) -> Result<()> {
    let (program_path, args) = a.command.split_first().context("no command given")?;
    let mode = if a.strict {
        Mode::Strict
    } else {
        let path = a.profile.as_ref().context("--profile is required without --strict")?;
        let mut opts = CompileOptions::new(Arch::native());
        if let Some(caps) = &a.caps {
            opts = opts.with_caps(caps)?;
        }
        opts.kernel = KernelVersion::running();
        let (_, _, policy) = load(path, &opts)?;
        Mode::Filter { program: policy.to_program()?, flags: policy.flags.clone() }
    };
    let status = seccomp::exec::run_command(program_path, args, &mode)
        .with_context(|| format!("running {}", program_path.to_string_lossy()))?;
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    let sig = status.signal().unwrap_or(0);
    let why = match sig {
        libc::SIGSYS => ": a syscall the filter kills (KILL_PROCESS/KILL_THREAD/TRAP)",
        libc::SIGKILL if a.strict => ": a syscall strict mode forbids (execve itself is one)",
        _ => "",
    };
    eprintln!("rampart: {} killed by {}{why}", program_path.to_string_lossy(), signal_name(sig));
    std::process::exit(128 + sig);
}

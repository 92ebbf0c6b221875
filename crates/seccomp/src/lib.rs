//! rampart's seccomp toolkit.
//!
//! - [`Profile`]: Docker / OCI seccomp JSON (serde, both directions), parsed
//!   with file:line:column errors and validated (see [`profile`]).
//! - [`syscalls`]: name <-> number for x86_64, x86, x32, aarch64 and arm,
//!   generated from the kernel headers by `scripts/gen-syscalls.sh`;
//!   [`syscalls::names`] lists every syscall of an architecture.
//! - [`compile()`]: profile + [`CompileOptions`] (native architecture,
//!   capabilities, kernel version) -> [`Policy`], the rule model, whose
//!   [`Policy::decide`] is the reference semantics; [`Policy::to_program`]
//!   -> classic BPF [`Program`] (see [`compile`](mod@compile) for the
//!   semantics, which follow Docker/runc/libseccomp).
//! - [`disassemble`]: a readable listing; [`Program::run`]: a simulator of the
//!   kernel's classic BPF over a [`SeccompData`].
//! - [`check()`] and [`diff()`]: what a syscall gets and which rule said so,
//!   with the BPF cross-checked against the rule model; per-syscall
//!   differences between two profiles, argument conditions included.
//! - [`exec`]: install a filter (or strict mode) and run a command.
//!
//! ```
//! use seccomp::{check, compile, Action, Arch, CompileOptions, Profile};
//! let profile = Profile::from_json_str(
//!     r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
//!         "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
//!     "example.json",
//! )?;
//! let policy = compile(&profile, &CompileOptions::new(Arch::X86_64))?;
//! let program = policy.to_program()?;
//! let result = check(&policy, &program, Arch::X86_64, "getpid", [0; 6])?;
//! assert_eq!(result.action, Action::Errno(1));
//! # Ok::<(), seccomp::Error>(())
//! ```

pub mod action;
pub mod arch;
pub mod bpf;
pub mod check;
pub mod compile;
pub mod disasm;
mod error;
pub mod exec;
pub mod profile;
pub mod syscalls;
mod tables;

pub use action::Action;
pub use arch::Arch;
pub use bpf::{Insn, Program, SeccompData};
pub use check::{boundary_values, check, check_number, diff, CheckResult, PolicyDiff, SyscallDiff};
pub use compile::{
    compile, compile_bpf, ArchPolicy, CompileOptions, Condition, Decision, Policy, Rule, Verdict,
};
pub use disasm::disassemble;
pub use error::{Error, Result};
pub use profile::{ActionName, Arg, Filter, FilterFlag, KernelVersion, Op, Profile, Syscall};

/// Parses `text` (from `origin`, e.g. a file name) and compiles it, with
/// every error placed at `origin:line:column` where the text allows: syntax,
/// validation, and unknown syscall names.
pub fn compile_source(text: &str, origin: &str, opts: &CompileOptions) -> Result<(Profile, Policy)> {
    let profile = Profile::from_json_str(text, origin)?;
    match compile(&profile, opts) {
        Ok(policy) => Ok((profile, policy)),
        Err(Error::UnknownSyscall { entry, name, arches, .. }) => {
            let from = profile::syscall_entry_offsets(text).get(entry).copied().unwrap_or(0);
            let (line, column) = profile::position_of_name(text, from, &name).unwrap_or((1, 1));
            Err(Error::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: format!(
                    "syscalls[{entry}]: unknown syscall \"{name}\" (not a syscall of {arches} nor of any other architecture rampart knows)"
                ),
            })
        }
        Err(e) => Err(e),
    }
}

/// [`compile_source`] for a file.
pub fn compile_file(path: &std::path::Path, opts: &CompileOptions) -> Result<(Profile, Policy)> {
    let text = model::input::read_text(path, model::input::limits::SECCOMP_PROFILE)?;
    compile_source(&text, &path.display().to_string(), opts)
}

//! Installing filters in the kernel, and running a command under one.
//!
//! [`run_command`] forks (through `std::process::Command` with a pre-exec
//! hook): the child sets `PR_SET_NO_NEW_PRIVS`, installs the filter with
//! `seccomp(SECCOMP_SET_MODE_FILTER)` (or enters strict mode) and execs, so
//! the filter covers the command from its first instruction, exec included.
//!
//! Strict mode (`SECCOMP_MODE_STRICT`) allows only read, write, _exit and
//! sigreturn; `execve` is not among them, so a command started under strict
//! mode is killed (SIGKILL) by its own exec. It is offered for completeness
//! and for code that enters strict mode itself ([`enter_strict_mode`]).

use crate::profile::FilterFlag;
use crate::{Error, Program, Result};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};

const SECCOMP_SET_MODE_STRICT: libc::c_uint = 0;
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

/// How to confine the command.
#[derive(Debug, Clone)]
pub enum Mode {
    /// This filter, with these `SECCOMP_FILTER_FLAG_*` flags.
    Filter { program: Program, flags: Vec<FilterFlag> },
    /// `SECCOMP_MODE_STRICT`.
    Strict,
}

fn os_err(call: &'static str) -> Error {
    Error::Os { call, source: std::io::Error::last_os_error() }
}

/// Sets `PR_SET_NO_NEW_PRIVS`, which an unprivileged process needs before
/// installing a filter (and which keeps setuid binaries from escaping it).
pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(os_err("prctl(PR_SET_NO_NEW_PRIVS)"));
    }
    Ok(())
}

/// Installs `filters` (a program's instructions) on the calling thread (every
/// thread with TSYNC). Async-signal-safe: no allocation.
fn install_raw(filters: &[libc::sock_filter], flags: libc::c_uint) -> std::io::Result<()> {
    let prog = libc::sock_fprog { len: filters.len() as libc::c_ushort, filter: filters.as_ptr().cast_mut() };
    // SAFETY: `prog` points at `filters`, which outlives the call; the kernel
    // copies the program and does not keep the pointer.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
    };
    // With TSYNC a positive return is the id of a thread that could not sync.
    if rc != 0 {
        return Err(if rc > 0 {
            std::io::Error::other(format!("thread {rc} could not take the filter (TSYNC)"))
        } else {
            std::io::Error::last_os_error()
        });
    }
    Ok(())
}

fn flag_bits(flags: &[FilterFlag]) -> libc::c_uint {
    flags.iter().fold(0, |acc, f| acc | f.bit())
}

/// Sets no-new-privs and installs `program` on the calling process (on all
/// its threads when `flags` has TSYNC). Irreversible.
pub fn install(program: &Program, flags: &[FilterFlag]) -> Result<()> {
    Prepared::new(program, flags)?
        .install()
        .map_err(|source| Error::Os { call: "seccomp(SECCOMP_SET_MODE_FILTER)", source })
}

/// A filter ready to install without allocating: for a child between fork
/// and exec (or a `pre_exec` hook), where only async-signal-safe calls are
/// allowed.
#[derive(Debug, Clone)]
pub struct Prepared {
    filters: Vec<libc::sock_filter>,
    flags: libc::c_uint,
}

impl Prepared {
    /// Checks the program and lays it out as the kernel takes it.
    pub fn new(program: &Program, flags: &[FilterFlag]) -> Result<Prepared> {
        program.validate()?;
        Ok(Prepared { filters: program.to_sock_filters(), flags: flag_bits(flags) })
    }

    /// `PR_SET_NO_NEW_PRIVS`, then `seccomp(SECCOMP_SET_MODE_FILTER)`.
    /// Async-signal-safe.
    pub fn install(&self) -> std::io::Result<()> {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        install_raw(&self.filters, self.flags)
    }
}

/// Puts the calling thread in strict mode: from now on only read, write,
/// _exit and sigreturn; anything else is SIGKILL. Irreversible.
pub fn enter_strict_mode() -> Result<()> {
    // SAFETY: seccomp(2) strict mode takes no pointer (args must be 0/NULL).
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0usize) };
    if rc != 0 {
        return Err(os_err("seccomp(SECCOMP_SET_MODE_STRICT)"));
    }
    Ok(())
}

/// Runs `program` with `args` under `mode` and waits for it. The child is
/// confined between fork and exec; the parent is not.
pub fn run_command<S: AsRef<OsStr>>(program_path: &OsStr, args: &[S], mode: &Mode) -> Result<ExitStatus> {
    let mut cmd = Command::new(program_path);
    cmd.args(args);
    match mode {
        Mode::Filter { program, flags } => {
            program.validate()?;
            if program
                .insns
                .iter()
                .any(|i| i.code == crate::bpf::BPF_RET && i.k == crate::Action::Notify.to_ret())
            {
                return Err(Error::Invalid {
                    location: "profile".to_string(),
                    message:
                        "SCMP_ACT_NOTIFY needs a user-space listener, which rampart seccomp exec does not run"
                            .to_string(),
                });
            }
            // Built before fork: the hook below must not allocate. TSYNC is
            // pointless in the single-threaded child; the other flags apply.
            let flags: Vec<FilterFlag> = flags.iter().copied().filter(|f| *f != FilterFlag::Tsync).collect();
            let prepared = Prepared::new(program, &flags)?;
            // SAFETY: the hook runs in the forked child before exec and only
            // makes the prctl and seccomp syscalls (async-signal-safe), reading
            // memory prepared before the fork.
            unsafe {
                cmd.pre_exec(move || prepared.install());
            }
        }
        Mode::Strict => {
            // SAFETY: as above: one seccomp syscall in the child.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0usize) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    let mut child = cmd.spawn().map_err(|source| Error::Os { call: "spawning the command", source })?;
    child.wait().map_err(|source| Error::Os { call: "waiting for the command", source })
}

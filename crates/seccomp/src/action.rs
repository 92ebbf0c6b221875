//! Seccomp filter return values (`SECCOMP_RET_*`) as a typed action.

use std::fmt;

/// `SECCOMP_RET_KILL_PROCESS`.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD` (libseccomp's and Docker's `SCMP_ACT_KILL`).
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`.
pub const RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`; the low 16 bits are the errno.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`; the low 16 bits go to the tracer.
pub const RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the action part of a return value.
pub const RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`: the data part of a return value.
pub const RET_DATA: u32 = 0x0000_ffff;

/// What the kernel does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Kill the whole process (SIGSYS, core dump).
    KillProcess,
    /// Kill the calling thread only.
    KillThread,
    /// Send SIGSYS to the thread.
    Trap,
    /// Fail the syscall with this errno, without running it.
    Errno(u16),
    /// Ask the user-space notifier (`SCMP_ACT_NOTIFY`).
    Notify,
    /// Notify a ptrace tracer with this message; without a tracer, ENOSYS.
    Trace(u16),
    /// Run the syscall and log it.
    Log,
    /// Run the syscall.
    Allow,
}

impl Action {
    /// The filter return value (`SECCOMP_RET_*` with its data).
    pub fn to_ret(self) -> u32 {
        match self {
            Action::KillProcess => RET_KILL_PROCESS,
            Action::KillThread => RET_KILL_THREAD,
            Action::Trap => RET_TRAP,
            Action::Errno(e) => RET_ERRNO | u32::from(e),
            Action::Notify => RET_USER_NOTIF,
            Action::Trace(m) => RET_TRACE | u32::from(m),
            Action::Log => RET_LOG,
            Action::Allow => RET_ALLOW,
        }
    }

    /// The action of a filter return value. Like the kernel, an action value it
    /// does not know kills the process.
    pub fn from_ret(ret: u32) -> Action {
        let data = (ret & RET_DATA) as u16;
        match ret & RET_ACTION_FULL {
            RET_KILL_PROCESS => Action::KillProcess,
            RET_KILL_THREAD => Action::KillThread,
            RET_TRAP => Action::Trap,
            RET_ERRNO => Action::Errno(data),
            RET_USER_NOTIF => Action::Notify,
            RET_TRACE => Action::Trace(data),
            RET_LOG => Action::Log,
            RET_ALLOW => Action::Allow,
            _ => Action::KillProcess,
        }
    }

    /// Whether the syscall runs (ALLOW or LOG).
    pub fn runs_syscall(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }
}

impl fmt::Display for Action {
    /// `ALLOW`, `ERRNO(1)`, `KILL_PROCESS`, `TRACE(7)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::KillProcess => f.write_str("KILL_PROCESS"),
            Action::KillThread => f.write_str("KILL_THREAD"),
            Action::Trap => f.write_str("TRAP"),
            Action::Errno(e) => write!(f, "ERRNO({e})"),
            Action::Notify => f.write_str("NOTIFY"),
            Action::Trace(m) => write!(f, "TRACE({m})"),
            Action::Log => f.write_str("LOG"),
            Action::Allow => f.write_str("ALLOW"),
        }
    }
}

/// `ERRNO(1) EPERM` style text: the action with the errno's name when known.
pub fn describe(action: Action) -> String {
    match action {
        Action::Errno(e) => match model::names::errno_name(i64::from(e)) {
            Some(name) => format!("{action} {name}"),
            None => action.to_string(),
        },
        _ => action.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_values_round_trip() {
        for a in [
            Action::KillProcess,
            Action::KillThread,
            Action::Trap,
            Action::Errno(0),
            Action::Errno(1),
            Action::Errno(4095),
            Action::Notify,
            Action::Trace(65535),
            Action::Log,
            Action::Allow,
        ] {
            assert_eq!(Action::from_ret(a.to_ret()), a, "{a}");
        }
        assert_eq!(Action::Errno(1).to_ret(), 0x0005_0001);
        assert_eq!(Action::from_ret(0x1234_0000), Action::KillProcess);
        assert_eq!(describe(Action::Errno(38)), "ERRNO(38) ENOSYS");
    }
}

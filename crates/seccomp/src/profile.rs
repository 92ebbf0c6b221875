//! The seccomp profile as JSON: Docker's shape (`defaultAction`,
//! `defaultErrnoRet`, `architectures` or `archMap`, `syscalls[]` with
//! `names`/`name`, `action`, `errnoRet`, `args`, `comment`,
//! `includes`/`excludes`), the OCI runtime-spec `linux.seccomp` shape
//! (`architectures`, `flags`, `listenerPath`, `listenerMetadata`), and the
//! `errno`/`defaultErrno` names containers/common adds.
//!
//! Parsing validates as it goes, so every error carries the file's
//! line:column: unknown actions, operators, architectures and flags point at
//! the value; checks that need a whole entry (errnoRet on a non-ERRNO action,
//! argument index above 5, valueTwo misuse, unknown capabilities) point at the
//! end of that entry and name the syscall and field. Unknown fields are
//! refused: a misspelt key would otherwise silently weaken the filter.
//!
//! Serialization keeps Docker's field names and order and leaves out empty
//! optional fields, so profiles built in code load in Docker, podman and runc.

use crate::{Action, Error, Result};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::Path;

/// A profile's action name (`SCMP_ACT_*`); the errno or trace value is in the
/// neighbouring `errnoRet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionName {
    /// Kills the thread (libseccomp's historical meaning).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl ActionName {
    /// The JSON spelling, e.g. `SCMP_ACT_ERRNO`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionName::Kill => "SCMP_ACT_KILL",
            ActionName::KillProcess => "SCMP_ACT_KILL_PROCESS",
            ActionName::KillThread => "SCMP_ACT_KILL_THREAD",
            ActionName::Trap => "SCMP_ACT_TRAP",
            ActionName::Errno => "SCMP_ACT_ERRNO",
            ActionName::Trace => "SCMP_ACT_TRACE",
            ActionName::Allow => "SCMP_ACT_ALLOW",
            ActionName::Log => "SCMP_ACT_LOG",
            ActionName::Notify => "SCMP_ACT_NOTIFY",
        }
    }

    /// Whether `errnoRet` means something for this action (ERRNO: the errno;
    /// TRACE: the tracer's message), as runc reads it.
    pub fn takes_errno(self) -> bool {
        matches!(self, ActionName::Errno | ActionName::Trace)
    }

    /// The action with its value; `ret` is `errnoRet`, EPERM when absent (runc's
    /// default for both ERRNO and TRACE).
    pub fn with_ret(self, ret: Option<u32>) -> Action {
        let value = ret.unwrap_or(libc::EPERM as u32) as u16;
        match self {
            ActionName::Kill | ActionName::KillThread => Action::KillThread,
            ActionName::KillProcess => Action::KillProcess,
            ActionName::Trap => Action::Trap,
            ActionName::Errno => Action::Errno(value),
            ActionName::Trace => Action::Trace(value),
            ActionName::Allow => Action::Allow,
            ActionName::Log => Action::Log,
            ActionName::Notify => Action::Notify,
        }
    }

    /// The name and `errnoRet` that express `action` in a profile.
    pub fn from_action(action: Action) -> (ActionName, Option<u32>) {
        match action {
            Action::KillProcess => (ActionName::KillProcess, None),
            Action::KillThread => (ActionName::KillThread, None),
            Action::Trap => (ActionName::Trap, None),
            Action::Errno(e) => (ActionName::Errno, Some(u32::from(e))),
            Action::Notify => (ActionName::Notify, None),
            Action::Trace(m) => (ActionName::Trace, Some(u32::from(m))),
            Action::Log => (ActionName::Log, None),
            Action::Allow => (ActionName::Allow, None),
        }
    }
}

impl fmt::Display for ActionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An argument comparison operator (`SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    /// `(arg & value) == valueTwo`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

impl Op {
    /// The JSON spelling, e.g. `SCMP_CMP_MASKED_EQ`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Ne => "SCMP_CMP_NE",
            Op::Lt => "SCMP_CMP_LT",
            Op::Le => "SCMP_CMP_LE",
            Op::Eq => "SCMP_CMP_EQ",
            Op::Ge => "SCMP_CMP_GE",
            Op::Gt => "SCMP_CMP_GT",
            Op::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }
}

/// An architecture name as profiles write it (`SCMP_ARCH_*`): every name
/// libseccomp knows, so profiles for other machines still load; only some
/// can be compiled (see [`ArchName::arch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ArchName {
    #[serde(rename = "SCMP_ARCH_NATIVE")]
    Native,
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    #[serde(rename = "SCMP_ARCH_LOONGARCH64")]
    Loongarch64,
    #[serde(rename = "SCMP_ARCH_M68K")]
    M68k,
    #[serde(rename = "SCMP_ARCH_MIPS")]
    Mips,
    #[serde(rename = "SCMP_ARCH_MIPS64")]
    Mips64,
    #[serde(rename = "SCMP_ARCH_MIPS64N32")]
    Mips64n32,
    #[serde(rename = "SCMP_ARCH_MIPSEL")]
    Mipsel,
    #[serde(rename = "SCMP_ARCH_MIPSEL64")]
    Mipsel64,
    #[serde(rename = "SCMP_ARCH_MIPSEL64N32")]
    Mipsel64n32,
    #[serde(rename = "SCMP_ARCH_PPC")]
    Ppc,
    #[serde(rename = "SCMP_ARCH_PPC64")]
    Ppc64,
    #[serde(rename = "SCMP_ARCH_PPC64LE")]
    Ppc64le,
    #[serde(rename = "SCMP_ARCH_S390")]
    S390,
    #[serde(rename = "SCMP_ARCH_S390X")]
    S390x,
    #[serde(rename = "SCMP_ARCH_PARISC")]
    Parisc,
    #[serde(rename = "SCMP_ARCH_PARISC64")]
    Parisc64,
    #[serde(rename = "SCMP_ARCH_RISCV64")]
    Riscv64,
    #[serde(rename = "SCMP_ARCH_SH")]
    Sh,
    #[serde(rename = "SCMP_ARCH_SHEB")]
    Sheb,
}

impl ArchName {
    /// The architecture rampart compiles for, if it is one (`Native` is
    /// resolved by the caller).
    pub fn arch(self) -> Option<crate::Arch> {
        use crate::Arch;
        Some(match self {
            ArchName::X86 => Arch::X86,
            ArchName::X86_64 => Arch::X86_64,
            ArchName::X32 => Arch::X32,
            ArchName::Arm => Arch::Arm,
            ArchName::Aarch64 => Arch::Aarch64,
            _ => return None,
        })
    }

    /// The profile spelling of `arch`.
    pub fn from_arch(arch: crate::Arch) -> ArchName {
        use crate::Arch;
        match arch {
            Arch::X86 => ArchName::X86,
            Arch::X86_64 => ArchName::X86_64,
            Arch::X32 => ArchName::X32,
            Arch::Arm => ArchName::Arm,
            Arch::Aarch64 => ArchName::Aarch64,
        }
    }

    /// The JSON spelling, e.g. `SCMP_ARCH_MIPS64`.
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// Seccomp filter flags (OCI `linux.seccomp.flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FilterFlag {
    /// Install the filter on every thread of the process.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    /// Log every action but ALLOW.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// Keep speculative store bypass mitigation off.
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
    /// A notified syscall waits killably once the notifier received it.
    #[serde(rename = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")]
    WaitKillableRecv,
}

impl FilterFlag {
    /// The `SECCOMP_FILTER_FLAG_*` bit.
    pub fn bit(self) -> u32 {
        match self {
            FilterFlag::Tsync => 1,
            FilterFlag::Log => 2,
            FilterFlag::SpecAllow => 4,
            FilterFlag::WaitKillableRecv => 32,
        }
    }
}

/// An `archMap` entry: with this native architecture, the filter also covers
/// the sub-architectures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: ArchName,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<ArchName>,
}

/// A kernel version `major.minor`, as Docker's `minKernel` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses `5.8`; a third component (`5.8.1`) is accepted and ignored, as
    /// Docker only compares major and minor.
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut parts = s.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor_part = parts.next()?;
        // `uname -r` gives `6.18.44-fc-v657`: the minor is the leading digits.
        let digits: String = minor_part.chars().take_while(|c| c.is_ascii_digit()).collect();
        let minor = digits.parse().ok()?;
        Some(KernelVersion { major, minor })
    }

    /// The running kernel's version (`uname -r`).
    pub fn running() -> Option<KernelVersion> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        KernelVersion::parse(&release)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KernelVersion::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("minKernel \"{s}\" is not a kernel version like \"5.8\""))
        })
    }
}

/// `includes` / `excludes`: when an entry applies, judged against the
/// container's capabilities, the native architecture (Go name: `amd64`,
/// `arm64`, ...) and the kernel version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<KernelVersion>,
}

impl Filter {
    /// Whether nothing is set (such a filter has no effect).
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

fn filter_is_empty(f: &Option<Filter>) -> bool {
    f.as_ref().is_none_or(Filter::is_empty)
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One argument comparison: argument `index` (0-5) compared with `value`;
/// for `SCMP_CMP_MASKED_EQ`, `(arg & value) == valueTwo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: Op,
}

/// A `syscalls[]` entry: these names get this action (when every argument
/// comparison holds, and when `includes`/`excludes` select the entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Syscall {
    /// Docker's legacy single-name form; serialized only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub action: ActionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// containers/common's errno name (`EPERM`), kept for round trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "filter_is_empty")]
    pub includes: Option<Filter>,
    #[serde(default, skip_serializing_if = "filter_is_empty")]
    pub excludes: Option<Filter>,
}

impl Syscall {
    /// An entry giving `names` the action `action` (with its errno, if any).
    pub fn new<I, S>(names: I, action: Action) -> Syscall
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let (name, ret) = ActionName::from_action(action);
        Syscall {
            name: None,
            names: names.into_iter().map(Into::into).collect(),
            action: name,
            errno_ret: ret,
            errno: None,
            args: Vec::new(),
            comment: None,
            includes: None,
            excludes: None,
        }
    }

    /// The entry's names: `names`, or the legacy `name`.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.name.iter().chain(self.names.iter()).map(String::as_str)
    }

    /// The entry's action with its errno (`errnoRet`, else `errno`'s number,
    /// else EPERM).
    pub fn resolved_action(&self) -> Action {
        let ret = self.errno_ret.or_else(|| self.errno.as_deref().and_then(errno_number));
        self.action.with_ret(ret)
    }

    /// A short label for messages: `syscall "personality"` or
    /// `syscalls ["bpf", "clone", ... 23 names]`.
    pub fn label(&self) -> String {
        let names: Vec<&str> = self.all_names().collect();
        match names.len() {
            0 => "syscall entry with no names".to_string(),
            1 => format!("syscall \"{}\"", names[0]),
            n if n <= 3 => format!("syscalls {names:?}"),
            n => format!("syscalls [\"{}\", \"{}\", ... {n} names]", names[0], names[1]),
        }
    }

    /// The checks parsing applies, for entries built in code.
    pub fn check(&self) -> std::result::Result<(), String> {
        let label = self.label();
        if self.name.is_some() && !self.names.is_empty() {
            return Err(format!("{label}: both \"name\" and \"names\" are set; use \"names\""));
        }
        if self.all_names().next().is_none() {
            return Err("syscall entry: \"names\" is empty".to_string());
        }
        if let Some(i) = self.all_names().position(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
        {
            return Err(format!("{label}: names[{i}] is not a syscall name"));
        }
        check_errno(&label, "errnoRet", "errno", self.action, self.errno_ret, self.errno.as_deref())?;
        for (i, arg) in self.args.iter().enumerate() {
            if arg.index > 5 {
                return Err(format!(
                    "{label}: args[{i}].index is {}, but syscalls have arguments 0 to 5",
                    arg.index
                ));
            }
            if arg.op == Op::MaskedEq {
                if arg.value_two & !arg.value != 0 {
                    return Err(format!(
                        "{label}: args[{i}]: SCMP_CMP_MASKED_EQ compares (arg{} & {:#x}) with valueTwo {:#x}, \
                         which has bits outside the mask: it can never be equal",
                        arg.index, arg.value, arg.value_two
                    ));
                }
            } else if arg.value_two != 0 {
                return Err(format!(
                    "{label}: args[{i}].valueTwo is {:#x} but only SCMP_CMP_MASKED_EQ uses valueTwo (op is {})",
                    arg.value_two,
                    arg.op.as_str()
                ));
            }
        }
        for (field, filter) in [("includes", &self.includes), ("excludes", &self.excludes)] {
            for cap in filter.iter().flat_map(|f| f.caps.iter()) {
                if model::names::cap_number(cap).is_none() {
                    return Err(format!("{label}: {field}.caps: unknown capability \"{cap}\""));
                }
            }
        }
        Ok(())
    }
}

/// A seccomp profile: Docker's JSON, or OCI's `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    pub default_action: ActionName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// containers/common's errno name for the default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<ArchName>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMapEntry>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FilterFlag>,
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none", skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub syscalls: Vec<Syscall>,
}

impl Profile {
    /// An empty profile with this default action (errno value, if any).
    pub fn new(default_action: Action) -> Profile {
        let (name, ret) = ActionName::from_action(default_action);
        Profile {
            default_action: name,
            default_errno_ret: ret,
            default_errno: None,
            architectures: Vec::new(),
            arch_map: Vec::new(),
            flags: Vec::new(),
            listener_path: None,
            listener_metadata: None,
            syscalls: Vec::new(),
        }
    }

    /// Parses and validates a profile; `origin` (a file name) prefixes error
    /// positions. Syntax and type errors point where the JSON parser stopped;
    /// validation errors point at the start of the `syscalls[]` entry (or the
    /// top-level key) at fault.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Profile> {
        let p: Profile = serde_json::from_str(text).map_err(|e| parse_error(origin, &e))?;
        let at = |offset: Option<usize>, message: String| {
            let (line, column) = offset.map_or((1, 1), |o| line_col(text, o));
            Error::Parse { origin: origin.to_string(), line, column, message }
        };
        if let Err(m) = p.check_top() {
            let key =
                ["\"defaultErrnoRet\"", "\"defaultErrno\"", "\"archMap\""].iter().find_map(|k| text.find(k));
            return Err(at(key, m));
        }
        let starts = syscall_entry_offsets(text);
        for (i, s) in p.syscalls.iter().enumerate() {
            if let Err(m) = s.check() {
                return Err(at(starts.get(i).copied(), m));
            }
        }
        Ok(p)
    }

    /// Reads and parses a profile file.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = model::input::read_text(path, model::input::limits::SECCOMP_PROFILE)?;
        Profile::from_json_str(&text, &path.display().to_string())
    }

    /// Docker-compatible JSON (two-space indent).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a profile always serializes")
    }

    /// The default action with its errno.
    pub fn resolved_default(&self) -> Action {
        let ret = self.default_errno_ret.or_else(|| self.default_errno.as_deref().and_then(errno_number));
        self.default_action.with_ret(ret)
    }

    /// Every check parsing applies, for profiles built in code.
    pub fn validate(&self) -> Result<()> {
        let invalid = |location: String, message: String| Error::Invalid { location, message };
        self.check_top().map_err(|m| invalid("profile".to_string(), m))?;
        for (i, s) in self.syscalls.iter().enumerate() {
            s.check().map_err(|m| invalid(format!("syscalls[{i}]"), m))?;
        }
        Ok(())
    }

    fn check_top(&self) -> std::result::Result<(), String> {
        check_errno(
            "profile",
            "defaultErrnoRet",
            "defaultErrno",
            self.default_action,
            self.default_errno_ret,
            self.default_errno.as_deref(),
        )?;
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(
                "both \"architectures\" and \"archMap\" are set; use one (Docker refuses both)".into()
            );
        }
        Ok(())
    }
}

/// The errno value of a name like `EPERM`.
pub fn errno_number(name: &str) -> Option<u32> {
    (1..4096).find(|n| model::names::errno_name(i64::from(*n)) == Some(name)).map(|n| n as u32)
}

fn check_errno(
    label: &str,
    ret_field: &str,
    name_field: &str,
    action: ActionName,
    ret: Option<u32>,
    name: Option<&str>,
) -> std::result::Result<(), String> {
    if !action.takes_errno() {
        if let Some(v) = ret {
            return Err(format!(
                "{label}: {ret_field} is {v} but the action is {action}; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"
            ));
        }
        if let Some(n) = name {
            return Err(format!(
                "{label}: {name_field} is {n} but the action is {action}; only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"
            ));
        }
        return Ok(());
    }
    let max = if action == ActionName::Errno { 4095 } else { 65535 };
    if let Some(v) = ret {
        if v > max {
            return Err(format!("{label}: {ret_field} is {v}, above the largest {action} value {max}"));
        }
    }
    if let Some(n) = name {
        let Some(num) = errno_number(n) else {
            return Err(format!("{label}: {name_field} \"{n}\" is not an errno name"));
        };
        if let Some(v) = ret {
            if v != num {
                return Err(format!("{label}: {name_field} is {n} ({num}) but {ret_field} is {v}"));
            }
        }
    }
    Ok(())
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn parse_error(origin: &str, e: &serde_json::Error) -> Error {
    let full = e.to_string();
    // serde_json appends " at line L column C"; the position goes in front.
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    Error::Parse { origin: origin.to_string(), line: e.line(), column: e.column(), message }
}

fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Byte offsets of the elements of the top-level `"syscalls"` array of a
/// JSON text that already parsed (a light scan of strings and nesting).
pub fn syscall_entry_offsets(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0usize;
    let mut key_is_syscalls = false;
    let mut in_syscalls = false;
    let mut expect_element = false;
    while i < b.len() {
        let c = b[i];
        let element_start = in_syscalls && depth == 2 && expect_element && !c.is_ascii_whitespace();
        if element_start && c != b']' {
            out.push(i);
            expect_element = false;
        }
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if depth == 1 {
                    key_is_syscalls = text.get(start..=i) == Some("\"syscalls\"");
                }
            }
            b'{' | b'[' => {
                if depth == 1 && c == b'[' && key_is_syscalls {
                    in_syscalls = true;
                    expect_element = true;
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    in_syscalls = false;
                }
            }
            b',' if in_syscalls && depth == 2 => expect_element = true,
            _ => {}
        }
        i += 1;
    }
    out
}

/// Where `name` first appears as a JSON string in `text` at or after byte
/// `from` (1-based line and column of its opening quote): points compile
/// errors about a name (e.g. an unknown syscall) at the file.
pub fn position_of_name(text: &str, from: usize, name: &str) -> Option<(usize, usize)> {
    let needle = format!("\"{name}\"");
    let offset = from + text.get(from..)?.find(&needle)?;
    Some(line_col(text, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profile> {
        Profile::from_json_str(text, "p.json")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn docker_shape_parses() {
        let p = parse(
            r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
              {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
  "syscalls": [
    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
    {"name": "clone", "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
     "comment": "no namespaces", "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
  ]
}"#,
        )
        .unwrap();
        assert_eq!(p.resolved_default(), Action::Errno(1));
        assert_eq!(p.arch_map[1].sub_architectures, vec![]);
        assert_eq!(p.syscalls[1].all_names().collect::<Vec<_>>(), ["clone"]);
        assert_eq!(
            p.syscalls[2].includes.as_ref().unwrap().min_kernel,
            Some(KernelVersion { major: 4, minor: 8 })
        );
        assert_eq!(p.syscalls[3].resolved_action(), Action::Errno(38));
    }

    #[test]
    fn oci_shape_parses() {
        let p = parse(
            r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS", "architectures": ["SCMP_ARCH_X86_64"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/notify.sock",
                "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        assert_eq!(p.flags, vec![FilterFlag::Log]);
        assert_eq!(p.listener_path.as_deref(), Some("/run/notify.sock"));
        assert_eq!(p.resolved_default(), Action::KillProcess);
    }

    #[test]
    fn containers_common_errno_names() {
        let p = parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "defaultErrno": "ENOSYS",
                "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "args": null,
                              "comment": "", "includes": {}, "excludes": {}}]}"#,
        )
        .unwrap();
        assert_eq!(p.syscalls[0].resolved_action(), Action::Errno(1));
        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "defaultErrno": "EPERM", "syscalls": []}"#,
        );
        assert!(e.contains("defaultErrno is EPERM (1) but defaultErrnoRet is 38"), "{e}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n    {\"names\": [\"read\"] \"action\": 1}\n  ]\n}");
        assert!(e.starts_with("p.json:4:"), "{e}");
    }

    #[test]
    fn unknown_action_points_at_the_value() {
        let e = err("{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n\"syscalls\": [{\"names\": [\"read\"],\n \"action\": \"SCMP_ACT_ALOW\"}]}");
        assert!(e.starts_with("p.json:3:"), "{e}");
        assert!(e.contains("SCMP_ACT_ALOW"), "{e}");
    }

    #[test]
    fn unknown_op_and_field_are_refused() {
        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]}"#,
        );
        assert!(e.contains("SCMP_CMP_EQUAL") && e.starts_with("p.json:1:"), "{e}");
        let e = err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "acton": "SCMP_ACT_LOG"}]}"#,
        );
        assert!(e.contains("unknown field `acton`"), "{e}");
        let e = err(r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrno": "EPERM", "syscalls": []}"#);
        assert!(e.contains("defaultErrno"), "{e}");
    }

    #[test]
    fn validation_errors_name_syscall_and_field() {
        let cases = [
            (
                r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}"#,
                "syscall \"personality\": errnoRet is 1 but the action is SCMP_ACT_ALLOW",
            ),
            (
                r#"{"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}"#,
                "syscall \"mmap\": args[0].index is 6",
            ),
            (
                r#"{"names": ["mmap"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}"#,
                "args[0].valueTwo is 0x2 but only SCMP_CMP_MASKED_EQ",
            ),
            (
                r#"{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 255, "valueTwo": 256, "op": "SCMP_CMP_MASKED_EQ"}]}"#,
                "bits outside the mask",
            ),
            (
                r#"{"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}"#,
                "includes.caps: unknown capability \"CAP_SYS_ADMN\"",
            ),
            (
                r#"{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}"#,
                "both \"name\" and \"names\"",
            ),
            (r#"{"names": [], "action": "SCMP_ACT_ALLOW"}"#, "\"names\" is empty"),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5000}"#,
                "above the largest SCMP_ACT_ERRNO value 4095",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "five"}}"#,
                "minKernel \"five\"",
            ),
        ];
        for (entry, want) in cases {
            let text = format!("{{\"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"syscalls\": [\n {entry}\n]}}");
            let e = err(&text);
            assert!(e.starts_with("p.json:3:2: ") || want.starts_with("minKernel"), "{e}");
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }

    #[test]
    fn masked_eq_without_value_two_is_dockers_idiom() {
        // Docker's own clone rule: (flags & mask) == 0, valueTwo omitted.
        let p = parse(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#).unwrap();
        assert_eq!(p.syscalls[0].args[0].value_two, 0);
    }

    #[test]
    fn serialization_is_docker_shaped_and_round_trips() {
        let mut p = Profile::new(Action::Errno(1));
        p.arch_map.push(ArchMapEntry {
            architecture: ArchName::X86_64,
            sub_architectures: vec![ArchName::X86, ArchName::X32],
        });
        p.syscalls.push(Syscall::new(["read", "write"], Action::Allow));
        let mut clone = Syscall::new(["clone"], Action::Allow);
        clone.args.push(Arg { index: 0, value: 0x7e02_0000, value_two: 0, op: Op::MaskedEq });
        clone.excludes = Some(Filter { caps: vec!["CAP_SYS_ADMIN".into()], ..Default::default() });
        p.syscalls.push(clone);
        let json = p.to_json_pretty();
        let keys: Vec<&str> =
            ["\"defaultAction\"", "\"defaultErrnoRet\"", "\"archMap\"", "\"syscalls\""].to_vec();
        let positions: Vec<usize> = keys.iter().map(|k| json.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(
            !json.contains("valueTwo") && !json.contains("includes") && !json.contains("errnoRet\": null"),
            "{json}"
        );
        assert_eq!(parse(&json).unwrap(), p);
    }

    #[test]
    fn name_positions() {
        let text = "{\n  \"syscalls\": [\n    {\"names\": [\"read\", \"getpidd\"]}]}";
        assert_eq!(position_of_name(text, 0, "getpidd"), Some((3, 24)));
        assert_eq!(position_of_name(text, 0, "nope"), None);
        let text = "{\"a\": [1, {\"b\": 2}], \"syscalls\": [ {\"names\": [\"x\"]},\n  {\"names\": []} , null, \"s\"]}";
        let offsets = syscall_entry_offsets(text);
        assert_eq!(offsets.len(), 4, "{offsets:?}");
        assert_eq!(line_col(text, offsets[1]), (2, 3));
        assert_eq!(&text[offsets[2]..offsets[2] + 4], "null");
        assert_eq!(&text[offsets[3]..offsets[3] + 3], "\"s\"");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(KernelVersion::parse("6.18.44-fc-v657"), Some(KernelVersion { major: 6, minor: 18 }));
        assert_eq!(KernelVersion::parse("4.8"), Some(KernelVersion { major: 4, minor: 8 }));
        assert!(KernelVersion::parse("4").is_none());
        assert!(KernelVersion { major: 5, minor: 10 } > KernelVersion { major: 4, minor: 18 });
    }
}

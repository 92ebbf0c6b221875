//! The architectures the compiler targets and their kernel identities.

use crate::{Error, Result};
use std::fmt;

/// `AUDIT_ARCH_X86_64`: x86_64 and x32 tasks both report it; x32 syscall
/// numbers carry [`X32_SYSCALL_BIT`].
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64` (little-endian).
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_ARM` (little-endian EABI).
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// `__X32_SYSCALL_BIT`: set in every x32 syscall number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A syscall ABI a filter can cover. All are little-endian, so in
/// `seccomp_data` an argument's low 32-bit word comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    /// i386, also 32-bit processes on an x86_64 kernel.
    X86,
    /// x32: the ILP32 ABI of x86_64 kernels.
    X32,
    Aarch64,
    /// 32-bit ARM EABI, also 32-bit processes on an aarch64 kernel.
    Arm,
}

impl Arch {
    /// Every architecture, in the order the tables list them.
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::X86, Arch::X32, Arch::Aarch64, Arch::Arm];

    /// The architecture this program was built for (the filter's "native" one).
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(all(target_arch = "x86_64", target_pointer_width = "32")) {
            Arch::X32
        } else {
            Arch::X86_64
        }
    }

    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => AUDIT_ARCH_X86_64,
            Arch::X86 => AUDIT_ARCH_I386,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
            Arch::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Short name: `x86_64`, `x86`, `x32`, `aarch64`, `arm`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::X32 => "x32",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
        }
    }

    /// libseccomp's / Docker's name, e.g. `SCMP_ARCH_X86_64`.
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// The Go `GOARCH` name Docker matches `includes.arches` / `excludes.arches`
    /// against (x32 has no Go port; profiles spell it `x32`).
    pub fn go_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::X86 => "386",
            Arch::X32 => "x32",
            Arch::Aarch64 => "arm64",
            Arch::Arm => "arm",
        }
    }

    /// Whether argument comparisons use the full 64-bit value. Like libseccomp,
    /// the 32-bit ABIs (x86, x32, arm) compare only the low 32-bit word of an
    /// argument with the low word of the rule's value.
    pub fn args_are_64bit(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// Parses `x86_64`/`amd64`/`SCMP_ARCH_X86_64`, `x86`/`i386`/`386`,
    /// `x32`, `aarch64`/`arm64`, `arm`.
    pub fn parse(s: &str) -> Result<Arch> {
        let lower = s.to_ascii_lowercase();
        let bare = lower.strip_prefix("scmp_arch_").unwrap_or(&lower);
        Ok(match bare {
            "x86_64" | "amd64" | "x8664" => Arch::X86_64,
            "x86" | "i386" | "i686" | "386" => Arch::X86,
            "x32" => Arch::X32,
            "aarch64" | "arm64" => Arch::Aarch64,
            "arm" | "armhf" | "armel" => Arch::Arm,
            _ => return Err(Error::UnsupportedArch(s.to_string())),
        })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        Arch::parse(s)
    }
}

/// Joins architecture names for messages: `x86_64, x86 and x32`.
pub(crate) fn join_arches(arches: &[Arch]) -> String {
    let names: Vec<&str> = arches.iter().map(|a| a.name()).collect();
    match names.len() {
        0 => "no architecture".to_string(),
        1 => names[0].to_string(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_every_spelling() {
        for (s, a) in [
            ("x86_64", Arch::X86_64),
            ("SCMP_ARCH_X86_64", Arch::X86_64),
            ("amd64", Arch::X86_64),
            ("i386", Arch::X86),
            ("SCMP_ARCH_X86", Arch::X86),
            ("x32", Arch::X32),
            ("arm64", Arch::Aarch64),
            ("SCMP_ARCH_AARCH64", Arch::Aarch64),
            ("arm", Arch::Arm),
        ] {
            assert_eq!(Arch::parse(s).unwrap(), a, "{s}");
        }
        let err = Arch::parse("mips64").unwrap_err().to_string();
        assert!(err.contains("mips64"), "{err}");
    }

    #[test]
    fn x32_shares_the_x86_64_audit_arch() {
        assert_eq!(Arch::X32.audit_arch(), Arch::X86_64.audit_arch());
        assert_ne!(Arch::X86.audit_arch(), Arch::X86_64.audit_arch());
        assert_eq!(join_arches(&[Arch::X86_64, Arch::X86, Arch::X32]), "x86_64, x86 and x32");
    }
}

//! Syscall name <-> number per architecture, from the generated
//! [`tables`](crate::tables) (regenerate with `scripts/gen-syscalls.sh`).
//!
//! x32 numbers include [`X32_SYSCALL_BIT`](crate::arch::X32_SYSCALL_BIT), as
//! the kernel sees them in `seccomp_data.nr`.

use crate::tables;
use crate::Arch;
use std::collections::HashMap;
use std::sync::OnceLock;

fn table(arch: Arch) -> &'static [(&'static str, u32)] {
    match arch {
        Arch::X86_64 => tables::X86_64,
        Arch::X86 => tables::X86,
        Arch::X32 => tables::X32,
        Arch::Aarch64 => tables::AARCH64,
        Arch::Arm => tables::ARM,
    }
}

fn by_name(arch: Arch) -> &'static HashMap<&'static str, u32> {
    static MAPS: OnceLock<Vec<HashMap<&'static str, u32>>> = OnceLock::new();
    let maps = MAPS.get_or_init(|| Arch::ALL.iter().map(|a| table(*a).iter().copied().collect()).collect());
    let idx = Arch::ALL.iter().position(|a| *a == arch).expect("every arch is in Arch::ALL");
    &maps[idx]
}

/// The number of `name` on `arch`, if that architecture has the syscall.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    by_name(arch).get(name).copied()
}

/// The name of syscall `nr` on `arch` (the canonical one where a number has
/// aliases, e.g. arm's `arm_sync_file_range` for `sync_file_range2`).
pub fn name(arch: Arch, nr: u32) -> Option<&'static str> {
    let t = table(arch);
    let i = t.partition_point(|(_, n)| *n < nr);
    t.get(i).filter(|(_, n)| *n == nr).map(|(name, _)| *name)
}

/// Every syscall of `arch` as (name, number), by number; aliases included.
pub fn all(arch: Arch) -> impl Iterator<Item = (&'static str, u32)> {
    table(arch).iter().copied()
}

/// Every syscall name of `arch`, sorted by name, aliases included.
pub fn names(arch: Arch) -> Vec<&'static str> {
    let mut v: Vec<&str> = table(arch).iter().map(|(n, _)| *n).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether any architecture rampart knows has a syscall called `name`
/// (including names of architectures it does not compile for, such as s390x's
/// `s390_pci_mmio_read` or riscv64's `riscv_flush_icache`).
pub fn is_known(name: &str) -> bool {
    Arch::ALL.iter().any(|a| number(*a, name).is_some())
        || tables::OTHER_ARCH_NAMES.binary_search(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::X32_SYSCALL_BIT;

    #[test]
    fn well_known_numbers() {
        assert_eq!(number(Arch::X86_64, "read"), Some(0));
        assert_eq!(number(Arch::X86_64, "getpid"), Some(39));
        assert_eq!(number(Arch::X86, "getpid"), Some(20));
        assert_eq!(number(Arch::X32, "getpid"), Some(X32_SYSCALL_BIT | 39));
        assert_eq!(number(Arch::X32, "rt_sigaction"), Some(X32_SYSCALL_BIT | 512));
        assert_eq!(number(Arch::Aarch64, "getpid"), Some(172));
        assert_eq!(number(Arch::Arm, "getpid"), Some(20));
        assert_eq!(number(Arch::Arm, "set_tls"), Some(0x0f0005));
        assert_eq!(number(Arch::Aarch64, "open"), None, "aarch64 has only openat");
        assert_eq!(number(Arch::X86_64, "fchmodat2"), Some(452), "added after the installed headers");
        assert_eq!(number(Arch::X32, "fchmodat2"), Some(X32_SYSCALL_BIT | 452));
    }

    #[test]
    fn name_of_number_round_trips() {
        for arch in Arch::ALL {
            for (n, nr) in all(arch) {
                let canonical = name(arch, nr).unwrap();
                assert_eq!(number(arch, canonical), Some(nr), "{arch} {n}");
            }
        }
        assert_eq!(name(Arch::X86_64, 59), Some("execve"));
        assert_eq!(name(Arch::X86_64, 100_000), None);
        assert_eq!(name(Arch::Arm, 341), Some("arm_sync_file_range"));
    }

    #[test]
    fn known_names_cover_other_architectures() {
        assert!(is_known("s390_pci_mmio_read"));
        assert!(is_known("riscv_flush_icache"));
        assert!(is_known("arch_prctl"));
        assert!(!is_known("getpidd"));
        assert!(names(Arch::X86_64).len() > 350);
    }
}

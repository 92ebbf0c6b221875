//! Names of kernel constants that events carry as numbers: capabilities
//! (include/uapi/linux/capability.h) and errno values (x86_64).

/// Capability names by number.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities Docker grants a container by default (moby's
/// `oci/caps/defaults.go`), the yardstick a learned set is compared with.
pub const DOCKER_DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Capabilities that let a container's root reach the host or other tenants
/// (escape, kernel code, other processes' memory, host network or files), with
/// why.
pub const DANGEROUS_CAPABILITIES: [(&str, &str); 12] = [
    ("CAP_SYS_ADMIN", "mount, namespaces, BPF and much more: the usual container escape"),
    ("CAP_SYS_MODULE", "loads kernel modules: arbitrary kernel code"),
    ("CAP_SYS_PTRACE", "reads and writes other processes' memory"),
    ("CAP_SYS_RAWIO", "raw I/O ports and device memory"),
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at: reads host files outside the container (shocker)"),
    ("CAP_NET_ADMIN", "reconfigures interfaces, routes and firewall rules"),
    ("CAP_SYS_BOOT", "reboots the host"),
    ("CAP_SYS_TIME", "sets the host clock"),
    ("CAP_MAC_ADMIN", "changes the MAC (SELinux/AppArmor) policy"),
    ("CAP_MAC_OVERRIDE", "bypasses the MAC policy"),
    ("CAP_BPF", "loads BPF programs"),
    ("CAP_PERFMON", "perf events on other processes and the kernel"),
];

/// Why a capability is dangerous, if it is.
pub fn dangerous_capability(name: &str) -> Option<&'static str> {
    let name =
        if name.starts_with("CAP_") { name.to_string() } else { format!("CAP_{}", name.to_uppercase()) };
    DANGEROUS_CAPABILITIES.iter().find(|(c, _)| *c == name).map(|(_, why)| *why)
}

/// The number of a capability name (`CAP_CHOWN` or `chown`).
pub fn cap_number(name: &str) -> Option<u32> {
    let upper = name.to_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    CAPABILITIES.iter().position(|c| *c == full).map(|n| n as u32)
}

/// `CAP_SYS_ADMIN` for 21; `CAP_<n>` for numbers this table does not know.
pub fn cap_name(cap: u32) -> String {
    CAPABILITIES.get(cap as usize).map_or_else(|| format!("CAP_{cap}"), |n| (*n).to_string())
}

/// `ECONNREFUSED` for 111; `None` for values this table does not know.
pub fn errno_name(errno: i64) -> Option<&'static str> {
    Some(match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        9 => "EBADF",
        10 => "ECHILD",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        15 => "ENOTBLK",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        25 => "ENOTTY",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        29 => "ESPIPE",
        30 => "EROFS",
        31 => "EMLINK",
        32 => "EPIPE",
        33 => "EDOM",
        34 => "ERANGE",
        35 => "EDEADLK",
        36 => "ENAMETOOLONG",
        37 => "ENOLCK",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        61 => "ENODATA",
        62 => "ETIME",
        75 => "EOVERFLOW",
        88 => "ENOTSOCK",
        90 => "EMSGSIZE",
        93 => "EPROTONOSUPPORT",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        106 => "EISCONN",
        107 => "ENOTCONN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        122 => "EDQUOT",
        _ => return None,
    })
}

/// The `syscall` names events carry (Falco's `evt.type` names the sensor
/// writes, and its own `dns`, `flow` and `netstat`), sorted: readers of
/// captures share these instead of allocating one per event.
pub const SYSCALL_NAMES: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "bpf",
    "capable",
    "capset",
    "chmod",
    "chown",
    "clone",
    "connect",
    "creat",
    "dns",
    "execve",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "finit_module",
    "flow",
    "init_module",
    "lchown",
    "link",
    "linkat",
    "listen",
    "memfd_create",
    "mkdir",
    "mkdirat",
    "mount",
    "netstat",
    "open",
    "openat",
    "openat2",
    "procexit",
    "ptrace",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setns",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setuid",
    "socket",
    "symlink",
    "symlinkat",
    "umount2",
    "unlink",
    "unlinkat",
    "unshare",
];

/// `name` as a shared static string when it is one of [`SYSCALL_NAMES`],
/// owned otherwise (a capture may come from another version).
pub fn syscall_name(name: &str) -> std::borrow::Cow<'static, str> {
    match SYSCALL_NAMES.binary_search(&name) {
        Ok(i) => std::borrow::Cow::Borrowed(SYSCALL_NAMES[i]),
        Err(_) => std::borrow::Cow::Owned(name.to_owned()),
    }
}

/// Deserializes an event's `syscall` through [`syscall_name`].
pub(crate) fn de_syscall<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<std::borrow::Cow<'static, str>>, D::Error> {
    struct Name;
    impl<'de> serde::de::Visitor<'de> for Name {
        type Value = Option<std::borrow::Cow<'static, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a syscall name")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(syscall_name(v)))
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }
    d.deserialize_option(Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names_are_sorted_and_shared() {
        assert!(SYSCALL_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert!(matches!(syscall_name("openat"), std::borrow::Cow::Borrowed("openat")));
        assert!(matches!(syscall_name("openat9"), std::borrow::Cow::Owned(n) if n == "openat9"));
    }

    #[test]
    fn capability_names() {
        assert_eq!(cap_name(0), "CAP_CHOWN");
        assert_eq!(cap_name(21), "CAP_SYS_ADMIN");
        assert_eq!(cap_name(40), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(cap_name(63), "CAP_63");
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(1), Some("EPERM"));
        assert_eq!(errno_name(111), Some("ECONNREFUSED"));
        assert_eq!(errno_name(4095), None);
    }
}

//! Linux constants rendered the way Falco renders them.

use std::fmt::Write;

fn flags(v: u64, table: &[(u64, &str)]) -> String {
    let mut out = String::new();
    let mut rest = v;
    for &(bit, name) in table {
        if bit != 0 && v & bit == bit {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(name);
            rest &= !bit;
        }
    }
    if rest != 0 {
        if !out.is_empty() {
            out.push('|');
        }
        let _ = write!(out, "{rest:#x}");
    }
    out
}

pub fn open_flags(raw: u32) -> String {
    const T: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o4010000, "O_SYNC"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"),
        (0o20200000, "O_TMPFILE"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    let acc = match raw & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let rest = flags(u64::from(raw & !3), T);
    if rest.is_empty() {
        acc.to_string()
    } else {
        format!("{acc}|{rest}")
    }
}

pub fn mode_names(mode: u32) -> String {
    const T: &[(u64, &str)] = &[
        (0o4000, "S_ISUID"),
        (0o2000, "S_ISGID"),
        (0o1000, "S_ISVTX"),
        (0o400, "S_IRUSR"),
        (0o200, "S_IWUSR"),
        (0o100, "S_IXUSR"),
        (0o40, "S_IRGRP"),
        (0o20, "S_IWGRP"),
        (0o10, "S_IXGRP"),
        (0o4, "S_IROTH"),
        (0o2, "S_IWOTH"),
        (0o1, "S_IXOTH"),
    ];
    let s = flags(u64::from(mode & 0o7777), T);
    if s.is_empty() {
        "0".to_string()
    } else {
        s
    }
}

pub fn clone_flags(v: u64) -> String {
    const T: &[(u64, &str)] = &[
        (0x80, "CLONE_NEWTIME"),
        (0x100, "CLONE_VM"),
        (0x200, "CLONE_FS"),
        (0x400, "CLONE_FILES"),
        (0x800, "CLONE_SIGHAND"),
        (0x10000, "CLONE_THREAD"),
        (0x20000, "CLONE_NEWNS"),
        (0x40000, "CLONE_SYSVSEM"),
        (0x2000000, "CLONE_NEWCGROUP"),
        (0x4000000, "CLONE_NEWUTS"),
        (0x8000000, "CLONE_NEWIPC"),
        (0x10000000, "CLONE_NEWUSER"),
        (0x20000000, "CLONE_NEWPID"),
        (0x40000000, "CLONE_NEWNET"),
    ];
    if v == 0 {
        return "0".to_string();
    }
    flags(v, T)
}

pub fn mount_flags(v: u64) -> String {
    const T: &[(u64, &str)] = &[
        (1, "MS_RDONLY"),
        (2, "MS_NOSUID"),
        (4, "MS_NODEV"),
        (8, "MS_NOEXEC"),
        (16, "MS_SYNCHRONOUS"),
        (32, "MS_REMOUNT"),
        (64, "MS_MANDLOCK"),
        (128, "MS_DIRSYNC"),
        (1024, "MS_NOATIME"),
        (2048, "MS_NODIRATIME"),
        (4096, "MS_BIND"),
        (8192, "MS_MOVE"),
        (16384, "MS_REC"),
        (32768, "MS_SILENT"),
        (1 << 17, "MS_UNBINDABLE"),
        (1 << 18, "MS_PRIVATE"),
        (1 << 19, "MS_SLAVE"),
        (1 << 20, "MS_SHARED"),
        (1 << 21, "MS_RELATIME"),
        (1 << 23, "MS_STRICTATIME"),
        (1 << 24, "MS_LAZYTIME"),
    ];
    if v == 0 {
        return "0".to_string();
    }
    flags(v, T)
}

pub fn memfd_flags(v: u32) -> String {
    const T: &[(u64, &str)] = &[
        (1, "MFD_CLOEXEC"),
        (2, "MFD_ALLOW_SEALING"),
        (4, "MFD_HUGETLB"),
        (8, "MFD_NOEXEC_SEAL"),
        (16, "MFD_EXEC"),
    ];
    if v == 0 {
        return "0".to_string();
    }
    flags(u64::from(v), T)
}

pub use model::names::cap_name;

pub fn cap_set(v: u64) -> String {
    let mut out = String::new();
    for bit in 0..64u32 {
        if v & (1u64 << bit) != 0 {
            if !out.is_empty() {
                out.push('|');
            }
            out.push_str(&cap_name(bit));
        }
    }
    out
}

pub fn ptrace_request(r: i64) -> String {
    let s = match r {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSR",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        14 => "PTRACE_GETFPREGS",
        15 => "PTRACE_SETFPREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4201 => "PTRACE_GETEVENTMSG",
        0x4202 => "PTRACE_GETSIGINFO",
        0x4203 => "PTRACE_SETSIGINFO",
        0x4204 => "PTRACE_GETREGSET",
        0x4205 => "PTRACE_SETREGSET",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        0x4208 => "PTRACE_LISTEN",
        _ => return r.to_string(),
    };
    s.to_string()
}

pub fn socket_family(d: u32) -> String {
    match d {
        0 => "AF_UNSPEC".into(),
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        n => n.to_string(),
    }
}

pub fn bpf_cmd(c: u32) -> String {
    const T: &[&str] = &[
        "BPF_MAP_CREATE",
        "BPF_MAP_LOOKUP_ELEM",
        "BPF_MAP_UPDATE_ELEM",
        "BPF_MAP_DELETE_ELEM",
        "BPF_MAP_GET_NEXT_KEY",
        "BPF_PROG_LOAD",
        "BPF_OBJ_PIN",
        "BPF_OBJ_GET",
        "BPF_PROG_ATTACH",
        "BPF_PROG_DETACH",
        "BPF_PROG_TEST_RUN",
        "BPF_PROG_GET_NEXT_ID",
        "BPF_MAP_GET_NEXT_ID",
        "BPF_PROG_GET_FD_BY_ID",
        "BPF_MAP_GET_FD_BY_ID",
        "BPF_OBJ_GET_INFO_BY_FD",
        "BPF_PROG_QUERY",
        "BPF_RAW_TRACEPOINT_OPEN",
        "BPF_BTF_LOAD",
        "BPF_BTF_GET_FD_BY_ID",
        "BPF_TASK_FD_QUERY",
        "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        "BPF_MAP_FREEZE",
        "BPF_BTF_GET_NEXT_ID",
        "BPF_MAP_LOOKUP_BATCH",
        "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        "BPF_MAP_UPDATE_BATCH",
        "BPF_MAP_DELETE_BATCH",
        "BPF_LINK_CREATE",
    ];
    match T.get(c as usize) {
        Some(s) => (*s).to_string(),
        None => c.to_string(),
    }
}

pub fn errno_name(e: i64) -> String {
    model::names::errno_name(e).map_or_else(|| format!("E{e}"), str::to_string)
}

/// `(date "YYYY-MM-DD", time "HH:MM:SS.nnnnnnnnn")` in UTC.
pub fn utc_parts(ts_ns: u64) -> (String, String) {
    model::utc::utc_parts(ts_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        assert_eq!(open_flags(0o1 | 0o100 | 0o1000), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(mode_names(0o4755), "S_ISUID|S_IRUSR|S_IWUSR|S_IXUSR|S_IRGRP|S_IXGRP|S_IROTH|S_IXOTH");
        assert_eq!(clone_flags(0x20000 | 0x10000000), "CLONE_NEWNS|CLONE_NEWUSER");
        assert_eq!(cap_name(21), "CAP_SYS_ADMIN");
        assert_eq!(errno_name(2), "ENOENT");
        assert_eq!(utc_parts(0), ("1970-01-01".to_string(), "00:00:00.000000000".to_string()));
        assert_eq!(utc_parts(1_700_000_000_123_456_789).0, "2023-11-14");
        assert_eq!(utc_parts(1_700_000_000_123_456_789).1, "22:13:20.123456789");
    }
}

//! The kernel <-> user ABI (bpf/events.h), as the skeleton generated it.
//!
//! The structs are defined once, in C; the Rust side uses the skeleton's
//! generated types and asserts their sizes here (events.h asserts the same sizes
//! on the C side).

#[allow(clippy::all, clippy::undocumented_unsafe_blocks, warnings, unsafe_op_in_unsafe_fn, missing_docs)]
pub(crate) mod skel {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

pub(crate) use skel::types::{
    ev_capable, ev_exec, ev_exit, ev_fork, ev_net, ev_skaddr, ev_sys, ev_usockaddr, event_hdr, kill_key,
    kill_val, runq_hist, str_item,
};

use std::mem::size_of;

const _: () = assert!(size_of::<event_hdr>() == 104);
const _: () = assert!(size_of::<str_item>() == 4);
const _: () = assert!(size_of::<ev_exec>() == 56);
const _: () = assert!(size_of::<ev_fork>() == 16);
const _: () = assert!(size_of::<ev_exit>() == 8);
const _: () = assert!(size_of::<ev_capable>() == 16);
const _: () = assert!(size_of::<ev_skaddr>() == 24);
const _: () = assert!(size_of::<ev_usockaddr>() == 120);
const _: () = assert!(size_of::<ev_sys>() == 80);
const _: () = assert!(size_of::<ev_net>() == 248);
const _: () = assert!(size_of::<kill_key>() == 272);
const _: () = assert!(size_of::<kill_val>() == 8);
const _: () = assert!(size_of::<runq_hist>() == 272);

/// Event type numbers are below this (the per-type loss counters' size).
pub(crate) const EV_TYPE_MAX: u32 = skel::types::ev_type::EV_TYPE_MAX.0;

pub(crate) const HDR_LEN: usize = size_of::<event_hdr>();
pub(crate) const ITEM_LEN: usize = size_of::<str_item>();

/// Event type numbers (enum ev_type in events.h), as plain u32 for matching.
pub(crate) mod ev {
    use super::skel::types::ev_type as T;
    macro_rules! consts {
        ($($name:ident),* $(,)?) => { $(pub(crate) const $name: u32 = T::$name.0;)* };
    }
    consts!(
        EV_EXEC,
        EV_FORK,
        EV_EXIT,
        EV_CAPABLE,
        EV_OPEN,
        EV_OPENAT,
        EV_OPENAT2,
        EV_CREAT,
        EV_UNLINK,
        EV_UNLINKAT,
        EV_RMDIR,
        EV_RENAME,
        EV_RENAMEAT,
        EV_RENAMEAT2,
        EV_LINK,
        EV_LINKAT,
        EV_SYMLINK,
        EV_SYMLINKAT,
        EV_MKDIR,
        EV_MKDIRAT,
        EV_CHMOD,
        EV_FCHMOD,
        EV_FCHMODAT,
        EV_FCHMODAT2,
        EV_CHOWN,
        EV_LCHOWN,
        EV_FCHOWN,
        EV_FCHOWNAT,
        EV_MOUNT,
        EV_UMOUNT2,
        EV_SOCKET,
        EV_CONNECT,
        EV_ACCEPT,
        EV_ACCEPT4,
        EV_BIND,
        EV_LISTEN,
        EV_SETUID,
        EV_SETGID,
        EV_SETREUID,
        EV_SETREGID,
        EV_SETRESUID,
        EV_SETRESGID,
        EV_SETFSUID,
        EV_SETFSGID,
        EV_CAPSET,
        EV_PTRACE,
        EV_INIT_MODULE,
        EV_FINIT_MODULE,
        EV_SETNS,
        EV_UNSHARE,
        EV_MEMFD_CREATE,
        EV_BPF,
        EV_TYPE_MAX,
    );
}

/// Header flags (enum ev_flags).
pub(crate) mod evf {
    use super::skel::types::ev_flags as F;
    pub(crate) const HAS_RET: u32 = F::EVF_HAS_RET.0;
    pub(crate) const STR_TRUNC: u32 = F::EVF_STR_TRUNC.0;
    pub(crate) const KILLED: u32 = F::EVF_KILLED.0;
}

/// String item ids (enum str_id).
pub(crate) mod sid {
    use super::skel::types::str_id as S;
    macro_rules! consts {
        ($($name:ident),* $(,)?) => { $(pub(crate) const $name: u8 = S::$name.0 as u8;)* };
    }
    consts!(
        STR_ARG0,
        STR_BASE0,
        STR_ARG1,
        STR_BASE1,
        STR_EXTRA,
        STR_FDPATH,
        STR_SOURCE,
        STR_FILENAME,
        STR_EXE,
        STR_ARGV,
        STR_CWD,
        STR_TTY,
    );
}

#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const STR_KIND_RAW: u8 = skel::types::str_kind::STR_KIND_RAW.0 as u8;
pub(crate) const STR_KIND_WALK: u8 = skel::types::str_kind::STR_KIND_WALK.0 as u8;
pub(crate) const STRF_TRUNC: u8 = skel::types::str_item_flags::STRF_TRUNC.0 as u8;

pub(crate) mod execf {
    use super::skel::types::exec_flags as E;
    pub(crate) const MEMFD: u32 = E::EXECF_MEMFD.0;
    pub(crate) const UPPER_KNOWN: u32 = E::EXECF_UPPER_KNOWN.0;
    pub(crate) const UPPER: u32 = E::EXECF_UPPER.0;
    pub(crate) const ARGV_TRUNC: u32 = E::EXECF_ARGV_TRUNC.0;
    pub(crate) const EXE_TIMES: u32 = E::EXECF_EXE_TIMES.0;
}

/// Marker for the generated ABI structs: `repr(C)` plain old data made only of
/// integers and integer arrays, so every bit pattern is a valid value.
///
/// # Safety
/// Implement only for such types.
pub(crate) unsafe trait Pod: Copy + Default {}

// SAFETY: the generated ABI structs are repr(C) and contain only integer fields
// and integer arrays (see bpf/events.h); every bit pattern is valid.
unsafe impl Pod for event_hdr {}
// SAFETY: as above.
unsafe impl Pod for str_item {}
// SAFETY: as above.
unsafe impl Pod for ev_exec {}
// SAFETY: as above.
unsafe impl Pod for ev_fork {}
// SAFETY: as above.
unsafe impl Pod for runq_hist {}
// SAFETY: as above.
unsafe impl Pod for ev_exit {}
// SAFETY: as above.
unsafe impl Pod for ev_capable {}
// SAFETY: as above.
unsafe impl Pod for ev_sys {}
// SAFETY: as above.
unsafe impl Pod for ev_net {}

/// Read a `T` from the start of `bytes`, or `None` when too short.
pub(crate) fn read<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes; read_unaligned has no
    // alignment requirement; T is Pod, so any bytes form a valid T.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The bytes of a `T` (for building records in tests).
#[cfg(test)]
pub(crate) fn bytes_of<T: Pod>(v: &T) -> Vec<u8> {
    // SAFETY: T is Pod (repr(C), integer fields, no implicit padding in these
    // ABI structs, which the size asserts pin), so all size_of::<T>() bytes are
    // initialised and readable.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

//! The kernel side of the notify agent: the seccomp user-notification
//! ioctls, the message runc sends (state JSON + the listener fd), and the
//! bounded reads of a notifying process's memory and `/proc` files.
//!
//! Everything read from the process is untrusted: the memory and the names
//! are the container's, and can change under us (only
//! [`id_valid`] after a read says the pid still names the same task).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The kernel's PATH_MAX, NUL included: a longer path fails ENAMETOOLONG.
pub const PATH_MAX: usize = 4096;

/// One notification: a thread stopped in a syscall the filter sent here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notif {
    pub id: u64,
    /// The thread's id, in our pid namespace.
    pub tid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// What the thread's syscall gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Run it as the process asked (the kernel does it; nothing emulated).
    Continue,
    /// Fail it with this errno, without running it.
    Deny(i32),
}

fn ioctl(fd: RawFd, req: libc::Ioctl, arg: *mut libc::c_void) -> io::Result<()> {
    // SAFETY: each caller passes a pointer to the struct `req` is defined
    // with, valid for the call.
    if unsafe { libc::ioctl(fd, req, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SECCOMP_IOCTL_NOTIF_RECV: blocks until a notification (poll first).
pub fn recv(fd: RawFd) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, (&mut n as *mut libc::seccomp_notif).cast())?;
    Ok(Notif { id: n.id, tid: n.pid, nr: n.data.nr, arch: n.data.arch, args: n.data.args })
}

/// SECCOMP_IOCTL_NOTIF_ID_VALID: the thread is still stopped in that
/// syscall, so its pid still names it and what we read was its memory.
pub fn id_valid(fd: RawFd, id: u64) -> bool {
    let mut id = id;
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, (&mut id as *mut u64).cast()).is_ok()
}

/// SECCOMP_IOCTL_NOTIF_SEND. ENOENT: the thread is gone (killed meanwhile).
pub fn respond(fd: RawFd, id: u64, answer: Answer) -> io::Result<()> {
    let mut r = libc::seccomp_notif_resp { id, val: 0, error: 0, flags: 0 };
    match answer {
        Answer::Continue => r.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Answer::Deny(errno) => r.error = -errno,
    }
    ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, (&mut r as *mut libc::seccomp_notif_resp).cast())
}

/// Waits for a notification up to `timeout_ms`: Ok(true) when one is
/// pending, Ok(false) on timeout, Err when the listener is done (every task
/// under the filter gone: POLLHUP).
pub fn wait(fd: RawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "no task left under the filter"));
    }
    Ok(rc > 0 && p.revents & libc::POLLIN != 0)
}

/// Whether `fd` is a seccomp notify listener (not whatever a client sent).
pub fn is_listener(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|t| t.as_os_str() == "anon_inode:seccomp notify")
}

/// A NUL-terminated string at `addr` in the thread's memory, at most
/// `max` bytes before the NUL. Reads page by page, so a string ending just
/// before an unmapped page is read whole.
pub fn read_c_string(tid: u32, addr: u64, max: usize) -> io::Result<Vec<u8>> {
    let mem = open_mem(tid)?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() <= max {
        let to_page_end = 4096 - (at % 4096) as usize;
        let mut buf = [0u8; 4096];
        let want = to_page_end.min(max + 1 - out.len());
        let n = pread(&mem, &mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        at = at.wrapping_add(n as u64);
    }
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// `len` bytes at `addr` (a small struct such as openat2's `open_how`).
pub fn read_bytes(tid: u32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    let mem = open_mem(tid)?;
    let n = pread(&mem, buf, addr)?;
    if n != buf.len() {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

fn open_mem(tid: u32) -> io::Result<OwnedFd> {
    let path = CString::new(format!("/proc/{tid}/mem")).expect("no NUL in a number");
    // SAFETY: a valid C string; the fd is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pread(fd: &OwnedFd, buf: &mut [u8], at: u64) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::pread64(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), at as i64) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A `/proc` link's target (cwd, exe, fd/N), bounded by PATH_MAX.
pub fn read_link(path: &Path) -> Option<String> {
    let t = std::fs::read_link(path).ok()?;
    let s = t.to_string_lossy();
    (s.len() < PATH_MAX).then(|| s.into_owned())
}

/// A small `/proc` file, at most `max` bytes.
pub fn read_small(path: &Path, max: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path).ok()?.take(max as u64).read_to_end(&mut out).ok()?;
    Some(out)
}

/// The most a runtime's message may be: the state JSON (annotations
/// included) is small; this only bounds a confused or hostile client.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// At most this many fds are taken from one message (runc sends one).
const MAX_FDS: usize = 4;

/// Reads one runtime message: the bytes up to a whole JSON value (runc
/// sends it in one `sendmsg` but does not close at once), or until the peer
/// closes, and the fds that came with them. Bounded in size; the caller sets
/// the stream's read timeout.
pub fn recv_message(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let fd = stream.as_raw_fd();
    let mut data = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = vec![0u8; 64 * 1024];
        // CMSG_SPACE for MAX_FDS ints, as u64s for alignment.
        let mut cbuf = [0u64; 8];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: msghdr is plain data.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: msg points at live buffers of the sizes given.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: walking the control buffer the kernel just filled, with
        // the libc macros, each header checked for SCM_RIGHTS.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let payload = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data_ptr = libc::CMSG_DATA(c) as *const RawFd;
                    for i in 0..payload / std::mem::size_of::<RawFd>() {
                        // Owned at once, so the extra ones are closed too.
                        let owned = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data_ptr.add(i)));
                        if fds.len() < MAX_FDS {
                            fds.push(owned);
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too many fds in one message"));
        }
        if n == 0 {
            return Ok((data, fds));
        }
        data.extend_from_slice(&buf[..n as usize]);
        if serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok() {
            return Ok((data, fds));
        }
        if data.len() > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "message over 256 KiB"));
        }
    }
}

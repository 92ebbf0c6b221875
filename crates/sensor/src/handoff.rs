//! Stopping without waiting for the kernel's release of the hooks.
//!
//! Releasing a perf-event tracepoint waits for RCU grace periods, and the
//! kernel releases them one at a time (under its tracing event mutex), so the
//! ~96 syscall tracepoints took 3-6 s to close on a busy host, in threads or
//! not. The sensor instead goes quiet first (its syscall programs return at
//! once and kill nothing, bpf/prefilter.h), then an orphaned process inherits
//! the links and holds them until the agent has let go of its own copies,
//! then exits, releasing them in its own time: the agent does not wait.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Keeps `fds` open in an orphaned grandchild process until the returned fd
/// is closed (close it after closing your own copies of `fds`: the
/// grandchild's are then the last, and its exit releases them). `None` if
/// no such process could be made: closing your copies releases them.
pub(crate) fn release_in_background(mut fds: Vec<RawFd>) -> Option<OwnedFd> {
    let mut pipe = [-1; 2];
    // SAFETY: `pipe` is a writable array of two fds.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both fds were just made by pipe2 and are owned by nothing else.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    fds.push(pipe[0]);
    fds.sort_unstable();
    fds.dedup();
    // SAFETY: the child runs only `child`, which makes raw syscalls on data
    // prepared before the fork (no allocation, no locks) and never returns.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => None,
        0 => child(&fds, pipe[0]),
        pid => {
            drop(read_end);
            let mut status = 0;
            // SAFETY: waits for the child made above; `status` is writable.
            let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
            let ok = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            ok.then_some(write_end)
        }
    }
}

/// The forked child: forks the grandchild and exits, so the grandchild is
/// reparented (to init or the nearest subreaper, which reaps it) and the
/// caller waits only for this exit. Raw syscalls only: the parent had other
/// threads, whose locks this copy of memory may hold.
fn child(keep: &[RawFd], wait_fd: RawFd) -> ! {
    // SAFETY: clone with SIGCHLD and no other flag or pointer is fork(2).
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid != 0 {
        // SAFETY: _exit ends this process without running any handler.
        unsafe { libc::_exit(if pid > 0 { 0 } else { 1 }) }
    }
    // The grandchild: every fd but `keep` closed, the standard ones too (a
    // reader of the agent's stderr sees its end at the agent's exit).
    let mut from: u32 = 0;
    for &fd in keep {
        let fd = fd as u32;
        if fd > from {
            close_range(from, fd - 1);
        }
        from = fd.saturating_add(1);
    }
    close_range(from, u32::MAX);
    // Until the pipe's end: the agent (and the child) closed their copies.
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into `byte`, which is writable.
        let n = unsafe { libc::read(wait_fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 0 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)) {
            break;
        }
    }
    // SAFETY: as above; the exit releases `keep`.
    unsafe { libc::_exit(0) }
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes this process's descriptors.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
}

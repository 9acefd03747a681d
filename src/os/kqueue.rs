//! The BSD and macOS poller: kqueue, and a non-blocking pipe to wake the poll thread.
//!
//! Each registration is two filters on one descriptor, EVFILT_READ and EVFILT_WRITE, both
//! always added and switched with EV_ENABLE / EV_DISABLE (as upstream's kqueue backend does),
//! so changing interest never allocates a knote. Neither uses EV_CLEAR: the core needs
//! level-triggered readiness (`events.rs`), and a filter that is still ready fires again.
//!
//! How each event maps to what the core expects:
//! - EVFILT_READ is `read`. EV_EOF on it (the peer's FIN, or a reset) is not reported
//!   separately: the core reads what is left, then the read returns 0 bytes or the error,
//!   exactly as on Linux after EPOLLIN (+EPOLLRDHUP/EPOLLHUP). (Upstream's kqueue backend,
//!   by its source, turns EV_EOF into a close without reading, dropping unread data.) A
//!   listener's EVFILT_READ means "accept".
//! - EVFILT_WRITE is `write`. EV_EOF on it (the connection cannot send any more) comes with
//!   the socket's error in `fflags`; the core's write (or a connect's SO_ERROR check) meets
//!   that error as it meets it after EPOLLOUT|EPOLLERR on Linux. A non-zero `fflags` with
//!   EV_EOF also sets `error`, and EV_ERROR (a change that failed while waiting) sets it too.
//! - `hangup` is never set: kqueue has no event that means "both directions are done" on its
//!   own; the EOF the read or write meets stands for it.
//! - A disabled filter reports nothing, unlike epoll, which reports EPOLLERR/EPOLLHUP even
//!   for a registration that asked for nothing. A paused socket with nothing to send so
//!   learns of a reset when it is resumed, not before; upstream's kqueue backend behaves the
//!   same.
//! - The filters of one descriptor arrive as separate events, possibly in one batch; the
//!   core handles each on its own and ignores one whose socket has closed meanwhile (its
//!   token names an id that no longer exists).

use std::io;
use std::mem::zeroed;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr;
use std::time::Duration;

use super::events::{Interest, RawEvents, Readiness};
use super::sys::{owned, set_cloexec, syscall};

// The types of kevent's `filter` and `flags` (NetBSD widened both).
#[cfg(target_os = "netbsd")]
type Filter = u32;
#[cfg(target_os = "netbsd")]
type Flags = u32;
#[cfg(not(target_os = "netbsd"))]
type Filter = i16;
#[cfg(not(target_os = "netbsd"))]
type Flags = u16;

/// One change of kevent, built from zero so it fits every system's layout.
fn change(fd: RawFd, filter: Filter, flags: Flags, token: u64) -> libc::kevent {
    // SAFETY: kevent is plain data; all-zero is a valid value.
    let mut event: libc::kevent = unsafe { zeroed() };
    event.ident = fd as libc::uintptr_t;
    event.filter = filter;
    event.flags = flags;
    event.udata = token as usize as *mut libc::c_void;
    event
}

fn readiness(event: &libc::kevent) -> Readiness {
    let eof = event.flags & libc::EV_EOF != 0;
    let failed = event.flags & libc::EV_ERROR != 0;
    Readiness {
        token: event.udata as usize as u64,
        read: event.filter == libc::EVFILT_READ,
        write: event.filter == libc::EVFILT_WRITE,
        error: failed || (eof && event.fflags != 0),
        hangup: false,
    }
}

/// EV_ADD with EV_ENABLE or EV_DISABLE: adds the filter if it is missing, then switches it.
fn switch(on: bool) -> Flags {
    libc::EV_ADD
        | if on {
            libc::EV_ENABLE
        } else {
            libc::EV_DISABLE
        }
}

/// Room for one wait's raw events.
pub(crate) type EventBuffer = RawEvents<libc::kevent>;

/// An owned kqueue.
pub(crate) struct Poller {
    fd: OwnedFd,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let fd = owned(syscall!(kqueue())?);
        // kqueue descriptors are not inherited by a child anyway; close-on-exec keeps the
        // rule "every descriptor of ours is close-on-exec" true on every system.
        set_cloexec(fd.as_raw_fd())?;
        Ok(Poller { fd })
    }

    /// Applies `changes` in order; stops at and returns the first that fails.
    fn apply(&self, changes: &[libc::kevent]) -> io::Result<()> {
        syscall!(kevent(
            self.fd.as_raw_fd(),
            changes.as_ptr(),
            changes.len() as _,
            ptr::null_mut(),
            0,
            ptr::null()
        ))?;
        Ok(())
    }

    /// Registers `fd` with `token`, which comes back in every `Readiness` for it.
    pub(crate) fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let result = self.modify(fd, token, interest);
        if result.is_err() {
            // The read filter may have gone in before the write filter failed.
            let _ = self.delete(fd);
        }
        result
    }

    pub(crate) fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.apply(&[
            change(fd, libc::EVFILT_READ, switch(interest.read), token),
            change(fd, libc::EVFILT_WRITE, switch(interest.write), token),
        ])
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        // Apart: a filter that is missing (ENOENT) must not keep the other one in.
        let read = self.apply(&[change(fd, libc::EVFILT_READ, libc::EV_DELETE, 0)]);
        let write = self.apply(&[change(fd, libc::EVFILT_WRITE, libc::EV_DELETE, 0)]);
        read.and(write)
    }

    /// Waits up to `timeout` (`None`: no limit); fills `out` (cleared first) with what is
    /// ready, which may be nothing when the time ran out.
    pub(crate) fn wait(
        &self,
        buffer: &mut EventBuffer,
        out: &mut Vec<Readiness>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let limit = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as _,
        });
        let limit_ptr = limit
            .as_ref()
            .map_or(ptr::null(), |t| t as *const libc::timespec);
        let wait = |room: *mut libc::kevent, capacity: usize| {
            let n = syscall!(kevent(
                self.fd.as_raw_fd(),
                ptr::null(),
                0,
                room,
                capacity.min(i32::MAX as usize) as _,
                limit_ptr
            ))?;
            Ok(n as usize)
        };
        // SAFETY: kevent writes at most `capacity` events and returns how many it wrote.
        unsafe { buffer.fill(out, wait, readiness) }
    }
}

/// Wakes a poll thread blocked in `Poller::wait`: a non-blocking pipe whose read end is
/// registered with EV_CLEAR, so one burst of signals is reported once. A pipe works on
/// every kqueue system (EVFILT_USER does not exist on all of them).
pub(crate) struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    pub(crate) fn new(poller: &Poller, token: u64) -> io::Result<Waker> {
        let mut fds = [0 as libc::c_int; 2];
        syscall!(pipe(fds.as_mut_ptr()))?;
        let (read, write) = (owned(fds[0]), owned(fds[1]));
        for fd in [&read, &write] {
            set_cloexec(fd.as_raw_fd())?;
            super::net::set_nonblocking(fd.as_raw_fd());
        }
        let flags = libc::EV_ADD | libc::EV_CLEAR;
        poller.apply(&[change(read.as_raw_fd(), libc::EVFILT_READ, flags, token)])?;
        Ok(Waker { read, write })
    }

    /// Signals the waiter. A full pipe (EAGAIN) already means "signalled".
    pub(crate) fn notify(&self) {
        let one = [1u8];
        // SAFETY: writes 1 byte from a live array to our own pipe.
        let _ = unsafe { libc::write(self.write.as_raw_fd(), one.as_ptr().cast(), 1) };
    }

    /// Clears the signal; returns how many notifications it held (0 when none).
    pub(crate) fn drain(&self) -> u64 {
        let mut total = 0u64;
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into a live array from our own pipe.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return total;
            }
            total += n as u64;
        }
    }
}

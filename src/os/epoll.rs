//! The Linux poller: epoll, and an eventfd to wake the poll thread.
//!
//! Mapping to what the core expects (`events.rs`): EPOLLIN is `read`, EPOLLOUT `write`,
//! EPOLLERR `error`, EPOLLHUP `hangup`; registrations are level-triggered. epoll reports
//! EPOLLERR and EPOLLHUP even for a registration that asked for nothing, which is why a
//! paused socket with nothing to send still learns of a reset here.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::events::{Interest, RawEvents, Readiness};
use super::sys::{owned, syscall};

fn flags(interest: Interest) -> u32 {
    let mut flags = 0;
    if interest.read {
        flags |= libc::EPOLLIN as u32;
    }
    if interest.write {
        flags |= libc::EPOLLOUT as u32;
    }
    flags
}

fn readiness(event: &libc::epoll_event) -> Readiness {
    let flags = event.events;
    Readiness {
        token: event.u64,
        read: flags & libc::EPOLLIN as u32 != 0,
        write: flags & libc::EPOLLOUT as u32 != 0,
        error: flags & libc::EPOLLERR as u32 != 0,
        hangup: flags & libc::EPOLLHUP as u32 != 0,
    }
}

/// Room for one wait's raw events.
pub(crate) type EventBuffer = RawEvents<libc::epoll_event>;

/// An owned epoll instance.
pub(crate) struct Poller {
    fd: OwnedFd,
}

impl Poller {
    pub(crate) fn new() -> io::Result<Poller> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Poller { fd: owned(fd) })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, flags: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: flags,
            u64: token,
        };
        syscall!(epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event))?;
        Ok(())
    }

    /// Registers `fd` with `token`, which comes back in every `Readiness` for it.
    pub(crate) fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, flags(interest), token)
    }

    pub(crate) fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, flags(interest), token)
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout` (`None`: no limit); fills `out` (cleared first) with what is
    /// ready, which may be nothing when the time ran out.
    pub(crate) fn wait(
        &self,
        buffer: &mut EventBuffer,
        out: &mut Vec<Readiness>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let timeout_ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let wait = |room: *mut libc::epoll_event, capacity: usize| {
            let n = syscall!(epoll_wait(
                self.fd.as_raw_fd(),
                room,
                capacity.min(i32::MAX as usize) as libc::c_int,
                timeout_ms
            ))?;
            Ok(n as usize)
        };
        // SAFETY: epoll_wait writes at most `capacity` entries and returns how many it wrote.
        unsafe { buffer.fill(out, wait, readiness) }
    }
}

/// Wakes a poll thread blocked in `Poller::wait`: an eventfd, registered edge-triggered so
/// one signal is reported once.
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub(crate) fn new(poller: &Poller, token: u64) -> io::Result<Waker> {
        let fd = owned(syscall!(eventfd(
            0,
            libc::EFD_CLOEXEC | libc::EFD_NONBLOCK
        ))?);
        poller.ctl(
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            libc::EPOLLIN as u32 | libc::EPOLLET as u32,
            token,
        )?;
        Ok(Waker { fd })
    }

    /// Signals the waiter. A full counter (EAGAIN) already means "signalled".
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears the signal; returns how many notifications it held (0 when none).
    pub(crate) fn drain(&self) -> u64 {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own eventfd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        if n == 8 { value } else { 0 }
    }
}

//! epoll and the eventfd the command queue wakes the poll thread with.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::sys::{owned, syscall};

/// Which readiness a registration asks for. Errors and hang-ups are always reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    fn flags(self) -> u32 {
        let mut flags = 0;
        if self.read {
            flags |= libc::EPOLLIN as u32;
        }
        if self.write {
            flags |= libc::EPOLLOUT as u32;
        }
        flags
    }
}

/// What epoll reported for one registration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub token: u64,
    pub read: bool,
    pub write: bool,
    pub error: bool,
    pub hangup: bool,
}

impl Readiness {
    fn from_event(event: &libc::epoll_event) -> Readiness {
        let flags = event.events;
        Readiness {
            token: event.u64,
            read: flags & libc::EPOLLIN as u32 != 0,
            write: flags & libc::EPOLLOUT as u32 != 0,
            error: flags & libc::EPOLLERR as u32 != 0,
            hangup: flags & libc::EPOLLHUP as u32 != 0,
        }
    }
}

/// An owned epoll instance.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Epoll { fd: owned(fd) })
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
        self.ctl(libc::EPOLL_CTL_ADD, fd, interest.flags(), token)
    }

    /// Registers `fd` edge-triggered for reading (the wake-up eventfd).
    pub(crate) fn add_edge_triggered(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            libc::EPOLLIN as u32 | libc::EPOLLET as u32,
            token,
        )
    }

    pub(crate) fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, interest.flags(), token)
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout` (`None`: no limit); fills `out` (cleared first) with what is
    /// ready, which may be nothing when the time ran out.
    pub(crate) fn wait(
        &self,
        buffer: &mut Vec<libc::epoll_event>,
        out: &mut Vec<Readiness>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let timeout_ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        out.clear();
        let capacity = buffer.capacity().max(1);
        buffer.clear();
        buffer.reserve(capacity);
        let n = syscall!(epoll_wait(
            self.fd.as_raw_fd(),
            buffer.as_mut_ptr(),
            capacity as libc::c_int,
            timeout_ms
        ))?;
        // SAFETY: epoll_wait initialised the first `n` entries (n <= capacity).
        unsafe { buffer.set_len(n as usize) };
        out.extend(buffer.iter().map(Readiness::from_event));
        Ok(())
    }
}

/// A non-blocking eventfd used as a wake-up signal.
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        Ok(EventFd { fd: owned(fd) })
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Signals the waiter. A full counter (EAGAIN) already means "signalled".
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        let _ = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter; returns how many signals it held (0 when none).
    pub(crate) fn drain(&self) -> u64 {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own eventfd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        if n == 8 { value } else { 0 }
    }
}

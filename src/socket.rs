//! Per-socket state. It lives in its slot behind the slot's mutex, which is the per-socket
//! lock: the poll thread holds it while it changes the socket, a worker holds it for a direct
//! write. Only the poll thread changes `phase`, the poller interest and the fd.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::os::{self, CallerFd, Interest, Poller, SockAddr};
use crate::slots::{Entry, SocketId};
use crate::udp_address::{UdpAddress, UdpFamily};
use crate::write_queue::WriteQueue;

/// The poller token of a socket: its (positive) id, so an event can never reach a newer socket
/// that reuses the slot.
pub(crate) fn token(id: SocketId) -> u64 {
    id.raw() as u64
}

/// Closes a socket at once: it leaves the table (its id is stale from now on) and its fd is
/// closed as `close_fd` says.
pub(crate) fn close_now(socket: Entry<'_, Socket>, poller: &Poller) {
    socket.remove().close_fd(poller);
}

/// The smallest (and first) read buffer.
pub(crate) const MIN_READ: usize = 64;
/// The read buffer stops doubling here (the kernel never hands over this much at once anyway).
const MAX_READ: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Udp(UdpFamily),
}

/// Where a socket is in its life. Close rules are in `close.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Id handed out; the poll thread has not set the socket up yet.
    Reserved,
    /// Listening, not accepting until started.
    PendingListen,
    Listening,
    Connecting,
    /// Accepted, not reading until started.
    PendingAccept,
    /// Connected TCP, or any UDP socket.
    Connected,
    /// The peer's FIN arrived, or the owner closed with data queued: no more reading.
    HalfClosedRead,
    /// A write failed: no more writing.
    HalfClosedWrite,
    /// A descriptor wrapped by socket_server_bind.
    Bound,
}

/// What a socket has read, for socket_info. Shared (not behind the socket's lock) because the
/// poll thread reads without that lock; only the poll thread writes it. The write counters
/// live in the Socket, under its lock: every write holds it, and a line written by the poll
/// thread and a worker at once would move between their CPUs with every message.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    read: AtomicU64,
    rtime: AtomicU64,
}

impl Stats {
    /// Poll thread only, so a load and a store suffice.
    pub(crate) fn count_read(&self, n: usize, now: u64) {
        let read = self.read.load(Ordering::Relaxed);
        self.read.store(read + n as u64, Ordering::Relaxed);
        self.rtime.store(now, Ordering::Relaxed);
    }

    /// (read, rtime)
    pub(crate) fn snapshot(&self) -> (u64, u64) {
        (
            self.read.load(Ordering::Relaxed),
            self.rtime.load(Ordering::Relaxed),
        )
    }
}

/// A socket's descriptor, and whose it is.
#[derive(Debug)]
pub(crate) enum Descriptor {
    /// Not set up yet.
    None,
    /// Created by the library; closed with the socket.
    Owned(OwnedFd),
    /// Handed in by socket_server_bind: the caller's (see `Socket::close_fd`).
    Caller(CallerFd),
}

/// One socket, behind its slot's mutex (the socket's lock). Every field is read and written
/// under that lock; "writer" names the threads that change it (see `src/CONCURRENCY.md`).
pub(crate) struct Socket {
    /// Writer: none (set at reservation).
    pub id: SocketId,
    /// The owning service. Writer: the poll thread (start).
    pub opaque: usize,
    /// None until the poll thread sets the socket up. Writer: the poll thread.
    pub descriptor: Descriptor,
    /// Sockets get MSG_NOSIGNAL sends; a bound pipe or tty gets plain writes. Writer: the poll
    /// thread (bind).
    pub is_socket: bool,
    /// Writer: none (set at reservation).
    pub transport: Transport,
    /// Writer: the poll thread.
    pub phase: Phase,
    /// The owner closed it; it closes for good once the queue drains. Writer: the poll thread.
    pub closing: bool,
    /// An error event reported ERR: the connection failed, and a write failing after it is
    /// not reported again. Writer: the poll thread.
    pub error_reported: bool,
    /// Whether the fd is in the poller, and what it is watched for. Writer: the poll thread.
    pub registered: bool,
    pub interest: Interest,
    /// Writers: the poll thread (sends it applies, flushing), workers (the rest of a direct
    /// write, appending to a congested socket).
    pub queue: WriteQueue,
    /// UDP default destination. Writers: the worker that reserves it (udp_dial), then the
    /// poll thread (udp_connect applied).
    pub udp_dest: Option<UdpAddress>,
    /// udp_connect calls whose new destination is not applied yet: no direct writes until 0.
    /// Writers: workers add (and take back a failed lookup), the poll thread subtracts.
    pub udp_connecting: u32,
    /// The next read's size. Writer: the poll thread (while a reader holds a newer value, the
    /// reader's is the true one; `Readers::lock` writes it back).
    pub read_size: usize,
    /// Bytes read and time of the last read, readable without this lock. Writer: the poll
    /// thread.
    pub stats: Arc<Stats>,
    /// Bytes written and the time of the last write (socket_info). Writer: whoever writes.
    pub written: u64,
    pub wtime: u64,
    /// What socket_info names: a connection's peer, a listener's own address. Writer: the
    /// poll thread.
    pub name_addr: Option<SockAddr>,
}

impl Socket {
    pub(crate) fn reserved(id: SocketId, opaque: usize, transport: Transport) -> Socket {
        Socket {
            id,
            opaque,
            descriptor: Descriptor::None,
            is_socket: true,
            transport,
            phase: Phase::Reserved,
            closing: false,
            error_reported: false,
            registered: false,
            interest: Interest::default(),
            queue: WriteQueue::default(),
            udp_dest: None,
            udp_connecting: 0,
            read_size: MIN_READ,
            stats: Arc::default(),
            written: 0,
            wtime: 0,
            name_addr: None,
        }
    }

    /// The descriptor's number, -1 before the poll thread set the socket up.
    pub(crate) fn fd(&self) -> RawFd {
        match &self.descriptor {
            Descriptor::None => -1,
            Descriptor::Owned(fd) => fd.as_raw_fd(),
            Descriptor::Caller(fd) => fd.raw(),
        }
    }

    pub(crate) fn is_udp(&self) -> bool {
        matches!(self.transport, Transport::Udp(_))
    }

    pub(crate) fn udp_family(&self) -> Option<UdpFamily> {
        match self.transport {
            Transport::Udp(family) => Some(family),
            Transport::Tcp => None,
        }
    }

    /// Nothing queued and nothing on its way, or writing is over anyway. `queued_sends`, here
    /// and below: the socket's send commands not applied yet (`Entry::queued_sends`; they are
    /// counted in its slot, so a worker can count one without the lock).
    pub(crate) fn nothing_to_send(&self, queued_sends: u32) -> bool {
        (self.queue.is_empty() && queued_sends == 0) || self.phase == Phase::HalfClosedWrite
    }

    /// A worker may write straight to the fd: the socket is open both ways, and no byte is
    /// queued or on its way that this write could overtake.
    pub(crate) fn can_write_directly(&self, queued_sends: u32) -> bool {
        self.phase == Phase::Connected
            && !self.closing
            && self.queue.is_empty()
            && queued_sends == 0
            && self.udp_connecting == 0
    }

    /// A worker may append to the queue itself: the poll thread is already flushing it (a
    /// non-empty queue of a connected socket always has writability watched, or an
    /// EnableWrite on its way), and no send command is in flight that this could overtake.
    pub(crate) fn can_append_directly(&self, queued_sends: u32) -> bool {
        self.transport == Transport::Tcp
            && self.phase == Phase::Connected
            && !self.closing
            && queued_sends == 0
            && !self.queue.is_empty()
    }

    /// Sockets in these phases take data to send; others drop it.
    pub(crate) fn accepts_data(&self) -> bool {
        !self.closing
            && matches!(
                self.phase,
                Phase::Reserved
                    | Phase::Connecting
                    | Phase::Connected
                    | Phase::HalfClosedRead
                    | Phase::Bound
            )
    }

    // ---- registration: the poll thread's business only ------------------------------------

    /// Puts the socket's new descriptor in the poller with `interest` and moves it to `phase`. On
    /// failure the descriptor is closed and the socket is unchanged.
    pub(crate) fn register(
        &mut self,
        poller: &Poller,
        fd: OwnedFd,
        interest: Interest,
        phase: Phase,
    ) -> io::Result<()> {
        poller.add(fd.as_raw_fd(), token(self.id), interest)?;
        self.descriptor = Descriptor::Owned(fd);
        self.registered = true;
        self.interest = interest;
        self.phase = phase;
        Ok(())
    }

    /// The same for a descriptor handed in by socket_server_bind: the caller's, so it is not
    /// closed on failure, and it is made non-blocking once the poller takes it.
    pub(crate) fn register_bound(
        &mut self,
        poller: &Poller,
        fd: CallerFd,
        interest: Interest,
    ) -> io::Result<()> {
        poller.add(fd.raw(), token(self.id), interest)?;
        os::set_nonblocking(fd.raw());
        self.is_socket = os::is_socket(fd.raw());
        self.descriptor = Descriptor::Caller(fd);
        self.registered = true;
        self.interest = interest;
        self.phase = Phase::Bound;
        Ok(())
    }

    /// Sets what the poller watches the fd for.
    pub(crate) fn set_interest(&mut self, poller: &Poller, interest: Interest) -> io::Result<()> {
        if self.interest == interest {
            return Ok(());
        }
        if !self.registered {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        self.interest = interest;
        poller.modify(self.fd(), token(self.id), interest)
    }

    pub(crate) fn set_reading(&mut self, poller: &Poller, read: bool) -> io::Result<()> {
        let interest = Interest {
            read,
            ..self.interest
        };
        self.set_interest(poller, interest)
    }

    pub(crate) fn set_writing(&mut self, poller: &Poller, write: bool) -> io::Result<()> {
        let interest = Interest {
            write,
            ..self.interest
        };
        self.set_interest(poller, interest)
    }

    /// Closes the fd. A descriptor we created is ours alone, so closing it also ends its
    /// poller registration. A bound descriptor may share its file with others (stdin and
    /// stdout), so it leaves the poller explicitly; it is the caller's, and stays open unless
    /// its phase moved on (its peer's EOF, a write error, a close that had to flush), when
    /// upstream closes it too.
    pub(crate) fn close_fd(self, poller: &Poller) {
        match self.descriptor {
            Descriptor::None => {}
            Descriptor::Owned(fd) => drop(fd),
            Descriptor::Caller(fd) => {
                if self.registered {
                    let _ = poller.delete(fd.raw());
                }
                if self.phase != Phase::Bound {
                    drop(fd.adopt());
                }
            }
        }
    }

    /// Stops reading for good: the peer's FIN arrived (`peer_done`), or the owner closed with
    /// data queued, in which case the read side is shut too.
    pub(crate) fn close_read(&mut self, poller: &Poller, peer_done: bool) {
        self.enter_half_closed(Phase::HalfClosedRead);
        let _ = self.set_reading(poller, false);
        if !peer_done {
            let _ = os::shutdown(self.fd(), libc::SHUT_RD);
        }
    }

    /// Moves the socket into a half-closed phase. A bound descriptor is listed as any
    /// connection from then on (upstream names it by its peer once it is no longer "bound"),
    /// so its peer's address is taken now, while the kernel still knows it.
    pub(crate) fn enter_half_closed(&mut self, phase: Phase) {
        if self.phase == Phase::Bound && self.name_addr.is_none() {
            self.name_addr = os::peer_addr(self.fd());
        }
        self.phase = phase;
    }

    /// Whether the fd can be written now (not still connecting).
    pub(crate) fn writable_now(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connected | Phase::HalfClosedRead | Phase::Bound
        )
    }

    pub(crate) fn is_listener(&self) -> bool {
        matches!(self.phase, Phase::PendingListen | Phase::Listening)
    }

    pub(crate) fn count_write(&mut self, n: usize, now: u64) {
        if n > 0 {
            self.written += n as u64;
            self.wtime = now;
        }
    }

    pub(crate) fn count_read(&mut self, n: usize, now: u64) {
        self.stats.count_read(n, now);
    }

    /// Adapts the read size after a read of `n` bytes; see [`adapt_read_size`].
    pub(crate) fn adapt_read_size(&mut self, n: usize) -> bool {
        adapt_read_size(&mut self.read_size, n)
    }
}

/// Adapts a read size after a read of `n` bytes: double after a full read, halve after one
/// under half full (never below MIN_READ). Returns whether the read was full.
pub(crate) fn adapt_read_size(size: &mut usize, n: usize) -> bool {
    if n == *size {
        *size = (*size * 2).min(MAX_READ);
        true
    } else {
        if *size > MIN_READ && n * 2 < *size {
            *size /= 2;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_size_doubles_on_full_reads_and_halves_down_to_the_minimum() {
        let mut s = Socket::reserved(SocketId::from_raw(1), 0, Transport::Tcp);
        assert!(s.adapt_read_size(64));
        assert!(s.adapt_read_size(128));
        assert_eq!(s.read_size, 256);
        assert!(!s.adapt_read_size(100));
        assert_eq!(s.read_size, 128);
        assert!(!s.adapt_read_size(1));
        assert!(!s.adapt_read_size(1));
        assert_eq!(s.read_size, MIN_READ);
    }

    #[test]
    fn direct_writes_wait_for_queued_and_pending_data() {
        let mut s = Socket::reserved(SocketId::from_raw(1), 0, Transport::Tcp);
        assert!(!s.can_write_directly(0));
        s.phase = Phase::Connected;
        assert!(s.can_write_directly(0));
        assert!(!s.can_write_directly(1));
        s.closing = true;
        assert!(!s.can_write_directly(0));
    }
}

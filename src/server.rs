//! The server object and everything a worker thread calls. Worker calls reserve ids, do the
//! direct-write fast path under the socket's lock, and hand everything else to the poll
//! thread as commands (`command.rs`); the poll thread's side is in `poll/`.

use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::command::{self, Command, CommandQueue};
use crate::info::{self, InfoEntry};
use crate::os::{self, CallerFd, Poller, Waker};
use crate::send_buffer::Outgoing;
use crate::send_buffer::{CopyFailed, SendBuffer};
use crate::slots::{Entry, NotCounted, SlotTable, SocketId, TryLock};
use crate::socket::{Socket, Transport};
use crate::udp_address::{UdpAddress, UdpFamily};

pub(crate) use crate::write_queue::Priority;

pub(crate) struct Server {
    pub(crate) table: SlotTable<Socket>,
    pub(crate) commands: CommandQueue,
    pub(crate) poller: Poller,
    time: AtomicU64,
    /// Set by `socket_server_exit`: the poll thread is about to stop for good, so sends are
    /// refused instead of being held until release.
    exiting: AtomicBool,
    exit_refusal_logged: AtomicBool,
}

impl Server {
    pub(crate) fn new(time: u64) -> io::Result<Server> {
        let poller = Poller::new()?;
        let wake = Waker::new(&poller, command::WAKE_TOKEN)?;
        Ok(Server {
            table: SlotTable::noting_congestion(|socket: &Socket| !socket.queue.is_empty()),
            commands: CommandQueue::new(wake),
            poller,
            time: AtomicU64::new(time),
            exiting: AtomicBool::new(false),
            exit_refusal_logged: AtomicBool::new(false),
        })
    }

    pub(crate) fn update_time(&self, time: u64) {
        self.time.store(time, Ordering::Relaxed);
    }

    pub(crate) fn now(&self) -> u64 {
        self.time.load(Ordering::Relaxed)
    }

    fn reserve(&self, opaque: usize, transport: Transport) -> Option<SocketId> {
        self.table
            .reserve(|id| Socket::reserved(id, opaque, transport))
    }

    pub(crate) fn exit(&self) {
        self.exiting.store(true, Ordering::Release);
        self.commands.push(Command::Exit);
    }

    /// Refuses sends once exit was asked for.
    fn refuse_after_exit(&self) -> Result<(), SendRefused> {
        if !self.exiting.load(Ordering::Acquire) {
            return Ok(());
        }
        let first = !self.exit_refusal_logged.swap(true, Ordering::Relaxed);
        Err(SendRefused::Exiting { first })
    }

    pub(crate) fn listen(
        &self,
        opaque: usize,
        host: Option<&CStr>,
        port: i32,
        backlog: i32,
    ) -> Option<SocketId> {
        let (fd, _) = match os::bind_address(host, port, libc::SOCK_STREAM) {
            Ok(bound) => bound,
            Err(_) => return None,
        };
        if os::listen(fd.as_raw_fd(), backlog).is_err() {
            return None;
        }
        let addr = os::local_addr(fd.as_raw_fd())?;
        let id = self.reserve(opaque, Transport::Tcp)?;
        self.commands.push(Command::Listen { id, fd, addr });
        Some(id)
    }

    pub(crate) fn connect(&self, opaque: usize, host: &CStr, port: i32) -> Option<SocketId> {
        let id = self.reserve(opaque, Transport::Tcp)?;
        self.commands.push(Command::Connect {
            id,
            host: host.to_owned(),
            port,
        });
        Some(id)
    }

    pub(crate) fn bind(&self, opaque: usize, fd: CallerFd) -> Option<SocketId> {
        let id = self.reserve(opaque, Transport::Tcp)?;
        self.commands.push(Command::Bind { id, fd });
        Some(id)
    }

    pub(crate) fn start(&self, opaque: usize, id: SocketId) {
        self.commands.push(Command::Start { id, opaque });
    }

    pub(crate) fn pause(&self, _opaque: usize, id: SocketId) {
        self.commands.push(Command::Pause { id });
    }

    /// The opaque given to close is not used: CLOSE carries the socket's current owner.
    pub(crate) fn close(&self, _opaque: usize, id: SocketId, shutdown: bool) {
        self.commands.push(Command::Close { id, shutdown });
    }

    pub(crate) fn nodelay(&self, id: SocketId) {
        self.commands.push(Command::NoDelay { id });
    }

    /// Sends on TCP, or on UDP to the default destination. Refused when the id is invalid or
    /// closing (high priority), and in the cases `SendRefused` names; the payload is released
    /// either way.
    pub(crate) fn send(
        &self,
        id: SocketId,
        outgoing: Outgoing<'_>,
        priority: Priority,
    ) -> Result<(), SendRefused> {
        self.refuse_after_exit()?;
        let socket = match self.lock_to_send(id) {
            TryLock::Locked(socket) => socket,
            TryLock::Busy => {
                let refuse_if_closing = priority == Priority::High;
                return self.send_without_lock(id, outgoing, priority, None, refuse_if_closing);
            }
            TryLock::Gone => return Err(SendRefused::InvalidId),
        };
        if socket.closing && priority == Priority::High {
            return Err(SendRefused::Closing);
        }
        if socket.is_udp() && socket.udp_dest.is_none() && socket.udp_connecting == 0 {
            return Err(SendRefused::NoDestination { id });
        }
        let queued_sends = socket.queued_sends();
        // A low priority send always goes through the poll thread, as upstream's does: a large
        // one must queue there and raise WARNING (a direct write's rest never does).
        if priority == Priority::High && socket.can_write_directly(queued_sends) {
            return self.write_directly(socket, outgoing, None);
        }
        if socket.can_append_directly(queued_sends) {
            return self.append_directly(socket, outgoing, priority);
        }
        let buf = SendBuffer::keep(outgoing).map_err(|e| SendRefused::copy(id, e))?;
        self.queue_send(socket, buf, priority, None);
        Ok(())
    }

    /// The socket's lock for a send. `Busy` when another thread holds it and the socket was
    /// idle, so that waiting could hold up a direct write (the send goes without the lock). A
    /// congested socket is waited for: its send is only appended to the queue, which is what
    /// the poll thread would do with it anyway, and a flood of sends stays a flood of appends
    /// rather than of commands.
    #[inline]
    fn lock_to_send(&self, id: SocketId) -> TryLock<'_, Socket> {
        match self.table.try_lock(id) {
            TryLock::Busy if self.table.congested(id) => match self.table.lock(id) {
                Some(socket) => TryLock::Locked(socket),
                None => TryLock::Gone,
            },
            other => other,
        }
    }

    /// Another thread holds the lock of an idle socket (the poll thread applying a command,
    /// or a worker writing): hand the send to the poll thread rather than wait for it. It is
    /// counted first, so no later send writes directly before it is applied. A closing socket
    /// refuses a high priority stream send here too (`refuse_if_closing`: the mark is kept
    /// beside the count); what else the lock would have let us refuse at once (a UDP socket
    /// with no destination, or one of the other family) the poll thread drops instead, as
    /// upstream's does with a send it has queued.
    fn send_without_lock(
        &self,
        id: SocketId,
        outgoing: Outgoing<'_>,
        priority: Priority,
        to: Option<UdpAddress>,
        refuse_if_closing: bool,
    ) -> Result<(), SendRefused> {
        let buf = SendBuffer::keep(outgoing).map_err(|e| SendRefused::copy(id, e))?;
        match self.table.count_queued_send(id, refuse_if_closing) {
            Ok(()) => {}
            Err(NotCounted::Gone) => return Err(SendRefused::InvalidId),
            Err(NotCounted::Closing) => return Err(SendRefused::Closing),
        }
        self.commands.push(Command::Send {
            id,
            buf,
            priority,
            to,
        });
        Ok(())
    }

    /// The congested fast path: the poll thread is already writing this socket's queue, so
    /// append under the socket's lock instead of sending a command. Only WARNING, which must
    /// come out of poll, still goes through the queue.
    fn append_directly(
        &self,
        mut socket: Entry<'_, Socket>,
        outgoing: Outgoing<'_>,
        priority: Priority,
    ) -> Result<(), SendRefused> {
        match outgoing {
            Outgoing::Owned(buffer) => socket
                .queue
                .push_stream(priority, SendBuffer::Foreign(buffer)),
            Outgoing::Borrowed(bytes) => socket
                .queue
                .push_copy(priority, bytes)
                .map_err(|e| SendRefused::copy(socket.id, e))?,
        }
        if let Some(warning) = socket.queue.check_warning() {
            // Pushed under the socket's lock, so warnings of one socket reach the poll thread
            // in the order they were raised.
            self.commands.push(Command::Warning {
                id: socket.id,
                warning,
            });
        }
        Ok(())
    }

    /// Sends a datagram to `to`. Refused for an invalid id or an address of the other family.
    pub(crate) fn udp_send(
        &self,
        id: SocketId,
        to: &UdpAddress,
        outgoing: Outgoing<'_>,
    ) -> Result<(), SendRefused> {
        self.refuse_after_exit()?;
        let socket = match self.lock_to_send(id) {
            TryLock::Locked(socket) => socket,
            // Upstream does not refuse a datagram to a closing socket either.
            TryLock::Busy => {
                return self.send_without_lock(id, outgoing, Priority::High, Some(*to), false);
            }
            TryLock::Gone => return Err(SendRefused::InvalidId),
        };
        if socket.udp_family() != Some(to.family()) {
            return Err(SendRefused::WrongFamily);
        }
        if socket.can_write_directly(socket.queued_sends()) {
            return self.write_directly(socket, outgoing, Some(*to));
        }
        let buf = SendBuffer::keep(outgoing).map_err(|e| SendRefused::copy(id, e))?;
        self.queue_send(socket, buf, Priority::High, Some(*to));
        Ok(())
    }

    fn queue_send(
        &self,
        socket: Entry<'_, Socket>,
        buf: SendBuffer,
        priority: Priority,
        to: Option<UdpAddress>,
    ) {
        socket.count_queued_send();
        let id = socket.id;
        drop(socket);
        self.commands.push(Command::Send {
            id,
            buf,
            priority,
            to,
        });
    }

    /// The fast path: write from the caller's thread under the socket's lock. What the
    /// kernel does not take is queued in front and the poll thread is asked to finish it.
    fn write_directly(
        &self,
        mut socket: Entry<'_, Socket>,
        outgoing: Outgoing<'_>,
        to: Option<UdpAddress>,
    ) -> Result<(), SendRefused> {
        let bytes = outgoing.bytes();
        let len = bytes.len();
        let written = match socket.transport {
            Transport::Tcp => os::write(socket.fd(), bytes, socket.is_socket).unwrap_or(0),
            Transport::Udp(_) => {
                let Some(dest) = to.or(socket.udp_dest) else {
                    return Err(SendRefused::NoDestination { id: socket.id });
                };
                // A datagram goes whole or not at all; a failed one is retried by the poll thread.
                match os::send_to(socket.fd(), bytes, &dest.to_sockaddr()) {
                    Ok(_) => len,
                    Err(_) => 0,
                }
            }
        };
        let now = self.now();
        // Upstream stamps the time of every direct attempt, even one the kernel refused.
        socket.wtime = now;
        socket.count_write(written, now);
        if written == len {
            return Ok(());
        }
        let (rest, offset) =
            SendBuffer::keep_rest(outgoing, written).map_err(|failed| SendRefused::CannotCopy {
                id: socket.id,
                written,
                uncopied: failed.len,
            })?;
        socket.queue.push_direct_rest(rest, offset, to);
        let id = socket.id;
        drop(socket);
        self.commands.push(Command::EnableWrite { id });
        Ok(())
    }

    pub(crate) fn udp(&self, opaque: usize, host: Option<&CStr>, port: i32) -> Option<SocketId> {
        if port != 0 || host.is_some() {
            self.udp_bound(opaque, host, port)
        } else {
            match os::udp_socket(libc::AF_INET) {
                Ok(fd) => self.open_udp(opaque, fd, UdpFamily::V4, None),
                Err(_) => None,
            }
        }
    }

    pub(crate) fn udp_listen(
        &self,
        opaque: usize,
        host: Option<&CStr>,
        port: i32,
    ) -> Option<SocketId> {
        if port == 0 {
            return None;
        }
        self.udp_bound(opaque, host, port)
    }

    fn udp_bound(&self, opaque: usize, host: Option<&CStr>, port: i32) -> Option<SocketId> {
        match os::bind_address(host, port, libc::SOCK_DGRAM) {
            Ok((fd, addr)) => self.open_udp(opaque, fd, UdpFamily::of(&addr), None),
            Err(_) => None,
        }
    }

    pub(crate) fn udp_dial(
        &self,
        opaque: usize,
        host: Option<&CStr>,
        port: i32,
    ) -> Option<SocketId> {
        let Ok(addrs) = os::resolve(host, port, libc::SOCK_DGRAM) else {
            return None;
        };
        let dest = addrs[0];
        let Ok(fd) = os::udp_socket(dest.family()) else {
            return None;
        };
        self.open_udp(
            opaque,
            fd,
            UdpFamily::of(&dest),
            Some(UdpAddress::from_sockaddr(&dest)),
        )
    }

    fn open_udp(
        &self,
        opaque: usize,
        fd: std::os::fd::OwnedFd,
        family: UdpFamily,
        dest: Option<UdpAddress>,
    ) -> Option<SocketId> {
        let id = self.table.reserve(|id| {
            let mut socket = Socket::reserved(id, opaque, Transport::Udp(family));
            socket.udp_dest = dest;
            socket
        })?;
        self.commands.push(Command::OpenUdp { id, fd });
        Some(id)
    }

    /// Sets the default destination of UDP socket `id`; false for an invalid id or a failed
    /// lookup (a family mismatch is reported later, by the poll thread).
    pub(crate) fn udp_connect(&self, id: SocketId, host: Option<&CStr>, port: i32) -> bool {
        {
            let Some(mut socket) = self.table.lock(id) else {
                return false;
            };
            // No direct write may use the old destination from here on.
            socket.udp_connecting += 1;
        }
        let addr = os::resolve(host, port, libc::SOCK_DGRAM)
            .ok()
            .map(|addrs| UdpAddress::from_sockaddr(&addrs[0]));
        let Some(addr) = addr else {
            if let Some(mut socket) = self.table.lock(id) {
                socket.udp_connecting -= 1;
            }
            return false;
        };
        self.commands.push(Command::SetUdpDest { id, addr });
        true
    }

    /// Visits a snapshot of every listed socket, each taken under its lock; `visit` runs
    /// with no lock held (it may allocate).
    pub(crate) fn for_each_info(&self, visit: impl FnMut(InfoEntry)) {
        self.table.for_each_snapshot(info::describe, visit);
    }
}

/// Why a send was refused: the call answers -1, and `ffi` logs what deserves a line (as
/// upstream, a stale id or a closing socket is refused silently).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendRefused {
    /// Stale, never issued, or closed.
    InvalidId,
    /// Closing: its owner closed it (high priority sends).
    Closing,
    /// A UDP socket with no default destination.
    NoDestination { id: SocketId },
    /// A UDP address of the socket's other family.
    WrongFamily,
    /// After socket_server_exit; `first` for the first such refusal of the server.
    Exiting { first: bool },
    /// Bytes the caller keeps could not be copied; `written` of them went out directly
    /// before, `uncopied` were left.
    CannotCopy {
        id: SocketId,
        written: usize,
        uncopied: usize,
    },
}

impl SendRefused {
    fn copy(id: SocketId, failed: CopyFailed) -> SendRefused {
        SendRefused::CannotCopy {
            id,
            written: 0,
            uncopied: failed.len,
        }
    }
}

impl Drop for Server {
    /// socket_server_release: close every socket and release every queued buffer. Commands
    /// never applied release what they carry as they drop.
    fn drop(&mut self) {
        self.table
            .for_each(|socket| socket.remove().close_fd(&self.poller));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use super::*;
    use crate::socket::{Descriptor, Phase};

    /// A connected stream socket of `server` and the other end of its socketpair.
    fn connected(server: &Server) -> (SocketId, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        let id = server
            .table
            .reserve(|id| Socket::reserved(id, 7, Transport::Tcp))
            .unwrap();
        let mut socket = server.table.lock(id).unwrap();
        socket.descriptor = Descriptor::Owned(ours.into());
        socket.phase = Phase::Connected;
        socket.is_socket = true;
        drop(socket);
        (id, peer)
    }

    fn queued_send_bytes(server: &Server) -> Vec<Vec<u8>> {
        let mut commands = VecDeque::new();
        server.commands.take_all(&mut commands);
        commands
            .iter()
            .filter_map(|command| match command {
                Command::Send { buf, .. } => Some(buf.bytes().to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_send_to_an_idle_socket_whose_lock_is_taken_goes_to_the_poll_thread_and_nothing_overtakes_it()
     {
        let server = Server::new(0).unwrap();
        let (id, mut peer) = connected(&server);
        let held = server.table.lock(id).unwrap();
        assert_eq!(
            server.send(id, Outgoing::Borrowed(b"one"), Priority::High),
            Ok(())
        );
        drop(held);
        // The lock is free now, but "one" is still on its way: no direct write.
        assert_eq!(
            server.send(id, Outgoing::Borrowed(b"two"), Priority::High),
            Ok(())
        );
        let mut buf = [0u8; 8];
        assert!(peer.read(&mut buf).is_err(), "nothing was written directly");
        assert_eq!(
            queued_send_bytes(&server),
            [b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(server.table.lock(id).unwrap().queued_sends(), 2);
    }

    #[test]
    fn a_closing_socket_refuses_high_priority_sends_even_when_its_lock_is_taken() {
        let server = Server::new(0).unwrap();
        let (id, _peer) = connected(&server);
        let mut socket = server.table.lock(id).unwrap();
        socket.closing = true;
        socket.refuse_high_priority_sends();
        assert_eq!(
            server.send(id, Outgoing::Borrowed(b"x"), Priority::High),
            Err(SendRefused::Closing)
        );
        assert_eq!(
            server.send(id, Outgoing::Borrowed(b"y"), Priority::Low),
            Ok(())
        );
        drop(socket);
        assert_eq!(queued_send_bytes(&server), [b"y".to_vec()]);
    }

    #[test]
    fn a_send_to_a_congested_socket_waits_for_the_lock_and_appends() {
        let server = Server::new(0).unwrap();
        let (id, _peer) = connected(&server);
        server
            .table
            .lock(id)
            .unwrap()
            .queue
            .push_copy(Priority::High, b"queued")
            .unwrap();
        assert!(server.table.congested(id));
        let server = &server;
        std::thread::scope(|scope| {
            let (locked, is_locked) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let socket = server.table.lock(id).unwrap();
                locked.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                drop(socket);
            });
            is_locked.recv().unwrap();
            assert_eq!(
                server.send(id, Outgoing::Borrowed(b"more"), Priority::High),
                Ok(())
            );
        });
        assert!(
            queued_send_bytes(server).is_empty(),
            "appended, not sent as a command"
        );
        let socket = server.table.lock(id).unwrap();
        assert_eq!(socket.queued_sends(), 0);
        assert!(!socket.queue.is_empty());
    }
}

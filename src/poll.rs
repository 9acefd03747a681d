//! The poll thread's side: one call of `socket_server_poll` applies pending commands first,
//! then reports socket events, until it has one result. Only this thread changes a socket's
//! phase, its epoll registration or its fd.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::close::{self, OwnerClose, ReadEof, WriteError};
use crate::command::Command;
use crate::os::heap::CBuf;
use crate::os::log::log;
use crate::os::{self, Epoll, Interest, Readiness};
use crate::report::{Report, ReportData, text};
use crate::send_buffer::SendBuffer;
use crate::server::Server;
use crate::slots::Entry;
use crate::socket::{self, Phase, Socket, Stats, Transport};
use crate::udp_address::{UdpAddress, UdpFamily};
use crate::write_queue::{DatagramSent, FlushEnd, Priority};

/// The epoll token of the command queue's wake-up fd; socket tokens are their (positive) ids.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;
const MAX_EVENTS: usize = 64;
const MAX_DATAGRAM: usize = 65535;
/// How often a listener suspended at the descriptor limit checks whether one freed up.
const RETRY_SPARE_FD: Duration = Duration::from_millis(100);

fn token(id: i32) -> u64 {
    id as u64
}

/// State only the poll thread touches.
pub(crate) struct PollState {
    commands: VecDeque<Command>,
    events: Vec<Readiness>,
    next_event: usize,
    raw_events: Vec<libc::epoll_event>,
    datagram: Vec<u8>,
    /// Sockets this thread can read without their lock, by id.
    readers: HashMap<i32, Reader>,
    /// Given up to shed a connection when accept hits the descriptor limit.
    spare_fd: Option<OwnedFd>,
    /// Listeners that stopped accepting because accept hit the descriptor limit with no
    /// spare to shed the connection with; they resume once the spare is taken back.
    suspended_listeners: Vec<i32>,
}

/// What reading a socket needs, kept between its events so a read takes no lock: a worker
/// holds the socket's lock across a direct write or sendto, and the poll thread would
/// otherwise sleep on it with every read. Only this thread changes these fields, so an entry
/// stays true until this thread applies a command to the socket or takes its lock for anything
/// else; both drop the entry first.
enum Reader {
    Stream(StreamReader),
    Datagram(DatagramReader),
}

struct DatagramReader {
    opaque: usize,
    fd: RawFd,
    family: Option<UdpFamily>,
    stats: Arc<Stats>,
}

impl DatagramReader {
    /// The reader of a UDP socket that is reading.
    fn of(socket: &Socket) -> Option<DatagramReader> {
        (socket.is_udp() && socket.interest.read && socket.phase == Phase::Connected).then(|| {
            DatagramReader {
                opaque: socket.opaque,
                fd: socket.fd,
                family: socket.udp_family(),
                stats: Arc::clone(&socket.stats),
            }
        })
    }
}

struct StreamReader {
    fd: RawFd,
    opaque: usize,
    read_size: usize,
    stats: Arc<Stats>,
}

impl StreamReader {
    /// The reader of a socket whose reads need nothing else: a started, connected stream (or
    /// bound descriptor) still reading.
    fn of(socket: &Socket) -> Option<StreamReader> {
        let readable = matches!(
            socket.phase,
            Phase::Connected | Phase::HalfClosedWrite | Phase::Bound
        );
        (readable && socket.interest.read && !socket.is_udp()).then(|| StreamReader {
            fd: socket.fd,
            opaque: socket.opaque,
            read_size: socket.read_size,
            stats: Arc::clone(&socket.stats),
        })
    }
}

/// One read(2) of a stream socket.
enum StreamRead {
    Data(CBuf, usize),
    /// Nothing there now (or interrupted).
    Nothing,
    Eof,
    Failed(io::Error),
}

fn read_once(id: i32, fd: RawFd, size: usize) -> StreamRead {
    let Some(mut buf) = CBuf::uninit(size) else {
        log!("socket-server error: out of memory reading socket {id}.");
        return StreamRead::Nothing;
    };
    match os::read(fd, buf.spare()) {
        Ok(0) => StreamRead::Eof,
        Ok(n) => StreamRead::Data(buf, n),
        Err(err) if os::try_again(&err) => StreamRead::Nothing,
        Err(err) => StreamRead::Failed(err),
    }
}

impl PollState {
    pub(crate) fn new() -> PollState {
        PollState {
            commands: VecDeque::new(),
            events: Vec::with_capacity(MAX_EVENTS),
            next_event: 0,
            raw_events: Vec::with_capacity(MAX_EVENTS),
            datagram: Vec::new(),
            readers: HashMap::new(),
            spare_fd: os::spare_fd(),
            suspended_listeners: Vec::new(),
        }
    }
}

/// What reading a socket produced.
enum ReadOutcome {
    /// A result; `again`: the buffer filled, read the same socket before other events.
    Report { report: Report, again: bool },
    /// The socket closed or failed (with or without a result); its event is done.
    Ended(Option<Report>),
    /// Nothing to report.
    Nothing,
}

/// What flushing a socket's queue asks for.
enum AfterFlush {
    Keep(Option<Report>),
    CloseSilently,
}

/// Closes a socket's fd. A descriptor we created is ours alone, so closing it also ends its
/// epoll registration. A bound descriptor may share its file with others (stdin and stdout),
/// so it leaves epoll explicitly, and stays open unless its phase moved on, as upstream does.
pub(crate) fn close_fd(epoll: &Epoll, socket: &Socket) {
    if !socket.owns_fd && socket.registered {
        let _ = epoll.delete(socket.fd);
    }
    if socket.fd >= 0 && socket.phase != Phase::Bound {
        os::close(socket.fd);
    }
}

impl Server {
    /// Blocks until one result is ready. `waited` is set when it had to wait for events.
    pub(crate) fn poll(&self, waited: &mut bool) -> Report {
        let mut state = self.poll_state.lock();
        let st = &mut *state;
        loop {
            if st.commands.is_empty() {
                self.commands.take_all(&mut st.commands);
            }
            if let Some(command) = st.commands.pop_front() {
                if let Some(id) = command.id() {
                    st.readers.remove(&id);
                    // The owner decides about reading from now on.
                    if matches!(command, Command::Pause { .. } | Command::Start { .. }) {
                        st.suspended_listeners.retain(|&listener| listener != id);
                    }
                }
                if let Some(report) = self.apply(command) {
                    return report;
                }
                continue;
            }
            if st.next_event < st.events.len() {
                if let Some(report) = self.handle_event(st) {
                    return report;
                }
                continue;
            }
            self.wait(st, waited);
        }
    }

    fn wait(&self, st: &mut PollState, waited: &mut bool) {
        st.events.clear();
        st.next_event = 0;
        if !self.commands.about_to_sleep() {
            return;
        }
        // A suspended listener waits for a descriptor to free up, which no event announces.
        let timeout = (!st.suspended_listeners.is_empty()).then_some(RETRY_SPARE_FD);
        let result = self.epoll.wait(&mut st.raw_events, &mut st.events, timeout);
        self.commands.woke_up();
        if !st.suspended_listeners.is_empty() {
            self.resume_listeners(st);
        }
        *waited = true;
        if let Err(err) = result
            && err.kind() != io::ErrorKind::Interrupted
        {
            log!("socket-server error: {}", os::error_text(&err));
        }
    }

    /// Takes the spare descriptor back if one is free now, and lets the listeners it was
    /// missing for accept again.
    fn resume_listeners(&self, st: &mut PollState) {
        if st.spare_fd.is_none() {
            st.spare_fd = os::spare_fd();
        }
        if st.spare_fd.is_none() {
            return;
        }
        for id in std::mem::take(&mut st.suspended_listeners) {
            st.readers.remove(&id);
            if let Some(mut listener) = self.table.lock(id)
                && listener.phase == Phase::Listening
            {
                let _ = self.set_reading(&mut listener, true);
            }
        }
    }

    fn force_close(&self, socket: Entry<'_, Socket>) {
        let socket = socket.remove();
        close_fd(&self.epoll, &socket);
    }

    fn set_interest(&self, socket: &mut Socket, interest: Interest) -> io::Result<()> {
        if socket.interest == interest {
            return Ok(());
        }
        if !socket.registered {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        socket.interest = interest;
        self.epoll.modify(socket.fd, token(socket.id), interest)
    }

    fn set_reading(&self, socket: &mut Socket, read: bool) -> io::Result<()> {
        let interest = Interest {
            read,
            ..socket.interest
        };
        self.set_interest(socket, interest)
    }

    fn set_writing(&self, socket: &mut Socket, write: bool) -> io::Result<()> {
        let interest = Interest {
            write,
            ..socket.interest
        };
        self.set_interest(socket, interest)
    }

    /// Stops reading for good: the peer's FIN arrived (`peer_done`), or the owner closed with
    /// data queued, in which case the read side is shut too.
    fn close_read(&self, socket: &mut Socket, peer_done: bool) {
        socket.enter_half_closed(Phase::HalfClosedRead);
        let _ = self.set_reading(socket, false);
        if !peer_done {
            let _ = os::shutdown(socket.fd, libc::SHUT_RD);
        }
    }

    // ---- commands -------------------------------------------------------------------------

    fn apply(&self, command: Command) -> Option<Report> {
        match command {
            Command::Listen { id, fd, addr } => {
                let mut socket = self.table.lock(id)?;
                let opaque = socket.opaque;
                if self
                    .epoll
                    .add(fd.as_raw_fd(), token(id), Interest::default())
                    .is_err()
                {
                    socket.remove();
                    return Some(Report::error(id, opaque, text::NO_SLOT));
                }
                socket.fd = fd.into_raw_fd();
                socket.registered = true;
                socket.phase = Phase::PendingListen;
                socket.name_addr = Some(addr);
                Some(Report::open(
                    id,
                    opaque,
                    i32::from(addr.port()),
                    ReportData::Text(addr.ip_text()),
                ))
            }
            Command::Connect { id, host, port } => self.apply_connect(id, &host, port),
            Command::Bind { id, fd } => {
                let mut socket = self.table.lock(id)?;
                let opaque = socket.opaque;
                let interest = Interest {
                    read: true,
                    write: false,
                };
                if self.epoll.add(fd, token(id), interest).is_err() {
                    socket.remove();
                    return Some(Report::error(id, opaque, text::NO_SLOT));
                }
                os::set_nonblocking(fd);
                socket.owns_fd = false;
                socket.is_socket = os::is_socket(fd);
                socket.fd = fd;
                socket.registered = true;
                socket.interest = interest;
                socket.phase = Phase::Bound;
                Some(Report::open_static(id, opaque, text::BINDING))
            }
            Command::Start { id, opaque } => self.apply_start(id, opaque),
            Command::Pause { id } => {
                let mut socket = self.table.lock(id)?;
                if socket.phase != Phase::Reserved && self.set_reading(&mut socket, false).is_err()
                {
                    return Some(Report::error(id, socket.opaque, text::ENABLE_READ_FAILED));
                }
                None
            }
            Command::Close { id, shutdown } => self.apply_close(id, shutdown),
            Command::Send {
                id,
                buf,
                priority,
                to,
            } => self.apply_send(id, buf, priority, to),
            Command::EnableWrite { id } => {
                let mut socket = self.table.lock(id)?;
                if !socket.queue.is_empty() && self.set_writing(&mut socket, true).is_err() {
                    return Some(Report::error(id, socket.opaque, text::ENABLE_WRITE_FAILED));
                }
                None
            }
            Command::SetUdpDest { id, addr } => {
                let mut socket = self.table.lock(id)?;
                socket.udp_connecting = socket.udp_connecting.saturating_sub(1);
                if socket.udp_family() != Some(addr.family()) {
                    return Some(Report::error(id, socket.opaque, text::PROTOCOL_MISMATCH));
                }
                socket.udp_dest = Some(addr);
                None
            }
            Command::Warning { id, warning } => {
                let mut socket = self.table.lock(id)?;
                let opaque = socket.opaque;
                socket
                    .queue
                    .confirm_warning(&warning)
                    .then(|| Report::warning(id, opaque, warning.kib))
            }
            Command::OpenUdp { id, fd } => {
                let mut socket = self.table.lock(id)?;
                let interest = Interest {
                    read: true,
                    write: !socket.queue.is_empty(),
                };
                if self.epoll.add(fd.as_raw_fd(), token(id), interest).is_err() {
                    socket.remove();
                    return None;
                }
                socket.fd = fd.into_raw_fd();
                socket.registered = true;
                socket.interest = interest;
                socket.phase = Phase::Connected;
                None
            }
            Command::NoDelay { id } => {
                let socket = self.table.lock(id)?;
                if socket.transport == Transport::Tcp && socket.fd >= 0 {
                    os::set_nodelay(socket.fd);
                }
                None
            }
            Command::Exit => Some(Report::exit()),
        }
    }

    fn apply_connect(&self, id: i32, host: &std::ffi::CStr, port: i32) -> Option<Report> {
        // Resolve and connect without holding the socket's lock: a lookup can take a while.
        let opaque = self.table.lock(id)?.opaque;
        let fail = |text: String| {
            if let Some(socket) = self.table.lock(id) {
                socket.remove();
            }
            Some(Report::error_text(id, opaque, text))
        };
        let addrs = match os::resolve(Some(host), port, libc::SOCK_STREAM) {
            Ok(addrs) => addrs,
            Err(err) => return fail(err.text),
        };
        let connecting = match os::connect_any(&addrs) {
            Ok(connecting) => connecting,
            Err(err) => return fail(os::error_text(&err)),
        };
        let mut socket = self.table.lock(id)?;
        let interest = Interest {
            read: true,
            write: !connecting.connected || !socket.queue.is_empty(),
        };
        if self
            .epoll
            .add(connecting.fd.as_raw_fd(), token(id), interest)
            .is_err()
        {
            socket.remove();
            return Some(Report::error(id, opaque, text::NO_SLOT));
        }
        socket.fd = connecting.fd.into_raw_fd();
        socket.name_addr = Some(connecting.peer);
        socket.registered = true;
        socket.interest = interest;
        if connecting.connected {
            socket.phase = Phase::Connected;
            Some(Report::open(
                id,
                opaque,
                0,
                ReportData::Text(connecting.peer.ip_text()),
            ))
        } else {
            socket.phase = Phase::Connecting;
            None
        }
    }

    fn apply_start(&self, id: i32, opaque: usize) -> Option<Report> {
        let Some(mut socket) = self.table.lock(id) else {
            return Some(Report::error(id, opaque, text::INVALID_SOCKET));
        };
        if socket.phase == Phase::HalfClosedRead {
            // The socket may be on its way to its owner's CLOSE; starting it is an error.
            return Some(Report::error(id, opaque, text::SOCKET_CLOSED));
        }
        if socket.phase == Phase::Reserved || self.set_reading(&mut socket, true).is_err() {
            return Some(Report::error(id, opaque, text::ENABLE_READ_FAILED));
        }
        match socket.phase {
            Phase::PendingAccept | Phase::PendingListen => {
                socket.phase = if socket.phase == Phase::PendingAccept {
                    Phase::Connected
                } else {
                    Phase::Listening
                };
                socket.opaque = opaque;
                Some(Report::open_static(id, opaque, text::START))
            }
            Phase::Connected => {
                socket.opaque = opaque;
                Some(Report::open_static(id, opaque, text::TRANSFER))
            }
            _ => None,
        }
    }

    fn apply_close(&self, id: i32, shutdown: bool) -> Option<Report> {
        let mut socket = self.table.lock(id)?;
        let opaque = socket.opaque;
        if socket.phase == Phase::Reserved {
            // Closed before the poll thread set it up: the creating command will find nothing.
            socket.remove();
            return Some(Report::close(id, opaque));
        }
        match close::on_owner_close(socket.phase, shutdown, socket.nothing_to_send()) {
            OwnerClose::Now { report } => {
                self.force_close(socket);
                report.then(|| Report::close(id, opaque))
            }
            OwnerClose::AfterFlush { stop_reading } => {
                socket.closing = true;
                if stop_reading {
                    self.close_read(&mut socket, false);
                    return Some(Report::close(id, opaque));
                }
                None
            }
        }
    }

    fn apply_send(
        &self,
        id: i32,
        buf: SendBuffer,
        priority: Priority,
        to: Option<UdpAddress>,
    ) -> Option<Report> {
        let mut socket = self.table.lock(id)?;
        socket.pending_sends = socket.pending_sends.saturating_sub(1);
        if socket.is_listener() {
            log!("socket-server error: write to listen fd {id}.");
            return None;
        }
        if !socket.accepts_data() {
            drop(buf);
            if socket.closing && socket.nothing_to_send() {
                // The last send a closing socket waited for: now it can go.
                self.force_close(socket);
            }
            return None;
        }
        let was_empty = socket.queue.is_empty();
        match socket.transport {
            Transport::Tcp => {
                socket.queue.push_stream(priority, buf);
                // A bound descriptor may never be writable (a pipe's read end): it waits for
                // epoll to say it is, as upstream does, instead of failing a write now.
                if was_empty && socket.writable_now() && socket.phase != Phase::Bound {
                    match self.flush_queue(&mut socket) {
                        AfterFlush::Keep(Some(report)) => return Some(report),
                        AfterFlush::Keep(None) => {}
                        AfterFlush::CloseSilently => {
                            self.force_close(socket);
                            return None;
                        }
                    }
                }
            }
            Transport::Udp(family) => {
                let Some(dest) = to.or(socket.udp_dest).filter(|d| d.family() == family) else {
                    log!("socket-server: udp socket ({id}) error: type mismatch.");
                    return None;
                };
                if was_empty
                    && socket.writable_now()
                    && let Ok(n) = os::send_to(socket.fd, buf.bytes(), &dest.to_sockaddr())
                {
                    let now = self.now();
                    socket.count_write(n, now);
                    return None;
                }
                socket.queue.push_datagram(priority, buf, Some(dest));
            }
        }
        if !socket.queue.is_empty()
            && socket.registered
            && self.set_writing(&mut socket, true).is_err()
        {
            return Some(Report::error(id, socket.opaque, text::ENABLE_WRITE_FAILED));
        }
        let opaque = socket.opaque;
        let warning = socket.queue.check_warning()?;
        socket
            .queue
            .confirm_warning(&warning)
            .then(|| Report::warning(id, opaque, warning.kib))
    }

    // ---- events ---------------------------------------------------------------------------

    fn handle_event(&self, st: &mut PollState) -> Option<Report> {
        let index = st.next_event;
        let event = st.events[index];
        if event.token == WAKE_TOKEN {
            st.next_event += 1;
            self.commands.clear_wake();
            return None;
        }
        let id = event.token as i32;
        if event.read
            && let Some(reader) = st.readers.get_mut(&id)
        {
            let reader = match reader {
                Reader::Stream(reader) => reader,
                Reader::Datagram(_) => return self.drain_datagrams(st, index, event, id),
            };
            let outcome = match read_once(id, reader.fd, reader.read_size) {
                StreamRead::Data(buf, n) => {
                    reader.stats.count_read(n, self.now());
                    ReadOutcome::Report {
                        again: socket::adapt_read_size(&mut reader.read_size, n),
                        report: Report::data(id, reader.opaque, n, buf),
                    }
                }
                StreamRead::Nothing => ReadOutcome::Nothing,
                ended => {
                    st.readers.remove(&id);
                    match self.table.lock(id) {
                        Some(socket) => self.stream_read_result(socket, ended),
                        None => ReadOutcome::Ended(None),
                    }
                }
            };
            return self.after_read(st, index, event, outcome);
        }
        // A token names an id, so an event for a closed socket finds nothing, even when a
        // new socket reuses the slot.
        let Some(mut socket) = self.table.lock(id) else {
            st.next_event += 1;
            return None;
        };
        // With the lock taken, anything about the socket may change: read with it from now on.
        if let Some(Reader::Stream(reader)) = st.readers.remove(&id) {
            socket.read_size = reader.read_size;
        }
        match socket.phase {
            Phase::Reserved => {
                st.next_event += 1;
                return None;
            }
            Phase::Connecting => {
                st.next_event += 1;
                return Some(self.finish_connect(socket));
            }
            Phase::Listening if event.read && socket.interest.read => {
                return self.accept(st, socket);
            }
            _ => {}
        }
        if event.read
            && let Some(reader) = DatagramReader::of(&socket)
        {
            drop(socket);
            st.readers.insert(id, Reader::Datagram(reader));
            return self.drain_datagrams(st, index, event, id);
        }
        if event.read
            && let Some(reader) = StreamReader::of(&socket)
        {
            drop(socket);
            st.readers.insert(id, Reader::Stream(reader));
            return self.handle_event(st);
        }
        if event.read && socket.interest.read {
            let outcome = self.read_stream(socket);
            return self.after_read(st, index, event, outcome);
        }
        st.next_event += 1;
        if event.write {
            return match self.flush_queue(&mut socket) {
                AfterFlush::Keep(report) => report,
                AfterFlush::CloseSilently => {
                    self.force_close(socket);
                    None
                }
            };
        }
        if event.error {
            let message = match os::take_socket_error(socket.fd) {
                Ok(0) => return Some(Report::error(socket.id, socket.opaque, text::UNKNOWN_ERROR)),
                Ok(code) => os::strerror(code),
                Err(err) => os::error_text(&err),
            };
            return Some(Report::error_text(socket.id, socket.opaque, message));
        }
        if event.hangup {
            let (id, opaque) = (socket.id, socket.opaque);
            let report = close::hangup_reports_close(socket.phase);
            self.force_close(socket);
            return report.then(|| Report::close(id, opaque));
        }
        None
    }

    /// The read half of an event is done: handle its write half next, or move on.
    fn read_done(&self, st: &mut PollState, index: usize, event: Readiness) {
        if event.write {
            st.events[index].read = false;
        } else {
            st.next_event += 1;
        }
    }

    fn finish_connect(&self, mut socket: Entry<'_, Socket>) -> Report {
        let (id, opaque) = (socket.id, socket.opaque);
        let failure = match os::take_socket_error(socket.fd) {
            Ok(0) => None,
            Ok(code) => Some(os::strerror(code)),
            Err(err) => Some(os::error_text(&err)),
        };
        if let Some(message) = failure {
            self.force_close(socket);
            return Report::error_text(id, opaque, message);
        }
        socket.phase = Phase::Connected;
        if socket.nothing_to_send() && self.set_writing(&mut socket, false).is_err() {
            self.force_close(socket);
            return Report::error(id, opaque, text::DISABLE_WRITE_FAILED);
        }
        let peer = socket
            .name_addr
            .map_or(ReportData::None, |addr| ReportData::Text(addr.ip_text()));
        Report::open(id, opaque, 0, peer)
    }

    fn accept(&self, st: &mut PollState, mut listener: Entry<'_, Socket>) -> Option<Report> {
        let (listener_id, opaque) = (listener.id, listener.opaque);
        let (client, peer) = match os::accept(listener.fd) {
            Ok(accepted) => accepted,
            Err(err) if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                st.next_event += 1;
                if st.spare_fd.is_none() {
                    st.spare_fd = os::spare_fd();
                }
                if let Some(spare) = st.spare_fd.take() {
                    // Free the spare descriptor to accept and drop the connection, so the
                    // client is not left waiting, then take the spare back.
                    drop(spare);
                    drop(os::accept(listener.fd));
                    st.spare_fd = os::spare_fd();
                } else {
                    // Nothing to shed it with: the connection stays pending, and accepting
                    // again would fail again at once. Stop until a descriptor frees up.
                    let _ = self.set_reading(&mut listener, false);
                    st.suspended_listeners.push(listener_id);
                }
                return Some(Report::error_text(
                    listener_id,
                    opaque,
                    os::error_text(&err),
                ));
            }
            Err(_) => {
                st.next_event += 1;
                return None;
            }
        };
        let Some(new_id) = self
            .table
            .reserve(|id| Socket::reserved(id, opaque, Transport::Tcp))
        else {
            st.next_event += 1;
            return None;
        };
        let mut socket = self.table.lock(new_id)?;
        if self
            .epoll
            .add(client.as_raw_fd(), token(new_id), Interest::default())
            .is_err()
        {
            socket.remove();
            st.next_event += 1;
            return None;
        }
        os::set_keepalive(client.as_raw_fd());
        socket.fd = client.into_raw_fd();
        socket.registered = true;
        socket.phase = Phase::PendingAccept;
        socket.name_addr = peer;
        drop(socket);
        let now = self.now();
        listener.count_read(1, now);
        // The event stays current: more connections may be waiting.
        Some(Report::accept(
            listener_id,
            opaque,
            new_id,
            peer.map(|p| p.text_with_port()),
        ))
    }

    /// Reads a socket that has no reader yet (the lock is dropped across the read itself).
    fn read_stream(&self, socket: Entry<'_, Socket>) -> ReadOutcome {
        let (id, fd, size) = (socket.id, socket.fd, socket.read_size);
        drop(socket);
        let read = read_once(id, fd, size);
        match self.table.lock(id) {
            Some(socket) => self.stream_read_result(socket, read),
            None => ReadOutcome::Nothing,
        }
    }

    /// What a read of a socket, now locked again, comes to.
    fn stream_read_result(&self, mut socket: Entry<'_, Socket>, read: StreamRead) -> ReadOutcome {
        let (id, opaque) = (socket.id, socket.opaque);
        match read {
            StreamRead::Nothing => ReadOutcome::Nothing,
            StreamRead::Failed(err) => {
                ReadOutcome::Ended(Some(Report::error_text(id, opaque, os::error_text(&err))))
            }
            StreamRead::Eof => {
                match close::on_read_eof(socket.phase, socket.closing, socket.nothing_to_send()) {
                    ReadEof::Ignore => ReadOutcome::Nothing,
                    ReadEof::CloseSilently => {
                        self.force_close(socket);
                        ReadOutcome::Ended(None)
                    }
                    ReadEof::HalfCloseAndReport => {
                        self.close_read(&mut socket, true);
                        ReadOutcome::Ended(Some(Report::close(id, opaque)))
                    }
                    ReadEof::CloseAndReport => {
                        self.force_close(socket);
                        ReadOutcome::Ended(Some(Report::close(id, opaque)))
                    }
                }
            }
            StreamRead::Data(buf, n) => {
                if socket.phase == Phase::HalfClosedRead {
                    return ReadOutcome::Nothing;
                }
                let now = self.now();
                socket.count_read(n, now);
                let again = socket.adapt_read_size(n);
                ReadOutcome::Report {
                    report: Report::data(id, opaque, n, buf),
                    again,
                }
            }
        }
    }

    /// Where the event list goes after a read.
    fn after_read(
        &self,
        st: &mut PollState,
        index: usize,
        event: Readiness,
        outcome: ReadOutcome,
    ) -> Option<Report> {
        match outcome {
            ReadOutcome::Report { report, again } => {
                if !again {
                    self.read_done(st, index, event);
                }
                Some(report)
            }
            ReadOutcome::Ended(report) => {
                st.next_event += 1;
                report
            }
            ReadOutcome::Nothing => {
                self.read_done(st, index, event);
                None
            }
        }
    }

    /// Reads one datagram of socket `id`, whose reader is in `st.readers`; the event stays
    /// current while datagrams keep coming.
    fn drain_datagrams(
        &self,
        st: &mut PollState,
        index: usize,
        event: Readiness,
        id: i32,
    ) -> Option<Report> {
        let Some(Reader::Datagram(reader)) = st.readers.get(&id) else {
            debug_assert!(false, "drain_datagrams without a datagram reader");
            st.next_event += 1;
            return None;
        };
        let opaque = reader.opaque;
        if st.datagram.is_empty() {
            st.datagram = vec![0; MAX_DATAGRAM];
        }
        let received = os::recv_from(reader.fd, &mut st.datagram);
        let (n, from) = match received {
            Ok(received) => received,
            Err(err) if os::try_again(&err) => {
                self.read_done(st, index, event);
                return None;
            }
            Err(err) => {
                st.next_event += 1;
                st.readers.remove(&id);
                if let Some(socket) = self.table.lock(id) {
                    self.force_close(socket);
                }
                return Some(Report::error_text(id, opaque, os::error_text(&err)));
            }
        };
        reader.stats.count_read(n, self.now());
        let Some(from) = from.filter(|f| Some(UdpFamily::of(f)) == reader.family) else {
            // A datagram of the other family is dropped; reading resumes with the next event.
            self.read_done(st, index, event);
            return None;
        };
        let address = UdpAddress::from_sockaddr(&from);
        let Some(buf) = CBuf::from_slices(&[&st.datagram[..n], address.as_bytes()]) else {
            log!("socket-server error: out of memory reading udp socket {id}.");
            return None;
        };
        Some(Report::udp(id, opaque, n, buf))
    }

    /// Writes what is queued. Keeps EPOLLOUT while data remains, turns it off when drained.
    fn flush_queue(&self, socket: &mut Socket) -> AfterFlush {
        if !socket.writable_now() {
            return AfterFlush::Keep(None);
        }
        let (id, fd) = (socket.id, socket.fd);
        let (written, end) = match socket.transport {
            Transport::Tcp => {
                let is_socket = socket.is_socket;
                socket
                    .queue
                    .flush_stream(|slices| os::write_vectored(fd, slices, is_socket))
            }
            Transport::Udp(family) => {
                let default_dest = socket.udp_dest;
                socket.queue.flush_datagrams(|bytes, to| {
                    send_datagram(id, fd, family, bytes, to.or(default_dest.as_ref()))
                })
            }
        };
        let now = self.now();
        socket.count_write(written, now);
        match end {
            FlushEnd::Blocked => {
                if self.set_writing(socket, true).is_err() {
                    return AfterFlush::Keep(Some(Report::error(
                        id,
                        socket.opaque,
                        text::ENABLE_WRITE_FAILED,
                    )));
                }
                AfterFlush::Keep(None)
            }
            FlushEnd::Drained => {
                if close::close_when_drained(socket.closing) {
                    return AfterFlush::CloseSilently;
                }
                if self.set_writing(socket, false).is_err() {
                    return AfterFlush::Keep(Some(Report::error(
                        id,
                        socket.opaque,
                        text::DISABLE_WRITE_FAILED,
                    )));
                }
                let drained = socket.queue.take_drained_warning();
                AfterFlush::Keep(drained.then(|| Report::warning(id, socket.opaque, 0)))
            }
            FlushEnd::Failed(err) => match close::on_write_error(socket.phase, socket.closing) {
                WriteError::CloseSilently => AfterFlush::CloseSilently,
                WriteError::AlreadyReported => AfterFlush::Keep(None),
                WriteError::ShutWriteAndReport => {
                    socket.enter_half_closed(Phase::HalfClosedWrite);
                    // Upstream reports the errno left after it shuts the write side: on a
                    // reset connection that shutdown fails too, and its error is the text.
                    let err = os::shutdown(fd, libc::SHUT_WR).err().unwrap_or(err);
                    socket.queue.clear();
                    let _ = self.set_writing(socket, false);
                    AfterFlush::Keep(Some(Report::error_text(
                        id,
                        socket.opaque,
                        os::error_text(&err),
                    )))
                }
            },
        }
    }
}

/// Sends one queued datagram to its destination, logging (as upstream) what it drops.
fn send_datagram(
    id: i32,
    fd: i32,
    family: UdpFamily,
    bytes: &[u8],
    to: Option<&UdpAddress>,
) -> DatagramSent {
    let Some(to) = to.filter(|a| a.family() == family) else {
        log!("socket-server : udp ({id}) error: type mismatch.");
        return DatagramSent::Dropped;
    };
    match os::send_to(fd, bytes, &to.to_sockaddr()) {
        Ok(n) => DatagramSent::Sent(n),
        Err(err) if os::try_again(&err) => DatagramSent::Blocked,
        Err(err) => {
            log!(
                "socket-server : udp ({id}) sendto error {}.",
                os::error_text(&err)
            );
            DatagramSent::Dropped
        }
    }
}

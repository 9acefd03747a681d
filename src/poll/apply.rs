//! Applying commands from the queue, in the order each thread issued them.

use std::ffi::CStr;

use super::state::PollState;
use super::write::AfterFlush;
use crate::close::{self, OwnerClose};
use crate::command::Command;
use crate::os::log::log;
use crate::os::{self, Interest};
use crate::report::{Report, ReportData, text};
use crate::send_buffer::SendBuffer;
use crate::server::Server;
use crate::slots::SocketId;
use crate::socket::close_now;
use crate::socket::{Phase, Transport};
use crate::udp_address::UdpAddress;
use crate::write_queue::Priority;

impl Server {
    pub(super) fn apply(&self, st: &mut PollState, command: Command) -> Option<Report> {
        match command {
            Command::Listen { id, fd, addr } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                let opaque = socket.opaque;
                let registered =
                    socket.register(&self.poller, fd, Interest::default(), Phase::PendingListen);
                if registered.is_err() {
                    socket.remove();
                    return Some(Report::error(id, opaque, text::NO_SLOT));
                }
                socket.name_addr = Some(addr);
                Some(Report::open(
                    id,
                    opaque,
                    i32::from(addr.port()),
                    ReportData::Text(addr.ip_text()),
                ))
            }
            Command::Connect { id, host, port } => self.apply_connect(st, id, &host, port),
            Command::Bind { id, fd } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                let opaque = socket.opaque;
                let interest = Interest {
                    read: true,
                    write: false,
                };
                if socket.register_bound(&self.poller, fd, interest).is_err() {
                    socket.remove();
                    return Some(Report::error(id, opaque, text::NO_SLOT));
                }
                Some(Report::open_static(id, opaque, text::BINDING))
            }
            Command::Start { id, opaque } => self.apply_start(st, id, opaque),
            Command::Pause { id } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                if socket.phase != Phase::Reserved
                    && socket.set_reading(&self.poller, false).is_err()
                {
                    return Some(Report::error(id, socket.opaque, text::ENABLE_READ_FAILED));
                }
                None
            }
            Command::Close { id, shutdown } => self.apply_close(st, id, shutdown),
            Command::Send {
                id,
                buf,
                priority,
                to,
            } => self.apply_send(st, id, buf, priority, to),
            Command::EnableWrite { id } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                if !socket.queue.is_empty() && socket.set_writing(&self.poller, true).is_err() {
                    return Some(Report::error(id, socket.opaque, text::ENABLE_WRITE_FAILED));
                }
                None
            }
            Command::SetUdpDest { id, addr } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                socket.udp_connecting = socket.udp_connecting.saturating_sub(1);
                if socket.udp_family() != Some(addr.family()) {
                    return Some(Report::error(id, socket.opaque, text::PROTOCOL_MISMATCH));
                }
                socket.udp_dest = Some(addr);
                None
            }
            Command::Warning { id, warning } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                let opaque = socket.opaque;
                socket
                    .queue
                    .confirm_warning(&warning)
                    .then(|| Report::warning(id, opaque, warning.kib))
            }
            Command::OpenUdp { id, fd } => {
                let mut socket = st.readers.lock(&self.table, id)?;
                let interest = Interest {
                    read: true,
                    write: !socket.queue.is_empty(),
                };
                if socket
                    .register(&self.poller, fd, interest, Phase::Connected)
                    .is_err()
                {
                    socket.remove();
                }
                None
            }
            Command::NoDelay { id } => {
                let socket = st.readers.lock(&self.table, id)?;
                if socket.transport == Transport::Tcp && socket.fd() >= 0 {
                    os::set_nodelay(socket.fd());
                }
                None
            }
            Command::Exit => Some(Report::exit()),
        }
    }

    fn apply_connect(
        &self,
        st: &mut PollState,
        id: SocketId,
        host: &CStr,
        port: i32,
    ) -> Option<Report> {
        // Resolve and connect without holding the socket's lock: a lookup can take a while.
        let opaque = st.readers.lock(&self.table, id)?.opaque;
        let fail = |st: &mut PollState, text: String| {
            if let Some(socket) = st.readers.lock(&self.table, id) {
                socket.remove();
            }
            Some(Report::error_text(id, opaque, text))
        };
        let addrs = match os::resolve(Some(host), port, libc::SOCK_STREAM) {
            Ok(addrs) => addrs,
            Err(err) => return fail(st, err.text),
        };
        let connecting = match os::connect_any(&addrs) {
            Ok(connecting) => connecting,
            Err(err) => return fail(st, os::error_text(&err)),
        };
        let mut socket = st.readers.lock(&self.table, id)?;
        let interest = Interest {
            read: true,
            write: !connecting.connected || !socket.queue.is_empty(),
        };
        let phase = if connecting.connected {
            Phase::Connected
        } else {
            Phase::Connecting
        };
        if socket
            .register(&self.poller, connecting.fd, interest, phase)
            .is_err()
        {
            socket.remove();
            return Some(Report::error(id, opaque, text::NO_SLOT));
        }
        socket.name_addr = Some(connecting.peer);
        if connecting.connected {
            Some(Report::open(
                id,
                opaque,
                0,
                ReportData::Text(connecting.peer.ip_text()),
            ))
        } else {
            None
        }
    }

    fn apply_start(&self, st: &mut PollState, id: SocketId, opaque: usize) -> Option<Report> {
        let Some(mut socket) = st.readers.lock(&self.table, id) else {
            return Some(Report::error(id, opaque, text::INVALID_SOCKET));
        };
        if socket.phase == Phase::HalfClosedRead {
            // The socket may be on its way to its owner's CLOSE; starting it is an error.
            return Some(Report::error(id, opaque, text::SOCKET_CLOSED));
        }
        if socket.phase == Phase::Reserved || socket.set_reading(&self.poller, true).is_err() {
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

    fn apply_close(&self, st: &mut PollState, id: SocketId, shutdown: bool) -> Option<Report> {
        let mut socket = st.readers.lock(&self.table, id)?;
        let opaque = socket.opaque;
        if socket.phase == Phase::Reserved {
            // Closed before the poll thread set it up: the creating command will find nothing.
            socket.remove();
            return Some(Report::close(id, opaque));
        }
        match close::on_owner_close(socket.phase, shutdown, socket.nothing_to_send()) {
            OwnerClose::Now { report } => {
                close_now(socket, &self.poller);
                report.then(|| Report::close(id, opaque))
            }
            OwnerClose::AfterFlush { stop_reading } => {
                socket.closing = true;
                if stop_reading {
                    socket.close_read(&self.poller, false);
                    return Some(Report::close(id, opaque));
                }
                None
            }
        }
    }

    fn apply_send(
        &self,
        st: &mut PollState,
        id: SocketId,
        buf: SendBuffer,
        priority: Priority,
        to: Option<UdpAddress>,
    ) -> Option<Report> {
        let mut socket = st.readers.lock(&self.table, id)?;
        socket.pending_sends = socket.pending_sends.saturating_sub(1);
        if socket.is_listener() {
            log!("socket-server error: write to listen fd {id}.");
            return None;
        }
        if !socket.accepts_data() {
            drop(buf);
            if socket.closing && socket.nothing_to_send() {
                // The last send a closing socket waited for: now it can go.
                close_now(socket, &self.poller);
            }
            return None;
        }
        let was_empty = socket.queue.is_empty();
        match socket.transport {
            Transport::Tcp => {
                socket.queue.push_stream(priority, buf);
                // A bound descriptor may never be writable (a pipe's read end): it waits for
                // the poller to say it is, as upstream does, instead of failing a write now.
                if was_empty && socket.writable_now() && socket.phase != Phase::Bound {
                    match self.flush_queue(&mut socket) {
                        AfterFlush::Keep(Some(report)) => return Some(report),
                        AfterFlush::Keep(None) => {}
                        AfterFlush::CloseSilently => {
                            close_now(socket, &self.poller);
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
                    && let Ok(n) = os::send_to(socket.fd(), buf.bytes(), &dest.to_sockaddr())
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
            && socket.set_writing(&self.poller, true).is_err()
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
}

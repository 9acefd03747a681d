//! New connections: accepting on a listener (with the spare descriptor that sheds a
//! connection at the descriptor limit), and finishing a non-blocking connect.

use std::os::fd::AsRawFd;

use super::state::PollState;
use crate::os::{self, Interest};
use crate::report::{Report, ReportData, text};
use crate::server::Server;
use crate::slots::Entry;
use crate::socket::close_now;
use crate::socket::{Phase, Socket, Transport};

impl Server {
    pub(super) fn accept(
        &self,
        st: &mut PollState,
        mut listener: Entry<'_, Socket>,
    ) -> Option<Report> {
        let (listener_id, opaque) = (listener.id, listener.opaque);
        let (client, peer) = match os::accept(listener.fd()) {
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
                    drop(os::accept(listener.fd()));
                    st.spare_fd = os::spare_fd();
                } else {
                    // Nothing to shed it with: the connection stays pending, and accepting
                    // again would fail again at once. Stop until a descriptor frees up.
                    let _ = listener.set_reading(&self.poller, false);
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
        let mut socket = st.readers.lock(&self.table, new_id)?;
        os::set_keepalive(client.as_raw_fd());
        let registered = socket.register(
            &self.poller,
            client,
            Interest::default(),
            Phase::PendingAccept,
        );
        if registered.is_err() {
            socket.remove();
            st.next_event += 1;
            return None;
        }
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

    /// Takes the spare descriptor back if one is free now, and lets the listeners it was
    /// missing for accept again.
    pub(super) fn resume_listeners(&self, st: &mut PollState) {
        if st.spare_fd.is_none() {
            st.spare_fd = os::spare_fd();
        }
        if st.spare_fd.is_none() {
            return;
        }
        for id in std::mem::take(&mut st.suspended_listeners) {
            if let Some(mut listener) = st.readers.lock(&self.table, id)
                && listener.phase == Phase::Listening
            {
                let _ = listener.set_reading(&self.poller, true);
            }
        }
    }

    pub(super) fn finish_connect(&self, mut socket: Entry<'_, Socket>) -> Report {
        let (id, opaque) = (socket.id, socket.opaque);
        let failure = match os::take_socket_error(socket.fd()) {
            Ok(0) => None,
            Ok(code) => Some(os::strerror(code)),
            Err(err) => Some(os::error_text(&err)),
        };
        if let Some(message) = failure {
            close_now(socket, &self.poller);
            return Report::error_text(id, opaque, message);
        }
        socket.phase = Phase::Connected;
        if socket.nothing_to_send() && socket.set_writing(&self.poller, false).is_err() {
            close_now(socket, &self.poller);
            return Report::error(id, opaque, text::DISABLE_WRITE_FAILED);
        }
        let peer = socket
            .name_addr
            .map_or(ReportData::None, |addr| ReportData::Text(addr.ip_text()));
        Report::open(id, opaque, 0, peer)
    }
}

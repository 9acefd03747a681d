//! Receiving datagrams (drained one per result while the event lasts, without the socket's
//! lock) and sending queued ones.

use super::state::PollState;
use crate::os::heap::CBuf;
use crate::os::log::log;
use crate::os::{self, Readiness};
use crate::report::Report;
use crate::server::Server;
use crate::slots::SocketId;
use crate::socket::close_now;
use crate::udp_address::{UdpAddress, UdpFamily};
use crate::write_queue::DatagramSent;

const MAX_DATAGRAM: usize = 65535;

impl Server {
    /// Reads one datagram of socket `id`, whose reader is in `st.readers`; the event stays
    /// current while datagrams keep coming.
    pub(super) fn drain_datagrams(
        &self,
        st: &mut PollState,
        index: usize,
        event: Readiness,
        id: SocketId,
    ) -> Option<Report> {
        let Some(reader) = st.readers.datagram(id) else {
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
                if let Some(socket) = st.readers.lock(&self.table, id) {
                    close_now(socket, &self.poller);
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
}

/// Sends one queued datagram to its destination, logging (as upstream) what it drops.
pub(super) fn send_datagram(
    id: SocketId,
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

//! socket_info snapshots: one entry per listening, connected, half-closed, UDP or bound
//! socket, read under each socket's lock so a concurrent close can never be seen half-done.

use crate::os;
use crate::slots::SocketId;
use crate::socket::{Phase, Socket, Transport};

/// socket_info kinds, with skynet's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InfoKind {
    Listen = 1,
    Tcp = 2,
    Udp = 3,
    Bind = 4,
    Closing = 5,
}

pub(crate) struct InfoEntry {
    pub id: SocketId,
    pub kind: InfoKind,
    pub opaque: usize,
    pub read: u64,
    pub write: u64,
    pub rtime: u64,
    pub wtime: u64,
    pub wbuffer: usize,
    pub reading: bool,
    pub writing: bool,
    /// Shown as "ip:port"; none for bound descriptors and UDP sockets without a destination.
    pub name: Option<os::SockAddr>,
}

/// The entry for `socket`, or `None` for sockets info does not list (reserved, connecting,
/// not yet started). Names come from addresses kept since accept/connect/listen, so no
/// system call is made per socket.
pub(crate) fn describe(socket: &Socket) -> Option<InfoEntry> {
    let (kind, name) = match (socket.phase, socket.transport) {
        (Phase::Bound, _) => (InfoKind::Bind, None),
        (Phase::Listening, _) => (InfoKind::Listen, socket.name_addr),
        (Phase::Connected | Phase::HalfClosedRead | Phase::HalfClosedWrite, Transport::Udp(_)) => {
            (InfoKind::Udp, socket.udp_dest.map(|a| a.to_sockaddr()))
        }
        (Phase::Connected, Transport::Tcp) => (InfoKind::Tcp, socket.name_addr),
        (Phase::HalfClosedRead | Phase::HalfClosedWrite, Transport::Tcp) => {
            (InfoKind::Closing, socket.name_addr)
        }
        _ => return None,
    };
    let (read, rtime) = socket.stats.snapshot();
    Some(InfoEntry {
        id: socket.id,
        kind,
        opaque: socket.opaque,
        read,
        write: socket.written,
        rtime,
        wtime: socket.wtime,
        wbuffer: socket.queue.queued(),
        reading: socket.interest.read,
        writing: socket.interest.write,
        name,
    })
}

//! Flushing a socket's write queue when it is writable, and what a failed write does.

use super::udp::send_datagram;
use crate::close::{self, WriteError};
use crate::os;
use crate::report::{Report, text};
use crate::server::Server;
use crate::socket::{Phase, Socket, Transport};
use crate::write_queue::FlushEnd;

/// What flushing a socket's queue asks for.
pub(super) enum AfterFlush {
    Keep(Option<Report>),
    CloseSilently,
}

impl Server {
    /// Writes what is queued. Keeps EPOLLOUT while data remains, turns it off when drained.
    pub(super) fn flush_queue(&self, socket: &mut Socket) -> AfterFlush {
        if !socket.writable_now() {
            return AfterFlush::Keep(None);
        }
        let (id, fd) = (socket.id, socket.fd());
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
                if socket.set_writing(&self.poller, true).is_err() {
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
                if socket.set_writing(&self.poller, false).is_err() {
                    return AfterFlush::Keep(Some(Report::error(
                        id,
                        socket.opaque,
                        text::DISABLE_WRITE_FAILED,
                    )));
                }
                let drained = socket.queue.take_drained_warning();
                AfterFlush::Keep(drained.then(|| Report::warning(id, socket.opaque, 0)))
            }
            FlushEnd::Failed(err) => {
                match close::on_write_error(socket.phase, socket.closing, socket.error_reported) {
                    WriteError::CloseSilently => AfterFlush::CloseSilently,
                    WriteError::AlreadyReported => AfterFlush::Keep(None),
                    WriteError::ShutWrite { report } => {
                        socket.enter_half_closed(Phase::HalfClosedWrite);
                        // Upstream reports the errno left after it shuts the write side: on a
                        // reset connection that shutdown fails too, and its error is the text.
                        let err = os::shutdown(fd, libc::SHUT_WR).err().unwrap_or(err);
                        socket.queue.clear();
                        let _ = socket.set_writing(&self.poller, false);
                        AfterFlush::Keep(
                            report.then(|| {
                                Report::error_text(id, socket.opaque, os::error_text(&err))
                            }),
                        )
                    }
                }
            }
        }
    }
}

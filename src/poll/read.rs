//! Reading stream sockets: with a reader, without the socket's lock; otherwise with it. EOF
//! and read errors take the lock and follow the close rules of `close.rs`.

use std::io;
use std::os::fd::RawFd;

use super::state::PollState;
use crate::close::{self, ReadEof};
use crate::os::heap::CBuf;
use crate::os::log::log;
use crate::os::{self, Readiness};
use crate::report::Report;
use crate::server::Server;
use crate::slots::{Entry, SocketId};
use crate::socket::close_now;
use crate::socket::{self, Phase, Socket};

/// One read(2) of a stream socket.
pub(super) enum StreamRead {
    Data(CBuf, usize),
    /// Nothing there now (or interrupted).
    Nothing,
    Eof,
    Failed(io::Error),
}

pub(super) fn read_once(id: SocketId, fd: RawFd, size: usize) -> StreamRead {
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

/// What reading a socket produced.
pub(super) enum ReadOutcome {
    /// A result; `again`: the buffer filled, read the same socket before other events.
    Report { report: Report, again: bool },
    /// The socket closed or failed (with or without a result); its event is done.
    Ended(Option<Report>),
    /// Nothing to report.
    Nothing,
}

impl Server {
    /// Reads socket `id` through its reader, without its lock. EOF and errors lock it.
    pub(super) fn read_through_reader(
        &self,
        st: &mut PollState,
        index: usize,
        event: Readiness,
        id: SocketId,
    ) -> Option<Report> {
        let Some(reader) = st.readers.stream(id) else {
            debug_assert!(false, "read_through_reader without a stream reader");
            st.next_event += 1;
            return None;
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
            ended => match st.readers.lock(&self.table, id) {
                Some(socket) => self.stream_read_result(socket, ended),
                // Never: a reader lives no longer than its socket (Readers::lock asserts it).
                None => ReadOutcome::Ended(None),
            },
        };
        self.after_read(st, index, event, outcome)
    }

    /// The read half of an event is done: handle its write half next, or move on.
    pub(super) fn read_done(&self, st: &mut PollState, index: usize, event: Readiness) {
        if event.write {
            st.events[index].read = false;
        } else {
            st.next_event += 1;
        }
    }

    /// Reads a socket that has no reader yet (the lock is dropped across the read itself).
    pub(super) fn read_stream(&self, st: &mut PollState, socket: Entry<'_, Socket>) -> ReadOutcome {
        let (id, fd, size) = (socket.id, socket.fd(), socket.read_size);
        drop(socket);
        let read = read_once(id, fd, size);
        match st.readers.lock(&self.table, id) {
            Some(socket) => self.stream_read_result(socket, read),
            None => ReadOutcome::Nothing,
        }
    }

    /// What a read of a socket, now locked again, comes to.
    pub(super) fn stream_read_result(
        &self,
        mut socket: Entry<'_, Socket>,
        read: StreamRead,
    ) -> ReadOutcome {
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
                        close_now(socket, &self.poller);
                        ReadOutcome::Ended(None)
                    }
                    ReadEof::HalfCloseAndReport => {
                        socket.close_read(&self.poller, true);
                        ReadOutcome::Ended(Some(Report::close(id, opaque)))
                    }
                    ReadEof::CloseAndReport => {
                        close_now(socket, &self.poller);
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
    pub(super) fn after_read(
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
}

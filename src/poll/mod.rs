//! The poll thread's side: one call of `socket_server_poll` applies pending commands first,
//! then reports socket events, until it has one result. Only this thread changes a socket's
//! phase, its poller registration or its fd, and it locks a socket only through its reader
//! cache (`readers.rs`).
//!
//! - `mod.rs`: the loop, the wait, and the dispatch of one event.
//! - `state.rs`: what only this thread touches.
//! - `apply.rs`: applying commands.
//! - `readers.rs`: the sockets this thread reads without their lock.
//! - `read.rs`: reading stream sockets.
//! - `udp.rs`: receiving and sending datagrams.
//! - `write.rs`: flushing write queues.
//! - `connections.rs`: accepting, and finishing a connect.

mod apply;
mod connections;
mod read;
mod readers;
mod state;
mod udp;
mod write;

use std::io;
use std::time::Duration;

use parking_lot::Mutex;

use crate::close;
use crate::command::{self, Command};
use crate::os;
use crate::os::log::log;
use crate::report::{Report, text};
use crate::server::Server;
use crate::slots::{SocketId, TryLock};
use crate::socket::Phase;
use crate::socket::close_now;

use readers::ReaderKind;
use state::PollState;
use write::AfterFlush;

/// How often a listener suspended at the descriptor limit checks whether one freed up.
const RETRY_SPARE_FD: Duration = Duration::from_millis(100);

/// The poll thread's state, behind a mutex that only `socket_server_poll` takes.
pub(crate) struct PollLoop {
    state: Mutex<PollState>,
}

impl PollLoop {
    pub(crate) fn new() -> PollLoop {
        PollLoop {
            state: Mutex::new(PollState::new()),
        }
    }

    /// Blocks until one result of `server` is ready. `waited` is set when it had to wait for
    /// events.
    pub(crate) fn poll(&self, server: &Server, waited: &mut bool) -> Report {
        server.poll(&mut self.state.lock(), waited)
    }
}

impl Server {
    /// Blocks until one result is ready. `waited` is set when it had to wait for events.
    fn poll(&self, st: &mut PollState, waited: &mut bool) -> Report {
        loop {
            if st.commands.is_empty() {
                self.commands.take_all(&mut st.commands);
            }
            if let Some(command) = st.commands.pop_front() {
                if self.must_defer(st, &command) {
                    st.deferred.push_back(command);
                    continue;
                }
                if let Some(id) = command.id() {
                    // The owner decides about reading from now on.
                    if matches!(command, Command::Pause { .. } | Command::Start { .. }) {
                        st.suspended_listeners.retain(|&listener| listener != id);
                    }
                }
                if let Some(report) = self.apply(st, command) {
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

    /// Whether `command` must wait: a worker holds its socket's lock (most likely writing to
    /// it), or an earlier command of the same socket waits already. The poll thread never
    /// sleeps on a lock a worker may hold across a system call; it looks at the events and
    /// comes back. (A worker could still take the lock between this check and the command's
    /// own; the check keeps that window to a few instructions.)
    fn must_defer(&self, st: &PollState, command: &Command) -> bool {
        match command.id() {
            Some(id) => {
                self.table.is_locked(id) || st.deferred.iter().any(|held| held.id() == Some(id))
            }
            // Exit: after everything issued before it.
            None => !st.deferred.is_empty(),
        }
    }

    fn wait(&self, st: &mut PollState, waited: &mut bool) {
        st.events.clear();
        st.next_event = 0;
        if !st.deferred.is_empty() {
            // Look at the events without sleeping, then retry the held commands first: they
            // are older than anything still in the queue.
            let result = self
                .poller
                .wait(&mut st.raw_events, &mut st.events, Some(Duration::ZERO));
            while let Some(command) = st.deferred.pop_back() {
                st.commands.push_front(command);
            }
            log_wait_error(result);
            return;
        }
        // Nothing delays this sleep. Yielding or napping first batches a busy UDP socket's
        // arrivals (udp row 1.1-1.2x), but whatever comes next then waits behind the other
        // thread or the nap: a yield before each sleep took pingpong to 0.84x and the udp-8
        // row to 0.91x, a 100 us nap after a burst of datagrams took udp-8 to 0.43x.
        if !self.commands.about_to_sleep() {
            return;
        }
        // A suspended listener waits for a descriptor to free up, which no event announces.
        let timeout = (!st.suspended_listeners.is_empty()).then_some(RETRY_SPARE_FD);
        let result = self
            .poller
            .wait(&mut st.raw_events, &mut st.events, timeout);
        self.commands.woke_up();
        if !st.suspended_listeners.is_empty() {
            self.resume_listeners(st);
        }
        *waited = true;
        log_wait_error(result);
    }

    /// Reports one event of the current batch, or moves past it.
    fn handle_event(&self, st: &mut PollState) -> Option<Report> {
        let index = st.next_event;
        let event = st.events[index];
        if event.token == command::WAKE_TOKEN {
            st.next_event += 1;
            self.commands.clear_wake();
            return None;
        }
        let id = SocketId::from_raw(event.token as i32);
        if st.forgetting(id) {
            st.next_event += 1;
            return None;
        }
        if event.read {
            match st.readers.kind(id) {
                Some(ReaderKind::Datagram) => return self.drain_datagrams(st, index, event, id),
                Some(ReaderKind::Stream) => return self.read_through_reader(st, index, event, id),
                None => {}
            }
        }
        // A token names an id, so an event for a closed socket finds nothing, even when a
        // new socket reuses the slot. A socket a worker is writing to is left for the next
        // wait, which reports it again (readiness is level-triggered).
        let TryLock::Locked(mut socket) = st.readers.try_lock(&self.table, id) else {
            st.next_event += 1;
            return None;
        };
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
        if event.read && st.readers.start(&socket) {
            // Reading needs nothing but the reader from now on: read through it.
            drop(socket);
            return self.handle_event(st);
        }
        if event.read && socket.interest.read {
            let outcome = self.read_stream(st, socket);
            return self.after_read(st, index, event, outcome);
        }
        st.next_event += 1;
        if event.write {
            return match self.flush_queue(&mut socket) {
                AfterFlush::Keep(report) => report,
                AfterFlush::CloseSilently => {
                    close_now(socket, &self.poller);
                    None
                }
            };
        }
        if event.error {
            // Taken even when it is not reported, or epoll would report it again and again.
            let pending = os::take_socket_error(socket.fd());
            if close::error_event_reports(socket.phase) {
                socket.error_reported = true;
                let message = match pending {
                    Ok(0) => {
                        return Some(Report::error(socket.id, socket.opaque, text::UNKNOWN_ERROR));
                    }
                    Ok(code) => os::strerror(code),
                    Err(err) => os::error_text(&err),
                };
                return Some(Report::error_text(socket.id, socket.opaque, message));
            }
        }
        if event.hangup {
            let (id, opaque) = (socket.id, socket.opaque);
            let report = close::hangup_reports_close(socket.phase);
            close_now(socket, &self.poller);
            return report.then(|| Report::close(id, opaque));
        }
        None
    }
}

fn log_wait_error(result: io::Result<()>) {
    if let Err(err) = result
        && err.kind() != io::ErrorKind::Interrupted
    {
        log!("socket-server error: {}", os::error_text(&err));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{Socket, Transport};

    fn server_with_socket() -> (Server, SocketId) {
        let server = Server::new(0).unwrap();
        let id = server
            .table
            .reserve(|id| Socket::reserved(id, 7, Transport::Tcp))
            .unwrap();
        (server, id)
    }

    #[test]
    fn a_command_waits_while_a_worker_holds_its_socket_and_later_ones_keep_their_order() {
        let (server, id) = server_with_socket();
        let mut st = PollState::new();
        let held = server.table.lock(id).unwrap();
        let pause = Command::Pause { id };
        assert!(server.must_defer(&st, &pause), "the lock is held");
        st.deferred.push_back(pause);
        drop(held);
        // The lock is free now, but an earlier command of the socket still waits.
        assert!(server.must_defer(&st, &Command::Start { id, opaque: 7 }));
        assert!(
            server.must_defer(&st, &Command::Exit),
            "exit waits for everything before it"
        );
        let other = server
            .table
            .reserve(|id| Socket::reserved(id, 8, Transport::Tcp))
            .unwrap();
        assert!(!server.must_defer(&st, &Command::Pause { id: other }));
        st.deferred.clear();
        assert!(!server.must_defer(&st, &Command::Start { id, opaque: 7 }));
        assert!(!server.must_defer(&st, &Command::Exit));
    }

    #[test]
    fn held_back_commands_are_retried_first_and_in_order() {
        let (server, id) = server_with_socket();
        let mut st = PollState::new();
        st.deferred.push_back(Command::Pause { id });
        st.deferred.push_back(Command::Close {
            id,
            shutdown: false,
        });
        st.commands.push_back(Command::Exit);
        let mut waited = false;
        server.wait(&mut st, &mut waited);
        assert!(!waited, "a retry does not sleep");
        assert!(st.deferred.is_empty());
        let order: Vec<&str> = st
            .commands
            .iter()
            .map(|command| match command {
                Command::Pause { .. } => "pause",
                Command::Close { .. } => "close",
                Command::Exit => "exit",
                _ => "other",
            })
            .collect();
        assert_eq!(order, ["pause", "close", "exit"]);
    }

    #[test]
    fn a_socket_whose_close_is_held_back_is_skipped_until_then() {
        let (_server, id) = server_with_socket();
        let mut st = PollState::new();
        assert!(!st.forgetting(id));
        st.deferred.push_back(Command::Pause { id });
        assert!(!st.forgetting(id), "only a held-back Forget skips events");
        st.deferred.push_back(Command::Forget { id });
        assert!(st.forgetting(id));
        assert!(!st.forgetting(SocketId::from_raw(id.raw() + 1)));
    }
}

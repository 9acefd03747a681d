//! What only the poll thread touches, kept between calls of `socket_server_poll`.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use super::readers::Readers;
use crate::command::Command;
use crate::os::{self, EventBuffer, Readiness};
use crate::slots::SocketId;

const MAX_EVENTS: usize = 64;

/// State only the poll thread touches.
pub(super) struct PollState {
    pub(super) commands: VecDeque<Command>,
    pub(super) events: Vec<Readiness>,
    pub(super) next_event: usize,
    pub(super) raw_events: EventBuffer,
    pub(super) datagram: Vec<u8>,
    /// Sockets this thread can read without their lock; the only way it locks a socket.
    pub(super) readers: Readers,
    /// Given up to shed a connection when accept hits the descriptor limit.
    pub(super) spare_fd: Option<OwnedFd>,
    /// Listeners that stopped accepting because accept hit the descriptor limit with no
    /// spare to shed the connection with; they resume once the spare is taken back.
    pub(super) suspended_listeners: Vec<SocketId>,
}

impl PollState {
    pub(super) fn new() -> PollState {
        PollState {
            commands: VecDeque::new(),
            events: Vec::with_capacity(MAX_EVENTS),
            next_event: 0,
            raw_events: EventBuffer::with_capacity(MAX_EVENTS),
            datagram: Vec::new(),
            readers: Readers::default(),
            spare_fd: os::spare_fd(),
            suspended_listeners: Vec::new(),
        }
    }
}

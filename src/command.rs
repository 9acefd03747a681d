//! Worker threads -> poll thread. Commands go into an in-memory FIFO; the poll thread takes
//! them all at once. It learns whether any are pending from an atomic flag (no system call),
//! and a sleeping poll thread is woken through one eventfd, written only when the poll thread
//! said it is about to sleep.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::os::{CallerFd, SockAddr, Waker};
use crate::send_buffer::SendBuffer;
use crate::slots::SocketId;
use crate::udp_address::UdpAddress;
use crate::write_queue::{Priority, Warning};

pub(crate) enum Command {
    Listen {
        id: SocketId,
        fd: OwnedFd,
        addr: SockAddr,
    },
    Connect {
        id: SocketId,
        host: CString,
        port: i32,
    },
    Bind {
        id: SocketId,
        fd: CallerFd,
    },
    Start {
        id: SocketId,
        opaque: usize,
    },
    Pause {
        id: SocketId,
    },
    Close {
        id: SocketId,
        shutdown: bool,
    },
    Send {
        id: SocketId,
        buf: SendBuffer,
        priority: Priority,
        to: Option<UdpAddress>,
    },
    /// A direct write left data queued: watch for writability.
    EnableWrite {
        id: SocketId,
    },
    /// A worker's append passed a WARNING threshold; poll reports it.
    Warning {
        id: SocketId,
        warning: Warning,
    },
    SetUdpDest {
        id: SocketId,
        addr: UdpAddress,
    },
    OpenUdp {
        id: SocketId,
        fd: OwnedFd,
    },
    NoDelay {
        id: SocketId,
    },
    Exit,
}

impl Command {
    /// The socket the command is about (none for Exit).
    pub(crate) fn id(&self) -> Option<SocketId> {
        match *self {
            Command::Listen { id, .. }
            | Command::Connect { id, .. }
            | Command::Bind { id, .. }
            | Command::Start { id, .. }
            | Command::Pause { id }
            | Command::Close { id, .. }
            | Command::Send { id, .. }
            | Command::EnableWrite { id }
            | Command::Warning { id, .. }
            | Command::SetUdpDest { id, .. }
            | Command::OpenUdp { id, .. }
            | Command::NoDelay { id } => Some(id),
            Command::Exit => None,
        }
    }
}

/// The poller token of the queue's wake-up fd; socket tokens are their (positive) ids. It
/// fits 32 bits, as kqueue's pointer-sized token does on 32-bit systems.
pub(crate) const WAKE_TOKEN: u64 = u32::MAX as u64;

pub(crate) struct CommandQueue {
    queue: Mutex<VecDeque<Command>>,
    pending: AtomicBool,
    poller_asleep: AtomicBool,
    wake: Waker,
}

impl CommandQueue {
    pub(crate) fn new(wake: Waker) -> CommandQueue {
        CommandQueue {
            queue: Mutex::new(VecDeque::new()),
            pending: AtomicBool::new(false),
            poller_asleep: AtomicBool::new(false),
            wake,
        }
    }

    pub(crate) fn push(&self, command: Command) {
        {
            let mut queue = self.queue.lock();
            queue.push_back(command);
            self.pending.store(true, Ordering::SeqCst);
        }
        // Pairs with `about_to_sleep`: either the poller sees `pending`, or we see it asleep.
        if self.poller_asleep.swap(false, Ordering::SeqCst) {
            self.wake.notify();
        }
    }

    /// Moves every pending command to the back of `into`, in order. No lock and no system
    /// call when none is pending.
    pub(crate) fn take_all(&self, into: &mut VecDeque<Command>) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut queue = self.queue.lock();
        into.append(&mut queue);
        self.pending.store(false, Ordering::Release);
    }

    /// The poll thread is about to block waiting for events. Returns false (and stays awake) when
    /// a command is already pending.
    pub(crate) fn about_to_sleep(&self) -> bool {
        self.poller_asleep.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.poller_asleep.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub(crate) fn woke_up(&self) {
        self.poller_asleep.store(false, Ordering::SeqCst);
    }

    /// Resets the wake-up fd after the poller reported it.
    pub(crate) fn clear_wake(&self) {
        self.wake.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> CommandQueue {
        let poller = crate::os::Poller::new().unwrap();
        CommandQueue::new(Waker::new(&poller, WAKE_TOKEN).unwrap())
    }

    #[test]
    fn commands_come_out_in_the_order_they_went_in() {
        let q = queue();
        for raw in 1..=3 {
            q.push(Command::Pause {
                id: SocketId::from_raw(raw),
            });
        }
        let mut out = VecDeque::new();
        q.take_all(&mut out);
        let ids: Vec<i32> = out
            .iter()
            .map(|c| {
                if let Command::Pause { id } = c {
                    id.raw()
                } else {
                    0
                }
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        q.take_all(&mut out);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn the_poller_does_not_sleep_on_a_pending_command() {
        let q = queue();
        q.push(Command::Exit);
        assert!(!q.about_to_sleep());
        let mut out = VecDeque::new();
        q.take_all(&mut out);
        assert!(q.about_to_sleep());
        q.woke_up();
    }

    #[test]
    fn a_push_to_a_sleeping_poller_signals_the_waker_once() {
        let q = queue();
        assert!(q.about_to_sleep());
        q.push(Command::Exit);
        q.push(Command::Exit);
        assert_eq!(q.wake.drain(), 1);
    }
}

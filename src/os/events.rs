//! What the core asks a poller for and what it gets back, the same on every system.
//!
//! The core relies on this much, and each backend (`epoll.rs`, `kqueue.rs`) documents how it
//! provides it:
//! - level-triggered readiness: a registration that is still ready is reported again by the
//!   next wait, so the core may stop reading or writing part way and come back;
//! - `read` means a read (or accept) will not block: data, a peer's EOF or a pending error;
//! - `write` means a write (or a connect's outcome) will not block, including when it will
//!   fail;
//! - `error` and `hangup` are hints for a registration that asked for neither direction: the
//!   core takes the socket's pending error, and closes on hang-up (both directions done);
//! - a token is returned as it was given; several events for one token may come in one batch
//!   and the core handles each on its own.

/// Which readiness a registration asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    pub read: bool,
    pub write: bool,
}

/// What the poller reported for one registration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub token: u64,
    pub read: bool,
    pub write: bool,
    pub error: bool,
    pub hangup: bool,
}

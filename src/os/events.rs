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

/// Room for one wait's raw events of a backend (`E`: its event struct), kept between waits so
/// waiting allocates nothing.
pub(crate) struct RawEvents<E>(pub(super) Vec<E>);

impl<E> RawEvents<E> {
    pub(crate) fn with_capacity(capacity: usize) -> RawEvents<E> {
        RawEvents(Vec::with_capacity(capacity.max(1)))
    }

    /// Lets `wait` fill the buffer's room (its pointer and capacity; it returns how many
    /// entries it filled), then puts each entry, as `convert` reads it, in `out` (cleared
    /// first).
    ///
    /// # Safety
    /// `wait` writes only within the room it is given, and initialises every entry it counts.
    pub(crate) unsafe fn fill(
        &mut self,
        out: &mut Vec<Readiness>,
        wait: impl FnOnce(*mut E, usize) -> std::io::Result<usize>,
        convert: impl Fn(&E) -> Readiness,
    ) -> std::io::Result<()> {
        out.clear();
        self.0.clear();
        let n = wait(self.0.as_mut_ptr(), self.0.capacity())?;
        // SAFETY: the contract above: the first `n` entries are initialised, n <= capacity.
        unsafe { self.0.set_len(n.min(self.0.capacity())) };
        out.extend(self.0.iter().map(convert));
        Ok(())
    }
}

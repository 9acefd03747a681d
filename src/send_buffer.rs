//! A payload waiting to be written: either one C handed over (freed once, by Drop) or bytes
//! we copied because the caller keeps its RAWPOINTER.

use crate::ffi::payload::{ForeignBuffer, Outgoing};

pub(crate) enum SendBuffer {
    Foreign(ForeignBuffer),
    Copied(Vec<u8>),
}

impl SendBuffer {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            SendBuffer::Foreign(buffer) => buffer.bytes(),
            SendBuffer::Copied(bytes) => bytes,
        }
    }

    /// Keeps what is left of `outgoing` after `written` bytes went out: a foreign buffer is
    /// kept whole (with the offset returned), borrowed bytes are copied from `written` on.
    pub(crate) fn keep_rest(outgoing: Outgoing<'_>, written: usize) -> (SendBuffer, usize) {
        match outgoing {
            Outgoing::Owned(buffer) => (SendBuffer::Foreign(buffer), written),
            Outgoing::Borrowed(bytes) => (SendBuffer::Copied(bytes[written..].to_vec()), 0),
        }
    }
}

impl From<Outgoing<'_>> for SendBuffer {
    fn from(outgoing: Outgoing<'_>) -> Self {
        SendBuffer::keep_rest(outgoing, 0).0
    }
}

//! A payload waiting to be written: either one C handed over (freed once, by Drop) or bytes
//! we copied because the caller keeps its RAWPOINTER.

use crate::os::heap::ForeignBuffer;

/// A send payload as the core sees it.
pub(crate) enum Outgoing<'a> {
    /// MEMORY or OBJECT: ours from now on.
    Owned(ForeignBuffer),
    /// RAWPOINTER: the caller keeps it; valid only during the call, so anything kept is copied.
    Borrowed(&'a [u8]),
}

impl Outgoing<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Outgoing::Owned(buffer) => buffer.bytes(),
            Outgoing::Borrowed(bytes) => bytes,
        }
    }
}

pub(crate) enum SendBuffer {
    Foreign(ForeignBuffer),
    Copied(Vec<u8>),
}

/// The process could not allocate a copy of bytes the caller keeps (a RAWPOINTER send whose
/// size it cannot hold). The send is refused instead of aborting the host.
#[derive(Debug)]
pub(crate) struct CopyFailed {
    pub(crate) len: usize,
}

/// A copy of `bytes`, or `CopyFailed` when the allocation fails.
pub(crate) fn copy_of(bytes: &[u8]) -> Result<Vec<u8>, CopyFailed> {
    let mut copy = Vec::new();
    copy.try_reserve_exact(bytes.len())
        .map_err(|_| CopyFailed { len: bytes.len() })?;
    copy.extend_from_slice(bytes);
    Ok(copy)
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
    pub(crate) fn keep_rest(
        outgoing: Outgoing<'_>,
        written: usize,
    ) -> Result<(SendBuffer, usize), CopyFailed> {
        match outgoing {
            Outgoing::Owned(buffer) => Ok((SendBuffer::Foreign(buffer), written)),
            Outgoing::Borrowed(bytes) => Ok((SendBuffer::Copied(copy_of(&bytes[written..])?), 0)),
        }
    }

    /// Keeps the whole of `outgoing`.
    pub(crate) fn keep(outgoing: Outgoing<'_>) -> Result<SendBuffer, CopyFailed> {
        SendBuffer::keep_rest(outgoing, 0).map(|(buf, _)| buf)
    }
}

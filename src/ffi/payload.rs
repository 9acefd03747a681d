//! Reading a `socket_sendbuffer`: the payload C hands over becomes the core's `Outgoing`.

use crate::os::heap::ForeignBuffer;
use crate::os::log::log;
use crate::send_buffer::Outgoing;
use crate::slots::SocketId;

use super::types::{
    SOCKET_BUFFER_MEMORY, SOCKET_BUFFER_OBJECT, SOCKET_BUFFER_RAWPOINTER, socket_object_interface,
    socket_sendbuffer,
};

/// Reads a `socket_sendbuffer` and takes ownership of its payload. `None` (after a log line)
/// when the buffer cannot be used at all: NULL, an unknown type, NULL bytes with a size, or an
/// OBJECT without registered callbacks.
///
/// # Safety
/// `buf` is NULL or points to a readable `socket_sendbuffer`; its `buffer` is valid for its
/// `type` (MEMORY: malloc'ed, `sz` bytes; OBJECT: an object the callbacks understand;
/// RAWPOINTER: `sz` readable bytes for the duration of the returned borrow).
pub(crate) unsafe fn take<'a>(
    buf: *const socket_sendbuffer,
    soi: impl FnOnce() -> Option<socket_object_interface>,
    caller: &str,
) -> Option<(SocketId, Outgoing<'a>)> {
    if buf.is_null() {
        log!("socket-server error: {caller} called with a NULL buffer.");
        return None;
    }
    // SAFETY: non-NULL and readable per the contract.
    let buf = unsafe { &*buf };
    let raw = buf.buffer;
    if raw.is_null() && buf.sz > 0 && buf.r#type != SOCKET_BUFFER_OBJECT {
        log!(
            "socket-server error: {caller} on socket {} with NULL bytes of size {}.",
            buf.id,
            buf.sz
        );
        return None;
    }
    // No slice may be longer than isize::MAX; no real buffer is.
    let too_large = |len: usize| {
        let refused = len > isize::MAX as usize;
        if refused {
            log!(
                "socket-server error: {caller} on socket {}: size {len} is too large.",
                buf.id
            );
        }
        refused
    };
    let outgoing = match buf.r#type {
        SOCKET_BUFFER_MEMORY => {
            let refused = too_large(buf.sz);
            // SAFETY: a MEMORY block is malloc'ed and given up by the caller (contract); a
            // refused one is still ours to free, with none of its bytes read.
            let memory =
                unsafe { ForeignBuffer::memory(raw.cast_mut(), if refused { 0 } else { buf.sz }) };
            if refused {
                return None;
            }
            Outgoing::Owned(memory)
        }
        SOCKET_BUFFER_OBJECT => {
            let Some(socket_object_interface {
                buffer: Some(bytes),
                size: Some(size),
                free: Some(free),
            }) = soi()
            else {
                log!(
                    "socket-server error: {caller}: object buffer without socket_server_userobject."
                );
                return None;
            };
            if raw.is_null() {
                log!(
                    "socket-server error: {caller} on socket {} with a NULL object.",
                    buf.id
                );
                return None;
            }
            // SAFETY: the registered callbacks accept the caller's objects (contract).
            let (ptr, len) = unsafe { (bytes(raw), size(raw)) };
            let refused = if ptr.is_null() && len > 0 {
                log!(
                    "socket-server error: {caller}: object on socket {} has NULL bytes.",
                    buf.id
                );
                true
            } else {
                too_large(len)
            };
            // SAFETY: the registered callbacks own the caller's object, given up to us
            // (contract), and its bytes stay valid until it is freed; a refused one is still
            // ours to free, with none of its bytes read.
            let object = unsafe {
                ForeignBuffer::object(
                    raw.cast_mut(),
                    ptr.cast(),
                    if refused { 0 } else { len },
                    free,
                )
            };
            if refused {
                return None;
            }
            Outgoing::Owned(object)
        }
        SOCKET_BUFFER_RAWPOINTER => {
            if too_large(buf.sz) {
                return None;
            }
            let bytes = if buf.sz == 0 {
                &[][..]
            } else {
                // SAFETY: `sz` readable bytes at a non-NULL pointer, for the call (contract).
                unsafe { core::slice::from_raw_parts(raw.cast::<u8>(), buf.sz) }
            };
            Outgoing::Borrowed(bytes)
        }
        other => {
            log!(
                "socket-server error: {caller} on socket {}: unknown buffer type {other}.",
                buf.id
            );
            return None;
        }
    };
    Some((SocketId::from_raw(buf.id), outgoing))
}

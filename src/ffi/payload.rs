//! Memory that crosses the boundary: send payloads handed to us by C (freed exactly once by
//! Drop, whatever path they take) and malloc'ed result buffers handed back to C.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use super::log::log;
use super::types::{
    SOCKET_BUFFER_MEMORY, SOCKET_BUFFER_OBJECT, SOCKET_BUFFER_RAWPOINTER, socket_object_interface,
    socket_sendbuffer,
};

/// How a foreign payload is given back.
enum Release {
    /// `free(ptr)`: a SOCKET_BUFFER_MEMORY block.
    Free(*mut c_void),
    /// `soi.free(object)`: a SOCKET_BUFFER_OBJECT.
    Object {
        object: *mut c_void,
        free: unsafe extern "C" fn(*mut c_void),
    },
}

/// A payload C gave us: MEMORY or OBJECT. Its bytes stay valid until it is dropped, and
/// dropping it releases it the way its kind demands, once.
pub(crate) struct ForeignBuffer {
    ptr: *const u8,
    len: usize,
    release: Release,
}

// SAFETY: the caller handed ownership of the block/object to the library; skynet frees such
// buffers from whichever thread holds them (malloc'ed memory and skynet's object callbacks are
// not tied to a thread).
unsafe impl Send for ForeignBuffer {}

impl ForeignBuffer {
    /// An OBJECT, whose free callback the caller can observe (so it is never freed early).
    pub(crate) fn is_object(&self) -> bool {
        matches!(self.release, Release::Object { .. })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: `take` checked the pointer; C promised `len` readable bytes that stay
        // valid until we release them in Drop.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ForeignBuffer {
    fn drop(&mut self) {
        match self.release {
            // SAFETY: malloc'ed by the caller and given to us; Drop runs once.
            Release::Free(ptr) => unsafe { libc::free(ptr) },
            // SAFETY: `free` is the registered soi.free for this object; Drop runs once.
            Release::Object { object, free } => unsafe { free(object) },
        }
    }
}

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
) -> Option<(i32, Outgoing<'a>)> {
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
            // Owned from here on, so a refusal frees it too.
            let mut memory = ForeignBuffer {
                ptr: raw.cast(),
                len: 0,
                release: Release::Free(raw.cast_mut()),
            };
            if too_large(buf.sz) {
                return None;
            }
            memory.len = buf.sz;
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
            // Owned from here on, so a refusal frees it too.
            let mut object = ForeignBuffer {
                ptr: ptr.cast(),
                len: 0,
                release: Release::Object {
                    object: raw.cast_mut(),
                    free,
                },
            };
            if ptr.is_null() && len > 0 {
                log!(
                    "socket-server error: {caller}: object on socket {} has NULL bytes.",
                    buf.id
                );
                return None;
            }
            if too_large(len) {
                return None;
            }
            object.len = len;
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
    Some((buf.id, outgoing))
}

/// A malloc'ed byte buffer that becomes the caller's (`free`) when it leaves in a result.
pub(crate) struct CBuf {
    ptr: NonNull<u8>,
    capacity: usize,
}

// SAFETY: plain heap memory owned by this value alone.
unsafe impl Send for CBuf {}

impl CBuf {
    /// `capacity` uninitialised bytes, or `None` when malloc fails.
    pub(crate) fn uninit(capacity: usize) -> Option<CBuf> {
        // SAFETY: malloc of at least one byte; the result is checked for NULL.
        let ptr = unsafe { libc::malloc(capacity.max(1)) }.cast::<u8>();
        NonNull::new(ptr).map(|ptr| CBuf { ptr, capacity })
    }

    /// The whole buffer, for a read to fill.
    pub(crate) fn spare(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: `capacity` bytes owned by self; MaybeUninit needs no initialisation.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.capacity) }
    }

    /// A buffer holding `parts` one after another.
    pub(crate) fn from_slices(parts: &[&[u8]]) -> Option<CBuf> {
        let mut buf = CBuf::uninit(parts.iter().map(|p| p.len()).sum())?;
        let mut spare = buf.spare();
        for part in parts {
            let (head, tail) = spare.split_at_mut(part.len());
            for (dst, &src) in head.iter_mut().zip(*part) {
                dst.write(src);
            }
            spare = tail;
        }
        Some(buf)
    }

    /// Hands the buffer to C, which frees it with `free`.
    pub(crate) fn into_raw(self) -> *mut u8 {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }
}

impl Drop for CBuf {
    fn drop(&mut self) {
        // SAFETY: malloc'ed in `uninit`, not handed out (into_raw forgets self).
        unsafe { libc::free(self.ptr.as_ptr().cast()) };
    }
}

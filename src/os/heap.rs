//! Memory that crosses to and from C: blocks C hands the library (released exactly once, the
//! way their kind demands, when dropped) and malloc'ed blocks the library hands back.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

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
    /// A SOCKET_BUFFER_MEMORY block, freed with `free` when dropped.
    ///
    /// # Safety
    /// `ptr` is NULL or was malloc'ed and is given up by its owner; `len` bytes at it stay
    /// readable until the buffer is dropped.
    pub(crate) unsafe fn memory(ptr: *mut c_void, len: usize) -> ForeignBuffer {
        ForeignBuffer {
            ptr: ptr.cast_const().cast(),
            len,
            release: Release::Free(ptr),
        }
    }

    /// A SOCKET_BUFFER_OBJECT whose bytes are `len` at `bytes`, released by `free(object)`.
    ///
    /// # Safety
    /// `free` accepts `object`, which is given up by its owner; `len` bytes at `bytes` stay
    /// readable until the buffer is dropped.
    pub(crate) unsafe fn object(
        object: *mut c_void,
        bytes: *const u8,
        len: usize,
        free: unsafe extern "C" fn(*mut c_void),
    ) -> ForeignBuffer {
        ForeignBuffer {
            ptr: bytes,
            len,
            release: Release::Object { object, free },
        }
    }

    /// An OBJECT, whose free callback the caller can observe (so it is never freed early).
    pub(crate) fn is_object(&self) -> bool {
        matches!(self.release, Release::Object { .. })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 || self.ptr.is_null() {
            return &[];
        }
        // SAFETY: the constructor's contract: `len` readable bytes that stay valid until we
        // release them in Drop (and the pointer is not NULL here).
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
            head.write_copy_of_slice(part);
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

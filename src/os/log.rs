//! Log lines go to skynet's `skynet_error(NULL, fmt, ...)`. Outside skynet a weak fallback
//! (compiled by build.rs from `skynet_error_fallback.c`) prints to stderr instead.

use core::ffi::{c_char, c_void};
use core::fmt;
use std::ffi::CString;

unsafe extern "C" {
    fn skynet_error(ctx: *mut c_void, fmt: *const c_char, ...);
}

/// Writes one log line through `skynet_error`.
pub(crate) fn log_error(args: fmt::Arguments<'_>) {
    let text = std::fmt::format(args).replace('\0', "");
    let Ok(line) = CString::new(text) else { return };
    // SAFETY: "%s" with one NUL-terminated string argument; skynet_error accepts a NULL context.
    unsafe { skynet_error(core::ptr::null_mut(), c"%s".as_ptr(), line.as_ptr()) };
}

/// `log!("...", args)` formats and logs one line.
macro_rules! log {
    ($($arg:tt)*) => { $crate::os::log::log_error(format_args!($($arg)*)) };
}
pub(crate) use log;

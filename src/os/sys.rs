//! What every wrapper of the system layer shares: the errno-to-`io::Result` macro, taking
//! ownership of a fresh descriptor, and errno texts.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Linux's limit on buffers per vectored write (UIO_MAXIOV).
pub(crate) const IOV_MAX: usize = 1024;

/// Turns a libc return value into `io::Result`, taking errno on -1.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: each call site passes arguments that satisfy the libc function's contract,
        // as the surrounding function documents.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 { Err(std::io::Error::last_os_error()) } else { Ok(res) }
    }};
}
pub(crate) use syscall;

/// Takes ownership of a descriptor a system call just returned.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor they just created and that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Marks `fd` close-on-exec, for descriptors a system could not create so at once.
#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFD))?;
    syscall!(fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC))?;
    Ok(())
}

/// The text of an errno value, as strerror gives it.
pub(crate) fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the XSI strerror_r writes at most `buf.len()` bytes, NUL-terminated.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The strerror text of an `io::Error`.
/// Whether a call on a non-blocking fd failed only for now (it would block, or a signal
/// interrupted it): the fd's next readiness retries it.
pub(crate) fn try_again(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

pub(crate) fn error_text(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => strerror(errno),
        None => err.to_string(),
    }
}

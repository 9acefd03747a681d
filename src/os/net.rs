//! Socket system calls. Every descriptor is created close-on-exec and non-blocking, and no
//! write can raise SIGPIPE on a socket: MSG_NOSIGNAL on each send where the system has it,
//! SO_NOSIGPIPE on each socket on Apple's systems, which have neither MSG_NOSIGNAL as a
//! documented flag nor SOCK_CLOEXEC / SOCK_NONBLOCK / accept4 (there fcntl sets the flags
//! right after the call; no other thread of ours forks in between).

use std::ffi::CStr;
use std::io::{self, IoSlice};
use std::mem::{MaybeUninit, size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::addr::{SockAddr, resolve};
use super::sys::{IOV_MAX, owned, syscall};

/// The flags every send of ours passes.
#[cfg(not(target_vendor = "apple"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: libc::c_int = 0;

/// A new socket, non-blocking and close-on-exec, that never raises SIGPIPE.
fn new_socket(family: libc::c_int, socktype: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(not(target_vendor = "apple"))]
    let fd = owned(syscall!(socket(
        family,
        socktype | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        0
    ))?);
    #[cfg(target_vendor = "apple")]
    let fd = {
        let fd = owned(syscall!(socket(family, socktype, 0))?);
        finish_new_descriptor(fd.as_raw_fd())?;
        fd
    };
    Ok(fd)
}

/// What Apple's systems cannot set when they create a descriptor: close-on-exec,
/// non-blocking, no SIGPIPE.
#[cfg(target_vendor = "apple")]
fn finish_new_descriptor(fd: RawFd) -> io::Result<()> {
    super::sys::set_cloexec(fd)?;
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    set_int_option(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)
}

fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    syscall!(setsockopt(
        fd,
        level,
        name,
        (&value as *const libc::c_int).cast(),
        size_of::<libc::c_int>() as libc::socklen_t
    ))?;
    Ok(())
}

pub(crate) fn set_keepalive(fd: RawFd) {
    let _ = set_int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
}

pub(crate) fn set_nodelay(fd: RawFd) {
    let _ = set_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
}

pub(crate) fn set_nonblocking(fd: RawFd) {
    if let Ok(flags) = syscall!(fcntl(fd, libc::F_GETFL)) {
        let _ = syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK));
    }
}

/// True when `fd` is a socket (so send and its flags work on it).
pub(crate) fn is_socket(fd: RawFd) -> bool {
    // SAFETY: stat is plain data; all-zero is valid; fstat fills it.
    let mut st: libc::stat = unsafe { zeroed() };
    syscall!(fstat(fd, &mut st)).is_ok() && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
}

/// A descriptor the host handed the library with `socket_server_bind` (skynet binds stdin).
/// It is the caller's: dropping it closes nothing. Only `adopt` makes it the library's.
#[derive(Debug)]
pub(crate) struct CallerFd(RawFd);

impl CallerFd {
    /// # Safety
    /// `fd` stays open while the library uses it, and the caller accepts that the library
    /// closes it once the socket's state has moved on from "bound" (socket_server_bind's
    /// contract, as upstream has it).
    pub(crate) unsafe fn new(fd: RawFd) -> CallerFd {
        CallerFd(fd)
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0
    }

    /// Takes the descriptor over: dropping the result closes it.
    pub(crate) fn adopt(self) -> OwnedFd {
        // SAFETY: `new`'s contract lets the library close it, and `self` is consumed, so the
        // number is owned once.
        unsafe { OwnedFd::from_raw_fd(self.0) }
    }
}

/// Resolves `host` (NULL or "" meaning 0.0.0.0), creates a socket of the first address's
/// family, sets SO_REUSEADDR and binds it. Returns the socket and its family.
pub(crate) fn bind_address(
    host: Option<&CStr>,
    port: i32,
    socktype: libc::c_int,
) -> io::Result<(OwnedFd, SockAddr)> {
    let host = match host {
        Some(h) if !h.is_empty() => h,
        _ => c"0.0.0.0",
    };
    let addrs = resolve(Some(host), port, socktype).map_err(|err| io::Error::other(err.text))?;
    let addr = addrs[0];
    let fd = new_socket(addr.family(), socktype)?;
    set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (ptr, len) = addr.as_raw();
    syscall!(bind(fd.as_raw_fd(), ptr, len))?;
    Ok((fd, addr))
}

pub(crate) fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    syscall!(listen(fd, backlog))?;
    Ok(())
}

/// A non-blocking, close-on-exec UDP socket of `family`.
pub(crate) fn udp_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    new_socket(family, libc::SOCK_DGRAM)
}

/// How a non-blocking connect started.
pub(crate) struct Connecting {
    pub fd: OwnedFd,
    pub peer: SockAddr,
    /// Connected at once (loopback can), rather than in progress.
    pub connected: bool,
}

/// Tries each address in turn with a non-blocking connect (keepalive on), as upstream does.
/// The error is the last address's.
pub(crate) fn connect_any(addrs: &[SockAddr]) -> io::Result<Connecting> {
    let mut last = io::Error::from_raw_os_error(libc::ECONNREFUSED);
    for addr in addrs {
        let fd = match new_socket(addr.family(), libc::SOCK_STREAM) {
            Ok(fd) => fd,
            Err(err) => {
                last = err;
                continue;
            }
        };
        set_keepalive(fd.as_raw_fd());
        let (ptr, len) = addr.as_raw();
        match syscall!(connect(fd.as_raw_fd(), ptr, len)) {
            Ok(_) => {
                return Ok(Connecting {
                    fd,
                    peer: *addr,
                    connected: true,
                });
            }
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {
                return Ok(Connecting {
                    fd,
                    peer: *addr,
                    connected: false,
                });
            }
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Accepts one connection, non-blocking and close-on-exec.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, Option<SockAddr>)> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let address = (&mut storage as *mut libc::sockaddr_storage).cast();
    #[cfg(not(target_vendor = "apple"))]
    let client = owned(syscall!(accept4(
        fd,
        address,
        &mut len,
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
    ))?);
    #[cfg(target_vendor = "apple")]
    let client = {
        let client = owned(syscall!(accept(fd, address, &mut len))?);
        finish_new_descriptor(client.as_raw_fd())?;
        client
    };
    Ok((client, SockAddr::from_storage(&storage, len)))
}

/// Reads into `buf`; Ok(0) is end of file.
pub(crate) fn read(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let n = syscall!(read(fd, buf.as_mut_ptr().cast(), buf.len()))?;
    Ok(n as usize)
}

/// Writes the slices in order: sendmsg on sockets, writev otherwise.
pub(crate) fn write_vectored(
    fd: RawFd,
    bufs: &[IoSlice<'_>],
    is_socket: bool,
) -> io::Result<usize> {
    let count = bufs.len().min(IOV_MAX);
    let n = if is_socket {
        // SAFETY: msghdr is plain data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        // IoSlice is ABI-compatible with iovec; sendmsg only reads through the pointer.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = count as _;
        syscall!(sendmsg(fd, &msg, SEND_FLAGS))?
    } else {
        syscall!(writev(fd, bufs.as_ptr().cast(), count as libc::c_int))?
    };
    Ok(n as usize)
}

/// Writes one buffer: send on sockets, write otherwise.
pub(crate) fn write(fd: RawFd, buf: &[u8], is_socket: bool) -> io::Result<usize> {
    let n = if is_socket {
        syscall!(send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS))?
    } else {
        syscall!(write(fd, buf.as_ptr().cast(), buf.len()))?
    };
    Ok(n as usize)
}

pub(crate) fn send_to(fd: RawFd, buf: &[u8], to: &SockAddr) -> io::Result<usize> {
    let (ptr, len) = to.as_raw();
    let n = syscall!(sendto(
        fd,
        buf.as_ptr().cast(),
        buf.len(),
        SEND_FLAGS,
        ptr,
        len
    ))?;
    Ok(n as usize)
}

/// Receives one datagram into `buf`; returns its length and sender.
pub(crate) fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<SockAddr>)> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let n = syscall!(recvfrom(
        fd,
        buf.as_mut_ptr().cast(),
        buf.len(),
        0,
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len
    ))?;
    Ok((n as usize, SockAddr::from_storage(&storage, len)))
}

pub(crate) fn shutdown(fd: RawFd, how: libc::c_int) -> io::Result<()> {
    syscall!(shutdown(fd, how)).map(drop)
}

/// The pending error of a socket (SO_ERROR), 0 when none.
pub(crate) fn take_socket_error(fd: RawFd) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&mut value as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// The address a socket is bound to (getsockname).
pub(crate) fn local_addr(fd: RawFd) -> Option<SockAddr> {
    socket_name(fd, libc::getsockname)
}

/// The address of a connected socket's peer (getpeername); `None` for anything else,
/// including sockets that are not IP (a socketpair, a pipe).
pub(crate) fn peer_addr(fd: RawFd) -> Option<SockAddr> {
    socket_name(fd, libc::getpeername)
}

type NameCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn socket_name(fd: RawFd, call: NameCall) -> Option<SockAddr> {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `call` is getsockname or getpeername, which write at most `len` bytes into
    // the storage and update `len`; a bad fd is an error, not undefined behaviour.
    let rc = unsafe {
        call(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(())?;
    SockAddr::from_storage(&storage, len)
}

/// A descriptor held in reserve so accept can shed a connection under EMFILE.
pub(crate) fn spare_fd() -> Option<OwnedFd> {
    syscall!(open(
        c"/dev/null".as_ptr(),
        libc::O_RDONLY | libc::O_CLOEXEC
    ))
    .ok()
    .map(owned)
}

//! The C-visible types, with the exact layouts of skynet's `socket_server.h`, `socket_buffer.h`
//! and `socket_info.h` (x86-64 Linux, LP64). cbindgen writes `include/socket_server.h` from
//! this file and `entry.rs`; the asserts below stop any drift at compile time.
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_void};
use core::mem::{offset_of, size_of};

use parking_lot::{Mutex, RwLock};

use crate::poll::PollLoop;
use crate::server::Server;

/// Poll result: data received (`ud` bytes at `data`, malloc'ed, the caller frees it).
pub const SOCKET_DATA: c_int = 0;
/// Poll result: the socket is closed (by its owner or by the peer).
pub const SOCKET_CLOSE: c_int = 1;
/// Poll result: the socket is open (listen, connect, start, transfer, bind).
pub const SOCKET_OPEN: c_int = 2;
/// Poll result: a listening socket accepted `ud`; `data` is the peer's "ip:port".
pub const SOCKET_ACCEPT: c_int = 3;
/// Poll result: an error; `data` is its text.
pub const SOCKET_ERR: c_int = 4;
/// Poll result: `socket_server_exit` was called.
pub const SOCKET_EXIT: c_int = 5;
/// Poll result: a UDP datagram; `data` holds the payload then the sender's address.
pub const SOCKET_UDP: c_int = 6;
/// Poll result: `ud` KiB are queued for writing, or 0 once the queue drained.
pub const SOCKET_WARNING: c_int = 7;

/// Send buffer kind: a malloc'ed block the library frees with `free`.
pub const SOCKET_BUFFER_MEMORY: c_int = 0;
/// Send buffer kind: a user object handled through `socket_object_interface`.
pub const SOCKET_BUFFER_OBJECT: c_int = 1;
/// Send buffer kind: bytes the caller keeps; the library copies what it cannot write at once.
pub const SOCKET_BUFFER_RAWPOINTER: c_int = 2;

/// socket_info kind: not a listed socket.
pub const SOCKET_INFO_UNKNOWN: c_int = 0;
/// socket_info kind: a listening TCP socket.
pub const SOCKET_INFO_LISTEN: c_int = 1;
/// socket_info kind: a connected TCP socket.
pub const SOCKET_INFO_TCP: c_int = 2;
/// socket_info kind: a UDP socket.
pub const SOCKET_INFO_UDP: c_int = 3;
/// socket_info kind: a descriptor wrapped by `socket_server_bind`.
pub const SOCKET_INFO_BIND: c_int = 4;
/// socket_info kind: a half-closed TCP socket.
pub const SOCKET_INFO_CLOSING: c_int = 5;

/// The server handle C holds; opaque to C.
pub struct socket_server {
    pub(crate) server: Server,
    /// The poll thread's state; only `socket_server_poll` uses it.
    pub(crate) poll_loop: PollLoop,
    pub(crate) object_interface: RwLock<Option<socket_object_interface>>,
    /// The text of the last OPEN/ERR/ACCEPT result; valid until the next poll.
    pub(crate) poll_text: Mutex<Vec<u8>>,
}

/// A UDP address as bytes: protocol (1 = IPv4, 2 = IPv6), port in network order, address.
/// Opaque to C.
pub struct socket_udp_address {
    _bytes: [u8; 0],
}

/// One poll result.
#[repr(C)]
pub struct socket_message {
    pub id: c_int,
    pub opaque: usize,
    /// For ACCEPT the new connection's id; for DATA and UDP the payload size.
    pub ud: c_int,
    pub data: *mut c_char,
}

/// A buffer handed to `socket_server_send` and friends.
#[repr(C)]
pub struct socket_sendbuffer {
    pub id: c_int,
    pub r#type: c_int,
    pub buffer: *const c_void,
    pub sz: libc::size_t,
}

/// Callbacks for SOCKET_BUFFER_OBJECT payloads.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct socket_object_interface {
    pub buffer: Option<unsafe extern "C" fn(*const c_void) -> *const c_void>,
    pub size: Option<unsafe extern "C" fn(*const c_void) -> libc::size_t>,
    pub free: Option<unsafe extern "C" fn(*mut c_void)>,
}

/// One entry of the list `socket_server_info` returns.
#[repr(C)]
pub struct socket_info {
    pub id: c_int,
    pub r#type: c_int,
    pub opaque: u64,
    pub read: u64,
    pub write: u64,
    pub rtime: u64,
    pub wtime: u64,
    pub wbuffer: i64,
    pub reading: u8,
    pub writing: u8,
    pub name: [c_char; 128],
    pub next: *mut socket_info,
}

const _: () = {
    assert!(size_of::<socket_message>() == 32);
    assert!(offset_of!(socket_message, opaque) == 8);
    assert!(offset_of!(socket_message, ud) == 16);
    assert!(offset_of!(socket_message, data) == 24);
    assert!(size_of::<socket_sendbuffer>() == 24);
    assert!(offset_of!(socket_sendbuffer, buffer) == 8);
    assert!(offset_of!(socket_sendbuffer, sz) == 16);
    assert!(size_of::<socket_object_interface>() == 24);
    assert!(offset_of!(socket_info, opaque) == 8);
    assert!(offset_of!(socket_info, wbuffer) == 48);
    assert!(offset_of!(socket_info, reading) == 56);
    assert!(offset_of!(socket_info, name) == 58);
    assert!(offset_of!(socket_info, next) == 192);
    assert!(size_of::<socket_info>() == 200);
};

// The core's kinds carry skynet's numbers; these tie them to the C constants above.
const _: () = {
    use crate::info::InfoKind;
    use crate::report::ReportKind;
    assert!(ReportKind::Data as c_int == SOCKET_DATA);
    assert!(ReportKind::Close as c_int == SOCKET_CLOSE);
    assert!(ReportKind::Open as c_int == SOCKET_OPEN);
    assert!(ReportKind::Accept as c_int == SOCKET_ACCEPT);
    assert!(ReportKind::Error as c_int == SOCKET_ERR);
    assert!(ReportKind::Exit as c_int == SOCKET_EXIT);
    assert!(ReportKind::Udp as c_int == SOCKET_UDP);
    assert!(ReportKind::Warning as c_int == SOCKET_WARNING);
    assert!(InfoKind::Listen as c_int == SOCKET_INFO_LISTEN);
    assert!(InfoKind::Tcp as c_int == SOCKET_INFO_TCP);
    assert!(InfoKind::Udp as c_int == SOCKET_INFO_UDP);
    assert!(InfoKind::Bind as c_int == SOCKET_INFO_BIND);
    assert!(InfoKind::Closing as c_int == SOCKET_INFO_CLOSING);
};

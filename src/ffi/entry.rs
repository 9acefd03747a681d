//! Every exported function. Each one validates its arguments, converts them once and
//! delegates to the safe core in `crate::server`; nothing here decides socket behaviour.

use core::ffi::{CStr, c_char, c_int};
use core::fmt::Write as _;
use core::ptr;

use super::payload;
use super::types::*;
use crate::info::InfoEntry;
use crate::os::CallerFd;
use crate::os::log::log_error;
use crate::report::{Report, ReportData};
use crate::server::{Priority, SendRefused, Server};
use crate::slots::SocketId;
use crate::udp_address::UdpAddress;

/// Turns the C handle into a reference, or logs and returns `None` for NULL.
///
/// # Safety
/// `ss` is NULL or came from `socket_server_create` and has not been released.
unsafe fn server_ref<'a>(ss: *mut socket_server, caller: &str) -> Option<&'a socket_server> {
    // SAFETY: contract above: a live server is readable for as long as the call lasts.
    unsafe { arg_ref(ss, caller, "server") }
}

/// Turns a pointer argument into a reference, or logs "{caller} called with a NULL {what}"
/// and returns `None`: the one place an entry point refuses a NULL.
///
/// # Safety
/// `ptr` is NULL or points to a `T` readable for the duration of the call.
unsafe fn arg_ref<'a, T>(ptr: *const T, caller: &str, what: &str) -> Option<&'a T> {
    if ptr.is_null() {
        log_error(format_args!(
            "socket-server error: {caller} called with a NULL {what}."
        ));
        return None;
    }
    // SAFETY: non-NULL, and readable per the contract.
    Some(unsafe { &*ptr })
}

/// Reads an optional C string: NULL stays `None`.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string readable for the duration of the call.
unsafe fn opt_cstr<'a>(s: *const c_char) -> Option<&'a CStr> {
    if s.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated per the contract.
        Some(unsafe { CStr::from_ptr(s) })
    }
}

/// Creates a server; `time` is skynet's centisecond clock. Returns NULL (and logs) on failure.
#[unsafe(no_mangle)]
pub extern "C" fn socket_server_create(time: u64) -> *mut socket_server {
    match Server::new(time) {
        Ok(server) => Box::into_raw(Box::new(socket_server::new(server))),
        Err(err) => {
            log_error(format_args!("socket-server error: create failed: {err}."));
            ptr::null_mut()
        }
    }
}

/// Closes every socket, frees every queued buffer and the server itself.
///
/// # Safety
/// `ss` is NULL or came from `socket_server_create`; no other thread uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_release(ss: *mut socket_server) {
    // SAFETY: contract above.
    if unsafe { server_ref(ss, "socket_server_release") }.is_none() {
        return;
    }
    // SAFETY: created by Box::into_raw in socket_server_create and released once, per contract.
    drop(unsafe { Box::from_raw(ss) });
}

/// Stores skynet's current time for the rtime/wtime statistics.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_updatetime(ss: *mut socket_server, time: u64) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_updatetime") } {
        ss.server.update_time(time);
    }
}

/// Blocks until one result is ready, fills `*result` and returns its type. `*more` (if not
/// NULL) is set to 0 when the call had to wait for new events.
///
/// # Safety
/// `ss` is NULL or a live server polled by this thread only; `result` is NULL or writable;
/// `more` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_poll(
    ss: *mut socket_server,
    result: *mut socket_message,
    more: *mut c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_poll") }) else {
        return -1;
    };
    // SAFETY: contract above (only checked here; written below).
    if unsafe { arg_ref(result, "socket_server_poll", "result") }.is_none() {
        return -1;
    }
    let mut waited = false;
    let report = ss.poll_loop.poll(&ss.server, &mut waited);
    if waited && !more.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *more = 0 };
    }
    let message = ss.to_message(report);
    // SAFETY: non-NULL and writable per the contract.
    unsafe { result.write(message.0) };
    message.1
}

/// Makes the next poll return SOCKET_EXIT.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_exit(ss: *mut socket_server) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_exit") } {
        ss.server.exit();
    }
}

/// Closes `id` gracefully: queued data is still written; one SOCKET_CLOSE is reported.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_close(ss: *mut socket_server, opaque: usize, id: c_int) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_close") } {
        ss.server.close(opaque, SocketId::from_raw(id), false);
    }
}

/// Closes `id` at once, dropping queued data; one SOCKET_CLOSE is reported.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_shutdown(ss: *mut socket_server, opaque: usize, id: c_int) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_shutdown") } {
        ss.server.close(opaque, SocketId::from_raw(id), true);
    }
}

/// Starts (or resumes) reading `id`, and makes `opaque` its owner.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_start(ss: *mut socket_server, opaque: usize, id: c_int) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_start") } {
        ss.server.start(opaque, SocketId::from_raw(id));
    }
}

/// Stops reading `id` until the next start.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_pause(ss: *mut socket_server, opaque: usize, id: c_int) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_pause") } {
        ss.server.pause(opaque, SocketId::from_raw(id));
    }
}

/// Sends at high priority. Returns 0 when accepted, -1 when the id is invalid or closing.
/// The payload passes to the library either way.
///
/// # Safety
/// `ss` is NULL or a live server; `buf` is NULL or a readable `socket_sendbuffer` whose
/// payload follows its `type`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_send(
    ss: *mut socket_server,
    buf: *mut socket_sendbuffer,
) -> c_int {
    // SAFETY: contract above.
    unsafe { send_with(ss, buf, Priority::High, "socket_server_send") }
}

/// Sends at low priority: queued behind every high priority buffer.
///
/// # Safety
/// As `socket_server_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_send_lowpriority(
    ss: *mut socket_server,
    buf: *mut socket_sendbuffer,
) -> c_int {
    // SAFETY: contract above.
    unsafe { send_with(ss, buf, Priority::Low, "socket_server_send_lowpriority") }
}

/// # Safety
/// As `socket_server_send`.
unsafe fn send_with(
    ss: *mut socket_server,
    buf: *mut socket_sendbuffer,
    priority: Priority,
    caller: &str,
) -> c_int {
    // SAFETY: contract of the caller.
    let Some(ss) = (unsafe { server_ref(ss, caller) }) else {
        // SAFETY: contract of the caller.
        unsafe { release_payload(buf, caller) };
        return -1;
    };
    // SAFETY: contract of the caller; the payload's ownership moves into `outgoing`.
    let Some((id, outgoing)) = (unsafe { payload::take(buf, || ss.object_interface(), caller) })
    else {
        return -1;
    };
    send_status(ss.server.send(id, outgoing, priority))
}

/// Frees the payload of a send that has no server to go to: it passed to the library all the
/// same. An OBJECT cannot be freed without the server's callbacks (take logs that).
///
/// # Safety
/// As `socket_server_send`'s `buf`.
unsafe fn release_payload(buf: *mut socket_sendbuffer, caller: &str) {
    // SAFETY: contract of the caller; the payload is dropped, hence released, at once.
    drop(unsafe { payload::take(buf, || None, caller) });
}

/// A creating call's answer to C: the new id, or -1.
fn id_or_minus_1(id: Option<SocketId>) -> c_int {
    id.map_or(-1, SocketId::raw)
}

/// A send's answer to C: 0, or -1 with the log line its refusal deserves.
fn send_status(result: Result<(), SendRefused>) -> c_int {
    let Err(refused) = result else { return 0 };
    match refused {
        SendRefused::InvalidId | SendRefused::Closing | SendRefused::WrongFamily => {}
        SendRefused::Exiting { first } => {
            if first {
                log_error(format_args!(
                    "socket-server error: send after socket_server_exit refused."
                ));
            }
        }
        SendRefused::NoDestination { id } => log_error(format_args!(
            "socket-server : set udp ({id}) error: address first."
        )),
        SendRefused::CannotCopy {
            id,
            written: 0,
            uncopied,
        } => log_error(format_args!(
            "socket-server error: send to socket {id} refused: cannot allocate a copy of {uncopied} bytes."
        )),
        SendRefused::CannotCopy {
            id,
            written,
            uncopied,
        } => log_error(format_args!(
            "socket-server error: send to socket {id} refused after {written} of {} bytes: cannot allocate a copy of the other {uncopied}.",
            written + uncopied
        )),
    }
    -1
}

/// Binds and listens on `host:port` now; returns the new id or -1. Poll then reports
/// SOCKET_OPEN with the bound address; the socket accepts after `socket_server_start`.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_listen(
    ss: *mut socket_server,
    opaque: usize,
    host: *const c_char,
    port: c_int,
    backlog: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_listen") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let host = unsafe { opt_cstr(host) };
    id_or_minus_1(ss.server.listen(opaque, host, port, backlog))
}

/// Starts a non-blocking connect; returns the new id or -1. Poll reports SOCKET_OPEN with
/// the peer's address, or SOCKET_ERR.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_connect(
    ss: *mut socket_server,
    opaque: usize,
    host: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_connect") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let Some(host) = (unsafe { opt_cstr(host) }) else {
        log_error(format_args!(
            "socket-server error: socket_server_connect called with a NULL host."
        ));
        return -1;
    };
    id_or_minus_1(ss.server.connect(opaque, host, port))
}

/// Wraps an existing descriptor (made non-blocking); returns the new id or -1.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_bind(
    ss: *mut socket_server,
    opaque: usize,
    fd: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_bind") }) else {
        return -1;
    };
    if fd < 0 {
        log_error(format_args!(
            "socket-server error: socket_server_bind called with fd {fd}."
        ));
        return -1;
    }
    // SAFETY: socket_server_bind's contract: the descriptor stays open while the socket uses
    // it, and the library may close it once the socket's state moves on (as upstream does).
    let fd = unsafe { CallerFd::new(fd) };
    id_or_minus_1(ss.server.bind(opaque, fd))
}

/// Turns TCP_NODELAY on for `id`.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_nodelay(ss: *mut socket_server, id: c_int) {
    // SAFETY: contract above.
    if let Some(ss) = unsafe { server_ref(ss, "socket_server_nodelay") } {
        ss.server.nodelay(SocketId::from_raw(id));
    }
}

/// Creates a UDP socket, bound when `host` or `port` is given; returns the id or -1.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp(
    ss: *mut socket_server,
    opaque: usize,
    host: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_udp") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let host = unsafe { opt_cstr(host) };
    id_or_minus_1(ss.server.udp(opaque, host, port))
}

/// Sets the default destination of UDP socket `id`; 0 or -1.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp_connect(
    ss: *mut socket_server,
    id: c_int,
    host: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_udp_connect") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let host = unsafe { opt_cstr(host) };
    if ss.server.udp_connect(SocketId::from_raw(id), host, port) {
        0
    } else {
        -1
    }
}

/// Creates an unbound UDP socket whose default destination is `host:port`; id or -1.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp_dial(
    ss: *mut socket_server,
    opaque: usize,
    host: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_udp_dial") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let host = unsafe { opt_cstr(host) };
    id_or_minus_1(ss.server.udp_dial(opaque, host, port))
}

/// Creates a UDP socket bound to `host:port` (port 0 is refused); id or -1.
///
/// # Safety
/// `ss` is NULL or a live server; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp_listen(
    ss: *mut socket_server,
    opaque: usize,
    host: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_udp_listen") }) else {
        return -1;
    };
    // SAFETY: contract above.
    let host = unsafe { opt_cstr(host) };
    id_or_minus_1(ss.server.udp_listen(opaque, host, port))
}

/// Sends a datagram to `addr` (7 or 19 address bytes), or to the default destination when
/// `addr` is NULL; 0 when accepted, -1 otherwise.
///
/// # Safety
/// `ss` is NULL or a live server; `addr` is NULL or points to an address as
/// `socket_server_udp_address` returns it; `buf` as in `socket_server_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp_send(
    ss: *mut socket_server,
    addr: *const socket_udp_address,
    buf: *mut socket_sendbuffer,
) -> c_int {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_udp_send") }) else {
        // SAFETY: contract above.
        unsafe { release_payload(buf, "socket_server_udp_send") };
        return -1;
    };
    // SAFETY: contract above; the payload's ownership moves into `outgoing`.
    let Some((id, outgoing)) =
        (unsafe { payload::take(buf, || ss.object_interface(), "socket_server_udp_send") })
    else {
        return -1;
    };
    if addr.is_null() {
        // As skynet's header documents: no address means the default destination.
        return send_status(ss.server.send(id, outgoing, Priority::High));
    }
    // SAFETY: `addr` is readable for its protocol's length (contract above).
    let Some(addr) = (unsafe { read_udp_address(addr.cast()) }) else {
        return -1;
    };
    send_status(ss.server.udp_send(id, &addr, outgoing))
}

/// Reads an encoded UDP address: its first byte says how long it is.
///
/// # Safety
/// `addr` points to a protocol byte followed by the bytes that protocol needs.
unsafe fn read_udp_address(addr: *const u8) -> Option<UdpAddress> {
    // SAFETY: non-NULL, and at least the protocol byte is readable (contract).
    let len = UdpAddress::encoded_len(unsafe { *addr })?;
    // SAFETY: a known protocol byte is followed by its address bytes (contract).
    UdpAddress::from_bytes(unsafe { core::slice::from_raw_parts(addr, len) })
}

/// Returns the sender address stored after a SOCKET_UDP payload and its size (7 or 19), or
/// NULL (leaving `*addrsz` alone) for an unknown protocol byte. Uses only `msg->data` and
/// `msg->ud`.
///
/// # Safety
/// `msg` is NULL or a SOCKET_UDP result whose data is still allocated; `addrsz` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_udp_address(
    ss: *mut socket_server,
    msg: *mut socket_message,
    addrsz: *mut c_int,
) -> *const socket_udp_address {
    let _ = ss; // unused: a worker rebuilds the address from a forwarded message alone
    // SAFETY: contract above.
    let Some(msg) = (unsafe { arg_ref(msg, "socket_server_udp_address", "message") }) else {
        return ptr::null();
    };
    if msg.data.is_null() || msg.ud < 0 {
        return ptr::null();
    }
    // SAFETY: a UDP result's data holds `ud` payload bytes followed by the address.
    let address = unsafe { msg.data.cast::<u8>().add(msg.ud as usize) };
    // SAFETY: `address` points at the protocol byte written by this library.
    let Some(len) = UdpAddress::encoded_len(unsafe { *address }) else {
        return ptr::null();
    };
    if !addrsz.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *addrsz = len as c_int };
    }
    address.cast()
}

/// Sets the callbacks used for SOCKET_BUFFER_OBJECT payloads.
///
/// # Safety
/// `ss` is NULL or a live server; `soi` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_userobject(
    ss: *mut socket_server,
    soi: *mut socket_object_interface,
) {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_userobject") }) else {
        return;
    };
    // SAFETY: contract above.
    let Some(soi) = (unsafe { arg_ref(soi, "socket_server_userobject", "interface") }) else {
        return;
    };
    ss.set_object_interface(*soi);
}

/// A malloc'ed list describing every live socket; free it with `socket_info_release`.
///
/// # Safety
/// `ss` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_server_info(ss: *mut socket_server) -> *mut socket_info {
    // SAFETY: contract above.
    let Some(ss) = (unsafe { server_ref(ss, "socket_server_info") }) else {
        return ptr::null_mut();
    };
    let mut list = ptr::null_mut();
    ss.server.for_each_info(|entry| {
        let node = socket_info_create(list);
        if node != list {
            list = node;
            // SAFETY: socket_info_create returned a fresh, zeroed node that only we hold.
            fill_info(unsafe { &mut *list }, &entry);
        }
    });
    list
}

fn fill_info(si: &mut socket_info, entry: &InfoEntry) {
    si.id = entry.id.raw();
    si.r#type = entry.kind as c_int;
    si.opaque = entry.opaque as u64;
    si.read = entry.read;
    si.write = entry.write;
    si.rtime = entry.rtime;
    si.wtime = entry.wtime;
    si.wbuffer = entry.wbuffer as i64;
    si.reading = entry.reading.into();
    si.writing = entry.writing.into();
    if let Some(addr) = entry.name {
        let mut name = NameWriter {
            buf: &mut si.name,
            len: 0,
        };
        let _ = write!(name, "{}", addr.with_port());
    }
}

/// Writes text into a fixed C char array, truncating, always leaving a NUL at the end.
struct NameWriter<'a> {
    buf: &'a mut [c_char],
    len: usize,
}

impl core::fmt::Write for NameWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &byte in s.as_bytes() {
            if self.len + 1 >= self.buf.len() {
                break;
            }
            self.buf[self.len] = byte as c_char;
            self.len += 1;
        }
        self.buf[self.len] = 0;
        Ok(())
    }
}

/// Allocates a zeroed `socket_info` node in front of `last`.
#[unsafe(no_mangle)]
pub extern "C" fn socket_info_create(last: *mut socket_info) -> *mut socket_info {
    // SAFETY: calloc of one node; the caller frees it with socket_info_release (free).
    let si = unsafe { libc::calloc(1, core::mem::size_of::<socket_info>()) }.cast::<socket_info>();
    if si.is_null() {
        log_error(format_args!(
            "socket-server error: out of memory in socket_info_create."
        ));
        return last;
    }
    // SAFETY: `si` is a fresh allocation of the right size and alignment (malloc's).
    unsafe { (*si).next = last };
    si
}

/// Frees a list built by `socket_info_create`.
///
/// # Safety
/// `si` is NULL or the head of a list built with `socket_info_create`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket_info_release(mut si: *mut socket_info) {
    while !si.is_null() {
        // SAFETY: a node of a list built by socket_info_create, freed once here.
        let next = unsafe { (*si).next };
        // SAFETY: as above; allocated with calloc.
        unsafe { libc::free(si.cast()) };
        si = next;
    }
}

impl socket_server {
    fn to_message(&self, report: Report) -> (socket_message, c_int) {
        let data = match report.data {
            ReportData::None => ptr::null_mut(),
            ReportData::Static(text) => text.as_ptr().cast_mut(),
            ReportData::Text(text) => self.keep_text(&text),
            ReportData::Bytes(bytes) => bytes.into_raw().cast(),
        };
        let message = socket_message {
            id: report.id.raw(),
            opaque: report.opaque,
            ud: report.ud,
            data,
        };
        (message, report.kind as c_int)
    }
}

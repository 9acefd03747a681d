//! One poll result, as the core produces it; `ffi` turns it into a `socket_message`.

use std::ffi::CStr;

use crate::os::heap::CBuf;
use crate::slots::SocketId;

/// Result types, with skynet's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportKind {
    Data = 0,
    Close = 1,
    Open = 2,
    Accept = 3,
    Error = 4,
    Exit = 5,
    Udp = 6,
    Warning = 7,
}

pub(crate) enum ReportData {
    None,
    /// A fixed string (static storage).
    Static(&'static CStr),
    /// A text valid until the next poll (an address, an strerror text).
    Text(String),
    /// A malloc'ed buffer that becomes the caller's.
    Bytes(CBuf),
}

pub(crate) struct Report {
    pub kind: ReportKind,
    pub id: SocketId,
    pub opaque: usize,
    pub ud: i32,
    pub data: ReportData,
}

/// The fixed texts skynet's Lua code and operators read (SPEC section 11).
pub(crate) mod text {
    use std::ffi::CStr;
    pub(crate) const NO_SLOT: &CStr = c"reach skynet socket number limit";
    pub(crate) const ENABLE_WRITE_FAILED: &CStr = c"enable write failed";
    pub(crate) const DISABLE_WRITE_FAILED: &CStr = c"disable write failed";
    pub(crate) const ENABLE_READ_FAILED: &CStr = c"enable read failed";
    pub(crate) const INVALID_SOCKET: &CStr = c"invalid socket";
    pub(crate) const SOCKET_CLOSED: &CStr = c"socket closed";
    pub(crate) const PROTOCOL_MISMATCH: &CStr = c"protocol mismatch";
    pub(crate) const UNKNOWN_ERROR: &CStr = c"Unknown error";
    pub(crate) const START: &CStr = c"start";
    pub(crate) const TRANSFER: &CStr = c"transfer";
    pub(crate) const BINDING: &CStr = c"binding";
}

impl Report {
    fn new(kind: ReportKind, id: SocketId, opaque: usize, ud: i32, data: ReportData) -> Report {
        Report {
            kind,
            id,
            opaque,
            ud,
            data,
        }
    }

    pub(crate) fn exit() -> Report {
        Report::new(
            ReportKind::Exit,
            SocketId::from_raw(0),
            0,
            0,
            ReportData::None,
        )
    }

    pub(crate) fn close(id: SocketId, opaque: usize) -> Report {
        Report::new(ReportKind::Close, id, opaque, 0, ReportData::None)
    }

    pub(crate) fn open(id: SocketId, opaque: usize, ud: i32, data: ReportData) -> Report {
        Report::new(ReportKind::Open, id, opaque, ud, data)
    }

    pub(crate) fn open_static(id: SocketId, opaque: usize, text: &'static CStr) -> Report {
        Report::open(id, opaque, 0, ReportData::Static(text))
    }

    pub(crate) fn error(id: SocketId, opaque: usize, text: &'static CStr) -> Report {
        Report::new(ReportKind::Error, id, opaque, 0, ReportData::Static(text))
    }

    pub(crate) fn error_text(id: SocketId, opaque: usize, text: String) -> Report {
        Report::new(ReportKind::Error, id, opaque, 0, ReportData::Text(text))
    }

    pub(crate) fn accept(
        listener: SocketId,
        opaque: usize,
        new_id: SocketId,
        peer: Option<String>,
    ) -> Report {
        Report::new(
            ReportKind::Accept,
            listener,
            opaque,
            new_id.raw(),
            peer.map_or(ReportData::None, ReportData::Text),
        )
    }

    pub(crate) fn data(id: SocketId, opaque: usize, len: usize, bytes: CBuf) -> Report {
        Report::new(
            ReportKind::Data,
            id,
            opaque,
            len as i32,
            ReportData::Bytes(bytes),
        )
    }

    pub(crate) fn udp(id: SocketId, opaque: usize, len: usize, bytes: CBuf) -> Report {
        Report::new(
            ReportKind::Udp,
            id,
            opaque,
            len as i32,
            ReportData::Bytes(bytes),
        )
    }

    pub(crate) fn warning(id: SocketId, opaque: usize, kib: usize) -> Report {
        Report::new(
            ReportKind::Warning,
            id,
            opaque,
            kib.min(i32::MAX as usize) as i32,
            ReportData::None,
        )
    }
}

//! The close state machine, as pure decisions. CLOSE is reported at most once per socket:
//! when the owner closes it, or when the peer's FIN (read returned 0) or hang-up arrives,
//! whichever comes first. A socket closed by its owner with data queued reports CLOSE at once,
//! keeps writing, then closes silently. A write error half-closes and reports one ERR,
//! unless the socket was already on its way out, in which case it closes silently; one ERR
//! per failure: an error event and the write failing after it report it once.
//! `poll/` applies these decisions; nothing else decides how a socket closes.

use crate::socket::Phase;

/// What `socket_server_close` / `socket_server_shutdown` does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OwnerClose {
    /// Close the fd now; report CLOSE unless it was reported already.
    Now { report: bool },
    /// Keep writing what is queued, then close silently. `stop_reading`: half-close the
    /// read side and report CLOSE now (not done before).
    AfterFlush { stop_reading: bool },
}

pub(crate) fn on_owner_close(phase: Phase, shutdown: bool, nothing_to_send: bool) -> OwnerClose {
    let reported = phase == Phase::HalfClosedRead;
    if shutdown || nothing_to_send {
        OwnerClose::Now { report: !reported }
    } else {
        OwnerClose::AfterFlush {
            stop_reading: !reported,
        }
    }
}

/// What a read of 0 bytes (the peer's FIN) does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadEof {
    /// Nothing to do now.
    Ignore,
    /// Close the fd without a result.
    CloseSilently,
    /// Stop reading, keep the socket writable, report CLOSE.
    HalfCloseAndReport,
    /// Close the fd and report CLOSE (the write side failed before).
    CloseAndReport,
}

pub(crate) fn on_read_eof(phase: Phase, closing: bool, nothing_to_send: bool) -> ReadEof {
    if closing {
        // The owner closed already (CLOSE was reported); only finish when nothing is left.
        return if nothing_to_send {
            ReadEof::CloseSilently
        } else {
            ReadEof::Ignore
        };
    }
    match phase {
        Phase::HalfClosedRead => ReadEof::Ignore,
        Phase::HalfClosedWrite => ReadEof::CloseAndReport,
        _ => ReadEof::HalfCloseAndReport,
    }
}

/// What a failed write (EPIPE, ECONNRESET, ...) does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError {
    CloseSilently,
    /// ERR was reported before; nothing more.
    AlreadyReported,
    /// Shut the write side and drop what is queued; report ERR with the error's text unless
    /// an error event already reported the connection's failure.
    ShutWrite {
        report: bool,
    },
}

/// `error_reported`: an error event (EPOLLERR) of this socket reported ERR before.
pub(crate) fn on_write_error(phase: Phase, closing: bool, error_reported: bool) -> WriteError {
    if closing || phase == Phase::HalfClosedRead {
        WriteError::CloseSilently
    } else if phase == Phase::HalfClosedWrite {
        WriteError::AlreadyReported
    } else {
        WriteError::ShutWrite {
            report: !error_reported,
        }
    }
}

/// EPOLLERR reports ERR with the socket's pending error, unless a failed write already
/// reported one: a write error is reported once (the hang-up that follows closes it).
pub(crate) fn error_event_reports(phase: Phase) -> bool {
    phase != Phase::HalfClosedWrite
}

/// EPOLLHUP closes the socket; CLOSE is reported unless the read side already reported it.
pub(crate) fn hangup_reports_close(phase: Phase) -> bool {
    phase != Phase::HalfClosedRead
}

/// Once the queue drains, a closing socket is closed silently.
pub(crate) fn close_when_drained(closing: bool) -> bool {
    closing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_close_with_nothing_queued_closes_now_and_reports() {
        assert_eq!(
            on_owner_close(Phase::Connected, false, true),
            OwnerClose::Now { report: true }
        );
    }

    #[test]
    fn owner_close_with_data_queued_reports_now_and_flushes() {
        assert_eq!(
            on_owner_close(Phase::Connected, false, false),
            OwnerClose::AfterFlush { stop_reading: true }
        );
    }

    #[test]
    fn close_after_peer_fin_never_reports_a_second_close() {
        assert_eq!(
            on_owner_close(Phase::HalfClosedRead, false, true),
            OwnerClose::Now { report: false }
        );
        assert_eq!(
            on_owner_close(Phase::HalfClosedRead, false, false),
            OwnerClose::AfterFlush {
                stop_reading: false
            }
        );
        assert_eq!(
            on_owner_close(Phase::HalfClosedRead, true, false),
            OwnerClose::Now { report: false }
        );
    }

    #[test]
    fn shutdown_drops_queued_data_and_closes_now() {
        assert_eq!(
            on_owner_close(Phase::Connected, true, false),
            OwnerClose::Now { report: true }
        );
    }

    #[test]
    fn peer_fin_half_closes_once() {
        assert_eq!(
            on_read_eof(Phase::Connected, false, true),
            ReadEof::HalfCloseAndReport
        );
        assert_eq!(
            on_read_eof(Phase::HalfClosedRead, false, true),
            ReadEof::Ignore
        );
        assert_eq!(
            on_read_eof(Phase::HalfClosedWrite, false, true),
            ReadEof::CloseAndReport
        );
    }

    #[test]
    fn peer_fin_on_a_closing_socket_is_silent() {
        assert_eq!(
            on_read_eof(Phase::HalfClosedRead, true, true),
            ReadEof::CloseSilently
        );
        assert_eq!(
            on_read_eof(Phase::HalfClosedRead, true, false),
            ReadEof::Ignore
        );
    }

    #[test]
    fn write_errors_report_once_or_close_silently() {
        assert_eq!(
            on_write_error(Phase::Connected, false, false),
            WriteError::ShutWrite { report: true }
        );
        assert_eq!(
            on_write_error(Phase::HalfClosedWrite, false, false),
            WriteError::AlreadyReported
        );
        assert_eq!(
            on_write_error(Phase::HalfClosedRead, false, false),
            WriteError::CloseSilently
        );
        assert_eq!(
            on_write_error(Phase::HalfClosedRead, true, false),
            WriteError::CloseSilently
        );
    }

    #[test]
    fn a_write_error_after_an_error_event_is_not_a_second_err() {
        assert_eq!(
            on_write_error(Phase::Connected, false, true),
            WriteError::ShutWrite { report: false }
        );
    }

    #[test]
    fn an_error_event_after_a_failed_write_is_not_a_second_err() {
        assert!(error_event_reports(Phase::Connected));
        assert!(error_event_reports(Phase::HalfClosedRead));
        assert!(!error_event_reports(Phase::HalfClosedWrite));
    }

    #[test]
    fn hangup_after_fin_is_silent() {
        assert!(hangup_reports_close(Phase::Connected));
        assert!(hangup_reports_close(Phase::PendingAccept));
        assert!(!hangup_reports_close(Phase::HalfClosedRead));
    }
}

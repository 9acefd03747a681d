//! The write path's queues. Each socket has a high and a low priority queue; the high queue
//! drains first, and a low buffer that went out in part is promoted to the head of the high
//! queue so it finishes before any other high data. Stream sockets leave through one
//! vectored write per call (up to IOV_MAX buffers), datagrams one `sendto` each.
//! Also here: the WARNING thresholds (1 MiB, then doubling) and the drained WARNING 0.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use crate::send_buffer::{CopyFailed, SendBuffer, copy_of};
use crate::udp_address::UdpAddress;

/// First WARNING threshold; each WARNING doubles it.
pub(crate) const WARNING_SIZE: usize = 1024 * 1024;
/// Small sends are merged into a copied tail buffer up to this size.
const COALESCE_LIMIT: usize = 64 * 1024;
/// Buffers up to this size are copied (and released at once) rather than queued.
const SMALL_COPY: usize = 512;
/// Buffers handed to one vectored write.
const MAX_IOV: usize = crate::os::IOV_MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Priority {
    High,
    Low,
}

struct Pending {
    buf: SendBuffer,
    /// Bytes of `buf` already written.
    offset: usize,
    /// Destination of a queued datagram; `None` for streams and the default destination.
    to: Option<UdpAddress>,
    /// Whether later small sends may be appended to `buf` (a copied stream buffer).
    mergeable: bool,
}

impl Pending {
    fn new(buf: SendBuffer, to: Option<UdpAddress>) -> Pending {
        let mergeable = matches!(buf, SendBuffer::Copied(_)) && to.is_none();
        Pending {
            buf,
            offset: 0,
            to,
            mergeable,
        }
    }

    fn rest(&self) -> &[u8] {
        &self.buf.bytes()[self.offset..]
    }
}

/// A WARNING raised by an append: queued KiB, and the episode it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Warning {
    pub kib: usize,
    pub episode: u32,
}

/// How a flush ended.
#[derive(Debug)]
pub(crate) enum FlushEnd {
    /// Both queues are empty.
    Drained,
    /// The kernel buffer is full; wait for writability.
    Blocked,
    /// A write failed; the error is the caller's to handle.
    Failed(io::Error),
}

/// What became of one datagram handed to the sender.
pub(crate) enum DatagramSent {
    Sent(usize),
    /// Try again when writable.
    Blocked,
    /// Dropped (the sender logged why).
    Dropped,
}

#[derive(Default)]
pub(crate) struct WriteQueue {
    high: VecDeque<Pending>,
    low: VecDeque<Pending>,
    queued: usize,
    warn_at: usize,
    /// Counts the drains that ended a WARNING episode; tags each WARNING raised.
    warn_episode: u32,
    /// A WARNING of the current episode was reported.
    warned: bool,
    /// Bytes of a direct write's unwritten rest at the head of `high` that the poll thread has
    /// not taken over yet. Upstream keeps that rest outside its queues until its next write
    /// round, so until then it neither counts as queued (WARNING, socket_info) nor stops a
    /// low-priority send from going to the high queue.
    unadopted_rest: usize,
}

impl WriteQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.high.is_empty() && self.low.is_empty()
    }

    /// Empty but for an unadopted direct-write rest: a send of either priority goes high.
    fn is_idle(&self) -> bool {
        self.low.is_empty() && self.high.len() == usize::from(self.unadopted_rest > 0)
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// The list a send goes to: a send to an idle socket goes to the high queue, whatever
    /// its priority.
    fn list_for(&mut self, priority: Priority) -> &mut VecDeque<Pending> {
        if priority == Priority::Low && !self.is_idle() {
            &mut self.low
        } else {
            &mut self.high
        }
    }

    /// Appends a stream buffer. A small MEMORY buffer is copied into a copied tail buffer and
    /// freed at once, so a flood of tiny sends costs neither an allocation nor a queue entry
    /// each. (OBJECT buffers are kept: their free callback is observable.)
    pub(crate) fn push_stream(&mut self, priority: Priority, buf: SendBuffer) {
        let len = buf.bytes().len();
        if len == 0 {
            return;
        }
        let copy = match &buf {
            SendBuffer::Copied(_) => true,
            SendBuffer::Foreign(foreign) => len <= SMALL_COPY && !foreign.is_object(),
        };
        if copy && self.append_to_copied_tail(priority, buf.bytes()) {
            return;
        }
        let buf = match buf {
            SendBuffer::Foreign(_) if copy => SendBuffer::Copied(buf.bytes().to_vec()),
            buf => buf,
        };
        self.queued += len;
        self.list_for(priority).push_back(Pending::new(buf, None));
    }

    /// Appends bytes the caller keeps (RAWPOINTER): copied, merged into a copied tail if any.
    /// Nothing is queued when the copy cannot be allocated.
    pub(crate) fn push_copy(&mut self, priority: Priority, bytes: &[u8]) -> Result<(), CopyFailed> {
        if bytes.is_empty() || self.append_to_copied_tail(priority, bytes) {
            return Ok(());
        }
        let copy = SendBuffer::Copied(copy_of(bytes)?);
        self.queued += bytes.len();
        self.list_for(priority).push_back(Pending::new(copy, None));
        Ok(())
    }

    fn append_to_copied_tail(&mut self, priority: Priority, bytes: &[u8]) -> bool {
        let list = self.list_for(priority);
        let Some(Pending {
            buf: SendBuffer::Copied(tail),
            mergeable: true,
            ..
        }) = list.back_mut()
        else {
            return false;
        };
        if tail.len() + bytes.len() > COALESCE_LIMIT {
            return false;
        }
        tail.extend_from_slice(bytes);
        self.queued += bytes.len();
        true
    }

    /// Puts the unwritten rest of a direct write in front of everything. Only used when both
    /// queues are empty, so the order of bytes is kept.
    pub(crate) fn push_direct_rest(
        &mut self,
        buf: SendBuffer,
        offset: usize,
        to: Option<UdpAddress>,
    ) {
        self.unadopted_rest = buf.bytes().len() - offset;
        self.high.push_front(Pending {
            buf,
            offset,
            to,
            mergeable: false,
        });
    }

    /// The poll thread's write round takes over a direct write's rest.
    fn adopt_rest(&mut self) {
        self.queued += std::mem::take(&mut self.unadopted_rest);
    }

    /// Appends a datagram (kept whole, never merged).
    pub(crate) fn push_datagram(
        &mut self,
        priority: Priority,
        buf: SendBuffer,
        to: Option<UdpAddress>,
    ) {
        self.queued += buf.bytes().len();
        self.list_for(priority).push_back(Pending {
            buf,
            offset: 0,
            to,
            mergeable: false,
        });
    }

    /// Drops everything queued (the buffers are released).
    pub(crate) fn clear(&mut self) {
        self.high.clear();
        self.low.clear();
        self.queued = 0;
        self.unadopted_rest = 0;
        self.end_warning_episode();
        self.warned = false;
    }

    /// Writes as much as `write` accepts: high buffers, then low ones, in one vectored call
    /// each round. Returns the bytes written and how it ended.
    pub(crate) fn flush_stream(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> (usize, FlushEnd) {
        self.adopt_rest();
        let mut total = 0;
        loop {
            if self.is_empty() {
                return (total, FlushEnd::Drained);
            }
            let slices: Vec<IoSlice<'_>> = self
                .high
                .iter()
                .chain(self.low.iter())
                .take(MAX_IOV)
                .map(|p| IoSlice::new(p.rest()))
                .collect();
            let offered: usize = slices.iter().map(|s| s.len()).sum();
            let result = write(&slices);
            drop(slices);
            match result {
                Ok(n) => {
                    self.consume(n);
                    total += n;
                    if n < offered {
                        // A short write means the kernel buffer is full.
                        return (total, FlushEnd::Blocked);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return (total, FlushEnd::Blocked);
                }
                Err(err) => return (total, FlushEnd::Failed(err)),
            }
        }
    }

    fn consume(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let from_low = self.high.is_empty();
            let list = if from_low {
                &mut self.low
            } else {
                &mut self.high
            };
            let front = list.front_mut().expect("written bytes were queued");
            let rest = front.rest().len();
            if n >= rest {
                n -= rest;
                list.pop_front();
            } else {
                front.offset += n;
                n = 0;
                if from_low {
                    // Finish this buffer before any later high priority data.
                    let partial = self.low.pop_front().expect("front exists");
                    self.high.push_front(partial);
                }
            }
        }
    }

    /// Sends queued datagrams, high first, until drained or blocked.
    pub(crate) fn flush_datagrams(
        &mut self,
        mut send: impl FnMut(&[u8], Option<&UdpAddress>) -> DatagramSent,
    ) -> (usize, FlushEnd) {
        self.adopt_rest();
        let mut total = 0;
        loop {
            let list = if self.high.is_empty() {
                &mut self.low
            } else {
                &mut self.high
            };
            let Some(front) = list.front() else {
                return (total, FlushEnd::Drained);
            };
            match send(front.rest(), front.to.as_ref()) {
                DatagramSent::Blocked => return (total, FlushEnd::Blocked),
                DatagramSent::Sent(n) => total += n,
                DatagramSent::Dropped => {}
            }
            let done = list.pop_front().expect("front exists");
            self.queued -= done.rest().len();
        }
    }

    /// After queueing: a WARNING (KiB rounded up) when the queue passed the next threshold.
    /// The poll thread reports it after `confirm_warning`, which drops it if the queue drained
    /// in between (a worker's append raises it, the poll thread reports it later).
    pub(crate) fn check_warning(&mut self) -> Option<Warning> {
        if self.queued >= WARNING_SIZE && self.queued >= self.warn_at {
            self.warn_at = if self.warn_at == 0 {
                WARNING_SIZE * 2
            } else {
                self.warn_at * 2
            };
            return Some(Warning {
                kib: self.queued.div_ceil(1024),
                episode: self.warn_episode,
            });
        }
        None
    }

    /// Whether a raised WARNING is still current (its queue has not drained since); if so it
    /// counts as reported, so the drain will report WARNING 0.
    pub(crate) fn confirm_warning(&mut self, warning: &Warning) -> bool {
        let current = warning.episode == self.warn_episode && self.warn_at > 0;
        self.warned |= current;
        current
    }

    /// After draining: true once when a WARNING was reported, for the WARNING 0. Ends the
    /// episode, so a WARNING raised before the drain and not reported yet is dropped.
    pub(crate) fn take_drained_warning(&mut self) -> bool {
        self.end_warning_episode();
        std::mem::take(&mut self.warned)
    }

    fn end_warning_episode(&mut self) {
        if std::mem::take(&mut self.warn_at) > 0 {
            self.warn_episode = self.warn_episode.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(bytes: &[u8]) -> SendBuffer {
        SendBuffer::Copied(bytes.to_vec())
    }

    /// A fake stream that accepts at most `room` more bytes.
    struct Stream {
        got: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Stream {
        fn new(room: usize) -> Self {
            Stream {
                got: Vec::new(),
                room,
                calls: 0,
            }
        }
        fn write(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for s in slices {
                let take = s.len().min(self.room - n);
                self.got.extend_from_slice(&s[..take]);
                n += take;
            }
            self.room -= n;
            Ok(n)
        }
    }

    #[test]
    fn high_drains_before_low_in_one_vectored_write() {
        let mut q = WriteQueue::default();
        q.push_stream(Priority::Low, copied(b"first"));
        q.push_stream(
            Priority::Low,
            SendBuffer::Copied(vec![b'l'; COALESCE_LIMIT]),
        );
        q.push_stream(Priority::High, copied(b"high"));
        let mut s = Stream::new(usize::MAX);
        let (n, end) = q.flush_stream(|v| s.write(v));
        assert!(matches!(end, FlushEnd::Drained));
        assert_eq!(n, 9 + COALESCE_LIMIT);
        assert_eq!(&s.got[..9], b"firsthigh");
        assert_eq!(s.calls, 1);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_send_to_an_idle_queue_goes_high_whatever_its_priority() {
        let mut q = WriteQueue::default();
        q.push_stream(
            Priority::Low,
            SendBuffer::Copied(vec![b'a'; COALESCE_LIMIT]),
        );
        assert_eq!((q.high.len(), q.low.len()), (1, 0));
    }

    #[test]
    fn a_partly_written_low_buffer_finishes_before_later_high_data() {
        let mut q = WriteQueue::default();
        q.push_stream(Priority::Low, SendBuffer::Copied(vec![b'a'; 10]));
        q.push_stream(Priority::Low, SendBuffer::Copied(vec![b'c'; 70_000]));
        let mut s = Stream::new(4);
        let (_, end) = q.flush_stream(|v| s.write(v));
        assert!(matches!(end, FlushEnd::Blocked));
        q.push_stream(Priority::High, copied(b"HIGH"));
        s.room = 1 << 20;
        q.flush_stream(|v| s.write(v));
        let mut expected = vec![b'a'; 10];
        expected.extend_from_slice(b"HIGH");
        expected.extend(vec![b'c'; 70_000]);
        assert_eq!(s.got, expected);
    }

    #[test]
    fn small_copies_coalesce_but_keep_their_order_and_priority() {
        let mut q = WriteQueue::default();
        for i in 0..100u8 {
            q.push_stream(
                if i % 2 == 0 {
                    Priority::High
                } else {
                    Priority::Low
                },
                copied(&[i]),
            );
        }
        assert_eq!(q.high.len(), 1);
        assert_eq!(q.low.len(), 1);
        let mut s = Stream::new(1000);
        q.flush_stream(|v| s.write(v));
        let expected: Vec<u8> = (0..100u8).step_by(2).chain((1..100u8).step_by(2)).collect();
        assert_eq!(s.got, expected);
    }

    #[test]
    fn borrowed_bytes_join_the_copied_tail_of_their_priority() {
        let mut q = WriteQueue::default();
        q.push_copy(Priority::High, b"ab").unwrap();
        q.push_copy(Priority::Low, b"xy").unwrap();
        q.push_copy(Priority::High, b"cd").unwrap();
        q.push_stream(Priority::High, SendBuffer::Copied(vec![b'e'; 1000]));
        assert_eq!((q.high.len(), q.low.len(), q.queued()), (1, 1, 1006));
        let mut s = Stream::new(2000);
        q.flush_stream(|v| s.write(v));
        assert_eq!(&s.got[..4], b"abcd");
        assert_eq!(&s.got[1004..], b"xy");
    }

    #[test]
    fn a_direct_write_rest_is_neither_queued_nor_in_the_way_of_a_low_send() {
        let mut q = WriteQueue::default();
        q.push_direct_rest(copied(b"Arest"), 1, None);
        assert_eq!(q.queued(), 0);
        q.push_copy(Priority::Low, b"a").unwrap();
        q.push_copy(Priority::Low, b"b").unwrap();
        q.push_copy(Priority::High, b"h").unwrap();
        let mut s = Stream::new(100);
        let (n, _) = q.flush_stream(|v| s.write(v));
        assert_eq!(n, 7);
        assert_eq!(s.got, b"restahb");
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_write_error_is_returned_and_the_data_stays_for_the_caller() {
        let mut q = WriteQueue::default();
        q.push_stream(Priority::High, copied(b"x"));
        let (_, end) = q.flush_stream(|_| Err(io::Error::from_raw_os_error(libc::EPIPE)));
        assert!(matches!(end, FlushEnd::Failed(e) if e.raw_os_error() == Some(libc::EPIPE)));
        assert_eq!(q.queued(), 1);
    }

    #[test]
    fn warnings_at_one_two_four_mib_then_zero_once_drained() {
        let mut q = WriteQueue::default();
        let mut seen = Vec::new();
        for _ in 0..64 {
            q.push_stream(Priority::High, SendBuffer::Copied(vec![0; 128 * 1024]));
            seen.extend(
                q.check_warning()
                    .filter(|w| q.confirm_warning(w))
                    .map(|w| w.kib),
            );
        }
        assert_eq!(seen, vec![1024, 2048, 4096, 8192]);
        let mut s = Stream::new(usize::MAX);
        let (_, end) = q.flush_stream(|v| s.write(v));
        assert!(matches!(end, FlushEnd::Drained));
        assert!(q.take_drained_warning());
        assert!(!q.take_drained_warning());
    }

    #[test]
    fn warning_kib_round_up() {
        let mut q = WriteQueue::default();
        q.push_stream(
            Priority::High,
            SendBuffer::Copied(vec![0; WARNING_SIZE + 1]),
        );
        assert_eq!(q.check_warning().map(|w| w.kib), Some(1025));
    }

    #[test]
    fn a_warning_raised_before_a_drain_and_reported_after_it_is_dropped() {
        let mut q = WriteQueue::default();
        q.push_stream(Priority::High, SendBuffer::Copied(vec![0; WARNING_SIZE]));
        let stale = q.check_warning().unwrap();
        let mut s = Stream::new(usize::MAX);
        q.flush_stream(|v| s.write(v));
        assert!(!q.take_drained_warning(), "never reported, so no WARNING 0");
        assert!(!q.confirm_warning(&stale));
        q.push_stream(Priority::High, SendBuffer::Copied(vec![0; WARNING_SIZE]));
        let fresh = q.check_warning().unwrap();
        assert!(q.confirm_warning(&fresh));
        assert_eq!(fresh.kib, 1024);
    }

    #[test]
    fn datagrams_stay_whole_and_blocked_ones_wait() {
        let mut q = WriteQueue::default();
        q.push_datagram(Priority::High, copied(b"one"), None);
        q.push_datagram(Priority::High, copied(b"two"), None);
        let mut sent = Vec::new();
        let (_, end) = q.flush_datagrams(|b, _| {
            if sent.is_empty() {
                sent.push(b.to_vec());
                DatagramSent::Sent(b.len())
            } else {
                DatagramSent::Blocked
            }
        });
        assert!(matches!(end, FlushEnd::Blocked));
        assert_eq!(q.queued(), 3);
        let (_, end) = q.flush_datagrams(|b, _| {
            sent.push(b.to_vec());
            DatagramSent::Sent(b.len())
        });
        assert!(matches!(end, FlushEnd::Drained));
        assert_eq!(sent, vec![b"one".to_vec(), b"two".to_vec()]);
    }
}

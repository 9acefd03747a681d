//! The sockets the poll thread reads without their lock, and the one way it locks a socket.
//!
//! A worker holds a socket's lock across a direct write or sendto; the poll thread would
//! otherwise sleep on it with every read. A reader keeps what reading needs (fd, owner, read
//! size, counters). Only the poll thread changes those fields of a socket, and only with the
//! socket locked, so an entry stays true until the poll thread locks the socket again:
//! `Readers::lock` drops the entry first (writing the read size back), and the poll thread
//! locks sockets through it alone (commands included), so the rule holds by construction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::RawFd;
use std::sync::Arc;

use crate::slots::{Entry, SlotTable, SocketId, TryLock};
use crate::socket::{Phase, Socket, Stats};
use crate::udp_address::UdpFamily;

/// What reading one socket needs.
enum Reader {
    Stream(StreamReader),
    Datagram(DatagramReader),
}

pub(super) struct DatagramReader {
    pub(super) opaque: usize,
    pub(super) fd: RawFd,
    pub(super) family: Option<UdpFamily>,
    pub(super) stats: Arc<Stats>,
}

impl DatagramReader {
    /// The reader of a UDP socket that is reading.
    pub(super) fn of(socket: &Socket) -> Option<DatagramReader> {
        (socket.is_udp() && socket.interest.read && socket.phase == Phase::Connected).then(|| {
            DatagramReader {
                opaque: socket.opaque,
                fd: socket.fd(),
                family: socket.udp_family(),
                stats: Arc::clone(&socket.stats),
            }
        })
    }
}

pub(super) struct StreamReader {
    pub(super) fd: RawFd,
    pub(super) opaque: usize,
    pub(super) read_size: usize,
    pub(super) stats: Arc<Stats>,
}

impl StreamReader {
    /// The reader of a socket whose reads need nothing else: a started, connected stream (or
    /// bound descriptor) still reading.
    pub(super) fn of(socket: &Socket) -> Option<StreamReader> {
        let readable = matches!(
            socket.phase,
            Phase::Connected | Phase::HalfClosedWrite | Phase::Bound
        );
        (readable && socket.interest.read && !socket.is_udp()).then(|| StreamReader {
            fd: socket.fd(),
            opaque: socket.opaque,
            read_size: socket.read_size,
            stats: Arc::clone(&socket.stats),
        })
    }
}

/// Hashes a socket id with one multiplication: ids are distinct ints chosen by us, so
/// SipHash's protection against chosen keys buys nothing on a lookup made per event.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i32(&mut self, id: i32) {
        // Fibonacci hashing spreads consecutive ids over the high bits the table uses too.
        self.0 = u64::from(id as u32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Which kind of reader a socket has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReaderKind {
    Stream,
    Datagram,
}

/// The poll thread's readers, by socket id.
#[derive(Default)]
pub(super) struct Readers {
    by_id: HashMap<SocketId, Reader, BuildHasherDefault<IdHasher>>,
}

impl Readers {
    /// Locks socket `id` for the poll thread. Its reader, if any, is dropped first (its read
    /// size written back): with the lock taken anything about the socket may change, so reads
    /// go through the lock until a reader is made again.
    pub(super) fn lock<'t>(
        &mut self,
        table: &'t SlotTable<Socket>,
        id: SocketId,
    ) -> Option<Entry<'t, Socket>> {
        let mut socket = table.lock(id);
        self.drop_reader(id, socket.as_deref_mut());
        socket
    }

    /// Locks socket `id` as `lock` does if no worker holds its lock; the reader stays when it
    /// is busy. The poll thread takes this where a worker may hold the lock across a write.
    pub(super) fn try_lock<'t>(
        &mut self,
        table: &'t SlotTable<Socket>,
        id: SocketId,
    ) -> TryLock<'t, Socket> {
        let mut locked = table.try_lock(id);
        match &mut locked {
            TryLock::Locked(socket) => self.drop_reader(id, Some(socket)),
            TryLock::Gone => self.drop_reader(id, None),
            TryLock::Busy => {}
        }
        locked
    }

    /// Drops the reader of `id` now that its socket is locked (its read size written back),
    /// or gone (which a reader never outlives).
    fn drop_reader(&mut self, id: SocketId, socket: Option<&mut Socket>) {
        match (self.by_id.remove(&id), socket) {
            (Some(Reader::Stream(reader)), Some(socket)) => socket.read_size = reader.read_size,
            (Some(_), None) => debug_assert!(false, "socket {id} closed behind its reader"),
            _ => {}
        }
    }

    /// Drops the reader of a datagram socket about to close without its lock (it has nothing
    /// to write back).
    pub(super) fn forget(&mut self, id: SocketId) {
        let reader = self.by_id.remove(&id);
        debug_assert!(matches!(reader, Some(Reader::Datagram(_))));
    }

    pub(super) fn stream(&mut self, id: SocketId) -> Option<&mut StreamReader> {
        match self.by_id.get_mut(&id) {
            Some(Reader::Stream(reader)) => Some(reader),
            _ => None,
        }
    }

    pub(super) fn datagram(&self, id: SocketId) -> Option<&DatagramReader> {
        match self.by_id.get(&id) {
            Some(Reader::Datagram(reader)) => Some(reader),
            _ => None,
        }
    }

    /// The kind of reader socket `id` has, if any (one lookup, for the dispatch of an event).
    pub(super) fn kind(&self, id: SocketId) -> Option<ReaderKind> {
        self.by_id.get(&id).map(|reader| match reader {
            Reader::Stream(_) => ReaderKind::Stream,
            Reader::Datagram(_) => ReaderKind::Datagram,
        })
    }

    /// Makes a reader of the locked `socket` if it can be read without its lock. The caller
    /// drops the lock next.
    pub(super) fn start(&mut self, socket: &Socket) -> bool {
        let reader = match (StreamReader::of(socket), DatagramReader::of(socket)) {
            (Some(stream), _) => Reader::Stream(stream),
            (None, Some(datagram)) => Reader::Datagram(datagram),
            (None, None) => return false,
        };
        self.by_id.insert(socket.id, reader);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Interest;
    use crate::socket::{Descriptor, Transport};
    use crate::udp_address::UdpFamily;

    fn reading_socket(table: &SlotTable<Socket>, transport: Transport) -> SocketId {
        let id = table
            .reserve(|id| Socket::reserved(id, 7, transport))
            .unwrap();
        let mut socket = table.lock(id).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        socket.descriptor = Descriptor::Owned(file.into());
        socket.phase = Phase::Connected;
        socket.interest = Interest {
            read: true,
            write: false,
        };
        id
    }

    #[test]
    fn locking_a_socket_drops_its_reader_and_keeps_the_read_size_it_learned() {
        let table = SlotTable::default();
        let id = reading_socket(&table, Transport::Tcp);
        let mut readers = Readers::default();
        let fd = table.lock(id).unwrap().fd();
        assert!(readers.start(&table.lock(id).unwrap()));
        let reader = readers.stream(id).unwrap();
        assert_eq!((reader.fd, reader.opaque), (fd, 7));
        reader.read_size = 4096;
        let socket = readers.lock(&table, id).unwrap();
        assert_eq!(socket.read_size, 4096);
        drop(socket);
        assert_eq!(readers.kind(id), None);
    }

    #[test]
    fn only_sockets_that_read_get_a_reader() {
        let table = SlotTable::default();
        let mut readers = Readers::default();
        let paused = reading_socket(&table, Transport::Tcp);
        table.lock(paused).unwrap().interest.read = false;
        let pending = reading_socket(&table, Transport::Tcp);
        table.lock(pending).unwrap().phase = Phase::PendingAccept;
        let half_closed = reading_socket(&table, Transport::Tcp);
        table.lock(half_closed).unwrap().phase = Phase::HalfClosedRead;
        for id in [paused, pending, half_closed] {
            let socket = readers.lock(&table, id).unwrap();
            assert!(!readers.start(&socket));
        }
        let udp = reading_socket(&table, Transport::Udp(UdpFamily::V4));
        assert!(readers.start(&table.lock(udp).unwrap()));
        assert_eq!(readers.kind(udp), Some(ReaderKind::Datagram));
        assert!(readers.datagram(udp).is_some() && readers.stream(udp).is_none());
    }

    #[test]
    #[should_panic(expected = "closed behind its reader")]
    fn a_reader_that_outlives_its_socket_is_caught() {
        let table = SlotTable::default();
        let id = reading_socket(&table, Transport::Tcp);
        let mut readers = Readers::default();
        assert!(readers.start(&table.lock(id).unwrap()));
        // A close that forgot the reader rule.
        table.lock(id).unwrap().remove();
        let _ = readers.lock(&table, id);
    }
}

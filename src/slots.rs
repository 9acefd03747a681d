//! Ids and the slot table. An id is a positive int from a counter; its slot is `id % 65536`.
//! Each slot records the full id that owns it, so a stale id (closed, or never issued) can
//! never reach the socket that later reuses its slot. Slots come in chunks allocated on
//! first use, so memory follows the ids in use rather than the 65536 maximum.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

/// A socket id as skynet sees it: a positive int from a counter. Distinct from a descriptor,
/// and from any other int: a caller's int becomes one with `from_raw`, and may name no socket
/// at all (stale, never issued, not positive), which `SlotTable::lock` answers with `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SocketId(i32);

impl SocketId {
    pub(crate) fn from_raw(raw: i32) -> SocketId {
        SocketId(raw)
    }

    pub(crate) fn raw(self) -> i32 {
        self.0
    }
}

impl std::fmt::Display for SocketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// At most this many sockets exist at once (skynet's limit).
pub(crate) const MAX_SOCKETS: usize = 1 << 16;
const CHUNK_SLOTS: usize = 256;
const CHUNKS: usize = MAX_SOCKETS / CHUNK_SLOTS;

struct Slot<T> {
    /// The id that owns the slot, 0 when free. Claimed with a CAS so reservation needs no lock.
    owner: AtomicI32,
    state: Mutex<Option<Box<T>>>,
}

struct Chunk<T> {
    slots: Box<[Slot<T>]>,
}

/// The table of live sockets, generic so tests can drive it without sockets.
pub(crate) struct SlotTable<T> {
    /// Allocated on first use, published once, freed with the table.
    chunks: Box<[OnceLock<Chunk<T>>]>,
    next_id: AtomicU32,
}

/// A locked, live entry. Holding it is holding the socket's lock.
pub(crate) struct Entry<'a, T> {
    slot: &'a Slot<T>,
    guard: MutexGuard<'a, Option<Box<T>>>,
}

impl<T> Default for SlotTable<T> {
    fn default() -> Self {
        SlotTable {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            next_id: AtomicU32::new(0),
        }
    }
}

fn slot_index(id: SocketId) -> (usize, usize) {
    let index = id.0 as usize % MAX_SOCKETS;
    (index / CHUNK_SLOTS, index % CHUNK_SLOTS)
}

impl<T> SlotTable<T> {
    fn chunk(&self, n: usize) -> Option<&Chunk<T>> {
        self.chunks[n].get()
    }

    fn chunk_or_alloc(&self, n: usize) -> &Chunk<T> {
        self.chunks[n].get_or_init(|| Chunk {
            slots: (0..CHUNK_SLOTS)
                .map(|_| Slot {
                    owner: AtomicI32::new(0),
                    state: Mutex::new(None),
                })
                .collect(),
        })
    }

    fn slot(&self, id: SocketId) -> Option<&Slot<T>> {
        if id.0 <= 0 {
            return None;
        }
        let (chunk, index) = slot_index(id);
        self.chunk(chunk).map(|c| &c.slots[index])
    }

    /// Reserves a fresh id and stores `make(id)` in its slot. Ids come from a counter, so
    /// they are consecutive while slots are free; `None` when every slot is taken.
    pub(crate) fn reserve(&self, make: impl FnOnce(SocketId) -> T) -> Option<SocketId> {
        for _ in 0..MAX_SOCKETS {
            let id = SocketId(
                (self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0x7fff_ffff) as i32,
            );
            if id.0 == 0 {
                continue;
            }
            let (chunk, index) = slot_index(id);
            let slot = &self.chunk_or_alloc(chunk).slots[index];
            if slot
                .owner
                .compare_exchange(0, id.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                *slot.state.lock() = Some(Box::new(make(id)));
                return Some(id);
            }
        }
        None
    }

    /// Locks the live entry of `id`, or `None` for a stale, unknown or invalid id.
    pub(crate) fn lock(&self, id: SocketId) -> Option<Entry<'_, T>> {
        let slot = self.slot(id)?;
        if slot.owner.load(Ordering::Acquire) != id.0 {
            return None;
        }
        let guard = slot.state.lock();
        // Re-check under the lock: the slot may have been released and reused meanwhile.
        (slot.owner.load(Ordering::Acquire) == id.0 && guard.is_some())
            .then_some(Entry { slot, guard })
    }

    /// Slots that have an owner, in slot order (chunks never allocated are skipped).
    fn owned_slots(&self) -> impl Iterator<Item = &Slot<T>> {
        (0..CHUNKS)
            .filter_map(|n| self.chunk(n))
            .flat_map(|chunk| chunk.slots.iter())
            .filter(|slot| slot.owner.load(Ordering::Acquire) != 0)
    }

    /// Takes a snapshot of every live entry under its lock (`take`), then hands it to `visit`
    /// with the lock released, so `visit` may allocate or block without holding up the socket.
    pub(crate) fn for_each_snapshot<S>(
        &self,
        mut take: impl FnMut(&T) -> Option<S>,
        mut visit: impl FnMut(S),
    ) {
        for slot in self.owned_slots() {
            let snapshot = slot.state.lock().as_deref().and_then(&mut take);
            if let Some(snapshot) = snapshot {
                visit(snapshot);
            }
        }
    }

    /// Visits every live entry, locking each in turn.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(Entry<'_, T>)) {
        for slot in self.owned_slots() {
            let guard = slot.state.lock();
            if guard.is_some() {
                visit(Entry { slot, guard });
            }
        }
    }
}

impl<'a, T> Entry<'a, T> {
    /// Frees the slot and returns what it held; the id is stale from now on.
    pub(crate) fn remove(mut self) -> Box<T> {
        let value = self.guard.take().expect("an Entry always holds a value");
        self.slot.owner.store(0, Ordering::Release);
        value
    }
}

impl<T> std::ops::Deref for Entry<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("an Entry always holds a value")
    }
}

impl<T> std::ops::DerefMut for Entry<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("an Entry always holds a value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_consecutive_and_positive() {
        let table = SlotTable::<SocketId>::default();
        let a = table.reserve(|id| id).unwrap();
        let b = table.reserve(|id| id).unwrap();
        assert_eq!((a.raw(), b.raw()), (1, 2));
    }

    #[test]
    fn a_released_id_never_validates_again_even_when_its_slot_is_reused() {
        let table = SlotTable::<SocketId>::default();
        let old = table.reserve(|id| id).unwrap();
        table.lock(old).unwrap().remove();
        let mut new = old;
        for _ in 0..MAX_SOCKETS {
            new = table.reserve(|id| id).unwrap();
            if slot_index(new) == slot_index(old) {
                break;
            }
            table.lock(new).unwrap().remove();
        }
        assert_eq!(slot_index(new), slot_index(old));
        assert_ne!(new, old);
        assert!(table.lock(old).is_none());
        assert_eq!(*table.lock(new).unwrap(), new);
    }

    #[test]
    fn unknown_negative_and_zero_ids_find_nothing() {
        let table = SlotTable::<SocketId>::default();
        table.reserve(|id| id).unwrap();
        for raw in [0, -1, i32::MIN, 2, 65537, i32::MAX] {
            assert!(table.lock(SocketId(raw)).is_none(), "id {raw}");
        }
    }

    #[test]
    fn reservation_fails_when_every_slot_is_taken() {
        let table = SlotTable::<()>::default();
        for _ in 0..MAX_SOCKETS {
            assert!(table.reserve(|_| ()).is_some());
        }
        assert!(table.reserve(|_| ()).is_none());
        let mut live = 0;
        table.for_each(|_| live += 1);
        assert_eq!(live, MAX_SOCKETS);
    }

    #[test]
    fn chunks_are_allocated_only_for_ids_in_use() {
        let table = SlotTable::<()>::default();
        table.reserve(|_| ()).unwrap();
        let allocated = table.chunks.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(allocated, 1);
    }
}

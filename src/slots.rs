//! Ids and the slot table. An id is a positive int from a counter; its slot is `id % 65536`.
//! Each slot records the full id that owns it, so a stale id (closed, or never issued) can
//! never reach the socket that later reuses its slot. Slots come in chunks allocated on
//! first use, so memory follows the ids in use rather than the 65536 maximum.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

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
    /// What a worker must know to send without the lock, kept outside it: the sends handed
    /// to the poll thread as commands and not applied yet (no later send may overtake them by
    /// writing directly), whether the socket is closing (high priority sends are refused), and
    /// whether it had data waiting when its lock was last released.
    /// The owner's id is in the high half, so the value changes only for the id it belongs
    /// to: a late command of a closed socket cannot touch the socket reusing the slot.
    sends: AtomicU64,
    state: Mutex<Option<Box<T>>>,
}

const CLOSING: u64 = 1 << 31;
/// The value had data waiting when its lock was last released (`SlotTable::congested`).
const CONGESTED: u64 = 1 << 30;
const COUNT: u64 = CONGESTED - 1;

/// The value of `Slot::sends` for `id` with no send queued, not closing.
fn fresh_sends(id: SocketId) -> u64 {
    u64::from(id.0 as u32) << 32
}

/// Why a send could not be counted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotCounted {
    /// The id is stale.
    Gone,
    /// The socket is closing and the send was of high priority.
    Closing,
}

/// Changes `sends` with `change` if it belongs to `id`.
fn update_sends(
    sends: &AtomicU64,
    id: SocketId,
    change: impl Fn(u64) -> Result<u64, NotCounted>,
) -> Result<(), NotCounted> {
    let mut current = sends.load(Ordering::Acquire);
    loop {
        if current >> 32 != u64::from(id.0 as u32) {
            return Err(NotCounted::Gone);
        }
        let next = change(current)?;
        if next == current {
            return Ok(());
        }
        match sends.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(seen) => current = seen,
        }
    }
}

fn add_queued_send(value: u64, refuse_if_closing: bool) -> Result<u64, NotCounted> {
    if refuse_if_closing && value & CLOSING != 0 {
        return Err(NotCounted::Closing);
    }
    // A count this large would need two billion sends in flight; saturate rather than wrap.
    Ok(if value & COUNT == COUNT {
        value
    } else {
        value + 1
    })
}

/// What trying to lock an id found.
pub(crate) enum TryLock<'a, T> {
    Locked(Entry<'a, T>),
    /// Live, but another thread holds its lock.
    Busy,
    /// Stale, unknown or invalid.
    Gone,
}

struct Chunk<T> {
    slots: Box<[Slot<T>]>,
}

/// The table of live sockets, generic so tests can drive it without sockets.
pub(crate) struct SlotTable<T> {
    /// Whether a value has data waiting to be written; noted in its slot at each unlock.
    congested: fn(&T) -> bool,
    /// Allocated on first use, published once, freed with the table.
    chunks: Box<[OnceLock<Chunk<T>>]>,
    next_id: AtomicU32,
}

/// A locked, live entry. Holding it is holding the socket's lock.
pub(crate) struct Entry<'a, T> {
    slot: &'a Slot<T>,
    guard: MutexGuard<'a, Option<Box<T>>>,
    congested: fn(&T) -> bool,
}

impl<T> Default for SlotTable<T> {
    fn default() -> Self {
        SlotTable::noting_congestion(|_| false)
    }
}

impl<T> SlotTable<T> {
    /// A table that notes, at each unlock, whether `congested` says the value has data waiting.
    pub(crate) fn noting_congestion(congested: fn(&T) -> bool) -> Self {
        SlotTable {
            congested,
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
                    sends: AtomicU64::new(0),
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
                slot.sends.store(fresh_sends(id), Ordering::Release);
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
        (slot.owner.load(Ordering::Acquire) == id.0 && guard.is_some()).then_some(Entry {
            slot,
            guard,
            congested: self.congested,
        })
    }

    /// Locks the live entry of `id` if no other thread holds its lock; never waits.
    #[inline]
    pub(crate) fn try_lock(&self, id: SocketId) -> TryLock<'_, T> {
        let Some(slot) = self.slot(id) else {
            return TryLock::Gone;
        };
        if slot.owner.load(Ordering::Acquire) != id.0 {
            return TryLock::Gone;
        }
        let Some(guard) = slot.state.try_lock() else {
            return TryLock::Busy;
        };
        if slot.owner.load(Ordering::Acquire) == id.0 && guard.is_some() {
            TryLock::Locked(Entry {
                slot,
                guard,
                congested: self.congested,
            })
        } else {
            TryLock::Gone
        }
    }

    /// Whether `id`'s socket had data waiting when its lock was last released: a send to it
    /// would only be queued, so waiting for the lock costs no direct write. False for a stale id.
    pub(crate) fn congested(&self, id: SocketId) -> bool {
        self.slot(id).is_some_and(|slot| {
            let value = slot.sends.load(Ordering::Acquire);
            value >> 32 == u64::from(id.0 as u32) && value & CONGESTED != 0
        })
    }

    /// Whether some thread holds the lock of `id`'s slot now (a hint: it may change at once).
    pub(crate) fn is_locked(&self, id: SocketId) -> bool {
        self.slot(id).is_some_and(|slot| slot.state.is_locked())
    }

    /// Counts a send of `id` handed to the poll thread without the lock. Refused for a stale
    /// id, and for a closing socket when `refuse_if_closing`.
    pub(crate) fn count_queued_send(
        &self,
        id: SocketId,
        refuse_if_closing: bool,
    ) -> Result<(), NotCounted> {
        let slot = self.slot(id).ok_or(NotCounted::Gone)?;
        update_sends(&slot.sends, id, |value| {
            add_queued_send(value, refuse_if_closing)
        })
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
                visit(Entry {
                    slot,
                    guard,
                    congested: self.congested,
                });
            }
        }
    }
}

impl<'a, T> Entry<'a, T> {
    fn id(&self) -> SocketId {
        SocketId(self.slot.owner.load(Ordering::Acquire))
    }

    /// Sends of this entry handed to the poll thread and not applied yet. (While the entry is
    /// locked and live, its slot's `sends` belong to its id: `reserve` set them before the
    /// value went in, and only `remove`, under this lock, changes the owner.)
    pub(crate) fn queued_sends(&self) -> u32 {
        (self.slot.sends.load(Ordering::Acquire) & COUNT) as u32
    }

    /// Counts a send handed to the poll thread.
    pub(crate) fn count_queued_send(&self) {
        let _ = update_sends(&self.slot.sends, self.id(), |value| {
            add_queued_send(value, false)
        });
    }

    /// The poll thread applied one of the queued sends.
    pub(crate) fn count_applied_send(&self) {
        let _ = update_sends(&self.slot.sends, self.id(), |value| {
            Ok(if value & COUNT == 0 { value } else { value - 1 })
        });
    }

    /// From now on, high priority sends counted without the lock are refused.
    pub(crate) fn refuse_high_priority_sends(&self) {
        let _ = update_sends(&self.slot.sends, self.id(), |value| Ok(value | CLOSING));
    }

    /// Frees the slot and returns what it held; the id is stale from now on.
    pub(crate) fn remove(mut self) -> Box<T> {
        let value = self.guard.take().expect("an Entry always holds a value");
        // No id's count: a send counted for this id from now on is refused.
        self.slot.sends.store(0, Ordering::Release);
        self.slot.owner.store(0, Ordering::Release);
        value
    }
}

impl<T> Drop for Entry<'_, T> {
    /// Notes in the slot whether the value has data waiting, for `SlotTable::congested`. The
    /// sends belong to this entry's id (see `queued_sends`), and a bit operation composes with
    /// the counts other threads change meanwhile.
    fn drop(&mut self) {
        if let Some(value) = self.guard.as_deref() {
            let congested = (self.congested)(value);
            let noted = self.slot.sends.load(Ordering::Relaxed) & CONGESTED != 0;
            if congested && !noted {
                self.slot.sends.fetch_or(CONGESTED, Ordering::Release);
            } else if !congested && noted {
                self.slot.sends.fetch_and(!CONGESTED, Ordering::Release);
            }
        }
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
    fn a_locked_entry_is_busy_for_everyone_else() {
        let table = SlotTable::<()>::default();
        let id = table.reserve(|_| ()).unwrap();
        let held = table.lock(id).unwrap();
        assert!(matches!(table.try_lock(id), TryLock::Busy));
        drop(held);
        assert!(matches!(table.try_lock(id), TryLock::Locked(_)));
        table.lock(id).unwrap().remove();
        assert!(matches!(table.try_lock(id), TryLock::Gone));
        assert!(matches!(table.try_lock(SocketId(0)), TryLock::Gone));
    }

    #[test]
    fn queued_sends_belong_to_their_id_and_never_go_below_zero() {
        let table = SlotTable::<()>::default();
        let old = table.reserve(|_| ()).unwrap();
        assert_eq!(table.count_queued_send(old, true), Ok(()));
        assert_eq!(table.count_queued_send(old, false), Ok(()));
        assert_eq!(table.lock(old).unwrap().queued_sends(), 2);
        table.lock(old).unwrap().remove();
        assert_eq!(table.count_queued_send(old, false), Err(NotCounted::Gone));
        let mut new = old;
        for _ in 0..MAX_SOCKETS {
            new = table.reserve(|_| ()).unwrap();
            if slot_index(new) == slot_index(old) {
                break;
            }
            table.lock(new).unwrap().remove();
        }
        let entry = table.lock(new).unwrap();
        assert_eq!(entry.queued_sends(), 0, "the new owner starts from zero");
        entry.count_applied_send();
        assert_eq!(entry.queued_sends(), 0);
        // A late command of the old id must not touch the new owner's count.
        assert_eq!(
            update_sends(&entry.slot.sends, old, |v| Ok(v - 1)),
            Err(NotCounted::Gone)
        );
        entry.count_queued_send();
        assert_eq!(entry.queued_sends(), 1);
    }

    #[test]
    fn a_closing_socket_refuses_only_high_priority_sends_counted_without_the_lock() {
        let table = SlotTable::<()>::default();
        let id = table.reserve(|_| ()).unwrap();
        table.lock(id).unwrap().refuse_high_priority_sends();
        assert_eq!(table.count_queued_send(id, true), Err(NotCounted::Closing));
        assert_eq!(table.count_queued_send(id, false), Ok(()));
        let entry = table.lock(id).unwrap();
        assert_eq!(entry.queued_sends(), 1, "the closing mark is not a count");
        entry.count_applied_send();
        entry.count_applied_send();
        assert_eq!(entry.queued_sends(), 0);
    }

    #[test]
    fn an_unlock_notes_whether_the_value_is_congested() {
        let table = SlotTable::<bool>::noting_congestion(|&waiting| waiting);
        let id = table.reserve(|_| false).unwrap();
        assert!(!table.congested(id));
        *table.lock(id).unwrap() = true;
        assert!(table.congested(id));
        table.count_queued_send(id, false).unwrap();
        assert_eq!(
            table.lock(id).unwrap().queued_sends(),
            1,
            "the mark is not a count"
        );
        *table.lock(id).unwrap() = false;
        assert!(!table.congested(id));
        table.lock(id).unwrap().remove();
        assert!(!table.congested(id));
    }

    #[test]
    fn chunks_are_allocated_only_for_ids_in_use() {
        let table = SlotTable::<()>::default();
        table.reserve(|_| ()).unwrap();
        let allocated = table.chunks.iter().filter(|c| c.get().is_some()).count();
        assert_eq!(allocated, 1);
    }
}

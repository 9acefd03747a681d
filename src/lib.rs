//! skynet's network layer (`socket_server`) as a C-ABI static library.
//!
//! Threads: one thread calls `socket_server_poll` in a loop (skynet's socket thread); every
//! other entry point may be called from any thread at any time. Worker threads reserve ids,
//! write directly to idle sockets under the socket's lock, and send everything else to the
//! poll thread through the command queue. Only the poll thread changes a socket's state.
//! Which thread owns what, what each lock and atomic guards, and the lock order:
//! `src/CONCURRENCY.md`.
//!
//! Panics: every profile aborts on panic, so nothing unwinds into C; entry points validate
//! their arguments instead of relying on it.
//!
//! Modules, in three layers that each import only the ones below: `ffi` (the C face: types,
//! entry points, the conversion of C arguments) on top; the safe core in the middle: `server`
//! (shared state and worker calls), `slots` (ids and the slot table), `command` (the queue to
//! the poll thread), `poll` (the poll thread), `socket` (per-socket state and registration),
//! `close` (the close state machine), `write_queue` (the write path), `send_buffer`,
//! `udp_address`, `info` and `report`; `os` (system calls, C heap blocks, the host's log
//! function) at the bottom. Only `ffi` and `os` hold `unsafe` blocks.

mod close;
mod command;
mod ffi;
mod info;
mod os;
mod poll;
mod report;
mod send_buffer;
mod server;
mod slots;
mod socket;
mod udp_address;
mod write_queue;

pub use ffi::*;

//! The C face of the library: the repr(C) types, every exported function, the one place a
//! C handle becomes a reference, and the conversion of C arguments (send buffers, UDP
//! addresses) into the core's types. Nothing outside this module (and `os`) touches a raw
//! pointer, and nothing below it names it.

mod entry;
mod payload;
pub mod types;

pub use entry::*;

use parking_lot::{Mutex, RwLock};

use crate::poll::PollLoop;
use crate::server::Server;
use types::{socket_object_interface, socket_server};

impl socket_server {
    fn new(server: Server) -> Self {
        socket_server {
            server,
            poll_loop: PollLoop::new(),
            object_interface: RwLock::new(None),
            poll_text: Mutex::new(Vec::new()),
        }
    }

    fn object_interface(&self) -> Option<socket_object_interface> {
        *self.object_interface.read()
    }

    fn set_object_interface(&self, soi: socket_object_interface) {
        *self.object_interface.write() = Some(soi);
    }

    /// Copies a result's text into storage that stays valid until the next poll, as OPEN,
    /// ERR and ACCEPT strings must.
    fn keep_text(&self, text: &str) -> *mut core::ffi::c_char {
        let mut buffer = self.poll_text.lock();
        buffer.clear();
        buffer.extend(text.bytes().filter(|&b| b != 0));
        buffer.push(0);
        // The Vec lives in the server; it is only rewritten by the next poll.
        buffer.as_mut_ptr().cast()
    }
}

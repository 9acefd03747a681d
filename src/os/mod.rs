//! The system layer: thin wrappers over the system calls the library makes (each returns
//! `io::Result` and hides one `unsafe` block), the C heap blocks that cross to and from C, and
//! the host's log function. No socket policy lives here.

mod addr;
mod events;
pub(crate) mod heap;
pub(crate) mod log;
mod net;
mod sys;

pub(crate) use addr::{SockAddr, resolve};
pub(crate) use events::{Interest, Readiness};
pub(crate) use poller::{EventBuffer, Poller, Waker};

// One poller per system, behind the same names (`events.rs` says what the core relies on).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "epoll.rs"]
mod poller;
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
#[path = "kqueue.rs"]
mod poller;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
compile_error!("socket_server needs epoll (Linux, Android) or kqueue (macOS, the BSDs)");
pub(crate) use net::*;
pub(crate) use sys::{IOV_MAX, error_text, strerror, try_again};

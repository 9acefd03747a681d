//! The system layer: thin wrappers over the system calls the library makes (each returns
//! `io::Result` and hides one `unsafe` block), the C heap blocks that cross to and from C, and
//! the host's log function. No socket policy lives here.

mod addr;
mod epoll;
pub(crate) mod heap;
pub(crate) mod log;
mod net;
mod sys;

pub(crate) use addr::{SockAddr, resolve};
pub(crate) use epoll::{Epoll, EventFd, Interest, Readiness};
pub(crate) use net::*;
pub(crate) use sys::{IOV_MAX, error_text, strerror, try_again};

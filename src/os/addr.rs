//! Socket addresses (IPv4/IPv6 only) and name resolution.

use std::ffi::{CStr, CString};
use std::mem::{size_of, zeroed};

unsafe extern "C" {
    // Not exported by the libc crate on this target.
    fn inet_ntop(
        af: libc::c_int,
        src: *const libc::c_void,
        dst: *mut libc::c_char,
        size: libc::socklen_t,
    ) -> *const libc::c_char;
}

/// An IPv4 or IPv6 socket address in the kernel's layout.
#[derive(Clone, Copy)]
pub(crate) enum SockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl SockAddr {
    /// Builds from raw address bytes (network order), as UDP address bytes carry them.
    pub(crate) fn from_v4_bytes(ip: [u8; 4], port_be: [u8; 2]) -> SockAddr {
        // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_in = unsafe { zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            // The BSDs and macOS carry the length in the address too.
            sa.sin_len = size_of::<libc::sockaddr_in>() as u8;
        }
        sa.sin_port = u16::from_ne_bytes(port_be);
        sa.sin_addr.s_addr = u32::from_ne_bytes(ip);
        SockAddr::V4(sa)
    }

    pub(crate) fn from_v6_bytes(ip: [u8; 16], port_be: [u8; 2]) -> SockAddr {
        // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
        let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            sa.sin6_len = size_of::<libc::sockaddr_in6>() as u8;
        }
        sa.sin6_port = u16::from_ne_bytes(port_be);
        sa.sin6_addr.s6_addr = ip;
        SockAddr::V6(sa)
    }

    /// Reads a kernel-filled address; `None` for other families.
    pub(crate) fn from_storage(
        storage: &libc::sockaddr_storage,
        len: libc::socklen_t,
    ) -> Option<SockAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, and storage is
                // large and aligned enough for it.
                Some(SockAddr::V4(unsafe {
                    *(storage as *const _ as *const libc::sockaddr_in)
                }))
            }
            libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                Some(SockAddr::V6(unsafe {
                    *(storage as *const _ as *const libc::sockaddr_in6)
                }))
            }
            _ => None,
        }
    }

    /// Reads an address getaddrinfo returned.
    ///
    /// # Safety
    /// `addr` points to `len` readable bytes of a socket address.
    unsafe fn from_raw(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<SockAddr> {
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = (len as usize).min(size_of::<libc::sockaddr_storage>());
        // SAFETY: `len` readable bytes (contract), copied into storage that is at least as big.
        unsafe {
            std::ptr::copy_nonoverlapping(addr.cast::<u8>(), &mut storage as *mut _ as *mut u8, len)
        };
        SockAddr::from_storage(&storage, len as libc::socklen_t)
    }

    pub(crate) fn family(&self) -> libc::c_int {
        match self {
            SockAddr::V4(_) => libc::AF_INET,
            SockAddr::V6(_) => libc::AF_INET6,
        }
    }

    pub(crate) fn is_v6(&self) -> bool {
        matches!(self, SockAddr::V6(_))
    }

    /// Port in host order.
    pub(crate) fn port(&self) -> u16 {
        u16::from_be(self.port_be())
    }

    /// Port exactly as stored (network order).
    pub(crate) fn port_be(&self) -> u16 {
        match self {
            SockAddr::V4(sa) => sa.sin_port,
            SockAddr::V6(sa) => sa.sin6_port,
        }
    }

    /// Copies the IP address (network order, 4 or 16 bytes by family) to the front of `out`.
    /// No allocation: a UDP read does this once per datagram.
    pub(crate) fn copy_ip_bytes(&self, out: &mut [u8]) {
        match self {
            SockAddr::V4(sa) => out[..4].copy_from_slice(&sa.sin_addr.s_addr.to_ne_bytes()),
            SockAddr::V6(sa) => out[..16].copy_from_slice(&sa.sin6_addr.s6_addr),
        }
    }

    /// Pointer and length for the socket calls that take an address.
    pub(crate) fn as_raw(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            SockAddr::V4(sa) => (
                (sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as _,
            ),
            SockAddr::V6(sa) => (
                (sa as *const libc::sockaddr_in6).cast(),
                size_of::<libc::sockaddr_in6>() as _,
            ),
        }
    }

    /// The numeric IP as inet_ntop writes it ("127.0.0.1", "::1").
    pub(crate) fn ip_text(&self) -> String {
        let mut buf = [0u8; 64];
        self.ip_text_in(&mut buf).to_owned()
    }

    /// As `ip_text`, written into `buf` (no allocation).
    pub(crate) fn ip_text_in<'a>(&self, buf: &'a mut [u8; 64]) -> &'a str {
        let (family, src): (libc::c_int, *const libc::c_void) = match self {
            SockAddr::V4(sa) => (libc::AF_INET, (&sa.sin_addr as *const libc::in_addr).cast()),
            SockAddr::V6(sa) => (
                libc::AF_INET6,
                (&sa.sin6_addr as *const libc::in6_addr).cast(),
            ),
        };
        // SAFETY: `src` points to an address of `family`; `buf` has room for any text form.
        let res = unsafe { inet_ntop(family, src, buf.as_mut_ptr().cast(), buf.len() as _) };
        if res.is_null() {
            return "";
        }
        let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
        std::str::from_utf8(&buf[..len]).unwrap_or("")
    }

    /// "ip:port", with no brackets around IPv6 addresses (as skynet reports them).
    pub(crate) fn text_with_port(&self) -> String {
        self.with_port().to_string()
    }

    /// Formats as "ip:port" without allocating.
    pub(crate) fn with_port(&self) -> impl std::fmt::Display + '_ {
        struct WithPort<'a>(&'a SockAddr);
        impl std::fmt::Display for WithPort<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut buf = [0u8; 64];
                write!(f, "{}:{}", self.0.ip_text_in(&mut buf), self.0.port())
            }
        }
        WithPort(self)
    }
}

/// A failed lookup, with gai_strerror's text.
#[derive(Debug)]
pub(crate) struct ResolveError {
    pub text: String,
}

/// Resolves `host:port` for `socktype` (SOCK_STREAM / SOCK_DGRAM) with AF_UNSPEC, in
/// getaddrinfo's order. `host` None means the wildcard address.
pub(crate) fn resolve(
    host: Option<&CStr>,
    port: i32,
    socktype: libc::c_int,
) -> Result<Vec<SockAddr>, ResolveError> {
    let service = CString::new(port.to_string()).expect("digits have no NUL");
    // SAFETY: addrinfo is plain data; all-zero is a valid value.
    let mut hints: libc::addrinfo = unsafe { zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_protocol = if socktype == libc::SOCK_STREAM {
        libc::IPPROTO_TCP
    } else {
        libc::IPPROTO_UDP
    };
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    let host_ptr = host.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: valid NUL-terminated strings (or NULL host), hints and an out-pointer.
    let code = unsafe { libc::getaddrinfo(host_ptr, service.as_ptr(), &hints, &mut list) };
    if code != 0 {
        // SAFETY: gai_strerror returns a static NUL-terminated string for any code.
        let text = unsafe { CStr::from_ptr(libc::gai_strerror(code)) }
            .to_string_lossy()
            .into_owned();
        return Err(ResolveError { text });
    }
    let mut out = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: a node of the list getaddrinfo returned, not yet freed.
        let ai = unsafe { &*node };
        // SAFETY: ai_addr points to ai_addrlen bytes of an address.
        if let Some(addr) = unsafe { SockAddr::from_raw(ai.ai_addr, ai.ai_addrlen) } {
            out.push(addr);
        }
        node = ai.ai_next;
    }
    // SAFETY: the list came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    if out.is_empty() {
        return Err(ResolveError {
            text: "Address family for hostname not supported".into(),
        });
    }
    Ok(out)
}

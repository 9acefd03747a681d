//! UDP addresses as skynet carries them: one protocol byte (1 = IPv4, 2 = IPv6), the port in
//! network order, then 4 or 16 address bytes (7 or 19 bytes in all).

use crate::os::SockAddr;

const PROTOCOL_V4: u8 = 1;
const PROTOCOL_V6: u8 = 2;
const MAX_LEN: usize = 19;

/// The IP family of a UDP socket or address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UdpFamily {
    V4,
    V6,
}

impl UdpFamily {
    pub(crate) fn of(addr: &SockAddr) -> UdpFamily {
        if addr.is_v6() {
            UdpFamily::V6
        } else {
            UdpFamily::V4
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct UdpAddress {
    bytes: [u8; MAX_LEN],
}

impl UdpAddress {
    /// Total encoded length for a protocol byte, `None` when the byte is unknown.
    pub(crate) fn encoded_len(protocol: u8) -> Option<usize> {
        match protocol {
            PROTOCOL_V4 => Some(7),
            PROTOCOL_V6 => Some(19),
            _ => None,
        }
    }

    /// Parses encoded bytes (at least as long as their protocol byte says).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<UdpAddress> {
        let len = Self::encoded_len(*bytes.first()?)?;
        let mut out = UdpAddress {
            bytes: [0; MAX_LEN],
        };
        out.bytes[..len].copy_from_slice(bytes.get(..len)?);
        Some(out)
    }

    pub(crate) fn from_sockaddr(addr: &SockAddr) -> UdpAddress {
        let mut bytes = [0; MAX_LEN];
        bytes[0] = if addr.is_v6() {
            PROTOCOL_V6
        } else {
            PROTOCOL_V4
        };
        bytes[1..3].copy_from_slice(&addr.port_be().to_ne_bytes());
        addr.copy_ip_bytes(&mut bytes[3..]);
        UdpAddress { bytes }
    }

    pub(crate) fn family(&self) -> UdpFamily {
        if self.bytes[0] == PROTOCOL_V6 {
            UdpFamily::V6
        } else {
            UdpFamily::V4
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        let len = Self::encoded_len(self.bytes[0]).unwrap_or(MAX_LEN);
        &self.bytes[..len]
    }

    pub(crate) fn to_sockaddr(self) -> SockAddr {
        let port = [self.bytes[1], self.bytes[2]];
        match self.family() {
            UdpFamily::V4 => {
                SockAddr::from_v4_bytes(self.bytes[3..7].try_into().expect("4 bytes"), port)
            }
            UdpFamily::V6 => {
                SockAddr::from_v6_bytes(self.bytes[3..19].try_into().expect("16 bytes"), port)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_address_bytes_are_protocol_port_then_ip() {
        let addr = UdpAddress::from_bytes(&[1, 0x1f, 0x90, 127, 0, 0, 1]).unwrap();
        assert_eq!(addr.as_bytes(), &[1, 0x1f, 0x90, 127, 0, 0, 1]);
        let sa = addr.to_sockaddr();
        assert_eq!(sa.port(), 8080);
        assert_eq!(sa.ip_text(), "127.0.0.1");
        assert!(UdpAddress::from_sockaddr(&sa) == addr);
    }

    #[test]
    fn ipv6_address_is_nineteen_bytes() {
        let mut raw = [0u8; 19];
        raw[0] = 2;
        raw[1..3].copy_from_slice(&[0, 53]);
        raw[18] = 1;
        let addr = UdpAddress::from_bytes(&raw).unwrap();
        assert_eq!(addr.as_bytes().len(), 19);
        assert_eq!(addr.family(), UdpFamily::V6);
        assert_eq!(addr.to_sockaddr().text_with_port(), "::1:53");
    }

    #[test]
    fn unknown_protocol_or_short_input_is_refused() {
        assert!(UdpAddress::from_bytes(&[3, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(UdpAddress::from_bytes(&[1, 0, 0]).is_none());
        assert!(UdpAddress::from_bytes(&[]).is_none());
    }
}

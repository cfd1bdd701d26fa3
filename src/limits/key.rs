//! The key the per-IP limits count under: one IPv4 address, or one IPv6
//! network of `limits.ipv6_prefix` bits.

use std::net::{IpAddr, Ipv6Addr};

/// A client as the per-IP limits see it. IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, what a dual-stack listener reports for IPv4 peers) are
/// the IPv4 address; other IPv6 addresses are cut to their network prefix,
/// because whoever holds one address of a /64 usually holds all of them.
/// Only [`IpKey::new`] makes one, so no limit can be keyed by a raw address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpKey(IpAddr);

impl IpKey {
    /// The key of `ip` when IPv6 clients are keyed by their first
    /// `ipv6_prefix` bits (validated to 1..=128; 0 would key all of IPv6 as one).
    pub fn new(ip: IpAddr, ipv6_prefix: u8) -> IpKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => IpKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let bits = u32::from(ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                IpKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)))
            }
        }
    }

    /// The address the key stands for (an IPv6 key has its host bits zero).
    pub fn addr(self) -> IpAddr {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn key(text: &str, prefix: u8) -> IpAddr {
        IpKey::new(text.parse().expect("an address"), prefix).addr()
    }

    #[test]
    fn ipv6_is_keyed_by_its_prefix_and_ipv4_by_the_address() {
        assert_eq!(key("2001:db8::1", 64), key("2001:db8::2", 64));
        assert_eq!(key("2001:db8::1", 64), key("2001:db8::ffff:1:2:3", 64));
        assert_ne!(key("2001:db8::1", 64), key("2001:db8:0:1::1", 64));
        assert_eq!(key("2001:db8:0:1::1", 48), key("2001:db8::1", 48));
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
        assert_eq!(key("2001:db8::1", 1), key("::1", 1));
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        assert_eq!(
            key("::ffff:192.0.2.7", 64),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
        assert_eq!(key("::ffff:192.0.2.7", 64), key("192.0.2.7", 128));
    }

    proptest! {
        /// Two IPv6 addresses share a key exactly when their first `prefix` bits agree.
        #[test]
        fn same_key_iff_same_prefix(a: u128, b: u128, prefix in 1u8..=128) {
            let (ka, kb) = (
                IpKey::new(IpAddr::V6(Ipv6Addr::from(a)), prefix),
                IpKey::new(IpAddr::V6(Ipv6Addr::from(b)), prefix),
            );
            let mapped = |x: u128| x >> 32 == 0xffff;
            prop_assume!(!mapped(a) && !mapped(b));
            let shift = 128 - u32::from(prefix);
            prop_assert_eq!(ka == kb, a.checked_shr(shift) == b.checked_shr(shift));
        }
    }
}

//! The client's address: the socket peer, or, when the peer is a trusted
//! proxy, the first hop of `X-Forwarded-For` that is not one, read from the
//! right. Computed once per upgrade request.
//!
//! Only the entries a trusted proxy appended can be believed: walking from
//! the right, each trusted hop vouches for the entry to its left, and the
//! first untrusted entry is the client. Everything left of it is whatever
//! the client sent, and is never read. A malformed entry at the client's
//! position (a proxy that passed a client's junk through, `unknown`, a
//! hostname) is not guessed around: the trusted hop that forwarded it
//! stands in for the client, so it shares that hop's limits and can never
//! get fresh ones.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack listener
//! reports for IPv4 peers) are compared and returned as IPv4, whether they
//! are the peer or an entry; the trusted CIDRs are unmapped at load.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::metrics::AddressSource;

/// A client address and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: IpAddr,
    pub source: AddressSource,
}

/// Whether `ip` (canonical: IPv4-mapped addresses as IPv4) is a trusted proxy.
pub fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address of a request from `peer` that carried the
/// `X-Forwarded-For` header lines `forwarded`, in the order received
/// (several lines are one list, as if joined with commas).
pub fn client_addr<'a, I>(trusted: &[IpNet], peer: IpAddr, forwarded: I) -> ClientAddr
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let peer = peer.to_canonical();
    if !is_trusted(trusted, peer) {
        return ClientAddr {
            ip: peer,
            source: AddressSource::Peer,
        };
    }
    let mut last_trusted = peer;
    for line in forwarded.rev() {
        for entry in line.rsplit(|b| *b == b',') {
            let (ip, source) = match parse_entry(entry) {
                None => (last_trusted, AddressSource::Malformed),
                Some(ip) if is_trusted(trusted, ip) => {
                    last_trusted = ip;
                    continue;
                }
                Some(ip) => (ip, AddressSource::Forwarded),
            };
            return ClientAddr { ip, source };
        }
    }
    ClientAddr {
        ip: last_trusted,
        source: AddressSource::Proxy,
    }
}

/// One `X-Forwarded-For` entry: `ip`, `ipv4:port`, `[ipv6]` or
/// `[ipv6]:port`, with optional spaces or tabs around it; canonical.
pub fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?;
    let text = text.trim_matches([' ', '\t']);
    let ip = if let Ok(ip) = text.parse::<IpAddr>() {
        ip
    } else if let Ok(sa) = text.parse::<SocketAddr>() {
        sa.ip()
    } else {
        let inner = text.strip_prefix('[')?.strip_suffix(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("a CIDR")).collect()
    }

    fn resolve(trusted: &[&str], peer: &str, lines: &[&str]) -> (String, AddressSource) {
        let a = client_addr(
            &nets(trusted),
            peer.parse().expect("peer"),
            lines.iter().map(|l| l.as_bytes()),
        );
        (a.ip.to_string(), a.source)
    }

    use AddressSource::*;

    #[test]
    fn entries_in_every_accepted_form() {
        for (entry, want) in [
            ("198.51.100.7", "198.51.100.7"),
            (" 198.51.100.7\t", "198.51.100.7"),
            ("198.51.100.7:5555", "198.51.100.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("[::ffff:198.51.100.7]:80", "198.51.100.7"),
            // An IPv6 address and port without brackets is another IPv6
            // address: it can only be read as one.
            ("2001:db8::1:443", "2001:db8::1:443"),
        ] {
            let got = parse_entry(entry.as_bytes()).map(|ip| ip.to_string());
            assert_eq!(got.as_deref(), Some(want), "{entry:?}");
        }
        for junk in [
            "",
            " ",
            "junk",
            "unknown",
            "198.51.100",
            "198.51.100.7:",
            "198.51.100.7:99999",
            "[2001:db8::1",
            "2001:db8::1]",
            "[198.51.100.7]",
            "fe80::1%eth0",
            "_hidden",
            "198.51.100.7 198.51.100.8",
            "\u{ff}",
        ] {
            assert_eq!(parse_entry(junk.as_bytes()), None, "{junk:?}");
        }
        assert_eq!(parse_entry(b"\xff\xfe"), None);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let got = resolve(&["10.0.0.0/8"], "203.0.113.5", &["198.51.100.7"]);
        assert_eq!(got, ("203.0.113.5".into(), Peer));
        let got = resolve(&[], "::ffff:203.0.113.5", &[]);
        assert_eq!(got, ("203.0.113.5".into(), Peer));
    }

    #[test]
    fn the_first_untrusted_entry_from_the_right_is_the_client() {
        let t = ["10.0.0.0/8", "2001:db8:ff::/48"];
        let cases: &[(&str, &[&str], &str, AddressSource)] = &[
            ("10.0.0.1", &["198.51.100.7"], "198.51.100.7", Forwarded),
            (
                "10.0.0.1",
                &["1.1.1.1, 198.51.100.7, 10.0.0.9"],
                "198.51.100.7",
                Forwarded,
            ),
            // Junk the client sent, left of its own address, is never read.
            (
                "10.0.0.1",
                &["junk, 198.51.100.7"],
                "198.51.100.7",
                Forwarded,
            ),
            (
                "10.0.0.1",
                &["junk", "198.51.100.7:1234, 10.0.0.2"],
                "198.51.100.7",
                Forwarded,
            ),
            // Several lines are one list, in order.
            (
                "10.0.0.1",
                &["198.51.100.7", "10.0.0.2"],
                "198.51.100.7",
                Forwarded,
            ),
            (
                "10.0.0.1",
                &["10.0.0.3", "198.51.100.7"],
                "198.51.100.7",
                Forwarded,
            ),
            ("10.0.0.1", &["[2001:db8::1]:443"], "2001:db8::1", Forwarded),
            (
                "2001:db8:ff::1",
                &["198.51.100.7, 2001:db8:ff::2"],
                "198.51.100.7",
                Forwarded,
            ),
            (
                "::ffff:10.0.0.1",
                &["::ffff:198.51.100.7"],
                "198.51.100.7",
                Forwarded,
            ),
            // A malformed entry at the client's position: the hop that forwarded it.
            ("10.0.0.1", &["198.51.100.7, junk"], "10.0.0.1", Malformed),
            (
                "10.0.0.1",
                &["198.51.100.7, junk, 10.0.0.9"],
                "10.0.0.9",
                Malformed,
            ),
            (
                "10.0.0.1",
                &["198.51.100.7,, 10.0.0.9"],
                "10.0.0.9",
                Malformed,
            ),
            ("10.0.0.1", &[""], "10.0.0.1", Malformed),
            (
                "10.0.0.1",
                &["198.51.100.7", "unknown"],
                "10.0.0.1",
                Malformed,
            ),
            // No untrusted hop: the leftmost trusted one.
            ("10.0.0.1", &[], "10.0.0.1", Proxy),
            ("10.0.0.1", &["10.0.0.5, 10.0.0.9"], "10.0.0.5", Proxy),
        ];
        for (peer, lines, ip, source) in cases {
            assert_eq!(
                resolve(&t, peer, lines),
                (ip.to_string(), *source),
                "{peer} {lines:?}"
            );
        }
    }

    /// Any IPv4 address, sometimes written IPv4-mapped, sometimes with a port.
    fn written(ip: [u8; 4], form: u8) -> String {
        let ip = std::net::Ipv4Addr::from(ip);
        match form % 3 {
            0 => ip.to_string(),
            1 => format!("[{}]:80", ip.to_ipv6_mapped()),
            _ => format!("{ip}:8080"),
        }
    }

    proptest! {
        /// Whatever a client puts in its own header, the answer is the
        /// address the trusted proxy appended for it, or a trusted hop:
        /// never an address the client chose.
        #[test]
        fn a_client_cannot_choose_its_address(
            forged in proptest::collection::vec("[ -~]{0,24}", 0..6),
            client: [u8; 4],
            form: u8,
            hops in 0usize..3,
        ) {
            let client_ip = std::net::Ipv4Addr::from(client);
            prop_assume!(client_ip.octets()[0] != 10);
            let mut chain = forged.join(",");
            chain.push_str(", ");
            chain.push_str(&written(client, form));
            for h in 0..hops {
                chain.push_str(&format!(", 10.0.0.{h}"));
            }
            let got = client_addr(
                &nets(&["10.0.0.0/8"]),
                "10.1.1.1".parse().expect("peer"),
                [chain.as_bytes()].into_iter(),
            );
            prop_assert_eq!(got, ClientAddr { ip: IpAddr::V4(client_ip), source: Forwarded });
        }

        /// Arbitrary header bytes never panic, and a malformed answer is
        /// always a trusted hop.
        #[test]
        fn arbitrary_bytes_resolve_to_a_client_or_a_trusted_hop(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4),
        ) {
            let trusted = nets(&["10.0.0.0/8", "::1/128"]);
            let got = client_addr(
                &trusted,
                "10.1.1.1".parse().expect("peer"),
                lines.iter().map(|l| l.as_slice()),
            );
            if got.source != Forwarded {
                prop_assert!(is_trusted(&trusted, got.ip), "{got:?}");
            }
        }
    }
}

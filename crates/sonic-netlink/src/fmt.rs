//! Address text exactly as libnl's `nl_addr2str` prints it for neighbor
//! entries (glibc `inet_ntop`, no prefix length), which is what the C++
//! neighsyncd puts into APPL_DB keys (BEHAVIOR.md b.4).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};

/// IPv4 as a dotted quad; IPv6 as glibc `inet_ntop` prints it: lowercase hex,
/// the longest run of two or more zero groups (first one on a tie) as `::`,
/// `::ffff:a.b.c.d` for IPv4-mapped and `::a.b.c.d` for IPv4-compatible
/// addresses (first 96 bits zero and the 7th group non-zero).
///
/// Rust's `Ipv6Addr` Display differs only for the IPv4-compatible form,
/// which is why this exists.
pub fn ip_to_string(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipv6_to_string(v6),
    }
}

/// See [`ip_to_string`].
pub fn ipv6_to_string(ip: &Ipv6Addr) -> String {
    let seg = ip.segments();
    let o = ip.octets();
    if seg[..5].iter().all(|&s| s == 0) {
        if seg[5] == 0 && seg[6] != 0 {
            return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
        }
        if seg[5] == 0xffff {
            return format!("::ffff:{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
        }
    }
    // Longest run (>= 2) of zero groups, first wins a tie.
    let (mut best_start, mut best_len) = (usize::MAX, 1usize);
    let mut i = 0;
    while i < 8 {
        if seg[i] == 0 {
            let start = i;
            while i < 8 && seg[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::with_capacity(39);
    let mut i = 0;
    while i < 8 {
        if i == best_start {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && !out.ends_with(':') {
            out.push(':');
        }
        let _ = write!(out, "{:x}", seg[i]);
        i += 1;
    }
    out
}

/// MAC as six lowercase two-digit hex bytes joined by `:`, e.g.
/// `00:1b:21:aa:bb:cc` (the `neigh` field of NEIGH_TABLE).
pub fn mac_to_string(mac: &[u8; 6]) -> String {
    let mut out = String::with_capacity(17);
    for (i, b) in mac.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> String {
        ipv6_to_string(&s.parse().unwrap())
    }

    #[test]
    fn ipv6_matches_glibc_inet_ntop() {
        assert_eq!(v6("fe80::2e0:ecff:fe3b:d6ac"), "fe80::2e0:ecff:fe3b:d6ac");
        assert_eq!(v6("fc02:1000::2"), "fc02:1000::2");
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("1::"), "1::");
        // a single zero group stays 0
        assert_eq!(v6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        // first of two equal runs wins
        assert_eq!(v6("1:0:0:2:3:0:0:4"), "1::2:3:0:0:4");
        // longer run wins
        assert_eq!(v6("1:0:0:2:0:0:0:4"), "1:0:0:2::4");
        assert_eq!(v6("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
        // IPv4-compatible: glibc prints dotted quad, Rust does not
        assert_eq!(v6("::10.0.0.1"), "::10.0.0.1");
        assert_eq!(v6("2001:db8::ff00:42:8329"), "2001:db8::ff00:42:8329");
        assert_eq!(v6("FF02::1:FF00:2"), "ff02::1:ff00:2");
    }

    #[test]
    fn ipv4_and_mac() {
        assert_eq!(ip_to_string(&"10.0.0.2".parse().unwrap()), "10.0.0.2");
        assert_eq!(
            mac_to_string(&[0, 0x1b, 0x21, 0xaa, 0xbb, 0xcc]),
            "00:1b:21:aa:bb:cc"
        );
    }
}

//! Address text exactly as libnl's `nl_addr2str` prints it for neighbor
//! entries (glibc `inet_ntop`, no prefix length), which is what the C++
//! neighsyncd puts into APPL_DB keys (docs/behavior.md b.4).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// IPv4 as a dotted quad; IPv6 as glibc `inet_ntop` prints it: lowercase hex,
/// the longest run of two or more zero groups (first one on a tie) as `::`,
/// `::ffff:a.b.c.d` for IPv4-mapped and `::a.b.c.d` for IPv4-compatible
/// addresses (first 96 bits zero and the 7th group non-zero).
///
/// Rust's `Ipv6Addr` Display differs only for the IPv4-compatible form,
/// which is why this exists.
pub fn ip_to_string(ip: &IpAddr) -> String {
    let mut out = String::with_capacity(39);
    push_ip(&mut out, ip);
    out
}

/// See [`ip_to_string`].
pub fn ipv6_to_string(ip: &Ipv6Addr) -> String {
    let mut out = String::with_capacity(39);
    push_ipv6(&mut out, ip);
    out
}

/// Appends the text of [`ip_to_string`] to `out` (no allocation when `out`
/// has room for it: at most 15 bytes for IPv4, 39 for IPv6).
pub fn push_ip(out: &mut String, ip: &IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(out, v4),
        IpAddr::V6(v6) => push_ipv6(out, v6),
    }
}

/// Appends `ip` as a dotted quad (`10.0.0.2`, as `Ipv4Addr`'s Display and
/// `inet_ntop` print it) to `out`.
pub fn push_ipv4(out: &mut String, ip: &Ipv4Addr) {
    for (i, b) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u8_decimal(out, b);
    }
}

/// Appends the text of [`ipv6_to_string`] to `out`.
pub fn push_ipv6(out: &mut String, ip: &Ipv6Addr) {
    let seg = ip.segments();
    if seg[..5].iter().all(|&s| s == 0) {
        let o = ip.octets();
        let v4 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
        if seg[5] == 0 && seg[6] != 0 {
            out.push_str("::");
            push_ipv4(out, &v4);
            return;
        }
        if seg[5] == 0xffff {
            out.push_str("::ffff:");
            push_ipv4(out, &v4);
            return;
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
    let mut i = 0;
    let mut after_colons = true;
    while i < 8 {
        if i == best_start {
            out.push_str("::");
            i += best_len;
            after_colons = true;
            continue;
        }
        if !after_colons {
            out.push(':');
        }
        push_u16_hex(out, seg[i]);
        after_colons = false;
        i += 1;
    }
}

/// MAC as six lowercase two-digit hex bytes joined by `:`, e.g.
/// `00:1b:21:aa:bb:cc` (the `neigh` field of NEIGH_TABLE).
pub fn mac_to_string(mac: &[u8; 6]) -> String {
    let mut out = String::with_capacity(17);
    push_mac(&mut out, mac);
    out
}

/// Appends the text of [`mac_to_string`] (17 bytes) to `out`.
pub fn push_mac(out: &mut String, mac: &[u8; 6]) {
    for (i, &b) in mac.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// `b` in decimal, no leading zeros.
fn push_u8_decimal(out: &mut String, b: u8) {
    if b >= 100 {
        out.push(char::from(b'0' + b / 100));
    }
    if b >= 10 {
        out.push(char::from(b'0' + (b / 10) % 10));
    }
    out.push(char::from(b'0' + b % 10));
}

/// `v` in lowercase hex, no leading zeros (`{:x}`).
fn push_u16_hex(out: &mut String, v: u16) {
    let mut started = false;
    for shift in [12u32, 8, 4, 0] {
        let d = (v >> shift) & 0xf;
        if d != 0 || started || shift == 0 {
            out.push(char::from(HEX[usize::from(d)]));
            started = true;
        }
    }
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

    proptest::proptest! {
        /// The hand-written formatting prints what std's Display prints
        /// (IPv6: except the IPv4-compatible form, glibc's `::a.b.c.d`).
        #[test]
        fn text_matches_std_display(v4 in proptest::prelude::any::<u32>(),
                                    v6 in proptest::prelude::any::<u128>(),
                                    zeros in proptest::prelude::any::<u8>(),
                                    mac in proptest::prelude::any::<[u8; 6]>()) {
            let v4 = Ipv4Addr::from(v4);
            proptest::prop_assert_eq!(ip_to_string(&IpAddr::V4(v4)), v4.to_string());
            // Zero some groups so that runs of zeros are common.
            let mut seg = Ipv6Addr::from(v6).segments();
            for (i, s) in seg.iter_mut().enumerate() {
                if zeros & (1 << i) != 0 {
                    *s = 0;
                }
            }
            let v6 = Ipv6Addr::from(seg);
            let compat = seg[..6].iter().all(|&s| s == 0) && seg[6] != 0;
            if !compat {
                proptest::prop_assert_eq!(ipv6_to_string(&v6), v6.to_string());
            }
            let want = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            proptest::prop_assert_eq!(mac_to_string(&mac), want);
        }
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

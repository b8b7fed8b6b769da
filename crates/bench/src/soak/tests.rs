use super::check::expected_neighs;
use super::*;

#[test]
fn kernel_neighbours_under_the_sync_rules() {
    let show = "\
10.200.0.10 dev Ethernet0 lladdr 02:AA:bb:cc:dd:ee PERMANENT
fc00::103 dev Ethernet4 lladdr 02:00:00:00:00:01 router STALE
10.200.0.11 dev Ethernet0 FAILED
10.200.0.12 dev Ethernet0 lladdr 02:00:00:00:00:02 NOARP
fe80::1 dev Ethernet0 lladdr 02:00:00:00:00:03 REACHABLE
ff02::16 dev Ethernet0 lladdr 33:33:00:00:00:16 NOARP
10.9.9.9 dev eth0 lladdr 02:00:00:00:00:04 REACHABLE
";
    let t = expected_neighs(show);
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        ["Ethernet0:10.200.0.10", "Ethernet4:fc00::103"]
    );
    assert_eq!(t["Ethernet0:10.200.0.10"]["neigh"], "02:aa:bb:cc:dd:ee");
    assert_eq!(t["Ethernet4:fc00::103"]["family"], "IPv6");
}

#[test]
fn deviation_is_measured_from_the_reference_sample() {
    let mk = |t: f64, rss: u64, fds: usize| Sample {
        t,
        neigh: Proc {
            rss_kib: rss,
            fds,
            ..Proc::default()
        },
        ..Sample::default()
    };
    let s = Soak {
        reference_s: 20.0,
        samples: vec![
            mk(0.0, 100, 5),
            mk(10.0, 9000, 9),
            mk(20.0, 5000, 7),
            mk(30.0, 5600, 6),
        ],
        ..Soak::default()
    };
    assert_eq!(s.rss_dev(Which::Neigh), Some((5000.0, 600.0)));
    assert_eq!(s.fd_dev(Which::Neigh), Some((7.0, 1.0)));
}

#[test]
fn svg_has_a_line_per_daemon_per_panel() {
    let s = Soak {
        minutes: 2,
        reference_s: 30.0,
        samples: (0..13)
            .map(|i| Sample {
                t: i as f64 * 10.0,
                ..Sample::default()
            })
            .collect(),
        events: vec![(65.0, "redis restart"), (89.0, "link flaps")],
        ..Soak::default()
    };
    let svg = svg(&s);
    assert_eq!(svg.matches("<polyline").count(), 4);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
}

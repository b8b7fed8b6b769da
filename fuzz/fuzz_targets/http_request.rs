//! Fuzz target: the `--metrics-addr` request-head parser
//! (`sonic_daemon::http::parse_request_head`, what the server runs on the
//! bytes received so far after every read) on arbitrary bytes, then the
//! router on what it accepts. It must never panic, and:
//!
//! * `Ok(None)` (need more bytes) only while the input is shorter than
//!   `MAX_REQUEST_HEAD`, so a client cannot make the server read forever;
//! * a complete head has a non-empty method and path;
//! * reading more bytes never changes a result the server acts on: when a
//!   prefix (the server's view after an earlier read) is complete, the
//!   whole input gives the same head; when a prefix is refused, so is the
//!   whole input.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sonic_daemon::http::{parse_request_head, route, MAX_REQUEST_HEAD};
use sonic_daemon::{Health, Metrics};

fn state() -> &'static (Metrics, Health) {
    static STATE: OnceLock<(Metrics, Health)> = OnceLock::new();
    STATE.get_or_init(|| {
        let m = Metrics::new("neighsyncd");
        let h = Health::new(&m);
        (m, h)
    })
}

fuzz_target!(|data: &[u8]| {
    let whole = parse_request_head(data);
    match &whole {
        Ok(None) => assert!(
            data.len() < MAX_REQUEST_HEAD,
            "partial at {} bytes",
            data.len()
        ),
        Ok(Some(head)) => {
            assert!(!head.method.is_empty() && !head.path.is_empty(), "{head:?}");
            let (m, h) = state();
            let resp = route(head.method, head.path, m, h);
            assert!(matches!(resp.status, 200 | 404 | 405 | 503), "{resp:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // One earlier read: the prefix cut where the first byte says.
    if let Some(&first) = data.first() {
        let cut = data.len() * usize::from(first) / 256;
        if let Some(prefix) = data.get(..cut) {
            match parse_request_head(prefix) {
                Ok(None) => {}
                Ok(Some(head)) => assert_eq!(whole, Ok(Some(head)), "prefix of {cut} bytes"),
                Err(e) => assert!(
                    whole.is_err(),
                    "prefix of {cut} bytes refused ({e}), whole {whole:?}"
                ),
            }
        }
    }
});

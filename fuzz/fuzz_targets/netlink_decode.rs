//! Fuzz target: the rtnetlink datagram decoder
//! (`sonic_netlink::socket::decode_message`) on arbitrary bytes. It must
//! never panic: malformed input comes back as `Err(DecodeError)` entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sonic_netlink::socket::{decode_message, KernelMessage};

fuzz_target!(|data: &[u8]| {
    for msg in decode_message(data) {
        // Touch the decoded values (formatting exercises the text helpers).
        match msg {
            Ok(KernelMessage::Neigh(ev)) => {
                let _ = format!("{ev:?}");
            }
            Ok(other) => {
                let _ = format!("{other:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});

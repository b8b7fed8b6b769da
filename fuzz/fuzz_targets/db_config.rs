//! Fuzz target: database_config.json parsing (`swss::DbConfig::from_json`)
//! on arbitrary text. It must never panic: bad input is a `ConfigError`.
//! On success, every named database is resolved, as the daemons do.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match swss::DbConfig::from_json(text, Path::new("fuzz/database_config.json")) {
        Ok(cfg) => {
            let names: Vec<String> = cfg.databases().keys().cloned().collect();
            for name in names.iter().map(String::as_str).chain(["APPL_DB", "NO_SUCH_DB"]) {
                let _ = cfg.location(name);
                let _ = cfg.tcp_location(name);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

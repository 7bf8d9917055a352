//! The keyring loader: any file content gives a keyring or an error.
#![no_main]

mod common;

use cloakline::keys::Keyring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch().join("fuzzed-keyring.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(ring) = Keyring::load(&path) else {
        return;
    };
    let ids: Vec<String> = ring.ids().map(String::from).collect();
    for id in ids {
        if let Ok(key) = ring.get(&id) {
            let _ = key.fingerprint();
            let _ = key.subkey("tokenize", &id);
        }
    }
});

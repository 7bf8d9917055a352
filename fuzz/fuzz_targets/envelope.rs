//! The envelope decoder. The first byte picks a mode:
//! 0: the rest is envelope text (one per line, also as an array);
//! 1: the rest is the raw envelope bytes, base64url-encoded here (explores the binary layout);
//! 2: the rest is a plaintext that must survive encrypt then decrypt.
#![no_main]

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloakline::kernels::{Decryptor, Encryptor};
use libfuzzer_sys::fuzz_target;

const DOMAINS: [&str; 3] = ["national_id", "email", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let ring = common::keyring();
    let domain = DOMAINS[(mode as usize / 4) % DOMAINS.len()];
    match mode % 4 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let mut dec = Decryptor::new(ring, domain);
            for line in text.lines() {
                let _ = dec.decrypt(line);
            }
            let lines: Vec<Option<&str>> = text.lines().map(Some).collect();
            let arr: ArrayRef = Arc::new(StringArray::from(lines));
            let _ = dec.apply(&arr);
        }
        1 => {
            let env = URL_SAFE_NO_PAD.encode(rest);
            let _ = Decryptor::new(ring, domain).decrypt(&env);
        }
        _ => {
            let plain = String::from_utf8_lossy(rest);
            let key = ring
                .get(if mode % 2 == 0 { "k1" } else { "k2" })
                .expect("demo key");
            let enc = Encryptor::new(key, domain).expect("encryptor");
            let Ok(env) = enc.encrypt_str(&plain) else {
                return;
            };
            let back = Decryptor::new(ring, domain)
                .decrypt(&env)
                .expect("an envelope we just made must decrypt");
            assert!(back == plain.as_bytes(), "round trip changed the plaintext");
        }
    }
});

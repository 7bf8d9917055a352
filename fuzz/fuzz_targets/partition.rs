//! Hive partition paths and public key files: any directory name parses or errors, a value
//! written as a directory name reads back unchanged and never makes a path, and any file
//! content is a public key or an error.
#![no_main]

mod common;

use std::path::Path;

use cloakline::io::partition::{directory_name, partition_values};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let root = Path::new("/in");
    let _ = partition_values(root, &root.join(text).join("f.csv"));
    let name = directory_name("k", Some(text));
    assert!(!name.contains('/') && !name.contains('\0'));
    let back = partition_values(root, &root.join(&name).join("f.csv")).expect("own names parse");
    assert_eq!(back, vec![("k".to_string(), Some(text.to_string()))]);

    let path = common::scratch().join("fuzzed-public-key.pem");
    if std::fs::write(&path, data).is_ok() {
        let _ = cloakline::keys::read_public_key(&path);
    }
});

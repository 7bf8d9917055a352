//! The Rust reference of benches/python.sh: the tokenize kernel over 1,000,000 strings, best
//! of 7, printed in seconds (one number on stdout) for the script to compare with Python.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, StringArray};

use cloakline::kernels::Tokenizer;
use cloakline::keys::Keyring;

fn main() {
    let n: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let ring = Keyring::load(std::path::Path::new("examples/demo-keyring.json"))
        .expect("examples/demo-keyring.json loads (run from the repository root)");
    let key = ring.get("k1").expect("the demo keyring holds k1");
    let emails: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..n).map(|i| format!("user{i}@example.org")),
    ));
    let tok = Tokenizer::new(key, "email", 32, "").expect("a tokenizer");
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        let out = tok.apply(&emails).expect("tokenize");
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(out.len(), n);
    }
    println!("{best:.6}");
}

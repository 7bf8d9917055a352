//! Test vectors of docs/FORMATS.md, computed independently with Python's standard library
//! and the `cryptography` package (docs/vectors.py).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use cloakline::kernels::{Decryptor, Encryptor, Tokenizer};
use cloakline::keys::{Key, Keyring};

fn key() -> Key {
    let mut m = [0u8; 32];
    for (i, b) in m.iter_mut().enumerate() {
        *b = i as u8;
    }
    Key::from_bytes("k1", m).unwrap()
}

#[test]
fn fingerprint_and_subkeys() {
    let k = key();
    assert_eq!(k.fingerprint(), "a90171f370bbe0d0");
    assert_eq!(
        hex::encode(k.subkey("tokenize", "email").as_ref()),
        "1991d54c70aec7603edada73f1aba41b05d5427c5f18d544dcf7e9805bea39a1"
    );
    assert_eq!(
        hex::encode(k.subkey("encrypt", "national_id").as_ref()),
        "e40cc3ae9fcf837c1c872319ce905f5be4ae1b9703a931e473794a7fd405d13d"
    );
}

#[test]
fn token_vectors() {
    let t = Tokenizer::new(&key(), "email", 64, "").unwrap();
    assert_eq!(
        t.token("alice@example.com"),
        "1c28589150a6370dac1201b22fcf1eecd93926e767cd59770b88227334d6fc78"
    );
    assert_eq!(
        t.token("张伟@例子.中国"),
        "56d42a4a7dc2e94d6e036a8d3804db201f572fa9d42846f9d4d750a3e35b348c"
    );
    let short = Tokenizer::new(&key(), "email", 32, "").unwrap();
    assert_eq!(
        short.token("alice@example.com"),
        "1c28589150a6370dac1201b22fcf1eec"
    );
    // A non-string value tokenizes its canonical string: Int64 42 -> "42".
    let ids = Tokenizer::new(&key(), "customer_id", 24, "c_").unwrap();
    let arr: ArrayRef = Arc::new(Int64Array::from(vec![Some(42), None]));
    let out = ids.apply(&arr).unwrap();
    let out = out.as_string::<i32>();
    assert_eq!(out.value(0), "c_0a27e4cc224ba1201369924f");
    assert!(out.is_null(1));
}

/// Yields a fixed byte sequence, to reproduce the vector's nonce.
struct FixedNonce;
impl rand::RngCore for FixedNonce {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = i as u8;
        }
    }
}

const ENVELOPE: &str = "AQJrMQABAgMEBQYHCAkKC051i_-Xrw15lQgNWMzyKO8fP2U3wXUjhk4e_5uZCaqKmf8";

#[test]
fn envelope_vector() {
    let enc = Encryptor::new(&key(), "national_id").unwrap();
    let mut out = String::new();
    enc.encrypt_into(
        b"110101199003074518",
        &mut FixedNonce,
        &mut Vec::new(),
        &mut out,
    )
    .unwrap();
    assert_eq!(out, ENVELOPE);
    let mut ring = Keyring::default();
    ring.insert(key()).unwrap();
    let mut dec = Decryptor::new(&ring, "national_id");
    assert_eq!(dec.decrypt(ENVELOPE).unwrap(), b"110101199003074518");
    let arr: ArrayRef = Arc::new(StringArray::from(vec![Some(ENVELOPE), None]));
    let plain = dec.apply(&arr).unwrap();
    assert_eq!(plain.as_string::<i32>().value(0), "110101199003074518");
    assert!(plain.is_null(1));
}

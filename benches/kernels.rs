//! Criterion benches: each kernel over 100,000 values (throughput in values per second).

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray, StringViewArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use cloakline::kernels::{
    Encryptor, Fpe, FpeSpec, Generalizer, Masker, Redactor, SivEncryptor, Tokenizer,
};
use cloakline::keys::Keyring;
use cloakline::policy::{DateLevel, GeneralizeSpec, LabelStyle, NumberBins};

const N: usize = 100_000;

fn emails() -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| format!("user{i}@example.com")),
    ))
}

fn bench(c: &mut Criterion) {
    let ring = Keyring::generate_in_memory(&["k1"]);
    let key = ring.get("k1").unwrap();
    let emails = emails();
    let emails_view: ArrayRef = Arc::new(StringViewArray::from_iter_values(
        (0..N).map(|i| format!("user{i}@example.com")),
    ));
    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..N as i64).map(|i| i * 7919 % 250_000),
    ));
    let dates: ArrayRef = Arc::new(Date32Array::from_iter_values(
        (0..N as i32).map(|i| i % 20000),
    ));
    let zips: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| format!("{:05}", i % 100_000)),
    ));

    let mut g = c.benchmark_group("kernels");
    g.throughput(Throughput::Elements(N as u64));
    let tok = Tokenizer::new(key, "email", 32, "").unwrap();
    g.bench_function("tokenize/utf8", |b| b.iter(|| tok.apply(&emails).unwrap()));
    g.bench_function("tokenize/utf8view", |b| {
        b.iter(|| tok.apply(&emails_view).unwrap())
    });
    g.bench_function("tokenize/int64", |b| b.iter(|| tok.apply(&ints).unwrap()));
    let enc = Encryptor::new(key, "email").unwrap();
    g.bench_function("encrypt/utf8", |b| b.iter(|| enc.apply(&emails).unwrap()));
    // The reversible, deterministic transforms of docs/KEYS.md, beside HMAC and AES-GCM above.
    let siv = SivEncryptor::new(key, "k1", "email").unwrap();
    g.bench_function("encrypt_deterministic/utf8", |b| {
        b.iter(|| siv.apply(&emails).unwrap())
    });
    let cards: ArrayRef =
        Arc::new(StringArray::from_iter_values((0..N).map(|i| {
            format!("{:016}", 4_000_000_000_000_000u64 + i as u64 * 7919)
        })));
    let fpe_spec = |alphabet: &str| FpeSpec {
        key: "k1".into(),
        domain: "card".into(),
        alphabet: alphabet.into(),
        characters: cloakline::kernels::fpe::named_alphabet(alphabet)
            .unwrap()
            .into(),
        separators: String::new(),
        keep_first: 0,
        keep_last: 0,
        luhn: false,
        on_invalid: cloakline::kernels::fpe::OnInvalid::Error,
    };
    let ff1 = Fpe::new(key, &fpe_spec("digits")).unwrap();
    g.bench_function("fpe/digits16", |b| b.iter(|| ff1.apply(&cards).unwrap()));
    let ff1_alnum = Fpe::new(key, &fpe_spec("alphanumeric")).unwrap();
    let words: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..N).map(|i| format!("user{i:08}abc")),
    ));
    g.bench_function("fpe/alphanumeric15", |b| {
        b.iter(|| ff1_alnum.apply(&words).unwrap())
    });
    let mask = Masker::new(0, 4, '*');
    g.bench_function("mask/utf8", |b| b.iter(|| mask.apply(&emails).unwrap()));
    let red = Redactor::new(&arrow::datatypes::DataType::Utf8, Some("x")).unwrap();
    g.bench_function("redact/constant", |b| {
        b.iter(|| red.apply(&emails).unwrap())
    });
    let bins = Generalizer::new(
        &GeneralizeSpec::Number(NumberBins {
            bin_width: Some(10000.0),
            breaks: None,
            top: Some(200000.0),
            bottom: None,
            label: LabelStyle::Range,
        }),
        &arrow::datatypes::DataType::Int64,
    )
    .unwrap();
    g.bench_function("generalize/int_bins", |b| {
        b.iter(|| bins.apply(&ints).unwrap())
    });
    let year = Generalizer::new(
        &GeneralizeSpec::Date {
            to: DateLevel::Year,
            label: LabelStyle::Range,
        },
        &arrow::datatypes::DataType::Date32,
    )
    .unwrap();
    g.bench_function("generalize/date_year", |b| {
        b.iter(|| year.apply(&dates).unwrap())
    });
    let pre = Generalizer::new(
        &GeneralizeSpec::Prefix { keep_prefix: 3 },
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    g.bench_function("generalize/prefix", |b| {
        b.iter(|| pre.apply(&zips).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

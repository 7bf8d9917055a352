//! Criterion bench of `scrub` (and of the recognizers alone) over 1,000,000 free-text notes of
//! about 80 characters, ~30% of them with one entity; single-threaded, so the throughput is
//! values per second on one core.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use cloakline::kernels::Scrubber;
use cloakline::kernels::scrub::ScrubMode;
use cloakline::keys::Keyring;
use cloakline::recognizers::RecognizerSet;

const N: usize = 1_000_000;

fn notes() -> ArrayRef {
    let texts = [
        "Customer asked about the delivery window and wants a call back next week",
        "客户反馈包裹延迟，已安排重新发货，请在周五前确认地址与联系方式是否正确",
        "Refund approved after review; the agent noted the order was damaged in transit",
        "Prefers contact in the evening; VIP since 2019, renewal due in March next year",
    ];
    let mut x: u64 = 42;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    Arc::new(StringArray::from_iter_values((0..N).map(|i| {
        let t = texts[i % texts.len()];
        let r = next();
        if r % 10 < 3 {
            let e = match r % 5 {
                0 => format!("user{}@example.com", r % 100_000),
                1 => format!("138{:08}", r % 100_000_000),
                2 => "11010519491231002X".to_string(),
                3 => "4111 1111 1111 1111".to_string(),
                _ => format!("10.0.{}.{}", r % 250, r % 199),
            };
            let cut = t.char_indices().nth(40).map_or(t.len(), |(b, _)| b);
            format!("{} {e} {}", &t[..cut], &t[cut..])
        } else {
            t.to_string()
        }
    })))
}

fn bench(c: &mut Criterion) {
    let set = Arc::new(RecognizerSet::builtin().unwrap());
    let notes = notes();
    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let ring = Keyring::generate_in_memory(&["k1"]);
    let placeholder = Scrubber::new(&set, None, &ScrubMode::Placeholder, &ring).unwrap();
    g.bench_function("placeholder/1M notes", |b| {
        b.iter(|| placeholder.apply(&notes).unwrap())
    });
    let token = Scrubber::new(
        &set,
        None,
        &ScrubMode::Token {
            key: "k1".into(),
            domains: Default::default(),
            length: 32,
            prefix: String::new(),
        },
        &ring,
    )
    .unwrap();
    g.bench_function("token/1M notes", |b| {
        b.iter(|| token.apply(&notes).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

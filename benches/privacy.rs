//! Criterion benches of the privacy search on the Adult benchmark (../shared): optimal
//! enforcement for k = 5 with and without 5% suppression, and one node evaluation.
//! The end-to-end figures (CLI wall time, `check` on 10M rows) come from benches/privacy.sh.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

use cloakline::io::ReadOptions;
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use cloakline::privacy::{models, prepare, search};

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("examples/adult.csv");
    if !data.exists() {
        eprintln!("skipped: {} not found", data.display());
        return;
    }
    let read = ReadOptions::default().with_delimiter(b';');
    let group = |policy: &Policy, spec: &cloakline::policy::PrivacySpec| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(prepare(
            policy,
            spec,
            &Keyring::default(),
            &data,
            std::slice::from_ref(&data),
            &read,
            true,
            None,
        ))
        .unwrap()
    };
    let mut g = c.benchmark_group("privacy/adult");
    for supp in ["0.05", "0"] {
        let text = std::fs::read_to_string(root.join("policies/adult.yaml"))
            .unwrap()
            .replace("max_suppression: 0.05", &format!("max_suppression: {supp}"));
        let policy = Policy::from_yaml_str(
            &text,
            &root.join("policies/adult.yaml").display().to_string(),
        )
        .unwrap();
        let spec = policy.privacy.clone().unwrap();
        let prep = group(&policy, &spec);
        g.bench_function(format!("search k=5 suppression={supp}"), |b| {
            b.iter(|| search::search(&prep.table, &prep.qis, &prep.models).unwrap())
        });
        if supp == "0" {
            let zero = vec![0; prep.qis.len()];
            let mut scratch = models::Scratch::default();
            g.bench_function("evaluate bottom node", |b| {
                b.iter(|| {
                    models::evaluate(&prep.table, &prep.qis, &prep.models, &zero, &mut scratch)
                })
            });
        }
    }
    g.bench_function("group input (DataFusion) k=5", |b| {
        let policy = Policy::load(&root.join("policies/adult.yaml")).unwrap();
        let spec = policy.privacy.clone().unwrap();
        b.iter(|| group(&policy, &spec))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);

//! The library as a pipeline embeds it: cancellation and progress through the job builder,
//! structured errors to branch on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cloakline::engine::{Cancel, Progress};
use cloakline::jobs::apply::Apply;
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use cloakline::{Error, PlanProblem};

use super::util::{block_on, demo_keyring, dir_names, root};

fn example() -> (Policy, Keyring) {
    let policy = Policy::load(&root().join("policies/customers.yaml")).unwrap();
    let keyring = Keyring::load(&demo_keyring()).unwrap();
    (policy, keyring)
}

#[derive(Default)]
struct Counter {
    started: AtomicU64,
    rows: AtomicU64,
    finished: AtomicU64,
}

impl Progress for Counter {
    fn start(&self, _: Option<u64>) {
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn advance(&self, rows: u64) {
        self.rows.fetch_add(rows, Ordering::SeqCst);
    }
    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn progress_sees_every_written_row_once() {
    let (policy, keyring) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let counter = Arc::new(Counter::default());
    let summary = block_on(
        Apply::new(policy, keyring, root().join("examples/customers.csv"), &out)
            .with_batch_size(7)
            .with_progress(counter.clone())
            .run(),
    )
    .unwrap();
    assert!(summary.rows_out > 0);
    assert_eq!(counter.rows.load(Ordering::SeqCst), summary.rows_out);
    assert_eq!(counter.started.load(Ordering::SeqCst), 1);
    assert_eq!(counter.finished.load(Ordering::SeqCst), 1);
}

#[test]
fn a_cancelled_apply_fails_as_interrupted_and_leaves_nothing() {
    let (policy, keyring) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let cancel = Cancel::new();
    cancel.cancel();
    let r = block_on(
        Apply::new(policy, keyring, root().join("examples/customers.csv"), &out)
            .with_cancel(cancel)
            .run(),
    );
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
    assert_eq!(r.unwrap_err().exit_code(), 130);
    assert!(
        dir_names(dir.path()).is_empty(),
        "{:?}",
        dir_names(dir.path())
    );
}

#[test]
fn a_missing_key_and_an_unknown_column_are_variants_to_branch_on() {
    let (policy, _) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let empty = Keyring::default();
    let empty = std::sync::Arc::new(empty);
    let r = block_on(
        Apply::new(
            policy,
            empty.clone(),
            root().join("examples/customers.csv"),
            &out,
        )
        .run(),
    );
    match r {
        Err(Error::MissingKey {
            key_id, present, ..
        }) => {
            assert!(!key_id.is_empty());
            assert!(present.is_empty());
        }
        other => panic!("expected MissingKey, got {other:?}"),
    }

    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "a,b\n1,2\n").unwrap();
    let p = Policy::from_yaml_str(
        &format!(
            "{}fields:\n  a: {{ action: keep, basis: consent }}\n  zz: {{ action: keep, basis: consent }}\n",
            super::util::HEAD
        ),
        "p.yaml",
    )
    .unwrap();
    let r = block_on(Apply::new(p, empty, &csv, &out).run());
    let Err(Error::Plan { problems, .. }) = r else {
        panic!("expected a plan error, got {r:?}");
    };
    assert!(
        problems
            .iter()
            .any(|q| matches!(q, PlanProblem::UnknownColumn { field, .. } if field == "zz")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|q| matches!(q, PlanProblem::UnlistedColumn { column, .. } if column == "b")),
        "{problems:?}"
    );
    assert!(!out.exists());
}

#[test]
fn dropping_the_run_future_cancels_the_run_and_commits_nothing() {
    let (policy, keyring) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let job = Apply::new(policy, keyring, root().join("examples/customers.csv"), &out)
            .with_batch_size(1)
            .with_threads(1)
            .run();
        // Polled once (the blocking part starts), then dropped mid-run.
        use futures::FutureExt;
        assert!(
            job.now_or_never().is_none(),
            "the run finished on its first poll"
        );
    });
    // Dropping the runtime waits for the blocking part, which sees the cancellation and stops
    // before its commit.
    drop(rt);
    // Nothing at all: no output, no sidecar, no temporary file or lock left behind.
    assert!(
        dir_names(dir.path()).is_empty(),
        "{:?}",
        dir_names(dir.path())
    );
}

#[test]
fn check_reports_unmet_models_as_a_report_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = super::util::people_csv(dir.path());
    let p = Policy::from_yaml_str(
        &format!(
            "{}{}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n  k: 2\n",
            super::util::HEAD,
            super::util::PEOPLE
        ),
        "k.yaml",
    )
    .unwrap();
    let report =
        block_on(cloakline::jobs::check::Check::new(p, Keyring::default(), &input).run()).unwrap();
    // Six different ages, as the field rules release them: no class of 2; nothing written.
    assert!(!report.meets_models);
    assert_eq!(report.k, Some(2));
    assert_eq!(report.records_violating, 6);
    assert_eq!(report.assessment.records, 6);
    assert_eq!(dir_names(dir.path()), ["people.csv"]);
}

#[test]
fn a_cancelled_overwrite_leaves_the_previous_release_and_the_users_files_alone() {
    let (policy, keyring) = example();
    let (policy, keyring) = (Arc::new(policy), Arc::new(keyring));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let mine = dir.path().join("notes.txt");
    std::fs::write(&mine, "the user's own file").unwrap();
    let input = root().join("examples/customers.csv");
    block_on(Apply::new(Arc::clone(&policy), Arc::clone(&keyring), &input, &out).run()).unwrap();
    let before = std::fs::read(&out).unwrap();
    let side = dir.path().join("c.parquet.provenance.json");
    let side_before = std::fs::read(&side).unwrap();
    let cancel = Cancel::new();
    cancel.cancel();
    let r = block_on(
        Apply::new(policy, keyring, &input, &out)
            .with_overwrite(true)
            .with_cancel(cancel)
            .run(),
    );
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    assert_eq!(std::fs::read(&side).unwrap(), side_before);
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "the user's own file"
    );
    assert_eq!(
        dir_names(dir.path()),
        ["c.parquet", "c.parquet.provenance.json", "notes.txt"]
    );
}

#[test]
fn run_outside_a_tokio_runtime_is_an_error_not_a_panic() {
    let (policy, keyring) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let job = Apply::new(policy, keyring, root().join("examples/customers.csv"), &out).run();
    let r = futures::executor::block_on(job);
    assert!(matches!(r, Err(Error::Usage(_))), "{r:?}");
    assert!(dir_names(dir.path()).is_empty());
}

#[test]
fn unmet_models_in_apply_carry_the_assessment_and_a_url_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = super::util::people_csv(dir.path());
    let p = Policy::from_yaml_str(
        &format!(
            "{}{}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n  k: 2\n  on_violation: fail\n",
            super::util::HEAD,
            super::util::PEOPLE
        ),
        "k.yaml",
    )
    .unwrap();
    let out = dir.path().join("out.parquet");
    let e = block_on(Apply::new(p, Keyring::default(), &input, &out).run()).unwrap_err();
    assert!(matches!(e, Error::Privacy { .. }), "{e:?}");
    let a = e
        .privacy_assessment()
        .expect("the assessment travels with the error");
    assert_eq!((a.records, a.smallest_class), (6, 1));
    assert!(!a.satisfied);
    assert_eq!(dir_names(dir.path()), ["people.csv"]);

    // A URL with credentials in it is refused before anything is read, and the message does
    // not repeat them; so is a scheme no store serves.
    let (policy, keyring) = example();
    let e = block_on(Apply::new(policy, keyring, "s3://user:secret@bucket/in.csv", &out).run())
        .unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e:?}");
    assert!(!e.to_string().contains("secret"), "{e}");
    let v = block_on(cloakline::jobs::verify::Verify::new("ftp://b/o.parquet").run()).unwrap_err();
    assert!(matches!(v, Error::Usage(_)), "{v:?}");
}

#[test]
fn verify_and_scan_are_owned_async_jobs() {
    let (policy, keyring) = example();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.csv");
    let input = root().join("examples/customers.csv");
    block_on(Apply::new(policy, keyring, &input, &out).run()).unwrap();
    let v = block_on(cloakline::jobs::verify::Verify::new(&out).run()).unwrap();
    assert!(v.passed(), "{}", v.to_text());
    // Edited after the run: the checksum check fails, and says so as a result, not an error.
    std::fs::write(&out, "customer_id\nx\n").unwrap();
    let v = block_on(cloakline::jobs::verify::Verify::new(&out).run()).unwrap();
    assert!(!v.passed());
    let report = block_on(
        cloakline::jobs::scan::Scan::new(&input)
            .with_sample(50)
            .run(),
    )
    .unwrap();
    assert!(report.columns.iter().any(|c| c.name == "email"));
}

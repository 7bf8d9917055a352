//! The consent ledger (docs/CONSENT.md): withdrawals, re-consent, as-of times, tokenized ids,
//! PIPL separate consent, per-field nulling, the counts in provenance, verify, the report and
//! bad ledgers.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

const DATA: &str = "\
customer_id,email,city,score
c1,a@x.com,Paris,1
c2,b@x.com,Paris,2
c3,c@x.com,Lyon,3
c4,d@x.com,Lyon,4
c5,,Nice,5
";

/// c1 gave; c2 gave then withdrew in March; c3 withdrew then gave again in February; c4 has
/// events for another purpose only; c5 gave.
const LEDGER: &str = "\
subject_id,purpose,event,timestamp,consent_type
c1,churn,given,2026-01-01T00:00:00Z,consent
c2,churn,given,2026-01-01T00:00:00Z,consent
c2,churn,withdrawn,2026-03-01T00:00:00Z,consent
c3,churn,withdrawn,2026-01-01T00:00:00Z,consent
c3,churn,given,2026-02-01T00:00:00Z,consent
c4,marketing,given,2026-01-01T00:00:00Z,consent
c5,churn,given,2026-01-01T00:00:00Z,consent
";

fn policy_text(consent_extra: &str, fields_extra: &str) -> String {
    format!(
        "{HEAD}consent:\n  ledger: ledger.csv\n  subject: customer_id\n  purpose: churn\n{consent_extra}\
fields:\n  customer_id: {{ action: keep, basis: legitimate_interests }}\n  \
email: {{ action: tokenize, key: k1, basis: consent }}\n  \
city: {{ action: keep, basis: legitimate_interests }}\n  \
score: {{ action: keep, basis: consent }}\n{fields_extra}"
    )
}

struct Case {
    dir: tempfile::TempDir,
    ring: PathBuf,
}

impl Case {
    fn new(data: &str, ledger: &str, policy: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.csv"), data).unwrap();
        std::fs::write(dir.path().join("ledger.csv"), ledger).unwrap();
        write_policy(dir.path(), policy);
        let ring = dir.path().join("keys.json");
        generate_ring(&ring, &["k1", "k2"]);
        Case { dir, ring }
    }
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn apply(&self, out: &str, extra: &[&str]) -> std::process::Output {
        apply_files(
            &self.p("p.yaml"),
            Some(&self.ring),
            &self.p("data.csv"),
            &self.p(out),
            extra,
        )
    }
    /// `sql --policy p.yaml --keyring … --table c=data.csv EXTRA… --output OUT QUERY`.
    fn sql_args(&self, out: &str, extra: &[&str], query: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "sql",
            "--policy",
            self.p("p.yaml").to_str().unwrap(),
            "--keyring",
            self.ring.to_str().unwrap(),
        ]
        .map(String::from)
        .into();
        a.extend([
            "--table".into(),
            format!("c={}", self.p("data.csv").display()),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend([
            "--output".into(),
            self.p(out).display().to_string(),
            query.into(),
        ]);
        a
    }
    /// `apply --policy p.yaml --keyring … --input data.csv --output OUT EXTRA…`.
    fn apply_args(&self, out: &str, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["apply".into()];
        for (flag, path) in [
            ("--policy", self.p("p.yaml")),
            ("--keyring", self.ring.clone()),
            ("--input", self.p("data.csv")),
            ("--output", self.p(out)),
        ] {
            a.extend([flag.to_string(), path.display().to_string()]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }
    fn apply_ok(&self, out: &str, extra: &[&str]) -> Vec<Vec<String>> {
        let o = self.apply(out, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        read_csv_strings(&self.p(out))
    }
    fn consent(&self, out: &str) -> Value {
        let doc: Value = serde_json::from_str(
            &std::fs::read_to_string(self.p(&format!("{out}.provenance.json"))).unwrap(),
        )
        .unwrap();
        doc["@included"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|n| n.get("cl:consent").cloned())
            .expect("a cl:consent on the run")
    }
}

fn run_owned(args: &[String]) -> std::process::Output {
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The `customer_id` column of released rows.
fn ids(rows: &[Vec<String>]) -> Vec<&str> {
    rows[1..].iter().map(|r| r[0].as_str()).collect()
}

fn nothing_written(dir: &Path) {
    let names = dir_names(dir);
    assert!(
        !names.iter().any(|n| n.starts_with("out")),
        "stray output: {names:?}"
    );
}

#[test]
fn withdrawal_after_giving_removes_the_subjects_rows() {
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    let rows = c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    // c2 withdrew in March; c4 has no event for churn.
    assert_eq!(ids(&rows), ["c1", "c3", "c5"]);
    let rec = c.consent("out.csv");
    assert_eq!(rec["rowsIn"], 5);
    assert_eq!(rec["rowsReleased"], 3);
    assert_eq!(rec["rowsRemovedWithdrawn"], 1);
    assert_eq!(rec["rowsRemovedMissing"], 1);
    assert_eq!(rec["purpose"], "churn");
    assert_eq!(rec["asOf"], "2026-04-01T00:00:00Z");
    assert_eq!(rec["consentFields"], serde_json::json!(["email", "score"]));
    assert_eq!(rec["ledgerEvents"], 7);
    assert_eq!(rec["purposeEvents"], 6);
}

#[test]
fn as_of_times_on_both_sides_of_an_event() {
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    // Before c2's withdrawal and before c3's re-consent.
    assert_eq!(
        ids(&c.apply_ok("out1.csv", &["--as-of", "2026-01-15T00:00:00Z"])),
        ["c1", "c2", "c5"]
    );
    // The instant of c2's withdrawal counts: an event at the as-of time applies.
    assert_eq!(
        ids(&c.apply_ok("out2.csv", &["--as-of", "2026-03-01T00:00:00Z"])),
        ["c1", "c3", "c5"]
    );
    // One second earlier it has not happened yet.
    assert_eq!(
        ids(&c.apply_ok("out3.csv", &["--as-of", "2026-02-28T23:59:59Z"])),
        ["c1", "c2", "c3", "c5"]
    );
    // Before any event, no one has consented: nothing released, nothing matched → error.
    let o = c.apply("out4.csv", &["--as-of", "2025-12-31"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("none of the 5 input rows"),
        "{}",
        stderr(&o)
    );
    let rec = c.consent("out3.csv");
    assert_eq!(rec["laterEvents"], 1);
}

#[test]
fn re_consent_after_withdrawal_releases_the_subject_again() {
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    let rows = c.apply_ok("out.csv", &["--as-of", "2026-02-01"]);
    assert!(ids(&rows).contains(&"c3"), "{rows:?}");
    let rows = c.apply_ok("early.csv", &["--as-of", "2026-01-20"]);
    assert!(!ids(&rows).contains(&"c3"), "{rows:?}");
}

#[test]
fn null_fields_keeps_the_row_and_removes_only_consent_based_fields() {
    let c = Case::new(
        DATA,
        LEDGER,
        &policy_text("  on_withdrawn: null_fields\n", ""),
    );
    let rows = c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    assert_eq!(ids(&rows), ["c1", "c2", "c3", "c4", "c5"]);
    for r in &rows[1..] {
        let withdrawn = r[0] == "c2" || r[0] == "c4";
        // email and score rely on consent; city and the id on legitimate interests.
        assert_eq!(r[1].is_empty(), withdrawn || r[0] == "c5", "{r:?}");
        assert_eq!(r[3].is_empty(), withdrawn, "{r:?}");
        assert!(!r[2].is_empty());
    }
    let rec = c.consent("out.csv");
    assert_eq!(rec["rowsReleased"], 5);
    assert_eq!(rec["fieldsNulled"]["email"], 2);
    assert_eq!(rec["fieldsNulled"]["score"], 2);
    // The sidecar's per-field counts see those values as nulls, not as transformed ones.
    let v = run(&[
        "verify",
        c.p("out.csv").to_str().unwrap(),
        "--consent-ledger",
        c.p("ledger.csv").to_str().unwrap(),
    ]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn tokenized_ledger_ids_match_and_another_key_is_named_as_the_likely_cause() {
    // The consent system holds only tokens: the subject field's tokenize rule (key k1,
    // domain customer_id) reproduces them.
    let tokenized = |key: &str| {
        format!(
            "{HEAD}consent:\n  ledger: ledger.csv\n  subject: customer_id\n  purpose: churn\n  \
             subject_ids: tokenized\nfields:\n  customer_id: {{ action: tokenize, key: {key}, \
             domain: customer_id, basis: legitimate_interests }}\n  email: {{ action: tokenize, \
             key: k1, basis: consent }}\n  city: {{ action: keep, basis: legitimate_interests }}\n  \
             score: {{ action: keep, basis: consent }}\n"
        )
    };
    let c = Case::new(
        DATA,
        LEDGER,
        &format!(
            "{HEAD}unlisted: drop\nfields:\n  customer_id: {{ action: tokenize, key: k1, domain: customer_id, basis: legitimate_interests }}\n"
        ),
    );
    // The tokens the consent system would hold.
    let toks = c.apply_ok("tokens.csv", &[]);
    let tok: Vec<String> = toks[1..].iter().map(|r| r[0].clone()).collect();
    // Only the first field is an id (a random token may itself contain `c1,`).
    let ledger: String = LEDGER
        .lines()
        .map(|l| {
            let (id, rest) = l.split_once(',').unwrap();
            let id = match id.strip_prefix('c').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => tok[n - 1].clone(),
                None => id.to_string(),
            };
            format!("{id},{rest}\n")
        })
        .collect();
    std::fs::write(c.p("ledger.csv"), &ledger).unwrap();
    assert!(ledger.lines().skip(1).all(|l| l.len() > 32), "{ledger}");
    write_policy(c.dir.path(), &tokenized("k1"));
    let rows = c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    let released: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(released, [&tok[0], &tok[2], &tok[4]]);
    assert_eq!(c.consent("out.csv")["subjectIds"], "tokenized");

    // The same ledger against tokens of another key: no subject matches.
    write_policy(c.dir.path(), &tokenized("k2"));
    let o = c.apply("out2.csv", &["--as-of", "2026-04-01"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("tokenized with another key or domain"), "{e}");
    assert!(!c.p("out2.csv").exists());
    // Raw ids against a tokenized ledger: the same diagnosis.
    write_policy(c.dir.path(), &policy_text("", ""));
    let o = c.apply("out3.csv", &["--as-of", "2026-04-01"]);
    assert!(
        stderr(&o).contains("none of the 5 input rows"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pipl_separate_consent_for_sensitive_fields() {
    let data = "customer_id,email,health\nc1,a@x.com,ok\nc2,b@x.com,ill\nc3,c@x.com,ok\n";
    let ledger = "\
subject_id,purpose,event,timestamp,consent_type
c1,care,given,2026-01-01,consent
c1,care,given,2026-01-01,separate_consent
c2,care,given,2026-01-01,consent
c3,care,given,2026-01-01,consent
c3,care,given,2026-01-01,separate_consent
c3,care,withdrawn,2026-02-01,separate_consent
";
    let policy = "policy: t\nversion: 1\ncontroller: C\njurisdictions: [CN]\npurpose: care\n\
consent:\n  ledger: ledger.csv\n  subject: customer_id\n  purpose: care\n\
fields:\n  customer_id: { action: keep, basis: contract }\n  \
email: { action: tokenize, key: k1, basis: consent }\n  \
health: { action: keep, basis: consent, sensitive: true, separate_consent: true }\n";
    let c = Case::new(data, ledger, policy);
    let rows = c.apply_ok("out.csv", &["--as-of", "2026-03-01"]);
    // Every subject keeps the general consent-based field; only c1 still has separate
    // consent for the sensitive one (c2 never gave it, c3 withdrew it).
    assert_eq!(ids(&rows), ["c1", "c2", "c3"]);
    assert_eq!(rows[1][2], "ok");
    assert_eq!(rows[2][2], "");
    assert_eq!(rows[3][2], "");
    assert!(rows[1..].iter().all(|r| !r[1].is_empty()));
    let rec = c.consent("out.csv");
    assert_eq!(rec["separateConsentFields"], serde_json::json!(["health"]));
    assert_eq!(rec["fieldsNulled"]["health"], 2);
    assert_eq!(rec["fieldsNulled"]["email"], 0);

    // When every consent-based field needs separate consent, missing it removes the row.
    let only_sensitive = policy.replace(
        "email: { action: tokenize, key: k1, basis: consent }",
        "email: { action: tokenize, key: k1, basis: contract }",
    );
    write_policy(c.dir.path(), &only_sensitive);
    let rows = c.apply_ok("out2.csv", &["--as-of", "2026-03-01"]);
    assert_eq!(ids(&rows), ["c1"]);
    let rec = c.consent("out2.csv");
    assert_eq!(rec["rowsRemovedMissing"], 1);
    assert_eq!(rec["rowsRemovedWithdrawn"], 1);
}

#[test]
fn k_anonymity_is_judged_on_what_consent_releases() {
    let policy = policy_text(
        "",
        "privacy:\n  quasi_identifiers:\n    city: { levels: [{ keep_prefix: 1 }] }\n  k: 2\n",
    );
    let data = "customer_id,email,city,score\nc1,a@x.com,Paris,1\nc2,b@x.com,Paris,2\nc3,c@x.com,Lyon,3\nc4,d@x.com,Lyon,4\nc5,e@x.com,Lyon,5\n";
    let c = Case::new(data, LEDGER, &policy);
    // The input is 2-anonymous (Paris 2, Lyon 3), but as of mid-January only c1, c2 and c5
    // consented: Lyon's released class is c5 alone.
    let o = c.apply("out.csv", &["--as-of", "2026-01-15"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    nothing_written(c.dir.path());
    // As of mid-February c3 is back: Paris 2 (c1, c2), Lyon 2 (c3, c5).
    let rows = c.apply_ok("out2.csv", &["--as-of", "2026-02-15"]);
    assert_eq!(ids(&rows), ["c1", "c2", "c3", "c5"]);
    // `check` measures the same release at the same times.
    let check = |at: &str| {
        run(&[
            "check",
            "--policy",
            c.p("p.yaml").to_str().unwrap(),
            "--input",
            c.p("data.csv").to_str().unwrap(),
            "--as-of",
            at,
            "--json",
        ])
    };
    let o = check("2026-01-15");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = check("2026-02-15");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["assessment"]["records"], 4, "{v}");
}

#[test]
fn sql_policy_view_releases_what_apply_releases() {
    let c = Case::new(
        DATA,
        LEDGER,
        &policy_text("  on_withdrawn: null_fields\n", ""),
    );
    let applied = c.apply_ok("out.csv", &[]);
    let o = run_owned(&c.sql_args(
        "sql.csv",
        &[],
        "SELECT * FROM c_shared ORDER BY customer_id",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_csv_strings(&c.p("sql.csv")), applied);
    // The query's record says what the view's gate judged: every row once, as apply did.
    let (by_sql, by_apply) = (c.consent("sql.csv"), c.consent("out.csv"));
    for k in [
        "rowsIn",
        "rowsReleased",
        "rowsRemovedWithdrawn",
        "fieldsNulled",
        "ledgerSha256",
    ] {
        assert_eq!(by_sql[k], by_apply[k], "{k}");
    }
    let v = run(&["verify", c.p("sql.csv").to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    // As of January c3 had withdrawn and c2 had not yet: the view says so too.
    let o = run_owned(&c.sql_args(
        "jan.csv",
        &["--as-of", "2026-01-15"],
        "SELECT customer_id, score FROM c_shared ORDER BY customer_id",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let jan = read_csv_strings(&c.p("jan.csv"));
    let score = |id: &str| jan.iter().find(|r| r[0] == id).map(|r| r[1].clone());
    assert_eq!(score("c2").as_deref(), Some("2"));
    assert_eq!(score("c3").as_deref(), Some(""));
}

/// A ledger over `--ledger-memory` is reduced on disk: the release, its record and the SQL
/// view are the in-memory run's, and the scratch files are gone afterwards.
#[test]
fn a_ledger_over_its_memory_budget_is_reduced_on_disk_with_the_same_release() {
    // One duplicated event, so the duplicate count is compared too.
    let c = Case::new(
        DATA,
        &format!("{LEDGER}c1,churn,given,2026-01-01T00:00:00Z,consent\n"),
        &policy_text("  on_withdrawn: null_fields\n", ""),
    );
    let tmp = c.p("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let spilled = |args: Vec<String>| {
        let mut cmd = bin();
        cmd.env("TMPDIR", &tmp)
            .env("CLOAKLINE_LOG", "info")
            .args(args);
        cmd.output().unwrap()
    };
    let in_memory = c.apply_ok("mem.csv", &["--as-of", "2026-04-01"]);
    let o = spilled(c.apply_args(
        "disk.csv",
        &["--as-of", "2026-04-01", "--ledger-memory", "1B"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("reducing it on disk"), "{}", stderr(&o));
    // Tokens are deterministic: the two releases are byte-identical.
    assert_eq!(read_csv_strings(&c.p("disk.csv")), in_memory);
    let (mem, disk) = (c.consent("mem.csv"), c.consent("disk.csv"));
    for k in [
        "rowsIn",
        "rowsReleased",
        "rowsRemovedWithdrawn",
        "rowsRemovedMissing",
        "fieldsNulled",
        "ledgerSubjects",
        "duplicateEvents",
    ] {
        assert_eq!(mem[k], disk[k], "{k}");
    }
    assert_eq!(disk["duplicateEvents"], 1);
    assert_eq!(disk["ledgerSubjects"], 4);
    let o = spilled(c.sql_args(
        "sql.csv",
        &["--as-of", "2026-04-01", "--ledger-memory", "1"],
        "SELECT * FROM c_shared ORDER BY customer_id",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_csv_strings(&c.p("sql.csv")), in_memory);
    // A run that fails after reducing on disk (a conflict) leaves no scratch either.
    std::fs::write(
        c.p("conflict.csv"),
        "subject_id,purpose,event,timestamp\nc1,churn,given,2026-01-01\nc1,churn,withdrawn,2026-01-01\n",
    )
    .unwrap();
    let conflict = c.p("conflict.csv");
    let o = spilled(c.apply_args(
        "out-conflict.csv",
        &[
            "--consent-ledger",
            conflict.to_str().unwrap(),
            "--ledger-memory",
            "1",
        ],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("reducing it on disk"), "{}", stderr(&o));
    assert!(stderr(&o).contains("row 2:"), "{}", stderr(&o));
    assert!(
        dir_names(&tmp).is_empty(),
        "scratch left behind: {:?}",
        dir_names(&tmp)
    );
    // --as-of for a policy without a `consent:` block would be ignored: refused instead.
    let o = apply_customers(
        &demo_keyring(),
        &root().join("examples/customers.csv"),
        &c.p("plain.csv"),
        &["--as-of", "2026-04-01"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("`consent:` block"), "{}", stderr(&o));
    // A size that is not one is a usage error (exit 2), before anything is read.
    let o = c.apply("bad.csv", &["--ledger-memory", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--ledger-memory"), "{}", stderr(&o));
    nothing_written(c.dir.path());
}

#[test]
fn verify_checks_the_ledger_digest_and_the_counts() {
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    let out = c.p("out.csv");
    let verify = |extra: &[&str]| {
        let mut a = vec!["verify", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        run(&a)
    };
    let ledger = c.p("ledger.csv");
    let ok = verify(&["--consent-ledger", ledger.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("PASS consent ledger"), "{out}");
    assert!(out.contains("PASS consent counts"), "{out}");
    // A ledger edited after the run (a withdrawal added) is not the recorded one.
    std::fs::write(
        &ledger,
        format!("{LEDGER}c1,churn,withdrawn,2026-03-05T00:00:00Z,consent\n"),
    )
    .unwrap();
    let bad = verify(&["--consent-ledger", ledger.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL consent ledger"));
    // Counts edited in the sidecar do not add up.
    let side = c.p("out.csv.provenance.json");
    let text = std::fs::read_to_string(&side).unwrap();
    std::fs::write(
        &side,
        text.replace("\"rowsRemovedMissing\": 1", "\"rowsRemovedMissing\": 0"),
    )
    .unwrap();
    let bad = verify(&[]);
    assert_eq!(bad.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL consent counts"));
}

#[test]
fn report_shows_consent_and_release_and_never_claims_anonymity_without_evidence() {
    let release = "release:\n  recipient: Acme Research\n  model: public\n  threat_model: \
                   a journalist linking with public registers\n  risk_threshold: 0.2\n  \
                   approver: J. Doe, DPO\n  approved_on: 2026-11-01\n  re_evaluate_by: \
                   2027-05-01\n  claim: anonymised\n";
    let c = Case::new(DATA, LEDGER, &format!("{}{release}", policy_text("", "")));
    c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    let o = run(&[
        "report",
        c.p("out.csv.provenance.json").to_str().unwrap(),
        "--format",
        "md",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    for want in [
        "Consent enforcement",
        "| **Removed, consent withdrawn** | 1 |",
        "Release record (ISO/IEC 27559)",
        "Context: threat model",
        "Governance: re-evaluate by** | 2027-05-01",
        "去标识化",
        "claim of anonymisation is not supported",
        "public release",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    assert!(!md.contains("匿名化"), "{md}");
    // Messages are single-spaced (a line continuation once left runs of spaces in them).
    assert!(md.contains("(hex secrets): anyone who copies it"), "{md}");
    // Without a release record: a finding says so.
    let c2 = Case::new(DATA, LEDGER, &policy_text("", ""));
    c2.apply_ok("out.csv", &[]);
    let o = run(&[
        "report",
        c2.p("out.csv.provenance.json").to_str().unwrap(),
        "--format",
        "md",
    ]);
    let md = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(md.contains("no release record"), "{md}");
}

#[test]
fn consent_asserted_but_not_enforced_is_a_warning_and_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_policy(
        dir.path(),
        &format!("{HEAD}fields:\n  email: {{ action: redact, basis: consent }}\n"),
    );
    let o = run(&["validate", "--policy", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(text.contains("CONSENT"), "{text}");
    assert!(
        text.contains("consent asserted, not enforced (withdrawn"),
        "{text}"
    );
}

#[test]
fn bad_ledgers_fail_clearly_and_write_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        // (ledger text, policy extra, expected message part)
        (
            "subject_id,purpose,event,timestamp\nc1,churn,given,2026-01-01\nc1,churn,withdrawn,2026-01-01\n",
            "",
            "row 2: this subject's latest events for the purpose are both `given` and `withdrawn`",
        ),
        (
            "subject_id,purpose,event,timestamp\nc1,churn,maybe,2026-01-01\n",
            "",
            "row 1: `event` is neither `given` nor `withdrawn`",
        ),
        (
            "subject_id,purpose,event,timestamp\nc1,churn,given,last tuesday\n",
            "",
            "row 1: `timestamp` is not a time",
        ),
        (
            "subject_id,purpose,event,timestamp\nc1,marketing,given,2026-01-01\n",
            "",
            "purpose `churn` is unknown to the ledger",
        ),
        (
            "who,purpose,event,timestamp\nc1,churn,given,2026-01-01\n",
            "",
            "has no column `subject_id`",
        ),
        (LEDGER, "  on_missing: fail\n", "`on_missing: fail`"),
        // A data file without a header given as the ledger: its first row is not named.
        (
            "c1,churn@example.org,given,2026-01-01\n",
            "",
            "has no column `subject_id` (0 of its 4 columns are expected ones;",
        ),
    ];
    for (ledger, extra, want) in cases {
        let c = Case::new(DATA, ledger, &policy_text(extra, ""));
        let o = c.apply("out.csv", &["--as-of", "2026-04-01"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{want}: {e}");
        assert!(e.contains(want), "{want}: {e}");
        assert!(e.contains("ledger.csv"), "{e}");
        // Subject ids are data: never in a message.
        assert!(
            !e.contains("c1,") && !e.contains(" c1 ") && !e.contains("`c1`"),
            "{e}"
        );
        assert!(!e.contains("@example.org"), "{e}");
        // Nor are the ledger's purpose values (the file's values).
        assert!(!e.contains("marketing"), "{e}");
        nothing_written(c.dir.path());
    }
    // A conflict a later event decides is no conflict, in whichever order the file lists
    // them.
    let c = Case::new(
        DATA,
        "subject_id,purpose,event,timestamp\nc1,churn,given,2026-02-01\nc1,churn,given,2026-01-01\n\
         c1,churn,withdrawn,2026-01-01\n",
        &policy_text("  on_missing: drop\n", ""),
    );
    assert_eq!(
        ids(&c.apply_ok("out.csv", &["--as-of", "2026-04-01"])),
        ["c1"]
    );
    // ...but as of before that later event, it is.
    let o = c.apply("out2.csv", &["--as-of", "2026-01-15"]);
    assert!(stderr(&o).contains("row 3:"), "{}", stderr(&o));
    // Identical repeated events are one event.
    let c = Case::new(
        DATA,
        &format!("{LEDGER}c1,churn,given,2026-01-01T00:00:00Z,consent\n"),
        &policy_text("", ""),
    );
    c.apply_ok("out.csv", &["--as-of", "2026-04-01"]);
    assert_eq!(c.consent("out.csv")["duplicateEvents"], 1);

    // The ledger is an input: no output may replace it, even with --overwrite.
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    let o = c.apply("ledger.csv", &["--overwrite"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("consent ledger"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(c.p("ledger.csv")).unwrap(), LEDGER);
    // A missing ledger file, and a subject column the data lacks.
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    std::fs::remove_file(c.p("ledger.csv")).unwrap();
    let o = c.apply("out.csv", &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("cannot read the consent ledger"),
        "{}",
        stderr(&o)
    );
    nothing_written(c.dir.path());
    let c = Case::new(
        "id,email,city,score\nc1,a@x.com,Paris,1\n",
        LEDGER,
        &policy_text("", ""),
    );
    let o = c.apply("out.csv", &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("customer_id"), "{}", stderr(&o));
    nothing_written(c.dir.path());
}

#[test]
fn policy_blocks_are_checked_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        (
            "consent:\n  ledger: l.csv\n  subject: nobody\n  purpose: p\nfields:\n  email: { action: redact, basis: consent }\n",
            "`subject: nobody` is not a field of the policy",
        ),
        (
            "consent:\n  ledger: l.csv\n  subject: email\n  purpose: p\n  subject_ids: tokenized\nfields:\n  email: { action: redact, basis: consent }\n",
            "is not tokenized",
        ),
        (
            "consent:\n  ledger: l.csv\n  subject: email\n  purpose: p\nfields:\n  email: { action: redact, basis: contract }\n",
            "no output field relies on consent",
        ),
        (
            "release:\n  recipient: R\n  model: public\n  threat_model: t\n  risk_threshold: 1.5\n  approver: A\n  re_evaluate_by: 2027-01-01\nfields:\n  email: { action: redact, basis: contract }\n",
            "`risk_threshold: 1.5` must be a probability",
        ),
        (
            "release:\n  recipient: R\n  model: public\n  threat_model: t\n  risk_threshold: 0.1\n  approver: A\n  approved_on: 2027-02-01\n  re_evaluate_by: 2027-01-01\nfields:\n  email: { action: redact, basis: contract }\n",
            "`re_evaluate_by` must come after `approved_on`",
        ),
        (
            "release:\n  recipient: R\n  model: sometimes\n  threat_model: t\n  risk_threshold: 0.1\n  approver: A\n  re_evaluate_by: 2027-01-01\nfields:\n  email: { action: redact, basis: contract }\n",
            "sometimes",
        ),
    ];
    for (body, want) in bad {
        let p = write_policy(dir.path(), &format!("{HEAD}{body}"));
        let o = run(&["validate", "--policy", p.to_str().unwrap()]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{want}: {e}");
        assert!(e.contains(want), "{want}: {e}");
        assert!(e.contains("line "), "no place in: {e}");
    }
}

/// The gate over Arrow arrays directly: dictionary-encoded, sliced, Unicode, empty and null
/// subject ids, integer ids compared in decimal.
mod arrays {
    use std::sync::Arc;

    use arrow::array::{
        Array, ArrayRef, AsArray, DictionaryArray, Int64Array, RecordBatch, StringArray,
    };
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use chrono::TimeZone;
    use cloakline::keys::Keyring;
    use cloakline::plan::Plan;
    use cloakline::plan::consent::{ConsentGate, Ledger};
    use cloakline::policy::Policy;

    use crate::util::*;

    const LEDGER: &str = "subject_id,purpose,event,timestamp\n\
        ünï-1,p,given,2026-01-01\n\
        ,p,given,2026-01-01\n\
        c2,p,withdrawn,2026-01-01\n\
        42,p,given,2026-01-01\n\
        c3,p,given,2026-01-01\n";

    fn setup(subject_type: &str) -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ledger.csv"), LEDGER).unwrap();
        let text = format!(
            "{HEAD}consent:\n  ledger: ledger.csv\n  subject: id\n  purpose: p\n  \
             on_withdrawn: null_fields\nfields:\n  id: {{ action: keep, basis: contract, \
             type: {subject_type} }}\n  v: {{ action: keep, basis: consent }}\n"
        );
        let p = write_policy(dir.path(), &text);
        (dir, Policy::load(&p).unwrap())
    }

    fn released(
        policy: &Policy,
        dir: &std::path::Path,
        batch: &RecordBatch,
    ) -> Vec<Option<String>> {
        let spec = policy.consent.as_ref().unwrap();
        let at = chrono::Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let ledger_path = dir.join("ledger.csv");
        let loc = cloakline::io::Location::Local(ledger_path.clone());
        let ledger = block_on(Ledger::load(
            &loc,
            "ledger.csv",
            spec,
            at,
            1 << 30,
            &Default::default(),
        ))
        .unwrap_or_else(|e| {
            // The ledger's row with an empty subject id is refused; see below.
            panic!("{e}")
        });
        let ring = Keyring::default();
        let mut plan = Plan::new(policy, batch.schema(), &ring, "memory").unwrap();
        let gate = ConsentGate::new(policy, &plan, Arc::new(ledger), &ring, "memory").unwrap();
        plan.consent = Some(Arc::new(gate));
        let (out, _) = cloakline::engine::transform_batch(&plan, batch).unwrap();
        let v = out.column_by_name("v").unwrap();
        let v = v.as_string::<i32>();
        (0..v.len())
            .map(|i| (!v.is_null(i)).then(|| v.value(i).to_string()))
            .collect()
    }

    #[test]
    fn an_empty_subject_id_in_the_ledger_is_refused_with_its_row() {
        let (dir, policy) = setup("string");
        let spec = policy.consent.as_ref().unwrap();
        let loc = cloakline::io::Location::Local(dir.path().join("ledger.csv"));
        let e = block_on(Ledger::load(
            &loc,
            "ledger.csv",
            spec,
            chrono::Utc::now(),
            1 << 30,
            &Default::default(),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("row 2: `subject_id` is empty"), "{e}");
    }

    fn fixed_ledger(dir: &std::path::Path) {
        std::fs::write(
            dir.join("ledger.csv"),
            LEDGER.replace(
                ",p,given,2026-01-01\n,p,given",
                ",p,given,2026-01-01\nzz,p,given",
            ),
        )
        .unwrap();
    }

    #[test]
    fn dictionary_sliced_unicode_and_null_subjects() {
        let (dir, policy) = setup("string");
        fixed_ledger(dir.path());
        let keys = StringArray::from(vec![Some("c2"), Some("ünï-1"), Some("c3"), Some(""), None]);
        let dict: DictionaryArray<Int32Type> = DictionaryArray::new(
            arrow::array::Int32Array::from(vec![0, 1, 2, 3, 4, 1, 0]),
            Arc::new(keys),
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", dict.data_type().clone(), true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let v: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e", "f", "g"]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(dict), v]).unwrap();
        // c2 withdrew; ünï-1 and c3 gave; "" and the null id (index 4 is a null value
        // in the dictionary) have no record.
        assert_eq!(
            released(&policy, dir.path(), &batch),
            [
                None,
                Some("b".into()),
                Some("c".into()),
                None,
                None,
                Some("f".into()),
                None
            ]
        );
        // A slice starts mid-array: the verdict follows the slice's own rows.
        assert_eq!(
            released(&policy, dir.path(), &batch.slice(1, 3)),
            [Some("b".into()), Some("c".into()), None]
        );
    }

    #[test]
    fn integer_subjects_compare_in_decimal() {
        let (dir, policy) = setup("int64");
        fixed_ledger(dir.path());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(42), Some(7), None])),
                Arc::new(StringArray::from(vec!["x", "y", "z"])),
            ],
        )
        .unwrap();
        assert_eq!(
            released(&policy, dir.path(), &batch),
            [Some("x".into()), None, None]
        );
    }
}

/// Against a model written from CONSENT.md: whatever the ledger, a released row's subject has
/// `given` as its latest event for the purpose at or before the as-of time, a removed one does
/// not, conflicting same-time events stop the run, and the counts add up.
mod props {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use chrono::TimeZone;
    use cloakline::keys::Keyring;
    use cloakline::plan::Plan;
    use cloakline::plan::consent::{ConsentGate, Ledger};
    use cloakline::policy::Policy;
    use proptest::prelude::*;

    use crate::util::*;

    type Event = (u8, bool, bool, u8); // subject, purpose p (else q), given, day

    /// Subject → given, from the latest day at or before `as_of`; `None` when some subject's
    /// latest day has both events.
    fn model(events: &[Event], as_of: u8) -> Option<HashMap<u8, bool>> {
        let mut days: HashMap<u8, (u8, Vec<bool>)> = HashMap::new();
        for &(s, p, g, d) in events.iter().filter(|e| e.1 && e.3 <= as_of) {
            let _ = p;
            let e = days.entry(s).or_insert((d, Vec::new()));
            if d > e.0 {
                *e = (d, Vec::new());
            }
            if d == e.0 {
                e.1.push(g);
            }
        }
        let mut out = HashMap::new();
        for (s, (_, gs)) in days {
            if gs.contains(&true) && gs.contains(&false) {
                return None;
            }
            out.insert(s, gs[0]);
        }
        Some(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn released_rows_are_exactly_the_consenting_ones(
            events in prop::collection::vec((0u8..6, any::<bool>(), any::<bool>(), 1u8..10), 1..30),
            data in prop::collection::vec(0u8..8, 0..40),
            as_of in 0u8..11,
            spill in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut ledger = String::from("subject_id,purpose,event,timestamp\n");
            for (s, p, g, d) in &events {
                ledger.push_str(&format!(
                    "s{s},{},{},2026-01-{d:02}\n",
                    if *p { "p" } else { "q" },
                    if *g { "given" } else { "withdrawn" }
                ));
            }
            // The purpose must be known to the ledger: one event of `p` after any as-of time.
            ledger.push_str("s9,p,given,2026-02-01\n");
            std::fs::write(dir.path().join("ledger.csv"), ledger).unwrap();
            let text = format!(
                "{HEAD}consent:\n  ledger: ledger.csv\n  subject: id\n  purpose: p\n\
                 fields:\n  id: {{ action: keep, basis: contract }}\n  v: {{ action: keep, basis: consent }}\n"
            );
            let policy = Policy::load(&write_policy(dir.path(), &text)).unwrap();
            let at = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::days(i64::from(as_of) - 1);
            let loc = cloakline::io::Location::Local(dir.path().join("ledger.csv"));
            // A budget of one byte reduces the ledger on disk; either way the model decides.
            let budget = if spill { 1 } else { 1 << 30 };
            let loaded = block_on(Ledger::load(&loc, "ledger.csv", policy.consent.as_ref().unwrap(), at, budget, &Default::default()));
            let expected = model(&events, as_of);
            let Some(expected) = expected else {
                let e = loaded.err().map(|e| e.to_string()).unwrap_or_default();
                prop_assert!(e.contains("both `given` and `withdrawn`"), "a conflict must stop the run: {}", e);
                return Ok(());
            };
            let ledger = loaded.unwrap();
            // An empty map fits any budget.
            prop_assert_eq!(ledger.spilled.is_some(), spill && ledger.subjects > 0);
            let ids: Vec<String> = data.iter().map(|s| format!("s{s}")).collect();
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("v", DataType::Utf8, true),
            ]));
            let batch = RecordBatch::try_new(schema, vec![
                Arc::new(StringArray::from(ids.clone())),
                Arc::new(StringArray::from(ids.clone())),
            ]).unwrap();
            let ring = Keyring::default();
            let mut plan = Plan::new(&policy, batch.schema(), &ring, "memory").unwrap();
            plan.consent = Some(Arc::new(ConsentGate::new(&policy, &plan, Arc::new(ledger), &ring, "memory").unwrap()));
            let (out, _) = cloakline::engine::transform_batch(&plan, &batch).unwrap();
            let got: Vec<String> = {
                let v = out.column(0).as_string::<i32>();
                (0..v.len()).map(|i| v.value(i).to_string()).collect()
            };
            let want: Vec<String> = data
                .iter()
                .filter(|s| expected.get(s) == Some(&true))
                .map(|s| format!("s{s}"))
                .collect();
            prop_assert_eq!(got, want);
        }

        /// In memory and on disk, a ledger yields the same standings, counts and errors,
        /// duplicates and conflicts included (both reduce events by one rule, in read order).
        #[test]
        fn a_ledger_reduced_on_disk_agrees_with_the_map(
            events in prop::collection::vec((0u8..40, any::<bool>(), any::<bool>(), 1u8..6, any::<bool>()), 1..120),
            as_of in 0u8..7,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut ledger = String::from("subject_id,purpose,event,timestamp,consent_type\n");
            for (s, p, g, d, sep) in &events {
                ledger.push_str(&format!(
                    "s{s},{},{},2026-01-{d:02},{}\n",
                    if *p { "p" } else { "q" },
                    if *g { "given" } else { "withdrawn" },
                    if *sep { "separate_consent" } else { "consent" },
                ));
            }
            ledger.push_str("s99,p,given,2026-02-01,consent\n");
            std::fs::write(dir.path().join("ledger.csv"), ledger).unwrap();
            let text = format!(
                "{HEAD}consent:\n  ledger: ledger.csv\n  subject: id\n  purpose: p\n\
                 fields:\n  id: {{ action: keep, basis: contract }}\n  v: {{ action: keep, basis: consent }}\n"
            );
            let policy = Policy::load(&write_policy(dir.path(), &text)).unwrap();
            let at = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + chrono::Duration::days(i64::from(as_of) - 1);
            let loc = cloakline::io::Location::Local(dir.path().join("ledger.csv"));
            let load = |budget| block_on(Ledger::load(&loc, "ledger.csv", policy.consent.as_ref().unwrap(), at, budget, &Default::default()));
            match (load(1 << 30), load(1)) {
                (Ok(m), Ok(d)) => {
                    prop_assert!(m.spilled.is_none());
                    prop_assert_eq!(d.spilled.is_some(), d.subjects > 0);
                    prop_assert_eq!(
                        (m.subjects, m.duplicates, m.events, m.purpose_events, m.later_events),
                        (d.subjects, d.duplicates, d.events, d.purpose_events, d.later_events)
                    );
                    for i in (0..40).chain([99, 1000]) {
                        let id = format!("s{i}");
                        prop_assert_eq!(m.standing(&id).unwrap(), d.standing(&id).unwrap(), "{}", id);
                    }
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "memory {:?} but disk {:?}", a.map(|_| ()), b.map(|_| ())),
            }
        }
    }
}

#[test]
fn a_directory_release_counts_every_file_and_verifies() {
    let c = Case::new(DATA, LEDGER, &policy_text("", ""));
    let input = c.p("in");
    std::fs::create_dir_all(input.join("b")).unwrap();
    let lines: Vec<&str> = DATA.lines().collect();
    std::fs::write(
        input.join("a.csv"),
        format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]),
    )
    .unwrap();
    std::fs::write(
        input.join("b/c.csv"),
        format!("{}\n{}\n{}\n{}\n", lines[0], lines[3], lines[4], lines[5]),
    )
    .unwrap();
    let o = apply_files(
        &c.p("p.yaml"),
        Some(&c.ring),
        &input,
        &c.p("out"),
        &["--as-of", "2026-04-01"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rec = c.consent("out");
    assert_eq!(rec["rowsIn"], 5);
    assert_eq!(rec["rowsRemovedWithdrawn"], 1);
    assert_eq!(rec["rowsRemovedMissing"], 1);
    let v = run(&[
        "verify",
        c.p("out").to_str().unwrap(),
        "--consent-ledger",
        c.p("ledger.csv").to_str().unwrap(),
    ]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

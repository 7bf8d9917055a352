//! PII discovery and scrubbing: `scan` on the bundled example, the drafted policy, and `scrub`
//! on generated notes with planted entities.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};

use crate::util::{read_parquet, root, run, stderr};

#[test]
fn scan_classifies_the_example_and_drafts_a_policy_that_validates_once_filled() {
    let dir = tempfile::tempdir().unwrap();
    let draft = dir.path().join("draft.yaml");
    let example = root().join("examples/customers.csv");
    let o = run(&[
        "scan",
        "--input",
        example.to_str().unwrap(),
        "--json",
        "--draft-policy",
        draft.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let verdicts: BTreeMap<String, (String, String)> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["verdict"].as_str().unwrap().to_string(),
                    c["proposedAction"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let expect = [
        ("customer_id", "direct_identifier", "tokenize"),
        ("full_name", "direct_identifier", "tokenize"),
        ("email", "direct_identifier", "tokenize"),
        ("phone", "direct_identifier", "tokenize"),
        ("national_id", "direct_identifier", "tokenize"),
        ("birth_date", "quasi_identifier", "generalize"),
        ("zip", "quasi_identifier", "generalize"),
        ("city", "quasi_identifier", "keep"),
        ("income", "sensitive", "generalize"),
        ("signup_ts", "no_pii_found", "keep"),
        ("notes", "no_pii_found", "scrub"),
    ];
    for (col, verdict, action) in expect {
        assert_eq!(
            verdicts[col],
            (verdict.to_string(), action.to_string()),
            "column {col}"
        );
    }
    let cols = report["columns"].as_array().unwrap();
    let email = cols.iter().find(|c| c["name"] == "email").unwrap();
    assert_eq!(email["recognizers"][0]["recognizer"], "email");
    assert_eq!(email["recognizers"][0]["shareWholeValue"], 1.0);
    let nid = cols.iter().find(|c| c["name"] == "national_id").unwrap();
    assert_eq!(nid["recognizers"][0]["recognizer"], "cn_resident_id");
    assert_eq!(nid["sensitive"], true);

    // As drafted, `validate` refuses it: the lawful bases are TODO.
    let o = run(&["validate", "--policy", draft.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TODO"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&draft).unwrap();
    let o = run(&[
        "validate",
        "--policy",
        draft.to_str().unwrap(),
        "--input",
        example.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    // Filled in by a person, it validates against the data and the keyring, and applies.
    let filled = text
        .replace("controller: TODO", "controller: Example Retail Co.")
        .replace("purpose: TODO", "purpose: churn analysis")
        .replace("basis: TODO", "basis: contract");
    std::fs::write(&draft, filled).unwrap();
    let keys = root().join("examples/demo-keyring.json");
    let args = [
        "--policy",
        draft.to_str().unwrap(),
        "--input",
        example.to_str().unwrap(),
        "--keyring",
        keys.to_str().unwrap(),
    ];
    let o = run(&[&["validate"], &args[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.path().join("out.parquet");
    let o = run(&[&["apply"], &args[..], &["--output", out.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    // A second scan will not overwrite the reviewed policy.
    let o = run(&[
        "scan",
        "--input",
        example.to_str().unwrap(),
        "--draft-policy",
        draft.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--overwrite"));
}

fn cn_id(seed: u64) -> String {
    let body = format!(
        "110105{}{:03}",
        19_600_101 + (seed % 28) + 100 * (seed % 12),
        seed % 1000
    );
    let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .chars()
        .zip(w)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!(
        "{body}{}",
        "10X98765432".as_bytes()[(sum % 11) as usize] as char
    )
}

pub(crate) fn luhn_card(seed: u64) -> String {
    let body = format!("4{:014}", seed * 7_919 % 100_000_000_000_000);
    let digits: Vec<u32> = body.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut x = *d;
        if i % 2 == 0 {
            x *= 2;
            if x > 9 {
                x -= 9;
            }
        }
        sum += x;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn iban_de(seed: u64) -> String {
    let bban = format!("{:018}", seed * 104_729 % 1_000_000_000_000_000_000);
    let digits = format!("{bban}131400");
    let m = digits.chars().fold(0u64, |acc, c| {
        (acc * 10 + c.to_digit(10).unwrap() as u64) % 97
    });
    format!("DE{:02}{bban}", 98 - m)
}

/// Notes with one planted entity in about a third of them: (note, expected scrubbed, kind).
fn planted(n: u64) -> Vec<(String, String, Option<&'static str>)> {
    let before = [
        "Please call back",
        "客户说",
        "note:",
        "Über den Kunden:",
        "见附件",
    ];
    let after = ["today.", "，谢谢", "(urgent)", "— verified", "。"];
    (0..n)
        .map(|i| {
            let b = before[(i % 5) as usize];
            let a = after[(i % 3) as usize];
            let (e, kind) = match i % 9 {
                0 => (format!("user{i}@example.com"), Some("email")),
                1 => (format!("138{:08}", i * 37 % 100_000_000), Some("phone")),
                2 => (cn_id(i), Some("cn_resident_id")),
                3 => (luhn_card(i), Some("payment_card")),
                4 => (iban_de(i), Some("iban")),
                5 => (
                    format!("10.{}.{}.{}", i % 250, i % 199, i % 97),
                    Some("ipv4"),
                ),
                _ => (format!("order {i} shipped"), None),
            };
            let note = format!("{b} {e} {a}");
            let expected = match kind {
                Some(k) => format!("{b} <{}> {a}", k.to_uppercase()),
                None => note.clone(),
            };
            (note, expected, kind)
        })
        .collect()
}

#[test]
fn scrub_replaces_every_planted_entity_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let notes = planted(900);
    let mut csv = String::from("id,email,note\n");
    for (i, (n, _, _)) in notes.iter().enumerate() {
        csv.push_str(&format!(
            "{i},user{i}@example.com,\"{}\"\n",
            n.replace('"', "\"\"")
        ));
    }
    let data = dir.path().join("notes.csv");
    std::fs::write(&data, csv).unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n  email: {{ action: tokenize, key: k1, domain: email, basis: contract, category: email }}\n  note: {{ action: scrub, basis: contract }}\n",
            crate::util::HEAD
        ),
    )
    .unwrap();
    let keys = root().join("examples/demo-keyring.json");
    let out = dir.path().join("out.parquet");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        keys.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out);
    let mut got = Vec::new();
    for b in &batches {
        let c = b.column_by_name("note").unwrap().as_string::<i32>();
        for i in 0..c.len() {
            got.push(c.value(i).to_string());
        }
    }
    assert_eq!(got.len(), notes.len());
    for (g, (n, expected, _)) in got.iter().zip(&notes) {
        assert_eq!(g, expected, "from {n}");
    }
    // Provenance counts every replacement per recognizer.
    let side: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.provenance.json", out.display())).unwrap(),
    )
    .unwrap();
    let node = side["@included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["cl:column"] == "note" && n["cl:action"] == "scrub")
        .unwrap();
    let mut planted_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, k) in &notes {
        if let Some(k) = k {
            *planted_counts.entry(k).or_default() += 1;
        }
    }
    for (k, n) in planted_counts {
        assert_eq!(node["cl:entitiesReplaced"][k], n, "{k}");
    }
    assert_eq!(node["cl:status"], "scrubbed free text");

    // Token mode: the same email in the note and in the email column gets the same token.
    std::fs::write(
        &policy,
        format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n  email: {{ action: tokenize, key: k1, domain: email, basis: contract, category: email }}\n  note: {{ action: scrub, replace_with: token, key: k1, recognizers: [email], basis: contract }}\n",
            crate::util::HEAD
        ),
    )
    .unwrap();
    let out2 = dir.path().join("out2.parquet");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--keyring",
        keys.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--output",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out2);
    let b = &batches[0];
    let email = b.column_by_name("email").unwrap().as_string::<i32>();
    let note = b.column_by_name("note").unwrap().as_string::<i32>();
    assert_eq!(
        note.value(0),
        format!("Please call back {} today.", email.value(0))
    );
    assert_eq!(note.value(1), notes[1].0, "phones are not in `recognizers`");
}

#[test]
fn scan_reports_pattern_matches_that_fail_validation_as_no_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("t.csv");
    let mut csv = String::from("ref_code,客户备注,contact\n");
    for i in 0..200u64 {
        // 16 digits, Luhn fails for every one (check digit off by one).
        let card = super::scan::luhn_card(i);
        let last = card.chars().last().unwrap().to_digit(10).unwrap();
        let bad = format!("{}{}", &card[..15], (last + 1) % 10);
        let note = if i % 4 == 0 {
            format!("请联系 1381234{:04}，谢谢", i)
        } else {
            "已处理，无需回访".to_string()
        };
        csv.push_str(&format!("{bad},{note},user{i}@example.org\n"));
    }
    std::fs::write(&data, csv).unwrap();
    let o = run(&[
        "scan",
        "--input",
        data.to_str().unwrap(),
        "--json",
        "--sample",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["rows"], 200);
    assert_eq!(r["sampledRows"], 50);
    let col = |n: &str| {
        r["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .unwrap()
            .clone()
    };
    let refc = col("ref_code");
    assert_eq!(refc["verdict"], "no_pii_found");
    let card = refc["recognizers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["recognizer"] == "payment_card")
        .unwrap()
        .clone();
    assert_eq!(card["sharePattern"], 1.0);
    assert_eq!(card["shareMatching"], 0.0);
    let notes = col("客户备注");
    assert_eq!(notes["verdict"], "free_text_with_pii");
    assert_eq!(notes["proposedAction"], "scrub");
    assert_eq!(col("contact")["verdict"], "direct_identifier");
}

/// Issue 12 item 11: a directory release's sidecar records scrub counts summed over its files
/// (it held one file's counts), and every file still verifies against it.
#[test]
fn directory_sidecar_sums_scrub_counts_over_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("b")).unwrap();
    let head = "id,note\n";
    std::fs::write(
        input.join("a.csv"),
        format!("{head}1,mail me at a@example.com\n2,b@example.org and c@example.net\n"),
    )
    .unwrap();
    std::fs::write(
        input.join("b/c.csv"),
        format!("{head}3,d@example.com\n4,nothing here\n"),
    )
    .unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n  note: {{ action: scrub, recognizers: [email], basis: contract }}\n",
            crate::util::HEAD
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sidecar = dir.path().join("out.provenance.json");
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sidecar).unwrap()).unwrap();
    let rec = cloakline::provenance::Record::from_json(&side).unwrap();
    let note = rec.output_fields().find(|f| f.column == "note").unwrap();
    let counts = note.entities_replaced.clone().unwrap();
    assert_eq!(counts.get("email"), Some(&4), "{counts:?}");
    assert_eq!(note.counts.unwrap().values_transformed, 4);
    for f in ["a.parquet", "b/c.parquet"] {
        let o = run(&[
            "verify",
            out.join(f).to_str().unwrap(),
            "--provenance",
            sidecar.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{f}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
    }
}

/// Issue 12 item 11: `verify` finds a directory release's file by its relative path, not its
/// base name: two files named `data_0.csv` in different folders each verify (CSV has no
/// footer copy to fall back on), even when the path is spelled differently.
#[test]
fn verify_matches_directory_files_by_relative_path() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    for (sub, rows) in [("x", "1,a\n2,b\n"), ("y", "3,c\n")] {
        std::fs::create_dir_all(input.join(sub)).unwrap();
        std::fs::write(input.join(sub).join("data_0.csv"), format!("id,v\n{rows}")).unwrap();
    }
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n  v: {{ action: keep, basis: contract }}\n",
            crate::util::HEAD
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--output-format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sidecar = dir.path().join("out.provenance.json");
    for sub in ["x", "y"] {
        // `…/./out/x/data_0.csv`: not the recorded spelling.
        let file = dir
            .path()
            .join(".")
            .join("out")
            .join(sub)
            .join("data_0.csv");
        let o = run(&[
            "verify",
            file.to_str().unwrap(),
            "--provenance",
            sidecar.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "{sub}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
    }
}

//! `encrypt_deterministic` and `fpe` through `apply` and `decrypt`: formats kept, joins kept,
//! reversible with the key, bad values refused without being shown.

use arrow::array::{Array, AsArray};

use crate::util::*;

const DATA: &str = "id,card,nid,plate\n\
1,4111 1111 1111 1111,110101199003074518,AB12CD34\n\
2,5500-0055-5555-5559,110101199003074518,ZZ99YY88\n\
3,,,\n\
4,3782 822463 10005,Zoë 🚀 身份证,Q1W2E3R4\n";

fn policy(extra: &str) -> String {
    format!(
        "{HEAD}fields:\n  id: {{ action: keep, basis: contract, type: int64 }}\n  \
         card: {{ action: fpe, key: k1, separators: ' -', keep_last: 4, luhn: true, basis: contract }}\n  \
         nid: {{ action: encrypt_deterministic, key: k2, basis: contract }}\n  \
         plate: {{ action: fpe, key: k1, alphabet: upper_alphanumeric{extra}, basis: contract }}\n"
    )
}

fn column(path: &std::path::Path, name: &str) -> Vec<Option<String>> {
    let (batches, _) = read_parquet(path);
    let mut out = Vec::new();
    for b in batches {
        let a = b.column_by_name(name).unwrap().as_string::<i32>().clone();
        out.extend((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())));
    }
    out
}

fn luhn(s: &str) -> bool {
    let d: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let n = d.len();
    d.iter()
        .enumerate()
        .map(|(i, x)| {
            if (n - 1 - i) % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                *x
            }
        })
        .sum::<u32>()
        % 10
        == 0
}

#[test]
fn formats_survive_and_decrypt_restores_every_reversible_column() {
    let (o, out, dir) = apply_in_tempdir(&policy(""), "d.csv", DATA.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let cards = column(&out, "card");
    let input: Vec<&str> = ["4111 1111 1111 1111", "5500-0055-5555-5559"].to_vec();
    for (c, i) in cards.iter().zip(&input) {
        let c = c.as_deref().unwrap();
        assert_eq!(c.len(), i.len());
        assert_ne!(c, *i);
        assert_eq!(&c[c.len() - 4..], &i[i.len() - 4..], "last four kept");
        assert_eq!(
            c.chars()
                .filter(|x| !x.is_ascii_digit())
                .collect::<String>(),
            i.chars()
                .filter(|x| !x.is_ascii_digit())
                .collect::<String>(),
            "separators in place"
        );
        assert!(luhn(c), "Luhn kept");
    }
    assert_eq!(cards[2], None);
    let nids = column(&out, "nid");
    assert_eq!(nids[0], nids[1], "deterministic: equal values stay equal");
    assert_ne!(nids[0], nids[3]);
    let plates = column(&out, "plate");
    let p0 = plates[0].as_deref().unwrap();
    assert!(
        p0.len() == 8
            && p0
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );

    // Field metadata says what `decrypt` needs; provenance records the parameters.
    let side = std::fs::read_to_string(format!("{}.provenance.json", out.display())).unwrap();
    assert!(
        side.contains("FF1-AES-256") && side.contains("AES-SIV"),
        "{side}"
    );
    assert!(side.contains("format-preserving encrypted personal data"));

    let plain = dir.path().join("plain.parquet");
    let o = decrypt_demo(&out, &plain, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        column(&plain, "card"),
        vec![
            Some("4111 1111 1111 1111".into()),
            Some("5500-0055-5555-5559".into()),
            None,
            Some("3782 822463 10005".into())
        ]
    );
    assert_eq!(column(&plain, "nid")[3].as_deref(), Some("Zoë 🚀 身份证"));
    assert_eq!(column(&plain, "plate")[1].as_deref(), Some("ZZ99YY88"));
}

#[test]
fn a_value_fpe_cannot_encipher_fails_the_run_counting_not_showing_it() {
    let data =
        "id,card,nid,plate\n1,4111 1111 1111 1111,x,AB12CD34\n2,4111 1111 1111 1111,x,ab12\n";
    let (o, out, _dir) = apply_in_tempdir(&policy(""), "d.csv", data.as_bytes());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("plate") && e.contains("1 value(s)"), "{e}");
    assert!(e.contains("on_invalid: null"), "{e}");
    assert!(!e.contains("ab12"), "{e}");
    assert!(!out.exists(), "no output");
    // With on_invalid: null the run goes through and writes null.
    let (o, out, _dir) =
        apply_in_tempdir(&policy(", on_invalid: 'null'"), "d.csv", data.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(column(&out, "plate")[1], None);
}

#[test]
fn a_card_failing_luhn_is_refused() {
    let data = "id,card,nid,plate\n1,4111 1111 1111 1112,x,AB12CD34\n";
    let (o, out, _dir) = apply_in_tempdir(&policy(""), "d.csv", data.as_bytes());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("failing the Luhn check") && !e.contains("1112"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn reveal_records_who_why_and_how_many_in_a_chain_audit_verify_checks() {
    let (o, out, dir) = apply_in_tempdir(&policy(""), "d.csv", DATA.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let log = dir.path().join("audit.jsonl");
    let ring = demo_keyring();
    let reveal = |output: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "reveal",
            "--keyring",
            ring.to_str().unwrap(),
            "--input",
            out.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let p1 = dir.path().join("r1.parquet");
    let o = reveal(
        &p1,
        &[
            "--purpose",
            "fraud case 17",
            "--requested-by",
            "dpo@example.org",
            "--column",
            "card",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        column(&p1, "card")[0].as_deref(),
        Some("4111 1111 1111 1111")
    );
    // Only the named column came back.
    assert_ne!(column(&p1, "plate")[0].as_deref(), Some("AB12CD34"));
    let p2 = dir.path().join("r2.parquet");
    let o = reveal(
        &p2,
        &[
            "--purpose",
            "subject access request",
            "--requested-by",
            "privacy team",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["requestedBy"], "dpo@example.org");
    assert_eq!(lines[0]["purpose"], "fraud case 17");
    assert_eq!(lines[0]["columns"][0]["name"], "card");
    assert_eq!(lines[0]["columns"][0]["values"], 3);
    assert_eq!(lines[0]["input"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);
    let names: Vec<&str> = lines[1]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["card", "nid", "plate"]);
    // The record next to the output is the same entry.
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.reveal.json", p2.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["hash"], lines[1]["hash"]);
    // No revealed value is in the log or the record.
    for secret in ["4111", "110101199003074518", "AB12CD34"] {
        assert!(!text.contains(secret));
    }
    let o = run(&["audit", "verify", "--audit-log", log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("2 entries, chain intact"));
    // An edited line is found.
    std::fs::write(&log, text.replace("fraud case 17", "routine check")).unwrap();
    let o = run(&["audit", "verify", "--audit-log", log.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "as `verify`: exit 4 when a check fails"
    );
    assert!(
        stderr(&o).contains("line 1") && stderr(&o).contains("edited"),
        "{}",
        stderr(&o)
    );
    // ... and a broken log is not extended by another reveal.
    let p3 = dir.path().join("r3.parquet");
    let o = reveal(&p3, &["--purpose", "x", "--requested-by", "y"]);
    assert!(!o.status.success());
    assert!(!p3.exists(), "no output without its audit entry");
}

#[test]
fn reveal_refuses_tokens_and_requests_without_a_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    apply_example_ok(&out, &[]);
    let log = dir.path().join("audit.jsonl");
    let ring = demo_keyring();
    let base = |extra: &[&str]| {
        let plain = dir.path().join("plain.parquet");
        let mut args = vec![
            "reveal",
            "--keyring",
            ring.to_str().unwrap(),
            "--input",
            out.to_str().unwrap(),
            "--output",
            plain.to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        (run(&args), plain)
    };
    let (o, plain) = base(&["--purpose", "p", "--requested-by", "r", "--column", "email"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("one-way"), "{}", stderr(&o));
    assert!(!plain.exists() && !log.exists());
    let (o, _) = base(&["--requested-by", "r"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--purpose"), "{}", stderr(&o));
    let (o, plain) = base(&["--purpose", "   ", "--requested-by", "r"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--purpose must say it in words"),
        "{}",
        stderr(&o)
    );
    assert!(!plain.exists() && !log.exists());
    // The encrypted column of the example does come back, recorded.
    let (o, plain) = base(&["--purpose", "court order 5", "--requested-by", "legal"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(plain.exists());
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
}

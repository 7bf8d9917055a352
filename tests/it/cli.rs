//! The `cloakline` binary end to end on the bundled example, plus bad input.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use cloakline::kernels::Tokenizer;
use cloakline::keys::Keyring;
use serde_json::Value;

use crate::util::*;

fn example_apply(out: &Path, extra: &[&str]) -> std::process::Output {
    apply_example(out, extra)
}

#[test]
fn apply_example_writes_transformed_parquet_and_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("customers.parquet");
    let o = example_apply(&out, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    let input = read_csv_strings(&root().join("examples/customers.csv"));
    let header = &input[0];
    let rows = &input[1..];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(summary["rowsIn"], rows.len() as u64);
    assert_eq!(summary["rowsOut"], rows.len() as u64);

    let (batches, meta) = read_parquet(&out);
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "email",
            "phone",
            "national_id",
            "birth_year",
            "zip3",
            "city",
            "income",
            "signup_quarter"
        ],
        "input order kept, dropped columns gone, renames applied"
    );
    let batch = arrow::compute::concat_batches(&schema, &batches).unwrap();
    assert_eq!(batch.num_rows(), rows.len());

    let ring = Keyring::load(&root().join("examples/demo-keyring.json")).unwrap();
    let tok = Tokenizer::new(ring.get("k1").unwrap(), "email", 32, "").unwrap();
    let emails = batch.column_by_name("email").unwrap().as_string::<i32>();
    let phones = batch.column_by_name("phone").unwrap().as_string::<i32>();
    let zips = batch.column_by_name("zip3").unwrap().as_string::<i32>();
    let years = batch
        .column_by_name("birth_year")
        .unwrap()
        .as_string::<i32>();
    let incomes = batch.column_by_name("income").unwrap().as_string::<i32>();
    let cities = batch.column_by_name("city").unwrap().as_string::<i32>();
    for (i, row) in rows.iter().enumerate() {
        let email = &row[col("email")];
        if email.is_empty() {
            assert!(emails.is_null(i), "row {i}: null email stays null");
        } else {
            assert_eq!(emails.value(i), tok.token(email), "row {i}");
        }
        let phone: Vec<char> = row[col("phone")].chars().collect();
        let masked: Vec<char> = phones.value(i).chars().collect();
        assert_eq!(masked.len(), phone.len());
        assert_eq!(masked[masked.len() - 4..], phone[phone.len() - 4..]);
        assert!(masked[..masked.len() - 4].iter().all(|c| *c == '*'));
        assert_eq!(zips.value(i), &row[col("zip")][..3], "leading zeros kept");
        assert_eq!(years.value(i), &row[col("birth_date")][..4]);
        assert_eq!(cities.value(i), row[col("city")]);
        let income = &row[col("income")];
        if income.is_empty() {
            assert!(incomes.is_null(i));
        } else {
            let v: i64 = income.parse().unwrap();
            let lo = v / 10000 * 10000;
            let want = if v >= 200000 {
                ">=200000".to_string()
            } else {
                format!("{lo}-{}", lo + 9999)
            };
            assert_eq!(incomes.value(i), want);
        }
    }
    assert_eq!(
        batch.column_by_name("signup_quarter").unwrap().data_type(),
        &DataType::Utf8
    );

    // Field metadata carries the short per-column record.
    let email_field = schema.field_with_name("email").unwrap();
    assert_eq!(email_field.metadata()["cloakline.action"], "tokenize");
    assert_eq!(email_field.metadata()["cloakline.key_id"], "k1");
    assert!(email_field.metadata()["cloakline.basis"].contains("PIPL Art. 13(1)(1)"));

    // Sidecar: checksums and field records.
    let sidecar: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("customers.parquet.provenance.json")).unwrap(),
    )
    .unwrap();
    let graph = sidecar["@included"].as_array().unwrap();
    let (sha, _) = cloakline::io::sha256_file(&out).unwrap();
    let output_node = graph
        .iter()
        .find(|n| n["@id"].as_str().unwrap().contains(":output:0"))
        .unwrap();
    assert_eq!(output_node["cl:sha256"], sha);
    assert_eq!(output_node["cl:rows"], rows.len() as u64);
    let text = sidecar.to_string();
    assert!(
        !text.to_lowercase().contains("\"anonymi"),
        "never claims anonymisation"
    );
    let ring_text = std::fs::read_to_string(root().join("examples/demo-keyring.json")).unwrap();
    let ring_json: Value = serde_json::from_str(&ring_text).unwrap();
    for k in ring_json["keys"].as_array().unwrap() {
        assert!(
            !text.contains(k["secret_hex"].as_str().unwrap()),
            "no key material in provenance"
        );
    }
    let email_node = graph
        .iter()
        .find(|n| n["cl:column"] == "email" && n["cl:action"] == "tokenize")
        .unwrap();
    assert_eq!(email_node["cl:status"], "pseudonymised personal data");
    assert_eq!(
        email_node["cl:keyFingerprint"],
        ring.get("k1").unwrap().fingerprint()
    );
    assert_eq!(
        email_node["cl:consentRef"],
        "https://example.com/consent/notice-v5"
    );
    let bases: Vec<&str> = email_node["cl:lawfulBasis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["article"].as_str().unwrap())
        .collect();
    assert_eq!(bases, ["GDPR Art. 6(1)(a)", "PIPL Art. 13(1)(1)"]);
    let dropped: Vec<&str> = graph
        .iter()
        .filter(|n| n["cl:action"] == "drop")
        .map(|n| n["cl:column"].as_str().unwrap())
        .collect();
    assert_eq!(dropped, ["full_name", "notes"]);
    let counts = &email_node["cl:counts"];
    let null_emails = rows.iter().filter(|r| r[col("email")].is_empty()).count() as u64;
    assert_eq!(counts["nulls"], null_emails);
    assert_eq!(counts["valuesTransformed"], rows.len() as u64 - null_emails);

    // The footer embeds the same record, less the output's own checksum.
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let embedded = kv.iter().find(|k| k.key == "cloakline.provenance").unwrap();
    let mut embedded: Value = serde_json::from_str(embedded.value.as_ref().unwrap()).unwrap();
    let mut side = sidecar.clone();
    for doc in [&mut embedded, &mut side] {
        for n in doc["@included"].as_array_mut().unwrap() {
            if let Some(m) = n.as_object_mut()
                && m["@id"].as_str().unwrap().contains(":output:0")
            {
                m.remove("cl:sha256");
                m.remove("cl:bytes");
            }
        }
    }
    assert_eq!(embedded, side);
}

#[test]
fn tokens_are_deterministic_across_runs_and_decrypt_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.parquet");
    let b = dir.path().join("b.csv");
    assert!(example_apply(&a, &[]).status.success());
    // Small batches on several threads: rows must still come out in input order.
    let o = example_apply(&b, &["--batch-size", "7", "--threads", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&a);
    let pa = batches[0]
        .column_by_name("email")
        .unwrap()
        .as_string::<i32>()
        .clone();
    let csv = read_csv_strings(&b);
    let ei = csv[0].iter().position(|h| h == "email").unwrap();
    for (i, row) in csv[1..].iter().enumerate() {
        if !pa.is_null(i) {
            assert_eq!(
                pa.value(i),
                row[ei],
                "row {i}: same token in both runs, same order"
            );
        }
    }
    // Encryption is not deterministic, but decrypts back to the input.
    let plain = dir.path().join("plain.parquet");
    let o = decrypt_demo(&a, &plain, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&plain);
    let ids = batches[0]
        .column_by_name("national_id")
        .unwrap()
        .as_string::<i32>();
    let input = read_csv_strings(&root().join("examples/customers.csv"));
    let ni = input[0].iter().position(|h| h == "national_id").unwrap();
    for (i, row) in input[1..].iter().enumerate().take(ids.len()) {
        assert_eq!(ids.value(i), row[ni]);
    }
    // CSV carries no metadata: name the column (domain defaults to the column name).
    let plain_csv = dir.path().join("plain.csv");
    let o = decrypt_demo(&b, &plain_csv, &["--column", "national_id"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let back = read_csv_strings(&plain_csv);
    assert_eq!(
        back[1][back[0].iter().position(|h| h == "national_id").unwrap()],
        input[1][ni]
    );
}

/// Run apply with a policy text on a data file; expect failure and no output left behind.
fn expect_failure(policy: &str, data_name: &str, data: &[u8], code: i32, needles: &[&str]) {
    let (o, out, _dir) = apply_in_tempdir(policy, data_name, data);
    let out_dir = out.parent().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    assert!(
        dir_names(out_dir).is_empty(),
        "left files behind: {:?}",
        dir_names(out_dir)
    );
}

const CSV: &[u8] = b"id,name,age\n1,Ann,34\n2,Bo,51\n";

#[test]
fn bad_input_fails_cleanly() {
    let ok_fields = "fields:\n  id: { action: keep, basis: contract }\n  name: { action: drop }\n  age: { action: keep, basis: contract }\n";
    // Malformed YAML: line and column.
    expect_failure(
        &format!("{HEAD}fields:\n  id: {{ action: keep\n"),
        "d.csv",
        CSV,
        2,
        &["p.yaml", "line"],
    );
    // Unknown column.
    expect_failure(
        &format!("{HEAD}{ok_fields}  zip: {{ action: keep, basis: contract }}\n"),
        "d.csv",
        CSV,
        2,
        &["`zip`", "not a column of the input"],
    );
    // Action / type misfit.
    expect_failure(
        &format!(
            "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  name: {{ action: drop }}\n  age: {{ action: generalize, keep_prefix: 1, basis: contract }}\n"
        ),
        "d.csv",
        CSV,
        2,
        &["field `age`", "Int64", "keep_prefix"],
    );
    // Unlisted column under `unlisted: error`.
    expect_failure(
        &format!(
            "{HEAD}fields:\n  id: {{ action: keep, basis: contract }}\n  name: {{ action: drop }}\n"
        ),
        "d.csv",
        CSV,
        2,
        &["column `age`", "unlisted: drop"],
    );
    // Missing key.
    expect_failure(
        &format!(
            "{HEAD}fields:\n  id: {{ action: tokenize, key: k9, basis: contract }}\n  name: {{ action: drop }}\n  age: {{ action: keep, basis: contract }}\n"
        ),
        "d.csv",
        CSV,
        2,
        &["k9", "k1, k2"],
    );
    // Legitimate interest under PIPL.
    expect_failure(
        "policy: t\nversion: 1\ncontroller: C\njurisdictions: [CN]\npurpose: p\nfields:\n  id: { action: keep, basis: legitimate_interests }\n",
        "d.csv",
        CSV,
        2,
        &["field `id`", "PIPL Art. 13", "line 7 column 7"],
    );
    // Corrupt Parquet.
    expect_failure(
        &format!("{HEAD}{ok_fields}"),
        "d.parquet",
        b"PAR1 this is not parquet",
        1,
        &["d.parquet", "Parquet"],
    );
    // A CSV row with the wrong number of fields (past the first batch's inference).
    let mut bad = b"id,name,age\n".to_vec();
    for i in 0..100 {
        bad.extend_from_slice(format!("{i},n{i},{i}\n").as_bytes());
    }
    bad.extend_from_slice(b"100,oops\n");
    expect_failure(
        &format!("{HEAD}{ok_fields}"),
        "d.csv",
        &bad,
        1,
        &["d.csv", "CSV"],
    );
}

#[test]
fn unlisted_drop_ndjson_input_csv_output_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_policy(
        dir.path(),
        &format!("{HEAD}unlisted: drop\nfields:\n  id: {{ action: keep, basis: contract }}\n"),
    );
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(
        input.join("a.ndjson"),
        "{\"id\": 1, \"secret\": \"x\"}\n{\"id\": 2, \"secret\": \"y\"}\n",
    )
    .unwrap();
    std::fs::write(
        input.join("sub/b.ndjson"),
        "{\"id\": 3, \"secret\": \"z\"}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = apply_files(&p, None, &input, &out, &["--output-format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        read_csv_strings(&out.join("a.csv")),
        vec![vec!["id"], vec!["1"], vec!["2"]]
    );
    assert_eq!(
        read_csv_strings(&out.join("sub/b.csv")),
        vec![vec!["id"], vec!["3"]]
    );
    let side: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(side["cl:summary"]["rowsOut"], 3);
    assert!(side.to_string().contains("not listed in the policy"));
    // A second run into the same directory needs --overwrite.
    let again = apply_files(&p, None, &input, &out, &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--overwrite"));
}

#[test]
fn validate_schema_and_keys_commands() {
    let root = root();
    let o = run(&[
        "validate",
        "--policy",
        root.join("policies/customers.yaml").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "validate",
        "--policy",
        root.join("policies/customers.yaml").to_str().unwrap(),
        "--input",
        root.join("examples/customers.csv").to_str().unwrap(),
        "--keyring",
        root.join("examples/demo-keyring.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("zip3"));
    let o = run(&["schema"]);
    let schema: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["title"], "cloakline policy");

    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keys.json");
    let o = keys_generate(&ring, "k1");
    assert!(o.status.success(), "{}", stderr(&o));
    let secret: Value = serde_json::from_str(&std::fs::read_to_string(&ring).unwrap()).unwrap();
    let hexkey = secret["keys"][0]["secret_hex"].as_str().unwrap();
    assert!(!stderr(&o).contains(hexkey), "key material never printed");
    let o = keys_generate(&ring, "k1");
    assert_eq!(o.status.code(), Some(2));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&ring).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn header_only_csv_and_tab_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_policy(
        dir.path(),
        &format!(
            "{HEAD}fields:\n  id: {{ action: tokenize, key: k1, basis: contract }}\n  name: {{ action: mask, keep_first: 1, basis: contract }}\n"
        ),
    );
    let keys = root().join("examples/demo-keyring.json");
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "id,name\n").unwrap();
    let out = dir.path().join("e.parquet");
    let o = apply_files(&p, Some(&keys), &empty, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    let tsv = dir.path().join("d.tsv");
    std::fs::write(&tsv, "id\tname\n1\tZoë\n").unwrap();
    let out = dir.path().join("d.csv");
    let o = apply_files(&p, Some(&keys), &tsv, &out, &["--delimiter", "\\t"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("id\tname\n") && text.trim_end().ends_with("\tZ**"),
        "{text}"
    );
}

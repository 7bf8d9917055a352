//! SQL and `apply` agree: the policy view returns what `apply` writes, through the same kernels.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::Value;

use crate::util::*;

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let a = b
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"));
        let f = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()).unwrap();
        for i in 0..a.len() {
            out.push((!a.is_null(i)).then(|| f.value(i).to_string()));
        }
    }
    out
}

/// The example CSV as typed Parquet (through the all-keep policy, which declares the text columns).
fn example_parquet(dir: &std::path::Path) -> std::path::PathBuf {
    let raw = dir.join("raw.parquet");
    let o = run(&[
        "apply",
        "--policy",
        root()
            .join("policies/customers-keep.yaml")
            .to_str()
            .unwrap(),
        "--input",
        root().join("examples/customers.csv").to_str().unwrap(),
        "--output",
        raw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_view_matches_apply() {
    let dir = tempfile::tempdir().unwrap();
    let raw = example_parquet(dir.path());
    let keys = root().join("examples/demo-keyring.json");
    let policy_path = root().join("policies/customers.yaml");
    let out = dir.path().join("out.parquet");
    let o = run(&[
        "apply",
        "--policy",
        policy_path.to_str().unwrap(),
        "--keyring",
        keys.to_str().unwrap(),
        "--input",
        raw.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (applied, _) = read_parquet(&out);

    let ring = Arc::new(Keyring::load(&keys).unwrap());
    let policy = Policy::load(&policy_path).unwrap();
    let ctx = SessionContext::new();
    cloakline::sql::register(&ctx, Arc::clone(&ring));
    ctx.register_parquet(
        "customers",
        raw.to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    cloakline::sql::register_policy_view(&ctx, "customers", &policy, &ring, "customers_shared")
        .await
        .unwrap();
    let viewed = ctx
        .sql("SELECT * FROM customers_shared")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();

    let names: Vec<String> = viewed[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let applied_names: Vec<String> = applied[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, applied_names, "same columns, same order");

    // Key rows by the (deterministic, unique) customer token.
    let key_a = strings(&applied, "customer_id");
    let key_v = strings(&viewed, "customer_id");
    let pos: HashMap<_, _> = key_v
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), i))
        .collect();
    assert_eq!(key_a.len(), key_v.len());
    for column in [
        "email",
        "phone",
        "birth_year",
        "zip3",
        "city",
        "income",
        "signup_quarter",
    ] {
        let a = strings(&applied, column);
        let v = strings(&viewed, column);
        for (i, k) in key_a.iter().enumerate() {
            assert_eq!(a[i], v[pos[k]], "column {column}, row {i}");
        }
    }
    // Encryption is not deterministic; both sides decrypt to the source value.
    let joined = ctx
        .sql(
            "SELECT decrypt(s.national_id, 'national_id') AS a, c.national_id AS b \
              FROM customers_shared s JOIN customers c \
              ON s.customer_id = concat('c_', tokenize(c.customer_id, 'k1', 'customer_id', 24))",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let a = strings(&joined, "a");
    let b = strings(&joined, "b");
    assert_eq!(a.len(), key_a.len());
    assert_eq!(a, b);

    // Dropped columns cannot be selected through the view.
    let e = ctx
        .sql("SELECT full_name FROM customers_shared")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("full_name"), "{e}");
}

#[test]
fn sql_command_prints_and_writes_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let keys = root().join("examples/demo-keyring.json");
    let csv = root().join("examples/customers.csv");
    let table = format!("customers={}", csv.display());
    let o = run(&[
        "sql",
        "SELECT mask(phone, 0, 4) AS phone, generalize(birth_date, 'decade') AS decade FROM customers ORDER BY phone LIMIT 2",
        "--table",
        &table,
        "--keyring",
        keys.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(
        printed.contains("| phone") && printed.contains("-19"),
        "{printed}"
    );

    let out = dir.path().join("q.parquet");
    let policy = root().join("policies/customers.yaml");
    let o = run(&[
        "sql",
        "SELECT email, zip3, tokenize(city, 'k1') AS city_token FROM customers_shared",
        "--table",
        &table,
        "--keyring",
        keys.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&out);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 60);
    assert!(
        batches[0]
            .column_by_name("zip3")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .len()
            == 3
    );
    // The same record type as `apply` writes, read back typed.
    let side: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("q.parquet.provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(side["cl:format"], "cloakline-provenance/v2");
    let rec = cloakline::provenance::Record::from_json(&side).unwrap();
    let run_node = rec.run().unwrap();
    assert!(
        run_node
            .query
            .as_deref()
            .unwrap()
            .contains("customers_shared")
    );
    assert_eq!(
        run_node.functions_used.as_deref().unwrap(),
        ["policy view", "tokenize"]
    );
    let keys_used: Vec<&str> = run_node
        .keys
        .as_deref()
        .unwrap()
        .iter()
        .map(|k| k.key_id.as_str())
        .collect();
    assert_eq!(keys_used[0], "k1", "{keys_used:?}");
    assert_eq!(rec.policy().unwrap().name, "customers-share");
    assert_eq!(
        rec.policy().unwrap().view.as_deref(),
        Some("customers_shared")
    );
    let (sha, _) = cloakline::io::sha256_file(&out).unwrap();
    let output = rec.outputs().next().unwrap();
    assert_eq!(output.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(output.rows, Some(60));
    // The view's fields are described with their actions and bases, without counts (the
    // query, not the view, decides what reaches the output).
    let email = rec.output_fields().find(|f| f.column == "email").unwrap();
    assert_eq!(email.action, "tokenize");
    assert!(email.counts.is_none());
    assert!(!email.lawful_basis.is_empty());
    // And `verify` checks a query result like an `apply` output.
    let o = run(&["verify", out.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );

    // A bad argument is a planning error naming the function; nothing is written.
    let bad = dir.path().join("bad.parquet");
    let o = run(&[
        "sql",
        "SELECT tokenize(email, 'k9') FROM customers",
        "--table",
        &table,
        "--keyring",
        keys.to_str().unwrap(),
        "--output",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("tokenize: "), "{}", stderr(&o));
    assert!(!bad.exists());
}

#[test]
fn sql_reads_a_directory_as_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/customers.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let parts = dir.path().join("customers");
    std::fs::create_dir_all(parts.join("2026")).unwrap();
    let (a, b) = rows.split_at(rows.len() / 3);
    std::fs::write(parts.join("a.csv"), format!("{header}\n{}\n", a.join("\n"))).unwrap();
    std::fs::write(
        parts.join("2026/b.csv"),
        format!("{header}\n{}\n", b.join("\n")),
    )
    .unwrap();
    std::fs::write(parts.join(".hidden.csv"), "not,a,table\n").unwrap();
    // The same query over the directory and over the original file agrees.
    let query = |table: &Path, out: &Path| {
        let o = run(&[
            "sql",
            "SELECT count(*) AS n, count(DISTINCT email) AS emails, sum(income) AS income FROM customers",
            "--table",
            &format!("customers={}", table.display()),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(out).unwrap()
    };
    let split = query(&parts, &dir.path().join("split.csv"));
    let whole = query(
        &root().join("examples/customers.csv"),
        &dir.path().join("whole.csv"),
    );
    assert_eq!(split, whole);
    assert!(
        split
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{},", rows.len())),
        "{split}"
    );
    // The sidecar names every file read, with its checksum.
    let side = std::fs::read_to_string(dir.path().join("split.csv.provenance.json")).unwrap();
    assert!(side.contains("a.csv") && side.contains("b.csv") && !side.contains(".hidden"));
}

#[test]
fn a_deeply_nested_query_is_an_answer_or_an_error_never_a_stack_overflow() {
    // 20,000 chained additions overflowed the planner's stack (an abort, exit 134) before
    // DataFusion's recursive protection was turned on.
    let chained = format!("SELECT {}", vec!["1"; 20_000].join("+"));
    let nested = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
    for q in [chained, nested] {
        let o = run(&["sql", &q]);
        let code = o.status.code();
        assert!(matches!(code, Some(0..=2)), "exit {code:?}: {}", stderr(&o));
    }
    // Refused with a reason; a chain within the limit still runs.
    let o = run(&["sql", &format!("SELECT {}", vec!["1"; 20_000].join("+"))]);
    assert!(
        stderr(&o).contains("chains 19999 operators"),
        "{}",
        stderr(&o)
    );
    let o = run(&["sql", &format!("SELECT {}", vec!["1"; 1_000].join("+"))]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1000"));
}

/// A Parquet table whose footer reads but whose pages are damaged is a data error naming the
/// table and file (exit 1) when DataFusion meets the damage while running the query; never
/// "SQL: …" (exit 2) as if the query were wrong, nor a message without the file.
#[test]
fn a_damaged_parquet_table_is_a_data_error_naming_its_file() {
    use arrow::array::{BooleanArray, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let batch = RecordBatch::try_from_iter([
        (
            "note",
            Arc::new(StringArray::from_iter_values(
                (0..5_000).map(|i| format!("note number {i} of many")),
            )) as Arc<dyn Array>,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from_iter(
                (0..5_000).map(|i| Some(i % 3 == 0)),
            )),
        ),
    ])
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_dictionary_enabled(false)
        .build();
    let mut good = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut good, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(good.clone()))
        .unwrap();
    // The text column (zstd pages: damage is detected); damaged bit-packed booleans may
    // still decode.
    for column in 0..1 {
        let (start, len) = meta.row_group(0).column(column).byte_range();
        let mut bad = good.clone();
        // Past the first page header, up to the chunk's end: the footer stays readable.
        for i in (start as usize + 40..(start + len) as usize).step_by(3) {
            bad[i] ^= 0xff;
        }
        let path = dir.path().join(format!("damaged{column}.parquet"));
        std::fs::write(&path, &bad).unwrap();
        let o = bin()
            .args(["sql", "SELECT * FROM t", "--table"])
            .arg(format!("t={}", path.display()))
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "column {column}: {err}");
        assert!(
            err.contains("corrupt or unreadable Parquet data")
                && err.contains(&format!("damaged{column}.parquet"))
                && !err.contains("SQL:"),
            "column {column}: {err}"
        );
    }
}

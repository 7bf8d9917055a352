//! Input and output formats: gzip/zstd CSV and NDJSON, stdin/stdout, NDJSON output, `.tsv`
//! delimiters, and column types that drift past the inference window.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use arrow::datatypes::DataType;

use crate::util::{HEAD, bin, demo_keyring, read_parquet, root, run, stderr, write_policy};

/// A value planted in the data: no message may ever show it.
const SECRET: &str = "SECRET-7731";

fn customers() -> PathBuf {
    root().join("examples/customers.csv")
}

fn keep_policy() -> PathBuf {
    root().join("policies/customers-keep.yaml")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn apply_keep(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let k = demo_keyring();
    let policy = keep_policy();
    let mut args = vec![
        "apply",
        "--policy",
        s(&policy),
        "--keyring",
        s(&k),
        "--input",
        s(input),
        "--output",
        s(out),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn verify_ok(out: &Path, extra: &[&str]) {
    let mut args = vec!["verify", s(out)];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

fn sha256_hex(data: &[u8]) -> (String, usize) {
    use sha2::Digest;
    (hex::encode(sha2::Sha256::digest(data)), data.len())
}

#[test]
fn gzip_and_zstd_csv_and_ndjson_round_trip_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = std::fs::read(customers()).unwrap();
    let rows = raw.iter().filter(|&&b| b == b'\n').count() - 1;
    let gz_in = d.join("c.csv.gz");
    std::fs::write(&gz_in, gzip(&raw)).unwrap();
    let zst_in = d.join("c.csv.zst");
    std::fs::write(&zst_in, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();

    // Compressed CSV in, compressed CSV and NDJSON out.
    for (input, out, ndjson) in [
        (&gz_in, d.join("o.csv.gz"), false),
        (&zst_in, d.join("o.ndjson.zst"), true),
        (&gz_in, d.join("o.jsonl.gz"), true),
    ] {
        let o = apply_keep(input, &out, &[]);
        assert!(o.status.success(), "{}: {}", out.display(), stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        let text = match out.extension().unwrap().to_str().unwrap() {
            "gz" => gunzip(&bytes),
            _ => zstd::decode_all(&bytes[..]).unwrap(),
        };
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.lines().count(), rows + usize::from(!ndjson), "{out:?}");
        if ndjson {
            let first: serde_json::Value =
                serde_json::from_str(text.lines().next().unwrap()).unwrap();
            assert_eq!(first["customer_id"], 100000, "{first}");
        } else {
            assert_eq!(text, String::from_utf8_lossy(&raw), "a plain copy");
        }
        // The record's checksum is of the compressed file as written; verify reads it back.
        let side = PathBuf::from(format!("{}.provenance.json", out.display()));
        let (sha, n) = sha256_hex(&bytes);
        let record = std::fs::read_to_string(&side).unwrap();
        assert!(record.contains(&sha), "{out:?}: sha256 of the written file");
        assert!(record.contains(&n.to_string()), "{out:?}: its size");
        verify_ok(&out, &[]);
    }

    // NDJSON in, compressed, to Parquet.
    let nd = d.join("o.ndjson.zst");
    let pq = d.join("back.parquet");
    let o = apply_keep(&nd, &pq, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (batches, _) = read_parquet(&pq);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
}

#[test]
fn parquet_is_never_gzip_or_zstd_compressed_as_a_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("o.parquet.gz");
    let o = apply_keep(&customers(), &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Parquet"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing written");
    // Nor read: a .parquet.zst input is refused by name.
    let pq = d.join("o.parquet");
    assert!(apply_keep(&customers(), &pq, &[]).status.success());
    let zst = d.join("in.parquet.zst");
    std::fs::write(
        &zst,
        zstd::encode_all(&std::fs::read(&pq).unwrap()[..], 3).unwrap(),
    )
    .unwrap();
    let o = apply_keep(&zst, &d.join("x.csv"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("decompress it first"), "{}", stderr(&o));
}

/// `cloakline ARGS` with `input` on stdin and `TMPDIR` set to `tmp`.
fn run_stdin<A: AsRef<std::ffi::OsStr>>(args: &[A], input: &[u8], tmp: &Path) -> Output {
    let mut child = bin()
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    o
}

#[test]
fn stdin_to_stdout_with_the_record_in_a_provenance_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let raw = std::fs::read(customers()).unwrap();
    let prov = d.join("run.provenance.json");
    let k = demo_keyring();
    let policy = keep_policy();
    let base = [
        "apply",
        "--policy",
        s(&policy),
        "--keyring",
        s(&k),
        "--input",
        "-",
        "--output",
        "-",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|a| a.to_string()).collect()
    };
    let o = run_stdin(
        &with(&[
            "--input-format",
            "csv",
            "--output-format",
            "csv",
            "--provenance",
            s(&prov),
        ]),
        &raw,
        &tmp,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, raw, "a plain copy through stdin and stdout");
    assert!(stderr(&o).contains("wrote stdout"), "{}", stderr(&o));
    // The record describes the bytes read and written; a saved copy verifies against it.
    let record = std::fs::read_to_string(&prov).unwrap();
    assert!(record.contains(&sha256_hex(&raw).0), "input checksum");
    // It names stdin and stdout, not the scratch files they were spooled through.
    assert!(record.contains("\"stdin\""), "{record}");
    assert!(record.contains("\"stdout\""), "{record}");
    assert!(!record.contains(&tmp.display().to_string()), "{record}");
    let saved = d.join("saved.csv");
    std::fs::write(&saved, &o.stdout).unwrap();
    verify_ok(&saved, &["--provenance", s(&prov)]);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "scratch removed"
    );

    // Refusals, each before anything is read or written.
    let other = d.join("o.csv");
    for (extra, says) in [
        (
            vec!["--output-format", "csv", "--provenance", s(&prov)],
            "--input-format",
        ),
        (
            vec!["--input-format", "csv", "--output-format", "csv"],
            "--provenance FILE",
        ),
        (
            vec![
                "--input-format",
                "csv",
                "--provenance",
                s(&d.join("p2.json")),
            ],
            "--output-format",
        ),
        (
            vec![
                "--input-format",
                "csv",
                "--output-format",
                "csv",
                "--json",
                "--provenance",
                s(&d.join("p3.json")),
            ],
            "--json",
        ),
    ] {
        let o = run_stdin(&with(&extra), &raw, &tmp);
        assert!(!o.status.success(), "{extra:?}");
        // No data on stdout (with --json, the error is printed there as JSON).
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("customer_id"),
            "{extra:?}"
        );
        assert!(stderr(&o).contains(says), "{extra:?}: {}", stderr(&o));
    }
    // --provenance with a file output: its record is the sidecar.
    let o = run_stdin(
        &[
            "apply",
            "--policy",
            s(&policy),
            "--keyring",
            s(&k),
            "--input",
            "-",
            "--input-format",
            "csv",
            "--output",
            s(&other),
            "--provenance",
            s(&d.join("p4.json")),
        ],
        &raw,
        &tmp,
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--output - only"), "{}", stderr(&o));
    // An existing record is not replaced without --overwrite.
    let o = run_stdin(
        &with(&[
            "--input-format",
            "csv",
            "--output-format",
            "csv",
            "--provenance",
            s(&prov),
        ]),
        &raw,
        &tmp,
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );
    // Stdin to a compressed NDJSON file.
    let o = run_stdin(
        &[
            "apply",
            "--policy",
            s(&policy),
            "--keyring",
            s(&k),
            "--input",
            "-",
            "--input-format",
            "csv",
            "--output",
            s(&d.join("o.ndjson.gz")),
        ],
        &raw,
        &tmp,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    verify_ok(&d.join("o.ndjson.gz"), &[]);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "scratch removed"
    );
}

#[test]
fn ndjson_output_keeps_null_columns_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `note` is empty throughout: NDJSON without explicit nulls would lose the key, and a
    // reader (verify) would find two columns where the record says three.
    let input = d.join("in.csv");
    std::fs::write(&input, "id,name,note\n1,ann,\n2,bob,\n").unwrap();
    let policy = write_policy(
        d,
        &format!(
            "{HEAD}unlisted: error\nfields:\n  id: {{ action: keep, basis: contract }}\n  \
             name: {{ action: keep, basis: contract }}\n  note: {{ action: keep, basis: contract }}\n"
        ),
    );
    for (out, extra) in [
        (d.join("o.ndjson"), vec![]),
        (d.join("o.data"), vec!["--output-format", "ndjson"]),
    ] {
        let mut args = vec![
            "apply",
            "--policy",
            s(&policy),
            "--input",
            s(&input),
            "--output",
            s(&out),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = std::fs::read_to_string(&out).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["name"], "ann");
        assert!(first.get("note").is_some_and(|v| v.is_null()), "{first}");
        if out.extension().is_some_and(|e| e == "ndjson") {
            verify_ok(&out, &[]);
        }
    }
}

#[test]
fn tsv_files_default_to_tab_in_and_out_unless_a_delimiter_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let policy = write_policy(
        d,
        &format!(
            "{HEAD}unlisted: error\nfields:\n  a: {{ action: keep, basis: contract }}\n  \
             b: {{ action: keep, basis: contract }}\n"
        ),
    );
    let tsv = "a\tb\nx,1\ty\n";
    let input = d.join("in.tsv.gz");
    std::fs::write(&input, gzip(tsv.as_bytes())).unwrap();
    let out = d.join("o.tsv");
    let o = run(&[
        "apply",
        "--policy",
        s(&policy),
        "--input",
        s(&input),
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), tsv);
    // A .tsv.gz output too.
    let out = d.join("o.tsv.gz");
    let o = run(&[
        "apply",
        "--policy",
        s(&policy),
        "--input",
        s(&input),
        "--output",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(gunzip(&std::fs::read(&out).unwrap()), tsv.as_bytes());
    // Given explicitly, `,` is used for a .tsv file: here a comma-separated one.
    let csv_named_tsv = d.join("commas.tsv");
    std::fs::write(&csv_named_tsv, "a,b,c\n1,2,3\n").unwrap();
    let o = run(&[
        "scan",
        "--input",
        s(&csv_named_tsv),
        "--delimiter",
        ",",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["columns"].as_array().unwrap().len(), 3, "{report}");
}

/// `rows` rows of `id,zip,email`, the zip of row `drift` (1-based) being `SECRET`.
fn drifting_csv(path: &Path, rows: usize, drift: usize) {
    let mut t = String::from("id,zip,email\n");
    for i in 1..=rows {
        let zip = if i == drift {
            SECRET.to_string()
        } else {
            (10_000 + i).to_string()
        };
        t.push_str(&format!("{i},{zip},u{i}@example.com\n"));
    }
    std::fs::write(path, t).unwrap();
}

fn drift_policy(d: &Path) -> PathBuf {
    write_policy(
        d,
        &format!(
            "{HEAD}unlisted: error\nfields:\n  id: {{ action: keep, basis: contract }}\n  \
             zip: {{ action: keep, basis: contract }}\n  email: {{ action: keep, basis: contract }}\n"
        ),
    )
}

fn no_secret(o: &Output) {
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(o));
    assert!(!all.contains(SECRET), "a value was shown: {all}");
}

#[test]
fn scan_survives_a_type_that_drifts_past_the_inference_window() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Small window, drift at row 50; and the default window (10,000 rows), drift beyond it.
    for (rows, drift, extra) in [
        (80, 50, vec!["--infer-rows", "10"]),
        (10_100, 10_050, vec![]),
    ] {
        let input = d.join(format!("drift{rows}.csv"));
        drifting_csv(&input, rows, drift);
        let draft = d.join(format!("draft{rows}.yaml"));
        let mut args = vec![
            "scan",
            "--input",
            s(&input),
            "--json",
            "--draft-policy",
            s(&draft),
        ];
        args.extend(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        no_secret(&o);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["rows"], rows as u64);
        let notes = report["notes"].to_string();
        assert!(
            notes.contains("`zip`") && notes.contains(&format!("line {}", drift + 1)),
            "{notes}"
        );
        let zip = report["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "zip")
            .unwrap();
        assert_eq!(zip["dataType"], "Utf8", "{zip}");
        // The draft declares the column text, or `apply` would fail where the scan did.
        let text = std::fs::read_to_string(&draft).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("\"zip\"") || l.contains(" zip:"))
            .unwrap();
        assert!(line.contains("type: string"), "{line}");
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn apply_names_file_column_and_line_of_a_drifting_type_and_offers_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("drift.csv");
    drifting_csv(&input, 80, 50);
    let policy = drift_policy(d);
    let out = d.join("o.parquet");
    let apply = |extra: &[&str]| {
        let mut a = vec![
            "apply",
            "--policy",
            s(&policy),
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--overwrite",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let o = apply(&["--infer-rows", "10"]);
    assert!(!o.status.success());
    no_secret(&o);
    let e = stderr(&o);
    for want in [
        "drift.csv",
        "line 51",
        "`zip`",
        "Int64",
        "--infer-rows",
        "--all-strings",
        "type:",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    assert!(!out.exists());

    // The same over NDJSON records.
    let nd = d.join("drift.ndjson");
    let mut t = String::new();
    for i in 1..=80 {
        let zip = if i == 50 {
            format!("\"{SECRET}\"")
        } else {
            (10_000 + i).to_string()
        };
        t.push_str(&format!(
            "{{\"id\":{i},\"zip\":{zip},\"email\":\"u{i}@example.com\"}}\n"
        ));
    }
    std::fs::write(&nd, t).unwrap();
    let o = run(&[
        "apply",
        "--policy",
        s(&policy),
        "--input",
        s(&nd),
        "--output",
        s(&out),
        "--infer-rows",
        "10",
        "--batch-size",
        "16",
    ]);
    assert!(!o.status.success());
    no_secret(&o);
    let e = stderr(&o);
    for want in [
        "drift.ndjson",
        "records 49-64",
        "`zip`",
        "--infer-rows",
        "--all-strings",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }

    // Ways out: infer over the whole file (zip is text, id stays a number), or read text.
    let o = apply(&["--infer-rows", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (b, _) = read_parquet(&out);
    assert_eq!(
        b[0].schema().field_with_name("zip").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        b[0].schema().field_with_name("id").unwrap().data_type(),
        &DataType::Int64
    );
    let o = apply(&["--infer-rows", "10", "--all-strings"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (b, _) = read_parquet(&out);
    assert!(
        b[0].schema()
            .fields()
            .iter()
            .all(|f| f.data_type() == &DataType::Utf8)
    );
    assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 80);
    // NDJSON numbers read into text columns with --all-strings.
    let o = run(&[
        "apply",
        "--policy",
        s(&policy),
        "--input",
        s(&nd),
        "--output",
        s(&out),
        "--overwrite",
        "--infer-rows",
        "10",
        "--all-strings",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (b, _) = read_parquet(&out);
    assert_eq!(
        b[0].schema().field_with_name("id").unwrap().data_type(),
        &DataType::Utf8
    );
}

#[test]
fn check_takes_the_inference_flags_and_reads_compressed_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("drift.csv");
    drifting_csv(&input, 80, 50);
    let policy = write_policy(
        d,
        &format!(
            "{HEAD}unlisted: error\nfields:\n  id: {{ action: drop }}\n  \
             zip: {{ action: keep, basis: contract }}\n  email: {{ action: drop }}\n\
             privacy:\n  quasi_identifiers:\n    zip: {{ levels: [{{ keep_prefix: 1 }}] }}\n  k: 2\n  max_suppression: 0.5\n"
        ),
    );
    let o = crate::util::check(&policy, &input, &["--infer-rows", "10"]);
    assert!(!o.status.success());
    no_secret(&o);
    assert!(stderr(&o).contains("--all-strings"), "{}", stderr(&o));
    // Read as text, the data is measured (whether the models are met is beside the point).
    let o = crate::util::check(
        &policy,
        &input,
        &["--infer-rows", "10", "--all-strings", "--json"],
    );
    no_secret(&o);
    assert!(!stderr(&o).contains("not a valid"), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["assessment"].is_object(), "{report}");
    // Compressed input is measured as the plain file is: the grouping pass streams it
    // through cloakline's own reader (DataFusion's scan cannot decompress).
    let gz = d.join("drift.csv.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&input).unwrap())).unwrap();
    let o = crate::util::check(
        &policy,
        &gz,
        &["--infer-rows", "10", "--all-strings", "--json"],
    );
    no_secret(&o);
    let from_gz: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        from_gz["assessment"],
        report["assessment"],
        "{}",
        stderr(&o)
    );
    // `apply` with the privacy block too.
    let out = d.join("o.parquet");
    let o = run(&[
        "apply",
        "--policy",
        s(&policy),
        "--input",
        s(&gz),
        "--output",
        s(&out),
        "--all-strings",
    ]);
    // Grouped and decided, as for the plain file: released, or refused on the models.
    match o.status.code() {
        Some(0) => assert!(out.exists()),
        _ => {
            assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
            assert!(!out.exists());
        }
    }
}

//! Hostile and unlucky I/O (issue 10): symlink loops, `--overwrite`, stale temporary files,
//! half-committed runs, outputs colliding with inputs, concurrent runs, data in error
//! messages, and the small ones (batch size, strict NDJSON, non-UTF-8 names, `.tsv`, missing
//! output directories, write errors naming the output).

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::util::{
    HEAD, apply_example_ok, apply_files, block_on, check, dir_names, read_csv_strings, root,
    stderr, write_policy,
};

const FIELDS: &str = "fields:\n  id: { action: keep, basis: contract }\n  name: { action: keep, basis: contract }\n  age: { action: keep, basis: contract }\n";
const CSV: &str = "id,name,age\n1,Ann,20\n2,Bo,40\n3,Cy,60\n";

/// A temporary directory with `p.yaml` (HEAD + FIELDS + `tail`) and `in.csv`.
fn setup(tail: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), &format!("{HEAD}{FIELDS}{tail}"));
    let input = dir.path().join("in.csv");
    std::fs::write(&input, CSV).unwrap();
    (dir, policy, input)
}

fn apply(policy: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    apply_files(policy, None, input, output, &args)
}

fn expect(o: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
    err
}

fn summary(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

// ---- 1: symlink loops -------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn symlink_loop_in_a_directory_input_is_read_once() {
    let (dir, policy, _) = setup("");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("t.csv"), CSV).unwrap();
    std::os::unix::fs::symlink(".", data.join("current")).unwrap();
    let out = dir.path().join("out");
    let s = summary(&apply(&policy, &data, &out, &[]));
    assert_eq!(s["rowsIn"], 3, "{s}");
    assert_eq!(s["files"], 1, "{s}");
    assert_eq!(dir_names(&out), ["t.parquet"]);

    // `check` sees three unique records, not classes of 41.
    let privacy = dir.path().join("k.yaml");
    std::fs::write(
        &privacy,
        format!(
            "{HEAD}{FIELDS}privacy:\n  quasi_identifiers:\n    age: {{ levels: [{{ bin_width: 10 }}] }}\n  k: 2\n"
        ),
    )
    .unwrap();
    let o = check(&privacy, &data, &["--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // Parsed, not searched: a timing such as `0.0234` may contain "41" by chance.
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["assessment"]["records"], 3, "{report}");
    assert_eq!(report["assessment"]["smallestClass"], 1, "{report}");
    assert_eq!(report["assessment"]["largestClass"], 1, "{report}");
}

#[cfg(unix)]
#[test]
fn a_file_reached_twice_is_refused() {
    let (dir, policy, _) = setup("");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.csv"), CSV).unwrap();
    std::os::unix::fs::symlink("a.csv", data.join("b.csv")).unwrap();
    let out = dir.path().join("out");
    expect(
        &apply(&policy, &data, &out, &[]),
        2,
        &["same file", "b.csv"],
    );
    assert!(!out.exists());
    // A hard link is the same file too.
    std::fs::remove_file(data.join("b.csv")).unwrap();
    std::fs::hard_link(data.join("a.csv"), data.join("c.csv")).unwrap();
    expect(&apply(&policy, &data, &out, &[]), 2, &["same file"]);
}

#[test]
fn two_inputs_with_one_output_name_are_refused_not_overwritten() {
    // Regression: `a.csv` and `a.csv.gz` both became `a.parquet`, the second replacing the
    // first while the run reported both files' rows.
    let (dir, policy, _) = setup("");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.csv"), CSV).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, CSV.as_bytes()).unwrap();
    std::fs::write(data.join("a.csv.gz"), gz.finish().unwrap()).unwrap();
    let out = dir.path().join("out");
    expect(
        &apply(&policy, &data, &out, &[]),
        2,
        &["a.csv", "a.csv.gz", "a.parquet", "rename one"],
    );
    assert!(!out.exists());
}

// ---- 3: --overwrite -------------------------------------------------------------------

#[test]
fn overwrite_never_deletes_a_directory_holding_the_input() {
    let (dir, policy, _) = setup("");
    let project = dir.path().join("project");
    let raw = project.join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(raw.join("t.csv"), CSV).unwrap();
    std::fs::write(project.join("notes.txt"), "mine").unwrap();
    let o = apply(&policy, &raw, &project, &["--overwrite"]);
    expect(&o, 2, &["lies inside --output"]);
    assert!(raw.join("t.csv").exists());
    assert_eq!(
        std::fs::read_to_string(project.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn overwrite_replaces_only_a_previous_release() {
    let (dir, policy, _) = setup("");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("t.csv"), CSV).unwrap();

    // An unrelated directory (no sidecar) is not replaced.
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "years of work").unwrap();
    expect(
        &apply(&policy, &data, &out, &["--overwrite"]),
        2,
        &["not a previous cloakline release"],
    );
    assert!(out.join("thesis.tex").exists());

    // A previous release is, and a second run replaces the first.
    std::fs::remove_file(out.join("thesis.tex")).unwrap();
    summary(&apply(&policy, &data, &out, &["--overwrite"]));
    summary(&apply(&policy, &data, &out, &["--overwrite"]));
    assert_eq!(dir_names(&out), ["t.parquet"]);

    // Not once someone's file sits in it, or it holds a Git repository.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    expect(
        &apply(&policy, &data, &out, &["--overwrite"]),
        2,
        &["notes.txt is not one of its outputs"],
    );
    assert!(out.join("notes.txt").exists() && out.join("t.parquet").exists());
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    std::fs::create_dir(out.join(".git")).unwrap();
    expect(
        &apply(&policy, &data, &out, &["--overwrite"]),
        2,
        &["Git repository"],
    );
    assert!(out.join(".git").exists() && out.join("t.parquet").exists());
}

#[test]
fn an_existing_output_file_needs_overwrite_and_must_be_a_regular_file() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("o.csv");
    std::fs::write(&out, "precious").unwrap();
    expect(&apply(&policy, &input, &out, &[]), 2, &["--overwrite"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");
    summary(&apply(&policy, &input, &out, &["--overwrite"]));
    assert_eq!(read_csv_strings(&out).len(), 4);
    #[cfg(unix)]
    {
        let target = dir.path().join("target.csv");
        std::fs::write(&target, "elsewhere").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        expect(
            &apply(&policy, &input, &link, &["--overwrite"]),
            2,
            &["not a regular file"],
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "elsewhere");
    }
}

// ---- 7: stale temporary files -----------------------------------------------------------

#[test]
fn stale_temporary_files_of_dead_runs_are_removed() {
    let (dir, policy, input) = setup("");
    let d = dir.path();
    // PIDs above any pid_max are dead; this test's own PID is alive.
    let dead_file = d.join(".o.parquet.cloakline-tmp-2147483646-0badf00d");
    let dead_dir = d.join(".o.parquet.cloakline-tmp-2147483645-deadbeef");
    let dead_side = d.join(".o.parquet.provenance.json.cloakline-tmp-2147483646-00c0ffee");
    let live = d.join(format!(
        ".o.parquet.cloakline-tmp-{}-12345678",
        std::process::id()
    ));
    let other = d.join(".other.parquet.cloakline-tmp-2147483646-0badf00d");
    std::fs::write(&dead_file, "keep-column data").unwrap();
    std::fs::create_dir(&dead_dir).unwrap();
    std::fs::write(dead_dir.join("part.parquet"), "data").unwrap();
    std::fs::write(&dead_side, "{}").unwrap();
    std::fs::write(&live, "in progress").unwrap();
    std::fs::write(&other, "not ours").unwrap();
    summary(&apply(&policy, &input, &d.join("o.parquet"), &[]));
    assert!(!dead_file.exists() && !dead_dir.exists() && !dead_side.exists());
    assert!(live.exists(), "a live run's file was removed");
    assert!(other.exists(), "another output's file was removed");
}

// ---- 8: the commit is all or nothing ------------------------------------------------------

#[test]
fn a_blocked_sidecar_leaves_no_data_behind() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("o.parquet");
    let side = dir.path().join("o.parquet.provenance.json");
    std::fs::create_dir(&side).unwrap();
    std::fs::write(side.join("x"), "x").unwrap();
    expect(
        &apply(&policy, &input, &out, &[]),
        2,
        &["not a regular file"],
    );
    assert!(!out.exists(), "data was committed without its sidecar");
    // Nor is a previous output replaced.
    std::fs::write(&out, "previous").unwrap();
    expect(&apply(&policy, &input, &out, &["--overwrite"]), 2, &[]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    let left: Vec<String> = dir_names(dir.path())
        .into_iter()
        .filter(|n| n.contains("cloakline"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unwritable_lineage_destination_fails_before_anything_is_committed() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("o.parquet");
    let lineage = dir.path().join("events");
    std::fs::create_dir(&lineage).unwrap();
    let o = apply(
        &policy,
        &input,
        &out,
        &["--openlineage", lineage.to_str().unwrap()],
    );
    expect(&o, 2, &["--openlineage"]);
    assert!(!out.exists());
    assert!(!dir.path().join("o.parquet.provenance.json").exists());
}

// ---- 9: outputs colliding with inputs ------------------------------------------------------

#[test]
fn outputs_naming_an_input_or_each_other_are_refused() {
    let (dir, policy, input) = setup("");
    let d = dir.path();
    let out = d.join("o.parquet");
    let side = d.join("o.parquet.provenance.json");
    // --openlineage naming the output or its sidecar.
    for target in [&out, &side] {
        let o = apply(
            &policy,
            &input,
            &out,
            &["--openlineage", target.to_str().unwrap()],
        );
        expect(&o, 2, &["--openlineage"]);
        assert!(!out.exists() && !side.exists());
    }
    // --output naming the policy or the keyring (formats forced so the names pass).
    let keyring = d.join("ring.json");
    std::fs::copy(root().join("examples/demo-keyring.json"), &keyring).unwrap();
    let ring_text = std::fs::read(&keyring).unwrap();
    let policy_text = std::fs::read(&policy).unwrap();
    for (target, role) in [(&policy, "the policy"), (&keyring, "the keyring")] {
        let o = apply(
            &policy,
            &input,
            target,
            &[
                "--keyring",
                keyring.to_str().unwrap(),
                "--output-format",
                "csv",
                "--overwrite",
            ],
        );
        expect(&o, 2, &[role]);
    }
    assert_eq!(std::fs::read(&keyring).unwrap(), ring_text);
    assert_eq!(std::fs::read(&policy).unwrap(), policy_text);
}

#[test]
fn output_naming_a_hierarchy_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hierarchy = d.join("age.csv");
    let h = "20;20-39;*\n40;40-59;*\n60;60-79;*\n";
    std::fs::write(&hierarchy, h).unwrap();
    let policy = write_policy(
        d,
        &format!(
            "{HEAD}{FIELDS}privacy:\n  quasi_identifiers:\n    age: {{ hierarchy: age.csv }}\n  k: 2\n"
        ),
    );
    // Pairs of ages, so k = 2 holds and the run would otherwise succeed.
    let input = d.join("in.csv");
    std::fs::write(&input, "id,name,age\n1,A,20\n2,B,20\n3,C,40\n4,D,40\n").unwrap();
    let o = apply(&policy, &input, &hierarchy, &["--overwrite"]);
    expect(&o, 2, &["hierarchy file of `age`"]);
    assert_eq!(std::fs::read_to_string(&hierarchy).unwrap(), h);
    // The same run to another name succeeds.
    summary(&apply(&policy, &input, &d.join("o.csv"), &[]));
}

// ---- 10: concurrent runs on one output ---------------------------------------------------

#[test]
fn a_second_run_on_a_locked_output_fails_fast() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("o.parquet");
    // Hold the lock as a running apply would.
    let lock = std::fs::File::create(dir.path().join(".o.parquet.cloakline-lock")).unwrap();
    lock.try_lock().unwrap();
    expect(
        &apply(&policy, &input, &out, &[]),
        1,
        &["another cloakline run is writing"],
    );
    assert!(!out.exists());
    drop(lock);
    summary(&apply(&policy, &input, &out, &[]));
    // The lock file goes away with the run that held it.
    assert_eq!(
        dir_names(dir.path()).len(),
        4,
        "{:?}",
        dir_names(dir.path())
    );
}

// ---- 15: no data in read errors --------------------------------------------------------

#[test]
fn csv_read_errors_do_not_quote_data() {
    let (dir, policy, _) = setup("");
    // Past the 10,000 inference rows, so `id` is read as an integer.
    let mut text = String::from("id,name,age\n");
    for i in 0..10_050 {
        text.push_str(&format!("{i},n{i},30\n"));
    }
    text.push_str("oops,u20000@example.com,31\n");
    let input = dir.path().join("big.csv");
    std::fs::write(&input, &text).unwrap();
    let out = dir.path().join("o.parquet");
    let err = expect(
        &apply(&policy, &input, &out, &[]),
        1,
        &["line 10052", "column 1 `id`", "Int64"],
    );
    assert!(!err.contains("u20000@example.com"), "{err}");
    assert!(!err.contains("oops"), "{err}");
    assert!(!out.exists());
}

#[test]
fn ndjson_errors_do_not_quote_data_and_late_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(
        dir.path(),
        &format!("{HEAD}unlisted: error\nfields:\n  id: {{ action: keep, basis: contract }}\n"),
    );
    let head: String = (0..10_050).map(|i| format!("{{\"id\": {i}}}\n")).collect();
    let out = dir.path().join("o.parquet");
    // A value of the wrong type.
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, format!("{head}{{\"id\": \"u2@example.com\"}}\n")).unwrap();
    let err = expect(&apply(&policy, &bad, &out, &[]), 1, &["id", "Int64"]);
    assert!(!err.contains("u2@example.com"), "{err}");
    // A key first seen after the inference window.
    let late = dir.path().join("late.ndjson");
    std::fs::write(
        &late,
        format!("{head}{{\"id\": 1, \"email\": \"late@example.com\"}}\n"),
    )
    .unwrap();
    let err = expect(
        &apply(&policy, &late, &out, &[]),
        1,
        &["key `email`", "late.ndjson"],
    );
    assert!(!err.contains("late@example.com"), "{err}");
    assert!(!out.exists());
}

// ---- low items ---------------------------------------------------------------------------

#[test]
fn huge_batch_sizes_are_refused_not_aborted() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("o.parquet");
    for n in ["100000000000", "18446744073709551615"] {
        expect(
            &apply(&policy, &input, &out, &["--batch-size", n]),
            2,
            &["--batch-size"],
        );
    }
    // Through the library, 0 is an error too, not a panic.
    let p = cloakline::policy::Policy::load(&policy).unwrap();
    let ring = cloakline::keys::Keyring::default();
    let r = block_on(
        cloakline::jobs::apply::Apply::new(p, ring, &input, &out)
            .with_batch_size(0)
            .run(),
    );
    assert!(
        matches!(r, Err(cloakline::Error::Usage(_))),
        "{:?}",
        r.err()
    );
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn a_non_utf8_output_name_keeps_its_bytes_in_the_sidecar_name() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let (dir, policy, input) = setup("");
    let out = dir.path().join(OsString::from_vec(b"o\xff.csv".to_vec()));
    let o = bin_apply(&policy, &input, &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let side = dir
        .path()
        .join(OsString::from_vec(b"o\xff.csv.provenance.json".to_vec()));
    assert!(
        side.exists(),
        "{:?}",
        std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>()
    );
}

#[cfg(unix)]
fn bin_apply(policy: &Path, input: &Path, output: &Path) -> Output {
    crate::util::bin()
        .arg("apply")
        .arg("--policy")
        .arg(policy)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .output()
        .unwrap()
}

#[test]
fn tsv_is_tab_separated_in_and_out() {
    let (dir, policy, _) = setup("");
    let input = dir.path().join("in.tsv");
    std::fs::write(&input, CSV.replace(',', "\t")).unwrap();
    let out = dir.path().join("o.tsv");
    summary(&apply(&policy, &input, &out, &[]));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next(), Some("id\tname\tage"), "{text}");
    assert_eq!(text.lines().count(), 4);
    // An explicit `--delimiter ,` wins over the extension, for the input and the output.
    let commas = dir.path().join("commas.tsv");
    std::fs::write(&commas, CSV).unwrap();
    let out2 = dir.path().join("o2.tsv");
    summary(&apply(&policy, &commas, &out2, &["--delimiter", ","]));
    let text = std::fs::read_to_string(&out2).unwrap();
    assert_eq!(text.lines().next(), Some("id,name,age"), "{text}");
}

#[test]
fn missing_output_directories_are_created_and_removed_on_failure() {
    // The README's quick start writes to out/, which a fresh clone lacks.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/customers.parquet");
    apply_example_ok(&out, &[]);
    assert!(
        out.exists()
            && dir
                .path()
                .join("out/customers.parquet.provenance.json")
                .exists()
    );
    // A run that fails leaves no empty directories behind.
    let (d2, _, input) = setup("");
    let bad = d2.path().join("bad.yaml");
    std::fs::write(
        &bad,
        format!("{HEAD}unlisted: error\nfields:\n  id: {{ action: keep, basis: contract }}\n"),
    )
    .unwrap();
    let o = apply(&bad, &input, &d2.path().join("new/deeper/o.parquet"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!d2.path().join("new").exists());
}

/// Issue 12 item 7: NDJSON with `type:` overrides worked without a privacy block but failed
/// with one: the grouping pass read the file with DataFusion's own inference (dates as
/// strings), not with the policy's types.
#[test]
fn ndjson_type_overrides_hold_in_the_privacy_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("p.ndjson");
    let mut text = String::new();
    for (i, d) in ["1980-02-03", "1981-05-06", "1982-07-08", "1983-09-10"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!("{{\"id\": {i}, \"birth_date\": \"{d}\"}}\n"));
    }
    std::fs::write(&data, text).unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(
        &policy,
        format!(
            "{}fields:\n  id: {{ action: keep, basis: contract }}\n  birth_date: {{ action: keep, basis: contract, type: date }}\nprivacy:\n  quasi_identifiers:\n    birth_date: {{ levels: [{{ to: decade }}] }}\n  k: 2\n  on_violation: generalize\n",
            crate::util::HEAD
        ),
    )
    .unwrap();
    let out = dir.path().join("o.csv");
    let o = crate::util::run(&[
        "apply",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.matches("1980-1989").count(), 4, "{written}");
    let o = crate::util::run(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--input",
        data.to_str().unwrap(),
        "--no-preview",
    ]);
    // Level 0 (whole dates) does not give k = 2: exit 3, not a planning error.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

/// `cmd` run to completion, or killed (and the test failed) if it is still running after a
/// minute: a FIFO named as an input file used to block forever.
fn run_bounded(args: &[&str]) -> Output {
    let mut child = crate::util::bin()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{args:?} blocked (still running after 60 s)");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `apply` of `policy` from `input` to `output` (plus `extra`), killed after a minute.
fn apply_bounded(policy: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (p, i, o) = (s(policy), s(input), s(output));
    let mut args = vec!["apply", "--policy", &p, "--input", &i, "--output", &o];
    args.extend_from_slice(extra);
    run_bounded(&args)
}

/// A FIFO at `path`, or false where `mkfifo` is not available.
fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A policy, keyring or provenance record named by the user must be a regular file of a
/// bounded size: a FIFO blocked the run, a directory gave an OS error, `/dev/zero` or a huge
/// file was read until memory ran out.
#[test]
fn small_input_files_must_be_regular_and_bounded() {
    let (dir, policy, input) = setup("");
    let out = dir.path().join("out.csv");
    let fifo = dir.path().join("fifo");
    let have_fifo = mkfifo(&fifo);
    let big = dir.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let mut odd: Vec<(PathBuf, &str)> = vec![
        (dir.path().to_path_buf(), "not a regular file"),
        (big.clone(), "larger than"),
    ];
    if have_fifo {
        odd.push((fifo.clone(), "not a regular file"));
    }
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for (path, needle) in &odd {
        let p = s(path);
        // As the policy.
        let o = apply_bounded(path, &input, &out, &[]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "policy {p}: {err}");
        assert!(
            err.contains(needle) && err.contains(&p),
            "policy {p}: {err}"
        );
        // As the keyring.
        let o = apply_bounded(&policy, &input, &out, &["--keyring", &p]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "keyring {p}: {err}");
        assert!(err.contains(needle), "keyring {p}: {err}");
        assert!(!out.exists());
        // As the provenance record to verify and to report on.
        let o = apply_bounded(&policy, &input, &out, &[]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = run_bounded(&["verify", &s(&out), "--provenance", &p]);
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "verify {p}: {err}");
        assert!(
            err.contains(needle) && err.contains(&p),
            "verify {p}: {err}"
        );
        let o = run_bounded(&["report", &p]);
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "report {p}: {err}");
        assert!(err.contains(needle), "report {p}: {err}");
        std::fs::remove_file(&out).unwrap();
        std::fs::remove_file(dir.path().join("out.csv.provenance.json")).unwrap();
    }
}

/// A FIFO as a data file: `apply` blocked opening it as input, and `verify` blocked hashing
/// it as an output (and ignored SIGTERM meanwhile). Both now refuse it at once.
#[test]
fn a_fifo_as_a_data_file_is_refused_not_waited_on() {
    let (dir, policy, input) = setup("");
    let fifo = dir.path().join("f.csv");
    if !mkfifo(&fifo) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = dir.path().join("out.csv");
    let o = apply_bounded(&policy, &fifo, &out, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not a regular file") && err.contains("f.csv"),
        "{err}"
    );
    assert!(!out.exists());
    // verify: a record beside a FIFO standing where the output was.
    let o = apply_bounded(&policy, &input, &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    std::fs::copy(
        dir.path().join("out.csv.provenance.json"),
        dir.path().join("f.csv.provenance.json"),
    )
    .unwrap();
    let o = run_bounded(&["verify", &s(&fifo)]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    // sql: a FIFO as a table, alone or among a directory's files, before DataFusion reads it.
    let refused = |table: &Path, named: &str| {
        let t = format!("t={}", s(table));
        let o = run_bounded(&["sql", "SELECT COUNT(*) FROM t", "--table", &t]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("not a regular file") && err.contains(named),
            "{err}"
        );
    };
    refused(&fifo, "f.csv");
    let tables = dir.path().join("tables");
    std::fs::create_dir(&tables).unwrap();
    std::fs::copy(&input, tables.join("a.csv")).unwrap();
    assert!(mkfifo(&tables.join("b.csv")));
    refused(&tables, "b.csv");
}

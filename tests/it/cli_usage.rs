//! The command line as a new user meets it: `--version`, argument checks, `--json` on
//! failure, messages, aligned text tables, log levels and environment variables.

use std::path::Path;
use std::process::Output;

use super::util::{HEAD, PEOPLE, bin, demo_keyring, people_csv, root, run, stderr, write_policy};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Terminal columns of `text` (CJK two each), as the tests expect them.
fn width(text: &str) -> usize {
    text.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF => 2,
            0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 => 2,
            _ => 1,
        })
        .sum()
}

fn apply_args<'a>(input: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["apply", "--input", input, "--output", out];
    v.extend_from_slice(extra);
    v
}

#[test]
fn version_names_the_commit_and_build_date() {
    let o = run(&["--version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let rest = text
        .trim_end()
        .strip_prefix(concat!("cloakline ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{text:?}"));
    let (commit, date) = rest.split_once(' ').unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text:?}"
    );
    let d: Vec<&str> = date.split('-').collect();
    assert!(
        d.len() == 3 && [4, 2, 2] == [d[0].len(), d[1].len(), d[2].len()],
        "{text:?}"
    );
    assert!(
        d.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{text:?}"
    );
}

#[test]
fn numbers_out_of_range_are_usage_errors_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    let input = root().join("examples/customers.csv");
    let policy = root().join("policies/customers.yaml");
    let ring = demo_keyring();
    for (flag, value) in [
        ("--zstd-level", "0"),
        ("--zstd-level", "23"),
        ("--threads", "0"),
        ("--batch-size", "0"),
    ] {
        let o = run(&apply_args(
            s(&input),
            s(&out),
            &["--policy", s(&policy), "--keyring", s(&ring), flag, value],
        ));
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
        assert!(!stderr(&o).contains("Parquet error"), "{}", stderr(&o));
        assert!(!out.exists());
    }
}

/// `--json` on failure: one error object on stdout, for errors of the run and of clap alike.
#[test]
fn json_failures_print_an_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.parquet");
    let input = root().join("examples/customers.csv");
    let policy = root().join("policies/customers.yaml");
    let object = |o: &Output| -> serde_json::Value {
        serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {:?}", stdout(o)))
    };
    // No keyring: a keyring error of the run.
    let o = run(&apply_args(
        s(&input),
        s(&out),
        &["--policy", s(&policy), "--json"],
    ));
    assert_eq!(o.status.code(), Some(2));
    let e = &object(&o)["error"];
    assert_eq!(e["kind"], "keyring", "{e}");
    assert_eq!(e["exitCode"], 2, "{e}");
    assert!(e["message"].as_str().unwrap().contains("--keyring"), "{e}");
    // An argument clap rejects.
    let o = run(&apply_args(
        s(&input),
        s(&out),
        &["--policy", s(&policy), "--json", "--zstd-level", "0"],
    ));
    assert_eq!(o.status.code(), Some(2));
    let e = &object(&o)["error"];
    assert_eq!(e["kind"], "usage", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("--zstd-level"),
        "{e}"
    );
    // A command whose flags live in a file of its own (scan): a missing input.
    let o = run(&["scan", "--input", s(&dir.path().join("nope.csv")), "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = &object(&o)["error"];
    assert_eq!(e["kind"], "io", "{e}");
    assert_eq!(e["exitCode"], 2, "{e}");
    // Without --json, stdout stays empty.
    let o = run(&["scan", "--input", s(&dir.path().join("nope.csv"))]);
    assert!(o.stdout.is_empty());
}

/// `check --json` whose models are not met prints its report, and no second document.
#[test]
fn json_result_then_failure_stays_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let policy = write_policy(
        dir.path(),
        &format!("{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{}}\n  k: 2\n"),
    );
    let o = run(&[
        "check",
        "--policy",
        s(&policy),
        "--input",
        s(&data),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v.get("assessment").is_some(), "{v}");
}

#[test]
fn sql_runs_without_tables() {
    let o = run(&["sql", "SELECT 1 + 1 AS two"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("| 2 "), "{}", stdout(&o));
}

/// A policy that does not fit a table: the plan's problems once, without DataFusion's
/// "Error during planning" wrapped around a second "plan for".
#[test]
fn a_misfitting_policy_view_is_one_plan_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let body = format!("{HEAD}{PEOPLE}  height: {{ action: keep, basis: consent }}\n");
    let policy = write_policy(dir.path(), &body);
    let table = format!("people={}", data.display());
    let o = run(&["sql", "SELECT 1", "--table", &table, "--policy", s(&policy)]);
    // The privacy grouping pass makes the same view.
    let with_privacy = write_policy(
        dir.path(),
        &format!("{body}privacy:\n  quasi_identifiers:\n    height: {{}}\n  k: 2\n"),
    );
    let c = run(&["check", "--policy", s(&with_privacy), "--input", s(&data)]);
    for o in [o, c] {
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("policy field `height`"), "{e}");
        assert!(!e.contains("Error during planning"), "{e}");
        assert!(!e.contains("External error"), "{e}");
        assert_eq!(e.matches("plan for").count(), 1, "{e}");
        assert!(e.contains(&format!("plan for {}", data.display())), "{e}");
    }
}

/// One consent field among the recipients' finding: "1 field here relies", not "rely".
#[test]
fn report_agrees_in_number() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("policies/customers.yaml")).unwrap();
    let one = "basis: consent\n    category: telephone";
    assert!(
        text.contains(one),
        "the example policy changed: phone is no longer consent"
    );
    let policy = dir.path().join("one.yaml");
    std::fs::write(
        &policy,
        text.replace(one, "basis: contract\n    category: telephone"),
    )
    .unwrap();
    let out = dir.path().join("o.parquet");
    let input = root().join("examples/customers.csv");
    let ring = demo_keyring();
    let o = run(&apply_args(
        s(&input),
        s(&out),
        &["--policy", s(&policy), "--keyring", s(&ring)],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["report", s(&out), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = stdout(&o);
    assert!(md.contains("(1 field here relies on consent)"), "{md}");
    assert!(!md.contains("field here rely "), "{md}");
}

/// `scan`'s table: the verdict column starts at one display column on every row, with
/// column names in CJK (two columns a character).
#[test]
fn scan_text_aligns_wide_column_names() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("wide.csv");
    let mut csv = String::from("客户备注,email,id\n");
    for i in 0..20 {
        csv.push_str(&format!("备注{i},user{i}@example.com,{i}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    let o = run(&["scan", "--input", s(&input)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("column"))
        .unwrap_or_else(|| panic!("{text}"));
    let at = |line: &str, name: &str| {
        let rest = line.strip_prefix(name).unwrap();
        width(name) + rest.len() - rest.trim_start().len()
    };
    let verdict_at = at(lines[header], "column");
    for name in ["客户备注", "email", "id"] {
        let row = lines[header + 1..]
            .iter()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        assert_eq!(at(row, name), verdict_at, "{name}:\n{text}");
    }
}

/// `check`'s report: every value starts at one column, whatever the label's length (`l (dx)`,
/// `t (dx, equal distance)` included).
#[test]
fn check_text_aligns_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = people_csv(dir.path());
    let policy = write_policy(
        dir.path(),
        &format!(
            "{HEAD}{PEOPLE}privacy:\n  quasi_identifiers:\n    age: {{}}\n  k: 2\n  l_diversity:\n    - {{ attribute: dx, l: 2 }}\n  t_closeness:\n    - {{ attribute: dx, t: 1 }}\n"
        ),
    );
    let o = run(&["check", "--policy", s(&policy), "--input", s(&data)]);
    // Met or not (exit 3), the report is printed.
    assert!(matches!(o.status.code(), Some(0 | 3)), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("l (dx):"), "{text}");
    assert!(text.contains("t (dx, equal distance):"), "{text}");
    let mut starts = std::collections::BTreeSet::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.ends_with(':') {
            continue; // the class-size histogram and its heading
        }
        let (label, rest) = line.split_once(':').unwrap_or_else(|| panic!("{line}"));
        starts.insert(width(label) + 1 + rest.len() - rest.trim_start().len());
    }
    assert_eq!(starts.len(), 1, "{text}");
}

#[test]
fn log_levels_come_from_cloakline_log_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("examples/customers.csv");
    let policy = root().join("policies/customers.yaml");
    let ring = demo_keyring();
    let apply = |name: &str, env: Option<&str>, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![];
        args.extend_from_slice(extra);
        args.extend(apply_args(
            s(&input),
            s(&out),
            &["--policy", s(&policy), "--keyring", s(&ring)],
        ));
        let mut c = bin();
        c.env_remove("CLOAKLINE_LOG").env_remove("RUST_LOG");
        if let Some(v) = env {
            c.env("CLOAKLINE_LOG", v);
        }
        let o = c.args(&args).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let quiet_default = apply("a.parquet", None, &[]);
    assert!(!quiet_default.contains(" DEBUG ") && !quiet_default.contains(" INFO "));
    assert!(quiet_default.contains("wrote "), "{quiet_default}");
    let debug = apply("b.parquet", Some("debug"), &[]);
    assert!(debug.contains(" DEBUG "), "{debug}");
    assert!(debug.contains("cloakline::jobs::apply"), "{debug}");
    // Per target: the jobs at info, the rest at warn.
    let jobs = apply("c.parquet", Some("cloakline::jobs=info,warn"), &[]);
    assert!(
        jobs.contains(" INFO ") && !jobs.contains(" DEBUG "),
        "{jobs}"
    );
    assert!(jobs.contains("commit"), "{jobs}");
    let verbose = apply("d.parquet", None, &["-v"]);
    assert!(
        verbose.contains(" INFO ") && !verbose.contains(" DEBUG "),
        "{verbose}"
    );
    assert!(apply("e.parquet", None, &["-vv"]).contains(" DEBUG "));
    // Never a data value: the example's emails do not appear at the most verbose level.
    let trace = apply("f.parquet", Some("trace"), &[]);
    assert!(!trace.contains("@example"), "{trace}");
    // An unreadable CLOAKLINE_LOG is a usage error.
    let o = bin()
        .env("CLOAKLINE_LOG", "jobs=loud")
        .args(["sql", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("CLOAKLINE_LOG"), "{}", stderr(&o));
}

#[test]
fn quiet_leaves_only_errors_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("examples/customers.csv");
    let policy = root().join("policies/customers.yaml");
    let ring = demo_keyring();
    let out = dir.path().join("o.parquet");
    let mut args = vec!["-q"];
    args.extend(apply_args(
        s(&input),
        s(&out),
        &["--policy", s(&policy), "--keyring", s(&ring)],
    ));
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // Without -q: the demo-key warning and the summary.
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(out.exists());
    // Errors still show.
    let o = run(&[
        "--quiet",
        "scan",
        "--input",
        s(&dir.path().join("nope.csv")),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    // -q and -v contradict each other.
    assert_eq!(run(&["-q", "-v", "sql", "SELECT 1"]).status.code(), Some(2));
}

#[test]
fn environment_variables_set_common_flags() {
    let dir = tempfile::tempdir().unwrap();
    let input = root().join("examples/customers.csv");
    let policy = root().join("policies/customers.yaml");
    let ring = demo_keyring();
    // The policy from CLOAKLINE_POLICY, the output format from CLOAKLINE_OUTPUT_FORMAT.
    let out = dir.path().join("o.data");
    let o = bin()
        .env("CLOAKLINE_POLICY", &policy)
        .env("CLOAKLINE_KEYRING", &ring)
        .env("CLOAKLINE_OUTPUT_FORMAT", "csv")
        .args(["apply", "--input", s(&input), "--output", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("customer_id"),
        "{}",
        &text[..text.len().min(80)]
    );
    // A value from the environment is checked like the flag.
    for (var, value, flag) in [
        ("CLOAKLINE_ZSTD_LEVEL", "0", "--zstd-level"),
        ("CLOAKLINE_THREADS", "0", "--threads"),
    ] {
        let o = bin()
            .env(var, value)
            .env("CLOAKLINE_POLICY", &policy)
            .env("CLOAKLINE_KEYRING", &ring)
            .args([
                "apply",
                "--input",
                s(&input),
                "--output",
                s(&dir.path().join("p.parquet")),
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{var}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
    }
    // --help names the variables.
    let help = stdout(&run(&["apply", "--help"]));
    for var in [
        "CLOAKLINE_POLICY",
        "CLOAKLINE_THREADS",
        "CLOAKLINE_ZSTD_LEVEL",
    ] {
        assert!(help.contains(var), "{var}: {help}");
    }
}

/// The progress total of a Parquet input comes from its footer's row count.
#[test]
fn progress_knows_the_rows_of_a_parquet_input() {
    use std::sync::{Arc, Mutex};
    #[derive(Default)]
    struct Seen(Mutex<Vec<Option<u64>>>);
    impl cloakline::engine::Progress for Seen {
        fn start(&self, total_rows: Option<u64>) {
            self.0.lock().unwrap().push(total_rows);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.parquet");
    let o = run(&apply_args(
        s(&root().join("examples/customers.csv")),
        s(&first),
        &[
            "--policy",
            s(&root().join("policies/customers-keep.yaml")),
            "--keyring",
            s(&demo_keyring()),
        ],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let policy =
        cloakline::policy::Policy::load(&root().join("policies/customers-keep.yaml")).unwrap();
    let ring = cloakline::keys::Keyring::load(&demo_keyring()).unwrap();
    let seen = Arc::new(Seen::default());
    let summary = super::util::block_on(
        cloakline::jobs::apply::Apply::new(policy, ring, &first, dir.path().join("b.parquet"))
            .with_progress(seen.clone())
            .run(),
    )
    .unwrap();
    assert_eq!(*seen.0.lock().unwrap(), [Some(summary.rows_in)]);
}

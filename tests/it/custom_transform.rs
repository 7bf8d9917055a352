//! A transform added from outside the crate: `reverse_string`, one type and one `register`
//! call, then usable from a policy, SQL, the policy view, provenance, the report, OpenLineage
//! and `cloakline schema` — all in this process, through the library.

use std::sync::{Arc, Once};

use arrow::array::{Array, ArrayRef, AsArray, StringArray, StringBuilder};
use arrow::datatypes::DataType;
use cloakline::Problem;
use cloakline::kernels::KernelError;
use cloakline::kernels::custom::{CustomKernel, CustomTransform, Param, ParamType, Params};
use cloakline::kernels::descriptor::Transform;
use cloakline::keys::Keyring;
use cloakline::policy::Policy;
use unicode_segmentation::UnicodeSegmentation;

use super::util::{block_on, demo_keyring, root};

/// Reverses text by grapheme cluster; `keep_last` characters stay at the end unreversed.
#[derive(Debug)]
struct ReverseString;

const REVERSE_STRING: Transform = Transform::new("reverse_string")
    .with_flags(true, true, true)
    .with_status(
        "reversed personal data",
        "Characters in reverse order: trivially restored, still personal data.",
    )
    .with_sql("reverse_string");

const PARAMS: &[Param] = &[Param::new(
    "keep_last",
    ParamType::Integer,
    "characters left in place at the end",
)];

impl CustomTransform for ReverseString {
    fn descriptor(&self) -> &'static Transform {
        &REVERSE_STRING
    }
    fn parameters(&self) -> &'static [Param] {
        PARAMS
    }
    fn output_type(&self, input: &DataType) -> Result<DataType, Problem> {
        match input {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(DataType::Utf8),
            DataType::Dictionary(_, v) if self.output_type(v).is_ok() => Ok(DataType::Utf8),
            _ => Err("use a string column".into()),
        }
    }
    fn kernel(&self, params: &Params, _input: &DataType) -> Result<Box<dyn CustomKernel>, Problem> {
        let keep_last = match params.get("keep_last").and_then(|v| v.as_u64()) {
            Some(n) => n as usize,
            None if params.contains_key("keep_last") => {
                return Err("keep_last must be 0 or more".into());
            }
            None => 0,
        };
        Ok(Box::new(Reverse { keep_last }))
    }
}

#[derive(Debug)]
struct Reverse {
    keep_last: usize,
}

impl CustomKernel for Reverse {
    fn apply(&self, input: &ArrayRef) -> Result<ArrayRef, KernelError> {
        // Views, large strings and dictionaries all become plain strings first.
        let text = arrow::compute::cast(input, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(text.len(), text.value_data().len());
        for v in text.iter() {
            match v {
                None => out.append_null(),
                Some(s) => {
                    let g: Vec<&str> = s.graphemes(true).collect();
                    let split = g.len().saturating_sub(self.keep_last);
                    let mut r: String = g[..split].iter().rev().copied().collect();
                    r.extend(g[split..].iter().copied());
                    out.append_value(r);
                }
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

/// The one registry line (once per test process).
fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| cloakline::kernels::custom::register(ReverseString).unwrap());
}

const POLICY: &str = "policy: rev\nversion: 1\ncontroller: Example Co.\njurisdictions: [EU]\n\
    purpose: testing a registered transform\nfields:\n  id: { action: keep, basis: contract }\n  \
    name: { action: reverse_string, params: { keep_last: 1 }, basis: contract, category: name }\n";

fn write_input(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("people.csv");
    std::fs::write(&p, "id,name\n1,Zoë\n2,\n3,田中太郎\n4,abc\n").unwrap();
    p
}

#[test]
fn the_kernel_handles_nulls_empty_unicode_and_slices() {
    let a: ArrayRef = Arc::new(StringArray::from(vec![
        Some("héllo"),
        None,
        Some(""),
        Some("e\u{301}x"),
    ]));
    let r = Reverse { keep_last: 0 }.apply(&a.slice(0, 4)).unwrap();
    let r = r.as_string::<i32>();
    assert_eq!(r.value(0), "olléh");
    assert!(r.is_null(1));
    assert_eq!(r.value(2), "");
    assert_eq!(
        r.value(3),
        "xe\u{301}",
        "a combining accent stays on its letter"
    );
    let sliced = Reverse { keep_last: 0 }.apply(&a.slice(3, 1)).unwrap();
    assert_eq!(sliced.as_string::<i32>().value(0), "xe\u{301}");
}

#[test]
fn a_registered_transform_reaches_policy_sql_view_provenance_report_and_lineage() {
    register();
    // A name cannot be registered twice, nor shadow a built-in one.
    assert!(cloakline::kernels::custom::register(ReverseString).is_err());

    // Schema: the action and its parameters.
    let schema = cloakline::policy::json_schema().to_string();
    assert!(schema.contains("reverse_string") && schema.contains("params_reverse_string"));
    assert!(schema.contains("keep_last"));

    // Policy: loads; an undeclared parameter is refused with its name.
    let policy = Policy::from_yaml_str(POLICY, "rev.yaml").unwrap();
    let bad = POLICY.replace("keep_last: 1", "keep_first: 1");
    let e = Policy::from_yaml_str(&bad, "rev.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`keep_first` is not a parameter of `reverse_string`"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let keyring = Keyring::load(&demo_keyring()).unwrap();

    // SQL: the function, and the policy view.
    let table: cloakline::sql::TableArg = format!("people={}", input.display()).parse().unwrap();
    let job = cloakline::jobs::sql::SqlJob::new(
        "SELECT reverse_string(name) AS r, reverse_string(name, '{\"keep_last\": 2}') AS r2 FROM people ORDER BY id",
    )
    .with_table(table.clone());
    let rows = match block_on(job.run()).unwrap() {
        cloakline::jobs::sql::QueryOutcome::Rows(b) => b,
        _ => unreachable!(),
    };
    let r = rows[0].column(0).as_string::<i32>();
    assert_eq!(r.value(0), "ëoZ");
    assert!(r.is_null(1));
    assert_eq!(r.value(2), "郎太中田");
    assert_eq!(rows[0].column(1).as_string::<i32>().value(3), "abc");
    let view = cloakline::jobs::sql::SqlJob::new("SELECT name FROM people_shared ORDER BY id")
        .with_table(table)
        .with_policy(Some(Arc::new(policy.clone())));
    let rows = match block_on(view.run()).unwrap() {
        cloakline::jobs::sql::QueryOutcome::Rows(b) => b,
        _ => unreachable!(),
    };
    assert_eq!(rows[0].column(0).as_string::<i32>().value(3), "bac");

    // Apply: output, provenance, OpenLineage.
    let out = dir.path().join("out.parquet");
    let lineage = dir.path().join("lineage.json");
    block_on(
        cloakline::jobs::apply::Apply::new(policy, keyring, &input, &out)
            .with_openlineage(Some(lineage.clone()), "test")
            .run(),
    )
    .unwrap();
    let side = dir.path().join("out.parquet.provenance.json");
    let rec = cloakline::jobs::report::load_record(&side).unwrap();
    let field = rec.output_fields().find(|f| f.column == "name").unwrap();
    assert_eq!(field.action, "reverse_string");
    assert_eq!(field.status, "reversed personal data");
    assert_eq!(field.params.get("keepLast"), Some(&serde_json::json!(1)));
    let report = cloakline::jobs::report::render_markdown(&rec);
    assert!(
        report.contains("reverse_string") || report.contains("reverse string"),
        "{report}"
    );
    assert!(report.contains("reversed personal data"), "{report}");
    let event = std::fs::read_to_string(&lineage).unwrap();
    assert!(event.contains("reverse_string"), "{event}");
    // The output verifies like any other.
    let v = cloakline::jobs::verify::verify(&out, None, None, None, &Default::default()).unwrap();
    assert!(v.passed(), "{}", v.to_text());
    let _ = root();
}

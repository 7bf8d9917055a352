//! `shift_date` and `noise`: keyed by another column, through `apply` and a policy view.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema};
use cloakline::keys::Keyring;
use cloakline::policy::Policy;

use crate::util::*;

const POLICY: &str = "fields:
  patient: { action: tokenize, key: k1, basis: contract }
  admitted: { action: shift_date, key: k1, keyed_by: patient, max_days: 30, basis: contract, type: date }
  discharged: { action: shift_date, key: k1, keyed_by: patient, max_days: 30, basis: contract, type: date }
  income: { action: noise, key: k1, keyed_by: patient, scale: 100, basis: contract, type: float64 }
";

fn batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("patient", DataType::Utf8, true),
        Field::new("admitted", DataType::Date32, true),
        Field::new("discharged", DataType::Date32, true),
        Field::new("income", DataType::Float64, true),
    ]));
    let patient: ArrayRef = Arc::new(StringArray::from(vec![
        Some("p1"),
        Some("p1"),
        Some("p2"),
        None,
    ]));
    let admitted: ArrayRef = Arc::new(Date32Array::from(vec![
        Some(19000),
        Some(19100),
        Some(19000),
        Some(19000),
    ]));
    let discharged: ArrayRef = Arc::new(Date32Array::from(vec![
        Some(19005),
        Some(19130),
        None,
        Some(19001),
    ]));
    let income: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(1000.0),
        Some(2000.0),
        Some(3000.0),
        Some(4000.0),
    ]));
    RecordBatch::try_new(schema, vec![patient, admitted, discharged, income]).unwrap()
}

fn policy() -> Policy {
    Policy::from_yaml_str(&format!("{HEAD}{POLICY}"), "p.yaml").unwrap()
}

#[test]
fn one_shift_per_subject_intervals_kept_and_the_policy_view_agrees() {
    let ring = Keyring::generate_in_memory(&["k1"]);
    let b = batch();
    let plan = cloakline::plan::Plan::new(&policy(), b.schema(), &ring, "memory").unwrap();
    let (out, _) = cloakline::engine::transform_batch(&plan, &b).unwrap();
    let a = out
        .column_by_name("admitted")
        .unwrap()
        .as_primitive::<Date32Type>()
        .clone();
    let d = out
        .column_by_name("discharged")
        .unwrap()
        .as_primitive::<Date32Type>()
        .clone();
    // Same patient, same shift: every interval within a patient survives.
    assert_eq!(d.value(0) - a.value(0), 5);
    assert_eq!(a.value(1) - a.value(0), 100);
    assert_eq!(d.value(1) - a.value(1), 30);
    let shift = a.value(0) - 19000;
    assert!(shift != 0 && shift.abs() <= 30, "{shift}");
    assert!(d.is_null(2), "null stays null");
    assert!(
        a.is_null(3) && d.is_null(3),
        "no subject: nothing to key on, null"
    );
    let inc = out
        .column_by_name("income")
        .unwrap()
        .as_primitive::<Float64Type>()
        .clone();
    assert!(inc.value(0) != 1000.0 && inc.is_null(3));

    // The policy view computes the same columns with the same kernels (two-argument calls).
    let view = block_on(async {
        let ctx = datafusion::prelude::SessionContext::new();
        let t =
            datafusion::datasource::MemTable::try_new(b.schema(), vec![vec![b.clone()]]).unwrap();
        ctx.register_table("visits", Arc::new(t)).unwrap();
        cloakline::sql::register_policy_view(&ctx, "visits", &policy(), &ring, "visits_shared")
            .await
            .unwrap();
        ctx.sql("SELECT * FROM visits_shared")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
    });
    for name in ["patient", "admitted", "discharged", "income"] {
        assert_eq!(
            view[0].column_by_name(name).unwrap().as_ref(),
            out.column_by_name(name).unwrap().as_ref(),
            "{name}"
        );
    }
}

#[test]
fn apply_records_the_parameters_and_refuses_mistakes() {
    let data = "patient,admitted,discharged,income\np1,2024-01-10,2024-01-15,1000\np2,2024-02-01,2024-02-03,2000\n";
    let (o, out, _dir) = apply_in_tempdir(&format!("{HEAD}{POLICY}"), "v.csv", data.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let side = std::fs::read_to_string(format!("{}.provenance.json", out.display())).unwrap();
    assert!(
        side.contains("date-shifted personal data") && side.contains("\"maxDays\": 30"),
        "{side}"
    );
    assert!(
        side.contains("perturbed personal data") && side.contains("\"keyedBy\": \"patient\""),
        "{side}"
    );

    for (rule, want) in [
        (
            "admitted: { action: shift_date, key: k1, keyed_by: nobody, max_days: 30, basis: contract, type: date }",
            "`keyed_by` names \"nobody\"",
        ),
        (
            "admitted: { action: shift_date, key: k1, keyed_by: patient, basis: contract, type: date }",
            "needs `max_days`",
        ),
        (
            "admitted: { action: shift_date, key: k1, keyed_by: admitted, max_days: 3, basis: contract, type: date }",
            "names the field itself",
        ),
        (
            "income: { action: noise, key: k1, keyed_by: patient, scale: -2, basis: contract, type: float64 }",
            "positive",
        ),
        (
            "patient: { action: shift_date, key: k1, keyed_by: income, max_days: 3, basis: contract }",
            "shift_date accepts dates",
        ),
    ] {
        let field = rule.split(':').next().unwrap();
        let body = POLICY
            .lines()
            .map(|l| {
                if l.trim_start().starts_with(&format!("{field}:")) {
                    format!("  {rule}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let (o, out, _dir) = apply_in_tempdir(&format!("{HEAD}{body}\n"), "v.csv", data.as_bytes());
        assert_eq!(o.status.code(), Some(2), "{rule}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{rule}: {}", stderr(&o));
        assert!(!out.exists());
    }
}

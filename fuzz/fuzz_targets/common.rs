//! Shared by the fuzz targets: a scratch directory, a fixed keyring, sample arrays.
//! A target treats every `Err` as fine: only a panic or an abort is a finding.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::*;
use cloakline::keys::Keyring;
use cloakline::plan::Kernel;
use cloakline::policy::Policy;

pub const DEMO_KEYRING: &str = include_str!("../../examples/demo-keyring.json");

/// ARX hierarchies the example policies name, laid out as `policies/` has them.
const HIERARCHIES: &[(&str, &str)] = &[
    (
        "adult/adult_hierarchy_age.csv",
        include_str!("../../policies/adult/adult_hierarchy_age.csv"),
    ),
    (
        "adult/adult_hierarchy_sex.csv",
        include_str!("../../policies/adult/adult_hierarchy_sex.csv"),
    ),
    (
        "adult/adult_hierarchy_race.csv",
        include_str!("../../policies/adult/adult_hierarchy_race.csv"),
    ),
    (
        "adult/adult_hierarchy_education.csv",
        include_str!("../../policies/adult/adult_hierarchy_education.csv"),
    ),
    (
        "adult/adult_hierarchy_marital-status.csv",
        include_str!("../../policies/adult/adult_hierarchy_marital-status.csv"),
    ),
    (
        "adult/adult_hierarchy_native-country.csv",
        include_str!("../../policies/adult/adult_hierarchy_native-country.csv"),
    ),
    (
        "adult/adult_hierarchy_occupation.csv",
        include_str!("../../policies/adult/adult_hierarchy_occupation.csv"),
    ),
    (
        "adult/adult_hierarchy_workclass.csv",
        include_str!("../../policies/adult/adult_hierarchy_workclass.csv"),
    ),
    (
        "adult/adult_hierarchy_salary-class.csv",
        include_str!("../../policies/adult/adult_hierarchy_salary-class.csv"),
    ),
];

/// A per-process scratch directory holding the demo keyring and the example hierarchies.
/// (libFuzzer exits without running destructors: fuzz/run.sh points TMPDIR at a directory
/// it removes afterwards.)
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("cloakline-fuzz-")
            .tempdir()
            .expect("scratch dir")
            .keep();
        std::fs::write(dir.join("keyring.json"), DEMO_KEYRING).expect("keyring");
        for (name, text) in HIERARCHIES {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("hierarchy");
        }
        dir
    })
}

/// The demo keyring (fixed keys, so crashes reproduce).
pub fn keyring() -> &'static Arc<Keyring> {
    static RING: OnceLock<Arc<Keyring>> = OnceLock::new();
    RING.get_or_init(|| {
        Arc::new(Keyring::load(&scratch().join("keyring.json")).expect("demo keyring"))
    })
}

/// Run a job's future on one runtime per process (the library starts none).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime")
    })
    .block_on(f)
}

/// One small array of each input type the kernels meet, with edge values and nulls.
pub fn sample_arrays() -> &'static [ArrayRef] {
    static ARRAYS: OnceLock<Vec<ArrayRef>> = OnceLock::new();
    ARRAYS.get_or_init(|| {
        let strings = vec![
            Some("alice@example.com"),
            None,
            Some(""),
            Some("Zoë 🚀 身份证 e\u{301} 🇨🇳"),
            Some("+86 138 0013 8000 110101199003074518 a\r\nb"),
            Some("x"),
        ];
        let dec = Decimal128Array::from(vec![Some(123_456), None, Some(-99_999_999_999), Some(0)])
            .with_precision_and_scale(12, 2)
            .expect("decimal");
        vec![
            Arc::new(StringArray::from(strings.clone())),
            Arc::new(LargeStringArray::from(strings.clone())),
            Arc::new(StringViewArray::from(strings)),
            Arc::new(Int64Array::from(vec![
                Some(42),
                None,
                Some(i64::MIN),
                Some(i64::MAX),
                Some(-1),
                Some(0),
            ])),
            Arc::new(Int32Array::from(vec![Some(30), Some(i32::MIN), None])),
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0)])),
            Arc::new(Float64Array::from(vec![
                Some(0.3),
                None,
                Some(f64::NAN),
                Some(f64::INFINITY),
                Some(-0.0),
                Some(1e308),
                Some(-5e-324),
            ])),
            Arc::new(dec),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Date32Array::from(vec![
                Some(6391),
                None,
                Some(-719_162),
                Some(2_932_896),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_000_000),
                None,
                Some(-62_135_596_800_000_000),
            ])),
            Arc::new(
                TimestampSecondArray::from(vec![Some(0), Some(1_700_000_000)])
                    .with_timezone("Asia/Shanghai"),
            ),
        ]
    })
}

/// Build every field's kernel against each sample type it accepts and run it.
pub fn exercise_kernels(policy: &Policy) {
    for field in policy.fields.values() {
        for arr in sample_arrays() {
            if let Ok((kernel, out_type)) = Kernel::build(&field.action, arr.data_type(), keyring())
                && let Ok(out) = kernel.apply(arr)
            {
                assert_eq!(out.len(), arr.len(), "kernel changed the row count");
                assert_eq!(
                    out.data_type(),
                    &out_type,
                    "kernel output type differs from plan"
                );
            }
        }
    }
}

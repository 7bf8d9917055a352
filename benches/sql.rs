//! Each SQL function against its kernel called directly, on 1,000,000 values (`Utf8View` strings,
//! as DataFusion reads Parquet). The UDF path should cost at most ~10% more.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringViewArray};
use arrow::datatypes::{DataType, Field};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};

use cloakline::kernels::{Decryptor, Encryptor, Generalizer, Masker, Redactor, Tokenizer};
use cloakline::keys::Keyring;
use cloakline::policy::{GeneralizeSpec, LabelStyle, NumberBins};

const N: usize = 1_000_000;

fn invoke(
    udf: &ScalarUDF,
    value: &ArrayRef,
    name: &str,
    consts: &[ScalarValue],
    out: DataType,
) -> ColumnarValue {
    let mut args = vec![ColumnarValue::Array(Arc::clone(value))];
    let mut fields = vec![Arc::new(Field::new(name, value.data_type().clone(), true))];
    for c in consts {
        args.push(ColumnarValue::Scalar(c.clone()));
        fields.push(Arc::new(Field::new("c", c.data_type(), true)));
    }
    udf.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields: fields,
        number_rows: value.len(),
        return_field: Arc::new(Field::new("out", out, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let ring = Arc::new(Keyring::generate_in_memory(&["k1"]));
    let udfs = cloakline::sql::functions(Arc::clone(&ring));
    let udf = |n: &str| udfs.iter().find(|u| u.name() == n).unwrap().clone();
    let emails: ArrayRef = Arc::new(StringViewArray::from_iter_values(
        (0..N).map(|i| format!("user{i}@example.com")),
    ));
    let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..N as i64).map(|i| i * 7919 % 250_000),
    ));
    let key = ring.get("k1").unwrap();

    let mut g = c.benchmark_group("sql_vs_kernel");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);

    let tok = Tokenizer::new(key, "email", 32, "").unwrap();
    let t_udf = udf("tokenize");
    g.bench_function("tokenize/kernel", |b| {
        b.iter(|| tok.apply(&emails).unwrap())
    });
    g.bench_function("tokenize/udf", |b| {
        b.iter(|| {
            invoke(
                &t_udf,
                &emails,
                "email",
                &[ScalarValue::from("k1")],
                DataType::Utf8,
            )
        })
    });

    let enc = Encryptor::new(key, "email").unwrap();
    let e_udf = udf("encrypt");
    g.bench_function("encrypt/kernel", |b| b.iter(|| enc.apply(&emails).unwrap()));
    g.bench_function("encrypt/udf", |b| {
        b.iter(|| {
            invoke(
                &e_udf,
                &emails,
                "email",
                &[ScalarValue::from("k1")],
                DataType::Utf8,
            )
        })
    });

    // decrypt: envelopes made once, outside the timing.
    let sealed = enc.apply(&emails).unwrap();
    let sealed_view: ArrayRef = arrow::compute::cast(&sealed, &DataType::Utf8View).unwrap();
    let d_udf = udf("decrypt");
    g.bench_function("decrypt/kernel", |b| {
        b.iter(|| Decryptor::new(&ring, "email").apply(&sealed_view).unwrap())
    });
    g.bench_function("decrypt/udf", |b| {
        b.iter(|| invoke(&d_udf, &sealed_view, "email", &[], DataType::Utf8))
    });

    let red = Redactor::new(&DataType::Utf8View, Some("x")).unwrap();
    let r_udf = udf("redact");
    g.bench_function("redact/kernel", |b| b.iter(|| red.apply(&emails).unwrap()));
    g.bench_function("redact/udf", |b| {
        b.iter(|| {
            invoke(
                &r_udf,
                &emails,
                "email",
                &[ScalarValue::from("x")],
                DataType::Utf8View,
            )
        })
    });

    let m = Masker::new(0, 4, '*');
    let m_udf = udf("mask");
    g.bench_function("mask/kernel", |b| b.iter(|| m.apply(&emails).unwrap()));
    g.bench_function("mask/udf", |b| {
        b.iter(|| {
            invoke(
                &m_udf,
                &emails,
                "email",
                &[ScalarValue::Int64(Some(0)), ScalarValue::Int64(Some(4))],
                DataType::Utf8,
            )
        })
    });

    let spec = GeneralizeSpec::Number(NumberBins {
        bin_width: Some(10000.0),
        breaks: None,
        top: None,
        bottom: None,
        label: LabelStyle::Range,
    });
    let gen_k = Generalizer::new(&spec, &DataType::Int64).unwrap();
    let g_udf = udf("generalize");
    g.bench_function("generalize/kernel", |b| {
        b.iter(|| gen_k.apply(&ints).unwrap())
    });
    g.bench_function("generalize/udf", |b| {
        b.iter(|| {
            invoke(
                &g_udf,
                &ints,
                "income",
                &[ScalarValue::from("bin:10000")],
                DataType::Utf8,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

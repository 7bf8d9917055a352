//! Generate a synthetic customers table (CSV or Parquet) for demos and benchmarks.
//!
//! ```text
//! cargo run --release --example generate -- 1000000 /tmp/customers.parquet
//! ```
//!
//! Deterministic (fixed seed): the same row count gives the same file.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const GIVEN: &[&str] = &[
    "Alice",
    "Bob",
    "Chloé",
    "Dmitri",
    "Emma",
    "François",
    "Grace",
    "Hiroshi",
    "Ingrid",
    "José",
    "Zoë",
    "Liam",
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
];
const FAMILY: &[&str] = &[
    "Smith", "Müller", "García", "Rossi", "Dubois", "Nowak", "Jensen", "O'Brien", "王", "李", "张",
    "刘", "陈", "杨",
];
const CITIES: &[&str] = &[
    "Berlin",
    "Paris",
    "Madrid",
    "Roma",
    "Kraków",
    "København",
    "Dublin",
    "北京",
    "上海",
    "深圳",
    "成都",
    "杭州",
];
const DOMAINS: &[&str] = &["example.com", "mail.example.org", "例子.中国", "example.de"];
const NOTES: &[&str] = &[
    "prefers email contact",
    "asked about delivery times; call back next week",
    "VIP since 2019",
    "客户要求开具发票",
    "moved recently, address to confirm",
    "",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if !(3..=4).contains(&args.len()) {
        eprintln!("usage: generate ROWS OUTPUT.(csv|parquet) [ROWS_PER_ROW_GROUP]");
        std::process::exit(2);
    }
    let rows: usize = args[1].parse()?;
    // Parquet's default is 1,048,576 rows per row group (pyarrow's too); DuckDB writes
    // 122,880, Polars 262,144.
    let group: usize = match args.get(3) {
        Some(g) => g.parse()?,
        None => parquet::file::properties::DEFAULT_MAX_ROW_GROUP_ROW_COUNT,
    };
    let out = std::path::PathBuf::from(&args[2]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("full_name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("national_id", DataType::Utf8, true),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("zip", DataType::Utf8, true),
        Field::new("city", DataType::Utf8, true),
        Field::new("income", DataType::Int64, true),
        Field::new(
            "signup_ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("notes", DataType::Utf8, true),
    ]));
    let file = std::fs::File::create(&out)?;
    let is_csv = out.extension().and_then(|e| e.to_str()) == Some("csv");
    let mut csv = is_csv.then(|| {
        arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(std::io::BufWriter::new(file.try_clone().unwrap()))
    });
    let mut pq = if is_csv {
        None
    } else {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .set_max_row_group_row_count(Some(group))
            .build();
        Some(parquet::arrow::ArrowWriter::try_new(
            file,
            schema.clone(),
            Some(props),
        )?)
    };
    let mut rng = StdRng::seed_from_u64(20261123);
    let batch = 65536;
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        let mut id = Int64Builder::with_capacity(n);
        let mut name = StringBuilder::new();
        let mut email = StringBuilder::new();
        let mut phone = StringBuilder::new();
        let mut nid = StringBuilder::new();
        let mut birth = Date32Builder::with_capacity(n);
        let mut zip = StringBuilder::new();
        let mut city = StringBuilder::new();
        let mut income = Int64Builder::with_capacity(n);
        let mut ts = TimestampMicrosecondBuilder::with_capacity(n);
        let mut notes = StringBuilder::new();
        for i in 0..n {
            let row = done + i;
            id.append_value(100_000 + row as i64);
            let g = GIVEN[rng.random_range(0..GIVEN.len())];
            let f = FAMILY[rng.random_range(0..FAMILY.len())];
            name.append_value(format!("{g} {f}"));
            if rng.random_bool(0.03) {
                email.append_null();
            } else {
                let d = DOMAINS[rng.random_range(0..DOMAINS.len())];
                email.append_value(format!("user{row}@{d}"));
            }
            if rng.random_bool(0.5) {
                phone.append_value(format!(
                    "+86 1{:02} {:04} {:04}",
                    rng.random_range(30..99),
                    rng.random_range(0..10000),
                    rng.random_range(0..10000)
                ));
            } else {
                phone.append_value(format!("+49 30 {:08}", rng.random_range(0..100_000_000)));
            }
            let days: i32 = rng.random_range(-15000..12000); // 1929..2002
            birth.append_value(days);
            nid.append_value(china_id(&mut rng, days));
            zip.append_value(format!("{:05}", rng.random_range(0..100_000)));
            city.append_value(CITIES[rng.random_range(0..CITIES.len())]);
            if rng.random_bool(0.05) {
                income.append_null();
            } else {
                income.append_value(rng.random_range(0..250_000));
            }
            ts.append_value(1_546_300_800_000_000 + rng.random_range(0..180_000_000_000_000i64));
            notes.append_value(NOTES[rng.random_range(0..NOTES.len())]);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            Arc::new(email.finish()),
            Arc::new(phone.finish()),
            Arc::new(nid.finish()),
            Arc::new(birth.finish()),
            Arc::new(zip.finish()),
            Arc::new(city.finish()),
            Arc::new(income.finish()),
            Arc::new(ts.finish()),
            Arc::new(notes.finish()),
        ];
        let b = RecordBatch::try_new(schema.clone(), cols)?;
        if let Some(w) = csv.as_mut() {
            w.write(&b)?;
        }
        if let Some(w) = pq.as_mut() {
            w.write(&b)?;
        }
        done += n;
    }
    if let Some(w) = pq {
        w.close()?;
    }
    eprintln!("wrote {rows} rows to {}", out.display());
    Ok(())
}

/// An 18-character mainland China resident identity number with a valid check character.
fn china_id(rng: &mut StdRng, days_since_epoch: i32) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
        + chrono::Duration::days(days_since_epoch as i64);
    let body = format!(
        "{:06}{}{:03}",
        rng.random_range(110000..660000),
        date.format("%Y%m%d"),
        rng.random_range(0..1000)
    );
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| (b - b'0') as u32 * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

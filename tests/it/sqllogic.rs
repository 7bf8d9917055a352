//! Runs the `.slt` files under `tests/slt/` against a DataFusion context with the cloakline
//! functions registered. Keys: `k1` = bytes 0x00..0x1f (the docs/FORMATS.md test-vector key),
//! `k2` = 32 bytes of 0x42.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cloakline::keys::{Key, Keyring};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

pub struct Db {
    ctx: SessionContext,
}

pub fn test_keyring() -> Keyring {
    let mut m = [0u8; 32];
    for (i, b) in m.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut ring = Keyring::default();
    ring.insert(Key::from_bytes("k1", m).unwrap()).unwrap();
    ring.insert(Key::from_bytes("k2", [0x42; 32]).unwrap())
        .unwrap();
    ring
}

fn cell(a: &dyn Array, i: usize) -> String {
    if a.is_null(i) {
        return "NULL".into();
    }
    let opts = FormatOptions::default();
    let s = ArrayFormatter::try_new(a, &opts)
        .map(|f| f.value(i).to_string())
        .unwrap_or_else(|e| format!("<{e}>"));
    if s.is_empty() { "(empty)".into() } else { s }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        DefaultColumnType::Text
    } else {
        DefaultColumnType::Any
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let df = self.ctx.sql(sql).await?;
        let schema = df.schema().as_arrow().clone();
        let batches: Vec<RecordBatch> = df.collect().await?;
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let mut rows = Vec::new();
        for b in &batches {
            for i in 0..b.num_rows() {
                rows.push(b.columns().iter().map(|c| cell(c.as_ref(), i)).collect());
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion+cloakline"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let ring = Arc::new(test_keyring());
    for f in files {
        let ring = Arc::clone(&ring);
        let mut runner = sqllogictest::Runner::new(move || {
            let ring = Arc::clone(&ring);
            async move {
                let ctx = SessionContext::new();
                cloakline::sql::register(&ctx, ring);
                Ok::<_, DataFusionError>(Db { ctx })
            }
        });
        if let Err(e) = runner.run_file_async(&f).await {
            panic!("{}: {e}", f.display());
        }
    }
}

//! Query a Parquet file with cloakline's SQL functions.
//!
//! ```text
//! cargo run --example sql_query                      # uses the bundled example data
//! cargo run --example sql_query -- data.parquet      # any Parquet file with an `email` column
//! ```

use std::sync::Arc;

use cloakline::keys::Keyring;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let keyring = Arc::new(Keyring::load(
        format!("{root}/examples/demo-keyring.json").as_ref(),
    )?);
    let ctx = SessionContext::new();
    cloakline::sql::register(&ctx, Arc::clone(&keyring));

    let parquet = match std::env::args().nth(1) {
        Some(p) => p,
        None => {
            // Turn the bundled CSV into Parquet first (zip stays text).
            let tmp = std::env::temp_dir().join("cloakline-example-customers.parquet");
            ctx.register_csv(
                "raw",
                &format!("{root}/examples/customers.csv"),
                CsvReadOptions::new(),
            )
            .await?;
            ctx.sql(&format!(
                "COPY (SELECT email, phone, birth_date, lpad(CAST(zip AS VARCHAR), 5, '0') AS zip, income FROM raw) TO '{}' STORED AS PARQUET",
                tmp.display()
            ))
            .await?
            .collect()
            .await?;
            tmp.display().to_string()
        }
    };
    ctx.register_parquet("customers", &parquet, ParquetReadOptions::default())
        .await?;
    let df = ctx
        .sql(
            "SELECT tokenize(email, 'k1') AS email_token,
                    mask(phone, 0, 4) AS phone,
                    generalize(birth_date, 'decade') AS born,
                    generalize(zip, 'prefix:3') AS zip3,
                    generalize(income, 'bin:10000') AS income_band
             FROM customers LIMIT 5",
        )
        .await?;
    df.show().await?;
    Ok(())
}

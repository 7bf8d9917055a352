//! `decrypt`: turn encrypted columns of a cloakline output back into their values.
//!
//! Encrypted columns are found through the Arrow field metadata that `apply` writes
//! (`cloakline.action = encrypt`, with the domain and source type), or named explicitly as
//! `NAME` or `NAME=DOMAIN` (needed for CSV, which carries no metadata). Values come back in
//! the column's original type when it is recorded, as strings otherwise.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::io::{AtomicFile, BatchWriter, Format, Input, ReadOptions, WriteOptions};
use crate::kernels::Decryptor;
use crate::keys::Keyring;
use crate::plan::meta;

/// Which columns to decrypt and how.
#[derive(Debug, Clone)]
struct Target {
    index: usize,
    domain: String,
    source_type: Option<DataType>,
}

/// Decrypt `input` into `output` (on Unix readable by its owner only). `columns` are `NAME`
/// or `NAME=DOMAIN`; when empty, every column whose metadata says it was encrypted. Returns
/// the names of the decrypted columns.
pub fn decrypt_file(
    input: &Path,
    output: &Path,
    keyring: &Keyring,
    columns: &[String],
    read: &ReadOptions,
    input_format: Option<Format>,
    output_format: Option<Format>,
) -> Result<Vec<String>> {
    let fmt = format_of(input, input_format, "--input-format")?;
    let out_fmt = format_of(output, output_format, "--output-format")?;
    let src = Input::open(input, fmt, read, &|s: &Schema| Arc::new(s.clone()))?;
    let schema = src.schema.clone();
    let targets = targets(input, &schema, columns)?;
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match targets.get(f.name()) {
            Some(t) => Field::new(
                f.name(),
                t.source_type.clone().unwrap_or(DataType::Utf8),
                true,
            ),
            None => f.as_ref().clone(),
        })
        .collect();
    let out_schema = Arc::new(Schema::new(fields));
    let af = AtomicFile::create(output)?;
    // Plaintext personal data: owner-only before the first byte is written (the rename keeps
    // the mode).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        af.file()?
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(af.temp_path(), e))?;
    }
    let write = WriteOptions {
        format: out_fmt,
        delimiter: read.delimiter,
        ..Default::default()
    };
    let mut writer = BatchWriter::new(af.file()?, out_schema.clone(), &write)?;
    let mut decryptors: HashMap<String, Decryptor> = targets
        .iter()
        .map(|(n, t)| (n.clone(), Decryptor::new(keyring, &t.domain)))
        .collect();
    for batch in src.batches()? {
        let mut arrays: Vec<ArrayRef> = batch?.columns().to_vec();
        for (name, t) in &targets {
            let dec = decryptors
                .get_mut(name)
                .ok_or_else(|| Error::Internal("no decryptor for a target column".into()))?;
            arrays[t.index] = decrypt_column(dec, name, t, &arrays[t.index])?;
        }
        writer.write(&RecordBatch::try_new(out_schema.clone(), arrays)?)?;
    }
    writer.finish(None)?;
    af.commit()?;
    let mut names: Vec<String> = targets.into_keys().collect();
    names.sort();
    Ok(names)
}

/// The format given, else the one the extension names.
fn format_of(path: &Path, given: Option<Format>, flag: &str) -> Result<Format> {
    given.or_else(|| Format::from_path(path)).ok_or_else(|| {
        Error::Usage(format!(
            "cannot tell the format of {}; pass {flag}",
            path.display()
        ))
    })
}

/// The columns to decrypt: those named (`NAME` or `NAME=DOMAIN`), or when none are, every
/// column whose metadata says it was encrypted.
fn targets(input: &Path, schema: &Schema, columns: &[String]) -> Result<HashMap<String, Target>> {
    let mut targets = HashMap::new();
    if columns.is_empty() {
        for (i, f) in schema.fields().iter().enumerate() {
            if f.metadata().get(meta::ACTION).map(String::as_str) == Some("encrypt") {
                targets.insert(f.name().clone(), target_from_meta(i, f));
            }
        }
        if targets.is_empty() {
            return Err(Error::Usage(format!(
                "{} has no column marked as encrypted; name them with --column NAME[=DOMAIN]",
                input.display()
            )));
        }
        return Ok(targets);
    }
    for c in columns {
        let (name, domain) = match c.split_once('=') {
            Some((n, d)) => (n.to_string(), Some(d.to_string())),
            None => (c.clone(), None),
        };
        let (i, f) = schema
            .column_with_name(&name)
            .ok_or_else(|| Error::Usage(format!("{} has no column `{name}`", input.display())))?;
        let mut t = target_from_meta(i, f);
        if let Some(d) = domain {
            t.domain = d;
        }
        targets.insert(name, t);
    }
    Ok(targets)
}

/// One column decrypted and cast back to its recorded type.
fn decrypt_column(
    dec: &mut Decryptor,
    name: &str,
    t: &Target,
    array: &ArrayRef,
) -> Result<ArrayRef> {
    let plain = dec.apply(array).map_err(|e| Error::Transform {
        field: name.to_string(),
        message: e.to_string(),
    })?;
    let Some(dt) = &t.source_type else {
        return Ok(plain);
    };
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    // Arrow's cast error quotes the value: keep only the type.
    cast_with_options(&plain, dt, &options).map_err(|_| Error::Transform {
        field: name.to_string(),
        message: format!("a decrypted value does not parse as {dt} (the value is not shown)"),
    })
}

fn target_from_meta(index: usize, f: &Field) -> Target {
    let m = f.metadata();
    Target {
        index,
        domain: m
            .get(meta::DOMAIN)
            .cloned()
            .or_else(|| m.get(meta::SOURCE).cloned())
            .unwrap_or_else(|| f.name().clone()),
        source_type: m
            .get(meta::SOURCE_TYPE)
            .and_then(|t| t.parse::<DataType>().ok()),
    }
}

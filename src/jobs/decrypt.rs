//! `decrypt`: turn encrypted columns of a cloakline output back into their values.
//!
//! Encrypted columns (`encrypt`, `encrypt_deterministic`, `fpe`) are found through the Arrow
//! field metadata that `apply` writes (`cloakline.action`, with the domain, source type, and
//! for `fpe` the key id and format), or named explicitly as
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
    /// What `apply` recorded (`encrypt` when the file says nothing).
    action: String,
    key_id: Option<String>,
    /// An `fpe` column: its key id and format, from the metadata (FF1 output names no key).
    fpe: Option<crate::kernels::FpeSpec>,
}

/// What opens one column's values.
enum Opener<'k> {
    Envelope(Decryptor<'k>),
    Fpe(Box<crate::kernels::Fpe>),
}

impl Opener<'_> {
    fn apply(
        &mut self,
        array: &ArrayRef,
    ) -> std::result::Result<ArrayRef, crate::kernels::KernelError> {
        match self {
            Opener::Envelope(d) => d.apply(array),
            Opener::Fpe(f) => f.apply_direction(array, true),
        }
    }
}

/// What opens column `name`: its envelopes name their key; an `fpe` column's key and
/// format come from its metadata.
fn opener<'k>(keyring: &'k Keyring, name: &str, t: &Target) -> Result<Opener<'k>> {
    Ok(match &t.fpe {
        None => Opener::Envelope(Decryptor::new(keyring, &t.domain)),
        Some(spec) => {
            let key = keyring.data_key_exact(&spec.key)?;
            let f = crate::kernels::Fpe::new(key, spec).map_err(|e| Error::Transform {
                field: name.to_string(),
                message: e.to_string(),
            })?;
            Opener::Fpe(Box::new(f))
        }
    })
}

/// The actions whose output `decrypt` restores.
pub const REVERSIBLE: &[&str] = &["encrypt", "encrypt_deterministic", "fpe"];

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
    let af = AtomicFile::create(output)?;
    let done = decrypt_into(
        input,
        output,
        &af,
        keyring,
        columns,
        read,
        input_format,
        output_format,
    )?;
    af.commit()?;
    Ok(done.into_iter().map(|c| c.name).collect())
}

/// One restored column: its name, what had been done to it, and how many values came back.
#[derive(Debug, Clone)]
pub struct Restored {
    pub name: String,
    pub action: String,
    pub key_id: Option<String>,
    pub domain: String,
    pub values: u64,
}

/// Decrypt into `af` (not committed), sorted by column name.
#[allow(clippy::too_many_arguments)]
fn decrypt_into(
    input: &Path,
    output: &Path,
    af: &AtomicFile,
    keyring: &Keyring,
    columns: &[String],
    read: &ReadOptions,
    input_format: Option<Format>,
    output_format: Option<Format>,
) -> Result<Vec<Restored>> {
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
    let mut decryptors: HashMap<String, Opener> = HashMap::new();
    for (n, t) in &targets {
        decryptors.insert(n.clone(), opener(keyring, n, t)?);
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    for batch in src.batches()? {
        let mut arrays: Vec<ArrayRef> = batch?.columns().to_vec();
        for (name, t) in &targets {
            let dec = decryptors
                .get_mut(name)
                .ok_or_else(|| Error::Internal("no decryptor for a target column".into()))?;
            arrays[t.index] = decrypt_column(dec, name, t, &arrays[t.index])?;
            let a = &arrays[t.index];
            *counts.entry(name.clone()).or_default() += (a.len() - a.null_count()) as u64;
        }
        writer.write(&RecordBatch::try_new(out_schema.clone(), arrays)?)?;
    }
    writer.finish(None)?;
    let _ = output;
    let mut done: Vec<Restored> = targets
        .into_iter()
        .map(|(name, t)| Restored {
            values: counts.get(&name).copied().unwrap_or(0),
            action: t.action.clone(),
            key_id: t.fpe.as_ref().map(|f| f.key.clone()).or(t.key_id.clone()),
            domain: t.domain.clone(),
            name,
        })
        .collect();
    done.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(done)
}

/// Who asks to re-identify, and why: both are recorded, and both are required.
#[derive(Debug, Clone)]
pub struct RevealRequest {
    pub purpose: String,
    pub requested_by: String,
    /// The append-only, hash-chained log the request is recorded in.
    pub audit_log: std::path::PathBuf,
}

/// What a reveal did: the columns restored and the audit entry written.
#[derive(Debug, Clone)]
pub struct Revealed {
    pub columns: Vec<Restored>,
    pub entry: serde_json::Map<String, serde_json::Value>,
    pub record: std::path::PathBuf,
}

/// `reveal`: decrypt as [`decrypt_file`], only on purpose. Tokenized or scrubbed columns are
/// refused (tokens are one-way). The audit entry (who, why, when, which columns, how many
/// values, the input's and output's SHA-256) is appended to the audit log before the output
/// is committed, and written next to the output as `<output>.reveal.json`: an output never
/// exists without its entry.
#[allow(clippy::too_many_arguments)]
pub fn reveal_file(
    input: &Path,
    output: &Path,
    keyring: &Keyring,
    columns: &[String],
    read: &ReadOptions,
    input_format: Option<Format>,
    output_format: Option<Format>,
    request: &RevealRequest,
) -> Result<Revealed> {
    for (flag, v) in [
        ("--purpose", &request.purpose),
        ("--requested-by", &request.requested_by),
    ] {
        let t = v.trim();
        if t.is_empty() || t.len() > 1000 || t.chars().any(char::is_control) {
            return Err(Error::Usage(format!(
                "{flag} must say it in words: 1 to 1000 characters, no control characters; re-identification is recorded with who asked and why"
            )));
        }
    }
    // Tokens are one-way: say so before anything is read.
    let src = Input::open(
        input,
        format_of(input, input_format, "--input-format")?,
        read,
        &|s: &Schema| Arc::new(s.clone()),
    )?;
    for c in columns {
        let name = c.split_once('=').map(|(n, _)| n).unwrap_or(c);
        if let Some((_, f)) = src.schema.column_with_name(name) {
            let action = f.metadata().get(meta::ACTION).map(String::as_str);
            if let Some(a @ ("tokenize" | "scrub")) = action {
                return Err(Error::Usage(format!(
                    "column `{name}` was {a}d: keyed tokens are one-way (HMAC-SHA256), so no key reverses them. To re-identify a person, tokenize candidate values with the same key and domain and compare; to release reversibly, use encrypt, encrypt_deterministic or fpe"
                )));
            }
        }
    }
    drop(src);
    let af = AtomicFile::create(output)?;
    let done = decrypt_into(
        input,
        output,
        &af,
        keyring,
        columns,
        read,
        input_format,
        output_format,
    )?;
    let input_sha = sha256_file(input)?;
    let output_sha = sha256_file(af.temp_path())?;
    let mut entry = serde_json::Map::new();
    use serde_json::json;
    entry.insert("event".into(), json!("reveal"));
    entry.insert(
        "time".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    entry.insert("requestedBy".into(), json!(request.requested_by.trim()));
    entry.insert("purpose".into(), json!(request.purpose.trim()));
    entry.insert(
        "input".into(),
        json!({ "path": input.display().to_string(), "sha256": input_sha }),
    );
    entry.insert(
        "output".into(),
        json!({ "path": output.display().to_string(), "sha256": output_sha }),
    );
    entry.insert(
        "columns".into(),
        serde_json::Value::Array(
            done.iter()
                .map(|c| {
                    json!({ "name": c.name, "action": c.action, "keyId": c.key_id,
                            "domain": c.domain, "values": c.values })
                })
                .collect(),
        ),
    );
    entry.insert(
        "keyring".into(),
        json!({ "source": keyring.source(),
                "protection": keyring.kek().map(|k| k.provider()).unwrap_or("plain") }),
    );
    entry.insert(
        "tool".into(),
        json!(format!("cloakline {}", env!("CARGO_PKG_VERSION"))),
    );
    let written = crate::provenance::audit::append(&request.audit_log, entry)?;
    let record = {
        let mut r = output.as_os_str().to_owned();
        r.push(".reveal.json");
        std::path::PathBuf::from(r)
    };
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(written.clone()))
        .map_err(|e| Error::Internal(format!("reveal record: {e}")))?;
    let rf = AtomicFile::create(&record)?;
    std::io::Write::write_all(&mut rf.file()?, text.as_bytes())
        .map_err(|e| Error::io(&record, e))?;
    af.commit()?;
    rf.commit()?;
    Ok(Revealed {
        columns: done,
        entry: written,
        record,
    })
}

/// SHA-256 (hex) of a file, streamed.
fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
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
            let action = f.metadata().get(meta::ACTION).map(String::as_str);
            if action.is_some_and(|a| REVERSIBLE.contains(&a)) {
                targets.insert(f.name().clone(), target_from_meta(input, i, f)?);
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
        let mut t = target_from_meta(input, i, f)?;
        if let Some(d) = domain {
            if let Some(spec) = &mut t.fpe {
                spec.domain = d.clone();
            }
            t.domain = d;
        }
        targets.insert(name, t);
    }
    Ok(targets)
}

/// One column decrypted and cast back to its recorded type.
fn decrypt_column(dec: &mut Opener, name: &str, t: &Target, array: &ArrayRef) -> Result<ArrayRef> {
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

fn target_from_meta(input: &Path, index: usize, f: &Field) -> Result<Target> {
    let m = f.metadata();
    let domain = m
        .get(meta::DOMAIN)
        .cloned()
        .or_else(|| m.get(meta::SOURCE).cloned())
        .unwrap_or_else(|| f.name().clone());
    let fpe = match m.get(meta::ACTION).map(String::as_str) {
        Some("fpe") => Some(fpe_from_meta(m, &domain).ok_or_else(|| {
            Error::Usage(format!(
                "{}: column `{}` was enciphered with fpe, but its metadata (`{}`, `{}`) is missing or malformed; FF1 output names neither key nor format, so it can only be restored from the Parquet file `apply` wrote",
                input.display(),
                f.name(),
                meta::KEY_ID,
                meta::FPE
            ))
        })?),
        _ => None,
    };
    Ok(Target {
        index,
        domain,
        action: m
            .get(meta::ACTION)
            .cloned()
            .unwrap_or_else(|| "encrypt".into()),
        key_id: m.get(meta::KEY_ID).cloned(),
        source_type: m
            .get(meta::SOURCE_TYPE)
            .and_then(|t| t.parse::<DataType>().ok()),
        fpe,
    })
}

/// An `fpe` column's spec from its metadata (deciphering always fails on a bad value).
fn fpe_from_meta(m: &HashMap<String, String>, domain: &str) -> Option<crate::kernels::FpeSpec> {
    let v: serde_json::Value = serde_json::from_str(m.get(meta::FPE)?).ok()?;
    let spec = crate::kernels::FpeSpec {
        key: m.get(meta::KEY_ID)?.clone(),
        domain: domain.to_string(),
        alphabet: v.get("alphabet")?.as_str()?.to_string(),
        characters: v.get("characters")?.as_str()?.to_string(),
        separators: v.get("separators")?.as_str()?.to_string(),
        keep_first: usize::try_from(v.get("keep_first")?.as_u64()?).ok()?,
        keep_last: usize::try_from(v.get("keep_last")?.as_u64()?).ok()?,
        luhn: v.get("luhn")?.as_bool()?,
        on_invalid: crate::kernels::fpe::OnInvalid::Error,
    };
    crate::kernels::fpe::check_alphabet(&spec.characters, &spec.separators, spec.luhn).ok()?;
    Some(spec)
}

/// `retokenize`: re-encrypt a release's `encrypt`, `encrypt_deterministic` and `fpe` columns
/// under another key version (`to`, e.g. `k1@v2`) without the raw data: each value is opened
/// with the version recorded in the file and sealed again with `to`, keeping domain and format;
/// the column metadata then names `to`. Columns of HMAC tokens (`tokenize`, `scrub`) are
/// refused: a token cannot be recomputed without the value it came from. `columns` names the
/// columns (default: every reversible column whose key has `to`'s id). Parquet only: the
/// metadata says how each column was made. Returns the converted columns.
pub fn retokenize_file(
    input: &Path,
    output: &Path,
    keyring: &Keyring,
    to: &str,
    columns: &[String],
) -> Result<Vec<String>> {
    let target_key = keyring.data_key(to)?;
    let to_ref = target_key.reference();
    let to_id = to_ref.split('@').next().unwrap_or(&to_ref).to_string();
    let fmt = format_of(input, None, "--input-format")?;
    if fmt != Format::Parquet {
        return Err(Error::Usage(format!(
            "{}: retokenize reads Parquet, whose column metadata records how each column was made",
            input.display()
        )));
    }
    let src = Input::open(input, fmt, &ReadOptions::default(), &|s: &Schema| {
        Arc::new(s.clone())
    })?;
    let schema = src.schema.clone();
    let id_of = |r: &str| r.split('@').next().unwrap_or(r).to_string();
    let mut chosen: Vec<usize> = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        let m = f.metadata();
        let action = m.get(meta::ACTION).map(String::as_str).unwrap_or("");
        let key = m.get(meta::KEY_ID).map(|k| id_of(k));
        let named = columns.iter().any(|c| c == f.name());
        let under_key = columns.is_empty() && key.as_deref() == Some(to_id.as_str());
        if !(named || under_key) {
            continue;
        }
        match action {
            "encrypt" | "encrypt_deterministic" | "fpe" => chosen.push(i),
            "tokenize" | "scrub" => {
                return Err(Error::Usage(format!(
                    "column `{}` holds keyed HMAC tokens: a token cannot be converted to \
                     another key version without the value it came from. Re-run `apply` on \
                     the raw input with `key: {to_ref}`",
                    f.name()
                )));
            }
            _ if named => {
                return Err(Error::Usage(format!(
                    "column `{}` is not encrypted (its metadata says `{}`); nothing to convert",
                    f.name(),
                    if action.is_empty() { "nothing" } else { action }
                )));
            }
            _ => {}
        }
    }
    for c in columns {
        if schema.column_with_name(c).is_none() {
            return Err(Error::Usage(format!(
                "{} has no column `{c}`",
                input.display()
            )));
        }
    }
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "{} has no encrypted column under key {to_id}; name them with --column",
            input.display()
        )));
    }
    // Per column: how to open it (from the file) and how to seal it again (with `to`).
    let mut work = Vec::new();
    for &i in &chosen {
        let f = schema.field(i);
        let t = target_from_meta(input, i, f)?;
        let opener = opener(keyring, f.name(), &t)?;
        let action = match &t.fpe {
            Some(spec) => {
                let mut again = spec.clone();
                again.key = to_ref.clone();
                crate::policy::Action::Fpe(again)
            }
            None => {
                let spec = crate::policy::EncryptSpec {
                    key: to_ref.clone(),
                    domain: t.domain.clone(),
                };
                match t.action.as_str() {
                    "encrypt_deterministic" => crate::policy::Action::EncryptDeterministic(spec),
                    _ => crate::policy::Action::Encrypt(spec),
                }
            }
        };
        let (sealer, _) =
            crate::plan::Kernel::build(&action, &DataType::Utf8, keyring).map_err(|e| {
                Error::Transform {
                    field: f.name().clone(),
                    message: e.to_string(),
                }
            })?;
        work.push((i, opener, sealer));
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if !chosen.contains(&i) {
                return f.as_ref().clone();
            }
            let mut m = f.metadata().clone();
            m.insert(meta::KEY_ID.into(), to_ref.clone());
            Field::new(f.name(), DataType::Utf8, true).with_metadata(m)
        })
        .collect();
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let af = AtomicFile::create(output)?;
    let write = WriteOptions {
        format: Format::Parquet,
        ..Default::default()
    };
    let mut writer = BatchWriter::new(af.file()?, out_schema.clone(), &write)?;
    for batch in src.batches()? {
        let mut arrays: Vec<ArrayRef> = batch?.columns().to_vec();
        for (i, opener, sealer) in work.iter_mut() {
            let name = schema.field(*i).name().clone();
            let fail = |e: crate::kernels::KernelError| Error::Transform {
                field: name.clone(),
                message: e.to_string(),
            };
            let plain = opener.apply(&arrays[*i]).map_err(fail)?;
            arrays[*i] = sealer.apply(&plain).map_err(fail)?;
        }
        writer.write(&RecordBatch::try_new(out_schema.clone(), arrays)?)?;
    }
    writer.finish(None)?;
    af.commit()?;
    Ok(chosen
        .iter()
        .map(|&i| schema.field(i).name().clone())
        .collect())
}

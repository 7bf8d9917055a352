//! Checking an output against its provenance.
//!
//! `verify` checks that the output's SHA-256, size and row count match the record, that the
//! copy embedded in a Parquet footer agrees with the sidecar, that the output schema matches
//! the recorded fields, optionally that a policy file is the one recorded, and the signature.
//! Each check is reported on its own; any failure fails the whole. An unsigned record is a
//! failure when a keyring is given (a stripped signature looks exactly like that) or when
//! [`VerifyOptions::require_signature`] is set; otherwise its line says SKIP, never PASS.
//!
//! A signature is Ed25519 (checked with a public key: [`VerifyOptions::public_key`]) or
//! HMAC-SHA256 (checked with the keyring holding the same secret); see
//! [`crate::provenance::sign`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::run_blocking;

mod remote;
use crate::error::{Error, Result};
use crate::io::{Format, Input, Location, ReadOptions, sha256_file};
use crate::keys::Keyring;
use crate::provenance::read::{embedded, parse_strict};
use crate::provenance::record::{DatasetNode, OutputKind, RunKind};
use crate::provenance::sign::{ED25519, SIGNATURE, ed25519_valid, signature_block};
use crate::provenance::{FORMAT, FORMAT_V1, PARQUET_KEY, Record, sidecar_path};

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// Not performed (e.g. no signature to check): neither passes nor fails the whole.
    pub skipped: bool,
    pub detail: String,
}

/// All checks of one verification.
#[derive(Debug, Clone)]
pub struct Verification {
    pub output: String,
    pub provenance: String,
    pub checks: Vec<Check>,
}

impl Serialize for Verification {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Verification", 4)?;
        st.serialize_field("output", &self.output)?;
        st.serialize_field("provenance", &self.provenance)?;
        st.serialize_field("passed", &self.passed())?;
        st.serialize_field("checks", &self.checks)?;
        st.end()
    }
}

impl Verification {
    /// Every check that ran passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed || c.skipped)
    }
    pub fn to_text(&self) -> String {
        let mut s = format!("{} against {}\n", self.output, self.provenance);
        for c in &self.checks {
            s.push_str(&format!(
                "{} {:<18} {}\n",
                match (c.skipped, c.passed) {
                    (true, _) => "SKIP",
                    (false, true) => "PASS",
                    (false, false) => "FAIL",
                },
                c.name,
                c.detail
            ));
        }
        s.push_str(if self.passed() {
            "verified\n"
        } else {
            "verification FAILED\n"
        });
        s
    }
}

/// What `verify` checks besides the output and its record.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct VerifyOptions<'a> {
    /// The provenance document (default: the output's sidecar).
    pub provenance: Option<&'a Path>,
    /// Also check that this policy file is the recorded one.
    pub policy: Option<&'a Path>,
    /// Check the signature with this keyring; an unsigned record then fails.
    pub keyring: Option<&'a Keyring>,
    /// Fail an unsigned record even without a keyring (`verify --require-signature`).
    pub require_signature: bool,
    /// Check an Ed25519 signature with this public key; an unsigned record then fails.
    pub public_key: Option<&'a ed25519_dalek::VerifyingKey>,
    /// The consent ledger given (as shown) and its digest: it must be the recorded one.
    pub consent_ledger: Option<(&'a str, &'a str)>,
}

impl<'a> VerifyOptions<'a> {
    /// Set the provenance document (`None`: the output's sidecar).
    #[must_use]
    pub fn with_provenance(mut self, provenance: Option<&'a Path>) -> Self {
        self.provenance = provenance;
        self
    }

    /// Set the policy file that must be the recorded one (`None`: not checked).
    #[must_use]
    pub fn with_policy(mut self, policy: Option<&'a Path>) -> Self {
        self.policy = policy;
        self
    }

    /// Set the keyring the signature is checked with (`None`: no check).
    #[must_use]
    pub fn with_keyring(mut self, keyring: Option<&'a Keyring>) -> Self {
        self.keyring = keyring;
        self
    }

    /// Fail an unsigned record even without a keyring.
    #[must_use]
    pub fn with_require_signature(mut self, require_signature: bool) -> Self {
        self.require_signature = require_signature;
        self
    }

    /// Set the Ed25519 public key the signature is checked with (`None`: no such check).
    #[must_use]
    pub fn with_public_key(mut self, public_key: Option<&'a ed25519_dalek::VerifyingKey>) -> Self {
        self.public_key = public_key;
        self
    }

    /// Check that the ledger with this digest (see `plan::consent::ledger_digest`), shown as
    /// `shown`, is the recorded consent ledger.
    #[must_use]
    pub fn with_consent_ledger(mut self, ledger: Option<(&'a str, &'a str)>) -> Self {
        self.consent_ledger = ledger;
        self
    }
}

/// Verify an output against its record: an owned job builder, like `Apply`.
///
/// ```no_run
/// # async fn f() -> cloakline::Result<()> {
/// use cloakline::jobs::verify::Verify;
/// let v = Verify::new("out/customers.parquet").require_signature(false).run().await?;
/// assert!(v.passed(), "{}", v.to_text());
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct Verify {
    output: Location,
    provenance: Option<Location>,
    policy: Option<Location>,
    keyring: Option<Arc<Keyring>>,
    public_key: Option<ed25519_dalek::VerifyingKey>,
    read: ReadOptions,
    require_signature: bool,
    storage: crate::io::store::StorageOptions,
    consent_ledger: Option<Location>,
}

impl Verify {
    /// Check `output` against its sidecar.
    pub fn new(output: impl Into<Location>) -> Self {
        Verify {
            output: output.into(),
            provenance: None,
            policy: None,
            keyring: None,
            public_key: None,
            read: ReadOptions::default(),
            require_signature: false,
            storage: Default::default(),
            consent_ledger: None,
        }
    }

    /// Also check that this is the consent ledger the run read (its SHA-256, or its files'
    /// manifest digest for a directory; docs/CONSENT.md).
    pub fn with_consent_ledger(mut self, ledger: impl Into<Location>) -> Self {
        self.consent_ledger = Some(ledger.into());
        self
    }

    /// The given consent ledger's digest, as shown.
    async fn ledger_digest(&self) -> Result<Option<(String, String)>> {
        use crate::plan::consent::{ledger_digest, local_ledger_digest};
        match &self.consent_ledger {
            None => Ok(None),
            Some(Location::Local(p)) => {
                let shown = p.display().to_string();
                let d = local_ledger_digest(p, None, &shown)?;
                Ok(Some((shown, d)))
            }
            Some(Location::Url(u)) => {
                let remote = crate::io::store::Remote::open(u, &self.storage)?;
                let scratch = crate::io::ScratchDir::create()?;
                let f = remote
                    .fetch(scratch.path(), |p| Format::from_path(p).is_some())
                    .await?;
                let mut files: Vec<(String, String)> = f
                    .objects
                    .iter()
                    .map(|o| {
                        let rel = o
                            .local
                            .strip_prefix(&f.local)
                            .map(|r| {
                                r.components()
                                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                                    .collect::<Vec<_>>()
                                    .join("/")
                            })
                            .unwrap_or_default();
                        (rel, o.sha256.clone())
                    })
                    .collect();
                files.sort();
                Ok(Some((remote.shown(), ledger_digest(&files))))
            }
        }
    }

    /// Settings of the store a URL output or record is in (see docs/STORAGE.md).
    pub fn with_storage_options(mut self, options: crate::io::store::StorageOptions) -> Self {
        self.storage = options;
        self
    }

    /// The record to check against (default: the output's sidecar).
    pub fn with_provenance(mut self, provenance: impl Into<Location>) -> Self {
        self.provenance = Some(provenance.into());
        self
    }

    /// Also check that this policy file is the recorded one.
    pub fn with_policy(mut self, policy: impl Into<Location>) -> Self {
        self.policy = Some(policy.into());
        self
    }

    /// Check the signature with this keyring; an unsigned record then fails.
    pub fn with_keyring(mut self, keyring: impl Into<Arc<Keyring>>) -> Self {
        self.keyring = Some(keyring.into());
        self
    }

    /// Check an Ed25519 signature with this public key (from the signer's
    /// `keys export-public`); an unsigned record then fails.
    pub fn with_public_key(mut self, public_key: ed25519_dalek::VerifyingKey) -> Self {
        self.public_key = Some(public_key);
        self
    }

    /// How to read a CSV output (its delimiter).
    pub fn with_read_options(mut self, read: ReadOptions) -> Self {
        self.read = read;
        self
    }

    /// Fail an unsigned record even without a keyring.
    pub fn require_signature(mut self, yes: bool) -> Self {
        self.require_signature = yes;
        self
    }

    /// Run every check. A failed check is in the result, not an error; errors are for what
    /// could not be read at all.
    pub async fn run(self) -> Result<Verification> {
        let ledger = self.ledger_digest().await?;
        // URLs: the release (or the one object) and its record fetched to scratch first.
        let fetched = remote::fetch(&self).await?;
        let (this, pairs, scratch) = match fetched {
            Some(f) => {
                let mut v = self.clone();
                v.output = Location::Local(f.output);
                v.provenance = f.provenance.map(Location::Local);
                v.policy = f.policy.map(Location::Local).or(v.policy);
                (v, f.pairs, Some(f.scratch))
            }
            None => (self, Vec::new(), None),
        };
        let result = this.run_local(ledger).await;
        drop(scratch);
        let show = |t: &str| {
            pairs.iter().fold(t.to_string(), |t, (a, b)| {
                crate::io::store::relocate(&t, a, b)
            })
        };
        match result {
            Ok(mut v) => {
                v.output = show(&v.output);
                v.provenance = show(&v.provenance);
                for c in &mut v.checks {
                    c.detail = show(&c.detail);
                }
                Ok(v)
            }
            Err(e) => Err(pairs.iter().fold(e, |e, (a, b)| e.relocated(a, b))),
        }
    }

    async fn run_local(&self, ledger: Option<(String, String)>) -> Result<Verification> {
        let v = self.clone();
        run_blocking("Verify::run", move || {
            tracing::info!(output = %v.output.local()?.display(), "verify: checking against the record");
            let provenance = v.provenance.as_ref().map(Location::local).transpose()?;
            let policy = v.policy.as_ref().map(Location::local).transpose()?;
            verify_with(
                v.output.local()?,
                &v.read,
                &VerifyOptions {
                    provenance,
                    policy,
                    keyring: v.keyring.as_deref(),
                    require_signature: v.require_signature,
                    public_key: v.public_key.as_ref(),
                    consent_ledger: ledger.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                },
            )
        })
        .await
    }
}

/// The member holding a record's nodes: `@included` from v2, `@graph` in v1.
fn nodes_key(doc: &Value) -> &'static str {
    if doc.get("cl:format").and_then(Value::as_str) == Some(FORMAT_V1) {
        "@graph"
    } else {
        "@included"
    }
}

fn nodes_of<'a>(doc: &'a Value, ty: &str) -> Vec<&'a Value> {
    doc[nodes_key(doc)]
        .as_array()
        .map(|g| g.iter().filter(|n| has_type(n, ty)).collect())
        .unwrap_or_default()
}

/// The recorded output dataset node for `output`: the only one, else the one whose path is
/// the output's (or the footer copy's own output path), else the only one of that file name.
fn output_node<'a>(
    rec: &'a Record,
    output: &Path,
    emb: Option<&Record>,
) -> Option<&'a DatasetNode> {
    let outs: Vec<&DatasetNode> = rec.outputs().collect();
    if outs.len() == 1 {
        return outs.first().copied();
    }
    let by_path = |want: &str| outs.iter().copied().find(|n| n.path == want);
    let emb_path = emb
        .and_then(|e| e.outputs().next())
        .map(|n| n.path.as_str());
    if let Some(n) = by_path(&output.display().to_string()).or_else(|| emb_path.and_then(by_path)) {
        return Some(n);
    }
    // Else the one whose path ends in the most components of the output's path: two files of
    // a layout share a base name (`x/data_0.csv`, `y/data_0.csv`), not their relative path.
    let suffix = |recorded: &str| {
        let mut a: Vec<_> = Path::new(recorded).components().collect();
        let mut b: Vec<_> = output.components().collect();
        let mut n = 0;
        while let (Some(x), Some(y)) = (a.pop(), b.pop()) {
            if x != y {
                break;
            }
            n += 1;
        }
        n
    };
    let best = outs
        .iter()
        .map(|n| suffix(&n.path))
        .max()
        .filter(|&m| m > 0)?;
    let named: Vec<&DatasetNode> = outs
        .into_iter()
        .filter(|n| suffix(&n.path) == best)
        .collect();
    (named.len() == 1).then(|| named[0])
}

fn output_nodes(doc: &Value) -> Vec<&Value> {
    nodes_of(doc, "cl:Dataset")
        .into_iter()
        .filter(|n| n.get("wasGeneratedBy").is_some())
        .collect()
}

/// The first place two documents differ, as a JSON pointer.
fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, format!("{path}/{}", shown(k))),
                _ => Some(format!("{path}/{}", shown(k))),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} (length {} vs {})", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{path}/{i}")))
        }
        _ if a == b => None,
        _ => Some(if path.is_empty() { "/".into() } else { path }),
    }
}

/// A recorded number, or `nothing`.
fn shown_opt(n: Option<u64>) -> String {
    n.map_or("nothing".into(), |n| n.to_string())
}

/// Text from a record or file as printed: control characters (terminal escapes) written as
/// `\u{..}`.
fn shown(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Verify `output` against its sidecar (or `provenance`). An unsigned record fails when
/// `keyring` is given; see [`verify_with`] for `--require-signature`.
pub fn verify(
    output: &Path,
    provenance: Option<&Path>,
    policy: Option<&Path>,
    keyring: Option<&Keyring>,
    read: &ReadOptions,
) -> Result<Verification> {
    verify_with(
        output,
        read,
        &VerifyOptions {
            provenance,
            policy,
            keyring,
            require_signature: false,
            public_key: None,
            consent_ledger: None,
        },
    )
}

/// Verify `output` against its record, with the checks `opts` asks for.
pub fn verify_with(
    output: &Path,
    read: &ReadOptions,
    opts: &VerifyOptions,
) -> Result<Verification> {
    let side_path: PathBuf = opts
        .provenance
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sidecar_path(output));
    let text = crate::io::read_record_text(&side_path)?;
    let doc = parse_strict(&text).map_err(|e| Error::data(side_path.display(), e))?;
    if output.is_dir() {
        return verify_dir(output, &side_path, &doc, read, opts);
    }
    let mut checks = Vec::new();
    let rec = match Record::from_json(&doc) {
        Ok(rec) => {
            checks.push(check(
                "format",
                true,
                format!("cl:format is {}", rec.format),
            ));
            rec
        }
        Err(e) => {
            // Nothing else in a record of unknown layout can be trusted to mean anything.
            checks.push(check(
                "format",
                false,
                format!(
                    "not a {FORMAT} (or {FORMAT_V1}) record: {}",
                    shown(&e.message)
                ),
            ));
            checks.push(signature_check(&doc, opts));
            return Ok(Verification {
                output: output.display().to_string(),
                provenance: side_path.display().to_string(),
                checks,
            });
        }
    };
    let format = Format::from_path(output).ok_or_else(|| {
        Error::Usage(format!(
            "cannot tell the format of {}; use .parquet or .csv",
            output.display()
        ))
    })?;
    let emb = (format == Format::Parquet).then(|| embedded(output));
    let emb_rec = match &emb {
        Some(Ok(Some(e))) => Record::from_json(e).ok(),
        _ => None,
    };
    match output_node(&rec, output, emb_rec.as_ref()) {
        None => checks.push(check(
            "output recorded",
            false,
            format!(
                "no output dataset in the record matches {}",
                output.display()
            ),
        )),
        Some(node) => {
            file_checks(output, format, read, &rec, node, &mut checks)?;
            match &emb {
                Some(Ok(Some(e))) => checks.push(embedded_check(e, emb_rec.as_ref(), &doc, node)),
                Some(Ok(None)) if rec.run_kind == RunKind::Sql => {}
                Some(Ok(None)) => checks.push(check(
                    "embedded record",
                    false,
                    format!("no `{PARQUET_KEY}` in the Parquet footer"),
                )),
                Some(Err(e)) => checks.push(check("embedded record", false, e.to_string())),
                None => {}
            }
        }
    }
    checks.extend(policy_check(&rec, opts)?);
    checks.extend(consent_checks(&rec, opts));
    checks.push(signature_check(&doc, opts));
    Ok(Verification {
        output: output.display().to_string(),
        provenance: side_path.display().to_string(),
        checks,
    })
}

/// The consent record's counts add up (rows in = released + removed; released rows less the
/// privacy block's suppressions are the rows out), and a given ledger is the recorded one.
fn consent_checks(rec: &Record, opts: &VerifyOptions) -> Vec<Check> {
    let consent = rec.run().and_then(|r| r.consent.as_ref());
    let mut out = Vec::new();
    if let Some(c) = consent {
        let suppressed = rec
            .summary
            .privacy
            .as_ref()
            .map_or(0, |p| p.suppressed_records);
        let removed = c.rows_removed_withdrawn.checked_add(c.rows_removed_missing);
        // A query's output rows are whatever it computed from the released rows.
        let apply = rec.run_kind == RunKind::Apply;
        let adds = removed.and_then(|r| r.checked_add(c.rows_released)) == Some(c.rows_in)
            && rec.summary.rows_in.is_none_or(|n| n == c.rows_in)
            && (!apply || c.rows_released.checked_sub(suppressed) == Some(rec.summary.rows_out))
            && c.fields_nulled.values().all(|&n| n <= c.rows_released);
        out.push(check(
            "consent counts",
            adds,
            if adds {
                format!(
                    "{} rows in = {} released + {} removed for withdrawn + {} for missing \
                     consent (purpose {}, as of {})",
                    c.rows_in,
                    c.rows_released,
                    c.rows_removed_withdrawn,
                    c.rows_removed_missing,
                    shown(&c.purpose),
                    shown(&c.as_of)
                )
            } else {
                format!(
                    "the consent counts do not add up: {} rows in, {} released, {} and {} \
                     removed, {} rows recorded in and {} out",
                    c.rows_in,
                    c.rows_released,
                    c.rows_removed_withdrawn,
                    c.rows_removed_missing,
                    shown_opt(rec.summary.rows_in),
                    rec.summary.rows_out
                )
            },
        ));
    }
    if let Some((shown_as, digest)) = opts.consent_ledger {
        let (ok, detail) = match consent {
            None => (
                false,
                "the record has no consent ledger (the run enforced no consent)".to_string(),
            ),
            Some(c) if c.ledger_sha256 == digest => (
                true,
                format!("{} is the recorded consent ledger", shown(shown_as)),
            ),
            Some(c) => (
                false,
                format!(
                    "{} has digest {digest}, the run read {} with {}",
                    shown(shown_as),
                    shown(&c.ledger),
                    shown(&c.ledger_sha256)
                ),
            ),
        };
        out.push(check("consent ledger", ok, detail));
    }
    out
}

/// The policy line, when `opts` names a policy file.
fn policy_check(rec: &Record, opts: &VerifyOptions) -> Result<Option<Check>> {
    if let Some(p) = opts.policy {
        let (sha, _) = sha256_file(p)?;
        let recorded = rec.policy().map(|n| n.sha256.clone()).unwrap_or_default();
        return Ok(Some(check(
            "policy",
            sha == recorded,
            if sha == recorded {
                format!("{} is the recorded policy", p.display())
            } else if rec.policy().is_none() {
                format!(
                    "{} has sha256 {sha}, the record names no policy",
                    p.display()
                )
            } else {
                format!(
                    "{} has sha256 {sha}, the record used {}",
                    p.display(),
                    shown(&recorded)
                )
            },
        )));
    }
    Ok(None)
}

/// `verify DIR`: every file of a directory release against the directory's record, matched
/// by relative path; a recorded file that is missing and a file the record does not list
/// both fail.
fn verify_dir(
    dir: &Path,
    side_path: &Path,
    doc: &Value,
    read: &ReadOptions,
    opts: &VerifyOptions,
) -> Result<Verification> {
    let mut checks = Vec::new();
    let done = |checks: Vec<Check>| Verification {
        output: dir.display().to_string(),
        provenance: side_path.display().to_string(),
        checks,
    };
    let rec = match Record::from_json(doc) {
        Ok(rec) => rec,
        Err(e) => {
            checks.push(check(
                "format",
                false,
                format!(
                    "not a {FORMAT} (or {FORMAT_V1}) record: {}",
                    shown(&e.message)
                ),
            ));
            checks.push(signature_check(doc, opts));
            return Ok(done(checks));
        }
    };
    checks.push(check(
        "format",
        true,
        format!("cl:format is {}", rec.format),
    ));
    let outputs: Vec<&DatasetNode> = rec.outputs().collect();
    let rels = relative_paths(&outputs);
    // No data files at all: every recorded one is reported missing below.
    let present: Vec<PathBuf> = crate::io::data_files(dir, None).unwrap_or_default();
    let present_rel: Vec<String> = present
        .iter()
        .map(|f| slash(f.strip_prefix(dir).unwrap_or(f)))
        .collect();
    let mut missing = Vec::new();
    for (node, rel) in outputs.iter().zip(&rels) {
        let file = dir.join(rel);
        if !present_rel.contains(rel) {
            missing.push(rel.clone());
            continue;
        }
        let format = Format::from_path(&file)
            .ok_or_else(|| Error::Usage(format!("cannot tell the format of {}", file.display())))?;
        let mut file_lines = Vec::new();
        file_checks(&file, format, read, &rec, node, &mut file_lines)?;
        if format == Format::Parquet {
            match embedded(&file) {
                Ok(Some(e)) => {
                    let emb_rec = Record::from_json(&e).ok();
                    file_lines.push(embedded_check(&e, emb_rec.as_ref(), doc, node));
                }
                Ok(None) => file_lines.push(check(
                    "embedded record",
                    false,
                    format!("no `{PARQUET_KEY}` in the Parquet footer"),
                )),
                Err(e) => file_lines.push(check("embedded record", false, e.to_string())),
            }
        }
        for mut c in file_lines {
            c.detail = format!("{}: {}", shown(rel), c.detail);
            checks.push(c);
        }
    }
    let extra: Vec<&String> = present_rel.iter().filter(|r| !rels.contains(r)).collect();
    checks.push(check(
        "files",
        missing.is_empty() && extra.is_empty(),
        match (missing.is_empty(), extra.is_empty()) {
            (true, true) => format!(
                "the {} recorded files are all there, and no other",
                rels.len()
            ),
            _ => {
                let list =
                    |v: Vec<&String>| v.iter().map(|s| shown(s)).collect::<Vec<_>>().join(", ");
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!(
                        "recorded but missing: {}",
                        list(missing.iter().collect())
                    ));
                }
                if !extra.is_empty() {
                    parts.push(format!("not in the record: {}", list(extra)));
                }
                parts.join("; ")
            }
        },
    ));
    checks.extend(policy_check(&rec, opts)?);
    checks.extend(consent_checks(&rec, opts));
    checks.push(signature_check(doc, opts));
    Ok(done(checks))
}

/// Each output's path relative to the release directory: `cl:relativePath`, or for records
/// written before it existed, the recorded path minus the directory all outputs share.
fn relative_paths(outputs: &[&DatasetNode]) -> Vec<String> {
    if outputs.iter().all(|n| n.relative_path.is_some()) {
        return outputs
            .iter()
            .map(|n| n.relative_path.clone().unwrap_or_default())
            .collect();
    }
    let paths: Vec<Vec<String>> = outputs
        .iter()
        .map(|n| {
            Path::new(&n.path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .collect();
    let mut common = paths.first().map_or(0, |p| p.len().saturating_sub(1));
    for p in &paths {
        let same = paths[0].iter().zip(p).take_while(|(a, b)| a == b).count();
        common = common.min(same).min(p.len().saturating_sub(1));
    }
    paths.iter().map(|p| p[common..].join("/")).collect()
}

/// A relative path with `/` separators.
fn slash(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check {
        name,
        passed,
        skipped: false,
        detail,
    }
}

/// Checksum, size, rows and schema of the output file against its recorded node.
fn file_checks(
    output: &Path,
    format: Format,
    read: &ReadOptions,
    rec: &Record,
    node: &DatasetNode,
    checks: &mut Vec<Check>,
) -> Result<()> {
    let (sha, bytes) = sha256_file(output)?;
    let rec_sha = node.sha256.as_deref().unwrap_or("");
    checks.push(check(
        "sha256",
        sha == rec_sha,
        if sha == rec_sha {
            sha.clone()
        } else {
            format!("file has {sha}, record says {}", shown(rec_sha))
        },
    ));
    checks.push(check(
        "size",
        node.bytes == Some(bytes),
        format!(
            "file has {bytes} bytes, record says {}",
            shown_opt(node.bytes)
        ),
    ));
    let input = match Input::open(output, format, read, &|s| std::sync::Arc::new(s.clone())) {
        Ok(input) => input,
        Err(e) => {
            checks.push(check("rows", false, format!("cannot read the output: {e}")));
            return Ok(());
        }
    };
    let schema = input.schema.clone();
    let rows = input.batches().and_then(|batches| {
        let mut rows = 0u64;
        for b in batches {
            rows += b?.num_rows() as u64;
        }
        Ok(rows)
    });
    checks.push(match rows {
        Err(e) => check("rows", false, format!("cannot read the output: {e}")),
        Ok(rows) => check(
            "rows",
            node.rows == Some(rows),
            format!("file has {rows} rows, record says {}", shown_opt(node.rows)),
        ),
    });
    checks.push(schema_check(&schema, format, rec, node));
    Ok(())
}

fn schema_check(
    schema: &arrow::datatypes::SchemaRef,
    format: Format,
    rec: &Record,
    node: &DatasetNode,
) -> Check {
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let rec_names: Vec<String> = node.schema.iter().map(|c| c.name.clone()).collect();
    // Types are compared for Parquet only: CSV carries none.
    let types_ok = format != Format::Parquet
        || schema
            .fields()
            .iter()
            .zip(&node.schema)
            .all(|(f, c)| f.data_type().to_string() == c.data_type);
    // A query's field records describe the policy view it read, not its result columns.
    // Fields written as Hive directory names (`key=value/` in the file's recorded relative
    // path) are not columns of the file.
    let dir_columns: Vec<String> = node
        .relative_path
        .as_deref()
        .and_then(|r| crate::io::partition::partition_values(Path::new(""), Path::new(r)).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let fields: Vec<String> = match rec.run_kind {
        RunKind::Sql => names.clone(),
        _ => rec
            .output_fields()
            .map(|f| f.column.clone())
            .filter(|c| !dir_columns.contains(c))
            .collect(),
    };
    let ok = names == rec_names && types_ok && fields == names;
    check(
        "schema",
        ok,
        if ok {
            format!("{} columns as recorded", names.len())
        } else {
            format!(
                "file columns [{}], recorded [{}], field records [{}]{}",
                shown(&names.join(", ")),
                shown(&rec_names.join(", ")),
                shown(&fields.join(", ")),
                if types_ok { "" } else { "; types differ" }
            )
        },
    )
}

/// Whether the record describes a directory run. Decided by the footer copy, which travels
/// inside the data file: a sidecar edit cannot switch the comparison to the looser one.
fn is_directory_run(emb: Option<&Record>, doc: &Value) -> bool {
    match emb.and_then(|e| e.output_kind) {
        Some(kind) => kind == OutputKind::Directory,
        // Records written before `cl:outputKind`: guess from the sidecar. The directory
        // comparison still covers everything but counts and checksums.
        None => output_nodes(doc).len() > 1,
    }
}

/// The footer copy against the sidecar. A single-file run embeds the sidecar itself (minus
/// the output's checksum and the signature); a directory run embeds a record of the same run
/// for its one file, so only per-file counts, checksums and the lists of files may differ.
fn embedded_check(emb: &Value, emb_rec: Option<&Record>, doc: &Value, node: &DatasetNode) -> Check {
    let node = output_nodes(doc)
        .into_iter()
        .find(|n| n["@id"].as_str() == Some(node.id.as_str()))
        .cloned()
        .unwrap_or_default();
    let node = &node;
    let diff = if is_directory_run(emb_rec, doc) {
        directory_difference(emb, doc, node)
    } else {
        let mut expected = doc.clone();
        if let Value::Object(m) = &mut expected {
            m.remove(SIGNATURE);
        }
        strip_output_checksums(&mut expected);
        first_difference(emb, &expected, String::new())
    };
    match diff {
        None => check("embedded record", true, "footer copy agrees".into()),
        Some(p) => check(
            "embedded record",
            false,
            format!("footer copy and sidecar differ at {p}"),
        ),
    }
}

/// Where a directory run's footer copy `emb` disagrees with the directory's record `doc`;
/// `node` is the sidecar's output node for this file.
fn directory_difference(emb: &Value, doc: &Value, node: &Value) -> Option<String> {
    if let Some(p) = first_difference(&run_facts(emb), &run_facts(doc), String::new()) {
        return Some(p);
    }
    // This file's output node: the same but for its id, checksum and the inputs it lists.
    let outs = output_nodes(emb);
    let [own] = outs.as_slice() else {
        return Some(format!(
            "/{} (the footer copy records {} outputs, a directory run's copy records 1)",
            nodes_key(emb),
            outs.len()
        ));
    };
    let strip = |n: &Value| {
        let mut n = n.clone();
        if let Value::Object(m) = &mut n {
            for k in ["@id", "cl:sha256", "cl:bytes", "wasDerivedFrom"] {
                m.remove(k);
            }
        }
        n
    };
    if let Some(p) = first_difference(&strip(own), &strip(node), "/output".into()) {
        return Some(p);
    }
    // Its inputs are among the directory's inputs.
    let inputs = |d: &Value| -> Vec<Value> {
        nodes_of(d, "cl:Dataset")
            .into_iter()
            .filter(|n| n.get("wasGeneratedBy").is_none())
            .map(|n| {
                let mut n = n.clone();
                if let Value::Object(m) = &mut n {
                    m.remove("@id");
                }
                n
            })
            .collect()
    };
    let all = inputs(doc);
    inputs(emb)
        .iter()
        .any(|i| !all.contains(i))
        .then(|| "/input (the footer copy's input is not among the sidecar's)".to_string())
}

/// A record without what differs between the files of one directory run: datasets (and
/// references to them), per-file counts, end times, the signature.
fn run_facts(doc: &Value) -> Value {
    let mut d = doc.clone();
    let dataset_ids: Vec<Value> = nodes_of(doc, "cl:Dataset")
        .into_iter()
        .filter_map(|n| n.get("@id").cloned())
        .collect();
    let Value::Object(m) = &mut d else {
        return d;
    };
    // `cl:cluster` is known only at a cluster run's commit, after its files were written.
    for k in [SIGNATURE, "generatedAtTime", "cl:cluster"] {
        m.remove(k);
    }
    if let Some(Value::Object(s)) = m.get_mut("cl:summary") {
        s.remove("rowsIn");
        s.remove("rowsOut");
    }
    if let Some(Value::Array(g)) = m.get_mut(nodes_key(doc)) {
        g.retain(|n| !has_type(n, "cl:Dataset"));
        for n in g.iter_mut() {
            let Value::Object(n) = n else { continue };
            for k in [
                "cl:counts",
                "cl:entitiesReplaced",
                "endedAtTime",
                "cl:about",
            ] {
                n.remove(k);
            }
            // A file's copy counts that file's rows; the ledger facts are the run's.
            if let Some(Value::Object(c)) = n.get_mut("cl:consent") {
                for k in [
                    "rowsIn",
                    "rowsReleased",
                    "rowsRemovedWithdrawn",
                    "rowsRemovedMissing",
                    "fieldsNulled",
                ] {
                    c.remove(k);
                }
            }
            if let Some(Value::Array(used)) = n.get_mut("used") {
                used.retain(|u| !dataset_ids.contains(u));
            }
        }
    }
    d
}

fn has_type(n: &Value, ty: &str) -> bool {
    match &n["@type"] {
        Value::String(t) => t == ty,
        Value::Array(a) => a.iter().any(|t| t == ty),
        _ => false,
    }
}

/// The signature line. Every member of `cl:signature` is checked, not only the signature
/// value, so nothing in the document can change undetected.
fn signature_check(doc: &Value, opts: &VerifyOptions) -> Check {
    let checker = match (opts.public_key.is_some(), opts.keyring.is_some()) {
        (true, _) => "a public key",
        (false, true) => "a keyring",
        (false, false) => "",
    };
    let sig = match doc.get(SIGNATURE) {
        None | Some(Value::Null) => {
            return match (checker.is_empty(), opts.require_signature) {
                (false, _) => check(
                    "signature",
                    false,
                    format!("the record is not signed, but {checker} was given: a record whose signature was removed looks exactly like this (verify an unsigned record without --keyring or --public-key)"),
                ),
                (true, true) => check(
                    "signature",
                    false,
                    "the record is not signed, and a signature is required".into(),
                ),
                (true, false) => Check {
                    name: "signature",
                    passed: false,
                    skipped: true,
                    detail: "the record is not signed: nothing shows it was not edited; sign with `apply --sign-key` and check with --public-key (Ed25519) or --keyring (HMAC)".into(),
                },
            };
        }
        Some(sig) => sig,
    };
    let Some(id) = sig.get("keyId").and_then(Value::as_str) else {
        return check("signature", false, "cl:signature names no keyId".into());
    };
    let id = &shown(id);
    let algorithm = sig.get("algorithm").and_then(Value::as_str).unwrap_or("");
    if algorithm == ED25519 {
        ed25519_check(doc, sig, id, opts)
    } else if opts.public_key.is_some() {
        // A public key asks for an Ed25519 signature: anything else (an HMAC block made with
        // some shared secret, say) must not get to a keyring that happens to be at hand.
        check(
            "signature",
            false,
            format!(
                "a public key was given, so the record must carry an Ed25519 signature; it carries {} by key {id}: ask the sender for a release signed with an Ed25519 key",
                shown(algorithm)
            ),
        )
    } else {
        hmac_check(doc, sig, id, opts)
    }
}

/// An Ed25519 signature, checked with `--public-key` or with the keyring's signing key.
fn ed25519_check(doc: &Value, sig: &Value, id: &str, opts: &VerifyOptions) -> Check {
    let from_ring = opts
        .keyring
        .and_then(|r| r.get(id).ok())
        .and_then(|k| k.verifying_key());
    let Some(public) = opts.public_key.copied().or(from_ring) else {
        return check(
            "signature",
            false,
            format!(
                "signed with Ed25519 key {id}, but no public key was given to check it (--public-key FILE, from the signer's `keys export-public`)"
            ),
        );
    };
    let fingerprint = crate::keys::public_key_fingerprint(&public);
    let value = sig.get("value").and_then(Value::as_str).unwrap_or("");
    let expected = json!({
        "algorithm": ED25519,
        "canonicalization": crate::provenance::sign::CANONICALIZATION,
        "keyId": id,
        "keyFingerprint": fingerprint,
        "value": value,
    });
    if let Some(p) = first_difference(sig, &expected, format!("/{SIGNATURE}")) {
        return check(
            "signature",
            false,
            if p.ends_with("/keyFingerprint") {
                format!(
                    "signed by another key than the public key given (fingerprint {fingerprint}): key {id} is not this one"
                )
            } else {
                format!("{p} is not what Ed25519 signing writes: the signature block was changed")
            },
        );
    }
    if ed25519_valid(doc, &public, value) {
        check(
            "signature",
            true,
            format!("Ed25519 signature by key {id} (fingerprint {fingerprint}) is valid"),
        )
    } else {
        check(
            "signature",
            false,
            format!(
                "Ed25519 signature by key {id} does not match: the record was changed after signing"
            ),
        )
    }
}

/// An HMAC-SHA256 signature, checked with the keyring holding the same secret key.
fn hmac_check(doc: &Value, sig: &Value, id: &str, opts: &VerifyOptions) -> Check {
    let Some(ring) = opts.keyring else {
        return check(
            "signature",
            false,
            format!(
                "signed with HMAC key {id}, which only the keyring holding that secret can check (--keyring)"
            ),
        );
    };
    let key = match ring.get(id) {
        Ok(k) if k.purpose() == crate::keys::KeyPurpose::Data => k,
        Ok(_) => {
            return check(
                "signature",
                false,
                format!(
                    "the record claims an HMAC signature, but key {id} is an Ed25519 signing key: the signature block was changed"
                ),
            );
        }
        Err(e) => return check("signature", false, e.to_string()),
    };
    let expected = signature_block(doc, key);
    match first_difference(sig, &expected, format!("/{SIGNATURE}")) {
        None => check(
            "signature",
            true,
            format!("HMAC-SHA256 with key {id} is valid"),
        ),
        Some(p) if p.ends_with("/value") => check(
            "signature",
            false,
            format!(
                "HMAC-SHA256 with key {id} does not match: the record was changed after signing, or another key signed it"
            ),
        ),
        Some(p) => check(
            "signature",
            false,
            format!(
                "{p} is not what signing with key {id} writes: the signature block was changed"
            ),
        ),
    }
}

/// The sidecar minus what the embedded copy cannot contain: the output's own checksum.
fn strip_output_checksums(doc: &mut Value) {
    let key = nodes_key(doc);
    if let Some(g) = doc.get_mut(key).and_then(Value::as_array_mut) {
        for n in g {
            let is_output = n.get("wasGeneratedBy").is_some() && has_type(n, "cl:Dataset");
            if is_output && let Value::Object(m) = n {
                m.remove("cl:sha256");
                m.remove("cl:bytes");
            }
        }
    }
}

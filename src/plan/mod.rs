//! A policy checked against a concrete input schema and keyring: the plan.
//!
//! Planning happens before any data is read. It fails on a policy field the data does not
//! have, a column the policy does not list (under `unlisted: error`), an action that does not
//! fit the column's type, or a key the keyring lacks.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};

use crate::error::{Error, PlanProblem, Result};
use crate::kernels::descriptor::Transform;
use crate::kernels::{Encryptor, Generalizer, KernelError, Masker, Redactor, Tokenizer};
use crate::keys::Keyring;
pub use crate::policy::parse_type_name;
use crate::policy::{Action, Field, Policy, Unlisted};

pub mod consent;
mod level;
pub use level::{LevelLookup, RowFilter};

/// Arrow field-metadata keys written on every output column.
pub mod meta {
    pub const SOURCE: &str = "cloakline.source";
    pub const ACTION: &str = "cloakline.action";
    pub const STATUS: &str = "cloakline.status";
    pub const BASIS: &str = "cloakline.basis";
    pub const KEY_ID: &str = "cloakline.key_id";
    pub const DOMAIN: &str = "cloakline.domain";
    pub const SOURCE_TYPE: &str = "cloakline.source_type";
    /// Quasi-identifier generalization level chosen by the privacy block, `level/max`.
    pub const QI_LEVEL: &str = "cloakline.qi_level";
    /// Where the quasi-identifier's hierarchy came from.
    pub const HIERARCHY: &str = "cloakline.hierarchy";
    /// An `fpe` column's format (JSON: alphabet, characters, separators, keep_first,
    /// keep_last, luhn), which `decrypt` needs besides key and domain.
    pub const FPE: &str = "cloakline.fpe";
}

/// The compiled transform of one output column.
#[derive(Debug)]
#[non_exhaustive]
pub enum Kernel {
    Keep,
    Redact(Redactor),
    Mask(Masker),
    Tokenize(Tokenizer),
    // Boxed: the AES key schedule makes it far larger than the other variants.
    Encrypt(Box<Encryptor>),
    EncryptDeterministic(Box<crate::kernels::SivEncryptor>),
    Fpe(Box<crate::kernels::Fpe>),
    /// Keyed by another input column ([`ColumnPlan::keyed_by`]).
    ShiftDate(Box<crate::kernels::DateShifter>),
    /// Keyed by another input column ([`ColumnPlan::keyed_by`]).
    Noise(Box<crate::kernels::Noiser>),
    Generalize(Generalizer),
    Scrub(Box<crate::kernels::Scrubber>),
    /// A quasi-identifier at the generalization level the privacy block chose.
    Level(Box<LevelLookup>),
    /// A registered transform ([`crate::kernels::custom`]).
    Custom(
        &'static dyn crate::kernels::custom::CustomTransform,
        Box<dyn crate::kernels::custom::CustomKernel>,
    ),
}

impl Kernel {
    /// What this kernel is, for provenance, lineage, SQL and the writer. A quasi-identifier
    /// at a privacy level is a generalization.
    pub fn descriptor(&self) -> &'static Transform {
        use crate::kernels::descriptor as d;
        match self {
            Kernel::Keep => &d::KEEP,
            Kernel::Redact(_) => &d::REDACT,
            Kernel::Mask(_) => &d::MASK,
            Kernel::Tokenize(_) => &d::TOKENIZE,
            Kernel::Encrypt(_) => &d::ENCRYPT,
            Kernel::EncryptDeterministic(_) => &d::ENCRYPT_DETERMINISTIC,
            Kernel::Fpe(_) => &d::FPE,
            Kernel::ShiftDate(_) => &d::SHIFT_DATE,
            Kernel::Noise(_) => &d::NOISE,
            Kernel::Generalize(_) | Kernel::Level(_) => &d::GENERALIZE,
            Kernel::Scrub(_) => &d::SCRUB,
            Kernel::Custom(t, _) => t.descriptor(),
        }
    }

    /// Apply to one input array.
    pub fn apply(&self, array: &ArrayRef) -> std::result::Result<ArrayRef, KernelError> {
        match self {
            Kernel::Keep => Ok(Arc::clone(array)),
            Kernel::Redact(k) => k.apply(array),
            Kernel::Mask(k) => k.apply(array),
            Kernel::Tokenize(k) => k.apply(array),
            Kernel::Encrypt(k) => k.apply(array),
            Kernel::EncryptDeterministic(k) => k.apply(array),
            Kernel::Fpe(k) => k.apply(array),
            Kernel::ShiftDate(_) | Kernel::Noise(_) => Err(KernelError::Parameter(format!(
                "{} needs its keyed_by column beside the values",
                self.descriptor().name
            ))),
            Kernel::Generalize(k) => k.apply(array),
            Kernel::Level(k) => k.apply(array),
            Kernel::Scrub(k) => k.apply(array),
            Kernel::Custom(_, k) => k.apply(array),
        }
    }

    /// Apply with the row-aligned `keyed_by` column, for the kernels keyed by one
    /// ([`Kernel::ShiftDate`], [`Kernel::Noise`]); the others ignore it.
    pub fn apply_keyed(
        &self,
        array: &ArrayRef,
        keyed_by: Option<&ArrayRef>,
    ) -> std::result::Result<ArrayRef, KernelError> {
        match (self, keyed_by) {
            (Kernel::ShiftDate(k), Some(s)) => k.apply_with(array, s),
            (Kernel::Noise(k), Some(s)) => k.apply_with(array, s),
            _ => self.apply(array),
        }
    }

    /// Build the kernel for `action` on a column of `input` type; returns it and the output type.
    pub fn build(
        action: &Action,
        input: &DataType,
        keyring: &Keyring,
    ) -> std::result::Result<(Kernel, DataType), KernelBuildError> {
        Ok(match action {
            Action::Keep => (Kernel::Keep, input.clone()),
            Action::Drop => {
                return Err(KernelBuildError::Kernel(KernelError::Parameter(
                    "drop has no kernel".into(),
                )));
            }
            Action::Redact { replacement } => {
                let k = Redactor::new(input, replacement.as_deref())?;
                (Kernel::Redact(k), input.clone())
            }
            Action::Mask(m) => {
                let t = Masker::output_type(input)?;
                (
                    Kernel::Mask(Masker::new(m.keep_first, m.keep_last, m.mask_char)),
                    t,
                )
            }
            Action::Tokenize(t) => {
                let out = Tokenizer::output_type(input)?;
                let key = keyring
                    .deterministic_key(&t.key)
                    .map_err(KernelBuildError::Key)?;
                (
                    Kernel::Tokenize(Tokenizer::new(key, &t.domain, t.length, &t.prefix)?),
                    out,
                )
            }
            Action::Encrypt(e) => {
                let out = Encryptor::output_type(input)?;
                let key = keyring.data_key(&e.key).map_err(KernelBuildError::Key)?;
                (
                    Kernel::Encrypt(Box::new(Encryptor::new(key, &e.domain)?)),
                    out,
                )
            }
            Action::EncryptDeterministic(e) => {
                let out = crate::kernels::SivEncryptor::output_type(input)?;
                let key = keyring
                    .deterministic_key(&e.key)
                    .map_err(KernelBuildError::Key)?;
                (
                    Kernel::EncryptDeterministic(Box::new(crate::kernels::SivEncryptor::new(
                        key,
                        &key.reference(),
                        &e.domain,
                    )?)),
                    out,
                )
            }
            Action::Fpe(f) => {
                let out = crate::kernels::Fpe::output_type(input)?;
                let key = keyring
                    .deterministic_key(&f.key)
                    .map_err(KernelBuildError::Key)?;
                (
                    Kernel::Fpe(Box::new(crate::kernels::Fpe::new(key, f)?)),
                    out,
                )
            }
            Action::ShiftDate(s) => {
                let out = crate::kernels::DateShifter::output_type(input)?;
                let key = keyring
                    .deterministic_key(&s.key)
                    .map_err(KernelBuildError::Key)?;
                (
                    Kernel::ShiftDate(Box::new(crate::kernels::DateShifter::new(key, s)?)),
                    out,
                )
            }
            Action::Noise(n) => {
                let out = crate::kernels::Noiser::output_type(input)?;
                let key = keyring
                    .deterministic_key(&n.key)
                    .map_err(KernelBuildError::Key)?;
                (
                    Kernel::Noise(Box::new(crate::kernels::Noiser::new(key, n)?)),
                    out,
                )
            }
            Action::Scrub(spec) => {
                let t = crate::kernels::Scrubber::output_type(input)?;
                let k = crate::kernels::Scrubber::new(
                    &spec.set,
                    spec.recognizers.as_deref(),
                    &spec.mode,
                    keyring,
                )
                .map_err(KernelBuildError::Key)?;
                (Kernel::Scrub(Box::new(k)), t)
            }
            Action::Generalize(spec) => {
                let g = Generalizer::new(spec, input)?;
                let t = g.output_type();
                (Kernel::Generalize(g), t)
            }
            Action::Custom(c) => {
                let name = c.transform.descriptor().name;
                let out = c.transform.output_type(input).map_err(|hint| {
                    KernelError::UnsupportedType {
                        action: name,
                        data_type: input.clone(),
                        hint: hint.message,
                    }
                })?;
                let k = c
                    .transform
                    .kernel(&c.params, input)
                    .map_err(|p| KernelError::Parameter(p.message))?;
                (Kernel::Custom(c.transform, k), out)
            }
        })
    }
}

/// Why a kernel could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelBuildError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Key(Error),
}

/// One output column.
#[derive(Debug)]
pub struct ColumnPlan {
    pub input_index: usize,
    pub input_type: DataType,
    pub rule: Field,
    pub kernel: Kernel,
    pub output_field: Arc<ArrowField>,
    /// Fingerprint of the key used, if any.
    pub key_fingerprint: Option<String>,
    /// The input column keying the kernel's draws (`shift_date`, `noise`).
    pub keyed_by: Option<usize>,
}

/// An input column left out of the output, and why.
#[derive(Debug, Clone)]
pub struct DroppedColumn {
    pub name: String,
    pub data_type: DataType,
    /// `policy` (the policy says drop) or `unlisted` (not in the policy, `unlisted: drop`).
    pub reason: &'static str,
}

/// A policy bound to one input schema.
#[derive(Debug)]
pub struct Plan {
    pub input_schema: SchemaRef,
    pub output_schema: SchemaRef,
    pub columns: Vec<ColumnPlan>,
    pub dropped: Vec<DroppedColumn>,
    /// Rows to drop (classes the privacy block suppresses), applied after the kernels.
    pub row_filter: Option<Arc<RowFilter>>,
    /// Consent enforcement, applied before the kernels (docs/CONSENT.md).
    pub consent: Option<Arc<consent::ConsentGate>>,
}

impl Plan {
    /// Check `policy` against `schema` and build every kernel. `input` names the data in errors.
    pub fn new(policy: &Policy, schema: SchemaRef, keyring: &Keyring, input: &str) -> Result<Plan> {
        let mut columns = Vec::new();
        let mut dropped = Vec::new();
        let mut problems = Vec::new();
        let mut seen = HashMap::new();
        for (i, f) in schema.fields().iter().enumerate() {
            if seen.insert(f.name().clone(), i).is_some() {
                problems.push(PlanProblem::DuplicateColumn {
                    column: f.name().clone(),
                });
                continue;
            }
            let Some(rule) = policy.fields.get(f.name()) else {
                match policy.unlisted {
                    Unlisted::Drop => dropped.push(DroppedColumn {
                        name: f.name().clone(),
                        data_type: f.data_type().clone(),
                        reason: "unlisted",
                    }),
                    Unlisted::Error => problems.push(PlanProblem::UnlistedColumn {
                        column: f.name().clone(),
                        data_type: f.data_type().to_string(),
                        policy: policy.source.clone(),
                    }),
                }
                continue;
            };
            if rule.action == Action::Drop {
                dropped.push(DroppedColumn {
                    name: f.name().clone(),
                    data_type: f.data_type().clone(),
                    reason: "policy",
                });
                continue;
            }
            match Kernel::build(&rule.action, f.data_type(), keyring) {
                Ok((kernel, out_type)) => {
                    let keyed_by = match rule.action.keyed_by() {
                        None => None,
                        Some(c) => match schema.index_of(c) {
                            Ok(j) => Some(j),
                            Err(_) => {
                                problems.push(PlanProblem::Misfit {
                                    field: rule.input_name.clone(),
                                    line: rule.line,
                                    column: rule.column,
                                    message: format!(
                                        "`keyed_by` names {c:?}, which is not a column of the input"
                                    ),
                                });
                                continue;
                            }
                        },
                    };
                    let key_fingerprint = rule
                        .action
                        .key_id()
                        .and_then(|id| keyring.get(id).ok())
                        .map(|k| k.fingerprint());
                    let mut metadata = field_metadata(rule, f.data_type());
                    // The exact key version used (`k1@v2`), so decryption finds it after a
                    // later rotation changes the primary.
                    if let Some(r) = rule.action.key_id().and_then(|id| keyring.resolve(id)) {
                        metadata.insert(meta::KEY_ID.into(), r);
                    }
                    let output_field = Arc::new(
                        ArrowField::new(&rule.output_name, out_type, true).with_metadata(metadata),
                    );
                    columns.push(ColumnPlan {
                        input_index: i,
                        input_type: f.data_type().clone(),
                        rule: rule.clone(),
                        kernel,
                        output_field,
                        key_fingerprint,
                        keyed_by,
                    });
                }
                Err(KernelBuildError::Key(e)) => {
                    return Err(e);
                }
                Err(KernelBuildError::Kernel(e)) => problems.push(PlanProblem::Misfit {
                    field: rule.input_name.clone(),
                    line: rule.line,
                    column: rule.column,
                    message: e.to_string(),
                }),
            }
        }
        for (name, rule) in &policy.fields {
            if !seen.contains_key(name) {
                problems.push(PlanProblem::UnknownColumn {
                    field: name.clone(),
                    line: rule.line,
                    column: rule.column,
                    columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                });
            }
        }
        if problems.is_empty() && columns.is_empty() {
            problems.push(PlanProblem::NoColumns {
                policy: policy.source.clone(),
            });
        }
        if !problems.is_empty() {
            return Err(Error::Plan {
                input: input.to_string(),
                problems,
            });
        }
        let output_schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Arc::clone(&c.output_field))
                .collect::<Vec<_>>(),
        ));
        Ok(Plan {
            input_schema: schema,
            output_schema,
            columns,
            dropped,
            row_filter: None,
            consent: None,
        })
    }
}

/// Short per-column provenance stored in the Arrow field metadata.
fn field_metadata(rule: &Field, input_type: &DataType) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert(meta::SOURCE.into(), rule.input_name.clone());
    m.insert(meta::ACTION.into(), rule.action.kind().keyword().into());
    m.insert(
        meta::STATUS.into(),
        crate::policy::status_of(&rule.action, rule.category.is_some()).into(),
    );
    let bases: Vec<String> = rule
        .bases
        .iter()
        .filter_map(|(j, b)| b.reference(*j).map(|r| r.article.to_string()))
        .collect();
    m.insert(meta::BASIS.into(), bases.join("; "));
    match &rule.action {
        Action::Tokenize(t) => {
            m.insert(meta::KEY_ID.into(), t.key.clone());
            m.insert(meta::DOMAIN.into(), t.domain.clone());
        }
        Action::Scrub(s) => {
            if let Some(k) = rule.action.key_id() {
                m.insert(meta::KEY_ID.into(), k.to_string());
            }
            let _ = s;
        }
        Action::Encrypt(e) | Action::EncryptDeterministic(e) => {
            m.insert(meta::KEY_ID.into(), e.key.clone());
            m.insert(meta::DOMAIN.into(), e.domain.clone());
            // A dictionary's values are what was encrypted; decrypt restores their type.
            let t = crate::kernels::value_type(input_type);
            m.insert(meta::SOURCE_TYPE.into(), t.to_string());
        }
        Action::ShiftDate(crate::kernels::subject::ShiftDateSpec { key, domain, .. })
        | Action::Noise(crate::kernels::subject::NoiseSpec { key, domain, .. }) => {
            m.insert(meta::KEY_ID.into(), key.clone());
            m.insert(meta::DOMAIN.into(), domain.clone());
        }
        Action::Fpe(f) => {
            m.insert(meta::KEY_ID.into(), f.key.clone());
            m.insert(meta::DOMAIN.into(), f.domain.clone());
            let t = crate::kernels::value_type(input_type);
            m.insert(meta::SOURCE_TYPE.into(), t.to_string());
            // Everything but the key that deciphering needs.
            m.insert(meta::FPE.into(), fpe_format(f));
        }
        _ => {}
    }
    m
}

/// The `cloakline.fpe` metadata of an `fpe` column.
pub fn fpe_format(f: &crate::kernels::FpeSpec) -> String {
    serde_json::json!({
        "alphabet": f.alphabet,
        "characters": f.characters,
        "separators": f.separators,
        "keep_first": f.keep_first,
        "keep_last": f.keep_last,
        "luhn": f.luhn,
    })
    .to_string()
}

/// Apply the policy's `type:` overrides to an inferred text-format schema.
pub fn apply_type_overrides(policy: &Policy, schema: &Schema) -> SchemaRef {
    let fields: Vec<ArrowField> = schema
        .fields()
        .iter()
        .map(|f| {
            let dt = policy
                .fields
                .get(f.name())
                .and_then(|r| r.input_type.as_deref())
                .and_then(|t| parse_type_name(t).ok());
            match dt {
                Some(dt) => ArrowField::new(f.name(), dt, true),
                None => f.as_ref().clone(),
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};

    fn policy(fields: &str, unlisted: &str) -> Policy {
        Policy::from_yaml_str(
            &format!(
                "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nunlisted: {unlisted}\nfields:\n{fields}"
            ),
            "t.yaml",
        )
        .unwrap()
    }

    fn schema(cols: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| ArrowField::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn plan_errors_are_structured_for_callers() {
        let p = policy(
            "  a: { action: mask, keep_last: 2, basis: contract }\n  gone: { action: keep, basis: contract }\n  t: { action: tokenize, key: k9, basis: contract }\n",
            "error",
        );
        let s = schema(&[
            ("a", DataType::Date32),
            ("extra", DataType::Int64),
            ("t", DataType::Utf8),
        ]);
        // A missing key stops the plan first, as its own variant.
        match Plan::new(
            &p,
            Arc::clone(&s),
            &Keyring::generate_in_memory(&["k1"]),
            "in",
        ) {
            Err(Error::MissingKey {
                key_id, present, ..
            }) => {
                assert_eq!(key_id, "k9");
                assert_eq!(present, ["k1"]);
            }
            other => panic!("expected MissingKey, got {other:?}"),
        }
        let ring = Keyring::generate_in_memory(&["k9"]);
        let Err(Error::Plan { input, problems }) = Plan::new(&p, s, &ring, "in") else {
            panic!("expected a plan error");
        };
        assert_eq!(input, "in");
        assert!(
            problems
                .iter()
                .any(|q| matches!(q, PlanProblem::Misfit { field, line: 8, .. } if field == "a")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(
                |q| matches!(q, PlanProblem::UnlistedColumn { column, .. } if column == "extra")
            )
        );
        assert!(problems.iter().any(
            |q| matches!(q, PlanProblem::UnknownColumn { field, columns, .. } if field == "gone" && columns == &["a", "extra", "t"])
        ));
    }

    #[test]
    fn misfits_are_all_reported_before_any_data() {
        let p = policy(
            "  a: { action: mask, keep_last: 2, basis: contract }\n  b: { action: generalize, to: year, basis: contract }\n  c: { action: generalize, keep_prefix: 3, basis: contract }\n  d: { action: generalize, bin_width: 10, basis: contract }\n",
            "error",
        );
        let s = schema(&[
            ("a", DataType::Date32),
            ("b", DataType::Utf8),
            ("c", DataType::Int64),
            ("d", DataType::Utf8View),
        ]);
        let e = Plan::new(&p, s, &Keyring::default(), "in.parquet")
            .unwrap_err()
            .to_string();
        for f in [
            "field `a`",
            "field `b`",
            "field `c`",
            "field `d`",
            "in.parquet",
            "line 8",
        ] {
            assert!(e.contains(f), "{f} missing in {e}");
        }
        assert_eq!(Error::plan("x", "y").exit_code(), 2);
    }

    #[test]
    fn output_schema_follows_input_order_and_drops() {
        let p = policy(
            "  id: { action: tokenize, key: k1, basis: contract, rename: id_token }\n  secret: { action: drop }\n",
            "drop",
        );
        let ring = Keyring::generate_in_memory(&["k1"]);
        let s = schema(&[
            ("secret", DataType::Utf8),
            ("id", DataType::Int64),
            ("extra", DataType::Utf8),
        ]);
        let plan = Plan::new(&p, s.clone(), &ring, "in").unwrap();
        assert_eq!(plan.output_schema.fields().len(), 1);
        assert_eq!(plan.output_schema.field(0).name(), "id_token");
        assert_eq!(plan.output_schema.field(0).metadata()[meta::KEY_ID], "k1");
        let reasons: Vec<_> = plan
            .dropped
            .iter()
            .map(|d| (d.name.as_str(), d.reason))
            .collect();
        assert_eq!(reasons, [("secret", "policy"), ("extra", "unlisted")]);
        let batch = RecordBatch::try_new(
            s,
            vec![
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
                Arc::new(Int64Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec!["e", "f"])),
            ],
        )
        .unwrap();
        let (out, counts) = crate::engine::transform_batch(&plan, &batch).unwrap();
        assert_eq!(out.num_rows(), 2);
        assert_eq!(counts[0].transformed, 1);
        assert_eq!(counts[0].nulls, 1);
    }

    #[test]
    fn a_policy_that_drops_every_column_is_refused() {
        let s = schema(&[("a", DataType::Utf8), ("b", DataType::Int64)]);
        for (fields, unlisted) in [
            ("  a: { action: drop }\n  b: { action: drop }\n", "error"),
            ("  a: { action: drop }\n", "drop"),
        ] {
            let e = Plan::new(
                &policy(fields, unlisted),
                s.clone(),
                &Keyring::default(),
                "in",
            )
            .unwrap_err();
            let m = e.to_string();
            assert!(m.contains("no column in the output"), "{m}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn dictionary_columns_are_transformed_through_their_values() {
        use arrow::array::{DictionaryArray, Int32Array};
        use arrow::datatypes::Int32Type;
        let p = policy(
            "  t: { action: tokenize, key: k1, basis: contract }\n  e: { action: encrypt, key: k1, basis: contract }\n  m: { action: mask, keep_last: 2, basis: contract }\n  g: { action: generalize, keep_prefix: 2, basis: contract }\n  n: { action: generalize, bin_width: 10, basis: contract }\n  s: { action: scrub, basis: contract }\n",
            "error",
        );
        let ring = Keyring::generate_in_memory(&["k1"]);
        let dict = |values: Vec<Option<&str>>| -> ArrayRef {
            let d: DictionaryArray<Int32Type> = values.into_iter().collect();
            Arc::new(d)
        };
        let text = dict(vec![
            Some("x"),
            Some("ab@example.com"),
            None,
            Some("12345"),
            Some("12345"),
        ]);
        let num_keys = Int32Array::from(vec![Some(0), Some(1), None, Some(1), Some(0)]);
        let num: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(
                num_keys,
                Arc::new(Int64Array::from(vec![7, 42])),
            )
            .unwrap(),
        );
        let dt = |a: &ArrayRef| a.data_type().clone();
        let names = ["t", "e", "m", "g", "n", "s"];
        let s = schema(&[
            ("t", dt(&text)),
            ("e", dt(&text)),
            ("m", dt(&text)),
            ("g", dt(&text)),
            ("n", dt(&num)),
            ("s", dt(&text)),
        ]);
        let plan = Plan::new(&p, s.clone(), &ring, "in").unwrap();
        let cols: Vec<ArrayRef> = names
            .iter()
            .map(|n| {
                if *n == "n" {
                    Arc::clone(&num)
                } else {
                    Arc::clone(&text)
                }
            })
            .collect();
        let batch = RecordBatch::try_new(s, cols).unwrap();
        // Whole and sliced batches (a slice keeps the dictionary but offsets the keys).
        for b in [batch.clone(), batch.slice(1, 4)] {
            let (out, _) = crate::engine::transform_batch(&plan, &b).unwrap();
            let strings = |i: usize| crate::kernels::test_util::strings(out.column(i));
            let plain =
                crate::kernels::test_util::strings(&crate::kernels::plain(b.column(0)).unwrap());
            let off = if b.num_rows() == 5 { 0 } else { 1 };
            // Nulls stay null; equal values give equal tokens; values never pass in clear.
            for (i, name) in names.iter().enumerate() {
                let col = strings(i);
                assert_eq!(col.len(), b.num_rows());
                assert_eq!(col[2 - off], None, "column {name}");
            }
            let t = strings(0);
            assert_eq!(t[3 - off], t[4 - off]);
            assert_ne!(t[3 - off].as_deref(), Some("12345"));
            assert!(strings(1)[3 - off].as_deref().is_some_and(|v| v != "12345"));
            assert_eq!(strings(2)[3 - off].as_deref(), Some("***45"));
            assert_eq!(strings(3)[3 - off].as_deref(), Some("12"));
            assert_eq!(strings(4)[3 - off].as_deref(), Some("40-49"));
            assert_eq!(
                strings(5)[1 - off]
                    .as_deref()
                    .map(|v| v.contains("example")),
                Some(false)
            );
            let want = [
                Some("x"),
                Some("ab@example.com"),
                None,
                Some("12345"),
                Some("12345"),
            ];
            let want: Vec<Option<String>> =
                want[off..].iter().map(|v| v.map(str::to_string)).collect();
            assert_eq!(plain, want);
        }
    }

    #[test]
    fn type_names() {
        assert_eq!(
            parse_type_name("decimal(12, 2)").unwrap(),
            DataType::Decimal128(12, 2)
        );
        assert_eq!(parse_type_name("String").unwrap(), DataType::Utf8);
        assert!(parse_type_name("decimal(40,2)").is_err());
        assert!(parse_type_name("blob").is_err());
    }

    #[test]
    fn metadata_names_the_exact_key_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        Keyring::generate_into_file(&p, "k1").unwrap();
        Keyring::rotate_in_file(&p, "k1").unwrap();
        let ring = Keyring::load(&p).unwrap();
        let pol = policy(
            "  e: { action: encrypt, key: k1, basis: contract }\n",
            "error",
        );
        let sch = schema(&[("e", DataType::Utf8)]);
        let plan = Plan::new(&pol, sch, &ring, "t").unwrap();
        assert_eq!(
            plan.output_schema.field(0).metadata()[meta::KEY_ID],
            "k1@v2"
        );
        assert_eq!(ring.ids_only().resolve("k1").as_deref(), Some("k1@v2"));
    }
}

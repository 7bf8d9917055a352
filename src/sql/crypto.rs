//! `encrypt(value, key_id [, domain])`, `encrypt_deterministic(value, key_id [, domain])`,
//! `decrypt(ciphertext [, domain])` (opens both envelopes), `fpe` and `fpe_decrypt`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::tokenize::check_value_type;
use super::{
    KeyringRef, apply_to_value, check_arity, default_domain, exec_error, literal_string, plan_error,
};
use crate::kernels::{Decryptor, Encryptor, Fpe, FpeSpec, SivEncryptor, is_string_type};

/// `encrypt`: the AES-256-GCM envelope of the value's canonical string (docs/FORMATS.md).
/// Volatile: a fresh random nonce per value, so the same input encrypts differently each
/// time. `encrypt_deterministic` ([`EncryptFunc::deterministic`]): the AES-SIV envelope,
/// equal for equal values, so the column still joins. `decrypt` opens both.
///
/// ```sql
/// SELECT encrypt(national_id, 'k2') FROM customers;                 -- domain 'national_id'
/// SELECT encrypt_deterministic(national_id, 'k2') FROM customers;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EncryptFunc {
    signature: Signature,
    keyring: KeyringRef,
    deterministic: bool,
}

/// Opens envelopes made by `encrypt` (or `cloakline apply`); the key id is read from the
/// envelope. Returns the canonical string of the original value.
///
/// ```sql
/// SELECT decrypt(national_id) FROM customers_shared;            -- domain 'national_id'
/// SELECT decrypt(nid_enc, 'national_id') FROM t;                -- explicit domain
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecryptFunc {
    signature: Signature,
    keyring: KeyringRef,
}

impl EncryptFunc {
    pub fn new(keyring: KeyringRef) -> Self {
        EncryptFunc {
            signature: Signature::variadic_any(Volatility::Volatile),
            keyring,
            deterministic: false,
        }
    }

    /// `encrypt_deterministic`.
    pub fn deterministic(keyring: KeyringRef) -> Self {
        EncryptFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
            deterministic: true,
        }
    }
}

impl DecryptFunc {
    pub fn new(keyring: KeyringRef) -> Self {
        DecryptFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
        }
    }
}

fn domain_arg(
    f: &str,
    position: usize,
    fields: &[FieldRef],
    scalars: &[Option<&ScalarValue>],
) -> DFResult<String> {
    match scalars.get(position - 1) {
        Some(s) => Ok(
            literal_string(f, position, "domain", *s)?.unwrap_or_else(|| default_domain(fields))
        ),
        None => Ok(default_domain(fields)),
    }
}

impl ScalarUDFImpl for EncryptFunc {
    fn name(&self) -> &str {
        if self.deterministic {
            "encrypt_deterministic"
        } else {
            "encrypt"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        let usage = if self.deterministic {
            "encrypt_deterministic(value, key_id [, domain])"
        } else {
            "encrypt(value, key_id [, domain])"
        };
        check_arity(self.name(), arg_types.len(), 2, 3, usage)?;
        check_value_type(self.name(), &arg_types[0])?;
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        let (key, _) = key_and_domain(self.name(), args.arg_fields, args.scalar_arguments)?;
        self.keyring
            .0
            .check_data_key(&key)
            .map_err(|e| plan_error(self.name(), e))?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let (key_id, domain) = key_and_domain(self.name(), &args.arg_fields, &refs)?;
        let ring = &self.keyring.0;
        let fail = |e: &dyn std::fmt::Display| exec_error(self.name(), e);
        if self.deterministic {
            let key = ring.deterministic_key(&key_id).map_err(|e| fail(&e))?;
            let enc = SivEncryptor::new(key, &key.reference(), &domain).map_err(|e| fail(&e))?;
            apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| {
                enc.apply(v)
            })
        } else {
            let key = ring.data_key(&key_id).map_err(|e| fail(&e))?;
            let enc = Encryptor::new(key, &domain).map_err(|e| fail(&e))?;
            apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| {
                enc.apply(v)
            })
        }
    }
}

impl ScalarUDFImpl for DecryptFunc {
    fn name(&self) -> &str {
        "decrypt"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(
            self.name(),
            arg_types.len(),
            1,
            2,
            "decrypt(ciphertext [, domain])",
        )?;
        if !is_string_type(&arg_types[0]) && arg_types[0] != DataType::Null {
            return Err(plan_error(
                self.name(),
                format!(
                    "argument 1 (ciphertext) has type {}; envelopes are strings",
                    arg_types[0]
                ),
            ));
        }
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        domain_arg(self.name(), 2, args.arg_fields, args.scalar_arguments)?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let domain = domain_arg(self.name(), 2, &args.arg_fields, &refs)?;
        let mut dec = Decryptor::new(&self.keyring.0, &domain);
        apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| {
            dec.apply(v)
        })
    }
}

fn key_and_domain(
    f: &str,
    fields: &[FieldRef],
    scalars: &[Option<&ScalarValue>],
) -> DFResult<(String, String)> {
    let key = literal_string(f, 2, "key_id", scalars.get(1).copied().flatten())?
        .ok_or_else(|| plan_error(f, "argument 2 (key_id) is null; name a key of the keyring"))?;
    Ok((key, domain_arg(f, 3, fields, scalars)?))
}

/// NIST FF1 format-preserving encryption over a named alphabet (default `digits`); the
/// policy action `fpe` also takes separators, kept characters and the Luhn option.
/// `fpe_decrypt` reverses it with the same arguments.
///
/// ```sql
/// SELECT fpe(account_no, 'k1') FROM accounts;                           -- digits, domain 'account_no'
/// SELECT fpe(plate, 'k1', 'plate', 'upper_alphanumeric') FROM cars;
/// SELECT fpe_decrypt(account_no, 'k1') FROM accounts_shared;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FpeFunc {
    signature: Signature,
    keyring: KeyringRef,
    decrypt: bool,
}

impl FpeFunc {
    pub fn new(keyring: KeyringRef, decrypt: bool) -> Self {
        FpeFunc {
            signature: Signature::variadic_any(Volatility::Immutable),
            keyring,
            decrypt,
        }
    }

    fn spec(&self, fields: &[FieldRef], scalars: &[Option<&ScalarValue>]) -> DFResult<FpeSpec> {
        let f = self.name();
        let (key, domain) = key_and_domain(f, fields, scalars)?;
        let alphabet = match scalars.get(3) {
            Some(s) => literal_string(f, 4, "alphabet", *s)?.unwrap_or_else(|| "digits".into()),
            None => "digits".into(),
        };
        let characters = crate::kernels::fpe::named_alphabet(&alphabet).ok_or_else(|| {
            let names: Vec<&str> = crate::kernels::fpe::NAMED_ALPHABETS
                .iter()
                .map(|(n, _)| *n)
                .collect();
            plan_error(
                f,
                format!("argument 4 (alphabet) must be one of {}", names.join(", ")),
            )
        })?;
        Ok(FpeSpec {
            key,
            domain,
            alphabet,
            characters: characters.to_string(),
            separators: String::new(),
            keep_first: 0,
            keep_last: 0,
            luhn: false,
            on_invalid: crate::kernels::fpe::OnInvalid::Error,
        })
    }
}

impl ScalarUDFImpl for FpeFunc {
    fn name(&self) -> &str {
        if self.decrypt { "fpe_decrypt" } else { "fpe" }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        check_arity(
            self.name(),
            arg_types.len(),
            2,
            4,
            if self.decrypt {
                "fpe_decrypt(value, key_id [, domain [, alphabet]])"
            } else {
                "fpe(value, key_id [, domain [, alphabet]])"
            },
        )?;
        check_value_type(self.name(), &arg_types[0])?;
        Ok(DataType::Utf8)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DFResult<FieldRef> {
        let types = super::field_types(args.arg_fields);
        self.return_type(&types)?;
        let spec = self.spec(args.arg_fields, args.scalar_arguments)?;
        self.keyring
            .0
            .check_data_key(&spec.key)
            .map_err(|e| plan_error(self.name(), e))?;
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let sc = super::scalars(&args.args);
        let refs = super::scalar_refs(&sc);
        let spec = self.spec(&args.arg_fields, &refs)?;
        let key = self
            .keyring
            .0
            .deterministic_key(&spec.key)
            .map_err(|e| exec_error(self.name(), e))?;
        let f = Fpe::new(key, &spec).map_err(|e| exec_error(self.name(), e))?;
        let decrypt = self.decrypt;
        apply_to_value(self.name(), &args.args[0], &DataType::Utf8, |v| {
            f.apply_direction(v, decrypt)
        })
    }
}

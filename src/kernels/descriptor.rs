//! What each transform is, apart from its code: one [`Transform`] per action, listed in
//! [`TRANSFORMS`]. Provenance (status, note, DPV measures), OpenLineage (subtype, masking), the
//! SQL layer (function name, volatility, key argument) and the Parquet writer (no dictionary,
//! no statistics) read these entries instead of keeping lists of their own, so a new transform
//! is described in one place.

/// How a transform is exposed as a SQL function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlExposure {
    /// The function name (`tokenize(value, key_id, …)`).
    pub function: &'static str,
    /// Position of the key-id argument, when the function takes one (recorded in provenance).
    pub key_argument: Option<usize>,
}

/// Everything about one transform that is not its kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transform {
    /// The policy keyword (`action: mask`).
    pub name: &'static str,
    /// The same input always gives the same output (false: a random nonce, as in `encrypt`).
    pub deterministic: bool,
    /// Whoever holds the key can restore the input.
    pub reversible: bool,
    /// Values are hidden or coarsened (OpenLineage `masking: true`).
    pub obfuscating: bool,
    /// Provenance status of a field after this transform (`keep` distinguishes personal data).
    pub status: &'static str,
    /// Provenance note: what the status means for a reviewer.
    pub status_note: &'static str,
    /// DPV technical measures this transform applies.
    pub dpv_measures: &'static [&'static str],
    /// OpenLineage column-lineage transformation subtype.
    pub lineage_subtype: &'static str,
    /// Output looks random (tokens, envelopes): Parquet dictionaries and min/max statistics
    /// only cost time.
    pub random_output: bool,
    /// The SQL function, when there is one.
    pub sql: Option<SqlExposure>,
}

impl SqlExposure {
    /// A SQL function taking the value first and no key.
    pub const fn new(function: &'static str) -> SqlExposure {
        SqlExposure {
            function,
            key_argument: None,
        }
    }
}

impl Transform {
    /// A deterministic, irreversible, obfuscating transform with no SQL function, whose
    /// output is still personal data: the careful defaults for a new transform. Change them
    /// with the `with_…` methods.
    pub const fn new(name: &'static str) -> Transform {
        Transform {
            name,
            deterministic: true,
            reversible: false,
            obfuscating: true,
            status: "transformed personal data",
            status_note: "Values changed by a transform registered by the deployment; still \
                          personal data unless an assessment shows otherwise.",
            dpv_measures: &[],
            lineage_subtype: "TRANSFORMATION",
            random_output: false,
            sql: None,
        }
    }

    #[must_use]
    pub const fn with_flags(
        mut self,
        deterministic: bool,
        reversible: bool,
        obfuscating: bool,
    ) -> Self {
        self.deterministic = deterministic;
        self.reversible = reversible;
        self.obfuscating = obfuscating;
        self
    }

    /// The provenance status and its note for a reviewer (never "anonymised").
    #[must_use]
    pub const fn with_status(mut self, status: &'static str, note: &'static str) -> Self {
        self.status = status;
        self.status_note = note;
        self
    }

    #[must_use]
    pub const fn with_dpv_measures(mut self, measures: &'static [&'static str]) -> Self {
        self.dpv_measures = measures;
        self
    }

    /// Expose it as a SQL function `function(value)`.
    #[must_use]
    pub const fn with_sql(mut self, function: &'static str) -> Self {
        self.sql = Some(SqlExposure::new(function));
        self
    }
}

const HMAC_PSEUDONYM: &[&str] = &[
    "dpv:DeterministicPseudonymisation",
    "dpv:HashMessageAuthenticationCode",
];

pub const KEEP: Transform = Transform {
    name: "keep",
    deterministic: true,
    reversible: true,
    obfuscating: false,
    status: "unchanged",
    status_note: "Copied as is: if it was personal data, it still is.",
    dpv_measures: &[],
    lineage_subtype: "IDENTITY",
    random_output: false,
    sql: None,
};

pub const DROP: Transform = Transform {
    name: "drop",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "removed",
    status_note: "Not in the output.",
    dpv_measures: &[],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: None,
};

pub const REDACT: Transform = Transform {
    name: "redact",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "redacted",
    status_note: "Every value replaced by null or one constant; nulls kept.",
    dpv_measures: &["dpv:DataRedaction"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "redact",
        key_argument: None,
    }),
};

pub const MASK: Transform = Transform {
    name: "mask",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "masked personal data",
    status_note: "Part of each value hidden; the rest is shown. Still personal data unless an assessment shows otherwise.",
    dpv_measures: &["dpv:DataRedaction"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "mask",
        key_argument: None,
    }),
};

pub const TOKENIZE: Transform = Transform {
    name: "tokenize",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "pseudonymised personal data",
    status_note: "Keyed deterministic pseudonym: linkable and re-identifiable by whoever holds the key or a token map. Personal data (GDPR Art. 4(5), Recital 26); de-identified, not anonymised (PIPL Art. 73(3)).",
    dpv_measures: HMAC_PSEUDONYM,
    lineage_subtype: "TRANSFORMATION",
    random_output: true,
    sql: Some(SqlExposure {
        function: "tokenize",
        key_argument: Some(1),
    }),
};

pub const ENCRYPT: Transform = Transform {
    name: "encrypt",
    deterministic: false,
    reversible: true,
    obfuscating: true,
    status: "encrypted personal data",
    status_note: "Reversible by whoever holds the key: personal data protected by a security measure (GDPR Art. 32, PIPL Art. 51).",
    dpv_measures: &["dpv:SymmetricEncryption"],
    lineage_subtype: "TRANSFORMATION",
    random_output: true,
    sql: Some(SqlExposure {
        function: "encrypt",
        key_argument: Some(1),
    }),
};

pub const ENCRYPT_DETERMINISTIC: Transform = Transform {
    name: "encrypt_deterministic",
    deterministic: true,
    reversible: true,
    obfuscating: true,
    status: "deterministically encrypted personal data",
    status_note: "AES-SIV: equal values give equal ciphertexts, so the column joins and counts like the original, and whoever holds the key can restore it. Personal data protected by a security measure (GDPR Art. 32, PIPL Art. 51); de-identified, not anonymised.",
    dpv_measures: &[
        "dpv:SymmetricEncryption",
        "dpv:DeterministicPseudonymisation",
    ],
    lineage_subtype: "TRANSFORMATION",
    random_output: true,
    sql: Some(SqlExposure {
        function: "encrypt_deterministic",
        key_argument: Some(1),
    }),
};

pub const FPE: Transform = Transform {
    name: "fpe",
    deterministic: true,
    reversible: true,
    obfuscating: true,
    status: "format-preserving encrypted personal data",
    status_note: "NIST FF1: each value replaced by one of the same length and alphabet (kept characters and separators shown); equal values stay equal and whoever holds the key can restore them. Personal data protected by a security measure (GDPR Art. 32, PIPL Art. 51); de-identified, not anonymised.",
    dpv_measures: &[
        "dpv:SymmetricEncryption",
        "dpv:DeterministicPseudonymisation",
    ],
    lineage_subtype: "TRANSFORMATION",
    random_output: true,
    sql: Some(SqlExposure {
        function: "fpe",
        key_argument: Some(1),
    }),
};

pub const SHIFT_DATE: Transform = Transform {
    name: "shift_date",
    deterministic: true,
    reversible: true,
    obfuscating: true,
    status: "date-shifted personal data",
    status_note: "Every date of one subject moved by the same keyed offset (never zero, within the declared bound): intervals within a subject survive, calendar dates do not. Whoever holds the key and the keyed_by column can undo it. Still personal data.",
    dpv_measures: &["cl:DateShifting", "dpv:DeterministicPseudonymisation"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "shift_date",
        key_argument: Some(2),
    }),
};

pub const NOISE: Transform = Transform {
    name: "noise",
    deterministic: true,
    reversible: true,
    obfuscating: true,
    status: "perturbed personal data",
    status_note: "Keyed Laplace or Gaussian noise of the declared scale added to each value: aggregates stay close, single values are blurred. Reproducible, so no differential-privacy guarantee; whoever holds the key and the keyed_by column can remove it. Still personal data.",
    dpv_measures: &["cl:NoiseAddition"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "noise",
        key_argument: Some(2),
    }),
};

pub const GENERALIZE: Transform = Transform {
    name: "generalize",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "generalized personal data",
    status_note: "Coarsened values: still personal data unless a dataset-level assessment (e.g. k-anonymity) shows otherwise; this record makes no anonymisation claim.",
    dpv_measures: &["cl:Generalisation"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "generalize",
        key_argument: None,
    }),
};

/// Scrub with placeholders or masks; with tokens see [`SCRUB_TOKENS`].
pub const SCRUB: Transform = Transform {
    name: "scrub",
    deterministic: true,
    reversible: false,
    obfuscating: true,
    status: "scrubbed free text",
    status_note: "Free text with every entity the listed recognizers found replaced. Text around them is unchanged and may still contain personal data the recognizers do not cover (names, for one).",
    dpv_measures: &["dpv:DataRedaction"],
    lineage_subtype: "TRANSFORMATION",
    random_output: false,
    sql: Some(SqlExposure {
        function: "scrub",
        key_argument: Some(2),
    }),
};

/// Scrub that replaces entities with keyed tokens: a pseudonymisation measure.
pub const SCRUB_TOKENS: Transform = Transform {
    dpv_measures: HMAC_PSEUDONYM,
    ..SCRUB
};

/// Every policy action, in the order the policy documentation lists them.
pub const TRANSFORMS: &[Transform] = &[
    KEEP,
    DROP,
    REDACT,
    MASK,
    TOKENIZE,
    ENCRYPT,
    ENCRYPT_DETERMINISTIC,
    FPE,
    SHIFT_DATE,
    NOISE,
    GENERALIZE,
    SCRUB,
];

/// The transform a policy keyword (or recorded `cl:action`) names, built in or registered
/// ([`super::custom::register`]).
pub fn transform(name: &str) -> Option<&'static Transform> {
    TRANSFORMS
        .iter()
        .find(|t| t.name == name)
        .or_else(|| super::custom::custom(name).map(|t| t.descriptor()))
}

/// The transform a SQL function name belongs to (`decrypt` is the inverse of `encrypt`, not a
/// transform of its own).
pub fn sql_transform(function: &str) -> Option<&'static Transform> {
    let is = |t: &&Transform| t.sql.is_some_and(|s| s.function == function);
    TRANSFORMS.iter().find(is).or_else(|| {
        super::custom::customs()
            .into_iter()
            .map(|t| t.descriptor())
            .find(is)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for t in TRANSFORMS {
            assert_eq!(transform(t.name), Some(t));
            assert_eq!(TRANSFORMS.iter().filter(|u| u.name == t.name).count(), 1);
        }
        assert_eq!(transform("reverse"), None);
    }

    #[test]
    fn only_keep_is_an_identity_and_only_random_looking_outputs_skip_dictionaries() {
        for t in TRANSFORMS {
            assert_eq!(
                t.lineage_subtype == "IDENTITY",
                t.name == "keep",
                "{}",
                t.name
            );
            assert_eq!(t.obfuscating, t.name != "keep", "{}", t.name);
        }
        let random: Vec<_> = TRANSFORMS
            .iter()
            .filter(|t| t.random_output)
            .map(|t| t.name)
            .collect();
        assert_eq!(
            random,
            ["tokenize", "encrypt", "encrypt_deterministic", "fpe"]
        );
    }

    #[test]
    fn no_status_claims_anonymity() {
        for t in TRANSFORMS {
            let s = format!("{} {}", t.status, t.status_note).to_lowercase();
            assert!(!s.contains("anonymous"), "{}", t.name);
            assert!(
                !s.contains("anonymised")
                    || s.contains("not anonymised")
                    || s.contains("no anonymisation"),
                "{}",
                t.name
            );
        }
    }
}

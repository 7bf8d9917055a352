//! `scrub`: find personal data inside free text and replace each entity, leaving the text
//! around it unchanged.
//!
//! Entities are found by the recognizers of [`crate::recognizers`] (a regex plus a
//! validator each; overlapping matches resolve to the longest validated one). Each entity is
//! replaced by a typed placeholder (`<EMAIL>`), by a keyed token equal to what `tokenize`
//! gives for the same key, domain, length and prefix (so an email in a note and in the email
//! column get the same token), or by a mask.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::ArrayRef;
use arrow::datatypes::DataType;

use super::{KernelError, KernelResult, Masker, Tokenizer, is_string_type, map_strings};
use crate::keys::Keyring;
use crate::recognizers::{Match, RecognizerSet};

/// How entities are replaced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "replace_with", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScrubMode {
    /// `<EMAIL>`, `<PHONE>`, ...: the recognizer's name in capitals.
    Placeholder,
    /// A keyed token per entity; the domain defaults to the recognizer's name.
    Token {
        key: String,
        domains: BTreeMap<String, String>,
        length: usize,
        prefix: String,
    },
    /// Every character of the entity masked (grapheme-aware), keeping some at either end.
    Mask {
        mask_char: char,
        keep_first: usize,
        keep_last: usize,
    },
}

enum Replace {
    Placeholder(Vec<String>),
    Token(Vec<Tokenizer>),
    Mask(Masker),
}

impl std::fmt::Debug for Replace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Replace::Placeholder(_) => "Placeholder",
            Replace::Token(_) => "Token",
            Replace::Mask(_) => "Mask",
        })
    }
}

/// A scrub bound to its recognizers (and keys).
#[derive(Debug)]
pub struct Scrubber {
    set: RecognizerSet,
    /// Every recognizer of `set` runs, context-only ones included (they were asked for).
    context: Vec<usize>,
    replace: Replace,
    counts: Vec<AtomicU64>,
}

impl Scrubber {
    /// `recognizers`: names to run (default: every recognizer that needs no column context).
    pub fn new(
        all: &Arc<RecognizerSet>,
        recognizers: Option<&[String]>,
        mode: &ScrubMode,
        keyring: &Keyring,
    ) -> std::result::Result<Self, crate::Error> {
        let names: Vec<String> = match recognizers {
            Some(n) => n.to_vec(),
            None => all
                .recognizers()
                .iter()
                .filter(|r| !r.needs_context)
                .map(|r| r.name.clone())
                .collect(),
        };
        let set = all
            .subset(&names)
            .map_err(|m| crate::Error::plan("scrub", m))?;
        let context = (0..set.recognizers().len()).collect();
        let replace = match mode {
            ScrubMode::Placeholder => Replace::Placeholder(
                set.recognizers()
                    .iter()
                    .map(|r| format!("<{}>", r.name.to_uppercase()))
                    .collect(),
            ),
            ScrubMode::Token {
                key,
                domains,
                length,
                prefix,
            } => {
                let k = keyring.deterministic_key(key)?;
                let mut toks = Vec::new();
                for r in set.recognizers() {
                    let domain = domains.get(&r.name).unwrap_or(&r.name);
                    toks.push(
                        Tokenizer::new(k, domain, *length, prefix)
                            .map_err(|e| crate::Error::plan("scrub", e))?,
                    );
                }
                Replace::Token(toks)
            }
            ScrubMode::Mask {
                mask_char,
                keep_first,
                keep_last,
            } => Replace::Mask(Masker::new(*keep_first, *keep_last, *mask_char)),
        };
        let counts = (0..set.recognizers().len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Scrubber {
            set,
            context,
            replace,
            counts,
        })
    }

    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        if is_string_type(super::value_type(input)) {
            Ok(DataType::Utf8)
        } else {
            Err(KernelError::UnsupportedType {
                action: "scrub",
                data_type: input.clone(),
                hint: "scrub applies to text columns".into(),
            })
        }
    }

    /// Names of the recognizers that run.
    pub fn recognizer_names(&self) -> Vec<String> {
        self.set
            .recognizers()
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// Entities replaced so far, per recognizer name.
    pub fn entity_counts(&self) -> Vec<(String, u64)> {
        self.set
            .recognizers()
            .iter()
            .zip(&self.counts)
            .map(|(r, c)| (r.name.clone(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Scrub one text into `out`; returns the number of entities replaced.
    pub fn scrub_into(
        &self,
        text: &str,
        matches: &mut Vec<Match>,
        out: &mut String,
        seen: &mut [u64],
    ) {
        self.set.find(text, &self.context, matches);
        let mut last = 0;
        for m in matches.iter() {
            out.push_str(&text[last..m.start]);
            let entity = &text[m.start..m.end];
            match &self.replace {
                Replace::Placeholder(p) => out.push_str(&p[m.recognizer]),
                Replace::Token(t) => t[m.recognizer].token_into(entity.as_bytes(), out),
                Replace::Mask(mk) => mk.mask_into(entity, out),
            }
            seen[m.recognizer] += 1;
            last = m.end;
        }
        out.push_str(&text[last..]);
    }

    /// Scrub one string (tests, examples).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut seen = vec![0; self.counts.len()];
        self.scrub_into(text, &mut Vec::new(), &mut out, &mut seen);
        self.add_counts(&seen);
        out
    }

    fn add_counts(&self, seen: &[u64]) {
        for (c, &n) in self.counts.iter().zip(seen) {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// Scrub a whole string array; the result is `Utf8` with the same nulls.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(array.data_type())?;
        let array = &super::plain(array)?;
        let hint = super::string_bytes(array.as_ref());
        let mut matches = Vec::new();
        let mut tmp = String::new();
        let mut seen = vec![0u64; self.counts.len()];
        let out = map_strings(array.as_ref(), hint, |v, out| {
            tmp.clear();
            self.scrub_into(v, &mut matches, &mut tmp, &mut seen);
            super::fits(out.values_slice().len(), tmp.len())?;
            out.append_value(&tmp);
            Ok(())
        })?;
        self.add_counts(&seen);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{string_arrays, strings};

    fn set() -> Arc<RecognizerSet> {
        Arc::new(RecognizerSet::builtin().unwrap())
    }

    #[test]
    fn placeholders_keep_the_text_around_entities() {
        let s = Scrubber::new(&set(), None, &ScrubMode::Placeholder, &Keyring::default()).unwrap();
        let values = [
            Some("请联系 张伟 13812345678 或 zhang.wei@example.cn，谢谢"),
            None,
            Some(""),
            Some("nothing here"),
            Some("card 4111 1111 1111 1111, not 4111 1111 1111 1112"),
        ];
        for arr in string_arrays(&values) {
            let out = strings(&s.apply(&arr).unwrap());
            assert_eq!(
                out,
                vec![
                    Some("请联系 张伟 <PHONE> 或 <EMAIL>，谢谢".into()),
                    None,
                    Some("".into()),
                    Some("nothing here".into()),
                    Some("card <PAYMENT_CARD>, not 4111 1111 1111 1112".into()),
                ]
            );
        }
        let counts: BTreeMap<String, u64> = s.entity_counts().into_iter().collect();
        assert_eq!(counts["phone"], 3);
        assert_eq!(counts["email"], 3);
        assert_eq!(counts["payment_card"], 3);
    }

    #[test]
    fn tokens_match_tokenize_for_the_same_key_and_domain() {
        let ring = Keyring::generate_in_memory(&["k1"]);
        let mode = ScrubMode::Token {
            key: "k1".into(),
            domains: BTreeMap::new(),
            length: 16,
            prefix: "t_".into(),
        };
        let s = Scrubber::new(&set(), Some(&["email".to_string()]), &mode, &ring).unwrap();
        let tok = Tokenizer::new(ring.get("k1").unwrap(), "email", 16, "t_").unwrap();
        let out = s.scrub("mail a@example.com now");
        assert_eq!(out, format!("mail {} now", tok.token("a@example.com")));
        // Only the listed recognizer runs.
        assert_eq!(s.scrub("call 13812345678"), "call 13812345678");
        // An unknown recognizer or key is a plan error naming it.
        let e = Scrubber::new(&set(), Some(&["emial".to_string()]), &mode, &ring).unwrap_err();
        assert!(e.to_string().contains("emial"), "{e}");
        assert!(Scrubber::new(&set(), None, &mode, &Keyring::default()).is_err());
    }

    #[test]
    fn mask_mode_and_types() {
        let mode = ScrubMode::Mask {
            mask_char: '*',
            keep_first: 0,
            keep_last: 4,
        };
        let s = Scrubber::new(&set(), None, &mode, &Keyring::default()).unwrap();
        assert_eq!(
            s.scrub("tel +86 138 1234 5678."),
            format!("tel {}5678.", "*".repeat(13))
        );
        assert!(Scrubber::output_type(&DataType::Int64).is_err());
    }
}

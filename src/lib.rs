//! # cloakline
//!
//! Makes datasets safe to share: a declarative policy says, for every field, what to do
//! (keep, drop, redact, mask, tokenize, encrypt, generalize) and on what lawful basis; the
//! engine applies it batch by batch over Arrow data and records provenance a reviewer can read.
//!
//! The layers, in the order data flows:
//! [`policy`] (the YAML model and lawful-basis rules) → [`plan`] (the policy checked against a
//! schema and keyring) → [`kernels`] (transforms over whole Arrow arrays) → [`engine`]
//! (streaming, parallel, ordered) → [`provenance`] (the JSON-LD record). The [`jobs`]
//! (`apply`, `verify`, `sql`, `scan`, `report`, `decrypt`) tie them together for files; the
//! CLI is a thin door onto them. docs/ARCHITECTURE.md lists the layers, which
//! `tests/it/layers.rs` enforces.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, StringArray};
//! use cloakline::{keys::Keyring, kernels::Tokenizer};
//!
//! let ring = Keyring::generate_in_memory(&["k1"]);
//! let tok = Tokenizer::new(ring.get("k1")?, "email", 16, "").unwrap();
//! let emails: ArrayRef = Arc::new(StringArray::from(vec![Some("a@example.com"), None]));
//! let out = tok.apply(&emails).unwrap();
//! assert_eq!(out.null_count(), 1);
//! # Ok::<(), cloakline::Error>(())
//! ```

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod engine;
pub mod error;
pub mod io;
pub mod jobs;
pub mod kernels;
pub mod keys;
pub mod plan;
pub mod policy;
pub mod privacy;
pub mod provenance;
pub mod recognizers;
pub mod sql;

pub use error::{Details, Error, PlanProblem, Problem, Result};

//! Transforms keyed by a second column (`keyed_by`, e.g. a subject id): `shift_date` moves
//! every date of one subject by the same offset, `noise` adds reproducible noise.
//!
//! draw = HMAC-SHA256(subkey, canonical string of the keyed_by value), subkey =
//! HKDF-SHA256(key, info = `cloakline/v1/<action>/<domain>`). A row whose keyed_by value is
//! null gets a null: it cannot be shifted consistently with anything.
//!
//! - `shift_date`: offset = ±(1 + r mod max_days) days (never 0), sign and r from the draw;
//!   the domain defaults to the keyed_by column's name, so a subject's date columns move
//!   together.
//!   Intervals between one subject's dates survive; calendar dates and the order across
//!   subjects do not.
//! - `noise`: Laplace(0, scale) or Gaussian(0, scale) from the draw's first 16 bytes; integers
//!   are rounded back to their type.
//!
//! Both are reversible by whoever holds the key and the keyed_by column.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, PrimitiveArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use hmac::{Hmac, KeyInit, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{KernelError, KernelResult};
use crate::keys::Key;

type HmacSha256 = Hmac<Sha256>;

/// The largest `max_days` (a century).
pub const MAX_SHIFT_DAYS: u32 = 36_500;

/// `noise`'s distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Laplace(0, scale): the distribution of differential privacy's Laplace mechanism
    /// (keyed noise is reproducible, so this is no differential-privacy guarantee).
    #[default]
    Laplace,
    /// Normal(0, scale²).
    Gaussian,
}

/// `shift_date` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftDateSpec {
    pub key: String,
    pub domain: String,
    pub keyed_by: String,
    pub max_days: u32,
}

/// `noise` parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseSpec {
    pub key: String,
    pub domain: String,
    pub keyed_by: String,
    pub distribution: Distribution,
    pub scale: f64,
}

/// The per-row draws: HMAC of each keyed_by value.
#[derive(Clone)]
struct Draws {
    mac: HmacSha256,
}

impl Draws {
    fn new(key: &Key, action: &str, domain: &str) -> KernelResult<Self> {
        let subkey = key.subkey(action, domain);
        let mac = <HmacSha256 as KeyInit>::new_from_slice(subkey.as_ref())
            .map_err(|_| KernelError::Parameter("HMAC key setup failed".into()))?;
        Ok(Draws { mac })
    }

    /// One draw per row; `None` where the keyed_by value is null.
    fn of(&self, subject: &ArrayRef) -> KernelResult<Vec<Option<[u8; 32]>>> {
        let plain = super::plain(subject)?;
        let strings = super::canonical_strings(&plain)?;
        let strings = arrow::compute::cast(&strings, &DataType::Utf8)?;
        let strings = strings.as_string::<i32>();
        Ok((0..strings.len())
            .map(|i| {
                (!strings.is_null(i)).then(|| {
                    let mut mac = self.mac.clone();
                    mac.update(strings.value(i).as_bytes());
                    mac.finalize().into_bytes().into()
                })
            })
            .collect())
    }
}

fn word(d: &[u8; 32], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_be_bytes(b)
}

fn check_lengths(values: &ArrayRef, subject: &ArrayRef) -> KernelResult<()> {
    if values.len() != subject.len() {
        return Err(KernelError::Parameter(
            "internal: the keyed_by column has another length".into(),
        ));
    }
    Ok(())
}

/// `shift_date` bound to one key, domain and bound.
pub struct DateShifter {
    draws: Draws,
    max_days: u32,
}

impl std::fmt::Debug for DateShifter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DateShifter")
            .field("max_days", &self.max_days)
            .finish_non_exhaustive()
    }
}

impl DateShifter {
    pub fn new(key: &Key, spec: &ShiftDateSpec) -> KernelResult<Self> {
        if !(1..=MAX_SHIFT_DAYS).contains(&spec.max_days) {
            return Err(KernelError::Parameter(format!(
                "`max_days` must be 1 to {MAX_SHIFT_DAYS}"
            )));
        }
        Ok(DateShifter {
            draws: Draws::new(key, "shift_date", &spec.domain)?,
            max_days: spec.max_days,
        })
    }

    /// Dates and timestamps keep their type.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        match super::value_type(input) {
            t @ (DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)) => Ok(t.clone()),
            _ => Err(KernelError::UnsupportedType {
                action: "shift_date",
                data_type: input.clone(),
                hint: "shift_date accepts dates and timestamps".into(),
            }),
        }
    }

    /// The shift in days of one draw: ±1 to ±max_days.
    fn days(&self, d: &[u8; 32]) -> i64 {
        let m = u64::from(self.max_days);
        let r = word(d, 0) % (2 * m);
        if r < m {
            -((r + 1) as i64)
        } else {
            (r - m + 1) as i64
        }
    }

    /// Shift `values` by the offsets of the `subject` rows.
    pub fn apply_with(&self, values: &ArrayRef, subject: &ArrayRef) -> KernelResult<ArrayRef> {
        Self::output_type(values.data_type())?;
        check_lengths(values, subject)?;
        let values = super::plain(values)?;
        let draws = self.draws.of(subject)?;
        let offsets: Vec<Option<i64>> = draws
            .iter()
            .map(|d| d.as_ref().map(|d| self.days(d)))
            .collect();
        let day = 86_400i64;
        Ok(match values.data_type().clone() {
            DataType::Date32 => Arc::new(shift::<Date32Type>(&values, &offsets, 1)?),
            DataType::Date64 => Arc::new(shift::<Date64Type>(&values, &offsets, day * 1000)?),
            // The zone stays as it was: the instant moves, its zone does not.
            DataType::Timestamp(unit, tz) => match unit {
                TimeUnit::Second => Arc::new(
                    shift::<TimestampSecondType>(&values, &offsets, day)?.with_timezone_opt(tz),
                ),
                TimeUnit::Millisecond => Arc::new(
                    shift::<TimestampMillisecondType>(&values, &offsets, day * 1000)?
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Microsecond => Arc::new(
                    shift::<TimestampMicrosecondType>(&values, &offsets, day * 1_000_000)?
                        .with_timezone_opt(tz),
                ),
                TimeUnit::Nanosecond => Arc::new(
                    shift::<TimestampNanosecondType>(&values, &offsets, day * 1_000_000_000)?
                        .with_timezone_opt(tz),
                ),
            },
            other => {
                return Err(KernelError::Parameter(format!(
                    "internal: shift_date got {other}"
                )));
            }
        })
    }
}

/// `values + offset × per_day` for each row; null where either is null; an overflow is an
/// error that names no value.
fn shift<T>(
    values: &ArrayRef,
    offsets: &[Option<i64>],
    per_day: i64,
) -> KernelResult<PrimitiveArray<T>>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64> + TryFrom<i64>,
{
    let a = values.as_primitive::<T>();
    let mut out = Vec::with_capacity(a.len());
    for (i, off) in offsets.iter().enumerate() {
        if a.is_null(i) {
            out.push(None);
            continue;
        }
        let Some(off) = off else {
            out.push(None);
            continue;
        };
        let v: i64 = a.value(i).into();
        let shifted = off
            .checked_mul(per_day)
            .and_then(|d| v.checked_add(d))
            .and_then(|s| T::Native::try_from(s).ok())
            .ok_or_else(|| {
                KernelError::Value(
                    "a shifted date falls outside its type's range (the value is not shown)".into(),
                )
            })?;
        out.push(Some(shifted));
    }
    Ok(out.into_iter().collect::<PrimitiveArray<T>>())
}

/// `noise` bound to one key, domain, distribution and scale.
pub struct Noiser {
    draws: Draws,
    distribution: Distribution,
    scale: f64,
}

impl std::fmt::Debug for Noiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Noiser")
            .field("distribution", &self.distribution)
            .field("scale", &self.scale)
            .finish_non_exhaustive()
    }
}

impl Noiser {
    pub fn new(key: &Key, spec: &NoiseSpec) -> KernelResult<Self> {
        if !(spec.scale.is_finite() && spec.scale > 0.0) {
            return Err(KernelError::Parameter(
                "`scale` must be a positive number".into(),
            ));
        }
        Ok(Noiser {
            draws: Draws::new(key, "noise", &spec.domain)?,
            distribution: spec.distribution,
            scale: spec.scale,
        })
    }

    /// Integers and floats keep their type.
    pub fn output_type(input: &DataType) -> KernelResult<DataType> {
        let t = super::value_type(input);
        if t.is_integer() || matches!(t, DataType::Float32 | DataType::Float64) {
            Ok(t.clone())
        } else {
            Err(KernelError::UnsupportedType {
                action: "noise",
                data_type: input.clone(),
                hint:
                    "noise accepts integers and floats; cast decimals to float64 (policy `type:`)"
                        .into(),
            })
        }
    }

    /// The noise of one draw.
    fn noise(&self, d: &[u8; 32]) -> f64 {
        // Uniform in (0, 1), never 0 or 1.
        let unit = |w: u64| ((w >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (u1, u2) = (unit(word(d, 0)), unit(word(d, 8)));
        match self.distribution {
            Distribution::Laplace => {
                let c = u1 - 0.5;
                -self.scale * c.signum() * (1.0 - 2.0 * c.abs()).ln()
            }
            Distribution::Gaussian => {
                self.scale * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            }
        }
    }

    /// Add noise to `values`, one draw per `subject` row.
    pub fn apply_with(&self, values: &ArrayRef, subject: &ArrayRef) -> KernelResult<ArrayRef> {
        let target = Self::output_type(values.data_type())?;
        check_lengths(values, subject)?;
        let values = super::plain(values)?;
        let draws = self.draws.of(subject)?;
        let floats = arrow::compute::cast(&values, &DataType::Float64)?;
        let floats = floats.as_primitive::<arrow::datatypes::Float64Type>();
        let integer = target.is_integer();
        let out: Float64Array = (0..floats.len())
            .map(|i| match (&draws[i], floats.is_null(i)) {
                (Some(d), false) => {
                    let v = floats.value(i) + self.noise(d);
                    Some(if integer { v.round() } else { v })
                }
                _ => None,
            })
            .collect();
        let out: ArrayRef = Arc::new(out);
        if target == DataType::Float64 {
            return Ok(out);
        }
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        cast_with_options(&out, &target, &options).map_err(|_| {
            KernelError::Value(format!(
                "a value with noise added falls outside {target} (the value is not shown); use a wider type or a smaller scale"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyring;
    use arrow::array::{
        Date32Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };

    fn ring() -> Keyring {
        Keyring::generate_in_memory(&["k1"])
    }

    fn shifter(ring: &Keyring, max_days: u32) -> DateShifter {
        let spec = ShiftDateSpec {
            key: "k1".into(),
            domain: "admitted".into(),
            keyed_by: "patient".into(),
            max_days,
        };
        DateShifter::new(ring.get("k1").unwrap(), &spec).unwrap()
    }

    #[test]
    fn one_subject_one_shift_intervals_survive_and_every_date_moves() {
        let ring = ring();
        let s = shifter(&ring, 30);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![
            Some(100),
            Some(110),
            None,
            Some(500),
            Some(7),
        ]));
        let subj: ArrayRef = Arc::new(StringArray::from(vec![
            Some("p1"),
            Some("p1"),
            Some("p1"),
            Some("p2"),
            None,
        ]));
        let out = s.apply_with(&dates, &subj).unwrap();
        let out = out.as_primitive::<Date32Type>();
        let d0 = out.value(0) - 100;
        assert!(d0 != 0 && d0.abs() <= 30, "{d0}");
        assert_eq!(
            out.value(1) - out.value(0),
            10,
            "interval within a subject kept"
        );
        assert!(out.is_null(2) && out.is_null(4), "null value, null subject");
        let d3 = out.value(3) - 500;
        assert!(d3 != 0 && d3.abs() <= 30);
        // Deterministic, and every offset of many subjects is within ±max and never 0.
        let many: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..2000).map(|i| format!("s{i}")),
        ));
        let zeros: ArrayRef = Arc::new(Date32Array::from(vec![0; 2000]));
        let a = s.apply_with(&zeros, &many).unwrap();
        let a = a.as_primitive::<Date32Type>();
        assert!(a.values().iter().all(|d| *d != 0 && d.abs() <= 30));
        assert!(a.values().iter().any(|d| *d < 0) && a.values().iter().any(|d| *d > 0));
        assert_eq!(
            s.apply_with(&zeros, &many)
                .unwrap()
                .as_primitive::<Date32Type>()
                .values(),
            a.values()
        );
    }

    #[test]
    fn timestamps_keep_unit_and_zone_and_integer_subjects_work() {
        let ring = ring();
        let s = shifter(&ring, 5);
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_000_000i64),
                Some(1_700_000_360_000_000),
            ])
            .with_timezone("+08:00"),
        );
        let subj: ArrayRef = Arc::new(Int64Array::from(vec![42, 42]));
        let out = s.apply_with(&ts, &subj).unwrap();
        assert_eq!(out.data_type(), ts.data_type());
        let o = out.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(o.value(1) - o.value(0), 360_000_000);
        assert_eq!((o.value(0) - 1_700_000_000_000_000) % 86_400_000_000, 0);
        assert!(DateShifter::output_type(&DataType::Utf8).is_err());
    }

    #[test]
    fn noise_is_reproducible_centred_and_keeps_integer_types() {
        let ring = ring();
        let spec = |distribution| NoiseSpec {
            key: "k1".into(),
            domain: "income".into(),
            keyed_by: "id".into(),
            distribution,
            scale: 100.0,
        };
        let n = 20_000;
        let subj: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("r{i}")),
        ));
        for dist in [Distribution::Laplace, Distribution::Gaussian] {
            let noiser = Noiser::new(ring.get("k1").unwrap(), &spec(dist)).unwrap();
            let vals: ArrayRef = Arc::new(Int64Array::from(vec![1000i64; n]));
            let out = noiser.apply_with(&vals, &subj).unwrap();
            assert_eq!(out.data_type(), &DataType::Int64);
            let o = out.as_primitive::<arrow::datatypes::Int64Type>();
            let mean = o.values().iter().map(|v| (*v - 1000) as f64).sum::<f64>() / n as f64;
            assert!(mean.abs() < 5.0, "{dist:?} mean {mean}");
            let var = o
                .values()
                .iter()
                .map(|v| ((*v - 1000) as f64).powi(2))
                .sum::<f64>()
                / n as f64;
            // Laplace(b) has variance 2b², Normal(σ) σ².
            let want = if dist == Distribution::Laplace {
                20_000.0
            } else {
                10_000.0
            };
            assert!((var / want - 1.0).abs() < 0.1, "{dist:?} variance {var}");
            assert_eq!(
                noiser.apply_with(&vals, &subj).unwrap().as_ref(),
                out.as_ref()
            );
        }
        // A value pushed past its type is an error without the value.
        let noiser = Noiser::new(ring.get("k1").unwrap(), &spec(Distribution::Laplace)).unwrap();
        let edge: ArrayRef = Arc::new(Int32Array::from(vec![i32::MAX; 50]));
        let s50: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..50).map(|i| format!("r{i}")),
        ));
        let e = noiser.apply_with(&edge, &s50).unwrap_err().to_string();
        assert!(
            e.contains("outside Int32") && !e.contains("2147483647"),
            "{e}"
        );
        let bad = NoiseSpec {
            scale: -1.0,
            ..spec(Distribution::Laplace)
        };
        assert!(Noiser::new(ring.get("k1").unwrap(), &bad).is_err());
    }
}

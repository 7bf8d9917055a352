//! `generalize`: coarsen values so that fewer records share each value's detail.
//!
//! - dates and timestamps → month, quarter, year or decade;
//! - integers, floats and decimals → fixed-width bins or explicit break points, with
//!   top/bottom coding;
//! - strings → a prefix of `keep_prefix` characters (grapheme clusters), e.g. ZIP3.
//!
//! Labels are either readable text (`range`: `30-39`, `[0.5, 1)`, `1987-Q3`, `1980-1989`,
//! `>=100000`, `<18`) or the bin's lower bound in the column's own type (`lower`; dates and
//! timestamps give the period's first day as `Date32`).

use std::collections::HashMap;

/// Label caches are hit once per value: a fast non-cryptographic hasher suits them.
type Cache<K> = HashMap<K, String, foldhash::fast::RandomState>;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringBuilder,
};
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::NaiveDate;
use unicode_segmentation::UnicodeSegmentation;

use super::{KernelError, KernelResult, is_string_type, map_strings};
use crate::error::Problem;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Period for date and timestamp generalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DateLevel {
    Month,
    Quarter,
    Year,
    Decade,
}

/// How a generalized value is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LabelStyle {
    /// A readable text label: `30-39`, `[0.5, 1)`, `1987-Q3`, `1980-1989`, `>=100000`.
    #[default]
    Range,
    /// The bin's lower bound, in the column's own type (dates truncated to the period start).
    Lower,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GeneralizeSpec {
    Date { to: DateLevel, label: LabelStyle },
    Number(NumberBins),
    Prefix { keep_prefix: usize },
}

/// Numeric generalization: optional bins plus optional top/bottom coding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberBins {
    pub bin_width: Option<f64>,
    pub breaks: Option<Vec<f64>>,
    pub top: Option<f64>,
    pub bottom: Option<f64>,
    pub label: LabelStyle,
}

/// A generalization bound to a column type.
#[derive(Debug, Clone)]
pub struct Generalizer {
    kind: Kind,
    input: DataType,
}

#[derive(Debug, Clone)]
enum Kind {
    Date {
        to: DateLevel,
        label: LabelStyle,
    },
    Prefix(usize),
    /// Integers and decimals, in exact integer units (decimals scaled by 10^scale).
    Exact(ExactBins),
    Float(FloatBins),
}

#[derive(Debug, Clone)]
struct ExactBins {
    width: Option<i128>,
    breaks: Option<Vec<i128>>,
    top: Option<i128>,
    bottom: Option<i128>,
    label: LabelStyle,
    /// Decimal scale (0 for integers).
    scale: i8,
}

#[derive(Debug, Clone)]
struct FloatBins {
    width: Option<f64>,
    breaks: Option<Vec<f64>>,
    top: Option<f64>,
    bottom: Option<f64>,
    label: LabelStyle,
    decimals: usize,
}

/// Where a value falls.
#[derive(Clone, Copy)]
enum Bin<T> {
    Below(T),
    AtOrAbove(T),
    Range(T, T),
    /// No binning: the (possibly clamped) value itself.
    Value(T),
}

impl<T: Copy> Bin<T> {
    /// Identifies the bin (its kind and lower bound), for label caching.
    fn key(&self) -> (u8, T) {
        match *self {
            Bin::Below(x) => (0, x),
            Bin::AtOrAbove(x) => (1, x),
            Bin::Range(x, _) => (2, x),
            Bin::Value(x) => (3, x),
        }
    }
}

fn unsupported(data_type: &DataType, hint: &str) -> KernelError {
    KernelError::UnsupportedType {
        action: "generalize",
        data_type: data_type.clone(),
        hint: hint.into(),
    }
}

impl Generalizer {
    /// Check the spec against the column type and prepare the kernel.
    pub fn new(spec: &GeneralizeSpec, input: &DataType) -> KernelResult<Self> {
        // Dictionaries are generalized through their values (see `apply`).
        let input = super::value_type(input);
        let kind = match spec {
            GeneralizeSpec::Date { to, label } => {
                if !matches!(
                    input,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
                ) {
                    return Err(unsupported(
                        input,
                        "`to` applies to date and timestamp columns",
                    ));
                }
                Kind::Date {
                    to: *to,
                    label: *label,
                }
            }
            GeneralizeSpec::Prefix { keep_prefix } => {
                if !is_string_type(input) {
                    return Err(unsupported(
                        input,
                        "`keep_prefix` applies to string columns; for CSV/NDJSON input declare `type: string` \
                         so codes such as ZIPs keep their leading zeros",
                    ));
                }
                Kind::Prefix(*keep_prefix)
            }
            GeneralizeSpec::Number(bins) => {
                check_number_bins(bins).map_err(|p| KernelError::Parameter(p.message))?;
                if input.is_integer() {
                    Kind::Exact(exact_bins(bins, 0, input)?)
                } else if let DataType::Decimal128(_, scale) = input {
                    Kind::Exact(exact_bins(bins, *scale, input)?)
                } else if input.is_floating() {
                    Kind::Float(float_bins(bins))
                } else {
                    return Err(unsupported(
                        input,
                        "`bin_width`, `breaks`, `top` and `bottom` apply to integer, float and decimal128 columns",
                    ));
                }
            }
        };
        Ok(Generalizer {
            kind,
            input: input.clone(),
        })
    }

    /// The output type this generalizer produces.
    pub fn output_type(&self) -> DataType {
        match &self.kind {
            Kind::Date {
                label: LabelStyle::Range,
                ..
            } => DataType::Utf8,
            Kind::Date {
                label: LabelStyle::Lower,
                ..
            } => DataType::Date32,
            Kind::Prefix(_) => DataType::Utf8,
            Kind::Exact(b)
                if b.label == LabelStyle::Range && (b.width.is_some() || b.breaks.is_some()) =>
            {
                DataType::Utf8
            }
            Kind::Float(b)
                if b.label == LabelStyle::Range && (b.width.is_some() || b.breaks.is_some()) =>
            {
                DataType::Utf8
            }
            Kind::Exact(_) | Kind::Float(_) => self.input.clone(),
        }
    }

    /// Generalize a whole array.
    pub fn apply(&self, array: &ArrayRef) -> KernelResult<ArrayRef> {
        let array = &super::plain(array)?;
        if array.data_type() != &self.input {
            return Err(KernelError::Parameter(format!(
                "generalize was set up for {} but got {}",
                self.input,
                array.data_type()
            )));
        }
        match &self.kind {
            Kind::Date { to, label } => generalize_dates(array, *to, *label),
            Kind::Prefix(n) => {
                let n = *n;
                map_strings(
                    array.as_ref(),
                    super::string_bytes(array.as_ref()),
                    |v, out| {
                        out.append_value(prefix(v, n));
                        Ok(())
                    },
                )
            }
            Kind::Exact(b) => self.apply_exact(array, b),
            Kind::Float(b) => self.apply_float(array, b),
        }
    }

    fn apply_exact(&self, array: &ArrayRef, b: &ExactBins) -> KernelResult<ArrayRef> {
        // Widen to i128 units: integers via Int64 (u64 above i64::MAX is an error, not a wrap).
        let units: Vec<Option<i128>> = match array.data_type() {
            DataType::Decimal128(_, _) => array
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .iter()
                .collect(),
            _ => {
                let a = cast_with_options(array, &DataType::Int64, &strict())?;
                a.as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.map(i128::from))
                    .collect()
            }
        };
        let bins = units.iter().map(|v| v.map(|v| b.bin(v)));
        let ranged = b.label == LabelStyle::Range && (b.width.is_some() || b.breaks.is_some());
        if ranged {
            // Few distinct bins: format each label once.
            let mut labels: Cache<(u8, i128)> = Cache::default();
            let mut out = StringBuilder::with_capacity(array.len(), array.len() * 8);
            for bin in bins {
                match bin {
                    None => out.append_null(),
                    Some(bin) => {
                        out.append_value(labels.entry(bin.key()).or_insert_with(|| b.label_of(bin)))
                    }
                }
            }
            return Ok(Arc::new(out.finish()));
        }
        let lowers: Vec<Option<i128>> = bins
            .map(|bin| {
                bin.map(|bin| match bin {
                    Bin::Below(x) | Bin::AtOrAbove(x) | Bin::Range(x, _) | Bin::Value(x) => x,
                })
            })
            .collect();
        match array.data_type() {
            DataType::Decimal128(p, s) => {
                let a = Decimal128Array::from(lowers).with_precision_and_scale(*p, *s)?;
                // Bin bounds may exceed the precision: validate rather than write bad decimals.
                a.validate_decimal_precision(*p)?;
                Ok(Arc::new(a))
            }
            dt => {
                let as_i64: Vec<Option<i64>> = lowers
                    .into_iter()
                    .map(|v| {
                        v.map(|v| {
                            i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
                        })
                    })
                    .collect();
                let a: ArrayRef = Arc::new(Int64Array::from(as_i64));
                Ok(cast_with_options(&a, dt, &strict())?)
            }
        }
    }

    fn apply_float(&self, array: &ArrayRef, b: &FloatBins) -> KernelResult<ArrayRef> {
        let a = cast_with_options(array, &DataType::Float64, &strict())?;
        let vals = a.as_primitive::<Float64Type>();
        let ranged = b.label == LabelStyle::Range && (b.width.is_some() || b.breaks.is_some());
        if ranged {
            let mut labels: Cache<(u8, u64)> = Cache::default();
            let mut out = StringBuilder::with_capacity(vals.len(), vals.len() * 10);
            for v in vals.iter() {
                match v {
                    None => out.append_null(),
                    Some(v) if !v.is_finite() => out.append_value(format!("{v}")),
                    Some(v) => {
                        let bin = b.bin(v)?;
                        let (tag, x) = bin.key();
                        out.append_value(
                            labels
                                .entry((tag, x.to_bits()))
                                .or_insert_with(|| b.label_of(bin)),
                        )
                    }
                }
            }
            return Ok(Arc::new(out.finish()));
        }
        let lowers: Float64Array = vals
            .iter()
            .map(|v| {
                v.map(|v| {
                    if !v.is_finite() {
                        return Ok(v);
                    }
                    Ok(match b.bin(v)? {
                        Bin::Below(x) | Bin::AtOrAbove(x) | Bin::Range(x, _) | Bin::Value(x) => x,
                    })
                })
                .transpose()
            })
            .collect::<KernelResult<_>>()?;
        let lowers: ArrayRef = Arc::new(lowers);
        Ok(cast_with_options(&lowers, array.data_type(), &strict())?)
    }
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        ..Default::default()
    }
}

/// The first `n` characters (grapheme clusters) of `v`.
pub fn prefix(v: &str, n: usize) -> &str {
    if v.is_ascii() {
        return &v[..n.min(v.len())];
    }
    match v.grapheme_indices(true).nth(n) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

/// Smallest `bin_width`: narrower bins make `value / bin_width` overflow to infinity for
/// ordinary values (5e-324 turned values into `[-inf, NaN)`).
pub const MIN_BIN_WIDTH: f64 = 1e-9;

/// Numeric parameters must be finite (a NaN `top` matched nothing and released values
/// unchanged) and widths must not make the bin index overflow. Shared by the policy loader
/// (which adds the YAML position) and the kernel (for other callers, e.g. SQL).
pub fn check_number_bins(b: &NumberBins) -> Result<(), Problem> {
    for (name, v) in [
        ("top", b.top),
        ("bottom", b.bottom),
        ("bin_width", b.bin_width),
    ] {
        if let Some(v) = v
            && !v.is_finite()
        {
            return Err(Problem(format!(
                "`{name}` is {v}; it must be a finite number"
            )));
        }
    }
    // NaN was refused above, so `<` here also covers zero and negative widths.
    if let Some(w) = b.bin_width
        && w < MIN_BIN_WIDTH
    {
        return Err(Problem(format!(
            "`bin_width` is {w}; it must be a positive number of at least {MIN_BIN_WIDTH}"
        )));
    }
    if let Some(br) = &b.breaks
        && (br.is_empty()
            || br.iter().any(|x| !x.is_finite())
            || br.windows(2).any(|w| w[0] >= w[1]))
    {
        return Err(
            "`breaks` must be a non-empty list of strictly ascending finite numbers".into(),
        );
    }
    if let (Some(t), Some(bt)) = (b.top, b.bottom)
        && bt >= t
    {
        return Err(Problem(format!(
            "`bottom` ({bt}) must be below `top` ({t})"
        )));
    }
    Ok(())
}

fn to_units(x: f64, scale: i8, what: &str, input: &DataType) -> KernelResult<i128> {
    let scaled = x * 10f64.powi(scale as i32);
    let r = scaled.round();
    if (scaled - r).abs() > 1e-9 * scaled.abs().max(1.0) || !r.is_finite() || r.abs() > 1e30 {
        return Err(KernelError::Parameter(format!(
            "{what} {x} is not a whole number of the column's units ({input}); use a value with at most {scale} decimals"
        )));
    }
    Ok(r as i128)
}

fn exact_bins(b: &NumberBins, scale: i8, input: &DataType) -> KernelResult<ExactBins> {
    let conv = |x: Option<f64>, what: &str| x.map(|x| to_units(x, scale, what, input)).transpose();
    let breaks = match &b.breaks {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|x| to_units(*x, scale, "break", input))
                .collect::<KernelResult<Vec<_>>>()?,
        ),
    };
    let width = conv(b.bin_width, "bin_width")?;
    if width == Some(0) {
        return Err(KernelError::Parameter("bin_width must be positive".into()));
    }
    Ok(ExactBins {
        width,
        breaks,
        top: conv(b.top, "top")?,
        bottom: conv(b.bottom, "bottom")?,
        label: b.label,
        scale,
    })
}

fn decimals_of(x: f64) -> usize {
    let s = format!("{x}");
    s.split_once('.').map(|(_, f)| f.len()).unwrap_or(0)
}

fn float_bins(b: &NumberBins) -> FloatBins {
    let mut decimals = 0;
    for x in b
        .bin_width
        .iter()
        .chain(b.breaks.iter().flatten())
        .chain(b.top.iter())
        .chain(b.bottom.iter())
    {
        decimals = decimals.max(decimals_of(*x));
    }
    // f64 carries about 15 significant digits; more decimals only overflow the rounding.
    let decimals = decimals.min(15);
    FloatBins {
        width: b.bin_width,
        breaks: b.breaks.clone(),
        top: b.top,
        bottom: b.bottom,
        label: b.label,
        decimals,
    }
}

/// Top/bottom coding and explicit breaks, shared by exact and float bins; `None` when the
/// value is left to fixed-width binning (or kept).
fn coded<T: Copy + PartialOrd>(
    v: T,
    top: Option<T>,
    bottom: Option<T>,
    breaks: Option<&[T]>,
) -> Option<Bin<T>> {
    let min = |a: T, b: T| if b < a { b } else { a };
    let max = |a: T, b: T| if b > a { b } else { a };
    if let Some(t) = top
        && v >= t
    {
        return Some(Bin::AtOrAbove(t));
    }
    if let Some(bt) = bottom
        && v < bt
    {
        return Some(Bin::Below(bt));
    }
    let br = breaks?;
    let first = *br.first()?;
    if v < first {
        return Some(Bin::Below(first));
    }
    let i = br.partition_point(|b| *b <= v);
    if i == br.len() {
        return Some(Bin::AtOrAbove(br[br.len() - 1]));
    }
    let hi = top.map_or(br[i], |t| min(br[i], t));
    let lo = bottom.map_or(br[i - 1], |b| max(br[i - 1], b));
    Some(Bin::Range(lo, hi))
}

impl ExactBins {
    fn bin(&self, v: i128) -> Bin<i128> {
        if let Some(b) = coded(v, self.top, self.bottom, self.breaks.as_deref()) {
            return b;
        }
        if let Some(w) = self.width {
            // Saturating: a Parquet decimal may hold a value beyond its declared precision
            // (readers do not check), up to i128::MIN or MAX.
            let lo = v.div_euclid(w).saturating_mul(w);
            let mut hi = lo.saturating_add(w);
            if let Some(t) = self.top {
                hi = hi.min(t);
            }
            return Bin::Range(lo.max(self.bottom.unwrap_or(i128::MIN)), hi);
        }
        Bin::Value(v)
    }

    fn fmt(&self, v: i128) -> String {
        if self.scale <= 0 {
            return v.to_string();
        }
        // Decimal: show trimmed decimals.
        let d = 10i128.pow(self.scale as u32);
        let (int, frac) = (v.div_euclid(d), v.rem_euclid(d));
        if frac == 0 {
            int.to_string()
        } else {
            let f = format!("{:0width$}", frac, width = self.scale as usize);
            format!("{int}.{}", f.trim_end_matches('0'))
        }
    }

    fn label_of(&self, bin: Bin<i128>) -> String {
        match bin {
            Bin::Below(x) => format!("<{}", self.fmt(x)),
            Bin::AtOrAbove(x) => format!(">={}", self.fmt(x)),
            Bin::Value(x) => self.fmt(x),
            Bin::Range(lo, hi) if self.scale == 0 => {
                let last = hi.saturating_sub(1);
                if last == lo {
                    lo.to_string()
                } else {
                    format!("{lo}-{last}")
                }
            }
            Bin::Range(lo, hi) => format!("[{}, {})", self.fmt(lo), self.fmt(hi)),
        }
    }
}

impl FloatBins {
    /// The bin of a finite value; an error (without the value) when the bin index overflows.
    fn bin(&self, v: f64) -> KernelResult<Bin<f64>> {
        if let Some(b) = coded(v, self.top, self.bottom, self.breaks.as_deref()) {
            return Ok(b);
        }
        if let Some(w) = self.width {
            let q = v / w;
            if !q.is_finite() || q.abs() >= 2f64.powi(53) {
                return Err(KernelError::Value(format!(
                    "a value is too large for bin_width {w} (its bin number exceeds 2^53); \
                     use a wider bin or top/bottom coding"
                )));
            }
            // v / w can round across a bin edge (0.3 / 0.1 = 2.9999999999999996): correct k
            // against the rounded bounds so that a value on an edge opens its bin.
            let mut k = q.floor();
            if self.round(k * w) > v {
                k -= 1.0;
            } else if self.round((k + 1.0) * w) <= v {
                k += 1.0;
            }
            let lo = self.round(k * w);
            let mut hi = self.round((k + 1.0) * w);
            if let Some(t) = self.top {
                hi = hi.min(t);
            }
            return Ok(Bin::Range(
                lo.max(self.bottom.unwrap_or(f64::NEG_INFINITY)),
                hi,
            ));
        }
        Ok(Bin::Value(v))
    }

    /// Round to the parameters' decimals, so bounds are 0.3, not 0.30000000000000004.
    fn round(&self, v: f64) -> f64 {
        let f = 10f64.powi(self.decimals as i32);
        let scaled = v * f;
        if !scaled.is_finite() {
            // Too large to round at this precision: already a whole number of units.
            return v;
        }
        let r = scaled.round() / f;
        if r == 0.0 { 0.0 } else { r }
    }

    fn fmt(&self, v: f64) -> String {
        let s = format!("{:.*}", self.decimals, v);
        match s.strip_prefix('-') {
            Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
            _ => s,
        }
    }

    fn label_of(&self, bin: Bin<f64>) -> String {
        match bin {
            Bin::Below(x) => format!("<{}", self.fmt(x)),
            Bin::AtOrAbove(x) => format!(">={}", self.fmt(x)),
            Bin::Value(x) => self.fmt(x),
            Bin::Range(lo, hi) => format!("[{}, {})", self.fmt(lo), self.fmt(hi)),
        }
    }
}

/// Year and month of a day count since 1970-01-01 (proleptic Gregorian), by integer
/// arithmetic (H. Hinnant's `civil_from_days`): far cheaper than a calendar per value.
fn civil_from_days(days: i32) -> (i32, i32) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m as i32)
}

fn generalize_dates(array: &ArrayRef, to: DateLevel, label: LabelStyle) -> KernelResult<ArrayRef> {
    let want_month = matches!(to, DateLevel::Month | DateLevel::Quarter);
    let (years, months): (Int32Array, Option<Int32Array>) =
        match array.as_primitive_opt::<arrow::datatypes::Date32Type>() {
            Some(d) => (
                d.unary(|v| civil_from_days(v).0),
                want_month.then(|| d.unary(|v| civil_from_days(v).1)),
            ),
            None => {
                let y = date_part(array.as_ref(), DatePart::Year)?;
                let y = y.as_primitive::<arrow::datatypes::Int32Type>().clone();
                let m = if want_month {
                    let m = date_part(array.as_ref(), DatePart::Month)?;
                    Some(m.as_primitive::<arrow::datatypes::Int32Type>().clone())
                } else {
                    None
                };
                (y, m)
            }
        };
    let years = &years;
    let month_of = |i: usize| months.as_ref().map(|m| m.value(i)).unwrap_or(1);
    match label {
        LabelStyle::Range => {
            let mut labels: Cache<(i32, i32)> = Cache::default();
            let mut out = StringBuilder::with_capacity(array.len(), array.len() * 9);
            for i in 0..array.len() {
                if years.is_null(i) {
                    out.append_null();
                    continue;
                }
                let y = years.value(i);
                let m = month_of(i);
                let s = labels.entry((y, m)).or_insert_with(|| match to {
                    DateLevel::Year => format!("{y}"),
                    DateLevel::Month => format!("{y}-{m:02}"),
                    DateLevel::Quarter => format!("{y}-Q{}", (m - 1) / 3 + 1),
                    DateLevel::Decade => {
                        let d = y.div_euclid(10) * 10;
                        format!("{d}-{}", d + 9)
                    }
                });
                out.append_value(s);
            }
            Ok(Arc::new(out.finish()))
        }
        LabelStyle::Lower => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            let out: Date32Array = (0..array.len())
                .map(|i| {
                    if years.is_null(i) {
                        return None;
                    }
                    let y = years.value(i);
                    let (y, m) = match to {
                        DateLevel::Year => (y, 1),
                        DateLevel::Month => (y, month_of(i) as u32),
                        DateLevel::Quarter => (y, ((month_of(i) as u32 - 1) / 3) * 3 + 1),
                        DateLevel::Decade => (y.div_euclid(10) * 10, 1),
                    };
                    NaiveDate::from_ymd_opt(y, m, 1).map(|d| (d - epoch).num_days() as i32)
                })
                .collect();
            Ok(Arc::new(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_util::{string_arrays, strings};
    use arrow::array::*;
    use arrow::datatypes::TimeUnit;

    fn nb(
        width: Option<f64>,
        breaks: Option<Vec<f64>>,
        top: Option<f64>,
        bottom: Option<f64>,
        label: LabelStyle,
    ) -> GeneralizeSpec {
        GeneralizeSpec::Number(NumberBins {
            bin_width: width,
            breaks,
            top,
            bottom,
            label,
        })
    }

    #[test]
    fn civil_from_days_matches_the_calendar() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-1_000_000..1_000_000)
            .step_by(97)
            .chain([-719_468, -1, 0, 59, 11_016])
        {
            let d = epoch + chrono::Duration::days(days as i64);
            use chrono::Datelike;
            assert_eq!(
                civil_from_days(days),
                (d.year(), d.month() as i32),
                "{days}"
            );
        }
    }

    fn run(spec: &GeneralizeSpec, arr: ArrayRef) -> Vec<Option<String>> {
        let g = Generalizer::new(spec, arr.data_type()).unwrap();
        let out = g.apply(&arr).unwrap();
        assert_eq!(out.data_type(), &g.output_type());
        strings(&out)
    }

    fn s(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    }

    #[test]
    fn integer_bins_labels_and_lower_bounds() {
        let ages: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(34),
            None,
            Some(30),
            Some(-1),
            Some(99),
        ]));
        let spec = nb(Some(10.0), None, Some(90.0), None, LabelStyle::Range);
        assert_eq!(
            run(&spec, ages.clone()),
            s(&[
                Some("30-39"),
                None,
                Some("30-39"),
                Some("-10--1"),
                Some(">=90")
            ])
        );
        let spec = nb(Some(10.0), None, Some(90.0), None, LabelStyle::Lower);
        let g = Generalizer::new(&spec, &DataType::Int32).unwrap();
        assert_eq!(g.output_type(), DataType::Int32);
        assert_eq!(
            run(&spec, ages),
            s(&[Some("30"), None, Some("30"), Some("-10"), Some("90")])
        );
        let incomes: ArrayRef = Arc::new(UInt64Array::from(vec![0, 17, 18, 64, 65, 1000]));
        let spec = nb(
            None,
            Some(vec![18.0, 30.0, 65.0]),
            None,
            None,
            LabelStyle::Range,
        );
        assert_eq!(
            run(&spec, incomes),
            s(&[
                Some("<18"),
                Some("<18"),
                Some("18-29"),
                Some("30-64"),
                Some(">=65"),
                Some(">=65")
            ])
        );
        assert!(
            Generalizer::new(
                &nb(Some(2.5), None, None, None, LabelStyle::Range),
                &DataType::Int64
            )
            .is_err()
        );
    }

    #[test]
    fn float_values_on_bin_edges_open_their_bin() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![0.3, 0.7, -0.0, 0.6]));
        let spec = nb(Some(0.1), None, None, None, LabelStyle::Range);
        assert_eq!(
            run(&spec, f.clone()),
            s(&[
                Some("[0.3, 0.4)"),
                Some("[0.7, 0.8)"),
                Some("[0.0, 0.1)"),
                Some("[0.6, 0.7)")
            ])
        );
        let spec = nb(Some(0.1), None, None, None, LabelStyle::Lower);
        assert_eq!(
            run(&spec, f),
            s(&[Some("0.3"), Some("0.7"), Some("0.0"), Some("0.6")])
        );
    }

    #[test]
    fn breaks_respect_top_and_bottom() {
        let v: ArrayRef = Arc::new(Int64Array::from(vec![40, 60, -5]));
        let spec = nb(
            None,
            Some(vec![0.0, 100.0]),
            Some(50.0),
            None,
            LabelStyle::Range,
        );
        assert_eq!(run(&spec, v), s(&[Some("0-49"), Some(">=50"), Some("<0")]));
    }

    #[test]
    fn top_and_bottom_coding_alone_clamp() {
        let v: ArrayRef = Arc::new(Int64Array::from(vec![5, 50, 500]));
        let spec = nb(None, None, Some(100.0), Some(10.0), LabelStyle::Range);
        assert_eq!(run(&spec, v), s(&[Some("10"), Some("50"), Some("100")]));
    }

    #[test]
    fn floats_and_decimals() {
        let f: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(0.34),
            Some(-0.01),
            None,
            Some(f64::NAN),
        ]));
        let spec = nb(Some(0.1), None, None, None, LabelStyle::Range);
        assert_eq!(
            run(&spec, f),
            s(&[Some("[0.3, 0.4)"), Some("[-0.1, 0.0)"), None, Some("NaN")])
        );
        let d: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(1234567), None, Some(-50)])
                .with_precision_and_scale(12, 2)
                .unwrap(),
        );
        let spec = nb(Some(10000.0), None, None, None, LabelStyle::Range);
        assert_eq!(
            run(&spec, d.clone()),
            s(&[Some("[10000, 20000)"), None, Some("[-10000, 0)")])
        );
        let spec = nb(Some(10000.0), None, None, None, LabelStyle::Lower);
        assert_eq!(
            run(&spec, d),
            s(&[Some("10000.00"), None, Some("-10000.00")])
        );
    }

    #[test]
    fn decimals_beyond_their_precision_bin_without_overflow() {
        // Parquet readers do not check decimal values against the declared precision.
        let d: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(i128::MAX), Some(i128::MIN)])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        );
        for w in [3.0, 10.0] {
            let spec = nb(Some(w), None, None, None, LabelStyle::Range);
            let _ = run(&spec, d.clone());
        }
    }

    #[test]
    fn dates_and_timestamps() {
        let d: ArrayRef = Arc::new(Date32Array::from(vec![Some(6391), None])); // 1987-07-01
        for (to, want) in [
            (DateLevel::Year, "1987"),
            (DateLevel::Quarter, "1987-Q3"),
            (DateLevel::Month, "1987-07"),
            (DateLevel::Decade, "1980-1989"),
        ] {
            let spec = GeneralizeSpec::Date {
                to,
                label: LabelStyle::Range,
            };
            assert_eq!(run(&spec, d.clone()), s(&[Some(want), None]));
        }
        let spec = GeneralizeSpec::Date {
            to: DateLevel::Quarter,
            label: LabelStyle::Lower,
        };
        assert_eq!(run(&spec, d), s(&[Some("1987-07-01"), None]));
        let ts: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![1_700_000_000_000]));
        let spec = GeneralizeSpec::Date {
            to: DateLevel::Month,
            label: LabelStyle::Range,
        };
        assert_eq!(run(&spec, ts), s(&[Some("2023-11")]));
        let _ = TimeUnit::Second;
        assert!(Generalizer::new(&spec, &DataType::Utf8).is_err());
    }

    #[test]
    fn string_prefix_every_string_type() {
        let spec = GeneralizeSpec::Prefix { keep_prefix: 3 };
        for arr in string_arrays(&[
            Some("02134"),
            None,
            Some(""),
            Some("北京市海淀区"),
            Some("ab"),
        ]) {
            assert_eq!(
                run(&spec, arr),
                s(&[Some("021"), None, Some(""), Some("北京市"), Some("ab")])
            );
        }
        assert!(Generalizer::new(&spec, &DataType::Int64).is_err());
    }

    #[test]
    fn non_finite_and_overflowing_parameters_are_refused() {
        let r = LabelStyle::Range;
        for spec in [
            nb(None, None, Some(f64::NAN), None, r),
            nb(None, None, None, Some(f64::INFINITY), r),
            nb(Some(f64::NAN), None, None, None, r),
            nb(Some(5e-324), None, None, None, r),
            nb(None, Some(vec![1.0, f64::NAN]), None, None, r),
        ] {
            for dt in [DataType::Float64, DataType::Int64] {
                let e = Generalizer::new(&spec, &dt).unwrap_err().to_string();
                assert!(e.contains("finite") || e.contains("at least"), "{e}");
            }
        }
    }

    #[test]
    fn a_bin_number_that_overflows_is_an_error_without_the_value() {
        let spec = nb(Some(1e-9), None, None, None, LabelStyle::Range);
        let g = Generalizer::new(&spec, &DataType::Float64).unwrap();
        let big: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 123456789e300]));
        let e = g.apply(&big).unwrap_err().to_string();
        assert!(e.contains("too large") && !e.contains("123456789"), "{e}");
        let lower = nb(Some(1e-9), None, None, None, LabelStyle::Lower);
        let g = Generalizer::new(&lower, &DataType::Float64).unwrap();
        assert!(g.apply(&big).is_err());
        // Ordinary values still bin, and no label is ever infinite or NaN.
        let ok: ArrayRef = Arc::new(Float64Array::from(vec![1.5, -2.25]));
        let g = Generalizer::new(&spec, &DataType::Float64).unwrap();
        for v in strings(&g.apply(&ok).unwrap()).into_iter().flatten() {
            assert!(!v.contains("inf") && !v.contains("NaN"), "{v}");
        }
    }
}

//! PII recognizers: each one is a set of compiled regexes plus a validator, so
//! a reported match is evidence (checksum, calendar, range checks), not a guess.
//!
//! Depends only on `std` and `regex`.
//!
//! Differences from the original API sketch:
//! - `Validator` has extra variants: `PaymentCard` (Luhn + IIN/length table),
//!   `Phone` (any of E.164 / CN mobile / NANP / trunk-0 national), `Passport`
//!   and `LicencePlate` (shape checks).
//! - A recognizer may hold several patterns (e.g. the phone formats); each
//!   candidate is checked by its own pattern's validator. `Recognizer::validator()`
//!   is the recognizer-level validator.
//! - `find` clears `out` before filling it.
//! - `add_custom` also rejects empty names/categories and patterns that match
//!   the empty string.
//! - Categories are terms that exist in DPV-PD (w3id.org/dpv/pd): DPV-PD has no
//!   `NationalIdentificationNumber` or `SocialSecurityNumber`, so both CN resident
//!   IDs and US SSNs use `pd:OfficialID`; cards use `pd:PaymentCardNumber` (covers
//!   debit/UnionPay), dates of birth `pd:BirthDate`, plates `pd:VehicleLicense`.
//! - Not detected: URL credentials with non-ASCII hosts/paths, e-mail addresses
//!   with non-ASCII local parts, lowercase IBANs, full-width digits.

use regex::Regex;
use std::net::Ipv6Addr;

// ---------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------

/// A check applied to a regex candidate. A candidate that fails is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validator {
    Luhn,
    /// Luhn plus a known IIN range with a length that IIN issues.
    PaymentCard,
    Iban,
    CnResidentId,
    UsSsn,
    Ipv4,
    Ipv6,
    Email,
    E164,
    CnMobile,
    /// Any of: E.164, CN mobile, NANP (US/CA), trunk-0 national (UK/DE/CN landline).
    Phone,
    DateOfBirth,
    UrlCredentials,
    Passport,
    LicencePlate,
    None,
}

impl Validator {
    pub const ALL: [Validator; 16] = [
        Validator::Luhn,
        Validator::PaymentCard,
        Validator::Iban,
        Validator::CnResidentId,
        Validator::UsSsn,
        Validator::Ipv4,
        Validator::Ipv6,
        Validator::Email,
        Validator::E164,
        Validator::CnMobile,
        Validator::Phone,
        Validator::DateOfBirth,
        Validator::UrlCredentials,
        Validator::Passport,
        Validator::LicencePlate,
        Validator::None,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Validator::Luhn => "luhn",
            Validator::PaymentCard => "payment_card",
            Validator::Iban => "iban",
            Validator::CnResidentId => "cn_resident_id",
            Validator::UsSsn => "us_ssn",
            Validator::Ipv4 => "ipv4",
            Validator::Ipv6 => "ipv6",
            Validator::Email => "email",
            Validator::E164 => "e164",
            Validator::CnMobile => "cn_mobile",
            Validator::Phone => "phone",
            Validator::DateOfBirth => "date_of_birth",
            Validator::UrlCredentials => "url_credentials",
            Validator::Passport => "passport",
            Validator::LicencePlate => "licence_plate",
            Validator::None => "none",
        }
    }

    /// Case-insensitive inverse of [`Validator::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name().eq_ignore_ascii_case(s))
    }

    /// `true` when `matched` passes this check. `Validator::None` accepts everything.
    pub fn check(&self, matched: &str) -> bool {
        match self {
            Validator::Luhn => check_luhn(matched),
            Validator::PaymentCard => check_payment_card(matched),
            Validator::Iban => check_iban(matched),
            Validator::CnResidentId => check_cn_id(matched),
            Validator::UsSsn => check_ssn(matched),
            Validator::Ipv4 => check_ipv4(matched),
            Validator::Ipv6 => check_ipv6(matched),
            Validator::Email => check_email(matched),
            Validator::E164 => check_e164(matched),
            Validator::CnMobile => check_cn_mobile(matched),
            Validator::Phone => check_phone(matched),
            Validator::DateOfBirth => check_dob(matched),
            Validator::UrlCredentials => check_url_credentials(matched),
            Validator::Passport => check_passport(matched),
            Validator::LicencePlate => check_plate(matched),
            Validator::None => true,
        }
    }
}

const MAX_DIGITS: usize = 24;

/// Digits of a grouped number, kept on the stack (validators run in the hot path).
struct Digits {
    d: [u8; MAX_DIGITS],
    n: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.d[..self.n]
    }
}

/// Digits of `s` where single separators from `seps` may sit between digits.
/// Any other byte, a leading/trailing/doubled separator or too many digits fails.
fn grouped_digits(s: &[u8], seps: &[u8]) -> Option<Digits> {
    let mut d = Digits {
        d: [0; MAX_DIGITS],
        n: 0,
    };
    let mut prev_sep = true;
    for &c in s {
        if c.is_ascii_digit() {
            if d.n >= MAX_DIGITS {
                return None;
            }
            d.d[d.n] = c - b'0';
            d.n += 1;
            prev_sep = false;
        } else if seps.contains(&c) {
            if prev_sep {
                return None;
            }
            prev_sep = true;
        } else {
            return None;
        }
    }
    if prev_sep { None } else { Some(d) }
}

fn number(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |acc, &x| {
        acc.saturating_mul(10).saturating_add(u32::from(x))
    })
}

fn ascii_number(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
    )
}

fn luhn(d: &[u8]) -> bool {
    if d.len() < 2 {
        return false;
    }
    let mut sum = 0u32;
    for (i, &x) in d.iter().rev().enumerate() {
        let mut v = u32::from(x);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn check_luhn(s: &str) -> bool {
    grouped_digits(s.as_bytes(), b" -").is_some_and(|d| luhn(d.as_slice()))
}

fn card_brand_ok(d: &[u8]) -> bool {
    let n = d.len();
    if n < 13 {
        return false;
    }
    let p1 = number(&d[..1]);
    let p2 = number(&d[..2]);
    let p3 = number(&d[..3]);
    let p4 = number(&d[..4]);
    let long = (16..=19).contains(&n);
    (p1 == 4 && matches!(n, 13 | 16 | 19)) // Visa
        || (((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16) // Mastercard
        || ((p2 == 34 || p2 == 37) && n == 15) // Amex
        || ((p4 == 6011 || p2 == 65 || (644..=649).contains(&p3)) && long) // Discover
        || (p2 == 62 && long) // UnionPay
        || ((3528..=3589).contains(&p4) && long) // JCB
        || ((p2 == 36 || p2 == 38 || (300..=305).contains(&p3)) && n == 14) // Diners
}

fn check_payment_card(s: &str) -> bool {
    grouped_digits(s.as_bytes(), b" -").is_some_and(|d| {
        let d = d.as_slice();
        (13..=19).contains(&d.len()) && card_brand_ok(d) && luhn(d)
    })
}

fn iban_length(a: u8, b: u8) -> Option<usize> {
    let len = match [a, b] {
        [b'D', b'E'] => 22,
        [b'F', b'R'] => 27,
        [b'G', b'B'] => 22,
        [b'E', b'S'] => 24,
        [b'I', b'T'] => 27,
        [b'N', b'L'] => 18,
        [b'B', b'E'] => 16,
        [b'C', b'H'] => 21,
        [b'A', b'T'] => 20,
        [b'P', b'L'] => 28,
        [b'I', b'E'] => 22,
        [b'S', b'E'] => 24,
        [b'P', b'T'] => 25,
        [b'L', b'U'] => 20,
        [b'D', b'K'] => 18,
        [b'F', b'I'] => 18,
        [b'N', b'O'] => 15,
        [b'C', b'Z'] => 24,
        [b'G', b'R'] => 27,
        [b'H', b'U'] => 28,
        [b'R', b'O'] => 24,
        [b'S', b'K'] => 24,
        [b'S', b'I'] => 19,
        [b'H', b'R'] => 21,
        [b'B', b'G'] => 22,
        [b'E', b'E'] => 20,
        [b'L', b'T'] => 20,
        [b'L', b'V'] => 21,
        [b'L', b'I'] => 21,
        [b'I', b'S'] => 26,
        [b'M', b'T'] => 31,
        [b'C', b'Y'] => 28,
        [b'M', b'C'] => 27,
        [b'S', b'M'] => 27,
        [b'T', b'R'] => 26,
        [b'A', b'E'] => 23,
        [b'S', b'A'] => 24,
        [b'I', b'L'] => 23,
        [b'B', b'R'] => 29,
        [b'Q', b'A'] => 29,
        _ => return None,
    };
    Some(len)
}

fn check_iban(s: &str) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0;
    let mut prev_space = true;
    for &c in s.as_bytes() {
        if c == b' ' {
            if prev_space {
                return false;
            }
            prev_space = true;
            continue;
        }
        prev_space = false;
        if !c.is_ascii_alphanumeric() || n >= buf.len() {
            return false;
        }
        buf[n] = c.to_ascii_uppercase();
        n += 1;
    }
    if prev_space || n < 15 {
        return false;
    }
    let b = &buf[..n];
    if !(b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit())
    {
        return false;
    }
    match iban_length(b[0], b[1]) {
        Some(len) if len != n => return false,
        _ => {}
    }
    let mut rem = 0u32;
    for &c in b[4..].iter().chain(b[..4].iter()) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    rem == 1
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    if !(1900..=2100).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let days = match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// ISO 7064 MOD 11-2 check character for the first 17 digits.
fn cn_id_check_char(d17: &[u8]) -> Option<u8> {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    if d17.len() != 17 || !d17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = d17
        .iter()
        .zip(W)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    let v = (12 - sum % 11) % 11;
    Some(if v == 10 { b'X' } else { b'0' + v as u8 })
}

fn check_cn_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !(b'1'..=b'9').contains(&b[0]) {
        return false;
    }
    let Some(expected) = cn_id_check_char(&b[..17]) else {
        return false;
    };
    if b[17].to_ascii_uppercase() != expected {
        return false;
    }
    match (
        ascii_number(&b[6..10]),
        ascii_number(&b[10..12]),
        ascii_number(&b[12..14]),
    ) {
        (Some(y), Some(m), Some(d)) => valid_date(y, m, d),
        _ => false,
    }
}

fn check_ssn(s: &str) -> bool {
    let b = s.as_bytes();
    let (area, group, serial) = match b.len() {
        11 if b[3] == b[6] && (b[3] == b'-' || b[3] == b' ') => (&b[..3], &b[4..6], &b[7..]),
        9 => (&b[..3], &b[3..5], &b[5..]),
        _ => return false,
    };
    match (
        ascii_number(area),
        ascii_number(group),
        ascii_number(serial),
    ) {
        (Some(a), Some(g), Some(sn)) => a != 0 && a != 666 && a < 900 && g != 0 && sn != 0,
        _ => false,
    }
}

fn check_ipv4(s: &str) -> bool {
    let mut parts = 0;
    for part in s.split('.') {
        parts += 1;
        let p = part.as_bytes();
        if parts > 4 || p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return false;
        }
        match ascii_number(p) {
            Some(v) if v <= 255 => {}
            _ => return false,
        }
    }
    parts == 4
}

fn check_ipv6(s: &str) -> bool {
    if s.parse::<Ipv6Addr>().is_err() {
        return false;
    }
    // "a::b", "::" parse as addresses but are mostly code (`std::io`); want some substance.
    s == "::1" || s.bytes().filter(u8::is_ascii_hexdigit).count() >= 4
}

fn check_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let lb = local.as_bytes();
    if lb.is_empty()
        || lb.len() > 64
        || lb[0] == b'.'
        || lb[lb.len() - 1] == b'.'
        || local.contains("..")
        || !lb
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
    {
        return false;
    }
    if domain.is_empty() || domain.len() > 253 || domain.contains('@') {
        return false;
    }
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        labels += 1;
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_alphanumeric() || c == '-')
        {
            return false;
        }
        last = label;
    }
    if labels < 2 {
        return false;
    }
    let punycode = last.len() > 4
        && last
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
    if punycode {
        last.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    } else {
        last.chars().count() >= 2 && last.chars().all(char::is_alphabetic)
    }
}

fn check_e164(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(rest) = b.strip_prefix(b"+") else {
        return false;
    };
    let Some(d) = grouped_digits(rest, b" -") else {
        return false;
    };
    let d = d.as_slice();
    // A trailing 1-digit group is usually a following number ("… 5678 2 items").
    let last_group = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    (8..=15).contains(&d.len()) && d[0] != 0 && last_group >= 2
}

fn check_cn_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    let rest = if let Some(r) = b.strip_prefix(b"+86").or_else(|| b.strip_prefix(b"0086")) {
        match r.first() {
            Some(b' ' | b'-') => &r[1..],
            _ => r,
        }
    } else {
        b
    };
    grouped_digits(rest, b" -").is_some_and(|d| {
        let d = d.as_slice();
        d.len() == 11 && d[0] == 1 && (3..=9).contains(&d[1])
    })
}

/// NANP: `[+1 ](AAA) EEE-SSSS` or `AAA-EEE-SSSS` (separators `-`, `.`, space).
fn check_nanp(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(r) = b.strip_prefix(b"+1") {
        b = match r.first() {
            Some(b' ' | b'-' | b'.') => &r[1..],
            _ => r,
        };
    }
    let is_sep = |c: u8| matches!(c, b'-' | b'.' | b' ');
    let (area, rest) = if b.first() == Some(&b'(') {
        if b.len() < 5 || b[4] != b')' {
            return false;
        }
        let rest = &b[5..];
        let rest = match rest.first() {
            Some(b' ') => &rest[1..],
            _ => rest,
        };
        (&b[1..4], rest)
    } else {
        if b.len() < 4 || !is_sep(b[3]) {
            return false;
        }
        (&b[..3], &b[4..])
    };
    if rest.len() != 8 || !is_sep(rest[3]) {
        return false;
    }
    let ok = ascii_number(area).is_some()
        && ascii_number(&rest[..3]).is_some()
        && ascii_number(&rest[4..]).is_some();
    ok && area[0] >= b'2'
}

/// Trunk-prefix national numbers: `020 7946 0958`, `030 1234567`, `(030) 1234567`, `010-12345678`.
fn check_trunk(s: &str) -> bool {
    let b = s.as_bytes();
    let parens = b.iter().filter(|&&c| c == b'(' || c == b')').count();
    if parens != 0 {
        // Only a leading "(0…)" area code.
        let close = b.iter().position(|&c| c == b')');
        if parens != 2 || b.first() != Some(&b'(') || close.is_none_or(|i| i < 3) {
            return false;
        }
    }
    let mut digits = 0;
    let mut first_two = [0u8; 2];
    for &c in b {
        if c.is_ascii_digit() {
            if digits < 2 {
                first_two[digits] = c;
            }
            digits += 1;
        } else if !matches!(c, b' ' | b'-' | b'(' | b')') {
            return false;
        }
    }
    (9..=12).contains(&digits) && first_two[0] == b'0' && first_two[1] != b'0'
}

fn check_phone(s: &str) -> bool {
    check_e164(s) || check_cn_mobile(s) || check_nanp(s) || check_trunk(s)
}

fn check_dob(s: &str) -> bool {
    if let Some(body) = s.strip_suffix('日') {
        let Some((y, md)) = body.split_once('年') else {
            return false;
        };
        let Some((m, d)) = md.split_once('月') else {
            return false;
        };
        if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
            return false;
        }
        return match (
            ascii_number(y.as_bytes()),
            ascii_number(m.as_bytes()),
            ascii_number(d.as_bytes()),
        ) {
            (Some(y), Some(m), Some(d)) => valid_date(y, m, d),
            _ => false,
        };
    }
    let Some(sep) = s.bytes().find(|c| !c.is_ascii_digit()) else {
        return false;
    };
    if !matches!(sep, b'-' | b'/' | b'.') {
        return false;
    }
    let mut parts = [&[][..]; 3];
    let mut n = 0;
    for p in s.as_bytes().split(|&c| c == sep) {
        if n >= 3 || p.is_empty() || p.len() > 4 {
            return false;
        }
        parts[n] = p;
        n += 1;
    }
    if n != 3 {
        return false;
    }
    let (Some(a), Some(b), Some(c)) = (
        ascii_number(parts[0]),
        ascii_number(parts[1]),
        ascii_number(parts[2]),
    ) else {
        return false;
    };
    let (la, lb, lc) = (parts[0].len(), parts[1].len(), parts[2].len());
    if la == 4 && lb <= 2 && lc <= 2 {
        valid_date(a, b, c)
    } else if lc == 4 && la <= 2 && lb <= 2 {
        // Day-first or month-first: either reading being a real date is enough.
        valid_date(c, b, a) || valid_date(c, a, b)
    } else {
        false
    }
}

fn check_url_credentials(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let sb = scheme.as_bytes();
    if sb.is_empty()
        || !sb[0].is_ascii_alphabetic()
        || !sb
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"+.-".contains(&c))
    {
        return false;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return false;
    };
    let Some((user, pass)) = userinfo.split_once(':') else {
        return false;
    };
    if user.is_empty() || pass.is_empty() || userinfo.chars().any(char::is_whitespace) {
        return false;
    }
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return false;
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return false;
        }
        match after.strip_prefix(':') {
            None if after.is_empty() => return true,
            Some(port) => return ascii_number(port.as_bytes()).is_some_and(|p| p <= 65535),
            None => return false,
        }
    } else if let Some((h, port)) = hostport.rsplit_once(':') {
        if ascii_number(port.as_bytes()).is_none_or(|p| p > 65535) {
            return false;
        }
        h
    } else {
        hostport
    };
    let hb = host.as_bytes();
    !hb.is_empty()
        && hb[0].is_ascii_alphanumeric()
        && hb
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || b".-_".contains(&c))
}

fn check_passport(s: &str) -> bool {
    let b = s.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let digits = &b[letters..];
    (1..=2).contains(&letters)
        && (6..=9).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits.iter().any(|&c| c != digits[0])
}

const CN_PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

fn check_plate(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if CN_PROVINCES.contains(first) {
        if !chars.next().is_some_and(|c| c.is_ascii_uppercase()) {
            return false;
        }
        let mut rest = chars.as_str();
        if let Some(r) = rest.strip_prefix(['·', '•', '-', ' ']) {
            rest = r;
        }
        let n = rest.chars().count();
        if !(5..=6).contains(&n) {
            return false;
        }
        return rest.chars().enumerate().all(|(i, c)| {
            c.is_ascii_uppercase()
                || c.is_ascii_digit()
                || (i + 1 == n && "挂学警港澳领".contains(c))
        });
    }
    let b = s.as_bytes();
    let mut alnum = 0;
    let mut seps = 0;
    let mut prev_sep = true;
    let (mut letter, mut digit) = (false, false);
    for &c in b {
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            alnum += 1;
            letter |= c.is_ascii_uppercase();
            digit |= c.is_ascii_digit();
            prev_sep = false;
        } else if c == b' ' || c == b'-' {
            if prev_sep {
                return false;
            }
            seps += 1;
            prev_sep = true;
        } else {
            return false;
        }
    }
    !prev_sep && (5..=8).contains(&alnum) && seps <= 2 && letter && digit
}

// ---------------------------------------------------------------------------
// Byte profile: cheap prefilter computed once per value
// ---------------------------------------------------------------------------

/// Used both as what a text has (one pass over its bytes) and as what a
/// pattern needs before its regex is worth running.
#[derive(Debug, Clone, Copy, Default)]
struct Profile {
    digits: usize,
    /// Longest run of consecutive ASCII digits.
    run: usize,
    /// `[ -.]` between two digits, or `(`.
    seps: usize,
    dots: usize,
    colons: usize,
    at: bool,
    plus: bool,
    /// `[A-Z]{2}[0-9]{2}` somewhere (IBAN start).
    iban: bool,
    /// A digit run starting with `0` (trunk prefix).
    zero_lead: bool,
    nonascii: bool,
    // Byte positions (valid when the matching count is non-zero); not part of gates.
    first_digit: usize,
    last_digit: usize,
    first_colon: usize,
    last_colon: usize,
}

impl Profile {
    const NONE: Profile = Profile {
        digits: 0,
        run: 0,
        seps: 0,
        dots: 0,
        colons: 0,
        at: false,
        plus: false,
        iban: false,
        zero_lead: false,
        nonascii: false,
        first_digit: 0,
        last_digit: 0,
        first_colon: 0,
        last_colon: 0,
    };

    fn scan(b: &[u8]) -> Profile {
        let mut f = Profile::NONE;
        // Pass 1: branch-free counts over the whole value; fixed-size chunks
        // with byte accumulators so it auto-vectorizes. Most values stop here.
        let (mut digits, mut colons, mut dots) = (0usize, 0usize, 0usize);
        let (mut at, mut plus, mut high) = (0u8, 0u8, 0u8);
        let mut chunks = b.chunks_exact(32);
        for chunk in &mut chunks {
            let (mut d, mut co, mut dt, mut a, mut p, mut h) = (0u8, 0u8, 0u8, 0u8, 0u8, 0u8);
            for &c in chunk {
                d += u8::from(c.wrapping_sub(b'0') < 10);
                co += u8::from(c == b':');
                dt += u8::from(c == b'.');
                a |= u8::from(c == b'@');
                p |= u8::from(c == b'+');
                h |= c & 0x80;
            }
            digits += usize::from(d);
            colons += usize::from(co);
            dots += usize::from(dt);
            at |= a;
            plus |= p;
            high |= h;
        }
        for &c in chunks.remainder() {
            digits += usize::from(c.wrapping_sub(b'0') < 10);
            colons += usize::from(c == b':');
            dots += usize::from(c == b'.');
            at |= u8::from(c == b'@');
            plus |= u8::from(c == b'+');
            high |= c & 0x80;
        }
        f.digits = digits;
        f.colons = colons;
        f.dots = dots;
        f.at = at != 0;
        f.plus = plus != 0;
        f.nonascii = high != 0;
        if f.colons > 0 {
            f.first_colon = b.iter().position(|&c| c == b':').unwrap_or(0);
            f.last_colon = b.iter().rposition(|&c| c == b':').unwrap_or(0);
        }
        if f.digits == 0 {
            return f;
        }
        let first = b.iter().position(u8::is_ascii_digit).unwrap_or(0);
        let last = b.iter().rposition(u8::is_ascii_digit).unwrap_or(first);
        f.first_digit = first;
        f.last_digit = last;
        // Pass 2: digit structure, only over the span holding digits (plus
        // three bytes before it for an IBAN country code or a "(").
        let start = first.saturating_sub(3);
        let Some(span) = b.get(start..=last) else {
            return f;
        };
        let mut run = 0usize;
        let (mut p1, mut p2, mut p3) = (0u8, 0u8, 0u8);
        for (i, &c) in span.iter().enumerate() {
            if c.is_ascii_digit() {
                if run == 0 && c == b'0' {
                    f.zero_lead = true;
                }
                run += 1;
                f.run = f.run.max(run);
                if p1.is_ascii_digit() && p2.is_ascii_uppercase() && p3.is_ascii_uppercase() {
                    f.iban = true;
                }
            } else {
                run = 0;
                if c == b'('
                    || (matches!(c, b'.' | b' ' | b'-')
                        && p1.is_ascii_digit()
                        && span.get(i + 1).is_some_and(u8::is_ascii_digit))
                {
                    f.seps += 1;
                }
            }
            p3 = p2;
            p2 = p1;
            p1 = c;
        }
        f
    }

    fn allows(&self, f: &Profile) -> bool {
        f.digits >= self.digits
            && f.run >= self.run
            && f.seps >= self.seps
            && f.dots >= self.dots
            && f.colons >= self.colons
            && (!self.at || f.at)
            && (!self.plus || f.plus)
            && (!self.iban || f.iban)
            && (!self.zero_lead || f.zero_lead)
            && (!self.nonascii || f.nonascii)
    }
}

// ---------------------------------------------------------------------------
// Recognizers
// ---------------------------------------------------------------------------

/// What must hold around a match (the regex crate has no lookaround).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    None,
    /// Not glued to ASCII alphanumerics/`_`, not preceded by `+`, and not
    /// continued by `-`/`.` plus a digit (longer digit runs, dotted versions).
    Token,
    /// As `Token`, and no adjacent `:` (a longer colon run is not one address).
    Ipv6,
}

/// Where in the text a pattern can possibly match, so the regex scans only
/// that slice instead of the whole value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Full,
    /// From `pre` bytes before the first ASCII digit to `post` bytes after the last.
    Digits {
        pre: usize,
        post: usize,
    },
    /// Same, around the ASCII colons.
    Colons {
        pre: usize,
        post: usize,
    },
}

impl Window {
    fn range(self, text: &str, f: &Profile) -> (usize, usize) {
        let (first, last, pre, post) = match self {
            Window::Full => return (0, text.len()),
            Window::Digits { pre, post } => (f.first_digit, f.last_digit, pre, post),
            Window::Colons { pre, post } => (f.first_colon, f.last_colon, pre, post),
        };
        let mut lo = first.saturating_sub(pre);
        while lo > 0 && !text.is_char_boundary(lo) {
            lo -= 1;
        }
        let mut hi = last.saturating_add(1).saturating_add(post).min(text.len());
        while hi < text.len() && !text.is_char_boundary(hi) {
            hi += 1;
        }
        (lo, hi)
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    re: Regex,
    validator: Validator,
    boundary: Boundary,
    gate: Profile,
    window: Window,
    /// On rejection, search again just after the rejected start (past its
    /// alphanumeric run) instead of after the match end. Only for patterns of
    /// bounded length, which keeps huge inputs linear.
    retry: bool,
    /// On rejection, try prefixes cut at ` `/`-` group boundaries, longest first.
    shrink: bool,
    /// Drop trailing sentence punctuation (URLs).
    trim_punct: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    retry: bool,
    shrink: bool,
    trim_punct: bool,
}

const RETRY: Flags = Flags {
    retry: true,
    shrink: false,
    trim_punct: false,
};
const RETRY_SHRINK: Flags = Flags {
    retry: true,
    shrink: true,
    trim_punct: false,
};

fn pattern(
    re: &str,
    validator: Validator,
    boundary: Boundary,
    (gate, window): (Profile, Window),
    flags: Flags,
) -> Result<Pattern, regex::Error> {
    Ok(Pattern {
        re: Regex::new(re)?,
        validator,
        boundary,
        gate,
        window,
        retry: flags.retry,
        shrink: flags.shrink,
        trim_punct: flags.trim_punct,
    })
}

/// One kind of personal data: patterns + validator + metadata.
#[derive(Debug, Clone)]
pub struct Recognizer {
    /// Stable snake_case name.
    pub name: String,
    /// W3C DPV-PD term, e.g. `pd:EmailAddress`.
    pub category: String,
    /// PIPL Art. 28 sensitive personal information.
    pub sensitive_pipl: bool,
    /// GDPR Art. 9 special category.
    pub sensitive_gdpr: bool,
    /// Only reported when the column name gives context.
    pub needs_context: bool,
    /// Column-name signals (English tokens, Chinese substrings).
    pub column_keywords: Vec<String>,
    patterns: Vec<Pattern>,
    validator: Validator,
    base_confidence: f32,
}

impl Recognizer {
    pub fn validator(&self) -> Validator {
        self.validator
    }

    pub fn base_confidence(&self) -> f32 {
        self.base_confidence
    }

    /// Regex sources of this recognizer's patterns.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.re.as_str())
    }
}

struct Spec {
    name: &'static str,
    category: &'static str,
    pipl: bool,
    needs_context: bool,
    /// Space-separated.
    keywords: &'static str,
    validator: Validator,
    base: f32,
}

fn recognizer(spec: Spec, patterns: Vec<Pattern>) -> Recognizer {
    Recognizer {
        name: spec.name.to_string(),
        category: spec.category.to_string(),
        sensitive_pipl: spec.pipl,
        sensitive_gdpr: false,
        needs_context: spec.needs_context,
        column_keywords: spec
            .keywords
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        patterns,
        validator: spec.validator,
        base_confidence: spec.base,
    }
}

// Local part is ASCII on purpose: Unicode there would swallow adjacent CJK text.
// ASCII TLD alternatives come first so "a@b.com谢谢" stops at "com".
const EMAIL_RE: &str =
    r"[A-Za-z0-9._%+\-]+@(?:[\p{L}\p{N}\-]+\.)+(?:xn--[A-Za-z0-9\-]+|[A-Za-z]{2,}|\p{L}{2,})";
const URL_CRED_RE: &str = r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]+:[^\s/?#@]+@(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._\-]+)(?::[0-9]{1,5})?(?:[/?#][\x21-\x7E]*)?";
const CN_MOBILE_RE: &str = r"(?:(?:\+|00)86[ \-]?)?1[3-9][0-9](?:[ \-]?[0-9]{4}){2}";
const E164_RE: &str = r"\+[1-9](?:[ \-]?[0-9]){7,14}";
const NANP_RE: &str =
    r"(?:\+1[ \-.]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[\-. ])[0-9]{3}[\-. ][0-9]{4}";
const TRUNK_RE: &str =
    r"(?:0[1-9][0-9]{1,4}[ \-]|\(0[1-9][0-9]{1,4}\) ?)[0-9]{3,8}(?:[ \-][0-9]{3,4})?";
const CN_ID_RE: &str = r"[1-9][0-9]{16}[0-9Xx]";
const CARD_RUN_RE: &str = r"[0-9]{13,19}";
const CARD_GROUPED_RE: &str = r"[0-9]{4}(?:[ \-][0-9]{3,6}){2,4}";
const IBAN_RE: &str = r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?";
const IPV4_RE: &str = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}";
const IPV6_RE: &str =
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?";
const SSN_RE: &str = r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}";
const PASSPORT_RE: &str = r"[A-Z]{1,2}[0-9]{6,9}";
const CN_PLATE_RE: &str = r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][·•\- ]?[A-Z0-9]{4,5}[A-Z0-9挂学警港澳领]";
const PLATE_RE: &str = r"[A-Z0-9]{1,8}(?:[ \-][A-Z0-9]{1,4}){0,2}";
const DOB_RE: &str = r"(?:19|20)[0-9]{2}(?:[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|年[0-9]{1,2}月[0-9]{1,2}日)|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.](?:19|20)[0-9]{2}";

/// Compiles every built-in pattern; the regexes are constants, so an error
/// here is a programming error surfaced to the caller instead of a panic.
fn builtin_recognizers() -> Result<Vec<Recognizer>, regex::Error> {
    use Boundary::Token;
    let p = Profile::NONE;
    let plain = Flags::default();
    let trim = Flags {
        trim_punct: true,
        ..Flags::default()
    };
    Ok(vec![
        recognizer(
            Spec {
                name: "email",
                category: "pd:EmailAddress",
                pipl: false,
                needs_context: false,
                keywords: "email e_mail mail mailbox 邮箱 电子邮件 邮件",
                validator: Validator::Email,
                base: 0.8,
            },
            vec![pattern(
                EMAIL_RE,
                Validator::Email,
                Boundary::None,
                (Profile { at: true, ..p }, Window::Full),
                plain,
            )?],
        ),
        recognizer(
            Spec {
                name: "phone",
                category: "pd:TelephoneNumber",
                pipl: false,
                needs_context: false,
                keywords: "phone mobile tel telephone cell cellphone msisdn 手机 手机号 电话 联系方式",
                validator: Validator::Phone,
                base: 0.55,
            },
            vec![
                pattern(
                    CN_MOBILE_RE,
                    Validator::CnMobile,
                    Token,
                    (
                        Profile { digits: 11, ..p },
                        Window::Digits { pre: 1, post: 0 },
                    ),
                    RETRY,
                )?,
                pattern(
                    E164_RE,
                    Validator::E164,
                    Token,
                    (
                        Profile {
                            digits: 8,
                            plus: true,
                            ..p
                        },
                        Window::Digits { pre: 1, post: 0 },
                    ),
                    RETRY_SHRINK,
                )?,
                pattern(
                    NANP_RE,
                    Validator::Phone,
                    Token,
                    (
                        Profile {
                            digits: 10,
                            seps: 1,
                            ..p
                        },
                        Window::Digits { pre: 1, post: 0 },
                    ),
                    RETRY,
                )?,
                pattern(
                    TRUNK_RE,
                    Validator::Phone,
                    Token,
                    (
                        Profile {
                            digits: 9,
                            seps: 1,
                            zero_lead: true,
                            ..p
                        },
                        Window::Digits { pre: 1, post: 0 },
                    ),
                    RETRY,
                )?,
            ],
        ),
        recognizer(
            Spec {
                name: "cn_resident_id",
                category: "pd:OfficialID",
                pipl: true,
                needs_context: false,
                keywords: "id_card idcard id_card_no id_card_number id_number id_no national_id resident_id citizen_id 身份证 身份证号 证件号",
                validator: Validator::CnResidentId,
                base: 0.8,
            },
            vec![pattern(
                CN_ID_RE,
                Validator::CnResidentId,
                Token,
                (Profile { run: 17, ..p }, Window::Digits { pre: 0, post: 1 }),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "payment_card",
                category: "pd:PaymentCardNumber",
                pipl: true,
                needs_context: false,
                keywords: "card pan credit_card debit_card bank_card cc_number 银行卡 卡号 信用卡",
                validator: Validator::PaymentCard,
                base: 0.8,
            },
            vec![
                pattern(
                    CARD_RUN_RE,
                    Validator::PaymentCard,
                    Token,
                    (Profile { run: 13, ..p }, Window::Digits { pre: 0, post: 0 }),
                    RETRY,
                )?,
                pattern(
                    CARD_GROUPED_RE,
                    Validator::PaymentCard,
                    Token,
                    (
                        Profile {
                            digits: 13,
                            seps: 2,
                            ..p
                        },
                        Window::Digits { pre: 0, post: 0 },
                    ),
                    RETRY_SHRINK,
                )?,
            ],
        ),
        recognizer(
            Spec {
                name: "iban",
                category: "pd:BankAccount",
                pipl: true,
                needs_context: false,
                keywords: "iban account account_number bank_account 银行账号 银行账户 开户账号",
                validator: Validator::Iban,
                base: 0.8,
            },
            vec![pattern(
                IBAN_RE,
                Validator::Iban,
                Token,
                (
                    Profile { iban: true, ..p },
                    Window::Digits { pre: 2, post: 12 },
                ),
                RETRY_SHRINK,
            )?],
        ),
        recognizer(
            Spec {
                name: "ipv4",
                category: "pd:IPAddress",
                pipl: false,
                needs_context: false,
                keywords: "ip ip_address ipv4 client_ip remote_addr ip地址",
                validator: Validator::Ipv4,
                base: 0.5,
            },
            vec![pattern(
                IPV4_RE,
                Validator::Ipv4,
                Token,
                (
                    Profile {
                        digits: 4,
                        dots: 3,
                        ..p
                    },
                    Window::Digits { pre: 0, post: 0 },
                ),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "ipv6",
                category: "pd:IPAddress",
                pipl: false,
                needs_context: false,
                keywords: "ip ip_address ipv6 client_ip remote_addr ip地址",
                validator: Validator::Ipv6,
                base: 0.6,
            },
            vec![pattern(
                IPV6_RE,
                Validator::Ipv6,
                Boundary::Ipv6,
                (
                    Profile { colons: 2, ..p },
                    Window::Colons { pre: 4, post: 16 },
                ),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "us_ssn",
                category: "pd:OfficialID",
                pipl: true,
                needs_context: false,
                keywords: "ssn social_security social_security_number 社会安全号",
                validator: Validator::UsSsn,
                base: 0.5,
            },
            vec![pattern(
                SSN_RE,
                Validator::UsSsn,
                Token,
                (
                    Profile {
                        digits: 9,
                        seps: 2,
                        ..p
                    },
                    Window::Digits { pre: 0, post: 0 },
                ),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "passport",
                category: "pd:Passport",
                pipl: true,
                needs_context: true,
                keywords: "passport passport_no passport_number 护照 护照号",
                validator: Validator::Passport,
                base: 0.35,
            },
            vec![pattern(
                PASSPORT_RE,
                Validator::Passport,
                Token,
                (
                    Profile { digits: 6, ..p },
                    Window::Digits { pre: 2, post: 0 },
                ),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "licence_plate",
                category: "pd:VehicleLicense",
                pipl: false,
                needs_context: true,
                keywords: "plate licence_plate license_plate number_plate plate_number 车牌 车牌号",
                validator: Validator::LicencePlate,
                base: 0.35,
            },
            vec![
                pattern(
                    CN_PLATE_RE,
                    Validator::LicencePlate,
                    Token,
                    (
                        Profile {
                            digits: 1,
                            nonascii: true,
                            ..p
                        },
                        Window::Full,
                    ),
                    RETRY,
                )?,
                pattern(
                    PLATE_RE,
                    Validator::LicencePlate,
                    Token,
                    (Profile { digits: 1, ..p }, Window::Full),
                    RETRY,
                )?,
            ],
        ),
        recognizer(
            Spec {
                name: "date_of_birth",
                category: "pd:BirthDate",
                pipl: false,
                needs_context: true,
                keywords: "dob birth birthday birth_date birthdate date_of_birth 出生 生日 出生日期",
                validator: Validator::DateOfBirth,
                base: 0.35,
            },
            vec![pattern(
                DOB_RE,
                Validator::DateOfBirth,
                Token,
                (
                    Profile { digits: 6, ..p },
                    Window::Digits { pre: 0, post: 3 },
                ),
                RETRY,
            )?],
        ),
        recognizer(
            Spec {
                name: "url_credentials",
                category: "pd:Password",
                pipl: true,
                needs_context: false,
                keywords: "url uri dsn connection_string conn_str database_url endpoint 连接串 链接",
                validator: Validator::UrlCredentials,
                base: 0.85,
            },
            vec![pattern(
                URL_CRED_RE,
                Validator::UrlCredentials,
                Boundary::None,
                (
                    Profile {
                        at: true,
                        colons: 2,
                        ..p
                    },
                    Window::Full,
                ),
                trim,
            )?],
        ),
    ])
}

/// One entity found in a text. Offsets are byte offsets on char boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    /// Index into [`RecognizerSet::recognizers`].
    pub recognizer: usize,
    /// The match passed a real validator (not `Validator::None`).
    pub validated: bool,
}

/// An ordered set of recognizers; indices are stable once added.
#[derive(Debug, Clone)]
pub struct RecognizerSet {
    recs: Vec<Recognizer>,
}

impl RecognizerSet {
    /// The built-in recognizers (see the module docs).
    pub fn builtin() -> Result<Self, regex::Error> {
        Ok(RecognizerSet {
            recs: builtin_recognizers()?,
        })
    }

    /// Adds a user recognizer. It always runs (no prefilter, no boundary
    /// checks: use `\b` in the pattern), is not context-only and has no keywords.
    pub fn add_custom(
        &mut self,
        name: &str,
        pattern: &str,
        validator: Option<&str>,
        category: &str,
    ) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("custom recognizer: the name must not be empty".to_string());
        }
        if self.index_of(name).is_some() {
            return Err(format!(
                "custom recognizer '{name}': a recognizer with this name already exists"
            ));
        }
        if category.trim().is_empty() {
            return Err(format!(
                "custom recognizer '{name}': the category must not be empty (use a DPV term such as pd:Identifier)"
            ));
        }
        let validator = match validator {
            None => Validator::None,
            Some(v) => Validator::from_name(v).ok_or_else(|| {
                let names: Vec<&str> = Validator::ALL.iter().map(Validator::name).collect();
                format!(
                    "custom recognizer '{name}': unknown validator '{v}'; valid validators are: {}",
                    names.join(", ")
                )
            })?,
        };
        if pattern.is_empty() {
            return Err(format!(
                "custom recognizer '{name}': the pattern must not be empty"
            ));
        }
        let re = Regex::new(pattern)
            .map_err(|e| format!("custom recognizer '{name}': invalid regex: {e}"))?;
        if re.is_match("") {
            return Err(format!(
                "custom recognizer '{name}': the pattern matches the empty string"
            ));
        }
        self.recs.push(Recognizer {
            name: name.to_string(),
            category: category.trim().to_string(),
            sensitive_pipl: false,
            sensitive_gdpr: false,
            needs_context: false,
            column_keywords: Vec::new(),
            patterns: vec![Pattern {
                re,
                validator,
                boundary: Boundary::None,
                gate: Profile::NONE,
                window: Window::Full,
                retry: false,
                shrink: false,
                trim_punct: false,
            }],
            validator,
            base_confidence: 0.5,
        });
        Ok(())
    }

    pub fn recognizers(&self) -> &[Recognizer] {
        &self.recs
    }

    /// A set with only the named recognizers, in the order given. An unknown name is an
    /// error listing the known ones.
    pub fn subset(&self, names: &[String]) -> Result<RecognizerSet, String> {
        let mut recs = Vec::with_capacity(names.len());
        for n in names {
            match self.recs.iter().find(|r| &r.name == n) {
                Some(r) => recs.push(r.clone()),
                None => {
                    return Err(format!(
                        "unknown recognizer `{n}`; known: {}",
                        self.recs
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(RecognizerSet { recs })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.recs.iter().position(|r| r.name == name)
    }

    /// All entities in `text`, non-overlapping, sorted by start. `out` is
    /// cleared first and reused (no allocation once it has grown).
    /// `column_context`: indices of recognizers whose keywords matched the
    /// column name; context-only recognizers run only when listed there.
    pub fn find(&self, text: &str, column_context: &[usize], out: &mut Vec<Match>) {
        self.find_inner(text, column_context, out, None);
    }

    /// As [`RecognizerSet::find`], and also records in `rejected` the recognizer of every
    /// candidate that matched a pattern but failed its validator (for scan statistics).
    pub fn find_with_rejects(
        &self,
        text: &str,
        column_context: &[usize],
        out: &mut Vec<Match>,
        rejected: &mut Vec<usize>,
    ) {
        rejected.clear();
        self.find_inner(text, column_context, out, Some(rejected));
    }

    fn find_inner(
        &self,
        text: &str,
        column_context: &[usize],
        out: &mut Vec<Match>,
        mut rejected: Option<&mut Vec<usize>>,
    ) {
        out.clear();
        if text.is_empty() {
            return;
        }
        let profile = Profile::scan(text.as_bytes());
        for (ri, rec) in self.recs.iter().enumerate() {
            if rec.needs_context && !column_context.contains(&ri) {
                continue;
            }
            for pat in &rec.patterns {
                if pat.gate.allows(&profile) {
                    run_pattern(text, &profile, ri, pat, out, rejected.as_deref_mut());
                }
            }
        }
        resolve_overlaps(out);
    }

    /// Which recognizers' keywords match this column name. English keywords
    /// match whole tokens (split on `_ - . space` and camelCase; keywords of 5+
    /// letters also inside a token, e.g. `useremail`, except for context-only
    /// recognizers, where a false signal would switch detection on: `template`
    /// must not mean `plate`); Chinese keywords match as substrings. A hit inside a longer hit of another recognizer is dropped
    /// (`id_card_no` is an ID, not a card).
    pub fn column_signal(&self, column_name: &str) -> Vec<usize> {
        struct Hit {
            rec: usize,
            cjk: bool,
            start: usize,
            end: usize,
        }
        let tokens = column_tokens(column_name);
        let lower = column_name.to_lowercase();
        let mut hits: Vec<Hit> = Vec::new();
        for (ri, rec) in self.recs.iter().enumerate() {
            for kw in &rec.column_keywords {
                if kw.is_ascii() {
                    let kt = column_tokens(kw);
                    if kt.is_empty() || kt.len() > tokens.len() {
                        continue;
                    }
                    for i in 0..=tokens.len() - kt.len() {
                        let exact = tokens[i..i + kt.len()] == kt[..];
                        let inside = !rec.needs_context
                            && kt.len() == 1
                            && kt[0].len() >= 5
                            && tokens[i].contains(&kt[0]);
                        if exact || inside {
                            hits.push(Hit {
                                rec: ri,
                                cjk: false,
                                start: i,
                                end: i + kt.len(),
                            });
                        }
                    }
                } else {
                    let kw = kw.to_lowercase();
                    for (pos, m) in lower.match_indices(kw.as_str()) {
                        hits.push(Hit {
                            rec: ri,
                            cjk: true,
                            start: pos,
                            end: pos + m.len(),
                        });
                    }
                }
            }
        }
        let mut out: Vec<usize> = hits
            .iter()
            .filter(|h| {
                !hits.iter().any(|o| {
                    o.rec != h.rec
                        && o.cjk == h.cjk
                        && o.start <= h.start
                        && h.end <= o.end
                        && o.end - o.start > h.end - h.start
                })
            })
            .map(|h| h.rec)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Confidence in [0, 1]: the recognizer's base, raised when the match was
    /// validated and again when the column name points at this recognizer.
    pub fn confidence(&self, m: &Match, column_context: &[usize]) -> f32 {
        let Some(rec) = self.recs.get(m.recognizer) else {
            return 0.0;
        };
        let mut c = rec.base_confidence;
        if m.validated {
            c += (1.0 - c) * 0.5;
        }
        if column_context.contains(&m.recognizer) {
            c += (1.0 - c) * 0.5;
        }
        c.clamp(0.0, 1.0)
    }
}

/// Lowercase ASCII tokens of a column name; non-ASCII chars act as separators.
fn column_tokens(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !cur.is_empty() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                tokens.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    tokens
}

fn next_char_end(text: &str, i: usize) -> usize {
    i + text
        .get(i..)
        .and_then(|s| s.chars().next())
        .map_or(1, char::len_utf8)
}

/// Next start worth searching after a rejected candidate at `s`: every start
/// inside the alphanumeric run beginning at `s` is preceded by a word char and
/// would fail the boundary check, so skip past the run's first non-word char.
fn after_word_run(text: &str, s: usize) -> usize {
    let rest = text.get(s..).unwrap_or("");
    match rest.char_indices().find(|&(_, c)| !is_word(c)) {
        Some((i, c)) => s + i + c.len_utf8(),
        None => text.len() + 1,
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn boundary_ok(text: &str, start: usize, end: usize, kind: Boundary) -> bool {
    if kind == Boundary::None {
        return true;
    }
    let (Some(before), Some(after)) = (text.get(..start), text.get(end..)) else {
        return false;
    };
    let mut back = before.chars().rev();
    if let Some(p) = back.next() {
        if is_word(p) || p == '+' {
            return false;
        }
        let joined = back.next().is_some_and(|c| c.is_ascii_digit());
        if matches!(p, '-' | '.') && joined {
            return false;
        }
        if kind == Boundary::Ipv6 && p == ':' {
            return false;
        }
    }
    let mut fwd = after.chars();
    if let Some(n) = fwd.next() {
        if is_word(n) {
            return false;
        }
        let joined = fwd.next().is_some_and(|c| c.is_ascii_digit());
        if matches!(n, '-' | '.') && joined {
            return false;
        }
        if kind == Boundary::Ipv6 && n == ':' {
            return false;
        }
    }
    true
}

/// Largest end `<= end` such that `[start, end)` is an acceptable entity.
fn accept(text: &str, start: usize, mut end: usize, pat: &Pattern) -> Option<usize> {
    let bytes = text.as_bytes();
    if pat.trim_punct {
        while end > start
            && bytes
                .get(end - 1)
                .is_some_and(|c| b".,;:!?)]}'\">".contains(c))
        {
            end -= 1;
        }
    }
    loop {
        if end <= start {
            return None;
        }
        let candidate = text.get(start..end)?;
        if boundary_ok(text, start, end, pat.boundary) && pat.validator.check(candidate) {
            return Some(end);
        }
        if !pat.shrink {
            return None;
        }
        let cut = candidate.rfind([' ', '-'])?;
        end = start + cut;
        while end > start && bytes.get(end - 1).is_some_and(|c| matches!(c, b' ' | b'-')) {
            end -= 1;
        }
    }
}

fn run_pattern(
    text: &str,
    profile: &Profile,
    ri: usize,
    pat: &Pattern,
    out: &mut Vec<Match>,
    mut rejected: Option<&mut Vec<usize>>,
) {
    let validated = pat.validator != Validator::None;
    let (mut pos, hi) = pat.window.range(text, profile);
    // Built-in patterns use no look-around assertions, so cutting the haystack
    // at `hi` and starting at `pos` cannot change which matches exist inside.
    let Some(hay) = text.get(..hi) else {
        return;
    };
    while pos <= hi {
        let Some(m) = pat.re.find_at(hay, pos) else {
            break;
        };
        let (s, e) = (m.start(), m.end());
        if e == s {
            pos = next_char_end(text, s);
            continue;
        }
        match accept(text, s, e, pat) {
            Some(end) => {
                out.push(Match {
                    start: s,
                    end,
                    recognizer: ri,
                    validated,
                });
                pos = end;
            }
            None => {
                if let Some(r) = rejected.as_deref_mut() {
                    r.push(ri);
                }
                pos = if pat.retry && pat.boundary != Boundary::None {
                    after_word_run(text, s)
                } else if pat.retry {
                    next_char_end(text, s)
                } else {
                    e
                };
            }
        }
    }
}

/// Within each cluster of overlapping candidates keep, greedily: validated
/// first, then longer, then lower recognizer index. Clusters are contiguous
/// once sorted by start, so this is in place and allocation-free.
fn resolve_overlaps(out: &mut Vec<Match>) {
    if out.len() < 2 {
        return;
    }
    out.sort_unstable_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.recognizer.cmp(&b.recognizer))
    });
    let n = out.len();
    let mut w = 0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        let mut max_end = out[i].end;
        while j < n && out[j].start < max_end {
            max_end = max_end.max(out[j].end);
            j += 1;
        }
        let cluster = &mut out[i..j];
        let mut kept = cluster.len();
        if kept > 1 {
            cluster.sort_unstable_by(|a, b| {
                b.validated
                    .cmp(&a.validated)
                    .then((b.end - b.start).cmp(&(a.end - a.start)))
                    .then(a.recognizer.cmp(&b.recognizer))
                    .then(a.start.cmp(&b.start))
            });
            kept = 0;
            for k in 0..cluster.len() {
                let c = cluster[k];
                if cluster[..kept]
                    .iter()
                    .all(|x| x.end <= c.start || c.end <= x.start)
                {
                    cluster[kept] = c;
                    kept += 1;
                }
            }
            cluster[..kept].sort_unstable_by_key(|m| m.start);
        }
        for k in 0..kept {
            out[w] = out[i + k];
            w += 1;
        }
        i = j;
    }
    out.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> RecognizerSet {
        RecognizerSet::builtin().expect("built-in regexes compile")
    }

    fn idx(s: &RecognizerSet, name: &str) -> usize {
        s.index_of(name).expect("known recognizer")
    }

    /// (recognizer name, matched text) for every match, checking invariants.
    fn found_ctx(s: &RecognizerSet, text: &str, ctx: &[usize]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        s.find(text, ctx, &mut out);
        let mut last_end = 0;
        for m in &out {
            assert!(m.start < m.end, "empty match in {text:?}");
            assert!(m.start >= last_end, "overlap/unsorted in {text:?}: {out:?}");
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            last_end = m.end;
        }
        out.iter()
            .map(|m| {
                (
                    s.recognizers()[m.recognizer].name.clone(),
                    text[m.start..m.end].to_string(),
                )
            })
            .collect()
    }

    fn found(s: &RecognizerSet, text: &str) -> Vec<(String, String)> {
        found_ctx(s, text, &[])
    }

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_string(), value.to_string())]
    }

    fn assert_finds(s: &RecognizerSet, text: &str, name: &str, value: &str) {
        assert_eq!(found(s, text), one(name, value), "text: {text:?}");
    }

    fn assert_none(s: &RecognizerSet, text: &str) {
        assert_eq!(found(s, text), vec![], "text: {text:?}");
    }

    // --- generators (check characters are computed, never remembered) ---

    fn cn_id(first17: &str) -> String {
        let c = cn_id_check_char(first17.as_bytes()).expect("17 digits");
        format!("{first17}{}", c as char)
    }

    fn wrong_cn_id(first17: &str) -> String {
        let c = cn_id_check_char(first17.as_bytes()).expect("17 digits");
        let wrong = if c == b'0' { '1' } else { '0' };
        format!("{first17}{wrong}")
    }

    fn luhn_complete(prefix: &str) -> String {
        for d in 0..10 {
            let s = format!("{prefix}{d}");
            let digits: Vec<u8> = s.bytes().map(|c| c - b'0').collect();
            if luhn(&digits) {
                return s;
            }
        }
        unreachable!("one check digit always works")
    }

    fn luhn_broken(prefix: &str) -> String {
        let good = luhn_complete(prefix);
        let last = good.as_bytes()[good.len() - 1] - b'0';
        format!("{prefix}{}", (last + 1) % 10)
    }

    fn iban(country: &str, bban: &str) -> String {
        let mut rem = 0u32;
        for c in format!("{bban}{country}00").bytes() {
            rem = if c.is_ascii_digit() {
                (rem * 10 + u32::from(c - b'0')) % 97
            } else {
                (rem * 100 + u32::from(c - b'A') + 10) % 97
            };
        }
        format!("{country}{:02}{bban}", 98 - rem)
    }

    fn group4(s: &str) -> String {
        s.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    // --- validators ---

    #[test]
    fn validator_names_round_trip() {
        for v in Validator::ALL {
            assert_eq!(Validator::from_name(v.name()), Some(v));
            assert_eq!(Validator::from_name(&v.name().to_uppercase()), Some(v));
        }
        assert_eq!(Validator::from_name("crc32"), None);
    }

    #[test]
    fn generators_agree_with_published_examples() {
        // The ISO 13616 example IBAN and the GB/T 11643 example ID.
        assert_eq!(iban("DE", "370400440532013000"), "DE89370400440532013000");
        assert_eq!(cn_id("11010519491231002"), "11010519491231002X");
        assert!(Validator::Luhn.check("4111 1111 1111 1111"));
    }

    #[test]
    fn validators_reject_garbage_without_panicking() {
        let inputs = [
            "",
            " ",
            "-",
            "+",
            "@",
            "::",
            "年月日",
            "0001",
            "9".repeat(100).as_str(),
            "😀😀😀",
            "京",
            "(",
            ")",
            "+86",
            "0086 ",
            "http://",
            "a@",
            "@b.cc",
            "1..1.1",
            "X12",
        ]
        .map(str::to_string);
        for v in Validator::ALL {
            for i in &inputs {
                let r = v.check(i);
                if v != Validator::None {
                    assert!(!r, "{} accepted {i:?}", v.name());
                }
            }
        }
    }

    // --- email ---

    #[test]
    fn email_true_positives() {
        let s = set();
        assert_finds(
            &s,
            "contact john.doe+tag@example.com today",
            "email",
            "john.doe+tag@example.com",
        );
        assert_finds(&s, "x@sub.domain.co.uk.", "email", "x@sub.domain.co.uk");
        assert_finds(
            &s,
            "请发到 zhang_san@例子.中国",
            "email",
            "zhang_san@例子.中国",
        );
        assert_finds(
            &s,
            "邮箱：li.si@mail.example.cn，谢谢",
            "email",
            "li.si@mail.example.cn",
        );
        assert_finds(&s, "邮箱li@qq.com谢谢", "email", "li@qq.com");
        assert_finds(
            &s,
            "a@xn--fiqs8s.xn--fiqz9s",
            "email",
            "a@xn--fiqs8s.xn--fiqz9s",
        );
    }

    #[test]
    fn email_near_misses() {
        let s = set();
        assert_none(&s, "john@localhost");
        assert_none(&s, "a@b.c");
        assert_none(&s, "john..doe@example.com");
        assert_none(&s, "user@-bad-.com");
        assert_none(&s, "price @ 12.50");
        assert!(!Validator::Email.check("a@b.c0m"));
    }

    // --- phone ---

    #[test]
    fn phone_cn_mobile_in_chinese_text_exact_span() {
        let s = set();
        let text = "联系我：13812345678，谢谢";
        let mut out = Vec::new();
        s.find(text, &[], &mut out);
        assert_eq!(out.len(), 1);
        let m = out[0];
        assert_eq!(&text[m.start..m.end], "13812345678");
        assert_eq!(m.start, "联系我：".len());
        assert_eq!(m.recognizer, idx(&s, "phone"));
        assert!(m.validated);
    }

    #[test]
    fn phone_true_positives() {
        let s = set();
        for (text, value) in [
            ("call +86 138 1234 5678 now", "+86 138 1234 5678"),
            ("call 0086-138-1234-5678", "0086-138-1234-5678"),
            ("手机 139-1234-5678", "139-1234-5678"),
            ("office (555) 123-4567.", "(555) 123-4567"),
            ("office 555-123-4567", "555-123-4567"),
            ("+1 (415) 555-2671", "+1 (415) 555-2671"),
            ("London +44 20 7946 0958", "+44 20 7946 0958"),
            ("Paris +33 1 23 45 67 89", "+33 1 23 45 67 89"),
            ("London 020 7946 0958", "020 7946 0958"),
            ("Berlin 030 1234567", "030 1234567"),
            ("Berlin (030) 1234567", "(030) 1234567"),
            ("北京 010-12345678", "010-12345678"),
            ("+8613812345678 2 items", "+8613812345678"),
        ] {
            assert_finds(&s, text, "phone", value);
        }
    }

    #[test]
    fn phone_near_misses() {
        let s = set();
        assert_none(&s, "138123456789");
        assert_none(&s, "order 1381234567801234");
        assert_none(&s, "12345678901");
        assert_none(&s, "(155) 123-4567");
        assert_none(&s, "ref A13812345678");
        assert_none(&s, "+1234567");
        assert_none(&s, "v1.13812345678");
    }

    // --- CN resident ID ---

    #[test]
    fn cn_id_true_positives() {
        let s = set();
        for first17 in [
            "11010519491231002",
            "44030419900307123",
            "32010620000229456",
            "51010819870314001",
        ] {
            let id = cn_id(first17);
            assert!(Validator::CnResidentId.check(&id), "{id}");
            assert_finds(&s, &format!("身份证号：{id}。"), "cn_resident_id", &id);
            assert_finds(
                &s,
                &format!("id {}", id.to_lowercase()),
                "cn_resident_id",
                &id.to_lowercase(),
            );
        }
    }

    #[test]
    fn cn_id_near_misses() {
        let s = set();
        assert_none(&s, &format!("id {}", wrong_cn_id("11010519491231002")));
        // 1987-02-30 and 1900-02-29 are not dates; month 13 neither.
        for first17 in [
            "11010519870230123",
            "11010519000229123",
            "11010519871301123",
            "01010519870314001",
        ] {
            let id = cn_id(first17);
            assert!(!Validator::CnResidentId.check(&id), "{id}");
            assert_none(&s, &format!("id {id}"));
        }
        // Leap day in a leap year is fine.
        assert!(Validator::CnResidentId.check(&cn_id("11010520000229123")));
        // Part of a longer digit run.
        assert_none(&s, &format!("9{}", cn_id("11010519491231002")));
        assert_none(&s, &format!("{}7", cn_id("11010519491231002")));
    }

    // --- payment cards ---

    #[test]
    fn card_true_positives() {
        let s = set();
        let visa = luhn_complete("411111111111111");
        let mc = luhn_complete("555555555555444");
        let mc2 = luhn_complete("222300000000000");
        let amex = luhn_complete("37828224631000");
        let unionpay = luhn_complete("621700000000000000");
        let jcb = luhn_complete("353011133330000");
        let diners = luhn_complete("3056930902590");
        let discover = luhn_complete("601111111111111");
        for card in [&visa, &mc, &mc2, &amex, &unionpay, &jcb, &diners, &discover] {
            assert!(Validator::PaymentCard.check(card), "{card}");
            assert_finds(&s, &format!("卡号 {card}，"), "payment_card", card);
        }
        let grouped = group4(&visa);
        assert_finds(
            &s,
            &format!("card: {grouped} exp"),
            "payment_card",
            &grouped,
        );
        let dashed = grouped.replace(' ', "-");
        assert_finds(&s, &format!("card {dashed}"), "payment_card", &dashed);
        let amex_grouped = format!("{} {} {}", &amex[..4], &amex[4..10], &amex[10..]);
        assert_finds(
            &s,
            &format!("amex {amex_grouped}"),
            "payment_card",
            &amex_grouped,
        );
        // A trailing number group is not swallowed.
        assert_finds(&s, &format!("{grouped} 2024"), "payment_card", &grouped);
    }

    #[test]
    fn card_near_misses() {
        let s = set();
        let bad = luhn_broken("411111111111111");
        assert_eq!(bad.len(), 16);
        assert_none(&s, &format!("card {bad}"));
        assert_none(&s, &format!("card {}", group4(&bad)));
        // Luhn-valid but unknown IIN, or a length Visa does not issue.
        assert_none(&s, &format!("n {}", luhn_complete("999999999999999")));
        assert_none(&s, &format!("n {}", luhn_complete("4111111111111111")));
        // Part of a longer digit run.
        assert_none(&s, &format!("n 7{}", luhn_complete("411111111111111")));
    }

    // --- IBAN ---

    #[test]
    fn iban_true_positives() {
        let s = set();
        for (c, bban) in [
            ("DE", "370400440532013000"),
            ("GB", "WEST12345698765432"),
            ("FR", "20041010050500013M02606"),
            ("NL", "ABNA0417164300"),
            ("BE", "539007547034"),
            ("NO", "86011117947"),
        ] {
            let i = iban(c, bban);
            assert!(Validator::Iban.check(&i), "{i}");
            assert_finds(&s, &format!("IBAN: {i}."), "iban", &i);
            let g = group4(&i);
            assert_finds(&s, &format!("转账至 {g} 谢谢"), "iban", &g);
        }
        // Grouped IBAN followed by an unrelated 4-letter word.
        let be = group4(&iban("BE", "539007547034"));
        assert_finds(&s, &format!("{be} EURO"), "iban", &be);
    }

    #[test]
    fn iban_near_misses() {
        let s = set();
        let good = iban("DE", "370400440532013000");
        let wrong_check = format!(
            "DE{:02}{}",
            (good[2..4].parse::<u32>().unwrap_or(0) + 1) % 100,
            &good[4..]
        );
        assert_none(&s, &format!("IBAN {wrong_check}"));
        // Right checksum, wrong length for DE.
        let short = iban("DE", "37040044053201300");
        assert!(!Validator::Iban.check(&short));
        assert_none(&s, &format!("IBAN {short}"));
        assert_none(&s, &format!("IBAN X{good}"));
    }

    // --- IP addresses ---

    #[test]
    fn ipv4_cases() {
        let s = set();
        assert_finds(&s, "client 192.168.1.1 connected", "ipv4", "192.168.1.1");
        assert_finds(&s, "服务器IP是10.0.0.254。", "ipv4", "10.0.0.254");
        assert_finds(&s, "host 10.0.0.1:8080", "ipv4", "10.0.0.1");
        assert_finds(&s, "net 10.1.0.0/16", "ipv4", "10.1.0.0");
        assert_finds(&s, "0.0.0.0", "ipv4", "0.0.0.0");
        assert_none(&s, "ip 256.1.1.1");
        assert_none(&s, "ip 1.2.3.256");
        assert_none(&s, "version 1.2.3.4.5");
        assert_none(&s, "ip 01.2.3.4");
        assert_none(&s, "v1.2.3.4");
    }

    #[test]
    fn ipv6_cases() {
        let s = set();
        for a in [
            "2001:db8::1",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "fe80::1ff:fe23:4567:890a",
            "::1",
            "::ffff:192.168.1.1",
        ] {
            assert_finds(&s, &format!("addr {a} ok"), "ipv6", a);
        }
        assert_finds(&s, "[2001:db8::1]:443", "ipv6", "2001:db8::1");
        assert_none(&s, "at 12:30:45");
        assert_none(&s, "use std::vector");
        assert_none(&s, "a::b");
        assert_none(&s, "mac 00:1a:2b:3c:4d:5e");
        assert_none(&s, "1:2:3:4:5:6:7:8:9");
    }

    // --- SSN ---

    #[test]
    fn ssn_cases() {
        let s = set();
        assert_finds(&s, "SSN 123-45-6789.", "us_ssn", "123-45-6789");
        assert_finds(&s, "SSN 123 45 6789", "us_ssn", "123 45 6789");
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "999-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45 6789",
        ] {
            assert_none(&s, &format!("SSN {bad}"));
        }
        assert_none(&s, "1123-45-6789");
    }

    // --- context-only recognizers ---

    #[test]
    fn passport_needs_context() {
        let s = set();
        let ctx = s.column_signal("passport_no");
        assert_eq!(ctx, vec![idx(&s, "passport")]);
        for p in ["E12345678", "G1234567", "AB1234567"] {
            assert_none(&s, p);
            assert_eq!(found_ctx(&s, p, &ctx), one("passport", p));
        }
        assert_eq!(found_ctx(&s, "E00000000", &ctx), vec![]);
        assert_eq!(found_ctx(&s, "E123", &ctx), vec![]);
    }

    #[test]
    fn licence_plate_needs_context() {
        let s = set();
        let ctx = s.column_signal("车牌号");
        assert_eq!(ctx, vec![idx(&s, "licence_plate")]);
        for p in [
            "京A12345",
            "粤B·D12345",
            "沪C-9A8B7",
            "ABC-1234",
            "AB12 CDE",
        ] {
            assert_none(&s, p);
            assert_eq!(found_ctx(&s, p, &ctx), one("licence_plate", p));
        }
        assert_eq!(
            found_ctx(&s, "车牌：京A12345，已登记", &ctx),
            one("licence_plate", "京A12345")
        );
        assert_eq!(found_ctx(&s, "ABCDEFG", &ctx), vec![]);
    }

    #[test]
    fn date_of_birth_needs_context() {
        let s = set();
        let ctx = s.column_signal("birth_date");
        assert_eq!(ctx, vec![idx(&s, "date_of_birth")]);
        for d in [
            "1987-03-14",
            "14/03/1987",
            "03/14/1987",
            "1987年3月14日",
            "29.02.2000",
        ] {
            assert_none(&s, d);
            assert_eq!(found_ctx(&s, d, &ctx), one("date_of_birth", d));
        }
        for bad in [
            "1987-02-30",
            "31/04/1987",
            "1987年13月1日",
            "29.02.1900",
            "1987-3-",
        ] {
            assert_eq!(found_ctx(&s, bad, &ctx), vec![], "{bad}");
        }
    }

    // --- URL credentials ---

    #[test]
    fn url_credentials_cases() {
        let s = set();
        assert_finds(
            &s,
            "dsn postgres://admin:s3cr3t@db.example.com:5432/app.",
            "url_credentials",
            "postgres://admin:s3cr3t@db.example.com:5432/app",
        );
        assert_finds(
            &s,
            "见 https://bob:p%40ss@10.0.0.5/x?y=1，谢谢",
            "url_credentials",
            "https://bob:p%40ss@10.0.0.5/x?y=1",
        );
        assert_finds(
            &s,
            "(redis://u:pw@[::1]:6379)",
            "url_credentials",
            "redis://u:pw@[::1]:6379",
        );
        assert_none(&s, "https://example.com/path");
        assert!(
            found(&s, "ftp://user@host.example.com")
                .iter()
                .all(|(n, _)| n != "url_credentials")
        );
        assert!(
            found(&s, "https://:pw@host.com")
                .iter()
                .all(|(n, _)| n != "url_credentials")
        );
    }

    // --- overlaps ---

    #[test]
    fn cn_id_with_phone_like_prefix_is_only_the_id() {
        let s = set();
        let id = cn_id("13010219900101123");
        assert!(Validator::CnMobile.check(&id[..11]));
        assert_finds(&s, &format!("身份证 {id}"), "cn_resident_id", &id);
    }

    #[test]
    fn card_is_not_also_a_phone() {
        let s = set();
        let card = luhn_complete("621381234567890");
        assert_eq!(card.len(), 16);
        assert_finds(&s, &format!("卡 {card}"), "payment_card", &card);
        let grouped = group4(&luhn_complete("622213812345678"));
        assert_finds(&s, &format!("卡 {grouped}"), "payment_card", &grouped);
    }

    #[test]
    fn url_wins_over_email_and_ip_inside_it() {
        let s = set();
        assert_finds(
            &s,
            "mysql://root:pw@10.1.2.3/db",
            "url_credentials",
            "mysql://root:pw@10.1.2.3/db",
        );
    }

    #[test]
    fn resolve_prefers_validated_then_longer_then_lower_index() {
        let m = |start, end, recognizer, validated| Match {
            start,
            end,
            recognizer,
            validated,
        };
        let mut v = vec![
            m(0, 10, 3, false),
            m(2, 6, 1, true),
            m(5, 12, 0, true),
            m(20, 25, 2, true),
            m(20, 25, 1, true),
        ];
        resolve_overlaps(&mut v);
        assert_eq!(v, vec![m(5, 12, 0, true), m(20, 25, 1, true)]);
        let mut v = vec![m(0, 4, 2, true), m(3, 8, 1, true), m(7, 9, 0, true)];
        resolve_overlaps(&mut v);
        assert_eq!(v, vec![m(3, 8, 1, true)]);
    }

    #[test]
    fn several_entities_in_one_text() {
        let s = set();
        let id = cn_id("44030419900307123");
        let text = format!("张三 {id}，手机 13912345678，邮箱 zs@example.com，IP 8.8.8.8");
        let got = found(&s, &text);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cn_resident_id", "phone", "email", "ipv4"]);
    }

    #[test]
    fn entities_found_alone_at_edges_and_between_other_digits() {
        let s = set();
        let mu = iban("MU", "BOMM0101101030300200000MUR");
        let cases = [
            ("email", "a.b@example.org".to_string()),
            ("phone", "13812345678".to_string()),
            ("phone", "+44 20 7946 0958".to_string()),
            ("phone", "(555) 123-4567".to_string()),
            ("cn_resident_id", cn_id("11010519491231002")),
            ("payment_card", luhn_complete("411111111111111")),
            ("iban", group4(&iban("GB", "WEST12345698765432"))),
            ("iban", mu),
            ("ipv4", "203.0.113.7".to_string()),
            ("ipv6", "2001:db8::8a2e:370:7334".to_string()),
            ("us_ssn", "123-45-6789".to_string()),
            ("url_credentials", "ssh://git:tok@example.com".to_string()),
        ];
        for (name, v) in &cases {
            for text in [
                v.clone(),
                format!("{v} x"),
                format!("x {v}"),
                format!("7 项，{v}，共 12 件 9"),
                format!("at 10:30 {v} ok:"),
            ] {
                assert_eq!(found(&s, &text), one(name, v), "text: {text:?}");
            }
        }
    }

    // --- robustness ---

    #[test]
    fn unicode_empty_and_huge_inputs_do_not_panic() {
        let s = set();
        let all: Vec<usize> = (0..s.recognizers().len()).collect();
        let mut out = Vec::new();
        s.find("", &all, &mut out);
        assert!(out.is_empty());
        let pool: Vec<char> = "0123456789 -+.:@/()[]·年月日京AZXaz_#%\u{0}\u{301}😀邮箱中国，。"
            .chars()
            .collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..400 {
            let text: String = (0..len % 60)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    pool[(x % pool.len() as u64) as usize]
                })
                .collect();
            found_ctx(&s, &text, &all);
            for v in Validator::ALL {
                v.check(&text);
                v.check(&format!("a@b.{text}"));
                v.check(&format!("x://u:p@{text}"));
            }
        }
        let huge = format!("{}{}", "1".repeat(200_000), "@a.bc 😀".repeat(20_000));
        found_ctx(&s, &huge, &all);
        let emails = "a@b.cc ".repeat(50_000);
        assert_eq!(found(&s, &emails).len(), 50_000);
    }

    #[test]
    fn find_clears_and_reuses_out() {
        let s = set();
        let mut out = Vec::new();
        s.find("13812345678", &[], &mut out);
        assert_eq!(out.len(), 1);
        s.find("nothing here", &[], &mut out);
        assert!(out.is_empty());
    }

    // --- custom recognizers ---

    #[test]
    fn custom_recognizer_add_and_find() {
        let mut s = set();
        s.add_custom("employee_id", r"\bEMP-[0-9]{6}\b", None, "pd:Identifier")
            .expect("valid custom");
        let i = idx(&s, "employee_id");
        assert_finds(&s, "staff EMP-123456 joined", "employee_id", "EMP-123456");
        let mut out = Vec::new();
        s.find("EMP-123456", &[], &mut out);
        assert!(!out[0].validated);
        assert_eq!(out[0].recognizer, i);

        s.add_custom(
            "loyalty_card",
            r"\bLC[0-9]{8}\b",
            Some("LUHN"),
            "pd:Identifier",
        )
        .expect("valid custom");
        // Luhn runs on the whole match; "LC…" is not digits, so nothing is evidence.
        assert_none(&s, "LC12345678");
        s.add_custom("member_no", r"\b[0-9]{8}\b", Some("luhn"), "pd:Identifier")
            .expect("valid custom");
        let good = luhn_complete("1234567");
        let bad = luhn_broken("1234567");
        assert_finds(&s, &format!("member {good}"), "member_no", &good);
        assert_none(&s, &format!("member {bad}"));
    }

    #[test]
    fn custom_recognizer_errors() {
        let mut s = set();
        let e = s
            .add_custom("email", "x+", None, "pd:EmailAddress")
            .unwrap_err();
        assert!(e.contains("'email'") && e.contains("already exists"), "{e}");
        let e = s
            .add_custom("broken", "([0-9]", None, "pd:Identifier")
            .unwrap_err();
        assert!(e.contains("'broken'") && e.contains("invalid regex"), "{e}");
        let e = s
            .add_custom("mystery", "[0-9]+", Some("crc32"), "pd:Identifier")
            .unwrap_err();
        assert!(
            e.contains("'mystery'")
                && e.contains("crc32")
                && e.contains("luhn")
                && e.contains("iban"),
            "{e}"
        );
        let e = s
            .add_custom("empty_ok", "[0-9]*", None, "pd:Identifier")
            .unwrap_err();
        assert!(e.contains("empty string"), "{e}");
        assert!(s.add_custom("", "x", None, "pd:Identifier").is_err());
        assert!(s.add_custom("nocat", "x", None, " ").is_err());
        assert_eq!(s.recognizers().len(), set().recognizers().len());
    }

    // --- column signal and confidence ---

    #[test]
    fn column_signal_cases() {
        let s = set();
        let names = |cols: Vec<usize>| -> Vec<String> {
            cols.into_iter()
                .map(|i| s.recognizers()[i].name.clone())
                .collect()
        };
        assert_eq!(names(s.column_signal("客户邮箱")), ["email"]);
        assert_eq!(names(s.column_signal("mobilePhone")), ["phone"]);
        assert_eq!(names(s.column_signal("id_card_no")), ["cn_resident_id"]);
        assert_eq!(names(s.column_signal("身份证号码")), ["cn_resident_id"]);
        assert_eq!(names(s.column_signal("IDCard")), ["cn_resident_id"]);
        assert_eq!(
            names(s.column_signal("credit_card_number")),
            ["payment_card"]
        );
        assert_eq!(names(s.column_signal("银行卡号")), ["payment_card"]);
        assert_eq!(names(s.column_signal("Client-IP")), ["ipv4", "ipv6"]);
        assert_eq!(names(s.column_signal("IP地址")), ["ipv4", "ipv6"]);
        assert_eq!(names(s.column_signal("useremail")), ["email"]);
        assert_eq!(names(s.column_signal("date of birth")), ["date_of_birth"]);
        assert_eq!(names(s.column_signal("出生日期")), ["date_of_birth"]);
        assert!(s.column_signal("hotel_name").is_empty());
        assert!(s.column_signal("template").is_empty());
        assert_eq!(names(s.column_signal("licensePlate")), ["licence_plate"]);
        assert!(s.column_signal("").is_empty());
        assert!(s.column_signal("😀_备注").is_empty());
    }

    #[test]
    fn confidence_rises_with_validation_and_context() {
        let s = set();
        let phone = idx(&s, "phone");
        let m = Match {
            start: 0,
            end: 11,
            recognizer: phone,
            validated: true,
        };
        let unvalidated = Match {
            validated: false,
            ..m
        };
        let base = s.confidence(&unvalidated, &[]);
        let v = s.confidence(&m, &[]);
        let vc = s.confidence(&m, &[phone]);
        assert!(
            base < v && v < vc && vc <= 1.0 && base >= 0.0,
            "{base} {v} {vc}"
        );
        let bogus = Match {
            recognizer: 999,
            ..m
        };
        assert_eq!(s.confidence(&bogus, &[]), 0.0);
    }

    #[test]
    fn metadata_is_consistent() {
        let s = set();
        let names: Vec<&str> = s.recognizers().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "email",
                "phone",
                "cn_resident_id",
                "payment_card",
                "iban",
                "ipv4",
                "ipv6",
                "us_ssn",
                "passport",
                "licence_plate",
                "date_of_birth",
                "url_credentials"
            ]
        );
        for r in s.recognizers() {
            assert!(r.category.starts_with("pd:"));
            assert!(!r.sensitive_gdpr);
            assert!(!r.column_keywords.is_empty());
            assert!(r.patterns().count() >= 1);
            assert_ne!(r.validator(), Validator::None);
            assert!((0.0..=1.0).contains(&r.base_confidence()));
        }
        let ctx_only: Vec<&str> = s
            .recognizers()
            .iter()
            .filter(|r| r.needs_context)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(ctx_only, ["passport", "licence_plate", "date_of_birth"]);
        for n in [
            "cn_resident_id",
            "payment_card",
            "iban",
            "us_ssn",
            "passport",
        ] {
            assert!(s.recognizers()[idx(&s, n)].sensitive_pipl, "{n}");
        }
    }
}

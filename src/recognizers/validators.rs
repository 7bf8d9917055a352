//! Validators: the checksum, calendar and shape checks that turn a regex candidate into
//! evidence (Luhn, IBAN, CN resident ID, dates, phone formats, ...).

use std::net::Ipv6Addr;

// ---------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------

/// A check applied to a regex candidate. A candidate that fails is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

pub(super) fn luhn(d: &[u8]) -> bool {
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
pub(super) fn cn_id_check_char(d17: &[u8]) -> Option<u8> {
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

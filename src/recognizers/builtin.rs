//! The built-in recognizer table: byte-profile prefilter, pattern metadata, the regex
//! constants and `builtin_recognizers()` that compiles them.

use regex::Regex;

use super::validators::Validator;

// ---------------------------------------------------------------------------
// Byte profile: cheap prefilter computed once per value
// ---------------------------------------------------------------------------

/// Used both as what a text has (one pass over its bytes) and as what a
/// pattern needs before its regex is worth running.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Profile {
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
    pub(super) const NONE: Profile = Profile {
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

    pub(super) fn scan(b: &[u8]) -> Profile {
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

    pub(super) fn allows(&self, f: &Profile) -> bool {
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
pub(super) enum Boundary {
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
pub(super) enum Window {
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
    pub(super) fn range(self, text: &str, f: &Profile) -> (usize, usize) {
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
pub(super) struct Pattern {
    pub(super) re: Regex,
    pub(super) validator: Validator,
    pub(super) boundary: Boundary,
    pub(super) gate: Profile,
    pub(super) window: Window,
    /// On rejection, search again just after the rejected start (past its
    /// alphanumeric run) instead of after the match end. Only for patterns of
    /// bounded length, which keeps huge inputs linear.
    pub(super) retry: bool,
    /// On rejection, try prefixes cut at ` `/`-` group boundaries, longest first.
    pub(super) shrink: bool,
    /// Drop trailing sentence punctuation (URLs).
    pub(super) trim_punct: bool,
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
    pub(super) patterns: Vec<Pattern>,
    pub(super) validator: Validator,
    pub(super) base_confidence: f32,
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
pub(super) fn builtin_recognizers() -> Result<Vec<Recognizer>, regex::Error> {
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

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

mod builtin;
mod matcher;
mod validators;

pub use builtin::Recognizer;
pub use matcher::{Match, RecognizerSet};
pub use validators::Validator;

#[cfg(test)]
use matcher::resolve_overlaps;
#[cfg(test)]
use validators::{cn_id_check_char, luhn};

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
            .unwrap_err()
            .message;
        assert!(e.contains("'email'") && e.contains("already exists"), "{e}");
        let e = s
            .add_custom("broken", "([0-9]", None, "pd:Identifier")
            .unwrap_err()
            .message;
        assert!(e.contains("'broken'") && e.contains("invalid regex"), "{e}");
        let e = s
            .add_custom("mystery", "[0-9]+", Some("crc32"), "pd:Identifier")
            .unwrap_err()
            .message;
        assert!(
            e.contains("'mystery'")
                && e.contains("crc32")
                && e.contains("luhn")
                && e.contains("iban"),
            "{e}"
        );
        let e = s
            .add_custom("empty_ok", "[0-9]*", None, "pd:Identifier")
            .unwrap_err()
            .message;
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

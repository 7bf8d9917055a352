use super::*;
use crate::error::Result;

const HEAD: &str = "policy: t\nversion: 1\ncontroller: C\npurpose: p\n";

fn load(jur: &str, fields: &str) -> Result<Policy> {
    Policy::from_yaml_str(
        &format!("{HEAD}jurisdictions: {jur}\nfields:\n{fields}"),
        "t.yaml",
    )
}

fn err(jur: &str, fields: &str) -> String {
    load(jur, fields).unwrap_err().to_string()
}

#[test]
fn sketch_from_the_issue_loads() {
    let p = load(
        "[CN, EU]",
        "  email: { action: tokenize, key: k1, domain: email, basis: consent, category: email }
  full_name: { action: drop }
  phone: { action: mask, keep_last: 4, basis: consent, category: telephone }
  national_id: { action: encrypt, key: k2, basis: legal_obligation, category: official_id, sensitive: true }
  birth_date: { action: generalize, to: year, basis: contract, category: birth_date }
  zip: { action: generalize, keep_prefix: 3, basis: contract, category: location }
  income: { action: generalize, bin_width: 10000, basis: contract, category: income }
  city: { action: keep, basis: contract }
",
    )
    .unwrap();
    assert_eq!(p.jurisdictions, vec![Jurisdiction::EU, Jurisdiction::CN]);
    assert_eq!(p.unlisted, Unlisted::Error);
    assert_eq!(p.output_fields().count(), 7);
    let email = &p.fields["email"];
    assert_eq!(email.category_term.as_deref(), Some("pd:EmailAddress"));
    assert_eq!(email.bases[&Jurisdiction::CN], Basis::Consent);
    match &email.action {
        Action::Tokenize(t) => assert_eq!((t.domain.as_str(), t.length), ("email", 32)),
        a => panic!("{a:?}"),
    }
    assert_eq!(p.sha256.len(), 64);
}

#[test]
fn malformed_yaml_names_line_and_column() {
    let e = Policy::from_yaml_str("policy: t\nversion: [1\n", "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("policy bad.yaml:"), "{e}");
    assert!(e.contains("line"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: consent, colour: red }\n",
    );
    assert!(
        e.contains("colour") && e.contains("line 7 column 38"),
        "{e}"
    );
}

#[test]
fn legitimate_interest_is_refused_under_pipl_with_article() {
    let e = err(
        "[CN]",
        "  a: { action: keep, basis: legitimate_interests }\n",
    );
    assert!(
        e.contains("PIPL Art. 13") && e.contains("field `a`") && e.contains("line 7"),
        "{e}"
    );
    assert!(
        load(
            "[EU]",
            "  a: { action: keep, basis: legitimate_interests }\n"
        )
        .is_ok()
    );
    let ok = load(
        "[CN, EU]",
        "  a: { action: keep, basis: { EU: legitimate_interests, CN: contract } }\n",
    )
    .unwrap();
    assert_eq!(
        ok.fields["a"].bases[&Jurisdiction::EU],
        Basis::LegitimateInterests
    );
    let e = err(
        "[CN, EU]",
        "  a: { action: keep, basis: { EU: contract } }\n",
    );
    assert!(e.contains("no basis for CN"), "{e}");
}

#[test]
fn basis_rules() {
    let e = err("[EU]", "  a: { action: keep }\n");
    assert!(e.contains("`basis` is missing"), "{e}");
    assert!(
        load("[EU]", "  a: { action: drop }\n").is_ok(),
        "dropped fields need no basis"
    );
    let e = err(
        "[CN]",
        "  a: { action: keep, basis: consent, sensitive: true }\n",
    );
    assert!(
        e.contains("PIPL Art. 29") && e.contains("separate_consent"),
        "{e}"
    );
    assert!(
        load(
            "[CN]",
            "  a: { action: keep, basis: consent, sensitive: true, separate_consent: true }\n"
        )
        .is_ok()
    );
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: consent, special_category: health }\n",
    );
    assert!(e.contains("Art. 9(2)"), "{e}");
    assert!(
        load("[EU]", "  a: { action: keep, basis: consent, special_category: health, art9_condition: explicit_consent }\n")
            .is_ok()
    );
    let e = err("[EU]", "  a: { action: keep, basis: news_reporting }\n");
    assert!(e.contains("GDPR Art. 6(1)"), "{e}");
    let e = err("[EU]", "  a: { action: keep, basis: because }\n");
    assert!(e.contains("unknown basis `because`"), "{e}");
    let e = err("[]", "  a: { action: drop }\n");
    assert!(e.contains("jurisdictions"), "{e}");
}

#[test]
fn parameters_must_fit_the_action() {
    let e = err("[EU]", "  a: { action: mask, key: k1, basis: consent }\n");
    assert!(e.contains("`key` is not a parameter of `mask`"), "{e}");
    let e = err("[EU]", "  a: { action: tokenize, basis: consent }\n");
    assert!(e.contains("needs `key`"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: tokenize, key: k, length: 99, basis: consent }\n",
    );
    assert!(e.contains("1 to 64"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: generalize, to: year, bin_width: 5, basis: consent }\n",
    );
    assert!(e.contains("mixes"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: generalize, breaks: [3, 2], basis: consent }\n",
    );
    assert!(e.contains("ascending"), "{e}");
    let e = err("[EU]", "  a: { action: generalize, basis: consent }\n");
    assert!(e.contains("needs `to`"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: consent, category: shoe_size }\n",
    );
    assert!(e.contains("unknown category"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: consent, type: varchar }\n",
    );
    assert!(e.contains("unknown type"), "{e}");
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: consent, rename: x }\n  b: { action: keep, basis: consent, rename: x }\n",
    );
    assert!(e.contains("both write output column `x`"), "{e}");
}

#[test]
fn json_schema_lists_every_action_and_parameter() {
    let s = json_schema().to_string();
    for word in [
        "tokenize",
        "encrypt",
        "generalize",
        "keep_prefix",
        "bin_width",
        "legitimate_interests",
        "unlisted",
    ] {
        assert!(s.contains(word), "schema lacks {word}");
    }
}

#[test]
fn privacy_block_loads_and_rejects_mistakes_with_positions() {
    let fields = "  age: { action: keep, basis: contract }\n  zip: { action: generalize, keep_prefix: 3, basis: contract }\n  dx: { action: keep, basis: contract }\n  id: { action: tokenize, key: k1, basis: contract }\n";
    let with = |privacy: &str| {
        Policy::from_yaml_str(
            &format!("{HEAD}jurisdictions: [EU]\nfields:\n{fields}privacy:\n{privacy}"),
            "t.yaml",
        )
    };
    let p = with(
        "  quasi_identifiers:\n    age: { levels: [ { bin_width: 5 }, { bin_width: 10 } ] }\n    zip: {}\n  k: 5\n  l_diversity:\n    - { attribute: dx, variant: recursive, l: 3, c: 2 }\n  t_closeness:\n    - { attribute: dx, t: 0.2, distance: equal }\n  on_violation: generalize\n  max_suppression: 0.05\n  metric: discernibility\n",
    )
    .unwrap();
    let s = p.privacy.unwrap();
    assert_eq!(s.k, Some(5));
    assert_eq!(s.quasi_identifiers.len(), 2);
    assert!(
        matches!(&s.quasi_identifiers[0].hierarchy, HierarchySource::Levels(l) if l.len() == 2)
    );
    assert_eq!(s.sensitive_attributes(), ["dx"]);
    assert_eq!(s.metric, LossMetric::Discernibility);
    assert_eq!(s.on_violation, OnViolation::Generalize);
    for (privacy, needle) in [
        (
            "  quasi_identifiers:\n    id: {}\n  k: 2\n",
            "action `tokenize`",
        ),
        (
            "  quasi_identifiers:\n    nope: {}\n  k: 2\n",
            "`nope` has no rule",
        ),
        (
            "  quasi_identifiers:\n    zip: { hierarchy: z.csv }\n  k: 2\n",
            "must be `keep`",
        ),
        (
            "  quasi_identifiers:\n    age: { hierarchy: missing.csv }\n  k: 2\n",
            "hierarchy file missing.csv: cannot read it",
        ),
        (
            "  quasi_identifiers:\n    age: { levels: [ { bin_width: -1 } ] }\n  k: 2\n",
            "level 1: `bin_width` is -1",
        ),
        ("  quasi_identifiers:\n    age: {}\n  k: 1\n", "k is 1"),
        ("  quasi_identifiers:\n    age: {}\n", "no model is set"),
        (
            "  quasi_identifiers:\n    age: {}\n  l_diversity:\n    - { attribute: dx, l: 1 }\n",
            "l is 1",
        ),
        (
            "  quasi_identifiers:\n    age: {}\n  l_diversity:\n    - { attribute: dx, variant: recursive, l: 2 }\n",
            "needs `c`",
        ),
        (
            "  quasi_identifiers:\n    age: {}\n  l_diversity:\n    - { attribute: age, l: 2 }\n",
            "both a quasi-identifier and a sensitive",
        ),
        (
            "  quasi_identifiers:\n    age: {}\n  t_closeness:\n    - { attribute: dx, t: 1.01 }\n",
            "t is 1.01; it must be in (0, 1]",
        ),
        (
            "  quasi_identifiers:\n    age: {}\n  k: 2\n  max_suppression: 1\n",
            "max_suppression is 1",
        ),
        (
            "  quasi_identifiers:\n    age: {}\n  k: 2\n  metric: entropy\n",
            "unknown variant `entropy`",
        ),
    ] {
        let e = with(privacy).unwrap_err().to_string();
        assert!(e.contains(needle), "{needle} not in {e}");
        assert!(e.contains("line"), "no position in {e}");
    }
}

#[test]
fn mask_and_generalize_parameters_are_bounded_and_finite() {
    for rule in [
        "{ action: mask, keep_first: 18446744073709551615, basis: contract }",
        "{ action: mask, keep_last: 1001, basis: contract }",
        "{ action: scrub, replace_with: mask, keep_last: 18446744073709551615, basis: contract }",
    ] {
        let e = err("[EU]", &format!("  a: {rule}\n"));
        assert!(
            e.contains("at most 1000") && e.contains("field `a` (line 7 column"),
            "{e}"
        );
    }
    assert!(
        load(
            "[EU]",
            "  a: { action: mask, keep_first: 1000, basis: contract }\n"
        )
        .is_ok()
    );
    for (rule, want) in [
        ("top: .nan", "`top` is NaN; it must be a finite number"),
        ("bottom: .inf", "`bottom` is inf"),
        ("bin_width: 5e-324", "at least"),
        ("bin_width: -1", "positive"),
        ("breaks: [1, .inf]", "finite"),
    ] {
        let e = err(
            "[EU]",
            &format!("  a: {{ action: generalize, {rule}, basis: contract }}\n"),
        );
        assert!(e.contains(want) && e.contains("line 7"), "{e}");
    }
}

#[test]
fn yaml_errors_carry_no_library_hints() {
    let e = err(
        "[EU]",
        "  a: { action: keep, basis: contract }\n  a: { action: drop }\n",
    );
    assert!(e.contains("duplicate") && e.contains("line 8"), "{e}");
    let dup = e;
    let e = Policy::from_yaml_str(
        "policy: ~\nversion: 1\ncontroller: C\njurisdictions: [EU]\npurpose: p\nfields: {}\n",
        "t.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("null") && e.contains("line 1"), "{e}");
    for m in [&dup, &e] {
        for hint in ["DuplicateKeyPolicy", "Options", "Option<"] {
            assert!(!m.contains(hint), "{m}");
        }
    }
    let e = err("[EU]", "  \"\": { action: keep, basis: contract }\n");
    assert!(e.contains("empty name") && e.contains("line 7"), "{e}");
}

#[test]
fn rule_breaches_are_rule_errors_with_their_id() {
    let id = |jur: &str, fields: &str| match load(jur, fields) {
        Err(crate::Error::Rule { rule, message, .. }) => (rule, message),
        other => panic!("{other:?}"),
    };
    let (rule, msg) = id(
        "[EU]",
        "  dx: { action: keep, basis: consent, special_category: health }\n",
    );
    assert_eq!(rule, "GDPR-9");
    assert!(msg.contains("field `dx` (line"), "{msg}");
    let (rule, _) = id(
        "[CN]",
        "  dx: { action: keep, basis: consent, sensitive: true }\n",
    );
    assert_eq!(rule, "PIPL-28/29");
    assert_eq!(
        id(
            "[CN]",
            "  a: { action: keep, basis: legitimate_interests }\n"
        )
        .0,
        "PIPL-13"
    );
    assert_eq!(
        id("[EU]", "  a: { action: keep, basis: news_reporting }\n").0,
        "GDPR-6"
    );
    assert_eq!(
        id("[EU]", "  a: { action: keep, basis: TODO }\n").0,
        "DRAFT"
    );
    // Not every policy error is a rule breach.
    assert!(matches!(
        load("[EU]", "  a: { action: keep, basis: nonsense }\n"),
        Err(crate::Error::Policy { .. })
    ));
    // Same exit code as any other policy error.
    let e = load("[EU]", "  a: { action: keep, basis: TODO }\n").unwrap_err();
    let p = load("[EU]", "  a: { action: keep, basis: nonsense }\n").unwrap_err();
    assert_eq!(e.exit_code(), p.exit_code());
}

fn problems(text: &str) -> Vec<PolicyProblem> {
    Policy::from_yaml_str_collecting(text, "t.yaml").unwrap_err()
}

fn places(ps: &[PolicyProblem]) -> Vec<(Option<u64>, Option<&str>)> {
    ps.iter().map(|p| (p.line, p.field.as_deref())).collect()
}

#[test]
fn every_problem_of_every_field_is_reported_in_file_order() {
    // Fields in reverse alphabetical order: the report follows the file, not the names.
    let text = format!(
        "{HEAD}jurisdictions: [EU]\nfields:\n  zeta: {{ action: keep }}\n  yak:\n    action: tokenise\n    key: k1\n  xray: {{ action: keep, basis: contract, colour: red }}\n  wolf: {{ action: mask, key: k1, basis: because, type: varchar }}\n  vole: {{ action: keep, basis: contract, rename: out }}\n  urchin: {{ action: keep, basis: contract, rename: out }}\n  ok: {{ action: drop }}\n"
    );
    let ps = problems(&text);
    assert_eq!(
        places(&ps),
        [
            (Some(7), Some("zeta")),
            (Some(9), Some("yak")),
            (Some(11), Some("xray")),
            (Some(12), Some("wolf")),
            (Some(12), Some("wolf")),
            (Some(12), Some("wolf")),
            (Some(14), Some("urchin")),
        ],
        "{ps:#?}"
    );
    let m: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
    assert!(
        m[0].starts_with("field `zeta` (line 7 column 9): `basis` is missing"),
        "{m:?}"
    );
    assert!(
        m[1].contains("unknown action `tokenise`") && m[1].contains("line 9 column 13"),
        "{m:?}"
    );
    assert!(m[2].contains("unknown field `colour`"), "{m:?}");
    assert!(m[3].contains("`key` is not a parameter of `mask`"), "{m:?}");
    assert!(m[4].contains("unknown basis `because`"), "{m:?}");
    assert!(m[5].contains("unknown type `varchar`"), "{m:?}");
    assert!(
        m[6].contains("fields `vole` and `urchin` both write output column `out`"),
        "{m:?}"
    );
    // The error lists them all, one a line; no snippet of a YAML error in the list.
    let e = Policy::from_yaml_str(&text, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("policy t.yaml: 7 problems, in file order:\n  field `zeta`"),
        "{e}"
    );
    assert!(!e.contains(" --> "), "{e}");
}

#[test]
fn header_and_other_entries_that_do_not_read_are_reported_with_the_fields() {
    // `version` of the wrong type, an unknown top-level key, a privacy entry that does not
    // read, a bad transfer and a TODO controller, beside two bad fields.
    let text = "policy: t\nversion: one\ncontroller: TODO\npurpose: p\njurisdictions: [EU]\ncolour: red\nfields:\n  a: { action: keep }\n  b: { action: kep }\ntransfers:\n  - { recipient: r, country: USA, mechanism: adequacy }\n  - { recipient: s, country: U1, mechanism: adequacy }\nprivacy:\n  quasi_identifiers: { a: {} }\n  k: 2\n  metric: entropy\n";
    let ps = problems(text);
    assert_eq!(
        ps.iter().map(|p| p.line.unwrap()).collect::<Vec<_>>(),
        [2, 3, 6, 8, 9, 11, 12, 16],
        "{ps:#?}"
    );
    assert_eq!(ps[1].rule, Some("DRAFT"));
    assert!(
        ps[1]
            .message
            .starts_with("line 3 column 1: `controller` is TODO"),
        "{ps:#?}"
    );
    assert!(ps[2].message.contains("colour"), "{ps:#?}");
    assert!(
        ps[5].message.contains("`USA`") && ps[6].message.contains("`U1`"),
        "{ps:#?}"
    );
    assert!(ps[7].message.contains("entropy"), "{ps:#?}");
    // A required entry missing: reported with the rest.
    let ps = problems(
        "policy: t\nversion: 1\ncontroller: C\njurisdictions: [EU]\nfields:\n  a: { action: kep }\n",
    );
    assert_eq!(ps.len(), 2, "{ps:#?}");
    // Not in the file, so not placed: listed after the rest.
    assert!(
        ps[1].message == "missing field `purpose`" && ps[1].line.is_none(),
        "{ps:#?}"
    );
    // Jurisdictions that do not read: the bases are not checked (nothing to check them
    // against), the rest is.
    let ps = problems(
        "policy: t\nversion: 1\ncontroller: C\npurpose: p\njurisdictions: [XX]\nfields:\n  a: { action: keep }\n  b: { action: kep }\n",
    );
    assert_eq!(
        places(&ps),
        [(Some(5), None), (Some(8), Some("b"))],
        "{ps:#?}"
    );
}

#[test]
fn a_block_rule_set_aside_keeps_later_lines_and_a_flow_mapping_stops_at_the_first() {
    let ps = problems(&format!(
        "{HEAD}jurisdictions: [EU]\nfields:\n  a:\n    action: keep\n    basis: contract\n    # a comment\n    colour: red\n\n  b:\n    action: keep\n"
    ));
    assert_eq!(
        places(&ps),
        [(Some(11), Some("a")), (Some(14), Some("b"))],
        "{ps:#?}"
    );
    assert!(ps[1].message.contains("`basis` is missing"), "{ps:#?}");
    // A flow mapping cannot be taken apart line by line: its first problem only.
    let ps = problems(&format!(
        "{HEAD}jurisdictions: [EU]\nfields: {{ a: {{ action: kep }}, b: {{ action: kap }} }}\n"
    ));
    assert_eq!(ps.len(), 1, "{ps:#?}");
    // Invalid YAML stops at once, with the snippet when it is the only problem.
    let e = Policy::from_yaml_str("policy: t\nversion: [1\n", "bad.yaml").unwrap_err();
    assert!(e.to_string().contains("bad.yaml:"), "{e}");
}

#[test]
fn one_rule_broken_many_times_keeps_its_rule_id() {
    let text = "policy: t\nversion: 1\ncontroller: TODO\npurpose: TODO\njurisdictions: [EU]\nfields:\n  a: { action: keep, basis: TODO }\n";
    match Policy::from_yaml_str(text, "t.yaml") {
        Err(crate::Error::Rule { rule, message, .. }) => {
            assert_eq!(rule, "DRAFT");
            assert!(message.starts_with("3 problems"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reading_past_unreadable_rules_stops_after_a_bound() {
    let mut text = format!("{HEAD}jurisdictions: [EU]\nfields:\n");
    for i in 0..150 {
        text.push_str(&format!("  f{i}: {{ action: kep }}\n"));
    }
    let ps = problems(&text);
    assert_eq!(ps.len(), 101, "{:#?}", &ps[99..]);
    assert_eq!(ps[99].field.as_deref(), Some("f99"));
    assert!(
        ps[100].message.starts_with("stopped after 100"),
        "{:?}",
        ps[100]
    );
}

#[test]
fn fpe_and_deterministic_encryption_load_with_their_parameters() {
    let p = load(
        "[EU]",
        "  card: { action: fpe, key: k1, separators: ' -', keep_last: 4, luhn: true, basis: contract }
  plate: { action: fpe, key: k1, alphabet: upper_alphanumeric, on_invalid: 'null', basis: contract }
  code: { action: fpe, key: k1, characters: 'ABCDEFGHJK', domain: codes, basis: contract }
  nid: { action: encrypt_deterministic, key: k2, basis: contract }
",
    )
    .unwrap();
    match &p.fields["card"].action {
        Action::Fpe(f) => {
            assert_eq!(
                (
                    f.alphabet.as_str(),
                    f.characters.as_str(),
                    f.separators.as_str()
                ),
                ("digits", "0123456789", " -")
            );
            assert_eq!((f.keep_last, f.luhn, f.domain.as_str()), (4, true, "card"));
        }
        a => panic!("{a:?}"),
    }
    match &p.fields["plate"].action {
        Action::Fpe(f) => assert_eq!(f.on_invalid, crate::kernels::fpe::OnInvalid::Null),
        a => panic!("{a:?}"),
    }
    match &p.fields["code"].action {
        Action::Fpe(f) => assert_eq!(
            (f.alphabet.as_str(), f.domain.as_str()),
            ("custom", "codes")
        ),
        a => panic!("{a:?}"),
    }
    match &p.fields["nid"].action {
        Action::EncryptDeterministic(e) => {
            assert_eq!((e.key.as_str(), e.domain.as_str()), ("k2", "nid"))
        }
        a => panic!("{a:?}"),
    }
    let s = json_schema().to_string();
    for word in [
        "encrypt_deterministic",
        "fpe",
        "separators",
        "luhn",
        "on_invalid",
    ] {
        assert!(s.contains(word), "schema lacks {word}");
    }
}

#[test]
fn bad_fpe_parameters_are_refused_with_their_position() {
    for (rule, want) in [
        ("{ action: fpe, basis: contract }", "needs `key`"),
        (
            "{ action: fpe, key: k1, alphabet: emoji, basis: contract }",
            "unknown `alphabet`",
        ),
        (
            "{ action: fpe, key: k1, alphabet: digits, characters: '01', basis: contract }",
            "not both",
        ),
        (
            "{ action: fpe, key: k1, characters: 'A', basis: contract }",
            "2 to 65536",
        ),
        (
            "{ action: fpe, key: k1, characters: 'ABA', basis: contract }",
            "repeats",
        ),
        (
            "{ action: fpe, key: k1, separators: '5', basis: contract }",
            "separator",
        ),
        (
            "{ action: fpe, key: k1, alphabet: hex, luhn: true, basis: contract }",
            "needs `alphabet: digits`",
        ),
        (
            "{ action: fpe, key: k1, length: 4, basis: contract }",
            "`length` is not a parameter of `fpe`",
        ),
        (
            "{ action: encrypt_deterministic, key: k1, luhn: true, basis: contract }",
            "`luhn` is not a parameter",
        ),
        (
            "{ action: fpe, key: k1, on_invalid: skip, basis: contract }",
            "on_invalid",
        ),
    ] {
        let e = err("[EU]", &format!("  f: {rule}\n"));
        assert!(e.contains(want), "{rule}: {e}");
        assert!(e.contains("line 7"), "{rule}: {e}");
    }
}

/// Text a policy writes once per row (a token prefix, a redact replacement, a recognizer's
/// placeholder) is bounded: a batch of 1M rows with a megabyte-long prefix passed Arrow's
/// 2 GiB string offsets and panicked.
#[test]
fn text_written_per_row_is_bounded() {
    let long = "x".repeat(257);
    for (rule, want) in [
        (
            format!("{{ action: tokenize, key: k, prefix: {long}, basis: contract }}"),
            "`prefix` is 257 characters long; it must be at most 256",
        ),
        (
            format!(
                "{{ action: scrub, replace_with: token, key: k, prefix: {long}, basis: contract }}"
            ),
            "at most 256",
        ),
        (
            format!(
                "{{ action: redact, replacement: {}, basis: contract }}",
                "y".repeat(1001)
            ),
            "`replacement` is 1001 characters long; it must be at most 1000",
        ),
    ] {
        let e = err("[EU]", &format!("  a: {rule}\n"));
        assert!(e.contains(want) && e.contains("line 7"), "{e}");
    }
    // Characters, not bytes: 256 three-byte characters are allowed.
    let ok = format!(
        "  a: {{ action: tokenize, key: k, prefix: {}, basis: contract }}\n",
        "é".repeat(256)
    );
    assert!(load("[EU]", &ok).is_ok());
    let name = "n".repeat(65);
    let text = format!(
        "{HEAD}jurisdictions: [EU]\nrecognizers:\n  - {{ name: {name}, pattern: 'a', category: pd:Identifier }}\nfields:\n  a: {{ action: scrub, basis: contract }}\n"
    );
    let e = Policy::from_yaml_str(&text, "t.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 64") && e.contains("line 7"), "{e}");
}

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

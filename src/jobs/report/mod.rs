//! A compliance report of a cloakline provenance record, as Markdown and as one self-contained
//! HTML file.
//!
//! Both renderers read the record into one layout (sections of headings, paragraphs, tables
//! and charts) and only differ in how they print it, so the two formats always say the same.
//! The report restates the record; it checks no hash and no signature. The record's own
//! explanatory notes (`cl:statusNote`, `cl:note`) are not copied: the report uses fixed
//! wording of its own, which never calls the data anonymous.
//!
//! The work is split by concern: `read` loads the record and gives a typed view of it,
//! `findings` derives the points a reviewer must look at, `sections` and `privacy` lay the
//! record out in the format-neutral `layout`, which `markdown` and `html` (with `svg` charts)
//! print; `format` holds the small text-formatting helpers.

pub mod ropa;

mod findings;
mod format;
mod html;
mod layout;
mod markdown;
mod privacy;
mod read;
mod sections;
mod svg;

pub use findings::{Finding, Level, findings};
pub use html::render_html;
pub(crate) use markdown::md_text;
pub use markdown::render_markdown;
pub use read::load_record;

#[cfg(test)]
use self::{
    format::{float, group_u, retention},
    html::esc,
    svg::bar_units,
};
#[cfg(test)]
use serde_json::Value;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                       0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn basis(j: &str, law: &str, basis: &str, article: &str) -> Value {
        json!({"jurisdiction": j, "law": law, "basis": basis, "article": article,
               "dpv": "dpv:X", "term": "x"})
    }

    fn both(b: &str, eu: &str, cn: &str) -> Value {
        json!([basis("EU", "GDPR", b, eu), basis("CN", "PIPL", b, cn)])
    }

    /// Shaped like a real two-jurisdiction record, with the newer members.
    fn customers() -> Value {
        let consent = both("consent", "GDPR Art. 6(1)(a)", "PIPL Art. 13(1)(1)");
        let contract = both("contract", "GDPR Art. 6(1)(b)", "PIPL Art. 13(1)(2)");
        json!({
            "@id": "urn:cloakline:run:r1:record",
            "generatedAtTime": "2026-01-02T03:04:05Z",
            "cl:summary": {"policy": "shop v3", "jurisdictions": ["EU", "CN"], "privacy": null},
            "cl:signature": {"algorithm": "HMAC-SHA256", "kdf": "HKDF-SHA256",
                             "kdfInfo": "cloakline/v1/sign/provenance", "keyId": "sig1",
                             "keyFingerprint": "aabbccddeeff0011", "value": SIG},
            "@graph": [
                {"@id": "urn:c", "@type": ["prov:Agent", "dpv:DataController"], "label": "Example Retail Co."},
                {"@id": "urn:p", "@type": ["prov:Entity", "prov:Plan", "cl:Policy"],
                 "cl:policyName": "shop", "cl:policyVersion": 3, "cl:path": "policies/shop.yaml",
                 "cl:sha256": "c05d43266be8a2c3652914888f6ed709d17b33cf10affdc3571568c08121364d"},
                {"@id": "urn:r", "@type": "prov:Activity",
                 "startedAtTime": "2026-01-02T03:04:00Z", "endedAtTime": "2026-01-02T03:04:05Z",
                 "cl:purpose": "churn analysis", "hasJurisdiction": ["loc:EU", "loc:CN"],
                 "cl:recipients": ["Analytics Partner Ltd."], "cl:dataSubjects": ["customers"],
                 "cl:retention": "P1Y6M",
                 "cl:transfers": [{"recipient": "Analytics Partner Ltd.", "country": "US", "thirdParty": true}]},
                {"@id": "urn:in", "@type": ["prov:Entity", "cl:Dataset"], "cl:path": "in/customers.csv",
                 "cl:format": "csv", "cl:rows": 60, "cl:bytes": 9480,
                 "cl:sha256": "d8158c478ed5d5e579556b83ba906b197901d7810cecb1c09fda87b7d8bca5a2"},
                {"@id": "urn:out", "@type": ["prov:Entity", "cl:Dataset"], "cl:path": "out/customers.parquet",
                 "cl:format": "parquet", "cl:rows": 60, "cl:bytes": 33959, "wasGeneratedBy": "urn:r",
                 "cl:sha256": "57458ffb7ec771a4c467cb1f460b3e9a20053a364cd8625dca033c8e9ef083eb"},
                {"@id": "urn:if:email", "@type": "prov:Entity", "cl:column": "email", "cl:dataType": "Utf8"},
                {"@id": "urn:of:email", "@type": ["prov:Entity", "dpv:PseudonymisedData"],
                 "cl:column": "email", "cl:sourceColumn": "email", "cl:action": "tokenize",
                 "cl:params": {"algorithm": "HMAC-SHA256", "kdf_info": "cloakline/v1/tokenize/email"},
                 "cl:keyId": "k1", "cl:keyFingerprint": "beaf4c510f29e410",
                 "cl:status": "pseudonymised personal data",
                 "cl:statusNote": "Personal data; de-identified, not anonymised (PIPL Art. 73(3)).",
                 "cl:lawfulBasis": consent, "cl:category": "email", "cl:sensitive": false,
                 "cl:consentRef": "https://example.com/consent/notice-v5"},
                {"@id": "urn:of:phone", "@type": ["prov:Entity"], "cl:column": "phone",
                 "cl:sourceColumn": "phone", "cl:action": "keep", "cl:status": "unchanged personal data",
                 "cl:lawfulBasis": consent, "cl:category": "telephone", "cl:sensitive": false},
                {"@id": "urn:of:nid", "@type": ["prov:Entity"], "cl:column": "national_id",
                 "cl:sourceColumn": "national_id", "cl:action": "encrypt",
                 "cl:params": {"algorithm": "AES-256-GCM"}, "cl:keyId": "k2",
                 "cl:keyFingerprint": "44296cb7a8b4f861", "cl:status": "encrypted personal data",
                 "cl:lawfulBasis": consent, "cl:category": "official_id", "cl:sensitive": true,
                 "cl:separateConsent": true, "cl:consentRef": "consent-form-7"},
                {"@id": "urn:of:health", "@type": ["prov:Entity"], "cl:column": "diagnosis",
                 "cl:sourceColumn": "diagnosis", "cl:action": "generalize",
                 "cl:status": "generalized personal data", "cl:lawfulBasis": contract,
                 "cl:category": "health", "cl:sensitive": true, "cl:specialCategory": "health",
                 "cl:art9Condition": {"condition": "research", "article": "GDPR Art. 9(2)(j)", "term": "eu-gdpr:A9-2-j"}},
                {"@id": "urn:of:by", "@type": ["prov:Entity"], "cl:column": "birth_year",
                 "cl:sourceColumn": "birth_date", "cl:action": "generalize",
                 "cl:params": {"kind": "date", "to": "year"}, "cl:status": "generalized personal data",
                 "cl:lawfulBasis": contract, "cl:category": "birth_date", "cl:sensitive": false},
                {"@id": "urn:of:name", "@type": ["prov:Entity"], "cl:column": "姓名",
                 "cl:sourceColumn": "姓名", "cl:action": "keep", "cl:status": "unchanged personal data",
                 "cl:lawfulBasis": contract, "cl:category": "name", "cl:sensitive": false},
                {"@id": "urn:of:odd", "@type": ["prov:Entity"], "cl:column": "a<b>&\"c\"",
                 "cl:sourceColumn": "x|y", "cl:action": "keep", "cl:status": "unchanged",
                 "cl:lawfulBasis": contract, "cl:category": null, "cl:sensitive": false},
                {"@id": "urn:of:notes", "@type": ["prov:Entity"], "cl:column": "notes",
                 "cl:sourceColumn": "notes", "cl:action": "scrub",
                 "cl:params": {"mode": "redact", "recognizers": ["email", "cn_phone"]},
                 "cl:status": "scrubbed free text", "cl:lawfulBasis": contract, "cl:category": null,
                 "cl:sensitive": false, "cl:entitiesReplaced": {"email": 12, "cn_phone": 3}},
                {"@id": "urn:if:full", "@type": "prov:Entity", "cl:column": "full_name",
                 "cl:dataType": "Utf8", "cl:action": "drop", "cl:status": "removed",
                 "cl:droppedBecause": "the policy drops it"}
            ]
        })
    }

    /// Shaped like a record with privacy-model evidence.
    fn adult() -> Value {
        let assessment = |smallest: u64, satisfied: bool| {
            json!({
                "records": 100, "records_released": 95, "suppressed": 5, "suppressed_fraction": 0.05,
                "classes": 20, "classes_released": 12, "smallest_class": smallest, "largest_class": 30,
                "average_class_size": 7.9, "records_below_k": 5, "classes_below_k": 8,
                "size_distribution": [
                    {"size": "1", "classes": 0, "records": 0},
                    {"size": "5-9", "classes": 10, "records": 65},
                    {"size": "20-49", "classes": 1, "records": 30}
                ],
                "sensitive": [{"attribute": "salary", "distinct_l": 2, "entropy_l": 1.8,
                               "t": [["equal", 0.21]]}],
                "risks": {"prosecutor_highest": 0.2, "prosecutor_average": 0.05, "records_at_risk": 0.0,
                          "journalist_highest": 0.2, "marketer": 0.05, "sampling_fraction": 1.0},
                "loss": {"metric": "precision", "value": 0.38, "precision": 0.38, "discernibility": 1234.0},
                "satisfied": satisfied
            })
        };
        let li = json!([basis(
            "EU",
            "GDPR",
            "legitimate_interests",
            "GDPR Art. 6(1)(f)"
        )]);
        json!({
            "@graph": [
                {"@type": ["dpv:DataController"], "label": "Example Research Institute"},
                {"@type": "prov:Activity", "hasJurisdiction": ["loc:EU"], "cl:purpose": "research"},
                {"@type": ["prov:Entity"], "cl:column": "age", "cl:sourceColumn": "age",
                 "cl:action": "generalize", "cl:status": "generalized personal data",
                 "cl:quasiIdentifier": {"level": 4, "maxLevel": 4, "hierarchy": "h/age.csv"},
                 "cl:lawfulBasis": li, "cl:category": "age", "cl:sensitive": false},
                {"@type": ["prov:Entity", "cl:PrivacyModelEvidence"],
                 "cl:note": "It does not by itself make the data anonymous.",
                 "cl:quasiIdentifiers": [{"field": "age", "hierarchy": "arx-file",
                                          "source": "h/age.csv", "levels": 4, "chosenLevel": 4}],
                 "cl:sensitiveAttributes": ["salary"],
                 "cl:models": {"k": 5,
                               "lDiversity": [{"attribute": "salary", "variant": "distinct", "l": 2.0, "c": null}],
                               "tCloseness": [{"attribute": "salary", "t": 0.3, "distance": "equal"}]},
                 "cl:onViolation": "generalize", "cl:maxSuppression": 0.05, "cl:metric": "precision",
                 "cl:suppressedRecords": 5,
                 "cl:achieved": assessment(5, true),
                 "cl:beforeEnforcement": assessment(1, false)}
            ]
        })
    }

    fn longest_hex_run(s: &str) -> usize {
        let (mut best, mut cur) = (0, 0);
        for c in s.chars() {
            if c.is_ascii_hexdigit() {
                cur += 1;
                best = best.max(cur);
            } else {
                cur = 0;
            }
        }
        best
    }

    fn no_anonymity_claim(s: &str) {
        let l = s.to_lowercase();
        for w in ["anonymis", "anonymiz", "anonymous"] {
            assert!(!l.contains(w), "output contains {w}");
        }
    }

    #[test]
    fn markdown_has_bases_keys_and_sections() {
        let md = render_markdown(&customers());
        assert!(md.contains("PIPL Art. 13(1)(1) consent; GDPR Art. 6(1)(a) consent"));
        assert!(md.contains("PIPL Art. 13(1)(2) contract; GDPR Art. 6(1)(b) contract"));
        assert!(md.contains("k1 (fingerprint beaf4c510f29e410)"));
        assert!(md.contains("k2 (fingerprint 44296cb7a8b4f861)"));
        assert!(md.contains("birth_date → birth_year"));
        assert!(md.contains("sensitive (PIPL Art. 28) — separate consent"));
        assert!(md.contains("special category: health — GDPR Art. 9(2)(j)"));
        assert!(md.contains("EU (GDPR), CN (PIPL)"));
        assert!(md.contains("P1Y6M (1 year 6 months)"));
        assert!(md.contains("| full_name | Utf8 | the policy drops it |"));
        for h in ["## Summary", "## Fields", "## Privacy model", "## Findings"] {
            assert!(md.contains(h), "{h}");
        }
        assert!(md.contains("姓名"));
    }

    #[test]
    fn signature_is_summarised_never_shown() {
        let doc = customers();
        for out in [render_markdown(&doc), render_html(&doc)] {
            assert!(
                out.contains("signed: HMAC-SHA256 with key sig1 (fingerprint aabbccddeeff0011)")
            );
            assert!(!out.contains(SIG));
            assert!(
                longest_hex_run(&out) <= 64,
                "hex run {}",
                longest_hex_run(&out)
            );
            assert!(!out.contains("kdf_info") && !out.contains("cloakline/v1/"));
        }
        let unsigned = render_markdown(&adult());
        assert!(unsigned.contains("| **Signature** | not signed |"));
    }

    #[test]
    fn findings_cover_each_rule() {
        let f = findings(&customers());
        let has = |level: Level, field: Option<&str>, needle: &str| {
            f.iter()
                .any(|x| x.level == level && x.field.as_deref() == field && x.text.contains(needle))
        };
        assert!(has(Level::Review, Some("national_id"), "PIPL Art. 28"));
        assert!(has(Level::Review, Some("diagnosis"), "GDPR Art. 9(2)(j)"));
        assert!(has(
            Level::Warning,
            Some("phone"),
            "pd:TelephoneNumber kept as is"
        ));
        assert!(has(Level::Warning, Some("姓名"), "pd:Name kept as is"));
        assert!(has(
            Level::Info,
            Some("email"),
            "https://example.com/consent/notice-v5"
        ));
        assert!(has(Level::Warning, Some("phone"), "no consent reference"));
        assert!(has(
            Level::Info,
            Some("birth_year"),
            "quasi-identifier (pd:BirthDate) generalized"
        ));
        assert!(has(Level::Info, Some("notes"), "names"));
        assert!(has(Level::Review, None, "PIPL Art. 23"));
        assert!(has(
            Level::Review,
            None,
            "cross-border transfer to Analytics Partner Ltd. in US (PIPL Art. 38–39; GDPR Chapter V)"
        ));
        // Encrypted with separate consent recorded: no missing-consent warning.
        assert!(!has(
            Level::Warning,
            Some("national_id"),
            "separate consent"
        ));
        // With privacy evidence, quasi-identifiers are not flagged.
        assert!(
            !findings(&adult())
                .iter()
                .any(|x| x.text.contains("quasi-identifier"))
        );
    }

    #[test]
    fn html_escapes_and_is_self_contained() {
        let html = render_html(&customers());
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
        assert!(!html.contains("a<b>"));
        assert!(html.contains("姓名"));
        for id in ["summary", "fields", "privacy", "findings"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        for h in ["Summary", "Fields", "Privacy model", "Findings"] {
            assert!(html.contains(&format!("<h2>{h}</h2>")), "{h}");
        }
        let lower = html.to_lowercase();
        for bad in [
            "<script", "<link", "<img", "@import", "url(", "src=", "href=",
        ] {
            assert!(!lower.contains(bad), "{bad}");
        }
        assert!(lower.contains("break-inside: avoid"));
        // The policy digest is shortened with the full value as a tooltip.
        assert!(html.contains(
            "<code title=\"c05d43266be8a2c3652914888f6ed709d17b33cf10affdc3571568c08121364d\">c05d43266be8…</code>"
        ));
    }

    #[test]
    fn apostrophes_are_escaped_in_html() {
        assert_eq!(esc("a<b>&\"c\"'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;");
    }

    #[test]
    fn markdown_tables_keep_their_shape() {
        let md = render_markdown(&customers());
        assert!(md.contains("x\\|y → a\\<b\\>&\"c\""));
        let mut in_fields = false;
        for line in md.lines() {
            if line.starts_with("| Source → output") {
                in_fields = true;
            } else if in_fields && !line.starts_with('|') {
                break;
            }
            if in_fields {
                let unescaped = line
                    .char_indices()
                    .filter(|&(i, c)| c == '|' && (i == 0 || !line[..i].ends_with('\\')))
                    .count();
                assert_eq!(unescaped, 8, "{line}");
            }
        }
        assert!(in_fields);
    }

    #[test]
    fn privacy_evidence_and_chart() {
        let doc = adult();
        let html = render_html(&doc);
        assert!(html.contains("<svg") && html.contains("<rect"));
        assert!(html.contains("<title>class size 5-9: 10 classes, 65 records</title>"));
        assert_eq!(html.matches("<svg").count(), 2);
        let md = render_markdown(&doc);
        assert!(md.contains("| 5-9 | 10 | 65 | 68.42% | ████████████████████ |"));
        assert!(md.contains("k-anonymity with k = 5"));
        assert!(md.contains("distinct l-diversity of salary: l = 2"));
        assert!(md.contains("t-closeness of salary: t = 0.3 (equal distance)"));
        assert!(md.contains("| age | h/age.csv | 4 | 4 |"));
        assert!(md.contains("| salary | 2 | 1.8 | 0.21 (equal) |"));
        assert!(md.contains("| **k achieved (smallest class)** | 5 |"));
        assert!(md.contains("| **Suppressed records** | 5 (5.00%) |"));
        assert!(md.contains("| Prosecutor risk, highest | 20.00% | 20.00% |"));
        assert!(md.contains("| Loss: precision (minimized) | 0.38 | 0.38 |"));
        assert!(md.contains("generalize (quasi-identifier, level 4 of 4)"));
    }

    #[test]
    fn no_anonymity_wording() {
        for doc in [customers(), adult()] {
            no_anonymity_claim(&render_markdown(&doc));
            no_anonymity_claim(&render_html(&doc));
            for f in findings(&doc) {
                no_anonymity_claim(&f.text);
            }
        }
    }

    #[test]
    fn deterministic() {
        let doc = customers();
        assert_eq!(render_markdown(&doc), render_markdown(&doc));
        assert_eq!(render_html(&adult()), render_html(&adult()));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = json!({
            "cl:summary": 7,
            "cl:signature": "yes",
            "@graph": [
                null, 1, "x", [],
                {"@type": 5},
                {"@type": "prov:Activity", "hasJurisdiction": 3, "cl:recipients": {"a": 1},
                 "cl:transfers": [1, {"country": null}], "cl:retention": "P"},
                {"@type": ["cl:Policy"], "cl:sha256": "é€𝄞abc"},
                {"@type": ["cl:Dataset"], "cl:rows": -3, "cl:bytes": "many", "cl:sha256": [1]},
                {"cl:sourceColumn": 5, "cl:lawfulBasis": "consent", "cl:params": [1],
                 "cl:quasiIdentifier": 3, "cl:art9Condition": 1, "cl:specialCategory": "", "cl:action": "mask"},
                {"cl:sourceColumn": null, "cl:lawfulBasis": [null, {"basis": 1}], "cl:action": "scrub",
                 "cl:entitiesReplaced": {"x": "y"}, "cl:keyFingerprint": "ff".repeat(100)},
                {"@type": "cl:PrivacyModelEvidence", "cl:models": [], "cl:achieved": {
                    "size_distribution": [{"size": 1}, 2, {"classes": -1, "records": 1e300}],
                    "sensitive": [{"t": [[1], "x", 0.5]}], "risks": [], "loss": {"value": "x"},
                    "satisfied": false},
                 "cl:search": {"seconds": "slow"}, "cl:maxSuppression": 1e308}
            ]
        });
        let docs = [
            json!({}),
            json!([]),
            json!(null),
            json!(42),
            json!("x"),
            json!([{}]),
            odd,
        ];
        for d in &docs {
            let md = render_markdown(d);
            let html = render_html(d);
            assert!(md.contains("## Findings") && html.contains("<h2>Findings</h2>"));
            let _ = findings(d);
        }
        assert!(render_markdown(&json!({})).contains("not signed"));
        assert!(render_markdown(&json!(null)).contains("No findings."));
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(group_u(1234567), "1,234,567");
        assert_eq!(float(10000.0), "10,000");
        assert_eq!(float(0.38052), "0.3805");
        assert_eq!(retention("P12M"), "P12M (12 months)");
        assert_eq!(retention("PT5H"), "PT5H");
        assert_eq!(
            md_text("a|b\\c *d* _e_ f_g"),
            "a\\|b\\\\c \\*d\\* \\_e\\_ f_g"
        );
        assert_eq!(bar_units(5, 10, 20), 10);
        assert_eq!(bar_units(1, 1_000_000, 20), 1);
    }

    /// Renders real records (tests/fixtures, written by `apply`).
    #[test]
    fn fixture_records() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
        for name in ["customers", "adult"] {
            let path = dir.join(format!("{name}.provenance.json"));
            let text = std::fs::read_to_string(&path).expect("fixture present");
            let doc: Value = serde_json::from_str(&text).expect("sample is JSON");
            let md = render_markdown(&doc);
            let html = render_html(&doc);
            for out in [&md, &html] {
                no_anonymity_claim(out);
                assert!(longest_hex_run(out) <= 64);
                assert!(out.contains("Findings"));
            }
            if name == "customers" {
                assert!(md.contains("PIPL Art. 13(1)(1) consent; GDPR Art. 6(1)(a) consent"));
                assert!(md.contains("k1 (fingerprint beaf4c510f29e410)"));
            } else {
                assert!(html.contains("<svg") && html.contains("<rect"));
                assert!(md.contains("| **k achieved (smallest class)** | 5 |"));
            }
        }
    }
}

//! A compliance report of a cloakline provenance record, as Markdown and as one self-contained
//! HTML file.
//!
//! Both renderers read the record into one layout (sections of headings, paragraphs, tables
//! and charts) and only differ in how they print it, so the two formats always say the same.
//! The report restates the record; it checks no hash and no signature. The record's own
//! explanatory notes (`cl:statusNote`, `cl:note`) are not copied: the report uses fixed
//! wording of its own, which never calls the data anonymous.
//!
//! The work is split by concern: `read` loads the typed record and gives the report's view
//! of it, `findings` derives the points a reviewer must look at, `sections` and `privacy` lay
//! the record out in the format-neutral `layout`, which `markdown` and `html` (with `svg`
//! charts) print; `format` holds the small text-formatting helpers.

pub mod ropa;

mod findings;
mod format;
mod html;
mod job;
mod layout;
mod markdown;
mod privacy;
mod read;
mod release;
mod sections;
mod svg;

pub use findings::{Finding, Level, findings};
pub use html::render_html;
pub use job::{Report, ReportFormat};
pub(crate) use markdown::md_text;
pub use markdown::render_markdown;
pub use read::{load_record, load_record_at};

#[cfg(test)]
use self::{
    format::{float, group_u, retention},
    html::esc,
    svg::bar_units,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::record::Record;
    use serde_json::{Value, json};

    const SIG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                       0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const RUN: &str = "urn:cloakline:run:r1";

    // -----------------------------------------------------------------------------------------
    // Complete v2 records as `apply` writes them; each test sets what it is about.

    /// `base` with each member of `patch` set.
    fn with(mut base: Value, patch: Value) -> Value {
        if let (Some(b), Value::Object(p)) = (base.as_object_mut(), patch) {
            b.extend(p);
        }
        base
    }

    /// A whole record around `nodes`; `top` sets top-level members.
    fn record_json(nodes: Vec<Value>, top: Value) -> Value {
        let base = json!({
            "@context": crate::provenance::context(),
            "@id": format!("{RUN}:record"),
            "@type": ["prov:Entity", "cl:ProvenanceRecord"],
            "cl:format": crate::provenance::FORMAT,
            "cl:runKind": "apply",
            "cl:outputKind": "file",
            "generatedAtTime": "2026-01-02T03:04:05Z",
            "wasGeneratedBy": RUN,
            "cl:summary": {"policy": null, "controller": null, "purpose": null,
                           "jurisdictions": [], "rowsIn": 60, "rowsOut": 60, "fieldsOut": 0,
                           "fieldsDropped": 0, "privacy": null},
            "@included": nodes,
        });
        with(base, top)
    }

    fn typed(v: &Value) -> Record {
        Record::from_json(v).unwrap_or_else(|e| panic!("test record refused: {e}"))
    }

    fn agents(controller: &str) -> [Value; 2] {
        [
            json!({"@id": "urn:c", "@type": ["prov:Agent", "prov:Organization", "dpv:DataController"],
                   "label": controller}),
            json!({"@id": "urn:sw", "@type": ["prov:Agent", "prov:SoftwareAgent"],
                   "label": "cloakline 0.1.0", "actedOnBehalfOf": "urn:c"}),
        ]
    }

    fn policy(name: &str, version: u64, sha256: &str, path: &str) -> Value {
        json!({"@id": "urn:p", "@type": ["prov:Entity", "prov:Plan", "cl:Policy"],
               "label": format!("policy {name} v{version}"), "cl:policyName": name,
               "cl:policyVersion": version, "cl:sha256": sha256, "cl:path": path})
    }

    fn run(patch: Value) -> Value {
        let base = json!({
            "@id": RUN, "@type": ["prov:Activity", "cl:Run"],
            "startedAtTime": "2026-01-02T03:04:00Z", "endedAtTime": "2026-01-02T03:04:05Z",
            "used": [format!("{RUN}:input:0"), "urn:p"], "wasAssociatedWith": "urn:sw",
            "qualifiedAssociation": {"@type": "prov:Association", "agent": "urn:sw",
                                     "hadPlan": "urn:p"}
        });
        with(base, patch)
    }

    /// A dataset; `patch` gives at least `cl:path` and `cl:format`.
    fn dataset(i: usize, output: bool, patch: Value) -> Value {
        let role = if output { "output" } else { "input" };
        let mut base = json!({"@id": format!("{RUN}:{role}:{i}"), "@type": ["prov:Entity", "cl:Dataset"],
                              "cl:schema": [], "hadMember": []});
        if output {
            base = with(
                base,
                json!({"wasGeneratedBy": RUN, "wasDerivedFrom": [format!("{RUN}:input:0")],
                       "wasAttributedTo": "urn:c"}),
            );
        }
        with(base, patch)
    }

    fn input_field(column: &str, patch: Value) -> Value {
        let base = json!({"@id": format!("{RUN}:input-field:{column}"),
                          "@type": ["prov:Entity", "cl:InputField"],
                          "cl:column": column, "cl:dataType": "Utf8"});
        with(base, patch)
    }

    /// An output field with its lawful bases; `patch` sets the rest.
    fn field(column: &str, source: &str, action: &str, bases: &Value, patch: Value) -> Value {
        let base = json!({
            "@id": format!("{RUN}:output-field:{column}"), "@type": ["prov:Entity", "cl:OutputField"],
            "cl:column": column, "cl:sourceColumn": source, "cl:dataType": "Utf8",
            "wasDerivedFrom": [format!("{RUN}:input-field:{source}")], "wasGeneratedBy": RUN,
            "cl:action": action, "cl:params": {}, "cl:status": "unchanged personal data",
            "cl:statusNote": "Personal data; de-identified, not anonymised (PIPL Art. 73(3)).",
            "cl:lawfulBasis": bases, "cl:category": null, "cl:sensitive": false,
            "cl:counts": {"valuesTransformed": 60, "nulls": 0},
            "hasLegalBasis": [],
            "hasProcess": {"@type": "dpv:Process", "cl:purpose": "churn analysis",
                           "hasLegalBasis": [], "hasPersonalData": [], "hasTechnicalMeasure": [],
                           "hasDataController": "urn:c", "hasJurisdiction": []}
        });
        with(base, patch)
    }

    fn basis(j: &str, law: &str, basis: &str, article: &str) -> Value {
        json!({"jurisdiction": j, "law": law, "basis": basis, "article": article,
               "dpv": "dpv:X", "term": "x"})
    }

    fn both(b: &str, eu: &str, cn: &str) -> Value {
        json!([basis("EU", "GDPR", b, eu), basis("CN", "PIPL", b, cn)])
    }

    /// A two-jurisdiction record with keys, consent, special categories and a transfer.
    fn customers_json() -> Value {
        let consent = both("consent", "GDPR Art. 6(1)(a)", "PIPL Art. 13(1)(1)");
        let contract = both("contract", "GDPR Art. 6(1)(b)", "PIPL Art. 13(1)(2)");
        // Output fields: column, source, action, basis, members set on the base field.
        let fields = json!([
            ["email", "email", "tokenize", "consent", {
                "@type": ["prov:Entity", "cl:OutputField", "dpv:PseudonymisedData"],
                "cl:params": {"algorithm": "HMAC-SHA256", "kdfInfo": "cloakline/v1/tokenize/email"},
                "cl:keyId": "k1", "cl:keyFingerprint": "beaf4c510f29e410",
                "cl:status": "pseudonymised personal data", "cl:category": "email",
                "cl:consentRef": "https://example.com/consent/notice-v5"}],
            ["phone", "phone", "keep", "consent", {"cl:category": "telephone"}],
            ["national_id", "national_id", "encrypt", "consent", {
                "cl:params": {"algorithm": "AES-256-GCM"}, "cl:keyId": "k2",
                "cl:keyFingerprint": "44296cb7a8b4f861", "cl:status": "encrypted personal data",
                "cl:category": "official_id", "cl:sensitive": true, "cl:separateConsent": true,
                "cl:consentRef": "consent-form-7"}],
            ["diagnosis", "diagnosis", "generalize", "contract", {
                "cl:status": "generalized personal data", "cl:category": "health",
                "cl:sensitive": true, "cl:specialCategory": "health",
                "cl:art9Condition": {"condition": "research", "article": "GDPR Art. 9(2)(j)",
                                     "term": "eu-gdpr:A9-2-j"}}],
            ["birth_year", "birth_date", "generalize", "contract", {
                "cl:params": {"kind": "date", "to": "year"},
                "cl:status": "generalized personal data", "cl:category": "birth_date"}],
            ["姓名", "姓名", "keep", "contract", {"cl:category": "name"}],
            ["a<b>&\"c\"", "x|y", "keep", "contract", {"cl:status": "unchanged"}],
            ["notes", "notes", "scrub", "contract", {
                "cl:params": {"mode": "redact", "recognizers": ["email", "cn_phone"]},
                "cl:status": "scrubbed free text",
                "cl:entitiesReplaced": {"email": 12, "cn_phone": 3}}]
        ]);
        let mut nodes = Vec::from(agents("Example Retail Co."));
        nodes.push(policy(
            "shop",
            3,
            "c05d43266be8a2c3652914888f6ed709d17b33cf10affdc3571568c08121364d",
            "policies/shop.yaml",
        ));
        nodes.push(run(json!({
            "cl:purpose": "churn analysis", "hasJurisdiction": ["loc:EU", "loc:CN"],
            "cl:recipients": ["Analytics Partner Ltd."], "cl:dataSubjects": ["customers"],
            "cl:retention": "P1Y6M",
            "cl:transfers": [{"recipient": "Analytics Partner Ltd.", "country": "US",
                              "mechanism": "standard_contract"}]
        })));
        nodes.push(dataset(
            0,
            false,
            json!({
            "cl:path": "in/customers.csv", "cl:format": "csv", "cl:rows": 60, "cl:bytes": 9480,
            "cl:sha256": "d8158c478ed5d5e579556b83ba906b197901d7810cecb1c09fda87b7d8bca5a2"}),
        ));
        nodes.push(dataset(
            0,
            true,
            json!({
            "cl:path": "out/customers.parquet", "cl:format": "parquet", "cl:rows": 60,
            "cl:bytes": 33959,
            "cl:sha256": "57458ffb7ec771a4c467cb1f460b3e9a20053a364cd8625dca033c8e9ef083eb"}),
        ));
        nodes.push(input_field("email", json!({})));
        for f in fields.as_array().into_iter().flatten() {
            let s = |i: usize| f[i].as_str().unwrap_or_default();
            let bases = if s(3) == "consent" {
                &consent
            } else {
                &contract
            };
            nodes.push(field(s(0), s(1), s(2), bases, f[4].clone()));
        }
        nodes.push(input_field(
            "full_name",
            json!({"cl:action": "drop", "cl:status": "removed",
                                                   "cl:droppedBecause": "the policy drops it"}),
        ));
        let top = json!({
            "cl:summary": {"policy": "shop v3", "controller": "Example Retail Co.",
                           "purpose": "churn analysis", "jurisdictions": ["EU", "CN"],
                           "rowsIn": 60, "rowsOut": 60, "fieldsOut": 8, "fieldsDropped": 1,
                           "privacy": null},
            "cl:signature": {"algorithm": "HMAC-SHA256", "kdf": "HKDF-SHA256",
                             "kdfInfo": "cloakline/v1/sign/provenance",
                             "canonicalization": "JCS", "keyId": "sig1",
                             "keyFingerprint": "aabbccddeeff0011", "value": SIG}
        });
        record_json(nodes, top)
    }

    fn customers() -> Record {
        typed(&customers_json())
    }

    /// Everything measured about one node.
    fn assessment(smallest: u64, satisfied: bool) -> Value {
        json!({
            "levels": [4], "quasiIdentifiers": [["age", 4, 4]],
            "records": 100, "recordsReleased": 95, "suppressed": 5, "suppressedFraction": 0.05,
            "classes": 20, "classesReleased": 12, "smallestClass": smallest, "largestClass": 30,
            "averageClassSize": 7.9, "recordsBelowK": 5, "classesBelowK": 8,
            "sizeDistribution": [
                {"size": "1", "classes": 0, "records": 0},
                {"size": "5-9", "classes": 10, "records": 65},
                {"size": "20-49", "classes": 1, "records": 30}
            ],
            "sensitive": [{"attribute": "salary", "distinctL": 2, "entropyL": 1.8,
                           "t": [["equal", 0.21]]}],
            "risks": {"prosecutorHighest": 0.2, "prosecutorAverage": 0.05, "recordsAtRisk": 0.0,
                      "journalistHighest": 0.2, "marketer": 0.05, "samplingFraction": 1.0},
            "loss": {"metric": "precision", "value": 0.38, "generalizationHeight": 0.5,
                     "precision": 0.38, "discernibility": 1234.0,
                     "discernibilityNormalized": 0.12, "avgClassSize": 1.58,
                     "suppressedFraction": 0.05},
            "satisfied": satisfied
        })
    }

    /// A record with privacy-model evidence; `achieved` and `before` are its assessments.
    fn adult_json(achieved: Value, before: Value) -> Value {
        let li = json!([basis(
            "EU",
            "GDPR",
            "legitimate_interests",
            "GDPR Art. 6(1)(f)"
        )]);
        let [controller, software] = agents("Example Research Institute");
        let privacy = json!({
            "@id": format!("{RUN}:privacy"), "@type": ["prov:Entity", "cl:PrivacyModelEvidence"],
            "wasGeneratedBy": RUN, "cl:about": [format!("{RUN}:output:0")],
            "cl:note": "It does not by itself make the data anonymous.",
            "cl:quasiIdentifiers": [{"field": "age", "hierarchy": "arx-file",
                                     "source": "h/age.csv", "levels": 4, "chosenLevel": 4}],
            "cl:sensitiveAttributes": ["salary"],
            "cl:models": {"k": 5,
                          "lDiversity": [{"attribute": "salary", "variant": "distinct", "l": 2.0, "c": null}],
                          "tCloseness": [{"attribute": "salary", "t": 0.3, "distance": "equal"}]},
            "cl:onViolation": "generalize", "cl:maxSuppression": 0.05, "cl:metric": "precision",
            "cl:search": {"latticeNodes": 20, "nodesEvaluated": 7, "seconds": 0.01},
            "cl:suppressedRecords": 5,
            "cl:achieved": achieved,
            "cl:beforeEnforcement": before
        });
        let nodes = vec![
            controller,
            software,
            run(json!({"hasJurisdiction": ["loc:EU"], "cl:purpose": "research"})),
            field(
                "age",
                "age",
                "generalize",
                &li,
                json!({
                "cl:status": "generalized personal data", "cl:category": "age",
                "cl:quasiIdentifier": {"level": 4, "maxLevel": 4, "hierarchy": "h/age.csv",
                                       "note": "generalized by the privacy block"}}),
            ),
            privacy,
        ];
        record_json(nodes, json!({}))
    }

    fn adult() -> Record {
        typed(&adult_json(assessment(5, true), assessment(1, false)))
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

    // -----------------------------------------------------------------------------------------

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
            assert!(!out.contains("kdf_info") && !out.contains("kdfInfo"));
            assert!(!out.contains("cloakline/v1/"));
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
        assert!(has(
            Level::Info,
            Some("notes"),
            "15 entities replaced (cn_phone: 3, email: 12)"
        ));
        assert!(has(Level::Review, None, "[PIPL-23] PIPL Art. 23"));
        assert!(has(
            Level::Review,
            None,
            "[PIPL-38, PIPL-39, GDPR-44] cross-border transfer to Analytics Partner Ltd. in US (PIPL Art. 38–39; GDPR Chapter V)"
        ));
        assert!(has(
            Level::Info,
            None,
            "transfer to Analytics Partner Ltd. relies on `standard_contract`"
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
    fn rule_findings_carry_their_id_unless_recorded() {
        let mut v = customers_json();
        let nodes = v["@included"].as_array_mut().unwrap();
        let id = |c: &str| format!("{RUN}:output-field:{c}");
        let diagnosis = nodes
            .iter_mut()
            .find(|n| n["@id"] == id("diagnosis"))
            .unwrap();
        diagnosis["cl:art9Condition"] = Value::Null;
        let national = nodes
            .iter_mut()
            .find(|n| n["@id"] == id("national_id"))
            .unwrap();
        national["cl:separateConsent"] = json!(false);
        let f = findings(&typed(&v));
        let warned = |field: &str, text: &str| {
            f.iter().any(|x| {
                x.level == Level::Warning && x.field.as_deref() == Some(field) && x.text == text
            })
        };
        assert!(warned(
            "diagnosis",
            "[GDPR-9] special category without a GDPR Art. 9(2) condition in the record"
        ));
        assert!(warned(
            "national_id",
            "[PIPL-28/29] sensitive personal information relies on consent, but no separate \
             consent is recorded (PIPL Art. 29)"
        ));
        // A warning the record carries under the same rule is shown instead, once.
        let nodes = v["@included"].as_array_mut().unwrap();
        let run_node = nodes.iter_mut().find(|n| n["@id"] == RUN).unwrap();
        run_node["cl:policyWarnings"] = json!([{"rule": "GDPR-9", "article": "GDPR Art. 9(1)–(2)",
            "field": "diagnosis", "message": "recorded"}]);
        let f = findings(&typed(&v));
        let gdpr9: Vec<&str> = f
            .iter()
            .filter(|x| x.text.starts_with("[GDPR-9]"))
            .map(|x| x.text.as_str())
            .collect();
        assert_eq!(gdpr9, ["[GDPR-9] recorded"]);
    }

    #[test]
    fn warnings_demo_keys_and_unmet_models_are_findings() {
        let mut v = customers_json();
        v["cl:demoKeys"] = json!(true);
        let nodes = v["@included"].as_array_mut().unwrap();
        let run_node = nodes.iter_mut().find(|n| n["@id"] == RUN).unwrap();
        run_node["cl:policyWarnings"] = json!([{"rule": "PIPL-55", "article": "PIPL Art. 55",
            "field": "national_id", "message": "an impact assessment is required"}]);
        let f = findings(&typed(&v));
        assert!(f.iter().any(|x| x.level == Level::Review
            && x.field.as_deref() == Some("national_id")
            && x.text == "[PIPL-55] an impact assessment is required"));
        assert!(
            f.iter()
                .any(|x| x.level == Level::Warning && x.text.contains("DEMO KEYS ONLY"))
        );
        assert!(
            !findings(&customers())
                .iter()
                .any(|x| x.text.contains("DEMO KEYS"))
        );

        let unmet = typed(&adult_json(assessment(2, false), assessment(1, false)));
        assert!(findings(&unmet).iter().any(|x| {
            x.level == Level::Warning
                && x.text
                    .ends_with("not satisfied by the released data (smallest class 2)")
        }));
        assert!(
            !findings(&adult())
                .iter()
                .any(|x| x.text.contains("not satisfied"))
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
        assert!(md.contains("| **Search** | 7 of 20 lattice nodes evaluated in 0.010 s |"));
        assert!(md.contains("| Prosecutor risk, highest | 20.00% | 20.00% |"));
        assert!(md.contains("| Loss: precision (minimized) | 0.38 | 0.38 |"));
        // The minimized metric has its own entry, so `value` is not repeated.
        assert!(!md.contains("Loss: value"));
        assert!(md.contains("generalize (quasi-identifier, level 4 of 4)"));
    }

    /// Figures written as JSON null (non-finite) read back as NaN and are shown as "—".
    #[test]
    fn non_finite_figures_are_dashes() {
        let mut achieved = assessment(5, true);
        achieved["suppressedFraction"] = Value::Null;
        achieved["averageClassSize"] = Value::Null;
        achieved["risks"]["prosecutorHighest"] = Value::Null;
        achieved["loss"]["precision"] = Value::Null;
        achieved["sensitive"][0]["entropyL"] = Value::Null;
        let doc = typed(&adult_json(achieved, assessment(1, false)));
        let md = render_markdown(&doc);
        let html = render_html(&doc);
        for out in [&md, &html] {
            assert!(!out.contains("NaN") && !out.to_lowercase().contains("inf%"));
        }
        assert!(md.contains("| **Suppressed records** | 5 |"));
        assert!(md.contains("| Average class size | 7.9 | — |"));
        assert!(md.contains("| Prosecutor risk, highest | 20.00% | — |"));
        assert!(md.contains("| Loss: precision (minimized) | 0.38 | — |"));
        assert!(md.contains("| salary | 2 | — | 0.21 (equal) |"));
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

    /// Odd values in a well-formed record: blank text, extreme counts, odd parameters.
    fn odd_record() -> Value {
        let mut before = assessment(0, false);
        before["sizeDistribution"] = json!([{"size": "", "classes": u64::MAX, "records": u64::MAX},
                                            {"size": "2", "classes": 0, "records": u64::MAX}]);
        before["sensitive"] = json!([{"attribute": "", "distinctL": 0, "entropyL": null,
                                      "t": [["ordered", 1e308]]}]);
        for k in ["prosecutorHighest", "marketer", "samplingFraction"] {
            before["risks"][k] = Value::Null;
        }
        before["loss"]["metric"] = json!("");
        let mut v = adult_json(before.clone(), before);
        let nodes = v["@included"].as_array_mut().unwrap();
        let run_node = nodes.iter_mut().find(|n| n["@id"] == RUN).unwrap();
        *run_node = run(json!({"hasJurisdiction": ["", "loc:"], "cl:retention": "P",
                               "cl:recipients": ["", " "], "cl:purpose": "",
                               "cl:transfers": [{"recipient": "", "country": ""}]}));
        nodes.push(policy("", 0, "é€𝄞abc", ""));
        nodes.push(dataset(
            1,
            true,
            json!({"cl:path": "", "cl:format": "",
                                           "cl:rows": u64::MAX, "cl:bytes": u64::MAX}),
        ));
        let odd = [
            ("generalize", json!({"kind": "prefix", "keepPrefix": [1]})),
            ("generalize", json!({"kind": 7, "binWidth": {"x": 1}})),
            (
                "mask",
                json!({"keepFirst": null, "keepLast": "", "maskChar": 0}),
            ),
            ("scrub", json!({"recognizers": "email"})),
            ("", json!({})),
        ];
        for (i, (action, params)) in odd.into_iter().enumerate() {
            nodes.push(field(
                &format!("f{i}"),
                "",
                action,
                &json!([]),
                json!({
                "cl:params": params, "cl:status": "", "cl:category": "",
                "cl:specialCategory": "", "cl:keyFingerprint": "ff".repeat(100),
                "cl:entitiesReplaced": {"x": u64::MAX, "y": u64::MAX},
                "cl:lawfulBasis": [basis("", "", "", "")],
                "cl:quasiIdentifier": {"level": 9, "maxLevel": 1, "hierarchy": "", "note": ""},
                "cl:art9Condition": {"condition": "", "article": "", "term": ""}}),
            ));
        }
        v["cl:summary"]["jurisdictions"] = json!(["", "x:"]);
        v
    }

    #[test]
    fn never_panics_on_odd_values() {
        let docs = [
            typed(&record_json(vec![], json!({}))),
            typed(&odd_record()),
            typed(&adult_json(assessment(0, false), assessment(0, false))),
        ];
        for d in &docs {
            let md = render_markdown(d);
            let html = render_html(d);
            assert!(md.contains("## Findings") && html.contains("<h2>Findings</h2>"));
            assert!(!md.contains("NaN") && !html.contains("NaN"));
            let _ = findings(d);
        }
        let empty = render_markdown(&docs[0]);
        assert!(empty.contains("not signed"));
        assert!(empty.contains("No findings."));
        assert!(empty.contains("No datasets recorded."));
        assert!(empty.contains("No output fields recorded."));
    }

    /// What is not a record cloakline wrote is refused when loading, naming the file.
    #[test]
    fn load_record_refuses_what_cloakline_never_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut third_party = customers_json();
        let nodes = third_party["@included"].as_array_mut().unwrap();
        let run_node = nodes.iter_mut().find(|n| n["@id"] == RUN).unwrap();
        run_node["cl:transfers"][0]["thirdParty"] = json!(true);
        let mut single_basis = customers_json();
        let nodes = single_basis["@included"].as_array_mut().unwrap();
        let email = nodes
            .iter_mut()
            .find(|n| n["cl:column"] == "email" && n.get("cl:action").is_some())
            .unwrap();
        email["cl:lawfulBasis"] = basis("EU", "GDPR", "consent", "GDPR Art. 6(1)(a)");
        let cases = [
            ("empty.json", "{}".to_string()),
            ("list.json", "[]".into()),
            ("null.json", "null".into()),
            ("number.json", "42".into()),
            ("text.json", "not json".into()),
            (
                "twice.json",
                r#"{"cl:format": "a", "cl:format": "b"}"#.into(),
            ),
            (
                "future.json",
                r#"{"cl:format": "cloakline-provenance/v9"}"#.into(),
            ),
            ("third-party.json", third_party.to_string()),
            ("single-basis.json", single_basis.to_string()),
        ];
        for (name, text) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let err = load_record(&path).expect_err(name).to_string();
            assert!(err.contains(name), "{err}");
        }
        // The record as written loads, from the .json path or as an output's sidecar.
        let path = dir.path().join("ok.json");
        std::fs::write(&path, customers_json().to_string()).unwrap();
        assert_eq!(load_record(&path).unwrap(), customers());
        let out = dir.path().join("o.csv");
        let side = crate::provenance::sidecar_path(&out);
        std::fs::write(
            &side,
            adult_json(assessment(5, true), assessment(1, false)).to_string(),
        )
        .unwrap();
        assert_eq!(load_record(&out).unwrap(), adult());
    }

    #[test]
    fn formatting_helpers() {
        assert_eq!(group_u(1234567), "1,234,567");
        assert_eq!(float(10000.0), "10,000");
        assert_eq!(float(0.38052), "0.3805");
        assert_eq!(float(f64::NAN), "—");
        assert_eq!(float(f64::INFINITY), "—");
        assert_eq!(retention("P12M"), "P12M (12 months)");
        assert_eq!(retention("PT5H"), "PT5H");
        assert_eq!(
            md_text("a|b\\c *d* _e_ f_g"),
            "a\\|b\\\\c \\*d\\* \\_e\\_ f_g"
        );
        assert_eq!(bar_units(5, 10, 20), 10);
        assert_eq!(bar_units(1, 1_000_000, 20), 1);
    }

    /// Renders real records (tests/fixtures, v1 records written by `apply`, read through the
    /// upgrade to v2).
    #[test]
    fn fixture_records() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
        for name in ["customers", "adult"] {
            let path = dir.join(format!("{name}.provenance.json"));
            let doc = load_record(&path).unwrap_or_else(|e| panic!("{e}"));
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
                // v1 snake_case parameters, camelCased by the upgrade.
                assert!(md.contains("generalize (keep first 3 characters)"));
                assert!(md.contains("generalize (bins of 10,000)"));
                assert!(md.contains("mask (show last 4)"));
            } else {
                assert!(html.contains("<svg") && html.contains("<rect"));
                assert!(md.contains("| **k achieved (smallest class)** | 5 |"));
            }
        }
    }
}

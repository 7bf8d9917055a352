//! The commands the bundled policies document in their header comments run as written, from
//! the project root, on the data that ships in `examples/` (no `../shared` needed).

use crate::util::{bin, root, stderr};

/// The `cloakline …` commands in a policy's header comment (`\` continuations joined).
fn documented_commands(policy: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in policy.lines().take_while(|l| l.starts_with('#')) {
        let text = line.trim_start_matches('#').trim();
        match cur.take() {
            Some(c) => cur = Some(format!("{c} {}", text.trim_end_matches('\\').trim())),
            None if text.starts_with("cloakline ") => {
                cur = Some(text.trim_end_matches('\\').trim().to_string())
            }
            None => {}
        }
        if !text.ends_with('\\')
            && let Some(c) = cur.take()
        {
            out.push(c);
        }
    }
    out
}

/// Split a documented command into arguments (single quotes only, as the comments use).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in cmd.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Run the commands documented in `policies/NAME` from the project root, outputs in a
/// temporary directory (returned).
fn run_documented(name: &str, at_least: usize) -> tempfile::TempDir {
    let text = std::fs::read_to_string(root().join("policies").join(name)).unwrap();
    let commands = documented_commands(&text);
    assert!(commands.len() >= at_least, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    for c in commands {
        assert!(!c.contains("../shared"), "{c}");
        let mut args = words(&c);
        assert_eq!(args.remove(0), "cloakline");
        // Outputs go to a temporary directory instead of the project's out/.
        for a in &mut args {
            if let Some(rest) = a.strip_prefix("out/") {
                *a = dir.path().join(rest).display().to_string();
            }
        }
        let o = bin().current_dir(root()).args(&args).output().unwrap();
        assert!(o.status.success(), "`{c}` failed: {}", stderr(&o));
    }
    dir
}

#[test]
fn the_adult_policy_commands_run_on_the_bundled_extract() {
    run_documented("adult.yaml", 2);
}

#[test]
fn the_consent_example_removes_withdrawn_and_missing_customers() {
    let dir = run_documented("consent.yaml", 1);
    let side = dir.path().join("consented.parquet.provenance.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(side).unwrap()).unwrap();
    let run = doc["@included"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n.get("cl:consent").is_some())
        .unwrap();
    let c = &run["cl:consent"];
    // 100003 and 100042 withdrew; 100007 withdrew and gave again; 100011 was never asked
    // and 100015 consented to another purpose only.
    assert_eq!(c["rowsIn"], 60);
    assert_eq!(c["rowsRemovedWithdrawn"], 2);
    assert_eq!(c["rowsRemovedMissing"], 2);
    assert_eq!(c["rowsReleased"], 56);
    assert_eq!(
        run["cl:release"]["approver"],
        "J. Doe, Data Protection Officer"
    );
}

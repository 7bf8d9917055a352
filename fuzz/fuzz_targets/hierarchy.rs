//! The ARX hierarchy reader. The first byte picks the delimiter (ASCII, as the policy
//! allows); the rest is the file. A hierarchy that loads is then mapped onto its own values.
#![no_main]

mod common;

use cloakline::policy::hierarchy::{ArxHierarchy, QiHierarchy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&d, rest)) = data.split_first() else {
        return;
    };
    // Mostly the usual delimiters, sometimes any ASCII byte.
    let delimiter = match d % 8 {
        0..=3 => b';',
        4 => b',',
        5 => b'\t',
        _ => d & 0x7f,
    };
    let path = common::scratch().join("fuzzed-hierarchy.csv");
    if std::fs::write(&path, rest).is_err() {
        return;
    }
    let Ok(h) = ArxHierarchy::load(&path, delimiter) else {
        return;
    };
    // Level-0 values as the reader sees them (first cell of each row), plus null and an
    // uncovered value.
    let text = String::from_utf8_lossy(rest);
    let mut base: Vec<Option<String>> = text
        .lines()
        .filter_map(|l| l.split(delimiter as char).next())
        .map(|c| Some(c.trim().trim_matches('"').to_string()))
        .take(64)
        .collect();
    base.push(None);
    let covered: Vec<Option<String>> = base
        .iter()
        .filter(|v| v.as_deref().is_none_or(|v| h.labels(v).is_some()))
        .cloned()
        .collect();
    if let Ok(q) = QiHierarchy::from_arx("q", &covered, &h) {
        assert_eq!(q.height(), h.height, "levels lost");
        for level in &q.map {
            assert_eq!(level.len(), covered.len());
        }
    }
    base.push(Some("\u{0}not-in-the-file".into()));
    let _ = QiHierarchy::from_arx("q", &base, &h);
});

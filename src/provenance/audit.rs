//! The re-identification audit log: append-only JSON lines, each carrying the SHA-256 of the
//! line before it (`prev`) and of its own content (`hash`), so an edited, deleted, inserted
//! or reordered line breaks the chain and `cloakline audit verify` names it.
//!
//! `hash` = SHA-256 over the line's JSON without its `hash` member, members in the order
//! written, no whitespace (serde_json's compact form). The first line's `prev` is 64 zeros.
//! A chain cannot show that lines were cut from its end: keep the head hash `audit verify`
//! prints (or the `hash` in each reveal's record) somewhere else to detect that.

use std::io::{BufRead, Seek, Write};
use std::path::Path;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The `format` of every audit line.
pub const AUDIT_FORMAT: &str = "cloakline-audit/v1";
/// `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// An audit line longer than this is not one of ours (and is not read into memory whole).
const MAX_LINE: usize = 1 << 20;

/// SHA-256 (hex) of an entry's members without `hash`, in their order.
pub fn entry_hash(entry: &Map<String, Value>) -> String {
    let mut m = entry.clone();
    m.remove("hash");
    let text = serde_json::to_string(&Value::Object(m)).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// What `verify` found: the number of entries and the last hash (the head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub entries: u64,
    pub head: String,
}

/// Append `entry` (its members in order; `format`, `seq`, `prev` and `hash` are set here) to
/// the log at `path`, created owner-only when missing. The file is locked while the chain's
/// head is read and the line written, so concurrent reveals chain one after the other. The
/// existing chain is verified first: a broken log is not extended. Returns the entry as
/// written.
pub fn append(path: &Path, entry: Map<String, Value>) -> Result<Map<String, Value>> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let meta = std::fs::symlink_metadata(path).ok();
    if meta.as_ref().is_some_and(|m| !m.is_file()) {
        return Err(Error::Usage(format!(
            "--audit-log {}: is not a regular file; name an audit log file (JSON lines)",
            path.display()
        )));
    }
    let mut file = opts.open(path).map_err(|e| Error::io(path, e))?;
    file.lock().map_err(|e| Error::io(path, e))?;
    file.rewind().map_err(|e| Error::io(path, e))?;
    let chain = verify_reader(path, std::io::BufReader::new(&file))?;
    let mut out = Map::new();
    out.insert("format".into(), json!(AUDIT_FORMAT));
    out.insert("seq".into(), json!(chain.entries + 1));
    for (k, v) in entry {
        if !matches!(k.as_str(), "format" | "seq" | "prev" | "hash") {
            out.insert(k, v);
        }
    }
    out.insert("prev".into(), json!(chain.head));
    let hash = entry_hash(&out);
    out.insert("hash".into(), json!(hash));
    let mut line = serde_json::to_string(&Value::Object(out.clone()))
        .map_err(|e| Error::Internal(format!("audit entry: {e}")))?;
    line.push('\n');
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(path, e))?;
    let _ = file.unlock();
    Ok(out)
}

/// Check every line of the log at `path`.
pub fn verify(path: &Path) -> Result<Chain> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    if !file.metadata().map_err(|e| Error::io(path, e))?.is_file() {
        return Err(Error::Usage(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    verify_reader(path, std::io::BufReader::new(file))
}

fn broken(path: &Path, line: u64, why: impl std::fmt::Display) -> Error {
    Error::Verification(format!(
        "audit log {}: line {line}: {why}; the log was altered after it was written",
        path.display()
    ))
}

fn verify_reader(path: &Path, mut reader: impl BufRead) -> Result<Chain> {
    let mut head = GENESIS.to_string();
    let mut n = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = std::io::Read::take(&mut reader, MAX_LINE as u64 + 1);
        let read = limited
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if read == 0 {
            break;
        }
        let line_no = n + 1;
        if buf.len() > MAX_LINE {
            return Err(broken(path, line_no, "is longer than 1 MiB"));
        }
        if buf.last() != Some(&b'\n') {
            return Err(broken(
                path,
                line_no,
                "is not terminated (a write was cut short, or the file was edited)",
            ));
        }
        let entry: Map<String, Value> = serde_json::from_slice(&buf[..buf.len() - 1])
            .map_err(|_| broken(path, line_no, "is not a JSON object"))?;
        if entry.get("format").and_then(Value::as_str) != Some(AUDIT_FORMAT) {
            return Err(broken(
                path,
                line_no,
                format!("has no `format: {AUDIT_FORMAT}`"),
            ));
        }
        if entry.get("seq").and_then(Value::as_u64) != Some(line_no) {
            return Err(broken(
                path,
                line_no,
                format!("its `seq` is not {line_no} (a line was deleted, inserted or reordered)"),
            ));
        }
        if entry.get("prev").and_then(Value::as_str) != Some(head.as_str()) {
            return Err(broken(
                path,
                line_no,
                "its `prev` is not the hash of the line before (a line was deleted, inserted or reordered)",
            ));
        }
        let hash = entry_hash(&entry);
        if entry.get("hash").and_then(Value::as_str) != Some(hash.as_str()) {
            return Err(broken(
                path,
                line_no,
                "its `hash` does not match its content (it was edited)",
            ));
        }
        head = hash;
        n += 1;
    }
    Ok(Chain { entries: n, head })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(who: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("event".into(), json!("reveal"));
        m.insert("requestedBy".into(), json!(who));
        m.insert("values".into(), json!(3));
        m
    }

    #[test]
    fn a_chain_verifies_and_every_alteration_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        for who in ["a", "b", "c", "d"] {
            append(&log, entry(who)).unwrap();
        }
        let chain = verify(&log).unwrap();
        assert_eq!(chain.entries, 4);
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let write = |ls: &[String]| std::fs::write(&log, ls.join("\n") + "\n").unwrap();
        let owned = |ls: &[&str]| ls.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Edited.
        let mut e = owned(&lines);
        e[1] = e[1].replace("\"requestedBy\":\"b\"", "\"requestedBy\":\"x\"");
        write(&e);
        let m = verify(&log).unwrap_err().to_string();
        assert!(m.contains("line 2") && m.contains("edited"), "{m}");
        // Deleted.
        let mut d = owned(&lines);
        d.remove(2);
        write(&d);
        let m = verify(&log).unwrap_err().to_string();
        assert!(m.contains("line 3") && m.contains("deleted"), "{m}");
        // Reordered.
        let mut r = owned(&lines);
        r.swap(0, 1);
        write(&r);
        assert!(verify(&log).unwrap_err().to_string().contains("line 1"));
        // Re-hashed after an edit still breaks the link to the next line.
        let mut v: Map<String, Value> = serde_json::from_str(lines[1]).unwrap();
        v.insert("requestedBy".into(), json!("x"));
        let h = entry_hash(&v);
        v.insert("hash".into(), json!(h));
        let mut rh = owned(&lines);
        rh[1] = serde_json::to_string(&v).unwrap();
        write(&rh);
        let m = verify(&log).unwrap_err().to_string();
        assert!(m.contains("line 3") && m.contains("prev"), "{m}");
        // A broken log is not extended.
        assert!(append(&log, entry("e")).is_err());
        write(&owned(&lines));
        assert_eq!(verify(&log).unwrap(), chain);
        // A cut-off last line.
        std::fs::write(&log, text.trim_end_matches('\n')).unwrap();
        assert!(
            verify(&log)
                .unwrap_err()
                .to_string()
                .contains("not terminated")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any one byte of a log changed to another is found (or the line no longer parses),
        /// and never panics.
        #[test]
        fn any_changed_byte_breaks_the_chain(at in 0usize..10_000, to in 0u8..=255) {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("audit.jsonl");
            for who in ["a", "b", "c"] {
                append(&log, entry(who)).unwrap();
            }
            let mut bytes = std::fs::read(&log).unwrap();
            let at = at % bytes.len();
            proptest::prop_assume!(bytes[at] != to);
            bytes[at] = to;
            std::fs::write(&log, &bytes).unwrap();
            proptest::prop_assert!(verify(&log).is_err());
        }
    }
}

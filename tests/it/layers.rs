//! The layering of `src/` (docs/ARCHITECTURE.md): a module may import only from layers below
//! its own. This test reads every source file, resolves each `crate::…` and `super::…` path to
//! the module it names, and fails on any import that points up or sideways.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A unit is a top-level module, or a child of `jobs` (jobs do not
/// call each other). Units on one line are peers and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["io"],
    &["keys", "recognizers"],
    &["kernels"],
    &["policy"],
    &["plan"],
    &["engine"],
    &["provenance"],
    &["sql"],
    &["privacy"],
    &["cluster"],
    // Helpers jobs share (not jobs: they run nothing on their own).
    &["jobs::cluster_input"],
    &[
        "jobs",
        "jobs::apply",
        "jobs::check",
        "jobs::decrypt",
        "jobs::report",
        "jobs::scan",
        "jobs::sql",
        "jobs::verify",
    ],
];

/// Crates only the command-line door may use.
const CLI_ONLY_CRATES: &[&str] = &["clap", "indicatif", "ctrlc", "rpassword"];

fn rank(unit: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&unit))
}

/// The unit a module path (`["jobs", "report", "ropa"]`) belongs to.
fn unit_of(path: &[String]) -> Option<String> {
    match path {
        [] => None,
        [first, second, ..] if first == "jobs" => Some(format!("jobs::{second}")),
        [first, ..] if first == "jobs" => Some("jobs".into()),
        [first, ..] => Some(first.clone()),
    }
}

/// Source text without comments and string or char literals (doc examples, messages), so
/// only code is scanned.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#")) {
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                j += 1;
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            } else {
                out.push('r');
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x', '\n', '\u{..}'); lifetimes have no closing quote.
            let mut j = i + 1;
            if b[j] == b'\\' {
                j += 2;
            }
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            i = j + 1;
            out.push_str("' '");
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Every path that starts at `crate::` or `super::` in `code`, as written (the first few
/// segments; `use` groups expanded one level).
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            // Part of a longer path (`foo::super::`) or identifier (`mycrate::`).
            if at > 0 {
                let prev = bytes[at - 1];
                if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b':' {
                    continue;
                }
            }
            let rest = &code[at..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let head = rest[..end].trim_end_matches(':').to_string();
            if rest[end..].starts_with('{') && head.len() + 2 == end {
                // `crate::{a, b::c}`: each member of the group.
                let group = &rest[end + 1..];
                let mut depth = 0;
                let mut member = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(format!("{head}::{}", member.trim()));
                            member.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 && c != '{' {
                        member.push(c);
                    }
                }
                if !member.trim().is_empty() {
                    out.push(format!("{head}::{}", member.trim()));
                }
            } else {
                out.push(head);
            }
        }
    }
    out
}

/// The module path of a source file: `src/jobs/report/mod.rs` → `["jobs", "report"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// Resolve a written path to the absolute module path it names (without `crate`).
fn resolve(module: &[String], written: &str) -> Vec<String> {
    let segs: Vec<&str> = written.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = Vec::new();
    let mut rest = &segs[..];
    if rest.first() == Some(&"crate") {
        rest = &rest[1..];
    } else {
        // `super` in `a/b.rs` (module a::b) is `a`; in `a/mod.rs` (module a) it is the parent
        // of `a`. Test modules, which add a level, are not scanned.
        base = module.to_vec();
        while rest.first() == Some(&"super") {
            base.pop();
            rest = &rest[1..];
        }
    }
    base.extend(rest.iter().map(|s| s.to_string()));
    base
}

/// Code outside `#[cfg(test)]` modules: tests may reach anywhere.
fn without_test_modules(code: &str) -> String {
    match code.find("#[cfg(test)]\nmod tests") {
        Some(i) => code[..i].to_string(),
        None => code.to_string(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every forbidden edge in the tree under `src`: (file, from unit, to unit, written path).
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src").to_path_buf();
        let name = rel.to_string_lossy().replace('\\', "/");
        if name == "main.rs" || name.starts_with("cli/") || name == "lib.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let code = without_test_modules(&code_only(&text));
        for krate in CLI_ONLY_CRATES {
            let needle = format!("{krate}::");
            let found = code.match_indices(&needle).any(|(i, _)| {
                i == 0 || !matches!(code.as_bytes()[i - 1], b'_' | b':' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9')
            });
            if found {
                bad.push(format!(
                    "{name}: uses `{krate}`, which only the CLI may use"
                ));
            }
        }
        let module = module_of(src, &file);
        let Some(from) = unit_of(&module) else {
            continue;
        };
        let Some(from_rank) = rank(&from) else {
            bad.push(format!("{name}: module `{from}` has no layer in LAYERS"));
            continue;
        };
        for written in paths(&code) {
            let target = resolve(&module, &written);
            let Some(to) = unit_of(&target) else { continue };
            // `jobs/mod.rs` declares its children.
            if to == from || (from == "jobs" && to.starts_with("jobs::")) {
                continue;
            }
            match rank(&to) {
                Some(r) if r < from_rank => {}
                Some(_) => bad.push(format!("{name}: `{from}` imports `{written}` (`{to}`)")),
                // Items re-exported at the crate root or not modules (macros): not an edge.
                None => {}
            }
        }
    }
    bad
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layering of docs/ARCHITECTURE.md:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let jobs = std::fs::read_to_string(src.join("jobs/mod.rs")).expect("jobs/mod.rs");
    let mods = |text: &str, prefix: &str| -> BTreeSet<String> {
        code_only(text)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|m| format!("{prefix}{}", m.trim_end_matches(';')))
            .collect()
    };
    let mut all = mods(&lib, "");
    all.remove("jobs");
    all.extend(mods(&jobs, "jobs::"));
    let unranked: Vec<_> = all.iter().filter(|m| rank(m).is_none()).collect();
    assert!(unranked.is_empty(), "modules with no layer: {unranked:?}");
}

/// The checker itself: an upward import in a scratch tree is caught, a downward one is not.
#[test]
fn the_layer_check_catches_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, text: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("kernels/mod.rs", "use crate::keys::Key;\n");
    write(
        "kernels/scrub.rs",
        "// crate::jobs::apply in a comment is fine\nuse crate::{error::Error, policy::Policy};\n",
    );
    write("plan/level.rs", "use super::super::engine::run;\n");
    write(
        "jobs/verify.rs",
        "fn f() { crate::jobs::apply::sidecar(); }\n",
    );
    write("io.rs", "use clap::ValueEnum;\n");
    write(
        "policy/mod.rs",
        "let s = \"crate::jobs::apply\";\n#[cfg(test)]\nmod tests {\n use crate::jobs::apply;\n}\n",
    );
    let mut bad = violations(src);
    bad.sort();
    assert_eq!(
        bad,
        vec![
            "io.rs: uses `clap`, which only the CLI may use".to_string(),
            "jobs/verify.rs: `jobs::verify` imports `crate::jobs::apply::sidecar` (`jobs::apply`)"
                .to_string(),
            "kernels/scrub.rs: `kernels` imports `crate::policy::Policy` (`policy`)".to_string(),
            "plan/level.rs: `plan` imports `super::super::engine::run` (`engine`)".to_string(),
        ]
    );
}

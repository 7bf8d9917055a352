//! Stamps `cloakline --version` with the commit and the UTC build date:
//! `cloakline 0.1.0 (1a2b3c4 2026-11-30)`.
//!
//! The commit comes from `CLOAKLINE_BUILD_COMMIT` when set, else `git rev-parse --short HEAD`,
//! else `unknown` (a source tarball, `cargo install` from crates.io). The date is
//! `SOURCE_DATE_EPOCH` when set (reproducible builds), else now. Cargo reruns this script
//! only when HEAD moves (`.git/HEAD`, the branch ref it names, `packed-refs`) or those
//! variables change, never on every build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLOAKLINE_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let commit = match std::env::var("CLOAKLINE_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into()),
    };
    if let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) {
        watch_head(&absolute(&dir), &absolute(&common));
    }
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=CLOAKLINE_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=CLOAKLINE_BUILD_DATE={}", utc_date(secs));
}

/// `git <args>` run in the crate's directory, its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(&dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// A path git printed, relative to the crate's directory.
fn absolute(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(m) if p.is_relative() => PathBuf::from(m).join(p),
        _ => p,
    }
}

/// Rerun when HEAD moves: HEAD itself (a checkout), the branch ref it points to (a commit)
/// and packed-refs (where `git gc` moves refs); refs live in the common directory of a
/// worktree. Only files that exist: cargo reruns every build for a missing watched path.
fn watch_head(git_dir: &Path, common: &Path) {
    let head = git_dir.join("HEAD");
    let mut watched = vec![head.clone(), common.join("packed-refs")];
    if let Ok(text) = std::fs::read_to_string(&head)
        && let Some(r) = text.trim().strip_prefix("ref: ")
    {
        watched.push(common.join(r));
    }
    for p in watched.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC (Howard Hinnant's days-to-civil; no dependency).
fn utc_date(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

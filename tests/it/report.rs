//! `cloakline report`: Markdown snapshots of real records, and the HTML rendered by a real
//! browser (headless Chromium; skipped with a message where it is not installed).

use std::path::{Path, PathBuf};

use crate::util::{apply_example, root, run, stderr};

fn fixture(name: &str) -> PathBuf {
    root().join(format!("tests/fixtures/{name}.provenance.json"))
}

/// Compare with tests/snapshots/<name>; `UPDATE_SNAPSHOTS=1` rewrites them.
fn snapshot(name: &str, got: &str) {
    let path = root().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{} differs from the snapshot at line {} (rerun with UPDATE_SNAPSHOTS=1 if intended):\n  want: {:?}\n  got:  {:?}",
            path.display(),
            line + 1,
            want.lines().nth(line),
            got.lines().nth(line)
        );
    }
}

#[test]
fn markdown_reports_match_snapshots() {
    for name in ["customers", "adult"] {
        let o = run(&["report", fixture(name).to_str().unwrap(), "--format", "md"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let md = String::from_utf8(o.stdout).unwrap();
        snapshot(&format!("{name}.report.md"), &md);
    }
}

#[test]
fn report_reads_an_output_and_its_footer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.parquet");
    let o = apply_example(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = dir.path().join("r.html");
    let o = run(&[
        "report",
        out.to_str().unwrap(),
        "--output",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!doctype html>") || text.starts_with("<!DOCTYPE html>"));
    assert!(text.contains("Content-Security-Policy"));
    for banned in ["<script", "http://", "<link", "<img", "@import", "url("] {
        assert!(
            !text.contains(banned),
            "{banned} in a self-contained report"
        );
    }
    // Without the sidecar, the copy in the Parquet footer is used.
    std::fs::remove_file(dir.path().join("c.parquet.provenance.json")).unwrap();
    let o = run(&["report", out.to_str().unwrap(), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("## Findings"));
    let o = run(&["report", dir.path().join("nope.parquet").to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("nope.parquet"));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|b| {
            let o = std::process::Command::new("which").arg(b).output().ok()?;
            o.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        })
}

fn headless(browser: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED browser test: no chromium (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("adult.html");
    let o = run(&[
        "report",
        fixture("adult").to_str().unwrap(),
        "--output",
        html.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let url = format!("file://{}", html.display());
    // The DOM after rendering: sections, the chart, the evidence.
    let run_dom = headless(&browser, &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&run_dom.stdout);
    if dom.trim().is_empty() {
        // Installed but unable to start here (no display server, sandbox, /dev/shm, ...):
        // an environment problem, not a report problem. Say so and skip.
        eprintln!(
            "SKIPPED browser test: {} rendered nothing: {}",
            browser.display(),
            String::from_utf8_lossy(&run_dom.stderr)
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        return;
    }
    for needle in [
        "id=\"summary\"",
        "id=\"fields\"",
        "id=\"privacy\"",
        "id=\"findings\"",
        ">Summary<",
        ">Privacy model<",
        ">Findings<",
        "<svg",
        "<rect",
        "racial or ethnic origin",
        "GDPR Art. 9(2)(j)",
    ] {
        assert!(dom.contains(needle), "{needle} not in the rendered DOM");
    }
    // A screenshot: the page paints (a blank page compresses to almost nothing).
    let png = dir.path().join("adult.png");
    let shot = headless(
        &browser,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,1600",
            &url,
        ],
    );
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&shot.stderr)));
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(
        bytes.len() > 30_000,
        "screenshot is only {} bytes",
        bytes.len()
    );
    if let Ok(dir) = std::env::var("CLOAKLINE_SCREENSHOT_DIR") {
        std::fs::copy(&png, Path::new(&dir).join("adult-report.png")).unwrap();
    }
}

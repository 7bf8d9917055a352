//! Where a run writes before its commit (a temporary file or directory beside the output),
//! and what `--overwrite` may replace: only a previous cloakline release.

use std::path::{Path, PathBuf};

use super::*;
use crate::error::Problem;

/// `--overwrite` replaces a directory only when it is a previous cloakline release: every
/// file in it is one of the outputs its sidecar lists (no `.git`, no links, nothing else).
/// Anything else may be someone's work, which replacing would delete.
pub(super) fn check_previous_release(
    dir: &Path,
    sidecar: &Path,
    meta: &std::fs::Metadata,
) -> Result<()> {
    let refuse = |why: Problem| {
        Error::Usage(format!(
            "{} is not a previous cloakline release ({why}); --overwrite replaces only a \
             directory written by `cloakline apply`. Move it away or choose another output",
            dir.display()
        ))
    };
    if !meta.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    let mut files = Vec::new();
    release_files(dir, Path::new(""), &mut files).map_err(refuse)?;
    if files.is_empty() {
        return Ok(());
    }
    let Some(listed) = released_paths(sidecar) else {
        return Err(refuse(
            format!("{} does not list its files", sidecar.display()).into(),
        ));
    };
    // The sidecar names files as `<output>/<rel>`, with the output as that run spelled it.
    let name = dir.file_name().map(Path::new).unwrap_or(Path::new(""));
    for f in &files {
        let want = name.join(f);
        if !listed.iter().any(|l| l.ends_with(&want)) {
            return Err(refuse(
                format!("{} is not one of its outputs", dir.join(f).display()).into(),
            ));
        }
    }
    Ok(())
}

/// The regular files under `dir` (relative to the top), refusing `.git`, links and devices.
pub(super) fn release_files(
    dir: &Path,
    rel: &Path,
    out: &mut Vec<PathBuf>,
) -> std::result::Result<(), Problem> {
    let here = dir.join(rel);
    let entries = std::fs::read_dir(&here).map_err(|e| Problem(format!("cannot list it: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Problem(format!("cannot list it: {e}")))?;
        let r = rel.join(entry.file_name());
        if entry.file_name() == ".git" {
            return Err(Problem(format!(
                "{} is a Git repository",
                dir.join(&r).display()
            )));
        }
        let kind = entry.file_type().map_err(|e| Problem(e.to_string()))?;
        if kind.is_dir() {
            release_files(dir, &r, out)?;
        } else if kind.is_file() {
            out.push(r);
        } else {
            return Err(Problem(format!(
                "{} is not a regular file",
                dir.join(&r).display()
            )));
        }
    }
    Ok(())
}

/// The output paths a sidecar lists, if it is a readable cloakline sidecar.
pub(super) fn released_paths(sidecar: &Path) -> Option<Vec<PathBuf>> {
    let meta = std::fs::symlink_metadata(sidecar).ok()?;
    // A sidecar is small; a huge or special file is not one.
    if !meta.is_file() || meta.len() > 256 << 20 {
        return None;
    }
    let text = std::fs::read_to_string(sidecar).ok()?;
    let doc = crate::provenance::read::parse_strict(&text).ok()?;
    let record = crate::provenance::Record::from_json(&doc).ok()?;
    Some(record.outputs().map(|d| PathBuf::from(&d.path)).collect())
}

/// Where a run's data is written before the commit.
pub(super) enum Staging {
    File(AtomicFile),
    Dir(StagingDir),
}

impl Staging {
    pub(super) fn stage(self, dest: &Path) -> Result<Staged> {
        match self {
            Staging::File(af) => af.stage(),
            Staging::Dir(mut d) => {
                d.staged = true;
                Ok(Staged::new(d.path.clone(), dest.to_path_buf()))
            }
        }
    }
}

/// A temporary directory beside the destination, removed unless staged.
pub(super) struct StagingDir {
    pub(super) path: PathBuf,
    staged: bool,
}

impl StagingDir {
    pub(super) fn create(dest: &Path) -> Result<Self> {
        let path = crate::io::temp_sibling(dest);
        std::fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(StagingDir {
            path,
            staged: false,
        })
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.staged {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

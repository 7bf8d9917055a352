//! Finding data files (no symlinked directories, nothing read twice), hashing them, and
//! refusing an output that would replace an input.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::*;

/// The most a provenance record read from a local file may hold.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Why a small local file (a policy, keyring, hierarchy or provenance record) was not read.
#[derive(Debug)]
pub enum SmallFile {
    Io(std::io::Error),
    /// A directory, FIFO, socket or device.
    NotRegular,
    TooBig,
}

/// Read a regular file of at most `max` bytes into `buf`. Checked before opening (opening a
/// FIFO would block) and again on the open file, and the read itself is bounded. `buf` is
/// reserved up front so that a caller holding a secret in a `Zeroizing` buffer leaves no
/// copy behind in a reallocation. Returns the open file's metadata.
pub fn read_regular_into(
    path: &Path,
    max: u64,
    buf: &mut Vec<u8>,
) -> std::result::Result<std::fs::Metadata, SmallFile> {
    use std::io::Read;
    let (file, meta) = open_regular(path)?;
    if meta.len() > max {
        return Err(SmallFile::TooBig);
    }
    buf.clear();
    buf.reserve_exact(meta.len() as usize + 1);
    file.take(max + 1).read_to_end(buf).map_err(SmallFile::Io)?;
    if buf.len() as u64 > max {
        return Err(SmallFile::TooBig);
    }
    Ok(meta)
}

/// Open a regular file, with its metadata. Checked before opening (opening a FIFO would
/// block) and again on the open file (it may have been replaced meanwhile).
pub fn open_regular(
    path: &Path,
) -> std::result::Result<(std::fs::File, std::fs::Metadata), SmallFile> {
    let meta = std::fs::metadata(path).map_err(SmallFile::Io)?;
    if !meta.is_file() {
        return Err(SmallFile::NotRegular);
    }
    let file = std::fs::File::open(path).map_err(SmallFile::Io)?;
    let meta = file.metadata().map_err(SmallFile::Io)?;
    if !meta.is_file() {
        return Err(SmallFile::NotRegular);
    }
    Ok((file, meta))
}

/// A provenance record named by the user, as text: a missing file is an I/O error (exit 2
/// at the command line, as any missing named file), a FIFO or an oversized file a data error.
pub fn read_record_text(path: &Path) -> Result<String> {
    let what = "a provenance record (JSON)";
    let mut bytes = Vec::new();
    match read_regular_into(path, MAX_RECORD_BYTES, &mut bytes) {
        Ok(_) => {}
        Err(SmallFile::Io(e)) => return Err(Error::io(path, e)),
        Err(e) => {
            return Err(Error::data(
                path.display(),
                small_file_problem(&e, MAX_RECORD_BYTES, what),
            ));
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::data(
            path.display(),
            format!(
                "not UTF-8 text (byte {}); expected {what}",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// [`read_regular_into`] as UTF-8 text, with the problem as a sentence naming `what` the
/// file should be (`"a policy YAML file"`).
pub fn read_regular_text(path: &Path, max: u64, what: &str) -> std::result::Result<String, String> {
    let mut bytes = Vec::new();
    read_regular_into(path, max, &mut bytes).map_err(|e| small_file_problem(&e, max, what))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {}); expected {what}",
            e.utf8_error().valid_up_to()
        )
    })
}

/// A sentence for a [`SmallFile`] error.
pub fn small_file_problem(e: &SmallFile, max: u64, what: &str) -> String {
    match e {
        SmallFile::Io(e) => format!("cannot read it: {e}"),
        SmallFile::NotRegular => {
            format!("it is not a regular file (a directory, FIFO or device); give {what}")
        }
        SmallFile::TooBig if max >= 1 << 20 => format!(
            "it is larger than {} MiB; is it the right file? (expected {what})",
            max >> 20
        ),
        SmallFile::TooBig => format!(
            "it is larger than {} KiB; is it the right file? (expected {what})",
            max >> 10
        ),
    }
}

/// The data files under `dir`, recursively and sorted, skipping hidden entries; only those of
/// `format` when given. A directory without data files is an error.
///
/// Symbolic links to directories are not followed: a link such as `current -> .` would read
/// every file again and again (inflating k-anonymity classes), and a link can reach outside the
/// input. Links to files are read like files, but a file reached twice (through a link or a
/// hard link) is refused: its records would count twice.
pub fn data_files(dir: &Path, format: Option<Format>) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let p = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&p, e))?;
            if kind.is_dir() {
                walk(&p, out)?;
            } else if kind.is_symlink() && p.is_dir() {
                continue;
            } else {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.retain(|p| match format {
        Some(f) => Format::from_path(p) == Some(f),
        None => Format::from_path(p).is_some(),
    });
    files.sort();
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "{} contains no {} files",
            dir.display(),
            match format {
                Some(f) => format!(".{}", f.extension()),
                None => ".parquet, .csv or .ndjson (CSV/NDJSON also .gz/.zst)".into(),
            }
        )));
    }
    let mut seen: std::collections::HashMap<PathBuf, &PathBuf> = Default::default();
    for f in &files {
        let key = match inode(f) {
            Some((dev, ino)) => PathBuf::from(format!("{dev}:{ino}")),
            None => identity(f),
        };
        if let Some(first) = seen.insert(key, f) {
            return Err(Error::Usage(format!(
                "{} and {} are the same file (a link); its records would be read twice. \
                 Remove the link from {}",
                first.display(),
                f.display(),
                dir.display()
            )));
        }
    }
    Ok(files)
}

/// The files of a table given as a file or a directory of files.
pub fn table_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        data_files(path, None)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// SHA-256 of a file, lowercase hex, and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = open_file(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Where `path` is or would be: symlinks of existing paths resolved, and for a path that does
/// not exist yet, its nearest existing ancestor resolved and the rest appended.
pub(super) fn identity(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    for base in abs.ancestors().skip(1) {
        if let Ok(real) = base.canonicalize() {
            let mut out = real;
            for c in abs.strip_prefix(base).unwrap_or(&abs).components() {
                match c {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return out;
        }
    }
    abs
}

/// Device and inode of an existing path (following links), to catch hard links.
#[cfg(unix)]
pub(super) fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(super) fn inode(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Refuse outputs that would replace or land inside an input, or each other. Each entry is a
/// role and a path, e.g. `("--output", p)`, `("the policy", q)`. Outputs need not exist yet.
pub fn refuse_collisions(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let ins: Vec<(&str, &Path, PathBuf)> =
        inputs.iter().map(|&(r, p)| (r, p, identity(p))).collect();
    let outs: Vec<(&str, &Path, PathBuf)> =
        outputs.iter().map(|&(r, p)| (r, p, identity(p))).collect();
    let same = |a: &(&str, &Path, PathBuf), b: &(&str, &Path, PathBuf)| {
        a.2 == b.2 || matches!((inode(a.1), inode(b.1)), (Some(x), Some(y)) if x == y)
    };
    for (i, o) in outs.iter().enumerate() {
        for inp in &ins {
            if same(o, inp) {
                return Err(Error::Usage(format!(
                    "{} ({}) is the same file as {} ({}); writing it would destroy {}. \
                     Choose another path for {}",
                    o.0,
                    o.1.display(),
                    inp.0,
                    inp.1.display(),
                    inp.0,
                    o.0
                )));
            }
            if o.2.starts_with(&inp.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) lies inside {} ({}); write it outside the input",
                    o.0,
                    o.1.display(),
                    inp.0,
                    inp.1.display()
                )));
            }
            if inp.2.starts_with(&o.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) lies inside {} ({}); replacing {} would destroy it. \
                     Choose an output outside the input",
                    inp.0,
                    inp.1.display(),
                    o.0,
                    o.1.display(),
                    o.0
                )));
            }
        }
        for other in &outs[i + 1..] {
            if same(o, other) || o.2.starts_with(&other.2) || other.2.starts_with(&o.2) {
                return Err(Error::Usage(format!(
                    "{} ({}) and {} ({}) name the same file (or one lies inside the other); \
                     choose different paths",
                    o.0,
                    o.1.display(),
                    other.0,
                    other.1.display()
                )));
            }
        }
    }
    Ok(())
}

/// A private scratch directory (mode 0700) under the system's temporary directory, removed
/// with everything in it when dropped: where stdin is spooled and stdout staged.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn create() -> Result<ScratchDir> {
        let base = std::env::temp_dir();
        remove_dead_scratch(&base);
        let mut last = None;
        for _ in 0..16 {
            let path = base.join(format!(
                "cloakline-{}-{:08x}{:08x}",
                std::process::id(),
                pid_namespace().unwrap_or(0),
                rand::random::<u32>()
            ));
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            match b.create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::io(
            &base,
            last.unwrap_or_else(|| std::io::Error::other("no free scratch directory name")),
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The low 32 bits of this process's pid namespace (Linux), which scratch names carry: a pid
/// is only meaningful in its namespace, and containers sharing a temporary directory each
/// have their own.
fn pid_namespace() -> Option<u32> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    let inode = text.strip_prefix("pid:[")?.strip_suffix(']')?;
    inode.parse::<u64>().ok().map(|i| i as u32)
}

/// Scratch directories of runs that were killed (`cloakline-<pid>-<8 hex namespace><8 hex>`
/// whose process is gone from this pid namespace): they may hold fetched input, so the next
/// run removes them. Linux only (`/proc`); elsewhere, or from another namespace (another
/// container sharing the directory, whose pids this one cannot see), nothing is removed.
#[cfg(not(unix))]
fn remove_dead_scratch(_base: &Path) {}

#[cfg(unix)]
fn remove_dead_scratch(base: &Path) {
    let proc = Path::new("/proc");
    let Some(ns) = pid_namespace() else {
        return;
    };
    let ours = format!("{ns:08x}");
    // `/proc/self` belongs to this process's user.
    let my_uid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("cloakline-")) else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once('-') else {
            continue;
        };
        let well_formed = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && tail.len() == 16
            && tail.bytes().all(|b| b.is_ascii_hexdigit())
            && tail[..8] == ours;
        // Only directories as cloakline makes them (not links; owned by this user, mode 0700),
        // of processes that no longer exist.
        let made_by_us = std::fs::symlink_metadata(entry.path()).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.mode() & 0o777 == 0o700 && Some(m.uid()) == my_uid
        });
        if well_formed && made_by_us && !proc.join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Copy standard input into `dest` (created), returning the bytes copied.
pub fn spool_stdin(dest: &Path) -> Result<u64> {
    let mut f = std::fs::File::create(dest).map_err(|e| Error::io(dest, e))?;
    let n =
        std::io::copy(&mut std::io::stdin().lock(), &mut f).map_err(|e| Error::io("<stdin>", e))?;
    f.sync_all().map_err(|e| Error::io(dest, e))?;
    Ok(n)
}

/// Copy the file at `src` to standard output.
pub fn copy_to_stdout(src: &Path) -> Result<u64> {
    let mut f = open_file(src)?;
    let mut out = std::io::stdout().lock();
    let n = std::io::copy(&mut f, &mut out).map_err(|e| Error::io("<stdout>", e))?;
    std::io::Write::flush(&mut out).map_err(|e| Error::io("<stdout>", e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn only_dead_runs_scratch_directories_are_removed() {
        let base = tempfile::tempdir().unwrap();
        let b = base.path();
        let ns = format!("{:08x}", super::pid_namespace().unwrap());
        // No process has this pid (above Linux's pid_max limit of 2^22).
        let dead = b.join(format!("cloakline-99999999-{ns}89abcdef"));
        let alive = b.join(format!("cloakline-{}-{ns}89abcdef", std::process::id()));
        let user = b.join("cloakline-99999999-notours");
        let file = b.join(format!("cloakline-99999999-{ns}76543210"));
        // Another pid namespace's run (a container sharing the directory): its pid means
        // nothing here, so it is kept.
        let other = if ns == "00000001" {
            "00000002"
        } else {
            "00000001"
        };
        let foreign = b.join(format!("cloakline-99999999-{other}89abcdef"));
        // Named like a dead run's, but not as cloakline makes them (mode 0755).
        let loose = b.join(format!("cloakline-99999997-{ns}89abcdef"));
        for d in [&dead, &alive, &user, &foreign, &loose] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("x"), "x").unwrap();
            let mode = if d == &loose { 0o755 } else { 0o700 };
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .unwrap();
        }
        std::fs::write(&file, "a user's file").unwrap();
        // A link named like a dead run's directory, pointing at a user's directory.
        let target = b.join("users-data");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let link = b.join(format!("cloakline-99999998-{ns}89abcdef"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        super::remove_dead_scratch(b);
        assert!(!dead.exists(), "a dead run's scratch is removed");
        assert!(alive.join("x").exists(), "a live run's is kept");
        assert!(user.join("x").exists(), "a name not ours is kept");
        assert!(foreign.join("x").exists(), "another namespace's is kept");
        assert!(
            loose.join("x").exists(),
            "a directory cloakline did not make is kept"
        );
        assert!(file.exists(), "a file is kept");
        assert!(
            target.join("keep").exists() && link.exists(),
            "a link is not followed"
        );
    }

    use super::*;

    #[test]
    fn a_scratch_dir_removes_only_the_fresh_directory_it_made() {
        let a = ScratchDir::create().unwrap();
        let b = ScratchDir::create().unwrap();
        assert_ne!(a.path(), b.path(), "each scratch directory is new");
        std::fs::write(a.path().join("stdin.csv"), "x").unwrap();
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        let parent = pa.parent().unwrap().to_path_buf();
        drop(a);
        assert!(!pa.exists(), "its own directory is removed");
        assert!(pb.exists() && parent.exists(), "nothing else is touched");
        drop(b);
        assert!(!pb.exists());
    }
}

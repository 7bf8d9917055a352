//! The commit protocol: files staged under temporary names beside their destination,
//! renamed into place together or not at all; the output lock; stale temporaries.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The directory `dest` goes into (`.` for a bare name).
pub(super) fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden sibling of `dest`: `.NAME.cloakline-KIND-PID-RANDOM` (`.NAME.cloakline-lock` when
/// `unique` is false). Built from the raw name, so a non-UTF-8 name stays as it is.
pub(super) fn sibling(dest: &Path, kind: &str, unique: bool) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dest.file_name().unwrap_or(std::ffi::OsStr::new("output")));
    name.push(".cloakline-");
    name.push(kind);
    if unique {
        name.push(format!(
            "-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
    }
    parent_dir(dest).join(name)
}

/// A temporary name beside `dest` for this process.
pub(crate) fn temp_sibling(dest: &Path) -> PathBuf {
    sibling(dest, "tmp", true)
}

/// Directories created for an output; removed again (when still empty) unless kept.
pub struct CreatedDirs {
    dirs: Vec<PathBuf>,
}

impl CreatedDirs {
    /// Create the missing parent directories of `dest`.
    pub fn for_output(dest: &Path) -> Result<CreatedDirs> {
        let dir = parent_dir(dest);
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        let mut created = CreatedDirs { dirs: Vec::new() };
        for d in missing {
            std::fs::create_dir(&d).map_err(|e| Error::io(&d, e))?;
            created.dirs.push(d);
        }
        Ok(created)
    }

    /// The run succeeded: keep them.
    pub fn keep(mut self) {
        self.dirs.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A file written under a temporary name and renamed into place on [`commit`](Self::commit).
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
    committed: bool,
    /// Synced to disk before the rename (not for a scratch copy that is uploaded and
    /// deleted: the store holds the durable copy).
    durable: bool,
}

impl AtomicFile {
    /// A scratch copy: staged without waiting for the disk.
    #[must_use]
    pub fn scratch(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Create a temporary file beside `dest`, creating missing parent directories.
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(dest);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let tmp = temp_sibling(dest);
        let file = File::create_new(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
            committed: false,
            durable: true,
        })
    }

    /// The open temporary file.
    pub fn file(&self) -> Result<File> {
        match &self.file {
            Some(f) => f.try_clone().map_err(|e| Error::io(&self.tmp, e)),
            None => Err(Error::io(
                &self.tmp,
                std::io::Error::other("already closed"),
            )),
        }
    }

    /// Path of the temporary file (to hash it before commit).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flush to disk; [`commit_all`] renames it into place with the run's other outputs.
    pub fn stage(mut self) -> Result<Staged> {
        if let Some(f) = self.file.take()
            && self.durable
        {
            f.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        }
        self.committed = true;
        Ok(Staged::new(self.tmp.clone(), self.dest.clone()))
    }

    /// Flush to disk and rename into place.
    pub fn commit(self) -> Result<()> {
        commit_all(vec![self.stage()?])
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A finished temporary file or directory waiting to be renamed onto its destination.
/// Dropping it uncommitted deletes it.
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    placed: bool,
}

impl Staged {
    pub fn new(tmp: PathBuf, dest: PathBuf) -> Staged {
        Staged {
            tmp,
            dest,
            placed: false,
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.placed {
            remove_entry(&self.tmp);
        }
    }
}

/// Remove a file, a link or a directory tree (a link is removed, not followed).
pub(super) fn remove_entry(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// What stood at a destination before the commit.
pub(super) struct Previous {
    backup: PathBuf,
    /// Renamed away (directories) rather than hard-linked (files, which stay in place).
    moved: bool,
}

/// Keep the current `dest` (if any) under a backup name until the commit is over.
pub(super) fn keep_aside(dest: &Path) -> Result<Option<Previous>> {
    let meta = match std::fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(dest, e)),
    };
    let backup = sibling(dest, "old", true);
    if !meta.is_dir() && std::fs::hard_link(dest, &backup).is_ok() {
        return Ok(Some(Previous {
            backup,
            moved: false,
        }));
    }
    std::fs::rename(dest, &backup).map_err(|e| Error::io(dest, e))?;
    Ok(Some(Previous {
        backup,
        moved: true,
    }))
}

/// Put `dest` back as it was: the staged item returns to its temporary name (deleted on drop)
/// and the previous file or directory to `dest`.
pub(super) fn restore(s: &Staged, prev: Option<&Previous>, placed: bool) {
    match prev {
        Some(p) if !p.moved => {
            // A file that never left: renaming the backup over `dest` restores it atomically.
            if placed {
                let _ = std::fs::rename(&p.backup, &s.dest);
            } else {
                let _ = std::fs::remove_file(&p.backup);
            }
        }
        _ => {
            if placed {
                let _ = std::fs::rename(&s.dest, &s.tmp);
            }
            if let Some(p) = prev {
                let _ = std::fs::rename(&p.backup, &s.dest);
            }
        }
    }
}

/// Rename every staged output into place, all or none: what stood at each destination is kept
/// aside first and put back if a later rename fails, so a run never leaves data without its
/// sidecar, nor a sidecar describing other data.
pub fn commit_all(mut staged: Vec<Staged>) -> Result<()> {
    let mut prev: Vec<Option<Previous>> = Vec::new();
    for s in &staged {
        match keep_aside(&s.dest) {
            Ok(p) => prev.push(p),
            Err(e) => {
                for (s, p) in staged.iter().zip(&prev) {
                    restore(s, p.as_ref(), false);
                }
                return Err(e);
            }
        }
    }
    for (i, item) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(&item.tmp, &item.dest) {
            for (k, (s, p)) in staged.iter().zip(&prev).enumerate() {
                restore(s, p.as_ref(), k < i);
            }
            return Err(Error::io(&item.dest, e));
        }
    }
    for (s, p) in staged.iter_mut().zip(prev) {
        s.placed = true;
        if let Some(p) = p {
            remove_entry(&p.backup);
        }
        // Make the renames durable (best effort: not every platform can sync a directory).
        if let Ok(d) = File::open(parent_dir(&s.dest)) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// An exclusive lock beside an output, held for a run: a second run on the same output fails
/// at once instead of pairing its data with the other run's sidecar. The lock file is removed
/// when the lock is released.
pub struct OutputLock {
    path: PathBuf,
    _file: Option<File>,
}

impl OutputLock {
    pub fn acquire(dest: &Path) -> Result<OutputLock> {
        let path = sibling(dest, "lock", false);
        for _ in 0..16 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::io(
                        dest,
                        std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "another cloakline run is writing this output (it holds {}); \
                                 wait for it to finish or choose another output",
                                path.display()
                            ),
                        ),
                    ));
                }
                // No locking on this file system: run unlocked rather than not at all.
                Err(std::fs::TryLockError::Error(e))
                    if e.kind() == std::io::ErrorKind::Unsupported =>
                {
                    return Ok(OutputLock { path, _file: None });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            // The previous holder removes the file as it finishes; a lock on a removed file
            // guards nothing, so lock the file now at the path instead.
            if same_inode(&file, &path) {
                return Ok(OutputLock {
                    path,
                    _file: Some(file),
                });
            }
        }
        Err(Error::io(
            &path,
            std::io::Error::other("the lock file keeps being replaced; retry"),
        ))
    }
}

#[cfg(unix)]
pub(super) fn same_inode(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
pub(super) fn same_inode(_: &File, path: &Path) -> bool {
    path.exists()
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so nobody locks a file that is about to vanish.
        if self._file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Clean up after runs that were killed (kill -9, power loss, an allocation abort) while
/// writing `dest`: their temporary files and directories are removed, and a previous output
/// they had set aside mid-commit is put back when `dest` is missing. Only entries of processes
/// that no longer exist are touched; without `/proc` nothing is. Call it holding the
/// [`OutputLock`] of `dest`.
pub fn remove_stale_temps(dest: &Path) -> Result<()> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return Ok(());
    }
    let dir = parent_dir(dest);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(dest.file_name().unwrap_or(std::ffi::OsStr::new("output")));
    prefix.push(".cloakline-");
    let prefix = prefix.as_encoded_bytes().to_vec();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.as_encoded_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let (old, rest) = match (rest.strip_prefix(b"tmp-"), rest.strip_prefix(b"old-")) {
            (Some(r), _) => (false, r),
            (_, Some(r)) => (true, r),
            _ => continue,
        };
        let Some((pid, tail)) = std::str::from_utf8(rest)
            .ok()
            .and_then(|r| r.split_once('-'))
        else {
            continue;
        };
        let well_formed = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && tail.len() == 8
            && tail.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed || proc.join(pid).exists() {
            continue;
        }
        let path = entry.path();
        if old && std::fs::symlink_metadata(dest).is_err() {
            std::fs::rename(&path, dest).map_err(|e| Error::io(dest, e))?;
        } else {
            remove_entry(&path);
        }
    }
    Ok(())
}

/// Write a small file atomically through a closure.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let af = AtomicFile::create(path)?;
    let mut f = af.file()?;
    write(&mut f).map_err(|e| Error::io(path, e))?;
    drop(f);
    af.commit()
}

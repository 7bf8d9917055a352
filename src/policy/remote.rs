//! A policy read from an object store (`--policy s3://…/p.yaml`). Its hierarchy files are
//! read from beside it: relative paths only, so a policy in a bucket reaches neither other
//! buckets nor local files. Everything is brought to a scratch directory and loaded as a
//! local policy; the policy and its hierarchies are then named by their URLs.

use std::path::{Component, Path};
use std::sync::Arc;

use super::hierarchy::MAX_HIERARCHY_BYTES;
use super::load::problems_error;
use super::{HierarchySource, Policy, PolicyProblem};
use crate::error::{Error, Result};
use crate::io::store::{Remote, StorageOptions, relocate};
use crate::io::{Location, ScratchDir};

/// Larger than any policy written by hand or generated from a schema.
use super::MAX_POLICY_BYTES;

impl Policy {
    /// Load a policy from a local path or a URL (its `hierarchy:` files read from beside it).
    pub async fn load_at(loc: &Location, storage: &StorageOptions) -> Result<Policy> {
        Self::load_at_collecting(loc, storage)
            .await?
            .map_err(|(source, ps)| problems_error(&source, ps))
    }

    /// [`Policy::load_at`] with every problem of the policy (as `validate` lists them); the
    /// outer error is a store failure.
    #[allow(clippy::type_complexity)]
    pub async fn load_at_collecting(
        loc: &Location,
        storage: &StorageOptions,
    ) -> Result<std::result::Result<Policy, (String, Vec<PolicyProblem>)>> {
        let url = match loc {
            Location::Local(p) => {
                return Ok(Policy::load_collecting(p).map_err(|ps| (p.display().to_string(), ps)));
            }
            Location::Url(u) => u,
        };
        let remote = Remote::open(url, storage)?;
        let shown = remote.shown();
        let (bytes, _) = remote.read_small(MAX_POLICY_BYTES).await?;
        let scratch = ScratchDir::create()?;
        let dir = scratch.path().join("policy");
        let name = shown
            .rsplit('/')
            .next()
            .filter(|n| plain_relative(n))
            .unwrap_or("policy.yaml");
        let beside = shown.rsplit_once('/').map(|(p, _)| p).unwrap_or(&shown);
        // What cannot be scanned for hierarchy files is not loaded: the loader could still
        // find one, and it must never be a local file.
        let Some(files) = hierarchy_files(&bytes) else {
            return Err(Error::Usage(format!(
                "{shown}: not a YAML policy cloakline can read from a store (it does not \
                 parse; check it with `cloakline validate` on a local copy)"
            )));
        };
        for rel in files {
            if !plain_relative(&rel) {
                return Err(Error::Usage(format!(
                    "{shown}: hierarchy file {rel}: a policy read from a URL names its \
                     hierarchy files by relative paths beside it (no `..`, no absolute path, \
                     no URL); move the file next to the policy"
                )));
            }
            let object = remote.at(&format!("{beside}/{rel}"))?;
            let (b, _) = object.read_small(MAX_HIERARCHY_BYTES).await?;
            let local = dir.join(&rel);
            if let Some(parent) = local.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&local, &b).map_err(|e| Error::io(&local, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let local = dir.join(name);
        std::fs::write(&local, &bytes).map_err(|e| Error::io(&local, e))?;
        let from = dir.display().to_string();
        let policy = match Policy::load_collecting(&local) {
            Ok(p) if !reaches_outside(&p, &dir) => p,
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{shown}: a hierarchy file lies outside the policy's location; a policy \
                     read from a URL names its hierarchy files by relative paths beside it"
                )));
            }
            Err(mut ps) => {
                for p in &mut ps {
                    p.message = relocate(&p.message, &from, beside);
                }
                return Ok(Err((shown, ps)));
            }
        };
        Ok(Ok(named_by_urls(policy, &shown, &from, beside)))
    }
}

/// The policy and its hierarchy files named by their URLs, not their scratch copies.
fn named_by_urls(mut policy: Policy, shown: &str, from: &str, to: &str) -> Policy {
    policy.source = shown.to_string();
    if let Some(spec) = &mut policy.privacy {
        for q in &mut spec.quasi_identifiers {
            if let HierarchySource::File(h) = &mut q.hierarchy
                && let Some(h) = Arc::get_mut(h)
            {
                h.path = relocate(&h.path, from, to);
            }
        }
    }
    policy
}

/// Whether a loaded policy's hierarchy files lie anywhere but below `dir`.
fn reaches_outside(policy: &Policy, dir: &Path) -> bool {
    let Ok(root) = dir.canonicalize() else {
        return true;
    };
    policy.privacy.iter().any(|spec| {
        spec.quasi_identifiers.iter().any(|q| match &q.hierarchy {
            HierarchySource::File(h) => !Path::new(&h.path)
                .canonicalize()
                .is_ok_and(|p| p.starts_with(&root)),
            _ => false,
        })
    })
}

/// A relative path that stays below its base: normal components only.
fn plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.contains(['\\', '\0', ':'])
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The `hierarchy:` paths of a policy's privacy block, read leniently (the loader reports
/// what is wrong with the policy itself).
fn hierarchy_files(bytes: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let doc = serde_saphyr::from_str::<serde_json::Value>(text).ok()?;
    let mut v: Vec<String> = doc
        .get("privacy")
        .and_then(|p| p.get("quasi_identifiers"))
        .and_then(|q| q.as_object())
        .map(|q| {
            q.values()
                .filter_map(|s| s.get("hierarchy").and_then(|h| h.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup();
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchy_paths_are_found_and_only_plain_relative_ones_pass() {
        let y = b"privacy:\n  quasi_identifiers:\n    age: { hierarchy: h/age.csv }\n    sex: { levels: [] }\n    zip: { hierarchy: ../x.csv }\n";
        assert_eq!(hierarchy_files(y).unwrap(), ["../x.csv", "h/age.csv"]);
        assert!(plain_relative("h/age.csv"));
        for bad in [
            "../x.csv",
            "/etc/passwd",
            "s3://b/k",
            "a/../../b",
            "",
            "C:\\x",
        ] {
            assert!(!plain_relative(bad), "{bad}");
        }
        // What does not parse is refused, not loaded unchecked.
        assert!(hierarchy_files(b"\xff").is_none());
        assert!(hierarchy_files(b"fields: [").is_none());
    }
}

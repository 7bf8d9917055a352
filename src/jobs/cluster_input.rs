//! Tables a cluster reads in place (`sql --cluster`, `check --cluster`): listed here, where
//! the record needs their objects (URL, ETag, size), and registered by URL, so each executor
//! reads its part through its own stores.

use std::path::Path;

use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::io::store::{Listed, Remote, SIDECAR_SUFFIX, StorageOptions};
use crate::io::{Format, ReadOptions};
use crate::policy::Policy;

/// A URL table as listed before the cluster reads it.
pub(crate) struct ListedTable {
    /// Whether the URL names one object (not a prefix).
    pub object: bool,
    pub objects: Vec<Listed>,
}

impl ListedTable {
    /// The Hive partition keys (`year=2025/…`) every object lies under, in order; the same
    /// for every object, or an error (a table is one layout). `url` is the listed location.
    fn partition_keys(&self, what: &str, url: &str) -> Result<Vec<String>> {
        if self.object {
            return Ok(Vec::new());
        }
        let base = format!("{}/", url.trim_end_matches('/'));
        let mut keys: Option<Vec<String>> = None;
        for o in &self.objects {
            let rel = o.shown.strip_prefix(&base).unwrap_or(&o.shown);
            let dirs: Vec<&str> = rel.split('/').collect();
            let these: Vec<String> = dirs[..dirs.len().saturating_sub(1)]
                .iter()
                .filter_map(|d| d.split_once('=').map(|(k, _)| k.to_string()))
                .collect();
            match &keys {
                None => keys = Some(these),
                Some(k) if *k == these => {}
                Some(_) => {
                    return Err(Error::Usage(format!(
                        "{what}: its objects lie under different partition directories \
                         (key=value/ in some, other keys or none in others); a table is one \
                         layout"
                    )));
                }
            }
        }
        Ok(keys.unwrap_or_default())
    }
}

/// What every object's name ends with after its stem (`csv.gz`, `parquet`).
fn extension(o: &Listed) -> Option<String> {
    o.shown
        .rsplit('/')
        .next()
        .and_then(|n| n.split_once('.'))
        .map(|(_, e)| e.to_string())
}

/// List the data objects at `url` (sidecars left out). `what` names the table in messages
/// (`--table t`, `--input`).
pub(crate) async fn list(what: &str, url: &str, storage: &StorageOptions) -> Result<ListedTable> {
    let (object, objects) = Remote::open(url, storage)?
        .list_data(|p| {
            Format::from_path(p).is_some() && !p.to_string_lossy().ends_with(SIDECAR_SUFFIX)
        })
        .await?;
    // The executors read every object of the one extension DataFusion is given: what is
    // recorded must be exactly that.
    if let Some(first) = objects.first()
        && objects.iter().any(|o| extension(o) != extension(first))
    {
        return Err(Error::Usage(format!(
            "{what}: its objects have different extensions; on a cluster a table is objects \
             of one format and extension"
        )));
    }
    Ok(ListedTable { object, objects })
}

/// Register `url` as table `name` in a cluster client's session.
pub(crate) async fn register(
    ctx: &SessionContext,
    name: &str,
    what: &str,
    url: &str,
    table: &ListedTable,
    policy: Option<&Policy>,
    read: &ReadOptions,
) -> Result<()> {
    let first = table.objects.first();
    let format = first
        .and_then(|o| Format::from_path(Path::new(&o.shown)))
        .ok_or_else(|| Error::Usage(format!("{what}: cannot tell its format")))?;
    // DataFusion infers CSV/NDJSON types itself: the policy's `type:` overrides would not
    // hold, and tokens of `02134` read as 2134 differ.
    let overrides = policy.is_some_and(|p| p.fields.values().any(|f| f.input_type.is_some()));
    if format != Format::Parquet && overrides {
        return Err(Error::Usage(format!(
            "{what}: on a cluster a CSV or NDJSON table is read with DataFusion's inferred \
             types, and the policy declares `type:` overrides; give the table as Parquet (or \
             as a path every executor sees)"
        )));
    }
    if format != Format::Parquet && read.all_strings {
        return Err(Error::Usage(format!(
            "{what}: --all-strings: on a cluster a CSV or NDJSON table is read with \
             DataFusion's inferred types; give the table as Parquet (or as a path every \
             executor sees)"
        )));
    }
    // A prefix is read as a directory of files of that format.
    let url = match !table.object && !url.ends_with('/') {
        true => format!("{url}/"),
        false => url.to_string(),
    };
    let ext = first.and_then(extension).unwrap_or_default();
    // Partition keys are columns, as for a local directory: the policy must cover them.
    let partitions = table.partition_keys(what, &url)?;
    crate::sql::tables::register_url(ctx, name, &url, format, &ext, read, &partitions).await
}

/// Whether two listings name the same objects, of the same sizes, ETags and versions.
fn same_objects(a: &[Listed], b: &[Listed]) -> bool {
    let key = |o: &Listed| (o.shown.clone(), o.e_tag.clone(), o.version.clone(), o.size);
    let mut x: Vec<_> = a.iter().map(key).collect();
    let mut y: Vec<_> = b.iter().map(key).collect();
    x.sort();
    y.sort();
    x == y
}

/// Fail unless the objects at `url` are still those listed before the cluster read them:
/// executors read by ranges, unpinned, so an object replaced meanwhile could give a result
/// mixing two versions. Checked after the query, before anything is kept.
pub(crate) async fn unchanged(
    what: &str,
    url: &str,
    storage: &StorageOptions,
    before: &[Listed],
) -> Result<()> {
    let now = list(what, url, storage).await?;
    if same_objects(before, &now.objects) {
        return Ok(());
    }
    Err(Error::Storage {
        location: Remote::open(url, storage)?.shown(),
        message: format!(
            "{what}: its objects changed while the cluster read them (added, removed or \
             replaced since they were listed), so the result could mix two versions; nothing \
             was kept: run again once the table is stable"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(name: &str, e_tag: Option<&str>, size: u64) -> Listed {
        Listed {
            shown: format!("s3://b/t/{name}"),
            rel: name.to_string(),
            e_tag: e_tag.map(str::to_string),
            version: None,
            size,
        }
    }

    #[test]
    fn listings_match_in_any_order_and_differ_on_any_change() {
        let a = vec![
            o("1.parquet", Some("e1"), 10),
            o("2.parquet", Some("e2"), 20),
        ];
        let reordered = vec![a[1].clone(), a[0].clone()];
        assert!(same_objects(&a, &reordered));
        let replaced = vec![o("1.parquet", Some("e9"), 10), a[1].clone()];
        assert!(!same_objects(&a, &replaced), "a new ETag is a new object");
        let resized = vec![o("1.parquet", None, 11), a[1].clone()];
        assert!(!same_objects(&a, &resized));
        let added = vec![a[0].clone(), a[1].clone(), o("3.parquet", Some("e3"), 1)];
        assert!(!same_objects(&a, &added));
        assert!(!same_objects(&a, &a[..1]), "a removed object");
    }
}

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
    crate::sql::tables::register_url(ctx, name, &url, format, &ext, read).await
}

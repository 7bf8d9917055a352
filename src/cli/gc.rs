//! `cloakline gc`: the leftovers of a killed run in an object store.

use super::*;

#[derive(Args)]
pub(crate) struct GcArgs {
    /// The output URL the dead run wrote (`s3://share/customers/`).
    output: String,
    /// Leave a lock younger than this many seconds: its run may still be going (a lock has
    /// no heartbeat, so the default is a day; pass less once you know the run is dead).
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    older_than: u64,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

pub(crate) fn run(g: GcArgs) -> Result<()> {
    let cloakline::io::Location::Url(url) = cloakline::io::Location::parse(&g.output) else {
        return Err(Error::Usage(
            "gc works on object-store URLs; a local run never leaves its temporary files \
             behind past the next run to the same output"
                .into(),
        ));
    };
    let remote = cloakline::io::store::Remote::open(&url, &storage())?;
    let removed = runtime()?.block_on(cloakline::io::store::gc(
        &remote,
        std::time::Duration::from_secs(g.older_than),
        g.dry_run,
    ))?;
    let verb = if g.dry_run { "would remove" } else { "removed" };
    for r in &removed {
        outln!("{verb} {r}");
    }
    errln!(
        "{verb} {} object(s) under {}",
        removed.len(),
        remote.shown()
    );
    Ok(())
}

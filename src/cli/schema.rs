//! `cloakline schema`: the policy format's JSON Schema.

use super::*;

pub(crate) fn run() -> Result<()> {
    outln!(
        "{}",
        serde_json::to_string_pretty(&cloakline::policy::json_schema()).unwrap_or_default()
    );
    Ok(())
}

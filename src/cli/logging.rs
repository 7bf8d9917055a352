//! Log output on stderr, through `tracing`. Levels come from `-q` (errors only) and `-v`
//! (info, debug, trace), else from `CLOAKLINE_LOG` (or `RUST_LOG`): a level (`debug`) or
//! `target=level` directives (`cloakline::jobs=debug,warn`). Events name files, counts and
//! phases, never a data value or key material.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

use super::{Error, Result};

/// Install the stderr logger. An unreadable `CLOAKLINE_LOG` is a usage error; an unreadable
/// `RUST_LOG` (it may be meant for another program's richer syntax) is ignored with a warning.
pub(crate) fn init(quiet: bool, verbose: u8) -> Result<()> {
    let level = |l| Targets::new().with_default(l);
    let mut ignored_rust_log = false;
    let targets = if quiet {
        level(LevelFilter::ERROR)
    } else if verbose > 0 {
        level(match verbose {
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    } else if let Some(spec) = env("CLOAKLINE_LOG") {
        Targets::from_str(&spec).map_err(|e| {
            Error::Usage(format!(
                "CLOAKLINE_LOG: {e}; give a level (error, warn, info, debug, trace) or \
                 target=level directives separated by commas, e.g. `cloakline::jobs=debug,warn`"
            ))
        })?
    } else if let Some(spec) = env("RUST_LOG") {
        Targets::from_str(&spec).unwrap_or_else(|_| {
            ignored_rust_log = true;
            level(LevelFilter::WARN)
        })
    } else {
        level(LevelFilter::WARN)
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true);
    // Fails only when a logger is installed already (never in this binary).
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(targets))
        .try_init();
    if ignored_rust_log {
        tracing::warn!(
            "RUST_LOG is not a list of target=level directives; ignored (cloakline reads CLOAKLINE_LOG first)"
        );
    }
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.trim().is_empty())
}

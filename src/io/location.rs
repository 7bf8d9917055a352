//! Where data is: a local path today, a URL (`s3://…`, `gs://…`, `az://…`, `file://…`) once
//! object stores are wired in. Every job builder takes its inputs and outputs as a
//! [`Location`], so adding storage changes this type, not the jobs' signatures.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file or directory to read or write.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A path on the local file system.
    Local(PathBuf),
    /// A URL with a scheme other than `file`.
    Url(String),
}

impl Location {
    /// Parse command-line text: `scheme://…` is a URL (`file://` a local path), anything else a
    /// path.
    pub fn parse(text: &str) -> Location {
        if let Some(path) = text.strip_prefix("file://") {
            return Location::Local(PathBuf::from(path));
        }
        let scheme = text.split_once("://").map(|(s, _)| s);
        match scheme {
            Some(s)
                if !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Location::Url(text.to_string())
            }
            _ => Location::Local(PathBuf::from(text)),
        }
    }

    /// The local path, or a usage error for a URL: object stores are not wired in yet.
    pub fn local(&self) -> Result<&Path> {
        match self {
            Location::Local(p) => Ok(p),
            Location::Url(u) => Err(Error::Usage(format!(
                "{}: this build reads and writes local files only; copy the data to a local \
                 path first",
                redact_url(u)
            ))),
        }
    }

    /// A local path (a URL is not one).
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Url(_) => None,
        }
    }
}

/// A URL as shown in messages: without user info (`user:secret@`) or query (`?sig=…`).
pub(crate) fn redact_url(u: &str) -> String {
    let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    // `abfss://container@account…` names the container, not a user: kept unless it holds a
    // password (`user:secret@`).
    let keep_user = matches!(scheme, "abfs" | "abfss");
    let host_of = |h: &str| match h.rsplit_once('@') {
        Some((user, host)) if keep_user && !user.contains(':') => format!("{user}@{host}"),
        Some((_, host)) => host.to_string(),
        None => h.to_string(),
    };
    let rest = match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", host_of(host)),
        None => host_of(rest),
    };
    format!("{scheme}://{rest}")
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Url(u) => f.write_str(&redact_url(u)),
        }
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Self {
        Location::Local(p.clone())
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}

impl From<&str> for Location {
    fn from(s: &str) -> Self {
        Location::parse(s)
    }
}

impl From<String> for Location {
    fn from(s: String) -> Self {
        Location::parse(&s)
    }
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Location::parse(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            Location::parse("out/a.parquet"),
            Location::Local("out/a.parquet".into())
        );
        assert_eq!(
            Location::parse("file:///tmp/a.csv"),
            Location::Local("/tmp/a.csv".into())
        );
        assert!(matches!(
            Location::parse("s3://bucket/key.parquet"),
            Location::Url(_)
        ));
        // A colon in a file name is not a scheme.
        assert_eq!(
            Location::parse("a:b.csv"),
            Location::Local("a:b.csv".into())
        );
        assert_eq!(Location::parse("://x"), Location::Local("://x".into()));
    }

    #[test]
    fn a_url_is_refused_without_its_credentials() {
        let l = Location::parse("s3://AKIA:secret@bucket/k.parquet?X-Amz-Signature=abc");
        let e = l.local().unwrap_err().to_string();
        assert!(e.contains("s3://bucket/k.parquet"), "{e}");
        assert!(!e.contains("secret") && !e.contains("Signature"), "{e}");
        assert!(!e.contains("AKIA"), "{e}");
    }
}

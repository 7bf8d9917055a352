//! Integration tests, built as one binary.

mod cli;
mod cli_usage;
#[cfg(feature = "cluster")]
mod cluster;
mod compliance;
mod consent;
mod custom_transform;
mod examples;
mod formats;
mod fpe_siv;
mod hostile_cli;
mod hostile_compliance;
mod hostile_io;
mod hostile_kernels;
mod interop;
mod keyring_wrap;
mod layers;
mod library;
mod partitions;
mod privacy;
mod privacy_search;
mod props;
mod report;
mod scan;
mod signing;
mod sql;
mod sqllogic;
mod storage;
mod storage_azure;
mod subject;
mod util;
mod validate;
mod vectors;

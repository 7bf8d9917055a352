//! Integration tests, built as one binary.

mod cli;
mod compliance;
mod custom_transform;
mod hostile_cli;
mod hostile_compliance;
mod hostile_io;
mod hostile_kernels;
mod interop;
mod layers;
mod library;
mod privacy;
mod props;
mod report;
mod scan;
mod sql;
mod sqllogic;
mod util;
mod vectors;

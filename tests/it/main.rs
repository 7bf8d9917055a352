//! Integration tests, built as one binary.

mod cli;
mod interop;
mod sql;
mod sqllogic;
mod util;
mod vectors;

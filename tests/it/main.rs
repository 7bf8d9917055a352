//! Integration tests, built as one binary.

mod cli;
mod interop;
mod util;
mod vectors;

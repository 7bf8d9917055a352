//! Integration tests, built as one binary.

mod cli;
mod util;
mod vectors;

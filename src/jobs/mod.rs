//! The jobs a user runs: each reads locations, drives the layers below and reports what it
//! did. The CLI, SQL and Python doors call these; jobs do not call each other.

pub mod apply;
pub mod check;
mod cluster_input;
pub mod decrypt;
pub mod report;
pub mod scan;
pub mod sql;
pub mod verify;

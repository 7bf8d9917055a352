//! The cluster door: cloakline's SQL functions and policy views on Apache DataFusion
//! Ballista (docs/CLUSTER.md).
//!
//! - [`run_scheduler`] starts Ballista's scheduler with cloakline's functions in its session
//!   and **no key material**: it plans with [`Keyring::planning_only`].
//! - [`run_executor`] starts an executor whose function registry and codec build every
//!   keyed transform from the executor's **own** keyring.
//! - [`connect`] gives a client `SessionContext` that runs its queries on a scheduler.
//!
//! Only key ids travel in plans: the named functions go by name with their key-id literals,
//! a policy view's columns as a [`crate::sql::ColumnSpec`] (policy text, column, types).
//! Object stores are built in every process from its own environment and
//! `--storage-option`s ([`StoreRegistry`]); credentials never travel either.

mod codec;
mod process;
mod stores;

pub use codec::{LogicalCodec, NodeCodec, PhysicalCodec};
pub use process::{
    ExecutorOptions, SchedulerOptions, connect, run_executor, run_scheduler, submit_physical,
};
pub use stores::StoreRegistry;

#[cfg(doc)]
use crate::keys::Keyring;

//! HAD, the High Availability Daemon of the cluster.
//!
//! This crate owns the VCS configuration language — `main.cf` and
//! `types.cf`: lexing, parsing into a span-carrying model, and writing the
//! model back in the shape `haconf -dump` writes ([`cf`]) — and, later, the
//! sans-IO engine that decides where service groups run.
//!
//! What it never does: I/O other than reading configuration files (and
//! that only through a [`cf::Loader`], so tests read from memory), and no
//! sockets: talking to GAB, agents and the ha* commands belongs to the
//! daemon that drives this crate.

pub mod cf;
pub mod config;
pub mod engine;
pub mod validate;
pub mod command;
pub mod sim;
pub mod hacf;

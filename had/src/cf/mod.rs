//! The VCS configuration language: `main.cf` (cluster, systems, service
//! groups, resources, dependencies) and `types.cf` (resource type
//! declarations).
//!
//! - [`lexer`] turns text into tokens (`//` and `/* */` comments dropped);
//! - [`parser`] builds the [`model`] and reports every syntax problem of a
//!   file in one pass as [`Diagnostic`]s (`file:line:column: expected ...`);
//!   [`load`] follows `include` lines through a [`Loader`];
//! - [`writer`] prints a model back deterministically, as `haconf -dump`
//!   does: parse → write → parse gives the same model, write → parse →
//!   write the same bytes.
//!
//! Only syntax is checked here. Whether an attribute exists for a type, or
//! a value has the declared type, is for a later validator: every name and
//! value keeps the [`Span`] it was read from so it can point at it.

pub mod diag;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod span;
pub mod writer;

pub use diag::{CfError, Diagnostic};
pub use model::*;
pub use parser::{load, load_with_diags, parse_str, parse_str_with_diags, FsLoader, Loader};
pub use span::{FileId, Span, Spanned};
pub use writer::{write_config, write_file};

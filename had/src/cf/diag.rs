//! Diagnostics: what went wrong, where, and what was expected instead.

use serde::Serialize;
use std::path::PathBuf;

/// One problem in a configuration file. Line and column are 1-based; both
/// are 0 when the problem is about the file as a whole (it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Every problem found while reading a configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct CfError(pub Vec<Diagnostic>);

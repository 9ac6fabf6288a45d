//! Where something was read: which file, which line, which column.

use serde::Serialize;
use std::ops::Deref;

/// Index of a file in [`crate::cf::Config::files`]; 0 is the file loading
/// started from (main.cf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct FileId(pub u32);

/// A position in a configuration file. Line and column are 1-based; the
/// column counts characters (a tab is one), as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub column: u32,
}

/// A value and where it was written.
///
/// Equality looks at the value only: two configurations that say the same
/// thing are equal however they were laid out, which is what a round trip
/// through the writer preserves.
#[derive(Debug, Clone, Serialize)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.node
    }
}

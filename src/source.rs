//! Positions in the user's intent files. A module of its own because both the intent loader
//! (which records where every definition is written) and the diagnostics (which render a
//! position in front of every message) need it, and neither should depend on the other.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// A position in an intent file (1-based line and column), relative to the intents dir.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Loc {
    /// File path relative to the intents directory (e.g. `regions/eu/gdpr.yaml`).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

//! Diagnostics: errors and warnings about the user's input, each pointing into a file
//! (`file:line:column`, the file relative to the intents directory), with optional notes.
//!
//! This is the one place that renders them, so every command prints them the same way:
//!
//! ```text
//! error: regions/eu/gdpr.yaml:4:7: unknown flow `foo` in drop
//!   note: known flows: api-from-web, db-from-api
//! ```
//!
//! A [`Diagnostics`] collects *all* problems of a run (the loader never stops at the first
//! one) and sorts them by file, line and column so output is deterministic.

use crate::source::Loc;
use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is invalid; the command fails (exit 1).
    Error,
    /// Worth knowing; does not change the outcome.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, where it is, and notes that help fix it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the intents it is, if it has a place.
    pub loc: Option<Loc>,
    /// What is wrong, in one line.
    pub message: String,
    /// Further lines: related places, hints.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error at `loc`.
    pub fn error(loc: impl Into<Option<Loc>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            loc: loc.into(),
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A warning at `loc`.
    pub fn warning(loc: impl Into<Option<Loc>>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(loc, message)
        }
    }

    /// Add a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn sort_key(&self) -> impl Ord + '_ {
        (
            self.loc.is_some(),
            self.loc.as_ref(),
            self.severity,
            &self.message,
            &self.notes,
        )
    }
}

impl fmt::Display for Diagnostic {
    /// One line per message and note. Control characters that reached a message from the
    /// input (a file name, a hostile value) are shown escaped, so they can neither forge
    /// extra diagnostic lines nor drive the terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = format!("{}: ", self.severity);
        if let Some(loc) = &self.loc {
            line.push_str(&format!("{loc}: "));
        }
        line.push_str(&self.message);
        f.write_str(&escape_controls(&line))?;
        for n in &self.notes {
            write!(f, "\n  note: {}", escape_controls(n))?;
        }
        Ok(())
    }
}

/// `s` with control characters escaped (`\n`, `\u{1b}`).
fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A list of diagnostics (errors and warnings) from one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Self::default()
    }
    /// True when there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Add one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Add many.
    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(ds);
    }
    /// True when at least one is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }
    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }
    /// Iterate.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
    /// Sort by file, line, column (diagnostics without a place first), dropping exact
    /// duplicates (the same global problem seen from several deployments).
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.0.dedup();
    }
    /// Sorted copy, see [`Diagnostics::sort`].
    pub fn sorted(mut self) -> Self {
        self.sort();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        Diagnostics(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn loc(f: &str, l: usize, c: usize) -> Loc {
        Loc {
            file: PathBuf::from(f),
            line: l,
            column: c,
        }
    }

    #[test]
    fn renders_with_place_and_notes_sorted() {
        let mut d = Diagnostics::new();
        d.push(
            Diagnostic::error(
                loc("regions/eu/gdpr.yaml", 4, 7),
                "unknown flow `foo` in drop",
            )
            .with_note("known flows: a, b"),
        );
        d.push(Diagnostic::warning(loc("flows.yaml", 2, 3), "w"));
        d.push(Diagnostic::error(None, "no place"));
        d.push(Diagnostic::warning(loc("flows.yaml", 2, 3), "w"));
        d.sort();
        assert!(d.has_errors());
        assert_eq!(
            d.to_string(),
            "error: no place\nwarning: flows.yaml:2:3: w\nerror: regions/eu/gdpr.yaml:4:7: unknown flow `foo` in drop\n  note: known flows: a, b\n"
        );
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let d = Diagnostic::error(loc("a\nb.yaml", 1, 2), "unknown group `x\nerror: y`")
            .with_note("\u{1b}[2J");
        assert_eq!(
            d.to_string(),
            "error: a\\nb.yaml:1:2: unknown group `x\\nerror: y`\n  note: \\u{1b}[2J"
        );
    }
}

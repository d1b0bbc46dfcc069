//! The unit engine: reads unit files exactly as systemd 252+ reads them.
//!
//! Text goes through [`lexer`] into assignments, [`loader`] finds the files of
//! a unit (fragment, drop-ins, aliases, masks) on the search path, and the
//! directive table in [`directive`] turns assignments into the typed model of
//! [`model`]. This module is pure: it reads files and returns values or
//! errors that carry `file:line`. No sockets, no processes.

pub mod calendar;
pub mod directive;
pub mod lexer;
pub mod load;
pub mod loader;
pub mod name;
pub mod specifier;
pub mod value;
pub mod verify;

use std::fmt;
use std::path::PathBuf;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational, e.g. "accepted, not enforced".
    Notice,
    /// The line or value is ignored; the unit still loads.
    Warning,
    /// The unit fails to load.
    Error,
}

/// A message about a place in a unit file: printed as `path:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line number; 0 when the message is about the whole file.
    pub line: u32,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        path: impl Into<PathBuf>,
        line: u32,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            path: path.into(),
            line,
            severity,
            message: message.into(),
        }
    }
    pub fn warning(path: impl Into<PathBuf>, line: u32, message: impl Into<String>) -> Self {
        Self::new(path, line, Severity::Warning, message)
    }
    pub fn error(path: impl Into<PathBuf>, line: u32, message: impl Into<String>) -> Self {
        Self::new(path, line, Severity::Error, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

//! What every file slogate reads (proxy configuration, SLO spec, jobs configuration,
//! load-test scenario) reports when it is wrong: the file, then each mistake's key and
//! message, one per line, all at once.
//!
//! ```
//! use slogate_diagnostics::Checker;
//!
//! let mut c = Checker::default();
//! c.push("upstream.backends[0]", "\"nowhere\" is not host:port");
//! c.push("", "the file as a whole is wrong");
//! assert_eq!(
//!     c.finish("slogate.yaml").unwrap_err().to_string(),
//!     "slogate.yaml: upstream.backends[0]: \"nowhere\" is not host:port\n\
//!      slogate.yaml: the file as a whole is wrong"
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod duration;
mod log;
mod yaml;

use std::fmt;

pub use duration::{duration, HumanDuration};
#[cfg(feature = "log")]
pub use log::init_logging;
pub use log::{log_directives, LOG_ENV};
pub use yaml::{from_yaml, parse_yaml, path_issue, read_file, yaml_documents, YamlError};

/// The name a [`FileError`] gives to flags alone, when no file was named.
pub const COMMAND_LINE: &str = "<command line>";

/// One mistake in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Where: a key path such as `upstream.backends[1]`, or an item and a key inside it
    /// (`slos[2] "checkout": latency.threshold`); empty for the file as a whole.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

/// A file that cannot be used, with every mistake found in it. The CLI maps it to exit
/// code 2; find it with `anyhow::Error::downcast_ref::<FileError>()`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct FileError {
    /// The file as the user named it (or `<command line>`).
    pub file: String,
    /// The mistakes, in the order they were found.
    pub issues: Vec<Issue>,
}

impl FileError {
    /// A file error with one mistake at `key` (empty: the whole file).
    pub fn single(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> FileError {
        FileError {
            file: file.into(),
            issues: vec![Issue {
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            if issue.key.is_empty() {
                write!(f, "{}: {}", self.file, issue.message)?;
            } else {
                write!(f, "{}: {}: {}", self.file, issue.key, issue.message)?;
            }
        }
        Ok(())
    }
}

/// Collects the mistakes found while validating a file, so that all are reported at once.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    /// Records a mistake at `key` (empty: the whole file).
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            key: key.into(),
            message: message.into(),
        });
    }

    /// A view that records mistakes inside one item, e.g. `slos[2] "checkout"`: its keys
    /// are written after the item's name and `: `.
    pub fn scope(&mut self, item: impl Into<String>) -> Scope<'_> {
        Scope {
            item: item.into(),
            checker: self,
        }
    }

    /// Number of mistakes recorded so far.
    pub fn count(&self) -> usize {
        self.issues.len()
    }

    /// No mistake so far.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The mistakes recorded so far.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// `Ok` when nothing was recorded, else every mistake as a [`FileError`] for `file`.
    pub fn finish(self, file: &str) -> Result<(), FileError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(FileError {
                file: file.to_string(),
                issues: self.issues,
            })
        }
    }
}

/// A [`Checker`] seen from inside one item; see [`Checker::scope`].
#[derive(Debug)]
pub struct Scope<'a> {
    item: String,
    checker: &'a mut Checker,
}

impl Scope<'_> {
    /// Records a mistake at `key` inside the item (empty: the item as a whole).
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key: String = key.into();
        let key = match (self.item.is_empty(), key.is_empty()) {
            (true, _) => key,
            (false, true) => self.item.clone(),
            (false, false) => format!("{}: {key}", self.item),
        };
        self.checker.push(key, message);
    }

    /// Number of mistakes recorded so far, in every item.
    pub fn count(&self) -> usize {
        self.checker.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_without_a_key_speaks_of_the_file() {
        let e = FileError::single("f.yaml", "", "cannot read: gone");
        assert_eq!(e.to_string(), "f.yaml: cannot read: gone");
        let e = FileError::single("f.yaml", "a.b", "wrong");
        assert_eq!(e.to_string(), "f.yaml: a.b: wrong");
    }

    #[test]
    fn scopes_name_the_item_then_the_key() {
        let mut c = Checker::default();
        c.scope("slos[0] \"a\"").push("latency.target", "too high");
        c.scope("slos[1] \"b\"").push("", "declare an objective");
        c.scope("").push("service", "missing");
        assert_eq!(c.count(), 3);
        let keys: Vec<&str> = c.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["slos[0] \"a\": latency.target", "slos[1] \"b\"", "service"]
        );
        assert_eq!(
            c.finish("slo.yaml").unwrap_err().to_string(),
            "slo.yaml: slos[0] \"a\": latency.target: too high\n\
             slo.yaml: slos[1] \"b\": declare an objective\n\
             slo.yaml: service: missing"
        );
        assert_eq!(Checker::default().finish("f"), Ok(()));
    }
}

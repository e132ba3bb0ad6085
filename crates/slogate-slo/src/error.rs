//! Spec errors: every mistake names the file, the SLO and the field.

use std::fmt;

/// One mistake in a spec file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Which SLO (or document), e.g. `slos[2] "checkout"`; `None` for the
    /// file as a whole.
    pub context: Option<String>,
    /// The field inside that SLO, e.g. `latency.threshold`.
    pub field: Option<String>,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl Issue {
    /// An issue about the file as a whole.
    pub fn file(message: impl Into<String>) -> Issue {
        Issue {
            context: None,
            field: None,
            message: message.into(),
        }
    }
}

/// An invalid spec file: refused with every mistake found, one per line.
///
/// The CLI maps this to exit code 2; find it with
/// `anyhow::Error::downcast_ref::<SpecError>()`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The spec file as the user named it.
    pub file: String,
    /// The mistakes, in file order.
    pub issues: Vec<Issue>,
}

impl SpecError {
    /// A spec error with a single issue about the whole file.
    pub fn single(file: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: file.into(),
            issues: vec![Issue::file(message)],
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: ", self.file)?;
            if let Some(context) = &issue.context {
                write!(f, "{context}: ")?;
            }
            if let Some(field) = &issue.field {
                write!(f, "{field}: ")?;
            }
            f.write_str(&issue.message)?;
        }
        Ok(())
    }
}

/// Collects issues for one SLO (or document) while it is being validated.
#[derive(Debug)]
pub(crate) struct Issues<'a> {
    context: Option<String>,
    sink: &'a mut Vec<Issue>,
}

impl<'a> Issues<'a> {
    pub(crate) fn new(context: Option<String>, sink: &'a mut Vec<Issue>) -> Issues<'a> {
        Issues { context, sink }
    }

    /// Records a mistake in `field`.
    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let field: String = field.into();
        self.sink.push(Issue {
            context: self.context.clone(),
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
        });
    }

    /// Number of issues recorded so far (for every SLO).
    pub(crate) fn count(&self) -> usize {
        self.sink.len()
    }
}

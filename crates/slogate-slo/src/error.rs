//! Spec errors: every mistake names the file, the SLO and the field.

/// An invalid spec file: refused with every mistake found, one per line. An issue's key
/// names the SLO (or document) and the field inside it, e.g.
/// `slos[2] "checkout": latency.threshold`.
///
/// The CLI maps this to exit code 2; find it with
/// `anyhow::Error::downcast_ref::<SpecError>()`.
pub type SpecError = slogate_diagnostics::FileError;

/// One mistake in a spec file.
pub use slogate_diagnostics::Issue;

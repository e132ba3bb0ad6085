//! slogate's configuration: YAML → serde structs ([`raw`]) → [`validate`] → an immutable
//! [`Config`].
//!
//! Every mistake is reported with the file, the key and what is wrong, all at once:
//!
//! ```
//! let err = slogate_config::parse_str("slogate.yaml", "upstream:\n  backends: [\"nowhere\"]\n")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "slogate.yaml: upstream.backends[0]: \"nowhere\" is not host:port or unix:/path"
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cidr;
mod manifest;
mod model;
pub mod nginx_import;
pub mod raw;
pub mod units;

use std::path::Path;

pub use cidr::Cidr;
pub use manifest::{load_manifest, ManifestOperation};
pub use model::*;
pub use raw::RawConfig;
pub use slogate_diagnostics::{FileError, Issue};

/// An invalid configuration, with every mistake found: the [`FileError`] every file
/// slogate reads reports. Maps to exit code 2.
pub type ConfigError = FileError;

/// Values from the command line that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`: replaces `server.listen`.
    pub listen: Option<String>,
    /// `--upstream`: replaces `upstream.backends`.
    pub upstream: Option<String>,
    /// `--admin`: replaces `admin.listen`.
    pub admin: Option<String>,
    /// `--threads`: replaces `server.threads`.
    pub threads: Option<usize>,
}

impl Overrides {
    fn apply(&self, raw: &mut RawConfig) {
        if let Some(l) = &self.listen {
            raw.server.listen = vec![l.clone()];
        }
        if let Some(u) = &self.upstream {
            raw.upstream.backends = vec![u.clone()];
        }
        if let Some(a) = &self.admin {
            raw.admin.listen = a.clone();
        }
        if let Some(t) = self.threads {
            raw.server.threads = t;
        }
    }
}

/// Reads a YAML document into the raw structs, naming the key of any mistake. An empty
/// file (or one with only comments) is the default configuration.
pub fn parse_raw(file: &str, text: &str) -> Result<RawConfig, ConfigError> {
    slogate_diagnostics::parse_yaml(file, text)
}

/// Parses and validates a configuration given as text (`file` names it in errors).
pub fn parse_str(file: &str, text: &str) -> Result<Config, ConfigError> {
    let raw = parse_raw(file, text)?;
    validate(file, raw, Path::new("."))
}

/// Loads, overrides and validates a configuration file; `None` means no file (defaults).
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let (file, mut raw, base) = match path {
        Some(p) => {
            let (file, text) = slogate_diagnostics::read_file(p)?;
            let raw = parse_raw(&file, &text)?;
            let base = p.parent().unwrap_or(Path::new(".")).to_path_buf();
            (file, raw, base)
        }
        None => (
            slogate_diagnostics::COMMAND_LINE.to_string(),
            RawConfig::default(),
            Path::new(".").to_path_buf(),
        ),
    };
    overrides.apply(&mut raw);
    validate(&file, raw, &base)
}

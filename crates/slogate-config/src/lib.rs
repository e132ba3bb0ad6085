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

use std::fmt;
use std::path::Path;

pub use cidr::Cidr;
pub use manifest::{load_manifest, ManifestOperation};
pub use model::*;
pub use raw::RawConfig;

/// One mistake in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The key, e.g. `upstream.backends[1]`; empty for the file as a whole.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// An invalid configuration, with every mistake found. Maps to exit code 2.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file as the user named it, or `<command line>`.
    pub file: String,
    /// The mistakes.
    pub issues: Vec<Issue>,
}

impl ConfigError {
    fn single(file: &str, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            issues: vec![Issue {
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigError {
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

/// Reads a YAML document into the raw structs, naming the key of any mistake.
pub fn parse_raw(file: &str, text: &str) -> Result<RawConfig, ConfigError> {
    // An empty file (or one with only comments) is the default configuration.
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(serde_yaml_ng::Value::Null) => return Ok(RawConfig::default()),
        Ok(_) => {}
        Err(e) => {
            return Err(ConfigError::single(
                file,
                "",
                format!("not valid YAML: {e}"),
            ))
        }
    }
    from_yaml(text).map_err(|e| ConfigError::single(file, e.key, e.message))
}

/// A YAML document that does not fit its structs: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The key path (`upstream.backends[0]`); empty when the document itself is wrong.
    pub key: String,
    /// What is wrong there.
    pub message: String,
}

/// Deserializes a YAML document, naming the key of the first mistake. Shared by every
/// file slogate reads (proxy configuration, jobs configuration, load-test scenarios), so
/// their messages read alike.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let message = e.inner().to_string();
        // serde_yaml prefixes its own (shorter) path; the key already says where.
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') && key.starts_with(prefix) => {
                rest.to_string()
            }
            _ => message,
        };
        YamlError { key, message }
    })
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
            let file = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| ConfigError::single(&file, "", format!("cannot read: {e}")))?;
            let raw = parse_raw(&file, &text)?;
            let base = p.parent().unwrap_or(Path::new(".")).to_path_buf();
            (file, raw, base)
        }
        None => (
            "<command line>".to_string(),
            RawConfig::default(),
            Path::new(".").to_path_buf(),
        ),
    };
    overrides.apply(&mut raw);
    validate(&file, raw, &base)
}

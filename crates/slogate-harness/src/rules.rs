//! The rules slogate names and classifies by, so that the load tester and the mock apply the
//! very same ones (`--proxy-config` reads them from the proxy's own configuration file).

use std::path::Path;
use std::time::Duration;

use slogate_config::{Config, ConfigError, Overrides};
use slogate_core::request::ExtractorOptions;
use slogate_core::response::ClassificationPolicy;
use slogate_core::route::RouteNamer;

/// What slogate uses to label and classify requests.
#[derive(Clone, Debug)]
pub struct ProxyRules {
    /// Response classification.
    pub policy: ClassificationPolicy,
    /// Request extraction bounds.
    pub extractor: ExtractorOptions,
    /// GraphQL endpoint paths.
    pub graphql_paths: Vec<String>,
    /// HTTP route naming (and excluded paths).
    pub routes: RouteNamer,
    /// Header carrying an error code (lowercase), if configured.
    pub error_code_header: Option<String>,
    /// The upstream read timeout.
    pub read_timeout: Duration,
    /// Request bodies above this get slogate's own `413` and never reach the upstream.
    pub max_body_size: Option<u64>,
}

impl ProxyRules {
    /// The rules of a validated configuration.
    pub fn from_config(config: &Config) -> ProxyRules {
        ProxyRules {
            policy: config.policy.clone(),
            extractor: config.graphql.extractor.clone(),
            graphql_paths: config.graphql.paths.clone(),
            routes: config.routes.clone(),
            error_code_header: config.error_code_header.clone(),
            read_timeout: config.upstream.read_timeout,
            max_body_size: config.server.max_body_size,
        }
    }

    /// The rules of the configuration file at `path`, or slogate's defaults.
    pub fn load(path: Option<&Path>) -> Result<ProxyRules, ConfigError> {
        slogate_config::load(path, &Overrides::default()).map(|c| ProxyRules::from_config(&c))
    }

    /// slogate's default rules.
    pub fn defaults() -> ProxyRules {
        ProxyRules::load(None).unwrap_or_else(|_| ProxyRules {
            policy: ClassificationPolicy::default(),
            extractor: ExtractorOptions::default(),
            graphql_paths: vec!["/graphql".into()],
            routes: RouteNamer::default(),
            error_code_header: None,
            read_timeout: Duration::from_secs(60),
            max_body_size: Some(1024 * 1024),
        })
    }

    /// Whether `path` is a GraphQL endpoint.
    pub fn is_graphql(&self, path: &str) -> bool {
        self.graphql_paths.iter().any(|p| p == path)
    }
}

//! Everything a request needs, built once from the configuration and shared by all requests.

use std::sync::Arc;

use slogate_config::Config;
use slogate_core::cache::PersistedOperation;
use slogate_core::request::OperationExtractor;
use slogate_metrics::{CardinalityGuard, GuardSet, Registry, SliMetrics};

use crate::access_log::AccessLog;
use crate::pages::Pages;
use crate::upstream::Backends;

/// The shared, immutable-after-start state of a slogate process.
pub struct Runtime {
    /// The validated configuration.
    pub config: Config,
    /// Names GraphQL operations; owns the document and persisted-query caches.
    pub extractor: OperationExtractor,
    /// The SLI metric families.
    pub metrics: SliMetrics,
    /// Cardinality guards of the (single) service.
    pub guards: GuardSet,
    /// The access log writer.
    pub access_log: AccessLog,
    /// The application's backends.
    pub backends: Backends,
    /// Error pages and the maintenance switch.
    pub pages: Pages,
    /// `X-Accel-Mapping` sent to the app, so Rack::Sendfile names files by their internal URL.
    pub accel_mapping: Option<String>,
    /// Every proxy listener is bound and served (until then `/ready` answers 503: a port
    /// still held by another process is retried for a few seconds).
    pub listening: std::sync::atomic::AtomicBool,
}

impl Runtime {
    /// Builds the runtime, registering metrics in `registry`.
    pub fn new(config: Config, registry: &Registry) -> Result<Runtime, String> {
        let metrics = SliMetrics::register(registry, &config.metrics.buckets)
            .map_err(|e| format!("cannot register metrics: {e}"))?;
        let extractor = OperationExtractor::new(config.graphql.extractor.clone());
        for op in &config.graphql.manifest {
            if let Some(hash) = &op.hash {
                extractor.persisted().learn(
                    hash,
                    PersistedOperation {
                        name: Some(Arc::from(op.name.as_str())),
                        op_type: op.op_type,
                    },
                );
            }
        }
        let m = &config.metrics;
        let guards = GuardSet {
            graphql_operations: CardinalityGuard::new(m.max_operations, m.allowlist.clone()),
            http_routes: CardinalityGuard::new(m.max_operations, None),
            error_codes: CardinalityGuard::new(m.max_error_codes, None),
        };
        let access_log = AccessLog::start(&config.access_log, metrics.clone())
            .map_err(|e| format!("access_log.target: cannot open: {e}"))?;
        let backends = Backends::new(&config.upstream, config.server.threads, |label| {
            metrics.upstream_connections(&config.upstream.name, label)
        })?;
        for b in backends.all() {
            metrics.set_backend_up(&config.upstream.name, &b.label, true);
        }
        let pages = Pages::load(&config);
        let st = &config.static_files;
        let accel_mapping = (st.sendfile && !st.internal.is_empty()).then(|| {
            st.internal
                .iter()
                .map(|(prefix, dir)| {
                    let mut dir = dir.display().to_string();
                    if prefix.ends_with('/') && !dir.ends_with('/') {
                        dir.push('/');
                    }
                    format!("{dir}={prefix}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        Ok(Runtime {
            pages,
            accel_mapping,
            config,
            extractor,
            metrics,
            guards,
            access_log,
            backends,
            listening: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The `service` label.
    pub fn service(&self) -> &str {
        &self.config.upstream.name
    }

    /// Whether `path` is a GraphQL endpoint.
    pub fn is_graphql_path(&self, path: &str) -> bool {
        self.config.graphql.paths.iter().any(|p| p == path)
    }
}

//! `slogate jobs`: the flags, the mode's assembly on a pingora server, and `check`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use pingora_core::apps::http_app::HttpServer;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use slogate_metrics::{prometheus, CardinalityGuard, Registry};

use crate::admin::AdminApp;
use crate::classify::OutcomeRules;
use crate::config::{load_config, ConfigError, JobsConfig, STDIN};
use crate::follow::{FileFollower, StartAt};
use crate::metrics::JobMetrics;
use crate::queues::QueuePoller;
use crate::recorder::JobRecorder;
use crate::redis_url::resolve_redis_url;
use crate::services::{FileFollowService, QueuePollService, StdinFollowService};

/// Job SLIs from Sidekiq's JSON log and queue health from its Redis, served
/// on `/metrics`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct JobsArgs {
    /// YAML config (see proxy-config/jobs.yaml); every key is optional.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A Sidekiq JSON log to follow; repeatable; `-` reads standard input.
    /// Replaces the config's `logs`.
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<String>,
    /// Read log files that already exist from their start, not their end.
    #[arg(long)]
    pub from_start: bool,
    /// Sidekiq's Redis [default: as Sidekiq finds it: $REDIS_PROVIDER, $REDIS_URL, localhost].
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Admin listener for /metrics and /healthz [default: 127.0.0.1:9092].
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// The `service` label [default: rails].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

/// Validates a config file, for `slogate check`.
pub fn check_config(path: impl AsRef<Path>) -> Result<(), ConfigError> {
    load_config(path.as_ref()).map(|_| ())
}

/// The config file with the flags applied, validated.
///
/// Mistakes come back as a [`ConfigError`] naming the file (or `command
/// line`) and the key.
pub fn effective_config(args: &JobsArgs) -> Result<JobsConfig, ConfigError> {
    let (mut config, source) = match &args.config {
        Some(path) => (load_config(path)?, path.display().to_string()),
        None => (
            JobsConfig::default(),
            slogate_diagnostics::COMMAND_LINE.to_string(),
        ),
    };
    if !args.logs.is_empty() {
        config.logs.clone_from(&args.logs);
    }
    config.from_start |= args.from_start;
    if let Some(url) = &args.redis {
        config.redis.url = Some(url.clone());
        config.redis.enabled = true;
    }
    if let Some(admin) = &args.admin {
        config.admin.clone_from(admin);
    }
    if let Some(service) = &args.service {
        config.service.clone_from(service);
    }
    config.validate(&source)?;
    if config.logs.is_empty() && !config.redis.enabled {
        return Err(ConfigError::single(
            source,
            "logs",
            "nothing to do: name a Sidekiq log (--log FILE, - for stdin) or enable redis",
        ));
    }
    Ok(config)
}

/// Runs `slogate jobs` until SIGTERM/SIGINT.
///
/// A [`ConfigError`] inside the returned error means the config or flags are
/// wrong (exit code 2); find it with `downcast_ref`.
pub fn run(args: &JobsArgs) -> anyhow::Result<()> {
    let config = effective_config(args)?;
    let registry = prometheus::default_registry().clone();
    let server = build_server(&config, &registry)?;
    server.run(RunArgs::default());
    Ok(())
}

/// The pingora server of the mode: the admin listener and one background
/// service per log plus the Redis poller, with metrics registered in
/// `registry`.
pub fn build_server(config: &JobsConfig, registry: &Registry) -> anyhow::Result<Server> {
    let admin = config
        .admin_addr()
        .context("admin address was not validated")?;
    ensure_can_listen(admin)?;
    let metrics = JobMetrics::register(registry, &config.buckets)
        .context("cannot register the job metrics")?;
    let queues = Arc::new(CardinalityGuard::new(config.cardinality.max_queues, None));
    let recorder = Arc::new(recorder(config, metrics.clone(), queues.clone()));

    let mut server = Server::new_with_opt_and_conf(None, server_conf());
    server.bootstrap();
    let mut admin_service = Service::new(
        "slogate jobs admin".to_string(),
        HttpServer::new_app(AdminApp::new(registry.clone())),
    );
    admin_service.add_tcp(&admin.to_string());
    server.add_service(admin_service);
    add_log_services(&mut server, config, &recorder);
    if config.redis.enabled {
        let url = redis_url(config)?;
        let poller = QueuePoller::new(
            &url,
            config.redis.timeout,
            config.redis.queues.clone(),
            &config.service,
            metrics,
            queues,
        )?;
        let service = QueuePollService::new(poller, config.redis.poll_interval);
        server.add_service(background_service("sidekiq redis", service));
    }
    tracing::info!(%admin, logs = ?config.logs, redis = config.redis.enabled, "slogate jobs starting");
    Ok(server)
}

fn recorder(
    config: &JobsConfig,
    metrics: JobMetrics,
    queues: Arc<CardinalityGuard>,
) -> JobRecorder {
    let outcomes = &config.outcomes;
    let rules = OutcomeRules::new(
        outcomes.client_error.job_classes.iter().cloned(),
        outcomes.client_error.error_classes.iter().cloned(),
        outcomes.canceled.error_classes.iter().cloned(),
    );
    let classes = CardinalityGuard::new(
        config.cardinality.max_job_classes,
        config.cardinality.job_classes.clone(),
    );
    JobRecorder::new(&config.service, metrics, rules, classes, queues)
}

fn add_log_services(server: &mut Server, config: &JobsConfig, recorder: &Arc<JobRecorder>) {
    let start_at = if config.from_start {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    for log in &config.logs {
        if log == STDIN {
            let service = StdinFollowService::new(recorder.clone(), config.max_line_bytes);
            server.add_service(background_service("log stdin", service));
        } else {
            let follower = FileFollower::new(log, start_at, config.max_line_bytes);
            let service =
                FileFollowService::new(follower, recorder.clone(), config.file_poll_interval);
            server.add_service(background_service(&format!("log {log}"), service));
        }
    }
}

fn redis_url(config: &JobsConfig) -> Result<String, ConfigError> {
    let resolved = resolve_redis_url(config.redis.url.as_deref(), |k| std::env::var(k).ok())
        .map_err(|message| env_error("REDIS_PROVIDER", message))?;
    if let Err(e) = redis::Client::open(resolved.url.as_str()) {
        return Err(env_error(
            &resolved.source,
            format!("{:?} is not a Redis URL: {e}", resolved.url),
        ));
    }
    tracing::info!(source = %resolved.source, "reading Sidekiq's queues from Redis");
    Ok(resolved.url)
}

fn env_error(key: &str, message: String) -> ConfigError {
    ConfigError::single("environment", key, message)
}

/// pingora panics when it cannot bind; fail with a message instead.
fn ensure_can_listen(addr: SocketAddr) -> anyhow::Result<()> {
    TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("cannot listen on {addr} (--admin)"))
}

fn server_conf() -> ServerConf {
    ServerConf {
        // Nothing to drain: stop promptly on SIGTERM.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(2),
        ..ServerConf::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.yaml");
        std::fs::write(
            &path,
            "service: shop\nlogs: [a.log]\nredis: {enabled: false}\n",
        )
        .unwrap();
        let args = JobsArgs {
            config: Some(path),
            logs: vec!["b.log".into(), "-".into()],
            from_start: true,
            redis: Some("redis://127.0.0.1:7/1".into()),
            admin: Some("127.0.0.1:0".into()),
            service: None,
        };
        let c = effective_config(&args).unwrap();
        assert_eq!(c.service, "shop");
        assert_eq!(c.logs, vec!["b.log", "-"]);
        assert!(c.from_start);
        assert!(c.redis.enabled);
        assert_eq!(c.redis.url.as_deref(), Some("redis://127.0.0.1:7/1"));
        assert_eq!(c.admin, "127.0.0.1:0");
    }

    #[test]
    fn bad_flags_are_config_errors_downcastable_from_anyhow() {
        let args = JobsArgs {
            admin: Some("nowhere".into()),
            ..JobsArgs::default()
        };
        let err: anyhow::Error = effective_config(&args).unwrap_err().into();
        let config_error = err.downcast_ref::<ConfigError>().expect("a ConfigError");
        assert_eq!(
            config_error.to_string(),
            "<command line>: admin: \"nowhere\" is not an IP address and port such as 127.0.0.1:9092"
        );
    }

    #[test]
    fn nothing_to_do_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.yaml");
        std::fs::write(&path, "redis: {enabled: false}\n").unwrap();
        let args = JobsArgs {
            config: Some(path),
            ..JobsArgs::default()
        };
        assert!(effective_config(&args)
            .unwrap_err()
            .to_string()
            .contains("logs: nothing to do"));
    }

    #[test]
    fn check_reports_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.yaml");
        std::fs::write(&path, "redis: {urll: x}\n").unwrap();
        let e = check_config(&path).unwrap_err();
        assert_eq!(e.issues[0].key, "redis.urll");
    }
}

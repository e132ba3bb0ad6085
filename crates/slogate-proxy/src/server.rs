//! Builds and runs slogate from a validated configuration: pingora's server (process,
//! signals, graceful upgrade) with slogate's listeners, the admin endpoints and the health
//! checks as its services.

use std::net::IpAddr;
use std::sync::Arc;

use http::Response;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_rustls::{ServerConfig, TlsAcceptor};
use slogate_config::{Address, Config};

use crate::admin::AdminApp;
use crate::engine::listen::{Bind, Connections, Endpoint, Listeners};
use crate::engine::side::{Answer, SideService};
use crate::health::HealthChecker;
use crate::runtime::Runtime;

/// How the process was started (pingora's own flags).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Take the listening sockets over from a running slogate (graceful upgrade).
    pub upgrade: bool,
    /// Detach and run in the background.
    pub daemon: bool,
}

fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        grace_period_seconds: Some(s.grace_period.as_secs().max(1)),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout.as_secs().max(1)),
        upgrade_sock: s.upgrade_socket.clone(),
        pid_file: s.pid_file.clone(),
        // pingora's own services (admin, redirect, health checks) are light.
        work_stealing: false,
        ..ServerConf::default()
    }
}

/// Answers every plain-HTTP request with a redirect to HTTPS (`server.tls.redirect_http`).
struct RedirectToHttps {
    https_port: u16,
    hsts: Option<String>,
}

impl Answer for RedirectToHttps {
    fn answer(&self, req: &http::request::Parts, _peer: Option<IpAddr>) -> Response<Vec<u8>> {
        let host = req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.rsplit_once(':').map_or(h, |(name, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        name
                    } else {
                        h
                    }
                })
            })
            .unwrap_or("localhost")
            .to_string();
        let port = if self.https_port == 443 {
            String::new()
        } else {
            format!(":{}", self.https_port)
        };
        let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{host}{port}{target}");
        let mut b = Response::builder()
            .status(301)
            .header(http::header::LOCATION, location)
            .header(http::header::CONTENT_LENGTH, 0);
        if let Some(h) = &self.hsts {
            b = b.header("strict-transport-security", h.as_str());
        }
        b.body(Vec::new()).unwrap_or_default()
    }
}

/// Checks what validation alone cannot: backends resolve, the TLS certificate and key load.
/// `slogate check` runs it; `run` does the same work while starting.
pub fn preflight(config: &Config) -> Result<(), String> {
    crate::upstream::Backends::new(&config.upstream, 1, |_| {
        slogate_metrics::prometheus::IntGauge::new("unregistered", "preflight only")
            .expect("a valid gauge name")
    })?;
    if let Some(tls) = &config.server.tls {
        load_tls(tls)?;
    }
    Ok(())
}

fn load_tls(tls: &slogate_config::TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let (cert, key) = (tls.cert.to_string_lossy(), tls.key.to_string_lossy());
    let bad = |why: String| format!("server.tls: cannot load {cert} / {key}: {why}");
    let (chain, private) = match pingora_rustls::load_certs_and_key_files(&cert, &key) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Err(bad("no PEM certificate or no PEM private key found".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    pingora_rustls::install_default_crypto_provider();
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| bad(format!("the key does not go with the certificate ({e})")))?;
    config.alpn_protocols = if tls.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// Runs slogate until it is told to stop. Never returns on success (pingora exits).
pub fn run(config: Config, options: RunOptions) -> Result<(), String> {
    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(&config));
    server.bootstrap();
    let registry = slogate_metrics::prometheus::default_registry();
    let rt: &'static Runtime = Box::leak(Box::new(Runtime::new(config, registry)?));
    let tls = rt.config.server.tls.as_ref();

    let redirect = tls.filter(|t| t.redirect_http);
    let binds = || {
        rt.config.server.listen.iter().map(|a| match a {
            Address::Tcp(a) => Bind::Tcp(a.clone()),
            Address::Unix(p) => Bind::Unix(p.clone()),
        })
    };
    let redirector = redirect.map(|t| {
        let https_port = t
            .listen
            .first()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(443);
        SideService::new(
            "slogate https redirect",
            binds().collect(),
            RedirectToHttps {
                https_port,
                hsts: t.hsts.clone(),
            },
        )
    });
    let mut endpoints: Vec<Endpoint> = if redirector.is_some() {
        Vec::new()
    } else {
        binds().map(|bind| Endpoint { bind, tls: None }).collect()
    };
    if let Some(t) = tls {
        let acceptor = TlsAcceptor::from(load_tls(t)?);
        endpoints.extend(t.listen.iter().map(|a| Endpoint {
            bind: Bind::Tcp(a.clone()),
            tls: Some(acceptor.clone()),
        }));
    }
    let fd_limit = crate::engine::fd::raise_fd_limit();
    let max = rt.config.server.max_connections;
    // Each connection holds a client socket and, while it waits on the app, an upstream one.
    if fd_limit < (2 * max as u64).saturating_add(64) {
        tracing::warn!(
            open_files_limit = fd_limit,
            max_connections = max,
            "the open-files limit is below twice server.max_connections: accept() may fail \
             with 'too many open files' before the limit is reached (raise `ulimit -n`)"
        );
    }
    let connections: &'static Connections = Box::leak(Box::new(Connections::new(max, registry)?));
    server.add_service(Listeners::new(rt, endpoints, connections));
    let admin = SideService::new(
        "slogate admin",
        vec![Bind::Tcp(rt.config.admin_listen.to_string())],
        AdminApp::new(rt),
    );
    let access = &rt.config.admin_access;
    if !rt.config.admin_listen.ip().is_loopback()
        && access.bearer_token.is_none()
        && access.allow.is_empty()
    {
        tracing::warn!(
            admin = %rt.config.admin_listen,
            "the admin endpoints (metrics, health, maintenance) are reachable beyond loopback \
             by anyone: set admin.bearer_token_file or admin.allow"
        );
    }
    server.add_service(admin);
    if let Some(r) = redirector {
        server.add_service(r);
    }
    if let Some(settings) = rt.config.upstream.health_check.clone() {
        server.add_service(background_service(
            "slogate health checks",
            HealthChecker::new(rt, settings),
        ));
    }
    tracing::info!(
        listen = ?rt.config.server.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
        tls = ?tls.map(|t| &t.listen),
        admin = %rt.config.admin_listen,
        upstream = %rt.config.upstream.name,
        "slogate starting"
    );
    server.run(pingora_core::server::RunArgs::default());
    // Services have finished: write the last access log lines before the process ends.
    rt.access_log.flush();
    std::process::exit(0)
}

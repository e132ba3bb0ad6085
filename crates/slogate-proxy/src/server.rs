//! Builds and runs a pingora server from a validated configuration.

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::{HttpServer, ServeHttp};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::l4::stream::L4BufferSettings;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use slogate_config::{Address, Config, Engine};

use crate::admin::AdminApp;
use crate::engine::HyperApp;
use crate::health::HealthChecker;
use crate::proxy::SlogateProxy;
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
        // Each worker thread has its own pool; this bounds idle connections to the app.
        upstream_keepalive_pool_size: 256,
        // The hyper engine runs each connection on one single-threaded runtime per worker
        // thread (connections spread at random), as nginx's workers do: no cross-thread
        // wake-ups per request. pingora-proxy keeps its work-stealing runtime.
        work_stealing: s.engine == Engine::Pingora,
        ..ServerConf::default()
    }
}

/// Answers every plain-HTTP request with a redirect to HTTPS (`server.tls.redirect_http`).
struct RedirectToHttps {
    https_port: u16,
    hsts: Option<String>,
}

#[async_trait]
impl ServeHttp for RedirectToHttps {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
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
    crate::upstream::Backends::new(&config.upstream)?;
    if let Some(tls) = &config.server.tls {
        load_tls(tls)?;
    }
    Ok(())
}

fn load_tls(tls: &slogate_config::TlsSettings) -> Result<TlsSettings, String> {
    // pingora reads these files only when the listener starts, and panics there on bad ones:
    // check them now, with a message naming the files.
    let (cert, key) = (tls.cert.to_string_lossy(), tls.key.to_string_lossy());
    let bad = |why: String| format!("server.tls: cannot load {cert} / {key}: {why}");
    let (chain, private) = match pingora_rustls::load_certs_and_key_files(&cert, &key) {
        Ok(Some(pair)) => pair,
        Ok(None) => return Err(bad("no PEM certificate or no PEM private key found".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    pingora_rustls::install_default_crypto_provider();
    pingora_rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| bad(format!("the key does not go with the certificate ({e})")))?;
    let mut settings =
        TlsSettings::intermediate(&tls.cert.to_string_lossy(), &tls.key.to_string_lossy())
            .map_err(|e| {
                format!(
                    "server.tls: cannot load {} / {}: {e}",
                    tls.cert.display(),
                    tls.key.display()
                )
            })?;
    if tls.http2 {
        settings.enable_h2();
    }
    Ok(settings)
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
    let mut redirector = redirect.map(|t| {
        let https_port = t
            .listen
            .first()
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(443);
        Service::new(
            "slogate https redirect".to_string(),
            HttpServer::new_app(RedirectToHttps {
                https_port,
                hsts: t.hsts.clone(),
            }),
        )
    });
    let plain: Vec<&Address> = if redirector.is_some() {
        Vec::new()
    } else {
        rt.config.server.listen.iter().collect()
    };
    if let Some(r) = redirector.as_mut() {
        for address in &rt.config.server.listen {
            match address {
                Address::Tcp(a) => r.add_tcp(a),
                Address::Unix(p) => r.add_uds(&p.to_string_lossy(), None),
            }
        }
    }
    match rt.config.server.engine {
        Engine::Pingora => {
            let mut proxy = pingora_proxy::http_proxy_service_with_name(
                &server.configuration,
                SlogateProxy::new(rt),
                "slogate proxy",
            );
            add_listeners(&mut proxy, &plain, tls, plain_buffers())?;
            server.add_service(proxy);
        }
        Engine::Hyper => {
            if !plain.is_empty() {
                let mut proxy = Service::new("slogate proxy".to_string(), HyperApp::new(rt, false));
                add_listeners(&mut proxy, &plain, None, hyper_buffers())?;
                server.add_service(proxy);
            }
            if tls.is_some() {
                let mut secure =
                    Service::new("slogate proxy (tls)".to_string(), HyperApp::new(rt, true));
                add_listeners(&mut secure, &[], tls, hyper_buffers())?;
                server.add_service(secure);
            }
        }
    }
    let mut admin = Service::new(
        "slogate admin".to_string(),
        HttpServer::new_app(AdminApp::new(rt)),
    );
    admin.add_tcp(&rt.config.admin_listen.to_string());
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

/// Adds the plain listeners `plain` and, with `tls`, its TLS listeners to `service`.
fn add_listeners<A: pingora_core::apps::ServerApp + Send + Sync + 'static>(
    service: &mut Service<A>,
    plain: &[&Address],
    tls: Option<&slogate_config::TlsSettings>,
    buffers: L4BufferSettings,
) -> Result<(), String> {
    if let Some(tls) = tls {
        for addr in &tls.listen {
            let settings = load_tls(tls)?;
            service.add_listener(
                ListenerConfig::tcp(addr.as_str())
                    .tls(settings)
                    .l4_buffer(tls_buffers()),
            );
        }
    }
    for address in plain {
        match address {
            Address::Tcp(a) => {
                service.add_listener(ListenerConfig::tcp(a.as_str()).l4_buffer(buffers))
            }
            Address::Unix(p) => {
                service.add_listener(ListenerConfig::uds(p.to_string_lossy()).l4_buffer(buffers))
            }
        }
    }
    Ok(())
}

/// hyper buffers reads (its own head buffer) and writes (a response head and body leave
/// in one write) itself: pingora's layer would only add a copy and memory.
fn hyper_buffers() -> L4BufferSettings {
    L4BufferSettings::new(0, 0)
}

/// Client connections: no read buffer, an 8 KiB write buffer.
///
/// pingora's default puts a 64 KiB read buffer in front of every accepted socket and keeps
/// it for the connection's life, though pingora reads the request head into its own 4 KiB
/// buffer and bodies into a per-request one: the layer only adds a copy, and memory per
/// idle keep-alive connection (the pages earlier requests touched, up to 64 KiB each). Its default write buffer is one TCP segment
/// (1,460 bytes): a response head plus a small body overflows it and goes out in two
/// `send`s. pingora buffers a Content-Length body until it is complete (chunked and
/// close-delimited bodies are flushed per chunk, so streams are not delayed), so with 8 KiB
/// the head and a typical small JSON answer leave in one `send`.
fn plain_buffers() -> L4BufferSettings {
    L4BufferSettings::new(0, DOWNSTREAM_WRITE_BUFFER)
}

/// Under TLS the socket is read by rustls, a record (at most ~16 KiB) at a time; a buffer of
/// one record keeps those reads to one syscall each without pingora's 64 KiB per connection.
fn tls_buffers() -> L4BufferSettings {
    L4BufferSettings::new(16 * 1024, DOWNSTREAM_WRITE_BUFFER)
}

const DOWNSTREAM_WRITE_BUFFER: usize = 8 * 1024;

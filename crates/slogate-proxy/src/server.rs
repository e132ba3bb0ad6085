//! Builds and runs a pingora server from a validated configuration.

use pingora_core::apps::http_app::HttpServer;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::listening::Service;
use slogate_config::{Address, Config};

use crate::admin::AdminApp;
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
        ..ServerConf::default()
    }
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

    let mut proxy = pingora_proxy::http_proxy_service_with_name(
        &server.configuration,
        SlogateProxy::new(rt),
        "slogate proxy",
    );
    for address in &rt.config.server.listen {
        match address {
            Address::Tcp(a) => proxy.add_tcp(a),
            Address::Unix(p) => proxy.add_uds(&p.to_string_lossy(), None),
        }
    }
    let mut admin = Service::new(
        "slogate admin".to_string(),
        HttpServer::new_app(AdminApp::new(rt)),
    );
    admin.add_tcp(&rt.config.admin_listen.to_string());
    server.add_service(proxy);
    server.add_service(admin);
    tracing::info!(
        listen = ?rt.config.server.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
        admin = %rt.config.admin_listen,
        upstream = %rt.config.upstream.name,
        "slogate starting"
    );
    server.run_forever()
}

//! The admin listener: `/metrics` and `/healthz`, like the proxy's.

use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use slogate_metrics::Registry;

/// Serves the registry's exposition on `/metrics` and `ok` on `/healthz`.
#[derive(Clone, Debug)]
pub struct AdminApp {
    registry: Registry,
}

impl AdminApp {
    /// An admin app exposing `registry`.
    pub fn new(registry: Registry) -> AdminApp {
        AdminApp { registry }
    }

    /// The response to `method path`.
    pub fn respond(&self, method: &Method, path: &str) -> Response<Vec<u8>> {
        if method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        }
        match path {
            "/metrics" => {
                let body = slogate_metrics::encode(&self.registry).into_bytes();
                with_type(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    body,
                )
            }
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            _ => plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics or /healthz\n",
            ),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        self.respond(&req.method, req.uri.path())
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Vec<u8>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Vec<u8>> {
    let len = body.len();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let registry = Registry::new();
        let counter = slogate_metrics::prometheus::IntCounter::new("x_total", "x").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc();
        let app = AdminApp::new(registry);
        let metrics = app.respond(&Method::GET, "/metrics");
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(String::from_utf8_lossy(metrics.body()).contains("x_total 1"));
        assert_eq!(app.respond(&Method::GET, "/healthz").body(), b"ok\n");
        assert_eq!(
            app.respond(&Method::GET, "/").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.respond(&Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}

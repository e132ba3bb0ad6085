//! The admin listener: `/metrics`, `/health` (liveness) and `/ready` (readiness).

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use slogate_metrics::prometheus::{Encoder, TextEncoder};

use crate::runtime::Runtime;

/// Serves the admin endpoints for a [`Runtime`].
pub struct AdminApp {
    rt: &'static Runtime,
}

impl AdminApp {
    /// An admin app over `rt`.
    pub fn new(rt: &'static Runtime) -> Self {
        AdminApp { rt }
    }
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

impl AdminApp {
    /// `POST /maintenance` turns maintenance on, `DELETE` turns it off, `GET` tells.
    fn maintenance(&self, method: &str) -> Response<Vec<u8>> {
        match method {
            "POST" | "PUT" => self.rt.pages.set_forced(true),
            "DELETE" => self.rt.pages.set_forced(false),
            "GET" | "HEAD" => {}
            _ => return respond(405, "text/plain", b"use GET, POST or DELETE\n".to_vec()),
        }
        let on = self.rt.pages.maintenance_on();
        respond(
            200,
            "text/plain",
            if on {
                b"on\n".to_vec()
            } else {
                b"off\n".to_vec()
            },
        )
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        match path.as_str() {
            "/metrics" => {
                let encoder = TextEncoder::new();
                let mut body = Vec::new();
                let families = slogate_metrics::prometheus::gather();
                if let Err(e) = encoder.encode(&families, &mut body) {
                    return respond(
                        500,
                        "text/plain",
                        format!("cannot encode metrics: {e}\n").into_bytes(),
                    );
                }
                respond(200, encoder.format_type(), body)
            }
            "/health" | "/healthz" | "/livez" => respond(200, "text/plain", b"ok\n".to_vec()),
            "/maintenance" => self.maintenance(session.req_header().method.as_str()),
            "/ready" | "/readyz" => {
                if self.rt.backends.any_healthy() {
                    respond(200, "text/plain", b"ready\n".to_vec())
                } else {
                    respond(503, "text/plain", b"no healthy backend\n".to_vec())
                }
            }
            _ => respond(
                404,
                "text/plain",
                b"slogate admin: /metrics, /health, /ready, /maintenance\n".to_vec(),
            ),
        }
    }
}

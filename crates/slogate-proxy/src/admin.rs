//! The admin listener: `/metrics`, `/health` (liveness) and `/ready` (readiness).

use std::net::IpAddr;

use http::Response;
use slogate_config::AdminAccess;
use slogate_metrics::prometheus::{Encoder, TextEncoder};

use crate::engine::side::Answer;
use crate::runtime::Runtime;

/// Serves the admin endpoints for a [`Runtime`].
pub struct AdminApp {
    rt: &'static Runtime,
}

/// `/ready`'s answer until every proxy listener is bound.
pub const NOT_LISTENING: &[u8] = b"not listening yet\n";

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

/// Why a request may not use the admin endpoints.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// From a network outside `admin.allow`: 403.
    Network,
    /// Without the bearer token: 401.
    Token,
}

impl Refused {
    /// The answer, saying nothing about what is behind.
    fn response(&self) -> Response<Vec<u8>> {
        match self {
            Refused::Network => respond(403, "text/plain", b"forbidden\n".to_vec()),
            Refused::Token => {
                let mut r = respond(401, "text/plain", b"unauthorized\n".to_vec());
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                r
            }
        }
    }
}

/// Whether a request may use the admin endpoints: the network first, then the token.
fn admit(
    access: &AdminAccess,
    peer: Option<std::net::IpAddr>,
    authorization: Option<&[u8]>,
) -> Result<(), Refused> {
    if !access.allow.is_empty()
        && !peer.is_some_and(|ip| access.allow.iter().any(|c| c.contains(ip)))
    {
        return Err(Refused::Network);
    }
    if let Some(token) = &access.bearer_token {
        let given = authorization
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given, token.as_bytes()) {
            return Err(Refused::Token);
        }
    }
    Ok(())
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        diff |= usize::from(x ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl Answer for AdminApp {
    fn answer(&self, req: &http::request::Parts, peer: Option<IpAddr>) -> Response<Vec<u8>> {
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if let Err(refused) = admit(&self.rt.config.admin_access, peer, authorization) {
            return refused.response();
        }
        match req.uri.path() {
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
            "/maintenance" => self.maintenance(req.method.as_str()),
            "/ready" | "/readyz" => {
                if !self.rt.listening.load(std::sync::atomic::Ordering::Acquire) {
                    respond(503, "text/plain", NOT_LISTENING.to_vec())
                } else if self.rt.backends.any_healthy() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use slogate_config::Cidr;

    #[test]
    fn networks_then_token() {
        let open = AdminAccess::default();
        assert!(admit(&open, None, None).is_ok());
        let guarded = AdminAccess {
            bearer_token: Some("s3cret".into()),
            allow: vec![Cidr::parse("10.0.0.0/8").unwrap()],
        };
        let inside = Some("10.1.2.3".parse().unwrap());
        let outside = Some("192.0.2.1".parse().unwrap());
        let status = |r: Result<(), Refused>| r.err().map(|r| r.response().status().as_u16());
        assert_eq!(
            status(admit(&guarded, outside, Some(b"Bearer s3cret"))),
            Some(403)
        );
        assert_eq!(
            status(admit(&guarded, None, Some(b"Bearer s3cret"))),
            Some(403)
        );
        assert_eq!(status(admit(&guarded, inside, None)), Some(401));
        assert_eq!(
            status(admit(&guarded, inside, Some(b"Bearer s3cre"))),
            Some(401)
        );
        assert_eq!(
            status(admit(&guarded, inside, Some(b"Bearer s3cret!"))),
            Some(401)
        );
        assert_eq!(status(admit(&guarded, inside, Some(b"s3cret"))), Some(401));
        assert_eq!(
            status(admit(&guarded, inside, Some(b"Bearer s3cret"))),
            None
        );
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
    }
}

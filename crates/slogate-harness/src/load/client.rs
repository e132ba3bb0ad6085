//! Sending one request and classifying what came back with slogate's own rules.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use slogate_core::response::{ResponseHead, Termination};
use slogate_core::Outcome;

use crate::rules::ProxyRules;

use super::request::Outgoing;

/// The HTTP client: pooled HTTP/1.1 keep-alive connections.
pub type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A client keeping up to `idle` connections per host.
pub fn http_client(idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// How an exchange went, from the client's side.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The status received, if any.
    pub status: Option<u16>,
    /// What went wrong on the wire, if anything.
    pub failure: Option<Failure>,
    /// The outcome of each operation of the request.
    pub outcomes: Vec<Outcome>,
    /// Some element was refused with `PERSISTED_QUERY_NOT_FOUND`.
    pub persisted_not_found: bool,
    /// When the request left.
    pub sent: Instant,
    /// When the last byte arrived (or the client gave up).
    pub done: Instant,
}

impl Exchange {
    /// `200`, `502`, `timeout`, `reset`, ...: how the table names what the client saw.
    pub fn status_label(&self) -> String {
        match (&self.failure, self.status) {
            (Some(Failure::Timeout), _) => "timeout".into(),
            (Some(Failure::Transport), Some(s)) => format!("{s}+cut"),
            (Some(Failure::Transport), None) => "no response".into(),
            (None, Some(s)) => s.to_string(),
            (None, None) => "?".into(),
        }
    }
}

/// A failure on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The client's timeout fired: the client went away (`canceled` at the proxy).
    Timeout,
    /// No response, or a body cut short (`system_error`).
    Transport,
}

struct Received {
    status: u16,
    outcomes: Vec<Outcome>,
    persisted_not_found: bool,
    cut: bool,
}

/// Sends `out` to `base` (`http://host:port`) and classifies the response.
pub async fn exchange(
    client: &HttpClient,
    base: &str,
    out: &Outgoing,
    rules: &ProxyRules,
    timeout: Duration,
    accept_gzip: bool,
    request_id: &str,
) -> Exchange {
    let sent = Instant::now();
    let n = out.keys.len();
    let result = tokio::time::timeout(
        timeout,
        send(client, base, out, rules, accept_gzip, request_id, n),
    )
    .await;
    let done = Instant::now();
    let (status, failure, outcomes, persisted_not_found) = match result {
        Err(_) => (
            None,
            Some(Failure::Timeout),
            vec![Outcome::Canceled; n],
            false,
        ),
        Ok(None) => (
            None,
            Some(Failure::Transport),
            vec![Outcome::SystemError; n],
            false,
        ),
        Ok(Some(r)) if r.cut => (
            Some(r.status),
            Some(Failure::Transport),
            vec![Termination::UpstreamFailed.settle(Outcome::Success); n],
            false,
        ),
        Ok(Some(r)) => (Some(r.status), None, r.outcomes, r.persisted_not_found),
    };
    Exchange {
        status,
        failure,
        outcomes,
        persisted_not_found,
        sent,
        done,
    }
}

fn build(
    base: &str,
    out: &Outgoing,
    accept_gzip: bool,
    request_id: &str,
) -> Option<hyper::Request<Full<Bytes>>> {
    let mut req = hyper::Request::builder()
        .method(out.method.clone())
        .uri(format!("{base}{}", out.path))
        .header("x-request-id", request_id)
        .header("user-agent", "slogate-loadtest");
    if let Some(ct) = out.content_type {
        req = req.header("content-type", ct);
    }
    if accept_gzip {
        req = req.header("accept-encoding", "gzip");
    }
    req.body(Full::new(out.body.clone())).ok()
}

async fn send(
    client: &HttpClient,
    base: &str,
    out: &Outgoing,
    rules: &ProxyRules,
    accept_gzip: bool,
    request_id: &str,
    n: usize,
) -> Option<Received> {
    let req = build(base, out, accept_gzip, request_id)?;
    let response = client.request(req).await.ok()?;
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let error_code_header = rules.error_code_header.as_deref().and_then(header);
    let mut inspector = rules.policy.inspect(ResponseHead {
        status,
        graphql: out.graphql,
        has_body: out.method != http::Method::HEAD && !matches!(status, 204 | 304),
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        error_code_header,
    });
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(data) = f.data_ref() {
                    inspector.feed(data);
                }
            }
            Err(_) => {
                return Some(Received {
                    status,
                    outcomes: Vec::new(),
                    persisted_not_found: false,
                    cut: true,
                })
            }
        }
    }
    let verdict = inspector.finish();
    let persisted_not_found = verdict
        .elements
        .iter()
        .any(|(_, codes)| codes.iter().any(|(c, _)| c == "PERSISTED_QUERY_NOT_FOUND"));
    Some(Received {
        status,
        outcomes: (0..n).map(|i| verdict.for_operation(i).0).collect(),
        persisted_not_found,
        cut: false,
    })
}

/// GETs `url` and returns the body as text.
pub async fn get_text(client: &HttpClient, url: &str, timeout: Duration) -> anyhow::Result<String> {
    let req = hyper::Request::get(url)
        .header("user-agent", "slogate-loadtest")
        .body(Full::new(Bytes::new()))?;
    let fetch = async {
        let response = client.request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "GET {url}: HTTP {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| anyhow::anyhow!("GET {url}: no answer within {timeout:?}"))?
}

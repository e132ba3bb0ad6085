//! The end of an exchange: its [`Account`] becomes metrics and an access-log line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Method};
use slogate_core::exchange::{Account, Ending, Exchange};
use slogate_core::Kind;
use slogate_metrics::RequestLabels;

use crate::access_log::{rfc3339_into, AccessRecord, LoggedOperation};
use crate::runtime::Runtime;

/// What the access log says of a request besides its account.
pub struct LogFields {
    /// When the request arrived.
    pub started_at: SystemTime,
    /// The request id (the client's or slogate's).
    pub request_id: HeaderValue,
    /// The client's address.
    pub client: LoggedClient,
    /// The method.
    pub method: Method,
    /// The path (with the query when `access_log.include_query`).
    pub path: String,
    /// The client's `User-Agent`.
    pub user_agent: Option<HeaderValue>,
}

/// The client's address as the access log writes it.
#[derive(Clone, Debug)]
pub enum LoggedClient {
    /// A Unix-socket connection: no address.
    Unix,
    /// The connection's peer, formatted once per connection.
    Peer(HeaderValue),
    /// An address a trusted proxy forwarded, formatted when the line is written.
    Forwarded(IpAddr),
}

/// One exchange on its way: the state machine and the log fields, owned by the response
/// body so that it is accounted for however the response ends.
pub struct Tracker {
    /// The exchange's accounting.
    pub exchange: Exchange<'static>,
    /// The runtime.
    pub rt: &'static Runtime,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// The upstream failure, for the access log.
    pub error: Option<String>,
    /// Set when the app failed before its head and slogate answered this status.
    pub upstream_failed: Option<u16>,
    /// The backend that answered (or failed).
    pub backend: Option<usize>,
    /// Access-log fields.
    pub log: LogFields,
}

impl Tracker {
    /// Accounts for the exchange (once: later calls do nothing).
    pub fn finish(&mut self, ending: Ending) {
        let ending = match (self.upstream_failed, ending) {
            (Some(status), Ending::Complete) => Ending::UpstreamFailed {
                status: Some(status),
            },
            (Some(_), Ending::ClientGone) => Ending::UpstreamFailed { status: None },
            (_, e) => e,
        };
        let Some(account) = self.exchange.end(ending, Instant::now()) else {
            return;
        };
        let rt = self.rt;
        let labels = record(rt, &account);
        if rt.access_log.enabled() {
            let error = self.error.take();
            write_log(
                rt,
                &account,
                &labels,
                self.bytes_sent,
                error,
                self.backend,
                &self.log,
            );
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // Dropped before its end was told: the client's connection went away and took the
        // request with it (hyper drops a request's future when its client closes).
        self.finish(Ending::ClientGone);
    }
}

/// Counts every operation and its error codes; returns the guarded operation labels.
fn record(rt: &Runtime, account: &Account) -> Vec<Arc<str>> {
    let service = rt.service();
    let duration = account.duration.as_secs_f64();
    let guard = match account.kind {
        Kind::Graphql => &rt.guards.graphql_operations,
        Kind::Http => &rt.guards.http_routes,
    };
    let mut labels = Vec::with_capacity(account.operations.len());
    for op in &account.operations {
        let admitted = guard.admit_entry(&op.name);
        if admitted.replaced {
            rt.metrics.observe_overflow(service, "operation");
        }
        let series = RequestLabels {
            service,
            kind: account.kind,
            operation: &admitted.label,
            operation_type: op.op_type,
            outcome: op.outcome,
        };
        // Resolved once per label set: no label is hashed for an operation seen before.
        admitted.handles.get(&rt.metrics, &series).observe(duration);
        let label = admitted.label;
        for (code, n) in &op.error_codes {
            let (code_label, replaced) = rt.guards.error_codes.admit_str(code);
            if replaced {
                rt.metrics.observe_overflow(service, "code");
            }
            rt.metrics
                .observe_graphql_errors(service, &label, &code_label, *n);
        }
        labels.push(label);
    }
    if let Some(limit) = account.limit {
        rt.metrics.observe_limit(service, limit);
    }
    rt.metrics
        .observe_dropped_elements(service, account.dropped_elements);
    labels
}

fn write_log(
    rt: &Runtime,
    account: &Account,
    labels: &[Arc<str>],
    bytes_sent: u64,
    error: Option<String>,
    backend: Option<usize>,
    log: &LogFields,
) {
    let mut time = [0u8; 24];
    let mut ip = [0u8; 48];
    let client = match &log.client {
        LoggedClient::Unix => "unix",
        LoggedClient::Peer(text) => text.to_str().unwrap_or(""),
        LoggedClient::Forwarded(addr) => {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut ip[..]);
            let _ = write!(cursor, "{addr}");
            let n = cursor.position() as usize;
            std::str::from_utf8(&ip[..n]).unwrap_or("")
        }
    };
    let operations: Vec<LoggedOperation<'_>> = account
        .operations
        .iter()
        .zip(labels)
        .map(|(op, label)| LoggedOperation {
            name: label,
            op_type: op.op_type,
            outcome: op.outcome,
            error_codes: &op.error_codes,
        })
        .collect();
    let record = AccessRecord {
        time: rfc3339_into(log.started_at, &mut time),
        request_id: text(&log.request_id).unwrap_or(""),
        client,
        method: &log.method,
        path: &log.path,
        status: account.status,
        duration: account.duration.as_secs_f64(),
        upstream_duration: account.upstream_duration.map(|d| d.as_secs_f64()),
        upstream: backend.map(|i| rt.backends.label(i)),
        bytes_sent: bytes_sent as usize,
        bytes_received: account.bytes_received as usize,
        kind: account.kind,
        service: rt.service(),
        outcome: account.outcome,
        operations: &operations,
        error: if account.upstream_failed {
            error.as_deref()
        } else {
            None
        },
        user_agent: log.user_agent.as_ref().and_then(text),
    };
    rt.access_log.write(&record);
}

fn text(v: &HeaderValue) -> Option<&str> {
    v.to_str().ok()
}

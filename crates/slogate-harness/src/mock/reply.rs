//! The bodies and shapes of the mock's answers.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::scenario::{AnswerKind, StatusBody};

/// How the mock answers one HTTP request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response after `delay`.
    Respond {
        /// Status.
        status: u16,
        /// Content type.
        content_type: &'static str,
        /// Body (uncompressed).
        body: Bytes,
        /// Gzip it.
        gzip: bool,
        /// Send it in this many chunks, this far apart.
        trickle: Option<(u32, Duration)>,
        /// Wait before answering.
        delay: Duration,
    },
    /// Reset the connection after `delay`.
    Reset {
        /// Wait before the reset.
        delay: Duration,
    },
    /// Headers and half of `body`, then a reset.
    Truncated {
        /// The body that is cut.
        body: Bytes,
        /// Wait before answering.
        delay: Duration,
    },
    /// Answer `body` only after `duration`.
    Hang {
        /// How long to wait.
        duration: Duration,
        /// What is answered after the wait, if anyone is still there.
        body: Bytes,
    },
}

const JSON: &str = "application/json; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// Rails' `public/500.html`, abridged.
pub const ERROR_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>We're sorry, but something went wrong (500)</title></head>\n<body><div class=\"dialog\"><h1>We're sorry, but something went wrong.</h1></div></body>\n</html>\n";

/// A `400` for a body nobody can read.
pub fn invalid_request(delay: Duration) -> Reply {
    let body = json!({"errors": [{"message": "invalid JSON in the request body"}]});
    json(400, &body, delay, false, None)
}

/// A JSON answer.
pub fn json(
    status: u16,
    body: &Value,
    delay: Duration,
    gzip: bool,
    trickle: Option<(u32, Duration)>,
) -> Reply {
    Reply::Respond {
        status,
        content_type: JSON,
        body: Bytes::from(body.to_string()),
        gzip,
        trickle,
        delay,
    }
}

fn success_body() -> Bytes {
    Bytes::from_static(br#"{"data":{"ok":true}}"#)
}

/// The response for an answer that decides the whole response.
pub fn response_level(answer: &AnswerKind, delay: Duration, gzip: bool, graphql: bool) -> Reply {
    match answer {
        AnswerKind::Status { status, body } => {
            let (content_type, body) = match body {
                StatusBody::Html => (HTML, Bytes::from_static(ERROR_PAGE.as_bytes())),
                StatusBody::Json => {
                    let text = json!({"errors": [{"message": format!("HTTP {status}")}]});
                    (JSON, Bytes::from(text.to_string()))
                }
                StatusBody::Empty => (HTML, Bytes::new()),
            };
            Reply::Respond {
                status: *status,
                content_type,
                gzip: gzip && !body.is_empty(),
                body,
                trickle: None,
                delay,
            }
        }
        AnswerKind::NotJson => Reply::Respond {
            status: 200,
            content_type: HTML,
            body: Bytes::from_static(ERROR_PAGE.as_bytes()),
            gzip,
            trickle: None,
            delay,
        },
        AnswerKind::Reset => Reply::Reset { delay },
        AnswerKind::Truncated => Reply::Truncated {
            body: padded_success(graphql),
            delay,
        },
        AnswerKind::Hang { duration } => Reply::Hang {
            duration: *duration,
            body: success_body(),
        },
        _ => Reply::Respond {
            status: 200,
            content_type: JSON,
            body: success_body(),
            gzip,
            trickle: None,
            delay,
        },
    }
}

/// A success body long enough that cutting it in half leaves something on both sides.
fn padded_success(graphql: bool) -> Bytes {
    let pad = "x".repeat(4096);
    let body = if graphql {
        json!({"data": {"pad": pad}})
    } else {
        json!({"pad": pad})
    };
    Bytes::from(body.to_string())
}

fn field_name(op: &str) -> String {
    let mut chars = op.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .collect();
    out.extend(chars.filter(|c| c.is_ascii_alphanumeric() || *c == '_'));
    if out.is_empty() {
        out.push_str("result");
    }
    out
}

fn pad(body_kb: u32) -> Option<String> {
    (body_kb > 0).then(|| "x".repeat(body_kb as usize * 1024))
}

fn error(message: &str, code: &Option<String>, path: Option<&str>) -> Value {
    let mut e = json!({ "message": message });
    if let Some(p) = path {
        e["path"] = json!([p]);
    }
    if let Some(c) = code {
        e["extensions"] = json!({ "code": c });
    }
    e
}

/// The JSON of one GraphQL response element.
pub fn element_json(answer: &AnswerKind, op: &str, body_kb: u32) -> Value {
    let field = field_name(op);
    match answer {
        AnswerKind::FieldError { code } => json!({
            "data": { field.clone(): null },
            "errors": [error(&format!("{op} failed"), code, Some(&field))],
        }),
        AnswerKind::RequestError { code } => json!({
            "errors": [error(&format!("{op} was refused"), code, None)],
        }),
        _ => {
            let mut value = json!({ "id": "1", "__typename": "Result" });
            if let Some(p) = pad(body_kb) {
                value["pad"] = Value::String(p);
            }
            json!({ "data": { field: value } })
        }
    }
}

/// The JSON of a REST success.
pub fn rest_json(route: &str, path: &str, body_kb: u32) -> Value {
    let mut value = json!({ "route": route, "path": path });
    if let Some(p) = pad(body_kb) {
        value["pad"] = Value::String(p);
    }
    value
}

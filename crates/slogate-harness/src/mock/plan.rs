//! Deciding what the mock answers: which operations a request carries (as a GraphQL server
//! reads them), which answer each gets, and how the whole HTTP response looks.

use std::time::Duration;

use serde_json::Value;
use slogate_core::request::{sha256_hex, ExtractedRequest, OperationExtractor};

use crate::counts::OpKey;
use crate::rng::Rng;
use crate::scenario::{AnswerKind, Behavior, GzipMode, Scenario, StatusBody};

use super::reply::{self, Reply};

/// What a request was found to carry and what the mock decided.
pub struct Decision {
    /// Each operation (a batch of 3 gives 3) and the answer it is counted under.
    pub ops: Vec<(OpKey, AnswerKind, bool)>,
    /// The response.
    pub reply: Reply,
}

/// What the mock needs to know about the request beyond its body.
pub struct RequestFacts<'a> {
    /// The method.
    pub method: &'a str,
    /// The path.
    pub path: &'a str,
    /// The query string.
    pub query: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The client accepts gzip.
    pub accepts_gzip: bool,
}

/// One element of a GraphQL request as the server reads it.
#[derive(Default)]
struct Element {
    query: Option<String>,
    hash: Option<String>,
}

/// The elements of a GraphQL request, or `None` when the body cannot be read.
fn elements(facts: &RequestFacts<'_>, body: &[u8]) -> Option<(Vec<Element>, bool)> {
    if facts.method.eq_ignore_ascii_case("GET") {
        let mut e = Element::default();
        for (k, v) in form_urlencoded::parse(facts.query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "query" => e.query = Some(v.into_owned()),
                "extensions" => e.hash = serde_json::from_str(&v).ok().and_then(|x| hash_of(&x)),
                _ => {}
            }
        }
        return (e.query.is_some() || e.hash.is_some()).then_some((vec![e], false));
    }
    let mime = facts
        .content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/graphql" {
        let query = String::from_utf8(body.to_vec()).ok()?;
        return Some((
            vec![Element {
                query: Some(query),
                hash: None,
            }],
            false,
        ));
    }
    // serde_json refuses nesting past 128 levels, as Rails' JSON parser does past 100.
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(items) if !items.is_empty() => {
            let els = items.iter().map(element).collect::<Option<Vec<_>>>()?;
            Some((els, true))
        }
        v @ Value::Object(_) => Some((vec![element(&v)?], false)),
        _ => None,
    }
}

fn element(v: &Value) -> Option<Element> {
    let obj = v.as_object()?;
    Some(Element {
        query: obj.get("query").and_then(Value::as_str).map(String::from),
        hash: obj.get("extensions").and_then(hash_of),
    })
}

fn hash_of(extensions: &Value) -> Option<String> {
    extensions
        .get("persistedQuery")?
        .get("sha256Hash")?
        .as_str()
        .map(str::to_ascii_lowercase)
}

/// The state a decision reads and updates.
pub struct Context<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Names operations as a GraphQL server does (no inspection cap to speak of).
    pub extractor: &'a OperationExtractor,
    /// Registered persisted-query hashes.
    pub apq: &'a std::sync::Mutex<std::collections::HashSet<String>>,
}

/// An element's answer before the response as a whole is decided.
struct Drawn {
    key: OpKey,
    name: String,
    answer: AnswerKind,
    latency: Duration,
    behavior: Option<Behavior>,
}

/// Decides the answer to a GraphQL request.
pub fn graphql(
    ctx: &Context<'_>,
    facts: &RequestFacts<'_>,
    body: &[u8],
    rng: &mut Rng,
) -> Decision {
    let extracted = name_operations(ctx.extractor, facts, body);
    let names: Vec<String> = extracted
        .operations
        .iter()
        .map(|o| o.name.to_string())
        .collect();
    let Some((els, batch)) = elements(facts, body) else {
        let answer = AnswerKind::Status {
            status: 400,
            body: StatusBody::Json,
        };
        let ops = names
            .iter()
            .map(|n| (OpKey::graphql(n), answer.clone(), true))
            .collect();
        return Decision {
            ops,
            reply: reply::invalid_request(ctx.scenario.default_latency.sample(rng)),
        };
    };
    let drawn: Vec<Drawn> = els
        .iter()
        .enumerate()
        .map(|(i, el)| {
            let name = names.get(i).cloned().unwrap_or_else(|| "(invalid)".into());
            draw(ctx, el, name, rng)
        })
        .collect();
    decide(drawn, batch, facts.accepts_gzip)
}

fn name_operations(
    extractor: &OperationExtractor,
    facts: &RequestFacts<'_>,
    body: &[u8],
) -> ExtractedRequest {
    let mut inspector = extractor.inspect(facts.method, facts.content_type, facts.query);
    inspector.feed(body);
    inspector.finish(extractor)
}

fn draw(ctx: &Context<'_>, el: &Element, name: String, rng: &mut Rng) -> Drawn {
    let spec = ctx.scenario.operation(&name);
    let behavior = spec.map(|s| s.behavior.clone());
    let latency = match &behavior {
        Some(b) => b.latency.sample(rng),
        None => ctx.scenario.default_latency.sample(rng),
    };
    let pick = |rng: &mut Rng| {
        behavior
            .as_ref()
            .map_or(AnswerKind::Success, |b| b.pick(rng).clone())
    };
    let answer = match (&el.hash, &el.query) {
        (Some(hash), None) => {
            let known = ctx.apq.lock().map(|s| s.contains(hash)).unwrap_or(false);
            if known {
                pick(rng)
            } else {
                AnswerKind::RequestError {
                    code: Some("PERSISTED_QUERY_NOT_FOUND".into()),
                }
            }
        }
        (Some(hash), Some(query)) if sha256_hex(query) != *hash => AnswerKind::RequestError {
            code: Some("BAD_REQUEST".into()),
        },
        (Some(hash), Some(_)) => {
            if let Ok(mut set) = ctx.apq.lock() {
                set.insert(hash.clone());
            }
            pick(rng)
        }
        (None, _) => pick(rng),
    };
    Drawn {
        key: OpKey::graphql(&name),
        name,
        answer,
        latency,
        behavior,
    }
}

fn gzip_wanted(mode: GzipMode, accepts: bool) -> bool {
    match mode {
        GzipMode::Never => false,
        GzipMode::WhenAccepted => accepts,
        GzipMode::Always => true,
    }
}

/// One response for all elements: the first response-level answer wins for every element.
fn decide(drawn: Vec<Drawn>, batch: bool, accepts_gzip: bool) -> Decision {
    let latency = drawn.iter().map(|d| d.latency).max().unwrap_or_default();
    let first = drawn.first().and_then(|d| d.behavior.as_ref());
    let gzip = first.is_some_and(|b| gzip_wanted(b.gzip, accepts_gzip));
    let body_kb = first.map_or(0, |b| b.body_kb);
    let overriding = drawn
        .iter()
        .find(|d| d.answer.is_response_level())
        .map(|d| d.answer.clone());
    if let Some(answer) = overriding {
        let ops = drawn
            .into_iter()
            .map(|d| (d.key, answer.clone(), true))
            .collect();
        return Decision {
            ops,
            reply: reply::response_level(&answer, latency, gzip, true),
        };
    }
    let trickle = drawn.iter().find_map(|d| match d.answer {
        AnswerKind::SlowBody { chunks, interval } => Some((chunks, interval)),
        _ => None,
    });
    let bodies: Vec<Value> = drawn
        .iter()
        .map(|d| reply::element_json(&d.answer, &d.name, body_kb))
        .collect();
    let json = if batch {
        Value::Array(bodies)
    } else {
        bodies.into_iter().next().unwrap_or(Value::Null)
    };
    let ops = drawn.into_iter().map(|d| (d.key, d.answer, true)).collect();
    Decision {
        ops,
        reply: reply::json(200, &json, latency, gzip, trickle),
    }
}

/// Decides the answer to a REST request. `name` is the route's label when no scenario
/// route matches (the mock then answers 404, as Rails does).
pub fn rest(
    scenario: &Scenario,
    facts: &RequestFacts<'_>,
    unmatched_name: Option<String>,
    rng: &mut Rng,
) -> Decision {
    let Some(route) = scenario.route(facts.method, facts.path) else {
        let answer = AnswerKind::Status {
            status: 404,
            body: StatusBody::Html,
        };
        let ops = unmatched_name
            .map(|n| vec![(OpKey::http(&n), answer.clone(), false)])
            .unwrap_or_default();
        let delay = scenario.default_latency.sample(rng);
        return Decision {
            ops,
            reply: reply::response_level(&answer, delay, false, false),
        };
    };
    let b = &route.behavior;
    let latency = b.latency.sample(rng);
    let answer = b.pick(rng).clone();
    let gzip = gzip_wanted(b.gzip, facts.accepts_gzip);
    let reply = match &answer {
        AnswerKind::SlowBody { chunks, interval } => {
            let body = reply::rest_json(&route.name, facts.path, b.body_kb);
            reply::json(200, &body, latency, gzip, Some((*chunks, *interval)))
        }
        a if a.is_response_level() => reply::response_level(a, latency, gzip, false),
        _ => reply::json(
            200,
            &reply::rest_json(&route.name, facts.path, b.body_kb),
            latency,
            gzip,
            None,
        ),
    };
    Decision {
        ops: vec![(OpKey::http(&route.name), answer, false)],
        reply,
    }
}

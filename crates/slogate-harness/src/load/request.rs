//! The requests the load tester sends, and the labels slogate must give their operations.

use bytes::Bytes;
use serde_json::Value;
use slogate_core::request::{sha256_hex, OperationExtractor};

use crate::counts::OpKey;
use crate::rng::Rng;
use crate::rules::ProxyRules;
use crate::scenario::{OperationSpec, RestSpec, Scenario, SendMode};

/// One HTTP request to send.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// `Content-Type`, if there is a body.
    pub content_type: Option<&'static str>,
    /// The body.
    pub body: Bytes,
    /// Whether slogate treats the path as a GraphQL endpoint.
    pub graphql: bool,
    /// The label slogate must give each operation, in request order.
    pub keys: Vec<OpKey>,
    /// The body is over slogate's `server.max_body_size`: slogate answers `413` itself and
    /// the request never reaches the upstream.
    pub refused_by_proxy: bool,
    /// For a hash-only persisted query: the request with the document, sent after a
    /// `PERSISTED_QUERY_NOT_FOUND` (Apollo's protocol).
    pub then: Option<Box<Outgoing>>,
}

/// What a scenario entry sends.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Operation(usize),
    Batch(usize),
    Rest(usize),
}

/// The weighted mix of a scenario's operations, batches and routes.
pub struct Mix {
    entries: Vec<Entry>,
    weights: Vec<f64>,
}

const JSON: &str = "application/json";

impl Mix {
    /// The mix of `scenario`.
    pub fn new(scenario: &Scenario) -> Mix {
        let mut entries = Vec::new();
        let mut weights = Vec::new();
        for (i, o) in scenario.operations.iter().enumerate() {
            entries.push(Entry::Operation(i));
            weights.push(o.weight);
        }
        for (i, b) in scenario.batches.iter().enumerate() {
            entries.push(Entry::Batch(i));
            weights.push(b.weight);
        }
        for (i, r) in scenario.rest.iter().enumerate() {
            entries.push(Entry::Rest(i));
            weights.push(r.weight);
        }
        Mix { entries, weights }
    }

    /// Draws the next request.
    pub fn next(&self, s: &Scenario, namer: &Namer, rng: &mut Rng) -> Outgoing {
        match self.entries[rng.pick(&self.weights)] {
            Entry::Operation(i) => operation(s, &s.operations[i], namer, rng),
            Entry::Batch(i) => batch(s, &s.batches[i].operations, namer),
            Entry::Rest(i) => rest(&s.rest[i], namer, rng),
        }
    }
}

/// Names operations with slogate's own rules, from the bytes actually sent.
pub struct Namer {
    rules: ProxyRules,
    extractor: OperationExtractor,
}

impl Namer {
    /// A namer applying `rules`.
    pub fn new(rules: ProxyRules) -> Namer {
        let extractor = OperationExtractor::new(rules.extractor.clone());
        Namer { rules, extractor }
    }

    /// The rules.
    pub fn rules(&self) -> &ProxyRules {
        &self.rules
    }

    /// Labels of the operations of a request, as slogate gives them.
    fn keys(
        &self,
        method: &http::Method,
        path_and_query: &str,
        ct: Option<&str>,
        body: &[u8],
    ) -> (bool, Vec<OpKey>) {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        if self.rules.is_graphql(path) {
            let mut inspector = self.extractor.inspect(method.as_str(), ct, query);
            inspector.feed(body);
            let ops = inspector.finish(&self.extractor).operations;
            let keys = ops.iter().map(|o| OpKey::graphql(&o.name)).collect();
            return (true, keys);
        }
        let key = self
            .rules
            .routes
            .name(method.as_str(), path)
            .map(|n| OpKey::http(&n));
        (false, key.into_iter().collect())
    }

    fn outgoing(
        &self,
        method: http::Method,
        path: String,
        ct: Option<&'static str>,
        body: Bytes,
    ) -> Outgoing {
        let refused_by_proxy = self
            .rules
            .max_body_size
            .is_some_and(|max| body.len() as u64 > max);
        // A body slogate refuses is never read: its operations are not known.
        let named_body = if refused_by_proxy { &[][..] } else { &body[..] };
        let (graphql, mut keys) = self.keys(&method, &path, ct, named_body);
        if refused_by_proxy && graphql {
            keys = vec![OpKey::graphql("(invalid)")];
        }
        Outgoing {
            method,
            path,
            content_type: ct,
            body,
            graphql,
            keys,
            refused_by_proxy,
            then: None,
        }
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The name, document and variables of one request of `op`.
fn document(op: &OperationSpec, rng: &mut Rng) -> (String, String, String) {
    let (name, mut doc) = match op.random_names {
        Some(n) => {
            let name = format!("{}_{}", op.name, rng.below(u64::from(n)));
            let doc = format!("{} {name} {{ __typename }}", op.op_type.as_str());
            (name, doc)
        }
        None => (op.name.clone(), op.document.clone()),
    };
    if op.pad_kb > 0 {
        doc.push_str("\n# ");
        doc.push_str(&"x".repeat(op.pad_kb as usize * 1024));
        doc.push('\n');
    }
    let variables = if op.nest_depth > 0 {
        let d = op.nest_depth as usize;
        format!("{{\"deep\":{}{}}}", "[".repeat(d), "]".repeat(d))
    } else {
        op.variables
            .as_ref()
            .map_or("{}".to_string(), Value::to_string)
    };
    (name, doc, variables)
}

/// `{"operationName":..,"query":..,"variables":..}` with `operationName` first, as Apollo
/// Client sends it, so a proxy reading a bounded prefix still finds the name.
fn post_body(name: &str, query: Option<&str>, variables: &str, hash: Option<&str>) -> String {
    let mut body = format!("{{\"operationName\":{}", json_string(name));
    if let Some(q) = query {
        body.push_str(",\"query\":");
        body.push_str(&json_string(q));
    }
    body.push_str(",\"variables\":");
    body.push_str(variables);
    if let Some(h) = hash {
        body.push_str(&format!(
            ",\"extensions\":{{\"persistedQuery\":{{\"version\":1,\"sha256Hash\":\"{h}\"}}}}"
        ));
    }
    body.push('}');
    body
}

fn operation(s: &Scenario, op: &OperationSpec, namer: &Namer, rng: &mut Rng) -> Outgoing {
    let (name, doc, variables) = document(op, rng);
    let path = s.graphql_path.clone();
    let post = |body: String| {
        namer.outgoing(
            http::Method::POST,
            path.clone(),
            Some(JSON),
            Bytes::from(body),
        )
    };
    match op.send {
        SendMode::Post => post(post_body(&name, Some(&doc), &variables, None)),
        SendMode::Get => {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("operationName", &name)
                .append_pair("query", &doc)
                .append_pair("variables", &variables)
                .finish();
            namer.outgoing(
                http::Method::GET,
                format!("{path}?{query}"),
                None,
                Bytes::new(),
            )
        }
        SendMode::Persisted => {
            let hash = sha256_hex(&doc);
            let mut first = post(post_body(&name, None, &variables, Some(&hash)));
            first.then = Some(Box::new(post(post_body(
                &name,
                Some(&doc),
                &variables,
                Some(&hash),
            ))));
            first
        }
        SendMode::Malformed => post(malformed(&name, &doc, rng)),
    }
}

/// A body nobody can read, in one of a few shapes.
fn malformed(name: &str, doc: &str, rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "{{\"operationName\":{},\"query\":{}",
            json_string(name),
            json_string(doc)
        ),
        1 => "\u{1}\u{7f}<<not json at all>>".to_string(),
        2 => "[]".to_string(),
        _ => "\"just a string\"".to_string(),
    }
}

fn batch(s: &Scenario, ops: &[usize], namer: &Namer) -> Outgoing {
    let mut rng = Rng::new(0);
    let elements: Vec<String> = ops
        .iter()
        .map(|&i| {
            let (name, doc, variables) = document(&s.operations[i], &mut rng);
            post_body(&name, Some(&doc), &variables, None)
        })
        .collect();
    let body = format!("[{}]", elements.join(","));
    namer.outgoing(
        http::Method::POST,
        s.graphql_path.clone(),
        Some(JSON),
        Bytes::from(body),
    )
}

fn rest(r: &RestSpec, namer: &Namer, rng: &mut Rng) -> Outgoing {
    let path: Vec<String> = r
        .path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                (r.ids.0 + rng.below(r.ids.1 - r.ids.0 + 1)).to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    let method = http::Method::from_bytes(r.method.as_bytes()).unwrap_or(http::Method::GET);
    let (ct, body) = if matches!(method, http::Method::GET | http::Method::HEAD) {
        (None, Bytes::new())
    } else {
        let body = r.body.as_ref().map_or("{}".to_string(), Value::to_string);
        (Some(JSON), Bytes::from(body))
    };
    namer.outgoing(method, path.join("/"), ct, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        Scenario::parse("t.yaml", text).unwrap()
    }

    #[test]
    fn labels_come_from_the_bytes_sent() {
        let s = scenario(
            "operations:\n  - name: GetCourse\n    send: get\n  - name: Cached\n    send: persisted\n    weight: 0\n  - name: Bad\n    send: malformed\n    weight: 0\n  - name: Rnd\n    random_names: 3\n    weight: 0\nbatches:\n  - operations: [GetCourse, Cached]\n    weight: 0\nrest:\n  - path: /api/v1/courses/{id}\n    weight: 0\n",
        );
        let namer = Namer::new(ProxyRules::defaults());
        let mut rng = Rng::new(1);
        let get = operation(&s, &s.operations[0], &namer, &mut rng);
        assert_eq!(get.method, http::Method::GET);
        assert_eq!(get.keys, vec![OpKey::graphql("GetCourse")]);
        let pq = operation(&s, &s.operations[1], &namer, &mut rng);
        assert!(!String::from_utf8_lossy(&pq.body).contains("query"));
        assert_eq!(pq.keys, vec![OpKey::graphql("Cached")]);
        assert_eq!(
            pq.then.as_ref().map(|t| t.keys.clone()),
            Some(vec![OpKey::graphql("Cached")])
        );
        for _ in 0..8 {
            let bad = operation(&s, &s.operations[2], &namer, &mut rng);
            assert_eq!(bad.keys, vec![OpKey::graphql("(invalid)")]);
        }
        let rnd = operation(&s, &s.operations[3], &namer, &mut rng);
        assert!(s.operation(&rnd.keys[0].operation).is_some());
        let b = batch(&s, &s.batches[0].operations, &namer);
        assert_eq!(
            b.keys,
            vec![OpKey::graphql("GetCourse"), OpKey::graphql("Cached")]
        );
        let r = rest(&s.rest[0], &namer, &mut rng);
        assert_eq!(r.keys, vec![OpKey::http("GET /api/v1/courses/:id")]);
        assert!(s.route("GET", &r.path).is_some());
    }
}

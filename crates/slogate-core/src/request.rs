//! Request side: which GraphQL operation(s) a request carries.
//!
//! An [`OperationExtractor`] is built once and shared; each request gets a
//! [`RequestInspector`] that is fed the body chunks as they stream upstream and reads at most
//! [`ExtractorOptions::max_inspect_bytes`] of them. Nothing here delays or alters the body: the
//! inspector only looks.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::cache::{DocumentCache, PersistedOperation, PersistedQueries};
use crate::json::{Interest, JsonScanner, Key, Status, Tag, ValueKind, Visitor, ROOT};
use crate::outcome::{sentinel, OperationType};

/// Longest operation name taken from a request; longer names are `(invalid)`.
pub const MAX_OPERATION_NAME: usize = 128;

/// Tuning for an [`OperationExtractor`].
#[derive(Clone, Debug)]
pub struct ExtractorOptions {
    /// Request body bytes read at most; the rest streams upstream unread.
    pub max_inspect_bytes: usize,
    /// Operations counted at most in one batch; the rest of the batch is not counted.
    pub max_batch: usize,
    /// Bytes of documents remembered with their operations.
    pub document_cache_bytes: usize,
    /// Persisted-query hashes remembered.
    pub persisted_queries: usize,
}

impl Default for ExtractorOptions {
    fn default() -> Self {
        ExtractorOptions {
            max_inspect_bytes: 1024 * 1024,
            max_batch: 100,
            document_cache_bytes: 32 * 1024 * 1024,
            persisted_queries: 10_000,
        }
    }
}

/// One operation as labelled in metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The operation name, or one of the [`sentinel`] values.
    pub name: Arc<str>,
    /// Its type.
    pub op_type: OperationType,
}

impl Operation {
    /// An operation that could not be read.
    pub fn invalid() -> Operation {
        Operation {
            name: Arc::from(sentinel::INVALID),
            op_type: OperationType::Unknown,
        }
    }

    fn named(name: Option<Arc<str>>, op_type: OperationType) -> Operation {
        Operation {
            name: name.unwrap_or_else(|| Arc::from(sentinel::ANONYMOUS)),
            op_type,
        }
    }
}

/// What a request carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractedRequest {
    /// One entry per operation, in request order (a batch of 3 gives 3).
    pub operations: Vec<Operation>,
    /// The body was a JSON array (batching): the response is an array in the same order.
    pub batch: bool,
    /// The body was longer than the inspection cap; operations past it are unknown.
    pub truncated: bool,
}

impl ExtractedRequest {
    fn invalid() -> ExtractedRequest {
        ExtractedRequest {
            operations: vec![Operation::invalid()],
            batch: false,
            truncated: false,
        }
    }
}

/// Reads operations from requests; one per proxy, shared by all requests.
pub struct OperationExtractor {
    options: ExtractorOptions,
    documents: DocumentCache,
    persisted: PersistedQueries,
}

impl OperationExtractor {
    /// An extractor with empty caches.
    pub fn new(options: ExtractorOptions) -> Self {
        OperationExtractor {
            documents: DocumentCache::new(options.document_cache_bytes),
            persisted: PersistedQueries::new(options.persisted_queries),
            options,
        }
    }

    /// The options it was built with.
    pub fn options(&self) -> &ExtractorOptions {
        &self.options
    }

    /// The cache of documents (for introspection and tests).
    pub fn documents(&self) -> &DocumentCache {
        &self.documents
    }

    /// The persisted-query map (for introspection and tests).
    pub fn persisted(&self) -> &PersistedQueries {
        &self.persisted
    }

    /// Starts inspecting a request to a GraphQL endpoint.
    ///
    /// `query_string` is the URL's query without `?`; `content_type` the request's header.
    pub fn inspect(
        &self,
        method: &str,
        content_type: Option<&str>,
        query_string: Option<&str>,
    ) -> RequestInspector {
        let body = if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
            Body::Params(query_string.unwrap_or("").as_bytes().to_vec())
        } else {
            Body::for_content_type(content_type, query_string, &self.options)
        };
        RequestInspector {
            body,
            seen: 0,
            limit: self.options.max_inspect_bytes,
            truncated: false,
        }
    }

    /// Names the operation a request element describes.
    fn resolve(&self, raw: &RawOperation) -> Operation {
        if raw.name_invalid {
            return Operation::invalid();
        }
        let name = raw.operation_name.as_deref();
        if let Some(query) = &raw.query {
            return self.resolve_document(query, name, raw.persisted_hash.as_deref());
        }
        if let Some(hash) = raw.persisted_hash.as_deref() {
            let learned = self.persisted.lookup(hash);
            return match (name, learned) {
                (Some(n), learned) => Operation {
                    name: Arc::from(n),
                    op_type: learned.map_or(OperationType::Unknown, |l| l.op_type),
                },
                (None, Some(l)) => Operation::named(l.name, l.op_type),
                (None, None) => Operation::invalid(),
            };
        }
        match name {
            Some(n) => Operation {
                name: Arc::from(n),
                op_type: OperationType::Unknown,
            },
            None => Operation::invalid(),
        }
    }

    fn resolve_document(&self, query: &Query, name: Option<&str>, hash: Option<&str>) -> Operation {
        let verdict = self
            .documents
            .get_or_scan_keyed(&query.key(), || query.decoded());
        let Ok(summary) = verdict.as_ref() else {
            return Operation::invalid();
        };
        let selected = summary.select(name);
        if let (Some(hash), Some(op)) = (hash, selected) {
            if query
                .decoded()
                .is_some_and(|text| sha256_hex(&text) == hash)
            {
                self.persisted.learn(
                    hash,
                    PersistedOperation {
                        name: op.name.clone(),
                        op_type: op.op_type,
                    },
                );
            }
        }
        match (name, selected) {
            (Some(n), Some(op)) => Operation {
                name: op.name.clone().unwrap_or_else(|| Arc::from(n)),
                op_type: op.op_type,
            },
            (Some(n), None) => Operation {
                name: Arc::from(n),
                op_type: OperationType::Unknown,
            },
            (None, Some(op)) => Operation::named(op.name.clone(), op.op_type),
            (None, None) => Operation::invalid(),
        }
    }

    fn resolve_all(&self, raws: &[RawOperation], batch: bool, truncated: bool) -> ExtractedRequest {
        let limit = if batch { self.options.max_batch } else { 1 };
        ExtractedRequest {
            operations: raws.iter().take(limit).map(|r| self.resolve(r)).collect(),
            batch,
            truncated: truncated || raws.len() > limit,
        }
    }
}

/// Lowercase hex SHA-256 of a document, as automatic persisted queries name it.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Whether `s` is a GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`).
pub fn is_graphql_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'_' | b'a'..=b'z' | b'A'..=b'Z'))
        && bytes.all(|b| matches!(b, b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'))
}

/// A document as the request carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Query {
    /// Plain text (GET parameters, `application/graphql`).
    Text(String),
    /// The raw content of a JSON string, escapes untouched, as sent (not checked for UTF-8
    /// until the document is read: a known document needs no check).
    JsonEscaped(Vec<u8>),
}

impl Query {
    fn decoded(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Query::Text(t) => Some(std::borrow::Cow::Borrowed(t)),
            // Invalid UTF-8 is replaced (U+FFFD), as in every other string of the request.
            Query::JsonEscaped(raw) => {
                crate::json::unescape(String::from_utf8_lossy(raw).as_bytes())
                    .map(std::borrow::Cow::Owned)
            }
        }
    }

    /// The document cache's key ([`DocumentCache::plain_key`] for plain text).
    fn key(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Query::Text(t) => DocumentCache::plain_key(t),
            Query::JsonEscaped(raw) => std::borrow::Cow::Borrowed(raw),
        }
    }
}

/// One request element before its document is read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RawOperation {
    query: Option<Query>,
    operation_name: Option<String>,
    /// `operationName` was present but not a usable name.
    name_invalid: bool,
    persisted_hash: Option<String>,
}

impl RawOperation {
    fn set_name(&mut self, value: &str) {
        if value.is_empty() {
            self.operation_name = None;
        } else if value.len() <= MAX_OPERATION_NAME && is_graphql_name(value) {
            self.operation_name = Some(value.to_owned());
        } else {
            self.name_invalid = true;
        }
    }

    fn set_hash(&mut self, value: &str) {
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.persisted_hash = Some(value.to_ascii_lowercase());
        }
    }

    fn from_params(params: &[u8]) -> RawOperation {
        let mut raw = RawOperation::default();
        for (k, v) in form_urlencoded::parse(params) {
            match k.as_ref() {
                "query" => raw.query = Some(Query::Text(v.into_owned())),
                "operationName" => raw.set_name(&v),
                "extensions" => {
                    raw.persisted_hash = extensions_hash(v.as_bytes());
                }
                _ => {}
            }
        }
        raw
    }
}

// Tags of the containers the request visitor tracks.
const OP: Tag = 1;
const BATCH: Tag = 2;
const EXTENSIONS: Tag = 3;
const PERSISTED: Tag = 4;

/// Collects request elements from a JSON body (or a GET's `extensions` parameter).
struct RequestVisitor {
    /// What the top-level object is: an operation, or an `extensions` object.
    root: Tag,
    current: RawOperation,
    /// An operation object was opened and not yet closed.
    in_operation: bool,
    done: Vec<RawOperation>,
    batch: bool,
    capture_limit: usize,
    max_elements: usize,
}

impl RequestVisitor {
    fn new(root: Tag, capture_limit: usize, max_elements: usize) -> Self {
        RequestVisitor {
            root,
            current: RawOperation::default(),
            in_operation: false,
            done: Vec::new(),
            batch: false,
            capture_limit,
            max_elements,
        }
    }
}

impl Visitor for RequestVisitor {
    fn value(&mut self, parent: Tag, key: Key<'_>, kind: ValueKind) -> Interest {
        match (parent, key, kind) {
            (ROOT, _, ValueKind::Object) => {
                self.in_operation = self.root == OP;
                Interest::Track(self.root)
            }
            (ROOT, _, ValueKind::Array) if self.root == OP => {
                self.batch = true;
                Interest::Track(BATCH)
            }
            (BATCH, Key::Index(_), ValueKind::Object) => {
                self.in_operation = true;
                Interest::Track(OP)
            }
            (BATCH, Key::Index(_), _) => {
                // A batch element that is not an object is an operation nobody can read.
                if self.done.len() <= self.max_elements {
                    self.done.push(RawOperation {
                        name_invalid: true,
                        ..RawOperation::default()
                    });
                }
                Interest::Skip
            }
            (OP, Key::Member(b"query"), ValueKind::String) => {
                Interest::CaptureRaw(self.capture_limit)
            }
            (OP, Key::Member(b"operationName"), ValueKind::String) => {
                Interest::Capture(MAX_OPERATION_NAME + 1)
            }
            (OP, Key::Member(b"operationName"), ValueKind::Null) => Interest::Skip,
            (OP, Key::Member(b"operationName"), _) => {
                self.current.name_invalid = true;
                Interest::Skip
            }
            (OP, Key::Member(b"extensions"), ValueKind::Object) => Interest::Track(EXTENSIONS),
            (EXTENSIONS, Key::Member(b"persistedQuery"), ValueKind::Object) => {
                Interest::Track(PERSISTED)
            }
            (PERSISTED, Key::Member(b"sha256Hash"), ValueKind::String) => Interest::Capture(65),
            _ => Interest::Skip,
        }
    }

    fn string(&mut self, parent: Tag, key: Key<'_>, value: &[u8], truncated: bool) {
        if let (OP, Key::Member(b"query"), false) = (parent, key, truncated) {
            // Kept as bytes: checked for UTF-8 only if the document is new.
            self.current.query = Some(Query::JsonEscaped(value.to_vec()));
            return;
        }
        // from_utf8 has a fast path that from_utf8_lossy lacks; invalid bytes are rare.
        let text = match std::str::from_utf8(value) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(value),
        };
        match (parent, key) {
            (OP, Key::Member(b"operationName")) if truncated => self.current.name_invalid = true,
            (OP, Key::Member(b"operationName")) => self.current.set_name(&text),
            (PERSISTED, Key::Member(b"sha256Hash")) => self.current.set_hash(&text),
            _ => {}
        }
    }

    fn end(&mut self, tag: Tag) {
        if tag == OP {
            self.in_operation = false;
            let raw = std::mem::take(&mut self.current);
            if self.done.len() <= self.max_elements {
                self.done.push(raw);
            }
        }
    }
}

fn extensions_hash(json: &[u8]) -> Option<String> {
    let mut visitor = RequestVisitor::new(EXTENSIONS, 0, 1);
    let mut scanner = JsonScanner::new();
    scanner.feed(json, &mut visitor);
    visitor.current.persisted_hash
}

/// The body formats a GraphQL request can take.
enum Body {
    /// GET (or form POST) parameters: `query`, `operationName`, `extensions`.
    Params(Vec<u8>),
    /// `application/json`.
    Json(Box<(JsonScanner, RequestVisitor)>),
    /// `application/graphql`: the document itself; `operationName` may be in the URL.
    Document {
        doc: Vec<u8>,
        operation_name: Option<String>,
    },
    /// `multipart/form-data` per graphql-multipart-request-spec: the `operations` field.
    Multipart {
        boundary: Vec<u8>,
        buf: Vec<u8>,
        /// The `operations` part is in `buf`: nothing more needs reading.
        complete: bool,
    },
    /// `application/x-www-form-urlencoded`.
    Form(Vec<u8>),
    /// A content type that cannot carry GraphQL.
    Unsupported,
}

impl Body {
    fn for_content_type(
        content_type: Option<&str>,
        query_string: Option<&str>,
        options: &ExtractorOptions,
    ) -> Body {
        let ct = content_type.unwrap_or("application/json");
        let mime = crate::media_type(ct);
        let is = |m: &str| mime.eq_ignore_ascii_case(m);
        match mime {
            _ if is("application/graphql") => Body::Document {
                doc: Vec::new(),
                operation_name: query_string
                    .and_then(|q| RawOperation::from_params(q.as_bytes()).operation_name),
            },
            _ if is("multipart/form-data") => match multipart_boundary(ct) {
                Some(boundary) => Body::Multipart {
                    boundary,
                    buf: Vec::new(),
                    complete: false,
                },
                None => Body::Unsupported,
            },
            _ if is("application/x-www-form-urlencoded") => Body::Form(Vec::new()),
            m if is("application/json")
                || crate::ends_with_ignoring_case(m, "+json")
                || m.is_empty() =>
            {
                let visitor = RequestVisitor::new(OP, options.max_inspect_bytes, options.max_batch);
                Body::Json(Box::new((JsonScanner::new(), visitor)))
            }
            _ => Body::Unsupported,
        }
    }
}

/// Inspects one request's body as it streams; see [`OperationExtractor::inspect`].
pub struct RequestInspector {
    body: Body,
    seen: usize,
    limit: usize,
    truncated: bool,
}

impl RequestInspector {
    /// Looks at the next body chunk (the caller forwards it unchanged).
    pub fn feed(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.seen);
        if chunk.len() > room {
            self.truncated = true;
        }
        let chunk = &chunk[..chunk.len().min(room)];
        self.seen += chunk.len();
        if chunk.is_empty() {
            return;
        }
        match &mut self.body {
            Body::Json(state) => {
                let (scanner, visitor) = &mut **state;
                scanner.feed(chunk, visitor);
            }
            Body::Document { doc: buf, .. } | Body::Form(buf) => buf.extend_from_slice(chunk),
            Body::Multipart {
                boundary,
                buf,
                complete,
            } => {
                if *complete {
                    return;
                }
                // Look again only when a delimiter may have arrived with this chunk.
                let from = buf.len().saturating_sub(boundary.len() + 4);
                buf.extend_from_slice(chunk);
                if memchr::memmem::find(&buf[from..], boundary).is_some() {
                    *complete = multipart_operations(buf, boundary).is_some();
                }
            }
            Body::Params(_) | Body::Unsupported => {}
        }
    }

    /// Whether the body went past the inspection cap.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The body ended (or the request is being accounted for): name its operations.
    pub fn finish(self, extractor: &OperationExtractor) -> ExtractedRequest {
        let truncated = self.truncated;
        match self.body {
            Body::Params(params) | Body::Form(params) => {
                if truncated {
                    return ExtractedRequest::invalid();
                }
                extractor.resolve_all(&[RawOperation::from_params(&params)], false, false)
            }
            Body::Json(state) => {
                let (mut scanner, mut visitor) = *state;
                finish_json(extractor, &mut scanner, &mut visitor, truncated)
            }
            Body::Document {
                doc,
                operation_name,
            } => match (truncated, String::from_utf8(doc)) {
                (false, Ok(query)) => {
                    let raw = RawOperation {
                        query: Some(Query::Text(query)),
                        operation_name,
                        ..RawOperation::default()
                    };
                    extractor.resolve_all(&[raw], false, false)
                }
                _ => ExtractedRequest::invalid(),
            },
            Body::Multipart { boundary, buf, .. } => match multipart_operations(&buf, &boundary) {
                Some(json) => {
                    let options = &extractor.options;
                    let mut scanner = JsonScanner::new();
                    let mut visitor =
                        RequestVisitor::new(OP, options.max_inspect_bytes, options.max_batch);
                    scanner.feed(json, &mut visitor);
                    finish_json(extractor, &mut scanner, &mut visitor, false)
                }
                None => ExtractedRequest::invalid(),
            },
            Body::Unsupported => ExtractedRequest::invalid(),
        }
    }
}

fn finish_json(
    extractor: &OperationExtractor,
    scanner: &mut JsonScanner,
    visitor: &mut RequestVisitor,
    truncated: bool,
) -> ExtractedRequest {
    match scanner.finish(visitor) {
        Status::Complete if !visitor.done.is_empty() || visitor.batch => {
            if visitor.batch && visitor.done.is_empty() {
                // `[]`: a batch of nothing is still a request nobody can serve.
                return ExtractedRequest::invalid();
            }
            extractor.resolve_all(&visitor.done, visitor.batch, false)
        }
        Status::Partial if truncated => {
            // Keep what was read in full; the element in progress counts with what it has.
            let mut raws = std::mem::take(&mut visitor.done);
            let current = std::mem::take(&mut visitor.current);
            if visitor.in_operation || raws.is_empty() {
                raws.push(current);
            }
            extractor.resolve_all(&raws, visitor.batch, true)
        }
        _ => ExtractedRequest::invalid(),
    }
}

fn multipart_boundary(content_type: &str) -> Option<Vec<u8>> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= 200).then(|| v.as_bytes().to_vec())
    })
}

/// The content of the `operations` field of a multipart body, if the buffer holds all of it.
fn multipart_operations<'a>(body: &'a [u8], boundary: &[u8]) -> Option<&'a [u8]> {
    let mut delimiter = Vec::with_capacity(boundary.len() + 4);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    let finder = memchr::memmem::Finder::new(&delimiter);
    let mut pos = finder.find(body)? + delimiter.len();
    loop {
        let part = &body[pos..];
        if part.starts_with(b"--") {
            return None;
        }
        let headers_end = memchr::memmem::find(part, b"\r\n\r\n")?;
        let headers = &part[..headers_end];
        let content_start = pos + headers_end + 4;
        let content_len = finder.find(&body[content_start..])?;
        let content = &body[content_start..content_start + content_len];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content);
        if part_is_named(headers, b"operations") {
            return Some(content);
        }
        pos = content_start + content_len + delimiter.len();
    }
}

fn part_is_named(headers: &[u8], name: &[u8]) -> bool {
    headers.split(|&b| b == b'\n').any(|line| {
        let line = line.to_ascii_lowercase();
        if !line.starts_with(b"content-disposition:") {
            return false;
        }
        let mut wanted = b"name=\"".to_vec();
        wanted.extend_from_slice(name);
        wanted.push(b'"');
        let Some(at) = memchr::memmem::find(&line, &wanted) else {
            return false;
        };
        // `filename="operations"` must not match `name="operations"`.
        at == 0 || !line[at - 1].is_ascii_alphanumeric()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(method: &str, ct: Option<&str>, qs: Option<&str>, body: &[u8]) -> ExtractedRequest {
        let ex = OperationExtractor::new(ExtractorOptions::default());
        let mut insp = ex.inspect(method, ct, qs);
        insp.feed(body);
        insp.finish(&ex)
    }

    fn names(r: &ExtractedRequest) -> Vec<(String, &'static str)> {
        r.operations
            .iter()
            .map(|o| (o.name.to_string(), o.op_type.as_str()))
            .collect()
    }

    #[test]
    fn multipart_operations_field() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"mutation Up($f: Upload!) { uploadSize(file: $f) }\",\"variables\":{\"f\":null}}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\":[\"variables.f\"]}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        let r = extract(
            "POST",
            Some("multipart/form-data; boundary=XyZ"),
            None,
            body,
        );
        assert_eq!(names(&r), vec![("Up".into(), "mutation")]);
    }

    /// The document is kept as bytes until it is read: a byte that is not UTF-8 inside one
    /// of its strings is replaced, as before, not taken for a syntax error; and the same
    /// bytes again, through the same extractor, read the same (from its cache).
    #[test]
    fn a_document_with_bytes_that_are_not_utf8_is_still_read() {
        let body = b"{\"query\":\"query Find { find(name: \\\"caf\xe9\\\") { id } }\"}";
        let ex = OperationExtractor::new(ExtractorOptions::default());
        for _ in 0..2 {
            let mut insp = ex.inspect("POST", Some("application/json"), None);
            insp.feed(body);
            assert_eq!(names(&insp.finish(&ex)), vec![("Find".into(), "query")]);
        }
        assert_eq!(ex.documents.len(), 1, "the document is cached, once");
    }

    /// A GET's plain document and a JSON body's escaped document share the cache only when
    /// they are the same document: the same bytes meaning two documents (one of them broken)
    /// get their own verdicts, whichever comes first.
    #[test]
    fn a_plain_document_cannot_take_an_escaped_ones_verdict() {
        let escaped = r#"query Q { a(s: \"x\") }"#; // as the JSON string's raw content
        let body = format!(r#"{{"query":"{escaped}"}}"#);
        let get = |ex: &OperationExtractor| {
            let qs = format!(
                "query={}",
                escaped
                    .replace(' ', "+")
                    .replace('"', "%22")
                    .replace('\\', "%5C")
            );
            let mut insp = ex.inspect("GET", None, Some(&qs));
            insp.feed(b"");
            names(&insp.finish(ex))
        };
        let post = |ex: &OperationExtractor| {
            let mut insp = ex.inspect("POST", Some("application/json"), None);
            insp.feed(body.as_bytes());
            names(&insp.finish(ex))
        };
        let valid = vec![("Q".to_string(), "query")];
        for get_first in [true, false] {
            let ex = OperationExtractor::new(ExtractorOptions::default());
            let (g, p) = if get_first {
                let g = get(&ex);
                (g, post(&ex))
            } else {
                let p = post(&ex);
                (get(&ex), p)
            };
            assert_eq!(p, valid, "get first: {get_first}");
            assert_ne!(g, valid, "get first: {get_first}");
        }
    }

    #[test]
    fn graphql_names() {
        assert!(is_graphql_name("GetCourse_2"));
        assert!(!is_graphql_name("2Get"));
        assert!(!is_graphql_name("a b"));
        assert!(!is_graphql_name(""));
        assert!(!is_graphql_name("(other)"));
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

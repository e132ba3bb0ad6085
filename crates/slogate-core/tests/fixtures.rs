//! Every request and response shape slogate knows, each fed whole, byte by byte and at random
//! splits: the verdict must not depend on how the bytes arrive.

use std::io::Write;

use slogate_core::request::{sha256_hex, ExtractedRequest, ExtractorOptions, OperationExtractor};
use slogate_core::response::{ClassificationPolicy, ResponseHead, ResponseVerdict};
use slogate_core::Outcome::{self, *};

/// Deterministic xorshift, so a failing split can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Whole, byte by byte, fixed sizes, and random splits of `body`.
fn splits(body: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut out = vec![vec![body], body.chunks(1).collect()];
    for size in [2, 3, 7, 64] {
        out.push(body.chunks(size).collect());
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ body.len() as u64);
    for _ in 0..40 {
        let mut parts = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let n = 1 + (rng.next() as usize % rest.len().min(40));
            let (a, b) = rest.split_at(n);
            parts.push(a);
            rest = b;
        }
        out.push(parts);
    }
    out
}

fn extract_with(
    ex: &OperationExtractor,
    method: &str,
    ct: Option<&str>,
    qs: Option<&str>,
    chunks: &[&[u8]],
) -> ExtractedRequest {
    let mut insp = ex.inspect(method, ct, qs);
    for c in chunks {
        insp.feed(c);
    }
    insp.finish(ex)
}

fn ops(r: &ExtractedRequest) -> Vec<String> {
    r.operations
        .iter()
        .map(|o| format!("{} {}", o.op_type, o.name))
        .collect()
}

/// Extracts with a fresh extractor for every split and checks they all agree.
fn extract(method: &str, ct: Option<&str>, qs: Option<&str>, body: &str) -> ExtractedRequest {
    extract_opts(ExtractorOptions::default(), method, ct, qs, body)
}

fn extract_opts(
    opts: ExtractorOptions,
    method: &str,
    ct: Option<&str>,
    qs: Option<&str>,
    body: &str,
) -> ExtractedRequest {
    let mut first: Option<ExtractedRequest> = None;
    for chunks in splits(body.as_bytes()) {
        let ex = OperationExtractor::new(opts.clone());
        let r = extract_with(&ex, method, ct, qs, &chunks);
        match &first {
            None => first = Some(r),
            Some(f) => assert_eq!(
                &r,
                f,
                "split {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            ),
        }
    }
    first.unwrap_or_else(|| {
        let ex = OperationExtractor::new(opts);
        extract_with(&ex, method, ct, qs, &[])
    })
}

const JSON: Option<&str> = Some("application/json");

#[test]
fn request_shapes() {
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a [&'a str],
    );
    let cases: &[Case<'_>] = &[
        // operationName wins; the type comes from the document.
        ("POST", JSON, None, r#"{"query":"query GetCourse { course(id: 1) { title } }","operationName":"GetCourse","variables":{"id":"1"}}"#, &["query GetCourse"]),
        ("POST", JSON, None, r#"{"variables":{"x":[1,{"y":"}"}]},"query":"mutation CreateCourse($t: String!) { createCourse(title: $t) { id } }"}"#, &["mutation CreateCourse"]),
        ("POST", JSON, None, r#"{"query":"{ courses { id } }"}"#, &["query (anonymous)"]),
        ("POST", JSON, None, r#"{"query":"query { courses { id } }","operationName":null}"#, &["query (anonymous)"]),
        ("POST", JSON, None, r#"{"query":"query { courses { id } }","operationName":""}"#, &["query (anonymous)"]),
        ("POST", JSON, None, r#"{"query":"subscription OnCourse { courseUpdated { id } }"}"#, &["subscription OnCourse"]),
        // Several operations: operationName selects; without it the request is ambiguous.
        ("POST", JSON, None, r#"{"query":"query A { a } mutation B { b }","operationName":"B"}"#, &["mutation B"]),
        ("POST", JSON, None, r#"{"query":"query A { a } mutation B { b }"}"#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#"{"query":"query A { a } mutation B { b }","operationName":"C"}"#, &["unknown C"]),
        // Escapes inside the JSON string, including \u escapes and escaped quotes.
        ("POST", JSON, None, r#"{"query":"query Esc\u0061ped { echo(text: \"a\\\"b\") }\n"}"#, &["query Escaped"]),
        // Batching: one operation per element, in order.
        ("POST", JSON, None, r#"[{"query":"query A { a }"},{"query":"mutation M { m }","operationName":"M"},{"query":"{ x }"}]"#, &["query A", "mutation M", "query (anonymous)"]),
        ("POST", JSON, None, r#"[{"query":"query A { a }"}, 3, "x"]"#, &["query A", "unknown (invalid)", "unknown (invalid)"]),
        ("POST", JSON, None, "[]", &["unknown (invalid)"]),
        // GET with the query string.
        ("GET", None, Some("query=query%20Search%28%24q%3A%20String%29%20%7B%20search%28q%3A%20%24q%29%20%7B%20id%20%7D%20%7D&variables=%7B%22q%22%3A%22x%22%7D"), "", &["query Search"]),
        ("GET", None, Some("query=query+A+%7B+a+%7D+query+B+%7B+b+%7D&operationName=B"), "", &["query B"]),
        ("GET", None, None, "", &["unknown (invalid)"]),
        // application/graphql: the body is the document.
        ("POST", Some("application/graphql; charset=utf-8"), None, "mutation Rename { rename }", &["mutation Rename"]),
        ("POST", Some("application/graphql"), Some("operationName=Two"), "query One { a } query Two { b }", &["query Two"]),
        // Form posts carry the same parameters as GET.
        ("POST", Some("application/x-www-form-urlencoded"), None, "query=query+FormQ+%7B+a+%7D", &["query FormQ"]),
        // What cannot be read is (invalid).
        ("POST", JSON, None, r#"{"query":"query A { a "#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#"{"query":"query A { a }",}"#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#"{"query":"query A { a(x: ) }"}"#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#"{"query":"query A { a }","operationName":42}"#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#"{"query":"query A { a }","operationName":"Robert'); DROP TABLE"}"#, &["unknown (invalid)"]),
        ("POST", JSON, None, r#""just a string""#, &["unknown (invalid)"]),
        ("POST", JSON, None, "<html>", &["unknown (invalid)"]),
        ("POST", JSON, None, "", &["unknown (invalid)"]),
        ("POST", Some("text/plain"), None, r#"{"query":"query A { a }"}"#, &["unknown (invalid)"]),
        // An operationName without a document still names the operation.
        ("POST", JSON, None, r#"{"operationName":"Lonely"}"#, &["unknown Lonely"]),
    ];
    for (method, ct, qs, body, want) in cases {
        let r = extract(method, *ct, *qs, body);
        assert_eq!(ops(&r), *want, "{method} {ct:?} {qs:?} {body}");
    }
}

#[test]
fn batch_flag_and_limits() {
    let r = extract("POST", JSON, None, r#"[{"query":"{ a }"}]"#);
    assert!(r.batch);
    let r = extract("POST", JSON, None, r#"{"query":"{ a }"}"#);
    assert!(!r.batch);
    let many: Vec<String> = (0..150)
        .map(|i| format!(r#"{{"query":"query Q{i} {{ a }}"}}"#))
        .collect();
    let body = format!("[{}]", many.join(","));
    let r = extract("POST", JSON, None, &body);
    assert_eq!(
        r.operations.len(),
        100,
        "max_batch bounds the operations counted"
    );
    assert!(r.truncated);
}

#[test]
fn multipart_upload_names_the_operation_even_past_the_cap() {
    let file = "x".repeat(4096);
    let body = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{{\"query\":\"mutation Upload($f: Upload!) {{ uploadSize(file: $f) }}\",\"variables\":{{\"f\":null}}}}\r\n--b0undary\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.f\"]}}\r\n--b0undary\r\nContent-Disposition: form-data; name=\"0\"; filename=\"operations\"\r\n\r\n{file}\r\n--b0undary--\r\n"
    );
    let opts = ExtractorOptions {
        max_inspect_bytes: 1024,
        ..ExtractorOptions::default()
    };
    let r = extract_opts(
        opts,
        "POST",
        Some("multipart/form-data; boundary=\"b0undary\""),
        None,
        &body,
    );
    assert_eq!(ops(&r), vec!["mutation Upload"]);
    let r = extract(
        "POST",
        Some("multipart/form-data; boundary=nope"),
        None,
        &body,
    );
    assert_eq!(ops(&r), vec!["unknown (invalid)"]);
}

#[test]
fn bodies_past_the_cap_keep_what_was_read() {
    let opts = ExtractorOptions {
        max_inspect_bytes: 200,
        ..ExtractorOptions::default()
    };
    let big_vars = format!(r#"{{"blob":"{}"}}"#, "A".repeat(5000));
    // The document came first: the operation is known.
    let body = format!(r#"{{"query":"mutation Attach {{ attach }}","variables":{big_vars}}}"#);
    let r = extract_opts(opts.clone(), "POST", JSON, None, &body);
    assert_eq!(ops(&r), vec!["mutation Attach"]);
    assert!(r.truncated);
    // The document is past the cap: nothing can be known.
    let body = format!(r#"{{"variables":{big_vars},"query":"mutation Attach {{ attach }}"}}"#);
    assert_eq!(
        ops(&extract_opts(opts.clone(), "POST", JSON, None, &body)),
        vec!["unknown (invalid)"]
    );
    // A document longer than the cap is (invalid) even with the JSON unfinished.
    let body = format!(r#"{{"query":"query Huge {{ {} }}"}}"#, "field ".repeat(100));
    assert_eq!(
        ops(&extract_opts(opts.clone(), "POST", JSON, None, &body)),
        vec!["unknown (invalid)"]
    );
    // A batch cut by the cap counts the elements read.
    let body = format!(
        r#"[{{"query":"query A {{ a }}"}},{{"query":"query B {{ b }}"}},{{"variables":{big_vars}}}]"#
    );
    let r = extract_opts(opts, "POST", JSON, None, &body);
    assert_eq!(ops(&r), vec!["query A", "query B", "unknown (invalid)"]);
}

#[test]
fn persisted_queries_are_learned_only_from_matching_documents() {
    let ex = OperationExtractor::new(ExtractorOptions::default());
    let doc = "query GetCourse { course(id: 1) { id } }";
    let hash = sha256_hex(doc);
    let hash_only =
        format!(r#"{{"extensions":{{"persistedQuery":{{"version":1,"sha256Hash":"{hash}"}}}}}}"#);
    // Not learned yet, no operationName: nothing names it.
    let r = extract_with(&ex, "POST", JSON, None, &[hash_only.as_bytes()]);
    assert_eq!(ops(&r), vec!["unknown (invalid)"]);
    // A document that does not match the hash teaches nothing.
    let lie = format!(
        r#"{{"query":"mutation Evil {{ e }}","extensions":{{"persistedQuery":{{"version":1,"sha256Hash":"{hash}"}}}}}}"#
    );
    extract_with(&ex, "POST", JSON, None, &[lie.as_bytes()]);
    assert_eq!(
        ops(&extract_with(
            &ex,
            "POST",
            JSON,
            None,
            &[hash_only.as_bytes()]
        )),
        vec!["unknown (invalid)"]
    );
    // The registration request carries both; later hash-only requests are named.
    let register = format!(
        r#"{{"query":"{doc}","extensions":{{"persistedQuery":{{"version":1,"sha256Hash":"{}"}}}}}}"#,
        hash.to_uppercase()
    );
    assert_eq!(
        ops(&extract_with(
            &ex,
            "POST",
            JSON,
            None,
            &[register.as_bytes()]
        )),
        vec!["query GetCourse"]
    );
    assert_eq!(
        ops(&extract_with(
            &ex,
            "POST",
            JSON,
            None,
            &[hash_only.as_bytes()]
        )),
        vec!["query GetCourse"]
    );
    // GET form of the same.
    let ext = format!(r#"{{"persistedQuery":{{"version":1,"sha256Hash":"{hash}"}}}}"#);
    let qs: String = form_urlencoded_pair("extensions", &ext);
    assert_eq!(
        ops(&extract_with(&ex, "GET", None, Some(&qs), &[])),
        vec!["query GetCourse"]
    );
    // With operationName, the name comes from the request and the type from what was learned.
    let named = format!(
        r#"{{"operationName":"GetCourse","extensions":{{"persistedQuery":{{"version":1,"sha256Hash":"{hash}"}}}}}}"#
    );
    assert_eq!(
        ops(&extract_with(&ex, "POST", JSON, None, &[named.as_bytes()])),
        vec!["query GetCourse"]
    );
    let unknown = r#"{"operationName":"Other","extensions":{"persistedQuery":{"version":1,"sha256Hash":"0000000000000000000000000000000000000000000000000000000000000000"}}}"#;
    assert_eq!(
        ops(&extract_with(
            &ex,
            "POST",
            JSON,
            None,
            &[unknown.as_bytes()]
        )),
        vec!["unknown Other"]
    );
}

fn form_urlencoded_pair(k: &str, v: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("{}={}", enc(k), enc(v))
}

#[test]
fn documents_are_cached() {
    let ex = OperationExtractor::new(ExtractorOptions::default());
    for _ in 0..100 {
        extract_with(&ex, "POST", JSON, None, &[br#"{"query":"query A { a }"}"#]);
        extract_with(&ex, "POST", JSON, None, &[br#"{"query":"query B { b }"}"#]);
    }
    assert_eq!(ex.documents().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Responses

struct Resp<'a> {
    status: u16,
    graphql: bool,
    content_type: Option<&'a str>,
    encoding: Option<&'a str>,
    header_code: Option<&'a str>,
    body: Vec<u8>,
}

fn resp(status: u16, body: &str) -> Resp<'static> {
    Resp {
        status,
        graphql: true,
        content_type: Some("application/json; charset=utf-8"),
        encoding: None,
        header_code: None,
        body: body.as_bytes().to_vec(),
    }
}

fn classify_with(policy: &ClassificationPolicy, r: &Resp<'_>) -> ResponseVerdict {
    let mut first: Option<ResponseVerdict> = None;
    for chunks in splits(&r.body) {
        let mut insp = policy.inspect(ResponseHead {
            status: r.status,
            graphql: r.graphql,
            has_body: !matches!(r.status, 204 | 304),
            content_type: r.content_type,
            content_encoding: r.encoding,
            error_code_header: r.header_code,
        });
        for c in &chunks {
            insp.feed(c);
        }
        let v = insp.finish();
        match &first {
            None => first = Some(v),
            Some(f) => assert_eq!(
                &v,
                f,
                "split {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            ),
        }
    }
    first.expect("at least one split")
}

fn classify(r: &Resp<'_>) -> ResponseVerdict {
    classify_with(&ClassificationPolicy::default(), r)
}

fn outcomes(v: &ResponseVerdict) -> Vec<Outcome> {
    v.elements.iter().map(|(o, _)| *o).collect()
}

fn codes(v: &ResponseVerdict, i: usize) -> Vec<(String, u64)> {
    v.elements[i].1.clone()
}

#[test]
fn response_shapes_graphql_ruby() {
    // Bodies as graphql-ruby 1.13 answers them (captured from the fixture app).
    let cases: &[(u16, &str, Outcome)] = &[
        (
            200,
            r#"{"data":{"course":{"id":"1","title":"Intro to Rust"}}}"#,
            Success,
        ),
        (200, r#"{"data":{"a":1},"errors":[]}"#, Success),
        (200, r#"{"data":{"a":1},"errors":null}"#, Success),
        (
            200,
            r#"{"errors":[{"message":"Field 'nope' doesn't exist on type 'Query'","locations":[{"line":1,"column":3}],"path":["query","nope"],"extensions":{"code":"undefinedField","typeName":"Query","fieldName":"nope"}}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"errors":[{"message":"Parse error on \"}\" (RCURLY) at [1, 18]","locations":[{"line":1,"column":18}]}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"errors":[{"message":"Variable $v of type Int! was provided invalid value","locations":[{"line":1,"column":9}],"extensions":{"value":"abc","problems":[{"path":[],"explanation":"Could not coerce value \"abc\" to Int"}]}}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"data":null,"errors":[{"message":"Cannot return null for non-nullable field Query.nonNullViolation"}]}"#,
            SystemError,
        ),
        (
            200,
            r#"{"data":{"internalError":null},"errors":[{"message":"Internal server error","locations":[{"line":1,"column":3}],"path":["internalError"],"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#,
            SystemError,
        ),
        (
            200,
            r#"{"data":{"course":null},"errors":[{"message":"Course 404 not found","locations":[{"line":1,"column":3}],"path":["course"],"extensions":{"code":"NOT_FOUND"}}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"errors":[{"message":"PersistedQueryNotFound","extensions":{"code":"PERSISTED_QUERY_NOT_FOUND"}}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"data":{"m":[null,null]},"errors":[{"message":"a","extensions":{"code":"BAD_USER_INPUT"}},{"message":"b","extensions":{"code":"NOT_FOUND"}}]}"#,
            ClientError,
        ),
        (
            200,
            r#"{"data":{"m":null},"errors":[{"message":"a","extensions":{"code":"BAD_USER_INPUT"}},{"message":"b","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#,
            SystemError,
        ),
        (
            200,
            r#"{"data":{"x":null},"errors":[{"message":"a","extensions":{"code":"TEAPOT"}}]}"#,
            SystemError,
        ),
        (
            200,
            r#"{"data":{"x":null},"errors":[{"message":"a","extensions":{"code":"BAD_USER_INPUT"}},{"message":"b"}]}"#,
            SystemError,
        ),
        // errors before data; escaped code; code of the wrong type; a code too long to keep.
        (
            200,
            r#"{"errors":[{"extensions":{"code":"NOT\u005fFOUND"}}],"data":{"x":null}}"#,
            ClientError,
        ),
        (
            200,
            r#"{"data":{},"errors":[{"extensions":{"code":404}}]}"#,
            SystemError,
        ),
        (
            200,
            &format!(
                r#"{{"data":{{}},"errors":[{{"extensions":{{"code":"{}"}}}}]}}"#,
                "A".repeat(100)
            ),
            SystemError,
        ),
        // A data tree that looks like errors must not be mistaken for them.
        (
            200,
            r#"{"data":{"errors":[{"extensions":{"code":"INTERNAL_SERVER_ERROR"}}],"s":"\"errors\":[{"}}"#,
            Success,
        ),
        // Bodies that are not a GraphQL response.
        (
            200,
            "<!DOCTYPE html><html><body>We're sorry</body></html>",
            SystemError,
        ),
        (200, "", SystemError),
        (200, r#"{"data":{"a":1}"#, SystemError),
        (200, r#"{"data":{"a":1}} trailing"#, SystemError),
        (200, "null", SystemError),
        // Status decides 4xx/5xx.
        (500, "<html>500</html>", SystemError),
        (502, "", SystemError),
        (400, r#"{"errors":[{"message":"bad"}]}"#, ClientError),
        (401, "", ClientError),
        (413, "", ClientError),
    ];
    for (status, body, want) in cases {
        let v = classify(&resp(*status, body));
        assert_eq!(outcomes(&v), vec![*want], "{status} {body}");
    }
}

#[test]
fn error_codes_are_counted() {
    let v = classify(&resp(
        200,
        r#"{"data":{},"errors":[{"extensions":{"code":"NOT_FOUND"}},{"message":"x"},{"extensions":{"code":"NOT_FOUND"}},{"extensions":{"code":"undefinedField"}}]}"#,
    ));
    assert_eq!(
        codes(&v, 0),
        vec![
            ("NOT_FOUND".into(), 2),
            ("(none)".into(), 1),
            ("undefinedField".into(), 1)
        ]
    );
    // A response with thousands of distinct codes stays bounded.
    let errors: Vec<String> = (0..5000)
        .map(|i| format!(r#"{{"extensions":{{"code":"C{i}"}}}}"#))
        .collect();
    let body = format!(r#"{{"data":{{}},"errors":[{}]}}"#, errors.join(","));
    let policy = ClassificationPolicy::default();
    let mut insp = policy.inspect(ResponseHead {
        status: 200,
        graphql: true,
        has_body: true,
        ..ResponseHead::default()
    });
    insp.feed(body.as_bytes());
    let v = insp.finish();
    let c = codes(&v, 0);
    assert_eq!(c.len(), 16);
    assert_eq!(c.iter().map(|(_, n)| n).sum::<u64>(), 5000);
    assert!(c.iter().any(|(code, n)| code == "(other)" && *n == 4985));
}

#[test]
fn batches_are_classified_per_element() {
    let body = r#"[{"data":{"courses":[{"id":"1"}]}},{"data":{"course":null},"errors":[{"extensions":{"code":"NOT_FOUND"}}]},{"errors":[{"extensions":{"code":"undefinedField"}}]},{"data":{"x":null},"errors":[{"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]},42]"#;
    let v = classify(&resp(200, body));
    assert!(v.batch);
    assert_eq!(
        outcomes(&v),
        vec![Success, ClientError, ClientError, SystemError, SystemError]
    );
    // Elements past the answer fall back to the non-JSON verdict.
    assert_eq!(v.for_operation(7).0, SystemError);
    // A single error object answering a batch applies to every operation.
    let v = classify(&resp(
        200,
        r#"{"errors":[{"message":"batching disabled","extensions":{"code":"BAD_REQUEST"}}]}"#,
    ));
    assert!(!v.batch);
    assert_eq!(v.for_operation(0).0, ClientError);
    assert_eq!(v.for_operation(2).0, ClientError);
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn brotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(b).unwrap();
    }
    out
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_bodies_are_decoded() {
    let body = br#"{"data":{"course":null},"errors":[{"extensions":{"code":"NOT_FOUND"}}]}"#;
    let sys = br#"{"data":{"x":null},"errors":[{"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#;
    for (enc, f) in [
        ("gzip", gzip as fn(&[u8]) -> Vec<u8>),
        ("br", brotli),
        ("deflate", deflate),
    ] {
        let mut r = resp(200, "");
        r.encoding = Some(enc);
        r.body = f(body);
        assert_eq!(outcomes(&classify(&r)), vec![ClientError], "{enc}");
        r.body = f(sys);
        assert_eq!(outcomes(&classify(&r)), vec![SystemError], "{enc}");
    }
    // Corrupt or truncated compression is not a readable response.
    let mut r = resp(200, "");
    r.encoding = Some("gzip");
    let full = gzip(body);
    r.body = full[..full.len() - 6].to_vec();
    assert_eq!(outcomes(&classify(&r)), vec![SystemError]);
    r.body = body.to_vec();
    assert_eq!(outcomes(&classify(&r)), vec![SystemError]);
    // An encoding slogate cannot decode leaves the verdict to the status.
    r.encoding = Some("zstd");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
}

#[test]
fn status_only_cases() {
    let mut r = resp(204, "");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
    r = resp(304, "");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
    // Streams of documents (SSE subscriptions, incremental delivery) are not one document.
    r = resp(200, "data: {\"errors\":[]}\n\n");
    r.content_type = Some("text/event-stream");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
    r.content_type = Some("multipart/mixed; boundary=\"-\"");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
    // A redirect to an HTML login page is not a broken GraphQL response.
    r = resp(302, "<html>You are being redirected</html>");
    r.content_type = Some("text/html");
    assert_eq!(outcomes(&classify(&r)), vec![Success]);
    // Plain HTTP: the status decides, bodies are not read.
    for (status, want) in [
        (200, Success),
        (301, Success),
        (404, ClientError),
        (503, SystemError),
    ] {
        let mut r = resp(status, "<html>");
        r.graphql = false;
        assert_eq!(outcomes(&classify(&r)), vec![want], "{status}");
    }
}

#[test]
fn rules_are_configurable() {
    let mut policy = ClassificationPolicy::default();
    policy.status_overrides.insert(429, SystemError);
    policy.status_overrides.insert(404, Success);
    policy.unknown_code = ClientError;
    policy.no_data = SystemError;
    policy.non_json = ClientError;
    policy.client_codes.insert("TEAPOT".into());
    policy.system_codes.insert("DB_DOWN".into());
    let check =
        |r: Resp<'_>, want: Outcome| assert_eq!(outcomes(&classify_with(&policy, &r)), vec![want]);
    check(resp(429, ""), SystemError);
    check(resp(404, ""), Success);
    check(
        resp(200, r#"{"data":{},"errors":[{"message":"no code"}]}"#),
        ClientError,
    );
    check(
        resp(200, r#"{"errors":[{"message":"parse"}]}"#),
        SystemError,
    );
    check(resp(200, "<html>"), ClientError);
    check(
        resp(
            200,
            r#"{"data":{},"errors":[{"extensions":{"code":"TEAPOT"}}]}"#,
        ),
        ClientError,
    );
    check(
        resp(
            200,
            r#"{"data":{},"errors":[{"extensions":{"code":"DB_DOWN"}}]}"#,
        ),
        SystemError,
    );
}

#[test]
fn error_code_header_is_read_with_the_same_sets() {
    let mut r = resp(200, r#"{"data":{"x":1}}"#);
    r.header_code = Some("INTERNAL_SERVER_ERROR");
    assert_eq!(outcomes(&classify(&r)), vec![SystemError]);
    r.header_code = Some("NOT_FOUND");
    assert_eq!(outcomes(&classify(&r)), vec![ClientError]);
    let v = classify(&r);
    assert!(
        codes(&v, 0).is_empty(),
        "the header classifies; only body errors are counted"
    );
}

#[test]
fn inspection_limit_rests_on_what_was_read() {
    let policy = ClassificationPolicy {
        max_inspect_bytes: 64,
        ..ClassificationPolicy::default()
    };
    let body = format!(
        r#"{{"errors":[{{"extensions":{{"code":"NOT_FOUND"}}}}],"data":{{"s":"{}"}}}}"#,
        "x".repeat(1000)
    );
    assert_eq!(
        outcomes(&classify_with(&policy, &resp(200, &body))),
        vec![ClientError]
    );
    let body = format!(r#"{{"data":{{"s":"{}"}}}}"#, "x".repeat(1000));
    assert_eq!(
        outcomes(&classify_with(&policy, &resp(200, &body))),
        vec![Success]
    );
}

#[test]
fn large_response_in_constant_memory() {
    // 20 MB of data streamed in 16 KiB chunks: the verdict needs no buffering.
    let policy = ClassificationPolicy::default();
    let mut insp = policy.inspect(ResponseHead {
        status: 200,
        graphql: true,
        has_body: true,
        ..ResponseHead::default()
    });
    insp.feed(br#"{"data":{"big":""#);
    let chunk = vec![b'a'; 16 * 1024];
    for _ in 0..1280 {
        insp.feed(&chunk);
    }
    insp.feed(br#""},"errors":[{"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#);
    assert_eq!(insp.finish().for_operation(0).0, SystemError);
}

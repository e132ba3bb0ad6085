//! The heart of slogate: what a GraphQL request asks for, and what its response means.
//!
//! This crate does no I/O and knows nothing of the proxy. It is fed bytes and chunks:
//!
//! * [`request::OperationExtractor`] names the operation(s) of a request (`operationName`,
//!   the document's single operation, batches, GET, `application/graphql`, multipart uploads,
//!   automatic persisted queries), reading at most a bounded prefix of the body;
//! * [`response::ClassificationPolicy`] turns a response (status, headers, streamed and possibly
//!   compressed body) into an [`Outcome`] per operation, keeping client errors apart from
//!   system errors even when the server answers `200`;
//! * [`route::RouteNamer`] names plain HTTP requests as `METHOD /route/template`.
//!
//! Every verdict is the same whether a body arrives whole, byte by byte or split anywhere.
//!
//! ```
//! use slogate_core::request::{ExtractorOptions, OperationExtractor};
//! use slogate_core::response::{ClassificationPolicy, ResponseHead};
//! use slogate_core::{Outcome, OperationType};
//!
//! let extractor = OperationExtractor::new(ExtractorOptions::default());
//! let mut request = extractor.inspect("POST", Some("application/json"), None);
//! request.feed(br#"{"query":"query GetCourse($id: ID!) { course(id: $id) { title } }","#);
//! request.feed(br#""variables":{"id":"404"}}"#);
//! let operations = request.finish(&extractor).operations;
//! assert_eq!(&*operations[0].name, "GetCourse");
//! assert_eq!(operations[0].op_type, OperationType::Query);
//!
//! let policy = ClassificationPolicy::default();
//! let mut response = policy.inspect(ResponseHead {
//!     status: 200,
//!     graphql: true,
//!     has_body: true,
//!     content_type: Some("application/json"),
//!     ..ResponseHead::default()
//! });
//! response.feed(br#"{"data":{"course":null},"errors":[{"message":"Course 404 not found","#);
//! response.feed(br#""extensions":{"code":"NOT_FOUND"}}]}"#);
//! let verdict = response.finish();
//! assert_eq!(verdict.for_operation(0).0, Outcome::ClientError);
//! ```
// No unsafe code, with audited exceptions in the JSON scanner: `json/masks.rs` calls the SSE2
// mask builder (SSE2 is part of the x86-64 baseline; the call is compiled only where the
// build enables it) and the AVX2/PCLMULQDQ operations, and `JsonScanner::skip` enters its
// AVX2 variant, both only through a `Wide` value that run-time detection alone makes.
// Everything else would fail to compile.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
pub mod decode;
pub mod document;
pub mod exchange;
pub mod h1;
pub mod json;
pub mod outcome;
pub mod request;
pub mod response;
pub mod route;

pub use outcome::{sentinel, Kind, OperationType, Outcome, DEFAULT_BUCKETS, DEFAULT_JOB_BUCKETS};

/// The media type of a `Content-Type` value without its parameters, trimmed, as sent
/// (compare it ignoring ASCII case): `application/json` of `Application/JSON; charset=utf-8`.
///
/// A byte search: `str::split(';')` spent ~150 instructions a call on its char searcher, and
/// every request and answer ask (request kind, answer kind, compressibility).
pub fn media_type(content_type: &str) -> &str {
    let end = memchr::memchr(b';', content_type.as_bytes()).unwrap_or(content_type.len());
    // `;` is ASCII, so `end` is a char boundary.
    content_type[..end].trim_matches([' ', '\t'])
}

/// Whether `s` ends with `suffix`, ignoring ASCII case (`+JSON` media types).
pub(crate) fn ends_with_ignoring_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

#[cfg(test)]
mod media_type_tests {
    use super::media_type;

    #[test]
    fn a_media_type_is_what_comes_before_the_parameters() {
        assert_eq!(media_type("application/json"), "application/json");
        assert_eq!(
            media_type("Application/JSON; charset=utf-8"),
            "Application/JSON"
        );
        assert_eq!(media_type(" text/html ;q=1"), "text/html");
        assert_eq!(media_type("\ttext/plain\t"), "text/plain");
        assert_eq!(media_type(";charset=utf-8"), "");
        assert_eq!(media_type(""), "");
        assert_eq!(media_type("é/ü; x"), "é/ü");
    }
}

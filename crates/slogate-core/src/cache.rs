//! Bounded, concurrent memories shared by all requests: parsed documents and persisted queries.
//!
//! Clients repeat the same few hundred documents, so each distinct document is read once and
//! its operations are remembered. Both maps are bounded (by bytes and by entries), so no client
//! input can grow them without bound; eviction is quick_cache's CLOCK-Pro.

use std::sync::Arc;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::Weighter;

use crate::document::{scan_document, DocumentError, DocumentSummary};
use crate::outcome::OperationType;

/// The caches' hasher. Every request with a document hashes it whole (~1 KB for a typical
/// query): foldhash reads such a key in about a quarter of the instructions of ahash's
/// portable fallback, quick_cache's default in a build without AES-NI (callgrind, peer
/// request: ~950 instructions per lookup before). Seeded per process, like ahash's.
type Hasher = foldhash::fast::RandomState;

/// The verdict on one document, shared between requests.
pub type DocumentVerdict = Arc<Result<DocumentSummary, DocumentError>>;

#[derive(Clone)]
struct DocumentWeight;

impl Weighter<Box<[u8]>, DocumentVerdict> for DocumentWeight {
    fn weight(&self, key: &Box<[u8]>, _val: &DocumentVerdict) -> u64 {
        // The key dominates; the summary is a few small allocations.
        key.len() as u64 + 128
    }
}

/// Documents already read, keyed by their full text (as bytes: a request's document is
/// checked for UTF-8 only when it is not known yet).
pub struct DocumentCache {
    inner: Cache<Box<[u8]>, DocumentVerdict, DocumentWeight, Hasher>,
    max_document: usize,
}

impl DocumentCache {
    /// A cache holding at most `capacity_bytes` of documents; documents longer than an eighth
    /// of it are read every time rather than evicting everything else.
    pub fn new(capacity_bytes: usize) -> Self {
        let capacity = capacity_bytes.max(4096) as u64;
        DocumentCache {
            inner: Cache::with(
                (capacity / 2048).max(16) as usize,
                capacity,
                DocumentWeight,
                Hasher::default(),
                DefaultLifecycle::default(),
            ),
            max_document: capacity_bytes / 8,
        }
    }

    /// The verdict on `doc`, read now if it was not known.
    pub fn get_or_scan(&self, doc: &str) -> DocumentVerdict {
        self.get_or_scan_keyed(&Self::plain_key(doc), || {
            Some(std::borrow::Cow::Borrowed(doc))
        })
    }

    /// The key of a plain document (not a JSON string's raw content, which is its own key):
    /// the document as JSON would carry it. Plain text is its own key unless it holds a
    /// backslash, the only way it could equal another document's escaped form (`a(s: \"x\")`
    /// is broken GraphQL as plain text, valid once unescaped): a GET could otherwise plant
    /// its verdict on a JSON request's document.
    pub fn plain_key(doc: &str) -> std::borrow::Cow<'_, [u8]> {
        if !doc.contains('\\') {
            return std::borrow::Cow::Borrowed(doc.as_bytes());
        }
        let mut quoted = Vec::with_capacity(doc.len() + 8);
        crate::json::write_string(&mut quoted, doc);
        quoted.pop();
        quoted.remove(0);
        std::borrow::Cow::Owned(quoted)
    }

    /// The verdict on the document stored under `key`, which `text` produces on a miss.
    /// Requests in JSON are keyed by the document's escaped form, so a hit needs no decoding;
    /// `text` returning `None` (an undecodable document) is a syntax error.
    pub fn get_or_scan_keyed<'a>(
        &self,
        key: &[u8],
        text: impl FnOnce() -> Option<std::borrow::Cow<'a, str>>,
    ) -> DocumentVerdict {
        if let Some(hit) = self.inner.get(key) {
            return hit;
        }
        let verdict = Arc::new(match text() {
            Some(doc) => scan_document(&doc),
            None => Err(crate::document::DocumentError::Syntax(0)),
        });
        if key.len() <= self.max_document {
            self.inner.insert(key.into(), verdict.clone());
        }
        verdict
    }

    /// Number of documents held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no document is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// What slogate learned about a persisted query hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistedOperation {
    /// The operation's name, if the document names it.
    pub name: Option<Arc<str>>,
    /// The operation's type.
    pub op_type: OperationType,
}

/// Automatic persisted queries seen with their document, keyed by lowercase SHA-256 hex.
pub struct PersistedQueries {
    inner: Cache<Box<str>, PersistedOperation>,
}

impl PersistedQueries {
    /// A map of at most about `capacity` hashes.
    pub fn new(capacity: usize) -> Self {
        PersistedQueries {
            inner: Cache::new(capacity.max(1)),
        }
    }

    /// Remembers what `hash` names. Callers verify the hash against the document first, so a
    /// client cannot poison the map with a document that does not match.
    pub fn learn(&self, hash: &str, op: PersistedOperation) {
        if self.inner.get(hash).as_ref() != Some(&op) {
            self.inner.insert(hash.into(), op);
        }
    }

    /// What `hash` names, if it was learned.
    pub fn lookup(&self, hash: &str) -> Option<PersistedOperation> {
        self.inner.get(hash)
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no hash is held.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_cache_is_bounded_and_reuses_verdicts() {
        let cache = DocumentCache::new(64 * 1024);
        let a = cache.get_or_scan("query A { a }");
        let again = cache.get_or_scan("query A { a }");
        assert!(Arc::ptr_eq(&a, &again));
        for i in 0..10_000 {
            cache.get_or_scan(&format!("query Q{i} {{ a }}"));
        }
        assert!(cache.len() < 1000, "{} documents held", cache.len());
        let huge = format!("query H {{ {} }}", "a ".repeat(20_000));
        let h1 = cache.get_or_scan(&huge);
        let h2 = cache.get_or_scan(&huge);
        assert!(!Arc::ptr_eq(&h1, &h2), "oversized documents are not cached");
    }

    #[test]
    fn persisted_queries_are_bounded() {
        let apq = PersistedQueries::new(100);
        for i in 0..10_000 {
            apq.learn(
                &format!("{i:064x}"),
                PersistedOperation {
                    name: None,
                    op_type: OperationType::Query,
                },
            );
        }
        assert!(apq.len() <= 200, "{}", apq.len());
    }
}

//! The cardinality guard: a bounded set of label values per service.
//!
//! Operation names and error codes come from clients and upstreams; without a bound, a client
//! sending random operation names would create a new time series per request. The guard admits
//! values until it holds its cap (or only the allowlisted ones, when there is an allowlist) and
//! maps everything else to `(other)`. Memory is bounded by the cap times the longest value.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use slogate_core::sentinel;

/// Admits at most `cap` distinct values; the rest become `(other)`.
#[derive(Debug)]
pub struct CardinalityGuard {
    cap: usize,
    allowlist: Option<HashSet<Arc<str>>>,
    admitted: RwLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl CardinalityGuard {
    /// A guard admitting up to `cap` values, or only `allowlist`'s values if given.
    pub fn new(cap: usize, allowlist: Option<Vec<String>>) -> Self {
        CardinalityGuard {
            cap,
            allowlist: allowlist.map(|l| l.into_iter().map(Arc::from).collect()),
            admitted: RwLock::new(HashSet::new()),
            other: Arc::from(sentinel::OTHER),
        }
    }

    /// Values admitted so far (allowlisted values are not counted).
    pub fn len(&self) -> usize {
        self.admitted.read().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether nothing was admitted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label value to use for `value`: itself if admitted, else `(other)`.
    /// The second element says whether `value` was replaced.
    pub fn admit(&self, value: &Arc<str>) -> (Arc<str>, bool) {
        if value.starts_with('(') {
            // Sentinels are always allowed and do not count toward the cap.
            return (value.clone(), false);
        }
        if let Some(allow) = &self.allowlist {
            return match allow.get(value) {
                Some(v) => (v.clone(), false),
                None => (self.other.clone(), true),
            };
        }
        if let Ok(set) = self.admitted.read() {
            if let Some(v) = set.get(value) {
                return (v.clone(), false);
            }
            if set.len() >= self.cap {
                return (self.other.clone(), true);
            }
        }
        match self.admitted.write() {
            Ok(mut set) if set.len() < self.cap || set.contains(value) => {
                set.insert(value.clone());
                (value.clone(), false)
            }
            _ => (self.other.clone(), true),
        }
    }

    /// Like [`admit`](Self::admit) for a borrowed value.
    pub fn admit_str(&self, value: &str) -> (Arc<str>, bool) {
        if let Ok(set) = self.admitted.read() {
            if let Some(v) = set.get(value) {
                return (v.clone(), false);
            }
        }
        self.admit(&Arc::from(value))
    }
}

/// The guards of one service: GraphQL operations, HTTP routes and error codes are bounded
/// separately, so a flood of random GraphQL names cannot push REST routes into `(other)`.
#[derive(Debug)]
pub struct GuardSet {
    /// GraphQL operation names.
    pub graphql_operations: CardinalityGuard,
    /// `METHOD /route` names.
    pub http_routes: CardinalityGuard,
    /// `extensions.code` values.
    pub error_codes: CardinalityGuard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_distinct_values_and_keeps_admitted_ones() {
        let g = CardinalityGuard::new(3, None);
        let names: Vec<Arc<str>> = (0..10).map(|i| Arc::from(format!("Op{i}"))).collect();
        let out: Vec<String> = names.iter().map(|n| g.admit(n).0.to_string()).collect();
        assert_eq!(&out[..3], &["Op0", "Op1", "Op2"]);
        assert!(out[3..].iter().all(|o| o == "(other)"));
        assert_eq!(g.admit(&names[1]).0.as_ref(), "Op1");
        assert_eq!(g.admit(&Arc::from("(invalid)")).0.as_ref(), "(invalid)");
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn allowlist_admits_only_listed_names() {
        let g = CardinalityGuard::new(1000, Some(vec!["GetCourse".into()]));
        assert_eq!(g.admit_str("GetCourse"), (Arc::from("GetCourse"), false));
        assert_eq!(g.admit_str("Random123"), (Arc::from("(other)"), true));
        assert_eq!(g.admit_str("(anonymous)").0.as_ref(), "(anonymous)");
    }

    #[test]
    fn concurrent_admission_never_exceeds_the_cap() {
        let g = Arc::new(CardinalityGuard::new(50, None));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        g.admit_str(&format!("T{t}N{i}"));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(g.len(), 50);
    }
}

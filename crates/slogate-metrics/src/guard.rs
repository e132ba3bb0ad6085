//! The cardinality guard: a bounded set of label values per service.
//!
//! Operation names and error codes come from clients and upstreams; without a bound, a client
//! sending random operation names would create a new time series per request. The guard admits
//! values until it holds its cap (or only the allowlisted ones, when there is an allowlist) and
//! maps everything else to `(other)`. Memory is bounded by the cap times the longest value.

use std::sync::{Arc, RwLock};

use slogate_core::sentinel;

use crate::OperationHandles;

/// The guard's maps: looked up on every request (an operation name, an error code), where
/// std's SipHash cost ~230 instructions a request; foldhash, seeded per process, a fraction.
/// The maps are bounded by the cap, so no client can grow a chain without bound.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Admits at most `cap` distinct values; the rest become `(other)`.
///
/// Each label value it hands out carries its [`OperationHandles`], so a value seen before
/// costs one lookup and no label hashing when its series are updated.
#[derive(Debug)]
pub struct CardinalityGuard {
    cap: usize,
    allowlist: Option<HashMap<Arc<str>, Arc<OperationHandles>>>,
    admitted: RwLock<HashMap<Arc<str>, Arc<OperationHandles>>>,
    /// Sentinels (`(invalid)`, …): a fixed few, never counted toward the cap.
    sentinels: RwLock<HashMap<Arc<str>, Arc<OperationHandles>>>,
    other: Admitted,
}

/// A label value as the guard admitted it.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The value to use: the one given, or `(other)`.
    pub label: Arc<str>,
    /// Its series.
    pub handles: Arc<OperationHandles>,
    /// Whether the value was replaced by `(other)`.
    pub replaced: bool,
}

fn entry(map: &HashMap<Arc<str>, Arc<OperationHandles>>, value: &str) -> Option<Admitted> {
    map.get_key_value(value).map(|(k, h)| Admitted {
        label: k.clone(),
        handles: h.clone(),
        replaced: false,
    })
}

impl CardinalityGuard {
    /// A guard admitting up to `cap` values, or only `allowlist`'s values if given.
    pub fn new(cap: usize, allowlist: Option<Vec<String>>) -> Self {
        CardinalityGuard {
            cap,
            allowlist: allowlist.map(|l| {
                l.into_iter()
                    .map(|v| (Arc::from(v), Arc::default()))
                    .collect()
            }),
            admitted: RwLock::new(HashMap::default()),
            sentinels: RwLock::new(HashMap::default()),
            other: Admitted {
                label: Arc::from(sentinel::OTHER),
                handles: Arc::default(),
                replaced: true,
            },
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
        let a = self.admit_entry(value);
        (a.label, a.replaced)
    }

    /// Like [`admit`](Self::admit), with the value's series.
    pub fn admit_entry(&self, value: &str) -> Admitted {
        if value.starts_with('(') {
            // Sentinels are always allowed and do not count toward the cap.
            if let Some(a) = self.sentinels.read().ok().and_then(|m| entry(&m, value)) {
                return a;
            }
            let mut map = match self.sentinels.write() {
                Ok(m) => m,
                Err(e) => e.into_inner(),
            };
            let handles = map.entry(Arc::from(value)).or_default().clone();
            return Admitted {
                label: Arc::from(value),
                handles,
                replaced: false,
            };
        }
        if let Some(allow) = &self.allowlist {
            return entry(allow, value).unwrap_or_else(|| self.other.clone());
        }
        if let Ok(set) = self.admitted.read() {
            if let Some(a) = entry(&set, value) {
                return a;
            }
            if set.len() >= self.cap {
                return self.other.clone();
            }
        }
        match self.admitted.write() {
            Ok(mut set) if set.len() < self.cap || set.contains_key(value) => {
                let key = set
                    .get_key_value(value)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| Arc::from(value));
                let handles = set.entry(key.clone()).or_default().clone();
                Admitted {
                    label: key,
                    handles,
                    replaced: false,
                }
            }
            _ => self.other.clone(),
        }
    }

    /// Like [`admit`](Self::admit) for a borrowed value.
    pub fn admit_str(&self, value: &str) -> (Arc<str>, bool) {
        let a = self.admit_entry(value);
        (a.label, a.replaced)
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
    fn a_value_seen_before_brings_its_resolved_series() {
        use crate::{RequestLabels, SliMetrics, DEFAULT_BUCKETS};
        use slogate_core::{Kind, OperationType, Outcome};
        let registry = crate::Registry::new();
        let metrics = SliMetrics::register(&registry, DEFAULT_BUCKETS).unwrap();
        let g = CardinalityGuard::new(1, None);
        let (a, b) = (g.admit_entry("GetCourse"), g.admit_entry("GetCourse"));
        assert!(
            Arc::ptr_eq(&a.handles, &b.handles),
            "one lookup, the same series"
        );
        let other = g.admit_entry("Another");
        assert!(other.replaced && &*other.label == sentinel::OTHER);
        assert!(Arc::ptr_eq(&other.handles, &g.admit_entry("Third").handles));
        let invalid = g.admit_entry(sentinel::INVALID);
        assert!(!invalid.replaced, "sentinels pass and do not count");
        for (admitted, outcome) in [
            (&a, Outcome::Success),
            (&b, Outcome::Success),
            (&other, Outcome::SystemError),
        ] {
            let labels = RequestLabels {
                service: "rails",
                kind: Kind::Graphql,
                operation: &admitted.label,
                operation_type: OperationType::Query,
                outcome,
            };
            admitted.handles.get(&metrics, &labels).observe(0.01);
        }
        let text = crate::encode(&registry);
        assert!(text.contains(r#"slogate_requests_total{kind="graphql",operation="GetCourse",operation_type="query",outcome="success",service="rails"} 2"#), "{text}");
        assert!(text.contains(r#"operation="(other)",operation_type="query",outcome="system_error",service="rails"} 1"#), "{text}");
    }

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

//! The closed vocabularies that end up as metric label values.

use std::fmt;

/// What the user experienced, from the SLI's point of view.
///
/// Outcomes have one order, [`Outcome::severity`]; there is deliberately no `Ord` (a derived
/// one would follow declaration order and disagree with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The request did what was asked.
    Success,
    /// The request failed because of what the client sent (bad input, auth, not found).
    ClientError,
    /// The request failed because of the system: an incident, burns error budget.
    SystemError,
    /// The client went away before the response was complete.
    Canceled,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::SystemError,
        Outcome::Canceled,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::SystemError => "system_error",
            Outcome::Canceled => "canceled",
        }
    }

    /// How much an outcome says about the system, the one ranking slogate uses wherever
    /// outcomes are combined: system_error > client_error > canceled > success.
    pub const fn severity(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Canceled => 1,
            Outcome::ClientError => 2,
            Outcome::SystemError => 3,
        }
    }

    /// The outcome of the two that says more about the system (see [`Outcome::severity`]).
    pub const fn worse(self, other: Outcome) -> Outcome {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// Parses a label value.
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of an operation; `Http` for requests outside the GraphQL endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationType {
    /// A GraphQL query.
    Query,
    /// A GraphQL mutation.
    Mutation,
    /// A GraphQL subscription.
    Subscription,
    /// A GraphQL request whose type could not be known.
    Unknown,
    /// A plain HTTP request.
    Http,
}

impl OperationType {
    /// The types a GraphQL operation can have, in label order.
    pub const GRAPHQL: [OperationType; 4] = [
        OperationType::Query,
        OperationType::Mutation,
        OperationType::Subscription,
        OperationType::Unknown,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
            OperationType::Unknown => "unknown",
            OperationType::Http => "http",
        }
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which family of traffic a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A request to one of the GraphQL endpoint paths.
    Graphql,
    /// Any other request.
    Http,
}

impl Kind {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Graphql => "graphql",
            Kind::Http => "http",
        }
    }
}

/// Label sentinels. No GraphQL name can contain parentheses, so none collides with a real name.
pub mod sentinel {
    /// An operation without a name.
    pub const ANONYMOUS: &str = "(anonymous)";
    /// A request that could not be parsed.
    pub const INVALID: &str = "(invalid)";
    /// Anything past a cardinality bound.
    pub const OTHER: &str = "(other)";
    /// An error entry without `extensions.code`.
    pub const NO_CODE: &str = "(none)";
    /// The sentinels an `operation` label can hold besides a GraphQL name.
    pub const OPERATIONS: [&str; 3] = [ANONYMOUS, INVALID, OTHER];
}

/// The default latency histogram buckets (seconds) of `slogate_request_duration_seconds`. SLO
/// latency thresholds must be one of the buckets in use.
pub const DEFAULT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The default job latency buckets (seconds) of `slogate_job_duration_seconds`: the request
/// buckets, then minutes to an hour (jobs take longer than requests). A job SLO's latency
/// threshold must be one of the buckets in use.
pub const DEFAULT_JOB_BUCKETS: [f64; 20] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0, 1800.0, 3600.0,
];

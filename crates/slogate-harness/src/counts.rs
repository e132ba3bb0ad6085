//! Counts by outcome and the key they are kept under, shared by the three views.

use serde::{Deserialize, Serialize};
use slogate_core::Outcome;

/// An operation as slogate labels it: the `kind` and `operation` labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpKey {
    /// `graphql` or `http`.
    pub kind: String,
    /// The operation name, route (`GET /api/v1/courses/:id`) or sentinel (`(invalid)`).
    pub operation: String,
}

impl OpKey {
    /// A GraphQL operation.
    pub fn graphql(name: &str) -> OpKey {
        OpKey {
            kind: "graphql".into(),
            operation: name.into(),
        }
    }

    /// An HTTP route.
    pub fn http(name: &str) -> OpKey {
        OpKey {
            kind: "http".into(),
            operation: name.into(),
        }
    }
}

/// Requests by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// `success`.
    pub success: u64,
    /// `client_error`.
    pub client_error: u64,
    /// `system_error`.
    pub system_error: u64,
    /// `canceled`.
    pub canceled: u64,
}

impl OutcomeCounts {
    /// Adds `n` of `outcome`.
    pub fn add(&mut self, outcome: Outcome, n: u64) {
        match outcome {
            Outcome::Success => self.success += n,
            Outcome::ClientError => self.client_error += n,
            Outcome::SystemError => self.system_error += n,
            Outcome::Canceled => self.canceled += n,
        }
    }

    /// The count of `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Success => self.success,
            Outcome::ClientError => self.client_error,
            Outcome::SystemError => self.system_error,
            Outcome::Canceled => self.canceled,
        }
    }

    /// Every outcome together.
    pub fn total(&self) -> u64 {
        self.success + self.client_error + self.system_error + self.canceled
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &OutcomeCounts) {
        for o in Outcome::ALL {
            self.add(o, other.get(o));
        }
    }

    /// `self - before`, per outcome (never below 0).
    pub fn since(&self, before: &OutcomeCounts) -> OutcomeCounts {
        let mut out = OutcomeCounts::default();
        for o in Outcome::ALL {
            out.add(o, self.get(o).saturating_sub(before.get(o)));
        }
        out
    }

    /// Availability as the SLOs define it: `1 - system_error / (total - canceled)`.
    pub fn availability(&self) -> Option<f64> {
        let eligible = self.total() - self.canceled;
        (eligible > 0).then(|| 1.0 - self.system_error as f64 / eligible as f64)
    }

    /// `ok/client/system/canceled`, compact.
    pub fn compact(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.success, self.client_error, self.system_error, self.canceled
        )
    }
}

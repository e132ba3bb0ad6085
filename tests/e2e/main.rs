//! The end-to-end tests: the real slogate binary, driven from outside, one test binary
//! (`cargo test --test e2e`). Tests are laid out by what they need, so a path prefix selects
//! them:
//!
//! * `own::` runs only what this workspace builds (the slogate binary, and mocks and raw
//!   upstreams written in the tests). `make unit` runs these.
//! * `needs::<program>::` needs a program the workspace does not build; `make unit` leaves
//!   out every test under `needs::`, `make test` installs the programs and runs them all. A
//!   test that needs several programs goes under the first of: `nginx`, `prometheus` (the
//!   server or promtool), `datadog` (Python with the Datadog packages), `rails` (Ruby and
//!   Puma). Tests under `rails::` may also need curl or openssl. Each test names what is
//!   missing (`require_tool`).
//!
//! The tests share this binary and run two at a time: a test that loads the machine holds
//! [`support::heavy`], one whose assertions are about time holds [`support::quiet`], so the
//! two kinds never overlap. The Rails fixture ([`support::rails`]) is started once, for every
//! test that uses it.

mod support;

/// No external program.
mod own {
    pub(crate) mod cli;
    pub(crate) mod docs;
    pub(crate) mod edge;
    pub(crate) mod faults;
    pub(crate) mod graphql_sli;
    pub(crate) mod harness;
    pub(crate) mod nginx_import;
    pub(crate) mod slo_ops;
    pub(crate) mod smuggling;
}

/// A program the workspace does not build, named by the module.
mod needs {
    /// nginx (and the Rails fixture).
    mod nginx {
        mod nginx_import;
        mod nginx_parity;
    }
    /// Prometheus or promtool (and the Rails fixture or the mock upstream).
    mod prometheus {
        mod graphql_sli;
        mod slo_e2e;
        mod slo_ops;
    }
    /// Python with datadog-checks-base (and the Rails fixture).
    mod datadog {
        mod slo_ops;
    }
    /// Ruby and Puma: the Rails fixture, or a Puma of the test's own.
    mod rails {
        mod edge;
        mod faults;
        mod graphql_sli;
        mod harness;
    }
}

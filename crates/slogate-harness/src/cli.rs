//! The `mock-upstream` and `loadtest` subcommands.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::load::{self, LoadOptions};
use crate::mock::MockServer;
use crate::report;
use crate::rules::ProxyRules;
use crate::scenario::{LoadMode, Scenario};

/// `slogate mock-upstream`: a Rails-like GraphQL upstream that answers as a scenario says.
#[derive(clap::Args, Clone, Debug)]
pub struct MockArgs {
    /// The scenario (YAML, see proxy-config/scenarios/).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3000")]
    pub listen: String,
    /// slogate's configuration: its classification rules decide which outcome each answer
    /// counts as in /__mock/stats (default: slogate's defaults).
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<PathBuf>,
}

/// `slogate loadtest`: load slogate from a scenario and check the three views agree.
#[derive(clap::Args, Clone, Debug)]
pub struct LoadtestArgs {
    /// The scenario (YAML, see proxy-config/scenarios/).
    #[arg(long, value_name = "FILE")]
    pub scenario: PathBuf,
    /// Base URL to send the load to (slogate's listener), e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// slogate's metrics, e.g. http://127.0.0.1:9090/metrics: compare its counts.
    #[arg(long, value_name = "URL")]
    pub metrics: Option<String>,
    /// The mock upstream's ground truth, e.g. http://127.0.0.1:3000/__mock/stats.
    #[arg(long, value_name = "URL")]
    pub mock_stats: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// slogate's configuration file: apply its naming and classification rules and its
    /// upstream read timeout (default: slogate's defaults and the scenario's proxy section).
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<PathBuf>,
    /// Only count this `service` label in the metrics.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Requests per second (open loop), replacing load.rate.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Closed loop on N connections, replacing load.mode and load.connections; with --rate,
    /// open loop over exactly N connections (wrk2's model).
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Run this long, replacing load.duration (e.g. 30s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Send this many requests, replacing load.requests.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Latency quantiles may fall this many histogram buckets away from the proxy's.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub bucket_tolerance: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Load and recheck a scenario with the command line's replacements.
fn scenario_for(
    path: &std::path::Path,
    rules: Option<&ProxyRules>,
    overrides: impl FnOnce(&mut Scenario),
) -> anyhow::Result<Scenario> {
    let mut scenario = Scenario::load(path)?;
    overrides(&mut scenario);
    let timeout = rules.map_or(scenario.proxy_read_timeout, |r| r.read_timeout);
    Ok(scenario.with_read_timeout(timeout)?)
}

/// Runs the mock upstream until Ctrl-C.
pub fn run_mock(args: &MockArgs) -> anyhow::Result<()> {
    let rules = ProxyRules::load(args.proxy_config.as_deref())?;
    let configured = args.proxy_config.is_some().then_some(&rules);
    let scenario = scenario_for(&args.scenario, configured, |_| {})?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let mock = MockServer::start(listener, Arc::new(scenario), rules)?;
        println!(
            "mock upstream for {} on http://{}; ground truth at {}",
            args.scenario.display(),
            mock.addr(),
            mock.stats_url()
        );
        crate::demo::stopped().await?;
        Ok(())
    })
}

/// The loaded views disagree; the CLI exits with code 1.
#[derive(Debug, thiserror::Error)]
#[error("the views disagree on {operations} operation label(s) (see the report)")]
pub struct Disagreement {
    /// Labels whose views differ.
    pub operations: usize,
}

/// Runs a load test, prints the report, and fails with [`Disagreement`] when views differ.
pub fn run_loadtest(args: &LoadtestArgs) -> anyhow::Result<()> {
    let rules = match &args.proxy_config {
        Some(p) => Some(ProxyRules::load(Some(p))?),
        None => None,
    };
    let scenario = scenario_for(&args.scenario, rules.as_ref(), |s| {
        if let Some(r) = args.rate {
            s.load.mode = LoadMode::Open;
            s.load.rate = r;
        }
        match (args.rate, args.connections) {
            (Some(_), Some(c)) => s.load.open_connections = Some(c.max(1)),
            (None, Some(c)) => {
                s.load.mode = LoadMode::Closed;
                s.load.connections = c.max(1);
                s.load.open_connections = None;
            }
            _ => {}
        }
        if args.duration.is_some() || args.requests.is_some() {
            s.load.duration = args.duration;
            s.load.requests = args.requests;
        }
    })?;
    let options = LoadOptions {
        target: args.target.clone(),
        metrics: args.metrics.clone(),
        mock_stats: args.mock_stats.clone(),
        rules: rules.unwrap_or_else(ProxyRules::defaults),
        service: args.service.clone(),
        bucket_tolerance: args.bucket_tolerance,
        progress: !args.quiet && !args.json,
    };
    let report = load::run_blocking(&scenario, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render(&report));
    }
    if report.agree {
        Ok(())
    } else {
        Err(Disagreement {
            operations: report.disagreements(),
        }
        .into())
    }
}

//! The `slo` subcommand the `slogate` binary mounts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::dashboard::generate_dashboard;
use crate::datadog;
use crate::report::{build_report, render_table, Prometheus};
use crate::rule_tests::generate_rule_tests;
use crate::rules::generate_rules;
use crate::simulate::{render_simulation, simulate_with_history, Incident, IncidentKind, Sampling};
use crate::spec::load_spec_with_job_buckets;
use crate::Spec;

/// Service level objectives: validate the spec, generate Prometheus rules
/// and Grafana dashboards, report on the live state.
#[derive(Debug, clap::Args)]
pub struct SloArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SloCommand,
}

/// The `slo` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SloCommand {
    /// Validate the SLO spec; every mistake names the file, the SLO and the field.
    Check {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Generate the Prometheus rule file (recording rules and alerts), or
    /// with --tests its `promtool test rules` suite.
    Rules {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
        /// Write the `promtool test rules` suite (expectations from
        /// `slo simulate`) instead of the rules.
        #[arg(long)]
        tests: bool,
        /// With --tests: the rule file's path, relative to the test file.
        #[arg(
            long,
            value_name = "PATH",
            default_value = "slo.rules.yaml",
            requires = "tests"
        )]
        rules_path: String,
    },
    /// Generate the Grafana dashboard JSON of one service.
    Dashboard {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
        /// The service (needed when the spec covers several).
        #[arg(long)]
        service: Option<String>,
    },
    /// Predict when every alert fires for an incident, how much budget is
    /// spent by then, and when it resolves.
    Simulate {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
        /// The incident.
        #[command(flatten)]
        incident: IncidentArgs,
        /// Only these SLOs (`checkout` or `checkout-availability`); repeatable.
        #[arg(long, value_name = "NAME")]
        slo: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The same SLOs for Datadog: the Agent's OpenMetrics check, metric
    /// SLOs and burn-rate monitors (API or Terraform JSON).
    Datadog {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
        /// What to generate.
        #[arg(long, value_enum, default_value = "api")]
        target: DatadogTarget,
        /// With --target agent: slogate's metrics URL as the Agent reaches it.
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://localhost:9090/metrics"
        )]
        metrics_url: String,
        /// With --target agent: `slogate jobs`' metrics URL (added when given,
        /// or by default when an SLO reads job metrics).
        #[arg(long, value_name = "URL")]
        jobs_metrics_url: Option<String>,
    },
    /// Query Prometheus: SLI, budget left, burn rates and alerts per SLO.
    Report {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
        /// Prometheus base URL.
        #[arg(long, value_name = "URL", default_value = "http://localhost:9090")]
        prometheus: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Timeout for each query, e.g. 10s.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Report alert episodes over this much history instead of the live
        /// state, e.g. 30d.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// With --since: the resolution; at least the rule evaluation interval.
        #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration, requires = "since")]
        step: Duration,
    },
}

/// Which spec to read.
#[derive(Debug, Clone, clap::Args)]
pub struct SpecArgs {
    /// The SLO spec: slogate's format or OpenSLO v1 documents.
    #[arg(long, value_name = "FILE", default_value = "proxy-config/slo.yaml")]
    pub spec: PathBuf,
    /// The latency histogram's bucket boundaries in seconds; must match the
    /// proxy config.
    #[arg(
        long,
        value_name = "SECONDS,...",
        value_delimiter = ',',
        default_value = "0.005,0.01,0.025,0.05,0.1,0.2,0.25,0.3,0.5,1,2.5,5,10"
    )]
    pub buckets: Vec<f64>,
    /// The job histogram's bucket boundaries in seconds, against which job latency
    /// thresholds are checked; pass the list if `slogate jobs`' config changes it.
    #[arg(
        long,
        value_name = "SECONDS,...",
        value_delimiter = ',',
        default_value = "0.005,0.01,0.025,0.05,0.1,0.2,0.25,0.3,0.5,1,2.5,5,10,30,60,120,300,600,1800,3600"
    )]
    pub job_buckets: Vec<f64>,
}

/// What `slo datadog` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatadogTarget {
    /// The Agent's OpenMetrics check configuration (YAML).
    Agent,
    /// Datadog API bodies (JSON).
    Api,
    /// Terraform JSON (`.tf.json`).
    Terraform,
}

/// An incident for `simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct IncidentArgs {
    /// Share of requests failing with system_error during the incident,
    /// e.g. `100%`, `2%` or `0.02` (touches availability SLOs).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio, required_unless_present = "slow", conflicts_with = "slow")]
    pub errors: Option<f64>,
    /// Share of requests slower than the latency threshold during the
    /// incident (touches latency SLOs).
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio)]
    pub slow: Option<f64>,
    /// The share before and after the incident.
    #[arg(long, value_name = "RATIO", value_parser = parse_ratio, default_value = "0")]
    pub baseline: f64,
    /// Rise linearly from the baseline over this long (default: a step).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub ramp: Option<Duration>,
    /// How long the incident lasts, ramp included.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Prometheus's scrape interval.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub scrape_interval: Duration,
    /// Prometheus's rule evaluation interval.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub eval_interval: Duration,
    /// Only this much healthy traffic before the incident (a service that
    /// just started); default: long enough for every window.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub history: Option<Duration>,
    /// When the incident starts after a rule evaluation (and a scrape).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub start_offset: Duration,
}

impl IncidentArgs {
    fn incident(&self) -> Incident {
        let (kind, ratio) = match (self.errors, self.slow) {
            (Some(ratio), _) => (IncidentKind::Errors, ratio),
            (None, ratio) => (IncidentKind::SlowRequests, ratio.unwrap_or(0.0)),
        };
        Incident {
            kind,
            ratio,
            baseline: self.baseline,
            ramp_seconds: self.ramp.map_or(0.0, |r| r.as_secs_f64()),
            duration_seconds: self.duration.as_secs_f64(),
        }
    }

    fn sampling(&self) -> Sampling {
        Sampling {
            scrape_ms: millis(self.scrape_interval),
            eval_ms: millis(self.eval_interval),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `2%`, `100%` or `0.02`.
fn parse_ratio(text: &str) -> Result<f64, String> {
    let (number, scale) = match text.trim().strip_suffix('%') {
        Some(p) => (p, 100.0),
        None => (text.trim(), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a ratio (write 2%, 100% or 0.02)"))?;
    let ratio = value / scale;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!("{text:?} is not between 0% and 100%"))
    }
}

/// Where to write generated output.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output file (default: standard output).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl SpecArgs {
    fn load(&self) -> anyhow::Result<Spec> {
        Ok(load_spec_with_job_buckets(
            &self.spec,
            &self.buckets,
            &self.job_buckets,
        )?)
    }
}

/// Runs an `slo` subcommand.
///
/// Spec mistakes come back as a [`crate::SpecError`] inside the
/// `anyhow::Error` (map it to exit code 2 with `downcast_ref`).
pub fn run(args: &SloArgs) -> anyhow::Result<()> {
    match &args.command {
        SloCommand::Check { spec } => {
            let loaded = spec.load()?;
            print!("{}", check_summary(&loaded));
            Ok(())
        }
        SloCommand::Rules {
            spec,
            output,
            tests,
            rules_path,
        } => {
            let loaded = spec.load()?;
            let text = if *tests {
                generate_rule_tests(&loaded, rules_path)?
            } else {
                generate_rules(&loaded)?
            };
            write_output(output, &text)
        }
        SloCommand::Dashboard {
            spec,
            output,
            service,
        } => {
            let loaded = spec.load()?;
            let service = pick_service(&loaded, service.as_deref())?;
            write_output(output, &generate_dashboard(&loaded, &service)?)
        }
        SloCommand::Simulate {
            spec,
            output,
            incident,
            slo,
            json,
        } => {
            let loaded = spec.load()?;
            let sim = simulate_with_history(
                &loaded,
                &incident.incident(),
                incident.sampling(),
                millis(incident.start_offset),
                slo,
                incident.history.map(millis),
            )?;
            let text = if *json {
                format!("{}\n", serde_json::to_string_pretty(&sim)?)
            } else {
                render_simulation(&sim)
            };
            write_output(output, &text)
        }
        SloCommand::Datadog {
            spec,
            output,
            target,
            metrics_url,
            jobs_metrics_url,
        } => {
            let loaded = spec.load()?;
            let text = match target {
                DatadogTarget::Agent => {
                    let jobs = jobs_metrics_url.clone().or_else(|| {
                        datadog::needs_jobs(&loaded).then(|| "http://localhost:9092/metrics".into())
                    });
                    datadog::agent_config(
                        &loaded,
                        &datadog::AgentEndpoints {
                            proxy: metrics_url.clone(),
                            jobs,
                        },
                    )
                }
                DatadogTarget::Api => {
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&datadog::api_json(&loaded))?
                    )
                }
                DatadogTarget::Terraform => format!(
                    "{}\n",
                    serde_json::to_string_pretty(&datadog::terraform_json(&loaded))?
                ),
            };
            write_output(output, &text)
        }
        SloCommand::Report {
            spec,
            output,
            prometheus,
            json,
            timeout,
            since,
            step,
        } => {
            let loaded = spec.load()?;
            let client = Prometheus::new(prometheus, *timeout)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .context("the system clock is before 1970")?;
            if let Some(since) = since {
                // Aligned to the step, so runs of points line up.
                let step_secs = step.as_secs_f64().max(1.0);
                let end = (now / step_secs).floor() * step_secs;
                let history = crate::history::build_history(
                    &loaded,
                    &client,
                    since.as_secs_f64(),
                    end,
                    step_secs,
                )?;
                let text = if *json {
                    format!("{}\n", serde_json::to_string_pretty(&history)?)
                } else {
                    crate::history::render_history(&history)
                };
                return write_output(output, &text);
            }
            let report = build_report(&loaded, &client, now)?;
            let text = if *json {
                format!("{}\n", serde_json::to_string_pretty(&report)?)
            } else {
                render_table(&report)
            };
            write_output(output, &text)
        }
    }
}

/// What `check` prints for a valid spec, with a note per test period.
pub fn check_summary(spec: &Spec) -> String {
    let mut out = format!(
        "{}: OK: {} SLO objective(s) for service(s) {}\n",
        spec.source,
        spec.slos.len(),
        spec.services().join(", ")
    );
    for slo in spec.slos.iter().filter(|s| s.period.is_custom()) {
        out.push_str(&format!(
            "{}: note: {} {:?}: period {} is a custom period, meant for tests; use 28d, 30d or calendar_month in production\n",
            spec.source, slo.position, slo.spec_name, slo.period
        ));
    }
    out
}

fn pick_service(spec: &Spec, asked: Option<&str>) -> anyhow::Result<String> {
    if let Some(service) = asked {
        return Ok(service.to_string());
    }
    match spec.services().as_slice() {
        [only] => Ok((*only).to_string()),
        many => anyhow::bail!(
            "{} covers several services ({}); pick one with --service",
            spec.source,
            many.join(", ")
        ),
    }
}

fn write_output(output: &OutputArgs, text: &str) -> anyhow::Result<()> {
    match &output.output {
        Some(path) => write_file(path, text),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

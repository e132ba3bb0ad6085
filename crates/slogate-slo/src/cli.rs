//! The `slo` subcommand the `slogate` binary mounts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use crate::dashboard::generate_dashboard;
use crate::report::{build_report, render_table, Prometheus};
use crate::rules::generate_rules;
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
    /// Generate the Prometheus rule file (recording rules and alerts).
    Rules {
        /// The spec.
        #[command(flatten)]
        spec: SpecArgs,
        /// Where to write.
        #[command(flatten)]
        output: OutputArgs,
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
        SloCommand::Rules { spec, output } => write_output(output, &generate_rules(&spec.load()?)?),
        SloCommand::Dashboard {
            spec,
            output,
            service,
        } => {
            let loaded = spec.load()?;
            let service = pick_service(&loaded, service.as_deref())?;
            write_output(output, &generate_dashboard(&loaded, &service)?)
        }
        SloCommand::Report {
            spec,
            output,
            prometheus,
            json,
            timeout,
        } => {
            let loaded = spec.load()?;
            let client = Prometheus::new(prometheus, *timeout)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .context("the system clock is before 1970")?;
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

//! `slogate-jobs`: the `slogate jobs` mode as a standalone sidecar binary.
//! The integration tests run it as the process under test.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use slogate_jobs::{ConfigError, JobsArgs};

/// Job SLIs for Sidekiq.
#[derive(Parser)]
#[command(name = "slogate-jobs", version)]
struct Cli {
    #[command(flatten)]
    jobs: JobsArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match slogate_jobs::run(&cli.jobs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slogate jobs: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

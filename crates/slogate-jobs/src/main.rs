//! `slogate-jobs`: the `slogate jobs` mode as a standalone sidecar binary.
//! The integration tests run it as the process under test.

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
    slogate_diagnostics::init_logging();
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

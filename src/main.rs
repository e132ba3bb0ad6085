//! The `slogate` command: a thin CLI over the library crates.
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage or configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use slogate_config::{ConfigError, Overrides};
use slogate_diagnostics::{FileError, COMMAND_LINE};

/// jemalloc, not glibc's malloc. Measured on the peer benchmark (docs/performance.md):
/// glibc spent ~6,000 instructions per request on a few dozen small allocations (hyper's
/// buffers, the handler's future, the core's vectors); jemalloc takes 2,100 fewer in all,
/// and an idle keep-alive connection holds 9.8-11.2 KiB instead of 13.2. mimalloc took 4,200
/// fewer but held 19.8 KiB per idle connection (over #10's 16 KiB).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (a `MALLOC_CONF`-style string; the environment's
/// `_RJEM_MALLOC_CONF` still applies after it). Each thread caches at least 64 freed blocks
/// of a small size class instead of 20: hyper allocates a new 8 KiB read buffer for each
/// request (the last one is still shared by the request's header values when it reads
/// ahead), and with 20 slots that size class kept going back to the arena (another 2,100
/// instructions per peer request). The most stays jemalloc's `tcache_nslots_small_max`
/// (200 blocks per size class and thread), returned by its cache GC when unused.
#[allow(non_upper_case_globals, unsafe_code)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 27] = b"tcache_nslots_small_min:64\0";

#[derive(Parser)]
#[command(
    name = "slogate",
    version,
    about = "A reverse proxy for Rails that turns GraphQL traffic into per-operation SLIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run(RunArgs),
    /// Validate a configuration (and an SLO spec) without running anything.
    Check(CheckArgs),
    /// SLOs as code: validate specs, generate Prometheus rules and Grafana dashboards, report.
    Slo(slogate_slo::SloArgs),
    /// Background job SLIs: follow Sidekiq's JSON log and watch its Redis queues.
    Jobs(slogate_jobs::JobsArgs),
    /// A mock Rails GraphQL upstream that answers as a scenario says (ground truth at
    /// /__mock/stats).
    MockUpstream(slogate_harness::MockArgs),
    /// Load slogate from a scenario; check client, proxy and upstream agree (exit 1 if not).
    Loadtest(slogate_harness::LoadtestArgs),
    /// One command: a mock upstream, slogate in front, an incident, the SLI table.
    Demo(slogate_harness::DemoArgs),
    /// Turn another proxy's configuration into a commented slogate configuration.
    #[command(subcommand)]
    Import(ImportFrom),
}

#[derive(Subcommand)]
enum ImportFrom {
    /// nginx: follows includes, picks a server block, writes YAML naming each setting's
    /// source and lists what it could not translate. Exit 0: all translated; 1: something
    /// was not (listed on stderr and in the YAML); 2: not valid nginx syntax.
    Nginx(NginxImportArgs),
}

#[derive(Args)]
struct NginxImportArgs {
    /// The nginx configuration (nginx.conf or a sites-available file).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The server block to import, by server_name (needed when there are several).
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// Write the YAML here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct ConfigArgs {
    /// Configuration file (YAML). Without one, the defaults and the flags below apply.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, replacing server.listen (host:port or unix:/path).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The application, replacing upstream.backends (host:port or unix:/path/puma.sock).
    #[arg(long, value_name = "ADDR")]
    upstream: Option<String>,
    /// Admin listener (metrics, health), replacing admin.listen.
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Worker threads, replacing server.threads.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

impl ConfigArgs {
    fn load(&self) -> Result<slogate_config::Config, ConfigError> {
        let overrides = Overrides {
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            admin: self.admin.clone(),
            threads: self.threads,
        };
        slogate_config::load(self.config.as_deref(), &overrides)
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Take over the listening sockets of a running slogate, then tell it to finish
    /// (zero-downtime restart: start the new process with -u, then send SIGQUIT to the old).
    #[arg(short, long)]
    upgrade: bool,
    /// Run in the background.
    #[arg(short, long)]
    daemon: bool,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also validate this SLO spec against the configured histogram buckets.
    #[arg(long, value_name = "FILE")]
    slo: Option<PathBuf>,
    /// Also validate this `slogate jobs` configuration.
    #[arg(long, value_name = "FILE")]
    jobs: Option<PathBuf>,
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let (config, _) = load_checked(&args.config)?;
    slogate_proxy::run(
        config,
        slogate_proxy::RunOptions {
            upgrade: args.upgrade,
            daemon: args.daemon,
        },
    )
    .map_err(anyhow::Error::msg)
}

/// Validates the configuration and what validation alone cannot (backends resolve, TLS
/// material loads); any problem is a configuration error (exit code 2).
fn load_checked(args: &ConfigArgs) -> anyhow::Result<(slogate_config::Config, String)> {
    let config = args.load()?;
    let file = args
        .config
        .as_ref()
        .map_or(COMMAND_LINE.to_string(), |p| p.display().to_string());
    slogate_proxy::preflight(&config).map_err(|message| FileError::single(&file, "", message))?;
    Ok((config, file))
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let (config, file) = load_checked(&args.config)?;
    let mut checked = vec![file];
    if let Some(spec) = &args.slo {
        slogate_slo::load_spec(spec, &config.metrics.buckets)?;
        checked.push(spec.display().to_string());
    }
    if let Some(jobs) = &args.jobs {
        slogate_jobs::check_config(jobs)?;
        checked.push(jobs.display().to_string());
    }
    println!("ok: {}", checked.join(", "));
    Ok(())
}

fn import_nginx(args: &NginxImportArgs) -> ExitCode {
    use slogate_config::nginx_import::{import_file, ImportOptions, NoteKind};
    let options = ImportOptions {
        server: args.server.clone(),
    };
    let import = match import_file(&args.file, &options) {
        Ok(import) => import,
        Err(e) => {
            eprintln!("slogate: {e}");
            return ExitCode::from(2);
        }
    };
    for note in &import.notes {
        eprintln!("{note}");
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &import.yaml).map_err(|e| (path, e)),
        None => {
            print!("{}", import.yaml);
            Ok(())
        }
    };
    if let Err((path, e)) = written {
        eprintln!("slogate: cannot write {}: {e}", path.display());
        return ExitCode::from(1);
    }
    let count = |k: NoteKind| import.notes.iter().filter(|n| n.kind == k).count();
    eprintln!(
        "slogate: imported {}: {} untranslated, {} different, {} informational",
        args.file.display(),
        count(NoteKind::Untranslated),
        count(NoteKind::Different),
        count(NoteKind::Informational)
    );
    ExitCode::from(import.exit_code())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    slogate_diagnostics::init_logging();
    let result = match cli.command {
        Command::Import(ImportFrom::Nginx(args)) => return import_nginx(&args),
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Slo(args) => slogate_slo::run(&args),
        Command::Jobs(args) => slogate_jobs::run(&args),
        Command::MockUpstream(args) => slogate_harness::run_mock(&args),
        Command::Loadtest(args) => slogate_harness::run_loadtest(&args),
        Command::Demo(args) => slogate_harness::run_demo(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slogate: {e:#}");
            // Every file slogate reads reports its mistakes as a FileError.
            let usage = e.downcast_ref::<FileError>().is_some();
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

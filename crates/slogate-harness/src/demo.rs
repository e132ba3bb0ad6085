//! `slogate demo`: the mock upstream, slogate in front of it, an incident, and the SLI table,
//! with no Rails app and no argument.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::load::{self, LoadOptions};
use crate::mock::MockServer;
use crate::report::{table, Report};
use crate::rules::ProxyRules;
use crate::scenario::{LoadMode, Scenario};

/// The incident scenario, built in so the demo needs no file.
pub const INCIDENT: &str = include_str!("../../../proxy-config/scenarios/incident.yaml");

/// `slogate demo`: a mock Rails upstream, slogate in front, an incident, the SLI table.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DemoArgs {
    /// Run the load this long, print the table and exit (by default: 15s of load, then
    /// everything keeps running until Ctrl-C so /metrics can be explored).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Exit after the table instead of waiting for Ctrl-C.
    #[arg(long)]
    pub exit: bool,
    /// Requests per second, replacing the scenario's rate.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Another scenario instead of the built-in incident.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

/// Default length of the demo's load.
const DEFAULT_LOAD: Duration = Duration::from_secs(15);

/// Runs the demo.
pub fn run_demo(args: &DemoArgs) -> anyhow::Result<()> {
    let mut scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::parse("incident.yaml (built in)", INCIDENT)?,
    };
    scenario.load.duration = Some(args.duration.unwrap_or(DEFAULT_LOAD));
    scenario.load.requests = None;
    if let Some(r) = args.rate {
        scenario.load.mode = LoadMode::Open;
        scenario.load.rate = r;
    }
    let scenario = scenario
        .clone()
        .with_read_timeout(scenario.proxy_read_timeout)?;
    let interactive = args.duration.is_none() && !args.exit;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(demo(scenario, interactive))
}

/// The slogate child process, killed when dropped, with its scratch directory.
struct Proxy {
    child: Child,
    dir: PathBuf,
    port: u16,
    admin: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_proxy(upstream: &str, read_timeout: Duration) -> anyhow::Result<Proxy> {
    let dir = std::env::temp_dir().join(format!("slogate-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("slogate.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  upgrade_socket: {up}\n  pid_file: {pid}\nupstream:\n  name: demo\n  read_timeout: {rt}ms\naccess_log:\n  target: {log}\n",
            up = dir.join("upgrade.sock").display(),
            pid = dir.join("slogate.pid").display(),
            rt = read_timeout.as_millis(),
            log = dir.join("access.log").display(),
        ),
    )?;
    let (port, admin) = (free_port()?, free_port()?);
    let exe = std::env::current_exe().context("cannot find the slogate executable")?;
    let child = Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--upstream", upstream])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args(["--threads", "2"])
        .env("SLOGATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.log"))?))
        .spawn()
        .context("cannot start slogate")?;
    Ok(Proxy {
        child,
        dir,
        port,
        admin,
    })
}

async fn wait_ready(proxy: &mut Proxy) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = format!("127.0.0.1:{}", proxy.admin);
    loop {
        if let Some(status) = proxy.child.try_wait()? {
            let log = std::fs::read_to_string(proxy.dir.join("stderr.log")).unwrap_or_default();
            anyhow::bail!("slogate exited ({status}) before it was ready:\n{log}");
        }
        let up = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .is_ok()
            && tokio::net::TcpStream::connect(&health).await.is_ok();
        if up {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "slogate did not start listening within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn demo(scenario: Scenario, interactive: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rules = ProxyRules::defaults();
    let mock = MockServer::start(listener, Arc::new(scenario.clone()), rules.clone())?;
    let mut proxy = start_proxy(&mock.addr().to_string(), scenario.proxy_read_timeout)?;
    wait_ready(&mut proxy).await?;
    let target = format!("http://127.0.0.1:{}", proxy.port);
    let metrics = format!("http://127.0.0.1:{}/metrics", proxy.admin);
    println!("slogate demo: {}", scenario.description.trim());
    println!(
        "  mock Rails upstream  http://{}  (ground truth: {})",
        mock.addr(),
        mock.stats_url()
    );
    println!("  slogate              {target}  (metrics: {metrics})");
    println!("  load                 {}\n", load::describe(&scenario));
    let options = LoadOptions {
        metrics: Some(metrics.clone()),
        mock_stats: Some(mock.stats_url()),
        progress: true,
        rules,
        ..LoadOptions::new(target.clone())
    };
    let report = load::run(&scenario, &options).await?;
    print!("{}", sli_table(&report));
    println!("\nSee it yourself:");
    println!("  curl -s {metrics} | grep slogate_requests_total");
    println!(
        "  curl -s {target}{} -H 'content-type: application/json' -d '{{\"query\":\"query GetCourse {{ getCourse {{ id }} }}\"}}'",
        scenario.graphql_path
    );
    if interactive {
        println!("  access log: {}", proxy.dir.join("access.log").display());
        println!("\nslogate and the mock keep running; press Ctrl-C to stop.");
        stopped().await?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: either way slogate (a child process) is stopped on the way out.
pub(crate) async fn stopped() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0))
}

/// The SLI table: per operation, as slogate counted it.
pub fn sli_table(report: &Report) -> String {
    let mut rows = vec![[
        "operation",
        "kind",
        "total",
        "success",
        "client_error",
        "system_error",
        "canceled",
        "availability",
        "p99 (slogate bucket)",
        "p99 (client)",
    ]
    .map(String::from)
    .to_vec()];
    for o in &report.operations {
        let c = o.proxy.unwrap_or(o.client);
        let bucket = o
            .latency_checks
            .iter()
            .find(|l| l.quantile == "p99")
            .map_or("-".into(), |l| l.proxy_bucket.clone());
        rows.push(vec![
            o.operation.clone(),
            o.kind.clone(),
            c.total().to_string(),
            c.success.to_string(),
            c.client_error.to_string(),
            c.system_error.to_string(),
            c.canceled.to_string(),
            pct(c.availability()),
            bucket,
            format!("{:.1}ms", o.service_ms.p99),
        ]);
    }
    let mut out = String::from(
        "SLIs as slogate measured them (availability = 1 - system_error / (total - canceled)):\n\n",
    );
    out.push_str(&table(&rows));
    let total = report.client_total().total();
    if report.agree {
        let _ = writeln!(
            out,
            "\nClient, slogate and the mock's ground truth agree exactly on all {total} operations."
        );
    } else {
        let _ = writeln!(out, "\nThe views differ:");
        for o in report
            .operations
            .iter()
            .filter(|o| !o.differences.is_empty())
        {
            let _ = writeln!(out, "  {}: {}", o.operation, o.differences.join("; "));
        }
    }
    out
}

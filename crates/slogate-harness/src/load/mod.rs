//! The load tester: open loop (a constant arrival rate, latency measured from the scheduled
//! time, so a slow server cannot slow the load down and hide its own latency) or closed loop
//! (N connections), then the three views compared.

pub mod client;
pub mod record;
pub mod request;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::mock::MockStats;
use crate::prom::ProxyView;
use crate::report::{self, Report};
use crate::rng::Rng;
use crate::rules::ProxyRules;
use crate::scenario::{LoadMode, LoadPlan, Scenario};

use client::{exchange, get_text, HttpClient};
use record::ClientView;
use request::{Mix, Namer, Outgoing};

/// Where to send the load and where to read the other views.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Base URL of slogate (or of anything speaking HTTP): `http://127.0.0.1:8080`.
    pub target: String,
    /// slogate's `/metrics` URL.
    pub metrics: Option<String>,
    /// The mock's `/__mock/stats` URL.
    pub mock_stats: Option<String>,
    /// The rules slogate labels and classifies by.
    pub rules: ProxyRules,
    /// Only count this `service` label.
    pub service: Option<String>,
    /// Histogram buckets the client's latency quantiles may be away from the proxy's.
    pub bucket_tolerance: usize,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

impl LoadOptions {
    /// Options for `target` with slogate's default rules, a tolerance of one bucket and no
    /// progress bar.
    pub fn new(target: impl Into<String>) -> LoadOptions {
        LoadOptions {
            target: target.into(),
            metrics: None,
            mock_stats: None,
            rules: ProxyRules::defaults(),
            service: None,
            bucket_tolerance: 1,
            progress: false,
        }
    }
}

/// Shared by every request task.
struct Run {
    scenario: Scenario,
    options: LoadOptions,
    base: String,
    client: HttpClient,
    mix: Mix,
    namer: Namer,
    view: Mutex<ClientView>,
    token: String,
    sequence: AtomicU64,
}

impl Run {
    async fn send_and_record(&self, client: &HttpClient, out: Outgoing, intended: Instant) {
        let ex = self.send(client, &out).await;
        self.record(&out, &ex, intended);
        if let (true, Some(next)) = (ex.persisted_not_found, out.then.as_deref()) {
            let follow = self.send(client, next).await;
            self.record(next, &follow, follow.sent);
        }
    }

    async fn send(&self, client: &HttpClient, out: &Outgoing) -> client::Exchange {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.token);
        let load = &self.scenario.load;
        exchange(
            client,
            &self.base,
            out,
            &self.options.rules,
            load.timeout,
            load.accept_gzip,
            &id,
        )
        .await
    }

    fn record(&self, out: &Outgoing, ex: &client::Exchange, intended: Instant) {
        if let Ok(mut v) = self.view.lock() {
            v.record(&out.keys, ex, intended, out.refused_by_proxy);
        }
    }

    fn should_stop(&self, sent: u64, elapsed: Duration) -> bool {
        let load = &self.scenario.load;
        load.requests.is_some_and(|n| sent >= n) || load.duration.is_some_and(|d| elapsed >= d)
    }
}

/// Describes the pacing, e.g. `open loop at 40/s for 10s`.
pub fn describe(scenario: &Scenario) -> String {
    let l = &scenario.load;
    let pace = match (l.mode, l.open_connections) {
        (LoadMode::Open, Some(n)) => format!("open loop at {}/s over {n} connections", l.rate),
        (LoadMode::Open, None) => format!("open loop at {}/s", l.rate),
        (LoadMode::Closed, _) => format!("closed loop on {} connections", l.connections),
    };
    let stop = match (l.duration, l.requests) {
        (Some(d), Some(n)) => format!("for {} or {n} requests", humantime::format_duration(d)),
        (Some(d), None) => format!("for {}", humantime::format_duration(d)),
        (None, Some(n)) => format!("for {n} requests"),
        (None, None) => String::new(),
    };
    format!("{pace} {stop}")
}

/// How many idle connections the client keeps. All the load may open: in an open loop the
/// number in flight follows the target's latency, and a pool smaller than that closes
/// connections after each burst and opens new ones for the next, so the target pays
/// connection setup the steady load would not (and a slow target gets slower still).
fn idle_pool(load: &LoadPlan) -> usize {
    match load.mode {
        LoadMode::Open => load.max_in_flight,
        LoadMode::Closed => load.connections,
    }
    .max(64)
}

/// Runs the scenario's load against `options.target` and compares the views.
pub async fn run(scenario: &Scenario, options: &LoadOptions) -> anyhow::Result<Report> {
    let client = client::http_client(idle_pool(&scenario.load));
    let scrape_timeout = Duration::from_secs(10);
    let proxy_before = match &options.metrics {
        Some(url) => Some(scrape_proxy(&client, url, options, scrape_timeout).await?),
        None => None,
    };
    let mock_before = match &options.mock_stats {
        Some(url) => Some(scrape_mock(&client, url, scrape_timeout).await?),
        None => None,
    };
    let run = Arc::new(Run {
        scenario: scenario.clone(),
        options: options.clone(),
        base: options.target.trim_end_matches('/').to_string(),
        client: client.clone(),
        mix: Mix::new(scenario),
        namer: Namer::new(options.rules.clone()),
        view: Mutex::new(ClientView::default()),
        token: run_token(),
        sequence: AtomicU64::new(0),
    });
    let progress = Progress::start(run.clone(), options.progress);
    let started = Instant::now();
    if let Ok(mut v) = run.view.lock() {
        v.started = started;
    }
    match (scenario.load.mode, scenario.load.open_connections) {
        (LoadMode::Open, Some(n)) => open_loop_over(run.clone(), started, n).await,
        (LoadMode::Open, None) => open_loop(run.clone(), started).await,
        (LoadMode::Closed, _) => closed_loop(run.clone(), started).await,
    }
    progress.finish();
    let mut view = run.view.lock().map(|v| v.clone()).unwrap_or_default();
    view.elapsed = started.elapsed();
    let proxy = match (&options.metrics, proxy_before) {
        (Some(url), Some(before)) => {
            let after = settled_proxy(&client, url, options, &before, view.operations()).await?;
            let labels = after.labels();
            Some((after.since(&before), labels))
        }
        _ => None,
    };
    let mock = match (&options.mock_stats, mock_before) {
        (Some(url), Some(before)) => Some(
            scrape_mock(&client, url, scrape_timeout)
                .await?
                .since(&before),
        ),
        _ => None,
    };
    Ok(report::build(report::Inputs {
        scenario: scenario.file.clone(),
        load: describe(scenario),
        client: &view,
        proxy,
        mock,
        bucket_tolerance: options.bucket_tolerance,
    }))
}

/// [`run`] on a runtime of its own (two worker threads), for callers without one.
pub fn run_blocking(scenario: &Scenario, options: &LoadOptions) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loadtest")
        .enable_all()
        .build()?;
    runtime.block_on(run(scenario, options))
}

/// A token making this run's request ids unique.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(40));
    format!("lt{:012x}", rng.next_u64() >> 16)
}

async fn open_loop(run: Arc<Run>, started: Instant) {
    let rate = run.scenario.load.rate;
    let permits = Arc::new(Semaphore::new(run.scenario.load.max_in_flight));
    let mut rng = Rng::new(run.scenario.seed);
    let mut tasks = JoinSet::new();
    let mut i: u64 = 0;
    loop {
        let offset = Duration::from_secs_f64(i as f64 / rate);
        if run.should_stop(i, offset) {
            break;
        }
        let intended = started + offset;
        tokio::time::sleep_until(intended.into()).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let out = run.mix.next(&run.scenario, &run.namer, &mut rng);
        let r = run.clone();
        tasks.spawn(async move {
            r.send_and_record(&r.client, out, intended).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        i += 1;
    }
    while tasks.join_next().await.is_some() {}
}

/// The open loop over exactly `n` connections (wrk2's model): connection `w` sends requests
/// `w`, `w + n`, `w + 2n`... at their scheduled times. One that answers late delays the
/// next on its connection, and that wait counts in the next one's latency (measured from its
/// scheduled time), so a slow server still cannot hide its latency; the client population,
/// and so the connections the target holds, stay fixed.
async fn open_loop_over(run: Arc<Run>, started: Instant, n: usize) {
    let rate = run.scenario.load.rate;
    let mut workers = JoinSet::new();
    for w in 0..n {
        let r = run.clone();
        workers.spawn(async move {
            // A pool of one, used by one request at a time: one connection, opened again
            // only when the target closes it.
            let client = client::http_client(1);
            let mut rng = Rng::new(r.scenario.seed.wrapping_add(w as u64));
            for k in 0u64.. {
                let i = k * n as u64 + w as u64;
                let offset = Duration::from_secs_f64(i as f64 / rate);
                if r.should_stop(i, offset) {
                    break;
                }
                let intended = started + offset;
                tokio::time::sleep_until(intended.into()).await;
                let out = r.mix.next(&r.scenario, &r.namer, &mut rng);
                r.send_and_record(&client, out, intended).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

async fn closed_loop(run: Arc<Run>, started: Instant) {
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for w in 0..run.scenario.load.connections {
        let (r, counter) = (run.clone(), counter.clone());
        workers.spawn(async move {
            let mut rng = Rng::new(r.scenario.seed.wrapping_add(w as u64));
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if r.should_stop(n, started.elapsed()) {
                    break;
                }
                let out = r.mix.next(&r.scenario, &r.namer, &mut rng);
                r.send_and_record(&r.client, out, Instant::now()).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
}

async fn scrape_proxy(
    client: &HttpClient,
    url: &str,
    options: &LoadOptions,
    timeout: Duration,
) -> anyhow::Result<ProxyView> {
    let text = get_text(client, url, timeout)
        .await
        .with_context(|| format!("scraping slogate's metrics at {url}"))?;
    Ok(ProxyView::parse(&text, options.service.as_deref()))
}

async fn scrape_mock(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<MockStats> {
    let text = get_text(client, url, timeout)
        .await
        .with_context(|| format!("reading the mock's stats at {url}"))?;
    serde_json::from_str(&text).with_context(|| format!("{url} is not the mock's stats JSON"))
}

/// slogate records an exchange just after its last byte is sent: scrape until it counted
/// as many operations as the client saw (or a few seconds passed).
async fn settled_proxy(
    client: &HttpClient,
    url: &str,
    options: &LoadOptions,
    before: &ProxyView,
    expected: u64,
) -> anyhow::Result<ProxyView> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = scrape_proxy(client, url, options, Duration::from_secs(10)).await?;
        if after.since(before).total() >= expected || Instant::now() >= deadline {
            return Ok(after);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live line: rate, errors, p99.
struct Progress {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(run: Arc<Run>, wanted: bool) -> Progress {
        let target = if wanted && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let load = &run.scenario.load;
        let len = match (load.requests, load.duration) {
            (Some(n), _) => n,
            (None, Some(d)) if load.mode == LoadMode::Open => {
                (d.as_secs_f64() * load.rate).ceil() as u64
            }
            _ => 0,
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        if bar.is_hidden() {
            return Progress { bar, ticker: None };
        }
        let b = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let Ok(v) = run.view.lock().map(|v| progress_line(&v, started)) else {
                    return;
                };
                b.set_position(v.0);
                b.set_message(v.1);
            }
        });
        Progress {
            bar,
            ticker: Some(ticker),
        }
    }

    fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

fn progress_line(v: &ClientView, started: Instant) -> (u64, String) {
    let secs = started.elapsed().as_secs_f64().max(0.001);
    let p99 = if v.all.is_empty() {
        0.0
    } else {
        v.all.value_at_quantile(0.99) as f64 / 1000.0
    };
    (
        v.http_requests,
        format!(
            "{:.0} req/s  errors {}  p99 {:.1}ms",
            v.http_requests as f64 / secs,
            v.errors,
            p99
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_pool_holds_every_connection_the_load_may_open() {
        let load = |yaml: &str| {
            Scenario::parse("s.yaml", &format!("{yaml}operations:\n  - name: A\n"))
                .unwrap()
                .load
        };
        let open = load("load: { mode: open, rate: 100, max_in_flight: 3000 }\n");
        assert_eq!(idle_pool(&open), 3000);
        let closed = load("load: { mode: closed, connections: 200 }\n");
        assert_eq!(idle_pool(&closed), 200);
        assert_eq!(
            idle_pool(&load("load: { mode: closed, connections: 8 }\n")),
            64
        );
    }

    #[test]
    fn an_open_loop_over_n_connections_opens_n_and_keeps_the_rate() {
        let scenario = Scenario::parse(
            "s.yaml",
            concat!(
                "load: { mode: open, rate: 400, connections: 4, requests: 200 }\n",
                "operations:\n  - name: A\n    latency: { fixed: 1ms }\n",
            ),
        )
        .unwrap();
        assert_eq!(scenario.load.open_connections, Some(4));
        assert_eq!(
            describe(&scenario),
            "open loop at 400/s over 4 connections for 200 requests"
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mock = crate::mock::MockServer::spawn(
            listener,
            Arc::new(scenario.clone()),
            ProxyRules::defaults(),
        )
        .unwrap();
        let started = Instant::now();
        let report = run_blocking(
            &scenario,
            &LoadOptions::new(format!("http://{}", mock.addr())),
        )
        .unwrap();
        let took = started.elapsed();
        let stats = mock.stats();
        assert_eq!(stats.requests, 200, "{stats:?}");
        assert_eq!(stats.connections, 4, "one connection per client: {stats:?}");
        assert_eq!(report.http_requests, 200);
        // 200 requests at 400/s: half a second, not as fast as the mock answers.
        assert!(took >= Duration::from_millis(490), "{took:?}");
    }
}

//! Upstream faults under load (issue #11) with the Rails fixture on a Puma of the test's own
//! (its pid is needed for signals): killed with SIGKILL and started again on the same port; hot
//! restart (SIGUSR2, single mode, as the fixture runs); phased restart (SIGUSR1, which needs
//! cluster mode: `-w 2`). The load and what every fault test checks are in
//! `own/faults.rs`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::own::faults::*;
use crate::support::*;

/// A GraphQL body and the operation slogate names it.
type Query = (&'static str, &'static str);

const GET_COURSE: Query = (
    r#"{"query":"query GetCourse($id: ID!) { course(id: $id) { id title } }","variables":{"id":"1"}}"#,
    "GetCourse",
);

/// 100 ms in Rails: at 20/s, about two are in Puma when it is killed or restarted.
const SLOW_COURSE: Query = (
    r#"{"query":"query SlowCourse($id: ID!) { slow(ms: 100) course(id: $id) { id title } }","variables":{"id":"1"}}"#,
    "SlowCourse",
);

/// slogate's read timeout in front of Puma: longer than a Rails boot, so requests queued in
/// the listen backlog during a hot restart wait for the new Puma.
const PUMA_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A Puma on `port` (support's `start_rails` keeps the pid private and runs single mode;
/// these tests signal Puma and need cluster mode once). Its output goes to `log`.
fn puma(port: u16, workers: u32, log: &std::path::Path) -> Proc {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("puma log");
    // Puma closes idle keep-alive connections after 1 s (20 s by default), so the
    // connections slogate pooled are gone, with their fds, soon after the load.
    let conf = log.with_file_name("puma.rb");
    std::fs::write(&conf, "persistent_timeout 1\n").expect("puma config");
    let child = Command::new("puma")
        .arg("-C")
        .arg(&conf)
        .arg("-b")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(["-t", "4:4", "-w", &workers.to_string()])
        .arg(root().join("tests/rails-app/config.ru"))
        .env("EXIT_WITH_PARENT", std::process::id().to_string())
        .stdout(Stdio::from(out.try_clone().expect("puma log")))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn puma");
    let p = Proc {
        child,
        name: "puma".into(),
    };
    wait_until_up(port);
    p
}

fn wait_until_up(port: u16) {
    wait_for("Puma to answer /up", Duration::from_secs(60), || {
        get(&format!("127.0.0.1:{port}"), "/up")
            .ok()
            .filter(|r| r.status == 200)
    });
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// slogate in front of the Puma on `port`.
fn slogate_before_puma(port: u16) -> Slogate {
    start_slogate_with(
        "unused",
        QUICK_HEADERS,
        &format!(
            "upstream:\n  name: rails\n  backends: [\"127.0.0.1:{port}\"]\n  read_timeout: {}s\n",
            PUMA_READ_TIMEOUT.as_secs()
        ),
    )
}

/// Puma and its log in a temporary directory.
struct PumaRun {
    dir: tempfile::TempDir,
    port: u16,
}

impl PumaRun {
    fn new() -> PumaRun {
        require_tool("puma", "puma ruby-railties ruby-actionpack ruby-graphql");
        PumaRun {
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
        }
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("puma.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn start(&self, workers: u32) -> Proc {
        puma(self.port, workers, &self.log())
    }
}

/// Load at 20/s through slogate in front of Puma; `fault` runs after 1 s and returns when the
/// app is back; the load goes on 1.5 s more. Returns (successes, failures).
fn puma_fault_under_load(
    s: &Slogate,
    (body, operation): Query,
    fault: impl FnOnce(),
    allowed: Failures,
) -> (usize, usize) {
    let _heavy = heavy();
    let b = before(s);
    let bound = Duration::from_secs(20);
    let load = Load::start(&s.addr(), body, 20.0, bound);
    std::thread::sleep(Duration::from_secs(1));
    fault();
    let back = load.now();
    std::thread::sleep(Duration::from_millis(1500));
    let seen = load.finish();
    check(s, &b, &seen, operation, allowed, bound, back)
}

#[test]
fn puma_killed_and_started_again() {
    let run = PumaRun::new();
    let mut app = Some(run.start(0));
    let s = slogate_before_puma(run.port);
    let (ok, failed) = puma_fault_under_load(
        &s,
        SLOW_COURSE,
        || {
            let mut old = app.take().expect("puma");
            let _ = old.child.kill(); // SIGKILL
            let _ = old.child.wait();
            std::thread::sleep(Duration::from_millis(500));
            app = Some(run.start(0));
        },
        ONLY_502,
    );
    assert!(failed > 0 && ok > 0, "{ok} ok, {failed} failed");
}

/// A Puma restart by `sig` under load fails no request; the restart is over when `done`
/// says so of Puma's log and Puma answers.
fn puma_restart_loses_nothing(query: Query, workers: u32, sig: &str, done: impl Fn(&str) -> bool) {
    let run = PumaRun::new();
    let app = run.start(workers);
    let s = slogate_before_puma(run.port);
    let (ok, failed) = puma_fault_under_load(
        &s,
        query,
        || {
            signal(app.child.id(), sig);
            wait_for("the restart", Duration::from_secs(90), || {
                done(&run.log_text()).then_some(())
            });
            wait_until_up(run.port);
        },
        GATEWAY,
    );
    assert_eq!(failed, 0, "{ok} ok");
}

#[test]
fn puma_hot_restart_usr2_loses_nothing() {
    // Single mode, as the fixture runs: Puma re-executes itself keeping the listening
    // socket, so connections wait in its backlog while Rails boots again.
    puma_restart_loses_nothing(GET_COURSE, 0, "-USR2", hot_restart_done);
}

fn hot_restart_done(log: &str) -> bool {
    log.contains("Inherited tcp://")
}

#[test]
#[ignore = "Puma 5.6.5 + keep-alive: with requests in flight, a USR2 hot restart is held up ~20 s by the pooled connections slogate keeps using; requests on new connections wait in Puma's backlog that long"]
fn puma_hot_restart_usr2_with_requests_in_flight() {
    // As puma_hot_restart_usr2_loses_nothing, with a 100 ms query. Every run on a loaded
    // two-core machine, Puma answered /up again only ~24 s after USR2 (5-7 s with the fast
    // query, 6-8 s with the same load sent straight to Puma on `Connection: close`), and
    // requests waited up to ~21 s. `ss` 8 s after USR2: the old Puma still serving two
    // keep-alive connections from slogate (last request 30-80 ms before: slogate reuses the
    // warmest pooled connection), every other connection unaccepted in the listen queue.
    // Puma 5.6.5 keeps answering requests on a keep-alive connection while draining for a
    // restart, so a proxy that keeps sending on it delays the restart (nginx with upstream
    // keepalive would presumably do the same; not tried). No request fails; it is a stall, not a
    // slogate miscount, and likely Puma's to fix (answer with `Connection: close` while
    // draining).
    puma_restart_loses_nothing(SLOW_COURSE, 0, "-USR2", hot_restart_done);
}

#[test]
fn puma_phased_restart_usr1_loses_nothing() {
    // SIGUSR1 restarts the workers one by one; it needs cluster mode (the fixture runs
    // single mode, where Puma ignores it), so this Puma runs two workers.
    puma_restart_loses_nothing(SLOW_COURSE, 2, "-USR1", |log| {
        let booted = log
            .lines()
            .filter(|l| l.contains("booted in") && l.contains("phase: 1"));
        booted.count() == 2
    });
}

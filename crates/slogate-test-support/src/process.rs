//! Ports, waiting with deadlines, and child processes that do not outlive their test.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A free TCP port on loopback, for a server a test is about to start.
///
/// Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), and never the
/// same twice in one test process: a port the kernel chose for `bind(0)` and that was closed
/// again could be chosen again, for another test's server or as the local port of any
/// outgoing connection, before this test's server binds it (the test would then talk to
/// another process: the 404s seen now and then from a slogate admin port).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    // The range below the ephemeral one (16384-32767 by default), each process starting
    // at its own place in it.
    let (start, span) = (low / 2, low / 2);
    if span < 1024 {
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
    }
    let _ = NEXT.compare_exchange(
        0,
        // u64: a pid times 7919 overflows u32 past pid 542,000 (pid_max reaches 4 million).
        u32::try_from(u64::from(std::process::id()) * 7919 % u64::from(span)).expect("below span")
            + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(start + n % span).expect("a port");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {start}..{}", start + span);
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Polls `check` every 50 ms until it returns `Some`; fails the test after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or(what, timeout, check, String::new)
}

/// Like [`wait_for`]; on timeout the failure also shows what `describe` says about the last
/// state (a log, the last scrape).
pub fn wait_for_or<T>(
    what: &str,
    timeout: Duration,
    check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
) -> T {
    poll(
        what,
        timeout,
        Duration::from_millis(50),
        check,
        describe,
        || None,
    )
}

/// Polls `check` every `every` until it returns `Some`. Fails the test after `timeout`, or as
/// soon as `gone` says why waiting is pointless (the process that should answer has exited).
fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
    describe: impl Fn() -> String,
    mut gone: impl FnMut() -> Option<String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if let Some(why) = gone() {
            panic!("{why} while waiting for {what}\n{}", describe());
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            describe()
        );
        std::thread::sleep(every);
    }
}

/// A child process, killed when dropped (also when a test panics). When the child leads its
/// own process group (spawned with `CommandExt::process_group(0)`), the whole group is killed,
/// so what it started goes too. nginx gets SIGTERM first: its master takes its workers down,
/// where SIGKILL would orphan them.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// Spawns `cmd` as `name`; fails the test if it cannot start.
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            child,
            name: name.into(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (e.g. "TERM", "TSTP") to the process; fails the test if `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) {
        if !self.is_running() {
            return;
        }
        self.signal("TERM");
        let what = format!("{} to exit after SIGTERM", self.name);
        wait_for(&what, timeout, || (!self.is_running()).then_some(()));
    }

    /// Like [`wait_for_or`], polling every `every`, and failing at once (with `describe`,
    /// e.g. the process's log) if this process exits meanwhile.
    pub fn wait_alive<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        every: Duration,
        check: impl FnMut() -> Option<T>,
        describe: impl Fn() -> String,
    ) -> T {
        let name = self.name.clone();
        let child = &mut self.child;
        poll(what, timeout, every, check, describe, || {
            let status = child.try_wait().ok().flatten()?;
            Some(format!("{name} exited ({status})"))
        })
    }

    /// Whether the child is the leader of its own process group.
    fn leads_group(&self) -> bool {
        let pid = self.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so count from the last ')'.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(pid)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.name == "nginx" {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if matches!(self.child.try_wait(), Ok(None)) && self.leads_group() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid())])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/<pid>/status` field in KiB (`"VmRSS:"`, `"VmHWM:"`), if the process and the field
/// exist.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
}

/// Resident memory of a process in bytes (0 when unknown).
pub fn rss_bytes(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:").map_or(0, |kb| kb * 1024)
}

//! slogate as the edge with no app of its own behind it: a dead backend, and an upstream written
//! here (the rest, in front of Rails, is in `needs/rails/edge.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

#[test]
fn gateway_errors_carry_a_page() {
    let dead = format!("127.0.0.1:{}", free_port());
    let s = start_slogate(
        &dead,
        "upstream:\n  name: rails\n  backends: [\"DEAD\"]\n  health_check:\n    enabled: false\n"
            .replace("DEAD", &dead)
            .as_str(),
    );
    let r = get(&s.addr(), "/api/v1/courses/1").unwrap();
    assert_eq!(r.status, 502);
    assert!(r.text().contains("502 Bad Gateway"), "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html"));
}

#[test]
fn ready_waits_until_the_proxy_port_is_slogates() {
    // Another process holds the port: slogate retries its bind for a few seconds, and its
    // admin says not ready meanwhile (liveness is another matter: /health answers).
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let dead = format!("127.0.0.1:{}", free_port());
    let s = spawn_slogate_on(
        port,
        &dead,
        "",
        &format!("upstream:\n  name: rails\n  backends: [\"{dead}\"]\n  health_check:\n    enabled: false\n"),
    );
    let admin = format!("127.0.0.1:{}", s.admin_port);
    wait_for("the admin to answer", Duration::from_secs(20), || {
        (get(&admin, "/health").ok()?.status == 200).then_some(())
    });
    let ready = get(&admin, "/ready").unwrap();
    assert_eq!(
        (ready.status, ready.text().as_str()),
        (503, "not listening yet\n")
    );
    drop(holder);
    wait_for(
        "slogate to bind the freed port",
        Duration::from_secs(10),
        || (get(&admin, "/ready").ok()?.status == 200).then_some(()),
    );
    let r = get(&s.addr(), "/anything").unwrap();
    assert_eq!(r.status, 502, "slogate answers on the port now");
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn large_answers_taken_at_full_speed_are_complete() {
    // Past the memory buffer the answer is spooled; a client that takes it all at once is a
    // success with its upstream time, however the connection learns the body ended.
    // An upstream that announces its length (Rails sends these chunked).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let body = vec![b'x'; 256 * 1024];
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = c.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", body.len());
                        if c.write_all(head.as_bytes())
                            .and_then(|_| c.write_all(&body))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    let s = start_slogate(&up, "");
    // One keep-alive connection, each answer read to its length, as load generators do.
    let mut c = TcpStream::connect(s.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..20 {
        write!(
            c,
            "GET /big?kb=256 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            c.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .expect("a length")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(len, 256 * 1024);
        let mut body = vec![0u8; len];
        c.read_exact(&mut body).unwrap();
    }
    let m = s.wait_requests(20.0);
    assert_eq!(
        m.sum("slogate_requests_total", &[("outcome", "success")]),
        20.0
    );
    let lines = wait_for("20 log lines", Duration::from_secs(5), || {
        let l = s.access_log();
        (l.len() >= 20).then_some(l)
    });
    assert!(
        lines.iter().all(|l| l["upstream_duration"].is_number()),
        "{:?}",
        lines.iter().find(|l| !l["upstream_duration"].is_number())
    );
}

/// Voluntary context switches of every thread of process `pid` so far.
fn wake_ups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

#[test]
fn an_idle_slogate_sleeps() {
    // After a request (a line for the access log) and a scrape of /metrics, nothing is left
    // to do: no thread of slogate's wakes on a timer of its own. Before, the access log's
    // writer looked for lines every 10 ms and pingora's clock thread (started by the admin
    // listener's first connection) ticked every 10 ms: ~200 wake-ups a second, idle.
    let dead = format!("127.0.0.1:{}", free_port());
    let s = start_slogate(
        &dead,
        &format!("upstream:\n  name: rails\n  backends: [\"{dead}\"]\n  health_check:\n    enabled: false\n"),
    );
    assert_eq!(get(&s.addr(), "/api/v1/courses/1").unwrap().status, 502);
    s.metrics();
    wait_for("the access log line", Duration::from_secs(5), || {
        (s.access_log().len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = wake_ups(s.pid());
    std::thread::sleep(Duration::from_secs(2));
    let woke = wake_ups(s.pid()) - before;
    assert!(woke <= 30, "{woke} wake-ups in 2 s of idleness");
}

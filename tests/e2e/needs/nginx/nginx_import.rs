//! `slogate import nginx`, parity: the real nginx with the original config, slogate with the
//! imported one (the corpus and the goldens are in `own/nginx_import.rs`).
//!
//! `imported_configs_pass_check_and_behave_like_nginx`: each imported config passes `slogate
//! check` as it is, and the same requests through the real nginx (original config) and
//! slogate (imported config), in front of one Rails fixture, give the same answers: status,
//! what Rails sees, static files, error pages, the body limit, the maintenance switch,
//! WebSockets and TLS where the config has them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::own::nginx_import::*;
use crate::support;
use crate::support::{
    free_port, is_root, require_tool, root, self_signed, wait_for, wait_for_or, Proc,
};

/// One Puma for every case: two TCP ports and a Unix socket.
struct Puma {
    tcp: String,
    tcp2: String,
    sock: PathBuf,
    _dir: tempfile::TempDir,
    _proc: Proc,
}

fn start_puma() -> Puma {
    require_tool("puma", "puma ruby-railties ruby-actionpack ruby-graphql");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (free_port(), free_port());
    let sock = dir.path().join("puma.sock");
    let child = Command::new("puma")
        .args(["-t", "8:8", "-w", "0", "--quiet"])
        .args(["-b", &format!("tcp://127.0.0.1:{a}")])
        .args(["-b", &format!("tcp://127.0.0.1:{b}")])
        .arg("-b")
        .arg(format!("unix://{}", sock.display()))
        .arg(root().join("tests/rails-app/config.ru"))
        .env("EXIT_WITH_PARENT", std::process::id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("puma.err")).unwrap(),
        ))
        .spawn()
        .expect("puma");
    let p = Puma {
        tcp: format!("127.0.0.1:{a}"),
        tcp2: format!("127.0.0.1:{b}"),
        sock,
        _dir: dir,
        _proc: Proc {
            child,
            name: "puma".into(),
        },
    };
    for addr in [&p.tcp, &p.tcp2] {
        wait_for("Rails to boot", Duration::from_secs(60), || {
            support::get(addr, "/up").ok().filter(|r| r.status == 200)
        });
    }
    wait_for("Puma's socket", Duration::from_secs(10), || {
        std::os::unix::net::UnixStream::connect(&p.sock).ok()
    });
    p
}

/// The app directory both proxies serve: a copy of the fixture's public/, tmp/, log/.
fn app_dir(dir: &Path, case: &Case) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("tmp")).unwrap();
    std::fs::create_dir_all(app.join("log")).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(root().join("tests/rails-app/public"))
        .arg(app.join("public"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    if let Some((trigger, _)) = case.maintenance {
        let _ = std::fs::remove_file(app.join(trigger));
    }
    app
}

struct Running {
    _procs: Vec<Proc>,
    /// slogate's: the import's notes.
    notes: String,
    plain: String,
    tls: Option<String>,
}

fn values_for(
    app: &Path,
    puma: (&str, &str, &str),
    ports: (u16, u16),
    tls: &(String, String),
    prefix: &Path,
) -> Vec<(&'static str, String)> {
    vec![
        ("APP", app.display().to_string()),
        ("SOCK", puma.2.to_string()),
        ("PUMA", puma.0.to_string()),
        ("PUMA2", puma.1.to_string()),
        ("PORT", format!("127.0.0.1:{}", ports.0)),
        ("TLS_PORT", format!("127.0.0.1:{}", ports.1)),
        ("CERT", tls.0.clone()),
        ("KEY", tls.1.clone()),
        ("PREFIX", prefix.display().to_string()),
        (
            "FILES",
            root().join("tests/rails-app/files").display().to_string(),
        ),
    ]
}

fn start_nginx(case: &Case, dir: &Path, values: &[(&str, String)], ports: (u16, u16)) -> Running {
    require_tool("nginx", "nginx");
    render(case.name, dir, values);
    let conf = dir.join("nginx.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let has_http = text.lines().any(|l| l.trim_start().starts_with("http {"));
    let main = if has_http {
        // The test's own pid file (-g below) replaces the system's, and temp files stay
        // in the test's directory (Debian's are under /var/lib/nginx, root's).
        let p = dir.display();
        let temp = format!(
            "http {{\n  client_body_temp_path {p}/client_body_temp;\n  proxy_temp_path {p}/proxy_temp;\n  fastcgi_temp_path {p}/fastcgi_temp;\n  uwsgi_temp_path {p}/uwsgi_temp;\n  scgi_temp_path {p}/scgi_temp;\n"
        );
        let own: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("pid "))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replacen("http {\n", &temp, 1);
        std::fs::write(&conf, own).unwrap();
        conf.clone()
    } else {
        // A sites-available file: nginx.conf's http block includes it.
        let main = dir.join("main.conf");
        let p = dir.display();
        std::fs::write(
            &main,
            format!(
                "worker_processes 1;\nerror_log {p}/error.log info;\nevents {{ worker_connections 256; }}\nhttp {{\n  include /etc/nginx/mime.types;\n  client_body_temp_path {p}/client_body_temp;\n  proxy_temp_path {p}/proxy_temp;\n  fastcgi_temp_path {p}/fastcgi_temp;\n  uwsgi_temp_path {p}/uwsgi_temp;\n  scgi_temp_path {p}/scgi_temp;\n  access_log {p}/access.log;\n  include {};\n}}\n",
                conf.display()
            ),
        )
        .unwrap();
        main
    };
    let user = if is_root() { "user root; " } else { "" };
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&main)
        .args(["-e", "stderr", "-g"])
        .arg(format!(
            "daemon off; {user}pid {};",
            dir.join("nginx.pid").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr.log")).unwrap(),
        ))
        .spawn()
        .expect("nginx");
    let procs = vec![Proc {
        child,
        name: "nginx".into(),
    }];
    let running = Running {
        _procs: procs,
        notes: String::new(),
        plain: format!("127.0.0.1:{}", ports.0),
        tls: case.tls.then(|| format!("127.0.0.1:{}", ports.1)),
    };
    wait_listening(&running, dir.join("stderr.log"));
    running
}

fn wait_listening(r: &Running, log: PathBuf) {
    let addr = r.tls.clone().unwrap_or_else(|| r.plain.clone());
    wait_for_or(
        &format!("{addr} to listen"),
        Duration::from_secs(20),
        || std::net::TcpStream::connect(&addr).ok(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
}

/// Imports the case, checks the result with `slogate check`, and runs it.
fn start_slogate(case: &Case, dir: &Path, values: &[(&str, String)], ports: (u16, u16)) -> Running {
    render(case.name, dir, values);
    let imported = import(dir, case);
    assert!(
        imported.code == 0 || imported.code == 1,
        "{}: import failed: {}",
        case.name,
        imported.notes
    );
    let config = dir.join("slogate.yaml");
    std::fs::write(&config, &imported.yaml).unwrap();
    let check = Command::new(support::slogate_bin())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}: the imported config does not pass `slogate check`:\n{}\n{}",
        case.name,
        String::from_utf8_lossy(&check.stderr),
        imported.yaml
    );
    // Only what a test run needs besides the import: private sockets, pid file and log.
    let d = dir.display();
    let yaml = imported.yaml.replacen(
        "\nserver:\n",
        &format!("\nserver:\n  threads: 2\n  upgrade_socket: {d}/upgrade.sock\n  pid_file: {d}/slogate.pid\n"),
        1,
    ) + &format!("\naccess_log:\n  target: {d}/access.log\n");
    std::fs::write(&config, yaml).unwrap();
    let admin = free_port();
    let child = Command::new(support::slogate_bin())
        .args(["run", "--config"])
        .arg(&config)
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .env("SLOGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr.log")).unwrap(),
        ))
        .spawn()
        .expect("slogate");
    let running = Running {
        _procs: vec![Proc {
            child,
            name: "slogate".into(),
        }],
        notes: imported.notes.clone(),
        plain: format!("127.0.0.1:{}", ports.0),
        tls: case.tls.then(|| format!("127.0.0.1:{}", ports.1)),
    };
    wait_listening(&running, dir.join("stderr.log"));
    running
}

#[derive(Debug)]
struct Answer {
    status: u16,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn decoded(&self) -> Vec<u8> {
        use std::io::Read;
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("gzip body");
            return out;
        }
        self.body.clone()
    }
}

/// One request with curl (plain or TLS, HTTP/1.1 or 2), as a client would send it.
fn fetch(
    base: &str,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Path>,
) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "--max-time",
        "30",
        "-X",
        method,
        "-H",
        &format!("Host: {host}"),
    ])
    .args(["-H", "Expect:", "-D"])
    .arg(&h)
    .arg("-o")
    .arg(&b);
    if base.starts_with("https://") {
        cmd.arg("--http2");
    } else {
        cmd.arg("--http1.1");
    }
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(file) = body {
        cmd.args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()));
    }
    let out = cmd.arg(format!("{base}{path}")).output().expect("curl");
    let head = std::fs::read_to_string(&h).unwrap_or_default();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{method} {base}{path}: no answer (curl {:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Answer {
        status,
        version,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

struct Pair<'a> {
    case: &'a Case,
    nginx: Running,
    slogate: Running,
}

impl Pair<'_> {
    fn bases(&self) -> [(String, &'static str); 2] {
        let base = |r: &Running| match &r.tls {
            Some(t) => format!("https://{t}"),
            None => format!("http://{}", r.plain),
        };
        [
            (base(&self.nginx), "nginx"),
            (base(&self.slogate), "slogate"),
        ]
    }

    fn both(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Path>,
    ) -> (Answer, Answer) {
        let [(n, _), (s, _)] = self.bases();
        (
            fetch(&n, self.case.host, method, path, headers, body),
            fetch(&s, self.case.host, method, path, headers, body),
        )
    }
}

fn compare_requests(pair: &Pair<'_>, scratch: &Path) {
    let case = pair.case;
    let name = case.name;
    // What Rails sees.
    // (With an incoming X-Request-Id: slogate does not yet forward the id it generates when
    // the client sent none, which nginx's `$request_id` does.)
    let (n, s) = pair.both(
        "GET",
        "/echo?x=1",
        &[("User-Agent", "parity"), ("X-Request-Id", "parity-1")],
        None,
    );
    assert_eq!((n.status, s.status), (200, 200), "{name}: GET /echo");
    let (nj, sj) = (n.json(), s.json());
    let (nh, sh) = (
        nj["headers"].as_object().unwrap(),
        sj["headers"].as_object().unwrap(),
    );
    for (key, value) in nh {
        // Per connection or per proxy: HTTP/1.0 + close from nginx without keepalive,
        // each proxy's own port, a fresh id.
        if matches!(
            key.as_str(),
            "HTTP_CONNECTION" | "HTTP_VERSION" | "HTTP_X_FORWARDED_PORT" | "HTTP_X_REQUEST_START"
        ) || case.differing_headers.contains(&key.as_str())
        {
            continue;
        }
        assert_eq!(
            Some(value),
            sh.get(key),
            "{name}: Rails sees {key} differently\nnginx {nh:?}\nslogate {sh:?}"
        );
    }
    for key in ["remote_ip", "ssl", "host", "protocol"] {
        assert_eq!(nj[key], sj[key], "{name}: Rails' request.{key}");
    }

    // A static file.
    let (n, s) = pair.both("GET", "/robots.txt", &[], None);
    assert_eq!((n.status, s.status), (200, 200), "{name}: static file");
    assert_eq!(n.body, s.body, "{name}: static file body");

    // A fingerprinted asset, precompressed where the config says so.
    let (n, s) = pair.both(
        "GET",
        "/assets/app-abc123.js",
        &[("Accept-Encoding", "gzip")],
        None,
    );
    assert_eq!((n.status, s.status), (200, 200), "{name}: asset");
    assert_eq!(
        n.header("content-encoding"),
        s.header("content-encoding"),
        "{name}: gzip_static"
    );
    assert_eq!(n.decoded(), s.decoded(), "{name}: asset body");
    if case.same_asset_cache {
        assert_eq!(
            n.header("cache-control"),
            s.header("cache-control"),
            "{name}: asset Cache-Control"
        );
    }

    // The body limit: just over is 413 from both (before Rails), just under reaches Rails.
    let probe = case.limit.min(3 << 20);
    let under = scratch.join("under.bin");
    std::fs::write(&under, vec![b'x'; (probe - 4096) as usize]).unwrap();
    let (n, s) = pair.both("POST", "/echo", &[], Some(&under));
    assert_eq!(
        (n.status, s.status),
        (200, 200),
        "{name}: body under the limit"
    );
    if case.limit <= 3 << 20 {
        let over = scratch.join("over.bin");
        std::fs::write(&over, vec![b'x'; (case.limit + 4096) as usize]).unwrap();
        let (n, s) = pair.both("POST", "/echo", &[], Some(&over));
        assert_eq!(
            (n.status, s.status),
            (413, 413),
            "{name}: body over the limit"
        );
    }

    // TLS: HTTP/2, HSTS, and the plain port's redirect.
    if case.tls {
        let (n, s) = pair.both("GET", "/echo", &[], None);
        assert_eq!(
            (n.version.as_str(), s.version.as_str()),
            ("HTTP/2", "HTTP/2"),
            "{name}"
        );
        assert_eq!(
            n.header("strict-transport-security"),
            s.header("strict-transport-security"),
            "{name}: HSTS"
        );
        let n = fetch(
            &format!("http://{}", pair.nginx.plain),
            case.host,
            "GET",
            "/some/path?y=1",
            &[],
            None,
        );
        let s = fetch(
            &format!("http://{}", pair.slogate.plain),
            case.host,
            "GET",
            "/some/path?y=1",
            &[],
            None,
        );
        assert_eq!(
            (n.status, s.status),
            (301, 301),
            "{name}: redirect to https"
        );
        for a in [&n, &s] {
            let loc = a.header("location").unwrap_or_default();
            assert!(
                loc.starts_with(&format!("https://{}", case.host))
                    && loc.ends_with("/some/path?y=1"),
                "{name}: {loc}"
            );
        }
    }

    // WebSockets (ActionCable).
    if case.cable {
        for (r, who) in [(&pair.nginx, "nginx"), (&pair.slogate, "slogate")] {
            let out = Command::new("ruby")
                .arg(root().join("tests/rails-app/script/cable_echo.rb"))
                .arg(format!("ws://{}/cable", r.plain))
                .output()
                .expect("ruby");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && text.contains("hello cable"),
                "{name}: ActionCable through {who}:\n{text}"
            );
        }
    }
}

fn compare_maintenance(pair: &Pair<'_>, app: &Path) {
    let case = pair.case;
    let Some((trigger, how)) = case.maintenance else {
        return;
    };
    let path = app.join(trigger);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(
        root().join("tests/rails-app/public/maintenance.html"),
        &path,
    )
    .unwrap();
    let (n, s) = wait_for("maintenance on", Duration::from_secs(5), || {
        let (n, s) = pair.both("GET", "/api/v1/courses/1", &[], None);
        (s.status == 503).then_some((n, s))
    });
    let page = std::fs::read(root().join("tests/rails-app/public/maintenance.html")).unwrap();
    match how {
        Maintenance::Same => {
            assert_eq!((n.status, s.status), (503, 503), "{}", case.name);
            assert_eq!(n.body, page);
            assert_eq!(s.body, page);
        }
        Maintenance::SameStatus => assert_eq!((n.status, s.status), (503, 503), "{}", case.name),
        Maintenance::Different => {
            assert_eq!((n.status, s.status), (200, 503), "{}", case.name);
            assert_eq!(n.body, page);
        }
    }
    std::fs::remove_file(&path).unwrap();
}

fn compare_errors(pair: &Pair<'_>, app: &Path) {
    let case = pair.case;
    let (n, s) = pair.both("GET", "/echo", &[], None);
    assert_eq!(
        (n.status, s.status),
        (502, 502),
        "{}: Rails is down",
        case.name
    );
    // The same page, unless the import said slogate picks another one.
    let differs = pair
        .slogate
        .notes
        .lines()
        .any(|l| l.contains(": different: error_page"));
    let has_error_pages = corpus_text(case.name).contains("error_page 50");
    if !has_error_pages {
        // Both answer with their own built-in page.
        assert!(!case.same_error_body);
        return;
    }
    assert_eq!(
        differs, !case.same_error_body,
        "{}: {}",
        case.name, pair.slogate.notes
    );
    if !differs {
        assert_eq!(n.body, s.body, "{}: error page", case.name);
        assert_eq!(n.body, std::fs::read(app.join("public/502.html")).unwrap());
    }
}

#[test]
fn imported_configs_pass_check_and_behave_like_nginx() {
    require_tool("curl", "curl");
    require_tool("nginx", "nginx");
    let puma = start_puma();
    let certs = tempfile::tempdir().unwrap();
    let tls = self_signed(certs.path());
    let sock = puma.sock.display().to_string();
    let dead_sock = certs.path().join("nobody.sock").display().to_string();
    let dead = format!("127.0.0.1:{}", free_port());
    for case in CASES {
        let work = tempfile::tempdir().unwrap();
        let app = app_dir(work.path(), case);
        let run = |live: bool, tag: &str| {
            let upstreams = if live {
                (puma.tcp.as_str(), puma.tcp2.as_str(), sock.as_str())
            } else {
                (dead.as_str(), dead.as_str(), dead_sock.as_str())
            };
            let (nd, sd) = (
                work.path().join(format!("nginx-{tag}")),
                work.path().join(format!("slogate-{tag}")),
            );
            let (np, sp) = ((free_port(), free_port()), (free_port(), free_port()));
            let nginx = start_nginx(case, &nd, &values_for(&app, upstreams, np, &tls, &nd), np);
            let slogate = start_slogate(case, &sd, &values_for(&app, upstreams, sp, &tls, &sd), sp);
            Pair {
                case,
                nginx,
                slogate,
            }
        };
        {
            let pair = run(true, "live");
            compare_requests(&pair, work.path());
            compare_maintenance(&pair, &app);
        }
        {
            let pair = run(false, "dead");
            compare_errors(&pair, &app);
        }
    }
}

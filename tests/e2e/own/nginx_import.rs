//! `slogate import nginx`: a corpus of nginx configurations shaped like the ones Rails teams
//! publish (tests/nginx-import/*/nginx.conf, with {{PLACEHOLDERS}} for paths and ports).
//!
//! * `goldens`: each imports to the committed YAML and list of untranslated directives
//!   (`BLESS=1 cargo test --test e2e own::nginx_import::goldens` rewrites them).
//! * The parity test, which runs the real nginx: `needs/nginx/nginx_import.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::root;

/// What a corpus entry has, so the parity test knows what to compare.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// `--server NAME`.
    pub(crate) server: Option<&'static str>,
    /// The Host clients send (selects the server block in nginx).
    pub(crate) host: &'static str,
    /// client_max_body_size in bytes.
    pub(crate) limit: u64,
    /// The app's requests go over TLS (and the plain port redirects).
    pub(crate) tls: bool,
    /// An ActionCable location.
    pub(crate) cable: bool,
    /// Error pages: nginx and slogate serve the same body (else only the status is compared).
    pub(crate) same_error_body: bool,
    /// A file (relative to {{APP}}) whose presence switches maintenance on, and whether
    /// nginx and slogate then answer the same status and body.
    pub(crate) maintenance: Option<(&'static str, Maintenance)>,
    /// Cache-Control of /assets/ files is the same through both.
    pub(crate) same_asset_cache: bool,
    /// Headers nginx sets differently, by design of the import's notes (Rails env keys).
    pub(crate) differing_headers: &'static [&'static str],
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Maintenance {
    /// Same status and body.
    Same,
    /// Same status (503), different body (slogate reads the page when it starts).
    SameStatus,
    /// nginx answers 200 with the page, slogate 503 (the import says "different").
    Different,
}

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "puma-docs",
        server: None,
        host: "myapp.com",
        limit: 1 << 20,
        tls: false,
        cable: false,
        same_error_body: false,
        maintenance: Some(("public/maintenance.html", Maintenance::Different)),
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "digitalocean",
        server: None,
        host: "localhost",
        limit: 4 << 30,
        tls: false,
        cable: false,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "capistrano",
        server: None,
        host: "shop.example.com",
        limit: 10 << 20,
        tls: false,
        cable: false,
        same_error_body: false,
        maintenance: Some(("public/system/maintenance.html", Maintenance::SameStatus)),
        same_asset_cache: false,
        differing_headers: &[],
    },
    Case {
        name: "docker",
        server: None,
        host: "app.example.com",
        limit: 20 << 20,
        tls: false,
        cable: false,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "tls-redirect",
        server: None,
        host: "example.com",
        limit: 25 << 20,
        tls: true,
        cable: false,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &["HTTP_X_FORWARDED_SSL"],
    },
    Case {
        name: "edge-full",
        server: None,
        host: "app.example.com",
        limit: 1 << 20,
        tls: false,
        cable: true,
        same_error_body: true,
        maintenance: Some(("tmp/maintenance.txt", Maintenance::Same)),
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "includes",
        server: Some("shop.example.com"),
        host: "shop.example.com",
        limit: 2 << 20,
        tls: false,
        cable: true,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "unsupported",
        server: None,
        host: "app.example.com",
        limit: 1 << 20,
        tls: false,
        cable: false,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &[],
    },
    Case {
        name: "cable-tcp",
        server: None,
        host: "cable.example.com",
        limit: 50 << 20,
        tls: false,
        cable: true,
        same_error_body: false,
        maintenance: None,
        same_asset_cache: true,
        differing_headers: &["HTTP_X_REQUEST_ID"],
    },
];

fn corpus() -> PathBuf {
    root().join("tests/nginx-import")
}

/// Every file of a case, concatenated.
pub(crate) fn corpus_text(case: &str) -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if !path.to_string_lossy().contains("expected.") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&corpus().join(case), &mut out);
    out
}

/// Copies a case's files into `dest`, substituting the placeholders.
pub(crate) fn render(case: &str, dest: &Path, values: &[(&str, String)]) {
    fn walk(src: &Path, dest: &Path, values: &[(&str, String)]) {
        std::fs::create_dir_all(dest).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            let name_s = name.to_string_lossy();
            if name_s.starts_with("expected.") {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &dest.join(&name), values);
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let text = values
                .iter()
                .fold(text, |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), v));
            std::fs::write(dest.join(&name), text).unwrap();
        }
    }
    walk(&corpus().join(case), dest, values);
}

/// Production-looking values: what the goldens show.
fn golden_values() -> Vec<(&'static str, String)> {
    [
        ("APP", "/var/www/shop/current"),
        ("SOCK", "/var/www/shop/shared/tmp/sockets/puma.sock"),
        ("PUMA", "127.0.0.1:3000"),
        ("PUMA2", "127.0.0.1:3001"),
        ("PORT", "80"),
        ("TLS_PORT", "443"),
        ("CERT", "/etc/letsencrypt/live/example.com/fullchain.pem"),
        ("KEY", "/etc/letsencrypt/live/example.com/privkey.pem"),
        ("PREFIX", "/var/cache/nginx"),
        ("FILES", "/var/www/shop/shared/storage"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

pub(crate) struct Imported {
    pub(crate) code: i32,
    pub(crate) yaml: String,
    pub(crate) notes: String,
}

/// Runs `slogate import nginx nginx.conf` in `dir` (so sources read `nginx.conf:12`).
pub(crate) fn import(dir: &Path, case: &Case) -> Imported {
    let mut cmd = Command::new(support::slogate_bin());
    cmd.current_dir(dir).args(["import", "nginx", "nginx.conf"]);
    if let Some(s) = case.server {
        cmd.args(["--server", s]);
    }
    let out = cmd.output().expect("slogate import");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Imported {
        code: out.status.code().unwrap_or(-1),
        yaml: String::from_utf8_lossy(&out.stdout).into_owned(),
        notes: stderr
            .lines()
            .filter(|l| !l.starts_with("slogate: imported"))
            .map(|l| format!("{l}\n"))
            .collect(),
    }
}

#[test]
fn goldens() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        render(case.name, dir.path(), &golden_values());
        let got = import(dir.path(), case);
        assert!(
            got.code == 0 || got.code == 1,
            "{}: exit {}\n{}",
            case.name,
            got.code,
            got.notes
        );
        let notes = format!("exit: {}\n{}", got.code, got.notes);
        let (yaml_path, notes_path) = (
            corpus().join(case.name).join("expected.yaml"),
            corpus().join(case.name).join("expected.notes.txt"),
        );
        if bless {
            std::fs::write(&yaml_path, &got.yaml).unwrap();
            std::fs::write(&notes_path, &notes).unwrap();
            continue;
        }
        let want_yaml = std::fs::read_to_string(&yaml_path).unwrap_or_default();
        let want_notes = std::fs::read_to_string(&notes_path).unwrap_or_default();
        if want_yaml != got.yaml {
            failures.push(format!(
                "{}: YAML differs from {}:\n{}",
                case.name,
                yaml_path.display(),
                got.yaml
            ));
        }
        if want_notes != notes {
            failures.push(format!(
                "{}: notes differ from {}:\n{}",
                case.name,
                notes_path.display(),
                notes
            ));
        }
        // Every note and every setting names its source.
        for line in got.notes.lines() {
            assert!(
                line.starts_with("nginx.conf:")
                    || line.starts_with("conf.d/")
                    || line.starts_with("sites-enabled/")
                    || line.starts_with("mime.types:"),
                "{}: a note without file:line: {line}",
                case.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(BLESS=1 rewrites the goldens)",
        failures.join("\n")
    );
}

#[test]
fn the_exit_code_says_whether_everything_translated() {
    let dir = tempfile::tempdir().unwrap();
    render("digitalocean", dir.path(), &golden_values());
    let clean = import(dir.path(), &CASES[1]);
    assert_eq!(clean.code, 0, "{}", clean.notes);
    assert!(
        clean.notes.lines().all(|l| l.contains(": informational: ")),
        "{}",
        clean.notes
    );
    let dir = tempfile::tempdir().unwrap();
    render("unsupported", dir.path(), &golden_values());
    let messy = import(dir.path(), &CASES[7]);
    assert_eq!(messy.code, 1);
    for what in [
        "limit_req",
        "auth_basic",
        "proxy_cache",
        "map $http_user_agent",
        "deny all",
    ] {
        assert!(
            messy
                .notes
                .lines()
                .any(|l| l.contains(what) && l.contains(": untranslated: ")),
            "{what} not listed:\n{}",
            messy.notes
        );
        assert!(
            messy.yaml.contains(what),
            "{what} not in the YAML's comments"
        );
    }
}

#[test]
fn bad_syntax_and_bad_choices_exit_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        "server {\n  listen 80;\n  location / {\n    proxy_pass http://app\n  }\n}\n",
    )
    .unwrap();
    let out = Command::new(support::slogate_bin())
        .current_dir(dir.path())
        .args(["import", "nginx", "nginx.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nginx.conf:5: "), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no YAML for a file that does not parse"
    );
    let out = Command::new(support::slogate_bin())
        .current_dir(dir.path())
        .args(["import", "nginx", "missing.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.conf: cannot read"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    render("includes", dir.path(), &golden_values());
    let out = Command::new(support::slogate_bin())
        .current_dir(dir.path())
        .args(["import", "nginx", "nginx.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "two apps and no --server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--server") && err.contains("blog.example.com"),
        "{err}"
    );
    let out = Command::new(support::slogate_bin())
        .current_dir(dir.path())
        .args(["import", "nginx", "nginx.conf", "--server", "nope.example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn output_goes_to_a_file_with_output() {
    let dir = tempfile::tempdir().unwrap();
    render("digitalocean", dir.path(), &golden_values());
    let out = Command::new(support::slogate_bin())
        .current_dir(dir.path())
        .args(["import", "nginx", "nginx.conf", "--output", "slogate.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let yaml = std::fs::read_to_string(dir.path().join("slogate.yaml")).unwrap();
    assert!(yaml.contains("max_body_size: \"4GiB\""), "{yaml}");
}

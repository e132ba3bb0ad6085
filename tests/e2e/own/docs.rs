//! The documentation's examples stay true: every slogate file shown in README.md and
//! docs/*.md is validated by the real binary, and every relative link points at a file (and
//! heading) that exists. Needs nothing but the binary: no Ruby, Puma or nginx.
//!
//! A fenced ```` ```yaml ```` block is recognised by its top-level keys and checked with the
//! command for its kind; the test fails naming the file and the line of the opening fence:
//!
//! | kind | top-level keys | checked with |
//! |---|---|---|
//! | SLO spec | `slos`, or `apiVersion` (OpenSLO) | `slogate slo check --spec FILE` |
//! | proxy configuration | only `server`, `admin`, `upstream`, `graphql`, `classification`, `http`, `metrics`, `access_log`, `static`, `compression`, `pages` | `slogate check --config FILE` |
//! | `slogate jobs` configuration | only `service`, `logs`, `from_start`, `admin`, `max_line_bytes`, `file_poll_interval`, `redis`, `outcomes`, `buckets`, `cardinality` | `slogate check --jobs FILE` |
//! | load-test scenario | only `description`, `seed`, `load`, `proxy`, `graphql_path`, `default_latency`, `operations`, `batches`, `rest` | `slogate mock-upstream --scenario FILE` must start (it validates the scenario first) |
//!
//! A ```` ```yaml ```` block that is none of these (an Alertmanager or Datadog file, a
//! promtool test, a deliberately partial example) fails the test unless the line right
//! before its opening fence is a marker, an HTML comment that the rendered page hides:
//!
//! * `<!-- docs-test: skip (why) -->`: not checked;
//! * `<!-- docs-test: proxy-config -->`, `<!-- docs-test: slo -->`, `<!-- docs-test: jobs -->`
//!   or `<!-- docs-test: scenario -->`: checked as that kind whatever its keys.
//!
//! Files and directories an example names (`static.root: /var/www/shop/current/public`) are
//! the reader's: a proxy configuration whose only mistakes are paths that do not exist here
//! (`cannot read ...`, `... is not a directory`) passes.
//!
//! The error messages the pages quote are produced by the binary from inputs listed in
//! `QUOTED`, and must still be quoted word for word.
//!
//! The example files in proxy-config/ are checked elsewhere (tests/e2e/own/cli.rs,
//! tests/e2e/own/harness.rs, crates/slogate-config/tests/errors.rs).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, as paths relative to the repository root.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root()).unwrap().to_path_buf())
        .collect();
    docs.sort();
    docs.insert(0, PathBuf::from("README.md"));
    docs
}

const PROXY_KEYS: &[&str] = &[
    "server",
    "admin",
    "upstream",
    "graphql",
    "classification",
    "http",
    "metrics",
    "access_log",
    "static",
    "compression",
    "pages",
];
const JOBS_KEYS: &[&str] = &[
    "service",
    "logs",
    "from_start",
    "admin",
    "max_line_bytes",
    "file_poll_interval",
    "redis",
    "outcomes",
    "buckets",
    "cardinality",
];
const SCENARIO_KEYS: &[&str] = &[
    "description",
    "seed",
    "load",
    "proxy",
    "graphql_path",
    "default_latency",
    "operations",
    "batches",
    "rest",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Proxy,
    Slo,
    Jobs,
    Scenario,
}

/// A fenced block: the info string, its first line number (of the opening fence, 1-based),
/// the marker comment right before it, and its text without the fence's indentation.
#[derive(Debug)]
struct Block {
    info: String,
    line: usize,
    marker: Option<String>,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let marker = i
            .checked_sub(1)
            .map(|p| lines[p].trim())
            .and_then(|l| l.strip_prefix("<!-- docs-test:"))
            .and_then(|l| l.strip_suffix("-->"))
            .map(|m| m.trim().to_string());
        let start = i;
        let mut text = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let l = lines[i];
            let cut = l.len() - l.trim_start().len();
            text.push_str(&l[cut.min(indent)..]);
            text.push('\n');
            i += 1;
        }
        out.push(Block {
            info: info.trim().to_string(),
            line: start + 1,
            marker,
            text,
        });
        i += 1;
    }
    out
}

/// The keys of a YAML document's top-level mapping, in order.
fn top_level_keys(yaml: &str) -> Vec<&str> {
    yaml.lines()
        .filter(|l| !l.starts_with([' ', '\t', '#', '-']))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect()
}

/// Which slogate file a block is, `Ok(None)` for a skipped one, `Err` for a yaml block that is
/// neither recognised nor marked.
fn kind(block: &Block) -> Result<Option<Kind>, String> {
    match block.marker.as_deref() {
        Some(m) if m.starts_with("skip") => return Ok(None),
        Some("proxy-config") => return Ok(Some(Kind::Proxy)),
        Some("slo") => return Ok(Some(Kind::Slo)),
        Some("jobs") => return Ok(Some(Kind::Jobs)),
        Some("scenario") => return Ok(Some(Kind::Scenario)),
        Some(other) => return Err(format!("unknown marker `<!-- docs-test: {other} -->`")),
        None => {}
    }
    let keys = top_level_keys(&block.text);
    let only = |allowed: &[&str]| !keys.is_empty() && keys.iter().all(|k| allowed.contains(k));
    if keys.contains(&"slos") || keys.contains(&"apiVersion") {
        Ok(Some(Kind::Slo))
    } else if only(PROXY_KEYS) {
        Ok(Some(Kind::Proxy))
    } else if only(JOBS_KEYS) {
        Ok(Some(Kind::Jobs))
    } else if only(SCENARIO_KEYS) {
        Ok(Some(Kind::Scenario))
    } else {
        Err(format!(
            "a yaml block that is no slogate file (top-level keys {keys:?}): fix its keys, or \
             put `<!-- docs-test: skip (why) -->` on the line before it (see tests/e2e/own/docs.rs)"
        ))
    }
}

fn output_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Whether every mistake `slogate check` reported is only a path missing on this machine.
fn only_missing_paths(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    lines.peek().is_some()
        && lines.all(|l| l.contains(": cannot read ") || l.ends_with(" is not a directory"))
}

/// Runs the binary's check for `kind` on `file`; `Err` with what it said when it refuses it.
fn check(kind: Kind, file: &Path) -> Result<(), String> {
    let bin = env!("CARGO_BIN_EXE_slogate");
    let file = file.to_str().expect("UTF-8 path");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {bin}: {e}"))
    };
    let (command, out) = match kind {
        Kind::Proxy => ("slogate check --config", run(&["check", "--config", file])),
        Kind::Slo => (
            "slogate slo check --spec",
            run(&["slo", "check", "--spec", file]),
        ),
        Kind::Jobs => ("slogate check --jobs", run(&["check", "--jobs", file])),
        Kind::Scenario => return scenario_starts(bin, file),
    };
    let text = output_text(&out);
    if out.status.success() || (kind == Kind::Proxy && only_missing_paths(&text)) {
        Ok(())
    } else {
        Err(format!("{command} exits {}: {}", out.status, text.trim()))
    }
}

/// `slogate mock-upstream` validates its scenario, then prints its address and serves: a
/// scenario is valid when that line comes.
fn scenario_starts(bin: &str, file: &str) -> Result<(), String> {
    let mut child = Command::new(bin)
        .args([
            "mock-upstream",
            "--scenario",
            file,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    if line.starts_with("mock upstream for ") {
        child.kill().expect("stop the mock upstream");
        child.wait().expect("reap the mock upstream");
        return Ok(());
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("mock-upstream's output");
    Err(format!(
        "slogate mock-upstream --scenario exits {}: {line}{}",
        out.status,
        output_text(&out).trim()
    ))
}

/// Checks every yaml block of one document; returns the failures as `file:line: why` and
/// the number of blocks checked.
fn check_document(name: &str, markdown: &str, dir: &Path) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for block in blocks(markdown) {
        if block.info != "yaml" {
            continue;
        }
        let kind = match kind(&block) {
            Ok(Some(kind)) => kind,
            Ok(None) => continue,
            Err(why) => {
                failures.push(format!("{name}:{}: {why}", block.line));
                continue;
            }
        };
        let stem = name.replace('/', "_");
        let file = dir.join(format!("{stem}-line{}.yaml", block.line));
        std::fs::write(&file, &block.text).expect("write the example");
        checked += 1;
        if let Err(why) = check(kind, &file) {
            failures.push(format!(
                "{name}:{}: this {kind:?} example is stale: {why}",
                block.line
            ));
        }
    }
    (failures, checked)
}

#[test]
fn every_yaml_example_in_the_docs_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let name = doc.to_str().unwrap();
        let text = std::fs::read_to_string(root().join(&doc)).expect(name);
        let (f, n) = check_document(name, &text, dir.path());
        failures.extend(f);
        checked += n;
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
    // The README and docs hold a proxy config, SLO specs and a scenario at least: a scanner
    // that found nothing would pass vacuously.
    assert!(checked >= 3, "only {checked} examples found");
    eprintln!("{checked} yaml examples checked");
}

#[test]
fn a_stale_example_is_reported_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let doc = "# Page\n\ntext\n\n```yaml\nupstream:\n  connect_timeout: 5\n```\n\n\
               <!-- docs-test: skip (an Alertmanager file) -->\n```yaml\nroute: {}\n```\n\n\
               ```yaml\nreceivers: []\n```\n\n  ```yaml\n  slos: nope\n  ```\n";
    let (failures, checked) = check_document("docs/page.md", doc, dir.path());
    assert_eq!(checked, 2, "{failures:?}");
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures[0].starts_with("docs/page.md:5: this Proxy example is stale: ")
            && failures[0].contains("upstream.connect_timeout: 5 has no unit"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].starts_with("docs/page.md:15: a yaml block that is no slogate file"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].starts_with("docs/page.md:19: this Slo example is stale: "),
        "{}",
        failures[2]
    );
}

#[test]
fn missing_host_paths_are_tolerated_but_nothing_else() {
    assert!(only_missing_paths(
        "slogate: x.yaml: static.root: /var/www/public is not a directory\n\
         x.yaml: server.tls.cert: cannot read /etc/cert.pem: No such file or directory (os error 2)\n"
    ));
    assert!(!only_missing_paths(
        "slogate: x.yaml: static.root: /var/www/public is not a directory\n\
         x.yaml: server.max_connections: must be at least 1\n"
    ));
    assert!(!only_missing_paths(""));
}

/// One error message a page quotes: the page, the input that must produce it (a file
/// written under the message's own name, its text, the command before the file), and the
/// message as quoted.
struct Quoted {
    page: &'static str,
    file: &'static str,
    input: fn() -> String,
    command: &'static [&'static str],
    message: &'static str,
}

const SLO_THRESHOLD_SPEC: &str = "service: rails
slos:
  - {name: search, description: d, owner: t, cuj: c, period: 28d, operations: [{graphql: A}], availability: {target: 99}}
  - {name: browse, description: d, owner: t, cuj: c, period: 28d, operations: [{graphql: B}], availability: {target: 99}}
  - name: checkout
    description: Learners can pay for a course.
    owner: team-payments
    cuj: Learner buys a course
    period: 28d
    operations: [{graphql: CreateOrder}]
    latency: {threshold: 350ms, target: 99}
";

const QUOTED: &[Quoted] = &[
    Quoted {
        page: "docs/configuration.md",
        file: "slogate.yaml",
        input: || "upstream:\n  connect_timeout: 5\n".into(),
        command: &["check", "--config"],
        message: "slogate.yaml: upstream.connect_timeout: 5 has no unit; write e.g. 5s or 5ms",
    },
    Quoted {
        page: "docs/configuration.md",
        file: "slogate.yaml",
        input: || "metrics:\n  buckets: [0.1, 0.05]\n".into(),
        command: &["check", "--config"],
        message: "slogate.yaml: metrics.buckets[1]: 0.05 must be greater than the bucket before it (0.1)",
    },
    Quoted {
        page: "docs/jobs.md",
        file: "proxy-config/jobs.yaml",
        input: || "redis:\n  poll_interval: soon\n".into(),
        command: &["check", "--jobs"],
        message: "proxy-config/jobs.yaml: redis.poll_interval: \"soon\" is not a duration (expected number at 0); write e.g. 2s, 500ms, 1m",
    },
    Quoted {
        page: "docs/slos.md",
        file: "proxy-config/slo.yaml",
        input: || SLO_THRESHOLD_SPEC.into(),
        command: &["slo", "check", "--spec"],
        message: "proxy-config/slo.yaml: slos[2] \"checkout\": latency.threshold: 0.35s is not a histogram bucket boundary; buckets are 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 1, 2.5, 5, 10 (seconds; pass --buckets to match the proxy config)",
    },
    Quoted {
        page: "docs/harness.md",
        file: "hostile.yaml",
        input: || {
            let text =
                std::fs::read_to_string(root().join("proxy-config/scenarios/hostile.yaml"))
                    .expect("hostile.yaml");
            assert!(text.contains("duration: 3s }"), "StuckReport's hang in hostile.yaml");
            text.replace("duration: 3s }", "duration: 500ms }")
        },
        command: &["mock-upstream", "--listen", "127.0.0.1:0", "--scenario"],
        message: "hostile.yaml: operations[7].answers[0].hang.duration: 500ms must exceed proxy.read_timeout (1s), or it is just a slow answer",
    },
];

#[test]
fn the_error_messages_the_docs_quote_are_the_binarys() {
    let mut failures = Vec::new();
    for q in QUOTED {
        let page = std::fs::read_to_string(root().join(q.page)).expect(q.page);
        let Some(line) = page.lines().position(|l| l.contains(q.message)) else {
            failures.push(format!(
                "{}: no longer quotes `{}`: update QUOTED in tests/e2e/own/docs.rs",
                q.page, q.message
            ));
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(q.file);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, (q.input)()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_slogate"))
            .current_dir(dir.path())
            .args(q.command)
            .arg(q.file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run slogate");
        // A valid input would leave mock-upstream serving: give it a moment, then stop it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let text = output_text(&out);
        if out.status.code() != Some(2) || !text.contains(q.message) {
            failures.push(format!(
                "{}:{}: the binary no longer says this (exit {}): {}",
                q.page,
                line + 1,
                out.status,
                text.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown file's headings (outside code blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of `[text](target)` links outside code blocks and code spans, with their line.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop code spans: what sits between backticks is not a link.
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push((n + 1, rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
    out
}

#[test]
fn relative_links_in_the_docs_point_at_files_and_headings_that_exist() {
    let mut failures = Vec::new();
    let mut count = 0;
    for doc in documents() {
        let name = doc.to_str().unwrap();
        let text = std::fs::read_to_string(root().join(&doc)).expect(name);
        let dir = root().join(&doc).parent().unwrap().to_path_buf();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            count += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let file = if path.is_empty() {
                root().join(&doc)
            } else {
                dir.join(path)
            };
            if !file.exists() {
                failures.push(format!("{name}:{line}: {target}: no such file"));
                continue;
            }
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    failures.push(format!("{name}:{line}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
    assert!(count >= 10, "only {count} relative links found");
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        slug(" Try it in one command: `slogate demo`"),
        "try-it-in-one-command-slogate-demo"
    );
    assert_eq!(
        slug(" Configuration reference (`proxy-config/jobs.yaml`)"),
        "configuration-reference-proxy-configjobsyaml"
    );
}

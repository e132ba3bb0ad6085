//! Every configuration mistake names the file, the key and what is wrong.

use slogate_config::{load, parse_str, Address, Overrides};

fn err(yaml: &str) -> String {
    parse_str("slogate.yaml", yaml).unwrap_err().to_string()
}

#[test]
fn empty_file_is_the_default_configuration() {
    let c = parse_str("slogate.yaml", "# nothing here\n").unwrap();
    assert_eq!(c.upstream.name, "rails");
    assert_eq!(
        c.upstream.backends,
        vec![Address::Tcp("127.0.0.1:3000".into())]
    );
    assert_eq!(c.graphql.paths, vec!["/graphql"]);
    assert_eq!(c.graphql.extractor.max_inspect_bytes, 1 << 20);
    assert_eq!(c.metrics.max_operations, 1000);
    assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9090");
}

#[test]
fn unknown_keys_are_named() {
    let e = err("server:\n  lisen: [\"0.0.0.0:80\"]\n");
    assert!(
        e.starts_with(
            "slogate.yaml: server.lisen: unknown field `lisen`, expected one of `listen`"
        ),
        "{e}"
    );
    assert!(e.contains("line 2"), "{e}");
    let e = err("upstrem:\n  name: x\n");
    assert!(
        e.starts_with("slogate.yaml: upstrem: unknown field `upstrem`"),
        "{e}"
    );
}

#[test]
fn wrong_types_are_named() {
    let e = err("graphql:\n  max_inspect_bytes: lots\n");
    assert!(
        e.starts_with("slogate.yaml: graphql.max_inspect_bytes: "),
        "{e}"
    );
    assert!(e.contains("\"lots\" is not a size"), "{e}");
    let e = err("upstream:\n  read_timeout: 30\n");
    assert!(
        e.contains("upstream.read_timeout: 30 has no unit; write e.g. 30s"),
        "{e}"
    );
    let e = err("metrics:\n  buckets: fast\n");
    assert!(e.starts_with("slogate.yaml: metrics.buckets: "), "{e}");
}

#[test]
fn every_validation_mistake_is_reported_at_once() {
    let e = err(concat!(
        "server:\n  listen: [\"0.0.0.0\"]\n",
        "admin:\n  listen: localhost\n",
        "upstream:\n  name: \"\"\n  backends: [\"127.0.0.1:3000\", \"unix:\"]\n  connect_timeout: 0s\n",
        "graphql:\n  paths: [graphql, /graphql]\n",
        "classification:\n  unknown_code: maybe\n  status_overrides: {700: system_error}\n  extra_system_codes: [NOT_FOUND]\n",
        "http:\n  routes: [\"/a/*rest/b\"]\n  exclude: [\"/graphql\"]\n",
        "metrics:\n  buckets: [0.1, 0.05]\n  max_operations: 0\n",
    ));
    let lines: Vec<&str> = e.lines().collect();
    for want in [
        "slogate.yaml: server.listen[0]: \"0.0.0.0\" is not host:port or unix:/path",
        "slogate.yaml: admin.listen: \"localhost\" is not ip:port",
        "slogate.yaml: upstream.name: \"\" must be a non-empty word (it is the `service` label)",
        "slogate.yaml: upstream.backends[1]: \"unix:\": unix: needs a socket path",
        "slogate.yaml: upstream.connect_timeout: must be longer than 0",
        "slogate.yaml: graphql.paths[0]: \"graphql\" must start with '/'",
        "slogate.yaml: classification.unknown_code: \"maybe\" is not an outcome; use success, client_error or system_error",
        "slogate.yaml: classification.status_overrides.700: is not an HTTP status (100-599)",
        "slogate.yaml: classification.system_codes: \"NOT_FOUND\" is also a client code; a code can only be one",
        "slogate.yaml: http.routes[0]: \"/a/*rest/b\": '*' must be the last segment",
        "slogate.yaml: http.exclude[0]: \"/graphql\" is a GraphQL endpoint; excluding it would hide every operation",
        "slogate.yaml: metrics.buckets[1]: 0.05 must be greater than the bucket before it (0.1)",
        "slogate.yaml: metrics.max_operations: must be at least 1",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{e}");
    }
    assert_eq!(lines.len(), 13, "{e}");
}

#[test]
fn command_line_overrides_need_no_file() {
    let o = Overrides {
        upstream: Some("unix:/run/puma.sock".into()),
        listen: Some("127.0.0.1:8081".into()),
        admin: Some("127.0.0.1:9999".into()),
        threads: Some(1),
    };
    let c = load(None, &o).unwrap();
    assert_eq!(
        c.upstream.backends,
        vec![Address::Unix("/run/puma.sock".into())]
    );
    assert_eq!(c.server.listen, vec![Address::Tcp("127.0.0.1:8081".into())]);
    assert_eq!(c.server.threads, 1);
    let bad = Overrides {
        upstream: Some("nowhere".into()),
        ..Overrides::default()
    };
    assert_eq!(
        load(None, &bad).unwrap_err().to_string(),
        "<command line>: upstream.backends[0]: \"nowhere\" is not host:port or unix:/path"
    );
}

#[test]
fn missing_files_are_named() {
    let e = load(
        Some(std::path::Path::new("/nope/slogate.yaml")),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nope/slogate.yaml: cannot read: "),
        "{e}"
    );
}

#[test]
fn the_example_configurations_are_valid() {
    for name in ["slogate.yaml", "rails-edge.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../proxy-config")
            .join(name);
        let c = load(Some(&path), &Overrides::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.upstream.name, "rails");
    }
}

#[test]
fn edge_settings_are_checked() {
    let e = err(concat!(
        "server:\n  trusted_proxies: [\"10.0.0.0/33\"]\n  tls:\n    listen: [\"0.0.0.0:8443\"]\n    cert: /nope/cert.pem\n    key: /nope/key.pem\n    hsts: \"1 year\"\n",
        "upstream:\n  health_check:\n    path: up\n    fall: 0\n",
        "static:\n  root: /nope/public\n",
        "compression:\n  algorithms: [br, lzma]\n",
    ));
    for want in [
        "slogate.yaml: server.trusted_proxies[0]: \"10.0.0.0/33\": the prefix length must be 0 to 32",
        "slogate.yaml: server.tls.cert: cannot read /nope/cert.pem: No such file or directory (os error 2)",
        "slogate.yaml: server.tls.hsts: \"1 year\" must start with max-age=",
        "slogate.yaml: upstream.health_check.path: \"up\" must start with '/'",
        "slogate.yaml: upstream.health_check.fall: must be at least 1",
        "slogate.yaml: static.root: /nope/public is not a directory",
        "slogate.yaml: compression.algorithms[1]: \"lzma\" is not br, gzip or zstd",
    ] {
        assert!(e.lines().any(|l| l.starts_with(want)), "missing {want:?} in:\n{e}");
    }
    assert!(!e.contains("algorithms[0]"), "br is accepted: {e}");
    let e = err("server:\n  max_connections: 0\n  client_header_timeout: 0s\nupstream:\n  client: nginx\n  buffering:\n    temp_path: /nope/tmp\n");
    for want in [
        "slogate.yaml: server.max_connections: must be at least 1",
        "slogate.yaml: upstream.client: unknown client \"nginx\": hyper or slogate",
        "slogate.yaml: server.client_header_timeout:",
        "slogate.yaml: upstream.buffering.temp_path: /nope/tmp is not a directory",
    ] {
        assert!(
            e.lines().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{e}"
        );
    }
}

#[test]
fn the_upstream_client_is_slogates_own_unless_hyper_is_asked_for() {
    let c = parse_str("slogate.yaml", "# nothing here\n").unwrap();
    assert_eq!(c.upstream.client, slogate_config::UpstreamClient::Slogate);
    let c = parse_str("slogate.yaml", "upstream:\n  client: hyper\n").unwrap();
    assert_eq!(c.upstream.client, slogate_config::UpstreamClient::Hyper);
}

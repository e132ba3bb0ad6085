//! `slogate import nginx FILE`: the nginx configuration of a Rails site turned into a
//! commented slogate configuration, with every directive it could not express listed.
//!
//! ```
//! use slogate_config::nginx_import::{import_text, ImportOptions};
//! let nginx = "upstream puma { server unix:/app/tmp/puma.sock; }\n\
//!              server { listen 80; client_max_body_size 10m; limit_req zone=one;\n\
//!                       location / { proxy_pass http://puma; } }\n";
//! let import = import_text("site.conf", nginx, &ImportOptions::default()).unwrap();
//! assert!(import.yaml.contains("max_body_size: \"10MiB\""));
//! assert!(import.yaml.contains("# site.conf:2: client_max_body_size 10m"));
//! assert_eq!(import.exit_code(), 1, "limit_req has no slogate equivalent");
//! assert_eq!(import.untranslated()[0].to_string(),
//!     "site.conf:2: untranslated: limit_req zone=one: slogate does no rate or connection limiting (put it in the load balancer or Rack::Attack)");
//! ```

mod parse;
mod translate;
mod values;

use std::fmt;
use std::path::Path;

pub use parse::{parse_file, parse_text, print, Arg, Directive, Parsed, Source, SyntaxError};
use translate::Settings;

/// Options of an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `--server NAME`: the server block whose `server_name` matches.
    pub server: Option<String>,
}

/// How a directive fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// slogate cannot express it.
    Untranslated,
    /// slogate does something close, but not the same.
    Different,
    /// Does not matter for a proxy in front of one app, or slogate does it already.
    Informational,
}

impl NoteKind {
    fn label(self) -> &'static str {
        match self {
            NoteKind::Untranslated => "untranslated",
            NoteKind::Different => "different",
            NoteKind::Informational => "informational",
        }
    }
}

/// A directive that did not become a setting, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where it was written.
    pub source: Source,
    /// The directive, shortened.
    pub directive: String,
    /// How it fared.
    pub kind: NoteKind,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.source,
            self.kind.label(),
            self.directive,
            self.reason
        )
    }
}

/// Why an import could not run at all (exit code 2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not valid nginx syntax.
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// The file is fine but cannot be imported as asked (no server block, an unknown name).
    #[error("{0}")]
    Usage(String),
}

/// The result: the YAML and the notes.
#[derive(Clone, Debug)]
pub struct Import {
    /// The commented slogate configuration.
    pub yaml: String,
    /// Every directive that did not become a setting, in file order.
    pub notes: Vec<Note>,
}

impl Import {
    /// 0 when everything translated, 1 when something did not.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.untranslated().is_empty())
    }

    /// The notes that make the exit code 1 (untranslated or different).
    pub fn untranslated(&self) -> Vec<&Note> {
        self.notes
            .iter()
            .filter(|n| n.kind != NoteKind::Informational)
            .collect()
    }
}

/// Imports the nginx configuration in `path` (and its includes).
pub fn import_file(path: &Path, options: &ImportOptions) -> Result<Import, ImportError> {
    let parsed = parse_file(path)?;
    let mut import = build(&path.display().to_string(), &parsed.directives, options)?;
    for u in parsed.unread.into_iter().rev() {
        import.notes.insert(
            0,
            Note {
                source: u.source,
                directive: format!("include {}", u.path),
                kind: NoteKind::Untranslated,
                reason: format!("{}: its directives were not imported", u.reason),
            },
        );
    }
    import.notes.sort_by_key(order);
    import.yaml = render_notes(import.yaml, &import.notes);
    Ok(import)
}

/// Imports nginx configuration text (includes are not followed).
pub fn import_text(file: &str, text: &str, options: &ImportOptions) -> Result<Import, ImportError> {
    let directives = parse_text(file, text)?;
    let mut import = build(file, &directives, options)?;
    import.notes.sort_by_key(order);
    import.yaml = render_notes(import.yaml, &import.notes);
    Ok(import)
}

fn order(n: &Note) -> (String, usize, NoteKind) {
    (n.source.file.to_string(), n.source.line, n.kind)
}

fn build(
    file: &str,
    directives: &[Directive],
    options: &ImportOptions,
) -> Result<Import, ImportError> {
    let (settings, notes, label) = translate::translate(directives, options.server.as_deref())?;
    let yaml = render(file, &label, &settings);
    Ok(Import { yaml, notes })
}

/// Sections and keys in the order they are written.
const ORDER: &[&str] = &[
    "server.listen",
    "server.max_body_size",
    "server.client_body_timeout",
    "server.keepalive_timeout",
    "server.trusted_proxies",
    "server.tls.listen",
    "server.tls.cert",
    "server.tls.key",
    "server.tls.http2",
    "server.tls.redirect_http",
    "server.tls.hsts",
    "upstream.backends",
    "upstream.connect_timeout",
    "upstream.read_timeout",
    "upstream.write_timeout",
    "upstream.idle_timeout",
    "upstream.health_check.enabled",
    "static.root",
    "static.immutable",
    "static.precompressed",
    "static.sendfile",
    "static.internal",
    "compression.enabled",
    "compression.algorithms",
    "compression.types",
    "compression.min_size",
    "compression.gzip_level",
    "pages.error_pages",
    "pages.maintenance_file",
    "pages.maintenance_page",
];

fn render(file: &str, server: &str, settings: &Settings) -> String {
    let mut out = format!(
        "# slogate configuration imported from nginx: {file} (server {server}) by\n\
         # `slogate import nginx`. Each setting names the nginx directive(s) it came from;\n\
         # settings without one keep nginx's default where slogate's differs. Check it with\n\
         # `slogate check --config FILE`; relative paths resolve from this file's directory.\n"
    );
    let mut open: Vec<&str> = Vec::new();
    for key in ORDER {
        let Some(setting) = settings.get(key) else {
            continue;
        };
        let parts: Vec<&str> = key.split('.').collect();
        let (sections, leaf) = parts.split_at(parts.len() - 1);
        let common = open
            .iter()
            .zip(sections)
            .take_while(|(a, b)| a == b)
            .count();
        open.truncate(common);
        for (depth, section) in sections.iter().enumerate().skip(common) {
            if depth == 0 {
                out.push('\n');
            }
            out.push_str(&format!("{}{section}:\n", "  ".repeat(depth)));
            open.push(section);
        }
        let indent = "  ".repeat(sections.len());
        for from in &setting.from {
            out.push_str(&format!("{indent}# {from}\n"));
        }
        if let Some(c) = &setting.comment {
            out.push_str(&format!("{indent}# ({c})\n"));
        }
        out.push_str(&format!("{indent}{}: {}\n", leaf[0], setting.value));
    }
    out
}

fn render_notes(mut yaml: String, notes: &[Note]) -> String {
    for (kind, title) in [
        (NoteKind::Untranslated, "Not translated: slogate cannot express these (exit status 1)"),
        (NoteKind::Different, "Translated differently: slogate behaves close to, not exactly as, nginx (exit status 1)"),
        (NoteKind::Informational, "Informational: handled by slogate already, or irrelevant to a proxy in front of one app"),
    ] {
        let list: Vec<&Note> = notes.iter().filter(|n| n.kind == kind).collect();
        if list.is_empty() {
            continue;
        }
        yaml.push_str(&format!("\n# {title}:\n"));
        for n in list {
            let line = format!("{}: {}: {}", n.source, n.directive, n.reason).replace('\n', " ");
            yaml.push_str(&format!("#   {line}\n"));
        }
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str) -> Import {
        import_text("t.conf", text, &ImportOptions::default()).expect("imports")
    }

    fn kinds(import: &Import, what: &str) -> Vec<NoteKind> {
        import
            .notes
            .iter()
            .filter(|n| n.directive.contains(what))
            .map(|n| n.kind)
            .collect()
    }

    #[test]
    fn the_yaml_reads_back_as_a_slogate_config() {
        let i = import(
            "upstream a { server 127.0.0.1:3000; server unix:/run/puma.sock; }\n\
             server { listen 8080; listen 8443 ssl http2; ssl_certificate /c.pem;\n\
             ssl_certificate_key /k.pem; client_max_body_size 5m; proxy_read_timeout 1h30m;\n\
             set_real_ip_from 10.0.0.1; gzip on; gzip_types application/json;\n\
             location / { proxy_pass http://a; } }\n",
        );
        let raw = crate::parse_raw("t.yaml", &i.yaml).expect("valid YAML for slogate");
        assert_eq!(
            raw.upstream.backends,
            ["127.0.0.1:3000", "unix:/run/puma.sock"]
        );
        assert_eq!(raw.server.listen, ["0.0.0.0:8080"]);
        let tls = raw.server.tls.expect("tls");
        assert_eq!(tls.listen, ["0.0.0.0:8443"]);
        assert!(tls.http2 && !tls.redirect_http);
        assert_eq!(raw.server.max_body_size.0, 5 << 20);
        assert_eq!(raw.upstream.read_timeout.0.as_secs(), 5400);
        assert_eq!(raw.server.trusted_proxies, ["10.0.0.1/32"]);
        assert_eq!(raw.compression.types, ["text/html", "application/json"]);
        assert_eq!(raw.compression.algorithms, ["gzip"]);
        assert_eq!(raw.compression.gzip_level, 1, "nginx's default level");
        assert!(!raw.upstream.health_check.enabled);
        assert_eq!(i.exit_code(), 0, "{:?}", i.notes);
    }

    #[test]
    fn a_direct_proxy_pass_is_the_backend() {
        let i = import("server { listen 80; location / { proxy_pass http://127.0.0.1:3000; } }");
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert_eq!(raw.upstream.backends, ["127.0.0.1:3000"]);
        let i = import("server { location / { proxy_pass http://unix:/tmp/p.sock:/; } }");
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert_eq!(raw.upstream.backends, ["unix:/tmp/p.sock"]);
    }

    #[test]
    fn tls_settings_without_a_tls_listener_are_reported() {
        let i = import(
            "server { listen 80; ssl_certificate /c.pem; ssl_certificate_key /k.pem;\n\
             location / { proxy_pass http://127.0.0.1:3000; } }",
        );
        assert!(!i.yaml.contains("\n  tls:"), "{}", i.yaml);
        assert!(
            i.notes
                .iter()
                .any(|n| n.kind == NoteKind::Untranslated
                    && n.reason.contains("needs a TLS listener"))
        );
        assert_eq!(i.exit_code(), 1);
    }

    #[test]
    fn ipv6_listeners_and_fixed_host_redirects_are_different() {
        let i = import(
            "server { listen 80; listen [::]:80; return 301 https://example.com$request_uri; }\n\
             server { listen 443 ssl; ssl_certificate /c; ssl_certificate_key /k;\n\
             location / { proxy_pass http://127.0.0.1:3000; } }",
        );
        assert_eq!(kinds(&i, "[::]:80"), [NoteKind::Different]);
        assert_eq!(kinds(&i, "return 301"), [NoteKind::Different]);
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert!(raw.server.tls.unwrap().redirect_http);
        assert_eq!(raw.server.listen, ["0.0.0.0:80"]);
    }

    #[test]
    fn a_config_without_an_app_is_a_usage_error() {
        let e = import_text(
            "t.conf",
            "server { listen 80; return 301 https://$host$request_uri; }",
            &ImportOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, ImportError::Usage(_)), "{e}");
        let e = import_text("t.conf", "server {", &ImportOptions::default()).unwrap_err();
        assert!(e.to_string().starts_with("t.conf:1: "), "{e}");
    }

    #[test]
    fn a_root_without_try_files_serves_only_what_nginx_served() {
        let i =
            import("server { root /srv/public; location / { proxy_pass http://127.0.0.1:3000; } }");
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert_eq!(raw.static_files.root, None, "nginx served no files");
        assert_eq!(kinds(&i, "root /srv/public"), [NoteKind::Informational]);
        let i = import(
            "server { root /srv/public; location / { proxy_pass http://127.0.0.1:3000; }\n\
             location ^~ /assets/ { gzip_static on; } }",
        );
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert_eq!(raw.static_files.root.as_deref(), Some("/srv/public"));
        assert_eq!(raw.static_files.immutable, ["/assets/"]);
        assert_eq!(kinds(&i, "root /srv/public"), [NoteKind::Different]);
        assert_eq!(i.exit_code(), 1);
    }

    #[test]
    fn x_accel_mappings_and_internal_locations_merge() {
        let i = import(
            "server { proxy_set_header X-Sendfile-Type X-Accel-Redirect;\n\
             proxy_set_header X-Accel-Mapping /srv/files/=/protected/;\n\
             location / { proxy_pass http://127.0.0.1:3000; }\n\
             location /protected/ { internal; alias /srv/files/; }\n\
             location /exports/ { internal; alias /srv/exports/; } }",
        );
        let raw = crate::parse_raw("t.yaml", &i.yaml).unwrap();
        assert!(raw.static_files.sendfile);
        assert_eq!(raw.static_files.internal.len(), 2, "{}", i.yaml);
        assert_eq!(raw.static_files.internal["/exports/"], "/srv/exports/");
        assert_eq!(i.exit_code(), 0, "{:?}", i.notes);
    }

    #[test]
    fn unknown_directives_are_never_dropped() {
        let i = import(
            "server { listen 80; more_set_headers 'X: y'; location / { proxy_pass http://127.0.0.1:3000;\n\
             passenger_enabled on; } location ~* \\.php$ { return 404; } }",
        );
        for what in [
            "more_set_headers",
            "passenger_enabled",
            "location ~* \\.php$",
            "return 404",
        ] {
            assert_eq!(
                kinds(&i, what).first(),
                Some(&NoteKind::Untranslated),
                "{what}: {:?}",
                i.notes
            );
            assert!(i.yaml.contains(what), "{what} in the YAML's comments");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&str] = &[
        "server",
        "location",
        "upstream",
        "listen",
        "proxy_pass",
        "if",
        "map",
        "return",
        "root",
        "try_files",
        "error_page",
        "add_header",
        "proxy_set_header",
        "set",
        "rewrite",
        "gzip",
        "gzip_types",
        "gzip_static",
        "ssl_certificate",
        "ssl_certificate_key",
        "client_max_body_size",
        "proxy_read_timeout",
        "keepalive_timeout",
        "set_real_ip_from",
        "real_ip_header",
        "internal",
        "alias",
        "expires",
        "http",
        "events",
        "server_name",
        "break",
        "limit_req",
        "include_nothing",
        "keepalive",
        "http2",
    ];
    const ARGS: &[&str] = &[
        "80",
        "443",
        "ssl",
        "http2",
        "/",
        "@app",
        "^~",
        "~",
        "=",
        "/assets/",
        "^/(assets|packs)/",
        "http://app",
        "http://unix:/s.sock:",
        "http://127.0.0.1:3000/x",
        "app",
        "unix:/s.sock",
        "$uri",
        "$uri/index.html",
        "=404",
        "503",
        "500",
        "/500.html",
        "(-f",
        "$document_root/m.txt)",
        "($maintenance",
        "1)",
        "$maintenance",
        "1",
        "on",
        "off",
        "max",
        "1h",
        "10m",
        "x",
        "",
        "https://$host$request_uri",
        "301",
        "Strict-Transport-Security",
        "max-age=1",
        "X-Accel-Mapping",
        "/d/=/p/",
        "X-Sendfile-Type",
        "X-Accel-Redirect",
        "[::]:80",
        "10.0.0.0/8",
        "$request_filename",
        "(!-f",
        "$request_filename)",
    ];

    fn directive() -> impl Strategy<Value = Directive> {
        let words = |v: Vec<&str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
        let args = prop::collection::vec(prop::sample::select(ARGS), 0..4);
        let leaf = (prop::sample::select(NAMES), args).prop_map(move |(name, args)| {
            Directive::made("p.conf", name.to_string(), words(args), false, None)
        });
        leaf.prop_recursive(4, 48, 8, move |inner| {
            (
                prop::sample::select(NAMES),
                prop::collection::vec(prop::sample::select(ARGS), 0..3),
                prop::collection::vec(inner, 0..8),
            )
                .prop_map(move |(name, args, children)| {
                    Directive::made(
                        "p.conf",
                        name.to_string(),
                        words(args),
                        false,
                        Some(children),
                    )
                })
        })
    }

    proptest! {
        #[test]
        fn any_arrangement_of_directives_imports_or_errors_without_panicking(
            tree in prop::collection::vec(directive(), 0..8),
            server in prop::option::of(prop::sample::select(&["app", "x", "_"][..])),
        ) {
            let text = print(&tree);
            let options = ImportOptions { server: server.map(str::to_string) };
            if let Ok(import) = import_text("p.conf", &text, &options) {
                // Whatever came out is YAML slogate reads (paths aside).
                prop_assert!(crate::parse_raw("p.yaml", &import.yaml).is_ok(), "{}\n{}", text, import.yaml);
            }
        }

        #[test]
        fn any_server_block_imports_to_yaml_slogate_reads(children in prop::collection::vec(directive(), 0..12)) {
            let text = format!(
                "upstream app {{ server unix:/s.sock; }}\nserver {{\nserver_name app;\n{}}}\n",
                print(&children)
            );
            match import_text("p.conf", &text, &ImportOptions::default()) {
                Ok(import) => {
                    prop_assert!(crate::parse_raw("p.yaml", &import.yaml).is_ok(), "{}\n{}", text, import.yaml);
                    // Every directive of the server shows up: as a setting's source or a note.
                    for d in &children {
                        prop_assert!(import.yaml.contains(&d.name), "{} dropped\n{}", d.name, import.yaml);
                    }
                }
                Err(ImportError::Usage(_)) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}

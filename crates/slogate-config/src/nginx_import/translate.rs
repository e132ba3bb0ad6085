//! From nginx's directives to slogate's settings: each setting remembers the directives it
//! came from, and every directive not turned into a setting becomes a [`Note`].

use std::collections::{BTreeMap, HashMap};

use super::parse::{Directive, Source};
use super::values::{self, Listen};
use super::{ImportError, Note, NoteKind};

/// One slogate setting and where it came from.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The value, as YAML.
    pub value: String,
    /// `file:line directive` of each source.
    pub from: Vec<String>,
    /// Why, when the mapping needs a word.
    pub comment: Option<String>,
}

/// Every setting the import produced, by dotted key.
pub type Settings = BTreeMap<&'static str, Setting>;

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| yaml_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `file:line name args` of a directive, shortened.
pub fn describe(d: &Directive) -> String {
    let mut text = d.name.clone();
    for a in &d.args {
        text.push(' ');
        if a.quoted || a.value.is_empty() || a.value.contains(char::is_whitespace) {
            text.push_str(&yaml_str(&a.value));
        } else {
            text.push_str(&a.value);
        }
    }
    if d.block.is_some() {
        text.push_str(" {...}");
    }
    let text = text.replace(['\n', '\r'], " ");
    if text.chars().count() > 72 {
        let short: String = text.chars().take(69).collect();
        format!("{short}...")
    } else {
        text
    }
}

fn origin(d: &Directive) -> String {
    format!("{}: {}", d.source, describe(d))
}

/// What kind of location a block is, for the directives in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Http,
    Server,
    /// Where the app's requests go (`location /` or `@app` with proxy_pass, or try_files).
    App,
    /// `/assets/`-like: fingerprinted files.
    Assets,
    /// `/cable`: WebSockets.
    Cable,
    /// Another location that proxies to the app.
    OtherProxy,
    /// A location serving one static file (`= /favicon.ico`).
    StaticFile,
    /// `internal` + `alias`: X-Accel-Redirect.
    Internal,
    /// `@maintenance`.
    Maintenance,
    /// Upstream block.
    Upstream,
    /// Redirect server.
    Redirect,
}

struct Cx<'a> {
    settings: Settings,
    notes: Vec<Note>,
    upstreams: HashMap<String, &'a Directive>,
    maps: Vec<&'a Directive>,
    /// The `root` in force (for `$document_root`).
    root: Option<String>,
    maintenance_vars: Vec<String>,
    /// The server has a `return 503` maintenance check.
    maintenance: bool,
    /// The chosen server block.
    server_source: Source,
    /// Files on disk are tried before the app (try_files, `-f $request_filename`).
    files_first: bool,
    gzip: bool,
    gzip_static: bool,
    error_pages: bool,
    sendfile: bool,
    proxied: bool,
}

impl<'a> Cx<'a> {
    fn set(&mut self, key: &'static str, value: String, d: &Directive) {
        self.settings.insert(
            key,
            Setting {
                value,
                from: vec![origin(d)],
                comment: None,
            },
        );
    }

    fn set_with(&mut self, key: &'static str, value: String, d: &Directive, comment: &str) {
        self.set(key, value, d);
        if let Some(s) = self.settings.get_mut(key) {
            s.comment = Some(comment.to_string());
        }
    }

    /// Adds a source to a setting (or creates it with `value`).
    fn add(&mut self, key: &'static str, value: String, d: &Directive) {
        match self.settings.get_mut(key) {
            Some(s) => {
                s.value = value;
                s.from.push(origin(d));
            }
            None => self.set(key, value, d),
        }
    }

    fn list_push(&mut self, key: &'static str, item: String, d: &Directive) {
        let mut items = self.list(key);
        if !items.contains(&item) {
            items.push(item);
        }
        self.add(key, yaml_list(&items), d);
    }

    /// Adds `prefix: dir` to `static.internal` (a JSON flow map, which is YAML).
    fn internal(&mut self, prefix: &str, dir: &str, d: &Directive) {
        let mut map: BTreeMap<String, String> = self
            .settings
            .get("static.internal")
            .and_then(|s| serde_json::from_str(&s.value).ok())
            .unwrap_or_default();
        if let Some(existing) = map.get(prefix) {
            if existing.trim_end_matches('/') != dir.trim_end_matches('/') {
                self.untranslated(
                    d,
                    format!("{prefix} is mapped to {existing} already; slogate maps a prefix to one directory"),
                );
                return;
            }
        }
        map.insert(prefix.to_string(), dir.to_string());
        let entries: Vec<String> = map
            .iter()
            .map(|(k, v)| format!("{}: {}", yaml_str(k), yaml_str(v)))
            .collect();
        let value = format!("{{{}}}", entries.join(", "));
        self.add("static.internal", value, d);
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.settings
            .get(key)
            .and_then(|s| serde_json::from_str::<Vec<String>>(&s.value).ok())
            .unwrap_or_default()
    }

    fn note(&mut self, d: &Directive, kind: NoteKind, reason: impl Into<String>) {
        self.notes.push(Note {
            source: d.source.clone(),
            directive: describe(d),
            kind,
            reason: reason.into(),
        });
    }

    fn info(&mut self, d: &Directive, reason: impl Into<String>) {
        self.note(d, NoteKind::Informational, reason);
    }

    fn untranslated(&mut self, d: &Directive, reason: impl Into<String>) {
        self.note(d, NoteKind::Untranslated, reason);
    }

    fn different(&mut self, d: &Directive, reason: impl Into<String>) {
        self.note(d, NoteKind::Different, reason);
    }

    fn time(&mut self, key: &'static str, d: &Directive) {
        match values::time_ms(d.arg(0)) {
            Some(ms) if ms > 0 => self.set(key, yaml_str(&values::duration(ms)), d),
            _ => self.untranslated(d, "not a time slogate can read"),
        }
    }

    fn expand_root(&self, path: &str) -> Option<String> {
        if path.contains("$document_root") {
            let root = self.root.as_deref()?;
            return Some(path.replace("$document_root", root.trim_end_matches('/')));
        }
        (!path.contains('$')).then(|| path.to_string())
    }
}

/// Runs the translation of the chosen server (and what surrounds it).
pub fn translate(
    top: &[Directive],
    server_choice: Option<&str>,
) -> Result<(Settings, Vec<Note>, String), ImportError> {
    let mut cx = Cx {
        settings: Settings::new(),
        notes: Vec::new(),
        upstreams: HashMap::new(),
        maps: Vec::new(),
        root: None,
        maintenance_vars: Vec::new(),
        maintenance: false,
        files_first: false,
        server_source: Source {
            file: "-".into(),
            line: 0,
        },
        gzip: false,
        gzip_static: false,
        error_pages: false,
        sendfile: false,
        proxied: false,
    };
    // A full nginx.conf has an http block; a sites-available file is http's content.
    let http: Vec<&Directive> = if top.iter().any(|d| d.name == "http" && d.block.is_some()) {
        let mut http = Vec::new();
        for d in top {
            if d.name == "http" && d.block.is_some() {
                http.extend(d.children());
            } else {
                main_directive(&mut cx, d);
            }
        }
        http
    } else {
        top.iter().collect()
    };
    let mut servers = Vec::new();
    for d in &http {
        match d.name.as_str() {
            "upstream" if d.block.is_some() => {
                cx.upstreams.insert(d.arg(0).to_string(), d);
            }
            "map" if d.block.is_some() => cx.maps.push(d),
            "server" if d.block.is_some() => servers.push(*d),
            _ => {}
        }
    }
    let redirects: Vec<&Directive> = servers.iter().copied().filter(|s| is_redirect(s)).collect();
    let apps: Vec<&Directive> = servers
        .iter()
        .copied()
        .filter(|s| !is_redirect(s))
        .collect();
    let chosen = choose(&apps, server_choice)?;
    let label = server_names(chosen)
        .first()
        .cloned()
        .unwrap_or_else(|| "_".into());
    for d in &http {
        match d.name.as_str() {
            "upstream" | "server" => {}
            "map" if d.block.is_some() => {}
            _ => directive(&mut cx, d, Place::Http),
        }
    }
    // The redirect servers that belong to the chosen one: same names, or any if unnamed.
    let names = server_names(chosen);
    for r in &redirects {
        let rn = server_names(r);
        let related = rn.is_empty()
            || rn.iter().any(|n| n == "_" || names.contains(n))
            || names.iter().any(|n| n == "_");
        if related {
            redirect_server(&mut cx, r);
        } else {
            let (head, rest) = (server_head(r), r.children());
            cx.info(
                &head,
                format!(
                    "another site's redirect server ({}), not imported",
                    rn.join(" ")
                ),
            );
            let _ = rest;
        }
    }
    for other in apps.iter().filter(|s| !std::ptr::eq(**s, chosen)) {
        let head = server_head(other);
        cx.info(
            &head,
            format!(
                "another server block ({}), not imported: run `slogate import nginx FILE --server NAME` for it",
                server_names(other).join(" ")
            ),
        );
    }
    server(&mut cx, chosen);
    finish(&mut cx);
    let maps = cx.maps.clone();
    for m in maps {
        map_block(&mut cx, m);
    }
    Ok((cx.settings, cx.notes, label))
}

fn server_head(d: &Directive) -> Directive {
    Directive {
        name: d.name.clone(),
        args: d.args.clone(),
        block: Some(Vec::new()),
        source: d.source.clone(),
    }
}

fn server_names(server: &Directive) -> Vec<String> {
    server
        .children()
        .iter()
        .filter(|d| d.name == "server_name")
        .flat_map(|d| d.values().into_iter().map(str::to_string))
        .filter(|n| !n.is_empty())
        .collect()
}

fn name_matches(pattern: &str, name: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return name.ends_with(&format!(".{suffix}"));
    }
    if let Some(suffix) = pattern.strip_prefix('.') {
        return name == suffix || name.ends_with(pattern);
    }
    pattern.eq_ignore_ascii_case(name)
}

fn choose<'a>(apps: &[&'a Directive], choice: Option<&str>) -> Result<&'a Directive, ImportError> {
    if apps.is_empty() {
        return Err(ImportError::Usage(
            "no server block that serves an app (only redirects, or none at all)".into(),
        ));
    }
    let listing = || {
        apps.iter()
            .map(|s| format!("{} ({})", server_names(s).join(" "), s.source))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = choice {
        return apps
            .iter()
            .copied()
            .find(|s| server_names(s).iter().any(|p| name_matches(p, name)))
            .ok_or_else(|| {
                ImportError::Usage(format!(
                    "no server block has server_name {name:?}; there are: {}",
                    listing()
                ))
            });
    }
    if apps.len() == 1 {
        return Ok(apps[0]);
    }
    Err(ImportError::Usage(format!(
        "{} server blocks; choose one with --server NAME: {}",
        apps.len(),
        listing()
    )))
}

/// A server whose only job is `return 301 https://...`.
fn is_redirect(server: &Directive) -> bool {
    let mut redirects = false;
    for d in server.children() {
        match d.name.as_str() {
            "listen" | "server_name" | "access_log" | "error_log" => {}
            "return" if is_https_redirect(d) => redirects = true,
            "rewrite" if d.arg(1).starts_with("https://") => redirects = true,
            "location"
                if d.children()
                    .iter()
                    .any(|c| c.name == "return" && is_https_redirect(c)) =>
            {
                redirects = true
            }
            _ => {}
        }
    }
    redirects
        && !server
            .children()
            .iter()
            .any(|d| matches!(d.name.as_str(), "proxy_pass" | "root" | "try_files"))
        && !server.children().iter().any(|d| {
            d.name == "location"
                && d.children()
                    .iter()
                    .any(|c| c.name == "proxy_pass" || c.name == "try_files")
        })
}

fn is_https_redirect(d: &Directive) -> bool {
    matches!(d.arg(0), "301" | "302" | "307" | "308") && d.arg(1).starts_with("https://")
}

fn redirect_server(cx: &mut Cx<'_>, server: &Directive) {
    for d in server.children() {
        match d.name.as_str() {
            "listen" => listen(cx, d, true),
            "server_name" => cx.info(d, "slogate's redirect answers every Host"),
            "return" | "rewrite" => redirect_target(cx, d),
            "location" => {
                let path = d.values().join(" ");
                let acme = path.contains("acme-challenge");
                for c in d.children() {
                    if (c.name == "return" || c.name == "rewrite") && is_https_redirect(c) {
                        redirect_target(cx, c);
                    } else if acme {
                        cx.untranslated(
                            c,
                            "slogate's plain listener redirects every path: the ACME HTTP-01 challenge directory is not served (use TLS-ALPN or DNS challenges, or renew elsewhere)",
                        );
                    } else {
                        cx.untranslated(c, "slogate's plain listener only redirects");
                    }
                }
                if acme {
                    cx.untranslated(
                        &server_head(d),
                        "location for ACME challenges on the plain listener",
                    );
                }
            }
            _ => directive(cx, d, Place::Redirect),
        }
    }
}

fn redirect_target(cx: &mut Cx<'_>, d: &Directive) {
    let target = d.arg(1);
    let same = matches!(
        target,
        "https://$host$request_uri"
            | "https://$http_host$request_uri"
            | "https://$server_name$request_uri"
            | "https://$host$uri"
    ) || (d.name == "rewrite" && target.starts_with("https://$host"));
    if same {
        cx.set_with(
            "server.tls.redirect_http",
            "true".into(),
            d,
            "plain listeners answer 301 to the same URL on https://",
        );
        if d.arg(0) != "301" && d.name == "return" {
            cx.different(d, "slogate redirects with 301");
        }
        if target.contains("$server_name") {
            cx.different(
                d,
                "slogate redirects to the Host the client asked for, not the first server_name",
            );
        }
    } else {
        cx.set_with(
            "server.tls.redirect_http",
            "true".into(),
            d,
            "plain listeners answer 301 to https://",
        );
        cx.different(
            d,
            "slogate redirects to the Host the client asked for (https://$host$request_uri), not to a fixed host",
        );
    }
}

fn listen(cx: &mut Cx<'_>, d: &Directive, plain_only: bool) {
    let flags: Vec<&str> = d.values().into_iter().skip(1).collect();
    let ssl = flags.contains(&"ssl");
    let http2 = flags.contains(&"http2");
    for f in &flags {
        if !matches!(
            *f,
            "ssl" | "http2" | "default_server" | "default" | "deferred"
        ) && !f.starts_with("ipv6only")
            && !f.starts_with("backlog")
            && *f != "reuseport"
        {
            cx.untranslated(
                d,
                format!("listen parameter {f:?} has no slogate equivalent"),
            );
        }
    }
    match values::listen(d.arg(0)) {
        None => cx.untranslated(d, "not an address slogate can read"),
        Some(Listen::V6(a)) => cx.different(
            d,
            format!("IPv6 listener {a} not imported: slogate binds the addresses in server.listen, and [::] next to 0.0.0.0 on one port would clash; add it by hand if the IPv4 one goes"),
        ),
        Some(Listen::Unix(a)) if ssl => cx.untranslated(d, format!("TLS on a Unix socket ({a})")),
        Some(Listen::Unix(a)) | Some(Listen::Tcp(a)) => {
            if ssl && !plain_only {
                cx.list_push("server.tls.listen", a, d);
                if http2 {
                    cx.set("server.tls.http2", "true".into(), d);
                }
            } else {
                cx.list_push("server.listen", a, d);
                if http2 {
                    cx.different(d, "HTTP/2 without TLS (h2c) is not offered; slogate speaks HTTP/2 through TLS ALPN");
                }
            }
        }
    }
}

fn main_directive(cx: &mut Cx<'_>, d: &Directive) {
    match d.name.as_str() {
        "user"
        | "worker_processes"
        | "worker_rlimit_nofile"
        | "pid"
        | "error_log"
        | "worker_cpu_affinity"
        | "pcre_jit"
        | "daemon"
        | "master_process"
        | "timer_resolution"
        | "worker_shutdown_timeout"
        | "env"
        | "thread_pool" => cx.info(d, "process setting of nginx itself"),
        "include" => cx.info(d, "included file"),
        "load_module" => cx.untranslated(d, "nginx module: slogate loads none"),
        "events" => cx.info(
            d,
            "connection processing of nginx itself (slogate: server.threads)",
        ),
        "stream" | "mail" => cx.untranslated(d, "TCP/mail proxying is not slogate's job"),
        _ => cx.untranslated(d, "main-context directive with no slogate equivalent"),
    }
}

fn server(cx: &mut Cx<'_>, server: &Directive) {
    cx.server_source = server.source.clone();
    // root first: locations and ifs refer to $document_root.
    for d in server.children() {
        if d.name == "root" {
            cx.root = Some(d.arg(0).to_string());
        }
        // The maintenance check's variables, wherever they are set.
        if d.name == "if"
            && d.values()
                .join(" ")
                .trim_start_matches('(')
                .starts_with("-f ")
        {
            let body = d.children();
            if body.iter().any(|c| c.name == "return" && c.arg(0) == "503") {
                cx.maintenance = true;
            }
            for c in body.iter().filter(|c| c.name == "set") {
                cx.maintenance = true;
                cx.maintenance_vars.push(c.arg(0).to_string());
            }
        }
    }
    for d in server.children() {
        if d.name == "location" {
            continue;
        }
        directive(cx, d, Place::Server);
    }
    for d in server.children() {
        if d.name == "location" {
            location(cx, d);
        }
    }
}

fn location(cx: &mut Cx<'_>, loc: &Directive) {
    let args = loc.values();
    let (modifier, path) = match args.as_slice() {
        [p] => ("", *p),
        [m, p] => (*m, *p),
        _ => {
            cx.untranslated(loc, "location with unexpected arguments");
            return;
        }
    };
    let kids = loc.children();
    let has = |n: &str| kids.iter().any(|c| c.name == n);
    let proxies = has("proxy_pass");
    let upgrade = kids
        .iter()
        .any(|c| c.name == "proxy_set_header" && c.arg(0).eq_ignore_ascii_case("upgrade"));
    let place = if has("internal") && has("alias") {
        Place::Internal
    } else if path.starts_with('@') && !proxies {
        Place::Maintenance
    } else if proxies && (upgrade || path.trim_end_matches('/').ends_with("/cable")) {
        Place::Cable
    } else if modifier.is_empty() && (path == "/" || (proxies && path.starts_with('@'))) {
        Place::App
    } else if proxies {
        Place::OtherProxy
    } else if asset_prefixes(modifier, path).is_some() {
        Place::Assets
    } else if modifier == "=" && !proxies {
        Place::StaticFile
    } else {
        cx.untranslated(
            &server_head(loc),
            "slogate has no per-path rules: what this location does differently is not imported",
        );
        for c in kids {
            cx.untranslated(c, format!("inside location {}", args.join(" ")));
        }
        return;
    };
    match place {
        Place::Assets => {
            let prefixes = asset_prefixes(modifier, path).unwrap_or_default();
            let items: Vec<String> = prefixes.clone();
            cx.set_with(
                "static.immutable",
                yaml_list(&items),
                loc,
                "fingerprinted files get Cache-Control: public, max-age=31536000, immutable",
            );
        }
        Place::Internal => {
            let alias = kids.iter().find(|c| c.name == "alias");
            if let Some(a) = alias {
                cx.internal(path, a.arg(0), loc);
                cx.info(a, "the directory of static.internal");
            }
        }
        Place::Cable => cx.info(
            &server_head(loc),
            "WebSockets: slogate passes Upgrade requests through on every path",
        ),
        Place::OtherProxy => cx.info(
            &server_head(loc),
            format!(
                "location {} proxies to the app like every other path",
                args.join(" ")
            ),
        ),
        Place::StaticFile => cx.info(
            &server_head(loc),
            "a file under static.root is served by slogate",
        ),
        Place::Maintenance => cx.info(&server_head(loc), "named location of the maintenance page"),
        _ => {}
    }
    for c in kids {
        match (place, c.name.as_str()) {
            (Place::Internal, "internal" | "alias") => {}
            (Place::StaticFile, "root") if Some(c.arg(0)) != cx.root.as_deref() => {
                cx.untranslated(c, "slogate serves files from one directory (static.root)")
            }
            (Place::StaticFile, "log_not_found" | "access_log" | "root") => {
                cx.info(c, "slogate logs and serves it like any file")
            }
            (Place::Maintenance, "rewrite") if c.arg(2) == "break" || c.arg(2) == "last" => {
                let page = c.arg(1).trim_start_matches('/').to_string();
                cx.set_with(
                    "pages.maintenance_page",
                    yaml_str(&page),
                    c,
                    "relative to static.root",
                );
            }
            (Place::Maintenance, "root") => cx.info(c, "the page is read from static.root"),
            (Place::Maintenance, "try_files") => {
                if let Some(page) = c.values().iter().find(|v| v.ends_with(".html")) {
                    let page = page.trim_start_matches('/').to_string();
                    cx.set_with(
                        "pages.maintenance_page",
                        yaml_str(&page),
                        c,
                        "relative to static.root",
                    );
                } else {
                    cx.untranslated(c, "maintenance location without a page");
                }
            }
            _ => directive(cx, c, place),
        }
    }
}

/// `^~ /assets/`, `/assets/`, `~ ^/(assets|packs)/`, `~* ^/assets/` -> the prefixes.
fn asset_prefixes(modifier: &str, path: &str) -> Option<Vec<String>> {
    let known = |p: &str| {
        matches!(
            p,
            "assets"
                | "packs"
                | "vite"
                | "vite-dev"
                | "system"
                | "uploads"
                | "images"
                | "javascripts"
                | "stylesheets"
                | "fonts"
                | "builds"
        )
    };
    match modifier {
        "" | "^~" => {
            let name = path.trim_matches('/');
            known(name).then(|| vec![format!("/{name}/")])
        }
        "~" | "~*" => {
            let body = path.strip_prefix("^/")?;
            let body = body
                .strip_suffix('/')
                .or_else(|| body.strip_suffix("/.*"))?;
            let names: Vec<&str> = match body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
                Some(group) => group.trim_start_matches("?:").split('|').collect(),
                None => vec![body],
            };
            names
                .iter()
                .all(|n| known(n))
                .then(|| names.iter().map(|n| format!("/{n}/")).collect())
        }
        _ => None,
    }
}

/// Headers slogate sets on every proxied request by itself.
fn forwarded_header(cx: &mut Cx<'_>, d: &Directive) {
    let name = d.arg(0).to_ascii_lowercase();
    let value = d.arg(1);
    match (name.as_str(), value) {
        ("host", "$http_host") => cx.info(d, "slogate forwards the client's Host"),
        ("host", "$host") => cx.info(
            d,
            "slogate forwards the client's Host as sent ($http_host, port included); $host drops the port",
        ),
        ("x-real-ip", "$remote_addr") => cx.info(d, "slogate sets X-Real-IP"),
        ("x-forwarded-for", "$proxy_add_x_forwarded_for" | "$remote_addr") => cx.info(
            d,
            "slogate sets X-Forwarded-For: it appends to a trusted peer's (server.trusted_proxies) and replaces anyone else's",
        ),
        ("x-forwarded-proto", "$scheme" | "https" | "$http_x_forwarded_proto") => {
            cx.info(d, "slogate sets X-Forwarded-Proto")
        }
        ("x-forwarded-ssl", "on") => cx.info(
            d,
            "slogate sends X-Forwarded-Proto: https instead, which Rails reads the same way",
        ),
        ("x-forwarded-host", "$host" | "$http_host" | "$server_name") => {
            cx.info(d, "slogate sets X-Forwarded-Host ($host)")
        }
        ("x-forwarded-port", "$server_port") => cx.info(d, "slogate sets X-Forwarded-Port"),
        ("x-request-start", v) if v.contains("msec") => {
            cx.info(d, "slogate sets X-Request-Start: t=<seconds.millis>")
        }
        ("x-request-id", "$request_id") => cx.different(
            d,
            "slogate keeps a sane incoming X-Request-Id and generates one otherwise; $request_id always replaces it",
        ),
        ("x-request-id", _) => cx.info(
            d,
            "slogate keeps a sane incoming X-Request-Id, otherwise generates one",
        ),
        ("proxy", "") => cx.info(d, "slogate never forwards a Proxy header (httpoxy)"),
        ("connection", v) if matches!(v.to_ascii_lowercase().as_str(), "" | "$connection_upgrade" | "upgrade") => {
            cx.info(d, "slogate manages the upstream connection and WebSocket upgrades itself")
        }
        ("upgrade", "$http_upgrade") => cx.info(d, "slogate passes WebSocket upgrades through"),
        ("x-sendfile-type", "X-Accel-Redirect") => {
            cx.sendfile = true;
            cx.set("static.sendfile", "true".into(), d);
        }
        ("x-accel-mapping", mapping) => match mapping.split_once('=') {
            Some((dir, prefix)) if !dir.contains('$') && prefix.starts_with('/') => {
                cx.sendfile = true;
                cx.internal(prefix, dir, d);
            }
            _ => cx.untranslated(d, "X-Accel-Mapping slogate cannot read (DIR=/prefix/)"),
        },
        _ => cx.untranslated(d, "slogate sends no custom request headers to the app"),
    }
}

fn directive(cx: &mut Cx<'_>, d: &Directive, place: Place) {
    let n = d.name.as_str();
    let in_location = matches!(
        place,
        Place::App
            | Place::Assets
            | Place::Cable
            | Place::OtherProxy
            | Place::StaticFile
            | Place::Internal
            | Place::Maintenance
    );
    match n {
        "listen" if place == Place::Server => listen(cx, d, false),
        "server_name" => cx.info(d, "slogate answers every Host (the server block chosen)"),
        "root" if matches!(place, Place::Server | Place::App | Place::Assets) => {
            if place == Place::Assets && cx.root.as_deref() == Some(d.arg(0)) {
                cx.info(d, "the same directory as static.root");
            } else if place == Place::Assets && cx.root.is_some() {
                cx.untranslated(d, "slogate serves /assets/ from static.root too");
            } else {
                cx.root = Some(d.arg(0).to_string());
                cx.set_with(
                    "static.root",
                    yaml_str(d.arg(0)),
                    d,
                    "files that exist are served by slogate for GET and HEAD",
                );
            }
        }
        "try_files" => try_files(cx, d, place),
        "proxy_pass" => proxy_pass(cx, d, place),
        "client_max_body_size" if !in_location || place == Place::App => {
            match values::size_bytes(d.arg(0)) {
                Some(b) => cx.set("server.max_body_size", yaml_str(&values::size(b)), d),
                None => cx.untranslated(d, "not a size slogate can read"),
            }
        }
        "client_body_timeout" if !in_location => cx.time("server.client_body_timeout", d),
        "keepalive_timeout" if place == Place::Upstream => cx.time("upstream.idle_timeout", d),
        "keepalive_timeout" if !in_location => {
            cx.time("server.keepalive_timeout", d);
            if d.args.len() > 1 {
                cx.info(d, "slogate sends no Keep-Alive: timeout= header");
            }
        }
        "proxy_connect_timeout" | "proxy_read_timeout" | "proxy_send_timeout"
            if matches!(place, Place::Http | Place::Server | Place::App) =>
        {
            let key = match n {
                "proxy_connect_timeout" => "upstream.connect_timeout",
                "proxy_read_timeout" => "upstream.read_timeout",
                _ => "upstream.write_timeout",
            };
            cx.time(key, d);
        }
        "proxy_read_timeout" | "proxy_send_timeout" if place == Place::Cable => cx.info(
            d,
            "slogate applies upstream.read_timeout to every path, WebSockets included; ActionCable pings every 3 s, so an open cable is never idle that long",
        ),
        "proxy_connect_timeout" | "proxy_read_timeout" | "proxy_send_timeout" => cx.different(
            d,
            "slogate has one timeout for every path (upstream.*_timeout, from the app's location)",
        ),
        "proxy_set_header" => forwarded_header(cx, d),
        "proxy_http_version" => cx.info(d, "slogate speaks HTTP/1.1 to the app with keepalive"),
        "proxy_redirect" if d.arg(0) == "off" => {
            cx.info(d, "slogate passes Location headers unchanged")
        }
        "proxy_buffering" | "proxy_request_buffering" => cx.info(
            d,
            "slogate streams requests and responses (no buffering to disk)",
        ),
        "proxy_buffers" | "proxy_buffer_size" | "proxy_busy_buffers_size"
        | "proxy_max_temp_file_size" | "proxy_temp_file_write_size" | "client_body_buffer_size"
        | "client_header_buffer_size" => cx.info(d, "buffer sizing of nginx itself"),
        "proxy_cache" if d.arg(0) == "off" => cx.info(d, "slogate caches no responses"),
        "proxy_intercept_errors" if d.arg(0) == "off" => {
            cx.info(d, "slogate passes the app's error responses unchanged")
        }
        "proxy_intercept_errors" => cx.untranslated(
            d,
            "slogate never replaces the app's own error responses (only errors it generates get pages)",
        ),
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => cx.info(
            d,
            "slogate retries connection failures on another backend, and idempotent requests on a reused connection that failed",
        ),
        n if n.starts_with("proxy_cache") || n == "proxy_no_cache" => cx.untranslated(
            d,
            "slogate caches no responses",
        ),
        "gzip" if matches!(place, Place::Http | Place::Server) => {
            cx.gzip = d.arg(0) == "on";
            cx.set("compression.enabled", d.arg(0).eq("on").to_string(), d);
        }
        "gzip_types" => {
            let mut types: Vec<String> = vec!["text/html".into()];
            for t in d.values() {
                if t == "*" {
                    cx.different(d, "\"*\": slogate compresses only the listed types");
                } else if !types.iter().any(|x| x == t) {
                    types.push(t.to_string());
                }
            }
            cx.set_with("compression.types", yaml_list(&types), d, "text/html is always compressed by nginx");
        }
        "gzip_min_length" => match values::size_bytes(d.arg(0)) {
            Some(b) => cx.set("compression.min_size", yaml_str(&values::size(b)), d),
            None => cx.untranslated(d, "not a size"),
        },
        "gzip_comp_level" => match d.arg(0).parse::<u32>() {
            Ok(l) if (1..=9).contains(&l) => cx.set("compression.gzip_level", l.to_string(), d),
            _ => cx.untranslated(d, "not a level 1-9"),
        },
        "gzip_vary" => cx.info(d, "slogate always sends Vary: Accept-Encoding with compressed responses"),
        "gzip_proxied" | "gzip_disable" | "gzip_buffers" | "gzip_http_version" => {
            cx.info(d, "slogate compresses by type and size alone")
        }
        "gzip_static" => {
            cx.gzip_static = d.arg(0) == "on" || d.arg(0) == "always";
            cx.set_with(
                "static.precompressed",
                cx.gzip_static.to_string(),
                d,
                "file.gz (and file.br) served when the client accepts it",
            );
        }
        "brotli_static" => cx.info(d, "slogate serves file.br with static.precompressed"),
        "brotli" | "brotli_types" | "brotli_comp_level" => cx.different(
            d,
            "slogate does not brotli-compress dynamic responses (zstd and gzip); precompressed .br files are served",
        ),
        "expires" if place == Place::Assets => {
            cx.different(d, "slogate sends Cache-Control: public, max-age=31536000, immutable (one year) and no Expires header")
        }
        "add_header" if place == Place::Assets && d.arg(0).eq_ignore_ascii_case("cache-control") => {
            if d.arg(1) == "public, max-age=31536000, immutable" {
                cx.info(d, "exactly what slogate sends for static.immutable");
            } else {
                cx.different(d, format!("slogate sends Cache-Control: public, max-age=31536000, immutable, not {:?}", d.arg(1)));
            }
        }
        "add_header" if place == Place::Assets && (d.arg(0).eq_ignore_ascii_case("etag") || d.arg(0).eq_ignore_ascii_case("last-modified")) => cx.different(
            d,
            "slogate always sends ETag and Last-Modified for files",
        ),
        "add_header"
            if d.arg(0).eq_ignore_ascii_case("strict-transport-security")
                && !d.arg(1).trim_start().starts_with("max-age=") =>
        {
            cx.untranslated(d, "an HSTS value must start with max-age=")
        }
        "add_header" if d.arg(0).eq_ignore_ascii_case("strict-transport-security") => {
            cx.set_with("server.tls.hsts", yaml_str(d.arg(1)), d, "sent on HTTPS responses");
        }
        "add_header" => cx.untranslated(d, "slogate adds no custom response headers"),
        "expires" => cx.untranslated(d, "slogate sets cache headers only for static.immutable prefixes"),
        "etag" | "if_modified_since" => cx.info(d, "slogate always sends ETag/Last-Modified for files"),
        "access_log" | "log_format" | "error_log" | "log_not_found" | "open_log_file_cache" => cx.info(
            d,
            "logging: slogate writes a JSON access log (access_log.target)",
        ),
        "sendfile" | "tcp_nopush" | "tcp_nodelay" | "aio" | "directio" | "output_buffers"
        | "open_file_cache" | "open_file_cache_valid" | "open_file_cache_min_uses"
        | "open_file_cache_errors" | "types_hash_max_size" | "types_hash_bucket_size"
        | "server_names_hash_bucket_size" | "server_names_hash_max_size" | "server_tokens"
        | "variables_hash_max_size" | "reset_timedout_connection" | "resolver"
        | "resolver_timeout" | "index" | "keepalive_requests" | "send_timeout"
        | "large_client_header_buffers" | "client_header_timeout" | "lingering_close"
        | "lingering_time" | "lingering_timeout" | "http2_max_concurrent_streams" | "merge_slashes"
        | "underscores_in_headers" | "ignore_invalid_headers" | "break" | "port_in_redirect"
        | "absolute_redirect" | "server_name_in_redirect" | "msie_padding" => {
            cx.info(d, "tuning of nginx itself; slogate has its own")
        }
        "include" => cx.info(d, "included file"),
        "types" | "default_type" => cx.info(d, "slogate has its own MIME type map"),
        "charset" | "source_charset" | "charset_types" => cx.different(
            d,
            "slogate does not add a charset to Content-Type",
        ),
        "http2" if d.arg(0) == "on" => cx.set("server.tls.http2", "true".into(), d),
        "ssl" if d.arg(0) == "on" => cx.info(d, "TLS comes from server.tls"),
        "ssl_certificate" => cx.set("server.tls.cert", yaml_str(d.arg(0)), d),
        "ssl_certificate_key" => cx.set("server.tls.key", yaml_str(d.arg(0)), d),
        "ssl_protocols" => {
            let old: Vec<&str> = d
                .values()
                .into_iter()
                .filter(|p| !matches!(*p, "TLSv1.2" | "TLSv1.3"))
                .collect();
            if old.is_empty() {
                cx.info(d, "slogate offers TLS 1.2 and 1.3 (rustls)");
            } else {
                cx.different(d, format!("slogate offers TLS 1.2 and 1.3 only, not {}", old.join(" ")));
            }
        }
        "ssl_ciphers" | "ssl_prefer_server_ciphers" | "ssl_ecdh_curve" | "ssl_session_cache"
        | "ssl_session_timeout" | "ssl_session_tickets" | "ssl_dhparam" | "ssl_buffer_size"
        | "ssl_conf_command" | "ssl_early_data" => {
            cx.info(d, "rustls's modern defaults (ECDHE, AES-GCM, ChaCha20); not configurable")
        }
        "ssl_stapling" | "ssl_stapling_verify" | "ssl_trusted_certificate" => {
            cx.different(d, "slogate does no OCSP stapling")
        }
        "ssl_client_certificate" | "ssl_verify_client" | "ssl_verify_depth" => {
            cx.untranslated(d, "slogate does not verify client certificates")
        }
        "set_real_ip_from" => {
            let cidr = d.arg(0);
            if cidr.starts_with("unix:") {
                cx.untranslated(d, "slogate trusts peers by IP range only");
            } else {
                let cidr = if cidr.contains('/') {
                    cidr.to_string()
                } else if cidr.contains(':') {
                    format!("{cidr}/128")
                } else {
                    format!("{cidr}/32")
                };
                cx.list_push("server.trusted_proxies", cidr, d);
            }
        }
        "real_ip_header" => match d.arg(0).to_ascii_lowercase().as_str() {
            "x-forwarded-for" => cx.info(d, "slogate reads X-Forwarded-For from trusted proxies"),
            "x-real-ip" => cx.different(d, "slogate reads the client address from X-Forwarded-For, not X-Real-IP"),
            _ => cx.untranslated(d, format!("slogate reads the client address from X-Forwarded-For only, not {}", d.arg(0))),
        },
        "real_ip_recursive" if d.arg(0) == "on" => cx.info(
            d,
            "slogate skips every trusted address in X-Forwarded-For",
        ),
        "real_ip_recursive" => cx.different(d, "slogate skips every trusted address in X-Forwarded-For (real_ip_recursive on)"),
        "error_page" => error_page(cx, d),
        "if" if matches!(place, Place::Server | Place::App) => if_block(cx, d),
        "set" if cx.maintenance_vars.iter().any(|v| v == d.arg(0)) => {
            cx.info(d, "part of the maintenance check (pages.maintenance_file)")
        }
        "internal" => cx.untranslated(d, "internal location slogate could not map"),
        "limit_req" | "limit_req_zone" | "limit_req_status" | "limit_req_log_level" | "limit_conn"
        | "limit_conn_zone" | "limit_conn_status" | "limit_rate" | "limit_rate_after" => {
            cx.untranslated(d, "slogate does no rate or connection limiting (put it in the load balancer or Rack::Attack)")
        }
        "auth_basic" | "auth_basic_user_file" | "auth_request" => cx.untranslated(
            d,
            "slogate does no authentication (use Rails' http_basic_authenticate_with)",
        ),
        "allow" | "deny" => cx.untranslated(d, "slogate has no IP access rules"),
        "return" | "rewrite" => cx.untranslated(d, "slogate has no rewrites or fixed answers (besides the HTTPS redirect)"),
        "location" => cx.untranslated(d, "nested location"),
        "map" | "geo" | "split_clients" => cx.untranslated(d, "slogate has no variables"),
        "set" => cx.untranslated(d, "slogate has no variables"),
        "if" => cx.untranslated(d, "slogate has no conditions"),
        "alias" => cx.untranslated(d, "slogate serves files from static.root only"),
        n if n.starts_with("passenger") => cx.untranslated(d, "Passenger runs the app inside nginx; slogate proxies to Puma"),
        n if n.starts_with("fastcgi") || n.starts_with("uwsgi") || n.starts_with("scgi") => {
            if n.ends_with("_temp_path") {
                cx.info(d, "temp files of nginx itself")
            } else {
                cx.untranslated(d, "slogate proxies HTTP only")
            }
        }
        n if n.ends_with("_temp_path") => cx.info(d, "temp files of nginx itself"),
        n if n.starts_with("ssl_") => cx.untranslated(d, "TLS setting slogate does not have"),
        _ => cx.untranslated(d, "slogate has no equivalent"),
    }
}

fn try_files(cx: &mut Cx<'_>, d: &Directive, place: Place) {
    let args = d.values();
    let last = args.last().copied().unwrap_or("");
    match place {
        Place::Assets | Place::StaticFile => {
            if last == "=404" {
                cx.different(
                    d,
                    "a missing file here gets Rails' 404 from slogate, not nginx's",
                );
            } else {
                cx.info(d, "slogate serves the file when it exists");
            }
        }
        _ => {
            for a in &args[..args.len().saturating_sub(1)] {
                match *a {
                    "$uri" | "$uri/index.html" | "$uri/" => {}
                    "$uri.html" => cx.different(
                        d,
                        "slogate serves $uri and $uri/index.html, not $uri.html (Rails page cache)",
                    ),
                    other => cx.different(d, format!("slogate does not try {other}")),
                }
            }
            if last.starts_with('@') || last.starts_with('/') {
                cx.info(
                    d,
                    "files under static.root are served, everything else goes to the app",
                );
            } else {
                cx.different(
                    d,
                    format!("slogate sends requests for missing files to the app, not {last}"),
                );
            }
            if cx.root.is_none() {
                cx.untranslated(d, "try_files without root");
            }
            cx.proxied = true;
            cx.files_first = true;
        }
    }
}

fn proxy_pass(cx: &mut Cx<'_>, d: &Directive, place: Place) {
    let target = d.arg(0);
    let Some(rest) = target.strip_prefix("http://") else {
        cx.untranslated(d, "slogate proxies to http:// backends only");
        return;
    };
    cx.proxied = true;
    let (host, path) = if let Some(unix) = rest.strip_prefix("unix:") {
        match unix.split_once(':') {
            Some((sock, path)) => (format!("unix:{sock}"), path.to_string()),
            None => (format!("unix:{unix}"), String::new()),
        }
    } else {
        match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), String::new()),
        }
    };
    if !path.is_empty() && path != "/" || (path == "/" && place != Place::App) {
        cx.different(
            d,
            format!(
                "slogate forwards the request path unchanged; this one replaces it with {path:?}"
            ),
        );
    }
    let backends: Vec<String> = if let Some(up) = cx.upstreams.get(&host).copied() {
        if !cx.settings.contains_key("upstream.backends") {
            upstream(cx, up);
        }
        Vec::new()
    } else if host.contains('$') {
        cx.untranslated(d, "slogate proxies to fixed backends, not variables");
        return;
    } else {
        vec![if host.starts_with("unix:") || host.contains(':') {
            host.clone()
        } else {
            format!("{host}:80")
        }]
    };
    if !backends.is_empty() {
        let existing = cx.list("upstream.backends");
        if existing.is_empty() {
            cx.set("upstream.backends", yaml_list(&backends), d);
        } else if existing != backends {
            cx.untranslated(
                d,
                "a second backend group: slogate proxies every path to one upstream",
            );
        } else if let Some(s) = cx.settings.get_mut("upstream.backends") {
            s.from.push(origin(d));
        }
    } else if let Some(s) = cx.settings.get_mut("upstream.backends") {
        if !s.from.iter().any(|f| f.contains(&d.source.to_string())) && place == Place::App {
            s.from.push(origin(d));
        }
    }
    if place != Place::App && place != Place::Cable && place != Place::OtherProxy {
        cx.info(d, "proxied to the app");
    }
}

fn upstream(cx: &mut Cx<'_>, up: &Directive) {
    cx.info(
        up,
        "its servers are upstream.backends; the metrics' `service` label (upstream.name) stays \"rails\", the name SLO specs use by default",
    );
    for d in up.children() {
        match d.name.as_str() {
            "server" => {
                let addr = d.arg(0);
                let addr = if addr.starts_with("unix:") || addr.contains(':') {
                    addr.to_string()
                } else {
                    format!("{addr}:80")
                };
                cx.list_push("upstream.backends", addr, d);
                for p in d.values().into_iter().skip(1) {
                    let key = p.split('=').next().unwrap_or("");
                    match key {
                        "fail_timeout" | "max_fails" => cx.info(
                            d,
                            format!("{p}: slogate uses active health checks (upstream.health_check) instead of passive ones"),
                        ),
                        "weight" => cx.untranslated(d, format!("{p}: slogate balances round robin, equal weights")),
                        "backup" | "down" => cx.untranslated(d, format!("{p}: every slogate backend is in rotation")),
                        _ => cx.untranslated(d, format!("server parameter {p} has no slogate equivalent")),
                    }
                }
            }
            "keepalive" => cx.info(d, "slogate keeps a pool of idle connections to the app"),
            "keepalive_timeout" => cx.time("upstream.idle_timeout", d),
            "keepalive_requests" => {
                cx.info(d, "slogate reuses a connection until it is idle too long")
            }
            "least_conn" | "ip_hash" | "hash" | "random" => {
                cx.untranslated(d, "slogate balances round robin")
            }
            _ => directive(cx, d, Place::Upstream),
        }
    }
}

fn error_page(cx: &mut Cx<'_>, d: &Directive) {
    let args = d.values();
    let Some((uri, codes)) = args.split_last() else {
        return;
    };
    let codes: Vec<&str> = codes
        .iter()
        .copied()
        .filter(|c| !c.starts_with('='))
        .collect();
    let has_503 = codes.contains(&"503");
    let maint = has_503 && cx.maintenance;
    let mut fivexx = false;
    for c in &codes {
        match *c {
            "500" | "502" | "504" => fivexx = true,
            "503" if !maint => fivexx = true,
            "503" => {}
            other => cx.untranslated(
                d,
                format!(
                    "{other}: slogate serves pages only for the 5xx errors it generates itself"
                ),
            ),
        }
    }
    if maint {
        if uri.starts_with('/') {
            cx.set_with(
                "pages.maintenance_page",
                yaml_str(uri.trim_start_matches('/')),
                d,
                "relative to static.root",
            );
        } else {
            cx.info(d, "the maintenance page comes from the named location");
        }
    }
    if fivexx {
        cx.error_pages = true;
        cx.add("pages.error_pages", "true".into(), d);
        let rails_page = matches!(*uri, "/500.html" | "/502.html" | "/503.html" | "/504.html");
        if !rails_page {
            cx.different(
                d,
                format!("slogate serves static.root's <code>.html (else 502.html for 503/504, else 500.html), not {uri}"),
            );
        } else if let Some(s) = cx.settings.get_mut("pages.error_pages") {
            s.comment = Some("static.root's <code>.html, else 502.html for 503/504, else 500.html; for errors slogate generates (the app's own pass unchanged)".into());
        }
        if args.iter().any(|a| a.starts_with('=')) {
            cx.different(d, "slogate keeps the error's status");
        }
        // With the app's public/ at hand, say where slogate's choice of page differs.
        if let Some(root) = cx.root.clone().filter(|r| std::path::Path::new(r).is_dir()) {
            for code in codes.iter().filter_map(|c| c.parse::<u16>().ok()) {
                if code == 503 && maint || !matches!(code, 500 | 502 | 503 | 504) {
                    continue;
                }
                let ours = slogate_error_page(std::path::Path::new(&root), code);
                if ours.as_deref() != Some(uri.trim_start_matches('/')) {
                    cx.different(
                        d,
                        format!(
                            "{code}: slogate serves {} from static.root, nginx {uri}",
                            ours.as_deref().unwrap_or("its built-in page")
                        ),
                    );
                }
            }
        }
    }
}

/// The page slogate serves for an error it generates: `<code>.html`, else `502.html` for
/// 503/504, else `500.html` (as `slogate-proxy`'s pages do).
fn slogate_error_page(root: &std::path::Path, code: u16) -> Option<String> {
    let candidates: &[u16] = match code {
        503 | 504 => &[code, 502, 500],
        502 => &[502, 500],
        _ => &[500],
    };
    candidates
        .iter()
        .map(|c| format!("{c}.html"))
        .find(|f| root.join(f).is_file())
}

/// `if (-f FILE) { return 503; }` and its `set $maintenance` variants.
fn if_block(cx: &mut Cx<'_>, d: &Directive) {
    let cond = d.values().join(" ");
    let cond = cond
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim()
        .to_string();
    let body = d.children();
    let returns_503 = body.iter().any(|c| c.name == "return" && c.arg(0) == "503");
    if let Some(file) = cond.strip_prefix("-f ") {
        let file = file.trim().trim_matches('"');
        let sets: Vec<String> = body
            .iter()
            .filter(|c| c.name == "set")
            .map(|c| c.arg(0).to_string())
            .collect();
        if returns_503 || !sets.is_empty() {
            match cx.expand_root(file) {
                Some(path) => {
                    cx.set_with(
                        "pages.maintenance_file",
                        yaml_str(&path),
                        d,
                        "while it exists every request gets 503 and the maintenance page",
                    );
                    if !cx.settings.contains_key("pages.maintenance_page") {
                        if let Some(root) = cx.root.clone() {
                            if let Some(rel) = path.strip_prefix(root.trim_end_matches('/')) {
                                if rel.ends_with(".html") {
                                    cx.set_with(
                                        "pages.maintenance_page",
                                        yaml_str(rel.trim_start_matches('/')),
                                        d,
                                        "the file itself is the page",
                                    );
                                }
                            }
                        }
                    }
                    for c in body {
                        if c.name != "return" && c.name != "set" {
                            cx.untranslated(c, "inside the maintenance check");
                        }
                    }
                }
                None => cx.untranslated(
                    d,
                    "maintenance file path with variables slogate cannot expand",
                ),
            }
            return;
        }
    }
    if cond.contains("$request_filename") {
        request_filename_if(cx, d, &cond);
        return;
    }
    if let Some(file) = cond.strip_prefix("-f ") {
        // Puma's and Unicorn's docs: the maintenance page replaces every answer (status 200).
        let rewrites_to_page = body
            .iter()
            .any(|c| c.name == "rewrite" && c.arg(1).ends_with(".html"));
        if rewrites_to_page {
            if let Some(path) = cx.expand_root(file.trim()) {
                cx.set_with(
                    "pages.maintenance_file",
                    yaml_str(&path),
                    d,
                    "while it exists every request gets the maintenance page",
                );
                if let Some(page) = body.iter().find(|c| c.name == "rewrite") {
                    cx.set_with(
                        "pages.maintenance_page",
                        yaml_str(page.arg(1).trim_start_matches('/')),
                        page,
                        "relative to static.root",
                    );
                }
                cx.different(
                    d,
                    "slogate answers 503 with the maintenance page; this rewrite answers 200",
                );
                return;
            }
        }
    }
    let mentions_var = cx
        .maintenance_vars
        .iter()
        .any(|v| cond.contains(v.as_str()));
    if mentions_var && returns_503 {
        cx.info(d, "part of the maintenance check (pages.maintenance_file)");
        return;
    }
    if mentions_var
        || body
            .iter()
            .any(|c| c.name == "set" && cx.maintenance_vars.iter().any(|v| v == c.arg(0)))
    {
        if cond.contains("maintenance.html") || cond.contains("$uri = /") {
            cx.info(d, "slogate serves the maintenance page itself");
        } else {
            cx.different(
                d,
                "an exception to maintenance mode: slogate's are paths in pages.maintenance_allow",
            );
        }
        return;
    }
    cx.untranslated(d, "slogate has no conditions");
}

/// The old idiom for `try_files $uri $uri/index.html $uri.html @app`.
fn request_filename_if(cx: &mut Cx<'_>, d: &Directive, cond: &str) {
    let body = d.children();
    match cond {
        "-f $request_filename" => {
            cx.files_first = true;
            cx.info(d, "a file under static.root is served by slogate")
        }
        "-f $request_filename/index.html" => cx.info(d, "slogate serves a directory's index.html"),
        "-f $request_filename.html" => cx.different(
            d,
            "slogate serves $uri and $uri/index.html, not $uri.html (Rails page cache)",
        ),
        "!-f $request_filename" => {
            for c in body {
                match c.name.as_str() {
                    "proxy_pass" => proxy_pass(cx, c, Place::App),
                    "break" => {}
                    _ => directive(cx, c, Place::App),
                }
            }
            cx.info(d, "requests for missing files go to the app");
            cx.proxied = true;
            return;
        }
        _ => {
            cx.untranslated(d, "slogate has no conditions");
            return;
        }
    }
    for c in body {
        if !matches!(c.name.as_str(), "break" | "rewrite") {
            cx.untranslated(c, "inside a static-file check");
        }
    }
    cx.proxied = true;
}

fn map_block(cx: &mut Cx<'_>, m: &Directive) {
    let (from, to) = (m.arg(0), m.arg(1));
    match (from, to) {
        ("$http_upgrade", _) => cx.info(
            m,
            "WebSocket Connection header: slogate passes upgrades itself",
        ),
        ("$http_x_request_id", _) => {
            cx.info(m, "request id: slogate keeps a sane incoming X-Request-Id")
        }
        _ => cx.untranslated(m, "slogate has no variables"),
    }
}

/// nginx's defaults where slogate's differ, so the imported config behaves as nginx did.
fn finish(cx: &mut Cx<'_>) {
    let set_default = |cx: &mut Cx<'_>, key: &'static str, value: &str, why: &str| {
        if !cx.settings.contains_key(key) {
            cx.settings.insert(
                key,
                Setting {
                    value: value.to_string(),
                    from: Vec::new(),
                    comment: Some(why.to_string()),
                },
            );
        }
    };
    let has_tls_material =
        cx.settings.contains_key("server.tls.cert") && cx.settings.contains_key("server.tls.key");
    if !has_tls_material {
        if let Some(listen) = cx.settings.remove("server.tls.listen") {
            cx.notes.push(note_from(
                &listen,
                NoteKind::Untranslated,
                "a TLS listener needs ssl_certificate and ssl_certificate_key in the chosen server (or http)",
            ));
        }
    }
    if !cx.settings.contains_key("server.listen") {
        let why = if cx.settings.contains_key("server.tls.listen") {
            "nginx had no plain listener; slogate needs one (loopback only here)"
        } else {
            "nginx's default: listen 80"
        };
        let value = if cx.settings.contains_key("server.tls.listen") {
            "[\"127.0.0.1:8080\"]"
        } else {
            "[\"0.0.0.0:80\"]"
        };
        set_default(cx, "server.listen", value, why);
    }
    if cx.settings.contains_key("server.tls.listen") {
        set_default(
            cx,
            "server.tls.http2",
            "false",
            "nginx's default: no http2 on the listen line",
        );
    } else {
        for key in [
            "server.tls.cert",
            "server.tls.key",
            "server.tls.hsts",
            "server.tls.http2",
            "server.tls.redirect_http",
        ] {
            if let Some(s) = cx.settings.remove(key) {
                cx.notes.push(Note {
                    source: parse_source(&s.from),
                    directive: s
                        .from
                        .first()
                        .map(|f| f.split_once(": ").map_or(f.as_str(), |x| x.1).to_string())
                        .unwrap_or_default(),
                    kind: NoteKind::Untranslated,
                    reason: format!(
                        "{key} needs a TLS listener (listen ... ssl) in the chosen server"
                    ),
                });
            }
        }
    }
    set_default(
        cx,
        "upstream.connect_timeout",
        "\"60s\"",
        "nginx's default proxy_connect_timeout",
    );
    set_default(
        cx,
        "upstream.health_check.enabled",
        "false",
        "nginx checks no health; turn it on if the app has a health route (Rails 7.1: /up)",
    );
    if !cx.settings.contains_key("upstream.backends") {
        cx.settings.insert(
            "upstream.backends",
            Setting {
                value: "[\"127.0.0.1:3000\"]".into(),
                from: Vec::new(),
                comment: Some("no proxy_pass found: slogate's default (Puma on 3000)".into()),
            },
        );
        cx.notes.push(Note {
            source: cx.server_source.clone(),
            directive: "server {...}".into(),
            kind: NoteKind::Untranslated,
            reason: "the chosen server proxies to no app; set upstream.backends by hand".into(),
        });
    }
    if let Some(root) = cx.settings.get("static.root").cloned() {
        if !cx.proxied {
            cx.settings.remove("static.root");
            cx.notes.push(note_from(
                &root,
                NoteKind::Untranslated,
                "a server that only serves files: slogate serves static.root in front of an app",
            ));
        } else if cx.files_first {
            // try_files: what slogate's static.root does.
        } else if cx.settings.contains_key("static.immutable") {
            cx.notes.push(note_from(&root, NoteKind::Different, "nginx serves files from disk only under the asset locations (every other path goes to the app); slogate serves any file that exists under static.root"));
        } else {
            cx.settings.remove("static.root");
            cx.notes.push(note_from(&root, NoteKind::Informational, "nginx serves no file from this root (no try_files): static.root is left unset, every request goes to the app"));
        }
    }
    if let (Some(file), Some(page), Some(root)) = (
        cx.settings.get("pages.maintenance_file"),
        cx.settings.get("pages.maintenance_page"),
        cx.settings.get("static.root"),
    ) {
        let root: String = serde_json::from_str(&root.value).unwrap_or_default();
        let page_path: String = serde_json::from_str(&page.value).unwrap_or_default();
        let file_path: String = serde_json::from_str(&file.value).unwrap_or_default();
        if format!("{}/{page_path}", root.trim_end_matches('/')) == file_path {
            let note = Note {
                source: parse_source(&file.from),
                directive: file.from.first().map(|f| f.split_once(": ").map_or(f.as_str(), |x| x.1).to_string()).unwrap_or_default(),
                kind: NoteKind::Different,
                reason: "the switch file is the page itself: slogate reads pages.maintenance_page when it starts (when the file is usually absent), so it answers 503 without this page; point maintenance_page at a page that always exists".into(),
            };
            cx.notes.push(note);
        }
    }
    if !cx.settings.contains_key("static.immutable") {
        set_default(
            cx,
            "static.immutable",
            "[]",
            "no assets location: no far-future cache headers",
        );
    }
    set_default(
        cx,
        "static.precompressed",
        "false",
        "nginx's default: gzip_static off",
    );
    if !cx.sendfile {
        set_default(
            cx,
            "static.sendfile",
            "false",
            "no X-Sendfile-Type / X-Accel-Mapping sent to the app",
        );
    }
    if cx.gzip {
        set_default(
            cx,
            "compression.algorithms",
            "[\"gzip\"]",
            "nginx compresses with gzip only",
        );
        set_default(
            cx,
            "compression.min_size",
            "\"20\"",
            "nginx's default gzip_min_length",
        );
        set_default(
            cx,
            "compression.gzip_level",
            "1",
            "nginx's default gzip_comp_level",
        );
        set_default(
            cx,
            "compression.types",
            "[\"text/html\"]",
            "nginx's default gzip_types",
        );
    } else {
        set_default(
            cx,
            "compression.enabled",
            "false",
            "nginx's default: gzip off",
        );
        for k in [
            "compression.algorithms",
            "compression.min_size",
            "compression.gzip_level",
            "compression.types",
        ] {
            if let Some(s) = cx.settings.get_mut(k) {
                s.comment = Some("kept, though compression is off".into());
            }
        }
    }
    if !cx.error_pages {
        set_default(
            cx,
            "pages.error_pages",
            "false",
            "no error_page: nginx answers its own errors with its built-in pages",
        );
    }
}

/// A note on the directive a setting came from.
fn note_from(setting: &Setting, kind: NoteKind, reason: &str) -> Note {
    Note {
        source: parse_source(&setting.from),
        directive: setting
            .from
            .first()
            .map(|f| f.split_once(": ").map_or(f.as_str(), |x| x.1).to_string())
            .unwrap_or_default(),
        kind,
        reason: reason.to_string(),
    }
}

fn parse_source(from: &[String]) -> Source {
    let first = from.first().map(String::as_str).unwrap_or("-:0");
    let loc = first.split(": ").next().unwrap_or("-:0");
    let (file, line) = loc.rsplit_once(':').unwrap_or((loc, "0"));
    Source {
        file: file.into(),
        line: line.parse().unwrap_or(0),
    }
}

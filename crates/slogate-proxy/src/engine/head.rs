//! The headers of the request slogate sends the app: the client's, without those that
//! describe one hop, with the forwarding headers nginx sets for Rails
//! ([`forwarded::set_upstream_headers`]).
//!
//! Most requests take a shortcut to the same result: the headers slogate adds depend only on
//! the client's address, the listener and the `Host`; the last two repeat from one request to
//! the next (every request to one site on one listener), and the address goes in two places
//! of a copy (`X-Forwarded-For`, `X-Real-IP`), as the time goes in `X-Request-Start`. They are
//! built once per thread and site into a template whose copy starts each request's headers:
//! a copied map keeps the hashes of its names, where inserting the same seven or so names
//! into a copy of the client's headers hashed each of them again and grew the map twice
//! (about 5k of the ~78k instructions a proxied request cost, measured with callgrind).
//! Anything unusual (a trusted peer's chain, `Connection`, an upgrade, an absolute target, a
//! Unix socket) takes the general path; the tests hold the two to the same result.
//!
//! slogate's own upstream client writes the head as bytes: [`write_upstream_lines`] writes
//! a template's lines (kept as bytes beside its map, the time and the address written in
//! their places) and the client's, with no map built at all.

use std::cell::RefCell;
use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::Authority;

use crate::forwarded::{self, Arrival};

pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_ACCEL_MAPPING: HeaderName = HeaderName::from_static("x-accel-mapping");
static X_SENDFILE_TYPE: HeaderName = HeaderName::from_static("x-sendfile-type");

/// Headers that describe one hop, never forwarded (RFC 9110 7.6.1).
static HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Where `name` is in [`HOP_BY_HOP`]: one match on its text rather than seven comparisons
/// (every header of every request and answer is looked at).
#[inline(always)]
pub(super) fn hop_by_hop_index(name: &str) -> Option<u8> {
    match name {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "proxy-connection" => Some(2),
        "te" => Some(3),
        "trailer" => Some(4),
        "transfer-encoding" => Some(5),
        "upgrade" => Some(6),
        _ => None,
    }
}

/// What a request's upstream headers are made of, besides its own.
pub(super) struct Forwarding<'a> {
    /// Who sent it, how and when it leaves (the forwarding headers).
    pub arrival: Arrival<'a>,
    /// The id slogate generated for the request, which replaces any the client sent (an
    /// acceptable id from the client is passed as it came).
    pub generated_id: Option<&'a HeaderValue>,
    /// `X-Accel-Mapping` for Rack::Sendfile, when slogate serves the files the app names.
    pub accel_mapping: Option<&'a str>,
}

/// The headers the app gets with a request: `authority` is an absolute-form target's (its
/// host replaces `Host`), `upgrade` a WebSocket upgrade passed on.
pub(super) fn upstream_headers(
    request: &HeaderMap,
    authority: Option<&Authority>,
    upgrade: bool,
    forwarding: &Forwarding<'_>,
) -> HeaderMap {
    if authority.is_none() && !upgrade {
        let templated = TEMPLATES.with(|t| templated(request, forwarding, &mut t.borrow_mut()));
        if let Some(headers) = templated {
            return headers;
        }
    }
    general(request, authority, upgrade, forwarding)
}

thread_local! {
    static TEMPLATES: RefCell<Templates> = RefCell::new(Templates::default());
}

/// The headers [`upstream_headers`] gives the app, written to `out` as the lines of a
/// request head (`name: value` and CRLF each), but `Content-Length` and `Expect`: the
/// client writes the framing of the body it sends.
pub(super) fn write_upstream_lines(
    out: &mut Vec<u8>,
    request: &HeaderMap,
    authority: Option<&Authority>,
    upgrade: bool,
    forwarding: &Forwarding<'_>,
) {
    if authority.is_none() && !upgrade {
        let written =
            TEMPLATES.with(|t| templated_lines(out, request, forwarding, &mut t.borrow_mut()));
        if written {
            return;
        }
    }
    write_lines(out, &general(request, authority, upgrade, forwarding));
}

/// Writes `headers` as the lines of a request head, but `Content-Length` and `Expect`.
pub(super) fn write_lines(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        if !is_framing(name) {
            line(out, name, value.as_bytes());
        }
    }
}

/// `Content-Length`, `Transfer-Encoding` or `Expect`: what the request's client writes
/// itself from the body it sends (hyper's server answered `Expect: 100-continue`).
pub(super) fn is_framing(name: &HeaderName) -> bool {
    *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING || *name == header::EXPECT
}

#[inline(always)]
fn line(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Any request: a copy of its headers, stripped, with slogate's set and removed.
fn general(
    request: &HeaderMap,
    authority: Option<&Authority>,
    upgrade: bool,
    forwarding: &Forwarding<'_>,
) -> HeaderMap {
    let mut headers = request.clone();
    // Room for what slogate sets (at most a dozen) and a header hyper adds: one growth.
    headers.reserve(13);
    let upgrade_to = upgrade
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(&mut headers, Underscores::Drop);
    if let Some(proto) = upgrade_to {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, proto);
    }
    // An absolute-form target's host replaces Host (RFC 9112 3.2.2, as nginx does); HTTP/2
    // carries the host in :authority.
    if let Some(a) = authority {
        if let Ok(v) = HeaderValue::from_str(a.as_str()) {
            headers.insert(header::HOST, v);
        }
    }
    set_by_slogate(&mut headers, forwarding);
    headers
}

/// The forwarding headers, the generated request id and Rack::Sendfile's two.
fn set_by_slogate(headers: &mut HeaderMap, forwarding: &Forwarding<'_>) {
    forwarded::set_upstream_headers(headers, &forwarding.arrival);
    if let Some(id) = forwarding.generated_id {
        headers.insert(X_REQUEST_ID.clone(), id.clone());
    }
    match forwarding.accel_mapping {
        Some(mapping) => {
            // Rack::Sendfile reads both (newer Racks only the mapping).
            headers.insert(
                X_SENDFILE_TYPE.clone(),
                HeaderValue::from_static("X-Accel-Redirect"),
            );
            if let Ok(v) = HeaderValue::from_str(mapping) {
                headers.insert(X_ACCEL_MAPPING.clone(), v);
            }
        }
        None => {
            forwarded::remove(headers, &X_ACCEL_MAPPING);
            forwarded::remove(headers, &X_SENDFILE_TYPE);
        }
    }
}

/// How many headers a templated copy holds before its index table grows: the template's
/// own, the client's (browsers send 10 to 20) and the few hyper adds.
const TEMPLATE_ROOM: usize = 48;

/// The headers slogate sets on requests from untrusted addresses to one listener with one
/// `Host`: `Host` first (as the client sent it), then the forwarding headers and Rack's,
/// built by [`set_by_slogate`] itself. A copy takes the request's time (`X-Request-Start`)
/// and the client's address (`X-Forwarded-For`, `X-Real-IP`: an untrusted peer's own)
/// where the template holds those of the request it was built for; everything else is the
/// same for every client of the site, so clients from many addresses share one template.
struct Template {
    port: Option<HeaderValue>,
    scheme: &'static str,
    host: Option<HeaderValue>,
    accel_mapping: Option<Box<str>>,
    headers: HeaderMap,
    /// Where `X-Request-Start`, `X-Forwarded-For` and `X-Real-IP` are among the headers.
    start_at: usize,
    peer_at: [usize; 2],
    /// The headers as the lines of a request head, without the three values patched.
    lines: Vec<u8>,
    /// Where those values go in `lines`, in order: `true` for the address, `false` the time.
    holes: [(usize, bool); 3],
}

impl Template {
    /// The template for requests like `f` to `host`; `None` if the headers it would patch
    /// are not all there (they are for an untrusted peer with an address, the only requests
    /// [`templated`] lets through).
    fn build(host: Option<&HeaderValue>, f: &Forwarding<'_>) -> Option<Template> {
        // A copy keeps the index table's size (its entries are copied to a vector of their
        // own length): sized for a request's headers, so that no copy rebuilds it.
        let mut headers = HeaderMap::with_capacity(TEMPLATE_ROOM);
        // The client's Host is a slice of its connection's read buffer, which it would keep
        // alive (and shared, so that hyper allocates a new one for each read) as long as the
        // template lives: the template holds a copy of its own.
        let host =
            host.map(|h| HeaderValue::from_bytes(h.as_bytes()).unwrap_or_else(|_| h.clone()));
        if let Some(h) = &host {
            headers.insert(header::HOST, h.clone());
        }
        let without_id = Forwarding {
            arrival: f.arrival,
            generated_id: None,
            accel_mapping: f.accel_mapping,
        };
        set_by_slogate(&mut headers, &without_id);
        let at = |name: &HeaderName| headers.keys().position(|n| n == name);
        let start_at = at(&forwarded::X_REQUEST_START)?;
        let peer_at = [at(&forwarded::X_FORWARDED_FOR)?, at(&forwarded::X_REAL_IP)?];
        let mut lines = Vec::new();
        let mut holes = [(0, false); 3];
        let mut hole = 0;
        for (i, (name, value)) in headers.iter().enumerate() {
            let patched = i == start_at || peer_at.contains(&i);
            line(
                &mut lines,
                name,
                if patched { b"" } else { value.as_bytes() },
            );
            if patched {
                holes[hole] = (lines.len() - 2, i != start_at);
                hole += 1;
            }
        }
        Some(Template {
            port: f.arrival.port_value.cloned(),
            scheme: f.arrival.scheme,
            host,
            accel_mapping: f.accel_mapping.map(Box::from),
            headers,
            start_at,
            peer_at,
            lines,
            holes,
        })
    }

    fn fits(&self, host: Option<&HeaderValue>, f: &Forwarding<'_>) -> bool {
        self.host.as_ref() == host
            && self.scheme == f.arrival.scheme
            && self.port.as_ref() == f.arrival.port_value
            && self.accel_mapping.as_deref() == f.accel_mapping
    }

    /// A copy with room for `more` headers, a generated request id and one header hyper may
    /// add, with this request's `X-Request-Start` and its client's address (`peer`).
    fn copy(&self, more: usize, now: SystemTime, peer: &HeaderValue) -> HeaderMap {
        let mut headers = self.headers.clone();
        // One growth now rather than one per doubling as the client's headers go in, and
        // none when hyper's client looks up `Transfer-Encoding` with `entry` (which grows a
        // full map: reallocates and rehashes it, ~1.7k instructions) or adds a length.
        headers.reserve(more + 2);
        let start = forwarded::request_start_value(now);
        for (i, (_, value)) in headers.iter_mut().enumerate() {
            if i == self.start_at {
                *value = start.clone();
            } else if self.peer_at.contains(&i) {
                *value = peer.clone();
            }
        }
        headers
    }

    /// Writes the template's lines with this request's `X-Request-Start` and its client's
    /// address (`peer`).
    fn write(&self, out: &mut Vec<u8>, now: SystemTime, peer: &HeaderValue) {
        let start = forwarded::request_start_value(now);
        let mut from = 0;
        for &(at, is_peer) in &self.holes {
            out.extend_from_slice(&self.lines[from..at]);
            out.extend_from_slice(if is_peer {
                peer.as_bytes()
            } else {
                start.as_bytes()
            });
            from = at;
        }
        out.extend_from_slice(&self.lines[from..]);
    }
}

/// How many sites (listener, scheme, `Host`) a thread keeps templates for: a thread serves
/// every listener, and an app may answer to a few names (`www.` and `api.`, http and https).
const SITES: usize = 4;

/// A thread's templates, the oldest replaced when a request fits none.
#[derive(Default)]
struct Templates {
    slots: [Option<Template>; SITES],
    next: usize,
}

impl Templates {
    /// Which slot holds the template fitting a request to `host`.
    fn find(&self, host: Option<&HeaderValue>, f: &Forwarding<'_>) -> Option<usize> {
        self.slots
            .iter()
            .position(|t| t.as_ref().is_some_and(|t| t.fits(host, f)))
    }

    /// The template fitting a request to `host`, built (in place of the oldest) if none does.
    fn fitting(&mut self, host: Option<&HeaderValue>, f: &Forwarding<'_>) -> Option<&Template> {
        let i = match self.find(host, f) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (i + 1) % SITES;
                self.slots[i] = Template::build(host, f);
                i
            }
        };
        self.slots[i].as_ref()
    }

    #[cfg(test)]
    fn fit(&self, host: Option<&HeaderValue>, f: &Forwarding<'_>) -> bool {
        self.find(host, f).is_some()
    }
}

/// The template fitting a request (built, or rebuilt, when the last one does not) and the
/// client's address it patches in, or `None` for a request the general path must take.
fn template_for<'c, 'f>(
    request: &HeaderMap,
    forwarding: &Forwarding<'f>,
    cache: &'c mut Templates,
) -> Option<(&'c Template, &'f HeaderValue)> {
    let arrival = &forwarding.arrival;
    // A trusted peer's forwarding headers are kept or extended (they depend on the
    // request); a Unix socket has no address to forward.
    let peer = arrival.peer_value.filter(|_| !arrival.client.trusted)?;
    let mut hosts = request.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return None;
    }
    Some((cache.fitting(host, forwarding)?, peer))
}

/// The request's headers from the template fitting it, or `None` for a request the general
/// path must take.
fn templated(
    request: &HeaderMap,
    forwarding: &Forwarding<'_>,
    cache: &mut Templates,
) -> Option<HeaderMap> {
    let (template, peer) = template_for(request, forwarding, cache)?;
    let mut headers = template.copy(request.len(), forwarding.arrival.now, peer);
    let generated = forwarding.generated_id.is_some();
    for (name, value) in request {
        if *name == header::CONNECTION {
            return None; // it may name more headers to drop
        }
        if !set_by_template(name, generated) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(id) = forwarding.generated_id {
        headers.append(X_REQUEST_ID.clone(), id.clone());
    }
    Some(headers)
}

/// [`templated`]'s headers written as lines (as [`write_upstream_lines`] says), or
/// `false` with nothing written for a request the general path must take.
fn templated_lines(
    out: &mut Vec<u8>,
    request: &HeaderMap,
    forwarding: &Forwarding<'_>,
    cache: &mut Templates,
) -> bool {
    let Some((template, peer)) = template_for(request, forwarding, cache) else {
        return false;
    };
    let start = out.len();
    template.write(out, forwarding.arrival.now, peer);
    let generated = forwarding.generated_id.is_some();
    for (name, value) in request {
        if *name == header::CONNECTION {
            out.truncate(start);
            return false; // it may name more headers to drop
        }
        if !set_by_template(name, generated) && !is_framing(name) {
            line(out, name, value.as_bytes());
        }
    }
    if let Some(id) = forwarding.generated_id {
        line(out, &X_REQUEST_ID, id.as_bytes());
    }
    true
}

/// Whether a request's header is left out of a templated copy: `Host` (the template's first),
/// hop-by-hop names, those [`set_by_slogate`] sets or removes, and names with `_`. Matches on
/// the name's text ([`hop_by_hop_index`]'s for the hop-by-hop ones): most request headers are
/// none of these, and a list of names compared one by one cost more than the rest of the
/// copy (`the_names_a_template_leaves_out` holds it to the lists).
fn set_by_template(name: &HeaderName, generated_id: bool) -> bool {
    let text = name.as_str();
    match text {
        "host" | "x-forwarded-for" | "x-real-ip" | "x-forwarded-proto" | "x-forwarded-host"
        | "x-forwarded-port" | "x-request-start" | "proxy" | "x-accel-mapping"
        | "x-sendfile-type" => true,
        "x-request-id" => generated_id,
        _ => hop_by_hop_index(text).is_some() || has_underscore(text),
    }
}

/// A header name with `_`: nginx drops them (`underscores_in_headers off`), since Rack reads
/// `X_Forwarded_For` as `X-Forwarded-For`, which slogate sets itself.
#[inline(always)]
fn has_underscore(name: &str) -> bool {
    name.as_bytes().contains(&b'_')
}

/// What [`strip_hop_by_hop`] does with header names that have an underscore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Underscores {
    /// Drop them (a request: nginx's `underscores_in_headers off`).
    Drop,
    /// Pass them (an answer, as nginx does).
    Keep,
}

/// Removes hop-by-hop headers, those the `Connection` header names, and (with
/// [`Underscores::Drop`]) names with `_`. One pass over the names finds what is there; a
/// message without any of them (most requests) is left untouched without a lookup, and
/// `Connection: keep-alive` or `close` (most answers) costs no allocation.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap, underscores: Underscores) {
    // A bit per HOP_BY_HOP name present.
    let mut listed = 0u8;
    let mut underscored = false;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name.as_str()) {
            listed |= 1 << i;
        }
        underscored |= underscores == Underscores::Drop && has_underscore(name.as_str());
    }
    if listed == 0 && !underscored {
        return;
    }
    // HOP_BY_HOP[0] is Connection: the fields it names go too (keep-alive is in the list;
    // a field named `close` is removed by a lookup).
    if listed & 1 != 0 {
        let mut close = false;
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| {
                let c = t.eq_ignore_ascii_case("close");
                close |= c;
                !c && !t.eq_ignore_ascii_case("keep-alive")
            })
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        if close {
            headers.remove("close");
        }
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if listed & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if underscored {
        let names: Vec<HeaderName> = headers
            .keys()
            .filter(|n| has_underscore(n.as_str()))
            .cloned()
            .collect();
        for name in names {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("connection", "keep-alive, X-Secret , close"),
            ("connection", "Upgrade"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("close", "odd but named"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x_forwarded_for", "spoofed"),
            ("accept", "*/*"),
            ("x-request-id", "abc"),
        ] {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static(v),
            );
        }
        strip_hop_by_hop(&mut h, Underscores::Drop);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, vec!["accept", "x-request-id"]);

        // Only `Connection: keep-alive`: the rest stays.
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Keep-Alive"));
        h.insert(header::HOST, HeaderValue::from_static("x"));
        strip_hop_by_hop(&mut h, Underscores::Drop);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["host"]
        );

        // A request with an underscored name and nothing hop-by-hop loses that name.
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("x"));
        h.insert("x_real_ip", HeaderValue::from_static("6.6.6.6"));
        strip_hop_by_hop(&mut h, Underscores::Drop);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["host"]
        );

        // An answer keeps its underscored names, as nginx passes them, and loses the rest.
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x_app_version", HeaderValue::from_static("42"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        strip_hop_by_hop(&mut h, Underscores::Keep);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x_app_version"]
        );
    }

    #[test]
    fn hop_by_hop_names_are_found_where_the_list_has_them() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_str()), Some(i as u8), "{name}");
        }
        for other in [
            "content-type",
            "x-connection",
            "tes",
            "upgrade-insecure-requests",
        ] {
            assert_eq!(hop_by_hop_index(other), None);
        }
    }

    #[test]
    fn the_names_a_template_leaves_out() {
        let listed = HOP_BY_HOP.iter().chain(&forwarded::SET_HERE).chain([
            &header::HOST,
            &X_ACCEL_MAPPING,
            &X_SENDFILE_TYPE,
        ]);
        for name in listed {
            assert!(set_by_template(name, false), "{name}");
        }
        assert!(set_by_template(&X_REQUEST_ID, true));
        assert!(!set_by_template(&X_REQUEST_ID, false));
        assert!(set_by_template(
            &HeaderName::from_static("x_forwarded_for"),
            false
        ));
        for kept in [
            "accept",
            "cookie",
            "x-csrf-token",
            "content-length",
            "hostname",
        ] {
            assert!(
                !set_by_template(&HeaderName::from_static(kept), true),
                "{kept}"
            );
        }
    }

    /// A client at 203.0.113.9, not a trusted proxy: its forwarding headers are slogate's.
    fn untrusted_client() -> forwarded::Client {
        forwarded::Client {
            peer: Some("203.0.113.9".parse().unwrap()),
            trusted: false,
            ip: Some("203.0.113.9".parse().unwrap()),
        }
    }

    /// hyper's client looks up `Transfer-Encoding` with `HeaderMap::entry` before it writes
    /// the head, which grows (reallocates and rehashes) a full map: a templated copy leaves
    /// room for it and for the `Content-Length` hyper may add, for any number of headers (the
    /// general path's copy too).
    #[test]
    fn a_templated_copy_has_room_for_what_hyper_adds() {
        let peer = HeaderValue::from_static("203.0.113.9");
        let port = HeaderValue::from(80u16);
        let id = HeaderValue::from_static("generated-1");
        let client = untrusted_client();
        let mut cache = Templates::default();
        for n in 0..40 {
            for generated_id in [None, Some(&id)] {
                let mut request = HeaderMap::new();
                request.insert(header::HOST, HeaderValue::from_static("example.com"));
                for i in 0..n {
                    let name = HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap();
                    request.insert(name, HeaderValue::from_static("v"));
                }
                let forwarding = Forwarding {
                    arrival: Arrival {
                        client: &client,
                        scheme: "http",
                        port_value: Some(&port),
                        peer_value: Some(&peer),
                        now: std::time::UNIX_EPOCH,
                    },
                    generated_id,
                    accel_mapping: None,
                };
                let templated = templated(&request, &forwarding, &mut cache).unwrap();
                let general = general(&request, None, false, &forwarding);
                for (path, mut got) in [("templated", templated), ("general", general)] {
                    let room = got.capacity();
                    let _ = got.entry(header::TRANSFER_ENCODING);
                    got.insert(header::CONTENT_LENGTH, HeaderValue::from(0u16));
                    assert_eq!(
                        got.capacity(),
                        room,
                        "{path}: {n} headers, id {generated_id:?}"
                    );
                }
            }
        }
    }

    /// Requests to a few sites by turns (two names, two listeners) find their templates kept.
    #[test]
    fn sites_served_by_turns_keep_their_templates() {
        let peer = HeaderValue::from_static("203.0.113.9");
        let ports = [HeaderValue::from(80u16), HeaderValue::from(443u16)];
        let client = untrusted_client();
        let mut cache = Templates::default();
        for round in 0..40 {
            let (name, listener) = (
                ["www.example.com", "api.example.com"][round % 2],
                round / 2 % 2,
            );
            let mut request = HeaderMap::new();
            request.insert(header::HOST, HeaderValue::from_static(name));
            let forwarding = Forwarding {
                arrival: Arrival {
                    client: &client,
                    scheme: ["http", "https"][listener],
                    port_value: Some(&ports[listener]),
                    peer_value: Some(&peer),
                    now: std::time::UNIX_EPOCH,
                },
                generated_id: None,
                accel_mapping: None,
            };
            let kept = cache.fit(request.get(header::HOST), &forwarding);
            assert_eq!(kept, round >= 4, "round {round}");
            let got = templated(&request, &forwarding, &mut cache).unwrap();
            assert_eq!(got, general(&request, None, false, &forwarding));
        }
    }

    /// Header lines parsed back as the app parses them.
    fn parse_lines(lines: &[u8]) -> HeaderMap {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        head.extend_from_slice(lines);
        head.extend_from_slice(b"\r\n");
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut slots);
        assert!(
            req.parse(&head).unwrap().is_complete(),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let mut map = HeaderMap::new();
        for h in req.headers.iter() {
            map.append(
                HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        map
    }

    /// The map as the app reads it: each name with its values in order.
    fn as_app_reads(h: &HeaderMap) -> Vec<(String, Vec<Vec<u8>>)> {
        let mut v: Vec<_> = h
            .keys()
            .map(|n| {
                let values = h.get_all(n).iter().map(|v| v.as_bytes().to_vec()).collect();
                (n.as_str().to_string(), values)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_template_gives_every_request_what_the_general_path_gives_it() {
        let pool: &[(&str, &[&str])] = &[
            (
                "host",
                &["example.com", "Shop.Example.COM:8443", "[::1]:80", ""],
            ),
            ("accept", &["*/*", "application/json"]),
            ("cookie", &["a=1", "b=2"]),
            ("content-type", &["application/json"]),
            ("x-forwarded-for", &["1.1.1.1", "1.1.1.1, 2.2.2.2"]),
            ("x-forwarded-proto", &["http"]),
            ("x-forwarded-host", &["evil.example"]),
            ("x-forwarded-port", &["1"]),
            ("x-real-ip", &["6.6.6.6"]),
            ("x-request-start", &["t=1"]),
            ("x-request-id", &["abc", "not acceptable"]),
            ("x-accel-mapping", &["/=/etc/"]),
            ("x-sendfile-type", &["X-Sendfile"]),
            ("proxy", &["evil:1"]),
            ("x_forwarded_for", &["9.9.9.9"]),
            ("keep-alive", &["timeout=5"]),
            ("te", &["trailers"]),
            ("trailer", &["x-t"]),
            ("transfer-encoding", &["chunked"]),
            ("upgrade", &["h2c"]),
            ("connection", &["keep-alive", "close, x-secret"]),
            ("x-secret", &["1"]),
            ("x-csrf-token", &["t"]),
            ("content-length", &["7"]),
            ("expect", &["100-continue"]),
        ];
        let peers = [
            HeaderValue::from_static("203.0.113.9"),
            HeaderValue::from_static("198.51.100.7"),
        ];
        let ports = [HeaderValue::from(443u16), HeaderValue::from(8080u16)];
        let ids = [HeaderValue::from_static("generated-1")];
        let untrusted = untrusted_client();
        let trusted = forwarded::Client {
            peer: Some("10.0.0.2".parse().unwrap()),
            trusted: true,
            ip: Some("1.1.1.1".parse().unwrap()),
        };
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut cache = Templates::default();
        // The lines slogate's own client writes, from a cache of their own.
        let mut lines_cache = Templates::default();
        let (mut reused, mut rebuilt) = (0, 0);
        // Templates reused for a client other than the last one's (the address is patched).
        let (mut other_client, mut last_peer) = (0, None);
        // What stays the same over a site's requests, drawn again now and then; the client's
        // address changes from one request to the next (clients interleave on a thread).
        let mut site = (0, 0, 0, 0, 0);
        for round in 0..4000 {
            if round % 16 == 0 || next(8) == 0 {
                site = (next(8), next(2), next(3), next(2), next(2));
            }
            let (trust, scheme, port, accel, host) = site;
            let peer = next(3);
            let mut request = HeaderMap::new();
            if host == 1 {
                request.append(
                    header::HOST,
                    HeaderValue::from_static("Shop.Example.COM:8443"),
                );
            }
            for _ in 0..next(9) {
                let (name, values) = pool[next(pool.len())];
                let value = HeaderValue::from_static(values[next(values.len())]);
                request.append(HeaderName::from_static(name), value);
            }
            let forwarding = Forwarding {
                arrival: Arrival {
                    client: if trust == 0 { &trusted } else { &untrusted },
                    scheme: ["http", "https"][scheme],
                    port_value: [None, Some(&ports[0]), Some(&ports[1])][port],
                    peer_value: [None, Some(&peers[0]), Some(&peers[1])][peer],
                    now: std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(1_700_000_000_000 + round),
                },
                generated_id: [None, Some(&ids[0])][next(2)],
                accel_mapping: [None, Some("/srv/files/=/protected/")][accel],
            };
            let fitted = |cache: &Templates| cache.fit(request.get(header::HOST), &forwarding);
            let fitted_before = fitted(&cache);
            let expected = general(&request, None, false, &forwarding);
            let mut out = Vec::new();
            let by_lines = templated_lines(&mut out, &request, &forwarding, &mut lines_cache);
            if !by_lines {
                assert!(
                    out.is_empty(),
                    "round {round}: nothing written for the general path"
                );
                write_lines(&mut out, &expected);
            }
            let mut framed = expected.clone();
            framed.remove(header::CONTENT_LENGTH);
            framed.remove(header::EXPECT);
            assert_eq!(
                as_app_reads(&parse_lines(&out)),
                as_app_reads(&framed),
                "round {round}: the lines of {request:?}"
            );
            match templated(&request, &forwarding, &mut cache) {
                Some(got) => {
                    assert!(by_lines, "round {round}: lines and map take the same path");
                    let mut map_lines = Vec::new();
                    write_lines(&mut map_lines, &got);
                    assert_eq!(
                        out, map_lines,
                        "round {round}: the map's lines, in its order"
                    );
                    assert!(fitted(&cache));
                    if fitted_before {
                        reused += 1;
                        if last_peer != Some(peer) {
                            other_client += 1;
                        }
                    } else {
                        rebuilt += 1;
                    }
                    last_peer = Some(peer);
                    assert_eq!(
                        as_app_reads(&got),
                        as_app_reads(&expected),
                        "round {round}: {request:?}"
                    );
                    if let Some(host) = request.get(header::HOST) {
                        assert_eq!(got.iter().next(), Some((&header::HOST, host)), "Host first");
                    }
                }
                None => assert!(
                    forwarding.arrival.client.trusted
                        || forwarding.arrival.peer_value.is_none()
                        || request.contains_key(header::CONNECTION)
                        || request.get_all(header::HOST).iter().count() > 1,
                    "round {round}: the general path taken for {request:?}"
                ),
            }
        }
        // Both ways through the cache were taken, often.
        assert!(reused > 1000 && rebuilt > 100, "{reused} {rebuilt}");
        assert!(other_client > 100, "{other_client}");
    }
}

//! Forwarding headers, set as nginx sets them for Rails, and the client address.
//!
//! A peer inside `server.trusted_proxies` (a load balancer) is believed: its `X-Forwarded-*`
//! headers are kept and the client is found by walking `X-Forwarded-For` from the right past
//! trusted addresses (nginx `real_ip_recursive on`). Anyone else's forwarding headers are
//! replaced, so a client cannot choose the IP Rails sees.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use slogate_config::Cidr;

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The address the connection came from (`None` over a Unix socket).
    pub peer: Option<IpAddr>,
    /// Whether the peer is a trusted proxy.
    pub trusted: bool,
    /// The client's address: the peer, or from `X-Forwarded-For` when the peer is trusted.
    pub ip: Option<IpAddr>,
}

fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// Finds the client of a request from its peer and `X-Forwarded-For`.
pub fn client(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[Cidr]) -> Client {
    let peer_trusted = peer.is_some_and(|p| is_trusted(p, trusted));
    let mut ip = peer;
    if peer_trusted {
        if let Some(xff) = forwarded_for {
            for hop in xff.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
                match hop.parse::<IpAddr>() {
                    Ok(addr) => {
                        ip = Some(addr);
                        if !is_trusted(addr, trusted) {
                            break;
                        }
                    }
                    // A malformed hop ends the walk; the last good address stands.
                    Err(_) => break,
                }
            }
        }
    }
    Client {
        peer,
        trusted: peer_trusted,
        ip,
    }
}

/// What the request looked like on arrival, for the headers below.
#[derive(Clone, Copy)]
pub struct Arrival<'a> {
    /// The client.
    pub client: &'a Client,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The port the request arrived on, as a header value.
    pub port_value: Option<&'a HeaderValue>,
    /// The peer's address as a header value (formatted once per connection).
    pub peer_value: Option<&'a HeaderValue>,
    /// When the request leaves for the app (`X-Request-Start`).
    pub now: SystemTime,
}

/// The host of a `Host` value without its port, lowercased: borrowed unless it had
/// uppercase letters (this runs for every request).
fn host_without_port(host: &str) -> Cow<'_, str> {
    let host = host.trim();
    let bare = if host.starts_with('[') {
        host.split_once(']')
            .map_or(host, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    if bare.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(bare.to_ascii_lowercase())
    } else {
        Cow::Borrowed(bare)
    }
}

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub(crate) const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
const PROXY: HeaderName = HeaderName::from_static("proxy");

/// Every header [`set_upstream_headers`] sets or removes: from an untrusted peer, whatever
/// the request had under these names never reaches the app (the engine's templated headers
/// are tested against this list).
#[cfg(test)]
pub(crate) static SET_HERE: [HeaderName; 7] = [
    X_FORWARDED_FOR,
    X_REAL_IP,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    X_REQUEST_START,
    PROXY,
];

/// Sets `X-Real-IP`, `X-Forwarded-For`, `-Proto`, `-Host`, `-Port` and `X-Request-Start`,
/// and removes `Proxy` (httpoxy). `Host` is passed as the client sent it (nginx `$http_host`).
///
/// This runs for every request, so it allocates only for values it must format (the
/// forwarded chain, the time), and touches headers the request does not have only to add
/// them.
pub fn set_upstream_headers(req: &mut HeaderMap, arrival: &Arrival<'_>) {
    let client = arrival.client;
    let keep = |req: &HeaderMap, name: &HeaderName| client.trusted && req.contains_key(name);
    let peer = arrival.peer_value.cloned();
    let prior = if client.trusted {
        req.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok())
    } else {
        None
    };
    let xff = match (prior, &peer) {
        (Some(prior), Some(p)) => {
            HeaderValue::from_str(&format!("{prior}, {}", p.to_str().unwrap_or(""))).ok()
        }
        (None, Some(p)) => Some(p.clone()),
        (Some(_), None) => None, // keep the trusted chain as it is
        (None, None) => None,
    };
    match xff {
        Some(v) => {
            req.insert(X_FORWARDED_FOR, v);
        }
        None if !keep(req, &X_FORWARDED_FOR) => remove(req, &X_FORWARDED_FOR),
        None => {}
    }
    let real_ip = if client.ip == client.peer {
        peer
    } else {
        client
            .ip
            .and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok())
    };
    match real_ip {
        Some(v) => {
            req.insert(X_REAL_IP, v);
        }
        None => remove(req, &X_REAL_IP),
    }
    if !keep(req, &X_FORWARDED_PROTO) {
        req.insert(X_FORWARDED_PROTO, HeaderValue::from_static(arrival.scheme));
    }
    if !keep(req, &X_FORWARDED_HOST) {
        match req.get(http::header::HOST).cloned() {
            Some(h) => {
                let bare = h.to_str().map(host_without_port).unwrap_or_default();
                let value = if h.as_bytes() == bare.as_bytes() {
                    h
                } else {
                    HeaderValue::from_str(&bare).unwrap_or(h)
                };
                req.insert(X_FORWARDED_HOST, value);
            }
            None => remove(req, &X_FORWARDED_HOST),
        }
    }
    if !keep(req, &X_FORWARDED_PORT) {
        match arrival.port_value {
            Some(p) => {
                req.insert(X_FORWARDED_PORT, p.clone());
            }
            None => remove(req, &X_FORWARDED_PORT),
        }
    }
    remove(req, &PROXY);
    req.insert(X_REQUEST_START, request_start_value(arrival.now));
}

/// Removes a header only if present (a removal hashes the name either way; a lookup is
/// cheaper than a removal that finds nothing only by a little, but leaves the map alone).
pub(crate) fn remove(req: &mut HeaderMap, name: &HeaderName) {
    if req.contains_key(name) {
        req.remove(name);
    }
}

/// [`request_start`] as a header value, formatted once per millisecond and thread (tens of
/// requests share one at full load).
pub(crate) fn request_start_value(now: SystemTime) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<(u128, HeaderValue)> =
            const { std::cell::RefCell::new((0, HeaderValue::from_static("t=0.000"))) };
    }
    let ms = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != ms {
            let v = HeaderValue::from_bytes(&request_start(now))
                .unwrap_or(HeaderValue::from_static("t=0.000"));
            *last = (ms, v);
        }
        last.1.clone()
    })
}

/// nginx's `t=${msec}`: seconds since the epoch with milliseconds, as APMs read it for
/// queue time. Written with `itoa` into a stack buffer: `format!` cost ~1,700 instructions
/// (once per millisecond and thread, and under a profiler's slowdown on most requests).
pub fn request_start(now: SystemTime) -> arrayvec::ArrayVec<u8, 32> {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut secs = itoa::Buffer::new();
    let ms = d.subsec_millis();
    let mut out = arrayvec::ArrayVec::new();
    out.extend(*b"t=");
    // At most 20 digits: 2 + 20 + 4 fits in 32.
    out.extend(secs.format(d.as_secs()).bytes());
    out.extend([
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| Cidr::parse(c).unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let c = client(
            Some("203.0.113.9".parse().unwrap()),
            Some("1.2.3.4"),
            &cidrs(&["10.0.0.0/8"]),
        );
        assert_eq!(c.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(!c.trusted);
    }

    #[test]
    fn trusted_peers_are_walked_past() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let c = client(
            Some("10.0.0.2".parse().unwrap()),
            Some("1.2.3.4, 198.51.100.7, 10.0.0.5"),
            &trusted,
        );
        assert_eq!(c.ip, Some("198.51.100.7".parse().unwrap()));
        let c = client(
            Some("10.0.0.2".parse().unwrap()),
            Some("10.1.1.1"),
            &trusted,
        );
        assert_eq!(
            c.ip,
            Some("10.1.1.1".parse().unwrap()),
            "all trusted: the leftmost"
        );
        let c = client(
            Some("10.0.0.2".parse().unwrap()),
            Some("garbage, 198.51.100.7"),
            &trusted,
        );
        assert_eq!(c.ip, Some("198.51.100.7".parse().unwrap()));
        let c = client(Some("10.0.0.2".parse().unwrap()), None, &trusted);
        assert_eq!(c.ip, Some("10.0.0.2".parse().unwrap()));
    }

    fn headers(trusted: bool, incoming: &[(&str, &str)]) -> HeaderMap {
        let mut req = HeaderMap::new();
        req.insert("host", HeaderValue::from_static("Example.COM:8080"));
        for (k, v) in incoming {
            req.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let peer: IpAddr = if trusted { "10.0.0.2" } else { "203.0.113.9" }
            .parse()
            .unwrap();
        let c = client(
            Some(peer),
            incoming
                .iter()
                .find(|(k, _)| *k == "x-forwarded-for")
                .map(|(_, v)| *v),
            &cidrs(&["10.0.0.0/8"]),
        );
        let peer_value = HeaderValue::from_str(&peer.to_string()).unwrap();
        set_upstream_headers(
            &mut req,
            &Arrival {
                client: &c,
                scheme: "https",
                port_value: Some(&HeaderValue::from(443u16)),
                peer_value: Some(&peer_value),
                now: SystemTime::now(),
            },
        );
        req
    }

    fn get<'a>(req: &'a HeaderMap, name: &str) -> Option<&'a str> {
        req.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn sets_headers_like_nginx() {
        let spoof = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-proto", "http"),
            ("proxy", "evil:1"),
        ];
        let req = headers(false, &spoof);
        assert_eq!(get(&req, "x-forwarded-for"), Some("203.0.113.9"));
        assert_eq!(get(&req, "x-real-ip"), Some("203.0.113.9"));
        assert_eq!(get(&req, "x-forwarded-proto"), Some("https"));
        assert_eq!(get(&req, "x-forwarded-host"), Some("example.com"));
        assert_eq!(get(&req, "x-forwarded-port"), Some("443"));
        assert_eq!(get(&req, "host"), Some("Example.COM:8080"));
        assert_eq!(get(&req, "proxy"), None);
        assert!(get(&req, "x-request-start").unwrap().starts_with("t="));
        let req = headers(
            true,
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "http"),
            ],
        );
        assert_eq!(get(&req, "x-forwarded-for"), Some("198.51.100.7, 10.0.0.2"));
        assert_eq!(get(&req, "x-real-ip"), Some("198.51.100.7"));
        assert_eq!(get(&req, "x-forwarded-proto"), Some("http"));
    }

    #[test]
    fn request_start_has_milliseconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_042);
        assert_eq!(&request_start(t)[..], b"t=1700000000.042");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_900);
        assert_eq!(&request_start(t)[..], b"t=1700000000.900");
        assert_eq!(&request_start(UNIX_EPOCH)[..], b"t=0.000");
        let v = request_start_value(t);
        assert_eq!(v, "t=1700000000.900");
    }

    #[test]
    fn the_forwarded_host_is_the_host_without_its_port_in_lowercase() {
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(
            host_without_port(" Shop.Example.COM:8443 "),
            "shop.example.com"
        );
        assert_eq!(host_without_port("a.b:x"), "a.b:x");
        // Already bare and lowercase: borrowed, nothing allocated per request.
        assert!(matches!(host_without_port("a.b"), Cow::Borrowed("a.b")));
        assert!(matches!(host_without_port("a.b:80"), Cow::Borrowed("a.b")));
    }
}

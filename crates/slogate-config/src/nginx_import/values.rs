//! nginx's value syntaxes (times, sizes, listen addresses) turned into slogate's.

/// An nginx time (`60`, `60s`, `1m`, `500ms`, `1h30m`, `1d`) in milliseconds.
pub fn time_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult: u64 = match &rest[..unit_len] {
            "" | "s" => 1000,
            "ms" => 1,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "M" => 30 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(total)
}

/// Milliseconds as a slogate duration (`60s`, `500ms`).
pub fn duration(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// An nginx size (`1m`, `512k`, `4G`, `1000`) in bytes.
pub fn size_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Bytes as a slogate size (`1MiB`, `512KiB`, `1000`).
pub fn size(bytes: u64) -> String {
    crate::units::ByteSize(bytes).to_string()
}

/// An nginx `listen` address: `80`, `*:80`, `127.0.0.1:8080`, `[::]:443`, `unix:/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// host:port for slogate.
    Tcp(String),
    /// An IPv6 address (`[::]:80`).
    V6(String),
    /// `unix:/path`.
    Unix(String),
}

/// Parses a `listen` address.
pub fn listen(s: &str) -> Option<Listen> {
    if s.starts_with("unix:") {
        return Some(Listen::Unix(s.to_string()));
    }
    if s.starts_with('[') {
        let port = s.rsplit_once("]:").map_or("80", |(_, p)| p);
        port.parse::<u16>().ok()?;
        return Some(Listen::V6(s.to_string()));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Some(Listen::Tcp(format!("0.0.0.0:{port}")));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>().ok()?;
            let host = if host == "*" { "0.0.0.0" } else { host };
            Some(Listen::Tcp(format!("{host}:{port}")))
        }
        // A host alone listens on port 80.
        None => Some(Listen::Tcp(format!("{s}:80"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time_ms("60"), Some(60_000));
        assert_eq!(time_ms("60s"), Some(60_000));
        assert_eq!(time_ms("1h30m"), Some(5_400_000));
        assert_eq!(time_ms("500ms"), Some(500));
        assert_eq!(time_ms("max"), None);
        assert_eq!(duration(3_600_000), "3600s");
        assert_eq!(duration(1500), "1500ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("1m"), Some(1 << 20));
        assert_eq!(size_bytes("4G"), Some(4 << 30));
        assert_eq!(size_bytes("100"), Some(100));
        assert_eq!(size_bytes("x"), None);
        assert_eq!(size(10 << 20), "10MiB");
    }

    #[test]
    fn listens() {
        assert_eq!(listen("80"), Some(Listen::Tcp("0.0.0.0:80".into())));
        assert_eq!(listen("*:8080"), Some(Listen::Tcp("0.0.0.0:8080".into())));
        assert_eq!(
            listen("127.0.0.1"),
            Some(Listen::Tcp("127.0.0.1:80".into()))
        );
        assert_eq!(listen("[::]:443"), Some(Listen::V6("[::]:443".into())));
        assert_eq!(listen("x:y"), None);
    }
}

//! Finding Sidekiq's Redis the way Sidekiq does.

/// Sidekiq's Redis when neither the config nor the environment names one.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";

/// Where the Redis URL came from, for the startup log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    /// The URL.
    pub url: String,
    /// `config`, `$REDIS_URL`, `$<provider>` or `default`.
    pub source: String,
}

/// Finds Sidekiq's Redis as Sidekiq 6 does: the configured URL, else the
/// variable `$REDIS_PROVIDER` names, else `$REDIS_URL`, else localhost.
pub fn resolve_redis_url(
    configured: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<RedisUrl, String> {
    if let Some(url) = configured {
        return Ok(RedisUrl {
            url: url.to_string(),
            source: "config".into(),
        });
    }
    let var = match env("REDIS_PROVIDER").filter(|p| !p.is_empty()) {
        Some(p) if p.contains(':') => {
            return Err(format!(
                "REDIS_PROVIDER={p:?} must name the variable holding the Redis URL (e.g. REDISTOGO_URL), not be a URL"
            ))
        }
        Some(p) => p,
        None => "REDIS_URL".to_string(),
    };
    Ok(match env(&var).filter(|u| !u.is_empty()) {
        Some(url) => RedisUrl {
            url,
            source: format!("${var}"),
        },
        None => RedisUrl {
            url: DEFAULT_REDIS_URL.into(),
            source: "default".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_is_found_as_sidekiq_finds_it() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let none = env(&[]);
        assert_eq!(
            resolve_redis_url(None, none).unwrap().url,
            DEFAULT_REDIS_URL
        );
        let r = resolve_redis_url(None, env(&[("REDIS_URL", "redis://r:1/2")])).unwrap();
        assert_eq!(
            (r.url.as_str(), r.source.as_str()),
            ("redis://r:1/2", "$REDIS_URL")
        );
        let r = resolve_redis_url(
            None,
            env(&[
                ("REDIS_PROVIDER", "REDISTOGO_URL"),
                ("REDISTOGO_URL", "redis://p:3"),
                ("REDIS_URL", "redis://r:1"),
            ]),
        )
        .unwrap();
        assert_eq!(r.url, "redis://p:3");
        let r =
            resolve_redis_url(Some("redis://c:4"), env(&[("REDIS_URL", "redis://r:1")])).unwrap();
        assert_eq!(
            (r.url.as_str(), r.source.as_str()),
            ("redis://c:4", "config")
        );
        assert!(resolve_redis_url(None, env(&[("REDIS_PROVIDER", "redis://oops:1")])).is_err());
    }
}

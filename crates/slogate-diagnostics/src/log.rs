//! The log filter every slogate binary reads.

/// The variable holding slogate's log filter: an `EnvFilter` directive such as `debug` or
/// `slogate_jobs=debug,warn`.
pub const LOG_ENV: &str = "SLOGATE_LOG";

/// The filter directives: `$SLOGATE_LOG`, else `$RUST_LOG`, else `info`. `env` reads a
/// variable (`|k| std::env::var(k).ok()`); an empty value counts as unset.
pub fn log_directives(env: impl Fn(&str) -> Option<String>) -> String {
    [LOG_ENV, "RUST_LOG"]
        .into_iter()
        .find_map(|k| env(k).filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "info".to_string())
}

/// Logs to standard error (in colour on a terminal) at the level [`log_directives`] picks
/// from the environment; a filter that does not parse means `info`. A second call does
/// nothing.
#[cfg(feature = "log")]
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;

    let directives = log_directives(|k| std::env::var(k).ok());
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn slogate_log_then_rust_log_then_info() {
        assert_eq!(log_directives(env(&[])), "info");
        assert_eq!(log_directives(env(&[("RUST_LOG", "debug")])), "debug");
        assert_eq!(
            log_directives(env(&[("RUST_LOG", "debug"), ("SLOGATE_LOG", "warn")])),
            "warn"
        );
        assert_eq!(
            log_directives(env(&[("RUST_LOG", "debug"), ("SLOGATE_LOG", " ")])),
            "debug"
        );
    }
}

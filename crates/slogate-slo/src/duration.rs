//! Prometheus-style durations (`5m`, `1h30m`, `4w`) and latency thresholds
//! (`300ms`, `0.3s`).

use std::fmt;

use crate::decimal::Decimal;

const UNITS: [(&str, u64); 6] = [
    ("y", 365 * 86_400),
    ("w", 7 * 86_400),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
];

/// A whole number of seconds, printed the way Prometheus (and so Sloth)
/// prints durations: `4w` for 28 days, `30d` for 30 days, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(u64);

impl PromDuration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> PromDuration {
        PromDuration(secs)
    }

    /// Seconds in this duration.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Human text: whole days as `28d` (not Prometheus's `4w`), otherwise as
    /// Prometheus prints it.
    pub fn human(self) -> String {
        if self.0 % 86_400 == 0 {
            format!("{}d", self.0 / 86_400)
        } else {
            self.to_string()
        }
    }

    /// Parses `5m`, `1h30m`, `28d`, `4w`; units y w d h m s.
    pub fn parse(text: &str) -> Option<PromDuration> {
        let mut total: u64 = 0;
        let mut rest = text;
        let mut last_unit = usize::MAX;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let value: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let unit = UNITS
                .iter()
                .position(|(name, _)| rest.starts_with(name) && !rest.starts_with("ms"))?;
            // Units must come largest first, each once, as in Prometheus.
            if last_unit != usize::MAX && unit <= last_unit {
                return None;
            }
            last_unit = unit;
            rest = &rest[UNITS[unit].0.len()..];
            total = total.checked_add(value.checked_mul(UNITS[unit].1)?)?;
        }
        (total > 0).then_some(PromDuration(total))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (name, secs) in UNITS {
            // Like Prometheus: years and weeks only when they divide exactly
            // (`30d`, not `4w2d`).
            let exact_only = matches!(name, "y" | "w");
            if rest >= secs && (!exact_only || rest % secs == 0) {
                write!(f, "{}{name}", rest / secs)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

/// Parses a latency threshold into seconds: `300ms`, `0.3s`, `1s`, or a plain
/// number of seconds.
pub fn parse_threshold(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if let Some(ms) = text.strip_suffix("ms") {
        let value = Decimal::parse(ms.trim())?;
        let (num, den) = value.as_fraction()?;
        return Decimal::from_ratio(num, den.checked_mul(1000)?, 21, 21).map(|(d, _)| d);
    }
    let secs = text.strip_suffix('s').unwrap_or(text);
    Decimal::parse(secs.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus() {
        let show = |s| PromDuration::parse(s).map(|d| d.to_string());
        assert_eq!(show("28d").as_deref(), Some("4w"));
        assert_eq!(show("30d").as_deref(), Some("30d"));
        assert_eq!(show("90m").as_deref(), Some("1h30m"));
        assert_eq!(show("1h30m").as_deref(), Some("1h30m"));
        assert_eq!(show("5m").as_deref(), Some("5m"));
        assert_eq!(show("1d").as_deref(), Some("1d"));
        assert_eq!(show("3d").as_deref(), Some("3d"));
        assert_eq!(show("30m1h"), None);
        assert_eq!(show("5"), None);
        assert_eq!(show("5ms"), None);
        assert_eq!(show("0s"), None);
        assert_eq!(show(""), None);
    }

    #[test]
    fn parses_thresholds() {
        let t = |s| parse_threshold(s).map(|d| d.to_string());
        assert_eq!(t("300ms").as_deref(), Some("0.3"));
        assert_eq!(t("0.35s").as_deref(), Some("0.35"));
        assert_eq!(t("1s").as_deref(), Some("1"));
        assert_eq!(t("2.5").as_deref(), Some("2.5"));
        assert_eq!(t("5ms").as_deref(), Some("0.005"));
        assert_eq!(t("fast"), None);
    }
}

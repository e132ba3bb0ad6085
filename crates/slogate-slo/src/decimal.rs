//! Exact decimal numbers for objectives, error budgets and burn-rate factors.
//!
//! Targets are written by people as decimal text (`99.9`). Doing the maths on
//! `f64` prints `0.0009999999999999432` for the error budget; doing it on
//! scaled integers prints `0.001`.

use std::cmp::Ordering;
use std::fmt;

/// Most fractional digits kept; more is certainly a typo in an SLO target.
const MAX_SCALE: u32 = 18;

/// A non-negative decimal number `units / 10^scale`, always normalised (no
/// trailing fractional zeros), so derived equality is numeric equality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    units: u128,
    scale: u32,
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };
    /// One.
    pub const ONE: Decimal = Decimal { units: 1, scale: 0 };

    /// Builds `units / 10^scale`.
    pub fn new(units: u128, scale: u32) -> Decimal {
        Decimal { units, scale }.normalized()
    }

    /// Parses plain decimal text such as `99.9`, `0.005` or `10`; no sign,
    /// no exponent.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (int, frac) = match text.split_once('.') {
            Some((int, frac)) => (int, frac),
            None => (text, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() && frac.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || frac.len() > MAX_SCALE as usize
            || text.ends_with('.')
        {
            return None;
        }
        let digits = format!("{int}{frac}");
        let units = digits.parse::<u128>().ok()?;
        Some(Decimal::new(units, u32::try_from(frac.len()).ok()?))
    }

    /// Converts a finite, non-negative float through its shortest decimal
    /// text (`0.1` stays `0.1`).
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        Decimal::parse(&format!("{value}"))
    }

    /// `numerator / denominator`, exact when the quotient has at most
    /// `max_scale` fractional digits, otherwise rounded half-up to
    /// `round_scale` digits. The flag tells whether the result is exact.
    pub fn from_ratio(
        numerator: u128,
        denominator: u128,
        max_scale: u32,
        round_scale: u32,
    ) -> Option<(Decimal, bool)> {
        if denominator == 0 {
            return None;
        }
        for scale in 0..=max_scale {
            let scaled = numerator.checked_mul(10u128.checked_pow(scale)?)?;
            if scaled % denominator == 0 {
                return Some((Decimal::new(scaled / denominator, scale), true));
            }
        }
        let scaled = numerator.checked_mul(10u128.checked_pow(round_scale)?)?;
        let rounded = (scaled + denominator / 2) / denominator;
        Some((Decimal::new(rounded, round_scale), false))
    }

    /// `self × other`, `None` on overflow.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        Some(Decimal::new(
            self.units.checked_mul(other.units)?,
            self.scale + other.scale,
        ))
    }

    /// `self − other`, `None` when negative or on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.rescaled(scale)?;
        let b = other.rescaled(scale)?;
        Some(Decimal::new(a.checked_sub(b)?, scale))
    }

    /// Divides by 100: a percentage (`99.9`) as a ratio (`0.999`).
    pub fn percent_to_ratio(self) -> Decimal {
        Decimal::new(self.units, self.scale + 2)
    }

    /// Multiplies by 100: a ratio (`0.999`) as a percentage (`99.9`).
    pub fn ratio_to_percent(self) -> Option<Decimal> {
        self.checked_mul(Decimal::new(100, 0))
    }

    /// The numerator and denominator of this number as a fraction.
    pub fn as_fraction(self) -> Option<(u128, u128)> {
        Some((self.units, 10u128.checked_pow(self.scale)?))
    }

    /// Number of fractional digits.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// Whether the number is zero.
    pub fn is_zero(self) -> bool {
        self.units == 0
    }

    /// Nearest float (for reports; generated files use the exact text).
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    fn rescaled(self, scale: u32) -> Option<u128> {
        self.units
            .checked_mul(10u128.checked_pow(scale.checked_sub(self.scale)?)?)
    }

    fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.units % 10 == 0 {
            self.units /= 10;
            self.scale -= 1;
        }
        if self.units == 0 {
            self.scale = 0;
        }
        self
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.rescaled(scale), other.rescaled(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Overflow only happens for absurdly large numbers; compare the
            // floats instead.
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).expect("valid decimal")
    }

    #[test]
    fn parses_and_prints_clean_decimals() {
        assert_eq!(d("99.9").to_string(), "99.9");
        assert_eq!(d("0.005").to_string(), "0.005");
        assert_eq!(d("10").to_string(), "10");
        assert_eq!(d("2.50").to_string(), "2.5");
        assert_eq!(d(".5").to_string(), "0.5");
        assert!(Decimal::parse("1e3").is_none());
        assert!(Decimal::parse("-1").is_none());
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse("").is_none());
    }

    #[test]
    fn error_budget_is_exact() {
        let ratio = d("99.9").percent_to_ratio();
        assert_eq!(ratio.to_string(), "0.999");
        let budget = Decimal::ONE.checked_sub(ratio).expect("positive");
        assert_eq!(budget.to_string(), "0.001");
        assert_eq!(
            Decimal::ONE
                .checked_sub(d("99.95").percent_to_ratio())
                .map(|b| b.to_string()),
            Some("0.0005".to_string())
        );
    }

    #[test]
    fn ratios_are_exact_or_rounded() {
        assert_eq!(Decimal::from_ratio(144, 10, 6, 4), Some((d("14.4"), true)));
        assert_eq!(
            Decimal::from_ratio(28, 30, 6, 4),
            Some((d("0.9333"), false))
        );
        assert_eq!(Decimal::from_f64(0.3), Some(d("0.3")));
        assert!(d("0.3") < d("0.35"));
        assert_eq!(d("0.30"), d("0.3"));
    }
}

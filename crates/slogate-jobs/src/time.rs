//! Timestamps of Sidekiq log lines and job payloads, as Unix seconds.
//!
//! Sidekiq's JSON formatter writes `ts` with `Time#utc.iso8601(3)`
//! (`2026-11-30T10:53:37.988Z`); jobs carry `enqueued_at` as a float of Unix
//! seconds (Sidekiq ≤ 7) or an integer of Unix milliseconds (Sidekiq ≥ 8).

/// Unix milliseconds start here: no Unix-seconds value is this large before
/// the year 5138, and every millisecond value after 1973 is.
const MILLIS_THRESHOLD: f64 = 1.0e11;

/// An `enqueued_at` number as Unix seconds: floats of seconds as they are,
/// integers of milliseconds divided by 1000. `None` for non-finite or
/// negative values.
pub fn epoch_number_to_seconds(value: f64) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    if value >= MILLIS_THRESHOLD {
        Some(value / 1000.0)
    } else {
        Some(value)
    }
}

/// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`)
/// into Unix seconds. `None` if it is anything else.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let (fraction, rest) = fraction(&b[19..])?;
    let offset = utc_offset_seconds(rest)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset;
    Some(seconds as f64 + fraction)
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = b.get(start..start + len)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// The optional `.fff…` part and what follows it.
fn fraction(b: &[u8]) -> Option<(f64, &[u8])> {
    if b.first() != Some(&b'.') {
        return Some((0.0, b));
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let mut value = 0.0;
    let mut scale = 0.1;
    for &c in b[1..=n].iter().take(9) {
        value += f64::from(c - b'0') * scale;
        scale /= 10.0;
    }
    Some((value, &b[1 + n..]))
}

fn utc_offset_seconds(b: &[u8]) -> Option<i64> {
    match b {
        b"Z" | b"z" => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = digits(b, 1, 2)?;
            let minutes = digits(b, 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn parses_sidekiq_iso8601_with_milliseconds() {
        // `date -u -d 2026-11-30T10:53:37Z +%s` = 1796036017
        assert!(close(
            parse_rfc3339("2026-11-30T10:53:37.988Z"),
            1_796_036_017.988
        ));
        assert!(close(parse_rfc3339("1970-01-01T00:00:00Z"), 0.0));
        assert!(close(
            parse_rfc3339("2000-02-29T12:00:00.5Z"),
            951_825_600.5
        ));
    }

    #[test]
    fn applies_utc_offsets() {
        assert!(close(
            parse_rfc3339("2026-11-30T11:53:37+01:00"),
            1_796_036_017.0
        ));
        assert!(close(
            parse_rfc3339("2026-11-30T05:23:37.25-05:30"),
            1_796_036_017.25
        ));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "2026-11-30",
            "2026-11-30T10:53:37",
            "2026-11-30T10:53:37.Z",
            "2026-13-30T10:53:37Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T10:53:37+0100",
            "2026-11-30T10:53:37.988Zjunk",
            "yesterday at noon, roughly",
            "2026-11-30T10:5a:37Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn enqueued_at_in_seconds_or_milliseconds() {
        assert_eq!(
            epoch_number_to_seconds(1_796_036_017.5),
            Some(1_796_036_017.5)
        );
        assert_eq!(
            epoch_number_to_seconds(1_796_036_017_500.0),
            Some(1_796_036_017.5)
        );
        assert_eq!(epoch_number_to_seconds(-1.0), None);
        assert_eq!(epoch_number_to_seconds(f64::NAN), None);
    }
}

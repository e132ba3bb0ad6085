//! Durations written as `2s`, `500ms`, `1m 30s`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written as `2s`, `500ms`, `1m 30s`; a bare number is refused (seconds or
/// milliseconds?) with a hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 2s, 500ms or 1m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(v.trim())
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "{v:?} is not a duration ({e}); write e.g. 2s, 500ms, 1m"
                        ))
                    })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{v} has no unit; write e.g. {v}s or {v}ms"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{v} has no unit; write e.g. {v}s or {v}ms"
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!("{v} has no unit; write e.g. {v}s")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// For `#[serde(deserialize_with = "slogate_diagnostics::duration")]` on a `Duration`
/// field: read as a [`HumanDuration`].
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    HumanDuration::deserialize(d).map(|h| h.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Duration, String> {
        serde_yaml_ng::from_str::<HumanDuration>(yaml)
            .map(|h| h.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn units_are_required() {
        assert_eq!(read("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(read("' 1m 30s '"), Ok(Duration::from_secs(90)));
        let e = read("soon").unwrap_err();
        assert!(e.starts_with("\"soon\" is not a duration ("), "{e}");
        assert!(e.contains("write e.g. 2s, 500ms, 1m"), "{e}");
        assert!(read("5")
            .unwrap_err()
            .starts_with("5 has no unit; write e.g. 5s or 5ms"));
        assert!(read("0.5")
            .unwrap_err()
            .starts_with("0.5 has no unit; write e.g. 0.5s"));
    }
}

//! Durations as written in `tocsin.yaml`: `30s`, `5m`, `1h30m`, `1d`, `2w`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::types::ParseError;

/// A non-negative duration written with units (`s`, `m`, `h`, `d`, `w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DurationSpec(Duration);

impl DurationSpec {
    pub const fn from_secs(secs: u64) -> Self {
        DurationSpec(Duration::from_secs(secs))
    }

    pub const fn from_mins(mins: u64) -> Self {
        DurationSpec(Duration::from_secs(mins * 60))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// The duration as a chrono delta, for arithmetic on instants.
    pub fn as_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX / 1000))
    }
}

impl FromStr for DurationSpec {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let expected = || {
            ParseError(format!(
                "`{input}` is not a duration; expected a number with a unit such as 30s, 5m, 1h30m, 1d or 2w"
            ))
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(expected());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(expected()),
            };
            if digits.is_empty() {
                return Err(expected());
            }
            let n: u64 = digits.parse().map_err(|_| expected())?;
            digits.clear();
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(expected)?;
        }
        if !digits.is_empty() {
            // A bare number without a unit is ambiguous; make the user say it.
            return Err(expected());
        }
        Ok(DurationSpec(Duration::from_secs(total)))
    }
}

impl TryFrom<String> for DurationSpec {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DurationSpec> for String {
    fn from(d: DurationSpec) -> String {
        d.to_string()
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_secs();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("w", 604_800),
            ("d", 86_400),
            ("h", 3600),
            ("m", 60),
            ("s", 1),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let d = |s: &str| s.parse::<DurationSpec>().map(|d| d.as_secs());
        assert_eq!(d("30s"), Ok(30));
        assert_eq!(d("5m"), Ok(300));
        assert_eq!(d("0m"), Ok(0));
        assert_eq!(d("1h30m"), Ok(5400));
        assert_eq!(d("1d"), Ok(86_400));
        assert_eq!(d("2w"), Ok(1_209_600));
        assert_eq!(d(" 12h "), Ok(43_200));
    }

    #[test]
    fn rejects_garbage_with_a_helpful_message() {
        for bad in ["", "5", "m", "5x", "1.5h", "-1m", "99999999999999999999w"] {
            let err = bad.parse::<DurationSpec>().unwrap_err();
            assert!(
                err.0.contains("expected a number with a unit"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn displays_round_trip() {
        for s in ["0s", "5m", "1h30m", "1w2d", "45s"] {
            let d: DurationSpec = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
    }
}

//! Durations and sizes as the file writes them (`30d`, `PT1M`, `1MiB`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration in config: a jiff "friendly" duration (`30d`, `1m`, `2h 30m`) or ISO 8601
/// (`P30D`, `PT1M`). Days count as 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let span: jiff::Span = s
            .parse()
            .map_err(|e| format!("`{s}` is not a duration (try `30d`, `1m` or `PT1M`): {e}"))?;
        let d = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|e| format!("`{s}`: {e}"))?;
        let d = Duration::try_from(d).map_err(|_| format!("`{s}` must not be negative"))?;
        Ok(ConfigDuration(d))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A size in config: `1MiB`, `64KiB`, `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes, as a `usize` (saturating on 32-bit targets).
    pub fn bytes(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let b: bytesize::ByteSize = s.parse().map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a size (try `1MiB`): {e}"))
        })?;
        Ok(ByteSize(b.as_u64()))
    }
}

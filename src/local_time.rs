//! The time zone the clients' tables show times in, and times shown in it.
//!
//! `STEWARD_TZ` names the zone (`UTC`, or any IANA name such as `Europe/Berlin`); without
//! it the zone is the system's (`TZ`, else `/etc/localtime`, as jiff finds it; UTC when
//! there is none). Tables show a time to the second with the zone's abbreviation
//! (`2026-11-21 06:18:48 CET`); JSON, NDJSON and CSV keep the stored RFC 3339 text.

use jiff::tz::TimeZone;

/// The environment variable naming the zone of the clients' tables.
pub const ENV: &str = "STEWARD_TZ";

/// `STEWARD_TZ` names no time zone.
#[derive(Debug, thiserror::Error)]
#[error("{ENV}={name:?} is not a time zone (use UTC or an IANA name such as Europe/Berlin): {why}")]
pub struct ZoneError {
    /// What `STEWARD_TZ` said.
    pub name: String,
    /// Why it was refused.
    pub why: String,
}

/// The zone named by `steward_tz` (the value of `STEWARD_TZ`, if set), else the system's.
/// An empty value counts as unset.
pub fn zone_from(steward_tz: Option<&str>) -> Result<TimeZone, ZoneError> {
    match steward_tz.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        Some(name) if name.eq_ignore_ascii_case("utc") => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|e| ZoneError {
            name: name.to_owned(),
            why: e.to_string(),
        }),
    }
}

/// The zone of this process's environment ([`zone_from`] of `STEWARD_TZ`).
pub fn zone() -> Result<TimeZone, ZoneError> {
    zone_from(std::env::var(ENV).ok().as_deref())
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS ZONE` in `zone` (to the second), or `None`
/// when `s` is not one.
pub fn short_time(s: &str, zone: &TimeZone) -> Option<String> {
    if s.len() < 20 || s.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    let t: jiff::Timestamp = s.parse().ok()?;
    Some(
        t.to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second_in_the_zone_with_its_name() {
        let t = "2026-11-21T05:18:48.6859684Z";
        assert_eq!(
            short_time(t, &TimeZone::UTC).as_deref(),
            Some("2026-11-21 05:18:48 UTC")
        );
        let berlin = zone_from(Some("Europe/Berlin")).unwrap();
        assert_eq!(
            short_time(t, &berlin).as_deref(),
            Some("2026-11-21 06:18:48 CET")
        );
        assert_eq!(
            short_time("2026-07-01T00:00:00+02:00", &berlin).as_deref(),
            Some("2026-07-01 00:00:00 CEST")
        );
        assert_eq!(short_time("default", &TimeZone::UTC), None);
        assert_eq!(short_time("2026-not-a-time-at-all", &TimeZone::UTC), None);
    }

    #[test]
    fn steward_tz_names_the_zone_and_a_wrong_name_says_so() {
        assert_eq!(zone_from(Some("UTC")).unwrap(), TimeZone::UTC);
        assert_eq!(zone_from(Some("utc")).unwrap(), TimeZone::UTC);
        assert!(zone_from(Some("")).is_ok());
        let e = zone_from(Some("Mars/Olympus")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("STEWARD_TZ") && text.contains("Mars/Olympus"),
            "{text}"
        );
    }
}

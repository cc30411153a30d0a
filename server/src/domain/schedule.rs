//! Turning the time an author asked for into an instant, in the author's IANA time zone.
//!
//! A requested time is either an RFC 3339 instant (`2026-12-01T09:00:00+01:00`) or a local
//! wall-clock time without offset (`2026-12-01T09:00`) read in `timeZone`. Both the instant
//! (UTC) and the wall-clock time are kept, so a later tz-database change cannot silently
//! move a post. Nothing is guessed: DST gaps are refused, DST overlaps need a choice.

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::AppError;

/// How far in the past a requested time may be and still count as "now" (clock skew,
/// a slow form submission).
pub const PAST_GRACE: Duration = Duration::seconds(60);

/// Which of the two instants to take when a local time occurs twice (DST fall-back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmbiguousTime {
    /// The first occurrence, still in daylight time.
    Earlier,
    /// The second occurrence, after the clocks went back.
    Later,
}

/// A time as the author asked for it, before validation.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest<'a> {
    /// RFC 3339 instant or local date-time without offset.
    pub scheduled_at: &'a str,
    /// IANA zone name; `UTC` when absent and the time carries an offset.
    pub time_zone: Option<&'a str>,
    /// The choice for a local time inside a DST overlap.
    pub ambiguous_time: Option<AmbiguousTime>,
}

/// A validated schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The instant the post is due.
    pub at: DateTime<Utc>,
    /// The wall-clock time the author chose, in `zone`.
    pub local: NaiveDateTime,
    /// The author's time zone.
    pub zone: Tz,
}

/// Parses an IANA zone name, naming `field` when it is unknown.
pub fn parse_zone(name: &str, field: &str) -> Result<Tz, AppError> {
    name.parse::<Tz>().map_err(|_| {
        AppError::bad_input(
            field,
            format!("unknown time zone `{name}`: use an IANA name such as Europe/Paris"),
        )
    })
}

/// Validates a requested time against `now`.
pub fn resolve(request: ScheduleRequest<'_>, now: DateTime<Utc>) -> Result<Schedule, AppError> {
    let zone = match request.time_zone {
        Some(name) => parse_zone(name, "timeZone")?,
        None => Tz::UTC,
    };
    let raw = request.scheduled_at.trim();
    let at = if let Ok(instant) = DateTime::<FixedOffset>::parse_from_rfc3339(raw) {
        instant.with_timezone(&Utc)
    } else if let Some(local) = parse_local(raw) {
        if request.time_zone.is_none() {
            return Err(AppError::bad_input(
                "timeZone",
                format!("`{raw}` has no UTC offset, so timeZone is required to place it"),
            ));
        }
        from_local(local, zone, request.ambiguous_time)?
    } else {
        return Err(AppError::bad_input(
            "scheduledAt",
            format!(
                "`{raw}` is not a date-time: use RFC 3339 (2026-12-01T09:00:00Z) or a local \
                 time without offset (2026-12-01T09:00) with timeZone"
            ),
        ));
    };
    if at < now - PAST_GRACE {
        return Err(AppError::bad_input(
            "scheduledAt",
            format!("{} is in the past", at.to_rfc3339()),
        ));
    }
    Ok(Schedule {
        at,
        local: at.with_timezone(&zone).naive_local(),
        zone,
    })
}

fn parse_local(raw: &str) -> Option<NaiveDateTime> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
}

fn from_local(
    local: NaiveDateTime,
    zone: Tz,
    choice: Option<AmbiguousTime>,
) -> Result<DateTime<Utc>, AppError> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => Err(AppError::bad_input(
            "scheduledAt",
            format!(
                "{local} does not exist in {zone}: the clocks skip it (daylight saving time \
                 gap); choose another time"
            ),
        )),
        LocalResult::Ambiguous(earlier, later) => match choice {
            Some(AmbiguousTime::Earlier) => Ok(earlier.with_timezone(&Utc)),
            Some(AmbiguousTime::Later) => Ok(later.with_timezone(&Utc)),
            None => Err(AppError::bad_input(
                "scheduledAt",
                format!(
                    "{local} occurs twice in {zone} (daylight saving time overlap): \
                     {} or {}; set ambiguousTime to EARLIER or LATER",
                    earlier.to_rfc3339(),
                    later.to_rfc3339()
                ),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().expect("valid instant")
    }

    fn request<'a>(at: &'a str, zone: Option<&'a str>) -> ScheduleRequest<'a> {
        ScheduleRequest {
            scheduled_at: at,
            time_zone: zone,
            ambiguous_time: None,
        }
    }

    fn field_of(err: AppError) -> String {
        match err {
            AppError::BadUserInput { field, .. } => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn instant_with_offset_keeps_local_time_in_zone() {
        let s = resolve(
            request("2026-06-01T09:00:00+02:00", Some("Europe/Paris")),
            now(),
        )
        .expect("valid");
        assert_eq!(s.at.to_rfc3339(), "2026-06-01T07:00:00+00:00");
        assert_eq!(s.local.to_string(), "2026-06-01 09:00:00");
    }

    #[test]
    fn local_time_is_read_in_zone() {
        let s =
            resolve(request("2026-01-15T09:30", Some("America/New_York")), now()).expect("valid");
        assert_eq!(s.at.to_rfc3339(), "2026-01-15T14:30:00+00:00");
    }

    #[test]
    fn dst_gap_is_refused() {
        let err =
            resolve(request("2026-03-08T02:30", Some("America/New_York")), now()).expect_err("gap");
        assert!(err.to_string().contains("gap"), "{err}");
        assert_eq!(field_of(err), "scheduledAt");
    }

    #[test]
    fn dst_overlap_needs_a_choice() {
        let err = resolve(request("2026-11-01T01:30", Some("America/New_York")), now())
            .expect_err("ambiguous");
        assert!(err.to_string().contains("occurs twice"), "{err}");
        let mut req = request("2026-11-01T01:30", Some("America/New_York"));
        req.ambiguous_time = Some(AmbiguousTime::Earlier);
        let earlier = resolve(req, now()).expect("earlier");
        req.ambiguous_time = Some(AmbiguousTime::Later);
        let later = resolve(req, now()).expect("later");
        assert_eq!(earlier.at.to_rfc3339(), "2026-11-01T05:30:00+00:00");
        assert_eq!(later.at.to_rfc3339(), "2026-11-01T06:30:00+00:00");
    }

    #[test]
    fn unknown_zone_names_the_field() {
        let err =
            resolve(request("2026-06-01T09:00", Some("Mars/Olympus")), now()).expect_err("zone");
        assert_eq!(field_of(err), "timeZone");
    }

    #[test]
    fn local_time_without_zone_is_refused() {
        let err = resolve(request("2026-06-01T09:00", None), now()).expect_err("no zone");
        assert_eq!(field_of(err), "timeZone");
    }

    #[test]
    fn past_beyond_grace_is_refused_within_grace_accepted() {
        let err = resolve(request("2025-12-31T23:58:00Z", None), now()).expect_err("past");
        assert_eq!(field_of(err), "scheduledAt");
        resolve(request("2025-12-31T23:59:30Z", None), now()).expect("within grace");
    }

    #[test]
    fn garbage_is_refused() {
        let err = resolve(request("next tuesday", None), now()).expect_err("garbage");
        assert_eq!(field_of(err), "scheduledAt");
    }
}

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

/// Properties of [`resolve`] over arbitrary input, every zone and every kind of local time.
#[cfg(test)]
mod properties {
    use chrono::{Datelike, Timelike};
    use chrono_tz::TZ_VARIANTS;
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse().expect("valid instant")
    }

    fn zone() -> impl Strategy<Value = Tz> {
        proptest::sample::select(&TZ_VARIANTS[..])
    }

    fn choice() -> impl Strategy<Value = Option<AmbiguousTime>> {
        prop_oneof![
            Just(None),
            Just(Some(AmbiguousTime::Earlier)),
            Just(Some(AmbiguousTime::Later)),
        ]
    }

    /// A wall-clock time from now to 2100, to the second, in local hours where DST
    /// transitions happen as often as anywhere else.
    fn local_time() -> impl Strategy<Value = NaiveDateTime> {
        (
            2026i32..2100,
            1u32..=12,
            1u32..=31,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_filter_map(
                "a calendar date",
                |(year, month, day, hour, minute, second)| {
                    chrono::NaiveDate::from_ymd_opt(year, month, day)?
                        .and_hms_opt(hour, minute, second)
                },
            )
    }

    /// Strings shaped like date-times, with years and fields out of range.
    fn date_like() -> impl Strategy<Value = String> {
        "[+-]?[0-9]{1,7}-[0-9]{1,3}-[0-9]{1,3}[T t]?[0-9]{1,3}:[0-9]{1,3}(:[0-9]{1,3}(\\.[0-9]{0,12})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
    }

    fn assert_bad_input(err: AppError) {
        match err {
            AppError::BadUserInput { field, .. } => {
                assert!(field == "scheduledAt" || field == "timeZone", "{field}");
            }
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Any text, any zone name: a schedule or a BAD_USER_INPUT naming the field, never
        /// a panic.
        #[test]
        fn arbitrary_input_never_panics(
            at in prop_oneof![any::<String>(), date_like()],
            zone in prop_oneof![Just(None), any::<String>().prop_map(Some), zone().prop_map(|z| Some(z.name().to_owned()))],
            choice in choice(),
        ) {
            let request = ScheduleRequest { scheduled_at: &at, time_zone: zone.as_deref(), ambiguous_time: choice };
            if let Err(err) = resolve(request, now()) {
                assert_bad_input(err);
            }
        }

        /// An instant with an offset is kept to the nanosecond, and its wall-clock time is
        /// the instant's in the zone.
        #[test]
        fn instants_round_trip(
            seconds in now().timestamp()..253_402_300_799i64,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
            zone in zone(),
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).expect("in range");
            let offset = FixedOffset::east_opt(offset_minutes * 60).expect("offset");
            let text = at.with_timezone(&offset).to_rfc3339();
            let Ok(schedule) = resolve(
                ScheduleRequest { scheduled_at: &text, time_zone: Some(zone.name()), ambiguous_time: None },
                now(),
            ) else {
                // Only a time whose offset takes it past year 9999 may be refused.
                prop_assert!(text.starts_with('+') || text.len() > 35, "{text}");
                return Ok(());
            };
            prop_assert_eq!(schedule.at, at);
            prop_assert_eq!(schedule.local, at.with_timezone(&zone).naive_local());
            prop_assert_eq!(schedule.zone, zone);
        }

        /// A wall-clock time in a zone: kept as written when it exists once; refused as a
        /// gap when the clocks skip it; in an overlap refused without a choice, and with
        /// one placed at the earlier or later instant, which both read as the time written.
        #[test]
        fn local_times_round_trip_and_dst_is_never_guessed(
            local in local_time(),
            zone in zone(),
            choice in choice(),
            separator in prop_oneof![Just('T'), Just(' ')],
            with_seconds in any::<bool>(),
        ) {
            let local = if with_seconds { local } else { local.with_second(0).expect("second") };
            let format = if with_seconds { "%Y-%m-%d{}%H:%M:%S" } else { "%Y-%m-%d{}%H:%M" };
            let text = local.format(&format.replace("{}", &separator.to_string())).to_string();
            let request = ScheduleRequest { scheduled_at: &text, time_zone: Some(zone.name()), ambiguous_time: choice };
            let resolved = resolve(request, now());
            match zone.from_local_datetime(&local) {
                LocalResult::Single(at) => {
                    let schedule = resolved.expect("an existing time");
                    prop_assert_eq!(schedule.at, at.with_timezone(&Utc));
                    prop_assert_eq!(schedule.local, local);
                }
                LocalResult::None => {
                    let err = resolved.expect_err("a time in a gap");
                    prop_assert!(err.to_string().contains("gap"), "{}", err);
                    assert_bad_input(err);
                }
                LocalResult::Ambiguous(earlier, later) => {
                    prop_assert!(earlier < later);
                    match choice {
                        None => {
                            let err = resolved.expect_err("an ambiguous time");
                            prop_assert!(err.to_string().contains("occurs twice"), "{}", err);
                        }
                        Some(choice) => {
                            let schedule = resolved.expect("a chosen instant");
                            let expected = if choice == AmbiguousTime::Earlier { earlier } else { later };
                            prop_assert_eq!(schedule.at, expected.with_timezone(&Utc));
                            prop_assert_eq!(schedule.local, local);
                        }
                    }
                }
            }
            // The year written is the year kept (no overflow into another).
            if let Ok(schedule) = resolve(request, now()) {
                prop_assert_eq!(schedule.local.year(), local.year());
            }
        }
    }
}

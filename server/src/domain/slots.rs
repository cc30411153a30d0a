//! Posting schedules: weekly time slots in an IANA time zone, and the instants they give.
//!
//! A slot is a weekday and a wall-clock time (`MON 09:00`) in the schedule's zone. On each
//! date whose weekday matches, the slot's local time becomes an instant:
//!
//! - a time that exists once is that instant;
//! - a time the clocks skip (a daylight saving gap, e.g. 02:30 on the spring-forward
//!   Sunday in Europe/Berlin) moves to the first valid local time after the gap (03:00):
//!   the instant the clocks jump;
//! - a time that occurs twice (the fall-back overlap) takes the earlier occurrence.
//!
//! Put together: a slot on local time `L` is the first instant whose wall-clock time is
//! `L` or later. Two slots that land on the same instant that way (02:30 and 02:45 in the
//! same gap) give one slot. [`WeeklySchedule::slots_from`] yields the instants from a
//! given one on, strictly increasing; none is before it.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

use crate::error::AppError;

/// Most slots a schedule may have (every quarter hour of a week is 672).
pub const MAX_SLOTS: usize = 700;

/// How a post scheduled by a caller gets its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// The time the caller gives (the default).
    #[default]
    Custom,
    /// The next free slot of the queue of each target's account.
    AddToQueue,
    /// The first slot of the account's queue; the posts queued in it and after move back
    /// one slot each.
    ShareNext,
    /// Now.
    ShareNow,
}

/// A weekly time slot: a weekday and a wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeeklySlot {
    /// The weekday.
    pub day: Weekday,
    /// The wall-clock time, to the minute.
    pub time: NaiveTime,
}

impl WeeklySlot {
    /// `HH:MM`.
    pub fn time_text(&self) -> String {
        self.time.format("%H:%M").to_string()
    }
}

/// Parses a slot time `HH:MM` (24-hour), naming `field` when it is not one.
pub fn parse_time(text: &str, field: &str) -> Result<NaiveTime, AppError> {
    let text = text.trim();
    let valid = text.len() == 5 && text.as_bytes().get(2) == Some(&b':');
    valid
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| {
            AppError::bad_input(
                field,
                format!("`{text}` is not a time of day: use HH:MM, 24-hour (09:30, 17:00)"),
            )
        })
}

/// One occurrence of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInstant {
    /// When it is.
    pub at: DateTime<Utc>,
    /// Its wall-clock time in the schedule's zone (after a gap: the time it moved to).
    pub local: NaiveDateTime,
    /// The slot it is an occurrence of (the first, when several land on this instant).
    pub slot: WeeklySlot,
}

/// Weekly slots in a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklySchedule {
    zone: Tz,
    /// Sorted by weekday (Monday first) and time, without duplicates.
    slots: Vec<WeeklySlot>,
}

impl WeeklySchedule {
    /// A schedule of `slots` (in any order, duplicates merged) in `zone`.
    pub fn new(zone: Tz, slots: impl IntoIterator<Item = WeeklySlot>) -> Self {
        let set: BTreeSet<(u32, NaiveTime)> = slots
            .into_iter()
            .map(|s| (s.day.num_days_from_monday(), s.time))
            .collect();
        let slots = set
            .into_iter()
            .map(|(day, time)| WeeklySlot {
                day: weekday(day),
                time,
            })
            .collect();
        Self { zone, slots }
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The slots, Monday first, by time.
    pub fn slots(&self) -> &[WeeklySlot] {
        &self.slots
    }

    /// The slot instants at or after `from`, in order (strictly increasing); none when
    /// the schedule has no slots.
    pub fn slots_from(&self, from: DateTime<Utc>) -> impl Iterator<Item = SlotInstant> + '_ {
        // A slot moved out of a gap lands later than its date says (a day at most, as when
        // Samoa skipped 30 December 2011): start two days before `from`'s local date.
        let start = from
            .with_timezone(&self.zone)
            .date_naive()
            .checked_sub_signed(Duration::days(2));
        let days = std::iter::successors(start, |d: &NaiveDate| d.succ_opt());
        let mut last: Option<DateTime<Utc>> = None;
        let empty = self.slots.is_empty();
        days.take_while(move |_| !empty)
            .flat_map(move |date| {
                self.slots
                    .iter()
                    .filter(move |s| s.day == date.weekday())
                    .filter_map(move |s| self.occurrence(date, *s))
            })
            .filter(move |occ| {
                let fresh = occ.at >= from && last.is_none_or(|l| occ.at > l);
                if fresh {
                    last = Some(occ.at);
                }
                fresh
            })
    }

    /// The slot instants in `[from, to)`.
    pub fn slots_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Iterator<Item = SlotInstant> + '_ {
        self.slots_from(from).take_while(move |occ| occ.at < to)
    }

    /// The instant of `slot` on `date` (see the module's rules); `None` only at the end of
    /// the calendar.
    pub fn occurrence(&self, date: NaiveDate, slot: WeeklySlot) -> Option<SlotInstant> {
        let local = date.and_time(slot.time);
        let at = first_instant_at_or_after(self.zone, local)?;
        Some(SlotInstant {
            at,
            local: at.with_timezone(&self.zone).naive_local(),
            slot,
        })
    }
}

/// The first instant whose wall-clock time in `zone` is `local` or later.
fn first_instant_at_or_after(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            // In a gap: the first wall-clock time after it (the instant the clocks jump).
            // Offsets change at whole minutes and gaps last a day at most.
            let mut candidate = local;
            for _ in 0..=(25 * 60) {
                candidate += Duration::minutes(1);
                if let Some(at) = zone.from_local_datetime(&candidate).earliest() {
                    return Some(at.with_timezone(&Utc));
                }
            }
            None
        }
    }
}

/// The weekday `days_from_monday` (0 to 6) after Monday.
pub fn weekday(days_from_monday: u32) -> Weekday {
    (0..days_from_monday % 7).fold(Weekday::Mon, |day, _| day.succ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(day: Weekday, time: &str) -> WeeklySlot {
        WeeklySlot {
            day,
            time: parse_time(time, "time").expect("time"),
        }
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("instant")
    }

    #[test]
    fn slots_follow_the_week_in_the_zone() {
        let schedule = WeeklySchedule::new(
            chrono_tz::America::New_York,
            [slot(Weekday::Tue, "17:00"), slot(Weekday::Mon, "09:00")],
        );
        // Monday 2026-06-01 10:00 in New York.
        let got: Vec<String> = schedule
            .slots_from(at("2026-06-01T14:00:00Z"))
            .take(3)
            .map(|s| s.at.to_rfc3339())
            .collect();
        assert_eq!(
            got,
            [
                "2026-06-02T21:00:00+00:00",
                "2026-06-08T13:00:00+00:00",
                "2026-06-09T21:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_slot_in_the_spring_forward_gap_moves_to_the_end_of_the_gap() {
        let schedule = WeeklySchedule::new(
            chrono_tz::Europe::Berlin,
            [
                slot(Weekday::Sun, "02:30"),
                slot(Weekday::Sun, "02:45"),
                slot(Weekday::Sun, "03:00"),
                slot(Weekday::Sun, "03:15"),
            ],
        );
        let got: Vec<(String, String)> = schedule
            .slots_from(at("2026-03-28T00:00:00Z"))
            .take(3)
            .map(|s| (s.at.to_rfc3339(), s.local.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "2026-03-29T01:00:00+00:00".to_owned(),
                    "2026-03-29 03:00:00".to_owned()
                ),
                (
                    "2026-03-29T01:15:00+00:00".to_owned(),
                    "2026-03-29 03:15:00".to_owned()
                ),
                (
                    "2026-04-05T00:30:00+00:00".to_owned(),
                    "2026-04-05 02:30:00".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_slot_in_the_fall_back_overlap_takes_the_earlier_occurrence() {
        let schedule =
            WeeklySchedule::new(chrono_tz::Europe::Berlin, [slot(Weekday::Sun, "02:30")]);
        let first = schedule
            .slots_from(at("2026-10-24T00:00:00Z"))
            .next()
            .expect("slot");
        assert_eq!(first.at.to_rfc3339(), "2026-10-25T00:30:00+00:00");
    }

    #[test]
    fn an_empty_schedule_has_no_slots_and_from_is_inclusive() {
        let empty = WeeklySchedule::new(Tz::UTC, []);
        assert_eq!(empty.slots_from(at("2026-06-01T00:00:00Z")).count(), 0);
        let schedule = WeeklySchedule::new(Tz::UTC, [slot(Weekday::Mon, "09:00")]);
        let first = schedule
            .slots_from(at("2026-06-01T09:00:00Z"))
            .next()
            .expect("slot");
        assert_eq!(first.at, at("2026-06-01T09:00:00Z"));
    }

    #[test]
    fn times_must_be_hh_mm() {
        assert!(parse_time("9:00", "time").is_err());
        assert!(parse_time("24:00", "time").is_err());
        assert!(parse_time("09:60", "time").is_err());
        assert!(parse_time("09:00:00", "time").is_err());
        assert_eq!(
            parse_time("23:59", "time").expect("valid").to_string(),
            "23:59:00"
        );
    }
}

/// Properties of [`WeeklySchedule::slots_from`] over random schedules, zones and instants.
#[cfg(test)]
mod properties {
    use chrono::Timelike;
    use chrono_tz::TZ_VARIANTS;
    use proptest::prelude::*;

    use super::*;

    fn zone() -> impl Strategy<Value = Tz> {
        proptest::sample::select(&TZ_VARIANTS[..])
    }

    /// Slots on quarter hours, and around the hours DST transitions happen at.
    fn weekly_slot() -> impl Strategy<Value = WeeklySlot> {
        (
            0u32..7,
            0u32..24,
            prop_oneof![Just(0u32), Just(15), Just(30), Just(45), 0u32..60],
        )
            .prop_map(|(day, hour, minute)| WeeklySlot {
                day: weekday(day),
                time: NaiveTime::from_hms_opt(hour, minute, 0).expect("time"),
            })
    }

    fn schedule() -> impl Strategy<Value = WeeklySchedule> {
        (zone(), proptest::collection::vec(weekly_slot(), 1..12))
            .prop_map(|(zone, slots)| WeeklySchedule::new(zone, slots))
    }

    /// An instant from 2026 to 2040, to the second.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (1_767_225_600i64..2_208_988_800)
            .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// Strictly increasing, none before `from`; each is its slot's weekday and time in
        /// the zone, or (in a DST gap) the first valid time after it; none skipped.
        #[test]
        fn slots_are_ordered_exact_and_complete(schedule in schedule(), from in instant()) {
            let zone = schedule.zone();
            let got: Vec<SlotInstant> = schedule.slots_from(from).take(40).collect();
            prop_assert_eq!(got.len(), 40);
            for pair in got.windows(2) {
                prop_assert!(pair[0].at < pair[1].at, "{:?}", pair);
            }
            for occ in &got {
                prop_assert!(occ.at >= from);
                prop_assert!(schedule.slots().contains(&occ.slot));
                let local = occ.at.with_timezone(&zone).naive_local();
                prop_assert_eq!(local, occ.local);
                let nominal = match zone.from_local_datetime(&local) {
                    // Back from a gap: the slot's time did not exist, and no minute
                    // between it and the time it moved to did.
                    _ if local.time() != occ.slot.time => {
                        let mut date = local.date();
                        // The slot's date is the moved time's or up to a day before.
                        if date.weekday() != occ.slot.day || date.and_time(occ.slot.time) > local {
                            date = date.pred_opt().expect("date");
                        }
                        let nominal = date.and_time(occ.slot.time);
                        prop_assert!(nominal < local, "{:?} {}", occ, nominal);
                        let mut t = nominal;
                        while t < local {
                            prop_assert!(
                                matches!(zone.from_local_datetime(&t), LocalResult::None),
                                "{} exists but {:?} moved past it", t, occ
                            );
                            t += Duration::minutes(1);
                        }
                        nominal
                    }
                    LocalResult::Ambiguous(earlier, _) => {
                        prop_assert_eq!(earlier.with_timezone(&Utc), occ.at, "not the earlier occurrence");
                        local
                    }
                    LocalResult::Single(_) => local,
                    LocalResult::None => unreachable!("an instant's local time exists"),
                };
                prop_assert_eq!(nominal.weekday(), occ.slot.day);
                prop_assert_eq!(nominal.time().second(), 0);
            }
            // Complete: every slot of every date in the range is there (merged with
            // another when both land on one instant).
            let last = got.last().expect("slots").at;
            let instants: BTreeSet<DateTime<Utc>> = got.iter().map(|o| o.at).collect();
            let first_date = from.with_timezone(&zone).date_naive() - Duration::days(2);
            let last_date = last.with_timezone(&zone).date_naive() + Duration::days(1);
            let mut date = first_date;
            while date <= last_date {
                for slot in schedule.slots().iter().filter(|s| s.day == date.weekday()) {
                    let occ = schedule.occurrence(date, *slot).expect("occurrence");
                    if occ.at >= from && occ.at <= last {
                        prop_assert!(instants.contains(&occ.at), "{:?} on {} skipped", slot, date);
                    }
                }
                date = date.succ_opt().expect("date");
            }
        }

        /// `slots_between` is `slots_from` cut at `to`.
        #[test]
        fn between_is_a_prefix(schedule in schedule(), from in instant(), days in 0i64..30) {
            let to = from + Duration::days(days);
            let between: Vec<SlotInstant> = schedule.slots_between(from, to).collect();
            let prefix: Vec<SlotInstant> = schedule.slots_from(from).take_while(|o| o.at < to).collect();
            prop_assert_eq!(between, prefix);
        }
    }
}

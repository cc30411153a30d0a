//! Time for plugins: the clock (WASI's wall clock, which the host grants) and the time
//! stamps platforms send: RFC 3339 (`2026-11-29T02:20:00.123Z`) and HTTP dates
//! (`Sun, 29 Nov 2026 02:16:00 GMT`, as in `Date` and `Retry-After`), and a server's own
//! clock ([`ServerClock`]) for platforms whose reset times are absolute. Instants are Unix
//! milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Unix seconds now.
pub fn now_unix() -> u64 {
    u64::try_from(now_unix_millis() / 1000).unwrap_or(0)
}

/// Now as an RFC 3339 UTC time stamp with milliseconds (`2026-11-29T02:30:00.000Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(now_unix_millis())
}

/// `millis` (Unix milliseconds, from 1970 on) as an RFC 3339 UTC time stamp with
/// milliseconds.
pub fn format_rfc3339(millis: i64) -> String {
    let millis = millis.max(0);
    let (seconds, fraction) = (millis / 1000, millis % 1000);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Unix milliseconds of an RFC 3339 time stamp (`2026-11-29T02:20:00.123Z`, or with a
/// `±HH:MM` offset); `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let date = text.get(..10)?;
    let separator = text.get(10..11)?;
    if !separator.eq_ignore_ascii_case("t") && separator != " " {
        return None;
    }
    let time = text.get(11..)?;
    let (year, month, day) = (
        number(date.get(0..4)?)?,
        number(date.get(5..7)?)?,
        number(date.get(8..10)?)?,
    );
    if date.get(4..5)? != "-" || date.get(7..8)? != "-" {
        return None;
    }
    let (hour, minute, second) = (
        number(time.get(0..2)?)?,
        number(time.get(3..5)?)?,
        number(time.get(6..8)?)?,
    );
    if time.get(2..3)? != ":" || time.get(5..6)? != ":" {
        return None;
    }
    let mut rest = time.get(8..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if digits == 0 {
            return None;
        }
        let padded: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = number(&padded)?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4)? != ":" {
                return None;
            }
            sign * (number(rest.get(1..3)?)? * 60 + number(rest.get(4..6)?)?)
        }
    };
    let seconds = civil_seconds(year, month, day, hour, minute, second)?;
    Some((seconds - offset_minutes * 60) * 1000 + millis)
}

/// Unix milliseconds of an HTTP date (`Sun, 29 Nov 2026 02:16:00 GMT`); `None` otherwise.
pub fn parse_http_date(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day = number(parts.next()?)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = number(parts.next()?)?;
    let mut time = parts.next()?.split(':');
    let (hour, minute, second) = (
        number(time.next()?)?,
        number(time.next()?)?,
        number(time.next()?)?,
    );
    if parts.next()? != "GMT" || parts.next().is_some() || time.next().is_some() {
        return None;
    }
    Some(civil_seconds(year, month, day, hour, minute, second)? * 1000)
}

/// Whole seconds from `now_ms` until `until_ms`, rounded up, at least 1.
pub fn seconds_until(until_ms: i64, now_ms: i64) -> u32 {
    let millis = until_ms.saturating_sub(now_ms).max(0);
    let seconds = millis.saturating_add(999) / 1000;
    u32::try_from(seconds.max(1)).unwrap_or(u32::MAX)
}

/// Whole seconds from `now_ms` until `until_ms`, rounded up; 0 when it has passed.
pub fn seconds_until_or_zero(until_ms: i64, now_ms: i64) -> u32 {
    let millis = until_ms.saturating_sub(now_ms).max(0);
    u32::try_from(millis.saturating_add(999) / 1000).unwrap_or(u32::MAX)
}

/// `seconds` (e.g. Discord's float `retry_after`) rounded up to whole seconds, saturating
/// at `u32::MAX`; `None` when negative or not a number.
pub fn ceil_seconds(seconds: f64) -> Option<u32> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    // `as` saturates: infinity and huge values become u32::MAX.
    Some(seconds.ceil() as u32)
}

/// A server's clock, as its answers show it: the offset between its `Date` header and the
/// host's clock when the answer arrived. Platforms that send absolute reset times
/// (`x-ratelimit-reset: 2026-11-29T02:20:00Z`) mean them on their clock; counting from
/// the host's clock would wait too long or too little when the two disagree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerClock {
    offset_ms: i64,
}

impl ServerClock {
    /// The clock of a server whose answer, read at host time `local_now_ms`, carried
    /// `date` (an HTTP date); the host's own clock (offset 0) without a usable date. An
    /// HTTP date has whole seconds, so a host clock inside that second agrees with the
    /// server's as far as the date can tell, and is kept (it has the milliseconds the
    /// date lacks).
    pub fn from_date(date: Option<&str>, local_now_ms: i64) -> Self {
        let offset_ms = date.and_then(parse_http_date).map_or(0, |server| {
            if (server..server.saturating_add(1000)).contains(&local_now_ms) {
                0
            } else {
                server.saturating_sub(local_now_ms)
            }
        });
        Self { offset_ms }
    }

    /// How far the server's clock is ahead of the host's (negative: behind), in
    /// milliseconds.
    pub fn offset_millis(&self) -> i64 {
        self.offset_ms
    }

    /// The server's time (Unix milliseconds) at host time `local_ms`.
    pub fn at(&self, local_ms: i64) -> i64 {
        local_ms.saturating_add(self.offset_ms)
    }

    /// The server's time now (Unix milliseconds).
    pub fn now_millis(&self) -> i64 {
        self.at(now_unix_millis())
    }

    /// Whole seconds (rounded up, 0 when past) from host time `local_now_ms` until
    /// `server_ms`, an instant on the server's clock.
    pub fn seconds_until(&self, server_ms: i64, local_now_ms: i64) -> u32 {
        seconds_until_or_zero(server_ms, self.at(local_now_ms))
    }
}

fn number(digits: &str) -> Option<i64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Seconds since the Unix epoch of a UTC civil time (days-from-civil, proleptic Gregorian).
fn civil_seconds(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_time_stamps_become_unix_milliseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2019-12-05T11:34:47.196Z"),
            Some(1_575_545_687_196)
        );
        assert_eq!(
            parse_rfc3339("2019-12-05T12:34:47.196123+01:00"),
            Some(1_575_545_687_196)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00-00:30"),
            Some(1_709_166_600_000)
        );
        assert_eq!(parse_rfc3339("2019-12-05"), None);
        assert_eq!(parse_rfc3339("2019-13-05T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("1575545687"), None);
    }

    #[test]
    fn http_dates_become_unix_milliseconds() {
        assert_eq!(
            parse_http_date("Thu, 05 Dec 2019 11:34:47 GMT"),
            Some(1_575_545_687_000)
        );
        assert_eq!(parse_http_date("Thu, 05 Foo 2019 11:34:47 GMT"), None);
        assert_eq!(parse_http_date("Thu, 05 Dec 2019 11:34:47 CET"), None);
    }

    #[test]
    fn time_stamps_are_rfc3339_utc() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            format_rfc3339(1_795_919_400_123),
            "2026-11-29T02:30:00.123Z"
        );
        let now = now_unix_millis();
        assert_eq!(parse_rfc3339(&format_rfc3339(now)), Some(now));
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(seconds_until(10_001, 5_000), 6);
        assert_eq!(seconds_until(10_000, 5_000), 5);
        assert_eq!(seconds_until(1_000, 5_000), 1);
        assert_eq!(seconds_until_or_zero(10_001, 5_000), 6);
        assert_eq!(seconds_until_or_zero(1_000, 5_000), 0);
        assert_eq!(seconds_until_or_zero(i64::MAX, i64::MIN), u32::MAX);
    }

    #[test]
    fn float_seconds_round_up_and_refuse_garbage() {
        assert_eq!(ceil_seconds(1.234), Some(2));
        assert_eq!(ceil_seconds(0.0), Some(0));
        assert_eq!(ceil_seconds(1e300), Some(u32::MAX));
        assert_eq!(ceil_seconds(f64::INFINITY), Some(u32::MAX));
        assert_eq!(ceil_seconds(-0.5), None);
        assert_eq!(ceil_seconds(f64::NAN), None);
    }

    #[test]
    fn a_server_clock_counts_from_the_servers_date() {
        // The server is 30 s ahead of the host.
        let local = 1_575_545_657_000;
        let clock = ServerClock::from_date(Some("Thu, 05 Dec 2019 11:34:47 GMT"), local);
        assert_eq!(clock.offset_millis(), 30_000);
        assert_eq!(clock.at(local), 1_575_545_687_000);
        // A reset 10 s after the server's now is 10 s away, whatever the host's clock says.
        assert_eq!(clock.seconds_until(1_575_545_697_000, local), 10);
        assert_eq!(clock.seconds_until(0, local), 0);
        // A host clock within the date's second is the server's, to the millisecond.
        let same = ServerClock::from_date(Some("Thu, 05 Dec 2019 11:34:47 GMT"), 1_575_545_687_600);
        assert_eq!(same.offset_millis(), 0);
        let behind =
            ServerClock::from_date(Some("Thu, 05 Dec 2019 11:34:47 GMT"), 1_575_545_686_900);
        assert_eq!(behind.offset_millis(), 100);
        let host = ServerClock::from_date(Some("yesterday"), local);
        assert_eq!(host, ServerClock::default());
        assert_eq!(host.at(local), local);
        assert!((clock.now_millis() - now_unix_millis() - 30_000).abs() < 5_000);
    }
}

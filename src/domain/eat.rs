//! East Africa Time: the scheme's civil calendar, and how a date reads on a phone.
//!
//! Owns: the one UTC+3 offset every date rule, job window, GePG timestamp and SMS uses, and
//! the `dd/mm/yyyy` display. Tanzania keeps UTC+3 all year (no daylight saving), so a fixed
//! offset is exact.
//! Must never: read the clock (callers pass `now`).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Offset, Utc};

/// Seconds east of UTC.
pub const EAT_OFFSET_SECS: i32 = 3 * 3600;

/// East Africa Time as a chrono offset.
pub fn eat() -> FixedOffset {
    // Three hours is a valid offset, so the fallback is never taken.
    FixedOffset::east_opt(EAT_OFFSET_SECS).unwrap_or_else(|| Utc.fix())
}

/// The wall-clock time in Dar es Salaam at `now`.
pub fn eat_datetime(now: DateTime<Utc>) -> NaiveDateTime {
    now.with_timezone(&eat()).naive_local()
}

/// The civil date in Dar es Salaam at `now`.
pub fn eat_date(now: DateTime<Utc>) -> NaiveDate {
    eat_datetime(now).date()
}

/// The UTC instant of a wall-clock time given in EAT without a zone (GePG's timestamps).
pub fn utc_from_eat(local: NaiveDateTime) -> DateTime<Utc> {
    (local - chrono::Duration::seconds(i64::from(EAT_OFFSET_SECS))).and_utc()
}

/// `29/07/2027`: how dates read on a Tanzanian phone (USSD screens and SMS).
pub fn show_date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_civil_date_turns_at_21_00_utc() {
        assert_eq!(
            eat_date(at("2026-12-31T20:59:59Z")),
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
        assert_eq!(
            eat_date(at("2026-12-31T21:00:00Z")),
            NaiveDate::from_ymd_opt(2027, 1, 1).unwrap()
        );
    }

    #[test]
    fn a_gepg_timestamp_in_eat_is_three_hours_ahead_of_utc() {
        let local = NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(utc_from_eat(local), at("2026-02-28T23:30:00Z"));
        assert_eq!(eat_datetime(utc_from_eat(local)), local);
    }

    #[test]
    fn dates_read_day_first() {
        let d = NaiveDate::from_ymd_opt(2027, 7, 9).unwrap();
        assert_eq!(show_date(d), "09/07/2027");
    }
}

//! Calendar arithmetic with the semantics openIMIS's SQL relies on.
//!
//! Owns: adding months and days to a date the way SQL Server's `DATEADD` (and Django's
//! `relativedelta`) do: a day that does not exist in the target month is clamped to that
//! month's last day, so 31 Jan + 1 month = 28 Feb (29 Feb in a leap year).
//! Must never: read a clock, or panic on any input.
//!
//! The helpers saturate at `NaiveDate::MIN`/`MAX` instead of failing. Only a corrupt product
//! row (thousands of years of grace) gets there, and saturating keeps every comparison the
//! rules make monotone: "enrolled before start − 10 000 years" is simply false.

use chrono::{Days, Months, NaiveDate};

/// `date` + `months`, clamped to the end of the month (`DATEADD(MONTH, n, date)`).
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    date.checked_add_months(Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

/// `date` + `months` for either sign; rules that go back ("start − discount period") need it.
pub fn add_months_signed(date: NaiveDate, months: i64) -> NaiveDate {
    let magnitude = u32::try_from(months.unsigned_abs()).unwrap_or(u32::MAX);
    if months >= 0 {
        add_months(date, magnitude)
    } else {
        date.checked_sub_months(Months::new(magnitude))
            .unwrap_or(NaiveDate::MIN)
    }
}

/// `date` + `days` for either sign (`DATEADD(DAY, n, date)`).
pub fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    let step = Days::new(days.unsigned_abs());
    if days >= 0 {
        date.checked_add_days(step).unwrap_or(NaiveDate::MAX)
    } else {
        date.checked_sub_days(step).unwrap_or(NaiveDate::MIN)
    }
}

/// The last day of a period of `months` starting on `start`: `start + months − 1 day`,
/// which is how every openIMIS expiry and payment deadline is written.
pub fn months_end(start: NaiveDate, months: u32) -> NaiveDate {
    add_days(add_months(start, months), -1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::d;

    #[test]
    fn add_months_clamps_to_month_end() {
        let cases = [
            // 31 Jan + 1 month: February has no 31st → last day of Feb.
            (d(2023, 1, 31), 1, d(2023, 2, 28)),
            (d(2024, 1, 31), 1, d(2024, 2, 29)), // 2024 is a leap year
            // 29 Feb 2024 + 12 months: 2025 has no 29 Feb → 28 Feb 2025.
            (d(2024, 2, 29), 12, d(2025, 2, 28)),
            // 29 Feb 2024 + 48 months lands on another leap year: no clamping.
            (d(2024, 2, 29), 48, d(2028, 2, 29)),
            // 31 Mar + 1 month → 30 Apr; clamping does not carry into May.
            (d(2024, 3, 31), 1, d(2024, 4, 30)),
            // Crossing the year: Nov + 3 months = Feb of next year.
            (d(2024, 11, 30), 3, d(2025, 2, 28)),
            (d(2024, 5, 15), 0, d(2024, 5, 15)),
        ];
        for (from, n, want) in cases {
            assert_eq!(add_months(from, n), want, "{from} + {n} months");
        }
    }

    #[test]
    fn signed_months_go_back_with_the_same_clamping() {
        // 31 Mar − 1 month → 29 Feb 2024 (leap), not 2 or 3 March.
        assert_eq!(add_months_signed(d(2024, 3, 31), -1), d(2024, 2, 29));
        assert_eq!(add_months_signed(d(2023, 3, 31), -1), d(2023, 2, 28));
        assert_eq!(add_months_signed(d(2024, 1, 15), -2), d(2023, 11, 15));
        assert_eq!(add_months_signed(d(2024, 1, 31), 1), d(2024, 2, 29));
    }

    #[test]
    fn days_and_period_ends() {
        assert_eq!(add_days(d(2024, 2, 28), 1), d(2024, 2, 29));
        assert_eq!(add_days(d(2024, 3, 1), -1), d(2024, 2, 29));
        assert_eq!(add_days(d(2024, 12, 31), 1), d(2025, 1, 1));
        // 1 Jan + 12 months − 1 day = 31 Dec of the same year.
        assert_eq!(months_end(d(2024, 1, 1), 12), d(2024, 12, 31));
        // 31 Jan + 1 month = 29 Feb; − 1 day = 28 Feb.
        assert_eq!(months_end(d(2024, 1, 31), 1), d(2024, 2, 28));
    }

    #[test]
    fn absurd_inputs_saturate_instead_of_panicking() {
        assert_eq!(add_months(NaiveDate::MAX, 1), NaiveDate::MAX);
        assert_eq!(add_months(d(2024, 1, 1), u32::MAX), NaiveDate::MAX);
        assert_eq!(add_months_signed(d(2024, 1, 1), i64::MIN), NaiveDate::MIN);
        assert_eq!(add_days(NaiveDate::MIN, -1), NaiveDate::MIN);
        assert_eq!(add_days(d(2024, 1, 1), i64::MAX), NaiveDate::MAX);
    }
}

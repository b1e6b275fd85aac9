//! Job time: windows in East Africa Time, the run time of each job, and quiet hours.
//!
//! Owns: turning a UTC instant into "which daily windows are due" and "when is the next run".
//! Must never: read the wall clock (callers pass `now`).
//!
//! Tanzania keeps UTC+3 all year (no daylight saving), so a fixed offset is exact.

use chrono::{
    DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

use super::Job;
use crate::config::{ConfigError, SchedulerConfig};

pub use crate::domain::eat;

#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    /// When the expiry job runs (it sends nothing, so early in the day).
    pub expire_at: NaiveTime,
    /// When the SMS jobs run.
    pub send_at: NaiveTime,
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
}

impl Clock {
    pub fn from_config(c: &SchedulerConfig) -> Result<Clock, ConfigError> {
        let (expire_at, send_at, quiet_start, quiet_end) = c.times()?;
        Ok(Clock {
            expire_at,
            send_at,
            quiet_start,
            quiet_end,
        })
    }

    pub fn local(now: DateTime<Utc>) -> NaiveDateTime {
        now.with_timezone(&eat()).naive_local()
    }

    /// Whether SMS produced at local time `t` would land in quiet hours. The quiet period
    /// may wrap midnight (20:00–07:00) or not (13:00–14:00); equal ends mean none.
    pub fn is_quiet(&self, t: NaiveTime) -> bool {
        let (s, e) = (self.quiet_start, self.quiet_end);
        if s == e {
            false
        } else if s < e {
            s <= t && t < e
        } else {
            t >= s || t < e
        }
    }

    fn run_at(&self, job: Job) -> NaiveTime {
        if job.sends_sms() {
            self.send_at
        } else {
            self.expire_at
        }
    }

    /// Windows of `job` due at `now` after `last` (the last completed window), oldest
    /// first. The first ever run does today's window only, once due: the scheduler does not
    /// replay history it never owned. A backlog longer than `max_catch_up` days keeps only the most
    /// recent ones (older reminders would be wrong by then). SMS jobs wait out quiet hours.
    pub fn due_windows(
        &self,
        job: Job,
        last: Option<NaiveDate>,
        now: DateTime<Utc>,
        max_catch_up: u32,
    ) -> Vec<NaiveDate> {
        let local = Self::local(now);
        if job.sends_sms() && self.is_quiet(local.time()) {
            return Vec::new();
        }
        let today = local.date();
        let latest = if local.time() >= self.run_at(job) {
            today
        } else {
            match today.pred_opt() {
                Some(d) => d,
                None => return Vec::new(),
            }
        };
        let first = match last {
            // A new install starts with today's window, once due; it never runs yesterday's.
            None if latest == today => today,
            None => return Vec::new(),
            Some(l) if l >= latest => return Vec::new(),
            Some(l) => {
                let oldest_kept = latest - Duration::days(i64::from(max_catch_up.max(1)) - 1);
                (l + Duration::days(1)).max(oldest_kept)
            }
        };
        first.iter_days().take_while(|d| *d <= latest).collect()
    }

    /// When `job` next runs, as UTC: the run time of the day after `last` (or now if that
    /// has passed), pushed out of quiet hours for SMS jobs.
    pub fn next_run(&self, job: Job, last: Option<NaiveDate>, now: DateTime<Utc>) -> DateTime<Utc> {
        let local_now = Self::local(now);
        let day = match last {
            Some(l) => l + Duration::days(1),
            None => local_now.date(),
        };
        let mut at = day.and_time(self.run_at(job));
        if at < local_now {
            at = local_now;
        }
        if job.sends_sms() && self.is_quiet(at.time()) {
            let end_day = if at.time() >= self.quiet_end {
                at.date() + Duration::days(1)
            } else {
                at.date()
            };
            at = end_day.and_time(self.quiet_end);
        }
        match eat().from_local_datetime(&at).single() {
            Some(t) => t.with_timezone(&Utc),
            None => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }
    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    /// An instant given in EAT.
    fn at(day: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
        eat()
            .from_local_datetime(&day.and_time(t(h, m)))
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }
    fn clock() -> Clock {
        Clock::from_config(&SchedulerConfig::default()).unwrap()
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_equal_ends_mean_none() {
        let c = clock(); // 20:00–07:00
        for (time, quiet) in [
            (t(19, 59), false),
            (t(20, 0), true),
            (t(23, 59), true),
            (t(3, 0), true),
            (t(6, 59), true),
            (t(7, 0), false),
            (t(12, 0), false),
        ] {
            assert_eq!(c.is_quiet(time), quiet, "{time}");
        }
        let day_only = Clock {
            quiet_start: t(13, 0),
            quiet_end: t(14, 0),
            ..c.clone()
        };
        assert!(day_only.is_quiet(t(13, 30)) && !day_only.is_quiet(t(20, 30)));
        let none = Clock {
            quiet_start: t(0, 0),
            quiet_end: t(0, 0),
            ..c
        };
        assert!(!none.is_quiet(t(3, 0)));
    }

    #[test]
    fn a_window_is_due_once_its_run_time_has_passed_in_eat() {
        let c = clock(); // SMS jobs at 09:00 EAT
        let day = d(2026, 3, 10);
        // 08:59 EAT is 05:59 UTC: not yet due, and yesterday is already done.
        let last = Some(d(2026, 3, 9));
        assert!(c
            .due_windows(Job::FamilyReminders, last, at(day, 8, 59), 7)
            .is_empty());
        assert_eq!(
            c.due_windows(Job::FamilyReminders, last, at(day, 9, 0), 7),
            vec![day]
        );
        assert!(c
            .due_windows(Job::FamilyReminders, Some(day), at(day, 15, 0), 7)
            .is_empty());
    }

    #[test]
    fn missed_windows_run_once_each_oldest_first_within_the_catch_up_limit() {
        let c = clock();
        let now = at(d(2026, 3, 12), 10, 0);
        assert_eq!(
            c.due_windows(Job::FamilyReminders, Some(d(2026, 3, 9)), now, 7),
            vec![d(2026, 3, 10), d(2026, 3, 11), d(2026, 3, 12)]
        );
        assert_eq!(
            c.due_windows(Job::FamilyReminders, Some(d(2026, 2, 1)), now, 2),
            vec![d(2026, 3, 11), d(2026, 3, 12)]
        );
        // First run ever: today's window only.
        assert_eq!(
            c.due_windows(Job::FamilyReminders, None, now, 7),
            vec![d(2026, 3, 12)]
        );
    }

    #[test]
    fn sms_jobs_wait_out_quiet_hours_but_expiry_does_not() {
        let c = clock();
        // Back at 02:00 EAT after two days down.
        let now = at(d(2026, 3, 12), 2, 0);
        let last = Some(d(2026, 3, 9));
        assert!(c.due_windows(Job::RenewalPrompts, last, now, 7).is_empty());
        // Expiry runs at 00:10: the 12th is due already.
        assert_eq!(
            c.due_windows(Job::ExpirePolicies, last, now, 7),
            vec![d(2026, 3, 10), d(2026, 3, 11), d(2026, 3, 12)]
        );
        // At 07:00 the missed SMS windows run (the 12th's not yet: 09:00).
        assert_eq!(
            c.due_windows(Job::RenewalPrompts, last, at(d(2026, 3, 12), 7, 0), 7),
            vec![d(2026, 3, 10), d(2026, 3, 11)]
        );
    }

    #[test]
    fn next_run_is_the_run_time_after_the_last_window() {
        let c = clock();
        let now = at(d(2026, 3, 10), 12, 0);
        assert_eq!(
            c.next_run(Job::FamilyReminders, Some(d(2026, 3, 10)), now),
            at(d(2026, 3, 11), 9, 0)
        );
        assert_eq!(
            c.next_run(Job::ExpirePolicies, Some(d(2026, 3, 10)), now),
            at(d(2026, 3, 11), 0, 10)
        );
        // Overdue at 22:00: the next moment out of quiet hours, 07:00 tomorrow.
        let late = at(d(2026, 3, 10), 22, 0);
        assert_eq!(
            c.next_run(Job::FamilyReminders, Some(d(2026, 3, 9)), late),
            at(d(2026, 3, 11), 7, 0)
        );
    }
}

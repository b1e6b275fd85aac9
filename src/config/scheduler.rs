//! `[scheduler]` settings: when the daily jobs run, in East Africa Time.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[scheduler]`: the daily jobs inside `serve` (times are East Africa Time, `HH:MM`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    pub enabled: bool,
    /// Seconds between checks for due jobs.
    pub tick_secs: u64,
    /// When the expiry job runs (it sends nothing).
    pub expire_at: String,
    /// When the jobs that send SMS run; must be outside quiet hours.
    pub send_at: String,
    /// SMS the scheduler would produce in this period waits until it ends.
    pub quiet_start: String,
    pub quiet_end: String,
    /// Officers are prompted this many days before a policy expires.
    pub renewal_interval_days: u32,
    /// Families are reminded this many days before expiry, on the day, and this many after.
    pub reminder_days_before: u32,
    pub reminder_days_after: u32,
    /// After an outage, at most this many missed days are caught up (the most recent).
    pub max_catch_up_days: u32,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            enabled: true,
            tick_secs: 60,
            expire_at: "00:10".into(),
            send_at: "09:00".into(),
            quiet_start: "20:00".into(),
            quiet_end: "07:00".into(),
            renewal_interval_days: 14,
            reminder_days_before: 5,
            reminder_days_after: 5,
            max_catch_up_days: 7,
        }
    }
}

/// Parses `HH:MM` (24 h).
pub fn parse_hhmm(key: &str, value: &str) -> Result<chrono::NaiveTime, ConfigError> {
    chrono::NaiveTime::parse_from_str(value.trim(), "%H:%M").map_err(|_| {
        ConfigError::Invalid(format!(
            "[scheduler] {key} = {value:?}: expected HH:MM, e.g. 09:00"
        ))
    })
}

impl SchedulerConfig {
    /// (expire_at, send_at, quiet_start, quiet_end), validated.
    pub fn times(
        &self,
    ) -> Result<
        (
            chrono::NaiveTime,
            chrono::NaiveTime,
            chrono::NaiveTime,
            chrono::NaiveTime,
        ),
        ConfigError,
    > {
        Ok((
            parse_hhmm("expire_at", &self.expire_at)?,
            parse_hhmm("send_at", &self.send_at)?,
            parse_hhmm("quiet_start", &self.quiet_start)?,
            parse_hhmm("quiet_end", &self.quiet_end)?,
        ))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let (_, send, qs, qe) = self.times()?;
        let quiet = if qs == qe {
            false
        } else if qs < qe {
            qs <= send && send < qe
        } else {
            send >= qs || send < qe
        };
        if quiet {
            return Err(ConfigError::Invalid(format!(
                "[scheduler] send_at {} falls in quiet hours {}-{}",
                self.send_at, self.quiet_start, self.quiet_end
            )));
        }
        if self.tick_secs == 0 {
            return Err(ConfigError::Invalid(
                "[scheduler] tick_secs must be > 0".into(),
            ));
        }
        Ok(())
    }
}

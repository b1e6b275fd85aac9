//! Scheduled work inside `serve`: policy expiry, officer renewal prompts and family reminders.
//!
//! Owns: when each daily job is due (a job's *window* is one calendar day in East Africa
//! Time), the persisted record of each job's last completed window and result (aux namespace
//! [`JOBS_NS`]), and catching up missed windows once each, oldest first, on start.
//! Must never: read the wall clock below [`run_loop`] (every decision takes `now`, so tests
//! inject time), produce SMS in quiet hours, or owe the same reminder twice: each effect
//! carries a key per (policy, event) that is checked in the transaction that enqueues it.
//!
//! Why windows and not timers: a restart must neither skip nor repeat a run. A job records
//! the last window it completed; on every tick it runs the windows that have come due since,
//! so a server that was down overnight runs the missed window once when it returns. A crash
//! inside a job repeats the window, which is harmless because every effect is idempotent.

pub mod clock;
pub mod expire;
pub mod prompts;
pub mod reminders;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::SchedulerConfig;
use crate::shutdown::Signal;
use crate::sms::Templates;
use crate::store::{codec, Store, StoreError, TxError, WriteError};

pub use clock::Clock;

/// Aux namespace of the jobs' persisted state: job name → [`JobState`].
pub const JOBS_NS: &str = "jobs";

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("store transaction: {0}")]
    Tx(#[from] TxError),
    #[error("SMS template: {0}")]
    Template(#[from] crate::sms::templates::TemplateError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("unknown job {0:?}; jobs are: expire-policies, renewal-prompts, family-reminders")]
    UnknownJob(String),
}

impl From<WriteError<Infallible>> for SchedulerError {
    fn from(e: WriteError<Infallible>) -> Self {
        match e {
            WriteError::Store(s) => SchedulerError::Store(s),
            WriteError::Aborted(never) => match never {},
        }
    }
}

/// The daily jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    ExpirePolicies,
    RenewalPrompts,
    FamilyReminders,
}

impl Job {
    pub const ALL: [Job; 3] = [
        Job::ExpirePolicies,
        Job::RenewalPrompts,
        Job::FamilyReminders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::ExpirePolicies => "expire-policies",
            Job::RenewalPrompts => "renewal-prompts",
            Job::FamilyReminders => "family-reminders",
        }
    }

    pub fn parse(name: &str) -> Result<Job, SchedulerError> {
        Job::ALL
            .into_iter()
            .find(|j| j.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| SchedulerError::UnknownJob(name.to_string()))
    }

    /// Jobs that produce SMS wait for the send time and never run in quiet hours.
    pub fn sends_sms(self) -> bool {
        !matches!(self, Job::ExpirePolicies)
    }
}

/// What a job remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub last_window: Option<NaiveDate>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_result: Option<String>,
    pub runs: u64,
}

/// The outcome of one job over one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    pub job: &'static str,
    pub window: Option<NaiveDate>,
    /// Policies looked at after the cheap date filter.
    pub examined: u64,
    /// Records changed (policies expired, prompts recorded, reminders owed).
    pub changed: u64,
    pub sms: u64,
    pub dry_run: bool,
    /// In a dry run: what would be done, one line per effect.
    pub planned: Vec<String>,
}

/// One run of a job that sends SMS: for whom (the scheduler's store, templates and
/// settings), which day's window, when, and the report it fills.
pub struct SmsJobRun<'a> {
    pub scheduler: &'a Scheduler,
    pub window: NaiveDate,
    pub now: DateTime<Utc>,
    pub report: &'a mut JobReport,
}

impl JobReport {
    fn new(job: Job, window: NaiveDate, dry_run: bool) -> JobReport {
        JobReport {
            job: job.name(),
            window: Some(window),
            dry_run,
            ..JobReport::default()
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} window {}: examined {}, changed {}, SMS {}{}",
            self.job,
            self.window.map(|d| d.to_string()).unwrap_or_default(),
            self.examined,
            self.changed,
            self.sms,
            if self.dry_run { " (dry run)" } else { "" }
        )
    }
}

/// One line of `jobs list`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub job: Job,
    pub state: JobState,
    pub next_run: DateTime<Utc>,
}

/// The daily jobs over one store.
pub struct Scheduler {
    store: Store,
    templates: Arc<Templates>,
    config: SchedulerConfig,
    clock: Clock,
    /// The code members dial, quoted in reminders.
    ussd_code: String,
}

impl Scheduler {
    pub fn new(
        store: Store,
        templates: Arc<Templates>,
        config: SchedulerConfig,
        ussd_code: String,
    ) -> Result<Scheduler, SchedulerError> {
        let clock = Clock::from_config(&config)?;
        Ok(Scheduler {
            store,
            templates,
            config,
            clock,
            ussd_code,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn state(&self, job: Job) -> Result<JobState, SchedulerError> {
        match self.store.aux_get(JOBS_NS, job.name().as_bytes())? {
            Some(bytes) => Ok(codec::decode_aux(&bytes)?),
            None => Ok(JobState::default()),
        }
    }

    fn save_state(&self, job: Job, state: &JobState) -> Result<(), SchedulerError> {
        let bytes = codec::encode_aux(state)?;
        self.store.aux_put(JOBS_NS, job.name().as_bytes(), &bytes)?;
        self.store.flushed_blocking()?;
        Ok(())
    }

    /// The windows of `job` due at `now`, oldest first.
    pub fn due_windows(
        &self,
        job: Job,
        now: DateTime<Utc>,
    ) -> Result<Vec<NaiveDate>, SchedulerError> {
        let state = self.state(job)?;
        Ok(self
            .clock
            .due_windows(job, state.last_window, now, self.config.max_catch_up_days))
    }

    /// Runs every due window of every job. The serve loop calls this once a minute; tests
    /// call it with the time they want.
    pub fn tick(&self, now: DateTime<Utc>) -> Result<Vec<JobReport>, SchedulerError> {
        let mut reports = Vec::new();
        for job in Job::ALL {
            for window in self.due_windows(job, now)? {
                let report = self.run_window(job, window, now, false)?;
                let mut state = self.state(job)?;
                state.last_window = Some(window);
                state.last_run_at = Some(now);
                state.last_result = Some(report.summary());
                state.runs += 1;
                self.save_state(job, &state)?;
                tracing::info!(job = job.name(), %window, result = %report.summary(), "job run");
                reports.push(report);
            }
        }
        Ok(reports)
    }

    /// Runs one job for one window by hand (`jobs run`). It does not move the job's
    /// recorded window: the effects are idempotent, so the scheduled run later adds nothing.
    pub fn run_window(
        &self,
        job: Job,
        window: NaiveDate,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<JobReport, SchedulerError> {
        let mut report = JobReport::new(job, window, dry_run);
        match job {
            Job::ExpirePolicies => expire::run(&self.store, window, now, &mut report)?,
            Job::RenewalPrompts => prompts::run(SmsJobRun {
                scheduler: self,
                window,
                now,
                report: &mut report,
            })?,
            Job::FamilyReminders => reminders::run(SmsJobRun {
                scheduler: self,
                window,
                now,
                report: &mut report,
            })?,
        }
        if !dry_run {
            self.store.flushed_blocking()?;
        }
        Ok(report)
    }

    /// Every job with its state and next run, for `jobs list`.
    pub fn list(&self, now: DateTime<Utc>) -> Result<Vec<JobStatus>, SchedulerError> {
        Job::ALL
            .into_iter()
            .map(|job| {
                let state = self.state(job)?;
                let next_run = self.clock.next_run(job, state.last_window, now);
                Ok(JobStatus {
                    job,
                    state,
                    next_run,
                })
            })
            .collect()
    }
}

/// The scheduler inside `serve`: a tick now (so missed windows run on start), then one per
/// `tick_secs`, until shutdown. Store work runs on the blocking pool.
pub async fn run_loop(scheduler: Arc<Scheduler>, mut signal: Signal) {
    let every = Duration::from_secs(scheduler.config.tick_secs.max(1));
    loop {
        let s = scheduler.clone();
        match tokio::task::spawn_blocking(move || s.tick(Utc::now())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "scheduler tick failed; retrying next tick"),
            Err(e) => tracing::error!(error = %e, "scheduler tick panicked"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = signal.recv() => return,
        }
    }
}

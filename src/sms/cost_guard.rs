//! The SMS cost guard (`[sms_guard]`): caps on the paid SMS that senders we do not know can
//! make us send. Anyone can send an MO from (or claim, over HTTP) any number; each one from
//! a phone that is neither an officer's nor linked to a family would otherwise cost one
//! HELP SMS to that number.
//!
//! Owns: the rule "SMS to an unknown phone: at most `unknown_per_hour` and
//! `unknown_per_day` in all, and `per_destination_per_day` to one phone" (GCRA limiters of
//! [`crate::ratelimit`], the whole cap available at once), the counters
//! `imis_sms_cost_guard_{sent,suppressed}_total`, and one warning at most a minute when it
//! trips.
//! Must never: stop an SMS to an officer or to a family's phone (callers ask only for
//! unknown phones), count one event twice when its transaction is retried (decisions are
//! idempotent per token), or log a phone number.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use crate::domain::sms_caps::CostGuardSettings;
use crate::domain::Msisdn;
use crate::ratelimit::{Limiter, Rate};
use crate::store::{Store, StoreError};

/// Phones tracked for the per-destination cap (beyond, new ones pass untracked).
const MAX_TRACKED: usize = 100_000;
/// The "cap reached" warning is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How long a looked-up "known phone" answer serves the transaction that follows.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// Answers kept at most (beyond, the table starts again: a miss only means "unknown").
const MAX_KNOWN: usize = 10_000;

/// See the module doc. Shared behind an `Arc` by everything that may SMS an unknown phone.
#[derive(Debug)]
pub struct CostGuard {
    store: Store,
    /// (limiter, name in the log line), per destination first.
    caps: Vec<(Limiter, &'static str, bool)>,
    sent: AtomicU64,
    suppressed: AtomicU64,
    last_log: Mutex<Option<Instant>>,
    /// Phones looked up before their MO's transaction: known or not, and when.
    known: Mutex<HashMap<Box<str>, (bool, Instant)>>,
}

impl CostGuard {
    pub fn new(store: Store, settings: &CostGuardSettings) -> CostGuard {
        let day = Duration::from_secs(86_400);
        let whole = |count: u32, per: Duration| {
            (count > 0).then_some(Rate {
                count,
                per,
                burst: count,
            })
        };
        let mut caps = Vec::new();
        if let Some(r) = whole(settings.per_destination_per_day, day) {
            caps.push((Limiter::new(r, MAX_TRACKED), "per-destination daily", true));
        }
        if let Some(r) = whole(settings.unknown_per_hour, Duration::from_secs(3600)) {
            caps.push((Limiter::new(r, 1), "hourly", false));
        }
        if let Some(r) = whole(settings.unknown_per_day, day) {
            caps.push((Limiter::new(r, 1), "daily", false));
        }
        CostGuard {
            store,
            caps,
            sent: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            last_log: Mutex::new(None),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Looks up whether `phone` is known (an officer's, or the phone of a family's head),
    /// for [`CostGuard::known`] a moment later. Call it outside any store transaction
    /// (a family is found by a prefix scan, which a transaction cannot run) before storing
    /// the MO from `phone`.
    pub fn look_up(&self, phone: &Msisdn, now: Instant) -> Result<bool, StoreError> {
        let known = self.store.officer_by_phone(phone)?.is_some()
            || !self.store.families_by_phone(phone)?.is_empty();
        if let Ok(mut table) = self.known.lock() {
            if table.len() >= MAX_KNOWN {
                table.retain(|_, (_, at)| now.saturating_duration_since(*at) < KNOWN_FOR);
                if table.len() >= MAX_KNOWN {
                    table.clear();
                }
            }
            table.insert(phone.as_str().into(), (known, now));
        }
        Ok(known)
    }

    /// Whether [`CostGuard::look_up`] found `phone` known within the last minute. A phone
    /// not looked up (a multipart MO reassembled in its own transaction) counts as unknown:
    /// it is capped, never refused outright.
    pub fn known(&self, phone: &Msisdn, now: Instant) -> bool {
        let Ok(table) = self.known.lock() else {
            return false;
        };
        table
            .get(phone.as_str())
            .is_some_and(|(k, at)| *k && now.saturating_duration_since(*at) < KNOWN_FOR)
    }

    /// Whether one SMS may go to the unknown phone `to` now (true: queue it). `token` names
    /// the event (the MO id...): asked again for the same token, the same answer, counted
    /// once.
    pub fn allow_unknown(&self, to: &Msisdn, token: u64, now: Instant) -> bool {
        // A retried transaction asks again with the same token: decided and counted before.
        let mut fresh = self.caps.is_empty();
        for (limiter, name, per_phone) in &self.caps {
            let key = if *per_phone { to.as_str() } else { "all" };
            let (decision, first) = limiter.check_idempotent(key, token, now);
            fresh |= first;
            if !decision.allowed() {
                if first {
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    self.warn(name, now);
                }
                return false;
            }
        }
        if fresh {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn warn(&self, cap: &str, now: Instant) {
        let Ok(mut last) = self.last_log.lock() else {
            return;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            cap,
            suppressed_total = self.suppressed.load(Ordering::Relaxed),
            "SMS cost guard: an SMS to an unknown phone was not queued ({cap} cap reached); \
             further ones are counted in imis_sms_cost_guard_suppressed_total, logged at \
             most once a minute"
        );
    }

    /// SMS to unknown phones suppressed so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// The counters in Prometheus text.
    pub fn prometheus(&self) -> String {
        format!(
            "# HELP imis_sms_cost_guard_sent_total SMS to unknown phones let through the cost \
             guard\n# TYPE imis_sms_cost_guard_sent_total counter\n\
             imis_sms_cost_guard_sent_total {}\n\
             # HELP imis_sms_cost_guard_suppressed_total SMS to unknown phones not queued: \
             over a [sms_guard] cap\n# TYPE imis_sms_cost_guard_suppressed_total counter\n\
             imis_sms_cost_guard_suppressed_total {}\n",
            self.sent.load(Ordering::Relaxed),
            self.suppressed.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hour: u32, day: u32, per_phone: u32) -> CostGuard {
        let settings = CostGuardSettings {
            unknown_per_hour: hour,
            unknown_per_day: day,
            per_destination_per_day: per_phone,
        };
        CostGuard::new(Store::open_temporary().unwrap(), &settings)
    }

    fn phone(n: u32) -> Msisdn {
        Msisdn::parse(&format!("2557{n:08}")).unwrap()
    }

    #[test]
    fn the_global_cap_counts_every_unknown_phone_and_the_metric_says_how_many_were_not_sent() {
        let g = guard(10, 0, 0);
        let now = Instant::now();
        let sent = (0..25)
            .filter(|i| g.allow_unknown(&phone(*i), *i as u64, now))
            .count();
        assert_eq!(sent, 10);
        assert_eq!(g.suppressed(), 15);
        assert!(g
            .prometheus()
            .contains("imis_sms_cost_guard_suppressed_total 15\n"));
        assert!(g
            .prometheus()
            .contains("imis_sms_cost_guard_sent_total 10\n"));
        // An hour later the hourly cap has room again.
        assert!(g.allow_unknown(&phone(99), 99, now + Duration::from_secs(3600)));
    }

    #[test]
    fn one_phone_gets_its_daily_few_and_a_retried_event_counts_once() {
        let g = guard(0, 100, 3);
        let now = Instant::now();
        let p = phone(1);
        for token in 0..3 {
            assert!(g.allow_unknown(&p, token, now));
            assert!(g.allow_unknown(&p, token, now), "the same event again");
        }
        assert!(!g.allow_unknown(&p, 3, now));
        assert!(
            g.allow_unknown(&phone(2), 4, now),
            "another phone is not held back"
        );
        assert_eq!(g.suppressed(), 1);
    }

    #[test]
    fn a_family_s_phone_is_known_once_looked_up_and_only_for_a_minute() {
        let store = Store::open_temporary().unwrap();
        crate::demo::seed_if_empty(&store, &crate::demo::DemoOptions::default()).unwrap();
        let g = CostGuard::new(store, &CostGuardSettings::default());
        let now = Instant::now();
        let head = Msisdn::parse("255754100001").unwrap();
        assert!(!g.known(&head, now), "not looked up yet");
        assert!(g.look_up(&head, now).unwrap());
        assert!(g.known(&head, now));
        assert!(!g.known(&head, now + KNOWN_FOR));
        assert!(!g.look_up(&phone(5), now).unwrap());
        assert!(!g.known(&phone(5), now));
    }

    #[test]
    fn zero_turns_every_cap_off() {
        let g = guard(0, 0, 0);
        let now = Instant::now();
        assert!((0..1000).all(|i| g.allow_unknown(&phone(1), i, now)));
    }
}

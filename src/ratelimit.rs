//! Per-phone rate limits (`[limits]`): how many USSD hops and inbound SMS one phone may send.
//!
//! Owns: the limiting rule (GCRA, the "generic cell rate algorithm": a token bucket kept as
//! one instant per key, the theoretical arrival time) and the per-key table, sharded behind
//! mutexes so concurrent phones rarely meet on a lock. Keys whose bucket is full again (and
//! whose notice window is over) are evicted: such a key behaves exactly like one never
//! seen, so eviction changes no decision and memory follows the phones active in the last
//! burst period, with a hard cap beyond which new phones are let through untracked.
//! Must never: read the clock itself (callers pass the [`Instant`], so the rule is testable),
//! refuse because the table is full (many phones is load, not abuse), or know a wire format
//! or a phone number's shape (keys are the callers' normalised MSISDNs).
//!
//! A [`Rate`] of `count` per `per` with `burst`: up to `burst` events at once, then one
//! every `per / count`. A refused event is not counted (a phone that keeps trying is not
//! pushed further back). A refusal says whether it is the first in its notice window (one
//! `per` long), so the phone is told "too many, try later" at most once per window.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shards of the key table (a power of two).
const SHARDS: usize = 64;
/// A shard smaller than this is never swept on insert.
const MIN_SWEEP: usize = 64;
/// A shard at its cap sweeps at most this often (a sweep is a scan of the shard).
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// [`Limiter::check_idempotent`]: the same token within this time is the same event.
const RETRY_GRACE: Duration = Duration::from_secs(2);

/// `count` events per `per`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    /// `count` per minute; `None` (no limit) when `count` is 0.
    pub fn per_minute(count: u32, burst: u32) -> Option<Rate> {
        Rate::new(count, Duration::from_secs(60), burst)
    }

    /// `count` per hour; `None` (no limit) when `count` is 0.
    pub fn per_hour(count: u32, burst: u32) -> Option<Rate> {
        Rate::new(count, Duration::from_secs(3600), burst)
    }

    fn new(count: u32, per: Duration, burst: u32) -> Option<Rate> {
        (count > 0).then_some(Rate {
            count,
            per,
            burst: burst.max(1),
        })
    }

    /// Time for one token to come back.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }

    /// How far ahead of now the bucket may be drawn: `burst` intervals.
    fn tolerance(&self) -> Duration {
        self.interval().saturating_mul(self.burst.max(1))
    }
}

/// What the limiter says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Over the limit. `retry_after`: when one more event would be allowed. `notify`: the
    /// first refusal of this key in its notice window (tell the phone once).
    Refused {
        retry_after: Duration,
        notify: bool,
    },
}

impl Decision {
    pub fn allowed(self) -> bool {
        self == Decision::Allowed
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Theoretical arrival time: the bucket is full again at this instant.
    tat: Instant,
    /// Refusals before this instant are not notified again.
    notice_until: Option<Instant>,
    /// The last decision, by token, for [`Limiter::check_idempotent`].
    last: Option<(u64, Instant, Decision)>,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            tat: now,
            notice_until: None,
            last: None,
        }
    }

    /// Indistinguishable from a key never seen: safe to forget.
    fn idle(&self, now: Instant) -> bool {
        self.tat <= now && self.notice_until.is_none_or(|u| u <= now)
    }

    /// The GCRA step: allowed events move the arrival time one interval on.
    fn decide(&mut self, rate: &Rate, now: Instant) -> Decision {
        let interval = rate.interval();
        let next = self.tat.max(now) + interval;
        let ahead = next.saturating_duration_since(now);
        if ahead <= rate.tolerance() {
            self.tat = next;
            return Decision::Allowed;
        }
        let notify = self.notice_until.is_none_or(|u| u <= now);
        if notify {
            self.notice_until = Some(now + rate.per);
        }
        Decision::Refused {
            retry_after: ahead - rate.tolerance(),
            notify,
        }
    }
}

#[derive(Debug)]
struct Shard {
    map: HashMap<Box<str>, Entry>,
    /// Sweep on the next insert once the shard holds this many keys.
    sweep_at: usize,
    last_sweep: Option<Instant>,
}

impl Shard {
    fn sweep(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| !e.idle(now));
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP);
        self.last_sweep = Some(now);
        before - self.map.len()
    }
}

/// A per-key limiter for one [`Rate`]. Cheap to share behind an `Arc`; every method takes
/// `&self`.
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    shards: Box<[Mutex<Shard>]>,
    /// Keys one shard may hold; beyond, new keys pass untracked.
    shard_cap: usize,
    refused: AtomicU64,
    untracked: AtomicU64,
}

impl Limiter {
    /// A limiter that tracks at most about `max_keys` keys at once.
    pub fn new(rate: Rate, max_keys: usize) -> Limiter {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    map: HashMap::new(),
                    sweep_at: MIN_SWEEP,
                    last_sweep: None,
                })
            })
            .collect();
        Limiter {
            rate,
            shards,
            shard_cap: max_keys.div_ceil(SHARDS).max(1),
            refused: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// One event of `key` at `now`: allowed (and counted) or refused (not counted).
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        self.decide(key, None, now).0
    }

    /// As [`Limiter::check`], for callers that may be re-run for the same event (a store
    /// transaction retried on a conflict): the same `token` for the same key within a
    /// moment gets the first decision again and counts nothing. The second value says
    /// whether this call decided (false: a repeat).
    pub fn check_idempotent(&self, key: &str, token: u64, now: Instant) -> (Decision, bool) {
        self.decide(key, Some(token), now)
    }

    fn decide(&self, key: &str, token: Option<u64>, now: Instant) -> (Decision, bool) {
        let mut shard = self.shard(key);
        if !shard.map.contains_key(key) {
            let len = shard.map.len();
            // Below the cap, sweep when the shard doubled since the last sweep (amortised
            // O(1)); at the cap, at most once a second (a full shard of busy keys would
            // otherwise be scanned for every new phone).
            let sweep = if len >= self.shard_cap {
                shard
                    .last_sweep
                    .is_none_or(|t| now.saturating_duration_since(t) >= FULL_SWEEP_EVERY)
            } else {
                len >= shard.sweep_at
            };
            if sweep {
                shard.sweep(now);
            }
            if shard.map.len() >= self.shard_cap {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return (Decision::Allowed, true);
            }
        }
        let entry = shard
            .map
            .entry(Box::from(key))
            .or_insert_with(|| Entry::fresh(now));
        if let (Some(t), Some((last, at, d))) = (token, entry.last) {
            if last == t && now.saturating_duration_since(at) < RETRY_GRACE {
                return (d, false);
            }
        }
        let d = entry.decide(&self.rate, now);
        if let Some(t) = token {
            entry.last = Some((t, now, d));
        }
        if !d.allowed() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        (d, true)
    }

    /// Forgets every key that is idle at `now`; returns how many.
    pub fn evict_idle(&self, now: Instant) -> usize {
        self.shards.iter().map(|s| lock(s).sweep(now)).sum()
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Events of new keys let through untracked because the table was full.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        lock(&self.shards[(h.finish() as usize) & (SHARDS - 1)])
    }
}

/// A poisoned shard only held plain data: keep using it.
fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The inbound SMS limiter `[limits]` asks for (`None`: off).
pub fn sms_mo(c: &crate::config::LimitsConfig) -> Option<Limiter> {
    Rate::per_hour(c.sms_mo_per_hour, c.sms_mo_burst).map(|r| Limiter::new(r, c.max_tracked_phones))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "255754100001";
    const B: &str = "255754100002";

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// 60 per minute (one a second), 3 at once.
    fn limiter() -> Limiter {
        Limiter::new(Rate::per_minute(60, 3).unwrap(), 1000)
    }

    #[test]
    fn a_burst_is_allowed_then_one_per_interval() {
        let l = limiter();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(A, t0), Decision::Allowed);
        }
        // The fourth at once is refused: the next token is back in 1 s.
        assert_eq!(
            l.check(A, t0),
            Decision::Refused {
                retry_after: secs(1),
                notify: true
            }
        );
        // Trying again does not push the phone further back.
        assert_eq!(
            l.check(A, t0 + Duration::from_millis(400)),
            Decision::Refused {
                retry_after: Duration::from_millis(600),
                notify: false
            }
        );
        // One interval later, exactly one more.
        assert!(l.check(A, t0 + secs(1)).allowed());
        assert!(!l.check(A, t0 + secs(1)).allowed());
        // A full refill (3 s idle) gives the whole burst back, no more.
        let t4 = t0 + secs(4);
        assert!((0..3).all(|_| l.check(A, t4).allowed()));
        assert!(!l.check(A, t4).allowed());
        assert_eq!(l.refused(), 4);
    }

    #[test]
    fn keys_are_independent() {
        let l = limiter();
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(A, t0);
        }
        assert!(!l.check(A, t0).allowed());
        assert!((0..3).all(|_| l.check(B, t0).allowed()));
        assert!(!l.check(B, t0).allowed());
    }

    #[test]
    fn a_phone_is_told_once_per_notice_window() {
        // 60 an hour, 2 at once: the notice window is the hour.
        let l = Limiter::new(Rate::per_hour(60, 2).unwrap(), 1000);
        let t0 = Instant::now();
        assert!(l.check(A, t0).allowed() && l.check(A, t0).allowed());
        let notified = |at: Instant| match l.check(A, at) {
            Decision::Refused { notify, .. } => Some(notify),
            Decision::Allowed => None,
        };
        assert_eq!(notified(t0), Some(true));
        assert_eq!(notified(t0 + secs(10)), Some(false));
        // Tokens come back (one a minute) and are used up again within the hour: no notice.
        assert_eq!(notified(t0 + secs(60)), None);
        assert_eq!(notified(t0 + secs(61)), Some(false));
        // Not even after the bucket refilled completely and the key went idle-looking.
        l.evict_idle(t0 + secs(600));
        assert_eq!(l.len(), 1, "kept: its notice window is open");
        let t10 = t0 + secs(600);
        assert!(l.check(A, t10).allowed() && l.check(A, t10).allowed());
        assert_eq!(notified(t10), Some(false));
        // After the hour, the next refusal is notified again.
        let t61 = t0 + secs(3660);
        assert!(l.check(A, t61).allowed() && l.check(A, t61).allowed());
        assert_eq!(notified(t61), Some(true));
    }

    #[test]
    fn idle_keys_are_evicted_and_busy_ones_kept() {
        let l = limiter();
        let t0 = Instant::now();
        l.check(A, t0);
        for _ in 0..4 {
            l.check(B, t0);
        }
        assert_eq!(l.len(), 2);
        // A's bucket is full again after 1 s; B was refused, so its notice window (a
        // minute) keeps it.
        assert_eq!(l.evict_idle(t0 + secs(2)), 1);
        assert_eq!(l.len(), 1);
        assert_eq!(l.evict_idle(t0 + secs(61)), 1);
        assert!(l.is_empty());
        // Forgetting changed nothing: B gets a full burst, as a new phone would.
        let t = t0 + secs(61);
        assert!((0..3).all(|_| l.check(B, t).allowed()));
    }

    #[test]
    fn memory_stays_bounded_under_many_phones() {
        let l = Limiter::new(Rate::per_minute(60, 3).unwrap(), 6400);
        let t0 = Instant::now();
        // 100,000 phones, one hop each, a millisecond apart: each key is idle a second
        // later (about 1,000 busy at any time), so sweeps on insert keep every shard under
        // its sweep mark instead of growing to 100,000 keys.
        let mut peak = 0;
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_millis(i);
            assert!(l.check(&format!("2557{i:08}"), now).allowed());
            if i % 1000 == 0 {
                peak = peak.max(l.len());
            }
        }
        assert!(peak <= SHARDS * MIN_SWEEP, "peak {peak} keys");
        assert_eq!(l.untracked(), 0);
        // 20,000 new phones at the same instant: the cap holds, and the overflow passes
        // untracked (never refused for being many).
        let t = t0 + secs(500);
        for i in 0..20_000u64 {
            assert!(l.check(&format!("2556{i:08}"), t).allowed());
        }
        assert!(l.len() <= 6400, "{} keys", l.len());
        assert!(l.untracked() > 0);
        assert_eq!(l.refused(), 0);
    }

    #[test]
    fn a_retried_event_gets_the_same_decision_and_is_counted_once() {
        let l = Limiter::new(Rate::per_hour(60, 1).unwrap(), 1000);
        let t0 = Instant::now();
        assert_eq!(l.check_idempotent(A, 7, t0), (Decision::Allowed, true));
        // The transaction re-ran: same token, same answer, no token spent.
        assert_eq!(l.check_idempotent(A, 7, t0), (Decision::Allowed, false));
        let refused = l.check_idempotent(A, 8, t0);
        assert!(!refused.0.allowed() && refused.1);
        assert_eq!(l.check_idempotent(A, 8, t0 + secs(1)), (refused.0, false));
        assert_eq!(l.refused(), 1);
        // Long after, the same token is a new event.
        assert!(l.check_idempotent(A, 8, t0 + secs(120)).1);
    }

    #[test]
    fn zero_means_off_and_burst_is_at_least_one() {
        assert_eq!(Rate::per_minute(0, 20), None);
        let r = Rate::per_hour(120, 0).unwrap();
        assert_eq!(r.burst, 1);
        assert_eq!(r.interval(), secs(30));
    }
}
